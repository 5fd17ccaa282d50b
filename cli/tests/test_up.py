"""``callmesh up`` for real (the console script as a process), and its supervisor's parts."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from pymongo import MongoClient
from pymongo.collection import Collection

from callmesh.cli.supervisor import Child, Output, ProcessSpec, Supervisor
from callmesh.cli.up import Forced, Platform, UpOptions, port_is_free

CALLMESH = Path(sys.executable).parent / "callmesh"
SERVICES = ("admin", "ivr", "acd", "cti", "outbound", "qa", "wfm")
SUMMARY_END = "Ctrl-C stops everything"
# What up's environment must not carry into the test: it would point up elsewhere.
_FOREIGN = ("CALLMESH_NATS_URL", "CALLMESH_MONGODB_URI", "CALLMESH_DATA_DIR", "CALLMESH_JWKS_URL")


class Up:
    """A running ``callmesh up``; a thread collects its output line by line."""

    def __init__(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in _FOREIGN}
        self.proc = subprocess.Popen(
            [str(CALLMESH), "up", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self._done = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._done = True
            self._changed.notify_all()

    @property
    def output(self) -> str:
        """Everything it printed so far."""
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        """Wait until a line contains ``text``; fail with the output if it never comes."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not any(text in line for line in self.lines):
                remaining = deadline - time.monotonic()
                if self._done or remaining <= 0:
                    raise AssertionError(f"`callmesh up` never said {text!r}:\n{self.output}")
                self._changed.wait(remaining)

    def summary(self) -> dict[str, tuple[str, str, str]]:
        """The summary table: component -> (address, metrics, log)."""
        lines = self.output.splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("  component "))
        rows: dict[str, tuple[str, str, str]] = {}
        for line in lines[start + 1 :]:
            if not line.strip():
                break
            name, address, metrics, log = line.split()
            rows[name] = (address, metrics, log)
        return rows

    def interrupt(self, timeout: float = 90) -> int:
        """Ctrl-C, then its exit code."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout)
        self._reader.join(10)
        return code

    def close(self) -> None:
        """Leave nothing running whatever the test did: Ctrl-C, then a second one to force."""
        for _ in range(2):
            if self.proc.poll() is not None:
                break
            self.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(60)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@contextlib.contextmanager
def running_up(*args: str) -> Iterator[Up]:
    """``callmesh up ARGS`` for the duration of the block."""
    up = Up(*args)
    try:
        yield up
    finally:
        up.close()


@contextlib.contextmanager
def _mongo(uri: str) -> Iterator[Collection[dict[str, Any]]]:
    """A scratch collection in the platform's database."""
    client: MongoClient[dict[str, Any]] = MongoClient(uri)
    try:
        yield client["callmesh"]["up_test"]
    finally:
        client.close()


