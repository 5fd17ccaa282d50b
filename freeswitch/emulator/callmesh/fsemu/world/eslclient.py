"""A small asyncio inbound Event Socket client (tests, benches, scripts), on core's wire codec."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence

from callmesh.core.esl import (
    EslEvent,
    EslParseError,
    Frame,
    FrameParser,
    MalformedFrame,
    parse_event_plain,
)

READ_CHUNK = 256 * 1024


class EslClientError(RuntimeError):
    """The switch refused the login or closed the connection."""


class EslClient:
    """One inbound ESL connection: commands answered in order, events to a callback or a queue."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_event: Callable[[EslEvent], None] | None = None,
        on_frame: Callable[[Frame], None] | None = None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.on_event = on_event
        # Raw event frames, not decoded (benches that only need to read and count them).
        self.on_frame = on_frame
        self.events: asyncio.Queue[EslEvent] = asyncio.Queue()
        self.malformed: list[MalformedFrame] = []
        self.disconnect_notices: list[Frame] = []
        self.frames = 0
        self.bytes = 0
        self._parser = FrameParser()
        self._pending: deque[asyncio.Future[Frame]] = deque()
        self._auth: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._closed = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._read(), name="esl-client")

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        password: str = "ClueCon",
        on_event: Callable[[EslEvent], None] | None = None,
        on_frame: Callable[[Frame], None] | None = None,
    ) -> EslClient:
        """Connect and log in (``auth``); EslClientError if refused."""
        reader, writer = await asyncio.open_connection(host, port, limit=2**24)
        client = cls(reader, writer, on_event, on_frame)
        await client._auth
        reply = await client.command(f"auth {password}")
        if not (reply.get("Reply-Text") or "").startswith("+OK"):
            await client.close()
            raise EslClientError(f"auth refused: {reply.get('Reply-Text')}")
        return client

    async def command(
        self, line: str, headers: Sequence[tuple[str, str]] = (), body: str | None = None
    ) -> Frame:
        """Send one command and wait for its reply frame (command/reply or api/response)."""
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._pending.append(future)
        parts = [line, *(f"{k}: {v}" for k, v in headers)]
        payload = "\n".join(parts)
        if body is not None:
            data = body.encode()
            payload += f"\nContent-Length: {len(data)}\n\n"
            self.writer.write(payload.encode() + data)
        else:
            self.writer.write((payload + "\n\n").encode())
        await self.writer.drain()
        return await future

    async def api(self, command: str) -> str:
        """``api <command>``: the output text."""
        frame = await self.command(f"api {command}")
        return frame.body.decode()

    async def next_event(
        self, predicate: Callable[[EslEvent], bool], timeout: float = 10.0
    ) -> EslEvent:
        """The next queued event matching ``predicate`` (others are skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.events.get()
                if predicate(event):
                    return event

    async def close(self) -> None:
        """Close the socket and stop reading."""
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _read(self) -> None:
        try:
            while True:
                data = await self.reader.read(READ_CHUNK)
                if not data:
                    break
                self.bytes += len(data)
                for frame in self._parser.feed(data):
                    self._dispatch(frame)
        finally:
            self._closed.set()
            error = EslClientError("connection closed")
            for future in (self._auth, *self._pending):
                if not future.done():
                    future.set_exception(error)
                    future.exception()  # retrieved: nobody may be waiting any more

    def _dispatch(self, frame: Frame | MalformedFrame) -> None:
        if isinstance(frame, MalformedFrame):
            self.malformed.append(frame)
            return
        self.frames += 1
        kind = frame.content_type
        if kind == "text/event-plain":
            if self.on_frame is not None:
                self.on_frame(frame)
                return
            try:
                event = parse_event_plain(frame.body)
            except EslParseError as err:
                # A bad event is skipped, as the parser skips a bad frame; reading goes on.
                self.malformed.append(MalformedFrame(str(err), frame.body))
                return
            if self.on_event is not None:
                self.on_event(event)
            else:
                self.events.put_nowait(event)
        elif kind in ("command/reply", "api/response"):
            if self._pending:
                future = self._pending.popleft()
                if not future.done():
                    future.set_result(frame)
        elif kind == "auth/request":
            if not self._auth.done():
                self._auth.set_result(frame)
        elif kind == "text/disconnect-notice":
            self.disconnect_notices.append(frame)
