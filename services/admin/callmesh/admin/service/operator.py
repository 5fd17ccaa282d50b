"""The operator use cases: tenants and their lifecycle, quotas, placement, numbers, sites, nodes.

Mongo is the source of truth; the KV records every other service reads (``tenants``,
``placement``, the quota limits) mirror it. Every use case writes Mongo first, then the mirrors,
then the audit entry, then the event, so a failure part-way leaves Mongo ahead of KV: the next
attempt of the same request (every change here is idempotent) or the reconciliation that runs at
start and every few minutes (``OperatorJobs``) writes the mirrors again from Mongo.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from callmesh.admin.domain import numbers as number_rules
from callmesh.admin.domain import sites as site_rules
from callmesh.admin.domain import tenants as rules
from callmesh.admin.domain.common import Actor, Page
from callmesh.admin.domain.numbers import NumberAssignment
from callmesh.admin.domain.quotas import Limits, QuotaLine, report
from callmesh.admin.domain.sites import Node, NodeStatus, Site
from callmesh.admin.domain.tenants import (
    DEFAULT_CLUSTER,
    Lifecycle,
    NewTenant,
    Tenant,
    TenantChanges,
    TenantPlacement,
)
from callmesh.admin.ports.audit import AuditQuery
from callmesh.admin.ports.operator import (
    Cluster,
    ClusterRepository,
    Heartbeats,
    NodeRepository,
    NumberQuery,
    NumberRepository,
    PlacementMap,
    QuotaBook,
    SiteRepository,
    TenantData,
    TenantEvents,
    TenantMirror,
    TenantQuery,
    TenantRepository,
)
from callmesh.admin.service.audit import Auditor
from callmesh.admin.service.context import AdminContext
from callmesh.core import telemetry
from callmesh.core.errors import Conflict, DomainError, InvalidInput, NotFound, Unavailable
from callmesh.core.quotas import QuotaKind
from callmesh.core.runtime import Runtime
from callmesh.core.tenancy import normalize_number

log = logging.getLogger(__name__)

X = TypeVar("X")

MAX_PAGE = 500
# A change that keeps losing the optimistic-concurrency race (without If-Match) gives up after
# this many tries: someone else is changing the tenant in a loop.
_ATTEMPTS = 5
# Reconciliation and purges run at start and then this often (the purge needs no precision:
# retention is counted in days).
_RECONCILER = Actor.system("admin.reconcile")
_RETENTION = Actor.system("admin.retention")


def millisecond_clock(clock: Callable[[], datetime]) -> Callable[[], datetime]:
    """``clock`` to the millisecond, as MongoDB keeps times: what a use case returns is what a
    later read returns."""

    def now() -> datetime:
        at = clock()
        return at.replace(microsecond=at.microsecond // 1000 * 1000)

    return now


def _same_request(stored: Tenant, new: Tenant) -> bool:
    """Whether ``new`` asks for the tenant ``stored`` was being provisioned as."""
    return stored.status is Lifecycle.PROVISIONING and all(
        getattr(stored, name) == getattr(new, name)
        for name in ("name", "language", "time_zone", "encryption_at_rest", "placement", "quotas")
    )


def _check_page(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("limit", f"must be between 1 and {MAX_PAGE}")


@dataclass(frozen=True)
class NumberLookupResult:
    """Who owns a dialled number (numbers of deleted or unknown tenants are not found)."""

    found: bool
    number: str
    tenant_id: str = ""
    tenant_status: str = ""
    language: str = ""
    time_zone: str = ""


class _Metrics:
    def __init__(self) -> None:
        self.lookups = telemetry.counter(
            "callmesh_admin_number_lookups_total",
            "Number look-ups answered by admin, by outcome (found, not_found)",
            ["outcome"],
        )
        self.purges = telemetry.counter(
            "callmesh_admin_tenant_purges_total",
            "Tenants purged after their retention period, by outcome (ok, failed)",
            ["outcome"],
        )
        self.repairs = telemetry.counter(
            "callmesh_admin_reconcile_repairs_total",
            "Mirrors repaired by reconciliation (stale KV keys removed, provisioning finished)",
            ["what"],
        )
        self.tenants = telemetry.gauge(
            "callmesh_admin_tenants", "Tenants in admin's database, by lifecycle status", ["status"]
        )


class TenantAdmin:
    """Tenants: create, read, list, update, suspend, resume, delete, restore, purge; their quota
    limits, placement and settings; and the reconciliation of the KV mirrors with Mongo."""

    def __init__(
        self,
        tenants: TenantRepository,
        clusters: ClusterRepository,
        numbers: NumberRepository,
        mirror: TenantMirror,
        placement: PlacementMap,
        quotas: QuotaBook,
        events: TenantEvents,
        data: TenantData,
        auditor: Auditor,
        clock: Callable[[], datetime],
        *,
        default_database: str,
        retention: timedelta,
    ) -> None:
        self._tenants = tenants
        self._clusters = clusters
        self._numbers = numbers
        self._mirror = mirror
        self._placement = placement
        self._quotas = quotas
        self._events = events
        self._data = data
        self._audit = auditor
        self._clock = millisecond_clock(clock)
        self._default_database = default_database
        self._retention = retention
        self._metrics = _Metrics()

    # -- reads ----------------------------------------------------------------------------------

    async def get(self, tenant_id: str) -> Tenant:
        """A tenant in any state (operator view)."""
        return rules.existing(await self._tenants.get(tenant_id), tenant_id)

    async def search(self, query: TenantQuery) -> Page[Tenant]:
        """One page of tenants."""
        _check_page(query.limit)
        return await self._tenants.search(query)

    async def settings(self, tenant_id: str) -> Tenant:
        """The tenant's own view of itself (read through its wall; unknown unless visible)."""
        return rules.visible_or_not_found(await self._tenants.get_own(tenant_id), tenant_id)

    async def quotas(self, tenant_id: str) -> dict[QuotaKind, QuotaLine]:
        """Current usage next to each limit (operator view: any state)."""
        tenant = await self.get(tenant_id)
        return await self._report(tenant)

    async def own_quotas(self, tenant_id: str) -> dict[QuotaKind, QuotaLine]:
        """The tenant's own quota report."""
        return await self._report(await self.settings(tenant_id))

    async def _report(self, tenant: Tenant) -> dict[QuotaKind, QuotaLine]:
        usage = await self._quotas.usage(tenant.tenant_id)
        # Limits from Mongo (the truth); counts from KV (where services keep them).
        return report(tenant.quotas, {kind: u.used for kind, u in usage.items()})

    # -- creation -------------------------------------------------------------------------------

    async def create(self, actor: Actor, spec: NewTenant) -> Tenant:
        """Create a tenant: stored as ``provisioning``, mirrored, announced, then ``active``."""
        placement = rules.check_placement(spec.placement, self._default_database)
        tenant = rules.new_tenant(spec, placement, self._clock(), created_by=actor.subject)
        await self._check_cluster(placement.cluster)
        if not await self._tenants.insert(tenant):
            taken = await self._tenants.get(tenant.tenant_id)
            if taken is not None and _same_request(taken, tenant):
                # The retry of a creation cut short: finish it rather than refuse it.
                active = await self._provision(taken)
                await self._audit.record(
                    actor, "tenant.create", "tenant", active.tenant_id,
                    tenant_id=active.tenant_id, after=active.record(),
                    detail="finished on a retry of the request",
                )  # fmt: skip
                return active
            raise (
                rules.slug_taken(taken)
                if taken
                else Conflict(f"slug {tenant.tenant_id} is taken", field="slug")
            )
        active = await self._provision(tenant)
        await self._audit.record(
            actor, "tenant.create", "tenant", active.tenant_id,
            tenant_id=active.tenant_id, after=active.record(),
        )  # fmt: skip
        return active

    async def _check_cluster(self, name: str) -> None:
        if name != DEFAULT_CLUSTER and await self._clusters.get(name) is None:
            raise InvalidInput(
                "placement.cluster",
                "must name a registered cluster",
                f"placement.cluster: no cluster {name}: register it first "
                f"(PUT /v1/operator/clusters/{name})",
            )

    async def _provision(self, tenant: Tenant) -> Tenant:
        """Mirror a provisioning tenant, announce it, make it active (each step idempotent)."""
        await self._mirror.put_placement(tenant.tenant_id, tenant.placement)
        # Admin's own store must resolve the placement before anyone may write the tenant's data.
        await self._placement.wait_placed(tenant.tenant_id, tenant.placement)
        await self._apply_limits(tenant)
        active = rules.activate(tenant, self._clock())
        await self._mirror.put_tenant(active)
        await self._events.created(active)
        if await self._tenants.replace(active, tenant.version):
            return active
        # Someone finished it first (a reconciliation on another replica).
        return rules.existing(await self._tenants.get(tenant.tenant_id), tenant.tenant_id)

    async def _apply_limits(self, tenant: Tenant) -> None:
        for kind in QuotaKind:
            await self._quotas.set_limit(tenant.tenant_id, kind, tenant.quotas.get(kind))

    async def _mirror_all(self, tenant: Tenant) -> None:
        await self._mirror.put_placement(tenant.tenant_id, tenant.placement)
        await self._apply_limits(tenant)
        if tenant.status is not Lifecycle.PROVISIONING:
            await self._mirror.put_tenant(tenant)

    # -- changes --------------------------------------------------------------------------------

    async def _change(
        self, tenant_id: str, decide: Callable[[Tenant], tuple[Tenant, X]]
    ) -> tuple[Tenant, Tenant, X]:
        """Load, decide, store if still at the version read; retried when someone else won."""
        for _ in range(_ATTEMPTS):
            before = rules.existing(await self._tenants.get(tenant_id), tenant_id)
            after, outcome = decide(before)
            if after.version == before.version or await self._tenants.replace(
                after, before.version
            ):
                return before, after, outcome
        raise Conflict(
            f"tenant {tenant_id} keeps changing under this request: retry", reason="contended"
        )

    async def update(
        self, actor: Actor, tenant_id: str, changes: TenantChanges, if_match: int | None = None
    ) -> Tenant:
        """Change name, language, time zone or switch encryption on (``If-Match`` honored)."""
        before, after, changed = await self._change(
            tenant_id, lambda t: rules.update(t, changes, self._clock(), if_match)
        )
        return await self._after_update(actor, "tenant.update", before, after, changed)

    async def update_settings(
        self, actor: Actor, tenant_id: str, language: str | None, time_zone: str | None
    ) -> Tenant:
        """The tenant's own change of its language and time zone."""
        await self.settings(tenant_id)  # through the wall: unknown unless visible
        changes = TenantChanges(language=language, time_zone=time_zone)
        before, after, changed = await self._change(
            tenant_id, lambda t: rules.update(t, changes, self._clock())
        )
        return await self._after_update(actor, "settings.update", before, after, changed)

    async def _after_update(
        self, actor: Actor, action: str, before: Tenant, after: Tenant, changed: list[str]
    ) -> Tenant:
        # Written even when nothing changed: re-sending a request repairs a mirror it left stale.
        if after.status is not Lifecycle.PROVISIONING:
            await self._mirror.put_tenant(after)
        if changed:
            await self._audit.record(
                actor, action, "tenant", after.tenant_id, tenant_id=after.tenant_id,
                before=before.record(), after=after.record(),
            )  # fmt: skip
            await self._events.updated(after, changed)
        return after

    async def set_quotas(
        self, actor: Actor, tenant_id: str, limits: Limits, if_match: int | None = None
    ) -> dict[QuotaKind, QuotaLine]:
        """Replace every quota limit of a tenant (None: unlimited); returns the usage report."""
        before, after, changed = await self._change(
            tenant_id, lambda t: rules.with_quotas(t, limits, self._clock(), if_match)
        )
        await self._apply_limits(after)
        if changed:
            await self._audit.record(
                actor, "quota.update", "tenant", after.tenant_id, tenant_id=after.tenant_id,
                before={"quotas": before.record()["quotas"]},
                after={"quotas": after.record()["quotas"]},
            )  # fmt: skip
            await self._events.updated(after, ["quotas"])
        return await self._report(after)

    async def set_placement(
        self, actor: Actor, tenant_id: str, placement: TenantPlacement
    ) -> TenantPlacement:
        """Placement is fixed at creation: the same one is accepted, any other refused (409)."""
        tenant = await self.get(tenant_id)
        if placement != tenant.placement:
            await self._audit.record(
                actor, "tenant.placement", "tenant", tenant_id, tenant_id=tenant_id,
                outcome="refused", detail="placement is fixed at creation (data is not migrated)",
            )  # fmt: skip
            raise rules.placement_is_fixed(tenant)
        await self._mirror.put_placement(tenant_id, tenant.placement)
        return tenant.placement

    async def suspend(self, actor: Actor, tenant_id: str, reason: str) -> Tenant:
        """Suspend: the tenant's API becomes read-only and services refuse new work."""
        before, after, fresh = await self._change(
            tenant_id, lambda t: rules.suspend(t, reason, self._clock())
        )
        await self._mirror.put_tenant(after)
        if after is not before:
            await self._audit.record(
                actor, "tenant.suspend", "tenant", tenant_id, tenant_id=tenant_id,
                before=before.record(), after=after.record(), detail=after.status_reason,
            )  # fmt: skip
        if fresh:
            await self._events.suspended(after, actor.subject)
        return after

    async def resume(self, actor: Actor, tenant_id: str) -> Tenant:
        """Resume a suspended tenant."""
        before, after, fresh = await self._change(
            tenant_id, lambda t: rules.resume(t, self._clock())
        )
        await self._mirror.put_tenant(after)
        if fresh:
            await self._audit.record(
                actor, "tenant.resume", "tenant", tenant_id, tenant_id=tenant_id,
                before=before.record(), after=after.record(),
            )  # fmt: skip
            await self._events.resumed(after, actor.subject)
        return after

    async def delete(self, actor: Actor, tenant_id: str) -> Tenant:
        """Soft-delete: gone for everyone now, purged after the retention period."""
        before, after, fresh = await self._change(
            tenant_id, lambda t: rules.delete(t, self._clock(), self._retention)
        )
        await self._mirror.put_tenant(after)
        if fresh:
            await self._audit.record(
                actor, "tenant.delete", "tenant", tenant_id, tenant_id=tenant_id,
                before=before.record(), after=after.record(),
                detail=f"purged after {after.purge_after}",
            )  # fmt: skip
            await self._events.deleted(after, actor.subject)
        return after

    async def restore(self, actor: Actor, tenant_id: str) -> Tenant:
        """Bring a soft-deleted tenant back within its retention period."""
        before, after, _ = await self._change(
            tenant_id, lambda t: (rules.restore(t, self._clock()), None)
        )
        await self._mirror.put_tenant(after)
        await self._audit.record(
            actor, "tenant.restore", "tenant", tenant_id, tenant_id=tenant_id,
            before=before.record(), after=after.record(),
        )  # fmt: skip
        await self._events.restored(after, actor.subject)
        return after

    # -- reconciliation and purge ---------------------------------------------------------------

    async def reconcile(self) -> dict[str, int]:
        """Write every KV mirror again from Mongo, finish interrupted creations, drop stale keys."""
        done = {"clusters": 0, "tenants": 0, "provisioned": 0, "stale_keys": 0, "failed": 0}
        clusters = await self._clusters.all()
        for cluster in clusters:
            self._placement.register_cluster(cluster.name, cluster.uri)
            await self._mirror.put_cluster(cluster.name, cluster.uri)
            done["clusters"] += 1
        tenants = await self._tenants.all()
        counts = dict.fromkeys(Lifecycle, 0)
        for tenant in tenants:
            counts[tenant.status] += 1
            try:
                if tenant.status is Lifecycle.PROVISIONING:
                    await self._finish_provisioning(tenant)
                    done["provisioned"] += 1
                else:
                    await self._mirror_all(tenant)
                done["tenants"] += 1
            except DomainError:
                # One tenant's trouble must not keep the others' mirrors stale; next run retries.
                done["failed"] += 1
                log.exception("reconciliation failed", extra={"tenant_id": tenant.tenant_id})
        for status, count in counts.items():
            self._metrics.tenants.labels(status.value).set(count)
        done["stale_keys"] = await self._drop_stale_keys({c.name for c in clusters})
        log.info("tenants reconciled", extra=done)
        return done

    async def _finish_provisioning(self, tenant: Tenant) -> None:
        active = await self._provision(tenant)
        self._metrics.repairs.labels("provisioning").inc()
        await self._audit.record(
            _RECONCILER, "tenant.create", "tenant", tenant.tenant_id, tenant_id=tenant.tenant_id,
            after=active.record(),
            detail=f"creation by {tenant.created_by or '?'} finished after an interruption",
        )  # fmt: skip

    async def _drop_stale_keys(self, clusters: set[str]) -> int:
        # A key without a document is stale only if the document is absent *now*: documents are
        # written before their keys, so a key seen before that read belongs to a document that
        # existed, and is gone only if the tenant was purged.
        dropped = 0
        for tenant_id in sorted(await self._mirror.tenant_keys()):
            if await self._tenants.get(tenant_id) is None:
                await self._mirror.delete_tenant(tenant_id)
                dropped += 1
        placed, named = await self._mirror.placement_keys()
        for tenant_id in sorted(placed):
            if await self._tenants.get(tenant_id) is None:
                await self._mirror.delete_placement(tenant_id)
                dropped += 1
        for name in sorted(named - clusters):
            if await self._clusters.get(name) is None:
                await self._mirror.delete_cluster(name)
                dropped += 1
        if dropped:
            self._metrics.repairs.labels("stale_key").inc(dropped)
        return dropped

    async def purge_due(self) -> list[str]:
        """Purge every deleted tenant past its retention period; the tenants purged."""
        purged: list[str] = []
        for tenant in await self._tenants.due_for_purge(self._clock()):
            try:
                if await self._purge(tenant):
                    purged.append(tenant.tenant_id)
                    self._metrics.purges.labels("ok").inc()
            except Exception:  # one tenant's failure must not keep the others; next run retries
                self._metrics.purges.labels("failed").inc()
                log.exception("tenant purge failed", extra={"tenant_id": tenant.tenant_id})
        return purged

    async def _purge(self, tenant: Tenant) -> bool:
        """Delete everything of a tenant, the document last: a purge cut short is finished later."""
        marked = await self._tenants.mark_purging(tenant.tenant_id, self._clock())
        if marked is None:
            return False  # restored meanwhile, or already gone
        numbers = await self._numbers.delete_tenant(tenant.tenant_id)
        documents = await self._data.purge(tenant.tenant_id, marked.placement)
        await self._quotas.forget(tenant.tenant_id)
        await self._mirror.delete_tenant(tenant.tenant_id)
        await self._mirror.delete_placement(tenant.tenant_id)
        await self._tenants.delete(tenant.tenant_id)
        total = sum(documents.values())
        await self._audit.record(
            _RETENTION, "tenant.purge", "tenant", tenant.tenant_id, tenant_id=tenant.tenant_id,
            before=marked.record(),
            detail=f"retention over: {total} documents and {len(numbers)} numbers deleted",
        )  # fmt: skip
        log.info(
            "tenant purged",
            extra={"tenant_id": tenant.tenant_id, "documents": total, "numbers": len(numbers)},
        )
        return True

    async def record_refusal(
        self,
        event_id: str,
        tenant_id: str,
        *,
        kind: str,
        limit: int,
        used: int,
        requested: int,
        service: str,
    ) -> bool:
        """Write a quota refusal into the audit log once (events come at least once)."""
        seen = await self._audit.search_tenant(
            tenant_id, AuditQuery(action_prefix="quota.refuse", target_id=event_id, limit=1)
        )
        if seen.items:
            return False
        await self._audit.record(
            Actor.system(service or "unknown"), "quota.refuse", "quota_refusal", event_id,
            tenant_id=tenant_id, outcome="refused",
            after={"kind": kind, "limit": limit, "used": used, "requested": requested,
                   "service": service},
            detail=f"{kind}: {used} of {limit} in use, {requested} requested; refused by {service}",
        )  # fmt: skip
        return True


