"""The store: MongoDB through PyMongo's AsyncMongoClient, walled by tenant.

Code reaches tenant data only through ``TenantStore(tenant)``: every filter gets
``tenant_id: <tenant>`` ANDed in, every insert and replacement gets the tenant stamped (and
refuses another), every update is refused if it would move a document to another tenant or unset
its tenant, every aggregation starts with a ``$match`` on the tenant and may not use stages that
reach other collections. Operator-wide reads go through ``OperatorStore``, which only the admin
service may open. A tenant's data may live on its own database or cluster (``Placement``).

Stay within what both MongoDB and FerretDB 1.24 support: no multi-document transactions, no
change streams (the bus carries changes), no ``$lookup``/``$facet`` in hot paths.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pymongo import AsyncMongoClient, ReturnDocument
from pymongo import DeleteMany as _DeleteMany
from pymongo import DeleteOne as _DeleteOne
from pymongo import InsertOne as _InsertOne
from pymongo import ReplaceOne as _ReplaceOne
from pymongo import UpdateMany as _UpdateMany
from pymongo import UpdateOne as _UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from pymongo.results import (
    BulkWriteResult,
    DeleteResult,
    InsertManyResult,
    InsertOneResult,
    UpdateResult,
)

from callmesh.core.errors import Forbidden, TenantViolation
from callmesh.core.settings import PlatformSettings
from callmesh.proto.subjects import check_tenant_id

log = logging.getLogger(__name__)

TENANT_FIELD = "tenant_id"

Document = dict[str, Any]
Filter = Mapping[str, Any]

# Aggregation stages that only reshape the documents already matched. Anything else (``$lookup``,
# ``$unionWith``, ``$out``, ``$merge``, ``$graphLookup``, ``$collStats``, ``$documents`` …) could
# read or write outside the tenant, or must come first and would lose our ``$match``.
_SAFE_STAGES = frozenset(
    {
        "$match", "$project", "$addFields", "$set", "$unset", "$group", "$sort", "$limit",
        "$skip", "$count", "$unwind", "$sortByCount", "$bucket", "$bucketAuto", "$replaceRoot",
        "$replaceWith", "$sample", "$redact", "$setWindowFields", "$densify", "$fill", "$facet",
    }
)  # fmt: skip
_UPDATE_OPERATORS = frozenset(
    {
        "$set", "$setOnInsert", "$unset", "$inc", "$mul", "$min", "$max", "$rename",
        "$currentDate", "$push", "$pull", "$pullAll", "$addToSet", "$pop", "$bit",
    }
)  # fmt: skip


@dataclass(frozen=True)
class IndexSpec:
    """An index of a tenant collection; its keys must start with ``tenant_id``."""

    keys: tuple[tuple[str, int], ...]
    unique: bool = False
    name: str | None = None
    partial: Mapping[str, Any] | None = None
    expire_after_s: int | None = None


@dataclass(frozen=True)
class CollectionSpec:
    """A collection a service owns, with its indexes (provisioned at start, idempotently)."""

    name: str
    indexes: tuple[IndexSpec, ...] = ()
    tenant_scoped: bool = True

    def __post_init__(self) -> None:
        if self.tenant_scoped:
            for index in self.indexes:
                if not index.keys or index.keys[0][0] != TENANT_FIELD:
                    raise ValueError(
                        f"{self.name}: index {index.keys} must start with {TENANT_FIELD}"
                    )


@dataclass(frozen=True)
class Placement:
    """Where a tenant's data lives: a named cluster (a MongoDB URI) and a database on it."""

    database: str
    cluster: str = "default"


class PlacementResolver(Protocol):
    """Finds a tenant's placement (admin keeps the map; services resolve through it)."""

    async def resolve(self, tenant_id: str) -> Placement:
        """The tenant's placement."""
        ...


