"""The journal fed by the real link: a call on the FreeSWITCH emulator, driven by switch commands
over the bus, becomes a call record the tenant API serves (the whole cti service in-process, a
real NATS and FerretDB, greenswitch on the emulator's event socket)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from callmesh.core.auth import StaticKeys, TokenIssuer, TokenVerifier, generate_signing_key
from callmesh.core.bus import Bus
from callmesh.core.runtime import Runtime, create_app
from callmesh.core.settings import PlatformSettings
from callmesh.core.tenancy import TenantInfo, TenantStatus
from callmesh.cti.app import CtiSettings, build
from callmesh.cti.link import LinkParts
from callmesh.fsemu.esl_inbound import start_esl_server
from callmesh.fsemu.switch import Switch
from callmesh.proto.subjects import Bucket
from callmesh.proto.v1.switch_pb2 import (
    Bridge,
    Endpoint,
    Hangup,
    Hold,
    Originate,
    SwitchCommand,
    SwitchReply,
)

NODE = "fs-j"
pytestmark = pytest.mark.slow


async def eventually(check: Callable[[], Any], what: Callable[[], str], timeout: float = 30) -> Any:
    """Poll until ``check`` gives something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        assert time.monotonic() < deadline, f"not in time: {what()}"
        await asyncio.sleep(0.05)


async def test_a_call_on_the_switch_becomes_a_record_in_the_journal(
    platform_settings: PlatformSettings, bus: Bus, tmp_path: Path
) -> None:
    switch = Switch(speed=20, seed=1, recordings_dir=tmp_path / "recordings")
    server = await start_esl_server(switch, port=0)
    platform = platform_settings.model_copy(update={"api_rate_per_s": 1e6, "api_burst": 10**6})
    runtime = Runtime(
        build(
            CtiSettings(
                platform=platform,
                node_id=NODE,
                esl_port=server.port,
                heartbeat_interval_s=0.5,
                recordings_dir=switch.recordings_dir,
            )
        )
    )
    app = create_app(runtime)
    key = generate_signing_key()
    issuer = TokenIssuer(key, "test", platform.jwt_issuer, platform.jwt_audience)
    app.state.token_verifier = TokenVerifier(
        StaticKeys({"test": key.public_key()}),
        issuer=platform.jwt_issuer,
        audience=platform.jwt_audience,
        revocations=runtime.revocations,
    )
    await (await bus.kv(Bucket.TENANTS)).put(
        "acme", TenantInfo("acme", TenantStatus.ACTIVE).to_json()
    )
    headers = {"Authorization": f"Bearer {issuer.issue('u', tenant_id='acme', roles=['qa'])}"}

    async def command(**kwargs: Any) -> SwitchReply:
        request = SwitchCommand(command_id=uuid.uuid4().hex, tenant_id="acme", **kwargs)
        reply = await bus.request(bus.subjects.node_command(NODE), request, SwitchReply, timeout=15)
        assert reply.ok, reply.message
        return reply

    try:
        async with app.router.lifespan_context(app):
            await eventually(
                lambda: runtime.start_error or runtime.started.is_set(), lambda: "cti started"
            )
            assert runtime.start_error is None, runtime.start_error
            link: LinkParts = runtime.definition.on_start[0].__self__  # type: ignore[attr-defined]
            # Commands go over their own connection, which may come up after the start.
            await eventually(
                lambda: link.esl is None or link.esl.connected, lambda: "commands connected"
            )
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://cti") as http:
                caller = await switch.inbound_call(
                    caller_number="+33612345678",
                    destination_number="+33140000000",
                    variables={"callmesh_tenant": "acme"},
                )
                path = f"/v1/t/acme/calls/{caller.uuid}"
                await eventually(
                    lambda: _ok(http.get(path, headers=headers)), lambda: "the call journaled"
                )
                agent = await command(
                    call_id=caller.uuid,
                    originate=Originate(endpoint=Endpoint(dial_string="null/1001")),
                )
                await command(
                    bridge=Bridge(a_channel_uuid=caller.uuid, b_channel_uuid=agent.channel_uuid)
                )
                await command(hold=Hold(channel_uuid=caller.uuid))
                await command(hangup=Hangup(channel_uuid=caller.uuid))
                last: list[Any] = []

                async def ended() -> dict[str, Any] | None:
                    # Consumers work concurrently: wait for every event, not just the last one.
                    got = await http.get(path, headers=headers)
                    call = got.json()
                    last[:] = [call]
                    kinds = [e["kind"] for e in call.get("timeline", ())]
                    done = (
                        {"call.bridged", "call.held"} <= set(kinds)
                        and kinds.count("call.hung_up") == 2
                        and kinds.count("call.created") == 2
                    )
                    return dict(call) if done else None

                call = await eventually(ended, lambda: f"the call ended in the journal: {last}")
    finally:
        await server.close()

    assert call["caller"]["number"] == "+33612345678"
    assert call["dialled"] == "+33140000000"
    assert call["direction"] == "inbound"
    assert [leg["uuid"] for leg in call["legs"]] == [caller.uuid, agent.channel_uuid]
    assert call["bridged_at"] is not None
    assert [h["channel_uuid"] for h in call["holds"]] == [caller.uuid]
    assert call["hangup"]["channel_uuid"] == caller.uuid
    assert call["hangup"]["cause"] == "NORMAL_CLEARING"
    assert call["outcome"] != "in_progress"
    kinds = {entry["kind"] for entry in call["timeline"]}
    assert {"call.created", "call.bridged", "call.held", "call.hung_up"} <= kinds


async def _ok(response: Any) -> bool:
    return bool((await response).status_code == 200)
