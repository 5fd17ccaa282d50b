"""Switch commands → bgapi lines: argument rules, injection refused, replies mapped to codes."""

from __future__ import annotations

import pytest

from callmesh.cti.domain.commands import (
    BadArgument,
    CommandLine,
    DialPlan,
    interpret_reply,
    to_command_line,
)
from callmesh.cti.domain.fencing import FencingTable
from callmesh.proto.v1.common_pb2 import Party
from callmesh.proto.v1.switch_pb2 import (
    Bridge,
    Broadcast,
    BroadcastLeg,
    Eavesdrop,
    EavesdropMode,
    Endpoint,
    GatewayDial,
    Hangup,
    Hold,
    NodeDial,
    Originate,
    Park,
    Play,
    RecordStart,
    RecordStop,
    SendDtmf,
    SetVariable,
    StopMedia,
    SwitchCommand,
    SwitchErrorCode,
    Transfer,
    TransferLeg,
    Unhold,
)

U1 = "0b3e1c52-8a4f-4d7e-b1a9-5c2d7e3f9a01"
U2 = "7d2f4a90-1c3b-4e5d-8f6a-9b0c1d2e3f04"


def line(**kwargs: object) -> str:
    return to_command_line(SwitchCommand(tenant_id="acme", call_id="c1", **kwargs)).line  # type: ignore[arg-type]


def test_originate_to_a_registered_user_sets_uuid_tenant_call_and_caller_id() -> None:
    text = line(
        originate=Originate(
            channel_uuid=U2,
            endpoint=Endpoint(user="1001"),
            caller_id=Party(number="+33612345678", name="Jane Doe"),
            answer_timeout_s=20,
            variables={"callmesh_role": "agent"},
        )
    )
    assert text == (
        f"originate {{origination_uuid='{U2}',callmesh_tenant='acme',callmesh_call_id='c1',"
        "origination_caller_id_number='+33612345678',origination_caller_id_name='Jane Doe',"
        "originate_timeout='20',callmesh_role='agent'}"
        "user/1001@acme.sip.callmesh.local &park()"
    )


def test_originate_to_gateways_nodes_and_dial_strings() -> None:
    gw = line(
        originate=Originate(
            channel_uuid=U2,
            endpoint=Endpoint(gateway=GatewayDial(gateway="carrier1", number="+3314")),
        )
    )
    assert "}sofia/gateway/carrier1/+3314 &park()" in gw
    node = line(
        originate=Originate(
            channel_uuid=U2,
            endpoint=Endpoint(node=NodeDial(node_id="fs-2", number="1001")),
            application="bridge",
            application_args=f"uuid:{U1}",
        )
    )
    assert node.endswith(f"}}sofia/gateway/node-fs-2/1001 &bridge(uuid:{U1})")
    loop = line(
        originate=Originate(channel_uuid=U2, endpoint=Endpoint(dial_string="loopback/9196"))
    )
    assert loop.endswith("}loopback/9196 &park()")


