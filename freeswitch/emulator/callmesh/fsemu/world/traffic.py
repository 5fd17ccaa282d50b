"""Poisson traffic: inbound callers arriving at a rate, with drawn holding times and patience."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from callmesh.fsemu.world.callers import CallerScript
from callmesh.fsemu.world.scenario import DigitStep, TrafficSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlannedCall:
    """One arrival of a traffic generator, drawn in arrival order (so a seed replays it)."""

    number: str
    caller: str
    script: CallerScript


def caller_number(pattern: str, rng: random.Random) -> str:
    """``+1555xxxxxxx`` → each ``x`` a random digit."""
    return "".join(str(rng.randrange(10)) if ch == "x" else ch for ch in pattern)


def plan_call(spec: TrafficSpec, rng: random.Random) -> PlannedCall:
    """Draw the next caller of ``spec``: number, caller id, digit script, patience, holding."""
    number = spec.numbers[rng.randrange(len(spec.numbers))]
    steps: tuple[DigitStep, ...] = ()
    if spec.scripts:
        script = rng.choices(spec.scripts, weights=[s.weight for s in spec.scripts])[0]
        steps = tuple(script.steps)
    patience = spec.patience.sample(rng) if spec.patience is not None else None
    holding = spec.holding.sample(rng)
    return PlannedCall(
        number=number,
        caller=caller_number(spec.callers, rng),
        script=CallerScript(steps=steps, patience_s=patience, talk_s=holding),
    )


def arrival_gaps(rate: float, rng: random.Random) -> Callable[[], float]:
    """Exponential gaps between arrivals of a Poisson process of ``rate`` per second."""
    return lambda: rng.expovariate(rate)


# Arrivals placed back to back, at most, before yielding to the event loop when behind schedule.
MAX_BURST = 32

PlaceCall = Callable[[TrafficSpec, PlannedCall], Awaitable[object]]


class TrafficGenerator:
    """Places ``spec.rate`` calls per simulated second (Poisson) until stopped."""

    def __init__(
        self, spec: TrafficSpec, rng: random.Random, speed: float, place: PlaceCall
    ) -> None:
        self.spec = spec
        self.rng = rng
        self.speed = speed
        self.place = place
        self.started = 0
        self.failed = 0
        self.outcomes: Counter[str] = Counter()
        self.task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether arrivals are still being generated."""
        return self.task is not None and not self.task.done()

    def start(self, offset_s: float = 0.0) -> None:
        """Start generating; ``offset_s`` is how far into the scenario we are already."""
        self.task = asyncio.get_running_loop().create_task(
            self._run(offset_s), name=f"fsemu-traffic-{self.spec.name}"
        )

    async def stop(self) -> None:
        """Stop generating arrivals (calls in progress carry on)."""
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def describe(self) -> dict[str, object]:
        """A JSON-friendly view for the control API."""
        return {
            "name": self.spec.name,
            "rate": self.spec.rate,
            "running": self.running,
            "started": self.started,
            "failed": self.failed,
            "outcomes": dict(self.outcomes),
        }

    def count_outcome(self, task: asyncio.Task[Any]) -> None:
        """Done-callback of a caller this generator placed: count how it ended."""
        if task.cancelled():
            self.outcomes["cancelled"] += 1
        elif task.exception() is not None:
            self.outcomes["failed"] += 1
        else:
            self.outcomes[str(task.result())] += 1

    async def _run(self, offset_s: float) -> None:
        loop = asyncio.get_running_loop()
        gap = arrival_gaps(self.spec.rate, self.rng)
        # Arrivals are scheduled on an absolute simulated timeline, so a late wake-up does not
        # lower the rate: the next arrival is due at the sum of the gaps, not after this one.
        origin = loop.time() - offset_s / self.speed
        due = max(self.spec.start, offset_s)
        burst = 0
        while True:
            due += gap()
            if self.spec.stop is not None and due >= self.spec.stop:
                return
            if self.spec.max_calls is not None and self.started >= self.spec.max_calls:
                return
            wait = origin + due / self.speed - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                burst = 0
            elif burst >= MAX_BURST:
                # Behind schedule: placing a call never suspends, so catch-up arrivals go in
                # bursts with a yield between them, not starving the calls already running.
                await asyncio.sleep(0)
                burst = 0
            burst += 1
            planned = plan_call(self.spec, self.rng)
            self.started += 1
            try:
                await self.place(self.spec, planned)
            except Exception:
                self.failed += 1
                log.exception("traffic %s: placing a call failed", self.spec.name)
