"""The cti link's throughput and command latency on one core.

Run: .tools/uv/bin/uv run --frozen --all-packages python bench/cti_link.py [--calls 3000]
     [--commands 2000] [--json bench/results/cti_link.json]

1. A burst of real event traffic is recorded from the FreeSWITCH emulator (inbound call, agent
   leg originated and bridged, held, unheld, hung up; only the events the link subscribes to,
   serialized by the emulator exactly as FreeSWITCH does). A plain asyncio server in a child
   process speaks the ESL inbound handshake and replays the burst on the real wire (the
   emulator alone cannot generate events as fast as the link takes them).
2. The link reads the burst with each event reader (``CALLMESH_CTI_EVENT_READER``): ``asyncio``
   (a second connection read in the service's loop by ``FrameParser`` + the fast parse;
   greenswitch holds only the command connection) and ``greenswitch`` (InboundESL in its gevent
   thread, the bridge): ESL events normalized and published per second, first event in to last
   JetStream ack, with the call events really published to a nats-server; then the same without
   publishing (normalize only). In the same run, on the same bytes: the asyncio reader alone
   (batches to a counter), greenswitch's own parser alone (an InboundESL with a counting ``*``
   handler) and, in memory, ``FrameParser`` fed 256 KiB pieces + the fast parse (and + the whole
   lazy parse) ("parse only"). Then each stage of the event path alone, in µs per ESL event
   (where the time goes). "Published" counts only call events the stream acked (publish_many:
   every publish has its own reply subject; a failed or missing ack is published again).
3. Command round trip: the emulator's event socket in a child process with a parked call; a
   client sends ``SwitchCommand``s (set a variable) on ``cm.node.<node>.cmd`` and waits for the
   ``SwitchReply``: bus → link → bgapi → BACKGROUND_JOB → reply, p50/p99.

The link's process runs on one core: the gevent thread and the asyncio loop share one GIL; the
switch stand-ins and nats-server run in other processes. Each link row also gives the CPU time
of the link's process (all threads, user + system, from the connection to the last ack) per ESL
event: 1e6 / that is the rate one core of its own would sustain, which the events/s column only
shows when nothing else wants the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from callmesh.core.bus import Bus
from callmesh.core.esl import Frame, FrameParser
from callmesh.core.servers import nats_server_version, start_nats
from callmesh.core.settings import PlatformSettings
from callmesh.cti.adapters.bus import BusCallEvents, uuid4_hexes
from callmesh.cti.adapters.esl import EslLink, GeventThread
from callmesh.cti.adapters.esl_events import READ_SIZE, AsyncEventReader
from callmesh.cti.adapters.esl_parse import parse_event_fast, parse_event_lazy
from callmesh.cti.adapters.metrics import LinkMetrics
from callmesh.cti.domain.normalize import CUSTOM_SUBCLASSES, SUBSCRIBED, CallEvent, Normalizer
from callmesh.cti.service.link import CtiLink, LinkConfig
from callmesh.proto.v1.switch_pb2 import SetVariable, SwitchCommand, SwitchReply

DEFAULT_JSON = Path(__file__).parent / "results" / "cti_link.json"
ASYNC_PUBLISH = "asyncio reader + publish (JetStream)"
ASYNC_NORMALIZE = "asyncio reader, normalize only"
GS_PUBLISH = "greenswitch + publish (JetStream)"
GS_NORMALIZE = "greenswitch, normalize only"
LABELS = (
    ASYNC_PUBLISH,
    ASYNC_NORMALIZE,
    GS_PUBLISH,
    GS_NORMALIZE,
    "asyncio reader only",
    "greenswitch parse only",
    "FrameParser + fast parse only",
    "FrameParser + whole (lazy) parse only",
)
NODE = "bench-1"


# -- the burst ------------------------------------------------------------------------------


async def record_burst(calls: int, tenants: int) -> tuple[bytes, int, dict[str, int]]:
    """Event frames of ``calls`` calls as the emulator fires them (subscribed events only)."""
    from callmesh.fsemu.switch import Switch

    switch = Switch(speed=50, seed=7)
    frames: list[bytes] = []
    names: dict[str, int] = {}
    wanted = set(SUBSCRIBED) - {"BACKGROUND_JOB"}

    def keep(event: Any) -> None:
        if event.name in wanted or (event.name == "CUSTOM" and event.subclass in CUSTOM_SUBCLASSES):
            frames.append(event.frame("plain"))
            names[event.name] = names.get(event.name, 0) + 1

    switch.subscribe(keep)

    async def one(i: int) -> None:
        tenant = f"t{i % tenants}"
        caller = await switch.inbound_call(
            caller_number=f"+3361{i:07d}",
            destination_number="+33140000000",
            variables={"callmesh_tenant": tenant, "callmesh_call_id": str(uuid.uuid4())},
        )
        agent = str(uuid.uuid4())
        await switch.api(
            f"originate {{origination_uuid={agent},callmesh_tenant={tenant},"
            f"callmesh_role=agent}}null/1001 &park()"
        )
        await switch.api(f"uuid_bridge {caller.uuid} {agent}")
        await switch.api(f"uuid_hold {agent}")
        await switch.api(f"uuid_hold off {agent}")
        await switch.api(f"uuid_kill {caller.uuid}")
        # The emulator leaves the agent's leg up when the bridged caller is killed: end it too.
        await switch.api(f"uuid_kill {agent}")
        await caller.wait_destroyed()

    for start in range(0, calls, 100):
        await asyncio.gather(*(one(i) for i in range(start, min(calls, start + 100))))
    deadline = time.monotonic() + 60
    while switch.channels() and time.monotonic() < deadline:  # noqa: ASYNC110 - agents end too
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    return b"".join(frames), len(frames), names


def serve_burst(path: str, port_out: Any) -> None:
    """Child process: an ESL inbound stand-in replaying the burst to every client."""
    import asyncio as aio

    from callmesh.core.esl import api_response_frame, command_reply_frame

    payload = Path(path).read_bytes()

    async def client(reader: aio.StreamReader, writer: aio.StreamWriter) -> None:
        writer.write(b"Content-Type: auth/request\n\n")
        try:
            while True:
                block = await reader.readuntil(b"\n\n")
                command = block.decode().split("\n", 1)[0]
                if command.startswith("auth"):
                    writer.write(command_reply_frame("+OK accepted"))
                elif command.startswith("event"):
                    writer.write(command_reply_frame("+OK event listener enabled plain"))
                    if command.endswith(" ALL"):  # raw greenswitch: no table to rebuild
                        writer.write(payload)
                elif command.startswith("api show channels"):
                    writer.write(api_response_frame('{"row_count":0}'))
                elif command.startswith("api show calls"):
                    writer.write(api_response_frame('{"row_count":0}'))
                    writer.write(payload)
                elif command.startswith("exit"):
                    writer.write(command_reply_frame("+OK bye"))
                    await writer.drain()
                    break
                await writer.drain()
        except (aio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def main() -> None:
        server = await aio.start_server(client, "127.0.0.1", 0)
        port_out.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    aio.run(main())


def serve_emulator(port_out: Any) -> None:
    """Child process: the emulator's event socket with one parked call."""
    import asyncio as aio

    from callmesh.fsemu.esl_inbound import start_esl_server
    from callmesh.fsemu.switch import Switch

    async def main() -> None:
        switch = Switch(seed=3)
        server = await start_esl_server(switch, port=0)
        channel = await switch.inbound_call(
            caller_number="+33612345678",
            destination_number="+33140000000",
            variables={"callmesh_tenant": "acme"},
        )
        port_out.put((server.port, channel.uuid))
        await aio.Event().wait()

    aio.run(main())


