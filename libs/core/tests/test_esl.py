"""Tests of the FreeSWITCH Event Socket wire codec (callmesh.core.esl)."""

from __future__ import annotations

import json

import pytest

from callmesh.core.esl import (
    EslParseError,
    Frame,
    FrameParser,
    MalformedFrame,
    api_response_frame,
    command_reply_frame,
    event_frame,
    parse_event_json,
    parse_event_plain,
    serialize_event_json,
    serialize_event_plain,
    url_decode,
    url_encode,
)


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("plain-Value_1.2~", "plain-Value_1.2~"),
        ("a b", "a%20b"),
        ("+OK\n", "%2BOK%0A"),
        ("sofia/internal/1000@10.0.0.1:5060", "sofia/internal/1000%4010.0.0.1%3A5060"),
        (
            '\r\n #%&+:;<=>?@[\\]^`{|}"',
            "%0D%0A%20%23%25%26%2B%3A%3B%3C%3D%3E%3F%40%5B%5C%5D%5E%60%7B%7C%7D%22",
        ),
        ("Thu, 01 Jan 2026 10:00:00 GMT", "Thu,%2001%20Jan%202026%2010%3A00%3A00%20GMT"),
        ("\x7f\x01\t", "%7F%01%09"),
        ("é", "%C3%A9"),
        # An existing escape with UPPERCASE hex is kept; lowercase hex is encoded again.
        ("100%25 sure", "100%25%20sure"),
        ("x%2a", "x%252a"),
        # A '%' needs two characters after it to count as an escape.
        ("50%", "50%25"),
        ("%4", "%254"),
        ("%41", "%41"),
        ("", ""),
    ],
)
def test_url_encode_matches_switch_url_encode(raw: str, encoded: str) -> None:
    assert url_encode(raw) == encoded


def test_url_decode_keeps_plus_and_invalid_escapes() -> None:
    assert url_decode("%2BOK%0A") == "+OK\n"
    assert url_decode("a+b%20c") == "a+b c"
    assert url_decode("50%") == "50%"
    assert url_decode("%zz%C3%A9") == "%zzé"
    assert url_decode(url_encode("Ünïcode & friends: 100%")) == "Ünïcode & friends: 100%"


def test_serialize_plain_writes_undef_for_empty_values_and_final_newline() -> None:
    data = serialize_event_plain([("Event-Name", "HEARTBEAT"), ("Empty", ""), ("Up", "1 day")])
    assert data == b"Event-Name: HEARTBEAT\nEmpty: _undef_\nUp: 1%20day\n\n"


def test_serialize_plain_appends_body_with_inner_content_length() -> None:
    data = serialize_event_plain(
        [("Event-Name", "BACKGROUND_JOB"), ("Job-Command", "status")], "+OK é\n"
    )
    assert data == (
        b"Event-Name: BACKGROUND_JOB\nJob-Command: status\nContent-Length: 7\n\n+OK \xc3\xa9\n"
    )
    event = parse_event_plain(data)
    assert event.body == "+OK é\n"
    assert event.headers == [("Event-Name", "BACKGROUND_JOB"), ("Job-Command", "status")]


def test_serialize_plain_with_empty_body_ends_like_no_body() -> None:
    assert serialize_event_plain([("A", "b")], "") == b"A: b\n\n"


def test_serialize_json_is_unformatted_cjson_with_body_and_duplicates() -> None:
    data = serialize_event_json([("Event-Name", "CUSTOM"), ("X", 'q"\\\n\x01é'), ("X", "2")], "hi")
    assert (
        data
        == (
            '{"Event-Name":"CUSTOM","X":"q\\"\\\\\\n\\u0001é","X":"2",'
            '"Content-Length":"2","_body":"hi"}'
        ).encode()
    )
    assert json.loads(data)["_body"] == "hi"
    event = parse_event_json(data)
    assert event.body == "hi"
    assert event.get("Content-Length") is None


def test_parse_event_plain_round_trips_and_exposes_name_and_subclass() -> None:
    headers = [
        ("Event-Name", "CUSTOM"),
        ("Event-Subclass", "sofia::register"),
        ("contact", '"1000" <sip:1000@10.0.0.5:5060>'),
    ]
    event = parse_event_plain(serialize_event_plain(headers))
    assert event.headers == headers
    assert event.name == "CUSTOM"
    assert event.subclass == "sofia::register"
    assert event.as_dict()["contact"] == headers[2][1]
    assert event.get("event-name") == "CUSTOM"
    assert event.get("Missing", "d") == "d"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"no colon here\n\n", "bad header line"),
        (b"Event-Name: X\nContent-Length: abc\n\n", "not a number"),
        (b"Event-Name: X\nContent-Length: 10\n\nshort", "truncated"),
        (b"\n\n", "no headers"),
    ],
)
def test_parse_event_plain_rejects_bad_input_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(EslParseError, match=reason):
        parse_event_plain(data)


def test_frame_parser_splits_frames_fed_byte_by_byte() -> None:
    payload = serialize_event_plain([("Event-Name", "HEARTBEAT")])
    stream = (
        b"Content-Type: auth/request\n\n"
        + command_reply_frame("+OK accepted")
        + event_frame(payload)
        + api_response_frame("+OK\n")
    )
    parser = FrameParser()
    frames: list[Frame | MalformedFrame] = []
    for i in range(len(stream)):
        frames.extend(parser.feed(stream[i : i + 1]))
    assert parser.close() == []
    assert all(isinstance(f, Frame) for f in frames)
    typed = [f for f in frames if isinstance(f, Frame)]
    assert [f.content_type for f in typed] == [
        "auth/request",
        "command/reply",
        "text/event-plain",
        "api/response",
    ]
    assert typed[1].get("Reply-Text") == "+OK accepted"
    assert parse_event_plain(typed[2].body).name == "HEARTBEAT"
    assert typed[3].body == b"+OK\n"


