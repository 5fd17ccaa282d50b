"""ACD failover: the time from the death of the replica that owns a tenant (SIGKILL, no lease
release) to the first call routed by the replica that takes over.

Run: .tools/uv/bin/uv run --frozen --all-packages python bench/acd_failover.py
     [--rounds 3] [--ttl 2] [--rate 10] [--agents 50]
     [--json bench/results/acd_failover.json]

Starts its own nats-server and FerretDB and two acd replicas as real processes, the platform's
``lease_ttl_s`` set to ``--ttl``. A switch node stand-in in this process answers originates
after 50 ms and ends each call 1 s after its bridge; calls arrive at ``--rate`` per second all
along (a sender retries while nobody owns the tenant, as ivr will). Each round kills the owner
with SIGKILL, then watches the leases bucket and the node's command subject:

- kill → lease gone: the dead owner's key runs out (at most the TTL after its last renewal);
- lease gone → taken: the survivor's next claim attempt creates the key;
- taken → first routed: the survivor restores the tenant (config, snapshot) and sends its first
  Originate (a fencing token above the dead owner's).

The killed replica is then started again (it becomes the standby) for the next round.
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

from google.protobuf.message import Message
from nats.aio.msg import Msg

from callmesh.core.bus import Bus
from callmesh.core.errors import RequestTimeout, Unavailable
from callmesh.core.servers import start_ferretdb, start_nats
from callmesh.core.settings import PlatformSettings
from callmesh.core.store import Store
from callmesh.core.tenancy import TenantInfo, TenantStatus
from callmesh.core.testing import ServiceProcess, start_service, wait_ready
from callmesh.proto.subjects import AcdOp, Bucket, Service
from callmesh.proto.v1.acd_pb2 import AgentCommand, AgentCommandReply, EnqueueReply, EnqueueRequest
from callmesh.proto.v1.event_pb2 import Event
from callmesh.proto.v1.switch_pb2 import SwitchCommand, SwitchReply

DEFAULT_JSON = Path(__file__).parent / "results" / "acd_failover.json"
TENANT = "bench"
NODE = "fs-bench"
QUEUE = "sales"
ANSWER_DELAY_S = 0.05
HOLD_S = 1.0

R = TypeVar("R", bound=Message)
# Requests sent again after no answer in time (the owner died holding them).
RETRIES: dict[str, int] = {"timeout": 0}


@dataclass
class FakeNode:
    """The switch node's command subject: originates answered after a delay, calls ended after
    a hold time; remembers when each fencing token was first seen on an originate."""

    bus: Bus
    originates: list[tuple[float, int]] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        """Answer the node's command subject."""
        await self.bus.nc.subscribe(self.bus.subjects.node_command(NODE), cb=self._on_command)
        await self.bus.nc.flush()

    def first_routed_after(self, token: int, since: float) -> float | None:
        """When the first originate with a token above ``token`` came after ``since``."""
        for at, seen in self.originates:
            if seen > token and at >= since:
                return at
        return None

    def highest_token(self) -> int:
        """The highest fencing token seen on an originate so far."""
        return max((token for _, token in self.originates), default=0)

    async def _on_command(self, msg: Msg) -> None:
        command = SwitchCommand.FromString(msg.data)
        which = command.WhichOneof("command")
        if which == "originate":
            self.originates.append((time.perf_counter(), command.fencing_token))
            self._spawn(self._answer_later(msg, command))
            return
        reply = SwitchReply(command_id=command.command_id, ok=True)
        if which == "bridge":
            reply.channel_uuid = command.bridge.a_channel_uuid
            self._spawn(self._bridged(command))
        await self.bus.nc.publish(msg.reply, reply.SerializeToString())

    async def _answer_later(self, msg: Msg, command: SwitchCommand) -> None:
        await asyncio.sleep(ANSWER_DELAY_S)
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
        await asyncio.sleep(HOLD_S)
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
    bus: Bus, op: AcdOp, message: Message, reply_type: type[R], timeout: float = 60
) -> R:
    """Ask the tenant's owner, retrying while nobody owns it (a failover) and when the owner died
    with the request in hand (no answer in time: enqueue is idempotent by call id)."""
    subject = bus.subjects.service_command(TENANT, Service.ACD, op)
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await bus.request(subject, message, reply_type, timeout=2.0)
        except RequestTimeout:
            RETRIES["timeout"] += 1
            if time.monotonic() > deadline:
                raise
        except Unavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)


