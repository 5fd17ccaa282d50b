"""The link's call events on the bus: every one stored, or kept and published again."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from callmesh.core.bus import Bus
from callmesh.cti.adapters import bus as link_bus
from callmesh.cti.adapters.bus import BusCallEvents, uuid4_hexes
from callmesh.cti.domain.normalize import CallEvent
from callmesh.proto.subjects import STREAMS, Domain
from callmesh.proto.v1.call_pb2 import CallHungUp


def _events(n: int, tenant: str = "acme") -> list[CallEvent]:
    return [
        CallEvent(
            tenant,
            f"call-{i}",
            f"uuid-{i}",
            1_795_344_032_488_594 + i,
            "call_hung_up",
            CallHungUp(channel_uuid=f"uuid-{i}", cause="NORMAL_CLEARING"),
        )
        for i in range(n)
    ]


async def _stored(bus: Bus) -> int:
    spec = next(s for s in STREAMS if Domain.CALL in s.domains)
    info = await bus.js.stream_info(bus.subjects.stream(spec))
    return int(info.state.messages)


async def test_call_events_are_stored_with_their_envelope(bus: Bus) -> None:
    publisher = BusCallEvents(bus, "fs-1", "site-a", "1.0")
    await publisher.publish_call_events(_events(30))
    assert publisher.stored == 30
    assert await _stored(bus) == 30
    envelope = publisher.envelope(_events(1)[0])
    assert envelope.time.seconds == 1_795_344_032
    assert envelope.time.nanos == 488_594_000
    assert envelope.source.node_id == "fs-1"
    assert envelope.source.service == bus.service
    assert envelope.call_hung_up.cause == "NORMAL_CLEARING"
    assert envelope.event_id != publisher.envelope(_events(1)[0]).event_id


async def test_a_bad_tenant_id_drops_only_its_event(bus: Bus) -> None:
    publisher = BusCallEvents(bus, "fs-1")
    await publisher.publish_call_events([*_events(2), *_events(1, tenant="bad tenant")])
    assert publisher.stored == 2
    assert publisher.retrying == 0


async def test_events_the_stream_did_not_store_are_published_again_later(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(link_bus, "RETRY_DELAY_S", 0.05)
    spec = next(s for s in STREAMS if Domain.CALL in s.domains)
    await bus.js.delete_stream(bus.subjects.stream(spec))
    publisher = BusCallEvents(bus, "fs-1")
    await publisher.publish_call_events(_events(5))
    assert publisher.stored == 0
    assert publisher.retrying == 5
    await bus.provision()  # the stream is back: the retry stores them
    async with asyncio.timeout(30):
        while publisher.stored < 5:  # noqa: ASYNC110 - plain state
            await asyncio.sleep(0.05)
    assert publisher.retrying == 0
    assert await _stored(bus) == 5
    await publisher.close()


def test_batch_ids_look_like_uuid4_hex_and_differ() -> None:
    ids = uuid4_hexes(500)
    assert len(set(ids)) == 500
    for value in ids:
        assert len(value) == 32
        parsed = uuid.UUID(hex=value)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert parsed.hex == value
