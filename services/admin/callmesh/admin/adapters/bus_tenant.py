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

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from datetime import UTC

import nats.errors
from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription

from callmesh.admin.domain.calendars import REASON_OPEN
from callmesh.admin.domain.devices import tenant_of_domain
from callmesh.admin.service.context import AdminContext
from callmesh.admin.service.tenant import CalendarAdmin, DeviceAdmin
from callmesh.core import telemetry
from callmesh.core.bus import ERROR_HEADER, Bus, Subscription
from callmesh.core.errors import DomainError, InvalidInput, NotFound
from callmesh.core.runtime import RequestRoute, Runtime
from callmesh.core.tenancy import TenantStatus, check_sip_username
from callmesh.proto.subjects import AdminOp, Service, check_tenant_id
from callmesh.proto.v1.admin_pb2 import (
    CalendarStateReply,
    CalendarStateRequest,
    DirectoryLookup,
    DirectoryLookupReply,
)

DIRECTORY_LOOKUP = "directory_lookup"
# The reply's reason for an open calendar (the domain's "working hours"), as admin.proto says.
REASON_OPEN_REPLY = "open"
# Calendar look-ups in flight at once; more wait for a slot (NATS buffers them meanwhile).
CALENDAR_STATE_CONCURRENCY = 64

log = logging.getLogger(__name__)


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


class CalendarStateServer:
    """Answers ``<prefix>.<tenant>.admin.calendar_state`` for every tenant (queue group admin)."""

    def __init__(self, ctx: AdminContext, runtime: Runtime) -> None:
        self._ctx = ctx
        self._runtime = runtime
        self._sub: NatsSubscription | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(CALENDAR_STATE_CONCURRENCY)
        self._answers = telemetry.counter(
            "callmesh_admin_calendar_state_requests_total",
            "calendar_state requests answered, by outcome (found, not_found, error)",
            ["outcome"],
        )

    async def start(self, runtime: Runtime) -> None:
        """Subscribe to every tenant's subject (a hook of the runtime's start)."""
        bus = runtime.bus
        subject = f"{bus.subjects.prefix}.*.{Service.ADMIN}.{AdminOp.CALENDAR_STATE}"
        self._sub = await bus.nc.subscribe(subject, queue=bus.service, cb=self._on_message)
        # The SUB must reach the server before the service says it is ready.
        await bus.nc.flush()

    async def stop(self, runtime: Runtime) -> None:
        """Stop taking requests and let those in flight finish (a hook of the runtime's stop)."""
        if self._sub is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._sub.unsubscribe()
            self._sub = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on_message(self, msg: Msg) -> None:
        await self._slots.acquire()
        task = asyncio.create_task(self._respond(msg))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def _respond(self, msg: Msg) -> None:
        headers: dict[str, str] | None = None
        try:
            # <prefix>.<tenant>.admin.calendar_state: the prefix is one token.
            tenant_id = msg.subject.split(".")[1]
            try:
                request = CalendarStateRequest.FromString(msg.data)
            except DecodeError as err:
                raise InvalidInput("request", "not a valid CalendarStateRequest") from err
            payload = (await self.answer(tenant_id, request)).SerializeToString()
        except DomainError as err:
            self._answers.labels("error").inc()
            payload, headers = json.dumps(err.to_dict()).encode(), {ERROR_HEADER: err.code}
        except Exception as err:
            self._answers.labels("error").inc()
            log.exception("calendar_state failed", extra={"subject": msg.subject})
            body = {"code": "internal", "message": f"calendar_state failed: {type(err).__name__}"}
            payload, headers = json.dumps(body).encode(), {ERROR_HEADER: "internal"}
        if msg.reply:
            with contextlib.suppress(nats.errors.Error):
                await self._runtime.bus.nc.publish(msg.reply, payload, headers=headers)

    async def answer(self, tenant_id: str, request: CalendarStateRequest) -> CalendarStateReply:
        """Whether the tenant's calendar is open at ``request.at`` (now when unset)."""
        if not request.calendar_id:
            raise InvalidInput("calendar_id", "must not be empty")
        try:
            check_tenant_id(tenant_id)
        except ValueError:
            self._answers.labels("not_found").inc()
            return CalendarStateReply(found=False)
        info = self._runtime.tenant_gate.info(tenant_id)
        if info is None or info.status is TenantStatus.DELETED:
            self._answers.labels("not_found").inc()
            return CalendarStateReply(found=False)
        at = request.at.ToDatetime(tzinfo=UTC) if request.HasField("at") else None
        try:
            calendar, state = await self._ctx.get(CalendarAdmin).evaluate(
                tenant_id, request.calendar_id, at
            )
        except NotFound:
            # Unknown and another tenant's ids look the same.
            self._answers.labels("not_found").inc()
            return CalendarStateReply(found=False)
        self._answers.labels("found").inc()
        reply = CalendarStateReply(
            found=True,
            open=state.open,
            reason=REASON_OPEN_REPLY if state.reason == REASON_OPEN else state.reason,
            time_zone=calendar.time_zone,
        )
        if state.next_change is not None:
            reply.next_change.FromDatetime(state.next_change)
        return reply