class NumberAdmin:
    """Access numbers: assignment (one owner per number), release, listings, look-up."""

    def __init__(
        self,
        numbers: NumberRepository,
        tenants: TenantRepository,
        events: TenantEvents,
        auditor: Auditor,
        clock: Callable[[], datetime],
        *,
        range_max: int,
    ) -> None:
        self._numbers = numbers
        self._tenants = tenants
        self._events = events
        self._audit = auditor
        self._clock = millisecond_clock(clock)
        self._range_max = range_max
        self._metrics = _Metrics()

    def requested(
        self, numbers: Sequence[str] | None, first: str | None, last: str | None
    ) -> list[str]:
        """The normalized numbers a request names: a list, or a range ``first``..``last``."""
        if (numbers is None) == (first is None and last is None):
            raise InvalidInput("numbers", "give either numbers or a range, not both nor neither")
        if numbers is not None:
            normalized = [_normalized(n, f"numbers.{i}") for i, n in enumerate(numbers)]
            return number_rules.unique(normalized, self._range_max)
        if first is None or last is None:
            raise InvalidInput("range", "needs both from and to")
        return number_rules.expand_range(
            _normalized(first, "range.from"), _normalized(last, "range.to"), self._range_max
        )

    async def assign(
        self, actor: Actor, tenant_id: str, numbers: list[str], label: str = ""
    ) -> list[NumberAssignment]:
        """Give numbers to a tenant: all of them, or none (409 naming those owned by others)."""
        text = number_rules.check_label(label)
        tenant = rules.existing(await self._tenants.get(tenant_id), tenant_id)
        if tenant.status is Lifecycle.DELETED:
            raise Conflict(f"tenant {tenant_id} is deleted: restore it first", reason="deleted")
        plan = number_rules.plan_assignment(tenant_id, numbers, await self._numbers.owners(numbers))
        now = self._clock()
        new = [NumberAssignment(n, tenant_id, text, now) for n in plan.new]
        if new:
            # Another operator may have taken some since the check: the unique _id refuses them,
            # and the repository undoes what this request wrote before we answer 409.
            taken = await self._numbers.insert(new)
            if taken:
                raise number_rules.already_owned(taken)
            await self._audit.record(
                actor, "number.assign", "number", number_rules.describe(plan.new),
                tenant_id=tenant_id, after={"numbers": plan.new, "label": text},
            )  # fmt: skip
            await self._events.numbers_changed(tenant_id, plan.new, [])
        return new

    async def release(self, actor: Actor, tenant_id: str, numbers: list[str]) -> list[str]:
        """Take numbers back from a tenant: all must be its own, or nothing is released."""
        rules.existing(await self._tenants.get(tenant_id), tenant_id)
        owners = await self._numbers.owners(numbers)
        foreign = [n for n in numbers if owners.get(n) != tenant_id]
        if foreign:
            raise number_rules.not_assigned(tenant_id, foreign)
        released = await self._numbers.release(tenant_id, numbers)
        if released:
            await self._audit.record(
                actor, "number.release", "number", number_rules.describe(released),
                tenant_id=tenant_id, before={"numbers": released},
            )  # fmt: skip
            await self._events.numbers_changed(tenant_id, [], released)
        return released

    async def release_one(self, actor: Actor, tenant_id: str, number: str) -> None:
        """Take one number back (404 if the tenant does not own it)."""
        normalized = _normalized(number, "number")
        rules.existing(await self._tenants.get(tenant_id), tenant_id)
        assignment = await self._numbers.get(normalized)
        if assignment is None or assignment.tenant_id != tenant_id:
            raise NotFound(f"number {normalized} is not assigned to tenant {tenant_id}")
        await self.release(actor, tenant_id, [normalized])

    async def get(self, number: str) -> NumberAssignment:
        """A number's owner (operator view)."""
        normalized = _normalized(number, "number")
        found = await self._numbers.get(normalized)
        if found is None:
            raise NotFound(f"number {normalized} is not assigned")
        return found

    async def get_own(self, tenant_id: str, number: str) -> NumberAssignment:
        """One of the tenant's numbers (another tenant's is as unknown as an unassigned one)."""
        try:
            normalized = _normalized(number, "number")
        except InvalidInput:
            raise NotFound("not found") from None
        found = await self._numbers.get_own(tenant_id, normalized)
        if found is None:
            raise NotFound(f"number {normalized} not found")
        return found

    async def search(self, query: NumberQuery) -> Page[NumberAssignment]:
        """One page of numbers (operator view)."""
        _check_page(query.limit)
        if query.prefix is not None:
            number_rules.check_prefix(query.prefix)
        return await self._numbers.search(query)

    async def search_own(self, tenant_id: str, query: NumberQuery) -> Page[NumberAssignment]:
        """One page of the tenant's numbers."""
        _check_page(query.limit)
        if query.prefix is not None:
            number_rules.check_prefix(query.prefix)
        return await self._numbers.search_own(tenant_id, replace(query, tenant_id=tenant_id))

    async def lookup(self, number: str) -> NumberLookupResult:
        """Which tenant owns a dialled number (deleted and provisioning tenants own none)."""
        normalized = _normalized(number, "number")
        assignment = await self._numbers.get(normalized)
        tenant = await self._tenants.get(assignment.tenant_id) if assignment else None
        if tenant is None or not tenant.visible:
            self._metrics.lookups.labels("not_found").inc()
            return NumberLookupResult(found=False, number=normalized)
        self._metrics.lookups.labels("found").inc()
        return NumberLookupResult(
            found=True,
            number=normalized,
            tenant_id=tenant.tenant_id,
            tenant_status=tenant.status.value,
            language=tenant.language,
            time_zone=tenant.time_zone,
        )


