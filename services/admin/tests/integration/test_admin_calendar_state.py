"""``<tenant>.admin.calendar_state`` on the real admin (real NATS, FerretDB): acd and ivr ask it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from callmesh.admin.app import AdminSettings
from callmesh.admin.domain.calendars import WEEKDAYS, Calendar
from callmesh.admin.domain.common import Actor, ActorKind
from callmesh.admin.service.tenant import CalendarAdmin, CalendarSpec
from callmesh.core.bus import Bus
from callmesh.core.errors import InvalidInput
from callmesh.core.settings import PlatformSettings
from callmesh.core.tenancy import TenantInfo, TenantStatus
from callmesh.proto.subjects import AdminOp, Bucket, Service
from callmesh.proto.v1.admin_pb2 import CalendarStateReply, CalendarStateRequest

WORKWEEK = {day: [["09:00", "12:00"], ["13:00", "18:00"]] for day in ("mon", "tue", "wed", "thu")}


@pytest.fixture
async def admin(platform_settings: PlatformSettings, run_admin: Any) -> AsyncIterator[Any]:
    async with run_admin(AdminSettings(platform=platform_settings)) as running:
        yield running


async def tenant(admin: Any, bus: Bus, tenant_id: str, status: TenantStatus) -> None:
    """Write the tenant's record as the operator area would, and wait for admin's gate."""
    info = TenantInfo(tenant_id, status, name=tenant_id, language="en", time_zone="UTC")
    await (await bus.kv(Bucket.TENANTS)).put(tenant_id, info.to_json())
    deadline = time.monotonic() + 10
    while admin.runtime.tenant_gate.info(tenant_id) != info:
        assert time.monotonic() < deadline, f"the gate never saw {tenant_id} {status}"
        await asyncio.sleep(0.02)


async def calendar(admin: Any, tenant_id: str, time_zone: str, **rules: Any) -> Calendar:
    """A calendar created through admin's use case, as its API creates it."""
    calendars: CalendarAdmin = admin.ctx.get(CalendarAdmin)
    actor = Actor(ActorKind.USER, "usr_admin", tenant_id, ("tenant_admin",))
    spec = CalendarSpec(name="Support", time_zone=time_zone, **rules)
    return await calendars.create(tenant_id, actor, spec, "UTC")


async def ask(bus: Bus, tenant_id: str, calendar_id: str, at: str | None) -> CalendarStateReply:
    """Send the request as acd does."""
    request = CalendarStateRequest(calendar_id=calendar_id)
    if at is not None:
        request.at.FromDatetime(datetime.fromisoformat(at).astimezone(UTC))
    subject = bus.subjects.service_command(tenant_id, Service.ADMIN, AdminOp.CALENDAR_STATE)
    return await bus.request(subject, request, CalendarStateReply)


def when(reply: CalendarStateReply) -> str | None:
    """next_change as ISO text (None when unset)."""
    if not reply.HasField("next_change"):
        return None
    return reply.next_change.ToDatetime(tzinfo=UTC).isoformat()


async def test_calendar_state_answers_open_closed_holiday_and_the_next_change(
    admin: Any, bus: Bus
) -> None:
    await tenant(admin, bus, "acme", TenantStatus.ACTIVE)
    support = await calendar(
        admin,
        "acme",
        "Europe/Berlin",
        weekly={**WORKWEEK, "fri": [["09:00", "17:00"]]},
        holidays=[{"date": "2026-10-02", "name": "Bridge day"}],
    )
    # Monday 30 March 2026, 12:30 CEST: lunch break; opens again at 13:00 CEST (11:00 UTC).
    lunch = await ask(bus, "acme", support.calendar_id, "2026-03-30T10:30:00+00:00")
    assert lunch.found
    assert not lunch.open
    assert lunch.reason == "closed"
    assert when(lunch) == "2026-03-30T11:00:00+00:00"
    assert lunch.time_zone == "Europe/Berlin"
    morning = await ask(bus, "acme", support.calendar_id, "2026-03-30T08:00:00+00:00")
    assert morning.found
    assert morning.open
    assert morning.reason == "open"
    assert when(morning) == "2026-03-30T10:00:00+00:00"
    bridge = await ask(bus, "acme", support.calendar_id, "2026-10-02T10:00:00+00:00")
    assert not bridge.open
    assert bridge.reason == "holiday: Bridge day"
    # Without "at" admin answers for now: whatever it says, it says it about this calendar.
    now = await ask(bus, "acme", support.calendar_id, None)
    assert now.found
    assert now.time_zone == "Europe/Berlin"
    assert now.HasField("next_change")


async def test_a_calendar_open_around_the_clock_never_changes(admin: Any, bus: Bus) -> None:
    await tenant(admin, bus, "acme", TenantStatus.ACTIVE)
    always = await calendar(
        admin,
        "acme",
        "UTC",
        weekly={day: [["00:00", "24:00"]] for day in WEEKDAYS},
    )
    reply = await ask(bus, "acme", always.calendar_id, "2026-05-01T03:00:00+00:00")
    assert reply.found
    assert reply.open
    assert when(reply) is None


async def test_the_tenant_is_the_subjects_another_tenants_calendar_is_not_found(
    admin: Any, bus: Bus
) -> None:
    await tenant(admin, bus, "acme", TenantStatus.ACTIVE)
    await tenant(admin, bus, "globex", TenantStatus.ACTIVE)
    acme = await calendar(admin, "acme", "UTC", weekly=WORKWEEK)
    mine = await ask(bus, "acme", acme.calendar_id, "2026-03-30T10:00:00+00:00")
    assert mine.found
    theirs = await ask(bus, "globex", acme.calendar_id, "2026-03-30T10:00:00+00:00")
    assert theirs == CalendarStateReply(found=False)
    unknown = await ask(bus, "acme", "cal_nonexistent", "2026-03-30T10:00:00+00:00")
    assert unknown == CalendarStateReply(found=False)
    # A tenant admin never heard of is not found either, and a deleted one's calendars vanish.
    assert not (await ask(bus, "initech", acme.calendar_id, None)).found
    await tenant(admin, bus, "acme", TenantStatus.DELETED)
    assert not (await ask(bus, "acme", acme.calendar_id, None)).found


async def test_a_request_without_a_calendar_id_names_the_field(admin: Any, bus: Bus) -> None:
    await tenant(admin, bus, "acme", TenantStatus.ACTIVE)
    with pytest.raises(InvalidInput) as raised:
        await ask(bus, "acme", "", None)
    assert raised.value.details["field"] == "calendar_id"
