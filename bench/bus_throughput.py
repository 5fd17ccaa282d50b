"""Publish+consume throughput of a typical call event: callmesh.core's Bus against raw nats-py."""

# Run: .tools/uv/bin/uv run --frozen python bench/bus_throughput.py [--events 20000]
#      [--concurrency 64] [--repeat 3] [--json bench/results/bus_throughput.json]
#
# Both paths start from the same pre-built Event objects (ids made up front), serialize them in
# the timed section, publish with the same bounded window (``--concurrency`` workers over one
# iterator), and consume them concurrently with a durable push consumer of the same config
# (delivering to a queue group, as ``Bus.start`` makes it) on a stream of the same config.
# Timing runs from the first publish to the last ack flushed to the server. Each run gets fresh
# streams under its own subject prefix; they are deleted afterwards.

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

import nats
import nats.errors
from google.protobuf.internal import api_implementation
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from callmesh.core.bus import DUPLICATE_WINDOW_S, MSG_ID_HEADER, Bus, Delivery, Subscription
from callmesh.core.servers import nats_server_version, start_nats
from callmesh.core.settings import PlatformSettings
from callmesh.proto.subjects import EVENTS, Domain, Subjects, stream_of
from callmesh.proto.v1 import common_pb2
from callmesh.proto.v1.event_pb2 import Event

DEFAULT_JSON = Path(__file__).parent / "results" / "bus_throughput.json"
RAW = "raw nats-py"
CORE = "core (no tracer provider)"
CORE_TRACED = "core (tracing on)"
TENANT = "acme"
SERVICE = "bench"
INSTANCE = "bench-1"
WARM_UP = 1_000
DONE_TIMEOUT_S = 300.0
# The same values Subscription and PlatformSettings default to, so both consumers match.
ACK_WAIT_S = 30.0
MAX_DELIVER = 5

Publish = Callable[[Event], Awaitable[object]]


@dataclass(frozen=True)
class Run:
    """One measured run of one path."""

    path: str
    phase: int
    prefix: str
    events: int
    seconds: float
    publish_seconds: float

    @property
    def per_second(self) -> float:
        """Events per second, first publish to last ack."""
        return self.events / self.seconds

    @property
    def publish_per_second(self) -> float:
        """Events per second, first publish to last publish ack (consuming runs meanwhile)."""
        return self.events / self.publish_seconds


@dataclass(frozen=True)
class Row:
    """The summary of one path over its runs."""

    path: str
    runs: int
    events: int
    median_seconds: float
    median_per_second: float
    best_per_second: float
    median_publish_per_second: float
    ratio_median: float | None
    ratio_best: float | None


def typical_events(n: int) -> list[Event]:
    """``n`` call_created events as a switch adapter makes them, each with its own ids."""
    template = Event(tenant_id=TENANT)
    template.time.GetCurrentTime()
    template.source.node_id = "fs-paris-01"
    template.source.service = "cti"
    template.source.instance = "cti-7c9f5d-x2kqp"
    template.source.site = "central"
    body = template.call_created
    body.direction = common_pb2.CALL_DIRECTION_INBOUND
    body.caller.number = "+33612345678"
    body.caller.name = "Jeanne Martin"
    body.callee.number = "+33187654321"
    body.callee.name = "Acme Support FR"
    body.destination_number = "+33187654321"
    body.media_channel = common_pb2.MEDIA_CHANNEL_PSTN
    body.role = common_pb2.LEG_ROLE_CUSTOMER
    body.variables.update(
        {
            "cm_tenant_id": TENANT,
            "cm_queue_id": "q-support-fr",
            "cm_campaign_id": "",
            "cm_flow_id": "ivr-main-fr",
            "sip_from_host": "sbc1.carrier.example",
            "sip_call_id": "a84b4c76e66710@pc33.carrier.example",
        }
    )
    events: list[Event] = []
    for _ in range(n):
        event = Event()
        event.CopyFrom(template)
        event.event_id = uuid.uuid4().hex
        event.call_id = str(uuid.uuid4())
        event.call_created.channel_uuid = str(uuid.uuid4())
        events.append(event)
    return events


