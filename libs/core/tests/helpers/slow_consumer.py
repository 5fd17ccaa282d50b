"""A consumer process that takes events and never finishes handling them (killed by the test)."""

from __future__ import annotations

import asyncio
import sys

from callmesh.core.bus import Bus, Delivery, Subscription
from callmesh.core.settings import PlatformSettings
from callmesh.proto.subjects import Domain


async def main() -> None:
    """Consume call events as service ``journal``; print each event id, then hang."""
    bus = Bus(PlatformSettings(), "journal")
    await bus.connect(attempts=5)

    async def handle(delivery: Delivery) -> None:
        sys.stdout.write(f"got {delivery.event.event_id}\n")
        sys.stdout.flush()
        await asyncio.Event().wait()

    await bus.start([Subscription("calls", Domain.CALL, handle, concurrency=4)])
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