def accepts(address: str) -> bool:
    """Whether something accepts TCP connections at the URL's host and port."""
    parts = urlsplit(address)
    assert parts.hostname is not None
    assert parts.port is not None
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.slow
def test_up_runs_every_service_until_ctrl_c_and_keeps_its_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_up("--data", str(data), "--base-port", "0", "--timeout", "120") as up:
        up.wait_for(SUMMARY_END, timeout=150)
        rows = up.summary()
        assert set(rows) == {"nats", "ferretdb", "fsemu-esl", "fsemu", *SERVICES}
        with httpx.Client(timeout=5, trust_env=False) as http:
            for name in SERVICES:
                address, metrics, log = rows[name]
                assert metrics == f"{address}/metrics"
                assert Path(log) == data / "logs" / f"{name}.log"
                ready = http.get(f"{address}/readyz")
                assert ready.status_code == 200, ready.text
                assert ready.json()["checks"]["mongodb"]["ok"] is True
                exposition = http.get(metrics)
                assert exposition.status_code == 200
                assert f'callmesh_service_ready{{service="{name}"}} 1.0' in exposition.text
            # The emulator runs, and the cti link `up` started is attached to its event socket.
            assert http.get(f"{rows['fsemu'][0]}/healthz").status_code == 200
            # …and finds routes through cti's mod_xml_curl endpoints, as a real node does.
            assert http.get(f"{rows['fsemu'][0]}/stats").json()["xml_curl"] is not None
            assert accepts(rows["fsemu-esl"][0])
            assert http.get(rows["nats"][1]).json()["jetstream"]["config"]["store_dir"]
            assert "ferretdb_" in http.get(rows["ferretdb"][1]).text
        with _mongo(rows["ferretdb"][0]) as collection:
            collection.insert_one({"_id": "kept", "run": 1})
        assert up.interrupt() == 0, up.output
    output = up.output
    assert "[acd]" in output
    assert "created development signing key" in output
    assert "created stream" in output
    everything = ("nats", "ferretdb", "fsemu", "fsemu-esl", *SERVICES)
    for address in [rows[name][0] for name in everything]:
        assert not accepts(address), f"{address} still answers after up stopped"
    assert (data / "nats" / "nats-server.log").stat().st_size > 0
    assert (data / "ferretdb" / "ferretdb.log").exists()
    assert (data / "logs" / "acd.log").read_text().count("service started") == 1
    key = (data / "keys" / "dev-signing.pem").read_bytes()

    with running_up("--data", str(data), "--base-port", "0", "--timeout", "120") as again:
        again.wait_for(SUMMARY_END, timeout=150)
        rows = again.summary()
        with _mongo(rows["ferretdb"][0]) as collection:
            assert collection.find_one({"_id": "kept"}) == {"_id": "kept", "run": 1}
        assert again.interrupt() == 0, again.output
    assert "reusing development signing key" in again.output
    # The streams were found in the kept JetStream store, not created again.
    assert "created stream" not in again.output
    assert (data / "keys" / "dev-signing.pem").read_bytes() == key
    assert (data / "logs" / "acd.log").read_text().count("service started") == 2


@pytest.mark.slow
def test_up_with_an_external_mongodb_starts_no_ferretdb(
    mongodb_server_uri: str, tmp_path: Path
) -> None:
    args = ["--data", str(tmp_path), "--base-port", "0", "--timeout", "120"]
    with running_up(*args, "--mongodb-uri", mongodb_server_uri, "--services", "acd,ivr") as up:
        up.wait_for(SUMMARY_END, timeout=150)
        rows = up.summary()
        assert set(rows) == {"nats", "mongodb", "acd", "ivr"}
        assert rows["mongodb"][2] == "(external)"
        with httpx.Client(timeout=5, trust_env=False) as http:
            ready = http.get(f"{rows['acd'][0]}/readyz")
        assert ready.status_code == 200, ready.text
        assert up.interrupt() == 0, up.output
    assert "starting FerretDB" not in up.output
    assert f"using MongoDB at {mongodb_server_uri} (no FerretDB)" in up.output
    assert not (tmp_path / "ferretdb").exists()


@pytest.mark.slow
def test_up_names_the_services_not_ready_with_their_readyz_and_exits_1(
    mongodb_server_uri: str, tmp_path: Path
) -> None:
    nowhere = f"nats://127.0.0.1:{port_free_now()}"
    args = ["--base-port", "0", "--timeout", "15", "--services", "acd"]
    with running_up(*args, "--nats-url", nowhere, "--mongodb-uri", mongodb_server_uri) as up:
        code = up.proc.wait(90)
    assert code == 1, up.output
    assert "not ready after 15 s: acd" in up.output
    assert 'acd /readyz: 503 {"service":"acd","ready":false' in up.output
    assert "stopped" in up.output.splitlines()[-1]


