"""Every service as a real process: health, readiness, metrics, and a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from callmesh.core.bus import Bus
from callmesh.core.servers import free_port, start_nats
from callmesh.core.settings import PlatformSettings
from callmesh.core.testing import ServiceProcess, settings_env, start_service, wait_ready
from callmesh.proto.subjects import STREAMS

SERVICES = ("admin", "ivr", "acd", "cti", "outbound", "qa", "wfm")
UNBUILT = ("outbound", "qa", "wfm")
PARTLY_BUILT = ("ivr",)
HELPERS = Path(__file__).parent / "helpers"


async def test_every_service_is_healthy_ready_measured_and_stops_cleanly(
    platform_settings: PlatformSettings, tmp_path: Path
) -> None:
    started = [start_service(name, platform_settings, tmp_path) for name in SERVICES]
    try:
        readies = await asyncio.gather(*(wait_ready(s, timeout=60) for s in started))
        async with httpx.AsyncClient(timeout=5) as http:
            for service, ready in zip(started, readies, strict=True):
                body = ready.json()
                assert body["ready"] is True
                assert body["checks"]["nats"]["ok"] is True
                assert body["checks"]["mongodb"]["ok"] is True
                if service.name in UNBUILT:
                    assert body["details"]["domain"].startswith("not built yet")
                elif service.name in PARTLY_BUILT:
                    assert body["details"]["domain"].startswith("partly built")
                else:
                    assert "details" not in body
                health = await http.get(f"{service.base_url}/healthz")
                assert health.json() == {"status": "ok", "service": service.name}
                metrics = (await http.get(f"{service.base_url}/metrics")).text
                assert f'callmesh_service_ready{{service="{service.name}"}} 1.0' in metrics
                assert f'callmesh_bus_connected{{service="{service.name}"}} 1.0' in metrics
                assert "callmesh_http_requests_total" in metrics
    finally:
        codes = {s.name: s.terminate(timeout=30) for s in started}
    assert codes == dict.fromkeys(SERVICES, 0), {s.name: s.log()[-2000:] for s in started}
    for service in started:
        assert '"msg": "service stopped"' in service.log()


async def test_a_service_is_live_but_not_ready_until_nats_comes_up(
    platform_settings: PlatformSettings, tmp_path: Path
) -> None:
    port = free_port()
    settings = platform_settings.model_copy(update={"nats_url": f"nats://127.0.0.1:{port}"})
    service = start_service("acd", settings, tmp_path)
    nats = None
    try:
        async with httpx.AsyncClient(base_url=service.base_url, timeout=5) as http:
            for _ in range(200):
                try:
                    health = await http.get("/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            assert health.status_code == 200
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["nats"] == {"ok": False}
            nats = start_nats(tmp_path / "late-nats", port=port)
            await wait_ready(service, timeout=60)
    finally:
        assert service.terminate() == 0, service.log()
        if nats is not None:
            nats.stop()


async def test_sigterm_lets_the_handler_in_flight_finish_before_exit(
    platform_settings: PlatformSettings, bus: Bus, tmp_path: Path
) -> None:
    port = free_port()
    env = {**os.environ, **settings_env(platform_settings), "CALLMESH_SLOW_HTTP_PORT": str(port)}
    proc = subprocess.Popen(  # noqa: ASYNC220 — a real process receiving a real SIGTERM
        [sys.executable, str(HELPERS / "slow_service.py")],
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "slow.log").open("wb"),
        env=env,
        text=True,
    )
    service = ServiceProcess("slow", proc, f"http://127.0.0.1:{port}", tmp_path / "slow.log")
    try:
        await wait_ready(service, timeout=60)
        event = bus.new_event(tenant_id="acme", call_id="c1")
        event.call_hung_up.cause = "NORMAL_CLEARING"
        await bus.publish(event)
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        assert line.strip() == f"begin {event.event_id}"
        proc.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(asyncio.to_thread(proc.stdout.read), 60)
        assert f"end {event.event_id}" in rest
        assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    info = await bus.js.consumer_info(bus.subjects.stream(STREAMS[0]), "slow-calls")
    assert info.num_ack_pending == 0, "the event was acked before exit, not left for redelivery"
    assert info.num_pending == 0


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_has_a_readme_saying_what_it_owns(name: str) -> None:
    readme = Path(__file__).parents[2] / "services" / name / "README.md"
    text = readme.read_text(encoding="utf-8")
    for heading in ("## Owns", "## Subjects", "## Collections", "## Settings", "## Run"):
        assert heading in text, f"{readme}: missing {heading}"
