"""Tenancy on a real nats-server and MongoDB: the gate, placement and admin's directories.

The test plays admin: it writes the ``tenants`` and ``placement`` buckets, answers the look-up
requests (counting them) and publishes the tenant events admin would publish.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path

import httpx
import nats.errors
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient

from callmesh.core.bus import Bus
from callmesh.core.errors import (
    InvalidInput,
    NotFound,
    RequestTimeout,
    TenantSuspended,
    Unavailable,
)
from callmesh.core.http import install_error_handlers
from callmesh.core.kvwatch import KvMirror
from callmesh.core.servers import free_port, start_nats
from callmesh.core.settings import PlatformSettings
from callmesh.core.store import Placement, Store
from callmesh.core.tenancy import (
    KvPlacement,
    NumberDirectory,
    SipDirectory,
    TenantGate,
    TenantInfo,
    TenantStatus,
    WritableTenant,
    cluster_key,
    encode_cluster,
    encode_placement,
    normalize_number,
    placement_key,
    redact_uri,
)
from callmesh.proto.subjects import Bucket, Service
from callmesh.proto.v1.admin_pb2 import (
    DirectoryLookup,
    DirectoryLookupReply,
    NumberLookup,
    NumberLookupReply,
)

ACME = TenantInfo("acme", TenantStatus.ACTIVE, "Acme", "fr-FR", "Europe/Paris", True)


async def eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    """Wait for a condition (a liveness bound, not a speed assertion)."""
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110 — conditions on plain state, not on an Event
            await asyncio.sleep(0.02)


async def eventually_async(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    """Wait for a condition that must be awaited to be checked."""
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110 — the condition is a bus or store answer
            await asyncio.sleep(0.02)


async def put_tenant(bus: Bus, info: TenantInfo) -> None:
    kv = await bus.kv(Bucket.TENANTS)
    await kv.put(info.tenant_id, info.to_json())


def suspended(info: TenantInfo) -> TenantInfo:
    return TenantInfo(info.tenant_id, TenantStatus.SUSPENDED, info.name, info.language)


@pytest.fixture
async def gate(bus: Bus) -> AsyncIterator[TenantGate]:
    await put_tenant(bus, ACME)
    await put_tenant(bus, TenantInfo("sleepy", TenantStatus.SUSPENDED, "Sleepy"))
    instance = TenantGate(bus)
    await instance.start()
    await instance.wait_ready(timeout_s=15)
    yield instance
    await instance.stop()


def gate_app(gate: TenantGate | None) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    if gate is not None:
        app.state.tenant_gate = gate

    @app.api_route("/v1/t/{tenant}/queues", methods=["GET", "HEAD"])
    async def list_queues(info: WritableTenant) -> dict[str, str]:
        return {"tenant": info.tenant_id}

    @app.post("/v1/t/{tenant}/queues")
    async def create_queue(info: WritableTenant) -> dict[str, str]:
        return {"tenant": info.tenant_id}

    return app


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


# -- the gate ---------------------------------------------------------------------------------


async def test_the_gate_loads_current_values_then_follows_updates(
    bus: Bus, gate: TenantGate
) -> None:
    assert gate.info("acme") == ACME
    assert gate.is_active("acme")
    assert not gate.is_active("sleepy")
    assert gate.info("nobody") is None
    assert set(gate.tenants()) == {"acme", "sleepy"}
    assert REGISTRY.get_sample_value("callmesh_tenants", {"status": "suspended"}) == 1

    await put_tenant(bus, TenantInfo("newco", TenantStatus.ACTIVE, "NewCo"))
    await put_tenant(bus, TenantInfo("sleepy", TenantStatus.ACTIVE, "Sleepy"))
    await eventually(lambda: gate.is_active("newco") and gate.is_active("sleepy"))
    assert REGISTRY.get_sample_value("callmesh_tenants", {"status": "active"}) == 3
    assert REGISTRY.get_sample_value("callmesh_tenants", {"status": "suspended"}) == 0

    await (await bus.kv(Bucket.TENANTS)).delete("newco")
    await eventually(lambda: gate.info("newco") is None)


async def test_a_suspended_tenant_is_refused_new_work(bus: Bus, gate: TenantGate) -> None:
    assert gate.require_active("acme") == ACME
    await put_tenant(bus, suspended(ACME))
    await eventually(lambda: not gate.is_active("acme"))
    with pytest.raises(TenantSuspended) as refused:
        gate.require_active("acme")
    assert refused.value.status == 423
    assert refused.value.code == "tenant_suspended"
    assert refused.value.message == "tenant acme is suspended: new work is refused"
    assert refused.value.details == {"tenant_id": "acme"}


async def test_unknown_and_deleted_tenants_are_not_found(bus: Bus, gate: TenantGate) -> None:
    with pytest.raises(NotFound):
        gate.require_active("nobody")
    await put_tenant(bus, TenantInfo("acme", TenantStatus.DELETED, "Acme"))
    await eventually(lambda: gate.info("acme") == TenantInfo("acme", TenantStatus.DELETED, "Acme"))
    with pytest.raises(NotFound):
        gate.require_active("acme")


async def test_tenant_writable_lets_a_suspended_tenant_read_but_not_write(
    bus: Bus, gate: TenantGate
) -> None:
    async with client_for(gate_app(gate)) as client:
        assert (await client.post("/v1/t/acme/queues")).status_code == 200
        await put_tenant(bus, suspended(ACME))
        await eventually(lambda: not gate.is_active("acme"))

        read = await client.get("/v1/t/acme/queues")
        assert read.status_code == 200
        assert read.json() == {"tenant": "acme"}
        assert (await client.head("/v1/t/acme/queues")).status_code == 200
        write = await client.post("/v1/t/acme/queues")
        assert write.status_code == 423
        assert write.json()["code"] == "tenant_suspended"
        assert write.json()["detail"] == "the tenant API is read-only while the tenant is suspended"


async def test_tenant_writable_answers_404_for_unknown_and_deleted_tenants(
    bus: Bus, gate: TenantGate
) -> None:
    await put_tenant(bus, TenantInfo("gone", TenantStatus.DELETED, "Gone"))
    await eventually(lambda: gate.info("gone") is not None)
    async with client_for(gate_app(gate)) as client:
        for path in ("/v1/t/nobody/queues", "/v1/t/gone/queues", "/v1/t/Not_A_Slug/queues"):
            for method in ("GET", "POST"):
                response = await client.request(method, path)
                assert response.status_code == 404, (method, path)
                assert response.json()["code"] == "not_found"


async def test_tenant_writable_fails_closed_without_a_gate_or_before_the_load(bus: Bus) -> None:
    async with client_for(gate_app(None)) as client:
        response = await client.get("/v1/t/acme/queues")
        assert response.status_code == 503
        assert response.json()["details"] == {"reason": "no_tenant_gate"}
    not_started = TenantGate(bus)
    assert not not_started.is_active("acme")
    with pytest.raises(Unavailable):
        not_started.require_active("acme")
    async with client_for(gate_app(not_started)) as client:
        response = await client.get("/v1/t/acme/queues")
        assert response.status_code == 503
        assert response.json()["details"] == {"reason": "loading"}


async def test_on_change_callbacks_get_the_old_and_new_record(bus: Bus, gate: TenantGate) -> None:
    seen: list[tuple[TenantInfo | None, TenantInfo | None]] = []
    awaited: list[str] = []

    def record(old: TenantInfo | None, new: TenantInfo | None) -> None:
        seen.append((old, new))

    async def broken(old: TenantInfo | None, new: TenantInfo | None) -> None:
        raise RuntimeError("a service's callback failing must not stop the others")

    async def log_out_agents(old: TenantInfo | None, new: TenantInfo | None) -> None:
        await asyncio.sleep(0)
        if new is not None and not new.active:
            awaited.append(new.tenant_id)

    gate.on_change(record)
    gate.on_change(broken)
    gate.on_change(log_out_agents)
    await put_tenant(bus, suspended(ACME))
    await eventually(lambda: len(seen) == 1)
    assert seen == [(ACME, suspended(ACME))]
    await eventually(lambda: awaited == ["acme"])

    await (await bus.kv(Bucket.TENANTS)).delete("acme")
    await eventually(lambda: len(seen) == 2)
    assert seen[1] == (suspended(ACME), None)


async def test_an_unreadable_record_makes_the_tenant_unknown(bus: Bus, gate: TenantGate) -> None:
    kv = await bus.kv(Bucket.TENANTS)
    await kv.put("acme", b'{"status": "on holiday"}')
    await eventually(lambda: gate.info("acme") is None)
    await kv.put("acme", ACME.to_json())
    await eventually(lambda: gate.info("acme") == ACME)
    await kv.put("acme", b"not json")
    await eventually(lambda: gate.info("acme") is None)
    with pytest.raises(NotFound):
        gate.require_active("acme")


async def test_the_gate_watches_again_after_nats_restarts(
    platform_settings: PlatformSettings, tmp_path: Path
) -> None:
    port = free_port()
    server = start_nats(tmp_path / "n", port=port)
    own = Bus(platform_settings.model_copy(update={"nats_url": server.url}), "test")
    gate = TenantGate(own)
    try:
        await own.connect(attempts=3)
        await own.provision()
        await put_tenant(own, ACME)
        await gate.start()
        await gate.wait_ready(timeout_s=15)
        assert gate.is_active("acme")

        server.stop()
        await eventually(lambda: not own.connected)
        server = start_nats(tmp_path / "n", port=port)
        await eventually(lambda: own.connected, timeout=30)

        async def suspend() -> bool:
            try:
                await put_tenant(own, suspended(ACME))
            except (nats.errors.Error, TimeoutError):
                return False  # JetStream still recovering its streams
            return True

        await eventually_async(suspend, timeout=30)
        await eventually(lambda: not gate.is_active("acme"), timeout=30)
        bucket = own.subjects.bucket(Bucket.TENANTS)
        restarts = REGISTRY.get_sample_value("callmesh_kv_watch_restarts_total", {"bucket": bucket})
        assert restarts is not None
        assert restarts >= 1
    finally:
        await gate.stop()
        await own.close()
        server.stop()


async def test_a_watch_whose_consumer_vanished_is_started_again(bus: Bus) -> None:
    # The consumer can go without a reconnect (a cluster node lost): the mirror asks after it.
    seen: dict[str, bytes | None] = {}

    def apply(changes: list[tuple[str, bytes | None]], initial: bool) -> None:
        seen.update(changes)

    mirror = KvMirror(bus, Bucket.TENANTS, apply, liveness_s=0.2)
    mirror.start()
    try:
        await asyncio.wait_for(mirror.ready.wait(), 15)
        stream = f"KV_{bus.subjects.bucket(Bucket.TENANTS)}"
        for consumer in await bus.js.consumers_info(stream):
            await bus.js.delete_consumer(stream, consumer.name)
        await put_tenant(bus, ACME)
        await eventually(lambda: seen.get("acme") is not None)
        bucket = bus.subjects.bucket(Bucket.TENANTS)
        restarts = REGISTRY.get_sample_value("callmesh_kv_watch_restarts_total", {"bucket": bucket})
        assert restarts is not None
        assert restarts >= 1
    finally:
        await mirror.stop()


# -- placement --------------------------------------------------------------------------------


async def test_placement_resolves_the_default_then_a_placed_tenant_whose_writes_land_there(
    bus: Bus, platform_settings: PlatformSettings, mongodb_server_uri: str, test_database: str
) -> None:
    store = Store(platform_settings)
    placement = KvPlacement(bus, Placement(test_database), store)
    store.placement = placement
    placed_db = f"{test_database}_vip"
    raw: AsyncMongoClient[Mapping[str, object]] = AsyncMongoClient(mongodb_server_uri)
    await placement.start()
    try:
        assert await placement.resolve("vip") == Placement(test_database)
        kv = await bus.kv(Bucket.PLACEMENT)
        await kv.put(placement_key("vip"), encode_placement(Placement(placed_db, "vip-cluster")))

        async def refused() -> bool:
            try:
                await placement.resolve("vip")
            except Unavailable:
                return True
            return False

        # Placed on a cluster not known yet: refused, never written to the default database.
        await eventually_async(refused)
        await kv.put(cluster_key("vip-cluster"), encode_cluster(mongodb_server_uri))

        async def placed() -> bool:
            try:
                return await placement.resolve("vip") == Placement(placed_db, "vip-cluster")
            except Unavailable:
                return False

        await eventually_async(placed)
        assert await placement.resolve("other") == Placement(test_database)

        vip = await store.tenant("vip")
        await vip.collection("notes").insert_one({"text": "on its own database"})
        there = await raw[placed_db]["notes"].find_one({"tenant_id": "vip"})
        assert there is not None
        assert there["text"] == "on its own database"
        assert await raw[test_database]["notes"].count_documents({"tenant_id": "vip"}) == 0
    finally:
        await placement.stop()
        await store.close()
        await raw.drop_database(placed_db)
        await raw.close()


async def test_placement_refuses_tenants_whose_entry_cannot_be_read(bus: Bus) -> None:
    kv = await bus.kv(Bucket.PLACEMENT)
    await kv.put(placement_key("bad"), b'{"cluster": "default", "database": "no/slashes"}')
    await kv.put(placement_key("garbled"), b"[1, 2]")
    placement = KvPlacement(bus, Placement("main"))
    await placement.start()
    try:
        for tenant in ("bad", "garbled"):
            with pytest.raises(Unavailable, match="unreadable"):
                await placement.resolve(tenant)
        assert await placement.resolve("fine") == Placement("main")
        await kv.put(placement_key("bad"), encode_placement(Placement("bad_db")))

        async def repaired() -> bool:
            try:
                return await placement.resolve("bad") == Placement("bad_db")
            except Unavailable:
                return False

        await eventually_async(repaired)
    finally:
        await placement.stop()


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        (
            "mongodb://app:s3cr3t@db1:27017,db2:27017/cm?replicaSet=rs0&authSource=admin",
            "mongodb://app:***@db1:27017,db2:27017/cm?replicaSet=rs0&authSource=admin",
        ),
        ("mongodb+srv://app:p%40ss@c0.example.net/", "mongodb+srv://app:***@c0.example.net/"),
        ("mongodb://app:p@ss@db1/cm", "mongodb://app:***@db1/cm"),
        ("mongodb://db1:27017/", "mongodb://db1:27017/"),
        (
            "mongodb://CN=client@db1/?authMechanism=MONGODB-X509",
            "mongodb://CN=client@db1/?authMechanism=MONGODB-X509",
        ),
        (
            "mongodb://db1/?tlsCertificateKeyFilePassword=k3y"
            "&authMechanismProperties=AWS_SESSION_TOKEN:t0k",
            "mongodb://db1/?tlsCertificateKeyFilePassword=***&authMechanismProperties=***",
        ),
        ("s3cr3t garbage", "***"),
    ],
)
def test_redact_uri_hides_passwords_and_secret_parameters(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown
    for secret in ("s3cr3t", "p%40ss", "p@ss", "k3y", "t0k"):
        assert secret not in redact_uri(uri)


# -- admin's directories ----------------------------------------------------------------------


class FakeAdmin:
    """Plays admin's side of the look-ups: answers from tables, counts, can hold answers back."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.numbers: dict[str, str] = {}
        self.users: dict[tuple[str, str], str] = {}
        self.served = 0
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()

    async def serve(self) -> None:
        subjects = self.bus.subjects
        await self.bus.serve(
            subjects.platform_command(Service.ADMIN, "number_lookup"), NumberLookup, self.number
        )
        await self.bus.serve(
            subjects.platform_command(Service.ADMIN, "directory_lookup"),
            DirectoryLookup,
            self.user,
        )

    async def _count(self) -> None:
        self.served += 1
        self.entered.set()
        await self.release.wait()

    async def number(self, request: NumberLookup) -> NumberLookupReply:
        await self._count()
        tenant = self.numbers.get(request.number)
        if tenant is None:
            return NumberLookupReply(found=False)
        return NumberLookupReply(
            found=True, number=request.number, tenant_id=tenant, tenant_status="active"
        )

    async def user(self, request: DirectoryLookup) -> DirectoryLookupReply:
        await self._count()
        tenant = self.users.get((request.domain, request.username))
        if tenant is None:
            return DirectoryLookupReply(found=False)
        return DirectoryLookupReply(
            found=True, tenant_id=tenant, username=request.username, a1_hash="0" * 32
        )


