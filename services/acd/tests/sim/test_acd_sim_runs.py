"""Short simulations through the real engine: every call accounted for, FIFO exactness, skills."""

from __future__ import annotations

import heapq
import math
from typing import Any

import pytest

from callmesh.acd.sim import parse_scenario, run, simulate_scenario, single_queue
from callmesh.acd.sim.simulator import ABANDONED, ANSWERED, SimResult
from callmesh.core.errors import InvalidInput


def _fifo_reference(result: SimResult, agents: int) -> list[tuple[bool, float]]:
    """(answered, wait) of each call by the textbook FIFO recursion with reneging, on the
    run's own arrival, talk and patience draws (identical agents, no ring, no wrap-up)."""
    free = [-math.inf] * agents
    outcome = []
    for arrival, handle, patience in zip(
        result.call_arrival, result.call_handle, result.call_patience, strict=True
    ):
        start = max(arrival, free[0])
        if start - arrival < patience:
            heapq.heapreplace(free, start + handle)
            outcome.append((True, start - arrival))
        else:
            outcome.append((False, patience))
    return outcome


@pytest.mark.parametrize("patience", [None, 60.0])
def test_engine_routes_exactly_like_a_fifo_queue(patience: float | None) -> None:
    scenario = single_queue(
        agents=6, traffic=5.4, aht_s=120.0, patience_s=patience, calls=4000, seed=3
    )
    result = simulate_scenario(scenario)
    reference = _fifo_reference(result, 6)
    for index, (answered, wait) in enumerate(reference):
        assert result.call_state[index] == (ANSWERED if answered else ABANDONED), index
        assert result.call_wait[index] == pytest.approx(wait, abs=1e-6), index


def test_every_call_is_answered_abandoned_or_overflowed() -> None:
    report = run(single_queue(agents=5, traffic=4.5, aht_s=60.0, patience_s=30.0, calls=3000))
    overall = report["overall"]
    assert overall["calls"] == 3000 - 150
    assert overall["unfinished"] == 0
    assert overall["answered"] + overall["abandoned"] == overall["calls"]
    assert 0 < overall["abandon_rate"] < 0.5
    assert overall["p_wait"] >= overall["abandon_rate"]
    assert overall["service_level"] <= overall["service_level_abandon_adjusted"]
    assert 0.5 < overall["occupancy"] < 1
    assert report["erlang"]["model"] == "erlang_a"
    assert report["run"]["engine_wait_mismatch"] == 0


def test_the_same_seed_gives_the_same_numbers() -> None:
    scenario = single_queue(agents=4, traffic=3.0, aht_s=100.0, calls=2000, seed=11)
    first, second = run(scenario), run(scenario)
    assert first["overall"] == second["overall"]
    other = run(scenario.model_copy(update={"seed": 12}))
    assert other["overall"] != first["overall"]


def test_wrap_up_holds_agents_and_is_in_the_prediction() -> None:
    scenario = single_queue(agents=8, traffic=6.0, aht_s=150.0, wrap_up_s=30.0, calls=3000, seed=5)
    report = run(scenario)
    # 6 Erlangs over 8 agents, held for talk + wrap-up
    assert report["erlang"]["aht_s"] == 180.0
    assert report["erlang"]["exact"] is False
    assert report["overall"]["occupancy"] == pytest.approx(0.75, abs=0.05)


def test_callers_may_hang_up_while_the_offer_rings() -> None:
    report = run(
        single_queue(
            agents=3, traffic=2.8, aht_s=60.0, patience_s=5.0, ring_s=4.0, calls=3000, seed=2
        )
    )
    run_info = report["run"]
    # each abandon during an offer stops that agent's phone
    assert run_info["stop_ringing"] > 0
    assert report["overall"]["unfinished"] == 0
    assert report["overall"]["answered"] + report["overall"]["abandoned"] == 2850


def test_lognormal_handle_times_have_the_asked_mean() -> None:
    scenario = single_queue(
        agents=10,
        traffic=7.0,
        aht_s=200.0,
        handle="lognormal",  # type: ignore[arg-type]
        handle_sd_s=80.0,
        calls=4000,
        seed=9,
    )
    result = simulate_scenario(scenario)
    mean = math.fsum(result.call_handle) / len(result.call_handle)
    sd = math.sqrt(math.fsum((h - mean) ** 2 for h in result.call_handle) / len(result.call_handle))
    assert mean == pytest.approx(200.0, rel=0.05)
    assert sd == pytest.approx(80.0, rel=0.1)
    assert min(result.call_handle) > 0


