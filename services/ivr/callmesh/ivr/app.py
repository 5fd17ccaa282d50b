"""Composition root of the ivr service: settings, clients, wiring."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from callmesh.core.runtime import ServiceDefinition
from callmesh.core.settings import ServiceSettings

DOMAIN_STATUS = (
    "not built yet: the outbound-socket server running tenants' published IVR flows, with "
    "TTS, trails and dry runs arrive with issue #6 'IVR'"
)


class IvrSettings(ServiceSettings):
    """Settings of the ivr service (``CALLMESH_IVR_…``)."""

    model_config = SettingsConfigDict(env_prefix="CALLMESH_IVR_", extra="ignore")

    http_port: int = 8102


def build(settings: IvrSettings) -> ServiceDefinition:
    """The service as the runtime runs it."""
    return ServiceDefinition(
        name="ivr",
        settings=settings,
        domain_status=DOMAIN_STATUS,
    )
