"""Composition root of the acd service: settings, clients, wiring."""

from __future__ import annotations

import re

from pydantic_settings import SettingsConfigDict

from callmesh.acd.adapters import config_store
from callmesh.acd.api import config as api_config
from callmesh.acd.api import live as api_live
from callmesh.acd.domain.config import TenantAcdConfig
from callmesh.acd.runtime.options import RuntimeOptions
from callmesh.acd.runtime.service import AcdPartitions, ConfigLoader
from callmesh.core.runtime import Runtime, ServiceDefinition
from callmesh.core.settings import ServiceSettings

DOMAIN_STATUS = None  # queues, agents and routing run; see docs/acd.md


class AcdSettings(ServiceSettings):
    """Settings of the acd service (``CALLMESH_ACD_…``)."""

    model_config = SettingsConfigDict(env_prefix="CALLMESH_ACD_", extra="ignore")

    http_port: int = 8103
    # The lease holder id of this replica; empty = the platform instance name.
    replica_id: str = ""
    # Partition lease TTL; unset = the platform's lease_ttl_s (CALLMESH_LEASE_TTL_S).
    lease_ttl_s: float | None = None
    snapshot_debounce_s: float = 0.2
    snapshot_compress_over: int = 16 * 1024
    command_timeout_s: float = 5.0
    originate_extra_timeout_s: float = 5.0
    calendar_timeout_s: float = 2.0
    media_prefix: str = ""
    default_language: str = "en"
    say_macro: str = "callmesh_say"
    transfer_context: str = "default"
    ivr_extension_prefix: str = "ivr-"
    voicemail_extension_prefix: str = "vm-"
    metrics_every_s: float = 1.0
    max_batch: int = 256

    def runtime_options(self) -> RuntimeOptions:
        """The partitions' options."""
        replica = self.replica_id or re.sub(r"[^A-Za-z0-9_-]", "-", self.platform.instance)[:64]
        return RuntimeOptions(
            replica_id=replica,
            lease_ttl_s=self.lease_ttl_s,
            snapshot_debounce_s=self.snapshot_debounce_s,
            snapshot_compress_over=self.snapshot_compress_over,
            command_timeout_s=self.command_timeout_s,
            originate_extra_timeout_s=self.originate_extra_timeout_s,
            calendar_timeout_s=self.calendar_timeout_s,
            media_prefix=self.media_prefix,
            default_language=self.default_language,
            say_macro=self.say_macro,
            transfer_context=self.transfer_context,
            ivr_extension_prefix=self.ivr_extension_prefix,
            voicemail_extension_prefix=self.voicemail_extension_prefix,
            metrics_every_s=self.metrics_every_s,
            max_batch=self.max_batch,
            stop_grace_s=min(5.0, self.shutdown_grace_s),
        )


async def load_config(runtime: Runtime, tenant_id: str) -> TenantAcdConfig:
    """The tenant's ACD configuration from the store."""
    return await config_store.load_tenant_config(await runtime.store.tenant(tenant_id))


def build(settings: AcdSettings, *, config_loader: ConfigLoader | None = None) -> ServiceDefinition:
    """The service as the runtime runs it."""
    partitions = AcdPartitions(settings.runtime_options(), config_loader or load_config)
    return ServiceDefinition(
        name="acd",
        settings=settings,
        domain_status=DOMAIN_STATUS,
        collections=(*config_store.COLLECTIONS,),
        routers=(*api_config.routers(), *api_live.routers()),
        on_start=[partitions.start],
        on_stopping=[partitions.stop],
        on_stop=[partitions.stop],
    )
