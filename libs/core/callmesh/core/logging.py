"""Structured logging: one JSON object a line, with the service, tenant, call and trace."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

_tenant: contextvars.ContextVar[str | None] = contextvars.ContextVar("cm_tenant", default=None)
_call: contextvars.ContextVar[str | None] = contextvars.ContextVar("cm_call", default=None)

# Attributes every LogRecord has; anything else passed through ``extra=`` is emitted as a field.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


@contextlib.contextmanager
def log_context(*, tenant_id: str | None = None, call_id: str | None = None) -> Iterator[None]:
    """Within the block (and tasks started in it) log lines carry this tenant and call."""
    tokens: list[tuple[contextvars.ContextVar[str | None], contextvars.Token[str | None]]] = []
    if tenant_id:
        tokens.append((_tenant, _tenant.set(tenant_id)))
    if call_id:
        tokens.append((_call, _call.set(call_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current_tenant() -> str | None:
    """The tenant bound by the innermost ``log_context``."""
    return _tenant.get()


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line with context fields."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "service": self.service,
        }
        tenant = _tenant.get()
        if tenant:
            out["tenant_id"] = tenant
        call = _call.get()
        if call:
            out["call_id"] = call
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            out["trace_id"] = format(ctx.trace_id, "032x")
            out["span_id"] = format(ctx.span_id, "016x")
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal, still showing tenant and call."""

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        ids = " ".join(
            f"{name}={value}"
            for name, value in (("tenant", _tenant.get()), ("call", _call.get()))
            if value
        )
        return f"{base} [{ids}]" if ids else base


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    """Install one stderr handler on the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_callmesh", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._callmesh = True  # type: ignore[attr-defined]
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Chatty libraries stay at warning unless we are debugging.
    if level.upper() != "DEBUG":
        for name in ("pymongo", "nats", "uvicorn.access", "httpx"):
            logging.getLogger(name).setLevel(logging.WARNING)
