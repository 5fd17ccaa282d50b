"""Partition leases on a real nats-server: one owner, takeover within the TTL, growing tokens."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from callmesh.core.bus import Bus
from callmesh.core.leases import FencingGuard, LeaseGrant, LeaseManager
from callmesh.core.settings import PlatformSettings
from callmesh.core.testing import settings_env

HELPERS = Path(__file__).parent / "helpers"
KEY = "acd.acme"


class Recorder:
    """Collects a manager's gains and losses."""

    def __init__(self) -> None:
        self.grants: list[LeaseGrant] = []
        self.losses: list[str] = []
        self.gained = asyncio.Event()
        self.lost = asyncio.Event()

    async def on_gained(self, grant: LeaseGrant) -> None:
        self.grants.append(grant)
        self.gained.set()

    async def on_lost(self, grant: LeaseGrant, why: str) -> None:
        self.losses.append(why)
        self.lost.set()


async def test_two_contenders_get_one_owner(bus: Bus, platform_settings: PlatformSettings) -> None:
    other_bus = Bus(platform_settings, "acd")
    await other_bus.connect(attempts=3)
    a, b = LeaseManager(bus, "a"), LeaseManager(other_bus, "b")
    ra, rb = Recorder(), Recorder()
    try:
        a.claim(KEY, ra.on_gained, ra.on_lost)
        b.claim(KEY, rb.on_gained, rb.on_lost)
        await asyncio.wait_for(
            asyncio.wait(
                [asyncio.ensure_future(ra.gained.wait()), asyncio.ensure_future(rb.gained.wait())],
                return_when=asyncio.FIRST_COMPLETED,
            ),
            10,
        )
        # Several renewal periods later there is still exactly one owner.
        await asyncio.sleep(platform_settings.lease_ttl_s * 1.5)
        owners = [m for m in (a, b) if m.grant(KEY) is not None]
        assert len(owners) == 1
        assert len(ra.grants) + len(rb.grants) == 1
        assert not ra.losses
        assert not rb.losses
    finally:
        await a.stop()
        await b.stop()
        await other_bus.close()


async def test_a_killed_owner_is_replaced_within_the_ttl_and_the_token_grows(
    bus: Bus, platform_settings: PlatformSettings
) -> None:
    victim = subprocess.Popen(  # noqa: ASYNC220 — the owner must be a process we can SIGKILL
        [sys.executable, str(HELPERS / "lease_holder.py"), KEY],
        stdout=subprocess.PIPE,
        env={**os.environ, **settings_env(platform_settings)},
        text=True,
    )
    heir = LeaseManager(bus, "heir")
    seen = Recorder()
    try:
        assert victim.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(victim.stdout.readline), 20)
        assert line.startswith("gained ")
        victim_token = int(line.split()[1])
        heir.claim(KEY, seen.on_gained, seen.on_lost)
        await asyncio.sleep(platform_settings.lease_ttl_s)
        assert heir.grant(KEY) is None, "nobody takes a lease its owner keeps renewing"
        victim.kill()
        killed_at = time.monotonic()
        # The bound the design promises: another replica owns within TTL + 1 s of the death.
        await asyncio.wait_for(seen.gained.wait(), platform_settings.lease_ttl_s + 1.0)
        assert time.monotonic() - killed_at <= platform_settings.lease_ttl_s + 1.0
        assert seen.grants[0].token > victim_token
        assert seen.grants[0].holder == "heir"
    finally:
        victim.kill()
        victim.wait()
        await heir.stop()


async def test_a_released_lease_is_taken_at_once_not_after_the_ttl(
    bus: Bus, platform_settings: PlatformSettings
) -> None:
    first, second = LeaseManager(bus, "first"), LeaseManager(bus, "second")
    r1, r2 = Recorder(), Recorder()
    first.claim(KEY, r1.on_gained, r1.on_lost)
    await asyncio.wait_for(r1.gained.wait(), 10)
    second.claim(KEY, r2.on_gained, r2.on_lost)
    await asyncio.sleep(0.2)
    released_at = time.monotonic()
    await first.release(KEY)
    assert r1.losses == ["released"]
    await asyncio.wait_for(r2.gained.wait(), platform_settings.lease_ttl_s)
    assert time.monotonic() - released_at < platform_settings.lease_ttl_s
    assert r2.grants[0].token > r1.grants[0].token
    await second.stop()
    assert r2.losses == ["released"]


async def test_an_owner_cut_off_from_nats_gives_up_before_anyone_else_can_own(
    bus: Bus, platform_settings: PlatformSettings
) -> None:
    isolated_bus = Bus(platform_settings, "acd")
    await isolated_bus.connect(attempts=3)
    isolated, heir = LeaseManager(isolated_bus, "isolated"), LeaseManager(bus, "heir")
    ri, rh = Recorder(), Recorder()
    isolated.claim(KEY, ri.on_gained, ri.on_lost)
    await asyncio.wait_for(ri.gained.wait(), 10)
    heir.claim(KEY, rh.on_gained, rh.on_lost)
    # Cut the owner off without a goodbye: its renewals now fail.
    await isolated_bus.nc.close()
    await asyncio.wait_for(rh.gained.wait(), platform_settings.lease_ttl_s + 2)
    # By the time the heir owns, the isolated owner has already declared its lease lost.
    assert ri.lost.is_set()
    assert ri.losses
    assert ri.losses[0].startswith("could not renew")
    assert isolated.grant(KEY) is None
    assert rh.grants[0].token > ri.grants[0].token
    await heir.stop()
    await isolated.stop()


def test_the_fencing_guard_refuses_tokens_older_than_the_newest_seen() -> None:
    guard = FencingGuard()
    assert guard.admit("acd.acme", 7)
    assert guard.admit("acd.acme", 7), "the current owner may send more commands"
    assert guard.admit("acd.acme", 12)
    assert not guard.admit("acd.acme", 7), "the old owner is fenced off"
    assert guard.admit("outbound.acme", 3), "leases are fenced independently"
    assert guard.highest("acd.acme") == 12
