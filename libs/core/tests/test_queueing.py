"""Queueing math against published figures, exact arithmetic, independent oracles and simulation."""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import pytest

from callmesh.core.queueing import (
    ErlangAResult,
    ErlangCResult,
    ServiceLevelBasis,
    Staffing,
    erlang_a_metrics,
    erlang_a_staffing,
    erlang_b,
    erlang_c,
    erlang_c_metrics,
    erlang_c_staffing,
    scheduled_agents,
    traffic_intensity,
)

# The published example: 100 calls in 30 minutes, 3-minute handle time, 20-second threshold.
CALLS = 100.0
INTERVAL_S = 1800.0
AHT_S = 180.0
THRESHOLD_S = 20.0


def erlang_a_at(
    agents: int, traffic: float, *, patience_s: float, threshold_s: float = THRESHOLD_S
) -> ErlangAResult:
    # One interval of one AHT makes `calls` equal the offered load in Erlangs.
    return erlang_a_metrics(
        agents=agents,
        calls=traffic,
        interval_s=AHT_S,
        aht_s=AHT_S,
        patience_s=patience_s,
        threshold_s=threshold_s,
    )


# --- Erlang B -------------------------------------------------------------------------------


def test_traffic_intensity_is_calls_times_handle_time_over_interval() -> None:
    assert traffic_intensity(CALLS, INTERVAL_S, AHT_S) == pytest.approx(10.0)
    assert traffic_intensity(0, 900, 300) == 0.0


@pytest.mark.parametrize(
    ("agents", "traffic", "blocking", "tolerance"),
    [
        (1, 1.0, 0.5, 1e-15),
        (2, 1.0, 0.2, 1e-15),
        (5, 2.0, 0.036697, 1e-6),
        (10, 5.0, 0.018385, 1e-6),
        # Standard Erlang B table, 1% grade of service column (traffic printed to 3 decimals).
        (10, 4.461, 0.01, 1e-5),
        (20, 12.031, 0.01, 1e-5),
        (50, 37.901, 0.01, 1e-5),
        (100, 84.064, 0.01, 1e-5),
    ],
)
def test_erlang_b_matches_standard_table_values(
    agents: int, traffic: float, blocking: float, tolerance: float
) -> None:
    assert erlang_b(agents, traffic) == pytest.approx(blocking, abs=tolerance)


def test_erlang_b_matches_exact_rational_arithmetic() -> None:
    agents, traffic = 150, Fraction(140)
    terms = [traffic**k / math.factorial(k) for k in range(agents + 1)]
    exact = terms[-1] / sum(terms)
    assert erlang_b(agents, 140.0) == pytest.approx(float(exact), rel=1e-12)


def test_erlang_b_stays_finite_for_thousands_of_agents() -> None:
    agents, traffic = 5000, 4900.0
    logs = [k * math.log(traffic) - math.lgamma(k + 1) for k in range(agents + 1)]
    peak = max(logs)
    log_total = peak + math.log(math.fsum(math.exp(x - peak) for x in logs))
    assert erlang_b(agents, traffic) == pytest.approx(math.exp(logs[-1] - log_total), rel=1e-9)
    assert erlang_b(0, 3.0) == 1.0
    assert erlang_b(7, 0.0) == 0.0


# --- Erlang C -------------------------------------------------------------------------------


def test_erlang_c_matches_the_published_example() -> None:
    result = erlang_c_metrics(
        agents=14, calls=CALLS, interval_s=INTERVAL_S, aht_s=AHT_S, threshold_s=THRESHOLD_S
    )
    assert result.traffic == pytest.approx(10.0)
    assert round(result.p_wait, 4) == 0.1741
    # Full precision gives 7.8359 s; the example prints 7.84.
    assert result.asa_s == pytest.approx(7.835937, abs=1e-6)
    assert abs(result.asa_s - 7.84) < 0.01
    assert round(result.service_level, 3) == 0.888
    assert round(result.occupancy, 3) == 0.714


