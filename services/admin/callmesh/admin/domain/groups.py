"""Groups: a tenant's logical teams (membership is kept on each user, supervisors on the group)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from callmesh.core.errors import InvalidInput

GROUP_PREFIX = "grp"
MAX_NAME = 100
MAX_DESCRIPTION = 1000
MAX_SUPERVISORS = 50


def check_group_name(value: str, field_name: str = "name") -> str:
    """A group name: 1-100 characters once trimmed, no control characters."""
    text = value.strip()
    if not text:
        raise InvalidInput(field_name, "must not be empty")
    if len(text) > MAX_NAME:
        raise InvalidInput(field_name, f"must be at most {MAX_NAME} characters")
    if any(not c.isprintable() for c in text):
        raise InvalidInput(field_name, "must not contain control characters")
    return text


def check_description(value: str, field_name: str = "description") -> str:
    """A description: at most 1000 characters (line breaks allowed)."""
    text = value.strip()
    if len(text) > MAX_DESCRIPTION:
        raise InvalidInput(field_name, f"must be at most {MAX_DESCRIPTION} characters")
    if any(not c.isprintable() and c not in "\n\t" for c in text):
        raise InvalidInput(field_name, "must not contain control characters")
    return text


def check_supervisors(ids: Sequence[str], field_name: str = "supervisor_ids") -> tuple[str, ...]:
    """Supervisor user ids, deduplicated in order (their existence is checked by the use case)."""
    if len(ids) > MAX_SUPERVISORS:
        raise InvalidInput(field_name, f"must hold at most {MAX_SUPERVISORS} users")
    return tuple(dict.fromkeys(ids))


@dataclass(frozen=True)
class Group:
    """A logical team of a tenant."""

    group_id: str
    tenant_id: str
    name: str
    created_at: datetime
    updated_at: datetime
    description: str = ""
    supervisor_ids: tuple[str, ...] = ()
    version: int = 1

    def changed(self, now: datetime, **changes: Any) -> Group:
        """A new version of the group with ``changes``."""
        return replace(self, **changes, updated_at=now, version=self.version + 1)

    def record(self) -> dict[str, Any]:
        """The stored document (``groups`` collection)."""
        return {
            "_id": self.group_id,
            "tenant_id": self.tenant_id,
            "name": self.name,
            "description": self.description,
            "supervisor_ids": list(self.supervisor_ids),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "version": self.version,
        }

    @classmethod
    def from_record(cls, doc: Mapping[str, Any]) -> Group:
        """Read a stored document."""
        return cls(
            group_id=doc["_id"],
            tenant_id=doc["tenant_id"],
            name=doc["name"],
            description=doc.get("description", ""),
            supervisor_ids=tuple(doc.get("supervisor_ids") or ()),
            created_at=doc["created_at"],
            updated_at=doc["updated_at"],
            version=int(doc.get("version", 1)),
        )
