"""The ACD configuration API on a real NATS and FerretDB: CRUD of skills, groups, queues, agent
profiles, the routing table and the VIP list; validation naming field and rule; items in use not
deleted; imports all or nothing; permissions; the tenant wall; config_changed sent to the owner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from callmesh.acd.adapters import config_store
from callmesh.core.bus import Bus
from callmesh.core.settings import PlatformSettings
from callmesh.proto.subjects import AcdOp

from .acd_api import A, Acd, B, config_owner, running_acd


@pytest.fixture
async def acd(platform_settings: PlatformSettings, bus: Bus) -> AsyncIterator[Acd]:
    async with running_acd(platform_settings, bus) as running:
        yield running


def rule(response: httpx.Response) -> tuple[str, str]:
    """The first broken rule of a 422: (field, rule)."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    error = response.json()["errors"][0]
    return error["field"], error["rule"]


async def base(acd: Acd, tenant: str = A) -> None:
    """A skill, a group, two agents and two queues."""
    for path, body in (
        ("skills", {"skill_id": "french", "name": "French"}),
        ("skills", {"skill_id": "billing"}),
        ("agent-groups", {"group_id": "team-a", "max_on_break": 1}),
        (
            "agents",
            {
                "agent_id": "ag-1",
                "endpoint": "user:1001",
                "skills": {"french": 5},
                "groups": ["team-a"],
            },
        ),
        ("agents", {"agent_id": "ag-2", "endpoint": "gateway:gw1:+33100000000"}),
        ("queues", {"queue_id": "support", "skill": "billing"}),
        (
            "queues",
            {
                "queue_id": "sales",
                "skill": "french",
                "steps": [{"after_s": 0, "min_level": 4}, {"after_s": 20, "min_level": None}],
                "overflow": {"max_wait": {"kind": "queue", "target": "support"}},
                "max_wait_s": 120,
            },
        ),
    ):
        response = await acd.post(path, body, tenant)
        assert response.status_code == 201, response.text


async def test_crud_round_trip_and_load_gives_the_engine_config(acd: Acd, bus: Bus) -> None:
    owner = await config_owner(bus, A)
    await base(acd)
    queue = (await acd.get("queues/sales")).json()
    assert queue["skill"] == "french"
    assert queue["steps"] == [
        {"after_s": 0.0, "min_level": 4},
        {"after_s": 20.0, "min_level": None},
    ]
    queue["priority"] = 7
    queue["announcements"]["position"] = True
    assert (await acd.put("queues/sales", queue)).json()["priority"] == 7
    agent = (await acd.get("agents/ag-1")).json()
    assert agent["skills"] == {"french": 5}
    assert (await acd.put("routing-table/+33611111111", {"agent_id": "ag-1"})).status_code == 200
    assert (await acd.put("vip/+33622222222", {"bonus": 5})).status_code == 200

    config = await config_store.load_tenant_config(await acd.runtime.store.tenant(A))
    assert set(config.queues) == {"sales", "support"}
    assert config.queues["sales"].priority == 7
    assert config.queues["sales"].announcements.position
    assert config.queues["sales"].overflow
    assert config.agents["ag-1"].skills == {"french": 5}
    assert config.agents["ag-2"].endpoint == "gateway:gw1:+33100000000"
    assert config.groups["team-a"].max_on_break == 1
    assert config.routing_table == {"+33611111111": "ag-1"}
    assert config.vip == {"+33622222222": 5}
    # every write told the owner
    assert len(owner.of(AcdOp.CONFIG_CHANGED)) == 10


async def test_lists_are_pages(acd: Acd) -> None:
    for i in range(5):
        assert (await acd.post("skills", {"skill_id": f"s{i}"})).status_code == 201
    first = (await acd.get("skills", params={"limit": 2})).json()
    assert [s["skill_id"] for s in first["items"]] == ["s0", "s1"]
    second = (await acd.get("skills", params={"limit": 2, "after": first["next"]})).json()
    assert [s["skill_id"] for s in second["items"]] == ["s2", "s3"]
    last = (await acd.get("skills", params={"limit": 2, "after": second["next"]})).json()
    assert [s["skill_id"] for s in last["items"]] == ["s4"]
    assert last["next"] is None


async def test_writes_work_while_nobody_owns_the_tenant(acd: Acd) -> None:
    # no owner answers config_changed: the write still succeeds
    assert (await acd.post("skills", {"skill_id": "x"})).status_code == 201


