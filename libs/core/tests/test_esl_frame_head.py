"""FrameParser's shortcut for event frames' outer head reads as its line loop does."""

from __future__ import annotations

import pytest

from callmesh.core.esl import Frame, FrameParser, MalformedFrame


@pytest.mark.parametrize(
    "head",
    [
        b"Content-Length: 5\nContent-Type: text/event-plain\n\n",
        b"Content-Length: 5\r\nContent-Type: text/event-plain\r\n\r\n",
        b"Content-Length:   5\nContent-Type: text/event-plain\n\n",
        b"Content-Type: text/event-plain\nContent-Length: 5\n\n",
        b"Content-Length: 5\nContent-Type: text/event-plain\nX-Extra: 1\n\n",
    ],
)
def test_event_heads_parse_the_same_with_or_without_the_shortcut(head: bytes) -> None:
    frames = FrameParser().feed(head + b"hello")
    assert len(frames) == 1
    frame = frames[0]
    assert isinstance(frame, Frame)
    assert frame.body == b"hello"
    assert frame.content_type == "text/event-plain"
    assert frame.get("Content-Length") == "5"
    names = [name for name, _ in frame.headers]
    assert sorted(names) == sorted(
        line.split(b":")[0].decode() for line in head.split(b"\n") if line.strip()
    )


def test_the_shortcut_keeps_the_body_limit() -> None:
    frames = FrameParser(max_body_bytes=4).feed(
        b"Content-Length: 5\nContent-Type: text/event-plain\n\nhello"
    )
    assert isinstance(frames[0], MalformedFrame)
    assert "exceeds" in frames[0].reason


def test_the_shortcut_gives_the_headers_in_wire_order() -> None:
    (frame,) = FrameParser().feed(b"Content-Length: 2\nContent-Type: text/event-plain\n\nok")
    assert isinstance(frame, Frame)
    assert frame.headers == [("Content-Length", "2"), ("Content-Type", "text/event-plain")]


def test_event_frames_fed_byte_by_byte_give_the_same_frames_as_fed_whole() -> None:
    stream = (
        b"".join(
            b"Content-Length: %d\nContent-Type: text/event-plain\n\n%s" % (len(body), body)
            for body in (b"Event-Name: A\n\n", b"", b"Event-Name: B\nX: 1\n\n")
        )
        + b"\nContent-Type: auth/request\n\n"
    )
    whole = FrameParser().feed(stream)
    parser = FrameParser()
    pieces = [frame for i in range(len(stream)) for frame in parser.feed(stream[i : i + 1])]
    assert pieces == whole
    assert [f.body for f in whole if isinstance(f, Frame)] == [
        b"Event-Name: A\n\n",
        b"",
        b"Event-Name: B\nX: 1\n\n",
        b"",
    ]
    assert parser.close() == []
