"""The audit log's rules: what an entry holds, which values never enter it, what changed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from callmesh.admin.domain.common import Actor

# Values under these keys (at any depth) are replaced before an entry is written: an audit log
# must show that a secret changed, never the secret.
SECRET_KEYS = frozenset(
    {
        "password",
        "password_hash",
        "a1_hash",
        "secret",
        "secret_hash",
        "key_hash",
        "token",
        "token_hash",
        "refresh_token",
        "private_key",
        "private_pem",
        "uri",
    }
)
REDACTED = "***"


def redact(value: Any) -> Any:
    """A copy of ``value`` with every secret replaced by ``***``."""
    if isinstance(value, Mapping):
        return {
            str(k): (REDACTED if str(k) in SECRET_KEYS and v is not None else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def changed_fields(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[str]:
    """Top-level fields whose value differs (all of them for a creation or a deletion)."""
    before = before or {}
    after = after or {}
    keys = set(before) | set(after)
    return sorted(k for k in keys if before.get(k) != after.get(k) and not k.startswith("_"))


@dataclass(frozen=True)
class AuditEntry:
    """One change (or refusal) by someone, to something, at some time."""

    entry_id: str
    at: datetime
    tenant_id: str | None
    actor: Actor
    action: str
    target_kind: str
    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    changes: tuple[str, ...]
    outcome: str = "ok"
    detail: str = ""
