"""mod_xml_curl answered from admin's bus look-ups: a tenant, its number and its phone created
through the real admin service (in-process), then FreeSWITCH's form posts to the cti service."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nats.aio.msg import Msg

from callmesh.admin.app import AdminSettings
from callmesh.core.bus import Bus
from callmesh.core.runtime import Runtime, create_app
from callmesh.core.settings import PlatformSettings
from callmesh.cti.app import CtiSettings, build
from callmesh.fsemu.esl_inbound import start_esl_server
from callmesh.fsemu.switch import Switch
from callmesh.proto.v1.event_pb2 import Event

pytestmark = pytest.mark.slow

_ADMIN_HARNESS = (
    Path(__file__).resolve().parents[3] / "admin" / "tests" / "integration" / "conftest.py"
)


def _running_admin() -> Any:
    """admin's own in-process harness (its integration conftest), loaded by path."""
    spec = importlib.util.spec_from_file_location("admin_harness", _ADMIN_HARNESS)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module.running_admin


@contextlib.asynccontextmanager
async def running_cti(settings: PlatformSettings, **cti: Any) -> AsyncIterator[httpx.AsyncClient]:
    runtime = Runtime(build(CtiSettings(platform=settings, **{"esl_enabled": False, **cti})))
    app = create_app(runtime)
    async with app.router.lifespan_context(app):
        deadline = time.monotonic() + 60
        while not runtime.started.is_set():
            assert runtime.start_error is None, runtime.start_error
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cti") as http:
            yield http


@pytest.fixture
async def platform(platform_settings: PlatformSettings) -> AsyncIterator[dict[str, Any]]:
    """admin with tenant acme, its number +33 1 40 00 00 00 and phone 1001; cti beside it."""
    key = Ed25519PrivateKey.generate()
    async with _running_admin()(AdminSettings(platform=platform_settings), trust=key) as admin:
        op = {"Authorization": f"Bearer {admin.issuer.issue('op-1', operator=True)}"}
        tenant_admin = {
            "Authorization": "Bearer "
            + admin.issuer.issue("usr_acme", tenant_id="acme", roles=("tenant_admin",))
        }
        body = {"slug": "acme", "name": "Acme", "language": "en", "time_zone": "UTC"}
        created = await admin.http.post("/v1/operator/tenants", json=body, headers=op)
        assert created.status_code == 201, created.text
        deadline = time.monotonic() + 30
        while not admin.runtime.tenant_gate.is_active("acme"):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        numbers = await admin.http.post(
            "/v1/operator/tenants/acme/numbers", json={"numbers": ["+33140000000"]}, headers=op
        )
        assert numbers.status_code < 300, numbers.text
        phone = await admin.http.post(
            "/v1/t/acme/devices",
            json={"username": "1001", "display_name": "Desk 1", "password": "correct-horse-42"},
            headers=tenant_admin,
        )
        assert phone.status_code == 201, phone.text
        async with running_cti(platform_settings) as cti:
            yield {"cti": cti, "phone": phone.json(), "settings": platform_settings}


DIRECTORY_FORM = {
    "section": "directory",
    "tag_name": "domain",
    "key_name": "name",
    "key_value": "acme.sip.callmesh.local",
    "user": "1001",
    "domain": "acme.sip.callmesh.local",
    "action": "sip_auth",
}
DIALPLAN_FORM = {
    "section": "dialplan",
    "Caller-Destination-Number": "+33140000000",
    "Caller-Caller-ID-Number": "+33612345678",
    "Caller-Context": "public",
    "Unique-ID": "0b3e1c52-8a4f-4d7e-b1a9-5c2d7e3f9a01",
    "variable_sip_to_host": "10.0.0.5",
}


async def test_the_directory_answers_a_tenants_phone_with_its_a1_hash(
    platform: dict[str, Any],
) -> None:
    cti: httpx.AsyncClient = platform["cti"]
    response = await cti.post("/fs/directory", data=DIRECTORY_FORM)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    doc = ET.fromstring(response.text)
    assert doc.get("type") == "freeswitch/xml"
    domain = doc.find("./section[@name='directory']/domain")
    assert domain is not None
    assert domain.get("name") == "acme.sip.callmesh.local"
    user = domain.find("user")
    assert user is not None
    assert user.get("id") == "1001"
    a1 = user.find("./params/param[@name='a1-hash']")
    assert a1 is not None
    assert len(a1.get("value", "")) == 32
    variables = {v.get("name"): v.get("value") for v in user.iter("variable")}
    assert variables["callmesh_tenant"] == "acme"
    assert variables["effective_caller_id_name"] == "Desk 1"


