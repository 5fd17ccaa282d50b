"""Simulated SIP phones: they register per tenant domain and answer, refuse or ring by profile."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from callmesh.fsemu.world.legs import LegPlan, drive_leg
from callmesh.fsemu.world.scenario import PhoneGroup, PhoneProfile
from callmesh.fsemu.world.sip import sip_cause

if TYPE_CHECKING:
    from callmesh.fsemu.switch import Channel, Switch

log = logging.getLogger(__name__)

PhoneState = Literal["registered", "unregistered", "offline", "expired"]
# A phone refreshes its registration when this share of the expiry has passed (most phones
# re-register at half-time for short expiries, a little before the end for long ones).
REFRESH_RATIO = 0.5
FIRST_PORT = 5060


def plan_phone_leg(profile: PhoneProfile, rng: random.Random, *, busy_now: bool = False) -> LegPlan:
    """What a phone with ``profile`` does with a new call (decided up front, from ``rng``)."""
    ring = profile.ring.sample(rng)
    if busy_now:
        return LegPlan(ring_s=0.0, ring=False, early_media=False, cause="USER_BUSY")
    if profile.behaviour == "answer":
        talk = profile.talk.sample(rng) if profile.talk is not None else None
        return LegPlan(ring_s=ring, early_media=profile.early_media, answer=True, talk_s=talk)
    if profile.behaviour == "no_answer":
        # Rings until the originator gives up (originate timeout, caller hangs up).
        return LegPlan(ring_s=0.0, early_media=profile.early_media, cause=None)
    cause = sip_cause(profile.refusal_code())
    return LegPlan(ring_s=ring, ring=ring > 0, early_media=False, cause=cause)


@dataclass
class Phone:
    """One simulated SIP phone (a user of a tenant domain)."""

    user: str
    domain: str
    profile: PhoneProfile
    profile_name: str
    sip_profile: str
    expires: int
    user_agent: str
    network_ip: str
    network_port: int
    call_id: str
    rng: random.Random
    state: PhoneState = "unregistered"
    active_calls: int = 0
    calls_offered: int = 0
    registrations: int = 0
    refresher: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        """``user@domain``."""
        return f"{self.user}@{self.domain}"

    @property
    def contact_uri(self) -> str:
        """The URI of the Contact the phone registers."""
        return f"sip:{self.user}@{self.network_ip}:{self.network_port}"

    @property
    def contact(self) -> str:
        """The Contact as mod_sofia reports it (``"user" <sip:…>``)."""
        return f'"{self.user}" <{self.contact_uri}>'

    def describe(self) -> dict[str, object]:
        """A JSON-friendly view for the control API."""
        return {
            "user": self.user,
            "domain": self.domain,
            "state": self.state,
            "profile": self.profile_name,
            "behaviour": self.profile.behaviour,
            "expires": self.expires,
            "contact": self.contact,
            "active_calls": self.active_calls,
            "calls_offered": self.calls_offered,
            "registrations": self.registrations,
        }


class UnknownPhone(LookupError):
    """No simulated phone has that ``user@domain``."""


class PhoneBook:
    """Every simulated phone of the world: registration lifecycles and behaviour on a call."""

    def __init__(self, switch: Switch, rng: random.Random) -> None:
        self.switch = switch
        self.rng = rng
        self.phones: dict[str, Phone] = {}
        self._next_port = FIRST_PORT
        self.on_change: Callable[[Phone], None] | None = None

    def add(
        self,
        user: str,
        domain: str,
        profile: PhoneProfile,
        *,
        profile_name: str = "custom",
        sip_profile: str = "internal",
        expires: int = 3600,
        user_agent: str = "callmesh-fsemu-phone/1.0",
        network_ip: str = "127.0.0.1",
    ) -> Phone:
        """Create (or update the profile of) the phone ``user@domain``; it is not registered yet."""
        key = f"{user}@{domain.lower()}"
        existing = self.phones.get(key)
        if existing is not None:
            existing.profile = profile
            existing.profile_name = profile_name
            return existing
        self._next_port += 2
        # Each phone draws from its own generator, seeded from the book's, so a seed replays.
        rng = random.Random(self.rng.getrandbits(64))
        phone = Phone(
            user=user,
            domain=domain.lower(),
            profile=profile,
            profile_name=profile_name,
            sip_profile=sip_profile,
            expires=expires,
            user_agent=user_agent,
            network_ip=network_ip,
            network_port=self._next_port,
            call_id=f"{rng.getrandbits(64):016x}@{network_ip}",
            rng=rng,
        )
        self.phones[key] = phone
        return phone

    def add_group(self, group: PhoneGroup, profile: PhoneProfile) -> list[Phone]:
        """Create every phone of a scenario group."""
        name = group.profile if isinstance(group.profile, str) else "inline"
        return [
            self.add(
                user,
                group.domain,
                profile,
                profile_name=name,
                sip_profile=group.sip_profile,
                expires=group.expires,
                user_agent=group.user_agent,
                network_ip=group.network_ip,
            )
            for user in group.extensions()
        ]

    def get(self, key: str) -> Phone:
        """The phone ``user@domain``, or UnknownPhone."""
        phone = self.phones.get(_normal_key(key))
        if phone is None:
            raise UnknownPhone(key)
        return phone

    def find(self, user: str, domain: str) -> Phone | None:
        """The phone ``user@domain`` if the world has it."""
        return self.phones.get(f"{user}@{domain.lower()}")

    def register(self, phone: Phone) -> None:
        """REGISTER now (fires ``sofia::register``) and keep refreshing before expiry."""
        self._send_register(phone)
        self._cancel_refresher(phone)
        phone.refresher = asyncio.get_running_loop().create_task(
            self._refresh(phone), name=f"fsemu-phone-{phone.key}"
        )

    def unregister(self, phone: Phone) -> None:
        """REGISTER with expires 0 (fires ``sofia::unregister``) and stop refreshing."""
        self._cancel_refresher(phone)
        if phone.state != "registered" and phone.state != "offline":
            return
        # The switch's table fires sofia::unregister (expires 0).
        self.switch.registrations.unregister(phone.user, phone.domain)
        phone.state = "unregistered"
        self._changed(phone)

    def go_offline(self, phone: Phone) -> None:
        """The phone vanishes without unregistering: ``sofia::expire`` fires when it runs out."""
        if phone.state != "registered":
            return
        self._cancel_refresher(phone)
        phone.state = "offline"
        phone.refresher = asyncio.get_running_loop().create_task(
            self._expire(phone), name=f"fsemu-phone-expire-{phone.key}"
        )
        self._changed(phone)

    def set_profile(self, phone: Phone, profile: PhoneProfile, name: str = "custom") -> None:
        """Change how the phone behaves on its next call."""
        phone.profile = profile
        phone.profile_name = name
        self._changed(phone)

    def stop(self) -> None:
        """Cancel every refresher (the phones stay registered in the switch)."""
        for phone in self.phones.values():
            self._cancel_refresher(phone)

    async def answer_leg(self, phone: Phone, channel: Channel) -> None:
        """Drive the far side of a leg dialled to ``phone`` by its profile."""
        phone.calls_offered += 1
        max_calls = phone.profile.max_calls
        busy_now = max_calls is not None and phone.active_calls >= max_calls
        plan = plan_phone_leg(phone.profile, phone.rng, busy_now=busy_now)
        phone.active_calls += 1
        try:
            await drive_leg(self.switch, channel, plan)
        finally:
            phone.active_calls -= 1

    def _send_register(self, phone: Phone) -> None:
        # The switch's table fires sofia::register with mod_sofia's header set and order.
        self.switch.registrations.register(
            phone.user,
            phone.domain,
            contact=phone.contact_uri,
            expires=phone.expires,
            network_ip=phone.network_ip,
            network_port=str(phone.network_port),
            user_agent=phone.user_agent,
            profile=phone.sip_profile,
            call_id=phone.call_id,
        )
        phone.state = "registered"
        phone.registrations += 1
        self._changed(phone)

    async def _refresh(self, phone: Phone) -> None:
        while True:
            await self.switch.sleep(phone.expires * REFRESH_RATIO)
            if phone.state != "registered":
                return
            self._send_register(phone)

    async def _expire(self, phone: Phone) -> None:
        await self.switch.sleep(phone.expires)
        if phone.state != "offline":
            return
        # The switch's table fires sofia::expire.
        self.switch.registrations.expire(phone.user, phone.domain)
        phone.state = "expired"
        self._changed(phone)

    def _cancel_refresher(self, phone: Phone) -> None:
        task, phone.refresher = phone.refresher, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _changed(self, phone: Phone) -> None:
        if self.on_change is not None:
            self.on_change(phone)


def _normal_key(key: str) -> str:
    user, _, domain = key.partition("@")
    return f"{user}@{domain.lower()}"
