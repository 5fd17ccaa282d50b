"""The inbound event socket on the wire: replies, subscriptions, filters, bgapi, bad frames."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from callmesh.core.esl import parse_event_plain
from callmesh.fsemu import esl_conn
from callmesh.fsemu.esl_inbound import EslServer, start_esl_server
from callmesh.fsemu.switch import Switch

from .conftest import RawClient, Recorder

Connect = Callable[..., Awaitable[RawClient]]

GOODBYE = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"


async def test_commands_before_auth_are_not_found_and_a_bad_password_disconnects(
    connect: Connect,
) -> None:
    client = await connect(auth=False)
    reply = await client.command("api status")
    assert reply.headers == [
        ("Content-Type", "command/reply"),
        ("Reply-Text", "-ERR command not found"),
    ]
    reply = await client.command("auth wrong")
    assert reply.get("Reply-Text") == "-ERR invalid"
    notice = await client.frame()
    assert notice.headers == [
        ("Content-Type", "text/disconnect-notice"),
        ("Content-Length", "67"),
    ]
    assert notice.body == GOODBYE
    assert await client.closed() == b""


async def test_exit_says_bye_then_disconnects(connect: Connect) -> None:
    client = await connect()
    reply = await client.command("exit")
    assert reply.get("Reply-Text") == "+OK bye"
    notice = await client.frame()
    assert notice.content_type == "text/disconnect-notice"
    assert notice.body == GOODBYE


async def test_reply_texts_match_mod_event_socket(connect: Connect) -> None:
    client = await connect()
    expected = {
        "event plain ALL": "+OK event listener enabled plain",
        "event json CHANNEL_CREATE": "+OK event listener enabled json",
        "event plain": "-ERR no keywords supplied",
        "nixevent CHANNEL_CREATE": "+OK events nixed",
        "noevents": "+OK no longer listening for events",
        "filter Unique-ID abc": "+OK filter added. [Unique-ID]=[abc]",
        "filter delete Unique-ID abc": "+OK filter deleted. [Unique-ID][abc]",
        "filter delete all": "+OK filter deleted. [all][]",
        "filter": "-ERR command not found",
        "linger": "-ERR not controlling a session",
        "nolinger": "-ERR not controlling a session",
        "divert_events on": "-ERR not controlling a session.",
        "getvar x": "-ERR command not found",
        "sendmsg nope\ncall-command: hangup": "-ERR invalid session id [nope]",
        "log info": "+OK log level info [6]",
        "nolog": "+OK no longer logging",
        "frobnicate": "-ERR command not found",
        "myevents nope json": "-ERR invalid uuid",
    }
    for command, text in expected.items():
        reply = await client.command(command)
        assert reply.content_type == "command/reply", command
        assert reply.get("Reply-Text") == text, command


async def test_api_replies_with_api_response_and_exact_errors(connect: Connect) -> None:
    client = await connect()
    reply = await client.command("api frobnicate now")
    assert reply.headers == [("Content-Type", "api/response"), ("Content-Length", "35")]
    assert reply.body == b"-ERR frobnicate Command not found!\n"
    reply = await client.command("api eval")
    assert reply.body == b"-ERR no reply\n"
    reply = await client.command("api uuid_exists nope")
    assert reply.body == b"false"


async def test_bgapi_reply_and_background_job_with_client_job_uuid(connect: Connect) -> None:
    client = await connect()
    await client.command("event plain BACKGROUND_JOB")
    await client.send("bgapi status\nJob-UUID: my-job-1\n\n")
    reply = await client.frame()
    assert reply.headers == [
        ("Content-Type", "command/reply"),
        ("Reply-Text", "+OK Job-UUID: my-job-1"),
        ("Job-UUID", "my-job-1"),
    ]
    event = await client.event("BACKGROUND_JOB")
    assert event.get("Job-UUID") == "my-job-1"
    assert event.get("Job-Command") == "status"
    assert event.get("Job-Command-Arg") is None
    assert event.body is not None
    assert event.body.startswith("UP ")
    names = [k for k, _ in event.headers]
    assert names[13:] == ["Job-UUID", "Job-Owner-UUID", "Job-Command"]


async def test_events_are_url_encoded_with_outer_content_length_in_bytes(
    connect: Connect, switch: Switch
) -> None:
    client = await connect()
    await client.command("event plain CHANNEL_CREATE")
    await switch.inbound_call(
        caller_number="1000", destination_number="5000", caller_name="Zoë Smith & Co"
    )
    frame = await client.frame()
    assert frame.headers[0] == ("Content-Length", str(len(frame.body)))
    assert frame.headers[1] == ("Content-Type", "text/event-plain")
    assert b"Caller-Caller-ID-Name: Zo%C3%AB%20Smith%20%26%20Co\n" in frame.body
    assert b"Channel-Name: sofia/external/1000%40127.0.0.1\n" in frame.body
    event = parse_event_plain(frame.body)
    assert event.get("Caller-Caller-ID-Name") == "Zoë Smith & Co"


async def test_custom_subclasses_count_only_after_custom(connect: Connect, switch: Switch) -> None:
    client = await connect()
    await client.command("event plain CUSTOM sofia::register")
    switch.fire_custom("conference::maintenance", [("Action", "add-member")])
    switch.registrations.register("1001", "acme.example")
    event = await client.event("CUSTOM")
    assert event.subclass == "sofia::register"
    bare = await connect()
    await bare.command("event plain CUSTOM")
    switch.registrations.register("1002", "acme.example")
    await bare.command("api hostname")
    assert bare.frames == []


async def test_filters_select_and_exclude_events(connect: Connect, switch: Switch) -> None:
    client = await connect()
    await client.command("event plain CHANNEL_CREATE")
    await client.command("filter Caller-Caller-ID-Number /^10/")
    await client.command("filter Caller-Caller-ID-Number -1002")
    for number in ("2000", "1002", "1001"):
        await switch.inbound_call(caller_number=number, destination_number="1")
    event = await client.event("CHANNEL_CREATE")
    assert event.get("Caller-Caller-ID-Number") == "1001"


async def test_json_events_carry_the_body_in_underscore_body(connect: Connect) -> None:
    client = await connect()
    await client.command("event json BACKGROUND_JOB")
    await client.send("bgapi hostname\n\n")
    await client.frame()
    frame = await client.frame()
    assert frame.content_type == "text/event-json"
    assert frame.body.startswith(b'{"Event-Name":"BACKGROUND_JOB","Core-UUID":')
    assert frame.body.endswith(b',"Content-Length":"10","_body":"fsemu-test"}')


async def test_myevents_uuid_gets_only_that_session_and_a_disconnect_when_it_ends(
    connect: Connect, switch: Switch, recorder: Recorder
) -> None:
    ch = await switch.inbound_call(caller_number="1", destination_number="2")
    other = await switch.inbound_call(caller_number="3", destination_number="4")
    await recorder.wait_for("CHANNEL_PARK", other.uuid)
    client = await connect()
    reply = await client.command(f"myevents {ch.uuid}")
    assert reply.get("Reply-Text") == "+OK Events Enabled"
    assert (await client.command(f"myevents {ch.uuid}")).get("Reply-Text") == "-ERR aready enabled."
    other.hangup()
    ch.hangup()
    event = await client.event("CHANNEL_HANGUP")
    assert event.get("Unique-ID") == ch.uuid
    notice = await client.frame()
    assert notice.headers == [
        ("Content-Type", "text/disconnect-notice"),
        ("Controlled-Session-UUID", ch.uuid),
        ("Content-Disposition", "disconnect"),
        ("Content-Length", "67"),
    ]


async def test_sendmsg_execute_runs_on_the_named_session(
    connect: Connect, switch: Switch, recorder: Recorder
) -> None:
    ch = await switch.inbound_call(caller_number="1", destination_number="2")
    await recorder.wait_for("CHANNEL_PARK", ch.uuid)
    client = await connect()
    reply = await client.command(
        f"sendmsg {ch.uuid}\ncall-command: execute\nexecute-app-name: answer\nevent-uuid: app-1"
    )
    assert reply.get("Reply-Text") == "+OK"
    execute = await recorder.wait_for("CHANNEL_EXECUTE", ch.uuid, count=2)
    assert execute.get("Application") == "answer"
    assert execute.get("Application-UUID") == "app-1"
    await recorder.wait_for("CHANNEL_ANSWER", ch.uuid)
    body = "hangup_cause_test=1"
    reply = await client.command(
        f"sendmsg\nsession-id: {ch.uuid}\ncall-command: execute\nexecute-app-name: set\n"
        f"content-type: text/plain\ncontent-length: {len(body)}\n\n{body}"
    )
    assert reply.get("Reply-Text") == "+OK"
    await recorder.wait_for("CHANNEL_EXECUTE_COMPLETE", ch.uuid, count=2)
    assert ch.variables["hangup_cause_test"] == "1"
    reply = await client.command(
        f"sendmsg {ch.uuid}\ncall-command: hangup\nhangup-cause: USER_BUSY"
    )
    assert await ch.wait_hangup() == "USER_BUSY"


async def test_sendevent_fires_the_event_and_returns_its_uuid(
    connect: Connect, recorder: Recorder
) -> None:
    client = await connect()
    reply = await client.command("sendevent CUSTOM\nEvent-Subclass: callmesh::test\nX-Thing: 1")
    text = reply.get("Reply-Text") or ""
    assert text.startswith("+OK ")
    event = recorder.first("CUSTOM")
    assert event.subclass == "callmesh::test"
    assert event.get("Event-UUID") == text[4:]
    assert event.get("X-Thing") == "1"


async def test_headers_are_not_url_decoded_and_crlf_and_blank_lines_are_ignored(
    connect: Connect,
) -> None:
    client = await connect()
    await client.send("\r\n\r\nbgapi hostname\r\nJob-UUID: a%20b\r\n\r\n")
    reply = await client.frame()
    assert reply.get("Job-UUID") == "a%20b"


async def test_a_command_sent_one_byte_at_a_time_is_read_whole(connect: Connect) -> None:
    client = await connect()
    for byte in b"\r\n\nbgapi hostname\nJob-UUID: slow\n\r\n":
        await client.send(bytes([byte]))
    reply = await client.frame()
    assert reply.get("Job-UUID") == "slow"


async def test_a_listener_that_stops_reading_is_killed_after_too_many_lost_events(
    connect: Connect, esl_server: EslServer, switch: Switch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(esl_conn, "MAX_UNSENT_BYTES", 256 * 1024)
    monkeypatch.setattr(esl_conn, "MAX_MISSED", 5)
    client = await connect()
    await client.command("event plain CUSTOM test::flood")
    body = "x" * 65536
    for _ in range(10000):
        if not esl_server.connections:
            break
        switch.fire_custom("test::flood", [("N", "1")], body)
        await asyncio.sleep(0)
    assert esl_server.connections == 0
    healthy = await connect()
    assert (await healthy.command("api hostname")).body == b"fsemu-test"


async def test_a_client_that_never_sends_its_first_packet_is_dropped(
    connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(esl_conn, "FIRST_PACKET_TIMEOUT", 0.05)
    client = await connect(auth=False)
    data = await client.closed()
    assert data.startswith(b"Content-Type: text/disconnect-notice\n")


async def test_bad_content_length_drops_only_that_connection(
    connect: Connect, esl_server: EslServer
) -> None:
    client = await connect()
    await client.send("sendevent CUSTOM\nContent-Length: -5\n\n")
    data = await client.closed()
    assert data.startswith(b"Content-Type: text/disconnect-notice\n")
    big = await connect()
    await big.send(f"sendevent CUSTOM\nContent-Length: {16 * 1024 * 1024 + 1}\n\n")
    assert (await big.closed()).startswith(b"Content-Type: text/disconnect-notice\n")
    healthy = await connect()
    reply = await healthy.command("api hostname")
    assert reply.body == b"fsemu-test"


async def test_garbage_and_truncated_frames_never_crash_the_server(
    connect: Connect, esl_server: EslServer
) -> None:
    client = await connect()
    await client.send(b"\x00\xff\xfe garbage without newline")
    await client.close()
    other = await connect()
    await other.send(b"api status\nContent-Length: 100\n\nshort")
    await other.close()
    third = await connect()
    await third.send("no-such-thing: here\n\n")
    reply = await third.frame()
    assert reply.get("Reply-Text") == "-ERR command not found"
    await asyncio.sleep(0.05)
    assert (await third.command("api hostname")).body == b"fsemu-test"


async def test_acl_refusal_is_a_rude_rejection_before_auth(switch: Switch) -> None:
    server = await start_esl_server(switch, port=0, acl=["10.0.0.0/8"])
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        data = await asyncio.wait_for(reader.read(), 5)
        assert data == (
            b"Content-Type: text/rude-rejection\nContent-Length: 24\n\nAccess Denied, go away.\n"
        )
        writer.close()
    finally:
        await server.close()


async def test_xml_events_follow_switch_event_xmlize(connect: Connect) -> None:
    client = await connect()
    reply = await client.command("event xml BACKGROUND_JOB")
    assert reply.get("Reply-Text") == "+OK event listener enabled xml"
    await client.send("bgapi hostname\n\n")
    await client.frame()
    frame = await client.frame()
    assert frame.content_type == "text/event-xml"
    text = frame.body.decode()
    assert text.startswith("<event>\n  <headers>\n    <Event-Name>BACKGROUND_JOB</Event-Name>\n")
    assert "    <FreeSWITCH-IPv6>%3A%3A1</FreeSWITCH-IPv6>\n" in text
    assert text.endswith(
        "  </headers>\n  <Content-Length>10</Content-Length>\n  <body>fsemu-test</body>\n</event>\n"
    )
