"""What both event readers share (greenswitch's in ``esl.py``, the asyncio one, ``esl_events.py``).

No I/O and no gevent: the byte-exact lazy parser of ``text/event-plain`` payloads, the
subscription commands, the live-channel snapshot read from ``show channels``/``show calls``, and
the side the events are handed to (``EslSink``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from callmesh.core.esl import EslParseError, url_decode
from callmesh.cti.domain.normalize import (
    CUSTOM_SUBCLASSES,
    HEADER_PREFIXES_READ,
    HEADERS_READ,
    SUBSCRIBED,
)

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

    Built by ``parse_event_fast`` it holds only the picked headers (``PICKED``, ``PICKED_PREFIXES``)
    and the raw event: asking for any other name, iterating or counting parses the whole event
    first (``parse_event_lazy``), so every read gives what the whole parse gives.
    """

    __slots__ = ("_data", "_decoded", "_raw")

    def __init__(self, raw: dict[str, str] | None = None, data: bytes | None = None) -> None:
        self._raw: dict[str, str] = raw if raw is not None else {}
        # Set while only the picked headers are in ``_raw``.
        self._data = data
        # Values decoded so far (a decoded value may hold '%' again: never decoded twice).
        self._decoded: dict[str, str] | None = None

    @property
    def picked(self) -> bool:
        """True while only the picked headers are held (nothing has asked for more yet)."""
        return self._data is not None

    def _whole(self) -> dict[str, str]:
        data = self._data
        if data is not None:
            self._data = None
            self._raw = parse_event_lazy(data)[0]._raw
        return self._raw

    def get(self, key: str, default: Any = None) -> Any:
        """The decoded value, or ``default``."""
        value = self._raw.get(key)
        if value is None:
            if self._data is None or key in PICKED or key.startswith(PICKED_PREFIXES):
                return default
            value = self._whole().get(key)
            if value is None:
                return default
        if "%" in value:
            decoded = self._decoded
            if decoded is None:
                decoded = self._decoded = {}
            elif key in decoded:
                return decoded[key]
            value = decoded[key] = url_decode(value)
        return value

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return str(value)

    def __contains__(self, key: object) -> bool:
        if key in self._raw:
            return True
        if self._data is None or not isinstance(key, str):
            return False
        if key in PICKED or key.startswith(PICKED_PREFIXES):
            return False
        return key in self._whole()

    def __iter__(self) -> Iterator[str]:
        return iter(self._whole())

    def __len__(self) -> int:
        return len(self._whole())

    def names_with_prefix(self, prefix: str) -> Iterable[str]:
        """The header names starting with ``prefix``, in the order iterating gives them."""
        raw = self._raw if prefix.startswith(PICKED_PREFIXES) else self._whole()
        return [name for name in raw if name.startswith(prefix)]

    def pop_raw(self, key: str) -> str | None:
        """Remove a header, returning its undecoded value."""
        self._whole()
        if self._decoded is not None:
            self._decoded.pop(key, None)
        return self._raw.pop(key, None)

    def decoded(self) -> dict[str, str]:
        """Every header decoded (a plain dict)."""
        return {key: self[key] for key in self._whole()}


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


# What ``parse_event_fast`` picks: the headers the link reads, and Content-Length (an event with a
# body of its own is parsed whole).
PICKED: frozenset[str] = HEADERS_READ | {"Event-Name", "Content-Length", "Job-UUID"}
PICKED_PREFIXES: tuple[str, ...] = HEADER_PREFIXES_READ


def _alternation(names: Iterable[str], prefixes: Iterable[str]) -> str:
    """A regex alternation matching exactly ``names``, or a prefix then any name characters,
    factored by common prefixes (the engine then rejects a line in a few character tests)."""
    trie: dict[str, Any] = {}
    for word, open_ended in [(n, False) for n in names] + [(p, True) for p in prefixes]:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node["*" if open_ended else ""] = True

    def emit(node: dict[str, Any]) -> str:
        alternatives = [
            re.escape(c) + emit(node[c]) for c in sorted(node) if len(c) == 1 and c != "*"
        ]
        if "*" in node:
            alternatives.append(r"[^:\n]*+")
        if "" in node:
            alternatives.append("")
        return alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"

    return emit(trie)


# After a newline, a picked header line: its name and value ("Name:" alone is an empty value).
_PICK = re.compile(r"\n(" + _alternation(PICKED, PICKED_PREFIXES) + r")(?:: ([^\n]*+)|:(?=\n|\Z))")


def parse_event_fast(data: bytes) -> tuple[LazyHeaders, str | None]:
    """Like ``parse_event_lazy``, picking only the headers the link reads out of the raw bytes.

    One pass of a compiled pattern finds the picked lines: the block is not split into its
    ~150 lines, nor a dict of them built. Taken when the payload is as FreeSWITCH writes it: as
    many ": " as header lines (switch_url_encode escapes ':' and ' ' in values), the block ending
    the payload with its blank line, no inner body; then every value read is the one
    ``parse_event_lazy`` gives (the first of two same-named headers wins, percent-decoded on
    read). Any other payload, bad input included, is parsed by ``parse_event_lazy`` (same
    result, same errors). The one input read differently takes two faults at once: a line
    without ": " (or an empty one) made up for by a line with two, which ``parse_event_lazy``
    refuses or misreads (its own fast path trusts the same count); here the picked lines
    still read right.
    """
    # Every line but the final empty one holds a ": " (so none is empty: the block is the
    # whole payload), and no Content-Length (an inner body).
    if data.endswith(b"\n\n") and data.count(b": ") == data.count(b"\n") - 1:
        # Filled from the end: the first of two same-named headers wins.
        headers = dict(reversed(_PICK.findall("\n" + data.decode("utf-8", "replace"))))
        if headers and "Content-Length" not in headers:
            return LazyHeaders(headers, data), None
    return parse_event_lazy(data)


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
