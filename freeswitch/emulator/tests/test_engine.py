"""The call model: channel states, event sequences, applications and api commands."""

from __future__ import annotations

import asyncio
import json
import wave
from pathlib import Path

from callmesh.fsemu.model import parse_dial_string, split_dial_legs
from callmesh.fsemu.switch import Channel, DialTarget, Switch

from .conftest import Recorder


async def test_inbound_call_fires_create_then_routing_then_execute_with_real_state_numbers(
    switch: Switch, recorder: Recorder
) -> None:
    ch = await switch.inbound_call(caller_number="1000", destination_number="5000")
    await recorder.wait_for("CHANNEL_PARK", ch.uuid)
    assert recorder.names(ch.uuid)[:7] == [
        "CHANNEL_STATE",
        "CHANNEL_CREATE",
        "CHANNEL_CALLSTATE",
        "CHANNEL_STATE",
        "CHANNEL_STATE",
        "CHANNEL_EXECUTE",
        "CHANNEL_PARK",
    ]
    create = recorder.first("CHANNEL_CREATE", ch.uuid)
    # Channel-State is the running state (CS_INIT), the number the next state (CS_ROUTING=2).
    assert create.get("Channel-State") == "CS_INIT"
    assert create.get("Channel-State-Number") == "2"
    assert create.get("Channel-Call-State") == "DOWN"
    assert create.get("Answer-State") == "ringing"
    assert create.get("Call-Direction") == "inbound"
    assert create.get("variable_call_uuid") == ch.uuid
    callstate = recorder.first("CHANNEL_CALLSTATE", ch.uuid)
    assert callstate.get("Original-Channel-Call-State") == "DOWN"
    assert callstate.get("Channel-Call-State") == "RINGING"
    # variable_* only on the event types switch_channel_event_set_extended_data lists.
    assert callstate.get("variable_uuid") is None
    assert recorder.first("CHANNEL_STATE", ch.uuid).get("variable_uuid") is None
    assert recorder.first("CHANNEL_PARK", ch.uuid).get("variable_uuid") == ch.uuid


async def test_header_block_starts_with_the_core_headers_in_fs_order(
    switch: Switch, recorder: Recorder
) -> None:
    ch = await switch.inbound_call(caller_number="1000", destination_number="5000")
    event = recorder.first("CHANNEL_CREATE", ch.uuid)
    names = [k for k, _ in event.headers]
    assert names[:13] == [
        "Event-Name",
        "Core-UUID",
        "FreeSWITCH-Hostname",
        "FreeSWITCH-Switchname",
        "FreeSWITCH-IPv4",
        "FreeSWITCH-IPv6",
        "Event-Date-Local",
        "Event-Date-GMT",
        "Event-Date-Timestamp",
        "Event-Calling-File",
        "Event-Calling-Function",
        "Event-Calling-Line-Number",
        "Event-Sequence",
    ]
    assert names[13:18] == [
        "Channel-State",
        "Channel-Call-State",
        "Channel-State-Number",
        "Channel-Name",
        "Unique-ID",
    ]
    assert event.get("Event-Calling-Function") == "switch_core_session_run"
    assert (event.get("Event-Date-GMT") or "").endswith(" GMT")


