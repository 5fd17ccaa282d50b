"""What the FreeSWITCH emulator sustains alone, with a client reading every event it fires."""

# Run: .tools/uv/bin/uv run --frozen --all-packages python bench/fsemu_calls.py
#      [--rates 100,200,300] [--seconds 20] [--holding 10] [--json bench/results/fsemu_calls.json]
#
# The emulator runs as its own process (`python -m callmesh.fsemu`), as `callmesh up` runs it.
# Its scenario has one number whose dialplan is answer → playback of a 1 s WAV → park. For each
# rate, its Poisson traffic generator (control API, POST /traffic) places inbound calls for
# `--seconds`; each caller hangs up after `--holding` seconds (its patience: nobody bridges it).
# So every call is created, answered, plays, parks and hangs up, with the full event sequence.
# An ESL client in the bench's own process, subscribed to `event plain ALL`, reads and frames
# every event (core's FrameParser) and reads its Event-Name; it does not decode the other headers
# (that is the cti link's work, measured by its own bench), so it keeps up with the emulator.
#
# Per rate: achieved CPS (CHANNEL_CREATE seen by the client, first to last), calls
# answered and ended, events received per second, the peak of live channels (CREATE - DESTROY as
# the client saw them), and the emulator's CPU use. A rate is sustained when the achieved CPS is
# within 5 % of the rate asked and every call ended within holding + 5 s of the last arrival.
# The machine may be shared: "cps/core" (calls created per CPU-second the emulator used while
# creating them) is what one dedicated core would sustain; the load average is recorded.

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import wave
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from callmesh.core.esl import Frame
from callmesh.fsemu.world.eslclient import EslClient