async def test_unknown_users_and_domains_get_the_standard_not_found_document(
    platform: dict[str, Any],
) -> None:
    cti: httpx.AsyncClient = platform["cti"]
    for form in (
        {**DIRECTORY_FORM, "user": "9999"},
        {**DIRECTORY_FORM, "domain": "nobody.sip.callmesh.local"},
        {"section": "directory", "purpose": "gateways"},
    ):
        response = await cti.post("/fs/directory", data=form)
        assert response.status_code == 200
        result = ET.fromstring(response.text).find("./section[@name='result']/result")
        assert result is not None
        assert result.get("status") == "not found"


async def test_the_dialplan_hands_a_tenants_number_to_ivr_with_a_fallback(
    platform: dict[str, Any],
) -> None:
    cti: httpx.AsyncClient = platform["cti"]
    response = await cti.post("/fs/dialplan", data=DIALPLAN_FORM)
    assert response.status_code == 200
    doc = ET.fromstring(response.text)
    context = doc.find("./section[@name='dialplan']/context")
    assert context is not None
    assert context.get("name") == "public"
    condition = context.find("./extension/condition")
    assert condition is not None
    assert condition.get("field") == "destination_number"
    assert condition.get("expression") == r"^\+33140000000$"
    actions = [(a.get("application"), a.get("data")) for a in condition.iter("action")]
    assert actions[:2] == [
        ("export", "callmesh_tenant=acme"),
        ("export", "callmesh_call_id=${uuid}"),
    ]
    assert ("socket", "127.0.0.1:8084 async full") in actions
    assert ("set", "continue_on_fail=true") in actions
    assert actions[-1] == ("transfer", "callmesh_fallback XML callmesh-fallback")
    unknown = await cti.post(
        "/fs/dialplan", data={**DIALPLAN_FORM, "Caller-Destination-Number": "+4930"}
    )
    assert "not found" in unknown.text
    # Phones dialling a tenant's number from `default` are the static XML's business.
    internal = await cti.post("/fs/dialplan", data={**DIALPLAN_FORM, "Caller-Context": "default"})
    assert "not found" in internal.text


@pytest.mark.parametrize(
    ("path", "form", "field"),
    [
        ("/fs/dialplan", {"section": "dialplan"}, "Caller-Destination-Number"),
        (
            "/fs/dialplan",
            {**DIALPLAN_FORM, "Caller-Destination-Number": "12ab"},
            "Caller-Destination-Number",
        ),
        ("/fs/dialplan", {**DIALPLAN_FORM, "Caller-Context": "a b"}, "Caller-Context"),
        ("/fs/dialplan", {**DIALPLAN_FORM, "Unique-ID": "x y"}, "Unique-ID"),
        ("/fs/directory", {**DIRECTORY_FORM, "domain": "bad domain!"}, "domain"),
        ("/fs/directory", {**DIRECTORY_FORM, "user": "a@b"}, "user"),
        ("/fs/directory", {"section": "dialplan", "user": "1"}, "section"),
    ],
)
async def test_bad_form_input_is_a_400_naming_the_field(
    platform: dict[str, Any], path: str, form: dict[str, str], field: str
) -> None:
    cti: httpx.AsyncClient = platform["cti"]
    response = await cti.post(path, data=form)
    assert response.status_code == 400
    assert response.text.startswith(f"{field}:")


async def test_a_phone_calling_without_the_tenant_variable_gets_its_tenant_from_the_directory(
    platform: dict[str, Any], bus: Bus
) -> None:
    switch = Switch(speed=20, seed=2)
    server = await start_esl_server(switch, port=0)
    seen: list[Event] = []

    async def collect(msg: Msg) -> None:
        seen.append(Event.FromString(msg.data))

    sub = await bus.nc.subscribe(f"{bus.subjects.prefix}.acme.call.created", cb=collect)
    try:
        async with running_cti(
            platform["settings"], esl_enabled=True, esl_port=server.port, node_id="fs-x"
        ):
            deadline = time.monotonic() + 30
            while server.connections == 0:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            phone = await switch.inbound_call(
                caller_number="1001",
                destination_number="2000",
                profile="internal",
                domain="acme.sip.callmesh.local",
            )
            while not seen:
                assert time.monotonic() < deadline, "no call.created for the phone's call"
                await asyncio.sleep(0.02)
            created = seen[0]
            assert (created.tenant_id, created.call_id) == ("acme", phone.uuid)
            assert created.call_created.caller.number == "1001"
    finally:
        await sub.unsubscribe()
        await server.close()
