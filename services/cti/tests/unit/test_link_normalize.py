"""The normalizer: FreeSWITCH events → call events with tenant and call id, in any order."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from callmesh.cti.domain.legs import ChannelTable
from callmesh.cti.domain.normalize import Normalizer, hangup_side, media_channel, q850_code
from callmesh.proto.v1.call_pb2 import DtmfSource, HangupSide
from callmesh.proto.v1.common_pb2 import CallDirection, LegRole, MediaChannel

from .fsevents import T0, A, B, as_dict, channel, inbound_call_to_agent


def run(events: list[list[tuple[str, str]]], normalizer: Normalizer | None = None):  # type: ignore[no-untyped-def]
    normalizer = normalizer or Normalizer()
    out = []
    dropped = 0
    for event in events:
        outcome = normalizer.feed(as_dict(event))
        out.extend(outcome.events)
        dropped += outcome.dropped
    return normalizer, out, dropped


def test_an_inbound_call_to_an_agent_gives_the_platform_events_in_order() -> None:
    normalizer, events, dropped = run(inbound_call_to_agent())
    assert [e.body for e in events] == [
        "call_created",
        "call_answered",
        "call_dtmf",
        "call_created",
        "call_ringing",
        "call_answered",
        "call_bridged",
        "recording_started",
        "call_held",
        "call_unheld",
        "recording_stopped",
        "call_unbridged",
        "call_hung_up",
        "call_hung_up",
    ]
    assert dropped == 0
    assert {e.tenant_id for e in events} == {"acme"}
    assert {e.call_id for e in events} == {A}
    assert len(normalizer.table) == 0


def test_the_a_leg_created_before_its_tenant_is_known_is_published_later_with_its_own_time() -> (
    None
):
    _, events, _ = run(inbound_call_to_agent()[:2])
    assert [e.body for e in events] == ["call_created"]
    created = events[0]
    assert created.time_us == T0
    assert created.message.direction == CallDirection.CALL_DIRECTION_INBOUND
    assert created.message.caller.number == "+33612345678"
    assert created.message.destination_number == "+33140000000"
    assert created.message.media_channel == MediaChannel.MEDIA_CHANNEL_PSTN


def test_hang_ups_say_cause_q850_side_role_and_durations() -> None:
    _, events, _ = run(inbound_call_to_agent())
    a_hup, b_hup = (e.message for e in events if e.body == "call_hung_up")
    assert (a_hup.cause, a_hup.q850_code, a_hup.side) == (
        "NORMAL_CLEARING",
        16,
        HangupSide.HANGUP_SIDE_CALLER,
    )
    assert (a_hup.duration_ms, a_hup.billsec_ms, a_hup.role) == (
        60000,
        59900,
        LegRole.LEG_ROLE_CUSTOMER,
    )
    # The agent's leg was ended by the switch because the caller hung up.
    assert b_hup.side == HangupSide.HANGUP_SIDE_CALLER
    assert b_hup.role == LegRole.LEG_ROLE_AGENT


def test_dtmf_duration_is_converted_from_8khz_samples_to_ms() -> None:
    _, events, _ = run(inbound_call_to_agent()[:4])
    dtmf = next(e.message for e in events if e.body == "call_dtmf")
    assert (dtmf.digit, dtmf.duration_ms, dtmf.source) == ("1", 250, DtmfSource.DTMF_SOURCE_RTP)


def test_recording_events_carry_path_cause_duration_and_the_id_given_with_the_command() -> None:
    normalizer = Normalizer()
    path = f"/var/lib/freeswitch/recordings/acme/{A}.wav"
    normalizer.recording_ids[path] = "rec-42"
    _, events, _ = run(inbound_call_to_agent(), normalizer)
    started = next(e.message for e in events if e.body == "recording_started")
    stopped = next(e.message for e in events if e.body == "recording_stopped")
    assert started.recording_id == stopped.recording_id == "rec-42"
    assert (stopped.path, stopped.duration_ms, stopped.completion_cause) == (path, 45980, "success")


def _b_leg_without_its_own_variables() -> list[list[tuple[str, str]]]:
    """A and B where only A names the tenant and B only points at A (Channel-Call-UUID)."""
    b: dict[str, Any] = {
        "direction": "outbound",
        "call_uuid": A,
        "channel_name": "sofia/internal/1001@x",
    }
    a_vars = {"callmesh_tenant": "acme"}
    return [
        channel("CHANNEL_CREATE", A, state="CS_INIT"),
        channel("CHANNEL_ANSWER", A, answered_us=T0 + 1, variables=a_vars),
        channel("CHANNEL_CREATE", B, **b),
        channel("CHANNEL_ANSWER", B, answered_us=T0 + 2, **b, other=("originator", A)),
        channel(
            "CHANNEL_BRIDGE",
            A,
            other=("originatee", B),
            extra={"Bridge-A-Unique-ID": A, "Bridge-B-Unique-ID": B},
            variables=a_vars,
        ),
        channel("DTMF", B, **b, extra={"DTMF-Digit": "5", "DTMF-Duration": "800"}),
    ]


@pytest.mark.parametrize("order", list(itertools.permutations(range(6))))
def test_legs_are_correlated_into_one_call_and_tenant_in_every_event_order(
    order: tuple[int, ...],
) -> None:
    events = _b_leg_without_its_own_variables()
    _, out, dropped = run([events[i] for i in order])
    assert dropped == 0
    assert {e.call_id for e in out} == {A}
    assert {e.tenant_id for e in out} == {"acme"}
    assert sorted(e.body for e in out) == sorted(
        [
            "call_created",
            "call_answered",
            "call_created",
            "call_answered",
            "call_bridged",
            "call_dtmf",
        ]
    )


def test_any_interleaving_of_the_legs_gives_the_same_events_for_one_call() -> None:
    # FreeSWITCH fires one channel's events in order from its own thread; across legs, any
    # interleaving can reach us.
    rng = random.Random(7)
    scenario = inbound_call_to_agent()
    a_events = [e for e in scenario if as_dict(e)["Unique-ID"] == A]
    b_events = [e for e in scenario if as_dict(e)["Unique-ID"] == B]
    _, expected, _ = run(scenario)
    for _ in range(300):
        slots = [0] * len(a_events) + [1] * len(b_events)
        rng.shuffle(slots)
        queues = [iter(a_events), iter(b_events)]
        _, out, dropped = run([next(queues[slot]) for slot in slots])
        assert dropped == 0
        assert {e.call_id for e in out} == {A}
        assert {e.tenant_id for e in out} == {"acme"}
        assert sorted(e.body for e in out) == sorted(e.body for e in expected)


def test_even_a_full_shuffle_never_names_another_call_or_tenant() -> None:
    rng = random.Random(11)
    scenario = inbound_call_to_agent()
    for _ in range(300):
        shuffled = scenario[:]
        rng.shuffle(shuffled)
        _, out, _ = run(shuffled)
        assert {e.call_id for e in out} <= {A}
        assert {e.tenant_id for e in out} <= {"acme"}
        assert sum(e.body == "call_hung_up" for e in out) <= 2


def test_the_call_id_variable_wins_over_the_leg_ids() -> None:
    _, out, _ = run(
        [
            channel(
                "CHANNEL_CREATE", A, variables={"callmesh_tenant": "t1", "callmesh_call_id": "c-9"}
            )
        ]
    )
    assert out[0].call_id == "c-9"


def test_events_of_a_channel_whose_tenant_is_never_known_are_dropped_and_counted() -> None:
    normalizer, out, dropped = run(
        [
            channel("CHANNEL_CREATE", A),
            channel("CHANNEL_ANSWER", A),
            channel("CHANNEL_HANGUP_COMPLETE", A, hangup_cause="NORMAL_CLEARING"),
        ]
    )
    assert out == []
    assert dropped == 3
    assert len(normalizer.table) == 0


def test_a_sip_domain_leg_asks_once_for_its_tenant_and_its_held_events_follow_in_order() -> None:
    normalizer = Normalizer()
    sip = {"domain_name": "acme.sip.callmesh.local", "user_name": "1001"}
    first = normalizer.feed(as_dict(channel("CHANNEL_CREATE", A, variables=sip)))
    second = normalizer.feed(as_dict(channel("CHANNEL_ANSWER", A, variables=sip)))
    assert first.ask_tenant is not None
    assert first.ask_tenant.sip_user == "1001"
    assert second.ask_tenant is None
    released = normalizer.tenant_found(A, "acme")
    assert [e.body for e in released] == ["call_created", "call_answered"]
    assert {e.tenant_id for e in released} == {"acme"}


def test_a_changed_transfer_source_is_a_blind_transfer() -> None:
    tv = {"callmesh_tenant": "acme"}
    _, out, _ = run(
        [
            channel("CHANNEL_CREATE", A, variables=tv),
            channel(
                "CHANNEL_EXECUTE",
                A,
                destination="2000",
                transfer_source="1763800000:abc:uuid_br:2000/callmesh/XML",
                variables=tv,
            ),
        ]
    )
    transferred = [e.message for e in out if e.body == "call_transferred"]
    assert len(transferred) == 1
    assert (transferred[0].destination, transferred[0].dialplan, transferred[0].context) == (
        "2000",
        "XML",
        "public",
    )


@pytest.mark.parametrize(
    ("headers", "kind"),
    [
        ({"Unique-ID": A}, "malformed"),
        ({"Event-Name": "CHANNEL_ANSWER"}, "malformed"),
        ({"Event-Name": "SOMETHING_NEW", "Unique-ID": A}, "unknown"),
        ({"Event-Name": "CUSTOM", "Event-Subclass": "sofia::register"}, "registration"),
        ({"Event-Name": "CUSTOM", "Event-Subclass": "conference::maintenance"}, "conference"),
        ({"Event-Name": "CUSTOM", "Event-Subclass": "vendor::thing"}, "unknown"),
        ({"Event-Name": "BACKGROUND_JOB", "Job-UUID": "j"}, "job"),
        ({"Event-Name": "HEARTBEAT"}, "ignored"),
    ],
)
def test_events_that_are_not_call_events_say_what_they_are(
    headers: dict[str, str], kind: str
) -> None:
    assert Normalizer().feed(headers).kind == kind


def test_a_rebuild_adopts_unknown_channels_and_ends_vanished_ones_with_a_system_hangup() -> None:
    normalizer, _, _ = run(inbound_call_to_agent()[:8])
    assert len(normalizer.table) == 2
    other = "11111111-2222-3333-4444-555555555555"
    added, events = normalizer.sync({A: "", other: ""}, T0 + 99)
    assert [leg.uuid for leg in added] == [other]
    assert [(e.body, e.channel_uuid, e.call_id) for e in events] == [("call_hung_up", B, A)]
    assert events[0].message.side == HangupSide.HANGUP_SIDE_SYSTEM
    # An ended leg named again by a late snapshot is not brought back.
    added, _ = normalizer.sync({A: "", other: "", B: A}, T0 + 100)
    assert added == []
    assert B not in normalizer.table


@pytest.mark.parametrize(
    ("role", "direction", "disposition", "cause", "partner", "side"),
    [
        (LegRole.LEG_ROLE_CUSTOMER, "inbound", "recv_bye", "NORMAL_CLEARING", 0, "CALLER"),
        (LegRole.LEG_ROLE_AGENT, "outbound", "recv_bye", "NORMAL_CLEARING", 0, "AGENT"),
        (LegRole.LEG_ROLE_SUPERVISOR, "outbound", "recv_bye", "NORMAL_CLEARING", 0, "SUPERVISOR"),
        (LegRole.LEG_ROLE_UNSPECIFIED, "outbound", "recv_refuse", "CALL_REJECTED", 0, "CALLEE"),
        (LegRole.LEG_ROLE_CUSTOMER, "inbound", "recv_cancel", "ORIGINATOR_CANCEL", 0, "CALLER"),
        (LegRole.LEG_ROLE_AGENT, "outbound", "send_bye", "NORMAL_CLEARING", 1, "CALLER"),
        (LegRole.LEG_ROLE_CUSTOMER, "inbound", "send_bye", "NORMAL_CLEARING", 0, "SYSTEM"),
        (LegRole.LEG_ROLE_CUSTOMER, "inbound", "send_refuse", "NO_ROUTE_DESTINATION", 0, "SYSTEM"),
        (LegRole.LEG_ROLE_AGENT, "outbound", "", "NO_ANSWER", 0, "AGENT"),
        (LegRole.LEG_ROLE_CUSTOMER, "inbound", "", "ORIGINATOR_CANCEL", 0, "CALLER"),
        (LegRole.LEG_ROLE_CUSTOMER, "inbound", "", "MANAGER_REQUEST", 0, "SYSTEM"),
        (LegRole.LEG_ROLE_CUSTOMER, "inbound", "", "NORMAL_CLEARING", 0, "UNSPECIFIED"),
    ],
)
def test_who_hung_up_comes_from_the_sip_disposition_the_role_and_the_cause(
    role: int, direction: str, disposition: str, cause: str, partner: int, side: str
) -> None:
    assert hangup_side(role, direction, disposition, cause, partner) == getattr(
        HangupSide, f"HANGUP_SIDE_{side}"
    )


def test_q850_codes_come_from_the_switch_else_the_cause_chart() -> None:
    assert q850_code("USER_BUSY") == 17
    assert q850_code("NO_ANSWER", "19") == 19
    assert q850_code("ORIGINATOR_CANCEL") == 16  # FreeSWITCH's own causes report as 16
    assert q850_code("") == 0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Channel-Name": "sofia/external/+331@carrier"}, MediaChannel.MEDIA_CHANNEL_PSTN),
        ({"Channel-Name": "sofia/internal/1001@acme"}, MediaChannel.MEDIA_CHANNEL_SIP),
        (
            {"Channel-Name": "sofia/internal/1001@acme", "variable_sip_via_protocol": "wss"},
            MediaChannel.MEDIA_CHANNEL_WEB,
        ),
        ({"Channel-Name": "loopback/1000-a"}, MediaChannel.MEDIA_CHANNEL_UNSPECIFIED),
    ],
)
def test_the_media_channel_comes_from_the_sofia_profile_and_transport(
    headers: dict[str, str], expected: int
) -> None:
    assert media_channel(headers) == expected


def test_created_events_carry_only_the_platform_variables() -> None:
    _, out, _ = run(
        [
            channel(
                "CHANNEL_CREATE",
                A,
                variables={
                    "callmesh_tenant": "acme",
                    "callmesh_queue": "sales",
                    "callmesh_api_secret": "x",
                    "sip_auth_password": "y",
                },
            )
        ]
    )
    assert dict(out[0].message.variables) == {"callmesh_tenant": "acme", "callmesh_queue": "sales"}


def test_the_table_counts_live_legs_per_tenant_and_calls() -> None:
    normalizer, _, _ = run(inbound_call_to_agent()[:8])
    table: ChannelTable = normalizer.table
    assert table.live_by_tenant() == {"acme": 2}
    assert table.calls() == 1


def test_a_leg_seen_after_the_snapshot_was_asked_for_is_not_ended_by_it() -> None:
    # The switch's answer to "show channels" can be older than events read just after it.
    normalizer, _, _ = run(inbound_call_to_agent()[:2])
    since = normalizer.table.begin_snapshot()
    run(inbound_call_to_agent()[4:6], normalizer)  # the agent's leg appears meanwhile
    added, events = normalizer.sync({A: ""}, T0, since)
    assert added == []
    assert events == []
    assert B in normalizer.table
    # A later snapshot that still lacks it does end it.
    later = normalizer.table.begin_snapshot()
    _, events = normalizer.sync({A: ""}, T0, later)
    assert [e.channel_uuid for e in events] == [B]
