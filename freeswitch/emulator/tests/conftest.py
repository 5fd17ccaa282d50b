"""Fixtures for the emulator core tests: a switch, its ESL server, and raw ESL clients."""

from __future__ import annotations

import asyncio
import contextlib
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from callmesh.core.esl import (
    EslEvent,
    Frame,
    FrameParser,
    parse_event_plain,
    serialize_event_plain,
)
from callmesh.fsemu.esl_inbound import EslServer, start_esl_server
from callmesh.fsemu.events import Event
from callmesh.fsemu.switch import Switch


def make_wav(path: Path, seconds: float, rate: int = 8000) -> Path:
    """A silent mono WAV of the given length."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"\x00\x00" * int(seconds * rate))
    return path


class Recorder:
    """Collects every event the switch fires."""

    def __init__(self, switch: Switch) -> None:
        self.events: list[Event] = []
        self._cond = asyncio.Condition()
        switch.subscribe(self._on)

    def _on(self, event: Event) -> None:
        self.events.append(event)

    def names(self, uuid: str | None = None) -> list[str]:
        """Event names (optionally for one Unique-ID) in firing order."""
        return [e.name for e in self.events if uuid is None or e.get("Unique-ID") == uuid]

    def first(self, name: str, uuid: str | None = None) -> Event:
        """The first event of that name."""
        for e in self.events:
            if e.name == name and (uuid is None or e.get("Unique-ID") == uuid):
                return e
        raise AssertionError(f"no {name} event in {self.names(uuid)}")

    async def wait_for(self, name: str, uuid: str | None = None, count: int = 1) -> Event:
        """Wait (bounded) until `count` events of that name were fired."""
        for _ in range(400):
            found = [
                e
                for e in self.events
                if e.name == name and (uuid is None or e.get("Unique-ID") == uuid)
            ]
            if len(found) >= count:
                return found[count - 1]
            await asyncio.sleep(0.01)
        raise AssertionError(f"timed out waiting for {name}; got {self.names(uuid)}")


@pytest.fixture
async def switch(tmp_path: Path) -> AsyncIterator[Switch]:
    """A fast switch (speed 50) with media in tmp_path."""
    sw = Switch(speed=50, seed=1, media_dir=tmp_path, hostname="fsemu-test")
    yield sw
    await sw.close()


@pytest.fixture
def recorder(switch: Switch) -> Iterator[Recorder]:
    """Every event the switch fires; afterwards, each one's cached plain form is checked."""
    rec = Recorder(switch)
    yield rec
    for event in rec.events:
        # Event.serialize reuses the serialized text of channel-constant blocks: it must be
        # byte for byte what serializing the headers afresh gives.
        assert event.serialize("plain") == serialize_event_plain(event.headers, event.body)


@pytest.fixture
async def esl_server(switch: Switch) -> AsyncIterator[EslServer]:
    """The inbound ESL server on a free port."""
    server = await start_esl_server(switch, port=0)
    yield server
    await server.close()


class RawClient:
    """A bare ESL client speaking bytes, for asserting the exact wire format."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = FrameParser()
        self.frames: list[Frame] = []
        self.raw = bytearray()

    async def send(self, text: str | bytes) -> None:
        """Send bytes as they are."""
        self.writer.write(text.encode() if isinstance(text, str) else text)
        await self.writer.drain()

    async def frame(self, timeout: float = 5.0) -> Frame:
        """The next frame from the switch."""
        while not self.frames:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                raise EOFError("connection closed")
            self.raw += data
            for item in self.parser.feed(data):
                assert isinstance(item, Frame), item
                self.frames.append(item)
        return self.frames.pop(0)

    async def command(self, text: str) -> Frame:
        """Send a command and return the next non-event frame."""
        await self.send(text + "\n\n")
        while True:
            frame = await self.frame()
            if not frame.content_type.startswith("text/event"):
                return frame

    async def event(self, name: str, timeout: float = 5.0) -> EslEvent:
        """The next event frame with that Event-Name (others are skipped)."""
        while True:
            frame = await self.frame(timeout)
            if frame.content_type == "text/event-plain":
                ev = parse_event_plain(frame.body)
                if ev.name == name:
                    return ev

    async def closed(self, timeout: float = 5.0) -> bytes:
        """Read until EOF; returns the bytes received."""
        out = bytearray()
        while True:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                return bytes(out)
            out += data

    async def close(self) -> None:
        """Close the socket."""
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


@pytest.fixture
async def connect(esl_server: EslServer) -> AsyncIterator[object]:
    """Factory: open a raw client to the inbound server (authenticated unless told not to)."""
    clients: list[RawClient] = []

    async def open_client(auth: bool = True) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", esl_server.port)
        client = RawClient(reader, writer)
        clients.append(client)
        first = await client.frame()
        assert first.content_type == "auth/request"
        if auth:
            reply = await client.command("auth ClueCon")
            assert reply.get("Reply-Text") == "+OK accepted"
        return client

    yield open_client
    for client in clients:
        await client.close()


@pytest.fixture
def wav_dir(tmp_path: Path) -> Path:
    """tmp_path with prompt.wav (2 s) and short.wav (0.5 s)."""
    make_wav(tmp_path / "prompt.wav", 2.0)
    make_wav(tmp_path / "short.wav", 0.5)
    return tmp_path
