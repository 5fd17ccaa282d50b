"""API commands (mod_commands) with FreeSWITCH's reply texts."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from callmesh.core.esl import serialize_event_json, serialize_event_plain
from callmesh.fsemu.apps import start_recording, stop_recording
from callmesh.fsemu.model import normalize_cause
from callmesh.fsemu.switch import VERSION, VERSION_HUMAN, VERSION_REVISION, Message

if TYPE_CHECKING:
    from callmesh.fsemu.switch import Channel, Switch

ApiFunc = Callable[["Switch", str], Awaitable[str]]
API: dict[str, ApiFunc] = {}


class CommandNotFound(Exception):
    """No such api command."""


def api(*names: str) -> Callable[[ApiFunc], ApiFunc]:
    """Register an api command."""

    def register(func: ApiFunc) -> ApiFunc:
        for name in names:
            API[name] = func
        return func

    return register


async def run_api(switch: Switch, command_line: str) -> str:
    """Run `cmd args`; unknown commands give `-ERR <cmd> Command not found!`."""
    line = command_line.strip()
    cmd, _, arg = line.partition(" ")
    func = API.get(cmd.lower())
    if func is None:
        return f"-ERR {cmd} Command not found!\n"
    return await func(switch, arg.strip())


def tokens(text: str) -> list[str]:
    """Split on spaces, keeping {…} blocks, '…' quotes and &app(…) together."""
    out: list[str] = []
    buf: list[str] = []
    depth = 0
    paren = 0
    quote = False
    for ch in text:
        if ch == "'" and depth == 0:
            quote = not quote
            continue
        if ch in "{[<":
            depth += 1
        elif ch in "}]>":
            depth = max(0, depth - 1)
        elif ch == "(":
            paren += 1
        elif ch == ")":
            paren = max(0, paren - 1)
        if ch == " " and not quote and depth == 0 and paren == 0:
            if buf:
                out.append("".join(buf))
                buf = []
            continue
        buf.append(ch)
    if buf:
        out.append("".join(buf))
    return out


def _channel(switch: Switch, uuid: str) -> Channel | None:
    return switch.channel(uuid.strip())


ORIGINATE_SYNTAX = (
    "originate <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] "
    "[<cid_name>] [<cid_num>] [<timeout_sec>]"
)


@api("originate")
async def originate(switch: Switch, arg: str) -> str:
    """originate <dial> <&app(args)|exten> [dialplan] [context] [cid_name] [cid_num] [timeout]."""
    argv = tokens(arg)
    if len(argv) < 2:
        return f"-USAGE: {ORIGINATE_SYNTAX}\n"
    dial, dest = argv[0], argv[1]
    dialplan = argv[2] if len(argv) > 2 else "XML"
    context = argv[3] if len(argv) > 3 else "default"
    cid_name = argv[4] if len(argv) > 4 else None
    cid_num = argv[5] if len(argv) > 5 else None
    timeout = float(argv[6]) if len(argv) > 6 and argv[6].isdigit() else None
    leg, cause = await switch.originate_leg(
        dial, timeout=timeout, caller_name=cid_name, caller_number=cid_num
    )
    if leg is None:
        return f"-ERR {cause}\n"
    if dest.startswith("&"):
        body = dest[1:]
        name, _, rest = body.partition("(")
        app_arg = rest[:-1] if rest.endswith(")") else rest
        leg.assign([(name, app_arg)])
    else:
        leg.request_transfer(dest, dialplan, context)
        leg.assign("route")
    return f"+OK {leg.uuid}\n"


@api("uuid_kill")
async def uuid_kill(switch: Switch, arg: str) -> str:
    """uuid_kill <uuid> [cause]."""
    argv = arg.split()
    if not argv:
        return "-USAGE: <uuid> [cause]\n"
    ch = _channel(switch, argv[0])
    if ch is None:
        return "-ERR No such channel!\n"
    ch.hangup(normalize_cause(argv[1]) if len(argv) > 1 else "NORMAL_CLEARING")
    return "+OK\n"


@api("uuid_answer")
async def uuid_answer(switch: Switch, arg: str) -> str:
    """uuid_answer <uuid>."""
    ch = _channel(switch, arg)
    if ch is None or not ch.ready:
        return "-ERROR\n"
    ch.mark_answered()
    return "+OK\n"


@api("uuid_exists")
async def uuid_exists(switch: Switch, arg: str) -> str:
    """uuid_exists <uuid>: true|false."""
    return "true" if _channel(switch, arg) is not None else "false"


@api("uuid_bridge")
async def uuid_bridge(switch: Switch, arg: str) -> str:
    """uuid_bridge <uuid> <other_uuid>."""
    argv = arg.split()
    if len(argv) != 2:
        return "-USAGE: <uuid> <other_uuid>\n"
    a, b = _channel(switch, argv[0]), _channel(switch, argv[1])
    if a is None or b is None or not a.ready or not b.ready:
        return "-ERR Invalid uuid\n"
    from callmesh.fsemu.apps import bridge_pair

    for ch in (a, b):
        if not ch.answered:
            ch.mark_answered()
    bridge_pair(a, b)
    for ch, originator, partner in ((a, True, b), (b, False, a)):
        ch._bridge_request = (partner, originator)
        if ch.current_app is not None and ch.current_app[0] != "park":
            ch.media_break()
        if not ch.parked and ch._assignment is None and ch.direction == "outbound":
            ch.assign("park")
        ch.wake()
    return f"+OK {argv[1]}\n"


@api("uuid_transfer", "transfer")
async def uuid_transfer(switch: Switch, arg: str) -> str:
    """uuid_transfer <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]."""
    argv = arg.split()
    if len(argv) < 2:
        return "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
    ch = _channel(switch, argv[0])
    if ch is None:
        return "-ERR No such channel!\n"
    rest = argv[1:]
    leg = ""
    if rest[0] in ("-bleg", "-both"):
        leg = rest.pop(0)
    if not rest:
        return "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
    dest = rest[0]
    dialplan = rest[1] if len(rest) > 1 else "XML"
    context = rest[2] if len(rest) > 2 else ""
    targets = [ch]
    if leg == "-bleg":
        targets = [ch.partner] if ch.partner else []
    elif leg == "-both" and ch.partner is not None:
        targets = [ch, ch.partner]
    if not targets:
        return "-ERR\n"
    for target in targets:
        target.request_transfer(dest, dialplan, context)
        if target.partner is not None:
            target.partner.wake()
    return "+OK\n"


@api("uuid_park")
async def uuid_park(switch: Switch, arg: str) -> str:
    """uuid_park <uuid>."""
    ch = _channel(switch, arg)
    if ch is None:
        return "-ERR No such channel!\n"
    ch.request_park()
    return "+OK\n"


@api("uuid_broadcast")
async def uuid_broadcast(switch: Switch, arg: str) -> str:
    """uuid_broadcast <uuid> <path> [aleg|bleg|both]."""
    argv = arg.split()
    if len(argv) < 2:
        return "-USAGE: <uuid> <path> [aleg|bleg|holdb|both]\n"
    ch = _channel(switch, argv[0])
    if ch is None:
        return "-ERR invalid uuid\n"
    which = argv[2] if len(argv) > 2 else "aleg"
    targets: list[Channel] = []
    if which in ("aleg", "both", "holdb"):
        targets.append(ch)
    if which in ("bleg", "both") and ch.partner is not None:
        targets.append(ch.partner)
    path = argv[1]
    if "::" in path:
        app_name, _, app_arg = path.partition("::")
    else:
        app_name, app_arg = "playback", path
    for target in targets:
        broadcast(target, app_name, app_arg)
    return "+OK Message sent\n"


def broadcast(ch: Channel, app_name: str, app_arg: str) -> None:
    """Run an app on a channel now: queued when parked, concurrently when bridged."""
    if ch.partner is not None or (ch.current_app is not None and not ch.parked):
        ch.spawn(ch.execute(app_name, app_arg))
    else:
        ch.queue_message(
            Message(
                "execute",
                {"execute-app-name": app_name, "execute-app-arg": app_arg},
            )
        )


@api("uuid_break", "break")
async def uuid_break(switch: Switch, arg: str) -> str:
    """uuid_break <uuid> [all]."""
    argv = arg.split()
    if not argv:
        return "-USAGE: <uuid> [all]\n"
    ch = _channel(switch, argv[0])
    if ch is None:
        return "-ERR No such channel!\n"
    ch.media_break(len(argv) > 1 and argv[1].lower() == "all")
    return "+OK\n"


@api("uuid_record")
async def uuid_record(switch: Switch, arg: str) -> str:
    """uuid_record <uuid> [start|stop|mask|unmask] <path> [<limit>]."""
    argv = arg.split()
    if len(argv) < 3:
        return "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n"
    ch = _channel(switch, argv[0])
    if ch is None:
        return "-ERR Cannot locate session!\n"
    action, path = argv[1].lower(), argv[2]
    if action == "start":
        limit = float(argv[3]) if len(argv) > 3 and argv[3].isdigit() else None
        if not start_recording(ch, path, limit):
            return "-ERR Cannot record session!\n"
        return "+OK Success\n"
    if action == "stop":
        if not await stop_recording(ch, path):
            return "-ERR Cannot stop record session!\n"
        return "+OK Success\n"
    if action in ("mask", "unmask"):
        if path not in ch.recordings:
            return f"-ERR Cannot {action} recording session!\n"
        return "+OK Success\n"
    return "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n"


@api("uuid_hold")
async def uuid_hold(switch: Switch, arg: str) -> str:
    """uuid_hold [off|toggle] <uuid> [<display>]."""
    argv = arg.split()
    if not argv:
        return "-USAGE: [off|toggle] <uuid> [<display>]\n"
    mode = "on"
    if argv[0].lower() in ("off", "toggle"):
        mode = argv[0].lower()
        argv = argv[1:]
    if not argv:
        return "-USAGE: [off|toggle] <uuid> [<display>]\n"
    ch = _channel(switch, argv[0])
    if ch is None or not ch.ready:
        return "-ERR Operation failed\n"
    if mode == "toggle":
        mode = "off" if ch.held else "on"
    if mode == "on":
        hold(ch)
    else:
        unhold(ch)
    return "+OK Success\n"


def hold(ch: Channel) -> None:
    """switch_ivr_hold: MOH to the partner, CHANNEL_HOLD, callstate HELD."""
    if ch.held:
        return
    ch.held = True
    now = ch.switch.now_us()
    ch.profile.times["last_hold"] = now
    ch.profile.touch()
    partner = ch.partner
    if partner is not None:
        moh = ch.variables.get("temp_hold_music") or ch.variables.get(
            "hold_music", "local_stream://moh"
        )
        broadcast(partner, "playback", moh)
    ch.fire("CHANNEL_HOLD")
    ch.set_call_state("HELD")


def unhold(ch: Channel) -> None:
    """switch_ivr_unhold: stop the partner's MOH, CHANNEL_UNHOLD, callstate ACTIVE."""
    if not ch.held:
        return
    ch.held = False
    now = ch.switch.now_us()
    since = ch.profile.times.get("last_hold", 0)
    if since:
        ch.profile.times["hold_accum"] = ch.profile.times.get("hold_accum", 0) + (now - since)
    ch.profile.touch()
    if ch.partner is not None:
        ch.partner.media_break()
    ch.fire("CHANNEL_UNHOLD")
    ch.set_call_state("ACTIVE")


