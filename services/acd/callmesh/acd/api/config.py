"""The ACD configuration API under ``/v1/t/{tenant}/``: skills, queues, agent profiles, agent
groups, the customer->agent routing table and the VIP list.

Reads need ``queues.read`` (skills, queues, VIP list, routing table) or ``agents.read`` (agent
profiles, groups); writes ``queues.write`` or ``agents.supervise``. Every successful write asks the
tenant's acd owner to reload (op ``config_changed``). Lists are pages ordered by id: ``limit`` and
``after`` (the ``next`` of the previous page).
"""

# No ``from __future__ import annotations``: FastAPI evaluates the routes' Annotated aliases.
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Query, Response
from pydantic import BaseModel

from callmesh.acd.adapters import config_store as cs
from callmesh.acd.adapters.config_admin import AcdConfigAdmin
from callmesh.acd.api import models as m
from callmesh.acd.api.common import (
    ERRORS,
    Admin,
    After,
    BusDep,
    IdPath,
    Limit,
    NumberPath,
    config_changed,
    guard,
)
from callmesh.core.errors import InvalidInput
from callmesh.core.http import problem_response
from callmesh.core.permissions import Permission
from callmesh.core.store import Document

_P = Permission
T = TypeVar("T", bound=BaseModel)
MAX_IMPORT = 50_000


def _path_matches(field: str, path_value: str, body_value: str) -> None:
    if path_value != body_value:
        raise InvalidInput(f"body.{field}", "must equal the id in the path")


def _page(page: Any, convert: Callable[[Document], T]) -> "m.PageOut[T]":
    return m.PageOut[T](items=[convert(d) for d in page.items], next=page.next)


async def _check_queue(admin: AcdConfigAdmin, body: m.QueueBody) -> None:
    m.check_queue(body)
    await admin.check_queue(body.domain())


async def _check_agent(admin: AcdConfigAdmin, body: m.AgentBody) -> None:
    m.check_agent(body)
    await admin.check_agent(body.domain())


def _skill(doc: Document) -> m.SkillBody:
    return m.SkillBody.of(cs.skill_of(doc))


def _queue(doc: Document) -> m.QueueBody:
    return m.QueueBody.of(cs.queue_of(doc))


def _agent(doc: Document) -> m.AgentBody:
    return m.AgentBody.of(cs.agent_of(doc))


def _group(doc: Document) -> m.GroupBody:
    return m.GroupBody.of(cs.group_of(doc))


def _vip(doc: Document) -> m.VipOut:
    return m.vip_out(cs.vip_of(doc))


def _routing(doc: Document) -> m.RoutingOut:
    return m.routing_out(cs.routing_of(doc))


def _duplicates(rows: Sequence[Any]) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    first: dict[str, int] = {}
    for index, row in enumerate(rows):
        if row.number in first:
            errors.append(
                {
                    "field": f"body[{index}].number",
                    "rule": "must not repeat an earlier row",
                    "message": f"row {index}: number {row.number} is also in row "
                    f"{first[row.number]}",
                }
            )
        else:
            first[row.number] = index
    return errors


