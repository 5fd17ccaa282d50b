"""Changes to a tenant's ACD config one item at a time, keeping references whole: a queue names
skills, groups, agents and overflow queues that exist; nothing still referenced is deleted.

Everything goes through the tenant's ``TenantStore``. Errors name the field of the request body
they are about (``body.skill``), so the API hands them on as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymongo.errors import DuplicateKeyError

from callmesh.acd.adapters import config_store as cs
from callmesh.acd.domain.config import AgentProfile, OverflowKind, QueueConfig
from callmesh.core.errors import Conflict, InvalidInput, NotFound
from callmesh.core.store import Document, ReplaceOne, TenantStore

MAX_PAGE = 500
_NO_ID = {"_id": 0, "tenant_id": 0}
_WHAT = {
    cs.SKILLS: "skill",
    cs.QUEUES: "queue",
    cs.AGENTS: "agent",
    cs.GROUPS: "agent group",
    cs.VIP: "VIP entry",
    cs.ROUTING: "routing-table entry",
}


@dataclass(frozen=True)
class Page:
    """One page of documents; ``next`` is the key to pass as ``after`` (None on the last page)."""

    items: list[Document]
    next: str | None


def _listed(ids: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


class AcdConfigAdmin:
    """One tenant's ACD configuration, item by item."""

    def __init__(self, tenants: TenantStore) -> None:
        self.tenants = tenants

    # -- generic ----------------------------------------------------------------------------

    async def page(self, collection: str, limit: int, after: str | None) -> Page:
        """Documents ordered by key, ``limit`` of them after the key ``after``."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput("limit", f"must be between 1 and {MAX_PAGE}")
        key = cs.KEYS[collection]
        flt: dict[str, Any] = {key: {"$gt": after}} if after else {}
        docs = await self.tenants[collection].find_list(
            flt, projection=_NO_ID, sort=[(key, 1)], limit=limit + 1
        )
        more = len(docs) > limit
        items = docs[:limit]
        return Page(items, str(items[-1][key]) if more else None)

    async def get(self, collection: str, key_value: str) -> Document:
        """One document by key; NotFound otherwise."""
        doc = await self.tenants[collection].find_one(
            {cs.KEYS[collection]: key_value}, projection=_NO_ID
        )
        if doc is None:
            raise NotFound(f"no {_WHAT[collection]} {key_value}")
        return doc

    async def exists(self, collection: str, key_value: str) -> bool:
        """Whether a document with this key exists."""
        return await self.tenants[collection].count_documents({cs.KEYS[collection]: key_value}) > 0

    async def missing(self, collection: str, key_values: Sequence[str]) -> list[str]:
        """Those of ``key_values`` with no document, in order."""
        if not key_values:
            return []
        key = cs.KEYS[collection]
        found = set(await self.tenants[collection].distinct(key, {key: {"$in": list(key_values)}}))
        return [k for k in key_values if k not in found]

    async def create(self, collection: str, doc: Document) -> Document:
        """Insert a new document; Conflict when its key is taken."""
        key = cs.KEYS[collection]
        if await self.exists(collection, doc[key]):
            raise Conflict(f"{_WHAT[collection]} {doc[key]} exists already", field=f"body.{key}")
        try:
            await self.tenants[collection].insert_one(doc)
        except DuplicateKeyError:
            raise Conflict(
                f"{_WHAT[collection]} {doc[key]} exists already", field=f"body.{key}"
            ) from None
        return doc

    async def replace(self, collection: str, doc: Document, *, upsert: bool = False) -> Document:
        """Replace the document with this key (NotFound unless it exists or ``upsert``)."""
        key = cs.KEYS[collection]
        result = await self.tenants[collection].replace_one({key: doc[key]}, doc, upsert=upsert)
        if not upsert and result.matched_count == 0:
            raise NotFound(f"no {_WHAT[collection]} {doc[key]}")
        return doc

    async def delete(self, collection: str, key_value: str) -> None:
        """Delete one document (NotFound if absent)."""
        result = await self.tenants[collection].delete_one({cs.KEYS[collection]: key_value})
        if result.deleted_count == 0:
            raise NotFound(f"no {_WHAT[collection]} {key_value}")

    async def _queues_where(self, flt: dict[str, Any]) -> list[str]:
        return sorted(await self.tenants[cs.QUEUES].distinct("queue_id", flt))

    async def _agents_where(self, flt: dict[str, Any]) -> list[str]:
        return sorted(await self.tenants[cs.AGENTS].distinct("agent_id", flt))

    def _in_use(self, what: str, users: dict[str, list[str]]) -> Conflict:
        named = "; ".join(f"{kind}: {_listed(ids)}" for kind, ids in users.items() if ids)
        return Conflict(
            f"{what} is in use ({named})",
            code="in_use",
            used_by={kind: ids for kind, ids in users.items() if ids},
        )

    # -- references -------------------------------------------------------------------------

    async def check_queue(self, queue: QueueConfig) -> None:
        """The skill, groups, agents and overflow queues a queue names exist."""
        if queue.skill is not None and not await self.exists(cs.SKILLS, queue.skill):
            raise InvalidInput("body.skill", "must be a skill of the catalog (/skills)")
        for name, collection, ids in (
            ("groups", cs.GROUPS, queue.groups),
            ("agents", cs.AGENTS, queue.agents),
        ):
            for missing in await self.missing(collection, list(ids)):
                index = list(ids).index(missing)
                raise InvalidInput(
                    f"body.{name}[{index}]", f"must be an existing {_WHAT[collection]}"
                )
        for reason, target in queue.overflow.items():
            if (
                target.kind is OverflowKind.QUEUE
                and target.target != queue.queue_id
                and not await self.exists(cs.QUEUES, target.target)
            ):
                raise InvalidInput(f"body.overflow.{reason}.target", "must be an existing queue")

    async def check_agent(self, agent: AgentProfile) -> None:
        """The skills and groups an agent profile names exist."""
        for missing in await self.missing(cs.SKILLS, list(agent.skills)):
            raise InvalidInput(f"body.skills.{missing}", "must be a skill of the catalog (/skills)")
        for missing in await self.missing(cs.GROUPS, list(agent.groups)):
            index = list(agent.groups).index(missing)
            raise InvalidInput(f"body.groups[{index}]", "must be an existing agent group")

    # -- deletes that keep references whole -------------------------------------------------

    async def delete_skill(self, skill_id: str) -> None:
        """Delete a skill no queue or agent uses."""
        await self.get(cs.SKILLS, skill_id)
        users = {
            "queues": await self._queues_where({"skill": skill_id}),
            "agents": await self._agents_where({"skills.skill": skill_id}),
        }
        if any(users.values()):
            raise self._in_use(f"skill {skill_id}", users)
        await self.delete(cs.SKILLS, skill_id)

    async def delete_group(self, group_id: str) -> None:
        """Delete a group no queue or agent names."""
        await self.get(cs.GROUPS, group_id)
        users = {
            "queues": await self._queues_where({"groups": group_id}),
            "agents": await self._agents_where({"groups": group_id}),
        }
        if any(users.values()):
            raise self._in_use(f"agent group {group_id}", users)
        await self.delete(cs.GROUPS, group_id)

    async def delete_queue(self, queue_id: str) -> None:
        """Delete a queue no other queue overflows to."""
        await self.get(cs.QUEUES, queue_id)
        referring = await self.tenants[cs.QUEUES].find_list(
            {"overflow.target": queue_id}, projection=_NO_ID
        )
        users = {
            "queues": sorted(
                str(d["queue_id"])
                for d in referring
                if d["queue_id"] != queue_id
                and any(
                    o.get("kind") == "queue" and o.get("target") == queue_id
                    for o in d.get("overflow", ())
                )
            )
        }
        if any(users.values()):
            raise self._in_use(f"queue {queue_id}", users)
        await self.delete(cs.QUEUES, queue_id)

    async def delete_agent(self, agent_id: str) -> None:
        """Delete an agent profile no queue or routing-table entry names."""
        await self.get(cs.AGENTS, agent_id)
        users = {
            "queues": await self._queues_where({"agents": agent_id}),
            "routing_table": sorted(
                await self.tenants[cs.ROUTING].distinct("number", {"agent_id": agent_id})
            ),
        }
        if any(users.values()):
            raise self._in_use(f"agent {agent_id}", users)
        await self.delete(cs.AGENTS, agent_id)

    # -- bulk -------------------------------------------------------------------------------

    async def import_all(
        self, collection: str, docs: Sequence[Document], *, replace: bool = False
    ) -> int:
        """Write checked documents in one bulk write; with ``replace`` the others are deleted."""
        if replace:
            await cs.replace_all(self.tenants[collection], docs)
        elif docs:
            key = cs.KEYS[collection]
            await self.tenants[collection].bulk_write(
                [ReplaceOne({key: d[key]}, d, upsert=True) for d in docs]
            )
        return len(docs)
