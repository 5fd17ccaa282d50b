"""`python -m callmesh.fsemu` as a process: HEARTBEAT on its interval, a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

from callmesh.fsemu.world.eslclient import EslClient


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _connect(port: int) -> EslClient:
    for _ in range(200):
        try:
            return await EslClient.connect("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"the emulator never listened on {port}")


async def test_the_program_fires_heartbeats_and_stops_on_sigterm() -> None:
    esl_port = _free_port()
    env = {**os.environ, "CALLMESH_FSEMU_HEARTBEAT_S": "0.2"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "callmesh.fsemu",
        "--esl-port",
        str(esl_port),
        "--control-port",
        str(_free_port()),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        client = await _connect(esl_port)
        reply = await client.command("event plain HEARTBEAT")
        assert reply.get("Reply-Text") == "+OK event listener enabled plain"
        first = await client.next_event(lambda e: e.name == "HEARTBEAT", timeout=30)
        second = await client.next_event(lambda e: e.name == "HEARTBEAT", timeout=30)
        assert first.get("Event-Info") == "System Ready"
        assert int(second.get("Event-Sequence") or 0) > int(first.get("Event-Sequence") or 0)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        await client.close()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.stderr is not None
    log = (await proc.stderr.read()).decode()
    assert "Traceback" not in log
    assert "fsemu stopping" in log
