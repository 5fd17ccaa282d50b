"""Audit log API: operator-wide (`/v1/operator/audit`) and per tenant (`/v1/t/{tenant}/audit`)."""

# No ``from __future__ import annotations``: the routes' dependencies are local to ``routers``
# and FastAPI must evaluate them where they are (as strings they resolve to nothing).
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict

from callmesh.admin.api.common import After, Limit, PageOut
from callmesh.admin.domain.audit import AuditEntry
from callmesh.admin.ports.audit import AuditQuery
from callmesh.admin.service.audit import Auditor
from callmesh.admin.service.context import AdminContext
from callmesh.core.auth import Principal, operator_principal, require_permission
from callmesh.core.ratelimit import rate_limit
from callmesh.core.tenancy import tenant_writable


class ActorOut(BaseModel):
    """Who made the change."""

    kind: str
    subject: str
    tenant_id: str | None
    roles: list[str]


class AuditEntryOut(BaseModel):
    """One audit entry."""

    model_config = ConfigDict(extra="forbid")

    id: str
    at: datetime
    tenant_id: str | None
    actor: ActorOut
    action: str
    target_kind: str
    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    changes: list[str]
    outcome: str
    detail: str


def entry_out(entry: AuditEntry) -> AuditEntryOut:
    """The API shape of an entry."""
    return AuditEntryOut(
        id=entry.entry_id,
        at=entry.at,
        tenant_id=entry.tenant_id,
        actor=ActorOut(
            kind=entry.actor.kind.value,
            subject=entry.actor.subject,
            tenant_id=entry.actor.tenant_id,
            roles=list(entry.actor.roles),
        ),
        action=entry.action,
        target_kind=entry.target_kind,
        target_id=entry.target_id,
        before=entry.before,
        after=entry.after,
        changes=list(entry.changes),
        outcome=entry.outcome,
        detail=entry.detail,
    )


class AuditFilters:
    """Query parameters common to both audit views."""

    def __init__(
        self,
        limit: Limit = 50,
        after: After = None,
        actor: Annotated[str | None, Query(max_length=128)] = None,
        action: Annotated[
            str | None, Query(max_length=64, description="action prefix, e.g. `user.`")
        ] = None,
        target_kind: Annotated[str | None, Query(max_length=32)] = None,
        target_id: Annotated[str | None, Query(max_length=128)] = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> None:
        self.query = AuditQuery(
            actor=actor,
            action_prefix=action,
            target_kind=target_kind,
            target_id=target_id,
            since=since,
            until=until,
            limit=limit,
            after=after,
        )


def routers(ctx: AdminContext) -> list[APIRouter]:
    """The audit routers."""
    auditor = ctx.dependency(Auditor)
    operator = APIRouter(prefix="/v1/operator", tags=["operator: audit"])
    tenant = APIRouter(prefix="/v1/t/{tenant}", tags=["tenant: audit"])

    @operator.get("/audit", response_model=PageOut[AuditEntryOut])
    async def search_audit(
        _: Annotated[Principal, Depends(operator_principal)],
        filters: Annotated[AuditFilters, Depends()],
        audit: Annotated[Auditor, Depends(auditor)],
        tenant: Annotated[
            str | None, Query(max_length=48, description="one tenant's entries")
        ] = None,
        platform_only: Annotated[
            bool, Query(description="only entries about no tenant (sites, nodes, keys)")
        ] = False,
    ) -> PageOut[AuditEntryOut]:
        """Every change by anyone; filter by tenant, actor, action prefix, target, time."""
        query = filters.query
        query = AuditQuery(
            **{**query.__dict__, "tenant_id": tenant, "platform_only": platform_only}
        )
        page = await audit.search(query)
        return PageOut(items=[entry_out(e) for e in page.items], next=page.next)

    @tenant.get(
        "/audit",
        response_model=PageOut[AuditEntryOut],
        dependencies=[Depends(require_permission("audit.read")), Depends(tenant_writable)],
    )
    async def search_tenant_audit(
        tenant: str,
        _: Annotated[Principal, Depends(rate_limit())],
        filters: Annotated[AuditFilters, Depends()],
        audit: Annotated[Auditor, Depends(auditor)],
    ) -> PageOut[AuditEntryOut]:
        """The tenant's own changes (including the operator's changes to the tenant)."""
        page = await audit.search_tenant(tenant, filters.query)
        return PageOut(items=[entry_out(e) for e in page.items], next=page.next)

    return [operator, tenant]