async def test_answer_playback_and_hangup_produce_the_real_sequence(
    switch: Switch, recorder: Recorder, wav_dir: Path
) -> None:
    switch.set_dialplan(
        {"5000": [("answer", ""), ("playback", str(wav_dir / "short.wav")), ("hangup", "")]}
    )
    ch = await switch.inbound_call(caller_number="1000", destination_number="5000")
    assert await ch.wait_hangup() == "NORMAL_CLEARING"
    await recorder.wait_for("CHANNEL_DESTROY", ch.uuid)
    names = [n for n in recorder.names(ch.uuid) if n not in ("CHANNEL_STATE", "CHANNEL_CALLSTATE")]
    assert names == [
        "CHANNEL_CREATE",
        "CHANNEL_EXECUTE",
        "CHANNEL_ANSWER",
        "CHANNEL_EXECUTE_COMPLETE",
        "CHANNEL_EXECUTE",
        "PLAYBACK_START",
        "PLAYBACK_STOP",
        "CHANNEL_EXECUTE_COMPLETE",
        "CHANNEL_EXECUTE",
        "CHANNEL_HANGUP",
        "CHANNEL_EXECUTE_COMPLETE",
        "CHANNEL_HANGUP_COMPLETE",
        "CHANNEL_DESTROY",
    ]
    complete = [e for e in recorder.events if e.name == "CHANNEL_EXECUTE_COMPLETE"]
    assert complete[0].get("Application-Response") == "_none_"
    assert [k for k, _ in complete[0].headers[-4:]] == [
        "Application",
        "Application-Data",
        "Application-Response",
        "Application-UUID",
    ]
    execute = recorder.first("CHANNEL_EXECUTE", ch.uuid)
    assert execute.get("Application-UUID") == complete[0].get("Application-UUID")
    assert complete[1].get("Application-Response") == "FILE PLAYED"
    stop = recorder.first("PLAYBACK_STOP", ch.uuid)
    assert stop.get("Playback-Status") == "done"
    assert stop.get("variable_playback_ms") == "500"
    done = recorder.first("CHANNEL_HANGUP_COMPLETE", ch.uuid)
    assert done.headers[13] == ("Hangup-Cause", "NORMAL_CLEARING")
    assert done.get("Channel-State") == "CS_REPORTING"
    assert done.get("Answer-State") == "hangup"
    assert done.get("variable_hangup_cause_q850") == "16"
    assert done.get("variable_billsec") is not None
    assert switch.channel(ch.uuid) is None


async def test_missing_file_gives_file_not_found_without_playback_events(
    switch: Switch, recorder: Recorder
) -> None:
    switch.set_dialplan({"1": [("answer", ""), ("playback", "/nope/missing.wav")]})
    ch = await switch.inbound_call(caller_number="1", destination_number="1")
    await ch.wait_hangup()
    complete = [
        e
        for e in recorder.events
        if e.name == "CHANNEL_EXECUTE_COMPLETE" and e.get("Application") == "playback"
    ]
    assert complete[0].get("Application-Response") == "FILE NOT FOUND"
    assert "PLAYBACK_START" not in recorder.names(ch.uuid)


async def test_dtmf_interrupts_play_and_get_digits_and_sets_the_variable(
    switch: Switch, recorder: Recorder, wav_dir: Path
) -> None:
    prompt = str(wav_dir / "prompt.wav")
    switch.set_dialplan(
        {
            "7": [
                ("answer", ""),
                ("play_and_get_digits", f"1 4 1 3000 # {prompt} silence_stream://250 choice \\d+"),
                ("park", ""),
            ]
        }
    )
    ch = await switch.inbound_call(caller_number="1", destination_number="7")
    await recorder.wait_for("PLAYBACK_START", ch.uuid)
    await ch.far_dtmf("42#")
    done = await recorder.wait_for("CHANNEL_EXECUTE_COMPLETE", ch.uuid, count=2)
    assert done.get("Application") == "play_and_get_digits"
    assert done.get("variable_choice") == "42"
    assert done.get("variable_read_result") == "success"
    stop = recorder.first("PLAYBACK_STOP", ch.uuid)
    assert stop.get("Playback-Status") == "break"
    dtmf = recorder.first("DTMF", ch.uuid)
    assert [k for k, _ in dtmf.headers[-3:]] == ["DTMF-Digit", "DTMF-Duration", "DTMF-Source"]
    assert dtmf.get("DTMF-Digit") == "4"
    assert dtmf.get("variable_uuid") is None
    ch.hangup()


async def test_read_times_out_without_digits(switch: Switch, recorder: Recorder) -> None:
    switch.set_dialplan({"8": [("read", "1 1 silence_stream://100 pin 200 #"), ("park", "")]})
    ch = await switch.inbound_call(caller_number="1", destination_number="8")
    done = await recorder.wait_for("CHANNEL_EXECUTE_COMPLETE", ch.uuid)
    assert done.get("variable_read_result") == "timeout"
    assert done.get("variable_pin") is None
    ch.hangup()


