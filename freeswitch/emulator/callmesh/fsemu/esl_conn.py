"""One Event Socket connection, inbound or outbound, as mod_event_socket's listener_t."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid as uuidlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from callmesh.core.esl import api_response_frame, serialize_event_plain
from callmesh.fsemu.events import EVENT_NAME_SET, EVENT_NAMES, Event
from callmesh.fsemu.switch import Message

if TYPE_CHECKING:
    from callmesh.fsemu.switch import Channel, Switch

log = logging.getLogger("callmesh.fsemu.esl")

MAX_CONTENT_LENGTH = 16 * 1024 * 1024
# read_packet: a header block longer than this is cut and parsed as it is.
MAX_HEADER_BYTES = 10485760
FIRST_PACKET_TIMEOUT = 25.0
# event_handler: a listener's queue holds MAX_QUEUE_LEN events and one that loses more than
# MAX_MISSED in a row is killed. Here the queue is the events held back during a command plus
# the bytes the transport has not sent yet (a client that stops reading).
MAX_QUEUE_LEN = 100000
MAX_MISSED = 500
MAX_UNSENT_BYTES = 64 * 1024 * 1024
DISCONNECT_TEXT = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"

MYEVENTS = frozenset(
    {
        "CHANNEL_ANSWER", "CHANNEL_APPLICATION", "CHANNEL_BRIDGE", "CHANNEL_CREATE",
        "CHANNEL_DATA", "CHANNEL_DESTROY", "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE",
        "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_ORIGINATE", "CHANNEL_UUID",
        "CHANNEL_OUTGOING", "CHANNEL_PARK", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA",
        "CHANNEL_STATE", "CHANNEL_UNBRIDGE", "CHANNEL_UNPARK", "DETECTED_SPEECH", "DTMF",
        "NOTALK", "TALK",
    }
)  # fmt: skip
LOG_LEVELS = {
    "console": 0, "alert": 1, "crit": 2, "err": 3, "error": 3, "warning": 4, "notice": 5,
    "info": 6, "debug": 7,
}  # fmt: skip


class ProtocolError(Exception):
    """A client frame that makes FreeSWITCH drop the connection."""


@dataclass(slots=True)
class Command:
    """A client command: the first line, raw headers (not URL-decoded), optional body."""

    line: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str | None = None

    def get(self, name: str) -> str | None:
        """First header of that name, case-insensitive (switch_event_get_header)."""
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None


def _atoi(text: str) -> int:
    match = re.match(r"\s*([+-]?\d+)", text)
    return int(match.group(1)) if match else 0


class CommandReader:
    """read_packet: client commands from a stream."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._buf = bytearray()

    async def read(self) -> Command | None:
        """The next command, or None at EOF; raises ProtocolError on a bad Content-Length."""
        buf = self._buf
        # Where the search for the blank line resumes: bytes already searched are not searched
        # again as more arrive (a header block fed in small pieces stays linear).
        start = 0
        while True:
            if start == 0:
                skip = _leading_blank(buf)
                if skip:
                    del buf[:skip]
            end = _block_end(buf, start)
            if end is None and len(buf) >= MAX_HEADER_BYTES:
                end = (len(buf), 0)
            if end is not None:
                break
            if buf:
                # A terminator may straddle the next read only from the last newline on.
                last = buf.rfind(b"\n", start)
                start = last if last >= 0 else len(buf)
            data = await self._reader.read(65536)
            if not data:
                return None
            buf += data
        stop, sep = end
        block = bytes(buf[:stop])
        del buf[: stop + sep]
        lines = block.decode("utf-8", "replace").split("\n")
        command = Command(lines[0].rstrip("\r").strip())
        length = 0
        for raw in lines[1:]:
            line = raw.rstrip("\r")
            if not line or ":" not in line:
                continue
            name, _, value = line.partition(":")
            value = value.lstrip(" ")
            command.headers.append((name, value))
            if name.lower() == "content-length":
                length = _atoi(value)
                if length < 0 or length > MAX_CONTENT_LENGTH:
                    raise ProtocolError(f"Content-Length {value!r} out of range")
        if length > 0:
            while len(buf) < length:
                data = await self._reader.read(max(65536, length - len(buf)))
                if not data:
                    return None
                buf += data
            command.body = bytes(buf[:length]).decode("utf-8", "replace")
            del buf[:length]
        return command