async def publish_window(events: Sequence[Event], publish: Publish, concurrency: int) -> None:
    """Publish every event with at most ``concurrency`` publishes awaiting their ack."""
    pending = iter(events)

    async def worker() -> None:
        for event in pending:
            await publish(event)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def consumer_config(
    durable: str, deliver: str, filter_subject: str, concurrency: int
) -> ConsumerConfig:
    """The durable push consumer config ``Bus.start`` builds, for the raw path."""
    return ConsumerConfig(
        name=durable,
        durable_name=durable,
        deliver_subject=deliver,
        deliver_group=durable,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ACK_WAIT_S,
        max_deliver=MAX_DELIVER,
        filter_subjects=[filter_subject],
        max_ack_pending=max(concurrency * 4, 64),
    )


async def wait_all_acked(js: JetStreamContext, stream: str, durable: str) -> bool:
    """True once the server has no message pending or unacked for the consumer (up to 5 s)."""
    deadline = time.monotonic() + 5.0
    while True:
        info = await js.consumer_info(stream, durable)
        if not info.num_pending and not info.num_ack_pending:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)


async def delete_streams(js: JetStreamContext, prefix: str) -> None:
    """Delete the streams and KV buckets a run made under ``prefix``."""
    for info in await js.streams_info():
        name = info.config.name or ""
        if name.startswith((f"{prefix.upper()}_", f"KV_{prefix}_")):
            await js.delete_stream(name)


async def run_raw(
    url: str,
    admin: JetStreamContext,
    prefix: str,
    events: Sequence[Event],
    concurrency: int,
    phase: int,
) -> Run:
    """Publish and consume ``events`` with nats-py alone; the stream is configured as core's."""
    subjects = Subjects(prefix)
    spec = stream_of(Domain.CALL)
    stream = subjects.stream(spec)
    durable = f"{SERVICE}-throughput"
    subject = subjects.event(EVENTS["call_created"], tenant_id=TENANT)
    nc = await nats.connect(url, name=f"{SERVICE}-raw")
    js = nc.jetstream()
    n = len(events)
    received = 0
    done = asyncio.Event()
    deliver = f"_RAW_DELIVER.{prefix}.{durable}"

    async def consume(msg: Msg) -> None:
        nonlocal received
        Event.FromString(msg.data)
        await msg.ack()
        received += 1
        if received >= n:
            done.set()

    async def publish(event: Event) -> object:
        headers = {MSG_ID_HEADER: event.event_id}
        return await js.publish(subject, event.SerializeToString(), headers=headers)

    consumer = asyncio.create_task(done.wait())
    try:
        await js.add_stream(
            StreamConfig(
                name=stream,
                subjects=subjects.stream_subjects(spec),
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                max_age=spec.max_age_s,
                discard=DiscardPolicy.OLD,
                duplicate_window=DUPLICATE_WINDOW_S,
                num_replicas=1,
            )
        )
        await js.add_consumer(
            stream, consumer_config(durable, deliver, subjects.events(Domain.CALL), concurrency)
        )
        sub = await nc.subscribe(deliver, queue=durable, cb=consume)
        started = time.perf_counter()
        await publish_window(events, publish, concurrency)
        published = time.perf_counter()
        await asyncio.wait_for(asyncio.shield(consumer), DONE_TIMEOUT_S)
        await nc.flush()
        finished = time.perf_counter()
        if not await wait_all_acked(js, stream, durable):
            print(f"warning: {prefix}: consumer still has pending or unacked messages")
        await sub.unsubscribe()
    finally:
        if not consumer.done():
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)
        await nc.close()
    await delete_streams(admin, prefix)
    return Run(RAW, phase, prefix, n, finished - started, published - started)