@pytest.mark.parametrize(
    ("change", "field", "rule_part"),
    [
        ({"steps": [{"after_s": 0, "min_level": 6}]}, "body.steps.0.min_level", "less_than"),
        ({"steps": [{"after_s": -1, "min_level": 2}]}, "body.steps.0.after_s", "greater_than"),
        (
            {"steps": [{"after_s": 20, "min_level": 4}, {"after_s": 10, "min_level": 2}]},
            "body.steps[1].after_s",
            "greater than the previous",
        ),
        ({"no_answer_timeout_s": 0}, "body.no_answer_timeout_s", "greater_than"),
        ({"max_length": -1}, "body.max_length", "greater_than_equal"),
        ({"ring": "everyone"}, "body.ring", "literal_error"),
        ({"strategies": []}, "body.strategies", "too_short"),
        ({"strategies": ["random", "random"]}, "body.strategies[1]", "must not repeat"),
        ({"skill": "klingon"}, "body.skill", "catalog"),
        ({"groups": ["nope"]}, "body.groups[0]", "existing agent group"),
        (
            {"overflow": {"max_wait": {"kind": "queue", "target": "q1"}}},
            "body.overflow.max_wait.target",
            "not be the queue itself",
        ),
        (
            {"overflow": {"max_length": {"kind": "queue", "target": "nowhere"}}},
            "body.overflow.max_length.target",
            "existing queue",
        ),
        (
            {"overflow": {"closed": {"kind": "voicemail", "target": ""}}},
            "body.overflow.closed.target",
            "too_short",
        ),
        (
            {"overflow": {"weather": {"kind": "voicemail", "target": "x"}}},
            "body.overflow",
            "literal",
        ),
        ({"queue_id": "bad id"}, "body.queue_id", "pattern"),
        ({"unknown": 1}, "body.unknown", "extra_forbidden"),
        ({"skill": None}, "body.skill", "must be set"),
    ],
)
async def test_queue_validation_names_field_and_rule(
    acd: Acd, change: dict[str, Any], field: str, rule_part: str
) -> None:
    assert (await acd.post("skills", {"skill_id": "french"})).status_code == 201
    body = {"queue_id": "q1", "skill": "french", **change}
    got_field, got_rule = rule(await acd.post("queues", body))
    assert got_field.startswith(field), (got_field, got_rule)
    assert rule_part in got_rule, (got_field, got_rule)
    assert (await acd.get("queues/q1")).status_code == 404


@pytest.mark.parametrize(
    ("change", "field", "rule_part"),
    [
        ({"endpoint": "sip:1001"}, "body.endpoint", "user:<sip user>"),
        ({"endpoint": "gateway:gw1"}, "body.endpoint", "gateway:<gateway>:<number>"),
        ({"endpoint": "node:fs-1:abc"}, "body.endpoint", "node:<node>:<number>"),
        ({"endpoint": "dial:"}, "body.endpoint", "dial:<dial string>"),
        ({"skills": {"french": 0}}, "body.skills.french", "greater_than_equal"),
        ({"skills": {"klingon": 3}}, "body.skills.klingon", "catalog"),
        ({"groups": ["ghosts"]}, "body.groups[0]", "existing agent group"),
    ],
)
async def test_agent_validation_names_field_and_rule(
    acd: Acd, change: dict[str, Any], field: str, rule_part: str
) -> None:
    assert (await acd.post("skills", {"skill_id": "french"})).status_code == 201
    got_field, got_rule = rule(await acd.post("agents", {"agent_id": "ag-9", **change}))
    assert got_field == field, (got_field, got_rule)
    assert rule_part in got_rule, (got_field, got_rule)


@pytest.mark.parametrize(
    "endpoint",
    ["", "user:1001", "gateway:gw-1:+33100000000", "node:fs-1:2001", "dial:{x=1}sofia/gw/1"],
)
async def test_every_endpoint_form_is_accepted(acd: Acd, endpoint: str) -> None:
    response = await acd.post("agents", {"agent_id": "ag-9", "endpoint": endpoint})
    assert response.status_code == 201, response.text


async def test_items_in_use_are_not_deleted_and_409_names_the_users(acd: Acd) -> None:
    await base(acd)
    assert (await acd.put("routing-table/+1555", {"agent_id": "ag-2"})).status_code == 200
    cases = {
        "skills/french": {"queues": ["sales"], "agents": ["ag-1"]},
        "agent-groups/team-a": {"agents": ["ag-1"]},
        "queues/support": {"queues": ["sales"]},
        "agents/ag-2": {"routing_table": ["+1555"]},
    }
    for path, users in cases.items():
        response = await acd.delete(path)
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "in_use"
        assert response.json()["details"]["used_by"] == users
    # once the users are gone, deleting works
    assert (await acd.delete("routing-table/+1555")).status_code == 204
    assert (await acd.delete("agents/ag-2")).status_code == 204
    assert (await acd.delete("queues/sales")).status_code == 204
    assert (await acd.delete("queues/support")).status_code == 204
    assert (await acd.delete("skills/billing")).status_code == 204
    assert (await acd.delete("skills/billing")).status_code == 404