@api("uuid_setvar")
async def uuid_setvar(switch: Switch, arg: str) -> str:
    """uuid_setvar <uuid> <var> [value]."""
    argv = arg.split(" ", 2)
    if len(argv) < 2 or not argv[0]:
        return "-USAGE: <uuid> <var> [value]\n"
    ch = _channel(switch, argv[0])
    if ch is None:
        return "-ERR No such channel!\n"
    name = argv[1].strip()
    if not name:
        return "-ERR No variable specified\n"
    value = argv[2] if len(argv) > 2 else None
    ch.set_var(name, None if value in (None, "", "undef") else value)
    return "+OK\n"


@api("uuid_getvar")
async def uuid_getvar(switch: Switch, arg: str) -> str:
    """uuid_getvar <uuid> <var>."""
    argv = arg.split()
    if not argv:
        return "-USAGE: <uuid> <var>\n"
    ch = _channel(switch, argv[0])
    if ch is None:
        return "-ERR No such channel!\n"
    if len(argv) < 2:
        return "-ERR No variable name specified!\n"
    value = ch.get_var(argv[1])
    return value if value is not None else "_undef_"


@api("uuid_send_dtmf")
async def uuid_send_dtmf(switch: Switch, arg: str) -> str:
    """uuid_send_dtmf <uuid> <dtmf_data>: sends digits to the far end of that leg."""
    argv = arg.split()
    if len(argv) < 2:
        return "-USAGE: <uuid> <dtmf_data>\n"
    ch = _channel(switch, argv[0])
    if ch is None:
        return "-ERR Cannot locate session!\n"
    digits = argv[1].split("@", 1)[0]
    ch.sent_dtmf.extend(d for d in digits if d in "0123456789*#ABCDabcd")
    return f"+OK {ch.uuid} sent DTMF {argv[1]}.\n"


