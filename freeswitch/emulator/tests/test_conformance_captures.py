"""The emulator's output against facts taken from public captures of real FreeSWITCH traffic.

See fixtures/PROVENANCE.md for the source of every fixture.
"""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import pytest

from callmesh.core.esl import parse_event_plain, serialize_event_plain, url_decode, url_encode
from callmesh.fsemu.switch import Switch

from .conftest import RawClient, Recorder

FIXTURES = Path(__file__).parent / "fixtures"
Connect = Callable[..., Awaitable[RawClient]]


def load_spec(name: str) -> list[tuple[str, str | None, bool]]:
    """(header, expected value or None, optional) in order, from a .headers fixture."""
    spec: list[tuple[str, str | None, bool]] = []
    for line in (FIXTURES / name).read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        optional = line.startswith("?")
        line = line.lstrip("?")
        header, sep, value = line.partition("=")
        spec.append((header, codecs.decode(value, "unicode_escape") if sep else None, optional))
    return spec


def assert_matches(
    spec: Sequence[tuple[str, str | None, bool]], headers: Sequence[tuple[str, str]]
) -> None:
    """Every required header is present, in the capture's relative order, with its value."""
    position = 0
    for header, value, optional in spec:
        found = None
        for i in range(position, len(headers)):
            if headers[i][0] == header:
                found = i
                break
        if found is None:
            after = headers[position - 1][0] if position else "start"
            assert optional, f"{header} missing or out of order (after {after})"
            continue
        if value is not None:
            assert headers[found][1] == value, f"{header}: {headers[found][1]!r} != {value!r}"
        position = found + 1


def without_variables(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers if not k.startswith("variable_")]


async def test_channel_create_matches_the_capture(switch: Switch, recorder: Recorder) -> None:
    ch = await switch.inbound_call(
        caller_number="2000", destination_number="3000", profile="internal", context="default"
    )
    event = recorder.first("CHANNEL_CREATE", ch.uuid)
    wire = parse_event_plain(event.serialize("plain"))
    assert_matches(load_spec("channel_create.headers"), without_variables(wire.headers))
    names = [k for k, _ in wire.headers]
    assert not any(n.startswith("Channel-Read-Codec") for n in names)
    variables = [k for k in names if k.startswith("variable_")]
    assert variables[:2] == ["variable_direction", "variable_uuid"]


async def test_bridged_a_leg_hangup_complete_matches_the_capture(
    switch: Switch, recorder: Recorder
) -> None:
    switch.registrations.register("2001", "acme.example")
    switch.set_dialplan({"2001": [("bridge", "user/2001@acme.example")]})
    a = await switch.inbound_call(
        caller_number="2000", destination_number="2001", context="default"
    )
    bridge = await recorder.wait_for("CHANNEL_BRIDGE", a.uuid)
    b = switch.channel(bridge.get("Bridge-B-Unique-ID") or "")
    assert b is not None
    await b.far_hangup()
    done = await recorder.wait_for("CHANNEL_HANGUP_COMPLETE", a.uuid)
    wire = parse_event_plain(done.serialize("plain"))
    assert_matches(load_spec("channel_hangup_complete.headers"), without_variables(wire.headers))


async def test_outbound_connect_reply_matches_the_capture(switch: Switch) -> None:
    accepted: asyncio.Queue[RawClient] = asyncio.Queue()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put(RawClient(reader, writer))

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    switch.set_dialplan({"3000": [("socket", f"127.0.0.1:{port} async full")]})
    try:
        await switch.inbound_call(
            caller_number="2000", destination_number="3000", context="default"
        )
        call = await asyncio.wait_for(accepted.get(), 5)
        await call.send("connect\n\n")
        frame = await call.frame()
        decoded = [(k, url_decode(v)) for k, v in frame.headers]
        assert_matches(load_spec("channel_data_connect.headers"), decoded)
        assert ("Reply-Text", "%2BOK%0A") in frame.headers
        await call.send("exit\n\n")
        await call.close()
    finally:
        server.close()


