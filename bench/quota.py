"""The cost of a quota take/release (callmesh.core.quotas) on a real nats-server."""

# Run: .tools/uv/bin/uv run --frozen python bench/quota.py [--n 5000]
#      [--json bench/results/quota.json]
#
# Scenarios, each on a tenant of its own (so none inherits another's counts):
#   raw KV get+update   the floor: the two round trips a take costs, by nats-py alone
#   take, release       one operation at a time, timed separately
#   take+release        one pair at a time (what a call or an agent session costs)
#   take_rate           one per-second rate unit (reads the limit, then CAS on the window)
#   take refused        a full quota: the refusal, counted and published to the admin stream
#   contended N         N tasks of one process doing take+release pairs on the same tenant and
#                       quota: they take turns on the key (no CAS race within a process)
#   3 replicas x 8      8 tasks on each of 3 connections (as 3 replicas), same key: the
#                       replicas race, CAS settles it (conflicts/op = lost races per operation)
#   spread N            N tasks doing pairs on N different tenants: concurrency without a hot key
# Latencies are per operation (per pair for the pair rows), p50/p99 in microseconds.

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

from prometheus_client import REGISTRY

from callmesh.core.bus import Bus
from callmesh.core.errors import QuotaExceeded
from callmesh.core.quotas import QuotaKind, Quotas
from callmesh.core.servers import nats_server_version, start_nats
from callmesh.core.settings import PlatformSettings
from callmesh.proto.subjects import Bucket

DEFAULT_JSON = Path(__file__).parent / "results" / "quota.json"
SERVICE = "bench"
KIND = QuotaKind.CALLS_PSTN
WARM_UP = 200
CONTENTION = (8, 32)
REPLICAS = 3
REPLICA_TASKS = 8


@dataclass(frozen=True)
class Row:
    """One scenario's result."""

    scenario: str
    tasks: int
    ops: int
    seconds: float
    per_second: float
    p50_us: float
    p99_us: float
    conflicts_per_op: float | None


def conflicts(kind: QuotaKind) -> float:
    """CAS races lost so far on ``kind`` (the module's own counter)."""
    value = REGISTRY.get_sample_value("callmesh_quota_cas_conflicts_total", {"kind": kind})
    return value or 0.0


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of samples, nearest rank."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def run(
    name: str,
    op: Callable[[int, int], Awaitable[object]],
    n: int,
    tasks: int = 1,
    *,
    kind: QuotaKind | None = None,
    ops_per_call: int = 1,
) -> Row:
    """Call ``op(task, i)`` ``n`` times over ``tasks`` concurrent tasks and time each call."""
    for i in range(min(WARM_UP, n)):
        await op(0, i)
    latencies: list[float] = []
    counter = iter(range(n))
    lost_before = conflicts(kind) if kind is not None else 0.0

    async def worker(task: int) -> None:
        for i in counter:
            started = time.perf_counter()
            await op(task, i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(t) for t in range(tasks)))
    seconds = time.perf_counter() - started
    lost = (conflicts(kind) - lost_before) / (n * ops_per_call) if kind is not None else None
    return Row(
        scenario=name,
        tasks=tasks,
        ops=n,
        seconds=seconds,
        per_second=n / seconds,
        p50_us=statistics.median(latencies) * 1e6,
        p99_us=percentile(latencies, 99) * 1e6,
        conflicts_per_op=lost,
    )


