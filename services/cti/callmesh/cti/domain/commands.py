"""``SwitchCommand`` → the FreeSWITCH API command line run with ``bgapi``, and replies → codes.

Every argument is checked before it reaches the switch: FreeSWITCH splits API arguments on
spaces and event-socket commands end at a newline, so a space, newline or a quote smuggled into
an argument could run another command or change the call. A bad argument raises
``BadArgument`` naming the field and the rule; nothing is sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from callmesh.proto.v1.switch_pb2 import (
    BroadcastLeg,
    EavesdropMode,
    Endpoint,
    SwitchCommand,
    SwitchErrorCode,
    TransferLeg,
)


class BadArgument(ValueError):
    """A command argument broke a rule; ``field`` names where, ``rule`` names which."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


_UUID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_FILE = re.compile(r"^[A-Za-z0-9_./:%@+,=~?&#-]{1,1024}$")
_DIGITS = re.compile(r"^[0-9*#A-Da-dwW]{1,64}$")
_CAUSE = re.compile(r"^[A-Z0-9_]{1,64}$")
_EXTENSION = re.compile(r"^[A-Za-z0-9_+*#.@:-]{1,128}$")
_DIALPLAN = re.compile(r"^[A-Za-z_][A-Za-z0-9_,]{0,63}$")
_CONTEXT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_APP = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
_SIP_USER = re.compile(r"^[A-Za-z0-9_.+-]{1,128}$")
_GATEWAY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")
_DIAL_STRING = re.compile(r"^[A-Za-z0-9_./:%@+,=|\[\]^~*#-]{1,1024}$")
_NODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_VALUE = 1024


def check_uuid(value: str, field: str) -> str:
    """A channel UUID: letters, digits and '-' (at most 64)."""
    if not _UUID.match(value):
        raise BadArgument(field, "must be a channel UUID (letters, digits, '-'; 1-64 chars)")
    return value


def check_file(value: str, field: str) -> str:
    """A media file or URL: no spaces, quotes, '$', '!' or control characters, no '..'."""
    if not _FILE.match(value):
        raise BadArgument(
            field,
            "must be a file path or URL of 1-1024 chars without spaces, quotes, '$', '!', "
            "braces or control characters",
        )
    if "/../" in f"/{value}/".replace("://", "/"):
        raise BadArgument(field, "must not contain '..' path segments")
    return value


def check_digits(value: str, field: str) -> str:
    """DTMF digits: 0-9 * # A-D and w/W pauses, 1-64 of them."""
    if not _DIGITS.match(value):
        raise BadArgument(field, "must be 1-64 DTMF digits (0-9 * # A-D, w/W pauses)")
    return value


def check_var_name(value: str, field: str) -> str:
    """A channel variable name: a letter or '_' then letters, digits, '_'."""
    if not _VAR_NAME.match(value):
        raise BadArgument(field, "must be a variable name (letters, digits, '_'; 1-128 chars)")
    return value


def check_value(value: str, field: str, *, quotable: bool = True) -> str:
    """A variable value: printable, no newline, and (inside ``{…}``) no quote, brace or '$'."""
    if len(value) > _MAX_VALUE or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise BadArgument(field, f"must be at most {_MAX_VALUE} chars without control characters")
    if quotable and any(ch in value for ch in "'{}$`"):
        raise BadArgument(field, "must not contain quotes, braces, '$' or backquotes")
    if not quotable and "$" in value:
        raise BadArgument(field, "must not contain '$' (FreeSWITCH would expand it)")
    return value


def _match(pattern: re.Pattern[str], value: str, field: str, rule: str) -> str:
    if not pattern.match(value):
        raise BadArgument(field, rule)
    return value


@dataclass(frozen=True, slots=True)
class CommandLine:
    """One API command for ``bgapi`` and what the link needs to know about it."""

    name: str
    line: str
    channel_uuid: str
    # (path, recording id) of a RecordStart, so RECORD_* events carry the caller's id.
    recording: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class DialPlan:
    """How endpoints become dial strings on this node."""

    sip_domain_suffix: str = "sip.callmesh.local"
    # Inter-node trunk gateways are named ``<prefix><node id>`` in the sofia trunk profile.
    node_gateway_prefix: str = "node-"


