"""Random sequences of everything that can happen never leave an agent or a call stuck."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callmesh.acd.domain.config import (
    AgentProfile,
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
    AgentState,
    CallLeftQueue,
    CallQueued,
    Effect,
    NoAnswerReason,
)
from callmesh.acd.domain.engine import AcdEngine, CallRequest

AGENTS = [f"a{i}" for i in range(6)]


def tenant_config(variant: int) -> TenantAcdConfig:
    """Two skill queues (one ring-all, one expanding) and an overflow target queue."""
    sales = QueueConfig(
        "sales",
        skill="sales",
        steps=(RequirementStep(0, 3), RequirementStep(10, 1), RequirementStep(20, None)),
        sticky=StickyConfig(within_s=3600, wait_s=5),
        wrap_up_s=3,
        max_wait_s=60,
        overflow={OverflowReason.MAX_WAIT: OverflowTarget(OverflowKind.QUEUE, "backup")},
        no_answer_timeout_s=8,
    )
    support = QueueConfig(
        "support",
        skill="support",
        ring=RingMode.RING_ALL if variant % 2 else RingMode.PROGRESSIVE,
        progressive_step_s=2,
        max_length=4,
        overflow={
            OverflowReason.MAX_LENGTH: OverflowTarget(OverflowKind.ANNOUNCEMENT, "busy"),
            OverflowReason.NO_AGENTS_LOGGED_IN: OverflowTarget(OverflowKind.VOICEMAIL, "vm"),
        },
        no_answer_timeout_s=6,
    )
    backup = QueueConfig("backup", groups=("day",), aging_per_s=0.5)
    agents = {
        aid: AgentProfile(
            aid,
            endpoint=f"user:{1000 + i}",
            skills={"sales": 1 + (i + variant) % 5, **({"support": 2} if i % 2 else {})},
            groups=("day",) if i < 4 else (),
        )
        for i, aid in enumerate(AGENTS)
    }
    return TenantAcdConfig(
        "t1",
        queues={"sales": sales, "support": support, "backup": backup},
        agents=agents,
        groups={"day": GroupConfig("day", max_on_break=1)},
        vip={"+861": 5},
    )


def check_invariants(engine: AcdEngine) -> None:
    """The engine's promises, checked from its internals."""
    full = json.loads(json.dumps(engine.snapshot()))
    assert json.loads(engine.snapshot_json()) == full, "the cached snapshot JSON is stale"
    named = Counter(o.agent_id for o in engine.offers.values())
    for a in engine.agents.values():
        if a.state in (AgentState.RESERVED, AgentState.RINGING):
            assert a.offer_id in engine.offers, f"{a.agent_id} {a.state} without a live offer"
            assert engine.offers[a.offer_id].agent_id == a.agent_id
            assert named[a.agent_id] == 1, f"{a.agent_id} named by {named[a.agent_id]} offers"
        else:
            assert named[a.agent_id] == 0, f"{a.agent_id} is {a.state} but has an offer"
    staffed: Counter[str] = Counter()
    for a in engine.agents.values():
        if a.state not in (AgentState.NOT_READY, AgentState.BREAK, AgentState.LOGGED_OUT):
            for qid, _ in engine._serves[a.agent_id]:
                staffed[qid] += 1
    assert {q: n for q, n in engine._staffed.items() if n} == dict(staffed)
    for offer in engine.offers.values():
        call = engine.calls[offer.call_id]
        assert call.phase == "offering"
        assert call.offers.get(offer.offer_id) == offer.agent_id
    for call in engine.calls.values():
        if call.phase == "offering":
            assert call.offers, f"{call.call_id} offering with no offer"
        if call.phase == "waiting" and call.filed_key is not None:
            ready = engine._ready.get((call.queue_id, call.level))
            assert not ready or not ready.items, (
                f"{call.call_id} waits in {call.queue_id} while {ready.items[0][1]} is ready"
            )
        if call.phase == "waiting" and call.hold_agent:
            held_for = engine.agents.get(call.hold_agent)
            assert held_for is None or held_for.state is not AgentState.READY


op = st.one_of(
    st.tuples(st.just("enqueue"), st.integers(0, 11), st.sampled_from(["sales", "support"])),
    st.tuples(st.just("login"), st.sampled_from(AGENTS), st.booleans()),
    st.tuples(st.just("ready"), st.sampled_from(AGENTS)),
    st.tuples(st.just("not_ready"), st.sampled_from(AGENTS)),
    st.tuples(st.just("break"), st.sampled_from(AGENTS), st.booleans()),
    st.tuples(st.just("end_wrap_up"), st.sampled_from(AGENTS)),
    st.tuples(st.just("logout"), st.sampled_from(AGENTS)),
    st.tuples(st.just("ringing"), st.integers(0, 5)),
    st.tuples(st.just("answer"), st.integers(0, 5)),
    st.tuples(st.just("fail"), st.integers(0, 5), st.sampled_from(list(NoAnswerReason))),
    st.tuples(st.just("hangup"), st.integers(0, 11)),
    st.tuples(st.just("transfer"), st.integers(0, 11)),
    st.tuples(st.just("tick"), st.floats(0.1, 30)),
    st.tuples(st.just("failover")),
    st.tuples(st.just("reconfigure"), st.integers(0, 3)),
    st.tuples(st.just("skills"), st.sampled_from(AGENTS), st.integers(1, 5)),
)