@api("uuid_dump")
async def uuid_dump(switch: Switch, arg: str) -> str:
    """uuid_dump <uuid> [txt|plain|json]."""
    argv = arg.split()
    if not argv:
        return "-USAGE: <uuid> [format]\n"
    ch = _channel(switch, argv[0])
    if ch is None:
        return "-ERR No such channel!\n"
    fmt = argv[1].lower() if len(argv) > 1 else "txt"
    event = ch.make_event("CHANNEL_DATA", calling=("mod_commands.c", "uuid_dump_function", "6495"))
    if fmt == "json":
        return serialize_event_json(event.headers).decode()
    if fmt == "plain":
        return "".join(f"{k}: [{v}]\n" for k, v in event.headers) + "\n"
    return serialize_event_plain(event.headers).decode()


@api("hostname")
async def hostname(switch: Switch, arg: str) -> str:
    """hostname."""
    return switch.hostname


@api("version")
async def version(switch: Switch, arg: str) -> str:
    """version [short]."""
    if arg.strip() == "short":
        return "1.10.12\n"
    return f"FreeSWITCH Version {VERSION} ({VERSION_REVISION})\n"


@api("eval")
async def eval_(switch: Switch, arg: str) -> str:
    """eval [uuid:<uuid> ]<text>: expand ${vars} (global or a channel's)."""
    text = arg
    if text.startswith("uuid:"):
        uuid, _, text = text[5:].partition(" ")
        ch = switch.channel(uuid)
        if ch is not None:
            return ch.expand(text)
    return text


