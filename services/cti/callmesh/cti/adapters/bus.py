"""The link on the bus: call events out, node up/down, switch commands in, tenant look-ups.

Request/reply: ``cm.node.<node>.cmd`` (``SwitchCommand`` → ``SwitchReply``). Events:
``cm.<tenant>.call.*`` for every call event the normalizer produces, ``cm.node.<node>.up|down``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections import deque
from collections.abc import Sequence

from callmesh.core import telemetry
from callmesh.core.bus import Bus, PublishFailure
from callmesh.core.errors import DomainError
from callmesh.core.runtime import RequestRoute
from callmesh.core.tenancy import SipDirectory
from callmesh.cti.domain.normalize import CallEvent
from callmesh.cti.service.link import CtiLink
from callmesh.proto.subjects import EVENTS
from callmesh.proto.v1.event_pb2 import Event
from callmesh.proto.v1.switch_pb2 import SwitchCommand, SwitchReply

log = logging.getLogger(__name__)

# Publishes in flight at once: sent back to back, then their stream acks awaited together.
PUBLISH_WINDOW = 1024
# Call events kept for another try when the stream did not store them (beyond: the oldest lost).
MAX_RETRY = 100_000
RETRY_DELAY_S = 1.0


# uuid4's version and variant bits, set on random bytes with one translate per batch.
_VERSION_4 = bytes((b & 0x0F) | 0x40 for b in range(256))
_VARIANT = bytes((b & 0x3F) | 0x80 for b in range(256))


def uuid4_hexes(count: int) -> list[str]:
    """``count`` random ids formatted as ``uuid.uuid4().hex`` (one urandom call for all)."""
    raw = bytearray(os.urandom(16 * count))
    raw[6::16] = raw[6::16].translate(_VERSION_4)
    raw[8::16] = raw[8::16].translate(_VARIANT)
    text = raw.hex()
    return [text[i : i + 32] for i in range(0, 32 * count, 32)]


def _label(body: str) -> str:
    kind = EVENTS.get(body)
    return f"{kind.domain}.{kind.name}" if kind is not None else body


class BusCallEvents:
    """``CallEventPublisher`` and ``NodeNotifier`` on the bus."""

    def __init__(self, bus: Bus, node_id: str, site: str = "", version: str = "") -> None:
        self._bus = bus
        self._node_id = node_id
        self._site = site
        self._version = version
        # The envelope's source, the same for every call event of this link.
        self._source = bus.new_event(node_id=node_id).source
        self._retry: deque[Event] = deque()
        self._retry_task: asyncio.Task[None] | None = None
        self._failures = telemetry.counter(
            "callmesh_cti_publish_failures_total",
            "Call events the stream did not store, by outcome (retried: kept for another try;"
            " lost: the retry queue was full)",
            ["node", "outcome"],
        )
        # Call events the stream confirmed (acked), since start.
        self.stored = 0

    @property
    def retrying(self) -> int:
        """Call events waiting for another try."""
        return len(self._retry)

    def envelope(self, event: CallEvent, event_id: str = "") -> Event:
        """The bus envelope of a call event (a fresh uuid4 hex id unless one is given)."""
        envelope = Event(
            event_id=event_id or uuid.uuid4().hex,
            tenant_id=event.tenant_id,
            call_id=event.call_id,
        )
        envelope.source.CopyFrom(self._source)
        if event.time_us:
            envelope.time.seconds, micros = divmod(event.time_us, 1_000_000)
            envelope.time.nanos = micros * 1000
        else:
            envelope.time.GetCurrentTime()
        getattr(envelope, event.body).CopyFrom(event.message)
        return envelope

    async def publish_call_events(self, events: Sequence[CallEvent]) -> None:
        """Publish in order, each confirmed by the stream (``Bus.publish_many``: windows of
        publishes sent back to back, acks collected together, failures published again with the
        same ``Nats-Msg-Id``). Events still not stored wait in a bounded queue and go out again
        first with the next call, or after ``RETRY_DELAY_S`` (logged and counted)."""
        envelope = self.envelope
        ids = uuid4_hexes(len(events))
        envelopes = [envelope(event, event_id) for event, event_id in zip(events, ids, strict=True)]
        if self._retry:
            envelopes[:0] = self._retry
            self._retry.clear()
        await self._publish(envelopes)

    async def _publish(self, envelopes: list[Event]) -> None:
        try:
            failures = await self._bus.publish_many(envelopes, window=PUBLISH_WINDOW)
        except ValueError:
            envelopes = self._publishable(envelopes)
            failures = await self._bus.publish_many(envelopes, window=PUBLISH_WINDOW)
        except DomainError as err:  # not connected: everything waits for another try
            failures = [PublishFailure(envelope, str(err)) for envelope in envelopes]
        self.stored += len(envelopes) - len(failures)
        if failures:
            self._keep(failures)

    def _publishable(self, envelopes: list[Event]) -> list[Event]:
        subjects = self._bus.subjects
        out: list[Event] = []
        for envelope in envelopes:
            try:
                subjects.for_event(envelope)
            except ValueError:
                log.warning("call event of a bad tenant id %r dropped", envelope.tenant_id)
                continue
            out.append(envelope)
        return out

    def _keep(self, failures: list[PublishFailure]) -> None:
        lost = 0
        for failure in failures:
            if len(self._retry) >= MAX_RETRY:
                self._retry.popleft()
                lost += 1
            self._retry.append(failure.event)
        log.warning(
            "%d call events not stored (%s); kept for another try",
            len(failures),
            failures[0].error,
        )
        self._failures.labels(self._node_id, "retried").inc(len(failures))
        if lost:
            log.error("%d call events lost: the retry queue is full", lost)
            self._failures.labels(self._node_id, "lost").inc(lost)
        if self._retry_task is None or self._retry_task.done():
            self._retry_task = asyncio.get_running_loop().create_task(self._retry_later())

    async def _retry_later(self) -> None:
        while self._retry:
            await asyncio.sleep(RETRY_DELAY_S)
            envelopes = list(self._retry)
            self._retry.clear()
            try:
                await self._publish(envelopes)
            except Exception:  # the loop outlives any one failure
                log.exception("retrying %d call events failed", len(envelopes))

    async def close(self) -> None:
        """Stop retrying (events still waiting are reported lost)."""
        task = self._retry_task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._retry:
            log.error("%d call events not stored at shutdown", len(self._retry))
            self._failures.labels(self._node_id, "lost").inc(len(self._retry))

    async def node_up(self, esl_endpoint: str) -> None:
        """``cm.node.<node>.up``."""
        event = self._bus.new_event(node_id=self._node_id)
        event.node_up.node_id = self._node_id
        event.node_up.site = self._site
        event.node_up.version = self._version
        event.node_up.esl_endpoint = esl_endpoint
        await self._bus.publish(event)

    async def node_down(self, reason: str) -> None:
        """``cm.node.<node>.down``."""
        event = self._bus.new_event(node_id=self._node_id)
        event.node_down.node_id = self._node_id
        event.node_down.site = self._site
        event.node_down.reason = reason
        await self._bus.publish(event)


class DirectoryTenants:
    """``TenantResolver`` through admin's SIP directory (cached, invalidated by tenant events)."""

    def __init__(self, directory: SipDirectory, sip_domain_suffix: str) -> None:
        self._directory = directory
        self._suffix = "." + sip_domain_suffix.lower().strip(".")

    async def tenant_of(self, domain: str, username: str) -> str:
        """The tenant of a SIP user, or "" (carriers' and IP domains are not asked about)."""
        if not domain.lower().rstrip(".").endswith(self._suffix):
            return ""
        try:
            reply = await self._directory.lookup(domain, username)
        except DomainError as err:
            log.info("SIP directory has no answer for %s@%s: %s", username, domain, err)
            return ""
        return reply.tenant_id if reply.found else ""


def requests(link: CtiLink, node_id: str) -> list[RequestRoute]:
    """The link's request/reply subjects: the node's command subject."""

    async def command(request: SwitchCommand) -> SwitchReply:
        return await link.execute(request)

    return [
        RequestRoute(
            subject=lambda bus: bus.subjects.node_command(node_id),
            request_type=SwitchCommand,
            handler=command,
        )
    ]