def port_free_now() -> int:
    """A port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the supervisor's parts, with real (tiny) processes -------------------------------------------


def _python(name: str, code: str, *, grace_s: float = 5.0) -> ProcessSpec:
    return ProcessSpec(
        name=name,
        argv=(sys.executable, "-c", code),
        env=dict(os.environ),
        url="-",
        grace_s=grace_s,
    )


def _until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.05)


def test_output_pads_every_name_to_one_width_without_colour_off_a_terminal() -> None:
    stream = io.StringIO()
    output = Output(stream, ["acd", "outbound"])
    output.line("acd", "hello")
    output.line("outbound", "there")
    output.say("ready")
    assert stream.getvalue() == ("[acd]      hello\n[outbound] there\n[up]       ready\n")


def test_output_colours_prefixes_on_a_terminal() -> None:
    stream = io.StringIO()
    Output(stream, ["acd"], colour=True).line("acd", "hello")
    assert stream.getvalue().startswith("\x1b[")
    assert stream.getvalue().endswith("hello\n")


def test_lines_from_many_threads_are_never_cut_into() -> None:
    stream = io.StringIO()
    output = Output(stream, ["a", "b"])

    def write(name: str) -> None:
        for _ in range(200):
            output.line(name, name * 500)

    threads = [threading.Thread(target=write, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 400
    assert all(line in ("[a]  " + "a" * 500, "[b]  " + "b" * 500) for line in lines)


def test_a_child_that_exits_is_reported_with_its_exit_code_and_last_lines(tmp_path: Path) -> None:
    stream = io.StringIO()
    supervisor = Supervisor(Output(stream))
    spec = _python("boom", "print('warming up'); print('giving up'); raise SystemExit(3)")
    child = supervisor.add(ProcessSpec(**{**spec.__dict__, "log_path": tmp_path / "boom.log"}))
    supervisor.start_all()
    failed: list[Child] = []

    def reported() -> bool:
        failed.extend(supervisor.check())
        return bool(failed)

    _until(reported)
    assert failed == [child]
    said = stream.getvalue()
    assert "[boom] warming up\n" in said
    assert "[up]   boom exited unexpectedly (exit code 3); its last lines:\n" in said
    assert "[up]     | giving up\n" in said
    assert (tmp_path / "boom.log").read_text() == "warming up\ngiving up\n"
    assert supervisor.check() == [], "reported once"
    assert supervisor.stop() is True


def test_restart_brings_a_crashed_child_back_with_growing_backoff() -> None:
    stream = io.StringIO()
    supervisor = Supervisor(Output(stream), restart=True)
    child = supervisor.add(_python("flaky", "raise SystemExit(1)"))
    supervisor.start_all()
    _until(lambda: supervisor.check() == [] and child.restarts >= 2)
    supervisor.stop()
    said = stream.getvalue()
    assert "flaky will restart in 1 s" in said
    assert "flaky will restart in 2 s" in said
    assert "restarting flaky (restart 2)" in said


def test_stop_kills_a_child_that_ignores_sigterm_after_its_grace() -> None:
    stream = io.StringIO()
    supervisor = Supervisor(Output(stream))
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('stubborn', flush=True); time.sleep(60)"
    )
    child = supervisor.add(_python("mule", code, grace_s=0.5))
    supervisor.start_all()
    _until(lambda: "stubborn" in stream.getvalue())
    began = time.monotonic()
    assert supervisor.stop() is False
    assert time.monotonic() - began < 10
    assert child.poll() == -signal.SIGKILL
    assert "mule did not stop within 0.5 s: killing it" in stream.getvalue()


def test_a_second_signal_kills_everything_at_once() -> None:
    stream = io.StringIO()
    platform = Platform(UpOptions(data=None), Output(stream))
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(60)"
    )
    child = platform.supervisor.add(_python("mule", code))
    platform.supervisor.start_all()
    _until(lambda: "[mule]" in stream.getvalue())
    platform.handle_signal(signal.SIGINT, None)
    platform.handle_signal(signal.SIGINT, None)
    assert child.alive(), "the first Ctrl-C (even delivered twice) asks for an orderly stop"
    platform.DUPLICATE_SIGNAL_S = 0.0
    with pytest.raises(Forced):
        platform.handle_signal(signal.SIGINT, None)
    assert child.wait(5)
    assert child.poll() == -signal.SIGKILL


def test_a_busy_port_is_replaced_by_a_free_one_and_up_says_so() -> None:
    stream = io.StringIO()
    platform = Platform(UpOptions(data=None), Output(stream))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = int(busy.getsockname()[1])
        chosen = platform.pick_port(taken, "acd")
    assert chosen != taken
    assert f"port {taken} (acd) is busy: using {chosen}" in stream.getvalue()
    free = port_free_now()
    assert port_is_free(free)
    assert platform.pick_port(free, "ivr") == free
    assert platform.pick_port(0, "qa") not in (free, chosen)
