"""The far side of a leg, played from a plan: ring, then answer or refuse, then talk or wait."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callmesh.fsemu.switch import Channel, Switch


@dataclass(frozen=True)
class LegPlan:
    """What the far end of a leg will do, decided before the leg starts (so a seed replays)."""

    # Seconds between the offer and the final answer (answer or refusal).
    ring_s: float = 0.0
    # Whether it sends 180/183 at all (a busy phone answers 486 without ringing).
    ring: bool = True
    early_media: bool = False
    answer: bool = False
    # Refusal cause when not answering; None with answer False: ring until the other side gives up.
    cause: str | None = None
    # Seconds of talk after answering before this side hangs up; None: wait for the other side.
    talk_s: float | None = None


async def hung_up_within(switch: Switch, channel: Channel, seconds: float) -> bool:
    """Wait up to ``seconds`` (simulated) for the channel to hang up; True if it did."""
    hangup = asyncio.ensure_future(channel.wait_hangup())
    if seconds <= 0:
        await asyncio.sleep(0)
        if not hangup.done():
            hangup.cancel()
            await asyncio.gather(hangup, return_exceptions=True)
            return False
        return True
    timer = asyncio.ensure_future(switch.sleep(seconds))
    try:
        done, _ = await asyncio.wait({hangup, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (hangup, timer):
            if not task.done():
                task.cancel()
        await asyncio.gather(hangup, timer, return_exceptions=True)
    return hangup in done


async def drive_leg(switch: Switch, channel: Channel, plan: LegPlan) -> None:
    """Play ``plan`` on the far side of ``channel`` until the leg ends."""
    if plan.ring:
        await channel.far_ring(early_media=plan.early_media)
    if not plan.answer and plan.cause is None:
        await channel.wait_hangup()
        return
    if await hung_up_within(switch, channel, plan.ring_s):
        return
    if not plan.answer:
        await channel.far_hangup(plan.cause or "NORMAL_CLEARING")
        return
    await channel.far_answer()
    if plan.talk_s is None:
        await channel.wait_hangup()
        return
    if not await hung_up_within(switch, channel, plan.talk_s):
        await channel.far_hangup("NORMAL_CLEARING")
