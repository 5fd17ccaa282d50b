"""Flows in MongoDB: a draft per flow, immutable published versions, the current pointer.

Publishing is safe without transactions: version N+1 is inserted under the unique
(tenant_id, flow_id, version) index — a racing publisher of the same N+1 gets a conflict, never a
second N+1 — and only then is the flow's ``published_version`` moved forward (never backward:
``$max``-like compare in the filter). A running call keeps the version object it loaded.

Documents are stored as JSON text: flow documents have keys with dots (variable names such as
``customer.tier``), which MongoDB discourages and FerretDB refuses as field names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from callmesh.core.errors import Conflict, NotFound
from callmesh.core.store import CollectionSpec, Document, IndexSpec, Store, TenantStore
from callmesh.ivr.domain.flow import Flow
from callmesh.ivr.domain.parse import parse_flow
from callmesh.ivr.ports import PublishedFlow

__all__ = ["COLLECTIONS", "FLOWS", "VERSIONS", "FlowStore", "MongoFlowSource", "StoredFlow"]

FLOWS = "ivr_flows"
VERSIONS = "ivr_flow_versions"

COLLECTIONS: tuple[CollectionSpec, ...] = (
    CollectionSpec(
        FLOWS,
        indexes=(IndexSpec((("tenant_id", 1), ("flow_id", 1)), unique=True, name="tenant_flow"),),
    ),
    CollectionSpec(
        VERSIONS,
        indexes=(
            IndexSpec(
                (("tenant_id", 1), ("flow_id", 1), ("version", 1)),
                unique=True,
                name="tenant_flow_version",
            ),
        ),
    ),
)

_HIDE = {"_id": 0, "tenant_id": 0}


@dataclass(frozen=True)
class StoredFlow:
    """A flow's head: its draft and which version is live."""

    flow_id: str
    name: str
    draft: dict[str, Any]
    draft_updated_at: datetime
    published_version: int
    latest_version: int
    created_at: datetime


def _stored(doc: Document) -> StoredFlow:
    return StoredFlow(
        flow_id=doc["flow_id"],
        name=doc.get("name", ""),
        draft=json.loads(doc.get("draft_json") or "{}"),
        draft_updated_at=doc["draft_updated_at"],
        published_version=int(doc.get("published_version") or 0),
        latest_version=int(doc.get("latest_version") or 0),
        created_at=doc["created_at"],
    )


class FlowStore:
    """One tenant's flows."""

    def __init__(self, tenant: TenantStore) -> None:
        self.tenant = tenant
        self.flows = tenant.collection(FLOWS)
        self.versions = tenant.collection(VERSIONS)

    async def create(self, flow_id: str, document: dict[str, Any], by: str) -> StoredFlow:
        """A new flow with ``document`` as its draft; Conflict if the id is taken."""
        now = datetime.now(UTC)
        try:
            await self.flows.insert_one(
                {
                    "flow_id": flow_id,
                    "name": str(document.get("name", "")),
                    "draft_json": json.dumps(document),
                    "draft_updated_at": now,
                    "draft_updated_by": by,
                    "published_version": 0,
                    "latest_version": 0,
                    "created_at": now,
                }
            )
        except DuplicateKeyError as err:
            raise Conflict(f"flow {flow_id!r} already exists", flow_id=flow_id) from err
        return await self.get(flow_id)

    async def get(self, flow_id: str) -> StoredFlow:
        """The flow's head; NotFound (also for another tenant's flow)."""
        doc = await self.flows.find_one({"flow_id": flow_id}, projection=_HIDE)
        if doc is None:
            raise NotFound(f"no flow {flow_id!r}", flow_id=flow_id)
        return _stored(doc)

    async def all(self) -> list[StoredFlow]:
        """Every flow of the tenant, by id."""
        docs = await self.flows.find_list({}, projection=_HIDE, sort=[("flow_id", 1)], limit=5000)
        return [_stored(d) for d in docs]

    async def save_draft(self, flow_id: str, document: dict[str, Any], by: str) -> StoredFlow:
        """Replace the draft."""
        result = await self.flows.update_one(
            {"flow_id": flow_id},
            {
                "$set": {
                    "draft_json": json.dumps(document),
                    "name": str(document.get("name", "")),
                    "draft_updated_at": datetime.now(UTC),
                    "draft_updated_by": by,
                }
            },
        )
        if result.matched_count == 0:
            raise NotFound(f"no flow {flow_id!r}", flow_id=flow_id)
        return await self.get(flow_id)

    async def publish(
        self, flow_id: str, document: dict[str, Any], by: str, rollback_of: int = 0
    ) -> int:
        """Store ``document`` (already validated) as the next version and make it live."""
        head = await self.get(flow_id)
        version = head.latest_version + 1
        try:
            await self.versions.insert_one(
                {
                    "flow_id": flow_id,
                    "version": version,
                    "document_json": json.dumps(document),
                    "published_at": datetime.now(UTC),
                    "published_by": by,
                    "rollback_of": rollback_of,
                }
            )
        except DuplicateKeyError as err:
            raise Conflict(
                f"flow {flow_id!r} was published by someone else at the same time; try again",
                flow_id=flow_id,
            ) from err
        await self.flows.update_one(
            {"flow_id": flow_id, "latest_version": {"$lt": version}},
            {"$set": {"latest_version": version, "published_version": version}},
        )
        return version

    async def versions_of(self, flow_id: str) -> list[Document]:
        """The flow's published versions, newest first (without their documents)."""
        await self.get(flow_id)
        return await self.versions.find_list(
            {"flow_id": flow_id},
            projection={**_HIDE, "document_json": 0},
            sort=[("version", -1)],
            limit=1000,
        )

    async def version(self, flow_id: str, version: int) -> Document:
        """One published version with its document."""
        doc = await self.versions.find_one(
            {"flow_id": flow_id, "version": version}, projection=_HIDE
        )
        if doc is None:
            raise NotFound(f"flow {flow_id!r} has no version {version}", flow_id=flow_id)
        doc["document"] = json.loads(doc.pop("document_json"))
        return doc

    async def delete(self, flow_id: str) -> None:
        """Remove the flow and its versions."""
        result = await self.flows.delete_one({"flow_id": flow_id})
        if result.deleted_count == 0:
            raise NotFound(f"no flow {flow_id!r}", flow_id=flow_id)
        await self.versions.delete_many({"flow_id": flow_id})


class MongoFlowSource:
    """Published flows for the runner (``ports.FlowSource`` without bindings yet)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def published(self, tenant_id: str, flow_id: str) -> PublishedFlow | None:
        """The live version, or None."""
        flows = FlowStore(await self.store.tenant(tenant_id))
        try:
            head = await flows.get(flow_id)
        except NotFound:
            return None
        if not head.published_version:
            return None
        return await self.version(tenant_id, flow_id, head.published_version)

    async def version(self, tenant_id: str, flow_id: str, version: int) -> PublishedFlow | None:
        """One published version, or None."""
        flows = FlowStore(await self.store.tenant(tenant_id))
        try:
            doc = await flows.version(flow_id, version)
        except NotFound:
            return None
        flow: Flow = parse_flow(doc["document"])
        return PublishedFlow(tenant_id, flow_id, version, flow)
