"""The link on the bus: call events out, node up/down, switch commands in, tenant look-ups.

Request/reply: ``cm.node.<node>.cmd`` (``SwitchCommand`` → ``SwitchReply``). Events:
``cm.<tenant>.call.*`` for every call event the normalizer produces, ``cm.node.<node>.up|down``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from callmesh.core import telemetry
from callmesh.core.bus import MSG_ID_HEADER, Bus
from callmesh.core.errors import DomainError
from callmesh.core.runtime import RequestRoute
from callmesh.core.tenancy import SipDirectory
from callmesh.cti.domain.normalize import CallEvent
from callmesh.cti.service.link import CtiLink
from callmesh.proto.subjects import EVENTS
from callmesh.proto.v1.event_pb2 import Event
from callmesh.proto.v1.switch_pb2 import SwitchCommand, SwitchReply

log = logging.getLogger(__name__)

# Publishes in flight at once: sent in order, acks awaited per window.
PUBLISH_WINDOW = 512


def _label(body: str) -> str:
    kind = EVENTS.get(body)
    return f"{kind.domain}.{kind.name}" if kind is not None else body


class BusCallEvents:
    """``CallEventPublisher`` and ``NodeNotifier`` on the bus."""

    def __init__(self, bus: Bus, node_id: str, site: str = "", version: str = "") -> None:
        self._bus = bus
        self._published = telemetry.counter(
            "callmesh_bus_published_total",
            "Events published to JetStream",
            ["service", "event", "tenant"],
        )
        self._node_id = node_id
        self._site = site
        self._version = version

    def envelope(self, event: CallEvent) -> Event:
        """The bus envelope of a call event."""
        envelope = self._bus.new_event(
            tenant_id=event.tenant_id, call_id=event.call_id, node_id=self._node_id
        )
        if event.time_us:
            envelope.time.FromMicroseconds(event.time_us)
        getattr(envelope, event.body).CopyFrom(event.message)
        return envelope

    async def publish_call_events(self, events: Sequence[CallEvent]) -> None:
        """Publish in order: a window sent back to back, then its stream acks awaited.

        ``js.publish_async`` rather than ``Bus.publish``: one request round trip per event
        capped the link far below the switch's event rate. ``Nats-Msg-Id`` (the event id) still
        makes a re-publish a no-op; the bus's published counter is kept the same.
        """
        js = self._bus.js
        subjects = self._bus.subjects
        pending: list[tuple[Event, asyncio.Future[Any]]] = []
        for event in events:
            try:
                envelope = self.envelope(event)
                subject = subjects.for_event(envelope)
            except ValueError:
                log.warning("call event of a bad tenant id %r dropped", event.tenant_id)
                continue
            future = await js.publish_async(
                subject,
                envelope.SerializeToString(),
                headers={MSG_ID_HEADER: envelope.event_id},
            )
            pending.append((envelope, future))
            if len(pending) >= PUBLISH_WINDOW:
                await self._settle(pending)
                pending = []
        if pending:
            await self._settle(pending)

    async def _settle(self, pending: list[tuple[Event, asyncio.Future[Any]]]) -> None:
        results = await asyncio.gather(*(f for _, f in pending), return_exceptions=True)
        for (envelope, _), result in zip(pending, results, strict=True):
            kind = envelope.WhichOneof("body") or "-"
            if isinstance(result, BaseException):
                # Not stored: publish it the slow way once more (the id makes it idempotent).
                log.warning("call event %s not acked (%s); publishing again", kind, result)
                try:
                    await self._bus.publish(envelope)
                except DomainError as err:
                    log.error("call event %s lost: %s", kind, err)  # noqa: TRY400
                continue
            self._published.labels("cti", _label(kind), envelope.tenant_id or "-").inc()

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
