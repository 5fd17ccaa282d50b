"""``callmesh esl decode``: transcripts → JSON lines; damage reported with offsets, never fatal."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from callmesh.cti.cli import decode, esl

from .fsevents import A, B

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED = [
    ("call_created", A),
    ("call_answered", A),
    ("call_dtmf", A),
    ("call_created", B),
    ("call_ringing", B),
    ("call_answered", B),
    ("call_bridged", A),
    ("recording_started", A),
    ("call_held", B),
    ("call_unheld", B),
    ("recording_stopped", A),
    ("call_unbridged", A),
    ("call_hung_up", A),
    ("call_hung_up", B),
]


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def _body(event: dict[str, Any]) -> str:
    keys = set(event) - {"event_id", "tenant_id", "call_id", "time", "source"}
    assert len(keys) == 1
    return keys.pop()


def test_a_clean_transcript_prints_one_json_line_per_call_event_with_call_and_tenant() -> None:
    out, err = io.StringIO(), io.StringIO()
    printed, problems = decode((FIXTURES / "inbound_call_to_agent.esl").read_bytes(), "t", out, err)
    events = _lines(out.getvalue())
    assert (printed, problems, err.getvalue()) == (len(EXPECTED), 0, "")
    assert [
        (
            _body(e),
            e[_body(e)]["channel_uuid"]
            if "channel_uuid" in e[_body(e)]
            else e[_body(e)]["a_channel_uuid"],
        )
        for e in events
    ] == EXPECTED
    assert {e["call_id"] for e in events} == {A}
    assert {e["tenant_id"] for e in events} == {"acme"}
    hung = events[12]["call_hung_up"]
    assert hung == {
        "channel_uuid": A,
        "cause": "NORMAL_CLEARING",
        "q850_code": 16,
        "side": "HANGUP_SIDE_CALLER",
        "duration_ms": "60000",
        "billsec_ms": "59900",
        "role": "LEG_ROLE_CUSTOMER",
    }
    assert events[0]["time"] == "2025-11-22T08:26:40Z"


def test_damaged_frames_are_reported_with_their_byte_offsets_and_decoding_carries_on() -> None:
    data = (FIXTURES / "damaged.esl").read_bytes()
    out, err = io.StringIO(), io.StringIO()
    printed, problems = decode(data, "damaged.esl", out, err)
    assert printed == len(EXPECTED)
    assert problems == 4
    reports = err.getvalue().splitlines()
    offsets = [int(line.split("byte ", 1)[1].split(":", 1)[0]) for line in reports]
    assert offsets == [
        data.find(b"Content-Length 12"),
        data.find(b"Content-Length: -5"),
        data.find(b"this is not an event"),
        data.find(b"Content-Length: 900"),
    ]
    assert "bad header line" in reports[0]
    assert "truncated body" in reports[3]


def test_without_the_tenant_variable_the_tenant_is_empty_offline() -> None:
    from callmesh.core.esl import event_frame, serialize_event_plain

    from .fsevents import channel

    data = event_frame(serialize_event_plain(channel("CHANNEL_CREATE", A)))
    out, err = io.StringIO(), io.StringIO()
    assert decode(data, "x", out, err) == (1, 0)
    event = _lines(out.getvalue())[0]
    assert "tenant_id" not in event
    assert event["call_id"] == A


def test_the_command_exits_zero_and_names_an_unreadable_file_with_status_two(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    ok = runner.invoke(esl, ["decode", str(FIXTURES / "inbound_call_to_agent.esl")])
    assert ok.exit_code == 0
    assert len(ok.output.splitlines()) == len(EXPECTED)
    missing = runner.invoke(
        esl, ["decode", str(tmp_path / "missing.esl"), str(FIXTURES / "damaged.esl")]
    )
    assert missing.exit_code == 2