async def holder(bus: Bus) -> str | None:
    """Who holds the tenant's lease now (None: nobody)."""
    kv = await bus.kv(Bucket.LEASES)
    try:
        entry = await kv.get(f"acd.{TENANT}")
    except Exception:  # noqa: BLE001 - key not found (expired or deleted)
        return None
    if not entry.value:
        return None
    return str(json.loads(entry.value).get("holder", "")) or None


async def until_held(bus: Bus, timeout: float = 30) -> str:
    """Wait until some replica holds the tenant's lease."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = await holder(bus)
        if current is not None:
            return current
        await asyncio.sleep(0.05)
    raise SystemExit("no acd replica took the tenant")


@dataclass
class Round:
    """One failover, in milliseconds from the kill."""

    killed: str
    survivor: str
    lease_gone_ms: float
    lease_taken_ms: float
    first_routed_ms: float

    @property
    def breakdown(self) -> tuple[float, float, float]:
        """(kill → gone, gone → taken, taken → routed)."""
        return (
            self.lease_gone_ms,
            self.lease_taken_ms - self.lease_gone_ms,
            self.first_routed_ms - self.lease_taken_ms,
        )


class Bench:
    """The platform, two replicas, the node stand-in and the load."""

    def __init__(self, settings: PlatformSettings, data: Path, agents: int, rate: float) -> None:
        self.settings = settings
        self.data = data
        self.agents = agents
        self.rate = rate
        self.replicas: dict[str, ServiceProcess] = {}
        self.calls_sent = 0
        self.calls_failed = 0

    def start_replica(self, instance: str) -> None:
        """Start ``python -m callmesh.acd`` as ``instance`` (not waiting)."""
        self.replicas[instance] = start_service(
            "acd", self.settings, self.data, extra_env={"CALLMESH_INSTANCE": instance}
        )

    async def prepare(self, bus: Bus) -> None:
        """The tenant's record, queue and agents."""
        from callmesh.acd.adapters import config_store
        from callmesh.acd.domain.config import AgentProfile, QueueConfig, TenantAcdConfig

        info = TenantInfo(TENANT, TenantStatus.ACTIVE, name=TENANT, language="en")
        await (await bus.kv(Bucket.TENANTS)).put(TENANT, info.to_json())
        config = TenantAcdConfig(
            tenant_id=TENANT,
            queues={QUEUE: QueueConfig(queue_id=QUEUE, skill="sales")},
            agents={
                f"a{i}": AgentProfile(
                    agent_id=f"a{i}", endpoint=f"user:{2000 + i}", skills={"sales": 3}
                )
                for i in range(self.agents)
            },
        )
        store = Store(self.settings)
        try:
            await config_store.save_tenant_config(await store.tenant(TENANT), config)
        finally:
            await store.close()

    async def load(self, bus: Bus, stop: asyncio.Event) -> None:
        """Calls at ``rate`` per second until ``stop``."""
        pending: set[asyncio.Task[None]] = set()

        async def one() -> None:
            call_id = str(uuid.uuid4())
            request = EnqueueRequest(
                call_id=call_id, queue_id=QUEUE, channel_uuid=call_id, node_id=NODE, language="en"
            )
            try:
                await request_acd(bus, AcdOp.ENQUEUE, request, EnqueueReply)
            except Exception as err:  # noqa: BLE001 - counted, the load goes on
                self.calls_failed += 1
                print(f"call {call_id} failed: {err!r}", file=sys.stderr)

        while not stop.is_set():
            task = asyncio.ensure_future(one())
            pending.add(task)
            task.add_done_callback(pending.discard)
            self.calls_sent += 1
            await asyncio.sleep(1 / self.rate)
        await asyncio.gather(*pending, return_exceptions=True)

    async def run(self, rounds: int) -> list[Round]:
        """Every round of kill, watch and restart."""
        bus = Bus(self.settings, "bench")
        await bus.connect(attempts=3)
        await bus.provision()
        await self.prepare(bus)
        self.start_replica("acd-a")
        await wait_ready(self.replicas["acd-a"], timeout=60)
        await until_held(bus)
        self.start_replica("acd-b")
        await wait_ready(self.replicas["acd-b"], timeout=60)
        node = FakeNode(bus)
        await node.start()
        for i in range(self.agents):
            reply = await request_acd(
                bus,
                AcdOp.AGENT_LOGIN,
                AgentCommand(agent_id=f"a{i}", requested_by=f"a{i}", ready=True),
                AgentCommandReply,
            )
            if not reply.ok:
                raise SystemExit(f"login a{i} refused: {reply.message}")
        stop = asyncio.Event()
        load = asyncio.ensure_future(self.load(bus, stop))
        results: list[Round] = []
        try:
            for number in range(rounds):
                await asyncio.sleep(2.0)
                owner = await holder(bus)
                if owner is None or owner not in self.replicas:
                    raise SystemExit(f"round {number}: no known owner ({owner})")
                survivor = next(name for name in self.replicas if name != owner)
                token = node.highest_token()
                killed_at = time.perf_counter()
                self.replicas[owner].proc.kill()
                gone = taken = routed = None
                deadline = killed_at + 120
                while time.perf_counter() < deadline and (taken is None or routed is None):
                    now = time.perf_counter()
                    current = await holder(bus)
                    if gone is None and current != owner:
                        gone = now
                    if taken is None and current == survivor:
                        taken = now
                    routed = node.first_routed_after(token, killed_at)
                    await asyncio.sleep(0.005)
                if gone is None or taken is None or routed is None:
                    raise SystemExit(f"round {number}: the survivor never routed a call")
                row = Round(
                    killed=owner,
                    survivor=survivor,
                    lease_gone_ms=(gone - killed_at) * 1000,
                    lease_taken_ms=(taken - killed_at) * 1000,
                    first_routed_ms=(routed - killed_at) * 1000,
                )
                results.append(row)
                print(
                    f"  round {number + 1}: {owner} killed, {survivor} routed after "
                    f"{row.first_routed_ms:.0f} ms",
                    flush=True,
                )
                self.replicas[owner].proc.wait()
                self.start_replica(owner)
                await wait_ready(self.replicas[owner], timeout=60)
        finally:
            stop.set()
            await load
            for task in list(node.tasks):
                task.cancel()
            await bus.close()
        return results

    def stop(self) -> None:
        """Stop every replica."""
        for replica in self.replicas.values():
            replica.terminate()