def test_erlang_c_staffs_the_published_example_with_14_agents_and_20_scheduled() -> None:
    staffing = erlang_c_staffing(
        calls=CALLS,
        interval_s=INTERVAL_S,
        aht_s=AHT_S,
        threshold_s=THRESHOLD_S,
        target_service_level=0.8,
        shrinkage=0.3,
    )
    assert (staffing.required, staffing.scheduled) == (14, 20)
    assert staffing.result.agents == 14
    short = erlang_c_metrics(
        agents=13, calls=CALLS, interval_s=INTERVAL_S, aht_s=AHT_S, threshold_s=THRESHOLD_S
    )
    assert short.service_level == pytest.approx(0.7956, abs=1e-4)


@pytest.mark.parametrize(("agents", "traffic"), [(2, 1.5), (14, 10.0), (60, 55.5), (900, 870.0)])
def test_erlang_c_equals_its_identity_with_erlang_b(agents: int, traffic: float) -> None:
    blocking = erlang_b(agents, traffic)
    identity = agents * blocking / (agents - traffic * (1 - blocking))
    assert erlang_c(agents, traffic) == pytest.approx(identity, rel=1e-12)


def test_erlang_c_reports_an_overloaded_queue_without_raising() -> None:
    for agents in (0, 8, 10):
        result = erlang_c_metrics(
            agents=agents, calls=CALLS, interval_s=INTERVAL_S, aht_s=AHT_S, threshold_s=20
        )
        assert (result.p_wait, result.asa_s, result.service_level) == (1.0, math.inf, 0.0)
        assert result.occupancy == (1.0 if agents else 0.0)


def test_erlang_c_staffing_raises_agents_to_respect_the_occupancy_cap() -> None:
    staffing = erlang_c_staffing(
        calls=CALLS,
        interval_s=INTERVAL_S,
        aht_s=AHT_S,
        threshold_s=THRESHOLD_S,
        target_service_level=0.8,
        max_occupancy=0.6,
    )
    # 10 Erlangs at <= 60% occupancy needs 17 agents (10/16 = 62.5%, 10/17 = 58.8%).
    assert staffing.required == 17
    assert staffing.result.occupancy <= 0.6


def test_erlang_c_staffing_honours_a_maximum_asa() -> None:
    staffing = erlang_c_staffing(
        calls=CALLS,
        interval_s=INTERVAL_S,
        aht_s=AHT_S,
        threshold_s=THRESHOLD_S,
        target_service_level=0.8,
        max_asa_s=3.0,
    )
    assert staffing.result.asa_s <= 3.0
    below = erlang_c_metrics(
        agents=staffing.required - 1,
        calls=CALLS,
        interval_s=INTERVAL_S,
        aht_s=AHT_S,
        threshold_s=THRESHOLD_S,
    )
    assert below.asa_s > 3.0


@pytest.mark.parametrize(
    ("calls", "aht_s", "threshold_s", "target", "max_asa_s", "max_occupancy"),
    [
        (100, 180, 20, 0.8, None, 1.0),
        (3, 300, 30, 0.9, None, 1.0),
        (640, 240, 15, 0.95, 10.0, 0.9),
        (2500, 200, 60, 0.7, None, 0.85),
    ],
)
def test_erlang_c_staffing_finds_the_same_agents_as_a_linear_scan(
    calls: float,
    aht_s: float,
    threshold_s: float,
    target: float,
    max_asa_s: float | None,
    max_occupancy: float,
) -> None:
    staffing = erlang_c_staffing(
        calls=calls,
        interval_s=INTERVAL_S,
        aht_s=aht_s,
        threshold_s=threshold_s,
        target_service_level=target,
        max_asa_s=max_asa_s,
        max_occupancy=max_occupancy,
    )
    agents = 0
    while True:
        result = erlang_c_metrics(
            agents=agents,
            calls=calls,
            interval_s=INTERVAL_S,
            aht_s=aht_s,
            threshold_s=threshold_s,
        )
        if (
            result.p_wait < 1
            and result.service_level >= target
            and (max_asa_s is None or result.asa_s <= max_asa_s)
            and result.occupancy <= max_occupancy
        ):
            break
        agents += 1
    assert staffing.required == agents
    assert staffing.result == result


