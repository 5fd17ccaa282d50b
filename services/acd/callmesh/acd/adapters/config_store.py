"""The tenant's ACD configuration in the store: skills, queues, agent profiles, groups, VIP list,
customer->agent routing table and settings, one document per item, each behind the tenant wall.

Documents hold the config in plain JSON shapes (enums as their values, tuples as lists, maps whose
keys are user data as lists of pairs, so no user text becomes a field name). ``load_tenant_config``
builds the engine's ``TenantAcdConfig`` from them (expired VIP entries left out);
``save_tenant_config`` writes a whole config so that loading gives it back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from callmesh.acd.domain.config import (
    AgentProfile,
    AgentStrategy,
    Announcements,
    CallOrder,
    GroupConfig,
    OverflowKind,
    OverflowReason,
    OverflowTarget,
    QueueConfig,
    RequirementStep,
    RingMode,
    StickyConfig,
    TenantAcdConfig,
)
from callmesh.core.store import (
    CollectionSpec,
    DeleteMany,
    Document,
    IndexSpec,
    ReplaceOne,
    TenantCollection,
    TenantStore,
    UpdateOne,
)

SKILLS = "acd_skills"
QUEUES = "acd_queues"
AGENTS = "acd_agents"
GROUPS = "acd_groups"
VIP = "acd_vip"
ROUTING = "acd_routing"
SETTINGS = "acd_settings"

# The collection of each kind and the field that identifies a document in it.
KEYS: Mapping[str, str] = {
    SKILLS: "skill_id",
    QUEUES: "queue_id",
    AGENTS: "agent_id",
    GROUPS: "group_id",
    VIP: "number",
    ROUTING: "number",
    SETTINGS: "key",
}


def _unique(collection: str) -> CollectionSpec:
    key = KEYS[collection]
    return CollectionSpec(
        collection,
        indexes=(IndexSpec((("tenant_id", 1), (key, 1)), unique=True, name=f"tenant_{key}"),),
    )


COLLECTIONS: tuple[CollectionSpec, ...] = (
    _unique(SKILLS),
    _unique(QUEUES),
    CollectionSpec(
        AGENTS,
        indexes=(
            IndexSpec((("tenant_id", 1), ("agent_id", 1)), unique=True, name="tenant_agent_id"),
            IndexSpec((("tenant_id", 1), ("groups", 1)), name="tenant_groups"),
            IndexSpec((("tenant_id", 1), ("skills.skill", 1)), name="tenant_skills"),
        ),
    ),
    _unique(GROUPS),
    _unique(VIP),
    CollectionSpec(
        ROUTING,
        indexes=(
            IndexSpec((("tenant_id", 1), ("number", 1)), unique=True, name="tenant_number"),
            IndexSpec((("tenant_id", 1), ("agent_id", 1)), name="tenant_agent_id"),
        ),
    ),
    _unique(SETTINGS),
)

_NO_ID = {"_id": 0, "tenant_id": 0}


# ---------------------------------------------------------------------------------------------
# Documents <-> domain


@dataclass(frozen=True)
class Skill:
    """An entry of the tenant's skill catalog."""

    skill_id: str
    name: str = ""
    description: str = ""


@dataclass(frozen=True)
class VipEntry:
    """A caller number's customer priority bonus, until ``expires_at`` (None = forever)."""

    number: str
    bonus: int
    expires_at: datetime | None = None
    note: str = ""


@dataclass(frozen=True)
class RoutingEntry:
    """A customer number served by one agent first (customer->agent routing table)."""

    number: str
    agent_id: str
    note: str = ""


def skill_doc(skill: Skill) -> Document:
    """A skill as stored."""
    return {"skill_id": skill.skill_id, "name": skill.name, "description": skill.description}


def skill_of(doc: Mapping[str, Any]) -> Skill:
    """A stored skill."""
    return Skill(str(doc["skill_id"]), str(doc.get("name", "")), str(doc.get("description", "")))


def queue_doc(queue: QueueConfig) -> Document:
    """A queue as stored."""
    a = queue.announcements
    return {
        "queue_id": queue.queue_id,
        "name": queue.name,
        "priority": queue.priority,
        "skill": queue.skill,
        "agents": list(queue.agents),
        "groups": list(queue.groups),
        "steps": [{"after_s": s.after_s, "min_level": s.min_level} for s in queue.steps],
        "call_order": [str(o) for o in queue.call_order],
        "aging_per_s": queue.aging_per_s,
        "strategies": [str(s) for s in queue.strategies],
        "ring": str(queue.ring),
        "progressive_step_s": queue.progressive_step_s,
        "sticky": (
            None
            if queue.sticky is None
            else {"within_s": queue.sticky.within_s, "wait_s": queue.sticky.wait_s}
        ),
        "use_routing_table": queue.use_routing_table,
        "no_answer_timeout_s": queue.no_answer_timeout_s,
        "no_answer_reason": queue.no_answer_reason,
        "wrap_up_s": queue.wrap_up_s,
        "max_wait_s": queue.max_wait_s,
        "max_length": queue.max_length,
        "no_agents_ready_s": queue.no_agents_ready_s,
        "service_level_s": queue.service_level_s,
        "calendar_id": queue.calendar_id,
        "overflow": [
            {"reason": str(reason), "kind": str(t.kind), "target": t.target}
            for reason, t in queue.overflow.items()
        ],
        "announcements": {
            "moh": a.moh,
            "entry": a.entry,
            "periodic": a.periodic,
            "periodic_every_s": a.periodic_every_s,
            "position": a.position,
            "estimated_wait": a.estimated_wait,
            "agent_id_greeting": a.agent_id_greeting,
            "languages": list(a.languages),
        },
    }