async def run_core(
    url: str,
    admin: JetStreamContext,
    prefix: str,
    events: Sequence[Event],
    concurrency: int,
    phase: int,
    path: str,
) -> Run:
    """Publish and consume ``events`` through ``Bus.publish`` and a subscription table."""
    settings = PlatformSettings(nats_url=url, subject_prefix=prefix, instance=INSTANCE)
    bus = Bus(settings, SERVICE)
    await bus.connect(attempts=3)
    n = len(events)
    received = 0
    done = asyncio.Event()

    async def handler(delivery: Delivery) -> None:
        nonlocal received
        received += 1
        if received == n:
            done.set()

    try:
        await bus.provision()
        table = [Subscription("throughput", Domain.CALL, handler, concurrency=concurrency)]
        await bus.start(table)
        started = time.perf_counter()
        await publish_window(events, bus.publish, concurrency)
        published = time.perf_counter()
        await asyncio.wait_for(done.wait(), DONE_TIMEOUT_S)
        # The last handler's ack is already buffered when ``done`` wakes us: flush sends it.
        await bus.nc.flush()
        finished = time.perf_counter()
        stream = bus.subjects.stream(stream_of(Domain.CALL))
        if not await wait_all_acked(bus.js, stream, f"{SERVICE}-throughput"):
            print(f"warning: {prefix}: consumer still has pending or unacked messages")
    finally:
        await bus.drain(grace_s=5.0)
    await delete_streams(admin, prefix)
    return Run(path, phase, prefix, n, finished - started, published - started)


async def measure(
    url: str, events: Sequence[Event], concurrency: int, repeat: int, sample_ratio: float
) -> list[Run]:
    """Alternate raw and core runs: first with the no-op tracer, then with an SDK provider.

    Phase 1 is how services run by default (no OTLP endpoint: no provider, the API's no-op).
    Phase 2 is tracing turned on: an SDK provider sampling ``sample_ratio`` of the traces
    (parent-based), without an exporter so only the in-process cost is measured.
    """
    admin: NatsClient = await nats.connect(url, name=f"{SERVICE}-admin")
    admin_js = admin.jetstream()
    numbers = itertools.count()
    warm = events[: min(WARM_UP, len(events))]
    runs: list[Run] = []
    try:
        for phase, core_path in ((1, CORE), (2, CORE_TRACED)):
            if core_path == CORE_TRACED:
                # Once per process: the global provider cannot be replaced, hence phase order.
                sampler = ParentBased(TraceIdRatioBased(sample_ratio))
                trace.set_tracer_provider(TracerProvider(sampler=sampler))
            await run_raw(url, admin_js, f"warm{next(numbers)}", warm, concurrency, phase)
            await run_core(
                url, admin_js, f"warm{next(numbers)}", warm, concurrency, phase, core_path
            )
            for _ in range(repeat):
                raw = await run_raw(
                    url, admin_js, f"raw{next(numbers)}", events, concurrency, phase
                )
                core = await run_core(
                    url, admin_js, f"core{next(numbers)}", events, concurrency, phase, core_path
                )
                for run in (raw, core):
                    runs.append(run)
                    print(
                        f"  phase {phase} {run.path:<27} {run.seconds:7.3f} s "
                        f"{run.per_second:8.0f} ev/s  (publish {run.publish_per_second:8.0f} ev/s)",
                        flush=True,
                    )
    finally:
        await admin.close()
    return runs