def test_no_calls_need_no_agents() -> None:
    c = erlang_c_staffing(
        calls=0, interval_s=900, aht_s=180, threshold_s=20, target_service_level=0.8
    )
    a = erlang_a_staffing(
        calls=0, interval_s=900, aht_s=180, patience_s=60, threshold_s=20, max_abandon=0.05
    )
    assert (c.required, c.scheduled, a.required, a.scheduled) == (0, 0, 0, 0)
    assert (c.result.p_wait, c.result.service_level) == (0.0, 1.0)
    assert (a.result.p_abandon, a.result.service_level) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("required", "shrinkage", "scheduled"),
    [(14, 0.3, 20), (14, 0.0, 14), (10, 0.25, 14), (7, 0.3, 10), (1, 0.99, 100), (0, 0.5, 0)],
)
def test_scheduled_agents_cover_shrinkage(required: int, shrinkage: float, scheduled: int) -> None:
    assert scheduled_agents(required, shrinkage) == scheduled


# --- Erlang A oracles -------------------------------------------------------------------------


def brute_force_states(agents: int, traffic: float, rho: float, size: int = 400) -> list[float]:
    """Stationary P(k in system), k < size, straight from the product form in plain floats."""
    weights = [1.0]
    for k in range(1, size):
        weights.append(weights[-1] * traffic / (min(k, agents) + max(0, k - agents) * rho))
    total = math.fsum(weights)
    return [w / total for w in weights]


def uniformized_outcomes(
    serve_rate: float, theta: float, positions: int, t: float
) -> tuple[list[float], list[float]]:
    """P(answered by t) and P(abandoned by t) from j ahead, by uniformizing the death chain."""
    # With i ahead: up one place at serve_rate + i theta (answered from i = 0), hang up at theta.
    uniform = serve_rate + positions * theta
    mean = uniform * t
    terms = 0
    tail = 1.0
    while tail >= 1e-12:
        tail -= math.exp(-mean + terms * math.log(mean) - math.lgamma(terms + 1))
        terms += 1
    forward = [(serve_rate + j * theta) / uniform for j in range(positions)]
    leave = theta / uniform
    answered_n = [0.0] * positions
    abandoned_n = [0.0] * positions
    answered = [0.0] * positions
    abandoned = [0.0] * positions
    for n in range(terms):
        weight = math.exp(-mean + n * math.log(mean) - math.lgamma(n + 1))
        answered = [x + weight * y for x, y in zip(answered, answered_n, strict=True)]
        abandoned = [x + weight * y for x, y in zip(abandoned, abandoned_n, strict=True)]
        answered_n = [
            f * ahead + (1 - f - leave) * here
            for f, ahead, here in zip(forward, [1.0, *answered_n[:-1]], answered_n, strict=True)
        ]
        abandoned_n = [
            leave + f * ahead + (1 - f - leave) * here
            for f, ahead, here in zip(forward, [0.0, *abandoned_n[:-1]], abandoned_n, strict=True)
        ]
    return answered, abandoned


@pytest.mark.parametrize(
    ("agents", "traffic", "patience_s", "threshold_s"),
    [(3, 2.5, 60.0, 20.0), (5, 6.0, 300.0, 30.0), (1, 0.8, 30.0, 60.0), (2, 3.0, 20.0, 45.0)],
)
def test_erlang_a_matches_a_brute_force_solution_of_the_markov_chain(
    agents: int, traffic: float, patience_s: float, threshold_s: float
) -> None:
    result = erlang_a_at(agents, traffic, patience_s=patience_s, threshold_s=threshold_s)
    states = brute_force_states(agents, traffic, AHT_S / patience_s)
    queue = states[agents:]
    mean_queue = math.fsum(j * p for j, p in enumerate(queue))
    answered, abandoned = uniformized_outcomes(
        agents / AHT_S, 1 / patience_s, len(queue), threshold_s
    )
    answered_in_time = math.fsum(states[:agents]) + math.fsum(
        p * a for p, a in zip(queue, answered, strict=True)
    )
    abandoned_in_time = math.fsum(p * a for p, a in zip(queue, abandoned, strict=True))
    assert result.p_wait == pytest.approx(math.fsum(queue), abs=1e-12)
    assert result.mean_queue_length == pytest.approx(mean_queue, rel=1e-10)
    assert result.service_level == pytest.approx(answered_in_time, abs=1e-10)
    assert result.service_level_abandon_adjusted == pytest.approx(
        answered_in_time + abandoned_in_time, abs=1e-10
    )


