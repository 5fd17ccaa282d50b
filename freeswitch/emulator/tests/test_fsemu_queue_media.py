"""What a queue plays to a parked caller: ``file_string://`` prompts and ``endless_playback`` MOH
through ``uuid_broadcast`` (the cti link's Play), broken by ``uuid_break`` and ``uuid_bridge``."""

from __future__ import annotations

from pathlib import Path

from callmesh.fsemu.switch import Switch

from .conftest import Recorder


def paths(recorder: Recorder, name: str, uuid: str) -> list[str]:
    """Playback-File-Path of each ``name`` event of the channel."""
    return [
        e.get("Playback-File-Path") or ""
        for e in recorder.events
        if e.name == name and e.get("Unique-ID") == uuid
    ]


async def test_file_string_plays_the_files_as_one_playback_of_their_summed_length(
    switch: Switch, recorder: Recorder, wav_dir: Path
) -> None:
    ch = await switch.inbound_call(caller_number="1", destination_number="2")
    await recorder.wait_for("CHANNEL_PARK", ch.uuid)
    target = f"file_string://{wav_dir / 'prompt.wav'}!{wav_dir / 'short.wav'}"
    assert await switch.api(f"uuid_broadcast {ch.uuid} {target} aleg") == "+OK Message sent\n"
    stop = await recorder.wait_for("PLAYBACK_STOP", ch.uuid)
    assert stop.get("Playback-Status") == "done"
    assert paths(recorder, "PLAYBACK_START", ch.uuid) == [target]
    assert ch.get_var("playback_ms") == "2500"
    ch.hangup()


async def test_file_string_with_a_missing_file_is_not_found(
    switch: Switch, recorder: Recorder, wav_dir: Path
) -> None:
    ch = await switch.inbound_call(caller_number="1", destination_number="2")
    await recorder.wait_for("CHANNEL_PARK", ch.uuid)
    await switch.api(f"uuid_broadcast {ch.uuid} file_string://{wav_dir / 'short.wav'}!nope.wav")
    done = await recorder.wait_for("CHANNEL_EXECUTE_COMPLETE", ch.uuid)
    assert done.get("Application-Response") == "FILE NOT FOUND"
    assert paths(recorder, "PLAYBACK_START", ch.uuid) == []
    ch.hangup()


async def test_prompts_then_endless_moh_loop_until_a_break(
    switch: Switch, recorder: Recorder, wav_dir: Path
) -> None:
    ch = await switch.inbound_call(caller_number="1", destination_number="2")
    await recorder.wait_for("CHANNEL_PARK", ch.uuid)
    prompt, moh = wav_dir / "prompt.wav", wav_dir / "short.wav"
    await switch.api(f"uuid_broadcast {ch.uuid} {prompt} aleg")
    await switch.api(f"uuid_broadcast {ch.uuid} endless_playback::{moh} aleg")
    # The prompt, then the music again and again.
    await recorder.wait_for("PLAYBACK_START", ch.uuid, count=4)
    assert paths(recorder, "PLAYBACK_START", ch.uuid)[:4] == [str(prompt), *[str(moh)] * 3]
    assert ch.ready
    assert await switch.api(f"uuid_break {ch.uuid} all") == "+OK\n"
    done = await recorder.wait_for("CHANNEL_EXECUTE_COMPLETE", ch.uuid, count=2)
    assert done.get("Application") == "endless_playback"
    assert done.get("Application-Response") == "FILE PLAYED"
    statuses = [
        e.get("Playback-Status")
        for e in recorder.events
        if e.name == "PLAYBACK_STOP" and e.get("Unique-ID") == ch.uuid
    ]
    assert statuses[-1] == "break"
    assert set(statuses[:-1]) == {"done"}
    # Still parked: a new announcement plays.
    await switch.api(f"uuid_broadcast {ch.uuid} {prompt} aleg")
    await recorder.wait_for("CHANNEL_EXECUTE_COMPLETE", ch.uuid, count=3)
    assert paths(recorder, "PLAYBACK_STOP", ch.uuid)[-1] == str(prompt)
    ch.hangup()


async def test_endless_moh_stops_when_the_caller_is_bridged(
    switch: Switch, recorder: Recorder, wav_dir: Path
) -> None:
    caller = await switch.inbound_call(caller_number="1", destination_number="2")
    agent = await switch.inbound_call(caller_number="3", destination_number="4")
    await recorder.wait_for("CHANNEL_PARK", caller.uuid)
    await recorder.wait_for("CHANNEL_PARK", agent.uuid)
    await switch.api(f"uuid_broadcast {caller.uuid} endless_playback::{wav_dir / 'short.wav'}")
    await recorder.wait_for("PLAYBACK_START", caller.uuid, count=2)
    assert (await switch.api(f"uuid_bridge {caller.uuid} {agent.uuid}")).startswith("+OK")
    await recorder.wait_for("CHANNEL_BRIDGE", caller.uuid)
    done = await recorder.wait_for("CHANNEL_EXECUTE_COMPLETE", caller.uuid)
    assert done.get("Application") == "endless_playback"
    stop = [e for e in recorder.events if e.name == "PLAYBACK_STOP"][-1]
    assert stop.get("Playback-Status") == "break"
    assert caller.partner is agent
    caller.hangup()


async def test_endless_playback_of_a_missing_file_ends_instead_of_spinning(
    switch: Switch, recorder: Recorder
) -> None:
    ch = await switch.inbound_call(caller_number="1", destination_number="2")
    await recorder.wait_for("CHANNEL_PARK", ch.uuid)
    await switch.api(f"uuid_broadcast {ch.uuid} endless_playback::/no/such/moh.wav")
    done = await recorder.wait_for("CHANNEL_EXECUTE_COMPLETE", ch.uuid)
    assert done.get("Application-Response") == "FILE NOT FOUND"
    assert ch.ready
    ch.hangup()
