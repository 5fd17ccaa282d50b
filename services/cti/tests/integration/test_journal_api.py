"""The call journal end to end: proto events published on a real NATS, folded by cti's consumers
into FerretDB, searched and read through the tenant API with real tokens."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from callmesh.core.auth import (
    StaticKeys,
    TokenIssuer,
    TokenVerifier,
    generate_signing_key,
)
from callmesh.core.bus import Bus
from callmesh.core.runtime import Runtime, create_app
from callmesh.core.settings import PlatformSettings
from callmesh.core.store import Store
from callmesh.core.tenancy import TenantInfo, TenantStatus
from callmesh.cti.adapters.journal_bus import fact_of
from callmesh.cti.adapters.journal_store import COLLECTIONS, CallQuery, MongoCallJournal
from callmesh.cti.app import CtiSettings, build
from callmesh.cti.domain.journal import build_record
from callmesh.proto.subjects import Bucket, Domain
from callmesh.proto.v1 import call_pb2, common_pb2, ivr_pb2, queue_pb2
from callmesh.proto.v1.event_pb2 import Event

A, B = "acme", "globex"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@dataclass
class Cti:
    """A running cti app, an HTTP client on it, and a test token issuer."""

    http: httpx.AsyncClient
    runtime: Runtime
    issuer: TokenIssuer

    def headers(self, tenant_id: str | None, *roles: str) -> dict[str, str]:
        if tenant_id is None:
            token = self.issuer.issue("op-1", operator=True)
        else:
            token = self.issuer.issue("usr_1", tenant_id=tenant_id, roles=list(roles))
        return {"Authorization": f"Bearer {token}"}


@contextlib.asynccontextmanager
async def running_cti(settings: PlatformSettings, bus: Bus) -> AsyncIterator[Cti]:
    """cti as it runs in production, in-process, trusting a test token issuer."""
    platform = settings.model_copy(update={"api_rate_per_s": 1e6, "api_burst": 1_000_000})
    runtime = Runtime(build(CtiSettings(platform=platform, esl_enabled=False)))
    app = create_app(runtime)
    key = generate_signing_key()
    issuer = TokenIssuer(key, "test", platform.jwt_issuer, platform.jwt_audience)
    app.state.token_verifier = TokenVerifier(
        StaticKeys({"test": key.public_key()}),
        issuer=platform.jwt_issuer,
        audience=platform.jwt_audience,
        revocations=runtime.revocations,
    )
    kv = await bus.kv(Bucket.TENANTS)
    for tenant_id in (A, B):
        await kv.put(tenant_id, TenantInfo(tenant_id, TenantStatus.ACTIVE).to_json())
    async with app.router.lifespan_context(app):
        deadline = time.monotonic() + 60
        while not (runtime.started.is_set() and runtime.tenant_gate.is_active(B)):
            assert runtime.start_error is None, runtime.start_error
            assert time.monotonic() < deadline, "cti did not start"
            await asyncio.sleep(0.02)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cti") as http:
            yield Cti(http, runtime, issuer)


@pytest.fixture
async def cti(platform_settings: PlatformSettings, bus: Bus) -> AsyncIterator[Cti]:
    async with running_cti(platform_settings, bus) as running:
        yield running


async def until(
    check: Callable[[], Awaitable[Any]], what: str | Callable[[], str], timeout: float = 30
) -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, (
            f"never happened: {what if isinstance(what, str) else what()}"
        )
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# Events


class CallEvents:
    """Proto events of one call, each with its own id and time."""

    def __init__(self, bus: Bus, tenant_id: str, call_id: str, start: datetime) -> None:
        self.bus, self.tenant_id, self.call_id, self.start = bus, tenant_id, call_id, start
        self.events: list[Event] = []

    def at(self, seconds: float) -> Event:
        event = self.bus.new_event(tenant_id=self.tenant_id, call_id=self.call_id)
        event.time.FromDatetime(self.start + timedelta(seconds=seconds))
        self.events.append(event)
        return event


def answered_call(
    bus: Bus,
    tenant_id: str,
    call_id: str,
    start: datetime,
    *,
    caller: str = "+33611111111",
    agent: str = "ag-2",
    queue: str = "sales",
) -> list[Event]:
    """Inbound: IVR, queue, an agent answers, recording, the caller hangs up."""
    c = CallEvents(bus, tenant_id, call_id, start)
    e = c.at(0).call_created
    e.channel_uuid, e.direction, e.role = (
        f"{call_id}-a",
        common_pb2.CALL_DIRECTION_INBOUND,
        common_pb2.LEG_ROLE_CUSTOMER,
    )
    e.caller.number, e.caller.name, e.destination_number = caller, "Ann", "+33140000000"
    e.callee.number = "+33140000000"
    e.variables["callmesh_tenant"] = tenant_id
    c.at(0.1).call_answered.channel_uuid = f"{call_id}-a"
    n = c.at(0.5).ivr_node_entered
    n.flow_id, n.flow_version, n.node_id = "main", 3, "menu"
    v = c.at(3).ivr_variable_set
    v.flow_id, v.name, v.value = "main", "customer.tier", "gold"
    left = c.at(4).ivr_flow_left
    left.flow_id, left.outcome, left.duration_ms = "main", ivr_pb2.IVR_OUTCOME_QUEUED, 3500
    q = c.at(4).queue_entered
    q.queue_id = queue
    q.data["order"] = "A-17"
    o = c.at(5).agent_offered
    o.agent_id, o.queue_id, o.attempt = agent, queue, 1
    b = c.at(5).call_created
    b.channel_uuid, b.direction, b.role = (
        f"{call_id}-b",
        common_pb2.CALL_DIRECTION_OUTBOUND,
        common_pb2.LEG_ROLE_AGENT,
    )
    b.callee.number, b.destination_number = "1002", "1002"
    ans = c.at(8).call_answered
    ans.channel_uuid, ans.role = f"{call_id}-b", common_pb2.LEG_ROLE_AGENT
    aa = c.at(8).agent_answered
    aa.agent_id, aa.queue_id, aa.ring_ms = agent, queue, 3000
    ql = c.at(8).queue_left
    ql.queue_id, ql.reason, ql.agent_id = queue, queue_pb2.QUEUE_LEAVE_REASON_ANSWERED, agent
    br = c.at(8.1).call_bridged
    br.a_channel_uuid, br.b_channel_uuid = f"{call_id}-a", f"{call_id}-b"
    rs = c.at(9).recording_started
    rs.channel_uuid, rs.recording_id = f"{call_id}-a", f"rec-{call_id}"
    rt = c.at(60).recording_stopped
    rt.channel_uuid, rt.recording_id, rt.media_id = f"{call_id}-a", f"rec-{call_id}", "m-1"
    h = c.at(60).call_hung_up
    h.channel_uuid, h.cause, h.q850_code = f"{call_id}-a", "NORMAL_CLEARING", 16
    h.side = call_pb2.HANGUP_SIDE_CALLER
    h2 = c.at(60.2).call_hung_up
    h2.channel_uuid, h2.cause, h2.side = (
        f"{call_id}-b",
        "NORMAL_CLEARING",
        call_pb2.HANGUP_SIDE_CALLER,
    )
    return c.events


def busy_call(bus: Bus, tenant_id: str, call_id: str, start: datetime) -> list[Event]:
    """Outbound to a busy number."""
    c = CallEvents(bus, tenant_id, call_id, start)
    e = c.at(0).call_created
    e.channel_uuid, e.direction, e.role = (
        f"{call_id}-a",
        common_pb2.CALL_DIRECTION_OUTBOUND,
        common_pb2.LEG_ROLE_CUSTOMER,
    )
    e.caller.number, e.callee.number = "+33140000000", "+33699999999"
    e.destination_number = "+33699999999"
    h = c.at(4).call_hung_up
    h.channel_uuid, h.cause, h.q850_code = f"{call_id}-a", "USER_BUSY", 17
    h.side = call_pb2.HANGUP_SIDE_CALLEE
    return c.events


async def publish_all(bus: Bus, events: list[Event], seed: int = 7) -> None:
    shuffled = list(events)
    random.Random(seed).shuffle(shuffled)
    await asyncio.gather(*(bus.publish(e) for e in shuffled))


async def call_with(cti: Cti, tenant_id: str, call_id: str, count: int) -> dict[str, Any]:
    """The call once the journal holds ``count`` of its events."""
    headers = cti.headers(tenant_id, "tenant_admin")

    async def check() -> dict[str, Any] | None:
        got = await cti.http.get(f"/v1/t/{tenant_id}/calls/{call_id}", headers=headers)
        listed = await cti.http.get(f"/v1/t/{tenant_id}/calls?limit=500", headers=headers)
        summaries = [c for c in listed.json()["items"] if c["call_id"] == call_id]
        # The search's record follows the call's events: wait until both have them all.
        if (
            got.status_code == 200
            and got.json()["event_count"] == count
            and [c["event_count"] for c in summaries] == [count]
        ):
            return dict(got.json())
        last[:] = [got.status_code, got.text[:2000]]
        return None

    last: list[Any] = []

    return dict(await until(check, lambda: f"{call_id} with {count} events (last: {last})"))


# ---------------------------------------------------------------------------------------------
# Tests


async def test_a_call_published_out_of_order_becomes_one_complete_record(
    cti: Cti, bus: Bus
) -> None:
    events = answered_call(bus, A, "c-1", T0)
    await publish_all(bus, events)
    call = await call_with(cti, A, "c-1", len(events))
    assert call["outcome"] == "answered"
    assert call["direction"] == "inbound"
    assert call["caller"] == {"number": "+33611111111", "name": "Ann"}
    assert call["dialled"] == "+33140000000"
    assert call["answered_by"] == "ag-2"
    assert call["agent_ids"] == ["ag-2"]
    assert call["queue_ids"] == ["sales"]
    assert call["recording_ids"] == ["rec-c-1"]
    assert call["data"] == {"customer.tier": "gold", "order": "A-17"}
    assert call["hangup"]["side"] == "caller"
    assert call["hangup"]["q850"] == 16
    assert [leg["uuid"] for leg in call["legs"]] == ["c-1-a", "c-1-b"]
    assert call["ivr"][0]["outcome"] == "queued"
    assert call["queues"][0]["reason"] == "answered"
    assert datetime.fromisoformat(call["started_at"]) == T0
    assert datetime.fromisoformat(call["ended_at"]) == T0 + timedelta(seconds=60.2)
    assert [e["kind"] for e in call["timeline"]][:2] == ["call.created", "call.answered"]
    # The record is the domain's fold of exactly these events.
    facts = [fact_of(e)[2] for e in events]
    assert call["duration_ms"] == build_record(A, "c-1", facts).duration_ms == 60200


async def test_redelivered_and_racing_events_leave_the_record_as_if_each_came_once(
    platform_settings: PlatformSettings, bus: Bus
) -> None:
    events = answered_call(bus, A, "c-race", T0)
    facts = [fact_of(e)[2] for e in events]
    stores = [Store(platform_settings, collections=COLLECTIONS) for _ in range(2)]
    try:
        await stores[0].provision()
        writers = [MongoCallJournal(s) for s in stores]
        # Every event twice, from two writers on two clients at once, in a shuffled order.
        work = [(w, f) for f in facts for w in writers]
        random.Random(3).shuffle(work)
        outcomes = await asyncio.gather(*(w.apply(A, "c-race", f) for w, f in work))
        assert [o.value for o in outcomes].count("duplicate") == len(facts)
        expected = build_record(A, "c-race", facts)
        assert await writers[0].get(A, "c-race") == expected
        tenant = await stores[0].tenant(A)
        stored = await tenant.collection("calls").find_list({"call_id": "c-race"})
        assert len(stored) == 1
        assert stored[0]["event_count"] == len(facts)
        assert stored[0]["outcome"] == expected.outcome == "answered"
        page = await writers[1].search(A, CallQuery())
        assert [c.call_id for c in page.items] == ["c-race"]
    finally:
        for s in stores:
            await s.close()


async def test_search_filters_by_time_number_agent_queue_outcome_and_direction(
    cti: Cti, bus: Bus
) -> None:
    await publish_all(bus, answered_call(bus, A, "c-1", T0, caller="+111", agent="ag-1"))
    await publish_all(
        bus, answered_call(bus, A, "c-2", T0 + timedelta(hours=1), caller="+222", queue="care")
    )
    await publish_all(bus, busy_call(bus, A, "c-3", T0 + timedelta(hours=2)))
    await call_with(cti, A, "c-1", 16)
    await call_with(cti, A, "c-2", 16)
    await call_with(cti, A, "c-3", 2)
    headers = cti.headers(A, "supervisor")

    async def ids(**params: Any) -> list[str]:
        got = await cti.http.get(f"/v1/t/{A}/calls", params=params, headers=headers)
        assert got.status_code == 200, got.text
        return [c["call_id"] for c in got.json()["items"]]

    async def finds(expected: list[str], **params: Any) -> None:
        # Late writers of a call fold the same record again after it is complete; on FerretDB
        # (not MongoDB) a search racing such a write can miss the call, so look again.
        seen: list[list[str]] = []

        async def check() -> bool:
            seen.append(await ids(**params))
            return seen[-1] == expected

        await until(check, lambda: f"{params} finds {expected} (saw {seen[-3:]})", timeout=5)

    await finds(["c-3", "c-2", "c-1"])  # newest first
    await finds(["c-1"], number="+111")
    await finds(["c-2"], caller="+222")
    await finds([], callee="+222")
    await finds(["c-3"], number="+33699999999")
    await finds(["c-1"], agent="ag-1")
    await finds(["c-2"], queue="care")
    await finds(["c-3"], outcome="busy")
    await finds(["c-2", "c-1"], outcome="answered")
    await finds(["c-3"], direction="outbound")
    window = {"from": (T0 + timedelta(minutes=30)).isoformat(), "to": "2026-03-01T11:00:00"}
    await finds(["c-2"], **window)
    await finds([], **window, outcome="busy")


async def test_pages_follow_the_cursor_newest_first_without_gaps_or_repeats(
    cti: Cti, bus: Bus
) -> None:
    # Two calls share a start time: the cursor must still cut between them.
    starts = [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)]
    names = ["p-0", "p-1a", "p-1b", "p-2"]
    for name, start in zip(names, starts, strict=True):
        await publish_all(bus, busy_call(bus, A, name, start))
    for name in names:
        await call_with(cti, A, name, 2)
    headers = cti.headers(A, "report_viewer")
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 1}
    while True:
        got = await cti.http.get(f"/v1/t/{A}/calls", params=params, headers=headers)
        assert got.status_code == 200, got.text
        page = got.json()
        seen += [c["call_id"] for c in page["items"]]
        if page["next"] is None:
            break
        params["after"] = page["next"]
    assert seen == ["p-2", "p-1b", "p-1a", "p-0"]


async def test_a_tenant_never_sees_another_tenants_calls(cti: Cti, bus: Bus) -> None:
    await publish_all(bus, busy_call(bus, A, "secret", T0))
    await call_with(cti, A, "secret", 2)
    b_admin = cti.headers(B, "tenant_admin")
    listed = await cti.http.get(f"/v1/t/{A}/calls", headers=b_admin)
    assert listed.status_code == 403
    assert listed.headers["content-type"] == "application/problem+json"
    assert (await cti.http.get(f"/v1/t/{A}/calls/secret", headers=b_admin)).status_code == 403
    own = await cti.http.get(f"/v1/t/{B}/calls", headers=b_admin)
    assert own.status_code == 200
    assert own.json()["items"] == []
    # B's path with A's call id: as absent as an id that exists nowhere.
    missing = await cti.http.get(f"/v1/t/{B}/calls/secret", headers=b_admin)
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    operator = await cti.http.get(f"/v1/t/{A}/calls", headers=cti.headers(None))
    assert [c["call_id"] for c in operator.json()["items"]] == ["secret"]


@pytest.mark.parametrize(
    ("roles", "status"),
    [
        (["tenant_admin"], 200),
        (["supervisor"], 200),
        (["report_viewer"], 200),
        (["qa"], 200),
        (["agent"], 403),
        (["wfm_planner"], 403),
    ],
)
async def test_reading_calls_takes_the_calls_read_permission(
    cti: Cti, roles: list[str], status: int
) -> None:
    got = await cti.http.get(f"/v1/t/{A}/calls", headers=cti.headers(A, *roles))
    assert got.status_code == status, got.text


async def test_calls_need_a_token_and_a_known_tenant(cti: Cti) -> None:
    assert (await cti.http.get(f"/v1/t/{A}/calls")).status_code == 401
    unknown = await cti.http.get("/v1/t/initech/calls", headers=cti.headers(None))
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"outcome": "won"}, "query.outcome"),
        ({"direction": "sideways"}, "query.direction"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 501}, "query.limit"),
        ({"from": "yesterday"}, "query.from"),
        ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "query.from"),
        ({"after": "not-a-cursor"}, "query.after"),
        ({"number": ""}, "query.number"),
        ({"agent": "x" * 65}, "query.agent"),
    ],
)
async def test_bad_search_parameters_are_refused_naming_the_parameter(
    cti: Cti, params: dict[str, Any], field: str
) -> None:
    got = await cti.http.get(f"/v1/t/{A}/calls", params=params, headers=cti.headers(A, "qa"))
    assert got.status_code == 422, got.text
    assert got.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in got.json()["errors"]] == [field]


def journal_count(outcome: str) -> float:
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name == "callmesh_cti_journal_events":
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.labels["outcome"] == outcome:
                    total += sample.value
    return total


async def test_garbage_and_unusable_events_are_counted_and_skipped_and_the_journal_carries_on(
    cti: Cti, bus: Bus
) -> None:
    unusable_before = journal_count("unusable")
    # Not a protobuf at all, on a subject the journal consumes.
    subject = bus.subjects.events(Domain.CALL, tenant_id=A, name="created")
    await bus.js.publish(subject, b"\xff\x00garbage")
    # A well-formed event without a call id.
    nameless = bus.new_event(tenant_id=A)
    nameless.call_held.channel_uuid = "x"
    await bus.publish(nameless)
    events = busy_call(bus, A, "after-garbage", T0)
    await publish_all(bus, events)
    await call_with(cti, A, "after-garbage", 2)

    async def counted() -> bool:
        return journal_count("unusable") >= unusable_before + 1

    await until(counted, "the unusable event counted")
