"""pytest plugin: real nats-server and FerretDB once per session; per-test prefixes, databases.

Enabled for the whole workspace by ``-p callmesh.core.testing`` in the root pytest settings.
Set ``CALLMESH_TEST_MONGODB_URI`` to run the store tests against a real MongoDB instead of FerretDB.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pymongo import AsyncMongoClient

from callmesh.core.bus import Bus
from callmesh.core.servers import ManagedServer, free_port, start_ferretdb, start_nats
from callmesh.core.settings import PlatformSettings
from callmesh.core.store import Store


@dataclass(frozen=True)
class Servers:
    """Addresses of the session's servers."""

    nats_url: str
    mongodb_uri: str


@pytest.fixture(scope="session")
def _server_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="callmesh-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def nats_server(_server_dir: Path) -> Iterator[ManagedServer]:
    """One nats-server with JetStream for the whole session."""
    server = start_nats(_server_dir / "nats")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mongodb_server_uri(_server_dir: Path) -> Iterator[str]:
    """A MongoDB-wire server: CALLMESH_TEST_MONGODB_URI when set, else FerretDB for the session."""
    external = os.environ.get("CALLMESH_TEST_MONGODB_URI")
    if external:
        yield external
        return
    server = start_ferretdb(_server_dir / "ferretdb")
    yield server.url
    server.stop()


@pytest.fixture
def servers(nats_server: ManagedServer, mongodb_server_uri: str) -> Servers:
    """Both servers' addresses."""
    return Servers(nats_url=nats_server.url, mongodb_uri=mongodb_server_uri)


@pytest.fixture
def test_prefix() -> str:
    """A subject prefix of the test's own: its subjects, streams and buckets touch no others."""
    return "t" + secrets.token_hex(5)


@pytest.fixture
async def test_database(mongodb_server_uri: str, test_prefix: str) -> AsyncIterator[str]:
    """A database name of this test's own, dropped afterwards."""
    name = f"cmtest_{test_prefix}"
    yield name
    client: AsyncMongoClient[Mapping[str, object]] = AsyncMongoClient(mongodb_server_uri)
    try:
        await client.drop_database(name)
    finally:
        await client.close()


@pytest.fixture
def platform_settings(
    servers: Servers, test_prefix: str, test_database: str, tmp_path: Path
) -> PlatformSettings:
    """Platform settings pointing at the session's servers with this test's prefix and database."""
    return PlatformSettings(
        nats_url=servers.nats_url,
        mongodb_uri=servers.mongodb_uri,
        mongodb_database=test_database,
        subject_prefix=test_prefix,
        instance=f"test-{test_prefix}",
        media_dir=tmp_path / "media",
        lease_ttl_s=2.0,
        bus_ack_wait_s=2.0,
    )


@pytest.fixture
async def bus(platform_settings: PlatformSettings) -> AsyncIterator[Bus]:
    """A connected bus with this test's streams and buckets provisioned; closed afterwards."""
    instance = Bus(platform_settings, "test")
    await instance.connect(attempts=3)
    await instance.provision()
    yield instance
    await instance.close()


@pytest.fixture
async def store(platform_settings: PlatformSettings) -> AsyncIterator[Store]:
    """A store on this test's database; closed afterwards."""
    instance = Store(platform_settings)
    yield instance
    await instance.close()


_EXPORTER = InMemorySpanExporter()


def pytest_configure(config: pytest.Config) -> None:
    """Trace every test process in memory, before any bus is built (buses decide at birth)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))


@pytest.fixture(autouse=True)
def _forget_spans() -> Iterator[None]:
    yield
    _EXPORTER.clear()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """Finished spans of this test (the process's tracer provider exports into memory in tests)."""
    _EXPORTER.clear()
    return _EXPORTER


def settings_env(settings: PlatformSettings) -> dict[str, str]:
    """The environment variables that reproduce ``settings`` in a child process."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump(exclude_none=True).items():
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"CALLMESH_{name.upper()}"] = str(value)
    return env


@dataclass
class ServiceProcess:
    """A service started as a real process (``python -m callmesh.<name>``)."""

    name: str
    proc: subprocess.Popen[bytes] | subprocess.Popen[str]
    base_url: str
    log_path: Path

    def log(self) -> str:
        """Everything the process logged so far."""
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code (SIGKILL after ``timeout``)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def start_service(
    name: str,
    settings: PlatformSettings,
    log_dir: Path,
    *,
    extra_env: Mapping[str, str] | None = None,
) -> ServiceProcess:
    """Start ``python -m callmesh.<name>`` on a free port with ``settings`` (not waiting)."""
    port = free_port()
    env = dict(os.environ)
    env.update(settings_env(settings))
    env[f"CALLMESH_{name.upper()}_HTTP_PORT"] = str(port)
    env["CALLMESH_LOG_FORMAT"] = "json"
    env.update(extra_env or {})
    log_path = log_dir / f"{name}.log"
    log = log_path.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", f"callmesh.{name}"], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    log.close()
    return ServiceProcess(name, proc, f"http://127.0.0.1:{port}", log_path)


async def wait_ready(service: ServiceProcess, timeout: float = 30.0) -> httpx.Response:
    """Poll ``/readyz`` until 200; raises with the service's log if it never gets there."""
    deadline = time.monotonic() + timeout
    last: httpx.Response | None = None
    async with httpx.AsyncClient(base_url=service.base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if service.proc.poll() is not None:
                break
            try:
                last = await client.get("/readyz")
                if last.status_code == 200:
                    return last
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    detail = last.text if last is not None else "no answer"
    raise AssertionError(f"{service.name} not ready: {detail}\n--- log ---\n{service.log()}")
