"""Dialplan applications (mod_dptools and friends) as the emulator runs them."""

from __future__ import annotations

import asyncio
import logging
import re
import shlex
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from callmesh.fsemu.media import MediaError, write_silence
from callmesh.fsemu.switch import AppError

if TYPE_CHECKING:
    from callmesh.fsemu.switch import Channel

log = logging.getLogger("callmesh.fsemu")

App = Callable[["Channel", str], Awaitable[str | None]]
APPLICATIONS: dict[str, App] = {}


def app(name: str) -> Callable[[App], App]:
    """Register an application under `name`."""

    def register(func: App) -> App:
        APPLICATIONS[name] = func
        return func

    return register


@app("answer")
async def answer(ch: Channel, arg: str) -> str | None:
    """answer: 200 OK."""
    ch.mark_answered()
    return None


@app("pre_answer")
async def pre_answer(ch: Channel, arg: str) -> str | None:
    """pre_answer: 183 with early media."""
    ch.mark_pre_answered()
    return None


@app("ring_ready")
async def ring_ready(ch: Channel, arg: str) -> str | None:
    """ring_ready: 180 Ringing."""
    ch.mark_ring_ready()
    return None


@app("park")
async def park(ch: Channel, arg: str) -> str | None:
    """park: wait for instructions (sendmsg, uuid_* commands)."""
    await park_loop(ch)
    return None


async def park_loop(ch: Channel) -> None:
    """switch_ivr_park with uuid_bridge requests served inside it."""
    if ch.parked:
        return
    ch.parked = True
    ch.controlled = True
    ch._unpark = False
    ch.fire("CHANNEL_PARK")
    try:
        while ch.ready and not ch._unpark and ch.controlled:
            request = ch._bridge_request
            if request is not None:
                ch._bridge_request = None
                partner, originator = request
                if originator:
                    await bridge_session(ch, partner)
                else:
                    await ch._bridged_leg()
                if ch.ready and ch._transfer is None and not ch.var_true("park_after_bridge"):
                    ch.hangup("NORMAL_CLEARING")
                continue
            if ch._queue.empty():
                ch._wake.clear()
                await ch._wake.wait()
                continue
            await ch.run_message(ch._queue.get_nowait())
    finally:
        ch.parked = False
        ch._unpark = False
        if ch.ready:
            ch.fire("CHANNEL_UNPARK")


@app("sleep")
async def sleep(ch: Channel, arg: str) -> str | None:
    """sleep <ms>."""
    ms = _int(arg, "sleep: milliseconds", 0)
    await ch.media_wait(ms / 1000.0)
    return None


@app("set")
async def set_var(ch: Channel, arg: str) -> str | None:
    """set var=value (an empty value unsets)."""
    name, sep, value = arg.partition("=")
    if not sep or not name.strip():
        raise AppError("set: expected var=value")
    ch.set_var(name.strip(), value if value else None)
    return None


@app("export")
async def export(ch: Channel, arg: str) -> str | None:
    """export [nolocal:]var=value: set it here and on legs this channel originates."""
    name, sep, value = arg.partition("=")
    if not sep or not name.strip():
        raise AppError("export: expected var=value")
    name = name.strip()
    local = True
    if name.startswith("nolocal:"):
        name = name[8:]
        local = False
    if local:
        ch.set_var(name, value if value else None)
    else:
        ch.nolocal_exports[name] = value
    exported = [v for v in (ch.variables.get("export_vars") or "").split(",") if v]
    if name not in exported:
        exported.append(name)
    ch.set_var("export_vars", ",".join(exported))
    return None


@app("unset")
async def unset(ch: Channel, arg: str) -> str | None:
    """unset var."""
    ch.set_var(arg.strip(), None)
    return None


@app("hangup")
async def hangup(ch: Channel, arg: str) -> str | None:
    """hangup [cause]."""
    ch.hangup(arg.strip() or "NORMAL_CLEARING")
    return None


@app("info")
async def info(ch: Channel, arg: str) -> str | None:
    """info: dumps the channel to the log (nothing on the wire)."""
    return None


