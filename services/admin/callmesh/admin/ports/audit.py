"""The audit log port."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from callmesh.admin.domain.audit import AuditEntry
from callmesh.admin.domain.common import Page


@dataclass(frozen=True)
class AuditQuery:
    """Filters of an audit search (all optional); results newest first."""

    tenant_id: str | None = None
    # Platform-level entries only (no tenant): operator views of sites, nodes, keys.
    platform_only: bool = False
    actor: str | None = None
    action_prefix: str | None = None
    target_kind: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    after: str | None = None


class AuditLog(Protocol):
    """Where audit entries are kept."""

    async def append(self, entry: AuditEntry) -> None:
        """Store one entry."""
        ...

    async def search(self, query: AuditQuery) -> Page[AuditEntry]:
        """Entries matching the query, newest first, one page."""
        ...
