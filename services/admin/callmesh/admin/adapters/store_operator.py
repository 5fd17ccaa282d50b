"""MongoDB adapters of the operator area: tenants, numbers, clusters, sites, nodes, tenant data.

All live in the platform database (``OperatorStore``). ``tenants`` and ``numbers`` documents carry
``tenant_id``, so the tenant-facing reads go through the tenant wall (``TenantCollection``).
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from callmesh.admin.domain.common import Page
from callmesh.admin.domain.numbers import NumberAssignment
from callmesh.admin.domain.sites import EslEndpoint, Node, NodeRole, Site
from callmesh.admin.domain.tenants import DEFAULT_CLUSTER, Lifecycle, Tenant, TenantPlacement
from callmesh.admin.domain.tenants import from_record as tenant_from_record
from callmesh.admin.ports.operator import Cluster, NumberQuery, TenantQuery
from callmesh.core.errors import Unavailable
from callmesh.core.store import (
    CollectionSpec,
    IndexSpec,
    OperatorStore,
    Store,
    TenantCollection,
    TenantStore,
)

log = logging.getLogger(__name__)

TENANTS = "tenants"
NUMBERS = "numbers"
CLUSTERS = "clusters"
SITES = "sites"
NODES = "nodes"
# Collections a purge leaves alone: the tenant document goes last, on its own; the audit log is
# the platform's record of who did what, and outlives the tenant.
KEPT_ON_PURGE = frozenset({TENANTS, "audit"})
_CHUNK = 1000
_DUPLICATE_KEY = 11000

COLLECTIONS = (
    CollectionSpec(
        TENANTS,
        (
            IndexSpec((("status", 1), ("purge_after", 1)), name="status_purge"),
            IndexSpec((("placement.cluster", 1),), name="cluster"),
        ),
        tenant_scoped=False,
    ),
    CollectionSpec(NUMBERS, (IndexSpec((("tenant_id", 1), ("_id", 1)), name="tenant_numbers"),)),
    CollectionSpec(CLUSTERS, tenant_scoped=False),
    CollectionSpec(SITES, tenant_scoped=False),
    CollectionSpec(
        NODES, (IndexSpec((("site_id", 1), ("_id", 1)), name="site"),), tenant_scoped=False
    ),
)


def _unavailable(what: str, err: Exception) -> Unavailable:
    return Unavailable(f"{what} failed: {type(err).__name__}")


def _page_filter(flt: dict[str, Any], after: str | None) -> dict[str, Any]:
    if after is not None:
        flt["_id"] = {"$gt": after}
    return flt


def _paged(docs: list[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], str | None]:
    items = docs[:limit]
    more = len(docs) > limit and bool(items)
    return items, (str(items[-1]["_id"]) if more else None)


class MongoTenants:
    """``TenantRepository`` on the ``tenants`` collection (``_id`` = tenant id)."""

    def __init__(self, operator: OperatorStore) -> None:
        self._col = operator.collection(TENANTS)

    @staticmethod
    def _doc(tenant: Tenant) -> dict[str, Any]:
        return {"_id": tenant.tenant_id, **tenant.record()}

    async def get(self, tenant_id: str) -> Tenant | None:
        """A tenant in any state."""
        try:
            doc = await self._col.find_one({"_id": tenant_id})
        except PyMongoError as err:
            raise _unavailable("read tenant", err) from err
        return tenant_from_record(doc) if doc else None

    async def get_own(self, tenant_id: str) -> Tenant | None:
        """The tenant's document through its own wall."""
        try:
            doc = await TenantCollection(self._col, tenant_id).find_one({"_id": tenant_id})
        except PyMongoError as err:
            raise _unavailable("read tenant", err) from err
        return tenant_from_record(doc) if doc else None

    async def insert(self, tenant: Tenant) -> bool:
        """Store a new tenant; False if its id is taken."""
        try:
            await self._col.insert_one(self._doc(tenant))
        except DuplicateKeyError:
            return False
        except PyMongoError as err:
            raise _unavailable("insert tenant", err) from err
        return True

    async def replace(self, tenant: Tenant, expected_version: int) -> bool:
        """Compare-and-set on ``version``."""
        try:
            result = await self._col.replace_one(
                {"_id": tenant.tenant_id, "version": expected_version}, self._doc(tenant)
            )
        except PyMongoError as err:
            raise _unavailable("write tenant", err) from err
        return result.matched_count == 1

    async def search(self, query: TenantQuery) -> Page[Tenant]:
        """One page, in slug order."""
        flt: dict[str, Any] = {}
        if query.status is not None:
            flt["status"] = query.status.value
        if query.search:
            pattern = re.escape(query.search)
            flt["$or"] = [
                {"name": {"$regex": pattern, "$options": "i"}},
                {"_id": {"$regex": re.escape(query.search.lower())}},
            ]
        _page_filter(flt, query.after)
        try:
            cursor = self._col.find(flt).sort([("_id", 1)]).limit(query.limit + 1)
            docs = [doc async for doc in cursor]
        except PyMongoError as err:
            raise _unavailable("list tenants", err) from err
        items, cursor_next = _paged(docs, query.limit)
        return Page([tenant_from_record(d) for d in items], cursor_next)

    async def all(self) -> list[Tenant]:
        """Every readable tenant (one broken document must not stop reconciling the others)."""
        try:
            docs = [doc async for doc in self._col.find({}).sort([("_id", 1)])]
        except PyMongoError as err:
            raise _unavailable("list tenants", err) from err
        tenants: list[Tenant] = []
        for doc in docs:
            try:
                tenants.append(tenant_from_record(doc))
            except (KeyError, ValueError, TypeError):
                log.exception("unreadable tenant document skipped", extra={"id": doc.get("_id")})
        return tenants

    async def due_for_purge(self, now: datetime) -> list[Tenant]:
        """Deleted tenants past their retention."""
        flt = {"status": Lifecycle.DELETED.value, "purge_after": {"$lte": now}}
        try:
            docs = [doc async for doc in self._col.find(flt).sort([("_id", 1)])]
        except PyMongoError as err:
            raise _unavailable("list tenants to purge", err) from err
        return [tenant_from_record(d) for d in docs]

    async def mark_purging(self, tenant_id: str, now: datetime) -> Tenant | None:
        """Flag a due tenant as being purged (atomically, so a restore cannot slip in)."""
        try:
            doc = await self._col.find_one_and_update(
                {"_id": tenant_id, "status": Lifecycle.DELETED.value, "purge_after": {"$lte": now}},
                {"$set": {"purging": True}},
                return_document=ReturnDocument.AFTER,
            )
        except PyMongoError as err:
            raise _unavailable("mark tenant purging", err) from err
        return tenant_from_record(doc) if doc else None

    async def delete(self, tenant_id: str) -> None:
        """Remove a purged tenant's document."""
        try:
            await self._col.delete_one({"_id": tenant_id, "purging": True})
        except PyMongoError as err:
            raise _unavailable("delete tenant", err) from err

    async def count_on_cluster(self, cluster: str) -> int:
        """Tenants placed on a cluster, in any state."""
        try:
            return await self._col.count_documents({"placement.cluster": cluster})
        except PyMongoError as err:
            raise _unavailable("count tenants", err) from err