async def test_background_job_frame_matches_the_capture(connect: Connect) -> None:
    client = await connect()
    await client.command("event plain BACKGROUND_JOB")
    await client.send("bgapi version\n\n")
    await client.frame()
    frame = await client.frame()
    assert [k for k, _ in frame.headers] == ["Content-Length", "Content-Type"]
    assert frame.get("Content-Type") == "text/event-plain"
    event = parse_event_plain(frame.body)
    assert_matches(load_spec("background_job.headers"), event.headers)
    assert event.body is not None
    assert event.body.startswith("FreeSWITCH Version 1.10.")
    assert event.body.endswith(" 64bit)\n")
    head, _, body = frame.body.partition(b"\n\n")
    assert head.endswith(b"\nContent-Length: %d" % len(body))


async def test_disconnect_notice_bytes_match_the_capture(
    switch: Switch, recorder: Recorder
) -> None:
    accepted: asyncio.Queue[RawClient] = asyncio.Queue()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put(RawClient(reader, writer))

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    switch.set_dialplan({"3000": [("socket", f"127.0.0.1:{port} async full")]})
    try:
        ch = await switch.inbound_call(caller_number="2000", destination_number="3000")
        call = await asyncio.wait_for(accepted.get(), 5)
        await call.send("connect\n\n")
        await call.frame()
        await call.send("exit\n\n")
        data = await call.closed()
        expected = (FIXTURES / "disconnect_notice.txt").read_text().format(uuid=ch.uuid)
        assert data.endswith(expected.encode())
        assert data.startswith(b"Content-Type: command/reply\nReply-Text: +OK bye\n\n")
    finally:
        server.close()


def _encoding_rows() -> list[tuple[str, str]]:
    rows = []
    for line in (FIXTURES / "encoding.tsv").read_text().splitlines():
        if line.startswith("#") or "\t" not in line:
            continue
        raw, encoded = line.split("\t")
        rows.append((codecs.decode(raw, "unicode_escape"), encoded))
    return rows


@pytest.mark.parametrize(("raw", "encoded"), _encoding_rows())
def test_values_are_encoded_as_in_the_captures(raw: str, encoded: str) -> None:
    assert serialize_event_plain([("X", raw)]) == f"X: {encoded}\n\n".encode()
    if raw:
        assert url_encode(raw) == encoded


async def test_event_dates_and_ipv6_are_encoded_as_in_the_captures(
    switch: Switch, recorder: Recorder
) -> None:
    ch = await switch.inbound_call(caller_number="2000", destination_number="3000")
    data = recorder.first("CHANNEL_CREATE", ch.uuid).serialize("plain").decode()
    lines = dict(line.split(": ", 1) for line in data.splitlines() if ": " in line)
    assert lines["FreeSWITCH-IPv6"] == "%3A%3A1"
    local = lines["Event-Date-Local"]
    assert local[4] == "-"
    assert local[10:13] == "%20"
    assert local[15:18] == "%3A"
    assert lines["Event-Date-GMT"].endswith("%20GMT")
    assert "," in lines["Event-Date-GMT"]


async def test_reply_texts_seen_in_captures(connect: Connect) -> None:
    client = await connect()
    reply = await client.command(
        "sendmsg 4b5c3f0e-0000-4000-8000-000000000000\ncall-command: execute\n"
        "execute-app-name: set\nexecute-app-arg: a=b"
    )
    assert (
        reply.get("Reply-Text") == "-ERR invalid session id [4b5c3f0e-0000-4000-8000-000000000000]"
    )
    api = await client.command("api version")
    assert [k for k, _ in api.headers] == ["Content-Type", "Content-Length"]
    assert api.body.startswith(b"FreeSWITCH Version ")


async def test_heartbeat_matches_the_capture(switch: Switch, recorder: Recorder) -> None:
    switch.start_heartbeat(interval=20)
    event = await recorder.wait_for("HEARTBEAT")
    wire = parse_event_plain(event.serialize("plain"))
    assert_matches(load_spec("heartbeat.headers"), wire.headers)
    up = wire.get("Up-Time") or ""
    assert up.startswith("0 years, 0 days, 0 hours, 0 minutes, ")
    assert up.endswith(" microseconds") or up.endswith(" microsecond")
