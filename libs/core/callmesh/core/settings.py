"""Settings: platform-wide (``CALLMESH_…``) and each service's own (``CALLMESH_<SERVICE>_…``)."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,15}$")


class PlatformSettings(BaseSettings):
    """What every process shares: where the bus and the store are, naming, identity."""

    model_config = SettingsConfigDict(env_prefix="CALLMESH_", extra="ignore")

    nats_url: str = "nats://127.0.0.1:4222"
    mongodb_uri: str = "mongodb://127.0.0.1:27017/"
    mongodb_database: str = "callmesh"
    # First token of every subject, stem of stream/bucket names; each test gets its own.
    subject_prefix: str = "cm"
    instance: str = Field(default_factory=socket.gethostname)
    site: str = "central"
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    # OTLP/HTTP traces endpoint, e.g. http://otel-collector:4318/v1/traces; unset: no export.
    otlp_endpoint: str | None = None
    # Token verification: admin's JWKS endpoint, or a public key (PEM text or a file path).
    jwks_url: str | None = None
    jwt_public_key: str | None = None
    jwt_issuer: str = "callmesh"
    jwt_audience: str = "callmesh"
    media_backend: Literal["directory", "gridfs"] = "directory"
    media_dir: Path = Path(".data/media")
    # Signs media URLs handed to FreeSWITCH (mod_http_cache cannot send a bearer token).
    media_url_secret: SecretStr | None = None
    lease_ttl_s: float = 10.0
    stream_replicas: int = 1
    bus_request_timeout_s: float = 5.0
    bus_ack_wait_s: float = 30.0
    bus_max_deliver: int = 5
    # Per-tenant API rate limit of every service's tenant routes (per replica): rate and burst.
    api_rate_per_s: float = 20.0
    api_burst: int = 40

    @field_validator("subject_prefix")
    @classmethod
    def _prefix_is_a_token(cls, value: str) -> str:
        if not _PREFIX_RE.match(value):
            raise ValueError("must be 1-16 lowercase letters/digits starting with a letter")
        return value

    @field_validator("lease_ttl_s")
    @classmethod
    def _ttl_is_positive(cls, value: float) -> float:
        if value < 1:
            raise ValueError("must be at least 1 second")
        return value


class ServiceSettings(BaseSettings):
    """A service's own settings; subclasses set ``env_prefix`` to ``CALLMESH_<SERVICE>_``."""

    model_config = SettingsConfigDict(env_prefix="CALLMESH_SERVICE_", extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = 8100
    # How long SIGTERM waits for in-flight handlers before closing the clients anyway.
    shutdown_grace_s: float = 20.0
    platform: PlatformSettings = Field(default_factory=PlatformSettings)