def _assignment(doc: Mapping[str, Any]) -> NumberAssignment:
    return NumberAssignment(
        number=str(doc["_id"]),
        tenant_id=str(doc["tenant_id"]),
        label=str(doc.get("label", "")),
        created_at=doc["created_at"],
    )


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


class MongoNumbers:
    """``NumberRepository`` on the ``numbers`` collection (``_id`` = the normalized number)."""

    def __init__(self, operator: OperatorStore) -> None:
        self._col = operator.collection(NUMBERS)

    async def owners(self, numbers: Sequence[str]) -> dict[str, str]:
        """Owner of each number that has one."""
        out: dict[str, str] = {}
        try:
            for chunk in _chunks(numbers):
                cursor = self._col.find({"_id": {"$in": list(chunk)}}, {"tenant_id": 1})
                out.update({str(d["_id"]): str(d["tenant_id"]) async for d in cursor})
        except PyMongoError as err:
            raise _unavailable("read numbers", err) from err
        return out

    async def insert(self, assignments: Sequence[NumberAssignment]) -> dict[str, str]:
        """Insert all or none: numbers another writer took meanwhile undo this call's inserts."""
        if not assignments:
            return {}
        tenant_id = assignments[0].tenant_id
        # Marks this call's documents, so the undo cannot remove a number someone else wrote.
        batch = secrets.token_hex(8)
        docs = [
            {
                "_id": a.number,
                "tenant_id": a.tenant_id,
                "label": a.label,
                "created_at": a.created_at,
                "batch": batch,
            }
            for a in assignments
        ]
        failed: list[str] = []
        try:
            await self._col.insert_many(docs, ordered=False)
        except BulkWriteError as err:
            errors = err.details.get("writeErrors", [])
            failed = [docs[e["index"]]["_id"] for e in errors if e.get("code") == _DUPLICATE_KEY]
            if len(failed) != len(errors):
                await self._undo(tenant_id, batch)
                raise _unavailable("assign numbers", err) from err
        except PyMongoError as err:
            await self._undo(tenant_id, batch)
            raise _unavailable("assign numbers", err) from err
        if not failed:
            return {}
        await self._undo(tenant_id, batch)
        taken = await self.owners(failed)
        # A number freed again between the failure and this read still counts as a conflict.
        return {n: taken.get(n, "?") for n in failed}

    async def _undo(self, tenant_id: str, batch: str) -> None:
        try:
            await self._col.delete_many({"tenant_id": tenant_id, "batch": batch})
        except PyMongoError as err:
            raise _unavailable("undo a partial number assignment", err) from err

    async def get(self, number: str) -> NumberAssignment | None:
        """A number's assignment."""
        try:
            doc = await self._col.find_one({"_id": number})
        except PyMongoError as err:
            raise _unavailable("read number", err) from err
        return _assignment(doc) if doc else None

    async def get_own(self, tenant_id: str, number: str) -> NumberAssignment | None:
        """A number of the tenant, through its wall."""
        try:
            doc = await TenantCollection(self._col, tenant_id).find_one({"_id": number})
        except PyMongoError as err:
            raise _unavailable("read number", err) from err
        return _assignment(doc) if doc else None

    async def release(self, tenant_id: str, numbers: Sequence[str]) -> list[str]:
        """Remove the tenant's numbers among these; the ones removed."""
        released: list[str] = []
        wall = TenantCollection(self._col, tenant_id)
        try:
            for chunk in _chunks(numbers):
                flt = {"_id": {"$in": list(chunk)}}
                found = [str(d["_id"]) for d in await wall.find_list(flt, projection={"_id": 1})]
                await wall.delete_many({"_id": {"$in": found}})
                released.extend(found)
        except PyMongoError as err:
            raise _unavailable("release numbers", err) from err
        return released

    def _filter(self, query: NumberQuery) -> dict[str, Any]:
        flt: dict[str, Any] = {}
        if query.prefix:
            flt["_id"] = {"$regex": f"^{re.escape(query.prefix)}"}
        if query.after is not None:
            flt = (
                {"$and": [flt, {"_id": {"$gt": query.after}}]}
                if flt
                else {"_id": {"$gt": query.after}}
            )
        return flt

    async def search(self, query: NumberQuery) -> Page[NumberAssignment]:
        """One page, in number order."""
        flt = self._filter(query)
        if query.tenant_id is not None:
            flt = (
                {"$and": [flt, {"tenant_id": query.tenant_id}]}
                if flt
                else {"tenant_id": query.tenant_id}
            )
        try:
            cursor = self._col.find(flt).sort([("_id", 1)]).limit(query.limit + 1)
            docs = [doc async for doc in cursor]
        except PyMongoError as err:
            raise _unavailable("list numbers", err) from err
        items, cursor_next = _paged(docs, query.limit)
        return Page([_assignment(d) for d in items], cursor_next)

    async def search_own(self, tenant_id: str, query: NumberQuery) -> Page[NumberAssignment]:
        """One page of a tenant's numbers, through its wall."""
        wall = TenantCollection(self._col, tenant_id)
        try:
            docs = await wall.find_list(
                self._filter(query), sort=[("_id", 1)], limit=query.limit + 1
            )
        except PyMongoError as err:
            raise _unavailable("list numbers", err) from err
        items, cursor_next = _paged(docs, query.limit)
        return Page([_assignment(d) for d in items], cursor_next)

    async def delete_tenant(self, tenant_id: str) -> list[str]:
        """Remove every number of a tenant."""
        wall = TenantCollection(self._col, tenant_id)
        try:
            numbers = [str(d["_id"]) for d in await wall.find_list({}, projection={"_id": 1})]
            await wall.delete_many({})
        except PyMongoError as err:
            raise _unavailable("delete numbers", err) from err
        return numbers


