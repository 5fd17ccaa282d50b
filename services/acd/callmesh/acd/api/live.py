"""Live views and supervisor actions, answered by the tenant's acd owner over the bus.

``GET /live/queues`` and ``/live/queues/{queue_id}`` (``queues.read``), ``GET /live/agents``
(``agents.read``); ``POST /agents/{agent_id}/state`` and ``PUT /agents/{agent_id}/live-skills``
(``agents.supervise``). While nobody owns the tenant (a failover) they answer 503 with
``Retry-After``; a refusal by the owner answers 409 with its code and message.
"""

# No ``from __future__ import annotations``: FastAPI evaluates the routes' Annotated aliases.
from datetime import UTC

from fastapi import APIRouter

from callmesh.acd.adapters import config_store as cs
from callmesh.acd.api import models as m
from callmesh.acd.api.common import ERRORS, Admin, BusDep, Caller, IdPath, ask_owner, guard
from callmesh.core.errors import Conflict, InvalidInput, NotFound
from callmesh.core.permissions import Permission
from callmesh.proto.subjects import AcdOp
from callmesh.proto.v1 import acd_pb2, agent_pb2

_P = Permission

FORCED_OPS: dict[str, AcdOp] = {
    "ready": AcdOp.AGENT_READY,
    "not_ready": AcdOp.AGENT_NOT_READY,
    "break": AcdOp.AGENT_BREAK,
    "logged_out": AcdOp.AGENT_LOGOUT,
}


def state_name(state: int) -> str:
    """``AGENT_STATE_ON_CALL`` -> ``on_call``."""
    try:
        name = agent_pb2.AgentState.Name(state)
    except ValueError:
        return "unspecified"
    return name.removeprefix("AGENT_STATE_").lower()


def queue_live(q: acd_pb2.QueueLive) -> m.QueueLiveOut:
    """A queue's live view for the API."""
    return m.QueueLiveOut(
        queue_id=q.queue_id,
        waiting=q.waiting,
        longest_wait_s=q.longest_wait_s,
        agents_logged_in=q.agents_logged_in,
        agents_ready=q.agents_ready,
        agents_busy=q.agents_busy,
        estimated_wait_s=q.estimated_wait_s,
        offered=q.offered,
        answered=q.answered,
        abandoned=q.abandoned,
        overflowed=q.overflowed,
        no_answers=q.no_answers,
        service_level=q.service_level,
        open=q.open,
    )


def waiting_call(c: acd_pb2.WaitingCallLive) -> m.WaitingCallOut:
    """A waiting call for the API."""
    return m.WaitingCallOut(
        call_id=c.call_id,
        queue_id=c.queue_id,
        position=c.position,
        priority=c.priority,
        waited_s=c.waited_s,
        caller_number=c.caller_number,
        language=c.language,
        offered_to=list(c.offered_to),
    )


def agent_live(a: acd_pb2.AgentLive) -> m.AgentLiveOut:
    """An agent's live view for the API."""
    return m.AgentLiveOut(
        agent_id=a.agent_id,
        state=state_name(a.state),  # type: ignore[arg-type]
        reason=a.reason,
        since=a.since.ToDatetime(tzinfo=UTC) if a.HasField("since") else None,
        endpoint=a.endpoint,
        skills={s.name: s.level for s in a.skills},
        groups=list(a.groups),
        call_id=a.call_id,
        queue_id=a.queue_id,
        calls_today=a.calls_today,
        talk_s_today=a.talk_s_today,
        no_answers_today=a.no_answers_today,
    )


def refusal(reply: acd_pb2.AgentCommandReply) -> Conflict:
    """The owner's refusal as a 409 naming its code."""
    code = acd_pb2.AcdErrorCode.Name(reply.error_code).removeprefix("ACD_ERROR_CODE_").lower()
    return Conflict(
        reply.message or f"refused ({code})",
        code=f"acd_{code}",
        state=state_name(reply.state),
    )


def command_out(agent_id: str, reply: acd_pb2.AgentCommandReply) -> m.AgentCommandOut:
    """The agent's state after a command the owner applied."""
    if not reply.ok:
        raise refusal(reply)
    return m.AgentCommandOut(
        agent_id=agent_id,
        state=state_name(reply.state),  # type: ignore[arg-type]
        reason=reply.reason,
    )