async def test_bridge_to_a_registered_user_fires_bridge_once_on_the_originator(
    switch: Switch, recorder: Recorder
) -> None:
    switch.registrations.register("1001", "acme.example", network_ip="10.0.0.5")
    switch.set_dialplan({"1001": [("bridge", "user/1001@acme.example")]})
    a = await switch.inbound_call(caller_number="555", destination_number="1001")
    bridge = await recorder.wait_for("CHANNEL_BRIDGE")
    b_uuid = bridge.get("Bridge-B-Unique-ID")
    assert bridge.get("Unique-ID") == a.uuid
    assert bridge.get("Bridge-A-Unique-ID") == a.uuid
    assert bridge.get("Other-Type") == "originatee"
    assert bridge.get("Other-Leg-Unique-ID") == b_uuid
    assert bridge.headers[13][0] == "Bridge-A-Unique-ID"
    assert b_uuid is not None
    b = switch.channel(b_uuid)
    assert b is not None
    b_names = [n for n in recorder.names(b_uuid) if n != "CHANNEL_STATE"]
    assert b_names[:5] == [
        "CHANNEL_OUTGOING",
        "CHANNEL_CREATE",
        "CHANNEL_ORIGINATE",
        "CHANNEL_PROGRESS",
        "CHANNEL_CALLSTATE",
    ]
    outgoing = recorder.first("CHANNEL_OUTGOING", b_uuid)
    assert outgoing.get("Channel-State") == "CS_NEW"
    assert outgoing.get("Channel-State-Number") == "1"
    create = recorder.first("CHANNEL_CREATE", b_uuid)
    assert create.get("Call-Direction") == "outbound"
    assert create.get("Other-Type") == "originator"
    assert create.get("Other-Leg-Unique-ID") == a.uuid
    assert create.get("variable_call_uuid") == a.uuid
    assert len([e for e in recorder.events if e.name == "CHANNEL_BRIDGE"]) == 1
    await b.far_hangup()
    await recorder.wait_for("CHANNEL_DESTROY", a.uuid)
    a_names = recorder.names(a.uuid)
    assert a_names.index("CHANNEL_UNBRIDGE") < a_names.index("CHANNEL_HANGUP")
    assert recorder.first("CHANNEL_UNBRIDGE", a.uuid).get("Bridge-B-Unique-ID") == b_uuid


async def test_bridge_to_an_unregistered_user_hangs_up_the_caller_with_the_cause(
    switch: Switch, recorder: Recorder
) -> None:
    switch.set_dialplan({"1": [("bridge", "user/nobody@acme.example")]})
    a = await switch.inbound_call(caller_number="555", destination_number="1")
    assert await a.wait_hangup() == "USER_NOT_REGISTERED"
    hangup = recorder.first("CHANNEL_HANGUP", a.uuid)
    assert hangup.get("variable_originate_disposition") == "USER_NOT_REGISTERED"
    assert hangup.get("Hangup-Cause") == "USER_NOT_REGISTERED"
    assert hangup.get("Channel-Call-State") == "RINGING"
    assert hangup.get("variable_hangup_cause") is None
    done = await recorder.wait_for("CHANNEL_HANGUP_COMPLETE", a.uuid)
    assert done.get("variable_hangup_cause_q850") == "16"
    assert done.get("Channel-Call-State") == "HANGUP"


async def test_continue_on_fail_runs_the_rest_of_the_dialplan(
    switch: Switch, recorder: Recorder
) -> None:
    switch.set_dialplan(
        {
            "1": [
                ("set", "continue_on_fail=true"),
                ("bridge", "error/user_busy"),
                ("hangup", "CALL_REJECTED"),
            ]
        }
    )
    a = await switch.inbound_call(caller_number="555", destination_number="1")
    assert await a.wait_hangup() == "CALL_REJECTED"
    assert a.variables["DIALSTATUS"] == "USER_BUSY"


async def test_dial_handler_drives_the_far_end(switch: Switch, recorder: Recorder) -> None:
    seen: list[DialTarget] = []

    async def handler(leg: Channel, target: DialTarget) -> None:
        seen.append(target)
        await leg.far_ring(early_media=True)
        await switch.sleep(0.1)
        await leg.far_hangup("USER_BUSY")

    switch.set_dial_handler(handler)
    out = await switch.api(
        "originate {origination_caller_id_number=777}sofia/gateway/gw1/15551234 &park()"
    )
    assert out == "-ERR USER_BUSY\n"
    assert seen[0].kind == "gateway"
    assert seen[0].gateway == "gw1"
    assert seen[0].number == "15551234"
    assert seen[0].variables["origination_caller_id_number"] == "777"
    assert "CHANNEL_PROGRESS_MEDIA" in recorder.names()