def dial_string(endpoint: Endpoint, tenant_id: str, plan: DialPlan, field: str) -> str:
    """The FreeSWITCH dial string of an endpoint."""
    which = endpoint.WhichOneof("target")
    if which == "user":
        user = _match(_SIP_USER, endpoint.user, f"{field}.user", "must be a SIP user name")
        if not tenant_id:
            raise BadArgument("tenant_id", "is required to dial a tenant's user")
        return f"user/{user}@{tenant_id}.{plan.sip_domain_suffix}"
    if which == "gateway":
        gateway = _match(
            _GATEWAY, endpoint.gateway.gateway, f"{field}.gateway.gateway", "must be a gateway name"
        )
        number = _match(
            _NUMBER, endpoint.gateway.number, f"{field}.gateway.number", "must be a phone number"
        )
        return f"sofia/gateway/{gateway}/{number}"
    if which == "node":
        node = _match(_NODE, endpoint.node.node_id, f"{field}.node.node_id", "must be a node id")
        number = _match(
            _NUMBER, endpoint.node.number, f"{field}.node.number", "must be a phone number"
        )
        return f"sofia/gateway/{plan.node_gateway_prefix}{node}/{number}"
    if which == "dial_string":
        return _match(
            _DIAL_STRING,
            endpoint.dial_string,
            f"{field}.dial_string",
            "must be a dial string without spaces, quotes, braces, '$' or '&'",
        )
    raise BadArgument(field, "must name a user, gateway, node or dial string")


def _var_block(variables: list[tuple[str, str]], field: str) -> str:
    parts = []
    for name, value in variables:
        check_var_name(name, f"{field}.{name}")
        check_value(value, f"{field}.{name}")
        parts.append(f"{name}='{value}'" if value else f"{name}=''")
    return "{" + ",".join(parts) + "}"


