"""Snapshots and takeover: a second replica continues where the owner stopped or died — waiting
calls keep their original enqueue time, agents their states, offers in flight are neither lost
nor made twice, and call events from the ownerless gap are replayed."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest

from callmesh.acd.domain.config import TenantAcdConfig
from callmesh.acd.runtime import partition
from callmesh.acd.runtime.partition import decode_snapshot
from callmesh.core.bus import Bus
from callmesh.core.settings import PlatformSettings
from callmesh.core.store import Store
from callmesh.proto.subjects import AcdOp, Bucket
from callmesh.proto.v1.agent_pb2 import AgentState
from callmesh.proto.v1.call_pb2 import CallAnswered
from callmesh.proto.v1.queue_pb2 import QueueLeaveReason

from .acd_runtime_rig import Rig, agent, call_id, eventually, queue, running

pytestmark = pytest.mark.slow


@pytest.fixture
async def rig(platform_settings: PlatformSettings, bus: Bus, store: Store) -> AsyncIterator[Rig]:
    async with running(platform_settings, bus, store) as r:
        yield r


def config() -> TenantAcdConfig:
    return TenantAcdConfig(
        tenant_id="acme",
        queues={"sales": queue("sales", skill="sales", no_answer_timeout_s=30.0)},
        agents={
            "ann": agent("ann", "1001", sales=3),
            "bob": agent("bob", "1002", sales=3),
        },
    )


async def holder(bus: Bus) -> str:
    kv = await bus.kv(Bucket.LEASES)
    try:
        entry = await kv.get("acd.acme")
    except Exception:
        return ""
    return str(json.loads(entry.value or b"{}").get("holder", "")) if entry.value else ""


async def test_a_clean_stop_hands_the_tenant_over_with_its_calls_and_agents(
    rig: Rig, bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every snapshot takes the big-tenant path (encoded in a thread).
    monkeypatch.setattr(partition, "_THREAD_OVER", 0)
    await rig.configure(config())
    await rig.start_acd("acd-a")
    await eventually(lambda: holder(bus), "acd-a owns the tenant")
    await rig.start_acd("acd-b")
    assert (await rig.agent(AcdOp.AGENT_LOGIN, "ann")).ok
    assert (await rig.agent(AcdOp.AGENT_NOT_READY, "ann", reason="training")).ok
    first, second = call_id(), call_id()
    assert (await rig.enqueue(first, "sales")).ok
    assert (await rig.enqueue(second, "sales")).ok
    before = await rig.live()
    assert before.owner == "acd-a"
    waited = {c.call_id: c.waited_s for c in before.calls}
    # The snapshot is in the acd_state bucket.
    entry = await (await bus.kv(Bucket.ACD_STATE)).get("acme")
    assert entry.value is not None
    doc = decode_snapshot(entry.value)
    assert {c["call_id"] for c in doc["engine"]["calls"]} == {first, second}
    assert doc["owner"] == "acd-a"

    await rig.stop_acd("acd-a")
    after = await rig.live()
    assert after.owner == "acd-b"
    assert after.fencing_token > before.fencing_token
    assert [c.call_id for c in after.calls] == [first, second]
    for c in after.calls:
        assert c.waited_s >= waited[c.call_id]
    (ann,) = after.agents
    assert (ann.agent_id, ann.state, ann.reason) == (
        "ann",
        AgentState.AGENT_STATE_NOT_READY,
        "training",
    )
    # The new owner routes: ann ready → the longest-waiting call is offered under b's token.
    assert (await rig.agent(AcdOp.AGENT_READY, "ann")).ok
    offer = (await eventually(lambda: rig.node.of("originate"), "offered by b"))[0]
    assert offer.call_id == first
    assert offer.fencing_token == after.fencing_token


async def test_the_owner_dies_and_the_survivor_keeps_its_offer_and_replays_the_gap(
    rig: Rig, bus: Bus
) -> None:
    await rig.configure(config())
    rig.node.behaviour["1001"] = "ring"
    await rig.start_acd("acd-a")
    await eventually(lambda: holder(bus), "acd-a owns the tenant")
    await rig.start_acd("acd-b")
    assert (await rig.agent(AcdOp.AGENT_LOGIN, "ann", ready=True)).ok
    offered, waiting, leaving = call_id(), call_id(), call_id()
    enqueued = time.time()
    for call in (offered, waiting, leaving):
        assert (await rig.enqueue(call, "sales")).ok
    old = (await eventually(lambda: rig.node.of("originate"), "ann offered"))[0]
    assert old.call_id == offered

    async def ringing() -> bool:
        return await rig.state("ann") == AgentState.AGENT_STATE_RINGING

    await eventually(ringing, "ann ringing")
    await rig.crash_acd("acd-a")
    # While nobody owns the tenant a caller gives up: the survivor learns it from the stream.
    await rig.caller_hangs_up(leaving)

    async def survivor_owns() -> bool:
        return await holder(bus) == "acd-b"

    await eventually(survivor_owns, "acd-b owns the tenant", 30)
    live = await rig.live()
    assert live.owner == "acd-b"
    assert live.fencing_token > old.fencing_token
    assert [c.call_id for c in live.calls] == [offered, waiting]
    for c in live.calls:
        assert c.waited_s >= time.time() - enqueued - 1.0
    assert list(live.calls[0].offered_to) == ["ann"]
    states = {a.agent_id: a.state for a in live.agents}
    assert states == {"ann": AgentState.AGENT_STATE_RINGING}
    abandoned = await eventually(
        lambda: [
            e
            for e in rig.of("queue_left", reason=QueueLeaveReason.QUEUE_LEAVE_REASON_ABANDONED)
            if e.call_id == leaving
        ],
        "the gap's hang-up replayed",
    )
    assert abandoned[0].source.instance.endswith("acd-b")
    # ann's phone still rings for the old offer; she answers it and the survivor bridges it.
    await rig.node.event(
        offered, call_answered=CallAnswered(channel_uuid=old.originate.channel_uuid)
    )
    bridge = (await eventually(lambda: rig.node.of("bridge"), "bridged by b"))[0]
    assert (bridge.bridge.a_channel_uuid, bridge.bridge.b_channel_uuid) == (
        offered,
        old.originate.channel_uuid,
    )
    assert bridge.fencing_token == live.fencing_token
    # ann was never offered anything else; the waiting call waits for bob.
    assert len(rig.node.originates_to("1001")) == 1
    assert await rig.state("ann") == AgentState.AGENT_STATE_ON_CALL
    assert (await rig.agent(AcdOp.AGENT_LOGIN, "bob", ready=True)).ok
    second = (await eventually(lambda: rig.node.originates_to("1002"), "bob offered"))[0]
    assert second.call_id == waiting
