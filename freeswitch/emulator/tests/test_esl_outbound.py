"""Outbound mode: the `socket` application connecting to an IVR, as mod_event_socket does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callmesh.core.esl import parse_event_plain, url_decode
from callmesh.fsemu.switch import Switch

from .conftest import RawClient, Recorder


class Ivr:
    """A TCP server standing in for the IVR; each accepted call is a RawClient."""

    def __init__(self) -> None:
        self.calls: asyncio.Queue[RawClient] = asyncio.Queue()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self.calls.put(RawClient(reader, writer))

        self.server = await asyncio.start_server(accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def call(self) -> RawClient:
        return await asyncio.wait_for(self.calls.get(), 5)


@pytest.fixture
async def ivr() -> AsyncIterator[Ivr]:
    server = Ivr()
    await server.start()
    yield server
    assert server.server is not None
    server.server.close()


async def start_call(switch: Switch, ivr: Ivr, flags: str = "async full") -> RawClient:
    switch.set_dialplan({"5000": [("socket", f"127.0.0.1:{ivr.port} {flags}")]})
    await switch.inbound_call(caller_number="1000", destination_number="5000")
    return await ivr.call()


async def connect_reply(call: RawClient) -> list[tuple[str, str]]:
    await call.send("connect\n\n")
    frame = await call.frame()
    return frame.headers


async def test_connect_reply_is_a_serialized_channel_data_event(switch: Switch, ivr: Ivr) -> None:
    call = await start_call(switch, ivr)
    headers = await connect_reply(call)
    names = [k for k, _ in headers]
    values = dict(headers)
    assert names[0] == "Event-Name"
    assert values["Event-Name"] == "CHANNEL_DATA"
    assert "Content-Length" not in names
    assert names[-4:] == ["Content-Type", "Reply-Text", "Socket-Mode", "Control"]
    assert values["Content-Type"] == "command/reply"
    assert values["Reply-Text"] == "%2BOK%0A"
    assert values["Socket-Mode"] == "async"
    assert values["Control"] == "full"
    assert names[13] == "Channel-Direction"
    assert values["Channel-State"] == "CS_EXECUTE"
    assert values["Answer-State"] == "ringing"
    assert url_decode(values["Channel-Name"]) == "sofia/external/1000@127.0.0.1"
    assert url_decode(values["variable_current_application_data"]).endswith("async full")


async def test_static_single_channel_mode_and_its_command_restrictions(
    switch: Switch, ivr: Ivr
) -> None:
    call = await start_call(switch, ivr, flags="")
    values = dict(await connect_reply(call))
    assert values["Socket-Mode"] == "static"
    assert values["Control"] == "single-channel"
    for command in ("linger", "event plain ALL", "nixevent ALL", "noevents", "api status"):
        reply = await call.command(command)
        assert reply.get("Reply-Text") == "-ERR command not found", command
    for command, text in (
        ("myevents", "+OK Events Enabled"),
        ("getvar sofia_profile_name", "external"),
        ("filter Unique-ID x", "+OK filter added. [Unique-ID]=[x]"),
        ("filter delete all", "+OK filter deleted. [all][]"),
        ("divert_events on", "+OK events diverted"),
        ("resume", "+OK"),
    ):
        reply = await call.command(command)
        assert reply.get("Reply-Text") == text, command


async def test_static_sendmsg_replies_after_the_app_finishes_then_queued_events_follow(
    switch: Switch, ivr: Ivr, wav_dir: Path
) -> None:
    switch.media_dir = wav_dir
    switch.media.media_dir = wav_dir
    call = await start_call(switch, ivr, flags="")
    await connect_reply(call)
    await call.command("myevents")
    await call.send(
        "sendmsg\ncall-command: execute\nexecute-app-name: playback\nexecute-app-arg: short.wav\n\n"
    )
    reply = await call.frame()
    assert reply.get("Reply-Text") == "+OK"
    names: list[str | None] = []
    while len(names) < 2:
        frame = await call.frame()
        names.append(dict(frame.headers).get("Content-Type"))
    assert names == ["text/event-plain", "text/event-plain"]
    await call.send("exit\n\n")


async def test_myevents_sees_only_the_session_and_no_b_leg_events(
    switch: Switch, ivr: Ivr, recorder: Recorder
) -> None:
    switch.registrations.register("1001", "acme.example")
    call = await start_call(switch, ivr)
    values = dict(await connect_reply(call))
    uuid = values["Unique-ID"]
    await call.command("myevents")
    await call.command("event plain CHANNEL_HOLD")
    await call.send(
        "sendmsg\ncall-command: execute\nexecute-app-name: bridge\n"
        "execute-app-arg: user/1001@acme.example\n\n"
    )
    await call.frame()
    await recorder.wait_for("CHANNEL_BRIDGE", uuid)
    other = await switch.inbound_call(caller_number="9", destination_number="9")
    b_uuid = recorder.first("CHANNEL_BRIDGE", uuid).get("Bridge-B-Unique-ID")
    assert b_uuid is not None
    b = switch.channel(b_uuid)
    assert b is not None
    await b.far_hangup()
    other.hangup()
    unique_ids = []
    while True:
        frame = await call.frame()
        event = parse_event_plain(frame.body)
        unique_ids.append(event.get("Unique-ID"))
        if event.name == "CHANNEL_UNBRIDGE":
            break
    assert set(unique_ids) == {uuid}


async def test_linger_then_hangup_sends_linger_notice_events_and_final_disconnect(
    switch: Switch, ivr: Ivr, recorder: Recorder
) -> None:
    call = await start_call(switch, ivr)
    values = dict(await connect_reply(call))
    uuid = values["Unique-ID"]
    assert (await call.command("myevents")).get("Reply-Text") == "+OK Events Enabled"
    assert (await call.command("linger 5")).get("Reply-Text") == "+OK will linger 5 seconds"
    await recorder.wait_for("CHANNEL_PARK", uuid)
    switch.channel(uuid).hangup("NORMAL_CLEARING")  # type: ignore[union-attr]
    kinds: list[str] = []
    while True:
        try:
            frame = await call.frame()
        except EOFError:
            break
        if frame.content_type == "text/event-plain":
            kinds.append(dict(_event_headers(frame.body)).get("Event-Name", ""))
        else:
            kinds.append(
                f"{frame.content_type}:{frame.get('Content-Disposition')}:{frame.get('Content-Length')}"
            )
    assert kinds[0] == "CHANNEL_HANGUP"
    assert kinds[1] == "text/disconnect-notice:linger:0"
    assert "CHANNEL_HANGUP_COMPLETE" in kinds
    assert kinds.index("CHANNEL_HANGUP_COMPLETE") < kinds.index("CHANNEL_DESTROY")
    assert kinds[-1] == "text/disconnect-notice:disconnect:67"


async def test_without_linger_the_socket_closes_after_hangup(
    switch: Switch, ivr: Ivr, recorder: Recorder
) -> None:
    call = await start_call(switch, ivr)
    uuid = dict(await connect_reply(call))["Unique-ID"]
    await call.command("myevents")
    await recorder.wait_for("CHANNEL_PARK", uuid)
    switch.channel(uuid).hangup()  # type: ignore[union-attr]
    event = await call.event("CHANNEL_HANGUP")
    assert event.get("Unique-ID") == uuid
    notice = await call.frame()
    assert notice.get("Content-Disposition") == "disconnect"
    assert notice.get("Controlled-Session-UUID") == uuid
    assert await call.closed() == b""


async def test_socket_exit_releases_the_call_to_the_dialplan(
    switch: Switch, ivr: Ivr, recorder: Recorder
) -> None:
    call = await start_call(switch, ivr)
    uuid = dict(await connect_reply(call))["Unique-ID"]
    await recorder.wait_for("CHANNEL_PARK", uuid)
    ch = switch.channel(uuid)
    assert ch is not None
    reply = await call.command("exit")
    assert reply.get("Reply-Text") == "+OK bye"
    assert await ch.wait_hangup() == "NORMAL_CLEARING"
    assert "CHANNEL_UNPARK" in recorder.names(uuid)


async def test_unreachable_socket_target_continues_the_dialplan(
    switch: Switch, recorder: Recorder
) -> None:
    switch.set_dialplan({"5000": [("socket", "127.0.0.1:1 async full"), ("hangup", "USER_BUSY")]})
    ch = await switch.inbound_call(caller_number="1", destination_number="5000")
    assert await ch.wait_hangup() == "USER_BUSY"


def _event_headers(body: bytes) -> list[tuple[str, str]]:
    out = []
    for line in body.decode().split("\n"):
        if ": " in line:
            k, _, v = line.partition(": ")
            out.append((k, v))
    return out


async def test_myevents_session_gets_its_own_background_jobs_only_when_subscribed(
    switch: Switch, ivr: Ivr
) -> None:
    call = await start_call(switch, ivr)
    uuid = dict(await connect_reply(call))["Unique-ID"]
    await call.command("myevents")
    await call.command("event plain BACKGROUND_JOB")
    await call.send("bgapi hostname\nJob-UUID: job-a\n\n")
    reply = await call.frame()
    assert reply.get("Job-UUID") == "job-a"
    event = await call.event("BACKGROUND_JOB")
    assert event.get("Job-Owner-UUID") == uuid
    assert event.body == "fsemu-test"
    await call.send("exit\n\n")
