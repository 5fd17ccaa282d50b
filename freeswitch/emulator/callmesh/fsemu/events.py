"""Switch events: header order as switch_event_prep_for_delivery, lazy serialization per format."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from callmesh.core.esl import (
    event_frame,
    event_plain_from_lines,
    serialize_event_json,
    serialize_header_lines,
)

Clock = Callable[[], float]

# switch_event.c EVENT_NAMES, in switch_event_types_t order (SWITCH_EVENT_ALL last).
EVENT_NAMES: tuple[str, ...] = (
    "CUSTOM", "CLONE", "CHANNEL_CREATE", "CHANNEL_DESTROY", "CHANNEL_STATE",
    "CHANNEL_CALLSTATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HOLD", "CHANNEL_UNHOLD",
    "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_OUTGOING", "CHANNEL_PARK", "CHANNEL_UNPARK", "CHANNEL_APPLICATION",
    "CHANNEL_ORIGINATE", "CHANNEL_UUID", "API", "LOG", "INBOUND_CHAN", "OUTBOUND_CHAN",
    "STARTUP", "SHUTDOWN", "PUBLISH", "UNPUBLISH", "TALK", "NOTALK", "SESSION_CRASH",
    "MODULE_LOAD", "MODULE_UNLOAD", "DTMF", "MESSAGE", "PRESENCE_IN", "NOTIFY_IN",
    "PRESENCE_OUT", "PRESENCE_PROBE", "MESSAGE_WAITING", "MESSAGE_QUERY", "ROSTER",
    "CODEC", "BACKGROUND_JOB", "DETECTED_SPEECH", "DETECTED_TONE", "PRIVATE_COMMAND",
    "HEARTBEAT", "TRAP", "ADD_SCHEDULE", "DEL_SCHEDULE", "EXE_SCHEDULE", "RE_SCHEDULE",
    "RELOADXML", "NOTIFY", "PHONE_FEATURE", "PHONE_FEATURE_SUBSCRIBE", "SEND_MESSAGE",
    "RECV_MESSAGE", "REQUEST_PARAMS", "CHANNEL_DATA", "GENERAL", "COMMAND", "SESSION_HEARTBEAT",
    "CLIENT_DISCONNECTED", "SERVER_DISCONNECTED", "SEND_INFO", "RECV_INFO", "RECV_RTCP_MESSAGE",
    "SEND_RTCP_MESSAGE", "CALL_SECURE", "NAT", "RECORD_START", "RECORD_STOP", "PLAYBACK_START",
    "PLAYBACK_STOP", "CALL_UPDATE", "FAILURE", "SOCKET_DATA", "MEDIA_BUG_START",
    "MEDIA_BUG_STOP", "CONFERENCE_DATA_QUERY", "CONFERENCE_DATA", "CALL_SETUP_REQ",
    "CALL_SETUP_RESULT", "CALL_DETAIL", "DEVICE_STATE", "TEXT", "SHUTDOWN_REQUESTED", "ALL",
)  # fmt: skip
EVENT_NAME_SET = frozenset(EVENT_NAMES)

# Events that carry variable_* headers (switch_channel_event_set_extended_data).
VARIABLE_EVENTS = frozenset(
    {
        "CHANNEL_CREATE", "CHANNEL_ORIGINATE", "CHANNEL_UUID", "CHANNEL_ANSWER", "CHANNEL_PARK",
        "CHANNEL_UNPARK", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE", "CHANNEL_PROGRESS",
        "CHANNEL_PROGRESS_MEDIA", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "REQUEST_PARAMS",
        "CHANNEL_DATA", "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_DESTROY",
        "SESSION_HEARTBEAT", "API", "RECORD_START", "RECORD_STOP", "PLAYBACK_START",
        "PLAYBACK_STOP", "CALL_UPDATE", "MEDIA_BUG_START", "MEDIA_BUG_STOP", "CHANNEL_HOLD",
        "CHANNEL_UNHOLD", "TEXT", "CUSTOM",
    }
)  # fmt: skip

# Event-Calling-File / -Function / -Line-Number where FreeSWITCH (HEAD cc93a683) fires each event.
_SC = "switch_channel.c"
_SM = "switch_core_state_machine.c"
CALLING: dict[str, tuple[str, str, str]] = {
    "CHANNEL_CREATE": ("switch_core_state_machine.c", "switch_core_session_run", "626"),
    "CHANNEL_ORIGINATE": ("switch_core_state_machine.c", "switch_core_session_run", "632"),
    "CHANNEL_STATE": ("switch_channel.c", "switch_channel_perform_set_running_state", "2409"),
    "CHANNEL_CALLSTATE": ("switch_channel.c", "switch_channel_perform_set_callstate", "302"),
    "CHANNEL_HANGUP": ("switch_channel.c", "switch_channel_perform_hangup", "3447"),
    "CHANNEL_PROGRESS": (_SC, "switch_channel_perform_mark_ring_ready_value", "3507"),
    "CHANNEL_PROGRESS_MEDIA": (_SC, "switch_channel_perform_mark_pre_answered", "3562"),
    "CHANNEL_ANSWER": ("switch_channel.c", "switch_channel_perform_mark_answered", "3848"),
    "CHANNEL_HANGUP_COMPLETE": (_SM, "switch_core_session_reporting_state", "943"),
    "CHANNEL_OUTGOING": ("switch_core_session.c", "switch_core_session_outgoing_channel", "768"),
    "CHANNEL_DESTROY": ("switch_core_session.c", "switch_core_session_perform_destroy", "1588"),
    "CHANNEL_UUID": ("switch_core_session.c", "switch_core_session_set_uuid", "2056"),
    "CHANNEL_EXECUTE": ("switch_core_session.c", "switch_core_session_exec", "2949"),
    "CHANNEL_EXECUTE_COMPLETE": ("switch_core_session.c", "switch_core_session_exec", "2972"),
    "CHANNEL_PARK": ("switch_ivr.c", "switch_ivr_park", "1002"),
    "CHANNEL_UNPARK": ("switch_ivr.c", "switch_ivr_park", "1213"),
    "CHANNEL_HOLD": ("switch_channel.c", "switch_channel_mark_hold", "876"),
    "CHANNEL_UNHOLD": ("switch_channel.c", "switch_channel_mark_hold", "876"),
    "CHANNEL_BRIDGE": ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", "1689"),
    "CHANNEL_UNBRIDGE": ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", "1879"),
    "DTMF": ("switch_channel.c", "switch_channel_dequeue_dtmf", "678"),
    "PLAYBACK_START": ("switch_ivr_play_say.c", "switch_ivr_play_file", "1649"),
    "PLAYBACK_STOP": ("switch_ivr_play_say.c", "switch_ivr_play_file", "2023"),
    "RECORD_START": ("switch_ivr_async.c", "record_callback", "1482"),
    "RECORD_STOP": ("switch_ivr_async.c", "record_callback", "1241"),
    "BACKGROUND_JOB": ("mod_event_socket.c", "api_exec", "1580"),
    "HEARTBEAT": ("switch_core.c", "send_heartbeat", "70"),
}  # fmt: skip
_DEFAULT_CALLING = ("switch_event.c", "switch_event_fire_detailed", "0")

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class DateCache:
    """Event-Date-Local / Event-Date-GMT strings, formatted once per second."""

    __slots__ = ("_gmt", "_local", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._local = ""
        self._gmt = ""

    def strings(self, now: float) -> tuple[str, str]:
        """The local ("%Y-%m-%d %T") and RFC 822 GMT dates for an epoch time."""
        second = int(now)
        if second != self._second:
            lt = time.localtime(second)
            self._local = time.strftime("%Y-%m-%d %H:%M:%S", lt)
            g = time.gmtime(second)
            self._gmt = (
                f"{_DAYS[g.tm_wday]}, {g.tm_mday:02d} {_MONTHS[g.tm_mon - 1]} {g.tm_year} "
                f"{g.tm_hour:02d}:{g.tm_min:02d}:{g.tm_sec:02d} GMT"
            )
            self._second = second
        return self._local, self._gmt


class Event:
    """One fired event: headers in wire order, optional body, serialized at most once per format."""

    __slots__ = (
        "_blocks",
        "_frames",
        "_index",
        "_plain_len",
        "body",
        "headers",
        "name",
        "route",
        "seq",
        "subclass",
    )

    def __init__(
        self,
        name: str,
        headers: list[tuple[str, str]],
        body: str | None = None,
        subclass: str | None = None,
        seq: int = 0,
    ) -> None:
        self.name = name
        self.headers = headers
        self.body = body
        self.subclass = subclass
        self.seq = seq
        # The session UUID this event concerns (Unique-ID, or Job-Owner-UUID for a job).
        self.route: str | None = None
        self._index: dict[str, str] | None = None
        self._frames: dict[str, bytes] = {}
        self._blocks: list[tuple[int, int, str]] = []
        self._plain_len = -1

    def add_blocks(self, blocks: Sequence[tuple[int, int, str]]) -> None:
        """Header ranges [start, end) whose plain serialization is already known."""
        self._blocks.extend(blocks)
        self._plain_len = len(self.headers)

    def _plain_lines(self) -> str:
        # Headers are append-only once an event is built: recorded blocks stay valid while the
        # list only grows (anything else falls back to serializing every header).
        headers = self.headers
        blocks = self._blocks
        if not blocks or len(headers) < self._plain_len:
            return serialize_header_lines(headers)
        pieces: list[str] = []
        i = 0
        for start, end, text in blocks:
            if start > i:
                pieces.append(serialize_header_lines(headers[i:start]))
            pieces.append(text)
            i = end
        if i < len(headers):
            pieces.append(serialize_header_lines(headers[i:]))
        return "".join(pieces)

    def get(self, name: str, default: str | None = None) -> str | None:
        """First header of that name (case-insensitive, as switch_event_get_header)."""
        index = self._index
        if index is None:
            index = {}
            for key, value in self.headers:
                index.setdefault(key.lower(), value)
            self._index = index
        return index.get(name.lower(), default)

    @property
    def unique_id(self) -> str | None:
        """The Unique-ID header, if any."""
        return self.get("Unique-ID")

    def serialize(self, fmt: str) -> bytes:
        """The serialized event (plain or json) — computed once per format."""
        key = "s-" + fmt
        data = self._frames.get(key)
        if data is None:
            if fmt == "json":
                data = serialize_event_json(self.headers, self.body)
            elif fmt == "xml":
                data = _serialize_xml(self.headers, self.body)
            else:
                data = event_plain_from_lines(self._plain_lines(), self.body)
            self._frames[key] = data
        return data

    def frame(self, fmt: str) -> bytes:
        """The whole outer frame (Content-Length, Content-Type, serialized event)."""
        data = self._frames.get(fmt)
        if data is None:
            data = event_frame(self.serialize(fmt), f"text/event-{fmt}")
            self._frames[fmt] = data
        return data


def _xml_text(value: str) -> str:
    # switch_xml_ampencode for element text with USE_UTF_8_ENCODING: & < > escaped, CR as
    # &#xD;, every non-ASCII character as &#xHEX;.
    out = []
    for ch in value:
        if ch == "&":
            out.append("&amp;")
        elif ch == "<":
            out.append("&lt;")
        elif ch == ">":
            out.append("&gt;")
        elif ch == "\r":
            out.append("&#xD;")
        elif ord(ch) > 0x7F:
            out.append(f"&#x{ord(ch):X};")
        else:
            out.append(ch)
    return "".join(out)


def _serialize_xml(headers: Sequence[tuple[str, str]], body: str | None) -> bytes:
    """switch_event_xmlize + switch_xml_toxml(xml, SWITCH_FALSE): two-space indented document."""
    from callmesh.core.esl import url_encode

    parts = ["<event>\n  <headers>\n"]
    for name, value in headers:
        parts.append(f"    <{name}>{url_encode(value)}</{name}>\n")
    parts.append("  </headers>\n")
    if body:
        size = len(body.encode("utf-8", "surrogateescape"))
        parts.append(f"  <Content-Length>{size}</Content-Length>\n")
        parts.append(f"  <body>{_xml_text(body)}</body>\n")
    parts.append("</event>\n")
    return "".join(parts).encode()


class EventFactory:
    """Builds the common header block FreeSWITCH puts at the top of every event."""

    def __init__(self, core_uuid: str, hostname: str, ipv4: str, clock: Clock) -> None:
        self.core_uuid = core_uuid
        self.hostname = hostname
        self.ipv4 = ipv4
        self.ipv6 = "::1"
        self.clock = clock
        self.sequence = 0
        self._dates = DateCache()
        # Serialized header lines that only change with the event name or the second.
        self._heads: dict[str, str] = {}
        self._callings: dict[tuple[str, str, str], str] = {}
        self._date_second = -1
        self._date_text = ""

    def now_us(self) -> int:
        """The clock as integer microseconds."""
        return int(self.clock() * 1_000_000)

    def create(
        self,
        name: str,
        subclass: str | None = None,
        calling: tuple[str, str, str] | None = None,
    ) -> Event:
        """A new event with Event-Name … Event-Sequence (and Event-Subclass for CUSTOM)."""
        self.sequence += 1
        now = self.clock()
        local, gmt = self._dates.strings(now)
        file, func, line = calling or CALLING.get(name, _DEFAULT_CALLING)
        headers = [
            ("Event-Name", name),
            ("Core-UUID", self.core_uuid),
            ("FreeSWITCH-Hostname", self.hostname),
            ("FreeSWITCH-Switchname", self.hostname),
            ("FreeSWITCH-IPv4", self.ipv4),
            ("FreeSWITCH-IPv6", self.ipv6),
            ("Event-Date-Local", local),
            ("Event-Date-GMT", gmt),
            ("Event-Date-Timestamp", str(int(now * 1_000_000))),
            ("Event-Calling-File", file),
            ("Event-Calling-Function", func),
            ("Event-Calling-Line-Number", line),
            ("Event-Sequence", str(self.sequence)),
        ]
        if subclass is not None:
            headers.append(("Event-Subclass", subclass))
        event = Event(name, headers, None, subclass, self.sequence)
        # The same block as plain text, from pieces cached per name / calling site / second
        # (timestamp and sequence are digits: nothing to encode).
        head = self._heads.get(name)
        if head is None:
            head = self._heads[name] = serialize_header_lines(headers[:6])
        second = int(now)
        if second != self._date_second:
            self._date_text = serialize_header_lines(headers[6:8])
            self._date_second = second
        calling_text = self._callings.get((file, func, line))
        if calling_text is None:
            calling_text = serialize_header_lines(headers[9:12])
            self._callings[(file, func, line)] = calling_text
        text = (
            f"{head}{self._date_text}Event-Date-Timestamp: {headers[8][1]}\n{calling_text}"
            f"Event-Sequence: {self.sequence}\n"
        )
        if subclass is not None:
            text += serialize_header_lines(headers[13:])
        event.add_blocks([(0, len(headers), text)])
        return event
