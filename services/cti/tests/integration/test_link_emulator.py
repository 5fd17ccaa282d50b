"""The cti link end to end: the whole cti service in-process, a real NATS and FerretDB, and the
FreeSWITCH emulator's event socket (greenswitch speaking to it over TCP).

Every test runs with both event readers (``CALLMESH_CTI_EVENT_READER``): ``asyncio`` (events on
a second connection read in the service's loop, greenswitch for the commands) and
``greenswitch`` (one greenswitch connection for both)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from nats.aio.msg import Msg

from callmesh.core.bus import Bus
from callmesh.core.media import DirectoryMediaStore
from callmesh.core.runtime import Runtime, create_app
from callmesh.core.settings import PlatformSettings
from callmesh.cti.app import CtiSettings, build
from callmesh.cti.link import LinkParts
from callmesh.fsemu.esl_inbound import EslServer, start_esl_server
from callmesh.fsemu.switch import Switch
from callmesh.proto.subjects import Bucket
from callmesh.proto.v1.call_pb2 import HangupSide
from callmesh.proto.v1.event_pb2 import Event
from callmesh.proto.v1.node_pb2 import NodeHeartbeat
from callmesh.proto.v1.switch_pb2 import (
    Bridge,
    Endpoint,
    Hangup,
    Hold,
    Originate,
    RecordStart,
    RecordStop,
    SwitchCommand,
    SwitchErrorCode,
    SwitchReply,
)

NODE = "fs-t"
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True, params=["asyncio", "greenswitch"])
def event_reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The link's event reader, through its setting (read by ``CtiSettings``)."""
    monkeypatch.setenv("CALLMESH_CTI_EVENT_READER", request.param)
    return str(request.param)