@pytest.fixture
async def admin(bus: Bus) -> AsyncIterator[FakeAdmin]:
    fake = FakeAdmin(bus)
    await fake.serve()
    yield fake
    fake.release.set()  # never leave a held handler behind


@pytest.fixture
async def numbers(bus: Bus) -> AsyncIterator[NumberDirectory]:
    directory = NumberDirectory(bus)
    await directory.start()
    yield directory
    await directory.stop()


@pytest.fixture
async def sip(bus: Bus) -> AsyncIterator[SipDirectory]:
    directory = SipDirectory(bus)
    await directory.start()
    yield directory
    await directory.stop()


async def publish_numbers_changed(bus: Bus, tenant: str, added: list[str]) -> None:
    event = bus.new_event(tenant_id=tenant)
    event.tenant_numbers_changed.added.extend(added)
    await bus.publish(event)


async def publish_suspended(bus: Bus, tenant: str) -> None:
    event = bus.new_event(tenant_id=tenant)
    event.tenant_suspended.reason = "unpaid"
    await bus.publish(event)


async def test_number_lookups_are_cached_found_and_not_found(
    admin: FakeAdmin, numbers: NumberDirectory
) -> None:
    admin.numbers["+33123456789"] = "acme"
    reply = await numbers.lookup("+33 1 23 45 67 89")
    assert (reply.found, reply.tenant_id, reply.number) == (True, "acme", "+33123456789")
    reply.tenant_id = "changed by a caller"
    again = await numbers.lookup("+33 (1) 23-45-67-89")
    assert again.tenant_id == "acme"
    assert not (await numbers.lookup("+44 20 7946 0000")).found
    assert not (await numbers.lookup("+44 20 7946 0000")).found
    assert admin.served == 2
    with pytest.raises(InvalidInput) as bad:
        await numbers.lookup("call me maybe")
    assert bad.value.field == "number"
    assert admin.served == 2


