"""Routing decisions of one tenant's ACD engine at growing sizes.

Run: ``.tools/uv/bin/uv run --frozen --all-packages python bench/acd_routing.py [--decisions 2000]
[--json PATH]``

One tenant holds N ready agents (skill ``s`` at levels 1-5, longest-idle) and M waiting calls (in
a queue of skill ``w`` no ready agent has, priority + aging), both at once. Two decisions are
timed, each the engine's whole method call (effects included):

- **call → agent**: a call arrives in queue ``s`` and is offered to the best of the N ready agents
  (``enqueue``);
- **agent → call**: an agent with skill ``w`` becomes ready and is offered the best of the M
  waiting calls (``set_ready``).

Between decisions the bench restores the sizes (the offered agent or call is released, a new call
enqueued) outside the timed part.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from callmesh.acd.domain.config import AgentProfile, QueueConfig, TenantAcdConfig
from callmesh.acd.domain.engine import AcdEngine, CallRequest

DEFAULT_JSON = Path(__file__).parent / "results" / "acd_routing.json"
AGENTS = (100, 1_000, 10_000)
CALLS = (100, 1_000, 5_000)
T0 = 1_700_000_000.0


def build(agents: int, calls: int) -> tuple[AcdEngine, float]:
    """An engine with ``agents`` ready and ``calls`` waiting."""
    profiles = {
        f"a{i}": AgentProfile(f"a{i}", endpoint=f"user:{i}", skills={"s": 1 + i % 5})
        for i in range(agents)
    }
    profiles["picker"] = AgentProfile("picker", endpoint="user:picker", skills={"w": 3})
    config = TenantAcdConfig(
        "bench",
        queues={
            "s": QueueConfig("s", skill="s"),
            "w": QueueConfig("w", skill="w", aging_per_s=0.1),
        },
        agents=profiles,
    )
    engine = AcdEngine(config, seed=1)
    now = T0
    for i in range(agents):
        engine.login(f"a{i}", now + i * 0.001, ready=True)
    now += agents * 0.001 + 1
    for i in range(calls):
        engine.enqueue(CallRequest(f"w{i}", "w", priority=i % 7), now)
        now += 0.001
    engine.login("picker", now)
    return engine, now + 1


def percentile(samples: list[float], q: float) -> float:
    """The q-quantile (0..1) of the samples."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(agents: int, calls: int, decisions: int) -> dict[str, float | int]:
    """p50/p99 in microseconds of both decisions at one size."""
    engine, now = build(agents, calls)
    to_agent: list[float] = []
    to_call: list[float] = []
    next_w = calls
    for i in range(decisions):
        now += 0.01
        started = time.perf_counter()
        engine.enqueue(CallRequest(f"s{i}", "s"), now)
        to_agent.append(time.perf_counter() - started)
        engine.call_ended(f"s{i}", now)  # the caller leaves; the agent is ready again

        now += 0.01
        started = time.perf_counter()
        engine.set_ready("picker", now)
        to_call.append(time.perf_counter() - started)
        ((offer_id, _),) = [
            (o.offer_id, o.agent_id) for o in engine.offers.values() if o.agent_id == "picker"
        ]
        call_id = engine.offers[offer_id].call_id
        engine.set_not_ready("picker", "bench", now)  # pending: applies when the offer ends
        engine.call_ended(call_id, now)
        engine.enqueue(CallRequest(f"w{next_w}", "w", priority=next_w % 7), now)
        next_w += 1
    assert not engine.offers, list(engine.offers.values())[:3]
    return {
        "agents": agents,
        "calls": calls,
        "decisions": decisions,
        "call_to_agent_p50_us": percentile(to_agent, 0.5) * 1e6,
        "call_to_agent_p99_us": percentile(to_agent, 0.99) * 1e6,
        "agent_to_call_p50_us": percentile(to_call, 0.5) * 1e6,
        "agent_to_call_p99_us": percentile(to_call, 0.99) * 1e6,
        "mean_us": statistics.fmean(to_agent + to_call) * 1e6,
    }


def main() -> None:
    """Measure every size, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    rows = [measure(a, c, args.decisions) for a in AGENTS for c in CALLS]
    print(
        f"{'ready agents':>12} {'waiting':>8} | {'call→agent p50':>14} {'p99':>8} | "
        f"{'agent→call p50':>14} {'p99':>8}   (µs)"
    )
    for r in rows:
        print(
            f"{r['agents']:>12,} {r['calls']:>8,} | {r['call_to_agent_p50_us']:>14.1f} "
            f"{r['call_to_agent_p99_us']:>8.1f} | {r['agent_to_call_p50_us']:>14.1f} "
            f"{r['agent_to_call_p99_us']:>8.1f}"
        )
    small, large = rows[0], rows[-1]
    ratios = {
        "call_to_agent": large["call_to_agent_p99_us"] / small["call_to_agent_p99_us"],
        "agent_to_call": large["agent_to_call_p99_us"] / small["agent_to_call_p99_us"],
    }
    print(
        "p99(10,000 agents, 5,000 calls) / p99(100, 100): "
        f"call→agent {ratios['call_to_agent']:.2f}, agent→call {ratios['agent_to_call']:.2f}"
        "  (targets: p99 ≤ 1,000 µs, ratio ≤ 3)"
    )
    result = {
        "bench": "acd_routing",
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "rows": rows,
        "p99_ratio_largest_to_smallest": ratios,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