def summarize(runs: Sequence[Run]) -> list[Row]:
    """Median and best per path; core's ratios are taken against all raw runs."""
    rows: list[Row] = []
    raw_median: float | None = None
    raw_best: float | None = None
    for path in (RAW, CORE, CORE_TRACED):
        mine = [r for r in runs if r.path == path]
        if not mine:
            continue
        median = statistics.median(r.per_second for r in mine)
        best = max(r.per_second for r in mine)
        if path == RAW:
            raw_median, raw_best = median, best
        rows.append(
            Row(
                path=path,
                runs=len(mine),
                events=mine[0].events,
                median_seconds=statistics.median(r.seconds for r in mine),
                median_per_second=median,
                best_per_second=best,
                median_publish_per_second=statistics.median(r.publish_per_second for r in mine),
                ratio_median=median / raw_median if raw_median and path != RAW else None,
                ratio_best=best / raw_best if raw_best and path != RAW else None,
            )
        )
    return rows


def paired_ratios(runs: Sequence[Run]) -> dict[str, float]:
    """Core's median over the median of the raw runs interleaved with it (same phase)."""
    out: dict[str, float] = {}
    for path in (CORE, CORE_TRACED):
        mine = [r for r in runs if r.path == path]
        if not mine:
            continue
        raw = [r for r in runs if r.path == RAW and r.phase == mine[0].phase]
        core_median = statistics.median(r.per_second for r in mine)
        out[path] = core_median / statistics.median(r.per_second for r in raw)
    return out


def print_table(rows: Sequence[Row], paired: dict[str, float]) -> None:
    """Print the summary as an aligned table."""
    header = (
        f"{'path':<27} {'runs':>4} {'events':>7} {'seconds':>8} {'ev/s med':>9} "
        f"{'ev/s best':>9} {'pub ev/s':>9} {'core/raw':>8} {'paired':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = f"{r.ratio_median:.0%}" if r.ratio_median is not None else "-"
        pair = f"{paired[r.path]:.0%}" if r.path in paired else "-"
        print(
            f"{r.path:<27} {r.runs:>4} {r.events:>7} {r.median_seconds:>8.3f} "
            f"{r.median_per_second:>9.0f} {r.best_per_second:>9.0f} "
            f"{r.median_publish_per_second:>9.0f} {ratio:>8} {pair:>6}"
        )
    print(
        "\nseconds, ev/s: first publish to last ack flushed; pub ev/s: first publish to last "
        "publish ack (the consumer running alongside).\ncore/raw: median over the median of "
        "all raw runs; paired: over the raw runs interleaved with it (same phase)."
    )


def main() -> None:
    """Start nats-server, measure both paths, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000, help="events per run")
    parser.add_argument(
        "--concurrency", type=int, default=64, help="publishes in flight; consumer batch size"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each path per phase")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    parser.add_argument(
        "--sample-ratio",
        type=float,
        default=1.0,
        help="share of traces phase 2 (tracing on) records, 0..1 (default: all)",
    )
    args = parser.parse_args()
    if args.events < 1 or args.concurrency < 1 or args.repeat < 1:
        parser.error("--events, --concurrency and --repeat must be at least 1")

    events = typical_events(args.events)
    with tempfile.TemporaryDirectory(prefix="bus-bench-") as data_dir:
        server = start_nats(Path(data_dir))
        try:
            runs = asyncio.run(
                measure(server.url, events, args.concurrency, args.repeat, args.sample_ratio)
            )
        finally:
            server.stop()

    rows = summarize(runs)
    paired = paired_ratios(runs)
    print()
    print_table(rows, paired)
    report = {
        "benchmark": "bus_throughput",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "nats_server": nats_server_version(),
        "nats_py": version("nats-py"),
        "protobuf": f"{version('protobuf')} ({api_implementation.Type()})",
        "opentelemetry_sdk": version("opentelemetry-sdk"),
        "events": args.events,
        "concurrency": args.concurrency,
        "repeat": args.repeat,
        "sample_ratio": args.sample_ratio,
        "event_bytes": events[0].ByteSize(),
        "summary": [asdict(r) for r in rows],
        "paired_ratios": paired,
        "runs": [
            {**asdict(r), "per_second": r.per_second, "publish_per_second": r.publish_per_second}
            for r in runs
        ],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
