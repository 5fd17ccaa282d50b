"""The call record: built from a call's events, the same whatever their order or repetitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callmesh.core.errors import DomainError
from callmesh.cti.domain.journal import (
    MAX_FACTS,
    CallFacts,
    Fact,
    FactKind,
    JournalFull,
    Outcome,
    build_record,
)

K = FactKind
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TENANT, CALL = "acme", "call-1"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Script:
    """Facts of one call, with ids in the order written (not the order they take effect)."""

    def __init__(self) -> None:
        self.facts: list[Fact] = []

    def add(self, seconds: float, kind: FactKind, /, **data: Any) -> Script:
        self.facts.append(Fact(f"ev-{len(self.facts):03d}", at(seconds), kind, data))
        return self


def answered_call() -> list[Fact]:
    """Inbound: IVR, queue, first agent does not answer, second does; hold, recording, hang-up."""
    s = Script()
    s.add(0, K.CALL_CREATED, channel_uuid="a", direction="inbound", role="customer",
          caller_number="+33611111111", caller_name="Ann", callee_number="+33140000000",
          destination_number="+33140000000")  # fmt: skip
    s.add(0, K.CALL_ANSWERED, channel_uuid="a", role="customer")  # same instant: tie on time
    s.add(0.5, K.IVR_NODE_ENTERED, flow_id="main", flow_version=3, node_id="welcome")
    s.add(2, K.IVR_NODE_ENTERED, flow_id="main", flow_version=3, node_id="menu")
    s.add(4, K.IVR_INPUT_RECEIVED, flow_id="main", node_id="menu", input="2")
    s.add(4, K.IVR_VARIABLE_SET, flow_id="main", node_id="menu", name="lang", value="fr")
    s.add(5, K.IVR_VARIABLE_SET, flow_id="main", node_id="menu", name="lang", value="en")
    s.add(5, K.IVR_FLOW_LEFT, flow_id="main", flow_version=3, outcome="queued",
          duration_ms=4500, last_node_id="to-sales")  # fmt: skip
    s.add(5, K.QUEUE_ENTERED, queue_id="sales", priority=5, data={"order": "A-17"})
    s.add(6, K.AGENT_OFFERED, agent_id="ag-1", queue_id="sales", attempt=1)
    s.add(21, K.AGENT_NO_ANSWER, agent_id="ag-1", queue_id="sales", reason="timeout", ring_ms=15000)
    s.add(22, K.AGENT_OFFERED, agent_id="ag-2", queue_id="sales", attempt=2)
    s.add(22, K.CALL_CREATED, channel_uuid="b", direction="outbound", role="agent",
          caller_number="+33611111111", callee_number="1002", destination_number="1002",
          endpoint="user/1002@acme")  # fmt: skip
    s.add(22.5, K.CALL_RINGING, channel_uuid="b")
    s.add(25, K.CALL_ANSWERED, channel_uuid="b", role="agent")
    s.add(25, K.AGENT_ANSWERED, agent_id="ag-2", queue_id="sales", ring_ms=3000)
    s.add(25, K.QUEUE_LEFT, queue_id="sales", reason="answered", wait_ms=20000, agent_id="ag-2")
    s.add(25.1, K.CALL_BRIDGED, a_channel_uuid="a", b_channel_uuid="b")
    s.add(26, K.RECORDING_STARTED, channel_uuid="a", recording_id="rec-1", path="/r/1.wav")
    s.add(40, K.CALL_HELD, channel_uuid="a")
    s.add(50, K.CALL_UNHELD, channel_uuid="a")
    s.add(60, K.CALL_HUNG_UP, channel_uuid="a", cause="NORMAL_CLEARING", q850_code=16,
          side="caller", duration_ms=60000, billsec_ms=60000, role="customer")  # fmt: skip
    s.add(60, K.CALL_UNBRIDGED, a_channel_uuid="a", b_channel_uuid="b")
    s.add(60.2, K.RECORDING_STOPPED, channel_uuid="a", recording_id="rec-1", media_id="m-1",
          duration_ms=34000)  # fmt: skip
    s.add(60.3, K.CALL_HUNG_UP, channel_uuid="b", cause="NORMAL_CLEARING", q850_code=16,
          side="caller", role="agent")  # fmt: skip
    return s.facts


ANSWERED = answered_call()
REFERENCE = build_record(TENANT, CALL, ANSWERED)


def test_an_answered_call_has_every_timestamp_and_party() -> None:
    rec = REFERENCE
    assert rec.outcome == Outcome.ANSWERED
    assert rec.direction == "inbound"
    assert (rec.caller.number, rec.caller.name) == ("+33611111111", "Ann")
    assert rec.dialled == "+33140000000"
    assert rec.started_at == rec.created_at == at(0)
    assert rec.answered_at == at(0)
    assert rec.agent_answered_at == at(25)
    assert rec.bridged_at == at(25.1)
    assert rec.ended_at == at(60.3)
    assert rec.answered_by == "ag-2"
    assert rec.agent_ids == ["ag-1", "ag-2"]
    assert rec.queue_ids == ["sales"]
    assert rec.recording_ids == ["rec-1"]
    assert rec.numbers == ["+33140000000", "+33611111111", "1002"]
    assert rec.data == {"lang": "en", "order": "A-17"}
    assert rec.duration_ms == 60300
    assert rec.talk_ms == 35300
    assert rec.queue_wait_ms == 20000
    assert rec.event_count == len(ANSWERED)
    assert [e.event_id for e in rec.timeline][:2] == ["ev-000", "ev-001"]


def test_an_answered_call_keeps_its_ivr_queue_offers_holds_and_hangup() -> None:
    rec = REFERENCE
    (ivr,) = rec.ivr
    assert (ivr.flow_id, ivr.flow_version, ivr.outcome, ivr.last_node_id) == (
        "main", 3, "queued", "to-sales",
    )  # fmt: skip
    assert (ivr.entered_at, ivr.left_at) == (at(0.5), at(5))
    (queue,) = rec.queues
    assert (queue.entered_at, queue.left_at, queue.reason) == (at(5), at(25), "answered")
    assert [(o.agent_id, o.result, o.reason, o.ring_ms) for o in rec.offers] == [
        ("ag-1", "no_answer", "timeout", 15000),
        ("ag-2", "answered", "", 3000),
    ]
    assert [(h.held_at, h.unheld_at) for h in rec.holds] == [(at(40), at(50))]
    assert [(b.bridged_at, b.unbridged_at) for b in rec.bridges] == [(at(25.1), at(60))]
    assert rec.hangup is not None
    assert (rec.hangup.channel_uuid, rec.hangup.side, rec.hangup.q850) == ("a", "caller", 16)
    legs = {leg.uuid: leg for leg in rec.legs}
    assert [leg.uuid for leg in rec.legs] == ["a", "b"]
    assert legs["b"].role == "agent"
    assert legs["b"].endpoint == "user/1002@acme"
    assert (legs["b"].ringing_at, legs["b"].answered_at) == (at(22.5), at(25))
    (rec1,) = rec.recordings
    assert (rec1.media_id, rec1.duration_ms, rec1.started_at) == ("m-1", 34000, at(26))


@settings(max_examples=200, deadline=None, database=None)
@given(order=st.permutations(ANSWERED), repeats=st.lists(st.sampled_from(ANSWERED), max_size=10))
def test_any_order_and_any_repetition_of_the_events_gives_the_same_record(
    order: list[Fact], repeats: list[Fact]
) -> None:
    assert build_record(TENANT, CALL, [*order, *repeats]) == REFERENCE


@settings(max_examples=100, deadline=None, database=None)
@given(order=st.permutations(ANSWERED), data=st.data())
def test_applying_one_event_at_a_time_reaches_the_same_record_and_a_repeat_changes_nothing(
    order: list[Fact], data: st.DataObject
) -> None:
    facts = CallFacts()
    for fact in order:
        assert facts.add(fact) is True
        again = data.draw(st.sampled_from(facts.ordered()))
        before = build_record(TENANT, CALL, facts)
        assert facts.add(again) is False
        assert build_record(TENANT, CALL, facts) == before
    assert build_record(TENANT, CALL, facts) == REFERENCE


@settings(max_examples=50, deadline=None, database=None)
@given(order=st.permutations(ANSWERED), cut=st.integers(min_value=1, max_value=len(ANSWERED)))
def test_any_subset_of_the_events_gives_a_record_independent_of_their_order(
    order: list[Fact], cut: int
) -> None:
    subset = order[:cut]
    assert build_record(TENANT, CALL, subset) == build_record(TENANT, CALL, reversed(subset))
    assert build_record(TENANT, CALL, subset) == build_record(
        TENANT, CALL, sorted(subset, key=lambda f: f.event_id)
    )


def test_two_different_events_under_one_id_keep_the_same_one_in_either_order() -> None:
    first = Fact("dup", at(1), K.CALL_HELD, {"channel_uuid": "a"})
    other = Fact("dup", at(2), K.CALL_UNHELD, {"channel_uuid": "a"})
    one, two = CallFacts([first, other]), CallFacts([other, first])
    assert one.ordered() == two.ordered() == [first]


def test_a_call_still_up_is_in_progress() -> None:
    rec = build_record(TENANT, CALL, ANSWERED[:20])
    assert rec.outcome == Outcome.IN_PROGRESS
    assert rec.ended_at is None
    assert rec.duration_ms == 0


def test_a_call_whose_first_event_is_not_its_creation_starts_at_its_earliest_event() -> None:
    rec = build_record(TENANT, CALL, [f for f in ANSWERED if f.kind is not K.CALL_CREATED])
    assert rec.started_at == at(0)
    assert rec.created_at is None


def created(s: Script, direction: str = "inbound") -> Script:
    return s.add(0, K.CALL_CREATED, channel_uuid="a", direction=direction, role="customer",
                 caller_number="+1555000", destination_number="+1800000")  # fmt: skip


def hung_up(
    s: Script, seconds: float, cause: str = "NORMAL_CLEARING", side: str = "caller"
) -> Script:
    return s.add(seconds, K.CALL_HUNG_UP, channel_uuid="a", cause=cause, side=side)


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        pytest.param(
            lambda s: hung_up(
                created(s)
                .add(0, K.CALL_ANSWERED, channel_uuid="a")
                .add(1, K.QUEUE_ENTERED, queue_id="q")
                .add(30, K.QUEUE_LEFT, queue_id="q", reason="abandoned", wait_ms=29000),
                30,
            ),
            Outcome.ABANDONED_QUEUE,
            id="caller gives up in the queue",
        ),
        pytest.param(
            lambda s: hung_up(
                created(s)
                .add(0, K.CALL_ANSWERED, channel_uuid="a")
                .add(1, K.QUEUE_ENTERED, queue_id="q"),
                30,
            ),
            Outcome.ABANDONED_QUEUE,
            id="hang-up while queued, before acd says so",
        ),
        pytest.param(
            lambda s: hung_up(
                created(s)
                .add(0, K.CALL_ANSWERED, channel_uuid="a")
                .add(1, K.IVR_NODE_ENTERED, flow_id="f", node_id="menu"),
                9,
            ),
            Outcome.ABANDONED_IVR,
            id="caller gives up in the IVR",
        ),
        pytest.param(
            lambda s: hung_up(
                created(s)
                .add(0, K.CALL_ANSWERED, channel_uuid="a")
                .add(1, K.IVR_NODE_ENTERED, flow_id="f", node_id="info")
                .add(8, K.IVR_FLOW_LEFT, flow_id="f", outcome="completed"),
                9,
                side="system",
            ),
            Outcome.IVR_COMPLETED,
            id="self-service completed",
        ),
        pytest.param(
            lambda s: hung_up(
                created(s)
                .add(0, K.CALL_ANSWERED, channel_uuid="a")
                .add(1, K.QUEUE_ENTERED, queue_id="q")
                .add(61, K.QUEUE_OVERFLOWED, queue_id="q", target="voicemail", wait_ms=60000),
                90,
            ),
            Outcome.VOICEMAIL,
            id="overflow to voicemail",
        ),
        pytest.param(
            lambda s: hung_up(
                created(s)
                .add(0, K.CALL_ANSWERED, channel_uuid="a")
                .add(1, K.IVR_FLOW_LEFT, flow_id="f", outcome="transferred", duration_ms=1000)
                .add(1, K.CALL_TRANSFERRED, channel_uuid="a", kind="blind", destination="+4411"),
                40,
            ),
            Outcome.TRANSFERRED,
            id="transferred out by the IVR",
        ),
        pytest.param(
            lambda s: hung_up(created(s, "outbound"), 3, cause="USER_BUSY", side="callee"),
            Outcome.BUSY,
            id="outbound busy",
        ),
        pytest.param(
            lambda s: hung_up(created(s, "outbound"), 30, cause="NO_ANSWER", side="callee"),
            Outcome.NO_ANSWER,
            id="outbound no answer",
        ),
        pytest.param(
            lambda s: hung_up(created(s), 5, cause="ORIGINATOR_CANCEL"),
            Outcome.ABANDONED,
            id="inbound caller hangs up while ringing",
        ),
        pytest.param(
            lambda s: hung_up(created(s, "outbound"), 1, cause="UNALLOCATED_NUMBER", side="callee"),
            Outcome.FAILED,
            id="outbound to a number that does not exist",
        ),
        pytest.param(
            lambda s: hung_up(created(s, "outbound").add(5, K.CALL_ANSWERED, channel_uuid="a"), 60),
            Outcome.ANSWERED,
            id="outbound answered, no agent involved",
        ),
        pytest.param(
            lambda s: hung_up(
                created(s)
                .add(0, K.CALL_ANSWERED, channel_uuid="a")
                .add(1, K.IVR_FLOW_LEFT, flow_id="f", outcome="blocked"),
                2,
                side="system",
            ),
            Outcome.BLOCKED,
            id="blocked caller",
        ),
    ],
)
def test_each_way_a_call_can_end_has_its_outcome(build: Any, expected: Outcome) -> None:
    facts = build(Script()).facts
    assert build_record(TENANT, CALL, facts).outcome == expected
    assert build_record(TENANT, CALL, reversed(facts)).outcome == expected


def test_an_overflow_then_left_event_is_one_queue_stay_whatever_their_order() -> None:
    s = created(Script()).add(1, K.QUEUE_ENTERED, queue_id="q")
    s.add(61, K.QUEUE_OVERFLOWED, queue_id="q", target="queue", target_id="q2", wait_ms=60000)
    s.add(61, K.QUEUE_LEFT, queue_id="q", reason="overflowed", wait_ms=60000)
    s.add(61, K.QUEUE_ENTERED, queue_id="q2")
    for order in (s.facts, list(reversed(s.facts))):
        rec = build_record(TENANT, CALL, order)
        assert [(q.queue_id, q.reason, q.overflow_target_id) for q in rec.queues] == [
            ("q", "overflowed", "q2"),
            ("q2", "", ""),
        ]


def test_a_left_event_without_its_entry_still_knows_when_the_caller_entered() -> None:
    s = created(Script()).add(30, K.QUEUE_LEFT, queue_id="q", reason="abandoned", wait_ms=20000)
    (queue,) = build_record(TENANT, CALL, s.facts).queues
    assert queue.entered_at == at(10)


def test_a_call_refuses_events_beyond_its_limit() -> None:
    facts = CallFacts(Fact(f"e{i}", at(i), K.CALL_HELD, {}) for i in range(MAX_FACTS))
    with pytest.raises(JournalFull) as refused:
        facts.add(Fact("one-more", at(0), K.CALL_HELD, {}))
    assert isinstance(refused.value, DomainError)
    assert facts.add(Fact("e1", at(1), K.CALL_HELD, {})) is False  # held ones are still no-ops


def test_legs_hung_up_in_the_same_instant_report_the_customers_hang_up() -> None:
    s = created(Script()).add(0, K.CALL_CREATED, channel_uuid="b", role="agent")
    s.add(9, K.CALL_HUNG_UP, channel_uuid="b", cause="NORMAL_CLEARING", side="system")
    s.add(9, K.CALL_HUNG_UP, channel_uuid="a", cause="NORMAL_CLEARING", side="system")
    for order in (s.facts, list(reversed(s.facts))):
        hangup = build_record(TENANT, CALL, order).hangup
        assert hangup is not None
        assert hangup.channel_uuid == "a"


def test_a_record_needs_at_least_one_event() -> None:
    with pytest.raises(ValueError, match="facts"):
        build_record(TENANT, CALL, [])