def main() -> None:
    """Start the platform and two replicas, run the rounds, print and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="failovers to measure")
    parser.add_argument("--ttl", type=float, default=2.0, help="lease_ttl_s of the platform")
    parser.add_argument("--rate", type=float, default=10.0, help="calls per second all along")
    parser.add_argument("--agents", type=int, default=50, help="agents logged in and ready")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="acd-failover-") as tmp:
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
            lease_ttl_s=args.ttl,
        )
        bench = Bench(settings, data, args.agents, args.rate)
        try:
            rounds = asyncio.run(bench.run(args.rounds))
        finally:
            bench.stop()
            ferret.stop()
            nats.stop()

    print()
    header = (
        f"{'round':>5} {'killed':>7} {'kill->gone':>11} {'gone->taken':>12} "
        f"{'taken->routed':>14} {'total ms':>9}"
    )
    print(f"lease TTL {args.ttl:g} s, calls {args.rate:g}/s")
    print(header)
    print("-" * len(header))
    for number, row in enumerate(rounds, 1):
        a, b, c = row.breakdown
        print(
            f"{number:>5} {row.killed:>7} {a:>11.0f} {b:>12.0f} {c:>14.0f} "
            f"{row.first_routed_ms:>9.0f}"
        )
    totals = [row.first_routed_ms for row in rounds]
    print(f"\nmedian {statistics.median(totals):.0f} ms, max {max(totals):.0f} ms")
    report = {
        "benchmark": "acd_failover",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "lease_ttl_s": args.ttl,
        "rate": args.rate,
        "agents": args.agents,
        "rounds": [{**asdict(row), "breakdown_ms": row.breakdown} for row in rounds],
        "median_ms": statistics.median(totals),
        "max_ms": max(totals),
        "calls_sent": bench.calls_sent,
        "calls_failed": bench.calls_failed,
        "requests_retried_after_timeout": RETRIES["timeout"],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
