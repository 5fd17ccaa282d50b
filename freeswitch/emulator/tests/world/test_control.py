"""The control API: in process against a real switch, and the whole program as a process."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from callmesh.fsemu.control import create_control_app
from callmesh.fsemu.world.eslclient import EslClient

from .conftest import PASSWORD, Env, matches

DOMAIN = "acme.callmesh.test"


@pytest.fixture
async def http(env: Env) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the control API of the test world."""
    app = create_control_app(env.world)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fsemu") as client:
        yield client


async def test_healthz_and_metrics(http: httpx.AsyncClient, env: Env) -> None:
    assert (await http.get("/healthz")).json()["status"] == "ok"
    await http.post("/phones", json={"user": "1001", "domain": DOMAIN})
    metrics = (await http.get("/metrics")).text
    assert 'fsemu_events_total{event="CUSTOM sofia::register"}' in metrics
    assert "fsemu_live_channels" in metrics


async def test_phones_are_created_registered_reprofiled_and_unregistered(
    http: httpx.AsyncClient, env: Env
) -> None:
    created = await http.post(
        "/phones", json={"user": "1001", "domain": DOMAIN, "profile": "agent"}
    )
    assert created.status_code == 201
    assert created.json()["state"] == "registered"
    await env.wait_for(lambda e: matches(e, "sofia::register", from_user="1001"))
    changed = await http.put(f"/phones/1001@{DOMAIN}/profile", json={"profile": "busy"})
    assert changed.json()["behaviour"] == "busy"
    reply = await env.client.api(f"originate user/1001@{DOMAIN} &park()")
    assert reply.strip() == "-ERR USER_BUSY"
    gone = await http.post(f"/phones/1001@{DOMAIN}/unregister")
    assert gone.json()["state"] == "unregistered"
    listed = (await http.get("/phones")).json()
    assert [p["user"] for p in listed] == ["1001"]


async def test_unknown_phones_profiles_and_channels_are_named_errors(
    http: httpx.AsyncClient,
) -> None:
    missing = await http.get(f"/phones/9999@{DOMAIN}")
    assert missing.status_code == 404
    assert missing.json()["code"] == "no_such_phone"
    bad_profile = await http.post(
        "/phones", json={"user": "1", "domain": DOMAIN, "profile": "sleepy"}
    )
    assert bad_profile.status_code == 422
    assert bad_profile.json()["code"] == "invalid_input"
    no_channel = await http.post("/channels/nope/hangup", json={})
    assert no_channel.status_code == 404
    bad_digits = await http.post("/channels/nope/dtmf", json={"digits": "12x"})
    assert bad_digits.status_code == 422
    fields = [e["field"] for e in bad_digits.json()["errors"]]
    assert fields == ["body.digits"]


async def test_a_call_placed_over_the_api_gets_digits_and_a_hangup(
    http: httpx.AsyncClient, env: Env
) -> None:
    env.switch.set_dialplan({"5000": [("answer", ""), ("park", "")]})
    placed = await http.post(
        "/calls", json={"number": "5000", "caller": "+33600000002", "patience": None}
    )
    assert placed.status_code == 201
    uuid = placed.json()["uuid"]
    await env.wait_for(lambda e: matches(e, "CHANNEL_PARK", Unique_ID=uuid))
    channels = (await http.get("/channels")).json()
    assert uuid in [c["uuid"] for c in channels]
    assert (await http.post(f"/channels/{uuid}/dtmf", json={"digits": "42"})).status_code == 202
    await env.wait_for(lambda e: matches(e, "DTMF", Unique_ID=uuid, DTMF_Digit="2"))
    hung = await http.post(f"/channels/{uuid}/hangup", json={"cause": "NORMAL_CLEARING"})
    assert hung.status_code == 202
    await env.wait_for(lambda e: matches(e, "CHANNEL_HANGUP_COMPLETE", Unique_ID=uuid))
    stats = (await http.get("/stats")).json()
    assert stats["calls_started"] >= 1
    assert stats["events_fired"] > 0


async def test_traffic_starts_refuses_a_twin_and_stops(http: httpx.AsyncClient, env: Env) -> None:
    env.switch.set_dialplan({"5000": [("answer", ""), ("park", "")]})
    body = {"name": "t", "rate": 5, "numbers": ["5000"], "patience": 1, "holding": 1}
    assert (await http.post("/traffic", json=body)).status_code == 201
    twin = await http.post("/traffic", json=body)
    assert twin.status_code == 409
    stopped = await http.delete("/traffic/t")
    assert stopped.json()["running"] is False
    bad = await http.post("/traffic", json={"name": "u", "rate": 0, "numbers": []})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"body.rate", "body.numbers"}


async def test_a_scenario_is_loaded_from_yaml_or_refused_with_its_rules(
    http: httpx.AsyncClient, env: Env
) -> None:
    yaml_text = f"phones:\n  - domain: {DOMAIN}\n    users: ['4001-4002']\n"
    loaded = await http.post(
        "/scenario", content=yaml_text, headers={"content-type": "application/yaml"}
    )
    assert loaded.status_code == 201
    assert loaded.json()["phones"] == 2
    await env.wait_for(lambda e: matches(e, "sofia::register", from_user="4002"))
    running = "traffic: [{name: busy, rate: 1, numbers: ['5000'], patience: 1}]"
    assert (await http.post("/scenario", content=running)).status_code == 201
    twice = await http.post("/scenario", content=running)
    assert twice.status_code == 409
    assert twice.json()["code"] == "traffic_running"
    refused = await http.post("/scenario", content="traffic: [{name: x, rate: -1, numbers: [1]}]")
    assert refused.status_code == 422
    assert refused.json()["details"]["problems"] == [
        "traffic.0.rate: Input should be greater than 0"
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_the_program_serves_esl_and_control_and_stops_on_sigterm(tmp_path: Path) -> None:
    esl_port, control_port = _free_port(), _free_port()
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"phones:\n  - domain: {DOMAIN}\n    users: ['1001']\n")
    env = os.environ | {"CALLMESH_FSEMU_CONTROL_PORT": str(control_port)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callmesh.fsemu", "--esl-port", str(esl_port),
        "--password", PASSWORD, "--scenario", str(scenario), "--speed", "100", env=env,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{control_port}") as http:
            for _ in range(200):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
            phones = (await http.get("/phones")).json()
            assert [p["state"] for p in phones] == ["registered"]
        client = await EslClient.connect("127.0.0.1", esl_port, PASSWORD)
        assert (await client.api("status")).startswith("UP ")
        await client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 0


async def test_a_broken_scenario_stops_the_program_with_its_rules(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.yaml"
    scenario.write_text("speed: -2\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callmesh.fsemu", "--scenario", str(scenario),
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert b"speed: Input should be greater than 0" in err