def simpson(f: Callable[[float], float], end: float, steps: int) -> float:
    h = end / steps
    inner = math.fsum((4 if i % 2 else 2) * f(i * h) for i in range(1, steps))
    return h / 3 * (f(0.0) + inner + f(end))


def test_erlang_a_waits_are_the_areas_above_the_service_level_curves() -> None:
    # E[W; answered] = integral of P(answered) - SL(s), and E[W] = integral of 1 - SL_adj(s):
    # ties the closed-form waits to the service-level computation at every threshold.
    agents, traffic, patience_s = 4, 3.0, 60.0
    base = erlang_a_at(agents, traffic, patience_s=patience_s)
    answered = 1 - base.p_abandon

    def curve(s: float) -> tuple[float, float]:
        at = erlang_a_at(agents, traffic, patience_s=patience_s, threshold_s=s)
        return answered - at.service_level, 1 - at.service_level_abandon_adjusted

    answered_area = simpson(lambda s: curve(s)[0], 1500.0, 1500)
    all_area = simpson(lambda s: curve(s)[1], 1500.0, 1500)
    assert base.asa_s * answered == pytest.approx(answered_area, rel=1e-7)
    assert base.mean_wait_s == pytest.approx(all_area, rel=1e-7)


# --- Erlang A properties ----------------------------------------------------------------------


@pytest.mark.parametrize(("agents", "traffic"), [(14, 10.0), (30, 25.0), (120, 110.0)])
def test_erlang_a_converges_to_erlang_c_as_patience_grows(agents: int, traffic: float) -> None:
    a = erlang_a_at(agents, traffic, patience_s=1e12)
    c = erlang_c_metrics(
        agents=agents, calls=traffic, interval_s=AHT_S, aht_s=AHT_S, threshold_s=THRESHOLD_S
    )
    assert a.p_wait == pytest.approx(c.p_wait, abs=1e-6)
    assert a.asa_s == pytest.approx(c.asa_s, abs=1e-6)
    assert a.service_level == pytest.approx(c.service_level, abs=1e-6)
    assert a.occupancy == pytest.approx(c.occupancy, abs=1e-6)
    assert a.p_abandon < 1e-6


ERLANG_A_CASES = [
    (14, 10.0, 600.0),
    (4, 3.0, 60.0),
    (10, 12.0, 120.0),
    (1, 0.5, 10.0),
    (0, 2.0, 90.0),
    (500, 480.0, 600.0),
    (500, 600.0, 120.0),
    (2000, 2100.0, 1800.0),
]


@pytest.mark.parametrize(("agents", "traffic", "patience_s"), ERLANG_A_CASES)
def test_erlang_a_abandonment_equals_theta_times_mean_queue_over_lambda(
    agents: int, traffic: float, patience_s: float
) -> None:
    result = erlang_a_at(agents, traffic, patience_s=patience_s)
    arrival_rate = traffic / AHT_S
    expected = result.mean_queue_length / patience_s / arrival_rate
    assert result.p_abandon == pytest.approx(expected, abs=1e-9)
    assert result.mean_wait_s == pytest.approx(result.p_abandon * patience_s, abs=1e-9)


@pytest.mark.parametrize(("agents", "traffic", "patience_s"), ERLANG_A_CASES)
def test_erlang_a_throughput_balances_answered_calls_and_busy_agents(
    agents: int, traffic: float, patience_s: float
) -> None:
    result = erlang_a_at(agents, traffic, patience_s=patience_s)
    arrival_rate, service_rate = traffic / AHT_S, 1 / AHT_S
    assert arrival_rate * (1 - result.p_abandon) == pytest.approx(
        service_rate * result.mean_busy_agents, abs=1e-9
    )
    for share in (
        result.p_wait,
        result.p_abandon,
        result.service_level,
        result.service_level_abandon_adjusted,
        result.occupancy,
    ):
        assert 0 <= share <= 1
    assert result.service_level <= result.service_level_abandon_adjusted


