"""The link's lazy event parser gives exactly what the shared codec gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from callmesh.core.esl import (
    EslParseError,
    Frame,
    FrameParser,
    parse_event_plain,
    serialize_event_plain,
)
from callmesh.cti.adapters.esl_parse import parse_event_lazy

FIXTURES = Path(__file__).parent / "fixtures"


def _event_payloads() -> list[bytes]:
    frames = FrameParser().feed((FIXTURES / "inbound_call_to_agent.esl").read_bytes())
    return [f.body for f in frames if isinstance(f, Frame) and f.content_type == "text/event-plain"]


def test_every_fixture_event_parses_to_the_same_headers_and_body_as_the_codec() -> None:
    payloads = _event_payloads()
    assert len(payloads) > 15
    for payload in payloads:
        expected = parse_event_plain(payload)
        headers, body = parse_event_lazy(payload)
        assert headers.decoded() == expected.as_dict()
        assert body == expected.body


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "a b:c;d&e+f%g",
        "100%",
        "%ZZ bad escape",
        "naïve ünïcode ☎ ©",
        "line one\nline two",
        "<sip:1001@acme.example;transport=tcp>",
        "",
    ],
)
def test_values_round_trip_through_freeswitch_encoding(value: str) -> None:
    payload = serialize_event_plain([("Event-Name", "CUSTOM"), ("X-Value", value)], "body ☎\n")
    headers, body = parse_event_lazy(payload)
    expected = parse_event_plain(payload)
    assert headers.get("X-Value") == expected.get("X-Value")
    assert headers["X-Value"] == expected.get("X-Value")
    assert body == expected.body == "body ☎\n"


def test_the_first_of_two_same_named_headers_wins_as_in_the_codec() -> None:
    headers, _ = parse_event_lazy(b"Event-Name: A\nX: 1\nX: 2\n\n")
    assert headers.get("X") == "1"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "no headers"),
        (b"Event-Name: X\nno colon here\n\n", "bad header line"),
        (b"Event-Name: X\nContent-Length: ten\n\nbody", "not a number"),
        (b"Event-Name: X\nContent-Length: 10\n\nshort", "truncated"),
    ],
)
def test_bad_payloads_raise_with_the_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(EslParseError, match=reason):
        parse_event_lazy(payload)
