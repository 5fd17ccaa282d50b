"""The flow API on a real NATS and FerretDB: drafts, validation, publishing, rollback, dry
runs, permissions and tenant walls."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from callmesh.core.auth import StaticKeys, TokenIssuer, TokenVerifier, generate_signing_key
from callmesh.core.bus import Bus
from callmesh.core.quotas import QuotaKind, Quotas
from callmesh.core.runtime import Runtime, create_app
from callmesh.core.settings import PlatformSettings
from callmesh.core.tenancy import TenantInfo, TenantStatus
from callmesh.ivr.app import IvrSettings, build
from callmesh.ivr.samples import main_flow
from callmesh.proto.subjects import Bucket

A, B = "acme", "globex"
MONDAY_NOON = "2026-11-23T11:00:00+00:00"


@dataclasses.dataclass
class Ivr:
    """The ivr app in-process and a token issuer."""

    http: httpx.AsyncClient
    issuer: TokenIssuer

    def headers(self, tenant: str = A, role: str = "tenant_admin") -> dict[str, str]:
        token = self.issuer.issue("usr_1", tenant_id=tenant, roles=[role])
        return {"Authorization": f"Bearer {token}"}

    async def call(
        self, method: str, path: str, body: Any = None, tenant: str = A, role: str = "tenant_admin"
    ) -> httpx.Response:
        return await self.http.request(
            method,
            f"/v1/t/{tenant}/ivr/{path}",
            json=body,
            headers=self.headers(tenant, role),
        )


@contextlib.asynccontextmanager
async def running_ivr(settings: PlatformSettings, bus: Bus) -> AsyncIterator[Ivr]:
    platform = settings.model_copy(update={"api_rate_per_s": 1e6, "api_burst": 10**6})
    runtime = Runtime(build(IvrSettings(platform=platform)))
    app = create_app(runtime)
    key = generate_signing_key()
    issuer = TokenIssuer(key, "test", platform.jwt_issuer, platform.jwt_audience)
    app.state.token_verifier = TokenVerifier(
        StaticKeys({"test": key.public_key()}),
        issuer=platform.jwt_issuer,
        audience=platform.jwt_audience,
        revocations=runtime.revocations,
    )
    kv = await bus.kv(Bucket.TENANTS)
    for tenant in (A, B):
        await kv.put(tenant, TenantInfo(tenant, TenantStatus.ACTIVE).to_json())
    async with app.router.lifespan_context(app):
        deadline = time.monotonic() + 60
        while not (
            runtime.started.is_set() and all(runtime.tenant_gate.is_active(t) for t in (A, B))
        ):
            assert runtime.start_error is None, runtime.start_error
            assert time.monotonic() < deadline, "ivr did not start"
            await asyncio.sleep(0.02)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ivr") as http:
            yield Ivr(http, issuer)


@pytest.fixture
async def ivr(platform_settings: PlatformSettings, bus: Bus) -> AsyncIterator[Ivr]:
    async with running_ivr(platform_settings, bus) as running:
        yield running


async def test_a_flow_goes_from_draft_to_published_versions_and_back(ivr: Ivr) -> None:
    created = await ivr.call("POST", "flows", {"flow_id": "main", "document": main_flow()})
    assert created.status_code == 201, created.text
    assert created.json()["draft_problems"] == []
    assert created.json()["published_version"] == 0
    assert (await ivr.call("POST", "flows/main/validate")).json() == {"valid": True, "problems": []}
    first = await ivr.call("POST", "flows/main/publish")
    assert first.json() == {"flow_id": "main", "version": 1}
    changed = main_flow()
    changed["name"] = "Main line v2"
    assert (await ivr.call("PUT", "flows/main/draft", {"document": changed})).status_code == 200
    assert (await ivr.call("POST", "flows/main/publish")).json()["version"] == 2
    versions = (await ivr.call("GET", "flows/main/versions")).json()
    assert [v["version"] for v in versions] == [2, 1]
    old = (await ivr.call("GET", "flows/main/versions/1")).json()
    assert old["document"]["name"] == "Main line"
    back = await ivr.call("POST", "flows/main/rollback", {"version": 1})
    assert back.json() == {"flow_id": "main", "version": 3}
    three = (await ivr.call("GET", "flows/main/versions/3")).json()
    assert three["rollback_of"] == 1
    assert three["document"]["name"] == "Main line"
    head = (await ivr.call("GET", "flows/main")).json()
    assert head["published_version"] == 3
    assert head["draft"]["name"] == "Main line v2"  # the draft is not touched by a rollback


async def test_a_draft_with_problems_is_saved_but_not_published(ivr: Ivr) -> None:
    doc = main_flow()
    doc["edges"].append({"from": "menu", "port": "9", "to": "ghost"})
    created = await ivr.call("POST", "flows", {"flow_id": "broken", "document": doc})
    assert created.status_code == 201
    problems = created.json()["draft_problems"]
    assert {
        "node_id": "menu",
        "field": "edges.17.to",
        "rule": "names unknown node 'ghost'",
    } in problems
    refused = await ivr.call("POST", "flows/broken/publish")
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    body = refused.json()
    assert body["errors"][0]["field"].startswith("edges.17")
    assert (await ivr.call("GET", "flows/broken")).json()["published_version"] == 0


async def test_dry_runs_follow_inputs_through_draft_or_version(ivr: Ivr) -> None:
    await ivr.call("POST", "flows", {"flow_id": "main", "document": main_flow()})
    run = await ivr.call(
        "POST",
        "flows/main/dry-run",
        {
            "caller": "+33611111111",
            "at": MONDAY_NOON,
            "inputs": ["1", "3", "12345#"],
            "http": {"lookup": {"status": 200, "body": '{"data": {"tier": "gold"}}'}},
        },
    )
    assert run.status_code == 200, run.text
    got = run.json()
    assert got["path"] == ["blk", "hours", "lang", "menu", "account", "lookup", "vip", "sales"]
    assert got["outcome"] == "queued"
    assert got["variables"]["customer.tier"] == "gold"
    assert any(t["kind"] == "http_called" for t in got["trail"])
    missing = await ivr.call("POST", "flows/main/dry-run", {"version": 7})
    assert missing.status_code == 404


async def test_bad_requests_name_the_field(ivr: Ivr) -> None:
    bad_id = await ivr.call("POST", "flows", {"flow_id": "Bad Id!", "document": {}})
    assert bad_id.status_code == 422
    assert "flow_id" in str(bad_id.json()["errors"][0]["field"])
    await ivr.call("POST", "flows", {"flow_id": "main", "document": main_flow()})
    again = await ivr.call("POST", "flows", {"flow_id": "main", "document": main_flow()})
    assert again.status_code == 409
    too_big = {"nodes": [{"id": f"n{i}", "type": "hangup"} for i in range(501)]}
    refused = await ivr.call("PUT", "flows/main/draft", {"document": too_big})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "document.nodes"


async def test_tenants_are_walls_and_permissions_apply(ivr: Ivr) -> None:
    await ivr.call("POST", "flows", {"flow_id": "main", "document": main_flow()})
    assert (await ivr.call("GET", "flows/main", tenant=B)).status_code == 404
    assert (await ivr.call("GET", "flows", tenant=B)).json() == []
    assert (await ivr.call("POST", "flows/main/publish", tenant=B)).status_code == 404
    other = await ivr.http.get(f"/v1/t/{B}/ivr/flows", headers=ivr.headers(A))
    assert other.status_code == 403
    agent = await ivr.call("POST", "flows/main/publish", role="agent")
    assert agent.status_code == 403
    assert (await ivr.call("DELETE", "flows/main")).status_code == 204
    assert (await ivr.call("GET", "flows/main")).status_code == 404


async def test_the_flow_count_quota_holds_and_deletes_give_units_back(ivr: Ivr, bus: Bus) -> None:
    quotas = Quotas(bus, service="test")
    await quotas.set_limit(A, QuotaKind.IVR_FLOWS, 1)
    first = await ivr.call("POST", "flows", {"flow_id": "one", "document": main_flow()})
    assert first.status_code == 201
    second = await ivr.call("POST", "flows", {"flow_id": "two", "document": main_flow()})
    assert second.status_code == 429
    assert second.json()["code"] == "quota_exceeded"
    # A refused create leaves nothing behind; the other tenant has its own count.
    assert (await ivr.call("GET", "flows/two")).status_code == 404
    other = await ivr.call("POST", "flows", {"flow_id": "two", "document": main_flow()}, tenant=B)
    assert other.status_code == 201
    # A duplicate id gives its unit back; a delete frees one.
    await quotas.set_limit(A, QuotaKind.IVR_FLOWS, 2)
    dup = await ivr.call("POST", "flows", {"flow_id": "one", "document": main_flow()})
    assert dup.status_code == 409
    assert (await ivr.call("DELETE", "flows/one")).status_code == 204
    usage = await quotas.usage(A)
    assert usage[QuotaKind.IVR_FLOWS].used == 0
