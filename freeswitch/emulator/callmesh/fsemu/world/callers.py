"""Scripted inbound callers: dial a number, press digits on cue, give up after a patience."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from callmesh.fsemu.world.legs import hung_up_within
from callmesh.fsemu.world.scenario import CallerSpec, DigitStep

if TYPE_CHECKING:
    from callmesh.fsemu.switch import Channel, Switch

log = logging.getLogger(__name__)

CallerOutcome = Literal["completed", "abandoned", "ended_by_switch", "failed"]
# Events after which a channel is gone for the router (its per-channel state is dropped).
_GONE = "CHANNEL_DESTROY"
# The only events the router reads.
ROUTED_EVENTS = frozenset({"PLAYBACK_START", "CHANNEL_BRIDGE", "CUSTOM", _GONE})


@dataclass(frozen=True)
class CallerScript:
    """One caller's whole behaviour, drawn before the call (so a seed replays it)."""

    steps: tuple[DigitStep, ...] = ()
    # Seconds the caller waits to reach someone (a bridge); None: forever.
    patience_s: float | None = 120.0
    # Seconds of talk once bridged, then the caller hangs up; None: waits for the far side.
    talk_s: float | None = 30.0

    @classmethod
    def from_spec(cls, spec: CallerSpec, rng: random.Random) -> CallerScript:
        """Draw the patience and talk time of a scenario caller."""
        return cls(
            steps=tuple(spec.digits),
            patience_s=spec.patience.sample(rng) if spec.patience is not None else None,
            talk_s=spec.talk.sample(rng) if spec.talk is not None else None,
        )


@dataclass
class ChannelWatch:
    """What the router has seen of one channel: prompts started, bridged or not."""

    prompts: int = 0
    bridged: asyncio.Event = field(default_factory=asyncio.Event)
    prompt_callbacks: list[tuple[int, Callable[[], None]]] = field(default_factory=list)


class EventRouter:
    """One switch listener that keeps, per live channel, the few facts callers wait on."""

    def __init__(self) -> None:
        self.watches: dict[str, ChannelWatch] = {}

    def watch(self, uuid: str) -> ChannelWatch:
        """The watch of ``uuid`` (created on first use)."""
        found = self.watches.get(uuid)
        if found is None:
            found = self.watches[uuid] = ChannelWatch()
        return found

    def on_prompt(self, uuid: str, n: int, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the ``n``-th prompt starts on ``uuid`` (now if it already has)."""
        watch = self.watch(uuid)
        if watch.prompts >= n:
            callback()
        else:
            watch.prompt_callbacks.append((n, callback))

    def handle(self, name: str, subclass: str | None, get: Callable[[str], Any]) -> None:
        """Update the watches from one event (``get`` reads a header)."""
        if name == "PLAYBACK_START":
            watch = self.watches.get(get("Unique-ID") or "")
            if watch is None:
                return
            watch.prompts += 1
            due = [cb for n, cb in watch.prompt_callbacks if n == watch.prompts]
            watch.prompt_callbacks = [
                (n, cb) for n, cb in watch.prompt_callbacks if n > watch.prompts
            ]
            for callback in due:
                callback()
        elif name == "CHANNEL_BRIDGE":
            for header in ("Unique-ID", "Bridge-A-Unique-ID", "Bridge-B-Unique-ID"):
                watch = self.watches.get(get(header) or "")
                if watch is not None:
                    watch.bridged.set()
        elif name == "CUSTOM" and subclass == "conference::maintenance":
            if get("Action") == "add-member":
                watch = self.watches.get(get("Unique-ID") or "")
                if watch is not None:
                    watch.bridged.set()
        elif name == _GONE:
            self.watches.pop(get("Unique-ID") or "", None)


class Caller:
    """Plays a CallerScript on the caller's side of an inbound channel."""

    def __init__(
        self, switch: Switch, router: EventRouter, channel: Channel, script: CallerScript
    ) -> None:
        self.switch = switch
        self.router = router
        self.channel = channel
        self.script = script
        self.watch = router.watch(channel.uuid)
        self._digit_tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> CallerOutcome:
        """Press the digits, wait to be connected, talk, hang up; return what happened."""
        try:
            self._schedule_digits()
            return await self._converse()
        finally:
            for task in self._digit_tasks:
                task.cancel()
            await asyncio.gather(*self._digit_tasks, return_exceptions=True)

    async def _converse(self) -> CallerOutcome:
        hangup = asyncio.ensure_future(self.channel.wait_hangup())
        bridged = asyncio.ensure_future(self.watch.bridged.wait())
        waiters: set[asyncio.Future[Any]] = {hangup, bridged}
        timer: asyncio.Future[None] | None = None
        if self.script.patience_s is not None:
            timer = asyncio.ensure_future(self.switch.sleep(self.script.patience_s))
            waiters.add(timer)
        try:
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waiters:
                if task is not hangup and not task.done():
                    task.cancel()
        if hangup in done:
            return "ended_by_switch"
        if bridged in done:
            hangup.cancel()
            await asyncio.gather(hangup, return_exceptions=True)
            if self.script.talk_s is None:
                await self.channel.wait_hangup()
                return "completed"
            if not await hung_up_within(self.switch, self.channel, self.script.talk_s):
                await self.channel.far_hangup("NORMAL_CLEARING")
            return "completed"
        hangup.cancel()
        await asyncio.gather(hangup, return_exceptions=True)
        await self.channel.far_hangup("NORMAL_CLEARING")
        return "abandoned"

    def _schedule_digits(self) -> None:
        for step in self.script.steps:
            if step.at is not None:
                self._spawn(self._press(step.digits, step.at))
            elif step.on_prompt is not None:
                digits, delay = step.digits, step.delay
                self.router.on_prompt(
                    self.channel.uuid,
                    step.on_prompt,
                    lambda d=digits, s=delay: self._spawn(self._press(d, s)),  # type: ignore[misc]
                )

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._digit_tasks.add(task)
        task.add_done_callback(self._digit_tasks.discard)

    async def _press(self, digits: str, after_s: float) -> None:
        if after_s > 0 and await hung_up_within(self.switch, self.channel, after_s):
            return
        try:
            await self.channel.far_dtmf(digits)
        except Exception:  # the channel may have gone between the check and the press
            log.debug("dtmf %s on %s not sent", digits, self.channel.uuid, exc_info=True)