def _two_skills() -> dict[str, Any]:
    return {
        "seed": 4,
        "calls": 6000,
        "queues": [
            {"id": "sales", "calls_per_hour": 120, "handle": {"mean_s": 180}, "patience_s": 120},
            {
                "id": "support",
                "calls_per_hour": 60,
                "handle": {"dist": "lognormal", "mean_s": 300, "sd_s": 150},
                "wrap_up_s": 15,
                "service_level_s": 30,
            },
        ],
        "agents": [
            {"id": "sellers", "count": 5, "skills": {"sales": 1}},
            {"id": "techs", "count": 4, "skills": {"support": 1}},
            {"id": "both", "count": 2, "skills": {"sales": 1, "support": 1}},
        ],
    }


def test_several_queues_and_skills_are_served_by_their_agents() -> None:
    report = run(parse_scenario(_two_skills()))
    sales, support = report["queues"]["sales"], report["queues"]["support"]
    overall = report["overall"]
    assert sales["calls"] + support["calls"] == overall["calls"] == 5700
    # sales is offered twice the calls of support
    assert sales["calls"] / support["calls"] == pytest.approx(2.0, rel=0.1)
    assert overall["unfinished"] == 0
    assert support["abandoned"] == 0  # no patience on support
    assert sales["abandoned"] > 0
    assert support["service_level_threshold_s"] == 30
    assert overall["service_level_threshold_s"] is None  # thresholds differ per queue
    # the load (7 + 5.25 Erlangs on 11 agents, with wrap-up) keeps everyone busy most of the time
    pools = report["pools"]
    assert set(pools) == {"sellers", "techs", "both"}
    for pool in pools.values():
        assert 0.4 < pool["occupancy"] <= 1
    assert report["erlang"] is None  # no closed formula for several queues


def test_a_queue_without_its_skill_pool_gets_only_the_shared_agents() -> None:
    data = _two_skills()
    data["agents"] = [
        {"id": "sellers", "count": 8, "skills": {"sales": 1}},
        {"id": "both", "count": 1, "skills": {"sales": 1, "support": 1}},
    ]
    data["queues"][1]["calls_per_hour"] = 6  # 0.6 Erlangs on the single shared agent
    data["calls"] = 3000
    report = run(parse_scenario(data))
    support = report["queues"]["support"]
    sales = report["queues"]["sales"]
    assert support["unfinished"] == 0
    # support waits far longer: one agent, and sales calls compete for them
    assert support["asa_s"] > sales["asa_s"]


def test_max_wait_overflow_takes_calls_out_of_the_acd() -> None:
    data = _two_skills()
    data["queues"] = [
        {
            "id": "sales",
            "calls_per_hour": 150,
            "handle": {"mean_s": 180},
            "max_wait_s": 20,
            "overflow": {"max_wait": {"kind": "voicemail", "target": "vm-sales"}},
        }
    ]
    data["agents"] = [{"count": 7, "skills": {"sales": 1}}]
    data["calls"] = 3000
    result = simulate_scenario(parse_scenario(data))
    report = run(parse_scenario(data))
    overall = report["overall"]
    assert overall["unfinished"] == 0
    assert overall["overflowed"] > 0
    assert overall["answered"] + overall["overflowed"] == overall["calls"]
    assert overall["overflow_rate"] == pytest.approx(overall["overflowed"] / overall["calls"])
    # nobody waits past max wait: answered in time or gone to voicemail at 20 s
    answered = [
        w for w, s in zip(result.call_wait, result.call_state, strict=True) if s == ANSWERED
    ]
    assert max(answered) <= 20 + 1e-6


def test_queue_to_queue_overflow_keeps_the_call_waiting() -> None:
    data = _two_skills()
    data["queues"][0]["max_wait_s"] = 10
    data["queues"][0]["overflow"] = {"max_wait": {"kind": "queue", "target": "support"}}
    data["calls"] = 3000
    report = run(parse_scenario(data))
    sales = report["queues"]["sales"]
    # moved, not lost: every sales call is answered or abandoned, some after moving
    assert report["run"]["overflow_events"] > 0
    assert sales["overflowed"] == 0
    assert sales["unfinished"] == 0
    assert sales["answered"] + sales["abandoned"] == sales["calls"]


def test_overflow_to_an_unknown_queue_is_refused() -> None:
    data = _two_skills()
    data["queues"][0]["overflow"] = {"max_wait": {"kind": "queue", "target": "nowhere"}}
    with pytest.raises(InvalidInput, match=r"overflow\.max_wait\.target: no queue 'nowhere'"):
        parse_scenario(data)
