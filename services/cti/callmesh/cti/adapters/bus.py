"""The link on the bus: call events out, node up/down, switch commands in, tenant look-ups.

Request/reply: ``cm.node.<node>.cmd`` (``SwitchCommand`` → ``SwitchReply``). Events:
``cm.<tenant>.call.*`` for every call event the normalizer produces, ``cm.node.<node>.up|down``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from callmesh.core.bus import Bus
from callmesh.core.errors import DomainError
from callmesh.core.runtime import RequestRoute
from callmesh.core.tenancy import SipDirectory
from callmesh.cti.domain.normalize import CallEvent
from callmesh.cti.service.link import CtiLink
from callmesh.proto.v1.event_pb2 import Event
from callmesh.proto.v1.switch_pb2 import SwitchCommand, SwitchReply

log = logging.getLogger(__name__)

# Publishes in flight at once: JetStream acks come back in order, so a window keeps the
# order of sends while hiding the round trip.
PUBLISH_WINDOW = 256


class BusCallEvents:
    """``CallEventPublisher`` and ``NodeNotifier`` on the bus."""

    def __init__(self, bus: Bus, node_id: str, site: str = "", version: str = "") -> None:
        self._bus = bus
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
        """Publish in order, a window of them in flight at once."""
        envelopes = []
        for event in events:
            try:
                envelopes.append(self.envelope(event))
            except ValueError:
                log.warning("call event of a bad tenant id %r dropped", event.tenant_id)
        for start in range(0, len(envelopes), PUBLISH_WINDOW):
            chunk = envelopes[start : start + PUBLISH_WINDOW]
            results = await asyncio.gather(
                *(self._bus.publish(e) for e in chunk), return_exceptions=True
            )
            for result in results:
                if isinstance(result, DomainError | ValueError):
                    log.warning("call event not published: %s", result)
                elif isinstance(result, BaseException):
                    raise result

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

    def __init__(self, directory: SipDirectory) -> None:
        self._directory = directory

    async def tenant_of(self, domain: str, username: str) -> str:
        """The tenant of a SIP user, or ""."""
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