@api("status")
async def status(switch: Switch, arg: str) -> str:
    """status (mod_commands status_function layout)."""
    count = len(switch.channels())
    return (
        f"UP {switch.uptime_text()}\n"
        f"FreeSWITCH (Version {VERSION_HUMAN}) is ready\n"
        f"{switch.sessions_since_startup} session(s) since startup\n"
        f"{count} session(s) - peak {switch.peak_sessions}, last 5min {switch.peak_sessions} \n"
        f"0 session(s) per Sec out of max 30, peak 0, last 5min 0 \n"
        f"1000 session(s) max\n"
        f"min idle cpu 0.00/100.00\n"
        f"Current Stack Size/Max 240K/8192K\n"
    )


CHANNEL_COLUMNS = (
    "uuid", "direction", "created", "created_epoch", "name", "state", "cid_name", "cid_num",
    "ip_addr", "dest", "application", "application_data", "dialplan", "context", "read_codec",
    "read_rate", "read_bit_rate", "write_codec", "write_rate", "write_bit_rate", "secure",
    "hostname", "presence_id", "presence_data", "accountcode", "callstate", "callee_name",
    "callee_num", "callee_direction", "call_uuid", "sent_callee_name", "sent_callee_num",
    "initial_cid_name", "initial_cid_num", "initial_ip_addr", "initial_dest", "initial_dialplan",
    "initial_context",
)  # fmt: skip

_CALL_SIDE = (
    "uuid", "direction", "created", "created_epoch", "name", "state", "cid_name", "cid_num",
    "ip_addr", "dest", "presence_id", "presence_data", "accountcode", "callstate", "callee_name",
    "callee_num", "callee_direction", "call_uuid", "hostname", "sent_callee_name",
    "sent_callee_num",
)  # fmt: skip
CALL_COLUMNS = (
    *_CALL_SIDE,
    *("b_" + c for c in _CALL_SIDE if c not in ("call_uuid", "hostname")),
    "call_created_epoch",
)

REGISTRATION_COLUMNS = (
    "reg_user", "realm", "token", "url", "expires", "network_ip", "network_port",
    "network_proto", "hostname", "metadata",
)  # fmt: skip


def channel_row(switch: Switch, ch: Channel) -> dict[str, str]:
    """One row of the core `channels` table."""
    app = ch.current_app
    media = ch.media_ready
    created_epoch = ch.created_us // 1_000_000
    return {
        "uuid": ch.uuid,
        "direction": ch.direction,
        "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created_epoch)),
        "created_epoch": str(created_epoch),
        "name": ch.name,
        "state": ch.running_state,
        "cid_name": ch.profile.caller_id_name,
        "cid_num": ch.profile.caller_id_number,
        "ip_addr": ch.profile.network_addr,
        "dest": ch.profile.destination_number,
        "application": app[0] if app else "",
        "application_data": app[1] if app else "",
        "dialplan": ch.profile.dialplan,
        "context": ch.profile.context,
        "read_codec": "PCMU" if media else "",
        "read_rate": "8000" if media else "",
        "read_bit_rate": "64000" if media else "",
        "write_codec": "PCMU" if media else "",
        "write_rate": "8000" if media else "",
        "write_bit_rate": "64000" if media else "",
        "secure": "",
        "hostname": switch.hostname,
        "presence_id": ch.variables.get("presence_id", ""),
        "presence_data": ch.variables.get("presence_data", ""),
        "accountcode": ch.variables.get("accountcode", ""),
        "callstate": ch.call_state,
        "callee_name": ch.profile.callee_id_name,
        "callee_num": ch.profile.callee_id_number,
        "callee_direction": ("SEND" if ch.direction == "inbound" else "RECV")
        if ch.profile.callee_id_number
        else "",
        "call_uuid": ch.variables.get("call_uuid", ch.uuid),
        "sent_callee_name": ch.profile.callee_id_name,
        "sent_callee_num": ch.profile.callee_id_number,
        "initial_cid_name": ch.profile.orig_caller_id_name,
        "initial_cid_num": ch.profile.orig_caller_id_number,
        "initial_ip_addr": ch.profile.network_addr,
        "initial_dest": ch.variables.get("sip_req_user", ch.profile.destination_number),
        "initial_dialplan": "XML",
        "initial_context": ch.profile.context,
    }


