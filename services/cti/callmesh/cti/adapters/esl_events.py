"""The switch's events on a connection of their own, in pure asyncio (no gevent, no thread hop).

``CALLMESH_CTI_EVENT_READER=asyncio``: greenswitch keeps the command connection (connect, auth,
``bgapi`` with Job-UUID correlation; it subscribes only BACKGROUND_JOB), and this reader opens a
second connection to the same event socket in the service's loop: ``auth``, ``event plain``
with the events the link normalizes, then ``api show channels|calls as json`` for the channel
table. Frames are read in large chunks by ``callmesh.core.esl.FrameParser`` and event bodies
parsed by ``esl_parse.parse_event_fast`` (the same parser as the greenswitch reader).

Order: a reading task hands batches and connection markers to a bounded queue; one consumer
task hands them to the sink (``CtiLink``) in that order, so frames are read and parsed while
the previous batch's call events are being published and acked. The snapshot is asked for
after the subscription is confirmed, and the snapshot mark is handed over before any event
read after that point (the rule of ``CtiLink.on_snapshot_begin``).

Bad input: a malformed frame (``MalformedFrame``), an event that does not parse, an event in
another format or a frame without Content-Type is logged and counted; the reader carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

from callmesh.core.esl import EslParseError, Frame, FrameParser, MalformedFrame
from callmesh.cti.adapters.esl_parse import (
    EVENTS_SUBSCRIBE_COMMAND,
    MAX_BODY_BYTES,
    SHOW_CALLS,
    SHOW_CHANNELS,
    EslSink,
    LazyHeaders,
    live_channels,
    parse_event_fast,
)
from callmesh.cti.ports import LinkObserver

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024
_BATCH = 4096
_QUEUE_BATCHES = 8


class _SnapshotBegin:
    __slots__ = ()


class _Connected:
    __slots__ = ("live", "reconnect")

    def __init__(self, live: dict[str, str] | None, reconnect: bool) -> None:
        self.live = live
        self.reconnect = reconnect


class _Lost:
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class _SetupFailed(Exception):
    """The switch refused or did not finish the handshake."""


class AsyncEventReader:
    """The event connection: auth, subscription, snapshot, events to the sink; reconnects."""

    def __init__(
        self,
        sink: EslSink,
        host: str,
        port: int,
        password: str,
        *,
        observer: LinkObserver | None = None,
        connect_timeout_s: float = 5.0,
        max_backoff_s: float = 5.0,
        reply_timeout_s: float = 10.0,
        read_size: int = READ_SIZE,
    ) -> None:
        self._sink = sink
        self.host = host
        self.port = port
        self._password = password
        self._observer = observer
        self._connect_timeout_s = connect_timeout_s
        self._max_backoff_s = max_backoff_s
        self._reply_timeout_s = reply_timeout_s
        self._read_size = read_size
        self._queue: asyncio.Queue[Any] = asyncio.Queue(_QUEUE_BATCHES)
        self._reader_task: asyncio.Task[None] | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._stopping = False
        self.connected = False
        self.connects = 0
        self.malformed = 0

    @property
    def endpoint(self) -> str:
        """host:port of the event socket."""
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        """Start reading and handing over (returns at once)."""
        self._consumer = asyncio.create_task(self._consume(), name="esl-events-consumer")
        self._reader_task = asyncio.create_task(self._supervise(), name="esl-events-reader")

    async def stop(self) -> None:
        """Say ``exit``, close the connection and stop both tasks."""
        self._stopping = True
        writer = self._writer
        if writer is not None:
            with contextlib.suppress(OSError, RuntimeError):
                writer.write(b"exit\n\n")
        self._close()
        for task in (self._reader_task, self._consumer):
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *(t for t in (self._reader_task, self._consumer) if t is not None),
            return_exceptions=True,
        )

    async def drop_connection(self) -> None:
        """Close the connection as if the switch went away (tests, operators): it reconnects."""
        self._close()

    def _close(self) -> None:
        writer = self._writer
        if writer is not None:
            writer.close()

    # -- handing over -----------------------------------------------------------------------

    async def _consume(self) -> None:
        queue = self._queue
        sink = self._sink
        held: Any = None
        while True:
            item = held if held is not None else await queue.get()
            held = None
            # Batches read while the previous one was being handled go over as one (fewer,
            # larger publishes), up to _BATCH events; a marker keeps its place after them.
            if type(item) is list:
                while len(item) < _BATCH and not queue.empty():
                    following = queue.get_nowait()
                    if type(following) is not list or len(item) + len(following) > _BATCH:
                        held = following
                        break
                    item = item + following
            try:
                if type(item) is list:
                    await sink.on_events(item)
                elif isinstance(item, _SnapshotBegin):
                    await sink.on_snapshot_begin()
                elif isinstance(item, _Connected):
                    await sink.on_connected(item.live, self.endpoint, reconnect=item.reconnect)
                elif isinstance(item, _Lost):
                    await sink.on_disconnected(item.reason)
            except Exception:  # the consumer outlives any one batch
                log.exception("the link failed on a batch from the event connection")

    def _problem(self, detail: str) -> None:
        self.malformed += 1
        log.warning("event connection: malformed frame skipped: %s", detail)
        if self._observer is not None:
            self._observer.esl_problem("malformed")

    # -- the connection ---------------------------------------------------------------------

    async def _supervise(self) -> None:
        attempt = 0
        reconnect = False
        while not self._stopping:
            session = _Session(self, reconnect)
            try:
                reason = await session.run()
            except (OSError, TimeoutError, _SetupFailed, asyncio.IncompleteReadError) as err:
                reason = str(err) or type(err).__name__
            if session.writer is not None:
                session.writer.close()
            self._writer = None
            if self.connected:
                self.connected = False
                attempt = 0
                reconnect = True
                if not self._stopping:
                    log.warning("event connection %s lost: %s", self.endpoint, reason)
                    await self._queue.put(_Lost(reason))
                    await asyncio.sleep(0.1 * (0.5 + random.random()))
                continue
            attempt += 1
            delay = min(self._max_backoff_s, 0.1 * 2 ** min(attempt, 10))
            log.warning(
                "event connection %s not set up (%s); retrying in %.1f s",
                self.endpoint,
                reason,
                delay,
            )
            await asyncio.sleep(delay * (0.5 + random.random() / 2))


class _Session:
    """One connection's life: handshake, subscription, snapshot, then events until it ends."""

    def __init__(self, owner: AsyncEventReader, reconnect: bool) -> None:
        self.owner = owner
        self.reconnect = reconnect
        self.writer: asyncio.StreamWriter | None = None
        self.state = "auth"  # auth → auth_reply → subscribe_reply → snapshot → live
        self.snapshot: list[str] = []
        self.batch: list[LazyHeaders] = []

    async def run(self) -> str:
        """Read until the connection ends; the reason. Raises on a failed handshake."""
        owner = self.owner
        reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(owner.host, owner.port, limit=owner._read_size),
            owner._connect_timeout_s,
        )
        owner._writer = self.writer
        parser = FrameParser(max_body_bytes=MAX_BODY_BYTES)
        loop = asyncio.get_running_loop()
        setup_deadline = loop.time() + owner._connect_timeout_s + owner._reply_timeout_s
        read_size = owner._read_size
        while True:
            if self.state == "live":
                data = await reader.read(read_size)
            else:
                left = setup_deadline - loop.time()
                if left <= 0:
                    raise _SetupFailed(f"no answer to {self.state.replace('_', ' ')} in time")
                data = await asyncio.wait_for(reader.read(read_size), left)
            if not data:
                for bad in parser.close():
                    owner._problem(bad.reason)
                await self._flush()
                if self.state != "live":
                    raise _SetupFailed(f"connection closed during {self.state.replace('_', ' ')}")
                return "connection closed"
            reason = await self._handle(parser.feed(data))
            if reason is not None:
                return reason

    async def _flush(self) -> None:
        batch = self.batch
        if batch:
            self.batch = []
            put = self.owner._queue.put
            for start in range(0, len(batch), _BATCH):
                await put(batch[start : start + _BATCH])

    async def _mark(self, marker: Any) -> None:
        await self._flush()
        await self.owner._queue.put(marker)

    def _send(self, line: str) -> None:
        assert self.writer is not None
        self.writer.write(line.encode() + b"\n\n")

    async def _handle(self, frames: list[Frame | MalformedFrame]) -> str | None:
        owner = self.owner
        batch = self.batch
        for frame in frames:
            if type(frame) is MalformedFrame:
                owner._problem(frame.reason)
                continue
            assert isinstance(frame, Frame)
            content_type = frame.content_type
            if content_type == "text/event-plain":
                try:
                    headers, _ = parse_event_fast(frame.body)
                except EslParseError as err:
                    owner._problem(str(err))
                    continue
                if headers.get("Event-Name") != "BACKGROUND_JOB":  # the command connection's
                    batch.append(headers)
                continue
            await self._flush()
            batch = self.batch
            reason = await self._control(frame, content_type)
            if reason is not None:
                return reason
        await self._flush()
        return None

    async def _control(self, frame: Frame, content_type: str) -> str | None:
        owner = self.owner
        state = self.state
        if content_type == "auth/request":
            self._send(f"auth {owner._password}")
            self.state = "auth_reply"
        elif content_type == "command/reply":
            text = frame.get("Reply-Text") or ""
            if state == "auth_reply":
                if not text.startswith("+OK"):
                    raise _SetupFailed(f"auth refused: {text}")
                self._send(EVENTS_SUBSCRIBE_COMMAND)
                self.state = "subscribe_reply"
            elif state == "subscribe_reply":
                if not text.startswith("+OK"):
                    raise _SetupFailed(f"event subscription refused: {text}")
                # Subscribed first, then the snapshot: events read from here on may be newer.
                await self._mark(_SnapshotBegin())
                self._send(SHOW_CHANNELS)
                self._send(SHOW_CALLS)
                self.state = "snapshot"
        elif content_type == "api/response":
            if state == "snapshot":
                self.snapshot.append(frame.body.decode("utf-8", "replace"))
                if len(self.snapshot) == 2:
                    live: dict[str, str] | None
                    try:
                        live = live_channels(*self.snapshot)
                    except (ValueError, TypeError) as err:
                        log.warning("live channels could not be read (%s); table not rebuilt", err)
                        live = None
                    self.state = "live"
                    owner.connected = True
                    owner.connects += 1
                    log.info("event connection %s connected", owner.endpoint)
                    await self._mark(_Connected(live, self.reconnect))
        elif content_type == "text/disconnect-notice":
            if frame.get("Content-Disposition") != "linger":
                return "disconnect notice"
        elif content_type == "text/rude-rejection":
            raise _SetupFailed(f"refused: {frame.body.decode('utf-8', 'replace').strip()}")
        elif content_type in ("text/event-json", "text/event-xml"):
            owner._problem(f"{content_type} (only event plain is subscribed)")
        elif not content_type:
            owner._problem("frame without Content-Type")
        else:
            log.debug("event connection: %s frame ignored", content_type)
        return None