async def test_originate_with_an_extension_routes_the_leg_through_the_dialplan(
    switch: Switch, recorder: Recorder
) -> None:
    switch.set_dialplan({"9000": [("answer", ""), ("park", "")]})
    out = await switch.api("originate {origination_uuid=leg-1}loopback/9000 9000 XML default")
    assert out == "+OK leg-1\n"
    await recorder.wait_for("CHANNEL_PARK", "leg-1")
    leg = switch.channel("leg-1")
    assert leg is not None
    assert leg.destination_number == "9000"
    assert leg.hit_dialplan


async def test_uuid_commands_reply_with_freeswitch_texts(
    switch: Switch, recorder: Recorder
) -> None:
    ch = await switch.inbound_call(caller_number="1", destination_number="2")
    await recorder.wait_for("CHANNEL_PARK", ch.uuid)
    assert await switch.api(f"uuid_setvar {ch.uuid} color blue") == "+OK\n"
    assert await switch.api(f"uuid_getvar {ch.uuid} color") == "blue"
    assert await switch.api(f"uuid_getvar {ch.uuid} nothing") == "_undef_"
    assert await switch.api(f"uuid_exists {ch.uuid}") == "true"
    assert await switch.api("uuid_exists nope") == "false"
    assert await switch.api("uuid_kill nope") == "-ERR No such channel!\n"
    assert await switch.api("uuid_getvar nope x") == "-ERR No such channel!\n"
    assert await switch.api(f"uuid_answer {ch.uuid}") == "+OK\n"
    assert await switch.api(f"uuid_send_dtmf {ch.uuid} 123") == f"+OK {ch.uuid} sent DTMF 123.\n"
    assert await switch.api("frobnicate now") == "-ERR frobnicate Command not found!\n"
    assert await switch.api("hostname") == "fsemu-test"
    assert (await switch.api("status")).splitlines()[1].endswith("is ready")
    dump = await switch.api(f"uuid_dump {ch.uuid}")
    assert dump.startswith("Event-Name: CHANNEL_DATA\n")
    assert f"Unique-ID: {ch.uuid}\n" in dump
    assert await switch.api(f"uuid_kill {ch.uuid} USER_BUSY") == "+OK\n"
    assert await ch.wait_hangup() == "USER_BUSY"


async def test_show_channels_prints_the_core_db_columns_and_total(
    switch: Switch, recorder: Recorder
) -> None:
    empty = await switch.api("show channels")
    assert empty == "\n0 total.\n"
    assert await switch.api("show channels as json") == '{"row_count": 0}\n'
    ch = await switch.inbound_call(caller_number="1000", destination_number="5000")
    await recorder.wait_for("CHANNEL_PARK", ch.uuid)
    text = await switch.api("show channels")
    lines = text.split("\n")
    assert lines[0].startswith("uuid,direction,created,created_epoch,name,state,cid_name,cid_num")
    assert lines[0].endswith("initial_dest,initial_dialplan,initial_context")
    assert lines[1].startswith(ch.uuid + ",inbound,")
    assert text.endswith("\n\n1 total.\n")
    data = json.loads(await switch.api("show channels as json"))
    assert data["row_count"] == 1
    assert data["rows"][0]["uuid"] == ch.uuid
    assert data["rows"][0]["application"] == "park"
    piped = await switch.api("show channels as delim |")
    assert piped.split("\n")[0].startswith("uuid|direction|created")
    calls = await switch.api("show calls")
    assert calls.split("\n")[0].endswith(",call_created_epoch")


async def test_a_registration_past_its_time_is_expired_when_looked_up(
    switch: Switch, recorder: Recorder
) -> None:
    switch.registrations.register("1003", "acme.example", expires=0)
    assert switch.registrations.lookup("1003", "acme.example") is None
    assert recorder.events[-1].subclass == "sofia::expire"
    switch.registrations.register("1004", "acme.example", expires=0)
    assert switch.registrations.all() == []
    assert recorder.events[-1].subclass == "sofia::expire"


