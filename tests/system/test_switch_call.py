"""One call through real processes: the FreeSWITCH emulator, the cti link attached to it, the bus,
and the call journal read back through cti's tenant API."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from callmesh.core.auth import TokenIssuer, generate_signing_key
from callmesh.core.bus import Bus
from callmesh.core.servers import free_port
from callmesh.core.settings import PlatformSettings
from callmesh.core.tenancy import TenantInfo, TenantStatus
from callmesh.core.testing import start_service, wait_ready
from callmesh.proto.subjects import Bucket
from callmesh.proto.v1.switch_pb2 import (
    Bridge,
    Endpoint,
    Originate,
    SwitchCommand,
    SwitchErrorCode,
    SwitchReply,
)

pytestmark = pytest.mark.slow

NODE = "node-sys"
TENANT = "acme"
# A tenant's SIP domain is <tenant>.<suffix> (admin and the cti link agree on the suffix).
DOMAIN = "acme.sip.callmesh.local"


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30) -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.1)


async def test_a_call_through_the_emulator_lands_in_the_journal_of_its_tenant_only(
    platform_settings: PlatformSettings, bus: Bus, tmp_path: Path
) -> None:
    esl_port, control_port = free_port(), free_port()
    password = uuid.uuid4().hex
    fsemu_log = (tmp_path / "fsemu.log").open("ab")
    fsemu = subprocess.Popen(  # noqa: ASYNC220 - started once, like start_service does
        [sys.executable, "-m", "callmesh.fsemu", "--speed", "20", "--seed", "7"],
        stdout=fsemu_log,
        stderr=subprocess.STDOUT,
        env={
            "PATH": "/usr/bin:/bin",
            "CALLMESH_FSEMU_ESL_PORT": str(esl_port),
            "CALLMESH_FSEMU_PASSWORD": password,
            "CALLMESH_FSEMU_CONTROL_PORT": str(control_port),
            "CALLMESH_FSEMU_HOSTNAME": NODE,
        },
    )
    fsemu_log.close()
    key = generate_signing_key()
    public_pem = tmp_path / "jwt.pub.pem"
    public_pem.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    issuer = TokenIssuer(
        key, "system", platform_settings.jwt_issuer, platform_settings.jwt_audience
    )
    tenants = await bus.kv(Bucket.TENANTS)
    for tenant_id in (TENANT, "globex"):
        await tenants.put(tenant_id, TenantInfo(tenant_id, TenantStatus.ACTIVE).to_json())
    cti = start_service(
        "cti",
        platform_settings,
        tmp_path,
        extra_env={
            "CALLMESH_JWT_PUBLIC_KEY": str(public_pem),
            "CALLMESH_CTI_NODE_ID": NODE,
            "CALLMESH_CTI_ESL_PORT": str(esl_port),
            "CALLMESH_CTI_ESL_PASSWORD": password,
        },
    )
    control = httpx.AsyncClient(base_url=f"http://127.0.0.1:{control_port}", timeout=10)
    api = httpx.AsyncClient(base_url=cti.base_url, timeout=10)
    try:

        async def emulator_up() -> bool:
            assert fsemu.poll() is None, (tmp_path / "fsemu.log").read_text()
            try:
                return (await control.get("/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await until(emulator_up, "the emulator answers its control API")
        await wait_ready(cti, timeout=60)

        async def command(**kwargs: Any) -> SwitchReply:
            request = SwitchCommand(command_id=uuid.uuid4().hex, tenant_id=TENANT, **kwargs)
            return await bus.request(
                bus.subjects.node_command(NODE), request, SwitchReply, timeout=15
            )

        async def link_attached() -> bool:
            # A command the switch refuses proves the whole path: bus, link, event socket.
            reply = await command(originate=Originate(endpoint=Endpoint(dial_string="error/x")))
            return reply.error_code != SwitchErrorCode.SWITCH_ERROR_CODE_NOT_CONNECTED

        await until(link_attached, "the cti link is attached to the emulator's event socket")

        phone = await control.post("/phones", json={"user": "1001", "domain": DOMAIN})
        assert phone.status_code == 201, phone.text
        placed = await control.post(
            "/calls",
            json={
                "number": "4001",
                "caller": "13800138000",
                "variables": {"callmesh_tenant": TENANT},
            },
        )
        assert placed.status_code == 201, placed.text
        caller_uuid = placed.json()["uuid"]

        agent = await command(
            call_id=caller_uuid,
            originate=Originate(
                endpoint=Endpoint(user="1001"),
                answer_timeout_s=30,
                application="park",
            ),
        )
        assert agent.ok, agent.message
        bridged = await command(
            bridge=Bridge(a_channel_uuid=caller_uuid, b_channel_uuid=agent.channel_uuid)
        )
        assert bridged.ok, bridged.message
        hung = await control.post(
            f"/channels/{caller_uuid}/hangup", json={"cause": "NORMAL_CLEARING"}
        )
        assert hung.status_code == 202, hung.text

        acme = {
            "Authorization": f"Bearer {issuer.issue('u1', tenant_id=TENANT, roles=['supervisor'])}"
        }

        async def ended_record() -> dict[str, Any] | None:
            response = await api.get(f"/v1/t/{TENANT}/calls/{caller_uuid}", headers=acme)
            if response.status_code == 404:
                return None
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            legs_ended = all(leg["ended_at"] for leg in body.get("legs", []))
            return body if body["ended_at"] and len(body["legs"]) == 2 and legs_ended else None

        record = await until(ended_record, "the journal holds the ended call with both legs")
        assert record["caller"]["number"] == "13800138000"
        assert record["dialled"] == "4001"
        assert record["hangup"]["cause"] == "NORMAL_CLEARING"
        assert record["hangup"]["side"] == "caller"
        assert {leg["uuid"] for leg in record["legs"]} == {caller_uuid, agent.channel_uuid}

        listed = await api.get(f"/v1/t/{TENANT}/calls", headers=acme)
        assert [call["call_id"] for call in listed.json()["items"]] == [caller_uuid]
        globex_token = issuer.issue("u2", tenant_id="globex", roles=["supervisor"])
        globex = {"Authorization": f"Bearer {globex_token}"}
        assert (await api.get("/v1/t/globex/calls", headers=globex)).json()["items"] == []
        other = await api.get(f"/v1/t/globex/calls/{caller_uuid}", headers=globex)
        assert other.status_code == 404
        assert (await api.get(f"/v1/t/{TENANT}/calls", headers=globex)).status_code == 403
    finally:
        await control.aclose()
        await api.aclose()
        code = cti.terminate(timeout=30)
        fsemu.terminate()
        fsemu_code = fsemu.wait(30)
    assert code == 0, cti.log()[-3000:]
    assert fsemu_code == 0, (tmp_path / "fsemu.log").read_text()[-3000:]