# -- the link under measure -----------------------------------------------------------------


class CountingPublisher:
    """Publishes (or not) and notes when the last call event was acked."""

    def __init__(self, inner: BusCallEvents | None) -> None:
        self.inner = inner
        self.published = 0
        self.last = 0.0
        self.last_cpu = 0.0

    async def publish_call_events(self, events: Sequence[CallEvent]) -> None:
        if self.inner is not None:
            await self.inner.publish_call_events(events)
            # Only what the stream acked counts (a failed one is retried and counted then).
            self.published = self.inner.stored
        else:
            self.published += len(events)
        self.last = time.perf_counter()
        self.last_cpu = time.process_time()


@dataclass
class LinkRun:
    label: str
    events: int
    published: int
    seconds: float
    # CPU time of this process (all its threads, user + system) over the same span; 0: not taken.
    cpu_seconds: float = 0.0

    @property
    def per_second(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_seconds / self.events * 1e6


def expected_call_events(payload: bytes) -> int:
    """How many call events the burst must give (the normalizer run offline over it)."""
    normalizer = Normalizer()
    count = 0
    parser = FrameParser()
    for start in range(0, len(payload), 1 << 16):  # in pieces: the parser's buffer stays small
        for frame in parser.feed(payload[start : start + (1 << 16)]):
            if isinstance(frame, Frame) and frame.content_type == "text/event-plain":
                headers, _ = parse_event_lazy(frame.body)
                count += len(normalizer.feed(headers).events)
    return count


async def measure_link(
    label: str,
    port: int,
    expected: int,
    calls_expected: int,
    bus: Bus | None,
    reader: str = "greenswitch",
    timeout_s: float = 600,
) -> LinkRun:
    publisher = CountingPublisher(BusCallEvents(bus, NODE) if bus is not None else None)
    metrics = LinkMetrics(NODE)
    link = CtiLink(LinkConfig(node_id=NODE), publisher=publisher, observer=metrics)
    thread = GeventThread()
    bridge = await thread.start()
    own = reader == "asyncio"
    esl = EslLink(bridge, link, "127.0.0.1", port, "ClueCon", observer=metrics, events=not own)
    events = AsyncEventReader(link, "127.0.0.1", port, "ClueCon", observer=metrics) if own else None
    link.switch = esl
    # From the connection on (its cost is in): the burst follows the channel snapshot.
    began = time.perf_counter()
    began_cpu = time.process_time()
    await esl.start()
    if events is not None:
        await events.start()
    deadline = time.monotonic() + timeout_s
    # Done when every call event of the burst is published (acked by the stream).
    while publisher.published < calls_expected and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    if events is not None:
        await events.stop()
    await esl.stop()
    await thread.stop()
    if link.events_seen < expected or publisher.published < calls_expected:
        raise RuntimeError(
            f"{label}: {link.events_seen} of {expected} events, "
            f"{publisher.published} of {calls_expected} call events"
        )
    return LinkRun(
        label,
        link.events_seen,
        publisher.published,
        publisher.last - began,
        publisher.last_cpu - began_cpu,
    )


class CountingSink:
    """An ``EslSink`` that only counts the events (the asyncio reader alone)."""

    def __init__(self) -> None:
        self.events = 0
        self.last = 0.0
        self.last_cpu = 0.0

    async def on_events(self, batch: Sequence[Any]) -> None:
        self.events += len(batch)
        self.last = time.perf_counter()
        self.last_cpu = time.process_time()

    async def on_snapshot_begin(self) -> None:
        pass

    async def on_connected(self, live: Any, esl_endpoint: str, *, reconnect: bool) -> None:
        pass

    async def on_disconnected(self, reason: str) -> None:
        pass


async def measure_raw_asyncio(port: int, expected: int) -> LinkRun:
    """The asyncio reader alone: connection, FrameParser, lazy parse, batches to a counter."""
    sink = CountingSink()
    reader = AsyncEventReader(sink, "127.0.0.1", port, "ClueCon")
    began = time.perf_counter()
    began_cpu = time.process_time()
    await reader.start()
    deadline = time.monotonic() + 600
    while sink.events < expected and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    await reader.stop()
    return LinkRun(
        "asyncio reader only", sink.events, 0, sink.last - began, sink.last_cpu - began_cpu
    )


def measure_parse_only(payload: bytes, expected: int, *, whole: bool = False) -> LinkRun:
    """FrameParser fed 256 KiB pieces + the link's event parse (or the whole one), in memory."""
    parse = parse_event_lazy if whole else parse_event_fast
    parser = FrameParser()
    events = 0
    began = time.perf_counter()
    began_cpu = time.process_time()
    for start in range(0, len(payload), READ_SIZE):
        for frame in parser.feed(payload[start : start + READ_SIZE]):
            if isinstance(frame, Frame) and frame.content_type == "text/event-plain":
                parse(frame.body)
                events += 1
    seconds = time.perf_counter() - began
    cpu = time.process_time() - began_cpu
    if events != expected:
        raise RuntimeError(f"parse only: {events} of {expected} events")
    label = "FrameParser + whole (lazy) parse only" if whole else "FrameParser + fast parse only"
    return LinkRun(label, events, 0, seconds, cpu)


async def measure_stages(payload: bytes, bus: Bus, rounds: int) -> dict[str, float]:
    """Where the link's time goes: each stage of the event path, CPU µs per ESL event.

    The same bytes and code as the link, stage after stage on each 256 KiB piece as the
    asyncio reader reads it (so nothing piles up in memory), timed by this process's CPU clock
    (robust when other work shares the machine; waiting for acks is not CPU): the frame parser,
    the event parse, the normalizer, the link's per-event metrics, the envelopes, and
    publish_many to JetStream until every ack is in. Best of ``rounds``.
    """
    best: dict[str, float] = {}
    clock = time.process_time
    for _ in range(rounds):
        spent: dict[str, float] = {}

        def add(stage: str, since: float, spent: dict[str, float] = spent) -> float:
            now = clock()
            spent[stage] = spent.get(stage, 0.0) + now - since
            return now

        parser = FrameParser()
        normalizer = Normalizer()
        metrics = LinkMetrics(NODE)
        publisher = BusCallEvents(bus, NODE)
        n = 0
        for start in range(0, len(payload), READ_SIZE):
            began = clock()
            bodies = [
                frame.body
                for frame in parser.feed(payload[start : start + READ_SIZE])
                if isinstance(frame, Frame) and frame.content_type == "text/event-plain"
            ]
            began = add("frames (FrameParser)", began)
            parsed = [parse_event_fast(body)[0] for body in bodies]
            began = add("event parse (parse_event_fast)", began)
            out: list[CallEvent] = []
            for headers in parsed:
                out.extend(normalizer.feed(headers).events)
            began = add("normalize (Normalizer.feed)", began)
            for i, headers in enumerate(parsed):  # as CtiLink.on_events: lag once a batch
                stamp = headers.get("Event-Date-Timestamp") if i == 0 else None
                metrics.esl_event(headers.get("Event-Name") or "?", int(stamp) if stamp else 0)
            began = add("per-event metrics (LinkMetrics.esl_event)", began)
            ids = uuid4_hexes(len(out))
            envelopes = [publisher.envelope(e, i) for e, i in zip(out, ids, strict=True)]
            began = add("envelopes (BusCallEvents.envelope)", began)
            if envelopes:
                failures = await bus.publish_many(envelopes, window=1024)
                if failures:
                    raise RuntimeError(f"{len(failures)} not stored: {failures[0].error}")
            add("publish_many + every ack (JetStream)", began)
            n += len(bodies)
        for stage, seconds in spent.items():
            value = seconds / n * 1e6
            best[stage] = min(best.get(stage, value), value)
    return best


async def measure_raw_greenswitch(port: int, expected: int) -> LinkRun:
    """greenswitch's own receive and parse, counting events in a '*' handler."""
    thread = GeventThread()
    bridge = await thread.start()

    def run() -> tuple[int, float]:
        import gevent
        from greenswitch.esl import InboundESL

        seen = [0, 0.0, 0.0]

        def count(event: Any) -> None:
            seen[0] += 1
            seen[2] = time.perf_counter()

        esl = InboundESL("127.0.0.1", port, "ClueCon")
        esl.register_handle("*", count)
        esl.connect()
        # The burst follows this command's reply: timed from just before it.
        seen[1] = time.perf_counter()
        esl.send("event plain ALL")
        deadline = time.monotonic() + 600
        while seen[0] < expected and time.monotonic() < deadline:
            gevent.sleep(0.01)
        esl.stop()
        return int(seen[0]), seen[2] - seen[1]

    events, seconds = await bridge.run_gevent(run)
    await thread.stop()
    return LinkRun("greenswitch parse only", events, 0, seconds)


async def measure_commands(bus: Bus, client: Bus, n: int) -> dict[str, float]:
    """SwitchCommand → SwitchReply over the bus against the emulator, sequentially."""
    ctx = multiprocessing.get_context("spawn")
    ports: Any = ctx.Queue()
    child = ctx.Process(target=serve_emulator, args=(ports,), daemon=True)
    child.start()
    try:
        port, channel = await asyncio.get_running_loop().run_in_executor(None, ports.get, True, 60)
        link = CtiLink(LinkConfig(node_id=NODE), publisher=BusCallEvents(bus, NODE))
        thread = GeventThread()
        bridge = await thread.start()
        esl = EslLink(bridge, link, "127.0.0.1", port, "ClueCon")
        link.switch = esl
        await esl.start()
        while not link.esl_connected:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await bus.serve(bus.subjects.node_command(NODE), SwitchCommand, link.execute)
        subject = client.subjects.node_command(NODE)
        latencies: list[float] = []
        for i in range(n + 100):
            request = SwitchCommand(
                command_id=str(i),
                tenant_id="acme",
                set_variable=SetVariable(channel_uuid=channel, name="bench", value=str(i)),
            )
            began = time.perf_counter()
            reply = await client.request(subject, request, SwitchReply, timeout=10)
            if not reply.ok:
                raise RuntimeError(f"command failed: {reply.message} {reply.output}")
            if i >= 100:  # warm-up
                latencies.append(time.perf_counter() - began)
        await esl.stop()
        await thread.stop()
    finally:
        child.kill()
    latencies.sort()
    return {
        "commands": float(n),
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p90_ms": latencies[int(len(latencies) * 0.9)] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "max_ms": latencies[-1] * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    print(f"recording a burst of {args.calls} calls from the emulator …", flush=True)
    payload, expected, names = await record_burst(args.calls, args.tenants)
    calls_expected = expected_call_events(payload)
    print(
        f"  {expected} events, {len(payload) / 1e6:.1f} MB, {calls_expected} call events: {names}",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-cti-"))
    burst = workdir / "burst.esl"
    burst.write_bytes(payload)
    nats = start_nats(workdir / "nats")
    ctx = multiprocessing.get_context("spawn")
    ports: Any = ctx.Queue()
    child = ctx.Process(target=serve_burst, args=(str(burst), ports), daemon=True)
    child.start()
    try:
        port = await asyncio.get_running_loop().run_in_executor(None, ports.get, True, 60)
        settings = PlatformSettings(nats_url=nats.url, subject_prefix="bench", instance="bench")
        bus = Bus(settings, "cti")
        client = Bus(settings, "bench-client")
        await bus.connect(attempts=5)
        await client.connect(attempts=5)
        await bus.provision()
        runs: list[LinkRun] = []
        for round_ in range(args.repeat):
            for label, target, reader in (
                (ASYNC_PUBLISH, bus, "asyncio"),
                (ASYNC_NORMALIZE, None, "asyncio"),
                (GS_PUBLISH, bus, "greenswitch"),
                (GS_NORMALIZE, None, "greenswitch"),
            ):
                run = await measure_link(label, port, expected, calls_expected, target, reader)
                runs.append(run)
                print(
                    f"  round {round_ + 1}: {label:36} {run.per_second:10,.0f} events/s "
                    f"{run.cpu_us_per_event:7.1f} CPU us/event "
                    f"({run.published} call events published)",
                    flush=True,
                )
            for raw in (
                await measure_raw_asyncio(port, expected),
                await measure_raw_greenswitch(port, expected),
                measure_parse_only(payload, expected),
                measure_parse_only(payload, expected, whole=True),
            ):
                runs.append(raw)
                cpu = f"{raw.cpu_us_per_event:7.1f} CPU us/event" if raw.cpu_seconds else ""
                print(
                    f"  round {round_ + 1}: {raw.label:36} {raw.per_second:10,.0f} events/s {cpu}"
                )
        print("stages of the event path, alone …", flush=True)
        stages = await measure_stages(payload, bus, args.repeat)
        print(f"command round trip ({args.commands} commands) …", flush=True)
        commands = await measure_commands(bus, client, args.commands)
        await bus.close()
        await client.close()
    finally:
        child.kill()
        nats.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    summary = []
    for label in LABELS:
        mine = [r for r in runs if r.label == label]
        summary.append(
            {
                "path": label,
                "runs": len(mine),
                "events": expected,
                "call_events_published": mine[0].published,
                "median_per_second": statistics.median(r.per_second for r in mine),
                "best_per_second": max(r.per_second for r in mine),
                "median_cpu_us_per_event": (
                    statistics.median(r.cpu_us_per_event for r in mine)
                    if all(r.cpu_seconds for r in mine)
                    else None
                ),
            }
        )
    return {
        "benchmark": "cti_link",
        "command": "python bench/cti_link.py " + " ".join(sys.argv[1:]),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": args.load,
        "nats_server": nats_server_version(),
        "greenswitch": version("greenswitch"),
        "gevent": version("gevent"),
        "calls": args.calls,
        "esl_events": expected,
        "call_events": calls_expected,
        "esl_bytes": len(payload),
        "events_by_name": names,
        "summary": summary,
        "stages_us_per_esl_event": stages,
        "command_round_trip": commands,
        "target_events_per_second": 20_000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--commands", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    args.load = os.getloadavg()[0]
    report = asyncio.run(main_async(args))
    print()
    print(f"{'path':38} {'median ev/s':>12} {'best ev/s':>12} {'CPU us/ev':>10} {'ev/CPU-s':>10}")
    for row in report["summary"]:
        cpu = row["median_cpu_us_per_event"]
        cpu_text = f"{cpu:10.1f} {1e6 / cpu:10,.0f}" if cpu else f"{'-':>10} {'-':>10}"
        print(
            f"{row['path']:38} {row['median_per_second']:12,.0f} "
            f"{row['best_per_second']:12,.0f} {cpu_text}"
        )
    print(f"\n{'stage (CPU, best of the rounds)':44} {'us/ESL event':>12}")
    for stage, us in report["stages_us_per_esl_event"].items():
        print(f"{stage:44} {us:12.2f}")
    total = sum(report["stages_us_per_esl_event"].values())
    print(f"{'sum':44} {total:12.2f}  (= {1e6 / total:,.0f} events/s)")
    c = report["command_round_trip"]
    print(
        f"\ncommand round trip: p50 {c['p50_ms']:.2f} ms, p90 {c['p90_ms']:.2f} ms, "
        f"p99 {c['p99_ms']:.2f} ms (n={int(c['commands'])})"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