@app("log")
async def log_app(ch: Channel, arg: str) -> str | None:
    """log <level> <text>: nothing on the wire."""
    return None


@app("transfer")
async def transfer(ch: Channel, arg: str) -> str | None:
    """transfer <dest> [dialplan [context]]."""
    parts = arg.split()
    if not parts:
        raise AppError("transfer: destination required")
    ch.request_transfer(
        parts[0], parts[1] if len(parts) > 1 else "XML", parts[2] if len(parts) > 2 else ""
    )
    return None


def playback_kind(file: str) -> str | None:
    """Playback-File-Type for stream files."""
    lowered = file.lower()
    if lowered.startswith("local_stream:"):
        return "local_stream"
    if lowered.startswith("tone_stream:"):
        return "tone_stream"
    return None


async def file_seconds(ch: Channel, file: str) -> float | None:
    """Duration of a playable file (None = endless); raises MediaError when missing."""
    lowered = file.lower()
    if lowered.startswith("silence_stream://"):
        spec = file[len("silence_stream://") :].split(",", 1)[0]
        ms = int(spec) if spec.lstrip("-").isdigit() else 0
        return None if ms < 0 else ms / 1000.0
    if lowered.startswith("local_stream://"):
        return None
    if lowered.startswith("tone_stream://"):
        loops = re.search(r"loops=(-?\d+)", file)
        if loops and loops.group(1) == "-1":
            return None
        return 1.0
    if lowered.startswith(("say:", "phrase:")):
        return 1.0
    if lowered.startswith("file_string://"):
        # mod_dptools' file_string: the files one after the other, as one playback.
        total = 0.0
        for part in file[len("file_string://") :].split("!"):
            seconds = await file_seconds(ch, part)
            if seconds is None:
                return None
            total += seconds
        return total
    return await ch.switch.media.duration(file)


async def play_file(ch: Channel, file: str, stop_on_digit: Callable[[], bool] | None = None) -> str:
    """switch_ivr_play_file: PLAYBACK_START … PLAYBACK_STOP; returns done|break|notfound|hangup."""
    if not ch.ready:
        return "hangup"
    try:
        seconds = await file_seconds(ch, file)
    except MediaError:
        return "notfound"
    kind = playback_kind(file)
    extra = [("Playback-File-Type", kind)] if kind else []
    ch.fire("PLAYBACK_START", post=[*extra, ("Playback-File-Path", file)])
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await ch.media_wait(seconds, stop_on_digit)
    played = (loop.time() - started) * ch.switch.speed
    if seconds is not None and result == "done":
        played = seconds
    ch.set_var("playback_seconds", str(int(played)))
    ch.set_var("playback_ms", str(int(played * 1000)))
    ch.set_var("playback_samples", str(int(played * 8000)))
    status = "done" if result == "done" else "break"
    ch.fire(
        "PLAYBACK_STOP",
        post=[*extra, ("Playback-File-Path", file), ("Playback-Status", status)],
    )
    return result


@app("playback")
async def playback(ch: Channel, arg: str) -> str | None:
    """playback <file>: FILE PLAYED | FILE NOT FOUND | PLAYBACK ERROR."""
    file = arg.strip()
    if not file:
        return "PLAYBACK ERROR"
    terminators = ch.variables.get("playback_terminators", "*")
    if terminators.lower() == "none":
        terminators = ""

    def on_digit() -> bool:
        while ch.dtmf_buffer:
            digit = ch.dtmf_buffer.pop(0)
            if digit in terminators:
                ch.set_var("playback_terminator_used", digit)
                return True
        return False

    result = await play_file(ch, file, on_digit)
    if result == "notfound":
        return "FILE NOT FOUND"
    return "FILE PLAYED"


