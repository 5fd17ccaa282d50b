"""``Bus.publish_many``: pipelined publishes, each confirmed by the stream, failures handed back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from callmesh.core.bus import Bus, Delivery, Subscription
from callmesh.proto.subjects import STREAMS, Domain
from callmesh.proto.v1.event_pb2 import Event


def hung_up(bus: Bus, i: int, tenant: str = "acme") -> Event:
    event = bus.new_event(tenant_id=tenant, call_id=f"c{i}")
    event.call_hung_up.channel_uuid = f"uuid-{i}"
    return event


async def eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    """Wait for a condition (a liveness bound, not a speed assertion)."""
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110 — conditions on plain state, not on an Event
            await asyncio.sleep(0.02)


def collector() -> tuple[list[Delivery], Callable[[Delivery], Awaitable[None]]]:
    got: list[Delivery] = []

    async def handle(delivery: Delivery) -> None:
        got.append(delivery)

    return got, handle


async def _stored(bus: Bus, domain: Domain = Domain.CALL) -> int:
    spec = next(s for s in STREAMS if domain in s.domains)
    info = await bus.js.stream_info(bus.subjects.stream(spec))
    return int(info.state.messages)


async def test_every_event_is_stored_once_in_order_across_windows(bus: Bus) -> None:
    got, handle = collector()
    await bus.start([Subscription("journal", Domain.CALL, handle)])
    events = [hung_up(bus, i, tenant=f"t{i % 3}") for i in range(250)]
    failures = await bus.publish_many(events, window=64)
    assert failures == []
    assert await _stored(bus) == 250
    await eventually(lambda: len(got) == 250)
    assert sorted(d.stream_sequence for d in got) == list(range(1, 251))
    by_sequence = sorted(got, key=lambda d: d.stream_sequence)
    assert [d.event for d in by_sequence] == events
    assert by_sequence[0].subject == f"{bus.subjects.prefix}.t0.call.hung_up"


async def test_publishing_the_same_events_again_stores_nothing_new(bus: Bus) -> None:
    events = [hung_up(bus, i) for i in range(20)]
    assert await bus.publish_many(events) == []
    assert await bus.publish_many(events[5:15]) == []
    assert await _stored(bus) == 20


async def test_an_event_no_stream_takes_comes_back_as_a_failure_after_the_retries(
    bus: Bus,
) -> None:
    nodes = next(s for s in STREAMS if Domain.NODE in s.domains)
    await bus.js.delete_stream(bus.subjects.stream(nodes))
    lost = bus.new_event(node_id="fs-1")
    lost.node_up.node_id = "fs-1"
    kept = [hung_up(bus, i) for i in range(3)]
    failures = await bus.publish_many([kept[0], lost, *kept[1:]], attempts=2, timeout_s=5)
    assert [f.event for f in failures] == [lost]
    assert "no stream" in failures[0].error
    assert await _stored(bus) == 3


async def test_an_event_that_cannot_be_published_stops_the_call_before_any_send(
    bus: Bus,
) -> None:
    bad_tenant = hung_up(bus, 1, tenant="no such.tenant")
    with pytest.raises(ValueError, match="tenant"):
        await bus.publish_many([hung_up(bus, 0), bad_tenant])
    with pytest.raises(ValueError, match="body"):
        await bus.publish_many([Event(tenant_id="acme")])
    assert await _stored(bus) == 0


async def test_events_are_completed_like_publish_does(bus: Bus) -> None:
    bare = Event(tenant_id="acme", call_id="c1")
    bare.call_hung_up.channel_uuid = "u"
    assert await bus.publish_many([bare]) == []
    assert bare.event_id
    assert bare.HasField("time")
    assert bare.source.service == bus.service


async def test_one_span_carries_the_trace_of_a_call(bus: Bus, spans: InMemorySpanExporter) -> None:
    assert await bus.publish_many([hung_up(bus, i) for i in range(5)]) == []
    names = [s.name for s in spans.get_finished_spans()]
    assert names.count("publish_many") == 1


async def test_an_event_nobody_acks_fails_after_the_timeout_and_the_rest_are_stored(
    bus: Bus,
) -> None:
    nodes = next(s for s in STREAMS if Domain.NODE in s.domains)
    await bus.js.delete_stream(bus.subjects.stream(nodes))
    # Someone listens on the subject but never answers: no 503, no ack either.
    unacked = bus.new_event(node_id="fs-1")
    unacked.node_up.node_id = "fs-1"
    silent = await bus.nc.subscribe(bus.subjects.for_event(unacked))
    await bus.nc.flush()
    try:
        kept = [hung_up(bus, i) for i in range(4)]
        failures = await bus.publish_many(
            [*kept[:2], unacked, *kept[2:]], window=2, attempts=2, timeout_s=0.5
        )
        assert [f.event for f in failures] == [unacked]
        assert "no ack within 0.5 s" in failures[0].error
        assert await _stored(bus) == 4
    finally:
        await silent.unsubscribe()