async def test_closing_the_switch_removes_its_scratch_directory() -> None:
    sw = Switch(speed=50, seed=1)
    scratch = sw.recordings_dir.parent
    sw.recordings_dir.mkdir(parents=True)
    assert scratch.is_dir()
    await sw.close()
    assert not scratch.exists()


async def test_registrations_fire_sofia_custom_events_and_show(
    switch: Switch, recorder: Recorder
) -> None:
    switch.registrations.register("1001", "acme.example", network_ip="10.0.0.5")
    reg = recorder.first("CUSTOM")
    assert reg.subclass == "sofia::register"
    names = [k for k, _ in reg.headers]
    assert names[13] == "Event-Subclass"
    assert names[14:] == [
        "profile-name",
        "from-user",
        "from-host",
        "presence-hosts",
        "contact",
        "call-id",
        "rpid",
        "status",
        "expires",
        "to-user",
        "to-host",
        "network-ip",
        "network-port",
        "username",
        "realm",
        "user-agent",
    ]
    text = await switch.api("show registrations")
    assert text.split("\n")[0] == (
        "reg_user,realm,token,url,expires,network_ip,network_port,network_proto,hostname,metadata"
    )
    switch.registrations.unregister("1001", "acme.example")
    gone = recorder.events[-1]
    assert gone.subclass == "sofia::unregister"
    assert [k for k, _ in gone.headers][14:17] == ["profile-name", "username", "from-user"]
    assert gone.get("expires") == "0"
    switch.registrations.register("1002", "acme.example", expires=0)
    assert switch.registrations.expire_due() == 1
    expired = recorder.events[-1]
    assert expired.subclass == "sofia::expire"
    assert [k for k, _ in expired.headers][14:19] == [
        "profile-name",
        "call-id",
        "user",
        "username",
        "host",
    ]


async def test_hold_plays_music_on_the_partner_and_unhold_stops_it(
    switch: Switch, recorder: Recorder
) -> None:
    out = await switch.api("originate {origination_uuid=agent}loopback/1 &park()")
    assert out == "+OK agent\n"
    caller = await switch.inbound_call(caller_number="1", destination_number="2")
    await recorder.wait_for("CHANNEL_PARK", caller.uuid)
    assert await switch.api(f"uuid_bridge {caller.uuid} agent") == "+OK agent\n"
    await recorder.wait_for("CHANNEL_BRIDGE", caller.uuid)
    assert await switch.api(f"uuid_hold {caller.uuid}") == "+OK Success\n"
    start = await recorder.wait_for("PLAYBACK_START", "agent")
    assert start.get("Playback-File-Type") == "local_stream"
    assert start.get("Playback-File-Path") == "local_stream://moh"
    assert recorder.first("CHANNEL_HOLD", caller.uuid).get("Channel-Call-State") == "ACTIVE"
    assert caller.call_state == "HELD"
    assert await switch.api(f"uuid_hold off {caller.uuid}") == "+OK Success\n"
    stop = await recorder.wait_for("PLAYBACK_STOP", "agent")
    assert stop.get("Playback-Status") == "break"
    await recorder.wait_for("CHANNEL_UNHOLD", caller.uuid)
    assert caller.call_state == "ACTIVE"
    caller.hangup()
    await recorder.wait_for("CHANNEL_DESTROY", "agent")


async def test_uuid_record_writes_a_wav_of_the_recorded_length(
    switch: Switch, recorder: Recorder, tmp_path: Path
) -> None:
    ch = await switch.inbound_call(caller_number="1", destination_number="2")
    await recorder.wait_for("CHANNEL_PARK", ch.uuid)
    path = tmp_path / "rec" / "call.wav"
    assert await switch.api(f"uuid_record {ch.uuid} start {path}") == "+OK Success\n"
    assert (await recorder.wait_for("RECORD_START", ch.uuid)).get("Record-File-Path") == str(path)
    await switch.sleep(2.0)
    assert await switch.api(f"uuid_record {ch.uuid} stop {path}") == "+OK Success\n"
    stop = await recorder.wait_for("RECORD_STOP", ch.uuid)
    assert stop.get("Record-File-Path") == str(path)
    with wave.open(str(path)) as wav:
        seconds = wav.getnframes() / wav.getframerate()
    assert seconds >= 2.0
    assert await switch.api(f"uuid_record {ch.uuid} stop {path}") == (
        "-ERR Cannot stop record session!\n"
    )
    ch.hangup()