class MongoClusters:
    """``ClusterRepository`` on the ``clusters`` collection (``_id`` = name)."""

    def __init__(self, operator: OperatorStore) -> None:
        self._col = operator.collection(CLUSTERS)

    @staticmethod
    def _cluster(doc: Mapping[str, Any]) -> Cluster:
        return Cluster(str(doc["_id"]), str(doc["uri"]), doc["created_at"], doc["updated_at"])

    async def get(self, name: str) -> Cluster | None:
        """A cluster."""
        try:
            doc = await self._col.find_one({"_id": name})
        except PyMongoError as err:
            raise _unavailable("read cluster", err) from err
        return self._cluster(doc) if doc else None

    async def all(self) -> list[Cluster]:
        """Every cluster."""
        try:
            return [self._cluster(d) async for d in self._col.find({}).sort([("_id", 1)])]
        except PyMongoError as err:
            raise _unavailable("list clusters", err) from err

    async def put(self, cluster: Cluster) -> Cluster | None:
        """Create or replace."""
        doc = {
            "uri": cluster.uri,
            "created_at": cluster.created_at,
            "updated_at": cluster.updated_at,
        }
        try:
            before = await self._col.find_one_and_replace(
                {"_id": cluster.name}, doc, upsert=True, return_document=ReturnDocument.BEFORE
            )
        except PyMongoError as err:
            raise _unavailable("write cluster", err) from err
        return self._cluster(before) if before else None

    async def delete(self, name: str) -> bool:
        """Remove."""
        try:
            result = await self._col.delete_one({"_id": name})
        except PyMongoError as err:
            raise _unavailable("delete cluster", err) from err
        return result.deleted_count == 1


