"""Composition root of the cti service: settings, clients, wiring."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from callmesh.core.bus import Subscription
from callmesh.core.runtime import Runtime, ServiceDefinition
from callmesh.core.settings import ServiceSettings
from callmesh.cti.adapters import journal_bus, journal_store
from callmesh.cti.api import calls as api_calls
from callmesh.cti.link import LinkParts, LinkSettings

DOMAIN_STATUS = None  # the link and the journal are built; the desk comes later


class CtiSettings(ServiceSettings):
    """Settings of the cti service (``CALLMESH_CTI_…``)."""

    model_config = SettingsConfigDict(env_prefix="CALLMESH_CTI_", extra="ignore")

    http_port: int = 8104
    # The link: the switch node this process serves and how to reach its event socket.
    node_id: str = "fs-1"
    site: str = ""
    esl_enabled: bool = True
    esl_host: str = "127.0.0.1"
    esl_port: int = 8021
    esl_password: SecretStr = SecretStr("ClueCon")
    command_timeout_s: float = 10.0
    heartbeat_interval_s: float = 5.0
    ivr_socket: str = "127.0.0.1:8084"
    sip_domain_suffix: str = "sip.callmesh.local"
    recordings_dir: Path | None = None
    fallback_prompt: str = "ivr/ivr-technical_difficulties.wav"
    event_reader: Literal["asyncio", "greenswitch"] = "asyncio"

    def link_settings(self) -> LinkSettings:
        """The link's settings."""
        return LinkSettings(
            node_id=self.node_id,
            site=self.site,
            esl_enabled=self.esl_enabled,
            esl_host=self.esl_host,
            esl_port=self.esl_port,
            esl_password=self.esl_password,
            command_timeout_s=self.command_timeout_s,
            heartbeat_interval_s=self.heartbeat_interval_s,
            ivr_socket=self.ivr_socket,
            sip_domain_suffix=self.sip_domain_suffix,
            recordings_dir=self.recordings_dir,
            fallback_prompt=self.fallback_prompt,
            event_reader=self.event_reader,
        )


def build(settings: CtiSettings) -> ServiceDefinition:
    """The service as the runtime runs it."""
    link = LinkParts(settings.link_settings())

    def subscriptions(runtime: Runtime) -> list[Subscription]:
        journal = journal_store.MongoCallJournal(runtime.store)
        return [*journal_bus.subscriptions(lambda: journal)]

    return ServiceDefinition(
        name="cti",
        settings=settings,
        domain_status=DOMAIN_STATUS,
        collections=(*journal_store.COLLECTIONS,),
        routers=(*api_calls.routers(), *link.routers()),
        subscriptions=subscriptions,
        requests=link.requests,
        on_start=[link.start],
        on_stop=[link.stop],
    )
