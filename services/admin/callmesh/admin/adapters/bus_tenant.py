"""Bus adapters of the tenant area: the SIP directory FreeSWITCH asks, the change events it sends.

``platform.admin.directory_lookup`` (``DirectoryLookup`` → ``DirectoryLookupReply``) answers the
cti link, which serves FreeSWITCH's directory through mod_xml_curl. The domain names the tenant
(``<tenant>.<sip_domain_suffix>``). A suspended tenant's devices are still found: their phones
stay registered, so calls from them reach the dialplan, which knows the tenant by the reply's
``tenant_id`` and refuses the call with the suspension announcement (a phone that vanished from
the directory could not be told apart from a stranger's). A deleted or unknown tenant's are not
found.
"""

from __future__ import annotations

from collections.abc import Sequence

from callmesh.admin.domain.devices import tenant_of_domain
from callmesh.admin.service.context import AdminContext
from callmesh.admin.service.tenant import DeviceAdmin
from callmesh.core import telemetry
from callmesh.core.bus import Bus, Subscription
from callmesh.core.errors import InvalidInput
from callmesh.core.runtime import RequestRoute, Runtime
from callmesh.core.tenancy import TenantStatus, check_sip_username
from callmesh.proto.subjects import Service
from callmesh.proto.v1.admin_pb2 import DirectoryLookup, DirectoryLookupReply

DIRECTORY_LOOKUP = "directory_lookup"


class BusTenantNotifier:
    """``TenantNotifier`` on the bus: events ``cm.<tenant>.tenant.*`` (stream CM_ADMIN)."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def directory_changed(self, tenant_id: str, usernames: Sequence[str]) -> None:
        """``tenant.directory_changed`` with the user names whose answers changed."""
        event = self._bus.new_event(tenant_id=tenant_id)
        event.tenant_directory_changed.usernames.extend(sorted(set(usernames)))
        await self._bus.publish(event)

    async def calendars_changed(self, tenant_id: str, calendar_ids: Sequence[str]) -> None:
        """``tenant.calendars_changed`` with the calendars that changed."""
        event = self._bus.new_event(tenant_id=tenant_id)
        event.tenant_calendars_changed.calendar_ids.extend(calendar_ids)
        await self._bus.publish(event)


def requests(ctx: AdminContext, runtime: Runtime) -> list[RequestRoute]:
    """Request/reply subjects this area answers."""
    lookups = telemetry.counter(
        "callmesh_admin_directory_lookups_total",
        "SIP directory look-ups answered, by outcome (found, not_found, tenant_gone)",
        ["outcome"],
    )
    found, not_found, gone = (lookups.labels(o) for o in ("found", "not_found", "tenant_gone"))

    async def directory_lookup(request: DirectoryLookup) -> DirectoryLookupReply:
        devices = ctx.get(DeviceAdmin)
        tenant_id = tenant_of_domain(request.domain, devices.suffix)
        try:
            username = check_sip_username(request.username)
        except InvalidInput:
            username = None
        if tenant_id is None or username is None:
            not_found.inc()
            return DirectoryLookupReply(found=False)
        info = runtime.tenant_gate.info(tenant_id)
        if info is None or info.status is TenantStatus.DELETED:
            gone.inc()
            return DirectoryLookupReply(found=False)
        entry = await devices.lookup(tenant_id, username)
        if entry is None:
            not_found.inc()
            return DirectoryLookupReply(found=False)
        found.inc()
        return DirectoryLookupReply(
            found=True,
            tenant_id=tenant_id,
            username=entry.username,
            a1_hash=entry.a1_hash,
            user_id=entry.user_id or "",
            display_name=entry.display_name,
            site_id=entry.site_id or "",
            kind=entry.kind.value,
        )

    return [
        RequestRoute(
            subject=lambda bus: bus.subjects.platform_command(Service.ADMIN, DIRECTORY_LOOKUP),
            request_type=DirectoryLookup,
            handler=directory_lookup,
        )
    ]


def subscriptions(ctx: AdminContext, runtime: Runtime) -> list[Subscription]:
    """Events this area consumes (none: its state changes only through its API)."""
    return []
