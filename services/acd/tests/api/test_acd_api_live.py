"""Live views and supervisor actions through a real NATS: a stand-in owner subscribed on the
tenant's acd subjects answers; nobody owning the tenant is a 503; a refusal is a 409."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from callmesh.core.bus import Bus
from callmesh.core.settings import PlatformSettings
from callmesh.proto.subjects import AcdOp

from .acd_api import A, Acd, owner_of, running_acd


@pytest.fixture
async def acd(platform_settings: PlatformSettings, bus: Bus) -> AsyncIterator[Acd]:
    async with running_acd(platform_settings, bus) as running:
        yield running


async def test_live_views_come_from_the_owner(acd: Acd, bus: Bus) -> None:
    await owner_of(bus)
    queues = (await acd.get("live/queues")).json()
    assert queues["owner"] == "acd-1"
    assert [(q["queue_id"], q["waiting"]) for q in queues["queues"]] == [
        ("sales", 2),
        ("support", 0),
    ]
    one = (await acd.get("live/queues/sales")).json()
    assert one["longest_wait_s"] == 12.5
    assert [c["call_id"] for c in one["calls"]] == ["c-1", "c-2"]
    assert (await acd.get("live/queues/nowhere")).status_code == 404
    agents = (await acd.get("live/agents")).json()["agents"]
    assert agents[0]["agent_id"] == "ag-1"
    assert agents[0]["state"] == "ready"
    assert agents[0]["skills"] == {"french": 4}
    assert agents[0]["since"].startswith("2026-03-01T09:00:00")


async def test_force_state_sends_the_op_forced_by_the_caller(acd: Acd, bus: Bus) -> None:
    owner = await owner_of(bus)
    ops = {
        "ready": AcdOp.AGENT_READY,
        "not_ready": AcdOp.AGENT_NOT_READY,
        "break": AcdOp.AGENT_BREAK,
        "logged_out": AcdOp.AGENT_LOGOUT,
    }
    supervisor = acd.headers(A, "supervisor", subject="usr_sup")
    for state, op in ops.items():
        response = await acd.http.post(
            acd.url("agents/ag-1/state"),
            json={"state": state, "reason": "meeting"},
            headers=supervisor,
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"agent_id": "ag-1", "state": "not_ready", "reason": "x"}
        (sent,) = owner.of(op)
        assert (sent.agent_id, sent.reason, sent.forced) == ("ag-1", "meeting", True)
        assert sent.requested_by == "usr_sup"


async def test_a_refusal_is_409_with_its_code_and_message(acd: Acd, bus: Bus) -> None:
    await owner_of(bus)
    response = await acd.post("agents/busy/state", {"state": "break", "reason": "lunch"})
    assert response.status_code == 409
    assert response.json()["code"] == "acd_refused"
    assert response.json()["detail"] == "too many agents of team-a on break"


async def test_live_skills_replace_the_agents_skills(acd: Acd, bus: Bus) -> None:
    owner = await owner_of(bus)
    assert (await acd.post("skills", {"skill_id": "french"})).status_code == 201
    response = await acd.put(
        "agents/ag-1/live-skills", {"skills": {"french": 3}, "temporary": True}
    )
    assert response.status_code == 200, response.text
    (sent,) = owner.of(AcdOp.AGENT_SKILLS)
    assert [(s.name, s.level) for s in sent.skills] == [("french", 3)]
    assert sent.temporary
    unknown = await acd.put("agents/ag-1/live-skills", {"skills": {"klingon": 3}})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "body.skills.klingon"
    level = await acd.put("agents/ag-1/live-skills", {"skills": {"french": 9}})
    assert level.status_code == 422


async def test_nobody_owning_the_tenant_is_503(acd: Acd) -> None:
    for response in (
        await acd.get("live/queues"),
        await acd.get("live/agents"),
        await acd.post("agents/ag-1/state", {"state": "ready"}),
    ):
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["retry-after"] == "1"
        assert response.json()["details"]["reason"] == "no_owner"


async def test_live_and_force_need_their_permissions(acd: Acd, bus: Bus) -> None:
    await owner_of(bus)
    qa = acd.headers(A, "qa")  # agents.read, not queues.read nor agents.supervise
    assert (await acd.http.get(acd.url("live/agents"), headers=qa)).status_code == 200
    assert (await acd.http.get(acd.url("live/queues"), headers=qa)).status_code == 403
    forced = await acd.http.post(acd.url("agents/ag-1/state"), json={"state": "ready"}, headers=qa)
    assert forced.status_code == 403
    bad = await acd.post("agents/ag-1/state", {"state": "asleep"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "body.state"