def test_erlang_a_service_level_rises_with_agents_and_threshold() -> None:
    by_agents = [erlang_a_at(n, 10.0, patience_s=120.0) for n in range(1, 26)]
    levels = [r.service_level for r in by_agents]
    adjusted = [r.service_level_abandon_adjusted for r in by_agents]
    abandons = [r.p_abandon for r in by_agents]
    assert levels == sorted(levels)
    assert len(set(levels)) == len(levels)
    assert adjusted == sorted(adjusted)
    assert abandons == sorted(abandons, reverse=True)
    by_threshold = [
        erlang_a_at(11, 10.0, patience_s=120.0, threshold_s=t) for t in range(0, 301, 15)
    ]
    levels = [r.service_level for r in by_threshold]
    adjusted = [r.service_level_abandon_adjusted for r in by_threshold]
    assert levels == sorted(levels)
    assert len(set(levels)) == len(levels)
    assert adjusted == sorted(adjusted)


def test_erlang_a_service_level_keeps_its_digits_when_tiny() -> None:
    # 200 agents for 300 Erlangs: ~110 callers queue ahead, so almost nobody is answered in
    # time. Summing 1 - CDF would leave rounding noise near 1e-16 instead of these values.
    levels = [
        erlang_a_at(200, 300.0, patience_s=900.0, threshold_s=t).service_level
        for t in (0, 1, 2, 5, 10, 20)
    ]
    assert all(0 < a < b for a, b in itertools.pairwise(levels))
    assert levels[-1] < 1e-37


def test_abandon_adjusted_service_level_counts_early_hang_ups_as_met() -> None:
    at_zero = erlang_a_at(10, 10.0, patience_s=120.0, threshold_s=0.0)
    assert at_zero.service_level == pytest.approx(1 - at_zero.p_wait, abs=1e-15)
    assert at_zero.service_level_abandon_adjusted == pytest.approx(1 - at_zero.p_wait, abs=1e-15)
    # With nobody to answer, everyone hangs up: only those impatient before t count as met.
    nobody = erlang_a_at(0, 5.0, patience_s=60.0)
    assert (nobody.p_wait, nobody.p_abandon, nobody.asa_s) == (1.0, 1.0, math.inf)
    assert nobody.service_level == 0.0
    assert nobody.service_level_abandon_adjusted == pytest.approx(1 - math.exp(-20 / 60))
    assert nobody.mean_wait_s == pytest.approx(60.0)


@dataclass(frozen=True)
class Observed:
    p_wait: float
    p_abandon: float
    service_level: float
    service_level_abandon_adjusted: float
    asa_s: float


def simulate_erlang_a(
    *,
    agents: int,
    arrival_rate: float,
    aht_s: float,
    patience_s: float,
    threshold_s: float,
    calls: int,
    seed: int,
    warm_up: int = 5000,
) -> Observed:
    """Discrete-event M/M/N+M, FCFS: each caller is offered the earliest agent-free time."""
    rng = random.Random(seed)
    # Under FCFS a caller starts when the earliest agent frees up after everyone ahead who stayed;
    # callers who hang up never hold an agent, so one heap of free times replays the queue.
    free_at = [0.0] * agents
    now = 0.0
    waited = abandoned = answered_in_time = left_in_time = 0
    answered_wait = 0.0
    for index in range(warm_up + calls):
        now += rng.expovariate(arrival_rate)
        patience = rng.expovariate(1 / patience_s)
        offered = max(0.0, free_at[0] - now)
        answered = offered < patience
        if answered:
            heapq.heapreplace(free_at, now + offered + rng.expovariate(1 / aht_s))
        if index < warm_up:
            continue
        waited += offered > 0
        if answered:
            answered_wait += offered
            answered_in_time += offered <= threshold_s
            left_in_time += offered <= threshold_s
        else:
            abandoned += 1
            left_in_time += patience <= threshold_s
    return Observed(
        p_wait=waited / calls,
        p_abandon=abandoned / calls,
        service_level=answered_in_time / calls,
        service_level_abandon_adjusted=left_in_time / calls,
        asa_s=answered_wait / (calls - abandoned),
    )


