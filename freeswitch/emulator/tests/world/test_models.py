"""Behaviour models as pure code: phone and carrier plans, traffic draws, seeds that replay."""

from __future__ import annotations

import random
from collections import Counter

from callmesh.fsemu.world.callers import EventRouter
from callmesh.fsemu.world.carriers import attempt_rng, plan_carrier_leg
from callmesh.fsemu.world.distributions import Exponential, Fixed, LogNormal, Normal, Uniform
from callmesh.fsemu.world.phones import plan_phone_leg
from callmesh.fsemu.world.scenario import (
    BUILTIN_PROFILES,
    CarrierOutcomes,
    CarrierSpec,
    DigitScript,
    DigitStep,
    PhoneProfile,
    TrafficSpec,
)
from callmesh.fsemu.world.sip import sip_cause
from callmesh.fsemu.world.stats import Stats
from callmesh.fsemu.world.traffic import caller_number, plan_call


def test_sip_codes_map_to_the_causes_mod_sofia_reports() -> None:
    assert sip_cause(486) == "USER_BUSY"
    assert sip_cause(480) == "NO_USER_RESPONSE"
    assert sip_cause(603) == "CALL_REJECTED"
    assert sip_cause(404) == "UNALLOCATED_NUMBER"
    assert sip_cause(299) == "NORMAL_UNSPECIFIED"


def test_an_answering_phone_rings_then_answers_and_waits_for_the_far_side() -> None:
    plan = plan_phone_leg(PhoneProfile(ring=Fixed(value=2)), random.Random(1))
    assert plan.answer
    assert plan.ring_s == 2
    assert plan.talk_s is None


def test_a_phone_with_talk_time_hangs_up_itself() -> None:
    plan = plan_phone_leg(PhoneProfile(talk=Fixed(value=30)), random.Random(1))
    assert plan.talk_s == 30


def test_refusing_profiles_end_with_the_cause_of_their_sip_code() -> None:
    rng = random.Random(1)
    assert plan_phone_leg(BUILTIN_PROFILES["busy"], rng).cause == "USER_BUSY"
    assert plan_phone_leg(BUILTIN_PROFILES["reject"], rng).cause == "CALL_REJECTED"
    assert plan_phone_leg(BUILTIN_PROFILES["dnd"], rng).cause == "USER_BUSY"
    dnd_480 = PhoneProfile(behaviour="dnd", sip_code=480)
    assert plan_phone_leg(dnd_480, rng).cause == "NO_USER_RESPONSE"


def test_a_busy_phone_refuses_without_ringing() -> None:
    plan = plan_phone_leg(BUILTIN_PROFILES["busy"], random.Random(1))
    assert not plan.ring
    assert not plan.answer


def test_a_no_answer_phone_rings_until_the_other_side_gives_up() -> None:
    plan = plan_phone_leg(BUILTIN_PROFILES["no_answer"], random.Random(1))
    assert plan.ring
    assert not plan.answer
    assert plan.cause is None


def test_a_phone_at_its_call_limit_is_busy() -> None:
    plan = plan_phone_leg(PhoneProfile(max_calls=1), random.Random(1), busy_now=True)
    assert plan.cause == "USER_BUSY"


def test_carrier_outcomes_follow_their_weights() -> None:
    spec = CarrierSpec(
        gateway="gw",
        outcomes=CarrierOutcomes(human=0.5, machine=0.2, busy=0.1, no_answer=0.1, invalid=0.1),
    )
    rng = random.Random(7)
    seen = Counter(plan_carrier_leg(spec, "+15550001", rng).outcome for _ in range(5000))
    assert set(seen) == {"human", "machine", "busy", "no_answer", "invalid"}
    assert seen["human"] > seen["machine"] > seen["busy"]


def test_carrier_refusals_carry_the_causes_freeswitch_reports() -> None:
    spec = CarrierSpec(gateway="gw", numbers={"1": "busy", "2": "invalid", "3": "no_answer"})
    rng = random.Random(1)
    assert plan_carrier_leg(spec, "1", rng).leg.cause == "USER_BUSY"
    assert plan_carrier_leg(spec, "2", rng).leg.cause == "UNALLOCATED_NUMBER"
    no_answer = plan_carrier_leg(spec, "3", rng).leg
    assert no_answer.cause is None
    assert not no_answer.answer


def test_an_answering_machine_answers_and_has_a_greeting() -> None:
    spec = CarrierSpec(gateway="gw", numbers={"9": "machine"}, greeting=Fixed(value=4))
    plan = plan_carrier_leg(spec, "9", random.Random(1))
    assert plan.leg.answer
    assert plan.greeting_s == 4


