"""ACD enqueue → originate through the bus: the time from an EnqueueRequest sent to the tenant's
acd owner until the Originate for an agent is published on the switch node's command subject.

Run: .tools/uv/bin/uv run --frozen --all-packages python bench/acd_enqueue.py
     [--rate 50] [--seconds 20] [--agents 200] [--hold 2.0] [--answer-delay 0.05]
     [--json bench/results/acd_enqueue.json]

Starts its own nats-server and FerretDB and the acd service as a real process (one replica, the
tenant's owner). The tenant has one queue and ``--agents`` agents, all logged in and ready, so
every call finds an agent at once. A switch node stand-in in this process answers the node's
command subject: an Originate is answered ``--answer-delay`` seconds later (the agent picks up),
a Bridge at once (and ``call_bridged`` is published), Play/Hangup at once; each call then ends
``--hold`` seconds after its bridge (``call_hung_up`` of the caller's leg), which frees the
agent. Calls arrive at ``--rate`` per second (evenly spaced) for ``--seconds``.

Measured per call: enqueue → originate seen on the node subject (the routing path: request
over NATS, the owner's decision, the switch command back over NATS), and the enqueue reply's
round trip. Prints a table; writes JSON.
"""

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
import uuid
from collections.abc import Coroutine
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from google.protobuf.message import Message
from nats.aio.msg import Msg

from callmesh.core.bus import Bus
from callmesh.core.errors import Unavailable
from callmesh.core.servers import start_ferretdb, start_nats
from callmesh.core.settings import PlatformSettings
from callmesh.core.store import Store
from callmesh.core.tenancy import TenantInfo, TenantStatus
from callmesh.core.testing import ServiceProcess, start_service, wait_ready
from callmesh.proto.subjects import AcdOp, Bucket, Service
from callmesh.proto.v1.acd_pb2 import AgentCommand, AgentCommandReply, EnqueueReply, EnqueueRequest
from callmesh.proto.v1.event_pb2 import Event
from callmesh.proto.v1.switch_pb2 import SwitchCommand, SwitchReply

DEFAULT_JSON = Path(__file__).parent / "results" / "acd_enqueue.json"
TENANT = "bench"
NODE = "fs-bench"
QUEUE = "sales"

R = TypeVar("R", bound=Message)


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0..100) of samples, nearest rank."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


@dataclass
class FakeNode:
    """A switch node's command subject: answers originates after a delay, the rest at once, and
    publishes the call events the ACD listens to."""

    bus: Bus
    answer_delay_s: float
    hold_s: float
    # call_id -> when its first originate was seen (perf_counter)
    originated: dict[str, float] = field(default_factory=dict)
    # call_id -> fencing token of its first originate
    tokens: dict[str, int] = field(default_factory=dict)
    first_token_seen: list[tuple[float, int]] = field(default_factory=list)
    callers: dict[str, str] = field(default_factory=dict)
    commands: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        """Answer the node's command subject."""
        await self.bus.nc.subscribe(self.bus.subjects.node_command(NODE), cb=self._on_command)
        await self.bus.nc.flush()

    async def _on_command(self, msg: Msg) -> None:
        now = time.perf_counter()
        command = SwitchCommand.FromString(msg.data)
        self.commands += 1
        which = command.WhichOneof("command")
        if which == "originate":
            self.originated.setdefault(command.call_id, now)
            self.tokens.setdefault(command.call_id, command.fencing_token)
            self.first_token_seen.append((now, command.fencing_token))
            self._spawn(self._answer_later(msg, command))
            return
        reply = SwitchReply(command_id=command.command_id, ok=True)
        if which == "bridge":
            reply.channel_uuid = command.bridge.a_channel_uuid
            self._spawn(self._bridged(command))
        await self.bus.nc.publish(msg.reply, reply.SerializeToString())

    async def _answer_later(self, msg: Msg, command: SwitchCommand) -> None:
        await asyncio.sleep(self.answer_delay_s)
        leg = command.originate.channel_uuid
        reply = SwitchReply(command_id=command.command_id, ok=True, channel_uuid=leg)
        await self.bus.nc.publish(msg.reply, reply.SerializeToString())
        event = self.bus.new_event(tenant_id=command.tenant_id, call_id=command.call_id)
        event.call_answered.channel_uuid = leg
        await self._publish(event)

    async def _bridged(self, command: SwitchCommand) -> None:
        event = self.bus.new_event(tenant_id=command.tenant_id, call_id=command.call_id)
        event.call_bridged.a_channel_uuid = command.bridge.a_channel_uuid
        event.call_bridged.b_channel_uuid = command.bridge.b_channel_uuid
        await self._publish(event)
        await asyncio.sleep(self.hold_s)
        for channel in (command.bridge.a_channel_uuid, command.bridge.b_channel_uuid):
            ended = self.bus.new_event(tenant_id=command.tenant_id, call_id=command.call_id)
            ended.call_hung_up.channel_uuid = channel
            ended.call_hung_up.cause = "NORMAL_CLEARING"
            await self._publish(ended)

    async def _publish(self, event: Event) -> None:
        try:
            await self.bus.publish(event)
        except Unavailable as err:
            print(f"publish failed: {err}", file=sys.stderr)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


