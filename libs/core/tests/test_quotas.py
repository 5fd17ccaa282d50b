"""Tenant quotas on a real nats-server: limits hold under concurrency, refusals are audited."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from callmesh.core.bus import Bus
from callmesh.core.errors import InvalidInput, QuotaExceeded
from callmesh.core.quotas import QuotaKind, Quotas, QuotaUsage
from callmesh.core.settings import PlatformSettings
from callmesh.proto.subjects import EVENTS, Bucket, Domain, stream_of
from callmesh.proto.v1.event_pb2 import Event

SERVICE = "acd"


@pytest.fixture
async def quotas(bus: Bus) -> AsyncIterator[Quotas]:
    instance = Quotas(bus, service=SERVICE)
    yield instance
    await instance.close()


def refusals(tenant: str, kind: QuotaKind, service: str = SERVICE) -> float:
    value = REGISTRY.get_sample_value(
        "callmesh_quota_refusals_total", {"tenant": tenant, "kind": kind, "service": service}
    )
    return value or 0.0


async def last_refusal_event(bus: Bus, tenant: str) -> Event:
    """The last TenantQuotaExceeded stored for a tenant, read back from the admin stream."""
    subject = bus.subjects.event(EVENTS["tenant_quota_exceeded"], tenant_id=tenant)
    stream = bus.subjects.stream(stream_of(Domain.TENANT))
    msg = await bus.js.get_last_msg(stream, subject)
    assert msg.data is not None
    return Event.FromString(msg.data)


async def used(quotas: Quotas, tenant: str, kind: QuotaKind) -> int:
    return (await quotas.usage(tenant))[kind].used


# --- take, refuse, release -----------------------------------------------------------------------


async def test_takes_up_to_the_limit_then_refuses_naming_tenant_quota_and_numbers(
    bus: Bus, quotas: Quotas
) -> None:
    await quotas.set_limit("acme", QuotaKind.CALLS_PSTN, 10)
    for n in range(1, 11):
        grant = await quotas.take("acme", QuotaKind.CALLS_PSTN)
        assert (grant.used, grant.limit, grant.amount) == (n, 10, 1)
    before = refusals("acme", QuotaKind.CALLS_PSTN)

    with pytest.raises(QuotaExceeded) as refused:
        await quotas.take("acme", QuotaKind.CALLS_PSTN)

    err = refused.value
    assert err.status == 429
    assert err.code == "quota_exceeded"
    assert err.message == "quota calls_pstn of tenant acme exhausted: 10 of 10 in use, 1 requested"
    assert err.details == {
        "tenant_id": "acme",
        "kind": "calls_pstn",
        "limit": 10,
        "used": 10,
        "requested": 1,
    }
    assert refusals("acme", QuotaKind.CALLS_PSTN) == before + 1
    event = await last_refusal_event(bus, "acme")
    assert event.tenant_id == "acme"
    assert event.source.service == "test"
    body = event.tenant_quota_exceeded
    assert (body.kind, body.limit, body.used, body.requested, body.service) == (
        "calls_pstn",
        10,
        10,
        1,
        SERVICE,
    )
    # The refusal wrote nothing.
    assert await used(quotas, "acme", QuotaKind.CALLS_PSTN) == 10


async def test_a_take_of_several_units_is_refused_whole_when_they_do_not_all_fit(
    quotas: Quotas,
) -> None:
    await quotas.set_limit("acme", QuotaKind.RECORDING_BYTES, 1_000)
    await quotas.take("acme", QuotaKind.RECORDING_BYTES, 700)

    with pytest.raises(QuotaExceeded, match="700 of 1000 in use, 400 requested"):
        await quotas.take("acme", QuotaKind.RECORDING_BYTES, 400)

    grant = await quotas.take("acme", QuotaKind.RECORDING_BYTES, 300)
    assert grant.used == 1_000


async def test_a_release_frees_a_unit_for_the_next_take(quotas: Quotas) -> None:
    await quotas.set_limit("acme", QuotaKind.AGENTS_LOGGED_IN, 2)
    await quotas.take("acme", QuotaKind.AGENTS_LOGGED_IN)
    await quotas.take("acme", QuotaKind.AGENTS_LOGGED_IN)
    with pytest.raises(QuotaExceeded):
        await quotas.take("acme", QuotaKind.AGENTS_LOGGED_IN)

    assert await quotas.release("acme", QuotaKind.AGENTS_LOGGED_IN) == QuotaUsage(1, 2)

    grant = await quotas.take("acme", QuotaKind.AGENTS_LOGGED_IN)
    assert grant.used == 2


async def test_a_release_never_goes_below_zero_and_says_so(
    quotas: Quotas, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="callmesh.core.quotas"):
        # Nothing was ever taken: nothing is written.
        assert await quotas.release("acme", QuotaKind.CALLS_SIP) == QuotaUsage(0, None)
        await quotas.take("acme", QuotaKind.CALLS_SIP, 2)
        assert await quotas.release("acme", QuotaKind.CALLS_SIP, 5) == QuotaUsage(0, None)

    warnings = [r for r in caplog.records if "below zero" in r.getMessage()]
    assert len(warnings) == 2
    assert await used(quotas, "acme", QuotaKind.CALLS_SIP) == 0


async def test_an_unlimited_quota_still_counts(quotas: Quotas) -> None:
    for _ in range(25):
        grant = await quotas.take("acme", QuotaKind.IVR_SESSIONS)
        assert grant.limit is None

    assert (await quotas.usage("acme"))[QuotaKind.IVR_SESSIONS] == QuotaUsage(25, None)
    # A limit lifted with None is unlimited again, and still counts.
    await quotas.set_limit("acme", QuotaKind.IVR_SESSIONS, 25)
    with pytest.raises(QuotaExceeded):
        await quotas.take("acme", QuotaKind.IVR_SESSIONS)
    await quotas.set_limit("acme", QuotaKind.IVR_SESSIONS, None)
    assert (await quotas.take("acme", QuotaKind.IVR_SESSIONS)).used == 26


async def test_setting_a_limit_keeps_what_is_in_use(quotas: Quotas) -> None:
    await quotas.take("acme", QuotaKind.CALLS_WEB, 4)

    assert await quotas.set_limit("acme", QuotaKind.CALLS_WEB, 6) == QuotaUsage(4, 6)
    assert await quotas.set_limit("acme", QuotaKind.CALLS_WEB, 8) == QuotaUsage(4, 8)

    assert (await quotas.usage("acme"))[QuotaKind.CALLS_WEB] == QuotaUsage(4, 8)


async def test_a_limit_lowered_below_use_refuses_takes_but_lets_releases_through(
    quotas: Quotas,
) -> None:
    await quotas.take("acme", QuotaKind.IVR_FLOWS, 5)
    await quotas.set_limit("acme", QuotaKind.IVR_FLOWS, 2)

    with pytest.raises(QuotaExceeded, match="5 of 2 in use, 1 requested"):
        await quotas.take("acme", QuotaKind.IVR_FLOWS)
    for expected in (4, 3, 2):
        assert await quotas.release("acme", QuotaKind.IVR_FLOWS) == QuotaUsage(expected, 2)
    with pytest.raises(QuotaExceeded):
        await quotas.take("acme", QuotaKind.IVR_FLOWS)
    await quotas.release("acme", QuotaKind.IVR_FLOWS)
    assert (await quotas.take("acme", QuotaKind.IVR_FLOWS)).used == 2
    assert (await quotas.usage("acme"))[QuotaKind.IVR_FLOWS].remaining == 0


async def test_set_used_reconciles_a_counter_and_keeps_its_limit(quotas: Quotas) -> None:
    await quotas.set_limit("acme", QuotaKind.CALLS_PSTN, 10)
    await quotas.take("acme", QuotaKind.CALLS_PSTN, 7)

    # The service recounted: only 3 calls really hold a unit (4 were lost in a crash).
    assert await quotas.set_used("acme", QuotaKind.CALLS_PSTN, 3) == QuotaUsage(3, 10)

    assert (await quotas.take("acme", QuotaKind.CALLS_PSTN, 7)).used == 10


# --- concurrency ---------------------------------------------------------------------------------


async def test_fifty_concurrent_takes_from_three_connections_grant_exactly_the_limit(
    bus: Bus, platform_settings: PlatformSettings
) -> None:
    buses = [bus]
    for _ in range(2):
        other = Bus(platform_settings, SERVICE)
        await other.connect(attempts=3)
        buses.append(other)
    handles = [Quotas(b, service=SERVICE) for b in buses]
    try:
        await handles[0].set_limit("acme", QuotaKind.CALLS_PSTN, 20)
        outcomes = await asyncio.gather(
            *(handles[i % 3].take("acme", QuotaKind.CALLS_PSTN) for i in range(50)),
            return_exceptions=True,
        )
        granted = [o for o in outcomes if not isinstance(o, BaseException)]
        refused = [o for o in outcomes if isinstance(o, QuotaExceeded)]
        assert len(granted) == 20
        assert len(refused) == 30, [o for o in outcomes if isinstance(o, BaseException)]
        # Each grant saw a distinct count: no two writers won the same revision.
        assert sorted(g.used for g in granted) == list(range(1, 21))
        assert (await handles[1].usage("acme"))[QuotaKind.CALLS_PSTN] == QuotaUsage(20, 20)
        await asyncio.gather(
            *(handles[i % 3].release("acme", QuotaKind.CALLS_PSTN) for i in range(20))
        )
        assert await used(handles[2], "acme", QuotaKind.CALLS_PSTN) == 0
    finally:
        for handle in handles:
            await handle.close()
        for other in buses[1:]:
            await other.close()


async def test_hold_releases_when_the_block_raises(quotas: Quotas) -> None:
    await quotas.set_limit("acme", QuotaKind.IVR_SESSIONS, 1)

    async def crash_inside() -> None:
        async with quotas.hold("acme", QuotaKind.IVR_SESSIONS) as grant:
            assert grant.used == 1
            raise RuntimeError("flow crashed")

    with pytest.raises(RuntimeError, match="flow crashed"):
        await crash_inside()

    assert await used(quotas, "acme", QuotaKind.IVR_SESSIONS) == 0
    async with quotas.hold("acme", QuotaKind.IVR_SESSIONS):
        assert await used(quotas, "acme", QuotaKind.IVR_SESSIONS) == 1
    assert await used(quotas, "acme", QuotaKind.IVR_SESSIONS) == 0


async def test_hold_releases_when_the_task_is_cancelled(quotas: Quotas) -> None:
    inside = asyncio.Event()

    async def session() -> None:
        async with quotas.hold("acme", QuotaKind.IVR_SESSIONS, 2):
            inside.set()
            await asyncio.Event().wait()  # until cancelled

    task = asyncio.create_task(session())
    await asyncio.wait_for(inside.wait(), 10)
    assert await used(quotas, "acme", QuotaKind.IVR_SESSIONS) == 2

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await used(quotas, "acme", QuotaKind.IVR_SESSIONS) == 0


async def test_takes_cancelled_at_any_point_leave_nothing_taken(quotas: Quotas) -> None:
    tasks = [asyncio.create_task(quotas.take("acme", QuotaKind.CALLS_SIP)) for _ in range(30)]
    # Cancel each at a different point of its round trips (before, during, after the write).
    for i, task in enumerate(tasks):
        await asyncio.sleep(0.0002 * i)
        task.cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    completed = [o for o in outcomes if not isinstance(o, BaseException)]

    await quotas.close()

    assert await used(quotas, "acme", QuotaKind.CALLS_SIP) == len(completed)


# --- rates ---------------------------------------------------------------------------------------


async def test_take_rate_refuses_beyond_the_limit_within_a_second_and_allows_again_in_the_next(
    bus: Bus, quotas: Quotas
) -> None:
    await quotas.set_limit("acme", QuotaKind.CALLS_PER_SECOND, 3)
    outcomes: list[Any] = []
    for _ in range(20):
        second = int(time.time())
        outcomes = await asyncio.gather(
            *(quotas.take_rate("acme") for _ in range(4)), return_exceptions=True
        )
        if int(time.time()) == second:
            break  # all four fell in one window; otherwise try again in a fresh one
        await asyncio.sleep(0.05)
    else:
        pytest.fail("could not fit four takes into one second")
    granted = sorted(o.used for o in outcomes if not isinstance(o, BaseException))
    refused = [o for o in outcomes if isinstance(o, QuotaExceeded)]
    assert granted == [1, 2, 3]
    assert len(refused) == 1
    assert refused[0].message == (
        "quota calls_per_second of tenant acme exhausted: 3 of 3 taken this second, 1 requested"
    )
    assert (await quotas.usage("acme"))[QuotaKind.CALLS_PER_SECOND].limit == 3
    assert (await last_refusal_event(bus, "acme")).tenant_quota_exceeded.kind == "calls_per_second"

    for _ in range(100):
        if int(time.time()) != second:
            break
        await asyncio.sleep(0.05)

    assert (await quotas.take_rate("acme")).used >= 1


async def test_an_unlimited_rate_still_counts_this_second(quotas: Quotas) -> None:
    for _ in range(20):
        second = int(time.time())
        for _ in range(3):
            assert (await quotas.take_rate("acme")).limit is None
        usage = (await quotas.usage("acme"))[QuotaKind.CALLS_PER_SECOND]
        if int(time.time()) == second:
            assert usage == QuotaUsage(3, None)
            return
        await asyncio.sleep(0.05)
    pytest.fail("could not fit the takes into one second")


# --- admin ---------------------------------------------------------------------------------------


async def test_usage_reports_every_kind(quotas: Quotas) -> None:
    await quotas.set_limit("acme", QuotaKind.AGENTS_LOGGED_IN, 50)
    await quotas.take("acme", QuotaKind.AGENTS_LOGGED_IN, 3)
    await quotas.take("acme", QuotaKind.RECORDING_BYTES, 123_456)

    usage = await quotas.usage("acme")

    assert list(usage) == list(QuotaKind)
    assert usage[QuotaKind.AGENTS_LOGGED_IN] == QuotaUsage(3, 50)
    assert usage[QuotaKind.AGENTS_LOGGED_IN].remaining == 47
    assert usage[QuotaKind.RECORDING_BYTES] == QuotaUsage(123_456, None)
    assert usage[QuotaKind.CALLS_PSTN] == QuotaUsage(0, None)
    assert usage[QuotaKind.CALLS_PER_SECOND] == QuotaUsage(0, None)


async def test_tenants_are_independent(quotas: Quotas) -> None:
    await quotas.set_limit("acme", QuotaKind.CALLS_PSTN, 1)
    await quotas.take("acme", QuotaKind.CALLS_PSTN)
    with pytest.raises(QuotaExceeded):
        await quotas.take("acme", QuotaKind.CALLS_PSTN)

    # acme's limit and count touch neither globex nor acme-2 (a tenant whose id starts alike).
    for other in ("globex", "acme-2"):
        for _ in range(3):
            await quotas.take(other, QuotaKind.CALLS_PSTN)
        assert (await quotas.usage(other))[QuotaKind.CALLS_PSTN] == QuotaUsage(3, None)
    assert (await quotas.usage("acme"))[QuotaKind.CALLS_PSTN] == QuotaUsage(1, 1)


async def test_forget_deletes_every_key_of_a_tenant_and_only_that_tenant(
    bus: Bus, quotas: Quotas
) -> None:
    for tenant in ("acme", "acme-2"):
        await quotas.set_limit(tenant, QuotaKind.CALLS_PSTN, 5)
        await quotas.take(tenant, QuotaKind.CALLS_PSTN, 2)
        await quotas.take(tenant, QuotaKind.AGENTS_LOGGED_IN)
        await quotas.take_rate(tenant)

    await quotas.forget("acme")

    usage = await quotas.usage("acme")
    assert all(u == QuotaUsage(0, None) for u in usage.values()), usage
    for bucket in (Bucket.QUOTAS, Bucket.QUOTA_RATES):
        kv = await bus.kv(bucket)
        keys = await kv.keys()
        assert not [k for k in keys if k.startswith("acme.")]
        assert [k for k in keys if k.startswith("acme-2.")]
    assert (await quotas.usage("acme-2"))[QuotaKind.CALLS_PSTN] == QuotaUsage(2, 5)
    # A forgotten tenant starts over.
    assert (await quotas.take("acme", QuotaKind.CALLS_PSTN)).used == 1


async def test_a_refusal_stands_when_its_audit_event_cannot_be_published(
    bus: Bus, quotas: Quotas, caplog: pytest.LogCaptureFixture
) -> None:
    await quotas.set_limit("acme", QuotaKind.CALLS_WEB, 0)
    # Without the admin stream nothing acknowledges the event: the publish fails.
    await bus.js.delete_stream(bus.subjects.stream(stream_of(Domain.TENANT)))

    with (
        caplog.at_level(logging.ERROR, logger="callmesh.core.quotas"),
        pytest.raises(QuotaExceeded, match="0 of 0 in use"),
    ):
        await quotas.take("acme", QuotaKind.CALLS_WEB)

    assert any("could not publish" in r.getMessage() for r in caplog.records)


async def test_an_unreadable_value_is_refused_until_an_admin_sets_it_again(
    bus: Bus, quotas: Quotas
) -> None:
    kv = await bus.kv(Bucket.QUOTAS)
    await kv.put("acme.calls_pstn", b"not json")

    with pytest.raises(Exception, match="unreadable value"):
        await quotas.take("acme", QuotaKind.CALLS_PSTN)

    assert await quotas.set_limit("acme", QuotaKind.CALLS_PSTN, 4) == QuotaUsage(0, 4)
    assert (await quotas.take("acme", QuotaKind.CALLS_PSTN)).used == 1


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda q: q.take("Acme!", QuotaKind.CALLS_PSTN), "tenant_id"),
        (lambda q: q.take("system", QuotaKind.CALLS_PSTN), "tenant_id"),
        (lambda q: q.take("acme", "calls_fax"), "kind"),
        (lambda q: q.take("acme", QuotaKind.CALLS_PER_SECOND), "kind"),
        (lambda q: q.take("acme", QuotaKind.CALLS_PSTN, 0), "amount"),
        (lambda q: q.take("acme", QuotaKind.CALLS_PSTN, -2), "amount"),
        (lambda q: q.take("acme", QuotaKind.CALLS_PSTN, True), "amount"),
        (lambda q: q.release("acme", QuotaKind.CALLS_PSTN, 0), "amount"),
        (lambda q: q.release("acme", QuotaKind.CALLS_PER_SECOND), "kind"),
        (lambda q: q.take_rate("acme", QuotaKind.CALLS_PSTN), "kind"),
        (lambda q: q.take_rate(""), "tenant_id"),
        (lambda q: q.set_limit("acme", QuotaKind.CALLS_PSTN, -1), "limit"),
        (lambda q: q.set_used("acme", QuotaKind.CALLS_PSTN, -1), "used"),
        (lambda q: q.set_used("acme", QuotaKind.CALLS_PER_SECOND, 0), "kind"),
        (lambda q: q.usage("ACME"), "tenant_id"),
        (lambda q: q.forget("acme."), "tenant_id"),
    ],
    ids=[
        "take-bad-tenant",
        "take-reserved-tenant",
        "take-unknown-kind",
        "take-a-rate",
        "take-zero",
        "take-negative",
        "take-bool",
        "release-zero",
        "release-a-rate",
        "take_rate-a-counter",
        "take_rate-empty-tenant",
        "set_limit-negative",
        "set_used-negative",
        "set_used-a-rate",
        "usage-uppercase-tenant",
        "forget-dotted-tenant",
    ],
)
async def test_bad_input_is_refused_naming_the_field(quotas: Quotas, call: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        await call(quotas)

    assert refused.value.field == field
    assert field in refused.value.message
    # Nothing was half-written.
    assert await quotas.usage("acme") == {kind: QuotaUsage(0, None) for kind in QuotaKind}


async def test_hold_gives_nothing_when_the_take_is_refused(quotas: Quotas) -> None:
    await quotas.set_limit("acme", QuotaKind.AGENTS_LOGGED_IN, 0)
    entered = False

    with pytest.raises(QuotaExceeded):
        async with quotas.hold("acme", QuotaKind.AGENTS_LOGGED_IN):
            entered = True

    assert not entered
    assert await used(quotas, "acme", QuotaKind.AGENTS_LOGGED_IN) == 0
