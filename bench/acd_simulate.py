"""Speed of ``callmesh acd simulate`` (the real engine on a virtual clock) and its agreement.

Run: ``.tools/uv/bin/uv run --frozen --all-packages python bench/acd_simulate.py [--calls 100000]
[--json PATH]``

Each case is one single-queue run (exponential talk 180 s, seed 1, antithetic halves); the table
shows simulated calls per wall second, the share of wall time spent inside the engine's methods,
and the simulated P(wait), ASA and abandon rate beside Erlang C/A.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from callmesh.acd.domain.engine import AcdEngine
from callmesh.acd.sim import build_report, simulate_scenario, single_queue

DEFAULT_JSON = Path(__file__).parent / "results" / "acd_simulate.json"
CASES: list[tuple[str, dict[str, Any]]] = [
    ("10 agents, 8 E", {"agents": 10, "traffic": 8.0}),
    ("10 agents, 8 E, patience 60", {"agents": 10, "traffic": 8.0, "patience_s": 60.0}),
    ("50 agents, 45 E, patience 120", {"agents": 50, "traffic": 45.0, "patience_s": 120.0}),
    ("200 agents, 190 E, patience 120", {"agents": 200, "traffic": 190.0, "patience_s": 120.0}),
]


class _EngineClock:
    """Adds up the wall time spent in AcdEngine's public methods (wraps them on the class)."""

    METHODS = ("enqueue", "offer_answered", "offer_ringing", "call_ended", "tick", "login")

    def __init__(self) -> None:
        self.seconds = 0.0
        self._saved: dict[str, Any] = {}

    def __enter__(self) -> _EngineClock:
        for name in self.METHODS:
            original = getattr(AcdEngine, name)
            self._saved[name] = original

            def timed(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return _original(*args, **kwargs)
                finally:
                    self.seconds += time.perf_counter() - start

            setattr(AcdEngine, name, timed)
        return self

    def __exit__(self, *_exc: object) -> None:
        for name, original in self._saved.items():
            setattr(AcdEngine, name, original)


def main() -> None:
    """Run every case, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    rows = []
    print(
        f"{'case':34} {'calls/s':>8} {'engine':>7} {'wall s':>7}   "
        f"{'P(wait) sim/model':>19} {'ASA s sim/model':>17} {'abandon sim/model':>19}"
    )
    for name, case in CASES:
        scenario = single_queue(aht_s=180.0, calls=args.calls, seed=1, antithetic=True, **case)
        with _EngineClock() as clock:
            start = time.perf_counter()
            report = build_report(simulate_scenario(scenario))
            wall = time.perf_counter() - start
        sim, model = report["overall"], report["erlang"]
        row = {
            "case": name,
            "calls": args.calls,
            "wall_s": round(wall, 3),
            "calls_per_s": round(args.calls / wall),
            "engine_share": round(clock.seconds / wall, 3),
            "sim": {k: sim[k] for k in ("p_wait", "asa_s", "service_level", "abandon_rate")},
            "erlang": {k: model[k] for k in ("p_wait", "asa_s", "service_level", "abandon_rate")},
            "ewt_error": sim["ewt_error"],
        }
        rows.append(row)
        print(
            f"{name:34} {row['calls_per_s']:>8} {row['engine_share']:>7.0%} {wall:>7.1f}   "
            f"{sim['p_wait']:>9.4f}/{model['p_wait']:<9.4f} "
            f"{sim['asa_s']:>8.2f}/{model['asa_s']:<8.2f} "
            f"{sim['abandon_rate']:>9.4f}/{model['abandon_rate']:<9.4f}",
            flush=True,
        )
    result = {
        "bench": "acd_simulate",
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