def _normalized(number: str, field: str) -> str:
    try:
        return normalize_number(number)
    except InvalidInput as err:
        raise InvalidInput(field, err.rule) from None


class ClusterAdmin:
    """The registry of MongoDB deployments tenants may be placed on."""

    def __init__(
        self,
        clusters: ClusterRepository,
        tenants: TenantRepository,
        mirror: TenantMirror,
        placement: PlacementMap,
        auditor: Auditor,
        clock: Callable[[], datetime],
    ) -> None:
        self._clusters = clusters
        self._tenants = tenants
        self._mirror = mirror
        self._placement = placement
        self._audit = auditor
        self._clock = millisecond_clock(clock)

    async def get(self, name: str) -> Cluster:
        """A cluster."""
        found = await self._clusters.get(_cluster_name(name))
        if found is None:
            raise NotFound(f"no cluster {name}")
        return found

    async def all(self) -> list[Cluster]:
        """Every cluster."""
        return await self._clusters.all()

    async def put(self, actor: Actor, name: str, uri: str) -> tuple[Cluster, bool]:
        """Register a cluster or change its URI; (the cluster, whether it is new)."""
        name = _cluster_name(name)
        uri = _cluster_uri(uri)
        now = self._clock()
        current = await self._clusters.get(name)
        cluster = Cluster(name, uri, current.created_at if current else now, now)
        if current is not None and current.uri == uri:
            cluster = current
        else:
            await self._clusters.put(cluster)
        # The entry is written before any tenant may be placed there (docs/tenancy.md).
        self._placement.register_cluster(name, uri)
        await self._mirror.put_cluster(name, uri)
        if cluster is not current:
            await self._audit.record(
                actor, "cluster.create" if current is None else "cluster.update", "cluster", name,
                tenant_id=None, before=_cluster_record(current) if current else None,
                after=_cluster_record(cluster),
            )  # fmt: skip
        return cluster, current is None

    async def delete(self, actor: Actor, name: str) -> None:
        """Forget a cluster no tenant is placed on (409 otherwise)."""
        cluster = await self.get(name)
        placed = await self._tenants.count_on_cluster(cluster.name)
        if placed:
            raise Conflict(
                f"cluster {cluster.name} holds {placed} tenant(s) (deleted ones until purged): "
                "their data is not migrated, so it stays",
                reason="cluster_in_use",
                tenants=placed,
            )
        await self._clusters.delete(cluster.name)
        await self._mirror.delete_cluster(cluster.name)
        await self._audit.record(
            actor, "cluster.delete", "cluster", cluster.name, tenant_id=None,
            before=_cluster_record(cluster),
        )  # fmt: skip


