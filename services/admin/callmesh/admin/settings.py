"""Settings of the admin service (``CALLMESH_ADMIN_…``)."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from callmesh.core.settings import ServiceSettings


class AdminSettings(ServiceSettings):
    """Tokens, login protection, retention, numbering and API limits of the admin service."""

    model_config = SettingsConfigDict(env_prefix="CALLMESH_ADMIN_", extra="ignore")

    http_port: int = 8101
    # Where services fetch the JWKS (also the tokens' issuer URL in docs); informative only.
    public_url: str = "http://127.0.0.1:8101"
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 30 * 86400
    # A new signing key is published in the JWKS this long before tokens are signed with it
    # (longer than the services' JWKS cache TTL, so no verifier meets an unknown key).
    signing_key_publish_ahead_s: int = 600
    # Encrypts private signing keys and tenants' data keys at rest; without it they are stored
    # in clear (fine for development; the service logs a warning at start).
    master_key: SecretStr | None = None
    login_max_failures: int = 5
    login_failure_window_s: int = 900
    login_lockout_s: int = 900
    password_min_length: int = 12
    # Soft-deleted tenants are purged after this many days (unless restored).
    tenant_retention_days: int = 30
    # A tenant's SIP domain is <tenant>.<sip_domain_suffix>.
    sip_domain_suffix: str = "sip.callmesh.local"
    # The most numbers one range assignment may create.
    number_range_max: int = 10_000
    # Purge of tenants past retention and KV reconciliation run at start and this often.
    tenant_jobs_interval_s: float = 300.0
    # A node whose last heartbeat is older than this is shown down.
    node_stale_after_s: float = 15.0