async def test_concurrent_lookups_of_one_number_share_one_request(
    admin: FakeAdmin, numbers: NumberDirectory
) -> None:
    admin.numbers["+33123456789"] = "acme"
    admin.release.clear()
    waiting = [asyncio.create_task(numbers.lookup("+33123456789")) for _ in range(20)]
    other = asyncio.create_task(numbers.lookup("+33999"))
    await eventually(lambda: admin.served == 2)
    admin.release.set()
    replies = await asyncio.gather(*waiting)
    assert {r.tenant_id for r in replies} == {"acme"}
    assert not (await other).found
    assert admin.served == 2


async def test_numbers_changed_drops_the_named_numbers(
    bus: Bus, admin: FakeAdmin, numbers: NumberDirectory
) -> None:
    assert not (await numbers.lookup("+33100")).found
    assert not (await numbers.lookup("+33200")).found
    admin.numbers["+33100"] = "acme"
    await publish_numbers_changed(bus, "acme", ["+33 100"])
    await eventually(lambda: len(numbers) == 1)
    assert (await numbers.lookup("+33100")).tenant_id == "acme"
    assert not (await numbers.lookup("+33200")).found
    assert admin.served == 3


async def test_a_suspension_drops_every_number_of_the_tenant(
    bus: Bus, admin: FakeAdmin, numbers: NumberDirectory
) -> None:
    admin.numbers.update({"+33100": "acme", "+33101": "acme", "+44100": "globex"})
    for number in ("+33100", "+33101", "+44100", "+1555"):
        await numbers.lookup(number)
    assert admin.served == 4
    await publish_suspended(bus, "acme")
    # acme's numbers go, and so do negative answers (they cannot say whose they were).
    await eventually(lambda: len(numbers) == 1)
    await numbers.lookup("+44100")
    assert admin.served == 4
    await numbers.lookup("+33100")
    assert admin.served == 5


