"""FreeSWITCH Event Socket wire codec: URL encoding, frame parsing and event serialization."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = [
    "EslEvent",
    "EslParseError",
    "Frame",
    "FrameParser",
    "MalformedFrame",
    "api_response_frame",
    "command_reply_frame",
    "event_frame",
    "event_plain_from_lines",
    "parse_event_json",
    "parse_event_plain",
    "serialize_event_json",
    "serialize_event_plain",
    "serialize_header_lines",
    "url_decode",
    "url_encode",
]

# SWITCH_URL_UNSAFE from src/include/switch_utils.h.
_URL_UNSAFE = b'\r\n #%&+:;<=>?@[\\]^`{|}"'
# switch_url_encode_opt only keeps an existing escape when both digits are UPPERCASE hex.
_UPPER_HEX = frozenset(b"0123456789ABCDEF")


def _needs_escape(byte: int) -> bool:
    return byte < 0x20 or byte > 0x7E or byte in _URL_UNSAFE


_ESCAPE = [f"%{b:02X}" if _needs_escape(b) else chr(b) for b in range(256)]
# For ASCII strings without '%': one str.translate call does the whole job.
_ASCII_TABLE = {b: _ESCAPE[b] for b in range(128) if _needs_escape(b)}


@lru_cache(maxsize=65536)
def _url_encode_cached(value: str) -> str:
    if value.isascii() and "%" not in value:
        return value.translate(_ASCII_TABLE)
    data = value.encode("utf-8", "surrogateescape")
    out: list[str] = []
    n = len(data)
    for i, byte in enumerate(data):
        if byte == 0x25 and n - i > 2 and data[i + 1] in _UPPER_HEX and data[i + 2] in _UPPER_HEX:
            out.append("%")
        else:
            out.append(_ESCAPE[byte])
    return "".join(out)


def url_encode(value: str) -> str:
    """Encode a header value exactly as FreeSWITCH's switch_url_encode (no double encoding)."""
    if len(value) > 512:
        return _url_encode_cached.__wrapped__(value)
    return _url_encode_cached(value)


# "%XX" escapes: the two hex digits (either case) → the byte.
_HEX_PAIRS = {
    f"{a}{b}".encode(): int(f"{a}{b}", 16)
    for a in "0123456789abcdefABCDEF"
    for b in "0123456789abcdefABCDEF"
}
_HEX_STR = frozenset(key.decode() for key in _HEX_PAIRS)


# "%XX" escapes of ASCII characters, as text: the two hex digits (either case) → the character.
_HEX_CHARS = {key.decode(): chr(byte) for key, byte in _HEX_PAIRS.items() if byte < 0x80}
# Decoded values by raw value: the same values (channel names, URIs, caller ids) recur in
# every event of a call.
_DECODED: dict[str, str] = {}
_DECODED_MAX = 65536


def url_decode(value: str) -> str:
    """Percent-decode a header value (`+` stays `+`); invalid escapes are kept literally."""
    if "%" not in value:
        return value
    decoded = _DECODED.get(value)
    if decoded is None:
        decoded = _url_decode(value)
        if len(value) <= 512:
            if len(_DECODED) >= _DECODED_MAX:
                _DECODED.clear()
            _DECODED[value] = decoded
    return decoded


def _url_decode(value: str) -> str:
    pieces = value.split("%")
    if value.isascii():
        # Escapes of ASCII characters only: no bytes needed.
        chars = _HEX_CHARS
        out = [pieces[0]]
        for piece in pieces[1:]:
            char = chars.get(piece[:2])
            if char is None:
                if piece[:2] in _HEX_STR:
                    break  # an escaped byte >= 0x80: decode as bytes below
                out.append("%")
                out.append(piece)
            else:
                out.append(char)
                out.append(piece[2:])
        else:
            return "".join(out)
    raw = value.encode("utf-8", "surrogateescape").split(b"%")
    data = bytearray(raw[0])
    pairs = _HEX_PAIRS
    for chunk in raw[1:]:
        byte = pairs.get(chunk[:2])
        if byte is None:
            data.append(0x25)
            data += chunk
        else:
            data.append(byte)
            data += chunk[2:]
    return data.decode("utf-8", "replace")


class EslParseError(ValueError):
    """A serialized event that cannot be parsed; the message names the reason."""


def _find_header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value
    lowered = name.lower()
    for key, value in headers:
        if key.lower() == lowered:
            return value
    return None


