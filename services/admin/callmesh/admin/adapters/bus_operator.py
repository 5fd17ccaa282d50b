"""Bus adapters of the operator area: the tenant events it publishes, the number look-up it
answers (``platform.admin.number_lookup``) and the quota refusals it audits."""

from __future__ import annotations

from collections.abc import Sequence

from callmesh.admin.domain.tenants import Tenant
from callmesh.admin.service.context import AdminContext
from callmesh.admin.service.operator import NumberAdmin, TenantAdmin
from callmesh.core.bus import Bus, Delivery, Subscription, timestamp
from callmesh.core.runtime import RequestRoute, Runtime
from callmesh.proto.subjects import Domain, Service
from callmesh.proto.v1.admin_pb2 import NumberLookup, NumberLookupReply
from callmesh.proto.v1.event_pb2 import Event
from callmesh.proto.v1.tenant_pb2 import (
    TenantCreated,
    TenantDeleted,
    TenantNumbersChanged,
    TenantRestored,
    TenantResumed,
    TenantSuspended,
    TenantUpdated,
)

NUMBER_LOOKUP = "number_lookup"


class BusTenantEvents:
    """``TenantEvents``: one ``Event`` per change, on ``cm.<tenant>.tenant.<event>``."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    def _event(self, tenant_id: str) -> Event:
        return self._bus.new_event(tenant_id=tenant_id)

    async def created(self, tenant: Tenant) -> None:
        """``tenant.created``."""
        event = self._event(tenant.tenant_id)
        event.tenant_created.CopyFrom(
            TenantCreated(
                slug=tenant.tenant_id,
                name=tenant.name,
                language=tenant.language,
                time_zone=tenant.time_zone,
            )
        )
        await self._bus.publish(event)

    async def updated(self, tenant: Tenant, changed: Sequence[str]) -> None:
        """``tenant.updated``."""
        event = self._event(tenant.tenant_id)
        event.tenant_updated.CopyFrom(
            TenantUpdated(
                changed_fields=list(changed),
                name=tenant.name,
                language=tenant.language,
                time_zone=tenant.time_zone,
            )
        )
        await self._bus.publish(event)

    async def suspended(self, tenant: Tenant, by: str) -> None:
        """``tenant.suspended``."""
        event = self._event(tenant.tenant_id)
        event.tenant_suspended.CopyFrom(TenantSuspended(reason=tenant.status_reason, by=by))
        await self._bus.publish(event)

    async def resumed(self, tenant: Tenant, by: str) -> None:
        """``tenant.resumed``."""
        event = self._event(tenant.tenant_id)
        event.tenant_resumed.CopyFrom(TenantResumed(by=by))
        await self._bus.publish(event)

    async def deleted(self, tenant: Tenant, by: str) -> None:
        """``tenant.deleted``."""
        event = self._event(tenant.tenant_id)
        body = TenantDeleted(by=by)
        if tenant.purge_after is not None:
            body.purge_after.CopyFrom(timestamp(tenant.purge_after.timestamp()))
        event.tenant_deleted.CopyFrom(body)
        await self._bus.publish(event)

    async def restored(self, tenant: Tenant, by: str) -> None:
        """``tenant.restored``."""
        event = self._event(tenant.tenant_id)
        event.tenant_restored.CopyFrom(TenantRestored(by=by))
        await self._bus.publish(event)

    async def numbers_changed(
        self, tenant_id: str, added: Sequence[str], removed: Sequence[str]
    ) -> None:
        """``tenant.numbers_changed``."""
        event = self._event(tenant_id)
        event.tenant_numbers_changed.CopyFrom(
            TenantNumbersChanged(added=list(added), removed=list(removed))
        )
        await self._bus.publish(event)


def requests(ctx: AdminContext, runtime: Runtime) -> list[RequestRoute]:
    """Request/reply subjects this area answers."""

    async def number_lookup(request: NumberLookup) -> NumberLookupReply:
        result = await ctx.get(NumberAdmin).lookup(request.number)
        return NumberLookupReply(
            found=result.found,
            number=result.number,
            tenant_id=result.tenant_id,
            tenant_status=result.tenant_status,
            language=result.language,
            time_zone=result.time_zone,
        )

    return [
        RequestRoute(
            subject=lambda bus: bus.subjects.platform_command(Service.ADMIN, NUMBER_LOOKUP),
            request_type=NumberLookup,
            handler=number_lookup,
        )
    ]


def subscriptions(ctx: AdminContext, runtime: Runtime) -> list[Subscription]:
    """Events this area consumes."""

    async def quota_exceeded(delivery: Delivery) -> None:
        event = delivery.event
        body = event.tenant_quota_exceeded
        tenant_id = event.tenant_id or delivery.subject.split(".")[1]
        await ctx.get(TenantAdmin).record_refusal(
            event.event_id,
            tenant_id,
            kind=body.kind,
            limit=body.limit,
            used=body.used,
            requested=body.requested,
            service=body.service or event.source.service,
        )

    return [
        Subscription(
            name="quota-refusals",
            domain=Domain.TENANT,
            handler=quota_exceeded,
            events=("quota_exceeded",),
            concurrency=4,
        )
    ]
