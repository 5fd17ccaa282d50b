"""Agent commands through the owner: the state machine's answers and refusals, the agents
quota taken at login and given back at logout, config reloads, live views, the tenant wall."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from callmesh.acd.domain.config import GroupConfig, TenantAcdConfig
from callmesh.core.bus import Bus
from callmesh.core.quotas import QuotaKind, Quotas
from callmesh.core.settings import PlatformSettings
from callmesh.core.store import Store
from callmesh.proto.subjects import AcdOp
from callmesh.proto.v1.acd_pb2 import AcdErrorCode
from callmesh.proto.v1.agent_pb2 import AgentState, Skill

from .acd_runtime_rig import Rig, agent, call_id, eventually, queue, running, write_tenant

pytestmark = pytest.mark.slow


@pytest.fixture
async def rig(platform_settings: PlatformSettings, bus: Bus, store: Store) -> AsyncIterator[Rig]:
    async with running(platform_settings, bus, store) as r:
        yield r


def config(tenant: str = "acme") -> TenantAcdConfig:
    return TenantAcdConfig(
        tenant_id=tenant,
        queues={"sales": queue("sales", skill="sales")},
        agents={
            "ann": agent("ann", "1001", groups=("day",), sales=3),
            "bob": agent("bob", "1002", groups=("day",), sales=2),
        },
        groups={"day": GroupConfig("day", max_on_break=1)},
    )


async def test_agent_commands_change_states_and_refusals_say_why(rig: Rig) -> None:
    await rig.configure(config())
    await rig.start_acd("acd-1")
    unknown = await rig.agent(AcdOp.AGENT_LOGIN, "zed")
    assert (unknown.ok, unknown.error_code) == (False, AcdErrorCode.ACD_ERROR_CODE_UNKNOWN_AGENT)
    assert unknown.state == AgentState.AGENT_STATE_LOGGED_OUT
    empty = await rig.agent(AcdOp.AGENT_READY, "")
    assert (empty.ok, empty.error_code) == (False, AcdErrorCode.ACD_ERROR_CODE_INVALID_ARGUMENT)
    assert "agent_id" in empty.message
    not_in = await rig.agent(AcdOp.AGENT_READY, "ann")
    assert not_in.error_code == AcdErrorCode.ACD_ERROR_CODE_UNKNOWN_AGENT

    login = await rig.agent(AcdOp.AGENT_LOGIN, "ann")
    assert (login.ok, login.state, login.reason) == (
        True,
        AgentState.AGENT_STATE_NOT_READY,
        "login",
    )
    assert (await rig.agent(AcdOp.AGENT_READY, "ann")).state == AgentState.AGENT_STATE_READY
    lunch = await rig.agent(AcdOp.AGENT_NOT_READY, "ann", reason="lunch")
    assert (lunch.state, lunch.reason) == (AgentState.AGENT_STATE_NOT_READY, "lunch")
    wrap = await rig.agent(AcdOp.AGENT_END_WRAP_UP, "ann")
    assert (wrap.ok, wrap.error_code) == (False, AcdErrorCode.ACD_ERROR_CODE_REFUSED)
    assert "wrap-up" in wrap.message
    assert wrap.state == AgentState.AGENT_STATE_NOT_READY
    # Breaks: one of group "day" at a time.
    assert (await rig.agent(AcdOp.AGENT_BREAK, "ann", reason="coffee")).state == (
        AgentState.AGENT_STATE_BREAK
    )
    assert (await rig.agent(AcdOp.AGENT_LOGIN, "bob", ready=True)).ok
    refused = await rig.agent(AcdOp.AGENT_BREAK, "bob", reason="coffee")
    assert (refused.ok, refused.error_code) == (False, AcdErrorCode.ACD_ERROR_CODE_REFUSED)
    assert "maximum is 1" in refused.message
    assert refused.state == AgentState.AGENT_STATE_READY
    forced = await rig.agent(
        AcdOp.AGENT_BREAK, "bob", reason="meeting", requested_by="sup", forced=True
    )
    assert forced.state == AgentState.AGENT_STATE_BREAK
    # Temporary skills: bob gets support for now.
    skills = await rig.agent(
        AcdOp.AGENT_SKILLS, "bob", skills=[Skill(name="support", level=4)], temporary=True
    )
    assert skills.ok
    live = {a.agent_id: a for a in (await rig.live()).agents}
    assert {s.name: s.level for s in live["bob"].skills} == {"support": 4}
    bad = await rig.agent(AcdOp.AGENT_SKILLS, "bob", skills=[Skill(name="support", level=9)])
    assert bad.error_code == AcdErrorCode.ACD_ERROR_CODE_INVALID_ARGUMENT
    out = await rig.agent(AcdOp.AGENT_LOGOUT, "ann", reason="shift over")
    assert (out.ok, out.state) == (True, AgentState.AGENT_STATE_LOGGED_OUT)
    await eventually(lambda: rig.of("agent_logged_out", agent_id="ann"), "logged out event")
    assert rig.of("agent_logged_in", agent_id="ann")
    changes = [
        (e.agent_state_changed.to_state, e.agent_state_changed.reason)
        for e in rig.of("agent_state_changed", agent_id="ann")
    ]
    assert changes[:3] == [
        (AgentState.AGENT_STATE_NOT_READY, "login"),
        (AgentState.AGENT_STATE_READY, ""),
        (AgentState.AGENT_STATE_NOT_READY, "lunch"),
    ]


async def test_the_agents_quota_is_taken_at_login_and_given_back_at_logout(
    rig: Rig, bus: Bus
) -> None:
    await rig.configure(config())
    quotas = Quotas(bus, service="test")
    await quotas.set_limit("acme", QuotaKind.AGENTS_LOGGED_IN, 1)
    await rig.start_acd("acd-1")
    assert (await rig.agent(AcdOp.AGENT_LOGIN, "ann")).ok
    # Logging in again is no second unit.
    assert (await rig.agent(AcdOp.AGENT_LOGIN, "ann", ready=True)).ok
    over = await rig.agent(AcdOp.AGENT_LOGIN, "bob")
    assert (over.ok, over.error_code) == (False, AcdErrorCode.ACD_ERROR_CODE_QUOTA_EXCEEDED)
    assert "agents_logged_in" in over.message
    assert over.state == AgentState.AGENT_STATE_LOGGED_OUT
    assert (await quotas.usage("acme"))[QuotaKind.AGENTS_LOGGED_IN].used == 1
    assert (await rig.agent(AcdOp.AGENT_LOGOUT, "ann")).ok

    async def released() -> bool:
        return (await quotas.usage("acme"))[QuotaKind.AGENTS_LOGGED_IN].used == 0

    await eventually(released, "the unit given back")
    assert (await rig.agent(AcdOp.AGENT_LOGIN, "bob")).ok
    assert (await quotas.usage("acme"))[QuotaKind.AGENTS_LOGGED_IN].used == 1


async def test_config_changed_applies_new_queues_and_agents_at_once(rig: Rig) -> None:
    await rig.configure(config())
    await rig.start_acd("acd-1")
    unknown = await rig.enqueue(call_id(), "support")
    assert (unknown.ok, unknown.error_code) == (False, AcdErrorCode.ACD_ERROR_CODE_UNKNOWN_QUEUE)
    wider = config()
    wider.queues["support"] = queue("support", skill="support")
    wider.agents["cat"] = agent("cat", "1003", support=5)
    await rig.configure(wider)
    reply = await rig.enqueue(call_id(), "support")
    assert (reply.ok, reply.queue_id, reply.position) == (True, "support", 1)
    assert (await rig.agent(AcdOp.AGENT_LOGIN, "cat", ready=True)).ok
    await eventually(lambda: rig.node.originates_to("1003"), "the new agent offered the call")
    queues = {q.queue_id for q in (await rig.live()).queues}
    assert queues == {"sales", "support"}


async def test_enqueue_is_idempotent_and_bad_requests_name_the_field(rig: Rig) -> None:
    await rig.configure(config())
    await rig.start_acd("acd-1")
    first, second = call_id(), call_id()
    assert (await rig.enqueue(first, "sales")).position == 1
    assert (await rig.enqueue(second, "sales")).position == 2
    again = await rig.enqueue(first, "sales")
    assert (again.ok, again.position) == (True, 1)
    assert [c.call_id for c in (await rig.live()).calls] == [first, second]
    await eventually(lambda: len(rig.of("queue_entered")) == 2, "two entries")
    bad = await rig.enqueue("", "sales")
    assert (bad.ok, bad.error_code) == (False, AcdErrorCode.ACD_ERROR_CODE_INVALID_ARGUMENT)
    assert "call_id" in bad.message


async def test_tenant_b_never_sees_tenant_a(rig: Rig, bus: Bus) -> None:
    await rig.configure(config())
    await write_tenant(bus, "globex")
    await rig.configure(config("globex"), tell=False)
    await rig.start_acd("acd-1")
    assert (await rig.agent(AcdOp.AGENT_LOGIN, "ann", ready=True)).ok
    a_call = call_id()
    assert (await rig.enqueue(a_call, "sales")).ok
    b_live = await rig.live("globex")
    assert list(b_live.agents) == []
    assert list(b_live.calls) == []
    # The same agent id in B is another agent: logged out there.
    assert await rig.state("ann", "globex") == AgentState.AGENT_STATE_LOGGED_OUT
    assert (await rig.agent(AcdOp.AGENT_LOGIN, "bob", tenant="globex")).ok
    a_live = await rig.live()
    assert {a.agent_id for a in a_live.agents} == {"ann"}
    assert all(c.tenant_id == "acme" for c in rig.node.commands)
    # B's lease is its own.
    assert b_live.owner == a_live.owner
    assert (await rig.live("globex")).fencing_token != a_live.fencing_token