@pytest.mark.parametrize(
    ("kwargs", "expected", "name"),
    [
        (
            {"bridge": Bridge(a_channel_uuid=U1, b_channel_uuid=U2)},
            f"uuid_bridge {U1} {U2}",
            "uuid_bridge",
        ),
        (
            {"transfer": Transfer(channel_uuid=U1, destination="2000")},
            f"uuid_transfer {U1} 2000",
            "uuid_transfer",
        ),
        (
            {
                "transfer": Transfer(
                    channel_uuid=U1,
                    destination="2000",
                    context="acme",
                    leg=TransferLeg.TRANSFER_LEG_BOTH,
                )
            },
            f"uuid_transfer {U1} -both 2000 XML acme",
            "uuid_transfer",
        ),
        ({"hangup": Hangup(channel_uuid=U1)}, f"uuid_kill {U1} NORMAL_CLEARING", "uuid_kill"),
        (
            {"hangup": Hangup(channel_uuid=U1, cause="USER_BUSY")},
            f"uuid_kill {U1} USER_BUSY",
            "uuid_kill",
        ),
        (
            {"play": Play(channel_uuid=U1, files=["/m/a.wav"])},
            f"uuid_broadcast {U1} /m/a.wav aleg",
            "uuid_broadcast",
        ),
        (
            {"play": Play(channel_uuid=U1, files=["/m/a.wav", "/m/b.wav"], loop=True)},
            f"uuid_broadcast {U1} endless_playback::file_string:///m/a.wav!/m/b.wav aleg",
            "uuid_broadcast",
        ),
        (
            {
                "broadcast": Broadcast(
                    channel_uuid=U1, file="local_stream://moh", leg=BroadcastLeg.BROADCAST_LEG_BOTH
                )
            },
            f"uuid_broadcast {U1} local_stream://moh both",
            "uuid_broadcast",
        ),
        ({"stop_media": StopMedia(channel_uuid=U1)}, f"uuid_break {U1} all", "uuid_break"),
        (
            {"record_start": RecordStart(channel_uuid=U1, path="/rec/x.wav", limit_s=3600)},
            f"uuid_record {U1} start /rec/x.wav 3600",
            "uuid_record",
        ),
        (
            {"record_stop": RecordStop(channel_uuid=U1, path="/rec/x.wav")},
            f"uuid_record {U1} stop /rec/x.wav",
            "uuid_record",
        ),
        ({"record_stop": RecordStop(channel_uuid=U1)}, f"uuid_record {U1} stop all", "uuid_record"),
        ({"hold": Hold(channel_uuid=U1)}, f"uuid_hold {U1}", "uuid_hold"),
        ({"unhold": Unhold(channel_uuid=U1)}, f"uuid_hold off {U1}", "uuid_hold"),
        ({"park": Park(channel_uuid=U1)}, f"uuid_park {U1}", "uuid_park"),
        (
            {
                "set_variable": SetVariable(
                    channel_uuid=U1, name="callmesh_queue", value="sales team"
                )
            },
            f"uuid_setvar {U1} callmesh_queue sales team",
            "uuid_setvar",
        ),
        (
            {"send_dtmf": SendDtmf(channel_uuid=U1, digits="12#", duration_ms=200)},
            f"uuid_send_dtmf {U1} 12#@200",
            "uuid_send_dtmf",
        ),
    ],
)
def test_each_command_becomes_its_api_line(
    kwargs: dict[str, object], expected: str, name: str
) -> None:
    command = to_command_line(SwitchCommand(tenant_id="acme", **kwargs))  # type: ignore[arg-type]
    assert (command.line, command.name) == (expected, name)


@pytest.mark.parametrize(
    ("mode", "app", "whisper"),
    [
        (EavesdropMode.EAVESDROP_MODE_LISTEN, "eavesdrop", False),
        (EavesdropMode.EAVESDROP_MODE_WHISPER, "eavesdrop", True),
        (EavesdropMode.EAVESDROP_MODE_BARGE, "three_way", False),
    ],
)
def test_eavesdrop_originates_the_supervisor_into_listen_whisper_or_barge(
    mode: int, app: str, whisper: bool
) -> None:
    text = line(
        eavesdrop=Eavesdrop(
            supervisor=Endpoint(user="2001"),
            target_channel_uuid=U1,
            mode=mode,  # type: ignore[arg-type]
            supervisor_channel_uuid=U2,
        )
    )
    assert text.endswith(f"user/2001@acme.sip.callmesh.local &{app}({U1})")
    assert f"origination_uuid='{U2}'" in text
    assert "callmesh_role='supervisor'" in text
    assert ("eavesdrop_whisper_aleg='true'" in text) is whisper


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"hangup": Hangup(channel_uuid=f"{U1} x")}, "hangup.channel_uuid"),
        ({"hangup": Hangup(channel_uuid=f"{U1}\nbgapi status")}, "hangup.channel_uuid"),
        ({"hangup": Hangup(channel_uuid="")}, "hangup.channel_uuid"),
        ({"hangup": Hangup(channel_uuid=U1, cause="x; y")}, "hangup.cause"),
        ({"play": Play(channel_uuid=U1, files=["/m/a b.wav"])}, "play.files[0]"),
        ({"play": Play(channel_uuid=U1, files=["${system(rm)}"])}, "play.files[0]"),
        ({"play": Play(channel_uuid=U1, files=["a.wav!b.wav"])}, "play.files[0]"),
        ({"play": Play(channel_uuid=U1)}, "play.files"),
        (
            {"record_start": RecordStart(channel_uuid=U1, path="/rec/../etc/passwd")},
            "record_start.path",
        ),
        ({"send_dtmf": SendDtmf(channel_uuid=U1, digits="12x")}, "send_dtmf.digits"),
        (
            {"set_variable": SetVariable(channel_uuid=U1, name="bad name", value="v")},
            "set_variable.name",
        ),
        (
            {"set_variable": SetVariable(channel_uuid=U1, name="v", value="a\nb")},
            "set_variable.value",
        ),
        (
            {"set_variable": SetVariable(channel_uuid=U1, name="v", value="${x}")},
            "set_variable.value",
        ),
        (
            {"transfer": Transfer(channel_uuid=U1, destination="2000 XML evil")},
            "transfer.destination",
        ),
        (
            {"originate": Originate(channel_uuid=U1, endpoint=Endpoint(user="10 01"))},
            "originate.endpoint.user",
        ),
        ({"originate": Originate(channel_uuid=U1)}, "originate.endpoint"),
        (
            {
                "originate": Originate(
                    channel_uuid=U1, endpoint=Endpoint(dial_string="user/1 &system(x)")
                )
            },
            "originate.endpoint.dial_string",
        ),
        (
            {
                "originate": Originate(
                    channel_uuid=U1, endpoint=Endpoint(user="1"), variables={"a": "x',b='y"}
                )
            },
            "originate.variables.a",
        ),
        (
            {
                "originate": Originate(
                    channel_uuid=U1,
                    endpoint=Endpoint(user="1"),
                    application="bridge",
                    application_args="a b",
                )
            },
            "originate.application_args",
        ),
        ({}, "command"),
    ],
)
def test_bad_arguments_are_refused_naming_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(BadArgument) as info:
        to_command_line(SwitchCommand(tenant_id="acme", **kwargs))  # type: ignore[arg-type]
    assert info.value.field == field


