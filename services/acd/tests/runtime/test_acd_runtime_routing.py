"""The acd runtime drives calls through switch commands: waiting with prompts and music, the
fenced originate, the bridge, RONA, the caller hanging up during an offer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from callmesh.acd.domain.config import Announcements, TenantAcdConfig
from callmesh.core.bus import Bus
from callmesh.core.settings import PlatformSettings
from callmesh.core.store import Store
from callmesh.proto.subjects import AcdOp
from callmesh.proto.v1.agent_pb2 import AgentState, NoAnswerReason
from callmesh.proto.v1.queue_pb2 import QueueLeaveReason
from callmesh.proto.v1.switch_pb2 import BroadcastLeg

from .acd_runtime_rig import NODE, Rig, agent, call_id, eventually, queue, running

pytestmark = pytest.mark.slow


@pytest.fixture
async def rig(platform_settings: PlatformSettings, bus: Bus, store: Store) -> AsyncIterator[Rig]:
    async with running(platform_settings, bus, store) as r:
        yield r


def config(*agents: tuple[str, str]) -> TenantAcdConfig:
    return TenantAcdConfig(
        tenant_id="acme",
        queues={"sales": queue("sales", skill="sales")},
        agents={a: agent(a, user, sales=3) for a, user in agents},
    )


async def test_a_call_waits_with_prompts_and_music_then_is_offered_and_bridged(rig: Rig) -> None:
    await rig.configure(config(("ann", "1001")))
    await rig.start_acd("acd-1")
    call = call_id()
    reply = await rig.enqueue(call, "sales", caller_number="+8613800000001")
    assert (reply.ok, reply.queue_id, reply.position) == (True, "sales", 1)
    assert reply.estimated_wait_s > 0
    plays = await eventually(lambda: len(rig.node.of("play")) >= 2 and rig.node.of("play"), "plays")
    assert plays[0].play.channel_uuid == call
    assert plays[0].play.files[0] == "acd/en/position.wav"
    assert not plays[0].play.loop
    assert list(plays[1].play.files) == ["moh/default.wav"]
    assert plays[1].play.loop
    assert rig.node.of("originate") == []

    login = await rig.agent(AcdOp.AGENT_LOGIN, "ann", ready=True)
    assert login.ok, login.message
    bridge = (await eventually(lambda: rig.node.of("bridge"), "bridged"))[0]
    offer = rig.node.of("originate")[0]
    assert offer.lease == "acd.acme"
    assert offer.fencing_token > 0
    assert offer.tenant_id == "acme"
    assert offer.call_id == call
    assert offer.originate.endpoint.user == "1001"
    assert offer.originate.application == "park"
    assert offer.originate.answer_timeout_s == 3
    assert offer.originate.caller_id.number == "+8613800000001"
    variables = dict(offer.originate.variables)
    assert variables["callmesh_role"] == "agent"
    assert variables["callmesh_tenant"] == "acme"
    assert variables["callmesh_call_id"] == call
    assert variables["callmesh_offer_id"] == offer.originate.channel_uuid
    assert (bridge.bridge.a_channel_uuid, bridge.bridge.b_channel_uuid) == (
        call,
        offer.originate.channel_uuid,
    )
    assert all(
        c.lease == "acd.acme" and c.fencing_token == offer.fencing_token for c in rig.node.commands
    )
    # The music stopped before the bridge.
    kinds = [c.WhichOneof("command") for c in rig.node.commands if c.call_id == call]
    assert kinds.index("stop_media") < kinds.index("bridge")
    await eventually(lambda: rig.state("ann"), "live")
    assert await rig.state("ann") == AgentState.AGENT_STATE_ON_CALL
    await eventually(
        lambda: rig.of("queue_left", reason=QueueLeaveReason.QUEUE_LEAVE_REASON_ANSWERED),
        "left answered",
    )
    await eventually(lambda: rig.of("agent_answered", agent_id="ann"), "agent_answered")
    assert (await rig.live()).calls == []

    # The caller hangs up: no wrap-up, so ann is ready again.
    await rig.caller_hangs_up(call)

    async def ready() -> bool:
        return await rig.state("ann") == AgentState.AGENT_STATE_READY

    await eventually(ready, "ann ready after the call")


async def test_an_offer_that_fails_puts_the_agent_not_ready_and_the_call_goes_to_another(
    rig: Rig,
) -> None:
    await rig.configure(config(("ann", "1001"), ("bob", "1002")))
    rig.node.behaviour["1001"] = "NO_ANSWER"
    await rig.start_acd("acd-1")
    assert (await rig.agent(AcdOp.AGENT_LOGIN, "ann", ready=True)).ok
    assert (await rig.agent(AcdOp.AGENT_LOGIN, "bob", ready=True)).ok
    # ann has been idle longest: she gets the first offer.
    call = call_id()
    assert (await rig.enqueue(call, "sales")).ok
    await eventually(lambda: rig.node.of("bridge"), "bridged")
    assert [c.originate.endpoint.user for c in rig.node.of("originate")] == ["1001", "1002"]
    assert (
        rig.node.of("bridge")[0].bridge.b_channel_uuid
        == rig.node.originates_to("1002")[0].originate.channel_uuid
    )
    no_answer = await eventually(lambda: rig.of("agent_no_answer", agent_id="ann"), "no answer")
    assert no_answer[0].agent_no_answer.reason == NoAnswerReason.NO_ANSWER_REASON_TIMEOUT
    assert no_answer[0].call_id == call
    live = {a.agent_id: a for a in (await rig.live()).agents}
    assert live["ann"].state == AgentState.AGENT_STATE_NOT_READY
    assert live["ann"].reason == "no_answer"
    assert live["bob"].state == AgentState.AGENT_STATE_ON_CALL


async def test_a_caller_hanging_up_during_the_offer_stops_the_ringing_and_frees_the_agent(
    rig: Rig,
) -> None:
    await rig.configure(config(("ann", "1001")))
    rig.node.behaviour["1001"] = "ring"
    await rig.start_acd("acd-1")
    assert (await rig.agent(AcdOp.AGENT_LOGIN, "ann", ready=True)).ok
    call = call_id()
    assert (await rig.enqueue(call, "sales")).ok
    offer = (await eventually(lambda: rig.node.of("originate"), "offered"))[0]
    leg = offer.originate.channel_uuid

    async def ringing() -> bool:
        return await rig.state("ann") == AgentState.AGENT_STATE_RINGING

    await eventually(ringing, "ann ringing")
    await rig.caller_hangs_up(call)
    hangup = await eventually(
        lambda: [c for c in rig.node.of("hangup") if c.hangup.channel_uuid == leg], "offer hung up"
    )
    assert hangup[0].hangup.cause == "ORIGINATOR_CANCEL"

    async def ready() -> bool:
        return await rig.state("ann") == AgentState.AGENT_STATE_READY

    await eventually(ready, "ann ready at once")
    left = await eventually(lambda: rig.of("queue_left"), "left")
    assert left[0].queue_left.reason == QueueLeaveReason.QUEUE_LEAVE_REASON_ABANDONED
    assert rig.of("agent_no_answer") == []
    assert len(rig.node.of("originate")) == 1
    assert all(c.WhichOneof("command") != "bridge" for c in rig.node.commands)
    assert NODE


async def test_the_agent_id_greeting_is_played_to_the_caller_once_bridged(rig: Rig) -> None:
    greeting = Announcements(moh="moh/default", agent_id_greeting=True, languages=("en",))
    await rig.configure(
        TenantAcdConfig(
            tenant_id="acme",
            queues={"sales": queue("sales", skill="sales", announcements=greeting)},
            agents={"ann": agent("ann", "1001", sales=3)},
        )
    )
    await rig.start_acd("acd-1")
    assert (await rig.agent(AcdOp.AGENT_LOGIN, "ann", ready=True)).ok
    call = call_id()
    assert (await rig.enqueue(call, "sales")).ok
    casts = await eventually(
        lambda: len(rig.node.of("broadcast")) >= 2 and rig.node.of("broadcast"), "greeting"
    )
    kinds = [c.WhichOneof("command") for c in rig.node.commands if c.call_id == call]
    assert kinds.index("bridge") < kinds.index("broadcast")
    assert [(c.broadcast.channel_uuid, c.broadcast.file) for c in casts] == [
        (call, "acd/en/agent_id.wav"),
        (call, "phrase:callmesh_say:ann"),
    ]
    assert all(c.broadcast.leg == BroadcastLeg.BROADCAST_LEG_A for c in casts)
