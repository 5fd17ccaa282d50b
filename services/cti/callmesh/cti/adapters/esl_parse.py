"""What both event readers share (greenswitch's in ``esl.py``, the asyncio one, ``esl_events.py``).

No I/O and no gevent: the byte-exact lazy parser of ``text/event-plain`` payloads, the
subscription commands, the live-channel snapshot read from ``show channels``/``show calls``, and
the side the events are handed to (``EslSink``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import unquote

from callmesh.core.esl import EslParseError
from callmesh.cti.domain.normalize import CUSTOM_SUBCLASSES, SUBSCRIBED

# Everything the link normalizes (BACKGROUND_JOB is a command reply: see JOB_SUBSCRIBE_COMMAND).
EVENTS_SUBSCRIBE_COMMAND = (
    "event plain "
    + " ".join(name for name in SUBSCRIBED if name != "BACKGROUND_JOB")
    + " CUSTOM "
    + " ".join(CUSTOM_SUBCLASSES)
)
# One connection for everything (the greenswitch reader).
SUBSCRIBE_COMMAND = "event plain " + " ".join(SUBSCRIBED) + " CUSTOM " + " ".join(CUSTOM_SUBCLASSES)
# The command connection when another connection reads the events.
JOB_SUBSCRIBE_COMMAND = "event plain BACKGROUND_JOB"
SHOW_CHANNELS = "api show channels as json"
SHOW_CALLS = "api show calls as json"
MAX_BODY_BYTES = 16 * 1024 * 1024


class LazyHeaders(Mapping[str, str]):
    """An event's headers, percent-decoded when read (most are never read).

    ``callmesh.core.esl.parse_event_plain`` decodes every value up front; at thousands of events
    per second with ~150 headers each that was most of the link's time. This gives the same
    values (tested against it), decoding only the ones the normalizer asks for.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: dict[str, str] | None = None) -> None:
        self._raw: dict[str, str] = raw if raw is not None else {}

    def get(self, key: str, default: Any = None) -> Any:
        """The decoded value, or ``default``."""
        value = self._raw.get(key)
        if value is None:
            return default
        if "%" in value:
            value = unquote(value)
            self._raw[key] = value
        return value

    def __getitem__(self, key: str) -> str:
        value = self._raw[key]
        if "%" in value:
            value = unquote(value)
            self._raw[key] = value
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def pop_raw(self, key: str) -> str | None:
        """Remove a header, returning its undecoded value."""
        return self._raw.pop(key, None)

    def decoded(self) -> dict[str, str]:
        """Every header decoded (a plain dict)."""
        return {key: self[key] for key in self._raw}


def _checked_headers(lines: list[str]) -> LazyHeaders:
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(": ")
        if sep:
            headers[name] = value
        elif line.endswith(":"):
            headers[line[:-1]] = ""
        elif line:
            raise EslParseError(f"bad header line {line[:80]!r} (expected 'Name: value')")
    return LazyHeaders(headers)


def parse_event_lazy(data: bytes) -> tuple[LazyHeaders, str | None]:
    """A text/event-plain payload → (headers decoded on read, body); EslParseError if bad."""
    end = data.find(b"\n\n")
    head = data if end < 0 else data[:end]
    text = head.decode("utf-8", "replace").rstrip("\n")
    # FreeSWITCH encodes ':' and ' ' in values, so a good line holds exactly one ": " and one
    # C-level split gives name, value, name, value … (the per-line Python loop cost the most).
    parts = text.replace(": ", "\n").split("\n")
    pairs = len(parts) // 2
    if len(parts) % 2 == 0 and text.count(": ") == pairs and text.count("\n") + 1 == pairs:
        # Filled from the end: the first of two same-named headers wins, as EslEvent.as_dict.
        headers = LazyHeaders(dict(zip(parts[-2::-2], parts[::-2], strict=True)))
    else:
        lines = text.split("\n")
        lines.reverse()
        headers = _checked_headers(lines)
    if not headers:
        raise EslParseError("event has no headers")
    body: str | None = None
    length = headers.pop_raw("Content-Length")
    if length is not None:
        if not length.strip().isdigit():
            raise EslParseError(f"inner Content-Length {length!r} is not a number >= 0")
        rest = data[end + 2 :] if end >= 0 else b""
        size = int(length)
        if len(rest) < size:
            raise EslParseError(f"inner body truncated: {len(rest)} of {size} bytes")
        body = rest[:size].decode("utf-8", "replace")
    return headers, body


class EslSink(Protocol):
    """The asyncio side the events and connection changes are handed to (``CtiLink``)."""

    async def on_events(self, batch: Sequence[Mapping[str, str]]) -> None:
        """A batch of events, in arrival order."""

    async def on_snapshot_begin(self) -> None:
        """The live channels are being asked for: events handed over later may be newer."""

    async def on_connected(
        self, live: Mapping[str, str] | None, esl_endpoint: str, *, reconnect: bool
    ) -> None:
        """The socket is up; ``live`` maps each live channel to its partner hint (None: the
        switch could not say, the table is left as it is)."""

    async def on_disconnected(self, reason: str) -> None:
        """The socket is lost."""


def _rows(data: Any) -> list[dict[str, Any]]:
    text = str(data or "").strip()
    if not text or text.startswith("-ERR"):
        raise ValueError(text or "empty answer")
    parsed = json.loads(text)
    rows = parsed.get("rows") if isinstance(parsed, dict) else None
    return [row for row in rows or () if isinstance(row, dict)]


def live_channels(channels_output: Any, calls_output: Any) -> dict[str, str]:
    """Live channels → partner hints, from ``show channels as json`` and ``show calls as json``
    output; ValueError (or TypeError) when either is not such an answer."""
    live: dict[str, str] = {}
    for row in _rows(channels_output):
        uuid = str(row.get("uuid") or "")
        if uuid:
            call_uuid = str(row.get("call_uuid") or "")
            live[uuid] = call_uuid if call_uuid != uuid else ""
    for row in _rows(calls_output):
        a = str(row.get("uuid") or "")
        b = str(row.get("b_uuid") or "")
        if a and b:
            live.setdefault(a, "")
            live[b] = a
    return live