async def test_transfer_reroutes_with_a_new_profile_and_hangs_up_the_bridged_peer(
    switch: Switch, recorder: Recorder
) -> None:
    switch.set_dialplan({"2": [("park", "")], "3": [("answer", ""), ("park", "")]})
    await switch.api("originate {origination_uuid=peer}loopback/1 &park()")
    caller = await switch.inbound_call(caller_number="1", destination_number="2")
    await recorder.wait_for("CHANNEL_PARK", caller.uuid)
    await switch.api(f"uuid_bridge {caller.uuid} peer")
    await recorder.wait_for("CHANNEL_BRIDGE", caller.uuid)
    assert await switch.api(f"uuid_transfer {caller.uuid} 3 XML default") == "+OK\n"
    await recorder.wait_for("CHANNEL_PARK", caller.uuid, count=2)
    peer_hangup = await recorder.wait_for("CHANNEL_HANGUP", "peer")
    assert peer_hangup.get("Hangup-Cause") == "BLIND_TRANSFER"
    assert caller.destination_number == "3"
    assert caller.profile.profile_index == "2"
    assert caller.profile.rdnis == "2"
    assert caller.ready
    caller.hangup()


async def test_conference_fires_maintenance_events(switch: Switch, recorder: Recorder) -> None:
    switch.set_dialplan({"3000": [("conference", "room1@default")]})
    a = await switch.inbound_call(caller_number="1", destination_number="3000")
    b = await switch.inbound_call(caller_number="2", destination_number="3000")
    await recorder.wait_for("CUSTOM", count=3)
    a.hangup()
    b.hangup()
    await recorder.wait_for("CHANNEL_DESTROY", b.uuid)
    actions = [e.get("Action") for e in recorder.events if e.subclass == "conference::maintenance"]
    add = next(e for e in recorder.events if e.get("Action") == "add-member")
    names = [k for k, _ in add.headers]
    assert names[14:21] == [
        "Conference-Name",
        "Conference-Domain",
        "Conference-Size",
        "Conference-Ghosts",
        "Conference-Profile-Name",
        "Conference-Unique-ID",
        "Floor",
    ]
    assert names[21] == "Channel-State"
    assert names[-3:] == ["Energy-Level", "Current-Energy", "Action"]
    assert add.get("variable_uuid") == a.uuid
    assert actions == [
        "conference-create",
        "add-member",
        "add-member",
        "del-member",
        "del-member",
        "conference-destroy",
    ]


async def test_eavesdrop_modes_follow_dtmf(switch: Switch, recorder: Recorder) -> None:
    target = await switch.inbound_call(caller_number="1", destination_number="2")
    await recorder.wait_for("CHANNEL_PARK", target.uuid)
    switch.set_dialplan({"9": [("eavesdrop", target.uuid)]})
    sup = await switch.inbound_call(caller_number="3", destination_number="9")
    await recorder.wait_for("CHANNEL_ANSWER", sup.uuid)
    assert sup.eavesdrop_mode == "listen"
    await sup.far_dtmf("2")
    assert sup.eavesdrop_mode == "whisper-aleg"
    await sup.far_dtmf("3")
    assert sup.eavesdrop_mode == "barge"
    await sup.far_dtmf("0")
    assert sup.eavesdrop_mode == "listen"
    target.hangup()
    assert await sup.wait_hangup() == "NORMAL_CLEARING"


async def test_http_cache_playback_reads_the_duration_of_the_fetched_wav(
    switch: Switch, recorder: Recorder, wav_dir: Path
) -> None:
    data = (wav_dir / "short.wav").read_bytes()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: %d\r\n\r\n" % len(data)
            + data
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"http_cache://http://127.0.0.1:{port}/prompts/short.wav"
    switch.set_dialplan({"1": [("answer", ""), ("playback", url)]})
    try:
        ch = await switch.inbound_call(caller_number="1", destination_number="1")
        await ch.wait_hangup()
    finally:
        server.close()
    stop = recorder.first("PLAYBACK_STOP", ch.uuid)
    assert stop.get("Playback-File-Path") == url
    assert stop.get("variable_playback_ms") == "500"


