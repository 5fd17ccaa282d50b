"""Composition root of the cti service: settings, clients, wiring."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from callmesh.core.bus import Subscription
from callmesh.core.runtime import Runtime, ServiceDefinition
from callmesh.core.settings import ServiceSettings
from callmesh.cti.adapters import journal_bus, journal_store
from callmesh.cti.api import calls as api_calls

DOMAIN_STATUS = (
    "not built yet: the ESL link to one FreeSWITCH node (events, switch commands, "
    "heartbeats, mod_xml_curl) and the call journal arrive with issue #4 'FreeSWITCH'"
)


class CtiSettings(ServiceSettings):
    """Settings of the cti service (``CALLMESH_CTI_…``)."""

    model_config = SettingsConfigDict(env_prefix="CALLMESH_CTI_", extra="ignore")

    http_port: int = 8104


def build(settings: CtiSettings) -> ServiceDefinition:
    """The service as the runtime runs it."""

    def subscriptions(runtime: Runtime) -> list[Subscription]:
        journal = journal_store.MongoCallJournal(runtime.store)
        return [*journal_bus.subscriptions(lambda: journal)]

    return ServiceDefinition(
        name="cti",
        settings=settings,
        domain_status=DOMAIN_STATUS,
        collections=(*journal_store.COLLECTIONS,),
        routers=(*api_calls.routers(),),
        subscriptions=subscriptions,
    )
