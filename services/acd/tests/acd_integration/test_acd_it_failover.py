"""Two acd replicas; the owner of the tenant dies in the middle of load (no clean release: its
lease must run out) and the other takes over: no call is lost, no agent is offered twice."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callmesh.core.bus import Bus
from callmesh.core.settings import PlatformSettings
from callmesh.fsemu.switch import Channel
from callmesh.fsemu.world.distributions import Fixed
from callmesh.fsemu.world.scenario import PhoneProfile

from .harness import AcdHarness, agent, eventually, queue, running, tenant_config

pytestmark = pytest.mark.slow

AGENTS = 4
CALLS = 8
# Phones ring a while before answering, so offers are in flight when the owner dies.
SLOW_ANSWER = PhoneProfile(ring=Fixed(value=1.5))


@pytest.fixture
async def h(
    platform_settings: PlatformSettings, bus: Bus, tmp_path: Path
) -> AsyncIterator[AcdHarness]:
    async with running(platform_settings, bus, tmp_path) as harness:
        yield harness


async def test_the_owner_dies_mid_load_and_the_other_replica_takes_over(h: AcdHarness) -> None:
    await h.configure(
        tenant_config(
            [queue("sales", skill="sales", no_answer_timeout_s=10.0)],
            [agent(f"agent{i}", f"10{i:02d}", sales=3) for i in range(AGENTS)],
        )
    )
    for i in range(AGENTS):
        h.phone(f"10{i:02d}", SLOW_ANSWER)
    await h.start_acd("acd-a")
    owner = await eventually(h.lease_holder, "a replica owns the tenant")
    await h.start_acd("acd-b")
    assert await h.lease_holder() == owner
    survivor = "acd-b" if owner == "acd-a" else "acd-a"
    for i in range(AGENTS):
        await h.login(f"agent{i}", f"10{i:02d}")
    callers: list[Channel] = []
    enqueued_at: dict[str, float] = {}
    for i in range(CALLS):
        caller = await h.caller(f"+86138000001{i:02d}")
        reply = await h.enqueue(caller, "sales")
        assert reply.ok, reply.message
        callers.append(caller)
        enqueued_at[caller.uuid] = time.monotonic()
    # Offers are out (phones ringing), nobody answered yet: the owner dies now.
    await eventually(lambda: len(h.originates()) >= 2, "offers in flight")
    old_token = h.originates()[0].fencing_token
    answered = {e.call_answered.channel_uuid for e in h.of("call_answered")}
    ringing = [o for o in h.originates() if o.originate.channel_uuid not in answered]
    crashed_at = time.monotonic()
    await h.crash_acd(owner)
    # The scenario holds: offers were ringing, not yet answered, when the owner died.
    assert ringing

    await eventually(lambda: _holder_is(h, survivor), "the survivor owns the tenant", timeout=60)
    # Every call is eventually either with an agent or waiting in the survivor's queue.
    live_ids: set[str] = set()

    async def accounted() -> bool:
        bridged = {e.call_bridged.a_channel_uuid for e in h.of("call_bridged")}
        live = await h.live()
        nonlocal live_ids
        live_ids = {c.call_id for c in live.calls}
        return (
            all(c.uuid in bridged or c.uuid in live_ids for c in callers)
            and len(bridged & {c.uuid for c in callers}) == AGENTS
        )

    await eventually(accounted, "every call answered or waiting", timeout=60)
    asked = time.monotonic()
    live = await h.live()
    assert live.owner == survivor
    assert live.fencing_token > old_token
    for call in live.calls:
        # Waits counted from the original enqueue (before the crash), not from the takeover.
        assert call.waited_s >= asked - crashed_at
        assert call.call_id in enqueued_at
    for caller in callers:
        assert caller.ready, f"call {caller.uuid} was dropped"
    assert all(c.lease == "acd.acme" for c in h.originates())

    # The first four callers hang up: the survivor offers the four waiting calls, with its
    # newer token, and every call of the load has reached an agent.
    bridged_first = {e.call_bridged.a_channel_uuid for e in h.of("call_bridged")}
    for caller in callers:
        if caller.uuid in bridged_first:
            await caller.far_hangup()
    await eventually(
        lambda: (
            {c.uuid for c in callers}
            <= {e.call_bridged.a_channel_uuid for e in h.of("call_bridged")}
        ),
        "every call answered",
        timeout=60,
    )
    newer = [c for c in h.originates() if c.fencing_token > old_token]
    assert newer
    assert {c.call_id for c in newer} >= set(live_ids)
    # No phone ever had two legs at once, no agent two live offers (originates on the bus).
    assert max(h.legs_max.values()) == 1, h.legs_max
    assert h.double_offers() == []
    for caller in callers:
        if caller.ready:
            await caller.far_hangup()


async def _holder_is(h: AcdHarness, instance: str) -> bool:
    return await h.lease_holder() == instance