def queue_of(doc: Mapping[str, Any]) -> QueueConfig:
    """A stored queue (fields missing from an older document take their defaults)."""
    base = QueueConfig(queue_id=str(doc["queue_id"]))
    sticky = doc.get("sticky")
    ann = doc.get("announcements") or {}
    default_ann = Announcements()
    return QueueConfig(
        queue_id=base.queue_id,
        name=str(doc.get("name", base.name)),
        priority=int(doc.get("priority", base.priority)),
        skill=doc.get("skill"),
        agents=tuple(doc.get("agents", ())),
        groups=tuple(doc.get("groups", ())),
        steps=tuple(
            RequirementStep(float(s["after_s"]), s.get("min_level")) for s in doc.get("steps", ())
        ),
        call_order=tuple(CallOrder(o) for o in doc.get("call_order", base.call_order)),
        aging_per_s=float(doc.get("aging_per_s", base.aging_per_s)),
        strategies=tuple(AgentStrategy(s) for s in doc.get("strategies", base.strategies)),
        ring=RingMode(doc.get("ring", base.ring)),
        progressive_step_s=float(doc.get("progressive_step_s", base.progressive_step_s)),
        sticky=(
            None
            if sticky is None
            else StickyConfig(within_s=float(sticky["within_s"]), wait_s=float(sticky["wait_s"]))
        ),
        use_routing_table=bool(doc.get("use_routing_table", base.use_routing_table)),
        no_answer_timeout_s=float(doc.get("no_answer_timeout_s", base.no_answer_timeout_s)),
        no_answer_reason=str(doc.get("no_answer_reason", base.no_answer_reason)),
        wrap_up_s=float(doc.get("wrap_up_s", base.wrap_up_s)),
        max_wait_s=float(doc.get("max_wait_s", base.max_wait_s)),
        max_length=int(doc.get("max_length", base.max_length)),
        no_agents_ready_s=float(doc.get("no_agents_ready_s", base.no_agents_ready_s)),
        service_level_s=float(doc.get("service_level_s", base.service_level_s)),
        calendar_id=doc.get("calendar_id"),
        overflow={
            OverflowReason(o["reason"]): OverflowTarget(OverflowKind(o["kind"]), str(o["target"]))
            for o in doc.get("overflow", ())
        },
        announcements=Announcements(
            moh=str(ann.get("moh", default_ann.moh)),
            entry=str(ann.get("entry", default_ann.entry)),
            periodic=str(ann.get("periodic", default_ann.periodic)),
            periodic_every_s=float(ann.get("periodic_every_s", default_ann.periodic_every_s)),
            position=bool(ann.get("position", default_ann.position)),
            estimated_wait=bool(ann.get("estimated_wait", default_ann.estimated_wait)),
            agent_id_greeting=bool(ann.get("agent_id_greeting", default_ann.agent_id_greeting)),
            languages=tuple(ann.get("languages", default_ann.languages)),
        ),
    )


def agent_doc(agent: AgentProfile) -> Document:
    """An agent profile as stored (skills and capacity as lists: their keys are user data)."""
    return {
        "agent_id": agent.agent_id,
        "user_id": agent.user_id,
        "display_name": agent.display_name,
        "endpoint": agent.endpoint,
        "skills": [{"skill": s, "level": level} for s, level in agent.skills.items()],
        "groups": list(agent.groups),
        "capacity": [{"channel": c, "count": n} for c, n in agent.capacity.items()],
        "site": agent.site,
        "order": agent.order,
    }


def agent_of(doc: Mapping[str, Any]) -> AgentProfile:
    """A stored agent profile."""
    capacity = doc.get("capacity")
    return AgentProfile(
        agent_id=str(doc["agent_id"]),
        user_id=str(doc.get("user_id", "")),
        display_name=str(doc.get("display_name", "")),
        endpoint=str(doc.get("endpoint", "")),
        skills={str(s["skill"]): int(s["level"]) for s in doc.get("skills", ())},
        groups=tuple(doc.get("groups", ())),
        capacity=(
            {"voice": 1}
            if capacity is None
            else {str(c["channel"]): int(c["count"]) for c in capacity}
        ),
        site=str(doc.get("site", "")),
        order=int(doc.get("order", 0)),
    )


def group_doc(group: GroupConfig) -> Document:
    """A group as stored."""
    return {"group_id": group.group_id, "name": group.name, "max_on_break": group.max_on_break}