async def test_create_twice_is_409_and_put_needs_an_existing_item(acd: Acd) -> None:
    assert (await acd.post("skills", {"skill_id": "x"})).status_code == 201
    assert (await acd.post("skills", {"skill_id": "x"})).status_code == 409
    assert (await acd.put("skills/y", {"skill_id": "y"})).status_code == 404
    field, rule_text = rule(await acd.put("skills/x", {"skill_id": "z"}))
    assert (field, rule_text) == ("body.skill_id", "must equal the id in the path")


async def test_routing_import_is_all_or_nothing_with_row_numbered_errors(acd: Acd) -> None:
    await base(acd)
    rows = [
        {"number": "+1001", "agent_id": "ag-1"},
        {"number": "+1002", "agent_id": "ghost"},
        {"number": "+1001", "agent_id": "ag-2"},
    ]
    response = await acd.post("routing-table/import", rows)
    assert response.status_code == 422
    fields = {(e["field"], e["rule"]) for e in response.json()["errors"]}
    assert fields == {
        ("body[1].agent_id", "must be an existing agent"),
        ("body[2].number", "must not repeat an earlier row"),
    }
    assert (await acd.get("routing-table")).json()["items"] == []
    # a row of the wrong shape: pydantic names the row too
    bad = await acd.post("routing-table/import", [{"number": "+1", "agent_id": "ag-1"}, {}])
    assert rule(bad)[0].startswith("body.1.")
    good = await acd.post(
        "routing-table/import", [*rows[:1], {"number": "+1003", "agent_id": "ag-2"}]
    )
    assert good.json() == {"imported": 2, "replaced": False}
    replaced = await acd.post(
        "routing-table/import", [{"number": "+1004", "agent_id": "ag-1"}], params={"replace": True}
    )
    assert replaced.json() == {"imported": 1, "replaced": True}
    items = (await acd.get("routing-table")).json()["items"]
    assert items == [{"number": "+1004", "agent_id": "ag-1", "note": ""}]


async def test_vip_import_and_expiry(acd: Acd) -> None:
    rows = [
        {"number": "+2001", "bonus": 10},
        {"number": "+2002", "bonus": 20, "expires_at": "2001-01-01T00:00:00Z"},
        {"number": "+2003", "bonus": 30, "expires_at": "2999-01-01T00:00:00+02:00"},
    ]
    response = await acd.post("vip/import", rows)
    assert response.json() == {"imported": 3, "replaced": False}, response.text
    listed = (await acd.get("vip")).json()["items"]
    assert [v["number"] for v in listed] == ["+2001", "+2002", "+2003"]
    config = await config_store.load_tenant_config(await acd.runtime.store.tenant(A))
    assert config.vip == {"+2001": 10, "+2003": 30}
    dup = await acd.post("vip/import", [{"number": "+1", "bonus": 1}, {"number": "+1", "bonus": 2}])
    assert dup.status_code == 422
    assert dup.json()["errors"][0]["field"] == "body[1].number"
    field, _ = rule(await acd.post("vip/import", [{"number": "+1", "bonus": 5000}]))
    assert field == "body.0.bonus"


async def test_without_permission_403(acd: Acd) -> None:
    agent = acd.headers(A, "agent")  # queues.read only
    url = acd.url
    assert (await acd.http.get(url("queues"), headers=agent)).status_code == 200
    refused = await acd.http.post(url("queues"), json={"queue_id": "q"}, headers=agent)
    assert refused.status_code == 403
    assert refused.json()["details"]["permissions"] == ["queues.write"]
    assert (await acd.http.get(url("agents"), headers=agent)).status_code == 403
    assert (await acd.http.put(url("vip/+1"), json={"bonus": 1}, headers=agent)).status_code == 403
    supervisor = acd.headers(A, "supervisor")  # reads, agents.supervise, not queues.write
    assert (
        await acd.http.post(url("agent-groups"), json={"group_id": "g"}, headers=supervisor)
    ).status_code == 201
    assert (
        await acd.http.post(url("skills"), json={"skill_id": "s"}, headers=supervisor)
    ).status_code == 403
    assert (await acd.http.get(url("queues"))).status_code == 401


async def test_tenant_b_cannot_see_or_touch_tenant_a(acd: Acd) -> None:
    await base(acd, A)
    # through the API, with B's token on B's routes: nothing of A
    for path in ("skills", "queues", "agents", "agent-groups", "vip", "routing-table"):
        assert (await acd.get(path, B)).json()["items"] == [], path
    assert (await acd.get("queues/sales", B)).status_code == 404
    assert (await acd.delete("skills/french", B)).status_code == 404
    # B's token on A's routes is refused
    response = await acd.http.get(acd.url("queues", A), headers=acd.headers(B))
    assert response.status_code == 403
    # B's queue cannot name A's skill
    assert (
        rule(await acd.post("queues", {"queue_id": "q", "skill": "french"}, B))[0] == "body.skill"
    )
    # and B's config as the engine loads it is empty
    config = await config_store.load_tenant_config(await acd.runtime.store.tenant(B))
    assert config.queues == {}
    assert config.agents == {}
    assert config.groups == {}
