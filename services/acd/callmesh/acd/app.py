"""Composition root of the acd service: settings, clients, wiring."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from callmesh.acd.adapters import config_store
from callmesh.acd.api import config as api_config
from callmesh.acd.api import live as api_live
from callmesh.core.runtime import ServiceDefinition
from callmesh.core.settings import ServiceSettings

DOMAIN_STATUS = (
    "not built yet: queues, skills, agent states, routing, overflow and the waiting "
    "experience arrive with issue #5 'ACD'"
)


class AcdSettings(ServiceSettings):
    """Settings of the acd service (``CALLMESH_ACD_…``)."""

    model_config = SettingsConfigDict(env_prefix="CALLMESH_ACD_", extra="ignore")

    http_port: int = 8103


def build(settings: AcdSettings) -> ServiceDefinition:
    """The service as the runtime runs it."""
    return ServiceDefinition(
        name="acd",
        settings=settings,
        domain_status=DOMAIN_STATUS,
        collections=(*config_store.COLLECTIONS,),
        routers=(*api_config.routers(), *api_live.routers()),
    )