def format_rows(columns: tuple[str, ...], rows: list[dict[str, str]], fmt: str, delim: str) -> str:
    """mod_commands show output: delim text with `N total.`, or `as json`."""
    if fmt == "json":
        if not rows:
            return '{"row_count": 0}\n'
        body = {"row_count": len(rows), "rows": [{c: r.get(c, "") for c in columns} for r in rows]}
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    if fmt not in ("delim", "csv"):
        return f"-ERR Cannot find format {fmt}\n"
    out: list[str] = []
    if rows:
        out.append(delim.join(columns) + "\n")
        for row in rows:
            out.append(delim.join(row.get(c, "") for c in columns) + "\n")
    out.append(f"\n{len(rows)} total.\n")
    return "".join(out)


@api("show")
async def show(switch: Switch, arg: str) -> str:
    """show channels|calls|registrations [count] [as json|delim <d>]."""
    argv = arg.split()
    if not argv:
        return "-USAGE: show channels|calls|registrations\n"
    what = argv[0].lower()
    rest = argv[1:]
    count_only = bool(rest) and rest[0].lower() == "count"
    if count_only:
        rest = rest[1:]
    fmt, delim = "delim", ","
    if len(rest) >= 2 and rest[0].lower() == "as":
        fmt = rest[1].lower()
        if fmt in ("delim", "csv") and len(rest) > 2:
            delim = rest[2]
    columns: tuple[str, ...]
    if what == "channels":
        columns = CHANNEL_COLUMNS
        rows = [channel_row(switch, ch) for ch in switch.channels()]
    elif what == "calls":
        columns = CALL_COLUMNS
        rows = _call_rows(switch)
    elif what == "registrations":
        columns = REGISTRATION_COLUMNS
        rows = [
            {
                "reg_user": r.user,
                "realm": r.domain,
                "token": r.token,
                "url": f"sofia/{r.profile}/{r.contact.removeprefix('sip:')}",
                "expires": str(int(r.expires_at)),
                "network_ip": r.network_ip,
                "network_port": r.network_port,
                "network_proto": "udp",
                "hostname": switch.hostname,
                "metadata": "",
            }
            for r in switch.registrations.all()
        ]
    else:
        return "-USAGE: show channels|calls|registrations\n"
    if count_only:
        if fmt == "json":
            return json.dumps({"row_count": len(rows)}, separators=(",", ":"))
        return f"\n{len(rows)} total.\n"
    return format_rows(columns, rows, fmt, delim)


def _call_rows(switch: Switch) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    callees = {b for (_, b, _) in switch.calls.values()}
    for ch in switch.channels():
        if ch.uuid in callees:
            continue
        row = {k: v for k, v in channel_row(switch, ch).items() if k in _CALL_SIDE}
        call = switch.calls.get(ch.uuid)
        other = switch.channel(call[1]) if call else None
        if other is not None and call is not None:
            orow = channel_row(switch, other)
            for c in _CALL_SIDE:
                if c not in ("call_uuid", "hostname"):
                    row["b_" + c] = orow[c]
            row["call_created_epoch"] = str(call[2])
        rows.append(row)
    return rows


@api("sofia")
async def sofia(switch: Switch, arg: str) -> str:
    """sofia status (a small subset)."""
    if arg.strip().split()[:1] != ["status"]:
        return "-ERR Usage: sofia status\n"
    line = "=" * 100
    return (
        "                     Name\t   Type\t                                      Data\tState\n"
        f"{line}\n"
        f"{'internal':>25}\tprofile\t{'sip:mod_sofia@' + switch.ipv4 + ':5060':>42}\tRUNNING (0)\n"
        f"{'external':>25}\tprofile\t{'sip:mod_sofia@' + switch.ipv4 + ':5080':>42}\tRUNNING (0)\n"
        f"{line}\n"
        "2 profiles 0 aliases\n"
    )
