"""Queueing math for the ACD and WFM: Erlang B, Erlang C (M/M/N) and Erlang A (M/M/N+M)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

__all__ = [
    "ErlangAResult",
    "ErlangCResult",
    "ServiceLevelBasis",
    "Staffing",
    "erlang_a_metrics",
    "erlang_a_staffing",
    "erlang_b",
    "erlang_c",
    "erlang_c_metrics",
    "erlang_c_staffing",
    "scheduled_agents",
    "traffic_intensity",
]

# Queue states are dropped once everything beyond them is below this share of the largest state.
_STATE_TAIL = 1e-16
# Targets are compared with this slack so float rounding never costs an extra agent.
_SLACK = 1e-12
# A longer queue means patience so long for the load that the model is effectively Erlang C
# with N <= A; refusing beats looping for minutes.
_MAX_QUEUE_STATES = 1_000_000


class ServiceLevelBasis(StrEnum):
    """Which calls count as meeting the service-level threshold."""

    # Answered within t / all offered calls: abandons always count against the service level.
    ANSWERED = "answered"
    # (Answered within t + abandoned within t) / all offered calls: a caller who hangs up before
    # t counts as met. Zero agents can meet it when patience < t, so pair it with max_abandon.
    ABANDON_ADJUSTED = "abandon_adjusted"


@dataclass(frozen=True, slots=True)
class ErlangCResult:
    """M/M/N performance for one staffing level; times in seconds, probabilities in [0, 1]."""

    agents: int
    traffic: float
    p_wait: float
    asa_s: float
    service_level: float
    occupancy: float


@dataclass(frozen=True, slots=True)
class ErlangAResult:
    """M/M/N+M performance for one staffing level; all shares are of every offered call."""

    agents: int
    traffic: float
    p_wait: float
    p_abandon: float
    # Mean wait of answered calls (what an ACD wallboard shows as ASA).
    asa_s: float
    # Mean wait of all offered calls, abandoned ones up to the moment they hung up.
    mean_wait_s: float
    # ServiceLevelBasis.ANSWERED: answered within the threshold / offered.
    service_level: float
    # ServiceLevelBasis.ABANDON_ADJUSTED: (answered + abandoned within the threshold) / offered.
    service_level_abandon_adjusted: float
    occupancy: float
    mean_queue_length: float
    mean_busy_agents: float


ResultT = TypeVar("ResultT", ErlangCResult, ErlangAResult)


@dataclass(frozen=True, slots=True)
class Staffing(Generic[ResultT]):
    """Agents needed on the phones, agents to schedule once shrinkage is covered, and the result."""

    required: int
    scheduled: int
    result: ResultT


class _QueueTooLong(ValueError):
    """The queue-length distribution needs more states than we are willing to hold."""


def _check(name: str, ok: bool, rule: str, value: object) -> None:
    # NaN fails every comparison, so `ok` built from comparisons rejects it too.
    if not ok:
        raise ValueError(f"{name} must be {rule} (got {value!r})")


def _check_agents(agents: int) -> None:
    ok = isinstance(agents, int) and not isinstance(agents, bool) and agents >= 0
    _check("agents", ok, "an integer >= 0", agents)


def _check_traffic(traffic: float) -> None:
    _check("traffic", math.isfinite(traffic) and traffic >= 0, "a finite number >= 0", traffic)


def _check_workload(calls: float, interval_s: float, aht_s: float) -> None:
    _check("calls", math.isfinite(calls) and calls >= 0, "a finite number >= 0", calls)
    _check("interval_s", math.isfinite(interval_s) and interval_s > 0, "finite and > 0", interval_s)
    _check("aht_s", math.isfinite(aht_s) and aht_s > 0, "finite and > 0", aht_s)


def _check_threshold(threshold_s: float) -> None:
    ok = math.isfinite(threshold_s) and threshold_s >= 0
    _check("threshold_s", ok, "a finite number >= 0", threshold_s)


def _check_patience(patience_s: float) -> None:
    ok = math.isfinite(patience_s) and patience_s > 0
    _check("patience_s", ok, "finite and > 0", patience_s)


def _check_staffing_limits(max_occupancy: float, shrinkage: float) -> None:
    _check("max_occupancy", 0 < max_occupancy <= 1, "in (0, 1]", max_occupancy)
    _check("shrinkage", 0 <= shrinkage < 1, "in [0, 1)", shrinkage)


def _check_target_service_level(target: float) -> None:
    _check("target_service_level", 0 < target <= 1, "in (0, 1]", target)


def traffic_intensity(calls: float, interval_s: float, aht_s: float) -> float:
    """Offered load in Erlangs: calls * AHT / interval length."""
    _check_workload(calls, interval_s, aht_s)
    return calls * aht_s / interval_s


def scheduled_agents(required: int, shrinkage: float) -> int:
    """Agents to schedule so that `required` remain after shrinkage: ceil(N / (1 - shrinkage))."""
    _check("required", isinstance(required, int) and required >= 0, "an integer >= 0", required)
    _check("shrinkage", 0 <= shrinkage < 1, "in [0, 1)", shrinkage)
    # 1 - 0.3 is not exactly 0.7 in binary, and 14 / (1 - 0.3) must still schedule 20, not 21.
    return math.ceil(round(required / (1 - shrinkage), 9))


def erlang_b(agents: int, traffic: float) -> float:
    """Blocking probability of an M/M/N/N loss system (Erlang B)."""
    _check_agents(agents)
    _check_traffic(traffic)
    # B(n) = A B(n-1) / (n + A B(n-1)) keeps every intermediate in [0, 1], so nothing overflows
    # for thousands of agents, unlike the textbook A^N / N! sum.
    blocking = 1.0
    for n in range(1, agents + 1):
        blocking = traffic * blocking / (n + traffic * blocking)
    return blocking


def _c_from_b(agents: int, traffic: float, blocking: float) -> float:
    # Only valid when agents > traffic; the result is clamped against rounding just above 1.
    return min(1.0, agents * blocking / (agents - traffic * (1 - blocking)))


def erlang_c(agents: int, traffic: float) -> float:
    """Probability that a call waits in an M/M/N queue (Erlang C); 1 when agents <= traffic."""
    _check_agents(agents)
    _check_traffic(traffic)
    if traffic == 0:
        return 0.0
    if agents <= traffic:
        return 1.0
    return _c_from_b(agents, traffic, erlang_b(agents, traffic))


def _occupancy(busy: float, agents: int) -> float:
    return busy / agents if agents else 0.0


def _erlang_c_result(
    agents: int, traffic: float, p_wait: float, aht_s: float, threshold_s: float
) -> ErlangCResult:
    if traffic == 0:
        return ErlangCResult(agents, 0.0, 0.0, 0.0, 1.0, 0.0)
    if agents <= traffic:
        # The queue grows without bound: every call waits, none within any threshold.
        return ErlangCResult(agents, traffic, 1.0, math.inf, 0.0, _occupancy(agents, agents))
    spare = agents - traffic
    return ErlangCResult(
        agents=agents,
        traffic=traffic,
        p_wait=p_wait,
        asa_s=p_wait * aht_s / spare,
        service_level=1 - p_wait * math.exp(-spare * threshold_s / aht_s),
        occupancy=traffic / agents,
    )


def erlang_c_metrics(
    *, agents: int, calls: float, interval_s: float, aht_s: float, threshold_s: float
) -> ErlangCResult:
    """P(wait), ASA, service level within `threshold_s` and occupancy of an M/M/N queue."""
    _check_agents(agents)
    traffic = traffic_intensity(calls, interval_s, aht_s)
    _check_threshold(threshold_s)
    return _erlang_c_result(agents, traffic, erlang_c(agents, traffic), aht_s, threshold_s)


def erlang_c_staffing(
    *,
    calls: float,
    interval_s: float,
    aht_s: float,
    threshold_s: float,
    target_service_level: float,
    max_asa_s: float | None = None,
    max_occupancy: float = 1.0,
    shrinkage: float = 0.0,
) -> Staffing[ErlangCResult]:
    """Fewest agents meeting the service level (and max ASA, occupancy cap), plus shrinkage."""
    traffic = traffic_intensity(calls, interval_s, aht_s)
    _check_threshold(threshold_s)
    _check_target_service_level(target_service_level)
    if max_asa_s is not None:
        _check("max_asa_s", max_asa_s > 0, "> 0", max_asa_s)
    _check_staffing_limits(max_occupancy, shrinkage)
    if traffic == 0:
        result = _erlang_c_result(0, 0.0, 0.0, aht_s, threshold_s)
        return Staffing(0, 0, result)
    agents = math.floor(traffic) + 1
    blocking = erlang_b(agents, traffic)
    while True:
        result = _erlang_c_result(
            agents, traffic, _c_from_b(agents, traffic, blocking), aht_s, threshold_s
        )
        if (
            result.service_level >= target_service_level - _SLACK
            and (max_asa_s is None or result.asa_s <= max_asa_s + _SLACK)
            and result.occupancy <= max_occupancy + _SLACK
        ):
            return Staffing(agents, scheduled_agents(agents, shrinkage), result)
        # Every target improves monotonically with N, so one Erlang B step per agent suffices.
        agents += 1
        blocking = traffic * blocking / (agents + traffic * blocking)


def _too_long() -> str:
    return (
        f"patience_s is too long for this load: the queue would need more than "
        f"{_MAX_QUEUE_STATES} states (use Erlang C, or more agents)"
    )


def _erlang_a_states(agents: int, traffic: float, rho: float) -> tuple[list[float], list[float]]:
    """Stationary P(k in system) for k < N, and for k = N + j (j waiting), j = 0, 1, ..."""
    # Log weights: A^k / k! up to N, then times A / (N + j rho) per waiting call, where
    # rho = theta / mu = AHT / patience. Logs keep N and A in the thousands far from overflow.
    log_tail = math.log(_STATE_TAIL)
    if agents < traffic:
        # The mode of an overloaded queue sits at (A - N) / rho waiting calls.
        hopeless = (traffic - agents) / rho > _MAX_QUEUE_STATES
    else:
        # log(A / (N + i rho)) >= -(N - A + i rho) / A, so if even that bound has not fallen
        # by -log_tail within the cap, the tail cannot be cut there; say so before looping.
        cap = _MAX_QUEUE_STATES
        hopeless = ((agents - traffic) * cap + rho * cap * (cap + 1) / 2) / traffic < -log_tail
    if hopeless:
        raise _QueueTooLong(_too_long())
    log_traffic = math.log(traffic)
    below = [k * log_traffic - math.lgamma(k + 1) for k in range(agents)]
    current = agents * log_traffic - math.lgamma(agents + 1)
    queue = [current]
    peak = max([*below, current])
    waiting = 0
    while True:
        waiting += 1
        ratio = traffic / (agents + waiting * rho)
        current += math.log(ratio)
        queue.append(current)
        peak = max(peak, current)
        # Past the mode the ratios only shrink, so the rest is at most a geometric series.
        if ratio < 1 and current + math.log(ratio / (1 - ratio)) < peak + log_tail:
            break
        if waiting > _MAX_QUEUE_STATES:
            raise _QueueTooLong(_too_long())
    below_w = [math.exp(x - peak) for x in below]
    queue_w = [math.exp(x - peak) for x in queue]
    total = math.fsum(below_w) + math.fsum(queue_w)
    return [w / total for w in below_w], [w / total for w in queue_w]


def _pure_birth(
    alpha: float, theta: float, t: float, count: int
) -> tuple[list[float], list[float]]:
    """P(X(t) <= j) and P(X(t) > j) for j < count; X births at rate alpha + x theta from 0."""
    if alpha == 0:
        return [1.0] * count, [0.0] * count
    # A pure-birth process with linear rates is negative binomial: pmf(0) = e^(-alpha t) and
    # pmf(k+1) / pmf(k) = (alpha + k theta) q / (k + 1), q = (1 - e^(-theta t)) / theta.
    # Stepping the log keeps e^(-alpha t) from underflowing and q stays exact as theta -> 0.
    q = -math.expm1(-theta * t) / theta
    limit = -math.expm1(-theta * t)
    log_pmf = -alpha * t
    pmf = []
    for k in range(count):
        pmf.append(math.exp(log_pmf))
        log_pmf += math.log((alpha + k * theta) * q / (k + 1))
    cdf = list(itertools.accumulate(pmf))
    if cdf[-1] <= 0.5:
        return cdf, [1 - c for c in cdf]
    # Near the top 1 - cdf would keep only rounding noise, so sum the upper tail itself: the
    # ratios move monotonically toward `limit` < 1, so max(ratio, limit) bounds all later ones.
    tail = 0.0
    k = count
    while True:
        term = math.exp(log_pmf)
        tail += term
        ratio = (alpha + k * theta) * q / (k + 1)
        bound = max(ratio, limit)
        if bound < 1 and term * bound / (1 - bound) <= _STATE_TAIL * tail:
            break
        log_pmf += math.log(ratio)
        k += 1
    above = [0.0] * count
    above[-1] = tail
    for j in range(count - 2, -1, -1):
        above[j] = above[j + 1] + pmf[j + 1]
    return cdf, [1 - c if c <= 0.5 else a for c, a in zip(cdf, above, strict=True)]


def _in_time(
    serve_rate: float, theta: float, queue: list[float], threshold_s: float
) -> tuple[float, float]:
    """Shares of all arrivals that queue and are answered by t, and that still wait at t."""
    if threshold_s == 0:
        return 0.0, math.fsum(queue)
    # A caller with j ahead would reach an agent after T_j = sum_{i=0..j} Exp(Nmu + i theta)
    # (service or an abandon ahead moves it up), and its own Exp(theta) patience is independent
    # of the callers ahead. So it is still waiting at t with probability e^(-theta t) P(T_j > t),
    # and answered by t with probability E[e^(-theta T_j); T_j <= t], which tilting each stage
    # turns into Nmu / (Nmu + (j+1) theta) * P(sum_{i=0..j} Exp(Nmu + (i+1) theta) <= t).
    # Both sums are birth times of linear pure-birth processes, whose law is closed-form: exact
    # for every j at once in O(j), with no Poisson truncation as uniformization would need.
    positions = len(queue)
    _, reached = _pure_birth(serve_rate + theta, theta, threshold_s, positions)
    not_reached, _ = _pure_birth(serve_rate, theta, threshold_s, positions)
    answered = math.fsum(
        p * serve_rate / (serve_rate + (j + 1) * theta) * r
        for j, (p, r) in enumerate(zip(queue, reached, strict=True))
    )
    waiting = math.exp(-theta * threshold_s) * math.fsum(
        p * n for p, n in zip(queue, not_reached, strict=True)
    )
    return answered, waiting


def _erlang_a_result(
    agents: int, traffic: float, aht_s: float, patience_s: float, threshold_s: float
) -> ErlangAResult:
    if traffic == 0:
        return ErlangAResult(agents, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0)
    mu = 1 / aht_s
    theta = 1 / patience_s
    arrival_rate = traffic * mu
    serve_rate = agents * mu
    below, queue = _erlang_a_states(agents, traffic, aht_s / patience_s)
    # PASTA: an arrival sees the stationary state; it waits iff all agents are busy.
    p_immediate = math.fsum(below)
    p_wait = math.fsum(queue)
    mean_queue = math.fsum(j * p for j, p in enumerate(queue))
    busy = math.fsum(k * p for k, p in enumerate(below)) + agents * p_wait
    # From j ahead the caller is answered with probability prod (Nmu + i theta)/(Nmu + (i+1)
    # theta) = Nmu / (Nmu + (j+1) theta); holding times are independent of which way each stage
    # ends, so an answered caller waited sum_i 1 / (Nmu + (i+1) theta).
    p_abandon_terms = []
    answered_wait_terms = []
    stage_time = 0.0
    for j, p in enumerate(queue):
        exit_rate = serve_rate + (j + 1) * theta
        stage_time += 1 / exit_rate
        p_abandon_terms.append(p * (j + 1) * theta / exit_rate)
        answered_wait_terms.append(p * serve_rate / exit_rate * stage_time)
    p_abandon = math.fsum(p_abandon_terms)
    p_answered = 1 - p_abandon
    asa = math.fsum(answered_wait_terms) / p_answered if p_answered > 0 else math.inf
    answered_in_time, still_waiting = _in_time(serve_rate, theta, queue, threshold_s)
    return ErlangAResult(
        agents=agents,
        traffic=traffic,
        p_wait=p_wait,
        p_abandon=p_abandon,
        asa_s=asa,
        mean_wait_s=mean_queue / arrival_rate,
        service_level=p_immediate + answered_in_time,
        service_level_abandon_adjusted=max(0.0, 1 - still_waiting),
        occupancy=_occupancy(busy, agents),
        mean_queue_length=mean_queue,
        mean_busy_agents=busy,
    )


def erlang_a_metrics(
    *,
    agents: int,
    calls: float,
    interval_s: float,
    aht_s: float,
    patience_s: float,
    threshold_s: float,
) -> ErlangAResult:
    """Exact M/M/N+M (Palm) performance with exponential patience of mean `patience_s`."""
    _check_agents(agents)
    traffic = traffic_intensity(calls, interval_s, aht_s)
    _check_patience(patience_s)
    _check_threshold(threshold_s)
    return _erlang_a_result(agents, traffic, aht_s, patience_s, threshold_s)


def erlang_a_staffing(
    *,
    calls: float,
    interval_s: float,
    aht_s: float,
    patience_s: float,
    threshold_s: float,
    target_service_level: float | None = None,
    max_abandon: float | None = None,
    basis: ServiceLevelBasis = ServiceLevelBasis.ANSWERED,
    max_occupancy: float = 1.0,
    shrinkage: float = 0.0,
) -> Staffing[ErlangAResult]:
    """Fewest agents (at least one when calls arrive) meeting the SL and/or abandon targets."""
    traffic = traffic_intensity(calls, interval_s, aht_s)
    _check_patience(patience_s)
    _check_threshold(threshold_s)
    if target_service_level is None and max_abandon is None:
        raise ValueError("target_service_level or max_abandon must be given (staffing needs one)")
    if target_service_level is not None:
        _check_target_service_level(target_service_level)
    if max_abandon is not None:
        _check("max_abandon", 0 < max_abandon < 1, "in (0, 1)", max_abandon)
    try:
        # Accept the plain strings an HTTP schema or settings file would carry.
        basis = ServiceLevelBasis(basis)
    except ValueError:
        choices = ", ".join(repr(b.value) for b in ServiceLevelBasis)
        raise ValueError(f"basis must be one of {choices} (got {basis!r})") from None
    _check_staffing_limits(max_occupancy, shrinkage)
    if traffic == 0:
        return Staffing(0, 0, _erlang_a_result(0, 0.0, aht_s, patience_s, threshold_s))

    def meets(agents: int) -> ErlangAResult | None:
        try:
            result = _erlang_a_result(agents, traffic, aht_s, patience_s, threshold_s)
        except _QueueTooLong:
            # Only a hopelessly overloaded queue is that long; it meets no sensible target.
            return None
        level = (
            result.service_level
            if basis is ServiceLevelBasis.ANSWERED
            else result.service_level_abandon_adjusted
        )
        ok = (
            (target_service_level is None or level >= target_service_level - _SLACK)
            and (max_abandon is None or result.p_abandon <= max_abandon + _SLACK)
            and result.occupancy <= max_occupancy + _SLACK
        )
        return result if ok else None

    # Service level, abandonment and occupancy are all monotone in N, so gallop up to a
    # staffing that works and bisect down: O(log N) evaluations instead of O(N).
    low = 0
    high = max(1, math.ceil(traffic))
    best = meets(high)
    while best is None:
        low, high = high, 2 * high
        best = meets(high)
    while high - low > 1:
        middle = (low + high) // 2
        found = meets(middle)
        if found is None:
            low = middle
        else:
            high, best = middle, found
    return Staffing(high, scheduled_agents(high, shrinkage), best)