async def measure(url: str, n: int) -> list[Row]:
    """Every scenario against the server at ``url``."""
    settings = PlatformSettings(nats_url=url, subject_prefix="bench", instance="bench-1")
    bus = Bus(settings, SERVICE)
    await bus.connect(attempts=3)
    await bus.provision()
    quotas = Quotas(bus, service=SERVICE)
    rows: list[Row] = []
    try:
        kv = await bus.kv(Bucket.QUOTAS)
        await kv.put("raw.counter", b'{"used": 0, "limit": null}')

        async def raw(_task: int, _i: int) -> None:
            entry = await kv.get("raw.counter")
            await kv.update("raw.counter", b'{"used": 0, "limit": null}', last=entry.revision)

        rows.append(await run("raw KV get+update", raw, n))

        await quotas.set_limit("seq", KIND, 1_000_000)
        rows.append(await run("take", lambda _t, _i: quotas.take("seq", KIND), n, kind=KIND))
        rows.append(await run("release", lambda _t, _i: quotas.release("seq", KIND), n, kind=KIND))

        await quotas.set_limit("pair", KIND, 1_000)

        async def pair(_task: int, _i: int, tenant: str = "pair") -> None:
            await quotas.take(tenant, KIND)
            await quotas.release(tenant, KIND)

        rows.append(await run("take+release", pair, n, kind=KIND, ops_per_call=2))

        rows.append(
            await run(
                "take_rate",
                lambda _t, _i: quotas.take_rate("rate"),
                n,
                kind=QuotaKind.CALLS_PER_SECOND,
            )
        )

        await quotas.set_limit("full", KIND, 0)

        async def refused(_task: int, _i: int) -> None:
            try:
                await quotas.take("full", KIND)
            except QuotaExceeded:
                return
            raise AssertionError("a full quota granted a unit")

        rows.append(await run("take refused (audited)", refused, max(1, n // 5), kind=KIND))

        for tasks in CONTENTION:
            tenant = f"hot{tasks}"
            await quotas.set_limit(tenant, KIND, 1_000)

            async def hot(_task: int, _i: int, tenant: str = tenant) -> None:
                await pair(_task, _i, tenant)

            rows.append(await run(f"contended {tasks}", hot, n, tasks, kind=KIND, ops_per_call=2))

        # Replicas: the same hot key from separate connections; only CAS settles these races.
        others = [Bus(settings, SERVICE) for _ in range(REPLICAS - 1)]
        for other in others:
            await other.connect(attempts=3)
        handles = [quotas, *(Quotas(other, service=SERVICE) for other in others)]
        try:
            await quotas.set_limit("replicas", KIND, 1_000)

            async def across(task: int, _i: int) -> None:
                handle = handles[task % REPLICAS]
                await handle.take("replicas", KIND)
                await handle.release("replicas", KIND)

            tasks = REPLICAS * REPLICA_TASKS
            rows.append(
                await run(
                    f"{REPLICAS} replicas x {REPLICA_TASKS}",
                    across,
                    n,
                    tasks,
                    kind=KIND,
                    ops_per_call=2,
                )
            )
        finally:
            for handle in handles[1:]:
                await handle.close()
            for other in others:
                await other.close()

        tasks = max(CONTENTION)

        async def spread(task: int, i: int) -> None:
            await pair(task, i, f"spread{task}")

        rows.append(await run(f"spread {tasks}", spread, n, tasks, kind=KIND, ops_per_call=2))
    finally:
        await quotas.close()
        await bus.close()
    return rows


def print_table(rows: Sequence[Row]) -> None:
    """Print the results as an aligned table."""
    header = (
        f"{'scenario':<24} {'tasks':>5} {'ops':>6} {'seconds':>8} {'ops/s':>8} "
        f"{'p50 us':>8} {'p99 us':>8} {'conflicts/op':>12}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        lost = f"{r.conflicts_per_op:.2f}" if r.conflicts_per_op is not None else "-"
        print(
            f"{r.scenario:<24} {r.tasks:>5} {r.ops:>6} {r.seconds:>8.3f} {r.per_second:>8.0f} "
            f"{r.p50_us:>8.0f} {r.p99_us:>8.0f} {lost:>12}"
        )
    print(
        "\nops: calls timed (take+release, contended and spread rows: one pair each); "
        "latency per call.\nconflicts/op: CAS races lost per take or release (each costs a "
        "re-read and a jittered pause)."
    )


def main() -> None:
    """Start nats-server, measure every scenario, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5_000, help="operations per scenario")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    args = parser.parse_args()
    if args.n < 1:
        parser.error("--n must be at least 1")

    with tempfile.TemporaryDirectory(prefix="quota-bench-") as data_dir:
        server = start_nats(Path(data_dir))
        try:
            rows = asyncio.run(measure(server.url, args.n))
        finally:
            server.stop()

    print()
    print_table(rows)
    report = {
        "benchmark": "quota",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "nats_server": nats_server_version(),
        "nats_py": version("nats-py"),
        "n": args.n,
        "results": [asdict(r) for r in rows],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
