"""The operator area through the real admin app on NATS and FerretDB: tenants' lifecycle, KV
mirrors and their repair, suspension, quotas, placement, numbers and their look-up, purges,
sites and nodes, and the wall between tenants."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import nats.js.errors
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from nats.aio.msg import Msg
from pymongo import AsyncMongoClient

from callmesh.admin.app import AdminSettings
from callmesh.admin.domain.common import ActorKind
from callmesh.admin.ports.audit import AuditQuery
from callmesh.admin.service.audit import Auditor
from callmesh.admin.service.context import AdminContext
from callmesh.admin.service.operator import OperatorJobs
from callmesh.core.auth import TokenIssuer
from callmesh.core.bus import Bus
from callmesh.core.errors import QuotaExceeded
from callmesh.core.quotas import QuotaKind, Quotas
from callmesh.core.runtime import Runtime
from callmesh.core.settings import PlatformSettings
from callmesh.core.tenancy import NumberDirectory, TenantStatus
from callmesh.proto.subjects import Bucket, Domain
from callmesh.proto.v1.event_pb2 import Event
from callmesh.proto.v1.node_pb2 import NodeHeartbeat

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
KID = "test-key"


class Clock:
    """A clock the test moves; each reading is a millisecond later (entries keep their order)."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


async def eventually(check: Callable[[], Any], timeout_s: float = 10.0) -> None:
    """Wait until ``check()`` is true (the KV watchers and the bus are a moment behind)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@dataclass
class Admin:
    """A running admin app and what tests drive it with."""

    http: httpx.AsyncClient
    app: FastAPI
    runtime: Runtime
    ctx: AdminContext
    issuer: TokenIssuer
    operator: dict[str, str] = field(default_factory=dict)

    def user(self, tenant: str, *roles: str) -> dict[str, str]:
        token = self.issuer.issue(
            f"usr_{tenant}", tenant_id=tenant, roles=roles or ("tenant_admin",)
        )
        return {"Authorization": f"Bearer {token}"}

    async def tenant_state(self, tenant: str, status: TenantStatus | None) -> None:
        """Wait until the app's tenant gate (a KV watcher) has the tenant in ``status``."""

        def seen() -> bool:
            info = self.runtime.tenant_gate.info(tenant)
            return (info.status if info else None) is status

        await eventually(seen)

    async def create(self, slug: str, **extra: Any) -> dict[str, Any]:
        body = {"slug": slug, "name": slug.title(), "language": "en", "time_zone": "UTC", **extra}
        response = await self.http.post("/v1/operator/tenants", json=body, headers=self.operator)
        assert response.status_code == 201, response.text
        await self.tenant_state(slug, TenantStatus.ACTIVE)
        return dict(response.json())

    async def audit(self, **filters: Any) -> list[Any]:
        page = await self.ctx.get(Auditor).search(AuditQuery(limit=500, **filters))
        return list(reversed(page.items))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@contextlib.asynccontextmanager
async def running(
    run_admin: Any, settings: PlatformSettings, clock: Clock, key: Ed25519PrivateKey
) -> AsyncIterator[Admin]:
    """The admin app as it runs in production, with a test clock and a test token issuer."""
    async with run_admin(AdminSettings(platform=settings), clock=clock, trust=key) as running:
        token = running.issuer.issue("op-1", operator=True)
        yield Admin(
            running.http,
            running.app,
            running.runtime,
            running.ctx,
            running.issuer,
            {"Authorization": f"Bearer {token}"},
        )


@pytest.fixture
async def admin(
    platform_settings: PlatformSettings,
    clock: Clock,
    signing_key: Ed25519PrivateKey,
    run_admin: Any,
) -> AsyncIterator[Admin]:
    async with running(run_admin, platform_settings, clock, signing_key) as instance:
        yield instance


