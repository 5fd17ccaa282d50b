"""Composition root of the qa service: settings, clients, wiring."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from callmesh.core.runtime import ServiceDefinition
from callmesh.core.settings import ServiceSettings

DOMAIN_STATUS = (
    "not built yet: recording search and playback, scorecards, evaluations and the "
    "monitoring log arrive with a later issue"
)


class QaSettings(ServiceSettings):
    """Settings of the qa service (``CALLMESH_QA_…``)."""

    model_config = SettingsConfigDict(env_prefix="CALLMESH_QA_", extra="ignore")

    http_port: int = 8106


def build(settings: QaSettings) -> ServiceDefinition:
    """The service as the runtime runs it."""
    return ServiceDefinition(
        name="qa",
        settings=settings,
        domain_status=DOMAIN_STATUS,
    )
