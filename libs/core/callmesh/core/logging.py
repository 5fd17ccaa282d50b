"""Structured logging: one JSON object a line, with the service, tenant, call and trace."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

_tenant: contextvars.ContextVar[str | None] = contextvars.ContextVar("cm_tenant", default=None)
_call: contextvars.ContextVar[str | None] = contextvars.ContextVar("cm_call", default=None)

# Attributes every LogRecord has; anything else passed through ``extra=`` is emitted as a field.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class log_context:
    """Within the block (and tasks started in it) log lines carry this tenant and call.

    A class rather than ``@contextmanager``: it runs around every bus handler, and the
    generator machinery costs more than the two context variables it sets.
    """

    __slots__ = ("_call", "_call_token", "_tenant", "_tenant_token")

    def __init__(self, *, tenant_id: str | None = None, call_id: str | None = None) -> None:
        self._tenant = tenant_id
        self._call = call_id
        self._tenant_token: contextvars.Token[str | None] | None = None
        self._call_token: contextvars.Token[str | None] | None = None

    def __enter__(self) -> None:
        if self._tenant:
            self._tenant_token = _tenant.set(self._tenant)
        if self._call:
            self._call_token = _call.set(self._call)

    def __exit__(self, *_exc: object) -> None:
        if self._call_token is not None:
            _call.reset(self._call_token)
        if self._tenant_token is not None:
            _tenant.reset(self._tenant_token)


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