def routers() -> list[APIRouter]:
    """The live and supervisor-action routers."""
    read_q = guard(_P.QUEUES_READ)
    read_a, supervise = guard(_P.AGENTS_READ), guard(_P.AGENTS_SUPERVISE)
    live = APIRouter(prefix="/v1/t/{tenant}/live", tags=["tenant: acd live"], responses=ERRORS)

    @live.get("/queues", dependencies=read_q)
    async def live_queues(tenant: str, bus: BusDep) -> m.LiveQueuesOut:
        """Every queue now: waiting, longest wait, agents, counts, SL (``queues.read``)."""
        reply = await ask_owner(bus, tenant, AcdOp.LIVE, acd_pb2.LiveRequest(), acd_pb2.LiveReply)
        return m.LiveQueuesOut(queues=[queue_live(q) for q in reply.queues], owner=reply.owner)

    @live.get("/queues/{queue_id}", dependencies=read_q)
    async def live_queue(tenant: str, queue_id: IdPath, bus: BusDep) -> m.QueueLiveDetailOut:
        """One queue now with its waiting calls in order (``queues.read``)."""
        request = acd_pb2.LiveRequest(queue_ids=[queue_id], include_calls=True)
        reply = await ask_owner(bus, tenant, AcdOp.LIVE, request, acd_pb2.LiveReply)
        for q in reply.queues:
            if q.queue_id == queue_id:
                calls = sorted(
                    (c for c in reply.calls if c.queue_id == queue_id), key=lambda c: c.position
                )
                return m.QueueLiveDetailOut(
                    **queue_live(q).model_dump(), calls=[waiting_call(c) for c in calls]
                )
        raise NotFound(f"no queue {queue_id}")

    @live.get("/agents", dependencies=read_a)
    async def live_agents(tenant: str, bus: BusDep) -> m.LiveAgentsOut:
        """Every logged-in agent now: state, reason, since, call, counts (``agents.read``)."""
        request = acd_pb2.LiveRequest(include_agents=True)
        reply = await ask_owner(bus, tenant, AcdOp.LIVE, request, acd_pb2.LiveReply)
        return m.LiveAgentsOut(agents=[agent_live(a) for a in reply.agents], owner=reply.owner)

    actions = APIRouter(prefix="/v1/t/{tenant}/agents", tags=["tenant: acd live"], responses=ERRORS)

    @actions.post("/{agent_id}/state", dependencies=supervise)
    async def force_state(
        tenant: str, agent_id: IdPath, body: m.ForceStateIn, caller: Caller, bus: BusDep
    ) -> m.AgentCommandOut:
        """Force an agent ready, not ready, on break or logged out (``agents.supervise``)."""
        command = acd_pb2.AgentCommand(
            agent_id=agent_id, reason=body.reason, requested_by=caller.subject, forced=True
        )
        op = FORCED_OPS[body.state]
        reply = await ask_owner(bus, tenant, op, command, acd_pb2.AgentCommandReply)
        return command_out(agent_id, reply)

    @actions.put("/{agent_id}/live-skills", dependencies=supervise)
    async def live_skills(
        tenant: str,
        agent_id: IdPath,
        body: m.LiveSkillsIn,
        caller: Caller,
        admin: Admin,
        bus: BusDep,
    ) -> m.AgentCommandOut:
        """Replace a logged-in agent's skills now; ``temporary`` ones revert at logout
        (``agents.supervise``)."""
        for missing in await admin.missing(cs.SKILLS, sorted(body.skills)):
            raise InvalidInput(f"body.skills.{missing}", "must be a skill of the catalog (/skills)")
        command = acd_pb2.AgentCommand(
            agent_id=agent_id,
            requested_by=caller.subject,
            forced=True,
            temporary=body.temporary,
            skills=[agent_pb2.Skill(name=s, level=lv) for s, lv in sorted(body.skills.items())],
        )
        reply = await ask_owner(bus, tenant, AcdOp.AGENT_SKILLS, command, acd_pb2.AgentCommandReply)
        return command_out(agent_id, reply)

    return [live, actions]