async def request_acd(
    bus: Bus, op: AcdOp, message: Message, reply_type: type[R], timeout: float = 30
) -> R:
    """Ask the tenant's owner, retrying while nobody owns it."""
    subject = bus.subjects.service_command(TENANT, Service.ACD, op)
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await bus.request(subject, message, reply_type, timeout=5.0)
        except Unavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def prepare_tenant(settings: PlatformSettings, bus: Bus, agents: int) -> None:
    """The tenant's record, queue and agents (through the acd's config store)."""
    from callmesh.acd.adapters import config_store
    from callmesh.acd.domain.config import AgentProfile, QueueConfig, TenantAcdConfig

    info = TenantInfo(TENANT, TenantStatus.ACTIVE, name=TENANT, language="en")
    await (await bus.kv(Bucket.TENANTS)).put(TENANT, info.to_json())
    config = TenantAcdConfig(
        tenant_id=TENANT,
        queues={QUEUE: QueueConfig(queue_id=QUEUE, skill="sales", no_answer_timeout_s=20)},
        agents={
            f"a{i}": AgentProfile(
                agent_id=f"a{i}", endpoint=f"user:{2000 + i}", skills={"sales": 3}
            )
            for i in range(agents)
        },
    )
    store = Store(settings)
    try:
        await config_store.save_tenant_config(await store.tenant(TENANT), config)
    finally:
        await store.close()


async def login_all(bus: Bus, agents: int) -> None:
    """Every agent logs in ready."""
    for i in range(agents):
        reply = await request_acd(
            bus,
            AcdOp.AGENT_LOGIN,
            AgentCommand(agent_id=f"a{i}", requested_by=f"a{i}", ready=True),
            AgentCommandReply,
        )
        if not reply.ok:
            raise SystemExit(f"login a{i} refused: {reply.message}")


@dataclass
class Result:
    """What one run measured."""

    rate: float
    seconds: float
    agents: int
    calls: int
    routed: int
    refused: int
    enqueue_to_originate_ms: dict[str, float]
    enqueue_reply_ms: dict[str, float]
    achieved_rate: float
    # A bare NATS request/reply (an echo in this process) at the same rate: the transport floor.
    echo_floor_ms: dict[str, float] = field(default_factory=dict)
    # From the acd's /metrics: write-ahead snapshots (count, mean ms, last size) and the engine's
    # routing decisions (mean µs).
    acd_metrics: dict[str, float] = field(default_factory=dict)


def summary(samples: list[float]) -> dict[str, float]:
    """p50/p90/p99/max in milliseconds."""
    if not samples:
        return {"p50": float("nan"), "p90": float("nan"), "p99": float("nan"), "max": float("nan")}
    return {
        "p50": statistics.median(samples) * 1000,
        "p90": percentile(samples, 90) * 1000,
        "p99": percentile(samples, 99) * 1000,
        "max": max(samples) * 1000,
    }


