"""Flow-step latency of the IVR engine: the time from a caller's input to the next command.

Run: ``.tools/uv/bin/uv run --frozen --all-packages python bench/ivr_engine.py [--calls 2000]
[--json PATH]``

Each simulated call runs the bilingual sample flow (``callmesh.ivr.samples.main_flow``) through
``FlowRun`` the way the runner will: language key, menu key ``3``, five account digits and ``#``,
the HTTP answer, then the queue hand-over. Every ``resume`` is timed: that is the engine's part of
the issue's "DTMF → next command" figure (the runner's ESL and bridge costs come on top, and are
not measured here: the runner is not built yet). Many runs live at once (``--concurrent``) so the
per-run state and the shared compiled-expression cache are exercised as in a busy process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from callmesh.ivr.domain.commands import (
    AwaitKey,
    BlacklistAnswer,
    CallContext,
    CheckBlacklist,
    Command,
    Enqueue,
    EnqueueAnswer,
    Finish,
    HttpAnswer,
    HttpRequest,
    KeyPressed,
    Play,
    Played,
    Result,
    TimedOut,
)
from callmesh.ivr.domain.engine import FlowRun
from callmesh.ivr.domain.parse import parse_flow
from callmesh.ivr.samples import main_flow

DEFAULT_JSON = Path(__file__).parent / "results" / "ivr_engine.json"
NOON = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
ANSWER = HttpAnswer(200, b'{"data": {"tier": "gold", "balance": 12.5}}', "", 30)


def answer(command: Command, keys: list[str]) -> tuple[Result, bool]:
    """The caller's (or the world's) answer; True when it is a caller input."""
    if isinstance(command, Play):
        return Played(), False
    if isinstance(command, AwaitKey):
        return (KeyPressed(keys.pop(0)), True) if keys else (TimedOut(), True)
    if isinstance(command, CheckBlacklist):
        return BlacklistAnswer(False), False
    if isinstance(command, HttpRequest):
        return ANSWER, False
    if isinstance(command, Enqueue):
        return EnqueueAnswer(True), False
    raise AssertionError(command)


def run(calls: int, concurrent: int) -> dict[str, float]:
    """Step latencies (µs) over ``calls`` runs, ``concurrent`` at a time."""
    flow = parse_flow(main_flow())
    inputs: list[float] = []
    others: list[float] = []
    done = 0
    started = time.perf_counter()
    while done < calls:
        batch = []
        for i in range(min(concurrent, calls - done)):
            ctx = CallContext(f"c{done + i}", "bench", "+33611111111", "+33140000000", NOON)
            r = FlowRun(flow, "main", 1, ctx)
            batch.append((r, ["1", "3", *"12345#"], r.start()))
        live = batch
        while live:
            nxt = []
            for r, keys, command in live:
                if isinstance(command, Finish):
                    continue
                result, is_input = answer(command, keys)
                t0 = time.perf_counter_ns()
                command = r.resume(result)
                r.drain_trail()
                spent = (time.perf_counter_ns() - t0) / 1000
                (inputs if is_input else others).append(spent)
                nxt.append((r, keys, command))
            live = nxt
        done += len(batch)
    wall = time.perf_counter() - started

    def pct(values: list[float], p: float) -> float:
        values = sorted(values)
        return values[min(len(values) - 1, int(p * len(values)))]

    return {
        "calls": calls,
        "concurrent": concurrent,
        "input_steps": len(inputs),
        "input_p50_us": pct(inputs, 0.50),
        "input_p99_us": pct(inputs, 0.99),
        "input_max_us": max(inputs),
        "other_p50_us": pct(others, 0.50),
        "other_p99_us": pct(others, 0.99),
        "mean_us": statistics.fmean(inputs + others),
        "calls_per_s": calls / wall,
    }


def main() -> None:
    """Print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    rows = [run(args.calls, c) for c in (1, 100, 1000)]
    names = ("input p50 µs", "input p99 µs", "input max µs", "other p99 µs")
    header = f"{'concurrent':>10} " + " ".join(f"{n:>13}" for n in names) + f" {'calls/s':>9}"
    sys.stdout.write(header + "\n")
    for row in rows:
        sys.stdout.write(
            f"{row['concurrent']:>10} {row['input_p50_us']:>13.1f} {row['input_p99_us']:>13.1f}"
            f" {row['input_max_us']:>13.1f} {row['other_p99_us']:>13.1f}"
            f" {row['calls_per_s']:>9.0f}\n"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "bench": "ivr_engine",
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "rows": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