def test_frame_parser_accepts_crlf_and_skips_leading_blank_lines() -> None:
    frames = FrameParser().feed(b"\r\n\nContent-Type: command/reply\r\nReply-Text: +OK\r\n\r\n")
    assert frames == [Frame([("Content-Type", "command/reply"), ("Reply-Text", "+OK")], b"")]


def test_frame_parser_reports_malformed_frames_and_resynchronises() -> None:
    parser = FrameParser(max_header_bytes=64, max_body_bytes=100)
    frames = parser.feed(
        b"garbage without colon\n\n"
        b"Content-Length: -5\n\n"
        b"Content-Length: 1000\n\n"
        b"Content-Type: " + b"x" * 100 + b"\n\n"
        b"Content-Type: command/reply\nReply-Text: +OK\n\n"
    )
    reasons = [f.reason for f in frames if isinstance(f, MalformedFrame)]
    assert len(reasons) == 4
    assert "bad header line" in reasons[0]
    assert "not a number" in reasons[1]
    assert "exceeds 100" in reasons[2]
    assert "longer than 64" in reasons[3]
    last = frames[-1]
    assert isinstance(last, Frame)
    assert last.get("Reply-Text") == "+OK"


def test_frame_parser_skips_an_unterminated_oversized_header_block() -> None:
    parser = FrameParser(max_header_bytes=32)
    out = parser.feed(b"X: " + b"y" * 100)
    assert len(out) == 1
    assert isinstance(out[0], MalformedFrame)
    out = parser.feed(b"yyy\n\nContent-Type: command/reply\n\n")
    assert out == [Frame([("Content-Type", "command/reply")], b"")]


def test_frame_parser_close_reports_a_truncated_body() -> None:
    parser = FrameParser()
    assert parser.feed(b"Content-Type: api/response\nContent-Length: 10\n\n+OK") == []
    closed = parser.close()
    assert len(closed) == 1
    assert "truncated body: 3 of 10" in closed[0].reason


def test_event_frame_counts_bytes_after_encoding() -> None:
    payload = serialize_event_plain([("Caller-Caller-ID-Name", "Zoë Ünal")])
    frame = event_frame(payload)
    head, _, body = frame.partition(b"\n\n")
    assert head == b"Content-Length: %d\nContent-Type: text/event-plain" % len(payload)
    assert body == payload


def _transcript() -> bytes:
    """Every kind of frame, CRLF and LF blank lines, bodies, and malformed blocks between them."""
    parts = [b"Content-Type: auth/request\n\n", command_reply_frame("+OK accepted")]
    for i in range(300):
        headers = [("Event-Name", "CUSTOM"), ("Event-Sequence", str(i)), ("X", "a b%\n" * (i % 7))]
        parts.append(event_frame(serialize_event_plain(headers, "body\n\n" * (i % 3))))
        if i % 50 == 7:
            parts.append(b"garbage without colon\r\n\r\n")
        if i % 60 == 11:
            parts.append(b"\r\n\nContent-Type: command/reply\r\nReply-Text: +OK\r\n\r\n")
        if i % 70 == 13:
            parts.append(b"Content-Length: -1\n\n")
        parts.append(api_response_frame(f"+OK {i}\n" * (i % 4)))
    return b"".join(parts)


def test_frame_parser_gives_the_same_frames_fed_at_once_or_byte_by_byte() -> None:
    stream = _transcript()
    whole = FrameParser().feed(stream)
    parser = FrameParser()
    sliced: list[Frame | MalformedFrame] = []
    for i in range(len(stream)):
        sliced.extend(parser.feed(stream[i : i + 1]))
    assert parser.close() == []
    assert sliced == whole
    events = [f for f in whole if isinstance(f, Frame) and f.content_type == "text/event-plain"]
    assert [parse_event_plain(f.body).get("Event-Sequence") for f in events] == [
        str(i) for i in range(300)
    ]
    # 6 blocks without a colon (i = 7, 57, …) and 5 negative Content-Lengths (i = 13, 83, …).
    assert sum(isinstance(f, MalformedFrame) for f in whole) == 11


def test_frame_parser_keeps_state_across_compaction() -> None:
    # Large enough that the parser drops consumed bytes from the front mid-stream.
    stream = _transcript() * 20
    parser = FrameParser()
    frames: list[Frame | MalformedFrame] = []
    for i in range(0, len(stream), 70001):
        frames.extend(parser.feed(stream[i : i + 70001]))
    assert frames == FrameParser().feed(stream)


def test_parse_event_plain_decodes_only_escaped_values_and_handles_crlf() -> None:
    data = b"Event-Name: CUSTOM\r\nA: 100%25%20sure\r\nB:  plain\r\nC: %zz%C3%A9\r\n\r\n"
    event = parse_event_plain(data)
    assert event.headers == [
        ("Event-Name", "CUSTOM"),
        ("A", "100% sure"),
        ("B", "plain"),
        ("C", "%zzé"),
    ]
