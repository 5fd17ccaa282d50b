"""Composition root of the wfm service: settings, clients, wiring."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from callmesh.core.runtime import ServiceDefinition
from callmesh.core.settings import ServiceSettings

DOMAIN_STATUS = (
    "not built yet: interval statistics, live KPIs and alarms, forecasts, staffing, "
    "schedules, adherence and reports arrive with a later issue"
)


class WfmSettings(ServiceSettings):
    """Settings of the wfm service (``CALLMESH_WFM_…``)."""

    model_config = SettingsConfigDict(env_prefix="CALLMESH_WFM_", extra="ignore")

    http_port: int = 8107


def build(settings: WfmSettings) -> ServiceDefinition:
    """The service as the runtime runs it."""
    return ServiceDefinition(
        name="wfm",
        settings=settings,
        domain_status=DOMAIN_STATUS,
    )