@dataclass(slots=True)
class Frame:
    """One FreeSWITCH → client frame: raw (not URL-decoded) headers and the body bytes."""

    headers: list[tuple[str, str]]
    body: bytes = b""

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first header of that name (exact case first, then case-insensitive)."""
        value = _find_header(self.headers, name)
        return default if value is None else value

    @property
    def content_type(self) -> str:
        """The frame's Content-Type, or an empty string."""
        return self.get("Content-Type") or ""


@dataclass(slots=True)
class MalformedFrame:
    """Bytes the parser had to skip, with the reason."""

    reason: str
    raw: bytes


class FrameParser:
    """Incremental parser of FreeSWITCH → client traffic (header block, blank line, body)."""

    # Consumed bytes are dropped from the front of the buffer only when at least this many
    # (and at least half the buffer) are dead, so feeding stays linear in the bytes fed.
    _COMPACT_BYTES = 65536

    def __init__(
        self, max_header_bytes: int = 65536, max_body_bytes: int = 16 * 1024 * 1024
    ) -> None:
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self._buf = bytearray()
        self._pos = 0  # start of the unconsumed bytes
        self._scan = 0  # no header block ends before this index
        self._pending: tuple[list[tuple[str, str]], int] | None = None
        self._skipping = False

    def feed(self, data: bytes) -> list[Frame | MalformedFrame]:
        """Add bytes; return every frame (or malformed chunk) completed so far."""
        buf = self._buf
        buf += data
        out: list[Frame | MalformedFrame] = []
        pos = self._pos
        size = len(buf)
        while True:
            if self._pending is not None:
                headers, length = self._pending
                if size - pos < length:
                    break
                body = bytes(buf[pos : pos + length])
                pos += length
                self._scan = pos
                self._pending = None
                out.append(Frame(headers, body))
                continue
            if self._skipping:
                end, sep = _block_end(buf, max(pos, self._scan))
                if end < 0:
                    pos = self._scan = max(pos, size - 2)
                    break
                pos = self._scan = end + sep
                self._skipping = False
                continue
            # Leading blank lines between frames are skipped, as FreeSWITCH does.
            while pos < size and buf[pos] in (0x0A, 0x0D):
                pos += 1
            if pos >= size:
                break
            # Nearly every frame is an event with the usual two-line head: one match, no loop.
            event = _EVENT_PLAIN_FRAME.match(buf, pos)
            if event is not None:
                size_text = event[1]
                length = int(size_text)
                if length <= self.max_body_bytes:
                    headers = [
                        ("Content-Length", size_text.decode()),
                        ("Content-Type", "text/event-plain"),
                    ]
                    pos = self._scan = event.end()
                    if size - pos < length:
                        self._pending = (headers, length)
                        break
                    out.append(Frame(headers, bytes(buf[pos : pos + length])))
                    pos += length
                    self._scan = pos
                    continue
            end, sep = _block_end(buf, max(pos, self._scan))
            if end < 0:
                self._scan = max(pos, size - 2)
                if size - pos > self.max_header_bytes:
                    out.append(
                        MalformedFrame(
                            f"header block longer than {self.max_header_bytes} bytes",
                            bytes(buf[pos : pos + 256]),
                        )
                    )
                    self._skipping = True
                    continue
                break
            block = bytes(buf[pos:end])
            pos = self._scan = end + sep
            if len(block) > self.max_header_bytes:
                out.append(
                    MalformedFrame(
                        f"header block longer than {self.max_header_bytes} bytes", block[:256]
                    )
                )
                continue
            parsed = self._parse_block(block)
            if isinstance(parsed, MalformedFrame):
                out.append(parsed)
                continue
            headers, length = parsed
            if length:
                self._pending = (headers, length)
            else:
                out.append(Frame(headers, b""))
        if pos >= size:
            buf.clear()
            pos = self._scan = 0
        elif pos >= self._COMPACT_BYTES and pos * 2 >= size:
            del buf[:pos]
            self._scan -= pos
            pos = 0
        self._pos = pos
        return out

    def close(self) -> list[MalformedFrame]:
        """Report a truncated trailing frame, if any, and reset."""
        out: list[MalformedFrame] = []
        rest = bytes(self._buf[self._pos :])
        if self._pending is not None:
            headers, length = self._pending
            out.append(
                MalformedFrame(
                    f"truncated body: {len(rest)} of {length} bytes",
                    _render_headers(headers) + rest,
                )
            )
        elif rest.strip(b"\r\n") and not self._skipping:
            out.append(MalformedFrame("truncated header block", rest))
        self._buf = bytearray()
        self._pos = self._scan = 0
        self._pending = None
        self._skipping = False
        return out

    def _parse_block(self, block: bytes) -> tuple[list[tuple[str, str]], int] | MalformedFrame:
        event = _EVENT_PLAIN_HEAD.fullmatch(block)
        if event is not None:  # the outer head of nearly every frame: no line loop
            size = event[1]
            length = int(size)
            if length <= self.max_body_bytes:
                return [
                    ("Content-Length", size.decode()),
                    ("Content-Type", "text/event-plain"),
                ], length
        headers: list[tuple[str, str]] = []
        length = 0
        for raw_line in block.split(b"\n"):
            line = raw_line.rstrip(b"\r")
            if not line:
                continue
            colon = line.find(b":")
            if colon <= 0:
                return MalformedFrame(f"bad header line {line[:80]!r}", block)
            name = line[:colon].decode("utf-8", "replace").strip()
            value = line[colon + 1 :].lstrip(b" ").decode("utf-8", "replace")
            headers.append((name, value))
            if name.lower() == "content-length":
                text = value.strip()
                if not text.isdigit():
                    return MalformedFrame(f"Content-Length {text!r} is not a number >= 0", block)
                length = int(text)
                if length > self.max_body_bytes:
                    return MalformedFrame(
                        f"Content-Length {length} exceeds {self.max_body_bytes} bytes", block
                    )
        return headers, length