def _site(doc: Mapping[str, Any]) -> Site:
    return Site(
        site_id=str(doc["_id"]),
        name=str(doc["name"]),
        description=str(doc.get("description", "")),
        region=str(doc.get("region", "")),
        address=str(doc.get("address", "")),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


def _node(doc: Mapping[str, Any]) -> Node:
    esl = doc.get("esl_endpoint") or {}
    return Node(
        node_id=str(doc["_id"]),
        site_id=str(doc["site_id"]),
        addresses=tuple(str(a) for a in doc.get("addresses", ())),
        esl_endpoint=EslEndpoint(str(esl.get("host", "")), int(esl.get("port", 0))),
        role=NodeRole(doc.get("role", NodeRole.CENTRAL.value)),
        description=str(doc.get("description", "")),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


class _Registry:
    """Shared CRUD of the ``sites`` and ``nodes`` collections."""

    what = "document"

    def __init__(self, operator: OperatorStore, name: str) -> None:
        self._col = operator.collection(name)

    async def _get(self, key: str) -> dict[str, Any] | None:
        try:
            return await self._col.find_one({"_id": key})
        except PyMongoError as err:
            raise _unavailable(f"read {self.what}", err) from err

    async def _list(
        self, flt: dict[str, Any], limit: int, after: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        try:
            cursor = self._col.find(_page_filter(flt, after)).sort([("_id", 1)]).limit(limit + 1)
            docs = [doc async for doc in cursor]
        except PyMongoError as err:
            raise _unavailable(f"list {self.what}s", err) from err
        return _paged(docs, limit)

    async def _insert(self, doc: dict[str, Any]) -> bool:
        try:
            await self._col.insert_one(doc)
        except DuplicateKeyError:
            return False
        except PyMongoError as err:
            raise _unavailable(f"insert {self.what}", err) from err
        return True

    async def _replace(self, doc: dict[str, Any]) -> None:
        try:
            await self._col.replace_one({"_id": doc["_id"]}, doc)
        except PyMongoError as err:
            raise _unavailable(f"write {self.what}", err) from err

    async def delete(self, key: str) -> bool:
        """Remove; False if absent."""
        try:
            result = await self._col.delete_one({"_id": key})
        except PyMongoError as err:
            raise _unavailable(f"delete {self.what}", err) from err
        return result.deleted_count == 1


class MongoSites(_Registry):
    """``SiteRepository`` on ``sites`` (``_id`` = site id)."""

    what = "site"

    def __init__(self, operator: OperatorStore) -> None:
        super().__init__(operator, SITES)

    @staticmethod
    def _doc(site: Site) -> dict[str, Any]:
        record = site.record()
        del record["site_id"]
        return {"_id": site.site_id, **record}

    async def get(self, site_id: str) -> Site | None:
        """A site."""
        doc = await self._get(site_id)
        return _site(doc) if doc else None

    async def search(self, limit: int, after: str | None) -> Page[Site]:
        """One page of sites."""
        docs, cursor_next = await self._list({}, limit, after)
        return Page([_site(d) for d in docs], cursor_next)

    async def insert(self, site: Site) -> bool:
        """Store a new site."""
        return await self._insert(self._doc(site))

    async def replace(self, site: Site) -> None:
        """Store a changed site."""
        await self._replace(self._doc(site))


class MongoNodes(_Registry):
    """``NodeRepository`` on ``nodes`` (``_id`` = node id)."""

    what = "node"

    def __init__(self, operator: OperatorStore) -> None:
        super().__init__(operator, NODES)

    @staticmethod
    def _doc(node: Node) -> dict[str, Any]:
        record = node.record()
        del record["node_id"]
        return {"_id": node.node_id, **record}

    async def get(self, node_id: str) -> Node | None:
        """A node."""
        doc = await self._get(node_id)
        return _node(doc) if doc else None

    async def search(self, site_id: str | None, limit: int, after: str | None) -> Page[Node]:
        """One page of nodes."""
        docs, cursor_next = await self._list(
            {"site_id": site_id} if site_id is not None else {}, limit, after
        )
        return Page([_node(d) for d in docs], cursor_next)

    async def insert(self, node: Node) -> bool:
        """Store a new node."""
        return await self._insert(self._doc(node))

    async def replace(self, node: Node) -> None:
        """Store a changed node."""
        await self._replace(self._doc(node))

    async def count_on_site(self, site_id: str) -> int:
        """Nodes of a site."""
        try:
            return await self._col.count_documents({"site_id": site_id})
        except PyMongoError as err:
            raise _unavailable("count nodes", err) from err


class MongoTenantData:
    """``TenantData``: a tenant's documents in its placed database and in the platform one."""

    def __init__(self, store: Store, platform_database: str) -> None:
        self._store = store
        self._platform = platform_database

    async def purge(self, tenant_id: str, placement: TenantPlacement) -> dict[str, int]:
        """Delete the tenant's documents in every collection (through its wall); counts."""
        places = [(placement.cluster, placement.database)]
        if (DEFAULT_CLUSTER, self._platform) not in places:
            # Platform collections keyed by tenant (numbers, identity's) live there whatever
            # the placement.
            places.append((DEFAULT_CLUSTER, self._platform))
        counts: dict[str, int] = {}
        for cluster, database in places:
            try:
                db = self._store.client(cluster)[database]
            except KeyError as err:
                raise Unavailable(f"cluster {cluster} is not known to this process") from err
            wall = TenantStore(db, tenant_id)
            try:
                for name in sorted(await db.list_collection_names()):
                    if name.startswith("system.") or name in KEPT_ON_PURGE:
                        continue
                    result = await wall.collection(name).delete_many({})
                    if result.deleted_count:
                        counts[f"{database}.{name}"] = result.deleted_count
            except PyMongoError as err:
                raise _unavailable(f"purge tenant data in {database}", err) from err
        return counts
