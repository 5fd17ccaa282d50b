"""Composition root of the outbound service: settings, clients, wiring."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from callmesh.core.runtime import ServiceDefinition
from callmesh.core.settings import ServiceSettings

DOMAIN_STATUS = (
    "not built yet: campaigns, contact lists, pacing and compliance arrive with a later issue"
)


class OutboundSettings(ServiceSettings):
    """Settings of the outbound service (``CALLMESH_OUTBOUND_…``)."""

    model_config = SettingsConfigDict(env_prefix="CALLMESH_OUTBOUND_", extra="ignore")

    http_port: int = 8105


def build(settings: OutboundSettings) -> ServiceDefinition:
    """The service as the runtime runs it."""
    return ServiceDefinition(
        name="outbound",
        settings=settings,
        domain_status=DOMAIN_STATUS,
    )
