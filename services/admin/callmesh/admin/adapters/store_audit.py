"""The audit log in MongoDB: one platform-wide collection, read per tenant through the wall."""

from __future__ import annotations

from typing import Any

from callmesh.admin.domain.audit import AuditEntry
from callmesh.admin.domain.common import Actor, ActorKind, Page
from callmesh.admin.ports.audit import AuditQuery
from callmesh.core.store import CollectionSpec, IndexSpec, OperatorStore, TenantCollection

COLLECTION = "audit"
# Platform-wide (OperatorStore): entries without a tenant carry "-" so every index can start
# with tenant_id, as the store's rules want.
PLATFORM = "-"

COLLECTIONS = (
    CollectionSpec(
        COLLECTION,
        (
            IndexSpec((("tenant_id", 1), ("_id", -1)), name="tenant_newest"),
            IndexSpec((("tenant_id", 1), ("action", 1), ("_id", -1)), name="tenant_action"),
        ),
    ),
)


def _to_doc(entry: AuditEntry) -> dict[str, Any]:
    return {
        "_id": entry.entry_id,
        "tenant_id": entry.tenant_id or PLATFORM,
        "at": entry.at,
        "actor": {
            "kind": entry.actor.kind.value,
            "subject": entry.actor.subject,
            "tenant_id": entry.actor.tenant_id,
            "roles": list(entry.actor.roles),
        },
        "action": entry.action,
        "target": {"kind": entry.target_kind, "id": entry.target_id},
        "before": entry.before,
        "after": entry.after,
        "changes": list(entry.changes),
        "outcome": entry.outcome,
        "detail": entry.detail,
    }


def _from_doc(doc: dict[str, Any]) -> AuditEntry:
    actor = doc["actor"]
    return AuditEntry(
        entry_id=doc["_id"],
        at=doc["at"],
        tenant_id=None if doc["tenant_id"] == PLATFORM else doc["tenant_id"],
        actor=Actor(
            ActorKind(actor["kind"]),
            actor["subject"],
            actor.get("tenant_id"),
            tuple(actor["roles"]),
        ),
        action=doc["action"],
        target_kind=doc["target"]["kind"],
        target_id=doc["target"]["id"],
        before=doc.get("before"),
        after=doc.get("after"),
        changes=tuple(doc.get("changes", ())),
        outcome=doc.get("outcome", "ok"),
        detail=doc.get("detail", ""),
    )


class MongoAuditLog:
    """``AuditLog`` on the platform database."""

    def __init__(self, operator: OperatorStore) -> None:
        self._col = operator.collection(COLLECTION)

    async def append(self, entry: AuditEntry) -> None:
        """Store one entry."""
        await self._col.insert_one(_to_doc(entry))

    async def search(self, query: AuditQuery) -> Page[AuditEntry]:
        """Newest first; a tenant's query goes through the tenant wall."""
        flt: dict[str, Any] = {}
        if query.actor:
            flt["actor.subject"] = query.actor
        if query.action_prefix:
            # An anchored prefix of a plain action name (regex metacharacters are dropped).
            flt["action"] = {"$regex": f"^{_literal(query.action_prefix)}"}
        if query.target_kind:
            flt["target.kind"] = query.target_kind
        if query.target_id:
            flt["target.id"] = query.target_id
        if query.since or query.until:
            flt["at"] = {
                **({"$gte": query.since} if query.since else {}),
                **({"$lte": query.until} if query.until else {}),
            }
        if query.after:
            flt["_id"] = {"$lt": query.after}
        limit = query.limit + 1
        if query.tenant_id is not None:
            wall = TenantCollection(self._col, query.tenant_id)
            docs = await wall.find_list(flt, sort=[("_id", -1)], limit=limit)
        else:
            if query.platform_only:
                flt["tenant_id"] = PLATFORM
            docs = [d async for d in self._col.find(flt).sort([("_id", -1)]).limit(limit)]
        items = [_from_doc(d) for d in docs[: query.limit]]
        more = len(docs) > query.limit
        return Page(items, items[-1].entry_id if more and items else None)


def _literal(prefix: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "" for c in prefix)