def run(ops: list[tuple[Any, ...]], variant: int) -> None:
    """Apply ``ops``; check the invariants after each; count queue entries and exits."""
    config = tenant_config(variant)
    engine = AcdEngine(config, seed=variant)
    now = 1_000.0
    entered: Counter[str] = Counter()
    left: Counter[str] = Counter()

    def apply(effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, CallQueued):
                entered[effect.call_id] += 1
            elif isinstance(effect, CallLeftQueue):
                left[effect.call_id] += 1
                assert left[effect.call_id] <= entered[effect.call_id]

    for step in ops:
        kind = step[0]
        offers = sorted(engine.offers.values(), key=lambda o: o.offer_id)
        try:
            if kind == "enqueue":
                request = CallRequest(f"c{step[1]}", step[2], caller_number=f"+86{step[1] % 3}")
                apply(engine.enqueue(request, now))
            elif kind == "login":
                apply(engine.login(step[1], now, ready=step[2]))
            elif kind == "ready":
                apply(engine.set_ready(step[1], now))
            elif kind == "not_ready":
                apply(engine.set_not_ready(step[1], "lunch", now))
            elif kind == "break":
                apply(engine.request_break(step[1], "rest", now, forced=step[2]))
            elif kind == "end_wrap_up":
                apply(engine.end_wrap_up(step[1], now))
            elif kind == "logout":
                apply(engine.logout(step[1], now))
            elif kind in ("ringing", "answer", "fail") and offers:
                offer = offers[step[1] % len(offers)]
                if kind == "ringing":
                    apply(engine.offer_ringing(offer.offer_id, offer.agent_id, now))
                elif kind == "answer":
                    apply(engine.offer_answered(offer.offer_id, offer.agent_id, now))
                else:
                    apply(engine.offer_failed(offer.offer_id, offer.agent_id, step[2], now))
            elif kind == "hangup":
                apply(engine.call_ended(f"c{step[1]}", now))
            elif kind == "transfer":
                apply(engine.call_transferred(f"c{step[1]}", now))
            elif kind == "tick":
                now += step[1]
                apply(engine.tick(now))
                deadline = engine.next_deadline()
                assert deadline is None or deadline > now
            elif kind == "failover":
                snapshot = json.loads(json.dumps(engine.snapshot()))
                engine = AcdEngine.restore(config, snapshot, now, seed=variant + 1)
                apply(engine.tick(now))
            elif kind == "reconfigure":
                config = tenant_config(variant + step[1])
                apply(engine.configure(config, now))
            elif kind == "skills":
                apply(engine.set_skills(step[1], {"sales": step[2]}, now, temporary=True))
        except AcdRefused:
            pass
        check_invariants(engine)
    for call_id, count in entered.items():
        call = engine.calls.get(call_id)
        if call is None or call.phase == "connected":
            assert left[call_id] == count, f"{call_id} entered {count}x, left {left[call_id]}x"
        else:
            assert left[call_id] == count - 1


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(op, min_size=1, max_size=80), st.integers(0, 3))
def test_random_event_sequences_never_leave_anyone_stuck(
    ops: list[tuple[Any, ...]], variant: int
) -> None:
    run(ops, variant)


def test_long_random_walks_keep_the_invariants() -> None:
    """Longer sequences than hypothesis draws: 40 walks of 600 steps each."""
    import random

    kinds = [
        "enqueue",
        "enqueue",
        "login",
        "ready",
        "ready",
        "not_ready",
        "break",
        "end_wrap_up",
        "logout",
        "ringing",
        "answer",
        "answer",
        "fail",
        "hangup",
        "hangup",
        "transfer",
        "tick",
        "tick",
        "failover",
        "reconfigure",
        "skills",
    ]
    for seed in range(40):
        rng = random.Random(seed)
        ops: list[tuple[Any, ...]] = []
        for _ in range(600):
            kind = rng.choice(kinds)
            if kind == "enqueue":
                ops.append((kind, rng.randrange(12), rng.choice(["sales", "support"])))
            elif kind == "login":
                ops.append((kind, rng.choice(AGENTS), rng.random() < 0.7))
            elif kind == "break":
                ops.append((kind, rng.choice(AGENTS), rng.random() < 0.2))
            elif kind in ("ready", "not_ready", "end_wrap_up", "logout"):
                ops.append((kind, rng.choice(AGENTS)))
            elif kind in ("ringing", "answer"):
                ops.append((kind, rng.randrange(6)))
            elif kind == "fail":
                ops.append((kind, rng.randrange(6), rng.choice(list(NoAnswerReason))))
            elif kind in ("hangup", "transfer"):
                ops.append((kind, rng.randrange(12)))
            elif kind == "tick":
                ops.append((kind, rng.uniform(0.1, 15)))
            elif kind == "failover":
                ops.append((kind,))
            elif kind == "reconfigure":
                ops.append((kind, rng.randrange(4)))
            else:
                ops.append((kind, rng.choice(AGENTS), rng.randint(1, 5)))
        run(ops, seed % 4)
