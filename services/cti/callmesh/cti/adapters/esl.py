"""The event socket to one FreeSWITCH node, through greenswitch's InboundESL (the only gevent code).

Threads: greenswitch runs in a gevent hub of its own thread (``GeventThread``); the service's
asyncio loop is the bridge's other side. Events cross in batches: the reader greenlet appends
each parsed event to a deque and wakes the asyncio consumer once per batch through the bridge;
commands cross with ``Bridge.run_gevent``. Nothing else touches gevent.

greenswitch's traps (esl-notes §7) and what this module does about them:

- handlers are registered before ``connect()`` (events before a handler are dropped);
- only ``event plain`` (``event json`` kills its reader);
- its event parser URL-decodes the whole block before splitting lines and appends a body to the
  last header, so text/event-plain frames are read here, byte-exact, and parsed with the shared
  codec (``callmesh.core.esl``): BACKGROUND_JOB output is the event's body, nothing else;
- a frame it cannot parse (no Content-Type, a bad Content-Length) would kill its reader; such
  frames are counted as malformed and skipped;
- ``send`` uses ``sock.send``; commands here are short, and replies are matched first-in
  first-out, so a command that gets no reply in time drops the connection (a late reply would
  be handed to the next command).

On every (re)connect the live channels are read from ``show channels as json`` and
``show calls as json`` and handed over in order with the events, so the channel table is rebuilt
from the switch and nothing is lost across a disconnect.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import threading
import uuid as uuidlib
from collections.abc import Mapping
from typing import Any

import gevent
import gevent.event
import gevent.lock
from greenswitch.esl import InboundESL, NotConnectedError

from callmesh.core.bridge import Bridge
from callmesh.core.esl import EslParseError
from callmesh.cti.adapters.esl_parse import (
    JOB_SUBSCRIBE_COMMAND,
    MAX_BODY_BYTES,
    SHOW_CALLS,
    SHOW_CHANNELS,
    SUBSCRIBE_COMMAND,
    EslSink,
    LazyHeaders,
    live_channels,
    parse_event_fast,
)
from callmesh.cti.ports import LinkObserver, SwitchNotConnected, SwitchTimeout

log = logging.getLogger(__name__)

_BATCH = 4096


class _Connected:
    __slots__ = ("live", "reconnect")

    def __init__(self, live: dict[str, str] | None, reconnect: bool) -> None:
        self.live = live
        self.reconnect = reconnect


class _SnapshotBegin:
    __slots__ = ()


class _Lost:
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class _Esl(InboundESL):  # type: ignore[misc]
    """InboundESL that reads event frames byte-exact and survives frames it cannot parse."""

    def __init__(
        self,
        host: str,
        port: int,
        password: str,
        on_event: Any,
        on_problem: Any,
        timeout: float = 5.0,
    ) -> None:
        super().__init__(host, port, password, timeout=timeout)
        self._on_event = on_event
        self._on_problem = on_problem

    def _read_exact(self, length: int) -> bytes:
        chunks: list[bytes] = []
        remaining = length
        while remaining > 0:
            chunk = self.sock_file.read(remaining)
            if not chunk:
                raise ConnectionError("connection closed inside a frame body")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def handle_event(self, event: Any) -> None:
        headers = event.headers
        content_type = headers.get("Content-Type")
        if content_type is None:
            self._on_problem("malformed", "frame without Content-Type")
            return
        if content_type in ("text/event-plain", "text/event-json", "text/event-xml"):
            raw = headers.get("Content-Length", "")
            if not raw.isdigit():
                self._on_problem("malformed", f"event frame with Content-Length {raw!r}")
                return
            length = int(raw)
            if length > MAX_BODY_BYTES:
                self._on_problem("malformed", f"event frame of {length} bytes (too large)")
                while length > 0:  # skip it whole, so the next frame is read from its start
                    length -= len(self._read_exact(min(length, 1 << 20)))
                return
            data = self._read_exact(length)
            if content_type != "text/event-plain":
                self._on_problem("malformed", f"{content_type} (only event plain is subscribed)")
                return
            try:
                headers, body = parse_event_fast(data)
            except EslParseError as err:
                self._on_problem("malformed", str(err))
                return
            self._on_event(headers, body)
            return
        try:
            super().handle_event(event)
        except (KeyError, ValueError, IndexError) as err:
            # IndexError: a reply nobody waits for. The rest: a frame greenswitch cannot parse.
            self._on_problem("malformed", f"{content_type} frame: {err!r}")


class EslLink:
    """One node's event socket: connection with backoff, events out, bgapi commands in."""

    def __init__(
        self,
        bridge: Bridge,
        sink: EslSink,
        host: str,
        port: int,
        password: str,
        *,
        observer: LinkObserver | None = None,
        connect_timeout_s: float = 5.0,
        max_backoff_s: float = 5.0,
        reply_timeout_s: float = 10.0,
        events: bool = True,
    ) -> None:
        self._bridge = bridge
        # events=False: another connection reads the events (``esl_events.AsyncEventReader``);
        # this one subscribes only BACKGROUND_JOB, for the command replies, and leaves the
        # channel table and the node's up/down to that reader.
        self._events = events
        self._sink = sink
        self.host = host
        self.port = port
        self._password = password
        self._observer = observer
        self._connect_timeout_s = connect_timeout_s
        self._max_backoff_s = max_backoff_s
        self._reply_timeout_s = reply_timeout_s
        self._esl: _Esl | None = None
        self._jobs: dict[str, Any] = {}
        self._queue: collections.deque[Any] = collections.deque()
        self._wake_pending = False
        self._wake: asyncio.Event | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._supervisor: Any = None
        self._stopping = False
        self._lost_signal: Any = None
        # greenswitch matches replies to commands in send order; a send that yields half-way
        # (full socket buffer) must not let another command's bytes in between.
        self._send_lock: Any = None
        self.connects = 0
        self.malformed = 0

    @property
    def endpoint(self) -> str:
        """host:port of the event socket."""
        return f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        """Whether the socket is up and authenticated (read from any thread)."""
        esl = self._esl
        return esl is not None and bool(esl.connected)

    # -- asyncio side -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the consumer and the connection supervisor (returns at once)."""
        self._wake = asyncio.Event()
        self._consumer = asyncio.create_task(self._consume(), name="esl-consumer")
        await self._bridge.run_gevent(self._start_supervisor)

    async def stop(self) -> None:
        """Close the socket and stop both sides."""
        self._stopping = True
        try:
            await self._bridge.run_gevent(self._shutdown)
        finally:
            if self._consumer is not None:
                self._consumer.cancel()
                await asyncio.gather(self._consumer, return_exceptions=True)

    async def bgapi(self, line: str, timeout_s: float) -> tuple[str, str]:
        """Run an API command with bgapi; (job uuid, output) once its BACKGROUND_JOB arrives."""
        if "\n" in line or "\r" in line:
            raise ValueError("line: must be one line")
        return await self._bridge.run_gevent(self._bgapi, line, timeout_s)

    async def api(self, line: str, timeout_s: float = 10.0) -> str:
        """Run a blocking API command (status checks, tests)."""
        if "\n" in line or "\r" in line:
            raise ValueError("line: must be one line")
        return await self._bridge.run_gevent(self._api, line, timeout_s)

    async def drop_connection(self) -> None:
        """Close the socket as if the switch went away (tests, operators): it reconnects."""
        await self._bridge.run_gevent(self._drop)

    async def _set_wake(self) -> None:
        assert self._wake is not None
        self._wake.set()

    async def _consume(self) -> None:
        assert self._wake is not None
        wake = self._wake
        queue = self._queue
        sink = self._sink
        while True:
            await wake.wait()
            wake.clear()
            self._wake_pending = False
            while queue:
                batch: list[Mapping[str, str]] = []
                marker: Any = None
                while queue and len(batch) < _BATCH:
                    item = queue.popleft()
                    if type(item) is LazyHeaders:
                        batch.append(item)
                    else:
                        marker = item
                        break
                try:
                    if batch:
                        await sink.on_events(batch)
                    if isinstance(marker, _SnapshotBegin):
                        await sink.on_snapshot_begin()
                    elif isinstance(marker, _Connected):
                        await sink.on_connected(
                            marker.live, self.endpoint, reconnect=marker.reconnect
                        )
                    elif isinstance(marker, _Lost):
                        await sink.on_disconnected(marker.reason)
                except Exception:  # the consumer outlives any one batch
                    log.exception("the link failed on a batch of %d events", len(batch))

    # -- gevent side ------------------------------------------------------------------------

    def _push(self, item: Any) -> None:
        self._queue.append(item)
        if not self._wake_pending:
            self._wake_pending = True
            try:
                self._bridge.submit_async(self._set_wake())
            except RuntimeError:
                self._wake_pending = False

    def _on_event(self, headers: dict[str, str], body: str | None) -> None:
        if headers.get("Event-Name") == "BACKGROUND_JOB":
            waiter = self._jobs.get(headers.get("Job-UUID", ""))
            if waiter is not None:
                waiter.set(body or "")
            if self._observer is not None:
                stamp = headers.get("Event-Date-Timestamp", "")
                self._observer.esl_event("BACKGROUND_JOB", int(stamp) if stamp.isdigit() else 0)
            return
        if self._events:
            self._push(headers)

    def _on_problem(self, kind: str, detail: str) -> None:
        self.malformed += 1
        log.warning("event socket: %s frame skipped: %s", kind, detail)
        if self._observer is not None:
            self._observer.esl_problem(kind)

    def _on_greenswitch_event(self, event: Any) -> None:
        # Frames greenswitch itself queued (disconnect notices): the socket is going away.
        headers = event.headers
        if (
            headers.get("Content-Type") == "text/disconnect-notice"
            and headers.get("Content-Disposition") != "linger"
            and self._lost_signal is not None
        ):
            self._lost_signal.set()

    def _start_supervisor(self) -> None:
        self._lost_signal = gevent.event.Event()
        self._send_lock = gevent.lock.Semaphore()
        self._supervisor = gevent.spawn(self._supervise)

    def _supervise(self) -> None:
        attempt = 0
        reconnect = False
        while not self._stopping:
            esl = _Esl(
                self.host,
                self.port,
                self._password,
                self._on_event,
                self._on_problem,
                timeout=self._connect_timeout_s,
            )
            # Handlers first: greenswitch drops events that arrive before one is registered.
            esl.register_handle("*", self._on_greenswitch_event)
            self._lost_signal.clear()
            try:
                with (
                    gevent.Timeout(self._connect_timeout_s + self._reply_timeout_s),
                    self._send_lock,
                ):
                    esl.connect()
                    reply = esl.send(SUBSCRIBE_COMMAND if self._events else JOB_SUBSCRIBE_COMMAND)
                    if not reply.headers.get("Reply-Text", "").startswith("+OK"):
                        raise ConnectionError(f"event subscription refused: {reply.data}")
                    self._esl = esl
                    live = self._snapshot(esl) if self._events else None
            except (gevent.Timeout, OSError, NotConnectedError, ValueError) as err:
                self._esl = None
                self._close(esl)
                attempt += 1
                delay = min(self._max_backoff_s, 0.1 * 2 ** min(attempt, 10))
                log.warning(
                    "event socket %s not reachable (%s); retrying in %.1f s",
                    self.endpoint,
                    err or type(err).__name__,
                    delay,
                )
                gevent.sleep(delay * (0.5 + random.random() / 2))
                continue
            attempt = 0
            self.connects += 1
            log.info("event socket %s connected", self.endpoint)
            if self._events:
                self._push(_Connected(live, reconnect))
            reconnect = True
            reason = self._watch(esl)
            self._esl = None
            self._close(esl)
            for waiter in list(self._jobs.values()):
                waiter.set_exception(SwitchNotConnected("the event socket was lost"))
            if not self._stopping:
                log.warning("event socket %s lost: %s", self.endpoint, reason)
                if self._events:
                    self._push(_Lost(reason))
                gevent.sleep(0.1 * (0.5 + random.random()))

    def _watch(self, esl: _Esl) -> str:
        while not self._stopping:
            if self._lost_signal.wait(0.25):
                return "disconnect notice"
            if not esl.connected:
                return "connection closed"
            reader = esl._receive_events_greenlet
            if reader is not None and reader.dead:
                return "reader stopped"
        return "stopping"

    def _snapshot(self, esl: _Esl) -> dict[str, str] | None:
        """Live channels → partner hints, from ``show channels`` and ``show calls``."""
        # Events read after this marker may be newer than the snapshot: the table keeps their
        # legs even when the snapshot does not list them.
        self._push(_SnapshotBegin())
        try:
            return live_channels(esl.send(SHOW_CHANNELS).data, esl.send(SHOW_CALLS).data)
        except (ValueError, TypeError, AttributeError) as err:
            log.warning("live channels could not be read (%s); table not rebuilt", err)
            return None

    def _close(self, esl: _Esl) -> None:
        esl._run = False
        esl.connected = False
        sock = getattr(esl, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _drop(self) -> None:
        esl = self._esl
        if esl is not None:
            self._close(esl)
            self._lost_signal.set()

    def _shutdown(self) -> None:
        self._stopping = True
        esl = self._esl
        if esl is not None:
            try:
                with gevent.Timeout(2), self._send_lock:
                    esl.send("exit")
            except (gevent.Timeout, OSError, NotConnectedError):
                pass
            self._close(esl)
        if self._lost_signal is not None:
            self._lost_signal.set()
        if self._supervisor is not None:
            self._supervisor.kill(block=True, timeout=5)

    def _send(self, esl: _Esl, data: str, timeout_s: float) -> Any:
        try:
            with gevent.Timeout(timeout_s), self._send_lock:
                return esl.send(data)
        except gevent.Timeout as err:
            # The reply may still come and would be matched to the next command: start over.
            self._close(esl)
            self._lost_signal.set()
            raise SwitchTimeout(f"no command reply within {timeout_s:g} s") from err
        except (NotConnectedError, OSError) as err:
            raise SwitchNotConnected(str(err) or "the event socket is down") from err

    def _bgapi(self, line: str, timeout_s: float) -> tuple[str, str]:
        esl = self._esl
        if esl is None or not esl.connected:
            raise SwitchNotConnected("the event socket is down")
        job = str(uuidlib.uuid4())
        waiter = gevent.event.AsyncResult()
        self._jobs[job] = waiter
        try:
            reply = self._send(esl, f"bgapi {line}\nJob-UUID: {job}", min(timeout_s, 10.0))
            text = reply.headers.get("Reply-Text", "")
            if not text.startswith("+OK"):
                return job, text
            try:
                return job, str(waiter.get(timeout=timeout_s))
            except gevent.Timeout as err:
                raise SwitchTimeout(f"no job result within {timeout_s:g} s") from err
        finally:
            self._jobs.pop(job, None)

    def _api(self, line: str, timeout_s: float) -> str:
        esl = self._esl
        if esl is None or not esl.connected:
            raise SwitchNotConnected("the event socket is down")
        return str(self._send(esl, f"api {line}", timeout_s).data)


class GeventThread:
    """A thread running a gevent hub with a bridge to the calling asyncio loop."""

    def __init__(self, name: str = "callmesh-gevent") -> None:
        self._name = name
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._bridge: Bridge | None = None
        self._stop: Any = None
        self._error: BaseException | None = None

    @property
    def bridge(self) -> Bridge:
        """The bridge (after ``start``)."""
        if self._bridge is None:
            raise RuntimeError("GeventThread not started")
        return self._bridge

    async def start(self) -> Bridge:
        """Start the thread, bridged to the running loop."""
        loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._run, args=(loop,), name=self._name, daemon=True
        )
        self._thread.start()
        await loop.run_in_executor(None, self._ready.wait, 10.0)
        if self._error is not None:
            raise RuntimeError("the gevent thread failed to start") from self._error
        return self.bridge

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self._bridge = Bridge(loop)
            self._stop = gevent.event.Event()
        except BaseException as err:  # handed to start()
            self._error = err
            self._ready.set()
            raise
        self._ready.set()
        self._stop.wait()
        self._bridge.close()

    async def stop(self) -> None:
        """Close the bridge and end the thread."""
        if self._bridge is None or self._thread is None:
            return
        stop = self._stop
        with contextlib.suppress(RuntimeError):
            await self._bridge.run_gevent(stop.set)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 10.0)