def test_dial_strings_parse_into_targets() -> None:
    t = parse_dial_string("{a=1,b='x,y'}user/1001@acme.example")
    assert (t.kind, t.user, t.domain, t.variables) == (
        "user",
        "1001",
        "acme.example",
        {"a": "1", "b": "x,y"},
    )
    g = parse_dial_string("[leg=1]sofia/gateway/carrier/15551234")
    assert (g.kind, g.gateway, g.number) == ("gateway", "carrier", "15551234")
    s = parse_dial_string("sofia/internal/sip:1001@10.0.0.5:5060")
    assert (s.kind, s.profile, s.number) == ("sofia", "internal", "1001")
    assert parse_dial_string("error/user_busy").kind == "error"
    assert parse_dial_string("loopback/9000/default").number == "9000"
    global_vars, groups = split_dial_legs("{x=1}user/a@d,user/b@d|user/c@d")
    assert global_vars == {"x": "1"}
    assert groups == [["user/a@d", "user/b@d"], ["user/c@d"]]


async def test_many_concurrent_calls_stay_consistent(switch: Switch) -> None:
    calls = [
        await switch.inbound_call(caller_number=str(i), destination_number="1") for i in range(300)
    ]
    await asyncio.sleep(0.05)
    assert len(switch.channels()) == 300
    for ch in calls:
        ch.hangup()
    await asyncio.gather(*(ch.wait_destroyed() for ch in calls))
    assert switch.channels() == []


async def test_exported_variables_reach_the_b_leg_and_plain_sets_do_not(
    switch: Switch, recorder: Recorder
) -> None:
    switch.registrations.register("1001", "acme.example")
    switch.set_dialplan(
        {
            "1001": [
                ("export", "callmesh_call_id=${uuid}"),
                ("export", "nolocal:only_b=yes"),
                ("set", "only_a=yes"),
                ("bridge", "{leg_var=1}user/1001@acme.example"),
            ]
        }
    )
    a = await switch.inbound_call(caller_number="555", destination_number="1001")
    bridge = await recorder.wait_for("CHANNEL_BRIDGE", a.uuid)
    b = switch.channel(bridge.get("Bridge-B-Unique-ID") or "")
    assert b is not None
    assert b.variables["callmesh_call_id"] == a.uuid
    assert b.variables["only_b"] == "yes"
    assert b.variables["leg_var"] == "1"
    assert "only_a" not in b.variables
    assert "only_b" not in a.variables
    assert a.variables["export_vars"] == "callmesh_call_id,only_b"
    a.hangup()


async def test_uuid_break_stops_the_playing_file_but_not_the_next_one(
    switch: Switch, recorder: Recorder, wav_dir: Path
) -> None:
    ch = await switch.inbound_call(caller_number="1", destination_number="2")
    await recorder.wait_for("CHANNEL_PARK", ch.uuid)
    assert await switch.api(f"uuid_break {ch.uuid}") == "+OK\n"
    await switch.api(f"uuid_broadcast {ch.uuid} {wav_dir / 'prompt.wav'}")
    await recorder.wait_for("PLAYBACK_START", ch.uuid)
    await switch.api(f"uuid_broadcast {ch.uuid} {wav_dir / 'short.wav'}")
    await switch.api(f"uuid_break {ch.uuid}")
    first = await recorder.wait_for("PLAYBACK_STOP", ch.uuid)
    second = await recorder.wait_for("PLAYBACK_STOP", ch.uuid, count=2)
    assert first.get("Playback-Status") == "break"
    assert second.get("Playback-Status") == "done"
    ch.hangup()