async def eventually(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll until ``check`` gives something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not in time: {what}")
        await asyncio.sleep(0.02)


@dataclass
class Link:
    """A running cti service attached to an emulated switch, and what the bus saw."""

    runtime: Runtime
    parts: LinkParts
    switch: Switch
    server: EslServer
    bus: Bus
    events: list[Event] = field(default_factory=list)

    async def command(self, **kwargs: Any) -> SwitchReply:
        request = SwitchCommand(command_id=uuid.uuid4().hex, **kwargs)
        return await self.bus.request(
            self.bus.subjects.node_command(NODE), request, SwitchReply, timeout=15
        )

    def of(self, body: str, channel: str | None = None) -> list[Event]:
        out = []
        for event in self.events:
            if event.WhichOneof("body") != body:
                continue
            message = getattr(event, body)
            uuid_field = getattr(message, "channel_uuid", None) or getattr(
                message, "a_channel_uuid", ""
            )
            if channel is None or uuid_field == channel:
                out.append(event)
        return out

    async def wait(self, body: str, channel: str | None = None, count: int = 1) -> list[Event]:
        return await eventually(  # type: ignore[no-any-return]
            lambda: (found := self.of(body, channel)) and len(found) >= count and found,
            f"{count} {body} for {channel}",
        )


@contextlib.asynccontextmanager
async def running_link(
    settings: PlatformSettings, bus: Bus, switch: Switch, **cti: Any
) -> AsyncIterator[Link]:
    server = await start_esl_server(switch, port=0)
    runtime = Runtime(
        build(
            CtiSettings(
                platform=settings,
                node_id=NODE,
                esl_port=server.port,
                heartbeat_interval_s=0.5,
                recordings_dir=switch.recordings_dir,
                **cti,
            )
        )
    )
    parts: LinkParts = runtime.definition.on_start[0].__self__  # type: ignore[attr-defined]
    app = create_app(runtime)
    link = Link(runtime, parts, switch, server, bus)

    async def seen(msg: Msg) -> None:
        link.events.append(Event.FromString(msg.data))

    prefix = bus.subjects.prefix
    subs = [
        await bus.nc.subscribe(f"{prefix}.*.call.*", cb=seen),
        await bus.nc.subscribe(f"{prefix}.node.{NODE}.*", cb=seen),
    ]
    await bus.nc.flush()
    try:
        async with app.router.lifespan_context(app):
            await eventually(
                lambda: runtime.start_error or runtime.started.is_set(), "cti started", 60
            )
            assert runtime.start_error is None, runtime.start_error
            await eventually(lambda: link.of("node_up"), "NodeUp")
            # NodeUp follows the event connection; commands need the command connection too.
            await eventually(lambda: parts.esl is None or parts.esl.connected, "commands up")
            yield link
    finally:
        for sub in subs:
            await sub.unsubscribe()
        await link.server.close()


@pytest.fixture
def switch(tmp_path: Path) -> Switch:
    return Switch(speed=20, seed=1, recordings_dir=tmp_path / "recordings")


async def test_a_calls_events_reach_the_bus_and_commands_round_trip(
    platform_settings: PlatformSettings, bus: Bus, switch: Switch
) -> None:
    async with running_link(platform_settings, bus, switch) as link:
        caller = await switch.inbound_call(
            caller_number="+33612345678",
            destination_number="+33140000000",
            variables={"callmesh_tenant": "acme"},
        )
        created = (await link.wait("call_created", caller.uuid))[0]
        assert (created.tenant_id, created.call_id) == ("acme", caller.uuid)
        assert created.source.node_id == NODE
        assert created.call_created.caller.number == "+33612345678"

        agent = await link.command(
            tenant_id="acme",
            call_id=caller.uuid,
            originate=Originate(endpoint=Endpoint(dial_string="null/1001")),
        )
        assert agent.ok, agent.message
        assert agent.job_uuid
        agent_created = (await link.wait("call_created", agent.channel_uuid))[0]
        assert (agent_created.tenant_id, agent_created.call_id) == ("acme", caller.uuid)

        bridged = await link.command(
            tenant_id="acme",
            bridge=Bridge(a_channel_uuid=caller.uuid, b_channel_uuid=agent.channel_uuid),
        )
        assert bridged.ok, bridged.message
        await link.wait("call_bridged", caller.uuid)

        held = await link.command(tenant_id="acme", hold=Hold(channel_uuid=caller.uuid))
        assert (held.ok, held.output) == (True, "+OK Success")
        await link.wait("call_held", caller.uuid)

        path = str(switch.recordings_dir / f"{caller.uuid}.wav")
        started = await link.command(
            tenant_id="acme",
            record_start=RecordStart(channel_uuid=caller.uuid, path=path, recording_id="rec-1"),
        )
        assert started.ok, started.message
        assert (await link.wait("recording_started"))[0].recording_started.recording_id == "rec-1"
        await switch.sleep(2)
        stopped = await link.command(
            tenant_id="acme", record_stop=RecordStop(channel_uuid=caller.uuid, path=path)
        )
        assert stopped.ok, stopped.message
        recording = (await link.wait("recording_stopped"))[0].recording_stopped
        assert recording.recording_id == "rec-1"
        assert recording.media_id
        assert recording.size_bytes > 44
        info = await DirectoryMediaStore(platform_settings.media_dir).info(
            "acme", recording.media_id
        )
        assert (info.size, info.metadata["call_id"]) == (recording.size_bytes, caller.uuid)
        assert not await asyncio.to_thread(Path(path).exists)

        killed = await link.command(tenant_id="acme", hangup=Hangup(channel_uuid=caller.uuid))
        assert killed.ok, killed.message
        hung = (await link.wait("call_hung_up", caller.uuid))[0].call_hung_up
        assert hung.cause == "NORMAL_CLEARING"
        await link.wait("call_hung_up", agent.channel_uuid)

        again = await link.command(tenant_id="acme", hangup=Hangup(channel_uuid=caller.uuid))
        assert (again.ok, again.error_code) == (
            False,
            SwitchErrorCode.SWITCH_ERROR_CODE_NO_SUCH_CHANNEL,
        )
        bad = await link.command(tenant_id="acme", hangup=Hangup(channel_uuid="a b"))
        assert bad.error_code == SwitchErrorCode.SWITCH_ERROR_CODE_INVALID_ARGUMENT


async def test_a_stale_fencing_token_is_refused_on_the_bus(
    platform_settings: PlatformSettings, bus: Bus, switch: Switch
) -> None:
    async with running_link(platform_settings, bus, switch) as link:
        caller = await switch.inbound_call(
            caller_number="1", destination_number="2", variables={"callmesh_tenant": "acme"}
        )
        owner = {"tenant_id": "acme", "lease": "acd.acme"}
        new = await link.command(fencing_token=8, hold=Hold(channel_uuid=caller.uuid), **owner)
        assert new.ok
        old = await link.command(fencing_token=7, hangup=Hangup(channel_uuid=caller.uuid), **owner)
        assert (old.ok, old.error_code) == (
            False,
            SwitchErrorCode.SWITCH_ERROR_CODE_STALE_FENCING_TOKEN,
        )
        assert caller.state != "CS_HANGUP"
        assert caller.uuid in [c.uuid for c in switch.channels()]


async def test_heartbeats_say_connected_then_down_when_the_socket_is_lost_and_up_again(
    platform_settings: PlatformSettings, bus: Bus, switch: Switch, event_reader: str
) -> None:
    async with running_link(platform_settings, bus, switch) as link:
        kv = await bus.kv(Bucket.NODES)

        async def beat() -> NodeHeartbeat:
            return NodeHeartbeat.FromString((await kv.get(NODE)).value or b"")

        await eventually(lambda: _true(beat(), lambda b: b.esl_connected), "connected beat")
        caller = await switch.inbound_call(
            caller_number="1", destination_number="2", variables={"callmesh_tenant": "acme"}
        )
        gone = await switch.inbound_call(
            caller_number="3", destination_number="4", variables={"callmesh_tenant": "acme"}
        )
        await link.wait("call_created", gone.uuid)
        await eventually(lambda: _true(beat(), lambda b: b.channels == 2), "2 channels")
        from prometheus_client import REGISTRY

        live = REGISTRY.get_sample_value(
            "callmesh_cti_live_channels", {"node": NODE, "tenant": "acme"}
        )
        assert live == 2
        port = link.server.port

        await link.server.close()
        down = (await link.wait("node_down"))[0]
        assert down.node_down.node_id == NODE
        await eventually(lambda: _true(beat(), lambda b: not b.esl_connected), "down beat")

        # While the link is away: one call ends, another starts.
        await gone.far_hangup()
        await gone.wait_hangup()
        newcomer = await switch.inbound_call(
            caller_number="5", destination_number="6", variables={"callmesh_tenant": "acme"}
        )
        link.server = await start_esl_server(switch, port=port)
        await link.wait("node_up", count=2)
        hung = (await link.wait("call_hung_up", gone.uuid))[0].call_hung_up
        assert hung.side == HangupSide.HANGUP_SIDE_SYSTEM
        table = link.parts.link.normalizer.table  # type: ignore[union-attr]
        assert caller.uuid in table
        assert newcomer.uuid in table
        assert gone.uuid not in table
        assert link.parts.esl is not None
        esl = link.parts.esl
        # With the asyncio reader the command connection reconnects on its own schedule.
        await eventually(lambda: esl.connects == 2 and esl.connected, "commands reconnected")
        if event_reader == "asyncio":
            assert link.parts.events is not None
            assert link.parts.events.connects == 2
        else:
            assert link.parts.events is None

        # The adopted channel's tenant comes with its next event.
        await newcomer.far_hangup()
        newcomer_hung = (await link.wait("call_hung_up", newcomer.uuid))[0]
        assert newcomer_hung.tenant_id == "acme"


async def _true(value: Awaitable[Any], test: Callable[[Any], bool]) -> bool:
    try:
        return test(await value)
    except Exception:
        return False


async def test_channels_of_no_known_tenant_are_counted_not_published(
    platform_settings: PlatformSettings, bus: Bus, switch: Switch
) -> None:
    from prometheus_client import REGISTRY

    def dropped() -> float:
        return (
            REGISTRY.get_sample_value("callmesh_cti_unknown_tenant_events_total", {"node": NODE})
            or 0.0
        )

    before = dropped()
    async with running_link(platform_settings, bus, switch) as link:
        stranger = await switch.inbound_call(caller_number="9", destination_number="9")
        await stranger.far_hangup()
        await eventually(lambda: dropped() > before, "unknown tenant counted")
        known = await switch.inbound_call(
            caller_number="1", destination_number="2", variables={"callmesh_tenant": "acme"}
        )
        await link.wait("call_created", known.uuid)
        assert link.of("call_created", stranger.uuid) == []


class ScriptedSwitch:
    """A FreeSWITCH stand-in on the real wire that sends scripted bytes after the handshake.

    Used where the emulator, being correct, never misbehaves: malformed frames, unknown events.
    """

    def __init__(self, script: bytes) -> None:
        self.script = script
        self.port = 0
        self._server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from callmesh.core.esl import api_response_frame, command_reply_frame

        self.writers.append(writer)
        writer.write(b"Content-Type: auth/request\n\n")
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                block = await reader.readuntil(b"\n\n")
                command = block.decode().split("\n", 1)[0]
                if command.startswith("auth"):
                    writer.write(command_reply_frame("+OK accepted"))
                elif command.startswith("event"):
                    writer.write(command_reply_frame("+OK event listener enabled plain"))
                    writer.write(self.script)
                elif command.startswith("api show"):
                    writer.write(api_response_frame('{"row_count":0}'))
                elif command.startswith("exit"):
                    writer.write(command_reply_frame("+OK bye"))
                    break
                await writer.drain()
        writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self.writers:
            writer.close()


async def test_malformed_frames_and_unknown_events_are_counted_and_the_link_keeps_running(
    platform_settings: PlatformSettings, bus: Bus, event_reader: str
) -> None:
    from prometheus_client import REGISTRY

    from callmesh.core.esl import event_frame, serialize_event_plain

    def problems(kind: str) -> float:
        return (
            REGISTRY.get_sample_value(
                "callmesh_cti_esl_problems_total", {"node": NODE, "kind": kind}
            )
            or 0.0
        )

    def create(uuid_: str) -> bytes:
        headers = [
            ("Event-Name", "CHANNEL_CREATE"),
            ("Event-Date-Timestamp", str(int(time.time() * 1e6))),
            ("Unique-ID", uuid_),
            ("Call-Direction", "inbound"),
            ("Caller-Caller-ID-Number", "+331"),
            ("variable_callmesh_tenant", "acme"),
        ]
        return event_frame(serialize_event_plain(headers))

    first, last = str(uuid.uuid4()), str(uuid.uuid4())
    script = (
        create(first)
        + b"Content-Type: text/event-plain\nContent-Length: nope\n\n"
        + event_frame(b"no colon in this line\n\n")
        + event_frame(
            serialize_event_plain([("Event-Name", "BRAND_NEW_EVENT"), ("Unique-ID", "x")])
        )
        + b"Reply-Text: +OK nobody asked\n\n"
        + create(last)
    )
    before = (problems("malformed"), problems("unknown"))
    fake = ScriptedSwitch(script)
    await fake.start()
    runtime = Runtime(
        build(CtiSettings(platform=platform_settings, node_id=NODE, esl_port=fake.port))
    )
    app = create_app(runtime)
    seen: list[Event] = []

    async def collect(msg: Msg) -> None:
        seen.append(Event.FromString(msg.data))

    sub = await bus.nc.subscribe(f"{bus.subjects.prefix}.acme.call.created", cb=collect)
    try:
        async with app.router.lifespan_context(app):
            await eventually(lambda: len(seen) >= 2, "both good events published")
            assert [e.call_created.channel_uuid for e in seen] == [first, last]
            assert problems("malformed") - before[0] >= 3
            assert problems("unknown") - before[1] >= 1
            parts: LinkParts = runtime.definition.on_start[0].__self__  # type: ignore[attr-defined]
            assert parts.esl is not None
            esl = parts.esl
            # With the asyncio reader the command connection is a second one, which may come up
            # after the event connection delivered everything.
            await eventually(lambda: esl.connected, "the command connection is up")
            if event_reader == "asyncio":
                assert parts.events is not None
                assert parts.events.connected
                assert parts.events.malformed >= 3
    finally:
        await sub.unsubscribe()
        await fake.close()
