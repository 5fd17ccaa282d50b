"""Composition root of the ivr service: settings, clients, wiring."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from callmesh.core.runtime import ServiceDefinition
from callmesh.core.settings import ServiceSettings
from callmesh.ivr.adapters import flow_store
from callmesh.ivr.api import flows as flows_api

DOMAIN_STATUS = (
    "partly built: flows (drafts, validation, publishing, versions, rollback, dry runs) are "
    "served; the outbound-socket call runner, prompts/TTS, blacklist, voicemail, data tables "
    "and emergency announcements are not built yet (issue #6 'IVR')"
)


class IvrSettings(ServiceSettings):
    """Settings of the ivr service (``CALLMESH_IVR_…``)."""

    model_config = SettingsConfigDict(env_prefix="CALLMESH_IVR_", extra="ignore")

    http_port: int = 8102


def build(settings: IvrSettings) -> ServiceDefinition:
    """The service as the runtime runs it."""
    quotas = flows_api.QuotaHandle()
    return ServiceDefinition(
        name="ivr",
        settings=settings,
        domain_status=DOMAIN_STATUS,
        collections=flow_store.COLLECTIONS,
        routers=tuple(flows_api.routers(quotas)),
        on_stopping=[quotas.close],
    )
