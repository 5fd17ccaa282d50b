"""The world around the switch: phones, carriers, callers and traffic, wired to one Switch."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING

from callmesh.fsemu.world.callers import (
    ROUTED_EVENTS,
    Caller,
    CallerOutcome,
    CallerScript,
    EventRouter,
)
from callmesh.fsemu.world.carriers import Carriers
from callmesh.fsemu.world.phones import Phone, PhoneBook
from callmesh.fsemu.world.scenario import CallerSpec, CarrierSpec, Scenario, TrafficSpec
from callmesh.fsemu.world.stats import Stats
from callmesh.fsemu.world.traffic import PlannedCall, TrafficGenerator

if TYPE_CHECKING:
    from callmesh.fsemu.events import Event
    from callmesh.fsemu.model import DialTarget
    from callmesh.fsemu.switch import Channel, Switch

log = logging.getLogger(__name__)


class TrafficExists(ValueError):
    """A traffic generator of that name is already running."""


class World:
    """Everything outside the switch: it answers the legs the switch dials and places calls."""

    def __init__(self, switch: Switch, *, seed: int | None = None) -> None:
        self.switch = switch
        self.seed = seed
        # Every random draw of the world comes from generators seeded from this one.
        self.rng = random.Random(seed if seed is not None else switch.rng.getrandbits(64))
        self.router = EventRouter()
        self.stats = Stats()
        self.phones = PhoneBook(switch, random.Random(self.rng.getrandbits(64)))
        self.carriers = Carriers(switch, seed if seed is not None else self.rng.getrandbits(64))
        self.traffic: dict[str, TrafficGenerator] = {}
        self.caller_outcomes: Counter[str] = Counter()
        self.scenario: Scenario | None = None
        self._calls: set[asyncio.Task[CallerOutcome]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._unsubscribe = switch.subscribe(self._on_event)
        switch.set_dial_handler(self.dial)

    # --- events -------------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        # Called for every event the switch fires: read headers only where needed (``get``
        # indexes the whole header list on first use).
        name = event.name
        cause = event.get("Hangup-Cause") if name == "CHANNEL_HANGUP_COMPLETE" else None
        self.stats.count(name, event.subclass, cause)
        if name in ROUTED_EVENTS:
            self.router.handle(name, event.subclass, event.get)

    # --- the far side of legs the switch dials ------------------------------------------------

    async def dial(self, channel: Channel, target: DialTarget) -> None:
        """The switch's dial handler: phones for ``user/…``, carriers for gateways."""
        if target.kind == "user":
            await self._dial_user(channel, target)
        elif target.kind == "gateway" and target.gateway in self.carriers.specs:
            await self.carriers.answer_leg(target.gateway, target.number, channel)
        elif target.kind == "gateway":
            await channel.far_hangup("INVALID_GATEWAY")
        elif target.kind == "sofia" and self._phone_for(target) is not None:
            await self._dial_user(channel, target)
        elif target.kind == "error":
            await channel.far_hangup(target.number.upper() or "NORMAL_CLEARING")
        else:
            # loopback and anything else: a far end that answers at once.
            await channel.far_answer()

    def _phone_for(self, target: DialTarget) -> Phone | None:
        if target.domain:
            return self.phones.find(target.user, target.domain)
        # ``user/1001`` without a domain: FreeSWITCH uses its default domain; the world has no
        # such thing, so a user name that only one phone has is enough.
        found = [p for p in self.phones.phones.values() if p.user == target.user]
        return found[0] if len(found) == 1 else None

    async def _dial_user(self, channel: Channel, target: DialTarget) -> None:
        phone = self._phone_for(target)
        if phone is None or phone.state != "registered":
            await channel.far_hangup("USER_NOT_REGISTERED")
            return
        await self.phones.answer_leg(phone, channel)

    def add_carrier(self, spec: CarrierSpec) -> None:
        """Add a carrier; its gateway is declared to the switch (unknown ones: INVALID_GATEWAY)."""
        self.carriers.add(spec)
        self.switch.gateways[spec.gateway] = "REGED"

    # --- calls into the switch ----------------------------------------------------------------

    async def place_call(
        self,
        *,
        number: str,
        caller: str,
        script: CallerScript,
        caller_name: str = "",
        variables: Mapping[str, str] | None = None,
        network_addr: str = "127.0.0.1",
        profile: str = "external",
        context: str = "public",
    ) -> Channel:
        """Dial ``number`` as an inbound caller playing ``script``; returns the new channel."""
        channel, _ = await self._start_caller(
            number=number,
            caller=caller,
            script=script,
            caller_name=caller_name,
            variables=variables,
            network_addr=network_addr,
            profile=profile,
            context=context,
        )
        return channel

    async def _start_caller(
        self,
        *,
        number: str,
        caller: str,
        script: CallerScript,
        caller_name: str = "",
        variables: Mapping[str, str] | None = None,
        network_addr: str = "127.0.0.1",
        profile: str = "external",
        context: str = "public",
    ) -> tuple[Channel, asyncio.Task[CallerOutcome]]:
        channel = await self.switch.inbound_call(
            caller_number=caller,
            destination_number=number,
            caller_name=caller_name,
            profile=profile,
            network_addr=network_addr,
            variables=variables,
            context=context,
        )
        caller_ = Caller(self.switch, self.router, channel, script)
        task = asyncio.get_running_loop().create_task(
            caller_.run(), name=f"fsemu-caller-{channel.uuid}"
        )
        self._calls.add(task)
        task.add_done_callback(self._call_done)
        return channel, task

    async def phone_call(self, phone: Phone, destination: str) -> Channel:
        """The phone dials ``destination`` (an inbound leg on its SIP profile, like FreeSWITCH)."""
        variables = {"user_name": phone.user, "sip_user_agent": phone.user_agent}
        return await self.switch.inbound_call(
            caller_number=phone.user,
            destination_number=destination,
            caller_name=phone.user,
            profile=phone.sip_profile,
            network_addr=phone.network_ip,
            variables=variables,
            context="default",
            domain=phone.domain,
        )

    def _call_done(self, task: asyncio.Task[CallerOutcome]) -> None:
        self._calls.discard(task)
        if task.cancelled():
            return
        err = task.exception()
        if err is not None:
            self.caller_outcomes["failed"] += 1
            log.error("caller failed", exc_info=err)
        else:
            self.caller_outcomes[task.result()] += 1

    # --- traffic ------------------------------------------------------------------------------

    def start_traffic(self, spec: TrafficSpec, offset_s: float = 0.0) -> TrafficGenerator:
        """Start a Poisson generator; its draws come from its own seeded generator."""
        current = self.traffic.get(spec.name)
        if current is not None and current.running:
            raise TrafficExists(spec.name)
        generator = TrafficGenerator(
            spec, random.Random(self.rng.getrandbits(64)), self.switch.speed, self._place_planned
        )
        self.traffic[spec.name] = generator
        generator.start(offset_s)
        return generator

    async def stop_traffic(self, name: str | None = None) -> None:
        """Stop one generator by name, or all of them."""
        for key, generator in list(self.traffic.items()):
            if name is None or key == name:
                await generator.stop()

    async def _place_planned(self, spec: TrafficSpec, planned: PlannedCall) -> None:
        _, task = await self._start_caller(
            number=planned.number,
            caller=planned.caller,
            script=planned.script,
            variables=spec.variables or None,
        )
        generator = self.traffic.get(spec.name)
        if generator is not None:
            task.add_done_callback(generator.count_outcome)

    # --- scenarios ----------------------------------------------------------------------------

    async def load(self, scenario: Scenario) -> None:
        """Apply a scenario: phones (registered), carriers, dialplan, callers and traffic.

        Refused whole (TrafficExists) if one of its generators is already running.
        """
        for traffic in scenario.traffic:
            current = self.traffic.get(traffic.name)
            if current is not None and current.running:
                raise TrafficExists(traffic.name)
        self.scenario = scenario
        if scenario.dialplan is not None:
            self.switch.set_dialplan(
                {n: [(s.app, s.data) for s in steps] for n, steps in scenario.dialplan.items()}
            )
        for group, profile in scenario.phone_groups():
            for phone in self.phones.add_group(group, profile):
                if group.registers and phone.state != "registered":
                    self.phones.register(phone)
        for carrier in scenario.carriers:
            self.add_carrier(carrier)
        for caller in scenario.callers:
            self._spawn(self._scripted_caller(caller))
        for traffic in scenario.traffic:
            self.start_traffic(traffic)
        if scenario.duration is not None:
            self._spawn(self._end_after(scenario.duration))

    async def _scripted_caller(self, spec: CallerSpec) -> None:
        rng = random.Random(self.rng.getrandbits(64))
        script = CallerScript.from_spec(spec, rng)
        if spec.at > 0:
            await self.switch.sleep(spec.at)
        await self.place_call(
            number=spec.number,
            caller=spec.caller,
            caller_name=spec.caller_name,
            script=script,
            variables=spec.variables or None,
            network_addr=spec.network_addr,
        )

    async def _end_after(self, duration: float) -> None:
        await self.switch.sleep(duration)
        await self.stop_traffic()

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- lifecycle ----------------------------------------------------------------------------

    def describe_calls(self) -> dict[str, object]:
        """Callers in progress and their outcomes so far."""
        return {"in_progress": len(self._calls), "outcomes": dict(self.caller_outcomes)}

    async def close(self) -> None:
        """Stop traffic and scripted callers, cancel the phones' refreshers, leave the switch."""
        await self.stop_traffic()
        self.phones.stop()
        pending = [*self._tasks, *self._calls]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._unsubscribe()