def test_distributions_draw_within_their_rules() -> None:
    rng = random.Random(3)
    assert all(1 <= Uniform(min=1, max=2).sample(rng) <= 2 for _ in range(100))
    assert all(Exponential(mean=5, max=8).sample(rng) <= 8 for _ in range(100))
    assert all(Normal(mean=1, stddev=5, min=0.5).sample(rng) >= 0.5 for _ in range(100))
    assert all(LogNormal(median=10, sigma=1, max=50).sample(rng) <= 50 for _ in range(100))


def test_caller_patterns_fill_each_x_with_a_digit() -> None:
    number = caller_number("+1555xxx", random.Random(1))
    assert number.startswith("+1555")
    assert len(number) == 8
    assert number[5:].isdigit()


def test_the_same_seed_draws_the_same_traffic() -> None:
    spec = TrafficSpec(
        name="t",
        rate=2,
        numbers=["5000", "5001"],
        scripts=[
            DigitScript(weight=3, steps=[DigitStep(digits="1", on_prompt=1)]),
            DigitScript(weight=1, steps=[DigitStep(digits="2#", at=4)]),
        ],
    )
    first = [plan_call(spec, r) for r in [random.Random(42)] for _ in range(50)]
    again = [plan_call(spec, r) for r in [random.Random(42)] for _ in range(50)]
    assert first == again
    assert {c.number for c in first} == {"5000", "5001"}
    assert {c.script.steps[0].digits for c in first} == {"1", "2#"}


def test_the_router_calls_back_on_the_nth_prompt_even_if_it_already_started() -> None:
    router = EventRouter()
    router.watch("u1")
    fired: list[str] = []
    headers = {"Unique-ID": "u1"}
    router.handle("PLAYBACK_START", None, headers.get)
    router.on_prompt("u1", 1, lambda: fired.append("first"))
    router.on_prompt("u1", 2, lambda: fired.append("second"))
    assert fired == ["first"]
    router.handle("PLAYBACK_START", None, headers.get)
    assert fired == ["first", "second"]


def test_the_router_sees_a_bridge_from_either_leg() -> None:
    router = EventRouter()
    watch = router.watch("b-leg")
    bridge = {"Unique-ID": "a-leg", "Bridge-A-Unique-ID": "a-leg", "Bridge-B-Unique-ID": "b-leg"}
    router.handle("CHANNEL_BRIDGE", None, bridge.get)
    assert watch.bridged.is_set()
    router.handle("CHANNEL_DESTROY", None, {"Unique-ID": "b-leg"}.get)
    assert "b-leg" not in router.watches


def test_stats_count_calls_and_causes_and_average_cps_over_whole_seconds() -> None:
    now = [100.2]
    stats = Stats(clock=lambda: now[0])
    for _ in range(20):
        stats.count("CHANNEL_CREATE")
    stats.count("CHANNEL_ANSWER")
    stats.count("CHANNEL_HANGUP_COMPLETE", cause="NORMAL_CLEARING")
    stats.count("CUSTOM", "sofia::register")
    now[0] = 101.5
    snap = stats.snapshot(live_channels=3)
    assert snap["calls_started"] == 20
    assert snap["calls_answered"] == 1
    assert snap["hangup_causes"] == {"NORMAL_CLEARING": 1}
    assert snap["events"] == {
        "CHANNEL_CREATE": 20,
        "CHANNEL_ANSWER": 1,
        "CHANNEL_HANGUP_COMPLETE": 1,
        "CUSTOM sofia::register": 1,
    }
    assert snap["cps"] == 2.0


def test_carrier_outcomes_replay_whatever_order_the_calls_are_placed_in() -> None:
    spec = CarrierSpec(
        gateway="gw", outcomes=CarrierOutcomes(human=1, busy=1, invalid=1, no_answer=1)
    )
    numbers = [f"+1555000{n:04d}" for n in range(40)]

    def outcomes(order: list[str]) -> dict[str, str]:
        return {n: plan_carrier_leg(spec, n, attempt_rng(42, "gw", n, 1)).outcome for n in order}

    assert outcomes(numbers) == outcomes(list(reversed(numbers)))
    assert len(set(outcomes(numbers).values())) > 1
    second_try = plan_carrier_leg(spec, numbers[0], attempt_rng(42, "gw", numbers[0], 2))
    assert second_try == plan_carrier_leg(spec, numbers[0], attempt_rng(42, "gw", numbers[0], 2))
