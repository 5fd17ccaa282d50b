"""The link's use cases with in-memory ports: commands fenced and run, events published."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from callmesh.cti.domain.normalize import CallEvent
from callmesh.cti.ports import SwitchNotConnected, SwitchTimeout
from callmesh.cti.service.link import CtiLink, LinkConfig
from callmesh.proto.v1.call_pb2 import RecordingStopped
from callmesh.proto.v1.switch_pb2 import (
    Endpoint,
    Hangup,
    Originate,
    RecordStart,
    SwitchCommand,
    SwitchErrorCode,
)

from .fsevents import A, as_dict, channel, inbound_call_to_agent


class MemorySwitch:
    """A switch port answering from a script of outputs (or raising)."""

    def __init__(self, outputs: list[str | Exception]) -> None:
        self.outputs = outputs
        self.lines: list[str] = []
        self.connected = True

    async def bgapi(self, line: str, timeout_s: float) -> tuple[str, str]:
        self.lines.append(line)
        out = self.outputs.pop(0)
        if isinstance(out, Exception):
            raise out
        return f"job-{len(self.lines)}", out


class MemoryPublisher:
    def __init__(self) -> None:
        self.events: list[CallEvent] = []

    async def publish_call_events(self, events: Sequence[CallEvent]) -> None:
        self.events.extend(events)


class MemoryArchive:
    async def archive(
        self, tenant_id: str, call_id: str, recording: RecordingStopped
    ) -> RecordingStopped:
        out = RecordingStopped()
        out.CopyFrom(recording)
        out.media_id = f"m-{tenant_id}-{call_id[:4]}"
        out.size_bytes = 1234
        return out


class MemoryTenants:
    def __init__(self, tenants: dict[tuple[str, str], str]) -> None:
        self.tenants = tenants
        self.asked: list[tuple[str, str]] = []

    async def tenant_of(self, domain: str, username: str) -> str:
        self.asked.append((domain, username))
        return self.tenants.get((domain, username), "")


class Counting:
    def __init__(self) -> None:
        self.refusals: list[str] = []
        self.problems: list[str] = []
        self.unknown = 0
        self.commands: list[tuple[str, str]] = []

    def esl_event(self, name: str, timestamp_us: int) -> None:
        pass

    def esl_problem(self, kind: str) -> None:
        self.problems.append(kind)

    def unknown_tenant(self, count: int) -> None:
        self.unknown += count

    def command(self, name: str, outcome: str, seconds: float) -> None:
        self.commands.append((name, outcome))

    def refused(self, reason: str) -> None:
        self.refusals.append(reason)

    def reconnect(self) -> None:
        pass

    def live_channels(self, per_tenant: dict[str, int]) -> None:
        pass


def make(
    outputs: list[str | Exception] | None = None,
) -> tuple[CtiLink, MemorySwitch, MemoryPublisher, Counting]:
    publisher = MemoryPublisher()
    observer = Counting()
    link = CtiLink(
        LinkConfig(node_id="fs-1"),
        publisher=publisher,
        archive=MemoryArchive(),
        resolver=MemoryTenants({("acme.sip.callmesh.local", "1001"): "acme"}),
        observer=observer,
    )
    switch = MemorySwitch(outputs or [])
    link.switch = switch
    return link, switch, publisher, observer


def kill(token: int = 0, lease: str = "", uuid: str = A) -> SwitchCommand:
    return SwitchCommand(
        command_id="c1",
        tenant_id="acme",
        lease=lease,
        fencing_token=token,
        hangup=Hangup(channel_uuid=uuid),
    )


async def test_a_command_runs_through_bgapi_and_its_answer_becomes_the_reply() -> None:
    link, switch, _, observer = make(["+OK Success\n"])
    reply = await link.execute(kill())
    assert switch.lines == [f"uuid_kill {A} NORMAL_CLEARING"]
    assert (reply.ok, reply.command_id, reply.job_uuid, reply.output, reply.channel_uuid) == (
        True,
        "c1",
        "job-1",
        "+OK Success",
        A,
    )
    assert observer.commands == [("uuid_kill", "ok")]


async def test_an_originate_without_a_uuid_gets_one_and_the_reply_names_it() -> None:
    link, switch, _, _ = make([])
    switch.outputs.append("+OK placeholder")

    async def answer(line: str, timeout_s: float) -> tuple[str, str]:
        uuid = line.split("origination_uuid='", 1)[1].split("'", 1)[0]
        return "job", f"+OK {uuid}\n"

    switch.bgapi = answer  # type: ignore[method-assign]
    reply = await link.execute(
        SwitchCommand(tenant_id="acme", originate=Originate(endpoint=Endpoint(user="1001")))
    )
    assert reply.ok
    assert len(reply.channel_uuid) == 36


async def test_a_stale_fencing_token_is_refused_and_never_reaches_the_switch() -> None:
    link, switch, _, observer = make(["+OK Success\n"])
    assert (await link.execute(kill(7, "acd.acme"))).ok
    stale = await link.execute(kill(6, "acd.acme"))
    assert not stale.ok
    assert stale.error_code == SwitchErrorCode.SWITCH_ERROR_CODE_STALE_FENCING_TOKEN
    assert "older than 7" in stale.message
    assert len(switch.lines) == 1
    assert observer.refusals == ["stale"]


async def test_a_bad_argument_is_refused_naming_the_field_and_does_not_advance_the_token() -> None:
    link, _switch, _, observer = make(["+OK Success\n"])
    bad = await link.execute(kill(9, "acd.acme", uuid="a b"))
    assert bad.error_code == SwitchErrorCode.SWITCH_ERROR_CODE_INVALID_ARGUMENT
    assert bad.message.startswith("hangup.channel_uuid:")
    assert (await link.execute(kill(8, "acd.acme"))).ok
    assert observer.refusals == ["invalid_argument"]


async def test_a_command_on_another_tenants_channel_is_refused_and_never_reaches_the_switch() -> (
    None
):
    link, switch, _, observer = make(["+OK Success\n"])
    await link.on_events(
        [as_dict(channel("CHANNEL_CREATE", A, variables={"callmesh_tenant": "umbrella"}))]
    )
    reply = await link.execute(kill(3, "acd.acme"))
    assert (reply.ok, reply.error_code) == (
        False,
        SwitchErrorCode.SWITCH_ERROR_CODE_NO_SUCH_CHANNEL,
    )
    assert reply.message.startswith("hangup.channel_uuid:")
    assert switch.lines == []
    assert observer.refusals == ["other_tenant"]
    assert link.fencing.newest("acme", "acd.acme") == 0


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (SwitchTimeout("late"), SwitchErrorCode.SWITCH_ERROR_CODE_TIMEOUT),
        (SwitchNotConnected("down"), SwitchErrorCode.SWITCH_ERROR_CODE_NOT_CONNECTED),
    ],
)
async def test_timeouts_and_a_lost_socket_are_replies_not_raises(
    failure: Exception, code: int
) -> None:
    link, _, _, _ = make([failure])
    reply = await link.execute(kill())
    assert (reply.ok, reply.error_code) == (False, code)


async def test_no_command_is_sent_while_the_socket_is_down() -> None:
    link, switch, _, observer = make(["+OK"])
    switch.connected = False
    reply = await link.execute(kill())
    assert reply.error_code == SwitchErrorCode.SWITCH_ERROR_CODE_NOT_CONNECTED
    assert switch.lines == []
    assert observer.refusals == ["not_connected"]


async def test_switch_errors_keep_the_switch_text() -> None:
    link, _, _, _ = make(["-ERR No such channel!\n"])
    reply = await link.execute(kill())
    assert (reply.ok, reply.error_code, reply.message) == (
        False,
        SwitchErrorCode.SWITCH_ERROR_CODE_NO_SUCH_CHANNEL,
        "No such channel!",
    )


async def test_a_record_start_id_is_carried_by_the_recording_events() -> None:
    link, _, publisher, _ = make(["+OK Success\n"])
    path = f"/var/lib/freeswitch/recordings/acme/{A}.wav"
    await link.execute(
        SwitchCommand(
            tenant_id="acme",
            record_start=RecordStart(channel_uuid=A, path=path, recording_id="r-1"),
        )
    )
    await link.on_events([as_dict(e) for e in inbound_call_to_agent()])
    await link.settle()
    started = [e.message for e in publisher.events if e.body == "recording_started"]
    assert started[0].recording_id == "r-1"


async def test_a_record_start_the_switch_refuses_leaves_no_recording_id_behind() -> None:
    link, _, _, _ = make(["-ERR Cannot locate session!\n"])
    path = f"/var/lib/freeswitch/recordings/acme/{A}.wav"
    reply = await link.execute(
        SwitchCommand(
            tenant_id="acme",
            record_start=RecordStart(channel_uuid=A, path=path, recording_id="r-1"),
        )
    )
    assert not reply.ok
    assert link.normalizer.recording_ids == {}


async def test_events_are_published_and_recordings_archived_before_their_event() -> None:
    link, _, publisher, _ = make()
    await link.on_events([as_dict(e) for e in inbound_call_to_agent()])
    await link.settle()
    bodies = [e.body for e in publisher.events]
    assert bodies.count("call_hung_up") == 2
    stopped = next(e.message for e in publisher.events if e.body == "recording_stopped")
    assert (stopped.media_id, stopped.size_bytes) == (f"m-acme-{A[:4]}", 1234)


async def test_a_leg_known_only_by_its_sip_domain_is_published_once_the_directory_answers() -> None:
    link, _, publisher, _ = make()
    sip = {"domain_name": "acme.sip.callmesh.local", "user_name": "1001"}
    await link.on_events([as_dict(channel("CHANNEL_CREATE", A, variables=sip))])
    await link.settle()
    assert [(e.body, e.tenant_id) for e in publisher.events] == [("call_created", "acme")]


async def test_malformed_and_unknown_events_are_counted_and_the_rest_still_flows() -> None:
    link, _, publisher, observer = make()
    await link.on_events(
        [
            {"Unique-ID": A},
            {"Event-Name": "NEW_THING", "Unique-ID": A},
            as_dict(channel("CHANNEL_CREATE", A, variables={"callmesh_tenant": "acme"})),
            as_dict(channel("CHANNEL_CREATE", "x-1")),
            as_dict(channel("CHANNEL_HANGUP_COMPLETE", "x-1")),
        ]
    )
    assert observer.problems == ["malformed", "unknown"]
    assert observer.unknown == 2
    assert [e.body for e in publisher.events] == ["call_created"]
