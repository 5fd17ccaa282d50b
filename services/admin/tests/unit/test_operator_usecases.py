"""The operator use cases on in-memory ports: what is written where, in which order, and how a
failure part-way is repaired."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from callmesh.admin.domain.audit import AuditEntry
from callmesh.admin.domain.common import Actor, ActorKind, Page
from callmesh.admin.domain.numbers import NumberAssignment
from callmesh.admin.domain.quotas import check_limits
from callmesh.admin.domain.sites import Heartbeat, Node, NodeState, Site
from callmesh.admin.domain.tenants import (
    Lifecycle,
    NewTenant,
    Tenant,
    TenantChanges,
    TenantPlacement,
    VersionMismatch,
)
from callmesh.admin.ports.audit import AuditQuery
from callmesh.admin.ports.operator import Cluster, NumberQuery, TenantQuery
from callmesh.admin.service.audit import Auditor
from callmesh.admin.service.operator import (
    ClusterAdmin,
    NumberAdmin,
    SiteAdmin,
    TenantAdmin,
)
from callmesh.core.errors import Conflict, InvalidInput, NotFound, Unavailable
from callmesh.core.quotas import QuotaKind, QuotaUsage

P = TypeVar("P")
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
OPERATOR = Actor(ActorKind.OPERATOR, "op-1")
ACME_ADMIN = Actor(ActorKind.USER, "usr_1", "acme", ("tenant_admin",))


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


# --- in-memory ports -----------------------------------------------------------------------------


def _page(items: list[P], key: str, limit: int, after: str | None) -> Page[P]:
    chosen = sorted(
        (i for i in items if after is None or getattr(i, key) > after),
        key=lambda i: getattr(i, key),
    )
    more = len(chosen) > limit
    chosen = chosen[:limit]
    return Page(chosen, getattr(chosen[-1], key) if more and chosen else None)


class MemoryTenants:
    def __init__(self) -> None:
        self.docs: dict[str, Tenant] = {}
        # Writes that lose the version race this many times (another replica changing it).
        self.lose_races = 0

    async def get(self, tenant_id: str) -> Tenant | None:
        return self.docs.get(tenant_id)

    async def get_own(self, tenant_id: str) -> Tenant | None:
        return self.docs.get(tenant_id)

    async def insert(self, tenant: Tenant) -> bool:
        if tenant.tenant_id in self.docs:
            return False
        self.docs[tenant.tenant_id] = tenant
        return True

    async def replace(self, tenant: Tenant, expected_version: int) -> bool:
        current = self.docs.get(tenant.tenant_id)
        if self.lose_races and current is not None:
            self.lose_races -= 1
            self.docs[tenant.tenant_id] = replace(current, version=current.version + 1)
            return False
        if current is None or current.version != expected_version:
            return False
        self.docs[tenant.tenant_id] = tenant
        return True

    async def search(self, query: TenantQuery) -> Page[Tenant]:
        items = [
            t
            for t in self.docs.values()
            if (query.status is None or t.status is query.status)
            and (not query.search or query.search.lower() in f"{t.name} {t.tenant_id}".lower())
        ]
        return _page(items, "tenant_id", query.limit, query.after)

    async def all(self) -> list[Tenant]:
        return sorted(self.docs.values(), key=lambda t: t.tenant_id)

    async def due_for_purge(self, now: datetime) -> list[Tenant]:
        return [
            t
            for t in self.docs.values()
            if t.status is Lifecycle.DELETED and t.purge_after and t.purge_after <= now
        ]

    async def mark_purging(self, tenant_id: str, now: datetime) -> Tenant | None:
        tenant = self.docs.get(tenant_id)
        if tenant is None or tenant not in await self.due_for_purge(now):
            return None
        self.docs[tenant_id] = replace(tenant, purging=True)
        return self.docs[tenant_id]

    async def delete(self, tenant_id: str) -> None:
        self.docs.pop(tenant_id, None)

    async def count_on_cluster(self, cluster: str) -> int:
        return sum(1 for t in self.docs.values() if t.placement.cluster == cluster)


class MemoryNumbers:
    def __init__(self) -> None:
        self.docs: dict[str, NumberAssignment] = {}
        # Numbers another operator takes between this request's check and its insert.
        self.stolen: dict[str, str] = {}

    async def owners(self, numbers: Sequence[str]) -> dict[str, str]:
        return {n: self.docs[n].tenant_id for n in numbers if n in self.docs}

    async def insert(self, assignments: Sequence[NumberAssignment]) -> dict[str, str]:
        for number, owner in self.stolen.items():
            self.docs[number] = NumberAssignment(number, owner, "", T0)
        taken = {
            a.number: self.docs[a.number].tenant_id for a in assignments if a.number in self.docs
        }
        if not taken:
            self.docs.update({a.number: a for a in assignments})
        return taken

    async def get(self, number: str) -> NumberAssignment | None:
        return self.docs.get(number)

    async def get_own(self, tenant_id: str, number: str) -> NumberAssignment | None:
        found = self.docs.get(number)
        return found if found is not None and found.tenant_id == tenant_id else None

    async def release(self, tenant_id: str, numbers: Sequence[str]) -> list[str]:
        gone = [n for n in numbers if n in self.docs and self.docs[n].tenant_id == tenant_id]
        for number in gone:
            del self.docs[number]
        return gone

    async def search(self, query: NumberQuery) -> Page[NumberAssignment]:
        items = [
            a
            for a in self.docs.values()
            if (query.tenant_id is None or a.tenant_id == query.tenant_id)
            and (query.prefix is None or a.number.startswith(query.prefix))
        ]
        return _page(items, "number", query.limit, query.after)

    async def search_own(self, tenant_id: str, query: NumberQuery) -> Page[NumberAssignment]:
        return await self.search(replace(query, tenant_id=tenant_id))

    async def delete_tenant(self, tenant_id: str) -> list[str]:
        mine = [n for n, a in self.docs.items() if a.tenant_id == tenant_id]
        return await self.release(tenant_id, mine)


class MemoryClusters:
    def __init__(self) -> None:
        self.docs: dict[str, Cluster] = {}

    async def get(self, name: str) -> Cluster | None:
        return self.docs.get(name)

    async def all(self) -> list[Cluster]:
        return [self.docs[k] for k in sorted(self.docs)]

    async def put(self, cluster: Cluster) -> Cluster | None:
        before = self.docs.get(cluster.name)
        self.docs[cluster.name] = cluster
        return before

    async def delete(self, name: str) -> bool:
        return self.docs.pop(name, None) is not None


class MemorySites:
    def __init__(self) -> None:
        self.docs: dict[str, Site] = {}

    async def get(self, site_id: str) -> Site | None:
        return self.docs.get(site_id)

    async def search(self, limit: int, after: str | None) -> Page[Site]:
        return _page(list(self.docs.values()), "site_id", limit, after)

    async def insert(self, site: Site) -> bool:
        if site.site_id in self.docs:
            return False
        self.docs[site.site_id] = site
        return True

    async def replace(self, site: Site) -> None:
        self.docs[site.site_id] = site

    async def delete(self, site_id: str) -> bool:
        return self.docs.pop(site_id, None) is not None


class MemoryNodes:
    def __init__(self) -> None:
        self.docs: dict[str, Node] = {}

    async def get(self, node_id: str) -> Node | None:
        return self.docs.get(node_id)

    async def search(self, site_id: str | None, limit: int, after: str | None) -> Page[Node]:
        items = [n for n in self.docs.values() if site_id is None or n.site_id == site_id]
        return _page(items, "node_id", limit, after)

    async def insert(self, node: Node) -> bool:
        if node.node_id in self.docs:
            return False
        self.docs[node.node_id] = node
        return True

    async def replace(self, node: Node) -> None:
        self.docs[node.node_id] = node

    async def delete(self, node_id: str) -> bool:
        return self.docs.pop(node_id, None) is not None

    async def count_on_site(self, site_id: str) -> int:
        return sum(1 for n in self.docs.values() if n.site_id == site_id)


class MemoryMirror:
    def __init__(self) -> None:
        self.tenants: dict[str, str] = {}
        self.placements: dict[str, TenantPlacement] = {}
        self.clusters: dict[str, str] = {}
        # Writes of a tenant's record fail while this is set (NATS away).
        self.broken = False

    async def put_tenant(self, tenant: Tenant) -> None:
        if self.broken:
            raise Unavailable("KV away")
        self.tenants[tenant.tenant_id] = tenant.status.value

    async def delete_tenant(self, tenant_id: str) -> None:
        self.tenants.pop(tenant_id, None)

    async def put_placement(self, tenant_id: str, placement: TenantPlacement) -> None:
        self.placements[tenant_id] = placement

    async def delete_placement(self, tenant_id: str) -> None:
        self.placements.pop(tenant_id, None)

    async def put_cluster(self, name: str, uri: str) -> None:
        self.clusters[name] = uri

    async def delete_cluster(self, name: str) -> None:
        self.clusters.pop(name, None)

    async def tenant_keys(self) -> set[str]:
        return set(self.tenants)

    async def placement_keys(self) -> tuple[set[str], set[str]]:
        return set(self.placements), set(self.clusters)


@dataclass
class MemoryPlacementMap:
    registered: dict[str, str] = field(default_factory=dict)
    placed: dict[str, TenantPlacement] = field(default_factory=dict)

    def register_cluster(self, name: str, uri: str) -> None:
        self.registered[name] = uri

    async def wait_placed(self, tenant_id: str, placement: TenantPlacement) -> None:
        self.placed[tenant_id] = placement


class MemoryQuotas:
    def __init__(self) -> None:
        self.limits: dict[tuple[str, QuotaKind], int | None] = {}
        self.used: dict[tuple[str, QuotaKind], int] = {}

    async def set_limit(self, tenant_id: str, kind: QuotaKind, limit: int | None) -> QuotaUsage:
        self.limits[tenant_id, kind] = limit
        return QuotaUsage(self.used.get((tenant_id, kind), 0), limit)

    async def usage(self, tenant_id: str) -> dict[QuotaKind, QuotaUsage]:
        return {
            k: QuotaUsage(self.used.get((tenant_id, k), 0), self.limits.get((tenant_id, k)))
            for k in QuotaKind
        }

    async def forget(self, tenant_id: str) -> None:
        for store in (self.limits, self.used):
            for key in [k for k in store if k[0] == tenant_id]:
                del store[key]


class MemoryEvents:
    def __init__(self) -> None:
        self.published: list[tuple[str, str, object]] = []

    def names(self, tenant_id: str) -> list[str]:
        return [name for name, tenant, _ in self.published if tenant == tenant_id]

    async def created(self, tenant: Tenant) -> None:
        self.published.append(("created", tenant.tenant_id, None))

    async def updated(self, tenant: Tenant, changed: Sequence[str]) -> None:
        self.published.append(("updated", tenant.tenant_id, list(changed)))

    async def suspended(self, tenant: Tenant, by: str) -> None:
        self.published.append(("suspended", tenant.tenant_id, by))

    async def resumed(self, tenant: Tenant, by: str) -> None:
        self.published.append(("resumed", tenant.tenant_id, by))

    async def deleted(self, tenant: Tenant, by: str) -> None:
        self.published.append(("deleted", tenant.tenant_id, by))

    async def restored(self, tenant: Tenant, by: str) -> None:
        self.published.append(("restored", tenant.tenant_id, by))

    async def numbers_changed(
        self, tenant_id: str, added: Sequence[str], removed: Sequence[str]
    ) -> None:
        self.published.append(("numbers_changed", tenant_id, (list(added), list(removed))))


class MemoryData:
    def __init__(self) -> None:
        self.documents: dict[str, int] = {}
        self.broken = False

    async def purge(self, tenant_id: str, placement: TenantPlacement) -> Mapping[str, int]:
        if self.broken:
            raise Unavailable("Mongo away")
        return {"users": self.documents.pop(tenant_id, 0)}


class MemoryHeartbeats:
    def __init__(self) -> None:
        self.beats: dict[str, Heartbeat] = {}
        self.broken = False

    async def latest(self, node_ids: Sequence[str]) -> dict[str, Heartbeat | None]:
        if self.broken:
            raise Unavailable("bus away")
        return {n: self.beats.get(n) for n in node_ids}


class MemoryAuditLog:
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    async def append(self, entry: AuditEntry) -> None:
        self.entries.append(entry)

    async def search(self, query: AuditQuery) -> Page[AuditEntry]:
        found = [
            e
            for e in reversed(self.entries)
            if (query.tenant_id is None or e.tenant_id == query.tenant_id)
            and (query.action_prefix is None or e.action.startswith(query.action_prefix))
            and (query.target_id is None or e.target_id == query.target_id)
        ]
        return Page(found[: query.limit])


@dataclass
class World:
    clock: Clock = field(default_factory=Clock)
    tenants: MemoryTenants = field(default_factory=MemoryTenants)
    numbers: MemoryNumbers = field(default_factory=MemoryNumbers)
    clusters: MemoryClusters = field(default_factory=MemoryClusters)
    sites: MemorySites = field(default_factory=MemorySites)
    nodes: MemoryNodes = field(default_factory=MemoryNodes)
    mirror: MemoryMirror = field(default_factory=MemoryMirror)
    placement: MemoryPlacementMap = field(default_factory=MemoryPlacementMap)
    quotas: MemoryQuotas = field(default_factory=MemoryQuotas)
    events: MemoryEvents = field(default_factory=MemoryEvents)
    data: MemoryData = field(default_factory=MemoryData)
    heartbeats: MemoryHeartbeats = field(default_factory=MemoryHeartbeats)
    log: MemoryAuditLog = field(default_factory=MemoryAuditLog)

    def __post_init__(self) -> None:
        auditor = Auditor(self.log, self.clock)
        self.admin = TenantAdmin(
            self.tenants, self.clusters, self.numbers, self.mirror, self.placement, self.quotas,
            self.events, self.data, auditor, self.clock,
            default_database="callmesh", retention=timedelta(days=30),
        )  # fmt: skip
        self.number_admin = NumberAdmin(
            self.numbers, self.tenants, self.events, auditor, self.clock, range_max=100
        )
        self.cluster_admin = ClusterAdmin(
            self.clusters, self.tenants, self.mirror, self.placement, auditor, self.clock
        )
        self.site_admin = SiteAdmin(self.sites, self.nodes, self.heartbeats, auditor, self.clock)

    def status(self, tenant_id: str) -> Lifecycle:
        return self.tenants.docs[tenant_id].status

    def actions(self, tenant_id: str | None = "acme") -> list[str]:
        return [e.action for e in self.log.entries if e.tenant_id == tenant_id]


@pytest.fixture
def world() -> World:
    return World()


def spec(slug: str = "acme", **kwargs: object) -> NewTenant:
    return NewTenant(slug=slug, name=slug.title(), language="en", time_zone="UTC", **kwargs)  # type: ignore[arg-type]


# --- creation and reconciliation -----------------------------------------------------------------


async def test_a_created_tenant_is_mirrored_announced_audited_and_active(world: World) -> None:
    tenant = await world.admin.create(OPERATOR, spec(quotas=check_limits({"calls_pstn": 5})))
    assert tenant.status is Lifecycle.ACTIVE
    assert world.tenants.docs["acme"].status is Lifecycle.ACTIVE
    assert world.mirror.tenants == {"acme": "active"}
    assert world.mirror.placements == {"acme": TenantPlacement("default", "callmesh")}
    assert world.placement.placed == {"acme": TenantPlacement("default", "callmesh")}
    assert world.quotas.limits["acme", QuotaKind.CALLS_PSTN] == 5
    assert world.quotas.limits["acme", QuotaKind.CALLS_SIP] is None
    assert world.events.names("acme") == ["created"]
    assert world.actions() == ["tenant.create"]
    assert world.log.entries[0].actor == OPERATOR


async def test_a_taken_slug_is_a_conflict_and_writes_nothing(world: World) -> None:
    await world.admin.create(OPERATOR, spec())
    with pytest.raises(Conflict, match="taken"):
        await world.admin.create(OPERATOR, spec(encryption_at_rest=True))
    assert world.events.names("acme") == ["created"]
    assert not world.tenants.docs["acme"].encryption_at_rest


async def test_a_placement_on_an_unknown_cluster_is_refused_before_anything_is_written(
    world: World,
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await world.admin.create(OPERATOR, spec(placement=TenantPlacement("eu-2", "acme")))
    assert caught.value.field == "placement.cluster"
    assert world.tenants.docs == {}
    assert world.mirror.placements == {}


async def test_a_creation_cut_short_is_finished_by_the_next_reconciliation(world: World) -> None:
    world.mirror.broken = True
    with pytest.raises(Unavailable):
        await world.admin.create(OPERATOR, spec())
    assert world.status("acme") is Lifecycle.PROVISIONING
    assert world.mirror.tenants == {}
    world.mirror.broken = False
    done = await world.admin.reconcile()
    assert done["provisioned"] == 1
    assert world.status("acme") is Lifecycle.ACTIVE
    assert world.mirror.tenants == {"acme": "active"}
    assert world.events.names("acme") == ["created"]
    entry = world.log.entries[-1]
    assert (entry.action, entry.actor.kind) == ("tenant.create", ActorKind.SYSTEM)
    assert "op-1" in entry.detail


async def test_the_retry_of_a_creation_cut_short_finishes_it(world: World) -> None:
    world.mirror.broken = True
    with pytest.raises(Unavailable):
        await world.admin.create(OPERATOR, spec())
    world.mirror.broken = False
    with pytest.raises(Conflict, match="other settings"):
        await world.admin.create(OPERATOR, spec(encryption_at_rest=True))
    tenant = await world.admin.create(OPERATOR, spec())
    assert tenant.status is Lifecycle.ACTIVE
    assert world.mirror.tenants == {"acme": "active"}
    assert world.actions() == ["tenant.create"]


async def test_reconciliation_rewrites_lost_records_and_drops_stale_ones(world: World) -> None:
    await world.admin.create(OPERATOR, spec())
    await world.cluster_admin.put(OPERATOR, "eu", "mongodb://eu:27017")
    world.mirror.tenants.clear()
    world.mirror.clusters.clear()
    world.mirror.tenants["ghost"] = "active"
    world.mirror.placements["ghost"] = TenantPlacement("default", "x")
    world.mirror.clusters["old"] = "mongodb://old"
    done = await world.admin.reconcile()
    assert world.mirror.tenants == {"acme": "active"}
    assert set(world.mirror.placements) == {"acme"}
    assert world.mirror.clusters == {"eu": "mongodb://eu:27017"}
    assert done["stale_keys"] == 3


# --- changes -------------------------------------------------------------------------------------


async def test_an_update_is_stored_mirrored_audited_and_announced(world: World) -> None:
    await world.admin.create(OPERATOR, spec())
    world.clock.now = T0 + timedelta(minutes=1)
    updated = await world.admin.update(
        OPERATOR, "acme", TenantChanges(language="zh-CN", time_zone="Asia/Shanghai"), 2
    )
    assert (updated.language, updated.version) == ("zh-CN", 3)
    assert world.events.published[-1] == ("updated", "acme", ["language", "time_zone"])
    entry = world.log.entries[-1]
    assert entry.action == "tenant.update"
    assert entry.changes == ("language", "time_zone", "updated_at", "version")


async def test_a_stale_if_match_is_refused_and_a_lost_race_is_retried(world: World) -> None:
    await world.admin.create(OPERATOR, spec())
    with pytest.raises(VersionMismatch):
        await world.admin.update(OPERATOR, "acme", TenantChanges(name="X"), 1)
    world.tenants.lose_races = 2
    updated = await world.admin.update(OPERATOR, "acme", TenantChanges(name="Acme 2"))
    assert updated.name == "Acme 2"
    assert world.tenants.docs["acme"].name == "Acme 2"


async def test_an_unchanged_update_repairs_the_mirror_without_an_event(world: World) -> None:
    await world.admin.create(OPERATOR, spec())
    world.mirror.tenants.clear()
    await world.admin.update(OPERATOR, "acme", TenantChanges(name="Acme"))
    assert world.mirror.tenants == {"acme": "active"}
    assert world.events.names("acme") == ["created"]


async def test_suspension_and_resumption_are_mirrored_and_announced_once(world: World) -> None:
    await world.admin.create(OPERATOR, spec())
    await world.admin.suspend(OPERATOR, "acme", "unpaid")
    await world.admin.suspend(OPERATOR, "acme", "unpaid")
    assert world.mirror.tenants == {"acme": "suspended"}
    await world.admin.resume(OPERATOR, "acme")
    await world.admin.resume(OPERATOR, "acme")
    assert world.mirror.tenants == {"acme": "active"}
    assert world.events.names("acme") == ["created", "suspended", "resumed"]
    assert world.actions() == ["tenant.create", "tenant.suspend", "tenant.resume"]


async def test_quota_limits_are_stored_applied_and_reported_with_usage(world: World) -> None:
    await world.admin.create(OPERATOR, spec())
    world.quotas.used["acme", QuotaKind.CALLS_WEB] = 2
    lines = await world.admin.set_quotas(OPERATOR, "acme", check_limits({"calls_web": 3}))
    assert (lines[QuotaKind.CALLS_WEB].limit, lines[QuotaKind.CALLS_WEB].used) == (3, 2)
    assert world.quotas.limits["acme", QuotaKind.CALLS_WEB] == 3
    assert world.events.published[-1] == ("updated", "acme", ["quotas"])
    assert world.log.entries[-1].action == "quota.update"
    own = await world.admin.own_quotas("acme")
    assert own[QuotaKind.CALLS_WEB].used == 2


async def test_placement_cannot_change_and_the_refusal_is_audited(world: World) -> None:
    await world.admin.create(OPERATOR, spec())
    same = TenantPlacement("default", "callmesh")
    assert await world.admin.set_placement(OPERATOR, "acme", same) == same
    with pytest.raises(Conflict, match="not migrated"):
        await world.admin.set_placement(OPERATOR, "acme", TenantPlacement("default", "other"))
    assert world.log.entries[-1].outcome == "refused"


async def test_the_tenants_own_settings_change_only_language_and_time_zone(world: World) -> None:
    await world.admin.create(OPERATOR, spec())
    changed = await world.admin.update_settings(ACME_ADMIN, "acme", "zh-TW", None)
    assert changed.language == "zh-TW"
    entry = world.log.entries[-1]
    assert (entry.action, entry.actor) == ("settings.update", ACME_ADMIN)
    await world.admin.delete(OPERATOR, "acme")
    with pytest.raises(NotFound):
        await world.admin.settings("acme")
    with pytest.raises(NotFound):
        await world.admin.update_settings(ACME_ADMIN, "acme", "en", None)


# --- deletion, restore and purge ---------------------------------------------------------------


async def test_a_deleted_tenant_is_restorable_within_retention(world: World) -> None:
    await world.admin.create(OPERATOR, spec())
    deleted = await world.admin.delete(OPERATOR, "acme")
    assert deleted.purge_after == T0 + timedelta(days=30)
    assert world.mirror.tenants == {"acme": "deleted"}
    world.clock.now = T0 + timedelta(days=29)
    restored = await world.admin.restore(OPERATOR, "acme")
    assert restored.status is Lifecycle.ACTIVE
    assert world.mirror.tenants == {"acme": "active"}
    assert world.events.names("acme") == ["created", "deleted", "restored"]


async def test_the_purge_removes_everything_of_the_tenant_past_retention(world: World) -> None:
    await world.admin.create(OPERATOR, spec())
    await world.admin.create(OPERATOR, spec("globex"))
    await world.number_admin.assign(OPERATOR, "acme", ["+33100"])
    await world.number_admin.assign(OPERATOR, "globex", ["+33200"])
    world.data.documents["acme"] = 7
    await world.admin.delete(OPERATOR, "acme")
    assert await world.admin.purge_due() == []
    world.clock.now = T0 + timedelta(days=30)
    assert await world.admin.purge_due() == ["acme"]
    assert set(world.tenants.docs) == {"globex"}
    assert set(world.numbers.docs) == {"+33200"}
    assert "acme" not in world.mirror.tenants
    assert "acme" not in world.mirror.placements
    assert not any(key[0] == "acme" for key in world.quotas.limits)
    entry = world.log.entries[-1]
    assert (entry.action, entry.actor.kind) == ("tenant.purge", ActorKind.SYSTEM)
    assert "7 documents and 1 numbers" in entry.detail


async def test_a_purge_cut_short_cannot_be_restored_and_is_finished_next_time(
    world: World,
) -> None:
    await world.admin.create(OPERATOR, spec())
    await world.admin.delete(OPERATOR, "acme")
    world.clock.now = T0 + timedelta(days=31)
    world.data.broken = True
    assert await world.admin.purge_due() == []
    assert world.tenants.docs["acme"].purging
    with pytest.raises(Conflict, match="purged"):
        await world.admin.restore(OPERATOR, "acme")
    world.data.broken = False
    assert await world.admin.purge_due() == ["acme"]
    assert world.tenants.docs == {}


# --- numbers -------------------------------------------------------------------------------------


async def test_numbers_are_normalized_and_assigned_all_or_none(world: World) -> None:
    await world.admin.create(OPERATOR, spec())
    await world.admin.create(OPERATOR, spec("globex"))
    wanted = world.number_admin.requested(["+33 1 00", "+33-101"], None, None)
    await world.number_admin.assign(OPERATOR, "acme", wanted, "main")
    assert world.events.published[-1] == ("numbers_changed", "acme", (["+33100", "+33101"], []))
    with pytest.raises(Conflict) as caught:
        await world.number_admin.assign(OPERATOR, "globex", ["+33101", "+33102"])
    assert "+33101 (acme)" in caught.value.message
    assert "+33102" not in world.numbers.docs
    # Assigning again what the tenant owns is a no-op, so a retried request succeeds.
    assert await world.number_admin.assign(OPERATOR, "acme", ["+33100"]) == []


async def test_a_race_lost_on_insert_is_a_conflict_with_nothing_written(world: World) -> None:
    await world.admin.create(OPERATOR, spec())
    world.numbers.stolen = {"+33105": "globex"}
    wanted = world.number_admin.requested(None, "+33100", "+33109")
    with pytest.raises(Conflict, match=r"\+33105 \(globex\)"):
        await world.number_admin.assign(OPERATOR, "acme", wanted)
    assert set(world.numbers.docs) == {"+33105"}
    assert world.events.names("acme") == ["created"]


async def test_a_request_names_numbers_or_a_range_and_says_which_is_wrong(world: World) -> None:
    with pytest.raises(InvalidInput) as caught:
        world.number_admin.requested(["+33100", "x1"], None, None)
    assert caught.value.field == "numbers.1"
    with pytest.raises(InvalidInput) as caught:
        world.number_admin.requested(["1"], "1", "2")
    assert caught.value.field == "numbers"
    with pytest.raises(InvalidInput) as caught:
        world.number_admin.requested(None, "100", "400")
    assert caught.value.field == "range"


async def test_a_release_takes_only_the_tenants_own_numbers(world: World) -> None:
    await world.admin.create(OPERATOR, spec())
    await world.admin.create(OPERATOR, spec("globex"))
    await world.number_admin.assign(OPERATOR, "acme", ["+33100", "+33101"])
    await world.number_admin.assign(OPERATOR, "globex", ["+33200"])
    with pytest.raises(InvalidInput, match=r"\+33200"):
        await world.number_admin.release(OPERATOR, "acme", ["+33100", "+33200"])
    assert set(world.numbers.docs) == {"+33100", "+33101", "+33200"}
    with pytest.raises(NotFound):
        await world.number_admin.release_one(OPERATOR, "acme", "+33200")
    await world.number_admin.release_one(OPERATOR, "acme", "+33 100")
    assert world.events.published[-1] == ("numbers_changed", "acme", ([], ["+33100"]))


async def test_a_lookup_finds_visible_tenants_only(world: World) -> None:
    await world.admin.create(OPERATOR, spec())
    await world.number_admin.assign(OPERATOR, "acme", ["+33100"])
    found = await world.number_admin.lookup("+33 (1) 00")
    assert (found.found, found.tenant_id, found.tenant_status) == (True, "acme", "active")
    await world.admin.suspend(OPERATOR, "acme", "x")
    assert (await world.number_admin.lookup("+33100")).tenant_status == "suspended"
    await world.admin.delete(OPERATOR, "acme")
    gone = await world.number_admin.lookup("+33100")
    assert (gone.found, gone.number, gone.tenant_id) == (False, "+33100", "")
    assert not (await world.number_admin.lookup("+44100")).found


async def test_a_tenant_sees_its_own_numbers_only(world: World) -> None:
    await world.admin.create(OPERATOR, spec())
    await world.admin.create(OPERATOR, spec("globex"))
    await world.number_admin.assign(OPERATOR, "acme", ["+33100"])
    await world.number_admin.assign(OPERATOR, "globex", ["+33200"])
    page = await world.number_admin.search_own("acme", NumberQuery(tenant_id="globex"))
    assert [a.number for a in page.items] == ["+33100"]
    with pytest.raises(NotFound):
        await world.number_admin.get_own("acme", "+33200")
    with pytest.raises(NotFound):
        await world.number_admin.get_own("acme", "not a number")


# --- clusters, sites, nodes, refusals ------------------------------------------------------------


async def test_a_cluster_holding_tenants_cannot_be_deleted(world: World) -> None:
    _, created = await world.cluster_admin.put(OPERATOR, "eu", "mongodb://u:pw@eu:27017")
    assert created
    assert world.placement.registered == {"eu": "mongodb://u:pw@eu:27017"}
    await world.admin.create(OPERATOR, spec(placement=TenantPlacement("eu", "acme")))
    with pytest.raises(Conflict, match="not migrated"):
        await world.cluster_admin.delete(OPERATOR, "eu")
    entry = world.log.entries[0]
    assert (entry.action, entry.after) == ("cluster.create", {"name": "eu", "uri": "***"})
    with pytest.raises(InvalidInput):
        await world.cluster_admin.put(OPERATOR, "default", "mongodb://x")
    with pytest.raises(InvalidInput):
        await world.cluster_admin.put(OPERATOR, "eu", "http://x")


async def test_a_site_with_nodes_cannot_be_deleted(world: World) -> None:
    await world.site_admin.create_site(OPERATOR, "paris", "Paris", "", "eu-west", "")
    with pytest.raises(InvalidInput) as caught:
        await world.site_admin.create_node(
            OPERATOR, "fs-1", "lyon", ["10.0.0.1"], "10.0.0.1", 8021, "branch", ""
        )
    assert caught.value.field == "site_id"
    await world.site_admin.create_node(
        OPERATOR, "fs-1", "paris", ["10.0.0.1"], "10.0.0.1", 8021, "central", ""
    )
    with pytest.raises(Conflict, match="1 node"):
        await world.site_admin.delete_site(OPERATOR, "paris")
    await world.site_admin.delete_node(OPERATOR, "fs-1")
    await world.site_admin.delete_site(OPERATOR, "paris")
    assert world.actions(None) == [
        "site.create", "node.create", "node.delete", "site.delete",
    ]  # fmt: skip


async def test_node_health_comes_from_heartbeats_and_is_unknown_when_unreadable(
    world: World,
) -> None:
    await world.site_admin.create_site(OPERATOR, "paris", "Paris", "", "", "")
    node = await world.site_admin.create_node(
        OPERATOR, "fs-1", "paris", ["10.0.0.1"], "10.0.0.1", 8021, "central", ""
    )
    world.heartbeats.beats["fs-1"] = Heartbeat("fs-1", "paris", "1.10", True, 3, 1, 60, T0)
    assert (await world.site_admin.statuses([node]))["fs-1"].state is NodeState.UP
    world.heartbeats.broken = True
    assert (await world.site_admin.statuses([node]))["fs-1"].state is NodeState.UNKNOWN


async def test_a_quota_refusal_is_audited_once_per_event(world: World) -> None:
    for _ in range(2):
        await world.admin.record_refusal(
            "ev-1", "acme", kind="calls_pstn", limit=2, used=2, requested=1, service="acd"
        )
    refusals = [e for e in world.log.entries if e.action == "quota.refuse"]
    assert len(refusals) == 1
    assert (refusals[0].actor.subject, refusals[0].outcome) == ("acd", "refused")