def test_erlang_a_agrees_with_a_discrete_event_simulation() -> None:
    agents, traffic, patience_s = 4, 3.0, 60.0
    exact = erlang_a_at(agents, traffic, patience_s=patience_s)
    seen = simulate_erlang_a(
        agents=agents,
        arrival_rate=traffic / AHT_S,
        aht_s=AHT_S,
        patience_s=patience_s,
        threshold_s=THRESHOLD_S,
        calls=500_000,
        seed=20240601,
    )
    # Across seeds the simulation's standard error is about 0.0013 for P(wait) and SL, 0.0007
    # for P(abandon) and 0.7% for ASA, so these bounds are three to four of them.
    assert seen.p_wait == pytest.approx(exact.p_wait, abs=0.004)
    assert seen.p_abandon == pytest.approx(exact.p_abandon, abs=0.003)
    assert seen.service_level == pytest.approx(exact.service_level, abs=0.004)
    assert seen.service_level_abandon_adjusted == pytest.approx(
        exact.service_level_abandon_adjusted, abs=0.004
    )
    assert seen.asa_s == pytest.approx(exact.asa_s, rel=0.03)


# --- Erlang A staffing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("traffic", "patience_s", "target", "max_abandon", "basis", "max_occupancy"),
    [
        (10.0, 120.0, 0.8, None, ServiceLevelBasis.ANSWERED, 1.0),
        (10.0, 120.0, None, 0.02, ServiceLevelBasis.ANSWERED, 1.0),
        (10.0, 60.0, 0.8, 0.05, ServiceLevelBasis.ABANDON_ADJUSTED, 1.0),
        (47.5, 300.0, 0.9, 0.01, ServiceLevelBasis.ANSWERED, 0.85),
        (3.0, 30.0, 0.7, None, ServiceLevelBasis.ABANDON_ADJUSTED, 1.0),
    ],
)
def test_erlang_a_staffing_meets_targets_with_the_fewest_agents(
    traffic: float,
    patience_s: float,
    target: float | None,
    max_abandon: float | None,
    basis: ServiceLevelBasis,
    max_occupancy: float,
) -> None:
    staffing = erlang_a_staffing(
        calls=traffic,
        interval_s=AHT_S,
        aht_s=AHT_S,
        patience_s=patience_s,
        threshold_s=THRESHOLD_S,
        target_service_level=target,
        max_abandon=max_abandon,
        basis=basis,
        max_occupancy=max_occupancy,
        shrinkage=0.35,
    )

    def meets(result: ErlangAResult) -> bool:
        level = (
            result.service_level
            if basis is ServiceLevelBasis.ANSWERED
            else result.service_level_abandon_adjusted
        )
        return (
            (target is None or level >= target)
            and (max_abandon is None or result.p_abandon <= max_abandon)
            and result.occupancy <= max_occupancy
        )

    agents = 1
    while not meets(erlang_a_at(agents, traffic, patience_s=patience_s)):
        agents += 1
    assert staffing.required == agents
    assert staffing.scheduled == math.ceil(agents / 0.65)
    assert staffing.result == erlang_a_at(agents, traffic, patience_s=patience_s)


def test_erlang_a_staffing_with_endless_patience_matches_erlang_c() -> None:
    staffing = erlang_a_staffing(
        calls=CALLS,
        interval_s=INTERVAL_S,
        aht_s=AHT_S,
        patience_s=1e12,
        threshold_s=THRESHOLD_S,
        target_service_level=0.8,
    )
    assert staffing.required == 14


def test_abandon_adjusted_basis_needs_no_more_agents_than_answered() -> None:
    def required(basis: ServiceLevelBasis) -> int:
        return erlang_a_staffing(
            calls=10.0,
            interval_s=AHT_S,
            aht_s=AHT_S,
            patience_s=30.0,
            threshold_s=THRESHOLD_S,
            target_service_level=0.8,
            basis=basis,
        ).required

    assert required(ServiceLevelBasis.ABANDON_ADJUSTED) < required(ServiceLevelBasis.ANSWERED)


# --- bad input --------------------------------------------------------------------------------


