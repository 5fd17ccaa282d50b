"""Errors every service raises and maps: one base, narrow subclasses named for what went wrong."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A known failure with a stable machine code, a human message and structured details.

    The API maps it to problem+json with its ``status``; bus handlers log it and ack the message
    (redelivering a message that is wrong in itself would only fail again).
    """

    code: str = "domain_error"
    status: int = 400

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = details

    def to_dict(self) -> dict[str, Any]:
        """Serialize for an API body or a bus error reply."""
        return {"code": self.code, "message": self.message, "details": self.details}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r}, {self.details!r})"


class InvalidInput(DomainError):
    """Input broke a rule; ``field`` names where and ``rule`` names which."""

    code = "invalid_input"
    status = 422

    def __init__(self, field: str, rule: str, message: str | None = None, **details: Any) -> None:
        super().__init__(message or f"{field}: {rule}", field=field, rule=rule, **details)
        self.field = field
        self.rule = rule


class NotFound(DomainError):
    """The thing does not exist for this caller (also what another tenant's ids look like)."""

    code = "not_found"
    status = 404


class Conflict(DomainError):
    """The change collides with what exists (a slug taken, a number already owned)."""

    code = "conflict"
    status = 409


class Unauthenticated(DomainError):
    """No credentials, or credentials that cannot be trusted (bad signature, expired)."""

    code = "unauthenticated"
    status = 401


class Forbidden(DomainError):
    """Trusted credentials that do not grant this action or this tenant."""

    code = "forbidden"
    status = 403


class TenantViolation(DomainError):
    """Code tried to reach data outside the tenant it works for: a bug, never user input."""

    code = "tenant_violation"
    status = 500


class QuotaExceeded(DomainError):
    """A tenant quota has no unit left."""

    code = "quota_exceeded"
    status = 429


class TenantSuspended(DomainError):
    """The tenant is suspended: it may read, but new work is refused."""

    code = "tenant_suspended"
    status = 423


class Unavailable(DomainError):
    """A dependency (bus, store, switch) cannot serve the request now; retrying may help."""

    code = "unavailable"
    status = 503


class RemoteError(DomainError):
    """A bus request was answered with an error by the service that handled it."""

    code = "remote_error"
    status = 502


class RequestTimeout(DomainError):
    """A bus request got no answer in time."""

    code = "timeout"
    status = 504


_BY_CODE: dict[str, type[DomainError]] = {
    cls.code: cls
    for cls in (
        DomainError,
        InvalidInput,
        NotFound,
        Conflict,
        Unauthenticated,
        Forbidden,
        TenantViolation,
        QuotaExceeded,
        TenantSuspended,
        Unavailable,
        RemoteError,
        RequestTimeout,
    )
}


def error_from_dict(data: dict[str, Any]) -> DomainError:
    """Rebuild an error sent over the bus; unknown codes keep their code on a plain DomainError."""
    code = str(data.get("code", "remote_error"))
    message = str(data.get("message", ""))
    details = data.get("details") or {}
    if not isinstance(details, dict):
        details = {"details": details}
    cls = _BY_CODE.get(code)
    if cls is InvalidInput:
        fields = {k: v for k, v in details.items() if k not in ("field", "rule")}
        return InvalidInput(
            str(details.get("field", "")), str(details.get("rule", "")), message, **fields
        )
    if cls is None:
        return DomainError(message, code=code, **details)
    return cls(message, **details)
