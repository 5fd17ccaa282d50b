"""Overflow through the emulator: a call waiting too long moves to another queue (keeping its
wait), a full queue announces and releases the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callmesh.acd.domain.config import OverflowKind, OverflowReason, OverflowTarget
from callmesh.core.bus import Bus
from callmesh.core.settings import PlatformSettings
from callmesh.proto.v1.acd_pb2 import AcdErrorCode
from callmesh.proto.v1.queue_pb2 import OverflowReason as ProtoOverflowReason

from .harness import AcdHarness, agent, eventually, queue, running, tenant_config

pytestmark = pytest.mark.slow


@pytest.fixture
async def h(
    platform_settings: PlatformSettings, bus: Bus, tmp_path: Path
) -> AsyncIterator[AcdHarness]:
    async with running(platform_settings, bus, tmp_path) as harness:
        yield harness


async def test_a_call_waiting_past_max_wait_moves_to_the_overflow_queue_with_its_wait(
    h: AcdHarness,
) -> None:
    to_support = OverflowTarget(OverflowKind.QUEUE, "support")
    await h.configure(
        tenant_config(
            [
                queue(
                    "sales",
                    skill="sales",
                    max_wait_s=2.0,
                    overflow={OverflowReason.MAX_WAIT: to_support},
                ),
                queue("support", skill="support"),
            ],
            [agent("ann", "1001", sales=3), agent("bob", "1002", support=3)],
        )
    )
    h.phone("1001")
    h.phone("1002")
    await h.start_acd("acd-1")
    # Ann of sales is logged in but not ready; bob of support is ready.
    await h.login("ann", "1001", ready=False)
    await h.login("bob", "1002")
    caller = await h.caller("+8613800000020")
    reply = await h.enqueue(caller, "sales")
    assert (reply.ok, reply.queue_id) == (True, "sales")
    moved = (await h.wait_event("queue_overflowed", call_id=caller.uuid))[0]
    assert moved.queue_overflowed.queue_id == "sales"
    assert moved.queue_overflowed.reason == ProtoOverflowReason.OVERFLOW_REASON_MAX_WAIT
    assert moved.queue_overflowed.target_id == "support"
    await h.wait_event("call_bridged", caller.uuid)
    assert [o.call_id for o in h.originates_to("1002")] == [caller.uuid]
    assert h.originates_to("1001") == []
    entered = h.of("queue_entered", call_id=caller.uuid)
    assert [e.queue_entered.queue_id for e in entered] == ["sales", "support"]
    # The wait goes on from the first entry: the same enqueue time in both queues.
    assert entered[0].queue_entered.enqueued_at == entered[1].queue_entered.enqueued_at
    await caller.far_hangup()


async def test_a_full_queue_announces_and_releases_the_caller(h: AcdHarness) -> None:
    full = OverflowTarget(OverflowKind.ANNOUNCEMENT, "acd/queue_full")
    await h.configure(
        tenant_config(
            [
                queue(
                    "sales", skill="sales", max_length=1, overflow={OverflowReason.MAX_LENGTH: full}
                )
            ],
            [agent("ann", "1001", sales=3)],
        )
    )
    await h.start_acd("acd-1")
    first = await h.caller("+8613800000021")
    second = await h.caller("+8613800000022")
    assert (await h.enqueue(first, "sales")).ok
    refused = await h.enqueue(second, "sales")
    assert not refused.ok
    assert refused.error_code == AcdErrorCode.ACD_ERROR_CODE_OVERFLOWED
    overflowed = (await h.wait_event("queue_overflowed", call_id=second.uuid))[0]
    assert overflowed.queue_overflowed.reason == ProtoOverflowReason.OVERFLOW_REASON_MAX_LENGTH
    # The announcement is played to the second caller, who is then released.
    await eventually(
        lambda: any("queue_full" in f for p in h.sent("play", second.uuid) for f in p.play.files),
        "the announcement sent",
    )
    await h.wait_event("call_hung_up", second.uuid)
    assert h.channel_alive(first.uuid)
    assert [c.call_id for c in (await h.live()).calls] == [first.uuid]


async def test_a_queue_outside_its_business_hours_announces_and_releases_the_caller(
    platform_settings: PlatformSettings, bus: Bus, tmp_path: Path
) -> None:
    async with running(platform_settings, bus, tmp_path, with_admin=True) as h:
        never_open = await h.calendar("never open", {})
        closed = OverflowTarget(OverflowKind.ANNOUNCEMENT, "acd/closed")
        await h.configure(
            tenant_config(
                [
                    queue(
                        "sales",
                        skill="sales",
                        calendar_id=never_open,
                        overflow={OverflowReason.CLOSED: closed},
                    )
                ],
                [agent("ann", "1001", sales=3)],
            )
        )
        h.phone("1001")
        await h.start_acd("acd-1")
        await h.login("ann", "1001")
        caller = await h.caller("+8613800000023")
        reply = await h.enqueue(caller, "sales")
        assert not reply.ok
        assert reply.error_code == AcdErrorCode.ACD_ERROR_CODE_OVERFLOWED
        moved = (await h.wait_event("queue_overflowed", call_id=caller.uuid))[0]
        assert moved.queue_overflowed.reason == ProtoOverflowReason.OVERFLOW_REASON_CLOSED
        await h.wait_event("call_hung_up", caller.uuid)
        # Ann was ready all along and never offered the call.
        assert h.originates() == []
