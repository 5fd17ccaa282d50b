"""Round-trips per second across the gevent↔asyncio bridge, each way, from one and many callers.

Run: ``.tools/uv/bin/uv run --frozen python bench/bridge.py [--n 20000] [--json PATH]``
(``--callers 20`` sets how many callers the concurrent scenarios use.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

import gevent

from callmesh.core.bridge import Bridge

DEFAULT_JSON = Path(__file__).parent / "results" / "bridge.json"
WARM_UP = 500


@dataclass(frozen=True)
class Result:
    """One measured scenario."""

    direction: str
    callers: int
    round_trips: int
    seconds: float

    @property
    def per_second(self) -> float:
        """Round-trips per second."""
        return self.round_trips / self.seconds

    @property
    def microseconds(self) -> float:
        """Mean wall time of one round-trip, seen by a caller, in microseconds."""
        return self.seconds / self.round_trips * 1e6 * self.callers


async def noop_coroutine() -> None:
    """The smallest coroutine: measures the crossing, not the work."""


def noop_function() -> None:
    """The smallest greenlet body: measures the crossing, not the work."""


def gevent_to_asyncio(bridge: Bridge, callers: int, per_caller: int) -> Result:
    """Greenlets each awaiting ``per_caller`` coroutines one after the other."""

    def caller() -> None:
        for _ in range(per_caller):
            bridge.run_async(noop_coroutine())

    started = time.perf_counter()
    gevent.joinall([gevent.spawn(caller) for _ in range(callers)], raise_error=True)
    elapsed = time.perf_counter() - started
    return Result("gevent -> asyncio", callers, callers * per_caller, elapsed)


def asyncio_to_gevent(bridge: Bridge, callers: int, per_caller: int) -> Result:
    """Tasks each awaiting ``per_caller`` greenlets one after the other."""

    async def caller() -> None:
        for _ in range(per_caller):
            await bridge.run_gevent(noop_function)

    async def all_callers() -> float:
        # Timed inside the loop, so the run_async hop that starts it is not counted.
        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        return time.perf_counter() - started

    elapsed = bridge.run_async(all_callers())
    return Result("asyncio -> gevent", callers, callers * per_caller, elapsed)


def print_table(results: list[Result]) -> None:
    """Print the results as an aligned table."""
    header = f"{'direction':<18} {'callers':>7} {'round-trips':>11} {'seconds':>8} "
    header += f"{'trips/s':>9} {'us/trip':>8}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.direction:<18} {r.callers:>7} {r.round_trips:>11} {r.seconds:>8.3f} "
            f"{r.per_second:>9.0f} {r.microseconds:>8.1f}"
        )


def main() -> None:
    """Measure every scenario, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=20_000, help="round-trips per scenario")
    parser.add_argument("--callers", type=int, default=20, help="concurrent callers")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    args = parser.parse_args()
    if args.n < args.callers or args.callers < 1:
        parser.error("--n must be at least --callers, and --callers at least 1")

    with Bridge(thread_name="bench-asyncio") as bridge:
        gevent_to_asyncio(bridge, 1, WARM_UP)
        asyncio_to_gevent(bridge, 1, WARM_UP)
        per_caller = args.n // args.callers
        results = [
            gevent_to_asyncio(bridge, 1, args.n),
            gevent_to_asyncio(bridge, args.callers, per_caller),
            asyncio_to_gevent(bridge, 1, args.n),
            asyncio_to_gevent(bridge, args.callers, per_caller),
        ]

    print_table(results)
    report = {
        "benchmark": "bridge",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "python": platform.python_version(),
        "gevent": version("gevent"),
        "greenlet": version("greenlet"),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "n": args.n,
        "results": [
            {**asdict(r), "per_second": r.per_second, "microseconds_per_trip": r.microseconds}
            for r in results
        ],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
