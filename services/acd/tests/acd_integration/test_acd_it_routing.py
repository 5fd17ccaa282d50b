"""Calls through the emulator reach the ACD and the right agent: waiting with music and position,
skill routing and the bridge, the sticky agent."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callmesh.acd.domain.config import StickyConfig
from callmesh.core.bus import Bus
from callmesh.core.settings import PlatformSettings
from callmesh.proto.v1.agent_pb2 import AgentState
from callmesh.proto.v1.switch_pb2 import SwitchCommand

from .harness import (
    AcdHarness,
    agent,
    eventually,
    queue,
    running,
    tenant_config,
)

pytestmark = pytest.mark.slow


@pytest.fixture
async def h(
    platform_settings: PlatformSettings, bus: Bus, tmp_path: Path
) -> AsyncIterator[AcdHarness]:
    async with running(platform_settings, bus, tmp_path) as harness:
        yield harness


async def agent_state(h: AcdHarness, agent_id: str) -> int:
    """The agent's state in the owner's live view (LOGGED_OUT when absent)."""
    return await h.agent_state(agent_id)


async def test_waiting_calls_hear_their_position_then_music_until_an_agent_is_ready(
    h: AcdHarness,
) -> None:
    await h.configure(
        tenant_config([queue("sales", skill="sales")], [agent("ann", "1001", sales=3)])
    )
    h.phone("1001")
    await h.start_acd("acd-1")
    first = await h.caller("+8613800000001")
    second = await h.caller("+8613800000002")
    one = await h.enqueue(first, "sales")
    two = await h.enqueue(second, "sales")
    assert (one.ok, one.queue_id, one.position) == (True, "sales", 1)
    assert (two.ok, two.position) == (True, 2)
    for caller in (first, second):
        # A prompt (the position) first, then the music on hold looping.
        uuid = caller.uuid
        plays = await eventually(functools.partial(plays_of, h, uuid), "prompts then moh sent")
        assert not plays[0].play.loop
        assert plays[-1].play.loop
        assert any("moh" in f for f in plays[-1].play.files)
        await eventually(functools.partial(hears_moh, h, uuid), "the switch plays moh")
        assert "moh" not in h.played(caller.uuid)[0]
    waiting = (await h.live()).calls
    assert [(c.call_id, c.position) for c in waiting] == [(first.uuid, 1), (second.uuid, 2)]
    # Nobody was offered anything while nobody was logged in.
    assert h.originates() == []

    await h.login("ann", "1001")
    await h.wait_event("call_bridged", first.uuid)
    offer = h.originates_to("1001")[0]
    assert offer.call_id == first.uuid
    assert offer.originate.variables["callmesh_role"] == "agent"
    assert offer.lease == "acd.acme"
    assert offer.fencing_token > 0
    # The second caller keeps waiting, now first in line.
    assert [(c.call_id, c.position) for c in (await h.live()).calls] == [(second.uuid, 1)]
    assert h.channel_alive(second.uuid)


async def test_the_agent_with_the_skill_gets_the_call_and_is_bridged_to_it(
    h: AcdHarness,
) -> None:
    await h.configure(
        tenant_config(
            [queue("sales", skill="sales"), queue("support", skill="support")],
            [agent("ann", "1001", sales=5), agent("bob", "1002", support=4)],
        )
    )
    h.phone("1001")
    h.phone("1002")
    await h.start_acd("acd-1")
    await h.login("ann", "1001")
    await h.login("bob", "1002")
    caller = await h.caller("+8613800000003")
    reply = await h.enqueue(caller, "support")
    assert reply.ok, reply.message
    bridged = (await h.wait_event("call_bridged", caller.uuid))[0].call_bridged
    offer = h.originates_to("1002")[0]
    assert bridged.b_channel_uuid == offer.originate.channel_uuid
    assert h.originates_to("1001") == []
    assert await agent_state(h, "bob") == AgentState.AGENT_STATE_ON_CALL
    assert await agent_state(h, "ann") == AgentState.AGENT_STATE_READY
    await h.wait_event("agent_answered", agent_id="bob")

    # The caller hangs up: the agent's leg ends and bob (no wrap-up) is ready again.
    await caller.far_hangup()
    await h.wait_event("call_hung_up", offer.originate.channel_uuid)
    await eventually(lambda: _all_ready(h, ("bob",)), "bob ready again")


async def test_a_caller_who_calls_again_goes_to_the_agent_who_served_them(
    h: AcdHarness,
) -> None:
    sticky = StickyConfig(within_s=3600.0, wait_s=30.0)
    await h.configure(
        tenant_config(
            [queue("sales", skill="sales", sticky=sticky)],
            [agent("ann", "1001", sales=3), agent("bob", "1002", sales=3)],
        )
    )
    h.phone("1001")
    h.phone("1002")
    await h.start_acd("acd-1")
    await h.login("ann", "1001")
    await h.login("bob", "1002")
    number = "+8613800000004"
    first = await h.caller(number)
    assert (await h.enqueue(first, "sales")).ok
    await h.wait_event("call_bridged", first.uuid)
    served_by = h.originates()[0].originate.endpoint.user
    other = "1002" if served_by == "1001" else "1001"
    await first.far_hangup()
    await h.wait_event("call_hung_up", h.originates()[0].originate.channel_uuid)
    # Both ready now; the other agent has been idle longer, so only stickiness picks served_by.
    await eventually(
        lambda: _all_ready(h, ("ann", "bob")), "both agents ready after the first call"
    )
    again = await h.caller(number)
    assert (await h.enqueue(again, "sales")).ok
    await h.wait_event("call_bridged", again.uuid)
    offers = [o for o in h.originates() if o.call_id == again.uuid]
    assert [o.originate.endpoint.user for o in offers] == [served_by]
    assert not [o for o in h.originates_to(other) if o.call_id == again.uuid]
    await again.far_hangup()


def plays_of(h: AcdHarness, channel_uuid: str) -> list[SwitchCommand]:
    """The Play commands sent for a channel once there are two (prompts, then music)."""
    plays = h.sent("play", channel_uuid)
    return plays if len(plays) >= 2 else []


def hears_moh(h: AcdHarness, channel_uuid: str) -> bool:
    """Whether the switch started the music on hold on the channel."""
    return any("moh" in path for path in h.played(channel_uuid))


async def _all_ready(h: AcdHarness, agents: tuple[str, ...]) -> bool:
    states = {a.agent_id: a.state for a in (await h.live(calls=False)).agents}
    return all(states.get(a) == AgentState.AGENT_STATE_READY for a in agents)
