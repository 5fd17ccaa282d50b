"""The asyncio reader hands batches queued meanwhile over as one, markers in their place."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from callmesh.cti.adapters.esl_events import _BATCH, AsyncEventReader, _Lost, _SnapshotBegin


class Sink:
    """Records each call the reader makes, with the batch sizes."""

    def __init__(self) -> None:
        self.log: list[Any] = []
        self.release = asyncio.Event()

    async def on_events(self, batch: Sequence[Mapping[str, str]]) -> None:
        await self.release.wait()
        self.log.append(("events", [e["Unique-ID"] for e in batch]))

    async def on_snapshot_begin(self) -> None:
        self.log.append(("snapshot",))

    async def on_connected(
        self, live: Mapping[str, str] | None, esl_endpoint: str, *, reconnect: bool
    ) -> None:
        self.log.append(("connected",))

    async def on_disconnected(self, reason: str) -> None:
        self.log.append(("lost", reason))


def _batch(*ids: str) -> list[dict[str, str]]:
    return [{"Unique-ID": i} for i in ids]


async def test_queued_batches_merge_up_to_the_limit_and_markers_keep_their_place() -> None:
    sink = Sink()
    reader = AsyncEventReader(sink, "127.0.0.1", 9, "x")
    queue = reader._queue
    big = [{"Unique-ID": f"b{i}"} for i in range(_BATCH)]
    consumer = asyncio.create_task(reader._consume())
    try:
        await queue.put(_batch("a"))  # taken at once; the sink holds it until released
        await asyncio.sleep(0)
        for item in (_batch("b", "c"), _batch("d"), _SnapshotBegin(), _batch("e"), big):
            await queue.put(item)
        await queue.put(_Lost("gone"))
        await queue.put(_batch("f"))
        sink.release.set()
        async with asyncio.timeout(10):
            while len(sink.log) < 6:  # noqa: ASYNC110 - plain state
                await asyncio.sleep(0.01)
        assert sink.log[0] == ("events", ["a"])
        assert sink.log[1] == ("events", ["b", "c", "d"])
        assert sink.log[2] == ("snapshot",)
        # "e" and the big batch would exceed the limit together: two hand-overs.
        assert sink.log[3] == ("events", ["e"])
        assert sink.log[4] == ("events", [e["Unique-ID"] for e in big])
        assert sink.log[5] == ("lost", "gone")
        async with asyncio.timeout(10):
            while len(sink.log) < 7:  # noqa: ASYNC110 - plain state
                await asyncio.sleep(0.01)
        assert sink.log[6] == ("events", ["f"])
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