def _cluster_name(name: str) -> str:
    if not rules.CLUSTER_RE.match(name):
        raise InvalidInput("name", "must be 1-64 letters, digits, '_' or '-'")
    if name == DEFAULT_CLUSTER:
        raise InvalidInput(
            "name", "must not be 'default' (that is CALLMESH_MONGODB_URI, set in configuration)"
        )
    return name


def _cluster_uri(uri: str) -> str:
    if (
        not uri.startswith(("mongodb://", "mongodb+srv://"))
        or len(uri) > 2048
        or any(ch.isspace() for ch in uri)
    ):
        raise InvalidInput("uri", "must be a mongodb:// or mongodb+srv:// URI without spaces")
    return uri


def _cluster_record(cluster: Cluster) -> dict[str, Any]:
    # "uri" is a secret key of the audit log: it is redacted there.
    return {"name": cluster.name, "uri": cluster.uri}


class SiteAdmin:
    """Branch sites and their switch nodes, with the nodes' health from heartbeats."""

    def __init__(
        self,
        sites: SiteRepository,
        nodes: NodeRepository,
        heartbeats: Heartbeats,
        auditor: Auditor,
        clock: Callable[[], datetime],
        stale_after_s: float = site_rules.STALE_AFTER_S,
    ) -> None:
        self._sites = sites
        self._nodes = nodes
        self._heartbeats = heartbeats
        self._stale_after_s = stale_after_s
        self._audit = auditor
        self._clock = millisecond_clock(clock)

    async def create_site(
        self, actor: Actor, site_id: str, name: str, description: str, region: str, address: str
    ) -> Site:
        """Register a site (409 if its id is taken)."""
        site = site_rules.new_site(site_id, name, description, region, address, self._clock())
        if not await self._sites.insert(site):
            raise Conflict(f"site {site.site_id} exists", field="site_id")
        await self._audit.record(
            actor, "site.create", "site", site.site_id, tenant_id=None, after=site.record()
        )
        return site

    async def get_site(self, site_id: str) -> Site:
        """A site."""
        found = await self._sites.get(site_id)
        if found is None:
            raise NotFound(f"no site {site_id}")
        return found

    async def list_sites(self, limit: int, after: str | None) -> Page[Site]:
        """One page of sites."""
        _check_page(limit)
        return await self._sites.search(limit, after)

    async def update_site(self, actor: Actor, site_id: str, changes: dict[str, str | None]) -> Site:
        """Change a site's name, description, region or address."""
        before = await self.get_site(site_id)
        after, changed = site_rules.update_site(before, changes, self._clock())
        if changed:
            await self._sites.replace(after)
            await self._audit.record(
                actor, "site.update", "site", site_id, tenant_id=None,
                before=before.record(), after=after.record(),
            )  # fmt: skip
        return after

    async def delete_site(self, actor: Actor, site_id: str) -> None:
        """Forget a site without nodes (409 otherwise)."""
        site = await self.get_site(site_id)
        count = await self._nodes.count_on_site(site_id)
        if count:
            raise site_rules.site_has_nodes(site_id, count)
        await self._sites.delete(site_id)
        await self._audit.record(
            actor, "site.delete", "site", site_id, tenant_id=None, before=site.record()
        )

    async def create_node(
        self,
        actor: Actor,
        node_id: str,
        site_id: str,
        addresses: list[str],
        esl_host: str,
        esl_port: int,
        role: str,
        description: str,
    ) -> Node:
        """Register a node at a site (409 if its id is taken)."""
        node = site_rules.new_node(
            node_id, site_id, addresses, esl_host, esl_port, role, description, self._clock()
        )
        await self._site_exists(node.site_id)
        if not await self._nodes.insert(node):
            raise Conflict(f"node {node.node_id} exists", field="node_id")
        await self._audit.record(
            actor, "node.create", "node", node.node_id, tenant_id=None, after=node.record()
        )
        return node

    async def _site_exists(self, site_id: str) -> None:
        if await self._sites.get(site_id) is None:
            raise InvalidInput(
                "site_id", "must name a registered site", f"site_id: no site {site_id}"
            )

    async def get_node(self, node_id: str) -> Node:
        """A node."""
        found = await self._nodes.get(node_id)
        if found is None:
            raise NotFound(f"no node {node_id}")
        return found

    async def list_nodes(self, site_id: str | None, limit: int, after: str | None) -> Page[Node]:
        """One page of nodes."""
        _check_page(limit)
        return await self._nodes.search(site_id, limit, after)

    async def update_node(
        self,
        actor: Actor,
        node_id: str,
        *,
        site_id: str | None = None,
        addresses: list[str] | None = None,
        esl_host: str | None = None,
        esl_port: int | None = None,
        role: str | None = None,
        description: str | None = None,
    ) -> Node:
        """Change a node (moving it to another site included)."""
        before = await self.get_node(node_id)
        checked = site_rules.new_node(
            before.node_id,
            site_id if site_id is not None else before.site_id,
            addresses if addresses is not None else list(before.addresses),
            esl_host if esl_host is not None else before.esl_endpoint.host,
            esl_port if esl_port is not None else before.esl_endpoint.port,
            role if role is not None else before.role.value,
            description if description is not None else before.description,
            self._clock(),
        )
        after = replace(checked, created_at=before.created_at)
        if replace(after, updated_at=before.updated_at) == before:
            return before
        if after.site_id != before.site_id:
            await self._site_exists(after.site_id)
        await self._nodes.replace(after)
        await self._audit.record(
            actor, "node.update", "node", node_id, tenant_id=None,
            before=before.record(), after=after.record(),
        )  # fmt: skip
        return after

    async def delete_node(self, actor: Actor, node_id: str) -> None:
        """Forget a node."""
        node = await self.get_node(node_id)
        await self._nodes.delete(node_id)
        await self._audit.record(
            actor, "node.delete", "node", node_id, tenant_id=None, before=node.record()
        )

    async def statuses(self, nodes: Sequence[Node]) -> dict[str, NodeStatus]:
        """Each node's health from its latest heartbeat (``unknown`` if they cannot be read)."""
        ids = [n.node_id for n in nodes]
        try:
            beats = await self._heartbeats.latest(ids)
        except DomainError as err:
            return {i: site_rules.status_unknown(err.message) for i in ids}
        now = self._clock()
        return {i: site_rules.node_status(beats.get(i), now, self._stale_after_s) for i in ids}