DEFAULT_JSON = Path(__file__).parent / "results" / "fsemu_calls.json"
NUMBER = "5000"
PASSWORD = "ClueCon"
SETTLE_S = 5.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Row:
    """One measured rate."""

    rate: float
    seconds: float
    holding_s: float
    calls_created: int
    calls_answered: int
    calls_ended: int
    achieved_cps: float
    peak_live_channels: int
    events: int
    events_per_second: float
    events_per_second_generating: float
    emulator_cpu_percent: float
    emulator_cpu_percent_generating: float
    reader_cpu_percent_generating: float
    # Calls created per CPU-second the emulator used: what one dedicated core would sustain.
    calls_per_emulator_cpu_second: float
    sustained: bool


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_wav(path: Path, seconds: float) -> None:
    """A silent 8 kHz mono WAV of ``seconds``."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * int(8000 * seconds))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Watch:
    """Counts what the ESL client reads: events by name, live channels and their peak."""

    def __init__(self) -> None:
        self.names: Counter[str] = Counter()
        self.live = 0
        self.peak = 0
        self.tick = asyncio.Event()
        self.first_create = 0.0
        self.last_create = 0.0
        self.total = 0
        self.total_at_first = 0
        self.total_at_last = 0

    def __call__(self, frame: Frame) -> None:
        body = frame.body
        # Event-Name is the first header of every event (switch_event_serialize).
        start = body.index(b": ") + 2
        name = body[start : body.index(b"\n", start)].decode()
        self.names[name] += 1
        self.total += 1
        self.tick.set()
        if name == "CHANNEL_CREATE":
            now = time.perf_counter()
            if not self.first_create:
                self.first_create = now
                self.total_at_first = self.total
            self.last_create = now
            self.total_at_last = self.total
            self.live += 1
            self.peak = max(self.peak, self.live)
        elif name == "CHANNEL_DESTROY":
            self.live -= 1

    async def until(self, name: str, count: int, deadline: float) -> None:
        """Wait until ``count`` events ``name`` were read, or ``deadline`` (perf_counter) passed."""
        while self.names[name] < count:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            self.tick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.tick.wait(), min(remaining, 0.5))

    def reset(self) -> None:
        """Start a new measurement: peak from the channels alive now, no creation seen."""
        self.peak = self.live
        self.first_create = self.last_create = 0.0


async def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    """Until the control API answers /healthz (or the emulator died)."""
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"emulator exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{url}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("emulator did not become ready")


async def measure_rate(
    http: httpx.AsyncClient, watch: Watch, pid: int, rate: float, seconds: float, holding: float
) -> Row:
    """Generate ``rate`` CPS for ``seconds``; wait for every call to end; one row."""
    before = watch.names.copy()
    watch.reset()
    cpu0, t0, own0 = cpu_seconds(pid), time.perf_counter(), time.process_time()
    spec = {
        "name": f"bench-{rate:g}",
        "rate": rate,
        "numbers": [NUMBER],
        "callers": "+1555xxxxxxx",
        "patience": holding,
        "holding": holding,
        "max_calls": int(rate * seconds),
    }
    (await http.post("/traffic", json=spec)).raise_for_status()
    created_target = before["CHANNEL_CREATE"] + int(rate * seconds)
    await watch.until("CHANNEL_CREATE", created_target, t0 + seconds * 3 + holding + 30)
    cpu_gen, t_gen = cpu_seconds(pid) - cpu0, time.perf_counter() - t0
    own_gen = time.process_time() - own0
    destroyed_target = before["CHANNEL_DESTROY"] + int(rate * seconds)
    await watch.until("CHANNEL_DESTROY", destroyed_target, time.perf_counter() + holding + SETTLE_S)
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds(pid) - cpu0
    await http.delete(f"/traffic/bench-{rate:g}")
    delta = watch.names - before
    created = delta["CHANNEL_CREATE"]
    # Over the span from the first to the last creation the client saw (n - 1 gaps).
    span = watch.last_create - watch.first_create
    achieved = (created - 1) / span if span > 0 else 0.0
    events = sum(delta.values())
    return Row(
        rate=rate,
        seconds=seconds,
        holding_s=holding,
        calls_created=created,
        calls_answered=delta["CHANNEL_ANSWER"],
        calls_ended=delta["CHANNEL_HANGUP_COMPLETE"],
        achieved_cps=achieved,
        peak_live_channels=watch.peak,
        events=events,
        events_per_second=events / elapsed,
        events_per_second_generating=(
            (watch.total_at_last - watch.total_at_first) / span if span > 0 else 0.0
        ),
        emulator_cpu_percent=100.0 * cpu / elapsed,
        emulator_cpu_percent_generating=100.0 * cpu_gen / t_gen,
        reader_cpu_percent_generating=100.0 * own_gen / t_gen,
        calls_per_emulator_cpu_second=created / cpu_gen if cpu_gen > 0 else 0.0,
        sustained=achieved >= 0.95 * rate and delta["CHANNEL_DESTROY"] >= int(rate * seconds),
    )


async def measure(
    rates: list[float], seconds: float, holding: float, esl_port: int, url: str, pid: int
) -> list[Row]:
    """Connect the ESL reader, then measure each rate in turn."""
    watch = Watch()
    client = await EslClient.connect("127.0.0.1", esl_port, PASSWORD, on_frame=watch)
    rows: list[Row] = []
    try:
        reply = await client.command("event plain ALL")
        print(f"  esl: {reply.get('Reply-Text')}", flush=True)
        async with httpx.AsyncClient(base_url=url, timeout=30.0) as http:
            for rate in rates:
                row = await measure_rate(http, watch, pid, rate, seconds, holding)
                rows.append(row)
                print(
                    f"  {rate:6g} cps asked: {row.achieved_cps:7.1f} achieved, "
                    f"peak {row.peak_live_channels:5d} live, "
                    f"{row.events_per_second_generating:6.0f} ev/s, "
                    f"cpu {row.emulator_cpu_percent_generating:5.1f} % "
                    f"(reader {row.reader_cpu_percent_generating:5.1f} %)",
                    flush=True,
                )
        if client.malformed:
            print(f"warning: {len(client.malformed)} malformed frames")
    finally:
        await client.close()
    return rows


def print_table(rows: list[Row]) -> None:
    """Print the rows as an aligned table."""
    # ev/s and cpu % while calls were being created; "all" over creation plus draining.
    print(
        f"{'rate':>6} {'achieved':>9} {'created':>8} {'answered':>9} {'ended':>7} "
        f"{'peak live':>9} {'events':>9} {'ev/s':>7} {'ev/s all':>8} {'cpu %':>6} "
        f"{'cpu all':>7} {'cps/core':>8} {'sustained':>9}"
    )
    for r in rows:
        print(
            f"{r.rate:6g} {r.achieved_cps:9.1f} {r.calls_created:8d} {r.calls_answered:9d} "
            f"{r.calls_ended:7d} {r.peak_live_channels:9d} {r.events:9d} "
            f"{r.events_per_second_generating:7.0f} {r.events_per_second:8.0f} "
            f"{r.emulator_cpu_percent_generating:6.1f} {r.emulator_cpu_percent:7.1f} "
            f"{r.calls_per_emulator_cpu_second:8.0f} {'yes' if r.sustained else 'NO':>9}"
        )


def main() -> None:
    """Start the emulator, measure every rate, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="100,200,300", help="calls per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of traffic per rate")
    parser.add_argument("--holding", type=float, default=10.0, help="seconds each call lasts")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    if not rates or min(rates) <= 0:
        parser.error("--rates must be positive numbers")

    esl_port, control_port = free_port(), free_port()
    url = f"http://127.0.0.1:{control_port}"
    with tempfile.TemporaryDirectory(prefix="fsemu-bench-") as tmp:
        media = Path(tmp) / "prompt.wav"
        write_wav(media, 1.0)
        scenario = Path(tmp) / "bench.yaml"
        scenario.write_text(
            json.dumps(
                {
                    "name": "bench",
                    "seed": 1,
                    "dialplan": {NUMBER: ["answer", f"playback {media}", "park"]},
                }
            )
        )
        argv = [
            sys.executable, "-m", "callmesh.fsemu",
            "--esl-port", str(esl_port), "--control-port", str(control_port),
            "--password", PASSWORD, "--scenario", str(scenario), "--log-level", "WARNING",
        ]  # fmt: skip
        proc = subprocess.Popen(argv)
        try:
            asyncio.run(wait_ready(url, proc))
            rows = asyncio.run(measure(rates, args.seconds, args.holding, esl_port, url, proc.pid))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
    print()
    print_table(rows)
    print(f"\nemulator exit code after SIGTERM: {code}")
    report = {
        "benchmark": "fsemu_calls",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "seconds_per_rate": args.seconds,
        "holding_s": args.holding,
        # The machine is shared: a load above the core count means the numbers are a floor.
        "load_average_after": os.getloadavg(),
        "results": [asdict(r) for r in rows],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
