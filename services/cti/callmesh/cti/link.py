"""The link's parts for one switch node, built from settings and started/stopped with the service.

``app.py`` wires ``LinkParts`` into the service definition: its start and stop hooks, its request
route (``cm.node.<node>.cmd``) and its router (mod_xml_curl). Kept here so the composition root
stays short while the journal shares it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Literal

from fastapi import APIRouter
from pydantic import SecretStr

from callmesh.core.media import media_store_from_settings
from callmesh.core.runtime import RequestRoute, Runtime
from callmesh.core.tenancy import NumberDirectory, SipDirectory
from callmesh.cti.adapters import bus as link_bus
from callmesh.cti.adapters.esl import EslLink, GeventThread
from callmesh.cti.adapters.esl_events import AsyncEventReader
from callmesh.cti.adapters.heartbeat import Heartbeat
from callmesh.cti.adapters.metrics import LinkMetrics
from callmesh.cti.adapters.recordings import MediaRecordings
from callmesh.cti.api import xml_curl
from callmesh.cti.domain.commands import DialPlan
from callmesh.cti.service.link import CtiLink, LinkConfig

log = logging.getLogger(__name__)


def _version() -> str:
    try:
        return version("callmesh-cti")
    except PackageNotFoundError:
        return "0+unknown"


@dataclass
class LinkSettings:
    """The link's part of the service settings (``CtiSettings`` carries the same fields)."""

    node_id: str = "fs-1"
    site: str = ""
    esl_enabled: bool = True
    esl_host: str = "127.0.0.1"
    esl_port: int = 8021
    esl_password: SecretStr = field(default_factory=lambda: SecretStr("ClueCon"))
    command_timeout_s: float = 10.0
    heartbeat_interval_s: float = 5.0
    ivr_socket: str = "127.0.0.1:8084"
    sip_domain_suffix: str = "sip.callmesh.local"
    recordings_dir: Path | None = None
    fallback_prompt: str = "ivr/ivr-technical_difficulties.wav"
    # asyncio: events on a second connection read in the service's loop (greenswitch keeps the
    # commands); greenswitch: one greenswitch connection for both.
    event_reader: Literal["asyncio", "greenswitch"] = "asyncio"


class LinkParts:
    """Everything the link of one node runs, with the hooks that start and stop it."""

    def __init__(self, settings: LinkSettings) -> None:
        self.settings = settings
        self.xml_curl = xml_curl.XmlCurlContext(
            ivr_socket=settings.ivr_socket, fallback_prompt=settings.fallback_prompt
        )
        self.metrics = LinkMetrics(settings.node_id)
        self.link: CtiLink | None = None
        self.esl: EslLink | None = None
        self.events: AsyncEventReader | None = None
        self.heartbeat: Heartbeat | None = None
        self.publisher: link_bus.BusCallEvents | None = None
        self._gevent: GeventThread | None = None
        self._numbers: NumberDirectory | None = None
        self._directory: SipDirectory | None = None

    def routers(self) -> list[APIRouter]:
        """mod_xml_curl's endpoints."""
        return xml_curl.routers(self.xml_curl)

    def requests(self, runtime: Runtime) -> list[RequestRoute]:
        """The node's command subject."""
        assert self.link is not None, "start() builds the link before requests are served"
        return link_bus.requests(self.link, self.settings.node_id)

    async def start(self, runtime: Runtime) -> None:
        """Build and start the link: directories, ESL thread, heartbeat."""
        s = self.settings
        site = s.site or runtime.platform.site
        bus = runtime.bus
        self._numbers = NumberDirectory(bus)
        self._directory = SipDirectory(bus)
        await self._numbers.start()
        await self._directory.start()
        self.xml_curl.numbers = self._numbers
        self.xml_curl.directory = self._directory
        events = link_bus.BusCallEvents(bus, s.node_id, site, _version())
        self.publisher = events
        media = media_store_from_settings(runtime.platform, None)
        link = CtiLink(
            LinkConfig(
                node_id=s.node_id,
                default_timeout_s=s.command_timeout_s,
                dial_plan=DialPlan(sip_domain_suffix=s.sip_domain_suffix),
            ),
            publisher=events,
            notifier=_KickingNotifier(events, self),
            resolver=link_bus.DirectoryTenants(self._directory, s.sip_domain_suffix),
            archive=MediaRecordings(media, root=s.recordings_dir),
            observer=self.metrics,
        )
        self.link = link
        self.xml_curl.on_tenant = link.hint_tenant
        self.heartbeat = Heartbeat(
            bus,
            s.node_id,
            site=site,
            version=_version(),
            interval_s=s.heartbeat_interval_s,
            state=lambda: _state(link),
        )
        if s.esl_enabled:
            own_reader = s.event_reader == "asyncio"
            self._gevent = GeventThread(name=f"cti-gevent-{s.node_id}")
            bridge = await self._gevent.start()
            self.esl = EslLink(
                bridge,
                link,
                s.esl_host,
                s.esl_port,
                s.esl_password.get_secret_value(),
                observer=self.metrics,
                events=not own_reader,
            )
            link.switch = self.esl
            await self.esl.start()
            if own_reader:
                self.events = AsyncEventReader(
                    link,
                    s.esl_host,
                    s.esl_port,
                    s.esl_password.get_secret_value(),
                    observer=self.metrics,
                )
                await self.events.start()
        self.heartbeat.start()

    async def stop(self, runtime: Runtime) -> None:
        """Stop the heartbeat (saying down), the socket, the thread, the directories."""
        if self.heartbeat is not None:
            await self.heartbeat.stop()
        if self.events is not None:
            await self.events.stop()
        if self.esl is not None:
            await self.esl.stop()
        if self.link is not None:
            await self.link.settle(5.0)
            await self.link.stop()
            if self.link.esl_connected:
                await self.link.on_disconnected("link stopping")
            if self.heartbeat is not None:
                try:
                    await self.heartbeat.beat()
                except Exception:  # the bus may already be gone
                    log.debug("last heartbeat not written", exc_info=True)
        if self.publisher is not None:
            await self.publisher.close()
        if self._gevent is not None:
            await self._gevent.stop()
        for directory in (self._numbers, self._directory):
            if directory is not None:
                await directory.stop()


def _state(link: CtiLink) -> tuple[bool, int, int]:
    """The heartbeat's view of the node; live channels per tenant go to the metrics meanwhile."""
    link.report_channels()
    return link.esl_connected, link.channels(), link.calls()


class _KickingNotifier:
    """NodeUp/NodeDown on the bus, and a heartbeat at once when the socket changes."""

    def __init__(self, events: link_bus.BusCallEvents, parts: LinkParts) -> None:
        self._events = events
        self._parts = parts

    async def node_up(self, esl_endpoint: str) -> None:
        """Up."""
        self._parts.metrics.connected(True)
        if self._parts.heartbeat is not None:
            self._parts.heartbeat.kick()
        await self._events.node_up(esl_endpoint)

    async def node_down(self, reason: str) -> None:
        """Down."""
        self._parts.metrics.connected(False)
        if self._parts.heartbeat is not None:
            self._parts.heartbeat.kick()
        await self._events.node_down(reason)