async def drive(
    settings: PlatformSettings, rate: float, seconds: float, agents: int, hold: float, delay: float
) -> Result:
    """Log the agents in, send calls at ``rate``, collect the latencies."""
    bus = Bus(settings, "bench")
    await bus.connect(attempts=3)
    node = FakeNode(bus, delay, hold)
    await node.start()
    try:
        await login_all(bus, agents)
        sent: dict[str, float] = {}
        replies: list[float] = []
        refused = 0

        async def one(call_id: str) -> None:
            nonlocal refused
            request = EnqueueRequest(
                call_id=call_id,
                queue_id=QUEUE,
                channel_uuid=call_id,
                node_id=NODE,
                caller_number="+8613800000000",
                language="en",
            )
            started = time.perf_counter()
            sent[call_id] = started
            reply = await request_acd(bus, AcdOp.ENQUEUE, request, EnqueueReply)
            replies.append(time.perf_counter() - started)
            if not reply.ok:
                refused += 1

        tasks: list[asyncio.Task[None]] = []
        total = int(rate * seconds)
        began = time.perf_counter()
        for i in range(total):
            target = began + i / rate
            pause = target - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
            tasks.append(asyncio.ensure_future(one(str(uuid.uuid4()))))
        achieved = total / (time.perf_counter() - began)
        await asyncio.gather(*tasks)
        # Stragglers: an originate may come just after its enqueue reply.
        await asyncio.sleep(1.0)
        latencies = [node.originated[c] - t for c, t in sent.items() if c in node.originated]
        floor = await echo_floor(bus, rate, min(total, 250))
        return Result(
            rate=rate,
            seconds=seconds,
            agents=agents,
            calls=total,
            routed=len(latencies),
            refused=refused,
            enqueue_to_originate_ms=summary(latencies),
            enqueue_reply_ms=summary(replies),
            achieved_rate=achieved,
            echo_floor_ms=summary(floor),
        )
    finally:
        for task in list(node.tasks):
            task.cancel()
        await bus.close()


async def echo_floor(bus: Bus, rate: float, count: int) -> list[float]:
    """Round trips of a bare request to an echo responder on the same server, at ``rate``."""
    subject = f"{bus.subjects.prefix}.bench.echo"

    async def echo(msg: Msg) -> None:
        await bus.nc.publish(msg.reply, msg.data)

    sub = await bus.nc.subscribe(subject, cb=echo)
    samples: list[float] = []

    async def one() -> None:
        started = time.perf_counter()
        await bus.nc.request(subject, b"x" * 64, timeout=5)
        samples.append(time.perf_counter() - started)

    tasks = []
    began = time.perf_counter()
    for i in range(count):
        pause = began + i / rate - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
        tasks.append(asyncio.ensure_future(one()))
    await asyncio.gather(*tasks)
    await sub.unsubscribe()
    return samples


def acd_metrics(base_url: str) -> dict[str, float]:
    """Snapshot and routing figures from the acd's Prometheus endpoint."""
    text = httpx.get(f"{base_url}/metrics", timeout=5).text
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, _, value = line.rpartition(" ")
        base = name.split("{", 1)[0]
        if base in (
            "callmesh_acd_snapshot_seconds_sum",
            "callmesh_acd_snapshot_seconds_count",
            "callmesh_acd_snapshot_bytes",
            "callmesh_acd_routing_seconds_sum",
            "callmesh_acd_routing_seconds_count",
        ):
            values[base] = values.get(base, 0.0) + float(value)
    snapshots = values.get("callmesh_acd_snapshot_seconds_count", 0.0)
    decisions = values.get("callmesh_acd_routing_seconds_count", 0.0)
    return {
        "snapshots": snapshots,
        "snapshot_mean_ms": (
            values.get("callmesh_acd_snapshot_seconds_sum", 0.0) / snapshots * 1000
            if snapshots
            else float("nan")
        ),
        "snapshot_bytes": values.get("callmesh_acd_snapshot_bytes", float("nan")),
        "routing_decisions": decisions,
        "routing_mean_us": (
            values.get("callmesh_acd_routing_seconds_sum", 0.0) / decisions * 1e6
            if decisions
            else float("nan")
        ),
    }