def group_of(doc: Mapping[str, Any]) -> GroupConfig:
    """A stored group."""
    return GroupConfig(
        str(doc["group_id"]), str(doc.get("name", "")), int(doc.get("max_on_break", 0))
    )


def vip_doc(entry: VipEntry) -> Document:
    """A VIP entry as stored."""
    return {
        "number": entry.number,
        "bonus": entry.bonus,
        "expires_at": entry.expires_at,
        "note": entry.note,
    }


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def vip_of(doc: Mapping[str, Any]) -> VipEntry:
    """A stored VIP entry."""
    return VipEntry(
        str(doc["number"]),
        int(doc.get("bonus", 0)),
        _utc(doc.get("expires_at")),
        str(doc.get("note", "")),
    )


def routing_doc(entry: RoutingEntry) -> Document:
    """A routing-table entry as stored."""
    return {"number": entry.number, "agent_id": entry.agent_id, "note": entry.note}


def routing_of(doc: Mapping[str, Any]) -> RoutingEntry:
    """A stored routing-table entry."""
    return RoutingEntry(str(doc["number"]), str(doc["agent_id"]), str(doc.get("note", "")))


# ---------------------------------------------------------------------------------------------
# Whole configuration


async def _all(collection: TenantCollection) -> list[Document]:
    return await collection.find_list({}, projection=_NO_ID)


async def load_tenant_config(
    tenants: TenantStore, *, now: datetime | None = None
) -> TenantAcdConfig:
    """The tenant's whole ACD config as the engine takes it (VIP entries expired by ``now``,
    the current time by default, are left out)."""
    moment = now or datetime.now(UTC)
    queues = [queue_of(d) for d in await _all(tenants[QUEUES])]
    agents = [agent_of(d) for d in await _all(tenants[AGENTS])]
    groups = [group_of(d) for d in await _all(tenants[GROUPS])]
    vip = [vip_of(d) for d in await _all(tenants[VIP])]
    routing = [routing_of(d) for d in await _all(tenants[ROUTING])]
    settings = await tenants[SETTINGS].find_one({"key": "settings"}, projection=_NO_ID) or {}
    defaults = TenantAcdConfig(tenant_id=tenants.tenant_id)
    return TenantAcdConfig(
        tenant_id=tenants.tenant_id,
        queues={q.queue_id: q for q in sorted(queues, key=lambda q: q.queue_id)},
        agents={a.agent_id: a for a in sorted(agents, key=lambda a: a.agent_id)},
        groups={g.group_id: g for g in sorted(groups, key=lambda g: g.group_id)},
        vip={v.number: v.bonus for v in vip if v.expires_at is None or v.expires_at > moment},
        routing_table={r.number: r.agent_id for r in routing},
        priority_data_key=str(settings.get("priority_data_key", defaults.priority_data_key)),
    )


async def replace_all(
    collection: TenantCollection, docs: Iterable[Document], *, keep_others: bool = False
) -> None:
    """Make the collection hold exactly ``docs`` (by their key field); others are deleted unless
    ``keep_others``."""
    key = KEYS[collection.raw_name]
    listed = list(docs)
    ops: list[ReplaceOne | DeleteMany] = [ReplaceOne({key: d[key]}, d, upsert=True) for d in listed]
    if not keep_others:
        ops.append(DeleteMany({key: {"$nin": [d[key] for d in listed]}}))
    if ops:
        await collection.bulk_write(ops, ordered=True)


def skills_used(config: TenantAcdConfig) -> set[str]:
    """Every skill a queue or an agent of ``config`` names."""
    used = {q.skill for q in config.queues.values() if q.skill}
    for agent in config.agents.values():
        used.update(agent.skills)
    return {s for s in used if s is not None}


async def save_tenant_config(tenants: TenantStore, config: TenantAcdConfig) -> None:
    """Write ``config`` as the tenant's whole ACD config (what was there before is replaced); the
    skills it names are added to the catalog (other catalog entries are kept)."""
    if config.tenant_id != tenants.tenant_id:
        raise ValueError(
            f"config of tenant {config.tenant_id!r} cannot be saved for {tenants.tenant_id!r}"
        )
    skills = tenants[SKILLS]
    used = sorted(skills_used(config))
    if used:
        await skills.bulk_write(
            [
                UpdateOne({"skill_id": s}, {"$setOnInsert": skill_doc(Skill(s))}, upsert=True)
                for s in used
            ]
        )
    await replace_all(tenants[GROUPS], [group_doc(g) for g in config.groups.values()])
    await replace_all(tenants[QUEUES], [queue_doc(q) for q in config.queues.values()])
    await replace_all(tenants[AGENTS], [agent_doc(a) for a in config.agents.values()])
    await replace_all(
        tenants[VIP], [vip_doc(VipEntry(n, bonus)) for n, bonus in config.vip.items()]
    )
    await replace_all(
        tenants[ROUTING],
        [routing_doc(RoutingEntry(n, agent)) for n, agent in config.routing_table.items()],
    )
    await replace_all(
        tenants[SETTINGS],
        [{"key": "settings", "priority_data_key": config.priority_data_key}],
    )
