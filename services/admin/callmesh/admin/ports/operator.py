"""Ports of the operator area: where tenants, numbers, clusters, sites and nodes are kept, the KV
mirrors services read, the quota counters, the tenant events and the tenants' data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from callmesh.admin.domain.common import Page
from callmesh.admin.domain.numbers import NumberAssignment
from callmesh.admin.domain.sites import Heartbeat, Node, Site
from callmesh.admin.domain.tenants import Lifecycle, Tenant, TenantPlacement
from callmesh.core.quotas import QuotaKind, QuotaUsage


@dataclass(frozen=True)
class TenantQuery:
    """Filters of a tenant listing (all optional), in slug order."""

    status: Lifecycle | None = None
    # A case-insensitive piece of the name or the slug.
    search: str | None = None
    limit: int = 50
    after: str | None = None


@dataclass(frozen=True)
class NumberQuery:
    """Filters of a number listing, in number order."""

    tenant_id: str | None = None
    prefix: str | None = None
    limit: int = 50
    after: str | None = None


@dataclass(frozen=True)
class Cluster:
    """A MongoDB deployment tenants may be placed on (its URI may hold credentials)."""

    name: str
    uri: str
    created_at: datetime
    updated_at: datetime


class TenantRepository(Protocol):
    """The ``tenants`` collection (the source of truth; KV only mirrors it)."""

    async def get(self, tenant_id: str) -> Tenant | None:
        """A tenant in any state, or None."""
        ...

    async def get_own(self, tenant_id: str) -> Tenant | None:
        """A tenant read through its own tenant wall (the tenant-facing API's read)."""
        ...

    async def insert(self, tenant: Tenant) -> bool:
        """Store a new tenant; False if its id is taken."""
        ...

    async def replace(self, tenant: Tenant, expected_version: int) -> bool:
        """Store a changed tenant if it is still at ``expected_version``; False otherwise."""
        ...

    async def search(self, query: TenantQuery) -> Page[Tenant]:
        """One page of tenants."""
        ...

    async def all(self) -> list[Tenant]:
        """Every tenant (reconciliation)."""
        ...

    async def due_for_purge(self, now: datetime) -> list[Tenant]:
        """Deleted tenants whose retention is over (including purges begun and not finished)."""
        ...

    async def mark_purging(self, tenant_id: str, now: datetime) -> Tenant | None:
        """Flag a due tenant as being purged (so it can no longer be restored)."""
        ...

    async def delete(self, tenant_id: str) -> None:
        """Remove a purged tenant's document (idempotent)."""
        ...

    async def count_on_cluster(self, cluster: str) -> int:
        """How many tenants (in any state) are placed on a cluster."""
        ...


class NumberRepository(Protocol):
    """The ``numbers`` collection: one document per number, ``_id`` the number."""

    async def owners(self, numbers: Sequence[str]) -> dict[str, str]:
        """The owner of each of these numbers that has one."""
        ...

    async def insert(self, assignments: Sequence[NumberAssignment]) -> dict[str, str]:
        """Store new assignments; on a race lost to another writer, undo this call's inserts
        and return the numbers taken meanwhile with their owners (empty: all written)."""
        ...

    async def get(self, number: str) -> NumberAssignment | None:
        """A number's assignment."""
        ...

    async def get_own(self, tenant_id: str, number: str) -> NumberAssignment | None:
        """A number of the tenant, read through its wall (another tenant's number is None)."""
        ...

    async def release(self, tenant_id: str, numbers: Sequence[str]) -> list[str]:
        """Remove the tenant's ownership of these numbers; the numbers released."""
        ...

    async def search(self, query: NumberQuery) -> Page[NumberAssignment]:
        """One page of numbers (operator-wide)."""
        ...

    async def search_own(self, tenant_id: str, query: NumberQuery) -> Page[NumberAssignment]:
        """One page of a tenant's numbers, read through its wall."""
        ...

    async def delete_tenant(self, tenant_id: str) -> list[str]:
        """Remove every number of a tenant (purge); the numbers removed."""
        ...


class ClusterRepository(Protocol):
    """The ``clusters`` collection."""

    async def get(self, name: str) -> Cluster | None:
        """A cluster."""
        ...

    async def all(self) -> list[Cluster]:
        """Every cluster, by name."""
        ...

    async def put(self, cluster: Cluster) -> Cluster | None:
        """Create or replace a cluster; the one it replaced."""
        ...

    async def delete(self, name: str) -> bool:
        """Remove a cluster; False if there was none."""
        ...


class SiteRepository(Protocol):
    """The ``sites`` collection."""

    async def get(self, site_id: str) -> Site | None:
        """A site."""
        ...

    async def search(self, limit: int, after: str | None) -> Page[Site]:
        """One page of sites."""
        ...

    async def insert(self, site: Site) -> bool:
        """Store a new site; False if its id is taken."""
        ...

    async def replace(self, site: Site) -> None:
        """Store a changed site."""
        ...

    async def delete(self, site_id: str) -> bool:
        """Remove a site; False if there was none."""
        ...


class NodeRepository(Protocol):
    """The ``nodes`` collection."""

    async def get(self, node_id: str) -> Node | None:
        """A node."""
        ...

    async def search(self, site_id: str | None, limit: int, after: str | None) -> Page[Node]:
        """One page of nodes, of one site or all."""
        ...

    async def insert(self, node: Node) -> bool:
        """Store a new node; False if its id is taken."""
        ...

    async def replace(self, node: Node) -> None:
        """Store a changed node."""
        ...

    async def delete(self, node_id: str) -> bool:
        """Remove a node; False if there was none."""
        ...

    async def count_on_site(self, site_id: str) -> int:
        """How many nodes a site has."""
        ...


class TenantMirror(Protocol):
    """The KV records every service reads (``docs/tenancy.md``): status, placement, clusters."""

    async def put_tenant(self, tenant: Tenant) -> None:
        """Write the tenant's ``tenants`` record (active, suspended or deleted)."""
        ...

    async def delete_tenant(self, tenant_id: str) -> None:
        """Remove a purged tenant's ``tenants`` record."""
        ...

    async def put_placement(self, tenant_id: str, placement: TenantPlacement) -> None:
        """Write the tenant's ``placement`` entry."""
        ...

    async def delete_placement(self, tenant_id: str) -> None:
        """Remove a purged tenant's ``placement`` entry."""
        ...

    async def put_cluster(self, name: str, uri: str) -> None:
        """Write a cluster's ``placement`` entry."""
        ...

    async def delete_cluster(self, name: str) -> None:
        """Remove a cluster's ``placement`` entry."""
        ...

    async def tenant_keys(self) -> set[str]:
        """Tenant ids with a ``tenants`` record."""
        ...

    async def placement_keys(self) -> tuple[set[str], set[str]]:
        """Tenant ids and cluster names with a ``placement`` entry."""
        ...


class PlacementMap(Protocol):
    """This process's own placement resolution (the store the tenant area writes through)."""

    def register_cluster(self, name: str, uri: str) -> None:
        """Make a cluster usable by this process's store at once."""
        ...

    async def wait_placed(self, tenant_id: str, placement: TenantPlacement) -> None:
        """Wait until this process's store resolves the tenant to ``placement``."""
        ...


class QuotaBook(Protocol):
    """The quota counters and limits in KV (``callmesh.core.quotas.Quotas`` is one)."""

    async def set_limit(self, tenant_id: str, kind: QuotaKind, limit: int | None) -> QuotaUsage:
        """Set (None: lift) a limit."""
        ...

    async def usage(self, tenant_id: str) -> dict[QuotaKind, QuotaUsage]:
        """Every quota's use and limit."""
        ...

    async def forget(self, tenant_id: str) -> None:
        """Delete every counter of a tenant."""
        ...


class TenantEvents(Protocol):
    """Tenant events on the bus, one method each."""

    async def created(self, tenant: Tenant) -> None:
        """``tenant.created``."""
        ...

    async def updated(self, tenant: Tenant, changed: Sequence[str]) -> None:
        """``tenant.updated``."""
        ...

    async def suspended(self, tenant: Tenant, by: str) -> None:
        """``tenant.suspended``."""
        ...

    async def resumed(self, tenant: Tenant, by: str) -> None:
        """``tenant.resumed``."""
        ...

    async def deleted(self, tenant: Tenant, by: str) -> None:
        """``tenant.deleted``."""
        ...

    async def restored(self, tenant: Tenant, by: str) -> None:
        """``tenant.restored``."""
        ...

    async def numbers_changed(
        self, tenant_id: str, added: Sequence[str], removed: Sequence[str]
    ) -> None:
        """``tenant.numbers_changed``."""
        ...


class TenantData(Protocol):
    """Every document a tenant has, wherever it is placed."""

    async def purge(self, tenant_id: str, placement: TenantPlacement) -> Mapping[str, int]:
        """Delete the tenant's documents in every collection; how many, by collection."""
        ...


class Heartbeats(Protocol):
    """The switch nodes' latest heartbeats (KV bucket ``nodes``)."""

    async def latest(self, node_ids: Sequence[str]) -> dict[str, Heartbeat | None]:
        """Each node's latest heartbeat (None: none); Unavailable if they cannot be read."""
        ...