def _refused(errors: list[dict[str, str]]) -> Response:
    shown = "; ".join(e["message"] for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return problem_response(
        422,
        "invalid_input",
        f"nothing imported: {len(errors)} row(s) broke a rule: {shown}{more}",
        errors=errors,
    )


Replace = Annotated[
    bool, Query(description="true: the import becomes the whole table (others deleted)")
]


def routers() -> list[APIRouter]:
    """The ACD configuration routers."""
    read_q, write_q = guard(_P.QUEUES_READ), guard(_P.QUEUES_WRITE)
    read_a, write_a = guard(_P.AGENTS_READ), guard(_P.AGENTS_SUPERVISE)

    # -- skills -----------------------------------------------------------------------------
    skills = APIRouter(prefix="/v1/t/{tenant}/skills", tags=["tenant: acd"], responses=ERRORS)

    @skills.post("", status_code=201, dependencies=write_q)
    async def create_skill(
        tenant: str, body: m.SkillBody, admin: Admin, bus: BusDep
    ) -> m.SkillBody:
        """Add a skill to the catalog (``queues.write``)."""
        await admin.create(cs.SKILLS, cs.skill_doc(body.domain()))
        await config_changed(bus, tenant, "skills")
        return body

    @skills.get("", dependencies=read_q)
    async def list_skills(
        tenant: str, admin: Admin, limit: Limit = 50, after: After = None
    ) -> m.PageOut[m.SkillBody]:
        """The skill catalog (``queues.read``)."""
        return _page(await admin.page(cs.SKILLS, limit, after), _skill)

    @skills.get("/{skill_id}", dependencies=read_q)
    async def get_skill(tenant: str, skill_id: IdPath, admin: Admin) -> m.SkillBody:
        """One skill (``queues.read``)."""
        return _skill(await admin.get(cs.SKILLS, skill_id))

    @skills.put("/{skill_id}", dependencies=write_q)
    async def replace_skill(
        tenant: str, skill_id: IdPath, body: m.SkillBody, admin: Admin, bus: BusDep
    ) -> m.SkillBody:
        """Change a skill's name and description (``queues.write``)."""
        _path_matches("skill_id", skill_id, body.skill_id)
        await admin.replace(cs.SKILLS, cs.skill_doc(body.domain()))
        await config_changed(bus, tenant, "skills")
        return body

    @skills.delete("/{skill_id}", status_code=204, dependencies=write_q)
    async def delete_skill(tenant: str, skill_id: IdPath, admin: Admin, bus: BusDep) -> Response:
        """Remove a skill no queue or agent uses (``queues.write``; 409 names the users)."""
        await admin.delete_skill(skill_id)
        await config_changed(bus, tenant, "skills")
        return Response(status_code=204)

    # -- queues -----------------------------------------------------------------------------
    queues = APIRouter(prefix="/v1/t/{tenant}/queues", tags=["tenant: acd"], responses=ERRORS)

    @queues.post("", status_code=201, dependencies=write_q)
    async def create_queue(
        tenant: str, body: m.QueueBody, admin: Admin, bus: BusDep
    ) -> m.QueueBody:
        """Create a queue (``queues.write``)."""
        await _check_queue(admin, body)
        await admin.create(cs.QUEUES, cs.queue_doc(body.domain()))
        await config_changed(bus, tenant, "queues")
        return body

    @queues.get("", dependencies=read_q)
    async def list_queues(
        tenant: str, admin: Admin, limit: Limit = 50, after: After = None
    ) -> m.PageOut[m.QueueBody]:
        """The tenant's queues (``queues.read``)."""
        return _page(await admin.page(cs.QUEUES, limit, after), _queue)

    @queues.get("/{queue_id}", dependencies=read_q)
    async def get_queue(tenant: str, queue_id: IdPath, admin: Admin) -> m.QueueBody:
        """One queue (``queues.read``)."""
        return _queue(await admin.get(cs.QUEUES, queue_id))

    @queues.put("/{queue_id}", dependencies=write_q)
    async def replace_queue(
        tenant: str, queue_id: IdPath, body: m.QueueBody, admin: Admin, bus: BusDep
    ) -> m.QueueBody:
        """Replace a queue's settings (``queues.write``)."""
        _path_matches("queue_id", queue_id, body.queue_id)
        await admin.get(cs.QUEUES, queue_id)
        await _check_queue(admin, body)
        await admin.replace(cs.QUEUES, cs.queue_doc(body.domain()))
        await config_changed(bus, tenant, "queues")
        return body

    @queues.delete("/{queue_id}", status_code=204, dependencies=write_q)
    async def delete_queue(tenant: str, queue_id: IdPath, admin: Admin, bus: BusDep) -> Response:
        """Delete a queue no other queue overflows to (``queues.write``)."""
        await admin.delete_queue(queue_id)
        await config_changed(bus, tenant, "queues")
        return Response(status_code=204)

    # -- agent groups -----------------------------------------------------------------------
    groups = APIRouter(prefix="/v1/t/{tenant}/agent-groups", tags=["tenant: acd"], responses=ERRORS)

    @groups.post("", status_code=201, dependencies=write_a)
    async def create_group(
        tenant: str, body: m.GroupBody, admin: Admin, bus: BusDep
    ) -> m.GroupBody:
        """Create an agent group (``agents.supervise``)."""
        await admin.create(cs.GROUPS, cs.group_doc(body.domain()))
        await config_changed(bus, tenant, "groups")
        return body

    @groups.get("", dependencies=read_a)
    async def list_groups(
        tenant: str, admin: Admin, limit: Limit = 50, after: After = None
    ) -> m.PageOut[m.GroupBody]:
        """The tenant's agent groups (``agents.read``)."""
        return _page(await admin.page(cs.GROUPS, limit, after), _group)

    @groups.get("/{group_id}", dependencies=read_a)
    async def get_group(tenant: str, group_id: IdPath, admin: Admin) -> m.GroupBody:
        """One agent group (``agents.read``)."""
        return _group(await admin.get(cs.GROUPS, group_id))

    @groups.put("/{group_id}", dependencies=write_a)
    async def replace_group(
        tenant: str, group_id: IdPath, body: m.GroupBody, admin: Admin, bus: BusDep
    ) -> m.GroupBody:
        """Change an agent group (``agents.supervise``)."""
        _path_matches("group_id", group_id, body.group_id)
        await admin.replace(cs.GROUPS, cs.group_doc(body.domain()))
        await config_changed(bus, tenant, "groups")
        return body

    @groups.delete("/{group_id}", status_code=204, dependencies=write_a)
    async def delete_group(tenant: str, group_id: IdPath, admin: Admin, bus: BusDep) -> Response:
        """Delete a group no queue or agent names (``agents.supervise``; 409 names them)."""
        await admin.delete_group(group_id)
        await config_changed(bus, tenant, "groups")
        return Response(status_code=204)

    # -- agent profiles ---------------------------------------------------------------------
    agents = APIRouter(prefix="/v1/t/{tenant}/agents", tags=["tenant: acd"], responses=ERRORS)

    @agents.post("", status_code=201, dependencies=write_a)
    async def create_agent(
        tenant: str, body: m.AgentBody, admin: Admin, bus: BusDep
    ) -> m.AgentBody:
        """Create an agent profile (``agents.supervise``)."""
        await _check_agent(admin, body)
        await admin.create(cs.AGENTS, cs.agent_doc(body.domain()))
        await config_changed(bus, tenant, "agents")
        return body

    @agents.get("", dependencies=read_a)
    async def list_agents(
        tenant: str, admin: Admin, limit: Limit = 50, after: After = None
    ) -> m.PageOut[m.AgentBody]:
        """The tenant's agent profiles (``agents.read``)."""
        return _page(await admin.page(cs.AGENTS, limit, after), _agent)

    @agents.get("/{agent_id}", dependencies=read_a)
    async def get_agent(tenant: str, agent_id: IdPath, admin: Admin) -> m.AgentBody:
        """One agent profile (``agents.read``)."""
        return _agent(await admin.get(cs.AGENTS, agent_id))

    @agents.put("/{agent_id}", dependencies=write_a)
    async def replace_agent(
        tenant: str, agent_id: IdPath, body: m.AgentBody, admin: Admin, bus: BusDep
    ) -> m.AgentBody:
        """Replace an agent profile (``agents.supervise``); admin skill changes apply at once."""
        _path_matches("agent_id", agent_id, body.agent_id)
        await admin.get(cs.AGENTS, agent_id)
        await _check_agent(admin, body)
        await admin.replace(cs.AGENTS, cs.agent_doc(body.domain()))
        await config_changed(bus, tenant, "agents")
        return body

    @agents.delete("/{agent_id}", status_code=204, dependencies=write_a)
    async def delete_agent(tenant: str, agent_id: IdPath, admin: Admin, bus: BusDep) -> Response:
        """Delete an agent profile no queue or routing entry names (``agents.supervise``)."""
        await admin.delete_agent(agent_id)
        await config_changed(bus, tenant, "agents")
        return Response(status_code=204)

    # -- routing table ----------------------------------------------------------------------
    routing = APIRouter(
        prefix="/v1/t/{tenant}/routing-table", tags=["tenant: acd"], responses=ERRORS
    )

    @routing.get("", dependencies=read_q)
    async def list_routing(
        tenant: str, admin: Admin, limit: Limit = 50, after: After = None
    ) -> m.PageOut[m.RoutingOut]:
        """Customer number -> agent entries, by number (``queues.read``)."""
        return _page(await admin.page(cs.ROUTING, limit, after), _routing)

    @routing.get("/{number}", dependencies=read_q)
    async def get_routing(tenant: str, number: NumberPath, admin: Admin) -> m.RoutingOut:
        """One entry (``queues.read``)."""
        return _routing(await admin.get(cs.ROUTING, number))

    @routing.put("/{number}", dependencies=write_q)
    async def put_routing(
        tenant: str, number: NumberPath, body: m.RoutingBody, admin: Admin, bus: BusDep
    ) -> m.RoutingOut:
        """Set the agent a customer number goes to first (``queues.write``)."""
        if not await admin.exists(cs.AGENTS, body.agent_id):
            raise InvalidInput("body.agent_id", "must be an existing agent")
        entry = m.routing_entry(number, body)
        await admin.replace(cs.ROUTING, cs.routing_doc(entry), upsert=True)
        await config_changed(bus, tenant, "routing_table")
        return m.routing_out(entry)

    @routing.delete("/{number}", status_code=204, dependencies=write_q)
    async def delete_routing(
        tenant: str, number: NumberPath, admin: Admin, bus: BusDep
    ) -> Response:
        """Remove one entry (``queues.write``)."""
        await admin.delete(cs.ROUTING, number)
        await config_changed(bus, tenant, "routing_table")
        return Response(status_code=204)

    @routing.post("/import", dependencies=write_q)
    async def import_routing(
        tenant: str,
        rows: Annotated[list[m.RoutingRow], Body(max_length=MAX_IMPORT)],
        admin: Admin,
        bus: BusDep,
        replace: Replace = False,
    ) -> m.ImportOut:
        """Import entries, all or nothing (``queues.write``); errors name their row."""
        errors = _duplicates(rows)
        unknown = set(await admin.missing(cs.AGENTS, sorted({r.agent_id for r in rows})))
        errors += [
            {
                "field": f"body[{index}].agent_id",
                "rule": "must be an existing agent",
                "message": f"row {index}: no agent {row.agent_id}",
            }
            for index, row in enumerate(rows)
            if row.agent_id in unknown
        ]
        if errors:
            return _refused(errors)  # type: ignore[return-value]
        docs = [cs.routing_doc(m.routing_entry(r.number, r)) for r in rows]
        count = await admin.import_all(cs.ROUTING, docs, replace=replace)
        await config_changed(bus, tenant, "routing_table")
        return m.ImportOut(imported=count, replaced=replace)

    # -- VIP list ---------------------------------------------------------------------------
    vip = APIRouter(prefix="/v1/t/{tenant}/vip", tags=["tenant: acd"], responses=ERRORS)

    @vip.get("", dependencies=read_q)
    async def list_vip(
        tenant: str, admin: Admin, limit: Limit = 50, after: After = None
    ) -> m.PageOut[m.VipOut]:
        """VIP entries by number, expired ones included (``queues.read``)."""
        return _page(await admin.page(cs.VIP, limit, after), _vip)

    @vip.get("/{number}", dependencies=read_q)
    async def get_vip(tenant: str, number: NumberPath, admin: Admin) -> m.VipOut:
        """One VIP entry (``queues.read``)."""
        return _vip(await admin.get(cs.VIP, number))

    @vip.put("/{number}", dependencies=write_q)
    async def put_vip(
        tenant: str, number: NumberPath, body: m.VipBody, admin: Admin, bus: BusDep
    ) -> m.VipOut:
        """Set a caller number's priority bonus (``queues.write``)."""
        entry = m.vip_entry(number, body)
        await admin.replace(cs.VIP, cs.vip_doc(entry), upsert=True)
        await config_changed(bus, tenant, "vip")
        return m.vip_out(entry)

    @vip.delete("/{number}", status_code=204, dependencies=write_q)
    async def delete_vip(tenant: str, number: NumberPath, admin: Admin, bus: BusDep) -> Response:
        """Remove one VIP entry (``queues.write``)."""
        await admin.delete(cs.VIP, number)
        await config_changed(bus, tenant, "vip")
        return Response(status_code=204)

    @vip.post("/import", dependencies=write_q)
    async def import_vip(
        tenant: str,
        rows: Annotated[list[m.VipRow], Body(max_length=MAX_IMPORT)],
        admin: Admin,
        bus: BusDep,
        replace: Replace = False,
    ) -> m.ImportOut:
        """Import VIP entries, all or nothing (``queues.write``); errors name their row."""
        errors = _duplicates(rows)
        if errors:
            return _refused(errors)  # type: ignore[return-value]
        docs = [cs.vip_doc(m.vip_entry(r.number, r)) for r in rows]
        count = await admin.import_all(cs.VIP, docs, replace=replace)
        await config_changed(bus, tenant, "vip")
        return m.ImportOut(imported=count, replaced=replace)

    return [skills, queues, groups, agents, routing, vip]
