"""An agent who does not answer (RONA) and a caller who hangs up while the agent's phone rings,
through the emulator: no agent and no call is left stuck."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callmesh.core.bus import Bus
from callmesh.core.settings import PlatformSettings
from callmesh.proto.v1.agent_pb2 import AgentState, NoAnswerReason
from callmesh.proto.v1.queue_pb2 import QueueLeaveReason

from .harness import NO_ANSWER, AcdHarness, agent, eventually, queue, running, tenant_config

pytestmark = pytest.mark.slow


@pytest.fixture
async def h(
    platform_settings: PlatformSettings, bus: Bus, tmp_path: Path
) -> AsyncIterator[AcdHarness]:
    async with running(platform_settings, bus, tmp_path) as harness:
        await harness.configure(
            tenant_config(
                [queue("sales", skill="sales", no_answer_timeout_s=2.0, no_answer_reason="rona")],
                [agent("ann", "1001", sales=3), agent("bob", "1002", sales=3)],
            )
        )
        yield harness


async def test_an_agent_who_does_not_answer_goes_not_ready_and_the_call_goes_to_the_next(
    h: AcdHarness,
) -> None:
    h.phone("1001", NO_ANSWER)
    h.phone("1002")
    await h.start_acd("acd-1")
    await h.login("ann", "1001")
    caller = await h.caller("+8613800000010")
    assert (await h.enqueue(caller, "sales")).ok
    first = await eventually(lambda: h.originates_to("1001"), "ann offered")
    # Ann's phone rings out; only then does bob log in (so the first offer is surely ann's).
    await h.wait_event("call_ringing", first[0].originate.channel_uuid)
    assert await h.agent_state("ann") == AgentState.AGENT_STATE_RINGING
    await h.login("bob", "1002")
    await h.wait_event("call_bridged", caller.uuid)
    assert [o.call_id for o in h.originates_to("1002")] == [caller.uuid]
    missed = (await h.wait_event("agent_no_answer", agent_id="ann"))[0].agent_no_answer
    assert missed.reason == NoAnswerReason.NO_ANSWER_REASON_TIMEOUT
    live = {a.agent_id: a for a in (await h.live(calls=False)).agents}
    assert live["ann"].state == AgentState.AGENT_STATE_NOT_READY
    assert live["ann"].reason == "rona"
    assert live["bob"].state == AgentState.AGENT_STATE_ON_CALL
    # Ann's leg is gone; she was offered the call once and not again.
    assert not h.channel_alive(first[0].originate.channel_uuid)
    assert len(h.originates_to("1001")) == 1
    await caller.far_hangup()


async def test_a_caller_hanging_up_during_the_offer_stops_the_ringing_and_frees_the_agent(
    h: AcdHarness,
) -> None:
    h.phone("1001", NO_ANSWER)
    await h.start_acd("acd-1")
    # A long offer timeout: the caller gives up well before the agent's phone would time out.
    await h.configure(
        tenant_config(
            [queue("sales", skill="sales", no_answer_timeout_s=60.0)],
            [agent("ann", "1001", sales=3)],
        )
    )
    await h.login("ann", "1001")
    caller = await h.caller("+8613800000011")
    assert (await h.enqueue(caller, "sales")).ok
    offer = (await eventually(lambda: h.originates_to("1001"), "ann offered"))[0]
    leg = offer.originate.channel_uuid
    await h.wait_event("call_ringing", leg)
    await caller.far_hangup()
    hung = (await h.wait_event("call_hung_up", leg))[0].call_hung_up
    assert hung.cause in ("ORIGINATOR_CANCEL", "NORMAL_CLEARING")
    assert not h.channel_alive(leg)
    await eventually(
        lambda: h.agent_is("ann", AgentState.AGENT_STATE_READY), "ann ready again at once"
    )
    left = (await h.wait_event("queue_left", call_id=caller.uuid))[0].queue_left
    assert left.reason == QueueLeaveReason.QUEUE_LEAVE_REASON_ABANDONED
    assert h.of("agent_no_answer", agent_id="ann") == []
    assert (await h.live()).calls == []