async def test_timeouts_and_missing_responders_are_not_cached(bus: Bus) -> None:
    directory = NumberDirectory(bus, timeout_s=0.3)
    await directory.start()
    fake = FakeAdmin(bus)
    try:
        with pytest.raises(Unavailable):
            await directory.lookup("+33100")
        await fake.serve()
        fake.release.clear()
        with pytest.raises(RequestTimeout):
            await directory.lookup("+33100")
        fake.release.set()
        assert not (await directory.lookup("+33100")).found
        assert not (await directory.lookup("+33100")).found
        assert fake.served == 2
    finally:
        fake.release.set()
        await directory.stop()


async def test_the_number_cache_is_bounded_and_answers_expire(bus: Bus, admin: FakeAdmin) -> None:
    bounded = NumberDirectory(bus, max_entries=2)
    for number in ("+331", "+332", "+333", "+331"):
        await bounded.lookup(number)
    assert len(bounded) == 2
    assert admin.served == 4  # +331 was pushed out by +333
    expired = NumberDirectory(bus, ttl_s=0)
    await expired.lookup("+331")
    await expired.lookup("+331")
    assert admin.served == 6


async def test_an_expired_answer_is_served_while_admin_cannot_be_reached(
    bus: Bus, admin: FakeAdmin
) -> None:
    admin.numbers["+33100"] = "acme"
    admin.users[("acme.sip.test", "1001")] = "acme"
    # Every answer expires at once, so each look-up asks admin again.
    numbers = NumberDirectory(bus, ttl_s=0, timeout_s=0.3)
    sip = SipDirectory(bus, ttl_s=0, timeout_s=0.3)
    strict = NumberDirectory(bus, ttl_s=0, timeout_s=0.3, stale_s=0)
    for directory in (numbers, sip, strict):
        await directory.start()
    try:
        assert (await numbers.lookup("+33100")).tenant_id == "acme"
        assert (await sip.lookup("acme.sip.test", "1001")).found
        assert (await strict.lookup("+33100")).found
        admin.release.clear()  # admin stops answering: the branch's WAN link is down
        assert (await numbers.lookup("+33100")).tenant_id == "acme"
        assert (await sip.lookup("acme.sip.test", "1001")).tenant_id == "acme"
        with pytest.raises(RequestTimeout):
            await strict.lookup("+33100")
        # Never known, nothing to fall back on.
        with pytest.raises(RequestTimeout):
            await numbers.lookup("+44100")
        # What an event said is gone stays gone, reachable or not.
        await publish_suspended(bus, "acme")
        await eventually(lambda: len(numbers) == 0)
        with pytest.raises(RequestTimeout):
            await numbers.lookup("+33100")
    finally:
        admin.release.set()
        for directory in (numbers, sip, strict):
            await directory.stop()


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("+33 1 23 45 67 89", "+33123456789"),
        ("(+33) 1-23-45.67.89", "+33123456789"),
        ("+1 (555) 010-0199", "+15550100199"),
        ("0123 456 789", "0123456789"),
        (" 112 ", "112"),
        ("0033123456789", "0033123456789"),
    ],
)
def test_normalize_number_keeps_digits_and_a_leading_plus(text: str, number: str) -> None:
    assert normalize_number(text) == number
    assert normalize_number(number) == number