class Events:
    """Tenant events heard on the bus (a plain subscription: the test only listens)."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, str, Event]] = []

    async def on_message(self, msg: Msg) -> None:
        event = Event.FromString(msg.data)
        self.heard.append((event.tenant_id, str(event.WhichOneof("body")), event))

    def names(self, tenant: str) -> list[str]:
        return [body for t, body, _ in self.heard if t == tenant]


@pytest.fixture
async def events(bus: Bus) -> AsyncIterator[Events]:
    recorder = Events()
    sub = await bus.nc.subscribe(bus.subjects.events(Domain.TENANT), cb=recorder.on_message)
    await bus.nc.flush()
    yield recorder
    await sub.unsubscribe()


async def kv_json(bus: Bus, bucket: Bucket, key: str) -> dict[str, Any] | None:
    kv = await bus.kv(bucket)
    try:
        entry = await kv.get(key)
    except nats.js.errors.KeyNotFoundError:
        return None
    return dict(json.loads(entry.value or b"{}"))


def problem(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, str(response.json().get("code"))


# --- tenants -------------------------------------------------------------------------------------


async def test_a_tenant_lives_through_create_change_delete_and_restore(
    admin: Admin, events: Events
) -> None:
    created = await admin.create("acme", language="zh-TW", time_zone="Asia/Taipei")
    assert created["status"] == "active"
    assert created["placement"]["cluster"] == "default"
    op = admin.operator
    got = await admin.http.get("/v1/operator/tenants/acme", headers=op)
    assert got.headers["ETag"] == f'"{created["version"]}"'

    stale = await admin.http.patch(
        "/v1/operator/tenants/acme",
        json={"name": "Acme Corp"},
        headers={**op, "If-Match": '"1"'},
    )
    assert problem(stale) == (412, "version_mismatch")
    patched = await admin.http.patch(
        "/v1/operator/tenants/acme",
        json={"name": "Acme Corp", "encryption_at_rest": True},
        headers={**op, "If-Match": got.headers["ETag"]},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Acme Corp"
    off = await admin.http.patch(
        "/v1/operator/tenants/acme", json={"encryption_at_rest": False}, headers=op
    )
    assert problem(off) == (409, "conflict")
    assert "unreadable" in off.json()["detail"]
    slug = await admin.http.patch("/v1/operator/tenants/acme", json={"slug": "acme2"}, headers=op)
    assert problem(slug) == (409, "conflict")

    deleted = await admin.http.delete("/v1/operator/tenants/acme", headers=op)
    assert deleted.json()["status"] == "deleted"
    assert deleted.json()["purge_after"] is not None
    await admin.tenant_state("acme", TenantStatus.DELETED)
    listed = await admin.http.get("/v1/operator/tenants?status=deleted", headers=op)
    assert [t["id"] for t in listed.json()["items"]] == ["acme"]
    taken = await admin.http.post(
        "/v1/operator/tenants",
        json={"slug": "acme", "name": "Other", "language": "en", "time_zone": "UTC"},
        headers=op,
    )
    assert problem(taken) == (409, "conflict")
    assert "deleted tenant" in taken.json()["detail"]

    restored = await admin.http.post("/v1/operator/tenants/acme/restore", headers=op)
    assert restored.json()["status"] == "active"
    await admin.tenant_state("acme", TenantStatus.ACTIVE)

    actions = [e.action for e in await admin.audit(target_id="acme")]
    assert actions == ["tenant.create", "tenant.update", "tenant.delete", "tenant.restore"]
    update = (await admin.audit(action_prefix="tenant.update"))[0]
    assert update.actor.kind is ActorKind.OPERATOR
    assert (update.before or {})["name"] == "Acme"
    assert (update.after or {})["name"] == "Acme Corp"
    await eventually(lambda: len(events.names("acme")) >= 4)
    assert events.names("acme") == [
        "tenant_created", "tenant_updated", "tenant_deleted", "tenant_restored",
    ]  # fmt: skip


async def test_tenants_are_listed_by_status_and_search_in_pages(admin: Admin) -> None:
    for slug in ("acme", "globex", "initech"):
        await admin.create(slug)
    await admin.http.post(
        "/v1/operator/tenants/globex/suspend", json={"reason": "x"}, headers=admin.operator
    )
    first = await admin.http.get("/v1/operator/tenants?limit=2", headers=admin.operator)
    assert [t["id"] for t in first.json()["items"]] == ["acme", "globex"]
    rest = await admin.http.get(
        f"/v1/operator/tenants?limit=2&after={first.json()['next']}", headers=admin.operator
    )
    assert [t["id"] for t in rest.json()["items"]] == ["initech"]
    assert rest.json()["next"] is None
    suspended = await admin.http.get(
        "/v1/operator/tenants?status=suspended", headers=admin.operator
    )
    assert [t["id"] for t in suspended.json()["items"]] == ["globex"]
    found = await admin.http.get("/v1/operator/tenants?q=NITE", headers=admin.operator)
    assert [t["id"] for t in found.json()["items"]] == ["initech"]


async def test_bad_input_names_the_field_and_the_rule_and_writes_nothing(admin: Admin) -> None:
    good = {"slug": "acme", "name": "Acme", "language": "en", "time_zone": "UTC"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"slug": "platform"}, "slug"),
        ({"slug": "Acme!"}, "slug"),
        ({"time_zone": "Mars/Base"}, "time_zone"),
        ({"language": "fr"}, "body.language"),
        ({"quotas": {"calls_pstn": -1}}, "body.quotas.calls_pstn"),
        ({"placement": {"cluster": "nowhere", "database": "x"}}, "placement.cluster"),
        ({"colour": "red"}, "body.colour"),
    ]
    for change, name in cases:
        response = await admin.http.post(
            "/v1/operator/tenants", json={**good, **change}, headers=admin.operator
        )
        assert response.status_code == 422, (change, response.text)
        body = response.json()
        fields = [e["field"] for e in body.get("errors", [])] or [body["details"]["field"]]
        assert name in fields, (change, body)
    listed = await admin.http.get("/v1/operator/tenants", headers=admin.operator)
    assert listed.json()["items"] == []


async def test_only_operators_reach_the_operator_api(admin: Admin) -> None:
    await admin.create("acme")
    refused = await admin.http.get("/v1/operator/tenants", headers=admin.user("acme"))
    assert problem(refused) == (403, "forbidden")
    anonymous = await admin.http.get("/v1/operator/tenants")
    assert anonymous.status_code == 401


# --- KV mirrors ----------------------------------------------------------------------------------


async def test_kv_mirrors_follow_each_change(admin: Admin, bus: Bus) -> None:
    await admin.create("acme", quotas={"calls_pstn": 4})
    record = await kv_json(bus, Bucket.TENANTS, "acme")
    assert record is not None
    assert (record["status"], record["name"], record["time_zone"]) == ("active", "Acme", "UTC")
    placement = await kv_json(bus, Bucket.PLACEMENT, "tenant.acme")
    assert placement == {"cluster": "default", "database": admin.runtime.platform.mongodb_database}
    assert await kv_json(bus, Bucket.QUOTAS, "acme.calls_pstn") == {"used": 0, "limit": 4}

    await admin.http.patch(
        "/v1/operator/tenants/acme", json={"language": "zh-CN"}, headers=admin.operator
    )
    assert (await kv_json(bus, Bucket.TENANTS, "acme") or {})["language"] == "zh-CN"
    await admin.http.post(
        "/v1/operator/tenants/acme/suspend", json={"reason": "audit"}, headers=admin.operator
    )
    assert (await kv_json(bus, Bucket.TENANTS, "acme") or {})["status"] == "suspended"
    await admin.http.delete("/v1/operator/tenants/acme", headers=admin.operator)
    assert (await kv_json(bus, Bucket.TENANTS, "acme") or {})["status"] == "deleted"


async def test_a_restart_puts_lost_kv_records_back_and_finishes_provisioning(
    platform_settings: PlatformSettings,
    clock: Clock,
    signing_key: Ed25519PrivateKey,
    bus: Bus,
    run_admin: Any,
) -> None:
    async with running(run_admin, platform_settings, clock, signing_key) as admin:
        await admin.create("acme", quotas={"ivr_flows": 2})
        # A creation cut short after its document was written: nothing else happened.
        operator = admin.runtime.store.operator()
        doc = await operator.collection("tenants").find_one({"_id": "acme"})
        assert doc is not None
        interrupted = {
            **doc, "_id": "globex", "tenant_id": "globex", "slug": "globex",
            "status": "provisioning", "version": 1,
        }  # fmt: skip
        await operator.collection("tenants").insert_one(interrupted)
    tenants, placement = await bus.kv(Bucket.TENANTS), await bus.kv(Bucket.PLACEMENT)
    await tenants.delete("acme")
    await placement.purge("tenant.acme")
    await (await bus.kv(Bucket.QUOTAS)).delete("acme.ivr_flows")
    await tenants.put("ghost", b'{"status": "active"}')

    async with running(run_admin, platform_settings, clock, signing_key) as admin:
        assert (await kv_json(bus, Bucket.TENANTS, "acme") or {})["status"] == "active"
        assert await kv_json(bus, Bucket.PLACEMENT, "tenant.acme") is not None
        assert await kv_json(bus, Bucket.QUOTAS, "acme.ivr_flows") == {"used": 0, "limit": 2}
        assert await kv_json(bus, Bucket.TENANTS, "ghost") is None
        assert (await kv_json(bus, Bucket.TENANTS, "globex") or {})["status"] == "active"
        globex = await admin.http.get("/v1/operator/tenants/globex", headers=admin.operator)
        assert globex.json()["status"] == "active"
        finished = await admin.audit(target_id="globex")
        assert [(e.action, e.actor.kind) for e in finished] == [("tenant.create", ActorKind.SYSTEM)]


# --- suspension ----------------------------------------------------------------------------------


async def test_suspension_makes_the_tenant_api_read_only_until_resumed(
    admin: Admin, events: Events
) -> None:
    await admin.create("acme")
    acme = admin.user("acme")
    change = {"time_zone": "Europe/Paris"}
    assert (
        await admin.http.patch("/v1/t/acme/settings", json=change, headers=acme)
    ).status_code == 200

    suspended = await admin.http.post(
        "/v1/operator/tenants/acme/suspend", json={"reason": "unpaid"}, headers=admin.operator
    )
    assert (suspended.json()["status"], suspended.json()["status_reason"]) == (
        "suspended",
        "unpaid",
    )
    await admin.tenant_state("acme", TenantStatus.SUSPENDED)
    refused = await admin.http.patch("/v1/t/acme/settings", json=change, headers=acme)
    assert problem(refused) == (423, "tenant_suspended")
    read = await admin.http.get("/v1/t/acme/settings", headers=acme)
    assert read.json()["status"] == "suspended"

    await admin.http.post("/v1/operator/tenants/acme/resume", headers=admin.operator)
    await admin.tenant_state("acme", TenantStatus.ACTIVE)
    again = await admin.http.patch("/v1/t/acme/settings", json={"language": "zh-TW"}, headers=acme)
    assert again.status_code == 200
    assert again.json()["language"] == "zh-TW"
    await eventually(lambda: "tenant_resumed" in events.names("acme"))
    heard = [(b, e) for t, b, e in events.heard if t == "acme" and b == "tenant_suspended"]
    assert heard[0][1].tenant_suspended.reason == "unpaid"
    settings_changes = await admin.audit(action_prefix="settings.update")
    assert {e.actor.kind for e in settings_changes} == {ActorKind.USER}


# --- isolation -----------------------------------------------------------------------------------


async def test_a_tenant_admin_cannot_read_list_change_or_detect_another_tenant(
    admin: Admin,
) -> None:
    await admin.create("acme")
    await admin.create("globex")
    op = admin.operator
    await admin.http.post(
        "/v1/operator/tenants/acme/numbers", json={"numbers": ["+33100"]}, headers=op
    )
    await admin.http.post(
        "/v1/operator/tenants/globex/numbers", json={"numbers": ["+44200"]}, headers=op
    )
    acme = admin.user("acme")

    listed = await admin.http.get("/v1/t/acme/numbers", headers=acme)
    assert [n["number"] for n in listed.json()["items"]] == ["+33100"]
    theirs = await admin.http.get("/v1/t/acme/numbers/+44200", headers=acme)
    nobodys = await admin.http.get("/v1/t/acme/numbers/+44999", headers=acme)
    assert problem(theirs) == problem(nobodys) == (404, "not_found")
    # Another tenant's path answers exactly as a tenant that does not exist.
    for path in ("settings", "quotas", "numbers", "numbers/+44200"):
        other = await admin.http.get(f"/v1/t/globex/{path}", headers=acme)
        missing = await admin.http.get(f"/v1/t/nosuch/{path}", headers=acme)
        assert other.status_code == missing.status_code != 200
        assert other.json()["code"] == missing.json()["code"]
    changed = await admin.http.patch(
        "/v1/t/globex/settings", json={"language": "zh-CN"}, headers=acme
    )
    assert changed.status_code in (403, 404)
    globex = await admin.http.get("/v1/operator/tenants/globex", headers=op)
    assert globex.json()["language"] == "en"

    # An operator reaches every tenant, through either API.
    assert (await admin.http.get("/v1/t/globex/settings", headers=op)).status_code == 200
    everything = await admin.http.get("/v1/operator/numbers", headers=op)
    assert [n["number"] for n in everything.json()["items"]] == ["+33100", "+44200"]
    # A role without the permission is refused its own tenant's settings.
    agent = admin.user("acme", "agent")
    assert (await admin.http.get("/v1/t/acme/settings", headers=agent)).status_code == 403


# --- numbers -------------------------------------------------------------------------------------


async def test_number_conflicts_are_409_and_write_nothing(admin: Admin, events: Events) -> None:
    await admin.create("acme")
    await admin.create("globex")
    op = admin.operator
    first = await admin.http.post(
        "/v1/operator/tenants/acme/numbers",
        json={"range": {"from": "+33 1 00", "to": "+33 1 04"}, "label": "main"},
        headers=op,
    )
    assert first.status_code == 201, first.text
    assert first.json()["numbers"] == ["+33100", "+33101", "+33102", "+33103", "+33104"]
    clash = await admin.http.post(
        "/v1/operator/tenants/globex/numbers",
        json={"range": {"from": "+33103", "to": "+33107"}},
        headers=op,
    )
    assert problem(clash) == (409, "conflict")
    assert clash.json()["details"]["numbers"] == ["+33103", "+33104"]
    owned = await admin.http.get("/v1/operator/numbers?tenant=globex", headers=op)
    assert owned.json()["items"] == []
    bad = await admin.http.post(
        "/v1/operator/tenants/globex/numbers", json={"numbers": ["+33200", "12a"]}, headers=op
    )
    assert bad.status_code == 422
    assert bad.json()["details"]["field"] == "numbers.1"
    both = await admin.http.post(
        "/v1/operator/tenants/globex/numbers",
        json={"numbers": ["+33200"], "range": {"from": "1", "to": "2"}},
        headers=op,
    )
    assert both.status_code == 422
    prefixed = await admin.http.get("/v1/operator/numbers?prefix=%2B3310", headers=op)
    assert len(prefixed.json()["items"]) == 5
    await eventually(lambda: "tenant_numbers_changed" in events.names("acme"))
    assert "tenant_numbers_changed" not in events.names("globex")


async def test_overlapping_assignments_at_once_leave_no_number_half_assigned(
    admin: Admin,
) -> None:
    await admin.create("acme")
    await admin.create("globex")

    async def assign(tenant: str, first: str, last: str) -> int:
        response = await admin.http.post(
            f"/v1/operator/tenants/{tenant}/numbers",
            json={"range": {"from": first, "to": last}},
            headers=admin.operator,
        )
        return response.status_code

    for round_ in range(5):
        base = 1000 + round_ * 100
        statuses = await asyncio.gather(
            assign("acme", f"+331{base}", f"+331{base + 49}"),
            assign("globex", f"+331{base + 25}", f"+331{base + 74}"),
        )
        assert statuses.count(201) <= 1
        assert set(statuses) <= {201, 409}
        for tenant, (low, high) in {"acme": (0, 49), "globex": (25, 74)}.items():
            page = await admin.http.get(
                f"/v1/operator/numbers?tenant={tenant}&prefix=%2B331{str(base)[:2]}&limit=500",
                headers=admin.operator,
            )
            numbers = {n["number"] for n in page.json()["items"]}
            wanted = {f"+331{base + i}" for i in range(low, high + 1)}
            assert numbers in (set(), wanted)


async def test_releases_and_the_number_lookup_with_its_cache_invalidation(
    admin: Admin, bus: Bus
) -> None:
    await admin.create("acme", language="zh-TW", time_zone="Asia/Taipei")
    op = admin.operator
    await admin.http.post(
        "/v1/operator/tenants/acme/numbers", json={"numbers": ["+886 2 1234 5678", "+88621234"]},
        headers=op,
    )  # fmt: skip
    directory = NumberDirectory(bus, ttl_s=300)
    await directory.start()
    try:
        reply = await directory.lookup("+886-2-1234-5678")
        assert (reply.found, reply.tenant_id, reply.tenant_status) == (True, "acme", "active")
        assert (reply.language, reply.time_zone) == ("zh-TW", "Asia/Taipei")
        assert not (await directory.lookup("+1 555 0100")).found

        gone = await admin.http.delete("/v1/operator/tenants/acme/numbers/+88621234", headers=op)
        assert gone.status_code == 204
        await directory.lookup("+88621234")  # maybe cached until the event lands
        await eventually(lambda: _not_found(directory, "+88621234"))
        await admin.http.post("/v1/operator/tenants/acme/suspend", json={"reason": "x"}, headers=op)
        await eventually(lambda: _status(directory, "+886212345678", "suspended"))
        not_mine = await admin.http.post(
            "/v1/operator/tenants/acme/numbers/release",
            json={"numbers": ["+886212345678", "+1555"]},
            headers=op,
        )
        assert not_mine.status_code == 422
        released = await admin.http.post(
            "/v1/operator/tenants/acme/numbers/release",
            json={"numbers": ["+886212345678"]},
            headers=op,
        )
        assert released.json()["numbers"] == ["+886212345678"]
        await eventually(lambda: _not_found(directory, "+886212345678"))
        entries = await admin.audit(action_prefix="number.")
        assert [e.action for e in entries] == ["number.assign", "number.release", "number.release"]
    finally:
        await directory.stop()


async def _not_found(directory: NumberDirectory, number: str) -> bool:
    return not (await directory.lookup(number)).found


async def _status(directory: NumberDirectory, number: str, status: str) -> bool:
    return (await directory.lookup(number)).tenant_status == status


# --- quotas --------------------------------------------------------------------------------------


async def test_quota_limits_are_enforced_and_reported_with_usage(admin: Admin, bus: Bus) -> None:
    await admin.create("acme")
    op = admin.operator
    put = await admin.http.put(
        "/v1/operator/tenants/acme/quotas", json={"calls_pstn": 2, "ivr_flows": 10}, headers=op
    )
    assert put.json()["calls_pstn"] == {"limit": 2, "used": 0}
    assert put.json()["agents_logged_in"] == {"limit": None, "used": 0}
    bad = await admin.http.put(
        "/v1/operator/tenants/acme/quotas", json={"calls_pstn": -2}, headers=op
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "body.calls_pstn"

    acd = Quotas(bus, service="acd")
    await acd.take("acme", QuotaKind.CALLS_PSTN)
    await acd.take("acme", QuotaKind.CALLS_PSTN)
    with pytest.raises(QuotaExceeded):
        await acd.take("acme", QuotaKind.CALLS_PSTN)
    await acd.close()
    report = await admin.http.get("/v1/operator/tenants/acme/quotas", headers=op)
    assert report.json()["calls_pstn"] == {"limit": 2, "used": 2}
    own = await admin.http.get("/v1/t/acme/quotas", headers=admin.user("acme"))
    assert own.json() == report.json()

    async def refusal_audited() -> bool:
        return bool(await admin.audit(action_prefix="quota.refuse"))

    await eventually(refusal_audited)
    (refusal,) = await admin.audit(action_prefix="quota.refuse")
    assert (refusal.tenant_id, refusal.actor.kind, refusal.actor.subject) == (
        "acme",
        ActorKind.SYSTEM,
        "acd",
    )
    assert refusal.outcome == "refused"
    assert (refusal.after or {})["kind"] == "calls_pstn"
    # The tenant's admins read their own quota changes and refusals in their audit log.
    seen = await admin.http.get("/v1/t/acme/audit?action=quota.", headers=admin.user("acme"))
    assert [e["action"] for e in seen.json()["items"]] == ["quota.refuse", "quota.update"]


# --- placement -----------------------------------------------------------------------------------


async def test_a_tenant_placed_on_its_own_database_keeps_its_data_there_until_purged(
    admin: Admin, bus: Bus, clock: Clock, platform_settings: PlatformSettings
) -> None:
    op = admin.operator
    own_db = f"{platform_settings.mongodb_database}_acme"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(platform_settings.mongodb_uri)
    try:
        registered = await admin.http.put(
            "/v1/operator/clusters/second", json={"uri": platform_settings.mongodb_uri}, headers=op
        )
        assert registered.status_code == 201
        await admin.create("acme", placement={"cluster": "second", "database": own_db})
        assert await kv_json(bus, Bucket.PLACEMENT, "tenant.acme") == {
            "cluster": "second",
            "database": own_db,
        }
        assert await kv_json(bus, Bucket.PLACEMENT, "cluster.second") == {
            "uri": platform_settings.mongodb_uri
        }
        store = await admin.runtime.store.tenant("acme")
        await store.collection("users").insert_one({"username": "alice"})
        placed = await client[own_db]["users"].find_one({"username": "alice"})
        assert placed is not None
        assert placed["tenant_id"] == "acme"
        platform_db = client[platform_settings.mongodb_database]
        assert await platform_db["users"].count_documents({"tenant_id": "acme"}) == 0

        moved = await admin.http.put(
            "/v1/operator/tenants/acme/placement",
            json={"cluster": "default", "database": platform_settings.mongodb_database},
            headers=op,
        )
        assert problem(moved) == (409, "conflict")
        assert "not migrated" in moved.json()["detail"]
        in_use = await admin.http.delete("/v1/operator/clusters/second", headers=op)
        assert problem(in_use) == (409, "conflict")

        await admin.http.delete("/v1/operator/tenants/acme", headers=op)
        clock.now += timedelta(days=AdminSettings().tenant_retention_days + 1)
        assert await admin.ctx.get(OperatorJobs).run_once() == ["acme"]
        assert await client[own_db]["users"].count_documents({}) == 0
        freed = await admin.http.delete("/v1/operator/clusters/second", headers=op)
        assert freed.status_code == 204
    finally:
        await client.drop_database(own_db)
        await client.close()


async def test_clusters_never_show_or_audit_their_uri(admin: Admin, bus: Bus) -> None:
    uri = "mongodb://app:s3cret@db.example:27017/?authSource=admin&tlsCertificateKeyFilePassword=pw"
    put = await admin.http.put(
        "/v1/operator/clusters/vault", json={"uri": uri}, headers=admin.operator
    )
    assert put.status_code == 201
    listed = await admin.http.get("/v1/operator/clusters", headers=admin.operator)
    for shown in (put.json()["uri"], listed.json()[0]["uri"]):
        assert "s3cret" not in shown
        assert "pw" not in shown.split("?")[1]
    (entry,) = await admin.audit(action_prefix="cluster.")
    assert (entry.after or {})["uri"] == "***"
    # The KV entry is the contract with the other services' stores: it carries the real URI.
    assert await kv_json(bus, Bucket.PLACEMENT, "cluster.vault") == {"uri": uri}
    default = await admin.http.put(
        "/v1/operator/clusters/default", json={"uri": uri}, headers=admin.operator
    )
    assert default.status_code == 422
    gone = await admin.http.delete("/v1/operator/clusters/vault", headers=admin.operator)
    assert gone.status_code == 204
    assert await kv_json(bus, Bucket.PLACEMENT, "cluster.vault") is None


# --- retention -----------------------------------------------------------------------------------


async def test_a_deleted_tenant_is_purged_after_its_retention_period(
    admin: Admin, bus: Bus, clock: Clock, platform_settings: PlatformSettings
) -> None:
    op = admin.operator
    await admin.create("acme", quotas={"calls_sip": 3})
    await admin.create("globex")
    await admin.http.post(
        "/v1/operator/tenants/acme/numbers", json={"numbers": ["+33100"]}, headers=op
    )
    acme_store = await admin.runtime.store.tenant("acme")
    await acme_store.collection("users").insert_one({"username": "alice"})
    globex_store = await admin.runtime.store.tenant("globex")
    await globex_store.collection("users").insert_one({"username": "bob"})
    await admin.http.delete("/v1/operator/tenants/acme", headers=op)
    jobs = admin.ctx.get(OperatorJobs)
    assert await jobs.run_once() == []

    clock.now += timedelta(days=AdminSettings().tenant_retention_days, seconds=1)
    late = await admin.http.post("/v1/operator/tenants/acme/restore", headers=op)
    assert problem(late) == (409, "conflict")
    assert await jobs.run_once() == ["acme"]

    assert (await admin.http.get("/v1/operator/tenants/acme", headers=op)).status_code == 404
    assert (await admin.http.get("/v1/operator/numbers/+33100", headers=op)).status_code == 404
    assert await kv_json(bus, Bucket.TENANTS, "acme") is None
    assert await kv_json(bus, Bucket.PLACEMENT, "tenant.acme") is None
    assert await kv_json(bus, Bucket.QUOTAS, "acme.calls_sip") is None
    raw = admin.runtime.store.operator().database
    assert await raw["users"].count_documents({"tenant_id": "acme"}) == 0
    assert await raw["users"].count_documents({"tenant_id": "globex"}) == 1
    await admin.tenant_state("acme", None)
    (purge,) = await admin.audit(action_prefix="tenant.purge")
    assert purge.actor.kind is ActorKind.SYSTEM
    assert "1 documents and 1 numbers" in purge.detail
    # The slug is free again.
    await admin.create("acme")


# --- sites and nodes -----------------------------------------------------------------------------


async def test_sites_and_nodes_are_registered_and_nodes_report_their_heartbeat(
    admin: Admin, bus: Bus, clock: Clock
) -> None:
    op = admin.operator
    site = await admin.http.post(
        "/v1/operator/sites",
        json={"site_id": "taipei", "name": "Taipei branch", "region": "ap-east"},
        headers=op,
    )
    assert site.status_code == 201, site.text
    node = {
        "node_id": "fs-taipei-1",
        "site_id": "taipei",
        "addresses": ["10.8.0.5"],
        "esl_endpoint": {"host": "10.8.0.5", "port": 8021},
        "role": "branch",
    }
    created = await admin.http.post("/v1/operator/nodes", json=node, headers=op)
    assert created.status_code == 201, created.text
    assert created.json()["status"]["state"] == "down"
    assert (await admin.http.post("/v1/operator/nodes", json=node, headers=op)).status_code == 409
    elsewhere = await admin.http.post(
        "/v1/operator/nodes", json={**node, "node_id": "fs-2", "site_id": "nowhere"}, headers=op
    )
    assert elsewhere.status_code == 422

    beat = NodeHeartbeat(
        node_id="fs-taipei-1", site="taipei", version="1.10.12", esl_connected=True,
        channels=8, calls=4, uptime_s=3600,
    )  # fmt: skip
    await (await bus.kv(Bucket.NODES)).put("fs-taipei-1", beat.SerializeToString())
    # The heartbeat's time is the real one; the node's health is judged against the admin clock.
    clock.now = datetime.now(UTC)
    got = await admin.http.get("/v1/operator/nodes/fs-taipei-1", headers=op)
    status = got.json()["status"]
    assert (status["state"], status["channels"], status["calls"]) == ("up", 8, 4)
    assert status["last_heartbeat_at"] is not None
    listed = await admin.http.get("/v1/operator/nodes?site=taipei", headers=op)
    assert [n["node_id"] for n in listed.json()["items"]] == ["fs-taipei-1"]

    busy = await admin.http.delete("/v1/operator/sites/taipei", headers=op)
    assert problem(busy) == (409, "conflict")
    moved = await admin.http.patch(
        "/v1/operator/nodes/fs-taipei-1", json={"role": "central"}, headers=op
    )
    assert moved.json()["role"] == "central"
    assert (
        await admin.http.delete("/v1/operator/nodes/fs-taipei-1", headers=op)
    ).status_code == 204
    assert (await admin.http.delete("/v1/operator/sites/taipei", headers=op)).status_code == 204
    actions = [
        e.action for e in await admin.audit(platform_only=True) if e.target_kind in ("site", "node")
    ]
    assert actions == ["site.create", "node.create", "node.update", "node.delete", "site.delete"]