# The outer head of an event frame as FreeSWITCH writes it (parsed as the line loop would).
_EVENT_PLAIN_HEAD = re.compile(rb"Content-Length: ([0-9]{1,12})\nContent-Type: text/event-plain\n?")
# The same head with its blank line, at the start of a frame in the buffer.
_EVENT_PLAIN_FRAME = re.compile(
    rb"Content-Length: ([0-9]{1,12})\nContent-Type: text/event-plain\n\n"
)


def _block_end(buf: bytes | bytearray, start: int = 0) -> tuple[int, int]:
    """Index of the blank line ending a header block (searching from start) and the separator
    length, or (-1, 0)."""
    lf = buf.find(b"\n\n", start)
    # A CRLF blank line only matters when it comes before the first LF one: search no further.
    crlf = buf.find(b"\n\r\n", start) if lf < 0 else buf.find(b"\n\r\n", start, lf + 1)
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return crlf + 1, 2
    if lf >= 0:
        return lf + 1, 1
    return -1, 0


def _render_headers(headers: Sequence[tuple[str, str]]) -> bytes:
    return "".join(f"{k}: {v}\n" for k, v in headers).encode()


@dataclass(slots=True)
class EslEvent:
    """A parsed event: URL-decoded headers in wire order and an optional body."""

    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str | None = None

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first header of that name (exact case first, then case-insensitive)."""
        value = _find_header(self.headers, name)
        return default if value is None else value

    @property
    def name(self) -> str:
        """The Event-Name header, or an empty string."""
        return self.get("Event-Name") or ""

    @property
    def subclass(self) -> str | None:
        """The Event-Subclass header of a CUSTOM event, or None."""
        return self.get("Event-Subclass")

    def as_dict(self) -> dict[str, str]:
        """Headers as a dict (the first occurrence of a name wins)."""
        out: dict[str, str] = {}
        for key, value in self.headers:
            out.setdefault(key, value)
        return out


# One "Name: value" line of a serialized event (the name has no ':'; spaces after ':' dropped).
_EVENT_LINE = re.compile(r"^([^:\n]+): *([^\n]*)", re.MULTILINE)


def parse_event_plain(data: bytes) -> EslEvent:
    """Parse the body of a text/event-plain frame (URL-decoded headers, optional body)."""
    end, sep = _block_end(data)
    if end < 0:
        block, rest = data, b""
    else:
        block, rest = data[:end], data[end + sep :]
    # UTF-8 decoding line by line or the whole block at once gives the same text ('\n' is ASCII).
    text = block.decode("utf-8", "replace")
    decode = url_decode
    if "\r" not in text and "Content-Length:" not in text and text[-1:] == "\n":
        # The common case: one pass of the line pattern over the block; every line must match.
        pairs = _EVENT_LINE.findall(text)
        if pairs and len(pairs) == text.count("\n"):
            return EslEvent([(n, decode(v) if "%" in v else v) for n, v in pairs], None)
    headers: list[tuple[str, str]] = []
    length: int | None = None
    for line in text.split("\n"):
        name, colon, value = line.partition(":")
        if not colon or not name:
            line = line.rstrip("\r")
            if not line:
                continue
            shown = line.encode("utf-8", "surrogateescape")[:80]
            raise EslParseError(f"bad header line {shown!r} (expected 'Name: value')")
        value = value.rstrip("\r").lstrip(" ")
        if name == "Content-Length":
            if not value.strip().isdigit():
                raise EslParseError(f"inner Content-Length {value!r} is not a number >= 0")
            length = int(value)
            continue
        headers.append((name, decode(value) if "%" in value else value))
    if not headers:
        raise EslParseError("event has no headers")
    body: str | None = None
    if length is not None:
        if len(rest) < length:
            raise EslParseError(f"inner body truncated: {len(rest)} of {length} bytes")
        body = rest[:length].decode("utf-8", "replace")
    return EslEvent(headers, body)


def parse_event_json(data: bytes) -> EslEvent:
    """Parse the body of a text/event-json frame (`_body` becomes the body)."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise EslParseError(f"event JSON is invalid: {err}") from err
    if not isinstance(obj, dict):
        raise EslParseError("event JSON must be an object")
    headers: list[tuple[str, str]] = []
    body: str | None = None
    for key, value in obj.items():
        if key == "_body":
            body = str(value)
        elif key == "Content-Length" and "_body" in obj:
            continue
        elif isinstance(value, list):
            headers.append((key, "ARRAY::" + "|:".join(str(v) for v in value)))
        else:
            headers.append((key, str(value)))
    return EslEvent(headers, body)


