"""What the journal takes from each bus event, and how its searches and cursors are written."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from callmesh.core.errors import InvalidInput
from callmesh.cti.adapters.journal_bus import JOURNAL_EVENTS, MAX_TEXT, fact_of
from callmesh.cti.adapters.journal_store import (
    CallQuery,
    _after,
    _cursor,
    check_query,
    fact_doc,
    fact_of_doc,
    search_filter,
)
from callmesh.cti.domain.journal import CallSummary, Fact, FactKind, Outcome
from callmesh.proto.subjects import EVENTS, Domain
from callmesh.proto.v1 import agent_pb2, call_pb2, common_pb2, ivr_pb2, queue_pb2
from callmesh.proto.v1.event_pb2 import Event

T = datetime(2026, 3, 1, 9, 0, 0, 123000, tzinfo=UTC)


def event(body: str = "call_held", **envelope: str) -> Event:
    ev = Event(
        event_id=envelope.get("event_id", "ev-1"),
        tenant_id=envelope.get("tenant_id", "acme"),
        call_id=envelope.get("call_id", "call-1"),
    )
    ev.time.FromDatetime(T)
    getattr(ev, body).SetInParent()
    return ev


def test_every_event_the_journal_subscribes_to_becomes_a_fact() -> None:
    for domain, names in JOURNAL_EVENTS.items():
        for name in names:
            (body,) = [b for b, k in EVENTS.items() if k.domain == domain and k.name == name]
            tenant, call, fact = fact_of(event(body))
            assert (tenant, call, fact.event_id, fact.at) == ("acme", "call-1", "ev-1", T)
            assert fact.kind.value == f"{domain}.{name}"


def test_the_journal_skips_digits_positions_and_agent_states() -> None:
    assert "dtmf" not in JOURNAL_EVENTS[Domain.CALL]
    assert "position_changed" not in JOURNAL_EVENTS[Domain.QUEUE]
    assert "state_changed" not in JOURNAL_EVENTS[Domain.AGENT]


def test_a_hang_up_keeps_cause_code_side_and_role_as_words() -> None:
    ev = event("call_hung_up")
    h = ev.call_hung_up
    h.channel_uuid, h.cause, h.q850_code, h.billsec_ms = "a", "USER_BUSY", 17, 0
    h.side, h.role = call_pb2.HANGUP_SIDE_CALLEE, common_pb2.LEG_ROLE_CUSTOMER
    fact = fact_of(ev)[2]
    assert fact.kind is FactKind.CALL_HUNG_UP
    assert fact.data["cause"] == "USER_BUSY"
    assert fact.data["q850_code"] == 17
    assert (fact.data["side"], fact.data["role"]) == ("callee", "customer")


def test_enums_become_lower_case_words_and_unspecified_becomes_empty() -> None:
    ev = event("queue_left")
    ev.queue_left.reason = queue_pb2.QUEUE_LEAVE_REASON_ABANDONED
    assert fact_of(ev)[2].data["reason"] == "abandoned"
    ev = event("ivr_flow_left")
    ev.ivr_flow_left.outcome = ivr_pb2.IVR_OUTCOME_CALLER_HUNG_UP
    assert fact_of(ev)[2].data["outcome"] == "caller_hung_up"
    ev = event("agent_no_answer")
    assert fact_of(ev)[2].data["reason"] == ""
    ev.agent_no_answer.reason = agent_pb2.NO_ANSWER_REASON_REJECTED
    assert fact_of(ev)[2].data["reason"] == "rejected"


def test_an_enum_value_from_a_newer_schema_is_kept_as_its_number() -> None:
    ev = event("call_created")
    ev.call_created.direction = 42  # type: ignore[assignment]
    assert fact_of(ev)[2].data["direction"] == "42"


def test_long_texts_and_big_maps_are_cut_to_size() -> None:
    ev = event("call_created")
    ev.call_created.caller.name = "x" * 10_000
    for i in range(500):
        ev.call_created.variables[f"v{i:03d}"] = "y"
    data = fact_of(ev)[2].data
    assert len(data["caller_name"]) == MAX_TEXT
    assert len(data["variables"]) == 64


@pytest.mark.parametrize(
    ("envelope", "field"),
    [
        ({"tenant_id": ""}, "tenant_id"),
        ({"tenant_id": "Not A Tenant"}, "tenant_id"),
        ({"call_id": ""}, "call_id"),
        ({"call_id": "x" * 129}, "call_id"),
        ({"call_id": "bad\nid"}, "call_id"),
        ({"event_id": ""}, "event_id"),
    ],
)
def test_an_event_without_a_usable_envelope_is_refused_naming_the_field(
    envelope: dict[str, str], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        fact_of(event(**envelope))
    assert refused.value.field == field


def test_an_event_without_a_time_or_of_a_kind_the_journal_does_not_read_is_refused() -> None:
    ev = event()
    ev.ClearField("time")
    with pytest.raises(InvalidInput, match="time"):
        fact_of(ev)
    with pytest.raises(InvalidInput, match="body"):
        fact_of(event("call_dtmf"))


def test_a_fact_survives_its_stored_form_even_with_dotted_map_keys() -> None:
    fact = Fact("e1", T, FactKind.QUEUE_ENTERED, {"queue_id": "q", "data": {"a.b": "1", "$x": "2"}})
    stored = fact_doc(fact)
    assert stored["data"]["data"] == {"pairs": [{"k": "a.b", "v": "1"}, {"k": "$x", "v": "2"}]}
    assert fact_of_doc(stored) == fact
    assert fact_of_doc({**stored, "kind": "call.teleported"}) is None


def test_a_cursor_names_the_last_call_and_the_next_page_starts_below_it() -> None:
    cursor = _cursor(CallSummary(call_id="c-9", started_at=T))
    assert _after(cursor) == (T, "c-9")
    flt = search_filter(CallQuery(after=cursor))
    assert flt["$or"] == [
        {"started_at": {"$lt": T}},
        {"started_at": T, "call_id": {"$lt": "c-9"}},
    ]


@pytest.mark.parametrize("cursor", ["", "!!!", "bm90IGpzb24", "WzEsMiwzXQ", "Wy0xLCJ4Il0"])
def test_a_cursor_not_made_by_the_journal_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        _after(cursor)
    assert refused.value.field == "after"


def test_a_search_uses_the_numbers_index_for_caller_and_callee_too() -> None:
    assert search_filter(CallQuery(caller="+1")) == {"numbers": "+1", "caller.number": "+1"}
    flt = search_filter(
        CallQuery(number="+2", callee="+1", agent="a", queue="q", outcome=Outcome.BUSY)
    )
    assert flt == {
        "numbers": {"$all": ["+1", "+2"]},
        "callee.number": "+1",
        "agent_ids": "a",
        "queue_ids": "q",
        "outcome": "busy",
    }
    window = search_filter(CallQuery(since=T, direction="inbound"))
    assert window == {"started_at": {"$gte": T}, "direction": "inbound"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (CallQuery(limit=0), "limit"),
        (CallQuery(limit=501), "limit"),
        (CallQuery(since=T, until=T), "from"),
    ],
)
def test_a_search_that_cannot_be_answered_is_refused_naming_the_parameter(
    query: CallQuery, field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_query(query)
    assert refused.value.field == field