@dataclass
class StaticPlacement:
    """Every tenant on the default database unless listed in ``overrides``."""

    default: Placement
    overrides: dict[str, Placement] = field(default_factory=dict)

    async def resolve(self, tenant_id: str) -> Placement:
        """The override for the tenant, else the default."""
        return self.overrides.get(tenant_id, self.default)


# Bulk operations, tenant-checked before they become PyMongo's.
@dataclass(frozen=True)
class InsertOne:
    """Insert a document."""

    document: Mapping[str, Any]


@dataclass(frozen=True)
class UpdateOne:
    """Update the first matching document."""

    filter: Filter
    update: Mapping[str, Any]
    upsert: bool = False


@dataclass(frozen=True)
class UpdateMany:
    """Update every matching document."""

    filter: Filter
    update: Mapping[str, Any]
    upsert: bool = False


@dataclass(frozen=True)
class ReplaceOne:
    """Replace the first matching document."""

    filter: Filter
    replacement: Mapping[str, Any]
    upsert: bool = False


@dataclass(frozen=True)
class DeleteOne:
    """Delete the first matching document."""

    filter: Filter


@dataclass(frozen=True)
class DeleteMany:
    """Delete every matching document."""

    filter: Filter


BulkOp = InsertOne | UpdateOne | UpdateMany | ReplaceOne | DeleteOne | DeleteMany


