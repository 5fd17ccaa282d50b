"""Node heartbeats: ``NodeHeartbeat`` into the ``nodes`` KV bucket (key = node id) and the bus."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from callmesh.core.bus import Bus
from callmesh.core.errors import DomainError
from callmesh.proto.subjects import Bucket
from callmesh.proto.v1.node_pb2 import NodeHeartbeat

log = logging.getLogger(__name__)


class Heartbeat:
    """Writes the node's heartbeat every few seconds, and at once when the socket changes."""

    def __init__(
        self,
        bus: Bus,
        node_id: str,
        *,
        site: str,
        version: str,
        interval_s: float,
        state: Callable[[], tuple[bool, int, int]],
    ) -> None:
        self._bus = bus
        self._node_id = node_id
        self._site = site
        self._version = version
        self._interval_s = interval_s
        self._state = state
        self._started = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()
        self.beats = 0

    def current(self) -> NodeHeartbeat:
        """The heartbeat as of now."""
        connected, channels, calls = self._state()
        return NodeHeartbeat(
            node_id=self._node_id,
            site=self._site,
            version=self._version,
            esl_connected=connected,
            channels=channels,
            calls=calls,
            uptime_s=int(time.monotonic() - self._started),
        )

    async def beat(self) -> NodeHeartbeat:
        """Write one heartbeat now."""
        beat = self.current()
        kv = await self._bus.kv(Bucket.NODES)
        await kv.put(self._node_id, beat.SerializeToString())
        event = self._bus.new_event(node_id=self._node_id)
        event.node_heartbeat.CopyFrom(beat)
        await self._bus.publish(event)
        self.beats += 1
        return beat

    def kick(self) -> None:
        """Beat now (the socket came up or went down)."""
        self._kick.set()

    def start(self) -> None:
        """Start beating."""
        self._task = asyncio.create_task(self._run(), name="cti-heartbeat")

    async def stop(self) -> None:
        """Stop beating."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.beat()
            except (DomainError, OSError, TimeoutError) as err:
                log.warning("heartbeat not written: %s", err)
            except Exception:  # never stop beating
                log.exception("heartbeat failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self._interval_s)
            self._kick.clear()