async def collect(
    ch: Channel,
    prompt: str,
    min_digits: int,
    max_digits: int,
    timeout_ms: int,
    terminators: str,
    digit_timeout_ms: int,
) -> tuple[str, str, str]:
    """Play a prompt and collect digits; returns (digits, result, terminator_used)."""
    digits: list[str] = []
    terminator = ""

    def take() -> bool:
        nonlocal terminator
        while ch.dtmf_buffer:
            digit = ch.dtmf_buffer.pop(0)
            if digit in terminators:
                terminator = digit
                return True
            digits.append(digit)
            if len(digits) >= max_digits:
                return True
        return bool(digits)

    if prompt:
        result = await play_file(ch, prompt, take)
        if result == "hangup":
            return "".join(digits), "failure", terminator
    timeout = timeout_ms
    while ch.ready and not terminator and len(digits) < max_digits:
        before = len(digits)
        result = await ch.media_wait(timeout / 1000.0, lambda: bool(ch.dtmf_buffer))
        if result == "dtmf":
            take()
            if len(digits) > before:
                timeout = digit_timeout_ms
            continue
        break
    if not ch.ready:
        return "".join(digits), "failure", terminator
    text = "".join(digits)
    if not text and not terminator:
        return text, "timeout", terminator
    if len(text) < min_digits:
        return text, "failure", terminator
    return text, "success", terminator


@app("endless_playback")
async def endless_playback(ch: Channel, arg: str) -> str | None:
    """endless_playback <file>: play it again and again until a break or the hangup."""
    file = arg.strip()
    if not file:
        return "PLAYBACK ERROR"
    while ch.ready:
        result = await play_file(ch, file)
        if result == "notfound":
            # FreeSWITCH loops on a missing file (switch_ivr_play_file returns at once, forever);
            # the emulator stops instead of spinning its event loop.
            return "FILE NOT FOUND"
        if result != "done":
            break
    return "FILE PLAYED"


@app("read")
async def read(ch: Channel, arg: str) -> str | None:
    """read <min> <max> <sound file> <variable> <timeout> <terminators>."""
    parts = arg.split()
    if len(parts) < 4:
        raise AppError("read: <min> <max> <file> <var> [timeout] [terminators]")
    min_d = _int(parts[0], "read: min", 0)
    max_d = _int(parts[1], "read: max", 1)
    file, var = parts[2], parts[3]
    timeout = _int(parts[4], "read: timeout", 5000) if len(parts) > 4 else 5000
    terminators = parts[5] if len(parts) > 5 else "#"
    digits, result, term = await collect(ch, file, min_d, max_d, timeout, terminators, timeout)
    ch.set_var(var, digits or None)
    ch.set_var("read_result", result)
    if term:
        ch.set_var("read_terminator_used", term)
    return None


@app("play_and_get_digits")
async def play_and_get_digits(ch: Channel, arg: str) -> str | None:
    """play_and_get_digits min max tries timeout terminators file invalid var regexp [digit_to]."""
    try:
        parts = [p[1:-1] if p[:1] == p[-1:] == "'" else p for p in shlex.split(arg, posix=False)]
    except ValueError:
        parts = arg.split()
    if len(parts) < 8:
        raise AppError("play_and_get_digits: needs at least 8 arguments")
    min_d = _int(parts[0], "play_and_get_digits: min", 0)
    max_d = _int(parts[1], "play_and_get_digits: max", 1)
    tries = max(1, _int(parts[2], "play_and_get_digits: tries", 1))
    timeout = _int(parts[3], "play_and_get_digits: timeout", 5000)
    terminators = parts[4]
    file, invalid, var = parts[5], parts[6], parts[7]
    regexp = parts[8] if len(parts) > 8 else ""
    digit_timeout = (
        _int(parts[9], "play_and_get_digits: digit_timeout", timeout) if len(parts) > 9 else timeout
    )
    on_failure = parts[10] if len(parts) > 10 else ""
    result = "failure"
    for _ in range(tries):
        digits, result, term = await collect(
            ch, file, min_d, max_d, timeout, terminators, digit_timeout
        )
        if not ch.ready:
            break
        if result == "success" and (not regexp or re.fullmatch(regexp, digits)):
            ch.set_var(var, digits)
            ch.set_var("read_result", "success")
            if term:
                ch.set_var("read_terminator_used", term)
            return None
        if result == "success":
            result = "failure"
            ch.set_var(var + "_invalid", digits)
        if invalid and invalid.lower() not in ("silence_stream://250", "none"):
            await play_file(ch, invalid)
    ch.set_var(var, None)
    ch.set_var("read_result", result)
    if on_failure and ch.ready:
        dest = on_failure.split()
        ch.request_transfer(
            dest[0], dest[1] if len(dest) > 1 else "XML", dest[2] if len(dest) > 2 else ""
        )
    return None


