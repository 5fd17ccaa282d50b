"""What every admin area shares: identifiers, pages of results and the actor of a change."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

T = TypeVar("T")

_ID_RE = re.compile(r"^[a-z]{2,8}_[0-9a-f]{24}$")


def new_id(prefix: str, now: datetime) -> str:
    """A time-ordered id (``usr_<12 hex ms><12 hex random>``): sorting by id sorts by creation."""
    millis = int(now.timestamp() * 1000)
    return f"{prefix}_{millis:012x}{secrets.token_hex(6)}"


def is_id(value: str, prefix: str) -> bool:
    """Whether ``value`` has the shape of an id with ``prefix`` (cheap refusal of garbage ids)."""
    return bool(_ID_RE.match(value)) and value.startswith(f"{prefix}_")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing and the cursor of the next (None at the end)."""

    items: list[T]
    next: str | None = None


class ActorKind(StrEnum):
    """Who made a change."""

    OPERATOR = "operator"
    USER = "user"
    API_KEY = "api_key"
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """The author of a change, as the audit log records it."""

    kind: ActorKind
    subject: str
    tenant_id: str | None = None
    roles: tuple[str, ...] = field(default=())

    @classmethod
    def system(cls, what: str) -> Actor:
        """The platform itself (start-up reconciliation, retention purges, refused quotas)."""
        return cls(ActorKind.SYSTEM, what)
