"""Statistics of a simulation run and the Erlang C/A predictions, as a JSON-able dict.

Definitions (docs/acd-simulate.md says the same):
- offered = answered + abandoned (calls that overflowed out of the ACD are counted apart);
- P(wait) = offered calls that waited more than 0 s / offered;
- ASA = mean wait of answered calls (arrival to the agent answering);
- service level = answered within the queue's threshold / offered — abandons count against it,
  ``callmesh.core.queueing.ServiceLevelBasis.ANSWERED`` (the abandon-adjusted variant also
  counts calls abandoned within the threshold as met, ``ABANDON_ADJUSTED``);
- abandon rate = abandoned / offered;
- occupancy = busy agent-seconds (reserved, ringing, on call, after-call work) / logged-in
  agent-seconds, over the window from the first measured arrival to the last arrival;
- EWT error = announced EWT at entry - actual wait, over answered calls that had to wait at entry.
"""

from __future__ import annotations

import math
from typing import Any

from callmesh.acd.sim.scenario import HandleDistribution, Scenario
from callmesh.acd.sim.simulator import ABANDONED, ANSWERED, OVERFLOWED, TALKING, SimResult
from callmesh.core.queueing import erlang_a_metrics, erlang_c_metrics

# A wait below this is no wait (float noise of the virtual clock).
_NO_WAIT_S = 1e-9