async def wait_owner(bus: Bus, timeout: float = 30) -> str:
    """Wait until a replica holds the tenant's lease; its holder."""
    kv = await bus.kv(Bucket.LEASES)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            entry = await kv.get(f"acd.{TENANT}")
            if entry.value:
                return str(json.loads(entry.value).get("holder", "?"))
        except Exception:  # noqa: BLE001 - not there yet
            pass
        await asyncio.sleep(0.05)
    raise SystemExit("no acd replica took the tenant")


async def setup(settings: PlatformSettings, agents: int) -> None:
    """Provision the bus, write the tenant and its configuration."""
    bus = Bus(settings, "bench")
    await bus.connect(attempts=3)
    await bus.provision()
    try:
        await prepare_tenant(settings, bus, agents)
    finally:
        await bus.close()


async def owner(settings: PlatformSettings) -> str:
    """The tenant's owner once there is one."""
    bus = Bus(settings, "bench")
    await bus.connect(attempts=3)
    try:
        return await wait_owner(bus)
    finally:
        await bus.close()


def main() -> None:
    """Start the platform pieces and the acd, drive the load, print and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="calls per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long calls arrive")
    parser.add_argument("--agents", type=int, default=200, help="agents logged in and ready")
    parser.add_argument("--hold", type=float, default=2.0, help="seconds a call lasts once bridged")
    parser.add_argument("--answer-delay", type=float, default=0.05, help="agent pick-up, seconds")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="acd-bench-") as tmp:
        data = Path(tmp)
        nats = start_nats(data / "nats")
        ferret = start_ferretdb(data / "ferretdb")
        settings = PlatformSettings(
            nats_url=nats.url,
            mongodb_uri=ferret.url,
            mongodb_database="bench",
            subject_prefix="bench",
            log_level="WARNING",
            media_dir=data / "media",
        )
        acd: ServiceProcess | None = None
        try:
            asyncio.run(setup(settings, args.agents))
            acd = start_service("acd", settings, data, extra_env={"CALLMESH_INSTANCE": "acd-1"})
            asyncio.run(wait_ready(acd, timeout=60))
            print(f"owner: {asyncio.run(owner(settings))}", flush=True)
            result = asyncio.run(
                drive(settings, args.rate, args.seconds, args.agents, args.hold, args.answer_delay)
            )
            result.acd_metrics = acd_metrics(acd.base_url)
        finally:
            if acd is not None:
                acd.terminate()
            ferret.stop()
            nats.stop()

    o, r = result.enqueue_to_originate_ms, result.enqueue_reply_ms
    print()
    print(f"{'measure':<28} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    print("-" * 64)
    rows = (
        ("enqueue -> originate", o),
        ("enqueue reply round trip", r),
        ("echo request (floor)", result.echo_floor_ms),
    )
    for name, row in rows:
        print(f"{name:<28} {row['p50']:8.2f} {row['p90']:8.2f} {row['p99']:8.2f} {row['max']:8.2f}")
    print(
        f"\ncalls {result.calls} at {result.achieved_rate:.1f}/s (asked {result.rate:g}), "
        f"routed {result.routed}, refused {result.refused}, agents {result.agents}"
    )
    m = result.acd_metrics
    print(
        f"acd: {m['snapshots']:.0f} write-ahead snapshots, mean {m['snapshot_mean_ms']:.2f} ms, "
        f"last {m['snapshot_bytes']:.0f} bytes; {m['routing_decisions']:.0f} engine calls, "
        f"mean {m['routing_mean_us']:.0f} µs"
    )
    report = {
        "benchmark": "acd_enqueue",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "result": asdict(result),
        "target_p99_ms": 10.0,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