def test_dialling_a_user_needs_the_tenant() -> None:
    with pytest.raises(BadArgument, match="tenant_id"):
        to_command_line(
            SwitchCommand(originate=Originate(channel_uuid=U1, endpoint=Endpoint(user="1")))
        )


def test_the_sip_domain_suffix_comes_from_the_dial_plan() -> None:
    cmd = SwitchCommand(
        tenant_id="t", originate=Originate(channel_uuid=U1, endpoint=Endpoint(user="7"))
    )
    assert "user/7@t.sip.example.com " in to_command_line(cmd, DialPlan("sip.example.com")).line


@pytest.mark.parametrize(
    ("output", "ok", "code"),
    [
        ("+OK Success\n", True, SwitchErrorCode.SWITCH_ERROR_CODE_UNSPECIFIED),
        ("-ERR No such channel!\n", False, SwitchErrorCode.SWITCH_ERROR_CODE_NO_SUCH_CHANNEL),
        ("-ERR Invalid uuid\n", False, SwitchErrorCode.SWITCH_ERROR_CODE_NO_SUCH_CHANNEL),
        ("-USAGE: <uuid> [cause]\n", False, SwitchErrorCode.SWITCH_ERROR_CODE_INVALID_ARGUMENT),
        ("-ERR USER_NOT_REGISTERED\n", False, SwitchErrorCode.SWITCH_ERROR_CODE_SWITCH_ERROR),
        ("", False, SwitchErrorCode.SWITCH_ERROR_CODE_SWITCH_ERROR),
    ],
)
def test_switch_answers_map_to_reply_codes(output: str, ok: bool, code: int) -> None:
    result = interpret_reply(output, CommandLine("uuid_kill", "x", U1))
    assert (result.ok, result.code) == (ok, code)


def test_an_originate_reply_names_the_new_leg() -> None:
    result = interpret_reply(f"+OK {U2}\n", CommandLine("originate", "x", U2))
    assert result.ok
    assert result.channel_uuid == U2
    failed = interpret_reply("-ERR NO_ANSWER\n", CommandLine("originate", "x", U2))
    assert (failed.ok, failed.message) == (False, "NO_ANSWER")


def test_fencing_refuses_tokens_older_than_the_newest_seen_per_tenant_and_lease() -> None:
    table = FencingTable()
    assert table.check("acme", "acd.acme", 5).admitted
    assert table.check("acme", "acd.acme", 5).admitted  # the same owner again
    stale = table.check("acme", "acd.acme", 4)
    assert (stale.admitted, stale.reason, stale.newest) == (False, "stale", 5)
    assert table.check("acme", "acd.acme", 6).admitted
    assert not table.check("acme", "acd.acme", 5).admitted
    # Other tenants and leases are fenced on their own; no lease means no fencing.
    assert table.check("beta", "acd.acme", 1).admitted
    assert table.check("acme", "outbound.acme", 1).admitted
    assert table.check("acme", "", 0).admitted
    assert table.check("acme", "acd.acme", 0).reason == "missing_token"
