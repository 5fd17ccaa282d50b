"""Composition root of the admin service: settings, clients, wiring."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from callmesh.core.runtime import ServiceDefinition
from callmesh.core.settings import ServiceSettings

DOMAIN_STATUS = (
    "not built yet: tenancy and identity (tenants, quotas, numbers, sites, users, roles, "
    "API keys, tokens, JWKS, audit) arrive with issue #3 'Tenancy and identity'"
)


class AdminSettings(ServiceSettings):
    """Settings of the admin service (``CALLMESH_ADMIN_…``)."""

    model_config = SettingsConfigDict(env_prefix="CALLMESH_ADMIN_", extra="ignore")

    http_port: int = 8101


def build(settings: AdminSettings) -> ServiceDefinition:
    """The service as the runtime runs it."""
    return ServiceDefinition(
        name="admin",
        settings=settings,
        domain_status=DOMAIN_STATUS,
        operator_access=True,
    )