# Serialized "Name: value\n" lines by (name, value): events repeat most of their headers.
_LINES: dict[tuple[str, str], str] = {}
_LINES_MAX = 262144


def serialize_header_lines(headers: Sequence[tuple[str, str]]) -> str:
    """The "Name: urlenc(value)\\n" lines of switch_event_serialize for these headers."""
    cache = _LINES
    parts: list[str] = []
    append = parts.append
    for pair in headers:
        line = cache.get(pair) if type(pair) is tuple else None
        if line is None:
            name, value = pair
            line = f"{name}: {url_encode(value) or '_undef_'}\n"
            if type(pair) is tuple:
                if len(cache) >= _LINES_MAX:
                    cache.clear()
                cache[pair] = line
        append(line)
    return "".join(parts)


def event_plain_from_lines(lines: str, body: str | None = None) -> bytes:
    """Finish a plain event from its serialized header lines: body or the final blank line."""
    if body:
        encoded = body.encode("utf-8", "surrogateescape")
        head = f"{lines}Content-Length: {len(encoded)}\n\n"
        return head.encode("utf-8", "surrogateescape") + encoded
    return (lines + "\n").encode("utf-8", "surrogateescape")


def serialize_event_plain(headers: Sequence[tuple[str, str]], body: str | None = None) -> bytes:
    """Serialize an event exactly as switch_event_serialize(event, &str, SWITCH_TRUE)."""
    return event_plain_from_lines(serialize_header_lines(headers), body)


def _json_str(value: str) -> str:
    # cJSON_PrintUnformatted escapes only '"', '\\' and control characters (\\u00xx lowercase).
    return json.dumps(value, ensure_ascii=False)


def serialize_event_json(headers: Sequence[tuple[str, str]], body: str | None = None) -> bytes:
    """Serialize an event exactly as switch_event_serialize_json (duplicate names kept)."""
    items = [f"{_json_str(name)}:{_json_str(value)}" for name, value in headers]
    if body is not None:
        size = len(body.encode("utf-8", "surrogateescape"))
        items.append(f'"Content-Length":"{size}"')
        items.append(f'"_body":{_json_str(body)}')
    return ("{" + ",".join(items) + "}").encode("utf-8", "surrogateescape")


def event_frame(payload: bytes, content_type: str = "text/event-plain") -> bytes:
    """The outer frame mod_event_socket puts around a serialized event."""
    return (
        b"Content-Length: %d\nContent-Type: %s\n\n"
        % (
            len(payload),
            content_type.encode(),
        )
        + payload
    )


def command_reply_frame(reply_text: str, extra: Sequence[tuple[str, str]] = ()) -> bytes:
    """A `command/reply` frame with the given Reply-Text and extra headers."""
    lines = ["Content-Type: command/reply\n", f"Reply-Text: {reply_text}\n"]
    lines.extend(f"{k}: {v}\n" for k, v in extra)
    lines.append("\n")
    return "".join(lines).encode()


def api_response_frame(output: str) -> bytes:
    """An `api/response` frame carrying the command's output."""
    data = output.encode("utf-8", "surrogateescape")
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(data) + data