def c_metrics(
    *, agents: int = 14, calls: float = CALLS, aht_s: float = AHT_S, threshold_s: float = 20.0
) -> ErlangCResult:
    return erlang_c_metrics(
        agents=agents, calls=calls, interval_s=INTERVAL_S, aht_s=aht_s, threshold_s=threshold_s
    )


def a_metrics(
    *, agents: int = 14, calls: float = CALLS, patience_s: float = 60.0, threshold_s: float = 20.0
) -> ErlangAResult:
    return erlang_a_metrics(
        agents=agents,
        calls=calls,
        interval_s=INTERVAL_S,
        aht_s=AHT_S,
        patience_s=patience_s,
        threshold_s=threshold_s,
    )


def c_staffing(
    *,
    target_service_level: float = 0.8,
    max_asa_s: float | None = None,
    max_occupancy: float = 1.0,
    shrinkage: float = 0.0,
) -> Staffing[ErlangCResult]:
    return erlang_c_staffing(
        calls=CALLS,
        interval_s=INTERVAL_S,
        aht_s=AHT_S,
        threshold_s=THRESHOLD_S,
        target_service_level=target_service_level,
        max_asa_s=max_asa_s,
        max_occupancy=max_occupancy,
        shrinkage=shrinkage,
    )


def a_staffing(
    *,
    target_service_level: float | None = 0.8,
    max_abandon: float | None = None,
    basis: ServiceLevelBasis = ServiceLevelBasis.ANSWERED,
) -> Staffing[ErlangAResult]:
    return erlang_a_staffing(
        calls=CALLS,
        interval_s=INTERVAL_S,
        aht_s=AHT_S,
        patience_s=60.0,
        threshold_s=THRESHOLD_S,
        target_service_level=target_service_level,
        max_abandon=max_abandon,
        basis=basis,
    )


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda: traffic_intensity(-1, 1800, 180), "calls"),
        (lambda: traffic_intensity(math.nan, 1800, 180), "calls"),
        (lambda: traffic_intensity(10, 0, 180), "interval_s"),
        (lambda: traffic_intensity(10, 1800, 0), "aht_s"),
        (lambda: traffic_intensity(10, 1800, -5), "aht_s"),
        (lambda: erlang_b(-1, 2.0), "agents"),
        (lambda: erlang_b(3, -0.5), "traffic"),
        (lambda: erlang_b(3, math.inf), "traffic"),
        (lambda: erlang_c(2.5, 1.0), "agents"),  # type: ignore[arg-type]
        (lambda: c_metrics(agents=-2), "agents"),
        (lambda: c_metrics(calls=-100), "calls"),
        (lambda: c_metrics(aht_s=0), "aht_s"),
        (lambda: c_metrics(threshold_s=-1), "threshold_s"),
        (lambda: a_metrics(patience_s=0), "patience_s"),
        (lambda: a_metrics(patience_s=math.inf), "patience_s"),
        (lambda: a_metrics(threshold_s=math.nan), "threshold_s"),
        (lambda: a_metrics(agents=1, calls=1000, patience_s=1e9), "patience_s"),
        (lambda: c_staffing(target_service_level=0), "target_service_level"),
        (lambda: c_staffing(target_service_level=1.2), "target_service_level"),
        (lambda: c_staffing(shrinkage=1.0), "shrinkage"),
        (lambda: c_staffing(shrinkage=-0.1), "shrinkage"),
        (lambda: c_staffing(max_occupancy=0), "max_occupancy"),
        (lambda: c_staffing(max_occupancy=1.01), "max_occupancy"),
        (lambda: c_staffing(max_asa_s=0), "max_asa_s"),
        (lambda: a_staffing(target_service_level=None), "target_service_level or max_abandon"),
        (lambda: a_staffing(max_abandon=0), "max_abandon"),
        (lambda: a_staffing(max_abandon=1), "max_abandon"),
        (lambda: a_staffing(basis="answered-ish"), "basis"),  # type: ignore[arg-type]
        (lambda: scheduled_agents(-1, 0.3), "required"),
        (lambda: scheduled_agents(14, 1.5), "shrinkage"),
    ],
)
def test_bad_input_raises_a_value_error_naming_the_parameter(
    call: Callable[[], object], parameter: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{parameter} (must|is)"):
        call()