class TenantCollection:
    """One collection seen through one tenant's wall."""

    def __init__(self, collection: AsyncCollection[Document], tenant_id: str) -> None:
        self.raw_name = collection.name
        self._col = collection
        self.tenant_id = tenant_id

    # -- the wall ---------------------------------------------------------------------------

    def _violation(self, what: str) -> TenantViolation:
        return TenantViolation(
            f"{what} reaches outside tenant {self.tenant_id!r}",
            collection=self.raw_name,
            tenant_id=self.tenant_id,
        )

    def scope(self, flt: Filter | None) -> Document:
        """The filter with this tenant ANDed in; a filter naming another tenant is refused."""
        scoped = dict(flt or {})
        if TENANT_FIELD in scoped and scoped[TENANT_FIELD] != self.tenant_id:
            raise self._violation(f"filter on {TENANT_FIELD}={scoped[TENANT_FIELD]!r}")
        scoped[TENANT_FIELD] = self.tenant_id
        return scoped

    def stamp(self, document: Mapping[str, Any]) -> Document:
        """The document with this tenant set; a document of another tenant is refused."""
        if not isinstance(document, Mapping):
            raise TypeError("document must be a mapping")
        stamped = dict(document)
        if stamped.setdefault(TENANT_FIELD, self.tenant_id) != self.tenant_id:
            raise self._violation(f"document of tenant {stamped[TENANT_FIELD]!r}")
        return stamped

    def check_update(self, update: Mapping[str, Any]) -> Document:
        """An update document that cannot move, rename or unset the tenant."""
        if not isinstance(update, Mapping) or not update:
            raise ValueError("update must be a non-empty mapping of update operators")
        for op, fields in update.items():
            if op not in _UPDATE_OPERATORS:
                raise ValueError(f"update: {op!r} is not a supported update operator")
            if not isinstance(fields, Mapping):
                raise TypeError(f"update: {op} takes a mapping of fields")
            for path, value in fields.items():
                touches = path == TENANT_FIELD or path.startswith(f"{TENANT_FIELD}.")
                if op == "$rename" and (
                    touches or value == TENANT_FIELD or str(value).startswith(f"{TENANT_FIELD}.")
                ):
                    raise self._violation(f"$rename of {path!r} to {value!r}")
                if touches and not (op in ("$set", "$setOnInsert") and value == self.tenant_id):
                    raise self._violation(f"{op} on {path!r}")
        return dict(update)

    def check_pipeline(self, pipeline: Sequence[Mapping[str, Any]]) -> list[Document]:
        """The pipeline behind a ``$match`` on this tenant; stages reaching out are refused."""
        self._check_stages(pipeline)
        return [{"$match": {TENANT_FIELD: self.tenant_id}}, *(dict(s) for s in pipeline)]

    def _check_stages(self, pipeline: Sequence[Mapping[str, Any]]) -> None:
        for stage in pipeline:
            if not isinstance(stage, Mapping) or len(stage) != 1:
                raise ValueError("pipeline: each stage must be a mapping with one operator")
            ((name, body),) = stage.items()
            if name not in _SAFE_STAGES:
                raise self._violation(f"aggregation stage {name}")
            if name == "$facet":
                for sub in dict(body).values():
                    self._check_stages(sub)

    # -- reads ------------------------------------------------------------------------------

    async def find_one(
        self, flt: Filter | None = None, *, projection: Mapping[str, Any] | None = None
    ) -> Document | None:
        """The first matching document of this tenant, or None."""
        doc = await self._col.find_one(self.scope(flt), projection=projection)
        return self._own(doc) if doc is not None else None

    async def find(
        self,
        flt: Filter | None = None,
        *,
        projection: Mapping[str, Any] | None = None,
        sort: Sequence[tuple[str, int]] | None = None,
        skip: int = 0,
        limit: int = 0,
        batch_size: int = 0,
    ) -> AsyncIterator[Document]:
        """Matching documents of this tenant, streamed."""
        cursor = self._col.find(
            self.scope(flt), projection=projection, skip=skip, limit=limit, batch_size=batch_size
        )
        if sort:
            cursor = cursor.sort(list(sort))
        async for doc in cursor:
            yield self._own(doc)

    async def find_list(self, flt: Filter | None = None, **kwargs: Any) -> list[Document]:
        """``find`` gathered into a list (mind ``limit``)."""
        return [doc async for doc in self.find(flt, **kwargs)]

    async def count_documents(self, flt: Filter | None = None) -> int:
        """How many documents of this tenant match."""
        return await self._col.count_documents(self.scope(flt))

    async def distinct(self, key: str, flt: Filter | None = None) -> list[Any]:
        """Distinct values of a field among this tenant's matching documents."""
        return list(await self._col.distinct(key, self.scope(flt)))

    async def aggregate(self, pipeline: Sequence[Mapping[str, Any]]) -> list[Document]:
        """Run a pipeline over this tenant's documents only."""
        cursor = await self._col.aggregate(self.check_pipeline(pipeline))
        return [doc async for doc in cursor]

    def _own(self, doc: Document) -> Document:
        # Defence in depth: the query was scoped, so this can only fire on a bug or a bad server.
        if TENANT_FIELD in doc and doc[TENANT_FIELD] != self.tenant_id:
            raise self._violation(f"read of a document of tenant {doc[TENANT_FIELD]!r}")
        return doc

    # -- writes -----------------------------------------------------------------------------

    async def insert_one(self, document: Mapping[str, Any]) -> InsertOneResult:
        """Insert one document for this tenant."""
        return await self._col.insert_one(self.stamp(document))

    async def insert_many(
        self, documents: Sequence[Mapping[str, Any]], *, ordered: bool = True
    ) -> InsertManyResult:
        """Insert documents for this tenant (all are checked before any is written)."""
        stamped = [self.stamp(d) for d in documents]
        return await self._col.insert_many(stamped, ordered=ordered)

    async def update_one(
        self, flt: Filter, update: Mapping[str, Any], *, upsert: bool = False
    ) -> UpdateResult:
        """Update this tenant's first matching document (an upsert inserts it for this tenant)."""
        return await self._col.update_one(self.scope(flt), self.check_update(update), upsert=upsert)

    async def update_many(
        self, flt: Filter, update: Mapping[str, Any], *, upsert: bool = False
    ) -> UpdateResult:
        """Update every matching document of this tenant."""
        return await self._col.update_many(
            self.scope(flt), self.check_update(update), upsert=upsert
        )

    async def replace_one(
        self, flt: Filter, replacement: Mapping[str, Any], *, upsert: bool = False
    ) -> UpdateResult:
        """Replace this tenant's first matching document."""
        return await self._col.replace_one(self.scope(flt), self.stamp(replacement), upsert=upsert)

    async def delete_one(self, flt: Filter) -> DeleteResult:
        """Delete this tenant's first matching document."""
        return await self._col.delete_one(self.scope(flt))

    async def delete_many(self, flt: Filter) -> DeleteResult:
        """Delete every matching document of this tenant."""
        return await self._col.delete_many(self.scope(flt))

    async def find_one_and_update(
        self,
        flt: Filter,
        update: Mapping[str, Any],
        *,
        upsert: bool = False,
        return_new: bool = True,
        projection: Mapping[str, Any] | None = None,
        sort: Sequence[tuple[str, int]] | None = None,
    ) -> Document | None:
        """Atomically update and return one document of this tenant (the new version by default)."""
        doc = await self._col.find_one_and_update(
            self.scope(flt),
            self.check_update(update),
            upsert=upsert,
            projection=projection,
            sort=list(sort) if sort else None,
            return_document=ReturnDocument.AFTER if return_new else ReturnDocument.BEFORE,
        )
        return self._own(doc) if doc is not None else None

    async def find_one_and_replace(
        self,
        flt: Filter,
        replacement: Mapping[str, Any],
        *,
        upsert: bool = False,
        return_new: bool = True,
    ) -> Document | None:
        """Atomically replace and return one document of this tenant."""
        doc = await self._col.find_one_and_replace(
            self.scope(flt),
            self.stamp(replacement),
            upsert=upsert,
            return_document=ReturnDocument.AFTER if return_new else ReturnDocument.BEFORE,
        )
        return self._own(doc) if doc is not None else None

    async def find_one_and_delete(self, flt: Filter) -> Document | None:
        """Atomically delete and return one document of this tenant."""
        doc = await self._col.find_one_and_delete(self.scope(flt))
        return self._own(doc) if doc is not None else None

    async def bulk_write(self, ops: Sequence[BulkOp], *, ordered: bool = True) -> BulkWriteResult:
        """Several writes in one round trip; every operation is checked before any is sent."""
        converted: list[Any] = []
        for op in ops:
            match op:
                case InsertOne(document):
                    converted.append(_InsertOne(self.stamp(document)))
                case UpdateOne(flt, update, upsert):
                    converted.append(
                        _UpdateOne(self.scope(flt), self.check_update(update), upsert=upsert)
                    )
                case UpdateMany(flt, update, upsert):
                    converted.append(
                        _UpdateMany(self.scope(flt), self.check_update(update), upsert=upsert)
                    )
                case ReplaceOne(flt, replacement, upsert):
                    converted.append(
                        _ReplaceOne(self.scope(flt), self.stamp(replacement), upsert=upsert)
                    )
                case DeleteOne(flt):
                    converted.append(_DeleteOne(self.scope(flt)))
                case DeleteMany(flt):
                    converted.append(_DeleteMany(self.scope(flt)))
                case _:
                    raise TypeError(f"not a bulk operation: {op!r}")
        return await self._col.bulk_write(converted, ordered=ordered)