@pytest.mark.parametrize(
    "text",
    [
        "",
        "  ",
        "abc",
        "+",
        "1+2",
        "++33",
        "+0123",
        "12a3",
        "555;1",
        "١٢٣",
        "1" * 21,
        "+" + "1" * 16,
    ],
)
def test_normalize_number_refuses_garbage_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        normalize_number(text)
    assert refused.value.field == "number"


async def test_sip_lookups_are_cached_and_dropped_when_the_directory_changes(
    bus: Bus, admin: FakeAdmin, sip: SipDirectory
) -> None:
    admin.users[("acme.sip.example.net", "1001")] = "acme"
    reply = await sip.lookup("ACME.sip.example.net.", "1001")
    assert (reply.found, reply.tenant_id) == (True, "acme")
    await sip.lookup("acme.sip.example.net", "1001")
    assert not (await sip.lookup("acme.sip.example.net", "1002")).found
    assert not (await sip.lookup("acme.sip.example.net", "1002")).found
    assert admin.served == 2

    admin.users[("acme.sip.example.net", "1002")] = "acme"
    event = bus.new_event(tenant_id="acme")
    event.tenant_directory_changed.usernames.append("1002")
    await bus.publish(event)
    await eventually(lambda: len(sip) == 1)
    assert (await sip.lookup("acme.sip.example.net", "1002")).found
    await sip.lookup("acme.sip.example.net", "1001")
    assert admin.served == 3

    await publish_suspended(bus, "acme")
    await eventually(lambda: len(sip) == 0)
    await sip.lookup("acme.sip.example.net", "1001")
    assert admin.served == 4

    with pytest.raises(InvalidInput) as bad:
        await sip.lookup("not a domain", "1001")
    assert bad.value.field == "domain"
    with pytest.raises(InvalidInput) as bad:
        await sip.lookup("acme.sip.example.net", "10 01")
    assert bad.value.field == "username"


