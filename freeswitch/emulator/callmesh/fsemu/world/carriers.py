"""Simulated carriers behind ``sofia/gateway/<gw>/<number>``: humans, machines, busy, no answer."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from callmesh.fsemu.world.legs import LegPlan, drive_leg, hung_up_within
from callmesh.fsemu.world.scenario import CarrierSpec, Outcome

if TYPE_CHECKING:
    from callmesh.fsemu.switch import Channel, Switch

# What mod_avmd reports when it hears the beep (mod_avmd.c, avmd_fire_event): the event and the
# channel variable; ``amd_result``/``amd_cause`` are what mod_amd sets (HUMAN|MACHINE|NOTSURE).
AVMD_BEEP = "avmd::beep"
BEEP_HZ = 1000.0


@dataclass(frozen=True)
class CarrierPlan:
    """What the called number does, decided before the leg starts."""

    outcome: Outcome
    leg: LegPlan
    # For a machine: greeting before the beep, then how long it records before hanging up.
    greeting_s: float = 0.0
    message_s: float = 0.0


def plan_carrier_leg(spec: CarrierSpec, number: str, rng: random.Random) -> CarrierPlan:
    """Draw the outcome of a call to ``number`` (fixed per number if the spec names it)."""
    outcome = spec.numbers.get(number)
    if outcome is None:
        outcomes, weights = zip(*spec.outcomes.weights(), strict=True)
        outcome = rng.choices(outcomes, weights=weights)[0]
    ring = spec.ring.sample(rng)
    if outcome == "human":
        talk = spec.talk.sample(rng) if spec.talk is not None else None
        leg = LegPlan(ring_s=ring, early_media=spec.early_media, answer=True, talk_s=talk)
        return CarrierPlan(outcome, leg)
    if outcome == "machine":
        greeting, message = spec.greeting.sample(rng), spec.message.sample(rng)
        leg = LegPlan(ring_s=ring, early_media=spec.early_media, answer=True, talk_s=None)
        return CarrierPlan(outcome, leg, greeting_s=greeting, message_s=message)
    if outcome == "no_answer":
        return CarrierPlan(outcome, LegPlan(ring_s=0.0, early_media=spec.early_media))
    refuse = spec.refuse_after.sample(rng)
    cause = "USER_BUSY" if outcome == "busy" else "UNALLOCATED_NUMBER"
    # A carrier signals busy/invalid with early media (tones/announcement) before the 486/404.
    return CarrierPlan(
        outcome, LegPlan(ring_s=refuse, ring=spec.early_media, early_media=True, cause=cause)
    )


def beep_headers(channel: Channel, detection_ms: int) -> list[tuple[str, str]]:
    """The headers of ``avmd::beep`` as mod_avmd fires them (Unique-ID first)."""
    return [
        ("Unique-ID", channel.uuid),
        ("Call-command", "avmd"),
        ("Beep-Status", "DETECTED"),
        ("Frequency", f"{BEEP_HZ:f}"),
        ("Frequency-variance", f"{0.0:f}"),
        ("Amplitude", f"{0.5:f}"),
        ("Amplitude-variance", f"{0.0:f}"),
        ("Detection-time", str(detection_ms)),
    ]


def attempt_rng(seed: int | None, gateway: str, number: str, attempt: int) -> random.Random:
    """The generator of the ``attempt``-th call to a number: the same seed draws the same
    outcomes whatever order the calls are placed in."""
    return random.Random(f"{seed}:{gateway}:{number}:{attempt}")


class UnknownGateway(LookupError):
    """No simulated carrier has that gateway name."""


class Carriers:
    """The world's carriers, by gateway name; each dialled number draws its outcome."""

    def __init__(self, switch: Switch, seed: int | None) -> None:
        self.switch = switch
        self.seed = seed
        self.specs: dict[str, CarrierSpec] = {}
        self.outcomes: Counter[str] = Counter()
        self._attempts: Counter[tuple[str, str]] = Counter()

    def add(self, spec: CarrierSpec) -> None:
        """Add or replace the carrier of ``spec.gateway``."""
        self.specs[spec.gateway] = spec

    def rng_for(self, gateway: str, number: str) -> random.Random:
        """The generator of the next attempt to ``number`` through ``gateway``."""
        self._attempts[(gateway, number)] += 1
        return attempt_rng(self.seed, gateway, number, self._attempts[(gateway, number)])

    async def answer_leg(self, gateway: str, number: str, channel: Channel) -> None:
        """Drive the far side of a leg dialled out through ``gateway``."""
        spec = self.specs.get(gateway)
        if spec is None:
            raise UnknownGateway(gateway)
        plan = plan_carrier_leg(spec, number, self.rng_for(gateway, number))
        self.outcomes[plan.outcome] += 1
        channel.set_var("callmesh_sim_outcome", plan.outcome)
        if plan.outcome != "machine":
            if plan.outcome == "human":
                channel.set_var("amd_result", "HUMAN")
                channel.set_var("amd_cause", "HUMAN")
            await drive_leg(self.switch, channel, plan.leg)
            return
        await self._answering_machine(channel, plan)

    async def _answering_machine(self, channel: Channel, plan: CarrierPlan) -> None:
        """Answer, play a greeting, beep (mod_avmd's event and variables), record, hang up."""
        await channel.far_ring(early_media=plan.leg.early_media)
        if await hung_up_within(self.switch, channel, plan.leg.ring_s):
            return
        await channel.far_answer()
        if await hung_up_within(self.switch, channel, plan.greeting_s):
            return
        channel.set_var("amd_result", "MACHINE")
        channel.set_var("amd_cause", "LONGGREETING")
        channel.set_var("avmd_detect", "TRUE")
        channel.set_var("avmd_total_time", f"[{int(plan.greeting_s * 1000)}]")
        self.switch.fire_custom(AVMD_BEEP, beep_headers(channel, int(plan.greeting_s * 1000)))
        if not await hung_up_within(self.switch, channel, plan.message_s):
            await channel.far_hangup("NORMAL_CLEARING")