def _num(value: float) -> float | None:
    """A JSON number (None for NaN/inf), rounded to keep the output readable."""
    if not math.isfinite(value):
        return None
    return round(value, 6)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def _p90(values: list[float]) -> float:
    """Nearest-rank 90th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def call_stats(indices: list[int], result: SimResult, thresholds: list[float]) -> dict[str, Any]:
    """The statistics of the given calls (indices into the result's call lists)."""
    answered = abandoned = overflowed = unfinished = waited = 0
    in_time = abandoned_in_time = 0
    answered_wait = 0.0
    offered_wait = 0.0
    errors: list[float] = []
    states = result.call_state
    waits = result.call_wait
    ewts = result.call_ewt
    queues = result.call_queue
    for index in indices:
        state = states[index]
        wait = waits[index]
        threshold = thresholds[queues[index]]
        if state in (ANSWERED, TALKING):
            answered += 1
            answered_wait += wait
            if wait > _NO_WAIT_S:
                waited += 1
            if wait <= threshold:
                in_time += 1
            ewt = ewts[index]
            if not math.isnan(ewt):
                errors.append(ewt - wait)
            offered_wait += wait
        elif state == ABANDONED:
            abandoned += 1
            waited += 1
            offered_wait += wait
            if wait <= threshold:
                abandoned_in_time += 1
        elif state == OVERFLOWED:
            overflowed += 1
        else:
            unfinished += 1
    offered = answered + abandoned
    distinct = {thresholds[queues[i]] for i in indices}
    stats: dict[str, Any] = {
        "calls": len(indices),
        "answered": answered,
        "abandoned": abandoned,
        "overflowed": overflowed,
        "unfinished": unfinished,
        "p_wait": _ratio(waited, offered),
        "asa_s": _num(answered_wait / answered) if answered else None,
        "mean_wait_s": _num(offered_wait / offered) if offered else None,
        "service_level": _ratio(in_time, offered),
        "service_level_abandon_adjusted": _ratio(in_time + abandoned_in_time, offered),
        "service_level_threshold_s": distinct.pop() if len(distinct) == 1 else None,
        "abandon_rate": _ratio(abandoned, offered),
        "overflow_rate": _ratio(overflowed, len(indices)),
        "ewt_error": _ewt_stats(errors),
    }
    return stats


def _ewt_stats(errors: list[float]) -> dict[str, Any]:
    if not errors:
        return {"calls": 0, "mae_s": None, "mean_error_s": None, "p90_abs_error_s": None}
    absolute = [abs(e) for e in errors]
    return {
        "calls": len(errors),
        "mae_s": _num(math.fsum(absolute) / len(errors)),
        "mean_error_s": _num(math.fsum(errors) / len(errors)),
        "p90_abs_error_s": _num(_p90(absolute)),
    }


def occupancy(result: SimResult, agent_ids: list[str]) -> float | None:
    """Busy agent-seconds / logged-in agent-seconds in the statistics window."""
    span = result.window_s
    if not agent_ids or not math.isfinite(span) or span <= 0:
        return None
    busy = math.fsum(result.agent_busy_s[a] for a in agent_ids)
    return round(busy / (span * len(agent_ids)), 6)


def erlang_prediction(
    scenario: Scenario,
    *,
    calls_per_hour: float | None = None,
    talk_s: float | None = None,
    patience_s: float | None = None,
) -> dict[str, Any] | None:
    """Erlang C (no patience) or Erlang A (patience) for a single-queue scenario, else None.

    Rate, mean talk time and patience are the scenario's unless given (the realized ones).
    """
    if not scenario.single_queue():
        return None
    queue = scenario.queues[0]
    agents = sum(pool.count for pool in scenario.agents)
    # The time an agent is held by one call: ringing, talking, wrap-up.
    talk = queue.handle.mean_s if talk_s is None else talk_s
    hold_s = talk + queue.wrap_up_s + scenario.ring_s
    per_hour = queue.rate_per_s * 3600.0 if calls_per_hour is None else calls_per_hour
    patience = queue.patience_s if patience_s is None else patience_s
    exact = (
        queue.handle.dist is HandleDistribution.EXPONENTIAL
        and queue.wrap_up_s == 0
        and scenario.ring_s == 0
    )
    base: dict[str, Any] = {
        "agents": agents,
        "calls_per_hour": _num(per_hour),
        "traffic_erlangs": _num(per_hour * hold_s / 3600.0),
        "aht_s": _num(hold_s),
        # exponential holding times (talk only, no ring or wrap-up) make the model exact
        "exact": exact,
    }
    try:
        if patience is None:
            c = erlang_c_metrics(
                agents=agents,
                calls=per_hour,
                interval_s=3600.0,
                aht_s=hold_s,
                threshold_s=queue.service_level_s,
            )
            return {
                "model": "erlang_c",
                **base,
                "p_wait": _num(c.p_wait),
                "asa_s": _num(c.asa_s),
                "service_level": _num(c.service_level),
                "abandon_rate": 0.0,
                "occupancy": _num(c.occupancy),
            }
        a = erlang_a_metrics(
            agents=agents,
            calls=per_hour,
            interval_s=3600.0,
            aht_s=hold_s,
            patience_s=patience,
            threshold_s=queue.service_level_s,
        )
    except ValueError as err:
        return {"model": "erlang_a" if patience else "erlang_c", **base, "error": str(err)}
    return {
        "model": "erlang_a",
        **base,
        "patience_s": _num(patience),
        "p_wait": _num(a.p_wait),
        "asa_s": _num(a.asa_s),
        "mean_wait_s": _num(a.mean_wait_s),
        "service_level": _num(a.service_level),
        "service_level_abandon_adjusted": _num(a.service_level_abandon_adjusted),
        "abandon_rate": _num(a.p_abandon),
        "occupancy": _num(a.occupancy),
    }


def realized_prediction(result: SimResult) -> dict[str, Any] | None:
    """Erlang C/A for the traffic the run actually drew: its arrival rate, mean talk time and
    mean patience over the measured calls (the nominal values fluctuate by ~1/sqrt(calls))."""
    measured = result.measured
    if result.gaps < 1 or not result.window_s > 0:
        return None
    rate_per_hour = result.gaps / result.window_s * 3600.0
    talk = math.fsum(result.call_handle[i] for i in measured) / len(measured)
    patience = None
    if result.scenario.queues[0].patience_s is not None:
        patience = math.fsum(result.call_patience[i] for i in measured) / len(measured)
    return erlang_prediction(
        result.scenario, calls_per_hour=rate_per_hour, talk_s=talk, patience_s=patience
    )


def build_report(result: SimResult) -> dict[str, Any]:
    """The JSON document ``callmesh acd simulate`` prints."""
    scenario = result.scenario
    warmup = scenario.warmup_calls
    thresholds = [q.service_level_s for q in scenario.queues]
    measured = result.measured
    overall = call_stats(measured, result, thresholds)
    overall["occupancy"] = occupancy(result, list(result.agent_pool))
    by_queue: dict[str, list[int]] = {q: [] for q in result.queue_ids}
    for index in measured:
        by_queue[result.queue_ids[result.call_queue[index]]].append(index)
    pools: dict[str, list[str]] = {}
    for agent_id, pool_id in result.agent_pool.items():
        pools.setdefault(pool_id, []).append(agent_id)
    return {
        "scenario": {
            "seed": scenario.seed,
            "calls": scenario.calls,
            "warmup": warmup,
            "ring_s": scenario.ring_s,
            "queues": [q.model_dump(mode="json", exclude_none=True) for q in scenario.queues],
            "agents": [p.model_dump(mode="json") for p in scenario.agents],
        },
        "overall": overall,
        "queues": {q: call_stats(idx, result, thresholds) for q, idx in by_queue.items()},
        "pools": {
            pool_id: {"agents": len(ids), "occupancy": occupancy(result, ids)}
            for pool_id, ids in pools.items()
        },
        "erlang": erlang_prediction(scenario),
        "erlang_realized": realized_prediction(result),
        "run": {
            "virtual_s": _num(result.virtual_s),
            "window_s": _num(result.window_s),
            "runs": result.runs,
            "events": result.events,
            "engine_calls": result.engine_calls,
            "wall_s": round(result.wall_s, 3),
            "calls_per_wall_s": round(len(result.call_state) / result.wall_s)
            if result.wall_s > 0
            else None,
            **result.counters,
        },
    }
