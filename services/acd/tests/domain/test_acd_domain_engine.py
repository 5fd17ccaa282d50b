"""Every state transition and routing rule of the engine, one by one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from callmesh.acd.domain.config import (
    AgentProfile,
    AgentStrategy,
    Announcements,
    CallOrder,
    GroupConfig,
    OverflowKind,
    OverflowReason,
    OverflowTarget,
    QueueConfig,
    RequirementStep,
    RingMode,
    StickyConfig,
    TenantAcdConfig,
)
from callmesh.acd.domain.effects import (
    AcdRefused,
    AgentNoAnswer,
    AgentState,
    AgentStateChanged,
    CallLeftQueue,
    CallOverflowed,
    CallPositionChanged,
    ConnectAgent,
    Effect,
    LeaveReason,
    NoAnswerReason,
    PlayToCaller,
    RingAgent,
    RouteOverflow,
    StopReason,
    StopRinging,
)
from callmesh.acd.domain.engine import AcdEngine, CallRequest
from callmesh.core.errors import InvalidInput

T0 = 1_700_000_000.0


def profile(agent_id: str, **kw: Any) -> AgentProfile:
    return AgentProfile(agent_id, endpoint=f"user:{agent_id}", **kw)


def engine_with(
    queues: Sequence[QueueConfig],
    agents: Sequence[AgentProfile],
    **kw: Any,
) -> AcdEngine:
    config = TenantAcdConfig(
        "acme",
        queues={q.queue_id: q for q in queues},
        agents={a.agent_id: a for a in agents},
        **kw,
    )
    return AcdEngine(config, seed=7)


def of(effects: list[Effect], kind: type[Any]) -> list[Any]:
    return [e for e in effects if isinstance(e, kind)]


def rung(effects: list[Effect]) -> list[str]:
    return [e.agent_id for e in of(effects, RingAgent)]


def enqueue(
    e: AcdEngine, call_id: str, queue: str = "q", at: float = T0, **kw: Any
) -> list[Effect]:
    return e.enqueue(CallRequest(call_id, queue, **kw), at)


def answer(e: AcdEngine, call_id: str, at: float) -> list[Effect]:
    ((offer_id, agent_id),) = e.offer_of_call(call_id)
    return e.offer_answered(offer_id, agent_id, at)


# -- agent state machine ----------------------------------------------------------------------


def test_login_goes_not_ready_or_ready_and_needs_a_profile_and_an_endpoint() -> None:
    e = engine_with([QueueConfig("q")], [profile("a"), AgentProfile("b")])
    changes = of(e.login("a", T0), AgentStateChanged)
    assert changes[-1].to_state is AgentState.NOT_READY
    assert e.agent_state("a") is AgentState.NOT_READY
    with pytest.raises(AcdRefused) as unknown:
        e.login("zz", T0)
    assert unknown.value.code == "unknown_agent"
    with pytest.raises(InvalidInput) as no_endpoint:
        e.login("b", T0)
    assert no_endpoint.value.field == "endpoint"
    e.login("b", T0, endpoint="user:b", ready=True)
    assert e.agent_state("b") is AgentState.READY


def test_full_cycle_reserved_ringing_on_call_wrap_up_ready() -> None:
    e = engine_with([QueueConfig("q", wrap_up_s=10)], [profile("a")])
    e.login("a", T0, ready=True)
    effects = enqueue(e, "c1", at=T0 + 1)
    assert rung(effects) == ["a"]
    assert e.agent_state("a") is AgentState.RESERVED
    ((offer_id, _),) = e.offer_of_call("c1")
    e.offer_ringing(offer_id, "a", T0 + 2)
    assert e.agent_state("a") is AgentState.RINGING
    effects = e.offer_answered(offer_id, "a", T0 + 3)
    assert of(effects, ConnectAgent)[0].agent_id == "a"
    left = of(effects, CallLeftQueue)[0]
    assert (left.reason, left.wait_s, left.agent_id) == (LeaveReason.ANSWERED, 2.0, "a")
    assert e.agent_state("a") is AgentState.ON_CALL
    e.call_ended("c1", T0 + 60)
    assert e.agent_state("a") is AgentState.AFTER_CALL_WORK
    assert e.next_deadline() == T0 + 70
    e.tick(T0 + 70)
    assert e.agent_state("a") is AgentState.READY
    view = e.agent_view("a", T0 + 70)
    assert (view.calls_today, view.talk_s_today) == (1, 57.0)


def test_end_wrap_up_early_and_refused_outside_wrap_up() -> None:
    e = engine_with([QueueConfig("q", wrap_up_s=30)], [profile("a")])
    e.login("a", T0, ready=True)
    enqueue(e, "c1")
    answer(e, "c1", T0 + 1)
    e.call_ended("c1", T0 + 5)
    e.end_wrap_up("a", T0 + 6)
    assert e.agent_state("a") is AgentState.READY
    with pytest.raises(AcdRefused):
        e.end_wrap_up("a", T0 + 7)
    e.tick(T0 + 40)  # the stale wrap-up timer changes nothing
    assert e.agent_state("a") is AgentState.READY


def test_not_ready_during_a_call_applies_when_the_call_ends() -> None:
    e = engine_with([QueueConfig("q")], [profile("a")])
    e.login("a", T0, ready=True)
    enqueue(e, "c1")
    answer(e, "c1", T0 + 1)
    e.set_not_ready("a", "training", T0 + 2)
    assert e.agent_state("a") is AgentState.ON_CALL
    e.call_ended("c1", T0 + 30)
    assert e.agent_view("a", T0 + 30).reason == "training"
    assert e.agent_state("a") is AgentState.NOT_READY


def test_break_limited_per_group_unless_forced_and_never_on_a_call() -> None:
    e = engine_with(
        [QueueConfig("q")],
        [profile(x, groups=("day",)) for x in "abc"],
        groups={"day": GroupConfig("day", max_on_break=1)},
    )
    for x in "abc":
        e.login(x, T0)
    e.request_break("a", "lunch", T0)
    with pytest.raises(AcdRefused) as refused:
        e.request_break("b", "lunch", T0)
    assert "1 of group 'day' already on break, the maximum is 1" in refused.value.message
    e.request_break("b", "lunch", T0, by="sup", forced=True)
    assert e.agent_state("b") is AgentState.BREAK
    e.set_ready("c", T0)
    enqueue(e, "c1")
    with pytest.raises(AcdRefused):
        e.request_break("c", "lunch", T0)


def test_forced_logout_during_offer_puts_the_call_back_at_the_head() -> None:
    e = engine_with([QueueConfig("q")], [profile("a"), profile("b")])
    e.login("a", T0, ready=True)
    enqueue(e, "c1", at=T0 + 1)
    enqueue(e, "c2", at=T0 + 2)
    effects = e.logout("a", T0 + 3, reason="supervisor", forced_by="sup")
    assert of(effects, StopRinging)[0].reason is StopReason.AGENT_LOGGED_OUT
    e.login("b", T0 + 4, ready=True)
    assert e.offer_of_call("c1")[0][1] == "b"  # c1 first, though c2 was never offered


def test_temporary_skills_revert_at_logout_and_profile_changes_apply_at_once() -> None:
    q = QueueConfig("q", skill="vip")
    e = engine_with([q], [profile("a", skills={"basic": 3})])
    e.login("a", T0, ready=True)
    enqueue(e, "c1")
    assert e.offer_of_call("c1") == []
    e.set_skills("a", {"vip": 2}, T0 + 1, temporary=True)
    assert e.offer_of_call("c1")[0][1] == "a"
    e.logout("a", T0 + 2)
    e.login("a", T0 + 3)
    assert e.agent_view("a", T0 + 3).skills == {"basic": 3}
    new = replace(e.config, agents={"a": profile("a", skills={"vip": 5})})
    e.configure(new, T0 + 4)
    assert e.agent_view("a", T0 + 4).skills == {"vip": 5}


# -- no answer and abandon ------------------------------------------------------------------


def test_no_answer_sets_not_ready_and_reoffers_the_call_first() -> None:
    e = engine_with([QueueConfig("q", no_answer_reason="rona")], [profile("a"), profile("b")])
    e.login("a", T0, ready=True)
    enqueue(e, "c1", at=T0)
    enqueue(e, "c2", at=T0 + 1)
    ((offer_id, _),) = e.offer_of_call("c1")
    effects = e.offer_failed(offer_id, "a", NoAnswerReason.TIMEOUT, T0 + 20)
    assert of(effects, AgentNoAnswer)[0].reason is NoAnswerReason.TIMEOUT
    assert e.agent_view("a", T0 + 20).reason == "rona"
    e.login("b", T0 + 21, ready=True)
    assert e.offer_of_call("c1")[0][1] == "b"
    assert e.queue_view("q", T0 + 21).no_answers == 1


def test_offer_timeout_timer_is_a_safety_net() -> None:
    e = engine_with([QueueConfig("q", no_answer_timeout_s=10)], [profile("a")])
    e.login("a", T0, ready=True)
    enqueue(e, "c1")
    deadline = e.next_deadline()
    assert deadline is not None
    assert deadline > T0 + 10
    effects = e.tick(deadline)
    assert of(effects, StopRinging)[0].reason is StopReason.TIMEOUT
    assert e.agent_state("a") is AgentState.NOT_READY
    call = e.call("c1")
    assert call is not None
    assert call.phase == "waiting"


def test_caller_abandons_during_offer_stops_ringing_and_frees_the_agent() -> None:
    e = engine_with([QueueConfig("q")], [profile("a")])
    e.login("a", T0, ready=True)
    enqueue(e, "c1")
    effects = e.call_ended("c1", T0 + 4)
    assert of(effects, StopRinging)[0].reason is StopReason.CALLER_ABANDONED
    assert of(effects, CallLeftQueue)[0].reason is LeaveReason.ABANDONED
    assert e.agent_state("a") is AgentState.READY
    assert e.queue_view("q", T0 + 4).abandoned == 1


def test_late_or_unknown_offer_outcomes_are_ignored() -> None:
    e = engine_with([QueueConfig("q")], [profile("a")])
    e.login("a", T0, ready=True)
    enqueue(e, "c1")
    ((offer_id, _),) = e.offer_of_call("c1")
    e.call_ended("c1", T0 + 1)
    assert e.offer_answered(offer_id, "a", T0 + 2) == []
    assert e.offer_failed("nope", "a", NoAnswerReason.BUSY, T0 + 2) == []


# -- call selection -------------------------------------------------------------------------


def test_priority_vip_data_and_aging_then_longest_wait() -> None:
    q = QueueConfig("q", aging_per_s=1.0)
    e = engine_with([q], [profile("a")], vip={"+vip": 10})
    enqueue(e, "old", at=T0)
    enqueue(e, "vip", at=T0 + 5, caller_number="+vip")
    enqueue(e, "data", at=T0 + 6, data={"priority": "20"})
    e.login("a", T0 + 7, ready=True)
    assert e.offer_of_call("data")  # 20 - 1 s aged beats 10 and the 7 s of aging
    calls = [c.call_id for c in e.waiting_calls("q", T0 + 7)]
    assert calls == ["data", "vip", "old"]


def test_call_order_can_put_longest_wait_first() -> None:
    q = QueueConfig("q", call_order=(CallOrder.LONGEST_WAIT, CallOrder.PRIORITY))
    e = engine_with([q], [profile("a")])
    enqueue(e, "old", at=T0)
    enqueue(e, "urgent", at=T0 + 1, priority=50)
    e.login("a", T0 + 2, ready=True)
    assert e.offer_of_call("old")


def test_agent_serving_two_queues_takes_the_higher_priority_queue() -> None:
    low = QueueConfig("low", skill="s", priority=0)
    high = QueueConfig("high", skill="s", priority=5)
    e = engine_with([low, high], [profile("a", skills={"s": 1})])
    enqueue(e, "l", "low", at=T0)
    enqueue(e, "h", "high", at=T0 + 10)
    e.login("a", T0 + 11, ready=True)
    assert e.offer_of_call("h")


# -- agent selection ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (AgentStrategy.LONGEST_IDLE, "x"),
        (AgentStrategy.LINEAR, "y"),
        (AgentStrategy.HIGHEST_SKILL, "z"),
    ],
)
def test_agent_strategies(strategy: AgentStrategy, expected: str) -> None:
    q = QueueConfig("q", skill="s", strategies=(strategy,))
    e = engine_with(
        [q],
        [
            profile("x", skills={"s": 1}, order=3),
            profile("y", skills={"s": 2}, order=1),
            profile("z", skills={"s": 5}, order=2),
        ],
    )
    for i, agent in enumerate("xyz"):
        e.login(agent, T0 + i, ready=True)
    enqueue(e, "c1", at=T0 + 10)
    assert e.offer_of_call("c1")[0][1] == expected


def test_fewest_calls_and_least_talk_time_count_today() -> None:
    for strategy in (AgentStrategy.FEWEST_CALLS, AgentStrategy.LEAST_TALK_TIME):
        q = QueueConfig("q", strategies=(strategy, AgentStrategy.LINEAR))
        e = engine_with([q], [profile("a", order=1), profile("b", order=2)])
        e.login("a", T0, ready=True)
        enqueue(e, "c1", at=T0)
        answer(e, "c1", T0 + 1)
        e.call_ended("c1", T0 + 100)
        e.login("b", T0 + 200, ready=True)
        enqueue(e, "c2", at=T0 + 300)
        assert e.offer_of_call("c2")[0][1] == "b", strategy


def test_round_robin_remembers_who_was_offered_last() -> None:
    q = QueueConfig("q", strategies=(AgentStrategy.ROUND_ROBIN, AgentStrategy.LINEAR))
    e = engine_with([q], [profile(x, order=i) for i, x in enumerate("abc")])
    for x in "abc":
        e.login(x, T0, ready=True)
    served = []
    for n in range(6):
        enqueue(e, f"c{n}", at=T0 + n)
        served.append(e.offer_of_call(f"c{n}")[0][1])
        answer(e, f"c{n}", T0 + n)
        e.call_ended(f"c{n}", T0 + n + 0.5)
    assert served == ["a", "b", "c", "a", "b", "c"]


def test_random_strategy_is_seeded() -> None:
    picks = []
    for _ in range(2):
        q = QueueConfig("q", strategies=(AgentStrategy.RANDOM,))
        e = engine_with([q], [profile(x) for x in "abcdef"])
        for x in "abcdef":
            e.login(x, T0, ready=True)
        enqueue(e, "c1", at=T0 + 1)
        picks.append(e.offer_of_call("c1")[0][1])
    assert picks[0] == picks[1]


def test_expanding_requirements_over_wait_time() -> None:
    q = QueueConfig(
        "q",
        skill="s",
        steps=(RequirementStep(0, 4), RequirementStep(20, 2), RequirementStep(40, None)),
        agents=("member",),
    )
    e = engine_with(
        [q],
        [profile("two", skills={"s": 2}), profile("member")],
    )
    e.login("two", T0, ready=True)
    e.login("member", T0, ready=True)
    enqueue(e, "c1", at=T0)
    assert e.offer_of_call("c1") == []
    e.tick(T0 + 20)
    assert e.offer_of_call("c1")[0][1] == "two"
    e.offer_failed(e.offer_of_call("c1")[0][0], "two", NoAnswerReason.REJECTED, T0 + 21)
    assert e.offer_of_call("c1") == []  # the member has no skill: not before 40 s
    e.tick(T0 + 40)
    assert e.offer_of_call("c1")[0][1] == "member"


def test_sticky_agent_gets_the_first_offer_and_the_call_waits_for_them() -> None:
    q = QueueConfig("q", sticky=StickyConfig(within_s=3600, wait_s=15))
    e = engine_with([q], [profile("a"), profile("b")])
    e.login("a", T0, ready=True)
    enqueue(e, "c1", at=T0, caller_number="+1")
    answer(e, "c1", T0 + 1)
    e.call_ended("c1", T0 + 10)  # a is ready again
    e.set_not_ready("a", "x", T0 + 11)
    e.login("b", T0 + 11, ready=True)
    enqueue(e, "c2", at=T0 + 12, caller_number="+1")
    assert e.offer_of_call("c2") == []  # held for a although b is ready
    e.set_ready("a", T0 + 13)
    assert e.offer_of_call("c2")[0][1] == "a"
    # a third call from the same number, a busy: b takes it once the hold expires
    enqueue(e, "c3", at=T0 + 14, caller_number="+1")
    e.tick(T0 + 14 + 15)
    assert e.offer_of_call("c3")[0][1] == "b"


def test_routing_table_and_preferred_agent() -> None:
    q = QueueConfig("q", use_routing_table=True)
    e = engine_with([q], [profile("a"), profile("b")], routing_table={"+9": "b"})
    e.login("a", T0, ready=True)
    e.login("b", T0 + 1, ready=True)
    enqueue(e, "c1", at=T0 + 2, caller_number="+9")
    assert e.offer_of_call("c1")[0][1] == "b"
    enqueue(e, "c2", at=T0 + 3, preferred_agent_id="a")
    assert e.offer_of_call("c2")[0][1] == "a"


def test_ring_all_first_answer_wins() -> None:
    q = QueueConfig("q", ring=RingMode.RING_ALL)
    e = engine_with([q], [profile(x) for x in "abc"])
    for x in "abc":
        e.login(x, T0, ready=True)
    effects = enqueue(e, "c1", at=T0 + 1)
    assert sorted(rung(effects)) == ["a", "b", "c"]
    offers = {agent: offer for offer, agent in e.offer_of_call("c1")}
    effects = e.offer_answered(offers["b"], "b", T0 + 2)
    stopped = of(effects, StopRinging)
    assert sorted(s.agent_id for s in stopped) == ["a", "c"]
    assert {s.reason for s in stopped} == {StopReason.ANSWERED_ELSEWHERE}
    assert e.agent_state("a") is AgentState.READY


def test_progressive_ring_adds_one_phone_per_step() -> None:
    q = QueueConfig("q", ring=RingMode.PROGRESSIVE, progressive_step_s=5, no_answer_timeout_s=30)
    e = engine_with([q], [profile(x, order=i) for i, x in enumerate("abc")])
    for i, x in enumerate("abc"):
        e.login(x, T0 + i, ready=True)
    assert rung(enqueue(e, "c1", at=T0 + 10)) == ["a"]
    assert rung(e.tick(T0 + 15)) == ["b"]
    assert rung(e.tick(T0 + 20)) == ["c"]
    assert len(e.offer_of_call("c1")) == 3


# -- overflow -------------------------------------------------------------------------------


def test_max_wait_overflows_to_another_queue_keeping_the_wait() -> None:
    q = QueueConfig(
        "q",
        max_wait_s=30,
        overflow={OverflowReason.MAX_WAIT: OverflowTarget(OverflowKind.QUEUE, "spill")},
        agents=("nobody",),
    )
    spill = QueueConfig("spill", agents=("b",))
    e = engine_with([q, spill], [profile("b")])
    enqueue(e, "c1", at=T0, data={"serial": "42"})
    effects = e.tick(T0 + 30)
    assert of(effects, CallOverflowed)[0].reason is OverflowReason.MAX_WAIT
    e.login("b", T0 + 31, ready=True)
    effects = answer(e, "c1", T0 + 32)
    assert of(effects, CallLeftQueue)[0].wait_s == 32.0
    assert e.queue_view("q", T0 + 32).overflowed == 1


def test_max_length_announcement_or_refusal() -> None:
    full = QueueConfig(
        "full",
        max_length=1,
        overflow={OverflowReason.MAX_LENGTH: OverflowTarget(OverflowKind.ANNOUNCEMENT, "busy")},
    )
    strict = QueueConfig("strict", max_length=1)
    e = engine_with([full, strict], [])
    enqueue(e, "c1", "full")
    effects = enqueue(e, "c2", "full")
    (route,) = of(effects, RouteOverflow)
    assert (route.reason, route.target.target) == (OverflowReason.MAX_LENGTH, "busy")
    enqueue(e, "s1", "strict")
    with pytest.raises(AcdRefused, match="max_length"):
        enqueue(e, "s2", "strict")


def test_nobody_logged_in_closed_and_nobody_ready_overflows() -> None:
    vm = OverflowTarget(OverflowKind.VOICEMAIL, "box")
    q = QueueConfig(
        "q",
        calendar_id="hours",
        no_agents_ready_s=60,
        overflow={
            OverflowReason.NO_AGENTS_LOGGED_IN: vm,
            OverflowReason.CLOSED: OverflowTarget(OverflowKind.IVR_FLOW, "after-hours"),
            OverflowReason.NO_AGENTS_READY: vm,
        },
    )
    open_now = {"value": True}
    config = TenantAcdConfig("acme", queues={"q": q}, agents={"a": profile("a")})
    e = AcdEngine(config, calendar=lambda _cal, _now: open_now["value"])
    assert of(enqueue(e, "c1"), RouteOverflow)[0].reason is OverflowReason.NO_AGENTS_LOGGED_IN
    e.login("a", T0)  # logged in, not ready
    assert of(enqueue(e, "c2"), RouteOverflow) == []
    effects = e.tick(T0 + 60)
    assert of(effects, RouteOverflow)[0].reason is OverflowReason.NO_AGENTS_READY
    open_now["value"] = False
    assert of(enqueue(e, "c3", at=T0 + 61), RouteOverflow)[0].target.target == "after-hours"
    assert not e.queue_view("q", T0 + 61).open


def test_overflow_loops_are_not_followed() -> None:
    to_b = {OverflowReason.MAX_WAIT: OverflowTarget(OverflowKind.QUEUE, "b")}
    to_a = {OverflowReason.MAX_WAIT: OverflowTarget(OverflowKind.QUEUE, "a")}
    a = QueueConfig("a", max_wait_s=10, overflow=to_b, agents=("x",))
    b = QueueConfig("b", max_wait_s=10, overflow=to_a, agents=("x",))
    e = engine_with([a, b], [profile("x")])
    enqueue(e, "c1", "a")
    e.tick(T0 + 10)
    e.tick(T0 + 20)
    e.tick(T0 + 30)
    call = e.call("c1")
    assert call is not None
    assert call.queue_id == "b"


# -- waiting experience and EWT --------------------------------------------------------------


def test_entry_and_periodic_announcements_with_position_and_ewt() -> None:
    ann = Announcements(
        entry="welcome",
        periodic="still",
        periodic_every_s=30,
        position=True,
        estimated_wait=True,
        languages=("en",),
    )
    q = QueueConfig("q", announcements=ann, agents=("a",))
    e = engine_with([q], [profile("a")])
    enqueue(e, "c1", at=T0)
    effects = enqueue(e, "c2", at=T0 + 1, language="yue")
    (play,) = of(effects, PlayToCaller)
    assert [p.prompt_id for p in play.prompts] == ["welcome", "acd/position", "acd/estimated_wait"]
    assert play.prompts[1].params == {"position": "2"}
    assert (play.language, play.moh) == ("yue", "moh/default")
    effects = e.tick(T0 + 31)
    positions = {p.call_id: p.position for p in of(effects, CallPositionChanged)}
    assert positions == {"c1": 1, "c2": 2}


def test_estimated_wait_grows_with_position_and_handle_time() -> None:
    q = QueueConfig("q")
    e = engine_with([q], [profile("a"), profile("b")])
    e.login("a", T0, ready=True)
    e.login("b", T0, ready=True)
    enqueue(e, "c1")
    enqueue(e, "c2")
    answer(e, "c1", T0)
    answer(e, "c2", T0)
    e.call_ended("c1", T0 + 100)
    e.call_ended("c2", T0 + 100)
    e.set_not_ready("a", "x", T0 + 100)
    e.set_not_ready("b", "x", T0 + 100)
    e.set_ready("a", T0 + 100)
    enqueue(e, "c3", at=T0 + 101)
    assert e.estimated_wait("q", 1, T0 + 101) > 0
    assert e.estimated_wait("q", 4, T0 + 101) > e.estimated_wait("q", 2, T0 + 101)


# -- persistence ----------------------------------------------------------------------------


def test_snapshot_round_trip_keeps_enqueue_times_offers_and_counters() -> None:
    q = QueueConfig("q", wrap_up_s=10)
    e = engine_with([q], [profile("a"), profile("b")])
    e.login("a", T0, ready=True)
    e.login("b", T0)
    enqueue(e, "c1", at=T0, enqueued_at=T0 - 50)
    enqueue(e, "c2", at=T0 + 1, data={"k": "v"})
    snapshot = json.loads(json.dumps(e.snapshot()))
    restored = AcdEngine.restore(e.config, snapshot, T0 + 2)
    restored.tick(T0 + 2)
    assert restored.offer_of_call("c1") == e.offer_of_call("c1")
    assert restored.agent_state("a") is AgentState.RESERVED
    waiting = restored.waiting_calls("q", T0 + 2)
    assert [(w.call_id, w.waited_s) for w in waiting] == [("c1", 52.0), ("c2", 1.0)]
    offer_id, _ = restored.offer_of_call("c1")[0]
    effects = restored.offer_answered(offer_id, "a", T0 + 3)
    assert of(effects, CallLeftQueue)[0].wait_s == 53.0
    restored.set_ready("b", T0 + 4)
    assert restored.offer_of_call("c2")[0][1] == "b"


def test_restore_under_a_changed_config_releases_what_is_gone() -> None:
    e = engine_with([QueueConfig("q"), QueueConfig("gone", agents=("x",))], [profile("a")])
    e.login("a", T0)
    enqueue(e, "c1", "gone")
    config = TenantAcdConfig("acme", queues={"q": QueueConfig("q")}, agents={})
    restored = AcdEngine.restore(config, e.snapshot(), T0 + 1)
    effects = restored.tick(T0 + 1)
    assert of(effects, CallLeftQueue)[0].reason is LeaveReason.ERROR
    assert restored.agent_state("a") is AgentState.LOGGED_OUT


def test_enqueue_is_idempotent_and_validates() -> None:
    e = engine_with([QueueConfig("q")], [])
    assert enqueue(e, "c1")
    assert enqueue(e, "c1") == []
    with pytest.raises(AcdRefused) as unknown:
        enqueue(e, "c2", "nope")
    assert unknown.value.code == "unknown_queue"
    with pytest.raises(InvalidInput):
        enqueue(e, "")
    with pytest.raises(InvalidInput) as bad:
        e.login("", T0)
    assert bad.value.field == "agent_id"


def test_set_skills_validates_levels() -> None:
    e = engine_with([QueueConfig("q")], [profile("a")])
    e.login("a", T0)
    with pytest.raises(InvalidInput) as err:
        e.set_skills("a", {"s": 9}, T0, temporary=True)
    assert err.value.field == "skills.s"
