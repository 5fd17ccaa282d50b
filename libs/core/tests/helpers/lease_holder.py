"""A process that takes a lease and holds it until killed (the test kills it with SIGKILL)."""

from __future__ import annotations

import asyncio
import sys

from callmesh.core.bus import Bus
from callmesh.core.leases import LeaseGrant, LeaseManager
from callmesh.core.settings import PlatformSettings


async def main(key: str) -> None:
    """Claim ``key`` as holder ``victim``; print the token when gained."""
    bus = Bus(PlatformSettings(), "acd")
    await bus.connect(attempts=5)
    manager = LeaseManager(bus, "victim")

    async def gained(grant: LeaseGrant) -> None:
        sys.stdout.write(f"gained {grant.token}\n")
        sys.stdout.flush()

    async def lost(grant: LeaseGrant, why: str) -> None:
        sys.stdout.write(f"lost {why}\n")
        sys.stdout.flush()

    manager.claim(key, gained, lost)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
