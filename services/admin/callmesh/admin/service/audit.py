"""Recording and searching the audit log: every change by anyone, with before and after."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from callmesh.admin.domain.audit import AuditEntry, changed_fields, redact
from callmesh.admin.domain.common import Actor, Page, new_id
from callmesh.admin.ports.audit import AuditLog, AuditQuery
from callmesh.core import telemetry
from callmesh.core.errors import InvalidInput

log = logging.getLogger(__name__)

MAX_PAGE = 500


class Auditor:
    """Writes audit entries (secrets redacted) and answers searches."""

    def __init__(self, log_: AuditLog, clock: Callable[[], datetime]) -> None:
        self._log = log_
        self._clock = clock
        self._written = telemetry.counter(
            "callmesh_admin_audit_entries_total", "Audit entries written", ["action", "outcome"]
        )
        self._failed = telemetry.counter(
            "callmesh_admin_audit_failures_total", "Audit entries that could not be written"
        )

    async def record(
        self,
        actor: Actor,
        action: str,
        target_kind: str,
        target_id: str,
        *,
        tenant_id: str | None,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
        outcome: str = "ok",
        detail: str = "",
    ) -> AuditEntry:
        """Write one entry; retried, and a failure is logged loudly and counted, never silent."""
        now = self._clock()
        clean_before = redact(dict(before)) if before is not None else None
        clean_after = redact(dict(after)) if after is not None else None
        entry = AuditEntry(
            entry_id=new_id("aud", now),
            at=now,
            tenant_id=tenant_id,
            actor=actor,
            action=action,
            target_kind=target_kind,
            target_id=target_id,
            before=clean_before,
            after=clean_after,
            changes=tuple(changed_fields(before, after)),
            outcome=outcome,
            detail=detail,
        )
        for attempt in range(3):
            try:
                await self._log.append(entry)
            except Exception:  # the change happened: its record must be tried hard
                if attempt == 2:
                    self._failed.inc()
                    log.critical("audit entry lost", exc_info=True, extra={"action": action})
                    return entry
                await asyncio.sleep(0.2 * (attempt + 1))
            else:
                break
        self._written.labels(action, outcome).inc()
        return entry

    async def search(self, query: AuditQuery) -> Page[AuditEntry]:
        """Operator-wide search."""
        return await self._log.search(_checked(query))

    async def search_tenant(self, tenant_id: str, query: AuditQuery) -> Page[AuditEntry]:
        """A tenant's own entries only, whatever the query asked for."""
        return await self._log.search(
            replace(_checked(query), tenant_id=tenant_id, platform_only=False)
        )


def _checked(query: AuditQuery) -> AuditQuery:
    if not 1 <= query.limit <= MAX_PAGE:
        raise InvalidInput("limit", f"must be between 1 and {MAX_PAGE}")
    if query.since and query.until and query.since > query.until:
        raise InvalidInput("since", "must not be after until")
    return query