def to_command_line(cmd: SwitchCommand, plan: DialPlan | None = None) -> CommandLine:
    """The bgapi command line of a switch command (``BadArgument`` when an argument is bad)."""
    plan = plan or DialPlan()
    which = cmd.WhichOneof("command")
    if which is None:
        raise BadArgument("command", "must carry one command")
    if which == "originate":
        o = cmd.originate
        uuid = check_uuid(o.channel_uuid, "originate.channel_uuid")
        dial = dial_string(o.endpoint, cmd.tenant_id, plan, "originate.endpoint")
        variables: list[tuple[str, str]] = [("origination_uuid", uuid)]
        if cmd.tenant_id:
            variables.append(("callmesh_tenant", cmd.tenant_id))
        if cmd.call_id:
            variables.append(("callmesh_call_id", cmd.call_id))
        if o.caller_id.number:
            variables.append(("origination_caller_id_number", o.caller_id.number))
        if o.caller_id.name:
            variables.append(("origination_caller_id_name", o.caller_id.name))
        if o.answer_timeout_s:
            variables.append(("originate_timeout", str(o.answer_timeout_s)))
        for name in sorted(o.variables):
            variables.append((name, o.variables[name]))
        app = o.application or "park"
        _match(_APP, app, "originate.application", "must be an application name")
        args = o.application_args
        if args and (any(ch.isspace() for ch in args) or any(ch in args for ch in "()'$")):
            raise BadArgument(
                "originate.application_args", "must not contain spaces, quotes, '$' or brackets"
            )
        check_value(args, "originate.application_args")
        line = f"originate {_var_block(variables, 'originate.variables')}{dial} &{app}({args})"
        return CommandLine("originate", line, uuid)
    if which == "bridge":
        a = check_uuid(cmd.bridge.a_channel_uuid, "bridge.a_channel_uuid")
        b = check_uuid(cmd.bridge.b_channel_uuid, "bridge.b_channel_uuid")
        return CommandLine("uuid_bridge", f"uuid_bridge {a} {b}", a)
    if which == "transfer":
        t = cmd.transfer
        uuid = check_uuid(t.channel_uuid, "transfer.channel_uuid")
        dest = _match(_EXTENSION, t.destination, "transfer.destination", "must be an extension")
        parts = ["uuid_transfer", uuid]
        if t.leg == TransferLeg.TRANSFER_LEG_B:
            parts.append("-bleg")
        elif t.leg == TransferLeg.TRANSFER_LEG_BOTH:
            parts.append("-both")
        parts.append(dest)
        if t.dialplan or t.context:
            parts.append(
                _match(_DIALPLAN, t.dialplan or "XML", "transfer.dialplan", "must be a dialplan")
            )
        if t.context:
            parts.append(_match(_CONTEXT, t.context, "transfer.context", "must be a context"))
        return CommandLine("uuid_transfer", " ".join(parts), uuid)
    if which == "hangup":
        uuid = check_uuid(cmd.hangup.channel_uuid, "hangup.channel_uuid")
        cause = _match(
            _CAUSE,
            cmd.hangup.cause or "NORMAL_CLEARING",
            "hangup.cause",
            "must be a cause name",
        )
        return CommandLine("uuid_kill", f"uuid_kill {uuid} {cause}", uuid)
    if which == "play":
        p = cmd.play
        uuid = check_uuid(p.channel_uuid, "play.channel_uuid")
        if not p.files:
            raise BadArgument("play.files", "must name at least one file")
        files = [check_file(f, f"play.files[{i}]") for i, f in enumerate(p.files)]
        target = files[0] if len(files) == 1 else "file_string://" + "!".join(files)
        if p.loop:
            target = f"endless_playback::{target}"
        return CommandLine("uuid_broadcast", f"uuid_broadcast {uuid} {target} aleg", uuid)
    if which == "broadcast":
        bc = cmd.broadcast
        uuid = check_uuid(bc.channel_uuid, "broadcast.channel_uuid")
        file = check_file(bc.file, "broadcast.file")
        leg = {
            BroadcastLeg.BROADCAST_LEG_B: "bleg",
            BroadcastLeg.BROADCAST_LEG_BOTH: "both",
        }.get(bc.leg, "aleg")
        return CommandLine("uuid_broadcast", f"uuid_broadcast {uuid} {file} {leg}", uuid)
    if which == "stop_media":
        uuid = check_uuid(cmd.stop_media.channel_uuid, "stop_media.channel_uuid")
        return CommandLine("uuid_break", f"uuid_break {uuid} all", uuid)
    if which == "record_start":
        r = cmd.record_start
        uuid = check_uuid(r.channel_uuid, "record_start.channel_uuid")
        path = check_file(r.path, "record_start.path")
        if r.recording_id:
            _match(_UUID, r.recording_id, "record_start.recording_id", "must be an id")
        line = f"uuid_record {uuid} start {path}"
        if r.limit_s:
            line += f" {r.limit_s}"
        recording = (path, r.recording_id) if r.recording_id else None
        return CommandLine("uuid_record", line, uuid, recording)
    if which == "record_stop":
        r2 = cmd.record_stop
        uuid = check_uuid(r2.channel_uuid, "record_stop.channel_uuid")
        path = check_file(r2.path, "record_stop.path") if r2.path else "all"
        return CommandLine("uuid_record", f"uuid_record {uuid} stop {path}", uuid)
    if which == "hold":
        uuid = check_uuid(cmd.hold.channel_uuid, "hold.channel_uuid")
        return CommandLine("uuid_hold", f"uuid_hold {uuid}", uuid)
    if which == "unhold":
        uuid = check_uuid(cmd.unhold.channel_uuid, "unhold.channel_uuid")
        return CommandLine("uuid_hold", f"uuid_hold off {uuid}", uuid)
    if which == "eavesdrop":
        e = cmd.eavesdrop
        target = check_uuid(e.target_channel_uuid, "eavesdrop.target_channel_uuid")
        sup = check_uuid(e.supervisor_channel_uuid, "eavesdrop.supervisor_channel_uuid")
        dial = dial_string(e.supervisor, cmd.tenant_id, plan, "eavesdrop.supervisor")
        evars: list[tuple[str, str]] = [("origination_uuid", sup)]
        if cmd.tenant_id:
            evars.append(("callmesh_tenant", cmd.tenant_id))
        if cmd.call_id:
            evars.append(("callmesh_call_id", cmd.call_id))
        evars.append(("callmesh_role", "supervisor"))
        app = "eavesdrop"
        if e.mode == EavesdropMode.EAVESDROP_MODE_BARGE:
            app = "three_way"
        elif e.mode == EavesdropMode.EAVESDROP_MODE_WHISPER:
            evars.append(("eavesdrop_whisper_aleg", "true"))
        evars.append(("eavesdrop_enable_dtmf", "false"))
        line = f"originate {_var_block(evars, 'eavesdrop')}{dial} &{app}({target})"
        return CommandLine(app, line, sup)
    if which == "park":
        uuid = check_uuid(cmd.park.channel_uuid, "park.channel_uuid")
        return CommandLine("uuid_park", f"uuid_park {uuid}", uuid)
    if which == "set_variable":
        sv = cmd.set_variable
        uuid = check_uuid(sv.channel_uuid, "set_variable.channel_uuid")
        name = check_var_name(sv.name, "set_variable.name")
        value = check_value(sv.value, "set_variable.value", quotable=False)
        line = f"uuid_setvar {uuid} {name}" + (f" {value}" if value else "")
        return CommandLine("uuid_setvar", line, uuid)
    if which == "send_dtmf":
        d = cmd.send_dtmf
        uuid = check_uuid(d.channel_uuid, "send_dtmf.channel_uuid")
        digits = check_digits(d.digits, "send_dtmf.digits")
        if d.duration_ms:
            digits += f"@{d.duration_ms}"
        return CommandLine("uuid_send_dtmf", f"uuid_send_dtmf {uuid} {digits}", uuid)
    raise BadArgument("command", f"{which} is not supported")