async def test_caller_abandoning_while_the_leg_rings_cancels_it(
    switch: Switch, recorder: Recorder
) -> None:
    async def never_answers(leg: Channel, target: DialTarget) -> None:
        await leg.far_ring()

    switch.set_dial_handler(never_answers)
    switch.set_dialplan({"1": [("bridge", "sofia/gateway/gw/123")]})
    a = await switch.inbound_call(caller_number="1", destination_number="1")
    progress = await recorder.wait_for("CHANNEL_PROGRESS")
    b_uuid = progress.get("Unique-ID") or ""
    assert b_uuid != a.uuid
    a.hangup("NORMAL_CLEARING")
    b_hangup = await recorder.wait_for("CHANNEL_HANGUP", b_uuid)
    assert b_hangup.get("Hangup-Cause") == "ORIGINATOR_CANCEL"


async def test_an_async_dialplan_is_awaited_and_no_route_fails_the_call(
    switch: Switch, recorder: Recorder
) -> None:
    async def dialplan(ch: Channel) -> list[tuple[str, str]] | None:
        await asyncio.sleep(0)
        if ch.destination_number == "100":
            return [("answer", ""), ("hangup", "USER_BUSY")]
        return None

    switch.set_dialplan(dialplan)
    routed = await switch.inbound_call(caller_number="1", destination_number="100")
    assert await routed.wait_hangup() == "USER_BUSY"
    lost = await switch.inbound_call(caller_number="1", destination_number="999")
    assert await lost.wait_hangup() == "NO_ROUTE_DESTINATION"


async def test_an_unregistered_user_fails_before_the_dial_handler_without_a_channel(
    switch: Switch, recorder: Recorder
) -> None:
    seen: list[DialTarget] = []

    async def handler(leg: Channel, target: DialTarget) -> None:
        seen.append(target)
        await leg.far_answer()

    switch.set_dial_handler(handler)
    out = await switch.api("originate user/1001@acme.test &park()")
    assert out == "-ERR USER_NOT_REGISTERED\n"
    assert seen == []
    assert "CHANNEL_CREATE" not in recorder.names()
    assert switch.channels() == []


async def _ringing_forever(leg: Channel, target: DialTarget) -> None:
    await leg.far_ring()
    await leg.wait_hangup()


async def test_leg_timeout_ends_that_leg_with_allotted_timeout(
    switch: Switch, recorder: Recorder
) -> None:
    switch.set_dial_handler(_ringing_forever)
    out = await switch.api("originate {originate_timeout=30}[leg_timeout=2]loopback/1 &park()")
    assert out == "-ERR ALLOTTED_TIMEOUT\n"
    hangup = recorder.first("CHANNEL_HANGUP")
    assert hangup.get("Hangup-Cause") == "ALLOTTED_TIMEOUT"
    assert hangup.get("variable_leg_timeout") == "2"


async def test_the_originate_timeout_gives_no_answer_before_a_longer_leg_timeout(
    switch: Switch, recorder: Recorder
) -> None:
    switch.set_dial_handler(_ringing_forever)
    out = await switch.api("originate {originate_timeout=2}[leg_timeout=30]loopback/1 &park()")
    assert out == "-ERR NO_ANSWER\n"
    assert recorder.first("CHANNEL_HANGUP").get("Hangup-Cause") == "NO_ANSWER"


async def test_one_leg_timing_out_leaves_the_other_leg_ringing(
    switch: Switch, recorder: Recorder
) -> None:
    async def handler(leg: Channel, target: DialTarget) -> None:
        await leg.far_ring()
        if target.number == "2":
            await switch.sleep(5)
            await leg.far_answer()
        await leg.wait_hangup()

    switch.set_dial_handler(handler)
    out = await switch.api("originate [leg_timeout=1]loopback/1,[leg_timeout=20]loopback/2 &park()")
    assert out.startswith("+OK ")
    causes = {
        e.get("Caller-Destination-Number"): e.get("Hangup-Cause")
        for e in recorder.events
        if e.name == "CHANNEL_HANGUP"
    }
    assert causes == {"1": "ALLOTTED_TIMEOUT"}


async def test_leg_progress_timeout_ends_a_leg_that_never_rang(
    switch: Switch, recorder: Recorder
) -> None:
    async def silent(leg: Channel, target: DialTarget) -> None:
        await leg.wait_hangup()

    switch.set_dial_handler(silent)
    out = await switch.api("originate [leg_progress_timeout=1]loopback/1 &park()")
    assert out == "-ERR PROGRESS_TIMEOUT\n"