async def test_concurrent_sip_lookups_share_one_request_and_timeouts_are_not_cached(
    bus: Bus, admin: FakeAdmin
) -> None:
    directory = SipDirectory(bus, timeout_s=0.3)
    admin.users[("acme.sip.example.net", "1001")] = "acme"
    try:
        admin.release.clear()
        with pytest.raises(RequestTimeout):
            await directory.lookup("acme.sip.example.net", "1001")
        admin.release.set()
        admin.entered.clear()
        admin.release.clear()
        waiting = [
            asyncio.create_task(directory.lookup("acme.sip.example.net", "1001")) for _ in range(10)
        ]
        await admin.entered.wait()
        admin.release.set()
        replies = await asyncio.gather(*waiting)
        assert all(r.found for r in replies)
        assert admin.served == 2
    finally:
        admin.release.set()
        await directory.stop()


async def test_a_suspension_leaves_other_tenants_answers_alone(
    bus: Bus, admin: FakeAdmin, numbers: NumberDirectory
) -> None:
    admin.numbers.update({"+33100": "acme", "+44100": "globex"})
    await numbers.lookup("+33100")
    await numbers.lookup("+44100")
    await publish_suspended(bus, "globex")
    await eventually(lambda: len(numbers) == 1)
    await numbers.lookup("+33100")
    assert admin.served == 2


def test_tenant_records_round_trip_through_json() -> None:
    assert TenantInfo.from_json("acme", ACME.to_json()) == ACME
    minimal = TenantInfo.from_json("acme", b'{"status": "suspended"}')
    assert minimal == TenantInfo("acme", TenantStatus.SUSPENDED)
    for bad in (b"[]", b'{"status": "active", "encryption_at_rest": "yes"}', b'{"name": "x"}'):
        with pytest.raises(ValueError, match=r"."):
            TenantInfo.from_json("acme", bad)


def test_keys_are_checked() -> None:
    assert placement_key("acme") == "tenant.acme"
    assert cluster_key("eu-1") == "cluster.eu-1"
    with pytest.raises(ValueError, match="tenant"):
        placement_key("Not A Tenant")
    with pytest.raises(ValueError, match="database"):
        encode_placement(Placement("a.b"))
