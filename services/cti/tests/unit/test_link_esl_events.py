"""The asyncio event reader against a scripted switch on the real wire (no gevent, no bus)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

from callmesh.core.esl import (
    api_response_frame,
    command_reply_frame,
    event_frame,
    serialize_event_plain,
)
from callmesh.cti.adapters.esl_events import AsyncEventReader
from callmesh.cti.adapters.esl_parse import EVENTS_SUBSCRIBE_COMMAND


def create(uuid: str) -> bytes:
    return event_frame(
        serialize_event_plain(
            [
                ("Event-Name", "CHANNEL_CREATE"),
                ("Unique-ID", uuid),
                ("Caller-Caller-ID-Name", "A B"),
            ]
        )
    )


class Switch:
    """Answers the handshake; writes ``before`` right after the subscription's reply and
    ``after`` after the snapshot; logs every command it got."""

    def __init__(self, before: bytes, after: bytes, live: str) -> None:
        self.before, self.after, self.live = before, after, live
        self.commands: list[str] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def start(self) -> asyncio.Server:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        writer.write(b"Content-Type: auth/request\n\n")
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                command = (await reader.readuntil(b"\n\n")).decode().strip()
                self.commands.append(command)
                if command.startswith("auth"):
                    writer.write(command_reply_frame("+OK accepted"))
                elif command.startswith("event"):
                    writer.write(command_reply_frame("+OK event listener enabled plain"))
                    writer.write(self.before)
                elif command == "api show channels as json":
                    writer.write(api_response_frame(self.live))
                elif command == "api show calls as json":
                    writer.write(api_response_frame('{"row_count": 0}'))
                    writer.write(self.after)
                await writer.drain()
        writer.close()


class Sink:
    """Records what the reader hands over, in order."""

    def __init__(self) -> None:
        self.log: list[Any] = []

    async def on_events(self, batch: Sequence[Mapping[str, str]]) -> None:
        self.log.extend(("event", e["Unique-ID"], e.get("Caller-Caller-ID-Name")) for e in batch)

    async def on_snapshot_begin(self) -> None:
        self.log.append(("snapshot",))

    async def on_connected(
        self, live: Mapping[str, str] | None, esl_endpoint: str, *, reconnect: bool
    ) -> None:
        self.log.append(("connected", dict(live) if live is not None else None, reconnect))

    async def on_disconnected(self, reason: str) -> None:
        self.log.append(("lost",))


async def until(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.01)


async def test_events_snapshot_order_malformed_frames_and_reconnect() -> None:
    live = '{"row_count": 1, "rows": [{"uuid": "old", "call_uuid": "old"}]}'
    bad = b"Content-Type: text/event-plain\nContent-Length: nope\n\n" + event_frame(b"no colon\n\n")
    switch = Switch(before=create("early") + bad, after=create("late"), live=live)
    server = await switch.start()
    sink = Sink()
    reader = AsyncEventReader(sink, "127.0.0.1", switch.port, "ClueCon", max_backoff_s=0.2)
    await reader.start()
    try:
        await until(lambda: ("event", "late", "A B") in sink.log)
        assert switch.commands[:4] == [
            "auth ClueCon",
            EVENTS_SUBSCRIBE_COMMAND,
            "api show channels as json",
            "api show calls as json",
        ]
        assert "BACKGROUND_JOB" not in EVENTS_SUBSCRIBE_COMMAND
        # The snapshot mark comes after the subscription: events read from then on are newer.
        assert sink.log == [
            ("snapshot",),
            ("event", "early", "A B"),
            ("connected", {"old": ""}, False),
            ("event", "late", "A B"),
        ]
        assert reader.malformed == 2
        assert reader.connected

        switch.writers[-1].close()
        await until(lambda: reader.connects == 2)
        await until(lambda: sink.log.count(("event", "late", "A B")) == 2)
        assert ("lost",) in sink.log
        assert sink.log[sink.log.index(("lost",)) + 1] == ("snapshot",)
        assert ("connected", {"old": ""}, True) in sink.log
    finally:
        await reader.stop()
        server.close()


async def test_a_refused_auth_is_retried_with_backoff_and_never_connects() -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Content-Type: auth/request\n\n")
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\n\n")
            writer.write(command_reply_frame("-ERR invalid"))
            await writer.drain()
        writer.close()
        attempts.append(1)

    attempts: list[int] = []
    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sink = Sink()
    reader = AsyncEventReader(sink, "127.0.0.1", port, "wrong", max_backoff_s=0.05)
    await reader.start()
    try:
        await until(lambda: len(attempts) >= 2)
        assert not reader.connected
        assert sink.log == []
    finally:
        await reader.stop()
        server.close()
