"""Partition ownership follows the tenants bucket (suspended: owned but refusing new work;
deleted: dropped), a stale fencing token fences the partition off until it owns a newer lease,
metrics are labelled by tenant and queue, and queue calendars are asked of admin."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from nats.aio.msg import Msg

from callmesh.acd.domain.config import OverflowKind, OverflowReason, OverflowTarget, TenantAcdConfig
from callmesh.core import telemetry
from callmesh.core.bus import Bus, timestamp
from callmesh.core.errors import Unavailable
from callmesh.core.settings import PlatformSettings
from callmesh.core.store import Store
from callmesh.core.tenancy import TenantStatus
from callmesh.proto.subjects import AcdOp, AdminOp, Service
from callmesh.proto.v1.acd_pb2 import AcdErrorCode, LiveReply, LiveRequest
from callmesh.proto.v1.admin_pb2 import CalendarStateReply, CalendarStateRequest
from callmesh.proto.v1.agent_pb2 import AgentState

from .acd_runtime_rig import Rig, agent, call_id, eventually, queue, running, write_tenant

pytestmark = pytest.mark.slow


@pytest.fixture
async def rig(platform_settings: PlatformSettings, bus: Bus, store: Store) -> AsyncIterator[Rig]:
    async with running(platform_settings, bus, store) as r:
        yield r


def config(**fields: object) -> TenantAcdConfig:
    return TenantAcdConfig(
        tenant_id="acme",
        queues={"sales": queue("sales", skill="sales", **fields)},
        agents={"ann": agent("ann", "1001", sales=3), "bob": agent("bob", "1002", sales=3)},
    )


async def test_a_suspended_tenant_refuses_new_work_and_a_deleted_one_is_dropped(
    rig: Rig, bus: Bus
) -> None:
    await rig.configure(config())
    await rig.start_acd("acd-1")
    assert (await rig.agent(AcdOp.AGENT_LOGIN, "ann")).ok
    waiting = call_id()
    assert (await rig.enqueue(waiting, "sales")).ok
    await write_tenant(bus, "acme", TenantStatus.SUSPENDED)

    async def refused() -> bool:
        reply = await rig.enqueue(call_id(), "sales")
        return not reply.ok and reply.error_code == AcdErrorCode.ACD_ERROR_CODE_REFUSED

    await eventually(refused, "new calls refused")
    login = await rig.agent(AcdOp.AGENT_LOGIN, "bob")
    assert (login.ok, login.error_code) == (False, AcdErrorCode.ACD_ERROR_CODE_REFUSED)
    assert "suspended" in login.message
    # What is there goes on: the waiting call, ann going ready and logging out.
    assert [c.call_id for c in (await rig.live()).calls] == [waiting]
    assert (await rig.agent(AcdOp.AGENT_LOGOUT, "ann")).ok
    await write_tenant(bus, "acme", TenantStatus.DELETED)
    subject = bus.subjects.service_command("acme", Service.ACD, AcdOp.LIVE)

    async def dropped() -> bool:
        try:
            await bus.request(subject, LiveRequest(), LiveReply, timeout=1.0)
        except Unavailable:
            return True
        return False

    await eventually(dropped, "nobody serves the deleted tenant")


async def test_a_stale_token_reply_fences_the_partition_until_it_owns_a_newer_lease(
    rig: Rig,
) -> None:
    await rig.configure(config())
    await rig.start_acd("acd-1")
    old = (await rig.live()).fencing_token
    # The switch has seen a newer owner's token for the lease.
    rig.node.highest["acd.acme"] = old + 1
    assert (await rig.enqueue(call_id(), "sales")).ok
    await eventually(lambda: rig.node.of("play"), "a command refused as stale")

    async def newer() -> bool:
        return (await rig.live()).fencing_token > old + 1

    await eventually(newer, "the partition owns a newer lease", 30)
    sent = len(rig.node.commands)
    assert (await rig.agent(AcdOp.AGENT_LOGIN, "ann", ready=True)).ok
    offer = (await eventually(lambda: rig.node.of("originate"), "offered again"))[0]
    assert offer.fencing_token > old + 1
    assert all(c.fencing_token > old + 1 for c in rig.node.commands[sent:])


async def test_metrics_are_labelled_by_tenant_and_queue(rig: Rig) -> None:
    await rig.configure(config())
    await rig.start_acd("acd-1")
    assert (await rig.enqueue(call_id(), "sales")).ok
    rig.node.behaviour["1001"] = "USER_BUSY"
    assert (await rig.agent(AcdOp.AGENT_LOGIN, "ann", ready=True)).ok
    await eventually(lambda: rig.of("agent_no_answer"), "busy")

    def text() -> str:
        return telemetry.render_metrics()[0].decode()

    await eventually(
        lambda: 'callmesh_acd_waiting_calls{queue="sales",tenant="acme"} 1.0' in text(),
        "waiting calls gauge",
    )
    body = text()
    assert 'callmesh_acd_offers_total{queue="sales",tenant="acme"}' in body
    assert 'callmesh_acd_no_answers_total{queue="sales",reason="busy",tenant="acme"}' in body
    assert 'callmesh_acd_agents{state="not_ready",tenant="acme"}' in body
    assert 'callmesh_acd_routing_seconds_count{op="enqueue",tenant="acme"}' in body
    assert "callmesh_acd_partitions_owned" in body


async def test_a_closed_calendar_overflows_and_admin_is_asked_in_the_background(
    rig: Rig, bus: Bus
) -> None:
    asked: list[str] = []
    state = {"open": False}

    async def admin(msg: Msg) -> None:
        request = CalendarStateRequest.FromString(msg.data)
        asked.append(request.calendar_id)
        reply = CalendarStateReply(found=True, open=state["open"], reason="closed")
        # The state changes at once: the cache asks again a second later.
        reply.next_change.CopyFrom(timestamp(time.time()))
        await msg.respond(reply.SerializeToString())

    subject = bus.subjects.service_command("acme", Service.ADMIN, AdminOp.CALENDAR_STATE)
    sub = await bus.nc.subscribe(subject, cb=admin)
    try:
        closed = OverflowTarget(OverflowKind.ANNOUNCEMENT, "acd/closed")
        await rig.configure(config(calendar_id="cal-1", overflow={OverflowReason.CLOSED: closed}))
        await rig.start_acd("acd-1")
        await rig.live()
        # Asked before the partition took requests.
        assert asked[:1] == ["cal-1"]
        caller = call_id()
        reply = await rig.enqueue(caller, "sales")
        assert (reply.ok, reply.error_code) == (False, AcdErrorCode.ACD_ERROR_CODE_OVERFLOWED)
        plays = await eventually(
            lambda: [c for c in rig.node.of("play") if c.play.channel_uuid == caller], "announced"
        )
        assert list(plays[0].play.files) == ["acd/en/closed.wav"]
        assert list(plays[-1].play.files) == ["hangup::NORMAL_CLEARING"]
        # Admin says it opened: after the next answer (next_change is past) calls queue again.
        state["open"] = True

        async def queues_again() -> bool:
            return (await rig.enqueue(call_id(), "sales")).ok

        await eventually(queues_again, "open again")
        assert (await rig.state("ann")) == AgentState.AGENT_STATE_LOGGED_OUT
    finally:
        await sub.unsubscribe()