class OperatorJobs:
    """The area's background work: purge tenants past retention, then reconcile, periodically.

    The runtime does not know this task: ``start`` registers a stop hook that cancels it, and
    the loop also ends by itself once the runtime is stopping.
    """

    def __init__(
        self, tenants: TenantAdmin, interval_s: float, stopping: Callable[[], bool]
    ) -> None:
        self._tenants = tenants
        self._interval_s = interval_s
        self._stopping = stopping
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the loop (its first round purges at once; start() has just reconciled)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="admin-operator-jobs")

    async def stop(self) -> None:
        """Cancel the loop and wait for it."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run_once(self, *, reconcile: bool = True) -> list[str]:
        """One round: purge what is due, then reconcile; the tenants purged."""
        purged = await self._tenants.purge_due()
        if reconcile:
            await self._tenants.reconcile()
        return purged

    async def _run(self) -> None:
        reconcile = False
        while not self._stopping():
            try:
                await self.run_once(reconcile=reconcile)
            except Exception:  # the loop must outlive a bad round (NATS or Mongo away)
                log.exception("operator jobs round failed")
            reconcile = True
            await asyncio.sleep(self._interval_s)


async def start(ctx: AdminContext, runtime: Runtime) -> None:
    """Build this area's use cases on the connected runtime and provide them in ``ctx``."""
    # Imported here: the adapters import this module for the types they serve.
    from callmesh.admin.adapters import bus_operator, kv_operator, store_operator
    from callmesh.core.quotas import Quotas

    settings = ctx.settings
    with contextlib.suppress(Unavailable):  # a restart of the area on the same context
        await ctx.get(OperatorJobs).stop()
    # Admin resolves placements like every service (the runtime's resolver, from the bucket
    # admin writes itself).
    resolver = runtime.placement
    quotas = Quotas(runtime.bus, service=runtime.name)
    jobs_box: list[OperatorJobs] = []

    async def stop(_runtime: Runtime) -> None:
        for jobs in jobs_box:
            await jobs.stop()
        await quotas.close()

    runtime.definition.on_stop.append(stop)

    operator = runtime.store.operator()
    auditor = ctx.get(Auditor)
    tenants = store_operator.MongoTenants(operator)
    numbers = store_operator.MongoNumbers(operator)
    clusters = store_operator.MongoClusters(operator)
    mirror = kv_operator.KvTenantMirror(runtime.bus)
    placement = kv_operator.StorePlacementMap(runtime.store, resolver)
    events = bus_operator.BusTenantEvents(runtime.bus)
    tenant_admin = TenantAdmin(
        tenants,
        clusters,
        numbers,
        mirror,
        placement,
        quotas,
        events,
        store_operator.MongoTenantData(runtime.store, runtime.platform.mongodb_database),
        auditor,
        ctx.clock,
        default_database=runtime.platform.mongodb_database,
        retention=timedelta(days=settings.tenant_retention_days),
    )
    ctx.provide(tenant_admin)
    ctx.provide(
        NumberAdmin(
            numbers, tenants, events, auditor, ctx.clock, range_max=settings.number_range_max
        )
    )
    ctx.provide(ClusterAdmin(clusters, tenants, mirror, placement, auditor, ctx.clock))
    ctx.provide(
        SiteAdmin(
            store_operator.MongoSites(operator),
            store_operator.MongoNodes(operator),
            kv_operator.KvHeartbeats(runtime.bus),
            auditor,
            ctx.clock,
            settings.node_stale_after_s,
        )
    )
    # Before anything is served: KV must say what Mongo says (a crash may have left it behind).
    await tenant_admin.reconcile()
    jobs = OperatorJobs(tenant_admin, ctx.settings.tenant_jobs_interval_s, lambda: runtime.stopping)
    jobs_box.append(jobs)
    ctx.provide(jobs)
    jobs.start()
