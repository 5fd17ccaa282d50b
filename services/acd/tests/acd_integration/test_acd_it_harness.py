"""The harness itself, before any acd: what the ACD runtime relies on from the switch side
(a parked caller, Play through the cti link, originates to world phones and their outcomes)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from callmesh.core.bus import Bus
from callmesh.core.settings import PlatformSettings
from callmesh.proto.v1.switch_pb2 import (
    Bridge,
    Endpoint,
    Originate,
    Play,
    SwitchCommand,
    SwitchReply,
)

from .harness import NO_ANSWER, NODE, TENANT, AcdHarness, running, write_media

pytestmark = pytest.mark.slow


async def command(h: AcdHarness, timeout: float = 30, **kwargs: object) -> SwitchReply:
    request = SwitchCommand(command_id=uuid.uuid4().hex, tenant_id=TENANT, **kwargs)  # type: ignore[arg-type]
    return await h.bus.request(
        h.bus.subjects.node_command(NODE), request, SwitchReply, timeout=timeout
    )


async def test_a_parked_caller_hears_prompts_then_moh_and_is_bridged_to_an_answering_phone(
    platform_settings: PlatformSettings, bus: Bus, tmp_path: Path
) -> None:
    async with running(platform_settings, bus, tmp_path) as h:
        write_media(h.media_dir, ["moh/default.wav", "acd/en/position.wav"])
        h.phone("1001")
        caller = await h.caller("+8613800000001")
        prompt = str(h.media_dir / "acd/en/position.wav")
        moh = str(h.media_dir / "moh/default.wav")
        assert (await command(h, play=Play(channel_uuid=caller.uuid, files=[prompt]))).ok
        assert (await command(h, play=Play(channel_uuid=caller.uuid, files=[moh], loop=True))).ok
        await h.wait_event("call_answered", caller.uuid)
        from .harness import eventually

        await eventually(lambda: h.played(caller.uuid) == [prompt, moh], "prompt then moh")
        leg = str(uuid.uuid4())
        answered = await command(
            h,
            originate=Originate(
                channel_uuid=leg, endpoint=Endpoint(user="1001"), answer_timeout_s=5
            ),
        )
        assert answered.ok, answered.message
        assert (await command(h, bridge=Bridge(a_channel_uuid=caller.uuid, b_channel_uuid=leg))).ok
        await h.wait_event("call_bridged", caller.uuid)
        await caller.far_hangup()
        await h.wait_event("call_hung_up", leg)


async def test_originate_outcomes_of_phones_that_ring_out_refuse_or_are_not_there(
    platform_settings: PlatformSettings, bus: Bus, tmp_path: Path
) -> None:
    from .harness import BUSY, REJECTS

    async with running(platform_settings, bus, tmp_path) as h:
        h.phone("2001", NO_ANSWER)
        h.phone("2002", REJECTS)
        h.phone("2003", BUSY)
        outcomes = {}
        for user in ("2001", "2002", "2003", "2999"):
            reply = await command(
                h,
                originate=Originate(
                    channel_uuid=str(uuid.uuid4()),
                    endpoint=Endpoint(user=user),
                    answer_timeout_s=1 if user == "2001" else 5,
                ),
            )
            assert not reply.ok
            outcomes[user] = reply.message
        assert "NO_ANSWER" in outcomes["2001"]
        assert "CALL_REJECTED" in outcomes["2002"]
        assert "USER_BUSY" in outcomes["2003"]
        assert "USER_NOT_REGISTERED" in outcomes["2999"]


async def test_admin_in_the_harness_answers_calendar_state_for_queue_hours(
    platform_settings: PlatformSettings, bus: Bus, tmp_path: Path
) -> None:
    from callmesh.proto.subjects import AdminOp, Service
    from callmesh.proto.v1.admin_pb2 import CalendarStateReply, CalendarStateRequest

    async with running(platform_settings, bus, tmp_path, with_admin=True) as h:
        closed = await h.calendar("never", {})
        always = await h.calendar("always", {d: [["00:00", "24:00"]] for d in WEEK})
        subject = bus.subjects.service_command(TENANT, Service.ADMIN, AdminOp.CALENDAR_STATE)
        states = [
            await bus.request(subject, CalendarStateRequest(calendar_id=c), CalendarStateReply)
            for c in (closed, always)
        ]
        assert [(s.found, s.open) for s in states] == [(True, False), (True, True)]


WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