def channels_acted_on(cmd: SwitchCommand) -> list[tuple[str, str]]:
    """(field, uuid) of each existing channel a command acts on (an originate makes its own)."""
    which = cmd.WhichOneof("command")
    if which is None or which == "originate":
        return []
    if which == "bridge":
        return [
            ("bridge.a_channel_uuid", cmd.bridge.a_channel_uuid),
            ("bridge.b_channel_uuid", cmd.bridge.b_channel_uuid),
        ]
    if which == "eavesdrop":
        return [("eavesdrop.target_channel_uuid", cmd.eavesdrop.target_channel_uuid)]
    return [(f"{which}.channel_uuid", getattr(cmd, which).channel_uuid)]


@dataclass(frozen=True, slots=True)
class ReplyOutcome:
    """What a switch's API output means for the command's sender."""

    ok: bool
    code: int
    message: str
    channel_uuid: str = ""


_NO_CHANNEL = ("no such channel", "invalid uuid", "cannot locate session", "no such uuid")


def interpret_reply(output: str, command: CommandLine) -> ReplyOutcome:
    """Map an API command's output (``+OK …``, ``-ERR …``, ``-USAGE …``) to a reply code."""
    text = output.strip()
    if text.startswith("+OK"):
        channel = command.channel_uuid
        if command.name in ("originate", "eavesdrop", "three_way"):
            rest = text[3:].strip()
            channel = rest.split()[0] if rest else channel
        return ReplyOutcome(True, SwitchErrorCode.SWITCH_ERROR_CODE_UNSPECIFIED, "", channel)
    lowered = text.lower()
    if any(marker in lowered for marker in _NO_CHANNEL):
        code = SwitchErrorCode.SWITCH_ERROR_CODE_NO_SUCH_CHANNEL
    elif text.startswith("-USAGE") or "usage:" in lowered or "invalid arg" in lowered:
        code = SwitchErrorCode.SWITCH_ERROR_CODE_INVALID_ARGUMENT
    else:
        code = SwitchErrorCode.SWITCH_ERROR_CODE_SWITCH_ERROR
    message = text.removeprefix("-ERR").strip() or "the switch gave no reply"
    return ReplyOutcome(False, code, message, command.channel_uuid)