class TenantStore:
    """A tenant's view of the store: collections behind the tenant wall."""

    def __init__(self, database: AsyncDatabase[Document], tenant_id: str) -> None:
        self.tenant_id = check_tenant_id(tenant_id)
        self.database = database

    def collection(self, name: str) -> TenantCollection:
        """A collection of this tenant."""
        return TenantCollection(self.database[name], self.tenant_id)

    def __getitem__(self, name: str) -> TenantCollection:
        return self.collection(name)


class OperatorStore:
    """Operator-wide access to the platform database (admin only: tenants, placement, audit)."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.database = database

    def collection(self, name: str) -> AsyncCollection[Document]:
        """A raw collection of the platform database."""
        return self.database[name]


class Store:
    """The process's MongoDB clients, placement resolution and index provisioning."""

    def __init__(
        self,
        settings: PlatformSettings,
        *,
        placement: PlacementResolver | None = None,
        clusters: Mapping[str, str] | None = None,
        collections: Sequence[CollectionSpec] = (),
        operator_access: bool = False,
        server_selection_timeout_ms: int = 5000,
    ) -> None:
        self.settings = settings
        self.placement: PlacementResolver = placement or StaticPlacement(
            Placement(settings.mongodb_database)
        )
        self._uris = {"default": settings.mongodb_uri, **(clusters or {})}
        self._clients: dict[str, AsyncMongoClient[Document]] = {}
        self._retired: list[AsyncMongoClient[Document]] = []
        self._collections = tuple(collections)
        self._provisioned: set[tuple[str, str]] = set()
        self._provision_lock = asyncio.Lock()
        self._operator_access = operator_access
        self._timeout_ms = server_selection_timeout_ms

    def client(self, cluster: str = "default") -> AsyncMongoClient[Document]:
        """The client of a named cluster (created on first use; clients connect lazily)."""
        if cluster not in self._clients:
            uri = self._uris.get(cluster)
            if uri is None:
                raise KeyError(f"placement: unknown cluster {cluster!r}")
            self._clients[cluster] = AsyncMongoClient(
                uri,
                serverSelectionTimeoutMS=self._timeout_ms,
                appname=f"callmesh-{self.settings.instance}",
                tz_aware=True,
            )
        return self._clients[cluster]

    def add_cluster(self, name: str, uri: str) -> None:
        """Make a cluster known (from admin's placement map); a new URI replaces its client."""
        if self._uris.get(name) == uri:
            return
        self._uris[name] = uri
        stale = self._clients.pop(name, None)
        if stale is not None:
            # Operations running on the old client may finish; it is closed with the store.
            self._retired.append(stale)
            self._provisioned = {key for key in self._provisioned if key[0] != name}

    async def ping(self) -> bool:
        """True when the default cluster answers."""
        try:
            await self.client().admin.command("ping")
        except PyMongoError:
            return False
        return True

    async def provision(self) -> None:
        """Create the indexes of every collection on the default database (idempotent)."""
        await self._provision(Placement(self.settings.mongodb_database))

    async def _provision(self, placement: Placement) -> AsyncDatabase[Document]:
        db = self.client(placement.cluster)[placement.database]
        key = (placement.cluster, placement.database)
        if key in self._provisioned:
            return db
        async with self._provision_lock:
            if key not in self._provisioned:
                for spec in self._collections:
                    for index in spec.indexes:
                        options: dict[str, Any] = {"unique": index.unique}
                        if index.name:
                            options["name"] = index.name
                        if index.partial is not None:
                            options["partialFilterExpression"] = dict(index.partial)
                        if index.expire_after_s is not None:
                            options["expireAfterSeconds"] = index.expire_after_s
                        await db[spec.name].create_index(list(index.keys), **options)
                self._provisioned.add(key)
                log.info("indexes provisioned", extra={"database": placement.database})
        return db

    async def tenant(self, tenant_id: str) -> TenantStore:
        """The tenant's store, on the database its placement names (indexes made on first use)."""
        check_tenant_id(tenant_id)
        placement = await self.placement.resolve(tenant_id)
        return TenantStore(await self._provision(placement), tenant_id)

    def operator(self) -> OperatorStore:
        """Operator-wide access; refused unless this store was built for the admin service."""
        if not self._operator_access:
            raise Forbidden("operator-wide store access is reserved to the admin service")
        return OperatorStore(self.client()[self.settings.mongodb_database])

    async def close(self) -> None:
        """Close every client."""
        for client in [*self._clients.values(), *self._retired]:
            await client.close()
        self._clients.clear()
        self._retired.clear()
