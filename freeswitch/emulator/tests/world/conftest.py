"""A real switch, its Event Socket on a real port, the world around it and a client reading ALL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from callmesh.core.esl import EslEvent
from callmesh.fsemu.esl_inbound import start_esl_server
from callmesh.fsemu.media import write_silence
from callmesh.fsemu.switch import Switch
from callmesh.fsemu.world.eslclient import EslClient
from callmesh.fsemu.world.world import World

PASSWORD = "ClueCon"
# Fast enough that a 1 s ring or a 30 s talk take milliseconds; tests never assert on time.
SPEED = 1000.0


@dataclass
class Env:
    """What a world test works with."""

    switch: Switch
    world: World
    client: EslClient
    port: int
    prompt: Path
    events: list[EslEvent] = field(default_factory=list)
    _waiters: list[tuple[Callable[[EslEvent], bool], asyncio.Future[EslEvent]]] = field(
        default_factory=list
    )

    def on_event(self, event: EslEvent) -> None:
        """Record every event the client reads; wake whoever waits for it."""
        self.events.append(event)
        for waiter in list(self._waiters):
            predicate, future = waiter
            if not future.done() and predicate(event):
                future.set_result(event)
                self._waiters.remove(waiter)

    async def wait_for(
        self, predicate: Callable[[EslEvent], bool], timeout: float = 10.0
    ) -> EslEvent:
        """The first event (already read or to come) that matches."""
        for event in self.events:
            if predicate(event):
                return event
        future: asyncio.Future[EslEvent] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        return await asyncio.wait_for(future, timeout)

    def named(self, name: str, **headers: str) -> list[EslEvent]:
        """Events read so far with that name (or CUSTOM subclass) and those header values."""
        return [e for e in self.events if matches(e, name, **headers)]


def matches(event: EslEvent, name: str, **headers: str) -> bool:
    """Whether ``event`` is ``name`` (Event-Name or CUSTOM subclass) with these headers."""
    if event.name != name and event.subclass != name:
        return False
    return all(event.get(k.replace("_", "-")) == v for k, v in headers.items())


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    """A switch at high speed with its Event Socket, a world and an ALL-events client."""
    prompt = tmp_path / "prompt.wav"
    write_silence(prompt, 1.0)
    switch = Switch(hostname="fsemu-test", speed=SPEED, seed=7, media_dir=tmp_path)
    world = World(switch, seed=7)
    server = await start_esl_server(switch, "127.0.0.1", 0, PASSWORD)
    port = server.port
    box: list[Env] = []
    client = await EslClient.connect(
        "127.0.0.1", port, PASSWORD, on_event=lambda e: box[0].on_event(e)
    )
    env = Env(switch, world, client, port, prompt)
    box.append(env)
    await client.command("event plain ALL")
    try:
        yield env
    finally:
        await world.close()
        await client.close()
        await server.close()
        await switch.close()
