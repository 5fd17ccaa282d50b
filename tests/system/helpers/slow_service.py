"""A service whose one handler takes a while: proves SIGTERM finishes in-flight work before exit."""

from __future__ import annotations

import asyncio
import sys

from pydantic_settings import SettingsConfigDict

from callmesh.core.bus import Delivery, Subscription
from callmesh.core.runtime import Runtime, ServiceDefinition, run_service
from callmesh.core.settings import ServiceSettings
from callmesh.proto.subjects import Domain


class SlowSettings(ServiceSettings):
    """Settings read from ``CALLMESH_SLOW_…``."""

    model_config = SettingsConfigDict(env_prefix="CALLMESH_SLOW_", extra="ignore")


def table(_runtime: Runtime) -> list[Subscription]:
    """One subscription whose handler announces itself, works 1.5 s, then announces the end."""

    async def slow(delivery: Delivery) -> None:
        sys.stdout.write(f"begin {delivery.event.event_id}\n")
        sys.stdout.flush()
        await asyncio.sleep(1.5)
        sys.stdout.write(f"end {delivery.event.event_id}\n")
        sys.stdout.flush()

    return [Subscription("calls", Domain.CALL, slow)]


if __name__ == "__main__":
    run_service(ServiceDefinition(name="slow", settings=SlowSettings(), subscriptions=table))