@app("record_session")
async def record_session(ch: Channel, arg: str) -> str | None:
    """record_session <path> [limit_secs]: starts a media-bug recording (non-blocking)."""
    parts = arg.split()
    if not parts:
        raise AppError("record_session: path required")
    limit = float(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    start_recording(ch, parts[0], limit)
    return None


@app("stop_record_session")
async def stop_record_session(ch: Channel, arg: str) -> str | None:
    """stop_record_session <path|all>."""
    await stop_recording(ch, arg.strip() or "all")
    return None


def start_recording(ch: Channel, path: str, limit: float | None = None) -> bool:
    """RECORD_START now; RECORD_STOP on stop, limit or hangup."""
    if not ch.ready or path in ch.recordings:
        return False
    loop = asyncio.get_running_loop()
    ch.recordings[path] = (loop.time(), limit)
    ch.set_var("record_path", path)
    ch.fire("RECORD_START", post=[("Record-File-Path", path)])
    if limit:

        async def limiter() -> None:
            await ch.switch.sleep(limit)
            await stop_recording(ch, path, "success-maxtime")

        ch.spawn(limiter())
    return True


async def stop_recording(ch: Channel, path: str, cause: str = "") -> bool:
    """Write the silent WAV of the recorded length and fire RECORD_STOP."""
    paths = list(ch.recordings) if path == "all" else [path]
    stopped = False
    loop = asyncio.get_running_loop()
    for p in paths:
        entry = ch.recordings.pop(p, None)
        if entry is None:
            continue
        started, limit = entry
        seconds = (loop.time() - started) * ch.switch.speed
        if limit is not None:
            seconds = min(seconds, limit)
        try:
            await asyncio.to_thread(write_silence, Path(p), seconds)
        except OSError as err:
            log.warning("record %s: %s", p, err)
        ch.set_var("record_seconds", str(int(seconds)))
        ch.set_var("record_ms", str(int(seconds * 1000)))
        ch.set_var("record_samples", str(int(seconds * 8000)))
        post = [("Record-File-Path", p)]
        if cause:
            ch.set_var("record_completion_cause", cause)
            post.append(("Record-Completion-Cause", cause))
        ch.fire("RECORD_STOP", post=post)
        stopped = True
    return stopped


async def stop_recordings(ch: Channel) -> None:
    """Stop every recording of a channel that is going away."""
    if ch.recordings:
        await stop_recording(ch, "all")


# ---------------------------------------------------------------------- bridging
def bridge_pair(a: Channel, b: Channel) -> None:
    """Link two answered legs; CHANNEL_BRIDGE is fired once, on the originator."""
    now = a.switch.now_us()
    a.partner, b.partner = b, a
    a.bridge_originator = True
    a.other = ("originatee", b)
    b.other = ("originator", a)
    for x, y in ((a, b), (b, a)):
        x.profile.times["bridged"] = now
        x.profile.touch()
        x.set_var("bridge_channel", y.name)
        x.set_var("bridge_uuid", y.uuid)
        x.set_var("signal_bond", y.uuid)
        x.set_var("last_bridge_to", y.uuid)
        x.set_var("bridge_stamp", a.variables.get("bridge_stamp") or "")
    b.set_var("call_uuid", a.variables.get("call_uuid", a.uuid))
    b.set_running_state("CS_EXCHANGE_MEDIA")
    a.switch.calls[a.uuid] = (a.uuid, b.uuid, now // 1_000_000)
    a.fire(
        "CHANNEL_BRIDGE",
        pre=(("Bridge-A-Unique-ID", a.uuid), ("Bridge-B-Unique-ID", b.uuid)),
    )


def unbridge_pair(a: Channel, b: Channel) -> None:
    """Undo bridge_pair; CHANNEL_UNBRIDGE on the originator."""
    if a.partner is not b:
        return
    a.partner = None
    b.partner = None
    a.switch.calls.pop(a.uuid, None)
    b.set_var("call_uuid", b.uuid)
    if a.bridge_originator:
        a.bridge_originator = False
        a.fire(
            "CHANNEL_UNBRIDGE",
            pre=(("Bridge-A-Unique-ID", a.uuid), ("Bridge-B-Unique-ID", b.uuid)),
        )
    b.wake()


async def bridge_session(a: Channel, b: Channel) -> None:
    """Run a bridge from the originator's side until a leg leaves."""
    if not a.answered:
        a.mark_answered()
    if a.partner is not b:
        bridge_pair(a, b)
    if b._assignment is None:
        b.assign("bridge")
    try:
        while a.ready and b.ready and a._transfer is None and b._transfer is None:
            if a.partner is not b:
                break
            a._wake.clear()
            await a._wake.wait()
    finally:
        unbridge_pair(a, b)
        if not a.ready and b.ready:
            b.hangup("NORMAL_CLEARING")
        elif a._transfer is not None and b.ready:
            b.hangup("BLIND_TRANSFER")


def exported_vars(ch: Channel) -> dict[str, str]:
    """Variables a new leg inherits (export_vars)."""
    out: dict[str, str] = {}
    for name in (ch.variables.get("export_vars") or "").split(","):
        name = name.strip()
        if name:
            value = ch.nolocal_exports.get(name, ch.variables.get(name))
            if value is not None:
                out[name] = value
    return out


@app("bridge")
async def bridge(ch: Channel, arg: str) -> str | None:
    """bridge <dial string>: originate and bridge; a failure hangs up unless continue_on_fail."""
    if not arg.strip():
        raise AppError("bridge: dial string required")
    variables = exported_vars(ch)
    name = ch.variables.get("effective_caller_id_name") or ch.profile.caller_id_name
    number = ch.variables.get("effective_caller_id_number") or ch.profile.caller_id_number
    b, cause = await ch.switch.originate_leg(
        arg, originator=ch, extra_vars=variables, caller_name=name, caller_number=number
    )
    ch.set_var("originate_disposition", cause if b is None else "SUCCESS")
    ch.set_var("DIALSTATUS", cause if b is None else "SUCCESS")
    if b is None:
        ch.set_var("last_bridge_hangup_cause", cause)
        if ch.ready and not ch.var_true("continue_on_fail"):
            failover = ch.variables.get("continue_on_fail", "")
            if cause not in failover.split(","):
                ch.hangup(cause)
        return None
    b.assign("bridge")
    await bridge_session(ch, b)
    if ch.ready and ch._transfer is None:
        if ch.var_true("hangup_after_bridge"):
            ch.hangup("NORMAL_CLEARING")
        elif ch.var_true("park_after_bridge"):
            await park_loop(ch)
    return None


# ---------------------------------------------------------------------- eavesdrop
async def _eavesdrop(ch: Channel, arg: str, initial: str) -> str | None:
    target_uuid = arg.strip().split()[0] if arg.strip() else ""
    target = ch.switch.channel(target_uuid)
    if target is None or target is ch:
        return None
    group = target.variables.get("eavesdrop_group")
    required = ch.variables.get("eavesdrop_require_group")
    if required and required != group:
        return None
    if not ch.answered:
        ch.mark_answered()
    mode = initial
    if initial == "listen":
        if ch.var_true("eavesdrop_whisper_aleg"):
            mode = "whisper-aleg"
        elif ch.var_true("eavesdrop_whisper_bleg"):
            mode = "whisper-bleg"
        elif ch.var_true("eavesdrop_bridge_aleg") or ch.var_true("eavesdrop_bridge_bleg"):
            mode = "barge"
    ch.eavesdrop_mode = mode
    ch.set_var("eavesdrop_target_uuid", target.uuid)
    try:
        while ch.ready and target.ready and ch._transfer is None:
            ch._wake.clear()
            target._wake.set()
            waiter = asyncio.ensure_future(target._hangup_evt.wait())
            mine = asyncio.ensure_future(ch._wake.wait())
            try:
                await asyncio.wait({waiter, mine}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                mine.cancel()
            if ch._break:
                ch._break = False
                break
    finally:
        ch.eavesdrop_mode = None
    return None


@app("eavesdrop")
async def eavesdrop(ch: Channel, arg: str) -> str | None:
    """eavesdrop <uuid>: listen; DTMF 2/1/3/0 switch whisper-aleg/whisper-bleg/barge/listen."""
    return await _eavesdrop(ch, arg, "listen")


@app("three_way")
async def three_way(ch: Channel, arg: str) -> str | None:
    """three_way <uuid>: eavesdrop in barge mode from the start."""
    return await _eavesdrop(ch, arg, "barge")


# ---------------------------------------------------------------------- conference
class Conference:
    """A simple conference room."""

    def __init__(self, name: str, profile: str, uuid: str) -> None:
        self.name = name
        self.profile = profile
        self.uuid = uuid
        self.members: dict[int, Channel] = {}
        self.next_id = 1


def _conference_headers(conf: Conference) -> list[tuple[str, str]]:
    return [
        ("Conference-Name", conf.name),
        ("Conference-Domain", conf.name.split("@", 1)[-1] if "@" in conf.name else "default"),
        ("Conference-Size", str(len(conf.members))),
        ("Conference-Ghosts", "0"),
        ("Conference-Profile-Name", conf.profile),
        ("Conference-Unique-ID", conf.uuid),
    ]


def _member_headers(member_id: int, action: str) -> list[tuple[str, str]]:
    # conference_member_add_event_data: conference data, Floor, channel data, then these.
    return [
        ("Video", "false"),
        ("Hear", "true"),
        ("See", "true"),
        ("Speak", "true"),
        ("Talking", "false"),
        ("Mute-Detect", "false"),
        ("Hold", "false"),
        ("Member-ID", str(member_id)),
        ("Member-Type", "member"),
        ("Member-Ghost", "false"),
        ("Energy-Level", "100"),
        ("Current-Energy", "0"),
        ("Action", action),
    ]


@app("conference")
async def conference(ch: Channel, arg: str) -> str | None:
    """conference <name>[@profile][+flags]: join until hangup, transfer or kick."""
    import uuid as uuidlib

    spec = arg.strip().split("+", 1)[0]
    if not spec:
        raise AppError("conference: name required")
    name, _, profile = spec.partition("@")
    rooms: dict[str, Conference] = ch.switch.conferences
    conf = rooms.get(name)
    if conf is None:
        conf = Conference(name, profile or "default", str(uuidlib.uuid4()))
        rooms[name] = conf
        ch.switch.fire_custom(
            "conference::maintenance",
            [*_conference_headers(conf), ("Action", "conference-create")],
        )
    if not ch.answered:
        ch.mark_answered()
    member_id = conf.next_id
    conf.next_id += 1
    conf.members[member_id] = ch
    ch.conference = name
    ch.fire(
        "CUSTOM",
        pre=[*_conference_headers(conf), ("Floor", "false")],
        post=_member_headers(member_id, "add-member"),
        subclass="conference::maintenance",
    )
    try:
        while ch.ready and ch._transfer is None:
            ch._wake.clear()
            await ch._wake.wait()
            if ch._break:
                ch._break = False
                break
    finally:
        conf.members.pop(member_id, None)
        ch.conference = None
        ch.fire(
            "CUSTOM",
            pre=[*_conference_headers(conf), ("Floor", "false")],
            post=_member_headers(member_id, "del-member"),
            subclass="conference::maintenance",
        )
        if not conf.members:
            rooms.pop(name, None)
            ch.switch.fire_custom(
                "conference::maintenance",
                [*_conference_headers(conf), ("Action", "conference-destroy")],
            )
    return None


@app("socket")
async def socket(ch: Channel, arg: str) -> str | None:
    """socket <host:port> [async] [full]: hand the call to an outbound event socket."""
    from callmesh.fsemu.esl_outbound import socket_app

    await socket_app(ch, arg)
    return None


def _int(value: str, field: str, default: int) -> int:
    value = value.strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError as err:
        raise AppError(f"{field}: {value!r} is not an integer") from err