def _leading_blank(buf: bytearray) -> int:
    """How many CR/LF bytes start the buffer (read_packet skips them before a command)."""
    i = 0
    n = len(buf)
    while i < n and buf[i] in (0x0D, 0x0A):
        i += 1
    return i


def _block_end(buf: bytearray, start: int = 0) -> tuple[int, int] | None:
    # The packet ends at two newlines; CRs in between are ignored (crcount in read_packet).
    i = start
    n = len(buf)
    while True:
        j = buf.find(b"\n", i)
        if j < 0:
            return None
        k = j + 1
        while k < n and buf[k] == 0x0D:
            k += 1
        if k < n and buf[k] == 0x0A:
            return j, k + 1 - j
        if k >= n:
            return None
        i = k


class EslConnection:
    """listener_t: one connection's subscriptions, filters and command handling."""

    def __init__(
        self,
        switch: Switch,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        password: str = "ClueCon",
        session: Channel | None = None,
        outbound: bool = False,
        async_mode: bool = False,
        full: bool = False,
    ) -> None:
        self.switch = switch
        self.reader = CommandReader(reader)
        self.writer = writer
        self.password = password
        self.session = session
        self.outbound = outbound
        self.async_mode = async_mode
        self.full = full
        self.authed = outbound
        self.running = True
        self.connected = asyncio.Event()
        self.finished = asyncio.Event()
        self.events_enabled = False
        self.event_names: set[str] = set()
        self.all_events = False
        self.custom: set[str] = set()
        self.all_custom = False
        self.format = "plain"
        self.filters: list[tuple[str, str]] = []
        self.myevents = False
        self.linger = False
        self.linger_time = -1
        self.resume = False
        self.log_level: int | None = None
        self._busy = 0
        self._pending: list[bytes] = []
        # Frames written in this loop iteration, sent together by _flush_out.
        self._out: list[bytes] = []
        self._lost_events = 0
        self._disco_handled = False
        self._disconnect_sent = False
        self._closing = False
        self._unsubscribe_global: Callable[[], None] | None = None
        self._unsubscribe_session: Callable[[], None] | None = None
        self._update_routes()
        self._tasks: set[asyncio.Task[object]] = set()

    # ------------------------------------------------------------------ output
    def write(self, data: bytes) -> None:
        """Queue bytes for the client (sent in one write per loop iteration) unless closing."""
        if self._closing or self.writer.is_closing():
            return
        out = self._out
        out.append(data)
        if len(out) == 1:
            asyncio.get_running_loop().call_soon(self._flush_out)

    def _flush_out(self) -> None:
        """Hand everything queued since the last flush to the transport as one write, in order."""
        out = self._out
        if not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        if self.writer.is_closing():
            return
        self.writer.write(data)

    async def _drain(self) -> None:
        """Flush, then wait while the transport holds more than its high-water mark."""
        self._flush_out()
        await self.writer.drain()

    def reply(self, text: str) -> None:
        """A command/reply frame ('~' means the text is a header block)."""
        if text.startswith("~"):
            self.write(b"Content-Type: command/reply\n" + text[1:].encode())
        else:
            self.write(f"Content-Type: command/reply\nReply-Text: {text}\n\n".encode())

    def _flush_pending(self) -> None:
        pending, self._pending = self._pending, []
        for data in pending:
            self.write(data)

    def send_disconnect(self) -> None:
        """text/disconnect-notice with the ClueCon goodbye (once)."""
        if self._disconnect_sent:
            return
        self._disconnect_sent = True
        body = DISCONNECT_TEXT.encode()
        if self.session is not None:
            head = (
                "Content-Type: text/disconnect-notice\n"
                f"Controlled-Session-UUID: {self.session.uuid}\n"
                "Content-Disposition: disconnect\n"
                f"Content-Length: {len(body)}\n\n"
            )
        else:
            head = f"Content-Type: text/disconnect-notice\nContent-Length: {len(body)}\n\n"
        self.write(head.encode() + body)

    # ------------------------------------------------------------------ events
    def _wants(self, event: Event) -> bool:
        if self.all_events:
            send = True
        elif event.name in self.event_names:
            send = (
                event.name != "CUSTOM"
                or not event.subclass
                or self.all_custom
                or event.subclass in self.custom
            )
        else:
            return False
        if self.filters:
            send = False
            for name, value in self.filters:
                hval = event.get(name)
                if hval is None:
                    continue
                comp = value
                pos = True
                i = 0
                while i < len(comp) and comp[i] in "+- ":
                    if comp[i] == "+":
                        pos = True
                    elif comp[i] == "-":
                        pos = False
                    i += 1
                comp = comp[i:]
                if send and pos:
                    continue
                if value.startswith("/"):
                    pattern = comp.strip("/")
                    try:
                        matched = re.search(pattern, hval) is not None
                    except re.error:
                        matched = False
                else:
                    matched = hval.lower() == comp.lower()
                if matched:
                    if pos:
                        send = True
                    else:
                        send = False
                        break
        if send and self.myevents:
            uid = event.get("Unique-ID")
            if uid is None or (self.session is not None and uid != self.session.uuid):
                send = False
            if self.session is not None and event.get("Job-Owner-UUID") == self.session.uuid:
                send = True
        return send

    def _update_routes(self) -> None:
        """Subscribe to everything only when needed; a myevents session gets only its own."""
        if self.session is not None and self._unsubscribe_session is None:
            self._unsubscribe_session = self.switch.subscribe_session(
                self.session.uuid, self._on_session_event
            )
        needs_global = self.session is None or (self.events_enabled and not self.myevents)
        if needs_global and self._unsubscribe_global is None:
            self._unsubscribe_global = self.switch.subscribe(self._on_event)
        elif not needs_global and self._unsubscribe_global is not None:
            self._unsubscribe_global()
            self._unsubscribe_global = None

    def _unsubscribe(self) -> None:
        for unsubscribe in (self._unsubscribe_global, self._unsubscribe_session):
            if unsubscribe is not None:
                unsubscribe()
        self._unsubscribe_global = None
        self._unsubscribe_session = None

    def _on_session_event(self, event: Event) -> None:
        if self._unsubscribe_global is None:
            self._on_event(event)

    def _on_event(self, event: Event) -> None:
        if not self.running or self._closing:
            return
        if self.events_enabled and self._wants(event) and not self._queue(event):
            return  # killed
        session = self.session
        if session is not None and event.get("Unique-ID") == session.uuid:
            if event.name == "CHANNEL_HANGUP" and not self._disco_handled:
                asyncio.get_running_loop().call_soon(self._on_session_down)
            elif event.name == "CHANNEL_DESTROY" and self.linger:
                asyncio.get_running_loop().call_soon(self._stop)

    def _queue(self, event: Event) -> bool:
        """Send (or hold during a command) one event; False when the listener was killed."""
        if (self._busy and len(self._pending) >= MAX_QUEUE_LEN) or (
            self.writer.transport.get_write_buffer_size() > MAX_UNSENT_BYTES
        ):
            self._lost_events += 1
            if self._lost_events > MAX_MISSED:
                log.warning("esl: killing listener because of too many lost events")
                self._kill()
                return False
            return True
        if self._lost_events:
            log.warning("esl: lost %d events", self._lost_events)
            self._lost_events = 0
        data = event.frame(self.format)
        if self._busy:
            self._pending.append(data)
        else:
            self.write(data)
        return True

    def _kill(self) -> None:
        """kill_listener: stop at once and drop the socket, nothing more is sent."""
        self.running = False
        self._closing = True
        self._pending.clear()
        self._out.clear()
        self.writer.transport.abort()

    def _on_session_down(self) -> None:
        if self._disco_handled or not self.running:
            return
        self._disco_handled = True
        session = self.session
        assert session is not None
        if self.linger:
            self._flush_pending()
            self.write(
                (
                    "Content-Type: text/disconnect-notice\n"
                    f"Controlled-Session-UUID: {session.uuid}\n"
                    "Content-Disposition: linger\n"
                    f"Channel-Name: {session.name}\n"
                    f"Linger-Time: {self.linger_time}\n"
                    "Content-Length: 0\n\n"
                ).encode()
            )
            if self.linger_time >= 0:
                self._later(self._linger_timeout(self.linger_time))
        else:
            self._pending.clear()
            self._stop()

    async def _linger_timeout(self, seconds: int) -> None:
        await asyncio.sleep(seconds)
        self._stop()

    def _later(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _stop(self) -> None:
        if not self.running:
            return
        self.running = False
        self._flush_pending()
        self.send_disconnect()
        self._flush_out()
        self._closing = True
        with contextlib.suppress(Exception):
            self.writer.close()

    # ------------------------------------------------------------------ main loop
    async def serve(self, first_reply: bool = True) -> None:
        """Read and run commands until exit, EOF or a fatal frame."""
        try:
            if not self.outbound:
                self.write(b"Content-Type: auth/request\n\n")
            first = True
            while self.running:
                try:
                    if first:
                        # listener_run: the first packet (outbound's connect, inbound's auth)
                        # must come in 25 s (read_packet(listener, &event, 25)).
                        command = await asyncio.wait_for(self.reader.read(), FIRST_PACKET_TIMEOUT)
                    else:
                        command = await self.reader.read()
                except ProtocolError as err:
                    log.warning("esl: dropping connection: %s", err)
                    break
                except TimeoutError:
                    log.warning("esl: client sent nothing in %s s", FIRST_PACKET_TIMEOUT)
                    break
                if command is None:
                    break
                self._busy += 1
                try:
                    reply = await self.handle(command)
                    self._update_routes()
                except Exception:
                    log.exception("esl: command %r failed", command.line[:80])
                    reply = "-ERR command failed"
                finally:
                    self._busy -= 1
                if reply is not None and (first_reply or not first or not self.outbound):
                    self.reply(reply)
                first = False
                if not self._busy:
                    self._flush_pending()
                await self._drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            await self.close()

    async def close(self) -> None:
        """Unsubscribe, send the final disconnect notice and close the socket."""
        self._unsubscribe()
        if self.running:
            self.running = False
            self._flush_pending()
        self.send_disconnect()
        self._flush_out()
        self._closing = True
        with contextlib.suppress(Exception):
            self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        self.finished.set()

    # ------------------------------------------------------------------ commands
    async def handle(self, command: Command) -> str | None:
        """parse_command: returns the Reply-Text (None when the reply was already sent)."""
        cmd = command.line
        low = cmd.lower()
        if low.startswith("exit") or low.startswith("..."):
            self.running = False
            return "+OK bye"
        if not self.authed:
            if low.startswith("auth "):
                if cmd[5:] == self.password:
                    self.authed = True
                    return "+OK accepted"
                self.running = False
                return "-ERR invalid"
            return "-ERR command not found"
        if low.startswith("filter "):
            return self._filter(cmd[7:])
        if self.session is not None and low.startswith("resume"):
            self.resume = True
            self.session.set_var("socket_resume", "true")
            return "+OK"
        if self.session is not None or low.startswith("myevents "):
            if low.startswith("connect"):
                if self.session is not None:
                    self._connect_reply()
                    self.connected.set()
                    return None
            elif low.startswith("getvar"):
                _, _, name = cmd.partition(" ")
                value = self.session.get_var(name.strip()) if self.session and name else ""
                return value or ""
            elif low.startswith("myevents"):
                return self._myevents(cmd)
        if low.startswith("divert_events"):
            if self.session is None:
                return "-ERR not controlling a session."
            onoff = cmd[13:].strip()
            if not onoff:
                return "-ERR missing value."
            if onoff.lower() == "on":
                return "+OK events diverted"
            return "+OK events not diverted"
        if low.startswith("sendmsg"):
            return await self._sendmsg(command)
        if self.outbound and not self.full:
            return "-ERR command not found"
        if low.startswith("sendevent"):
            return self._sendevent(command)
        if low.startswith("api "):
            await self._api(cmd[4:])
            return None
        if low.startswith("bgapi "):
            self._bgapi(cmd[6:], command.get("job-uuid"))
            return None
        if low.startswith("log"):
            level_s = cmd[3:].strip().split(" ", 1)[0] if cmd[3:].strip() else ""
            level = 7
            if level_s:
                level = (
                    int(level_s)
                    if level_s.isdigit() and int(level_s) <= 7
                    else LOG_LEVELS.get(level_s.lower(), -1)
                )
            if level < 0:
                return "-ERR invalid log level"
            self.log_level = level
            return f"+OK log level {level_s} [{level}]"
        if low.startswith("linger"):
            if self.session is None:
                return "-ERR not controlling a session"
            arg = cmd[6:]
            self.linger = True
            if arg.startswith(" ") and arg[1:]:
                self.linger_time = _atoi(arg[1:])
                return f"+OK will linger {self.linger_time} seconds"
            self.linger_time = -1
            return "+OK will linger"
        if low.startswith("nolinger"):
            if self.session is None:
                return "-ERR not controlling a session"
            self.linger = False
            return "+OK will not linger"
        if low.startswith("nolog"):
            if self.log_level is not None:
                self.log_level = None
                return "+OK no longer logging"
            return "-ERR not loging"
        if low.startswith("event"):
            return self._event(cmd)
        if low.startswith("nixevent"):
            return self._nixevent(cmd)
        if low.startswith("noevents"):
            self._pending.clear()
            if self.events_enabled:
                self.events_enabled = False
                self.event_names.clear()
                self.all_events = False
                self.custom.clear()
                self.all_custom = False
                return "+OK no longer listening for events"
            return "-ERR not listening for events"
        return "-ERR command not found"

    def _filter(self, rest: str) -> str:
        rest = rest.lstrip(" ")
        name, sep, value = rest.partition(" ")
        if name.lower() == "delete" and sep:
            name, sep2, value = value.partition(" ")
            if name.lower() == "all":
                self.filters.clear()
            else:
                self.filters = [
                    (k, v)
                    for (k, v) in self.filters
                    if not (k.lower() == name.lower() and (not sep2 or v == value))
                ]
            return f"+OK filter deleted. [{name}][{value if sep2 else ''}]"
        if sep:
            if name.lower() == "add":
                name, _, value = value.partition(" ")
            self.filters.append((name, value))
            return f"+OK filter added. [{name}]=[{value}]"
        return "-ERR invalid syntax"

    def _myevents(self, cmd: str) -> str:
        if self.myevents:
            return "-ERR aready enabled."
        if self.session is None:
            rest = cmd[9:].strip()
            uid, _, fmt = rest.partition(" ")
            ch = self.switch.channel(uid)
            if ch is None and fmt:
                return "-ERR invalid uuid"
            self.session = ch
            self.async_mode = True
            if fmt.lower() in ("plain", "json", "xml"):
                self.format = fmt.lower()
        self.event_names |= MYEVENTS
        self.myevents = True
        self.events_enabled = True
        if "xml" in cmd or "XML" in cmd:
            self.format = "xml"
        if "json" in cmd or "JSON" in cmd:
            self.format = "json"
        return "+OK Events Enabled"

    def _event(self, cmd: str) -> str:
        words = cmd.split(" ")[1:]
        key_count = 0
        custom = False
        for i, word in enumerate(words):
            if not word:
                continue
            if i == 0 and word.lower() in ("plain", "json", "xml"):
                self.format = word.lower()
                continue
            if custom:
                self.custom.add(word)
                continue
            name = _event_name(word)
            if name is None:
                continue
            key_count += 1
            if name == "ALL":
                self.all_events = True
                self.all_custom = True
                self.event_names.update(EVENT_NAMES)
            else:
                self.event_names.add(name)
            if name == "CUSTOM":
                custom = True
        if not key_count:
            return "-ERR no keywords supplied"
        self.events_enabled = True
        return f"+OK event listener enabled {self.format}"

    def _nixevent(self, cmd: str) -> str:
        words = cmd.split(" ")[1:]
        key_count = 0
        custom = False
        for word in words:
            if not word:
                continue
            if custom:
                self.custom.discard(word)
                continue
            name = _event_name(word)
            if name is None:
                continue
            key_count += 1
            if name == "CUSTOM":
                custom = True
            elif name == "ALL":
                self.all_events = False
                self.all_custom = False
                self.event_names.clear()
            else:
                if self.all_events:
                    self.all_events = False
                    self.event_names.update(EVENT_NAMES)
                    self.event_names.discard("ALL")
                self.event_names.discard(name)
        if not key_count:
            return "-ERR no keywords supplied"
        self.events_enabled = True
        return "+OK events nixed"

    async def _sendmsg(self, command: Command) -> str:
        rest = command.line[7:].strip()
        uid: str | None = rest or command.get("session-id")
        async_ = self.async_mode or _true(command.get("async"))
        if uid and self.session is not None and uid == self.session.uuid:
            uid = None
        message = _message(command)
        if not uid and self.session is not None:
            if async_:
                self.session.queue_message(message)
            else:
                if message.command == "hangup":
                    self.session.queue_message(message)
                else:
                    await self.session.run_message(message)
            return "+OK"
        target = self.switch.channel(uid) if uid else None
        if target is None:
            return f"-ERR invalid session id [{uid or '(null)'}]"
        target.queue_message(message)
        return "+OK"

    def _sendevent(self, command: Command) -> str:
        event_uuid = str(uuidlib.uuid4())
        name_word = command.line[9:].strip()
        name = _event_name(name_word) if name_word else None
        headers = [(k, v) for (k, v) in command.headers if k.lower() != "content-length"]
        subclass = command.get("Event-Subclass")
        event = self.switch.events.create(name or "CUSTOM", subclass if name == "CUSTOM" else None)
        base = {k for k, _ in event.headers}
        event.headers.extend((k, v) for k, v in headers if k not in base)
        event.headers.append(("Event-UUID", event_uuid))
        event.body = command.body
        self.switch.fire(event)
        return f"+OK {event_uuid}"

    async def _api(self, line: str) -> None:
        output = await self.switch.api(line)
        if not output:
            output = "-ERR no reply\n"
        self.write(api_response_frame(output))

    def _bgapi(self, line: str, job_uuid: str | None) -> None:
        job = job_uuid or str(uuidlib.uuid4())
        owner = self.session.uuid if self.session is not None else ""
        self.reply(f"~Reply-Text: +OK Job-UUID: {job}\nJob-UUID: {job}\n\n")
        cmd, _, arg = line.partition(" ")

        async def run() -> None:
            try:
                output = await self.switch.api(line)
            except Exception:
                log.exception("bgapi %s failed", cmd)
                output = f"-ERR {cmd} Command not found!\n"
            headers = [("Job-UUID", job), ("Job-Owner-UUID", owner), ("Job-Command", cmd)]
            if arg:
                headers.append(("Job-Command-Arg", arg))
            self.switch.fire_plain(
                "BACKGROUND_JOB", headers, output or "Command returned no output!", route=owner
            )

        self.switch.spawn(run())

    def _connect_reply(self) -> None:
        session = self.session
        assert session is not None
        event = self.switch.events.create(
            "CHANNEL_DATA", calling=("mod_event_socket.c", "parse_command", "2029")
        )
        event.headers.extend(session.profile.headers("Channel"))
        session.event_data(event.headers, True)
        event.headers.extend(
            [
                ("Content-Type", "command/reply"),
                ("Reply-Text", "+OK\n"),
                ("Socket-Mode", "async" if self.async_mode else "static"),
                ("Control", "full" if self.full else "single-channel"),
            ]
        )
        self.write(serialize_event_plain(event.headers))


def _event_name(word: str) -> str | None:
    upper = word.upper()
    if upper.startswith("SWITCH_EVENT_"):
        upper = upper[13:]
    return upper if upper in EVENT_NAME_SET else None


def _true(value: str | None) -> bool:
    return bool(value) and value.lower() in ("true", "yes", "on", "1")  # type: ignore[union-attr]


def _message(command: Command) -> Message:
    headers = {k.lower(): v for k, v in command.headers}
    return Message(headers.get("call-command", "").lower(), headers, command.body)
