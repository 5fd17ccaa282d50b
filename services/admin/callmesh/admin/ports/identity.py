"""What the identity use cases need from outside: keys, accounts, sessions, API keys, revocation."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from callmesh.admin.domain.common import Page
from callmesh.admin.domain.identity import LoginState
from callmesh.admin.domain.keys import SigningKey
from callmesh.admin.domain.operators import Operator
from callmesh.admin.domain.tokens import Account, AccountKind, ApiKeyRecord, Session
from callmesh.core.tenancy import TenantInfo


class SigningKeyStore(Protocol):
    """Where signing keys are kept (shared by every admin replica)."""

    async def all(self) -> list[SigningKey]:
        """Every stored key."""
        ...

    async def insert(self, key: SigningKey) -> None:
        """Store a new key; Conflict (``generation_taken``) if its generation exists already."""
        ...

    async def delete(self, kid: str) -> bool:
        """Remove a key; False if it was gone already."""
        ...


class KeyVault(Protocol):
    """Seals private keys for storage (encrypted under the master key, or in clear without one)."""

    @property
    def encrypts(self) -> bool:
        """Whether sealed keys are encrypted."""
        ...

    def seal(self, kid: str, private_pem: str) -> dict[str, str]:
        """The stored form of a private key."""
        ...

    def open(self, kid: str, sealed: Mapping[str, str]) -> str:
        """The private key PEM back; Unavailable if it cannot be decrypted here."""
        ...


class PasswordHasher(Protocol):
    """Password hashing (argon2id in production)."""

    @property
    def dummy_hash(self) -> str:
        """A hash to verify against when there is no account (same cost as a real check)."""
        ...

    async def hash(self, password: str) -> str:
        """A new hash of the password."""
        ...

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether the password matches (False for any mismatch or unreadable hash)."""
        ...

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash uses weaker parameters than today's."""
        ...


class AccountStore(Protocol):
    """Tenants' users (the tenant area's ``users`` and ``roles``) and operators, for login."""

    async def find(self, tenant_id: str | None, username: str) -> Account | None:
        """The account with this username in a tenant, or the operator (``tenant_id`` None)."""
        ...

    async def get(
        self, kind: AccountKind, tenant_id: str | None, account_id: str
    ) -> Account | None:
        """The account with this id (for refresh, ``me`` and password changes)."""
        ...

    async def record_login(
        self, account: Account, state: LoginState, now: datetime, *, succeeded: bool
    ) -> bool:
        """Store the lockout bookkeeping if it is still ``account.login`` (False otherwise);
        ``succeeded`` also sets ``last_login_at``."""
        ...

    async def store_password_hash(
        self, account: Account, password_hash: str, now: datetime, *, rehash: bool
    ) -> bool:
        """Replace the password hash. ``rehash`` (same password, stronger hash) changes nothing
        else; otherwise it is a password change (new version, ``must_change_password`` cleared),
        refused (False) if the account changed since ``account.version``."""
        ...

    async def role_overrides(self, tenant_id: str) -> dict[str, list[str]]:
        """The tenant's permission sets per role that replace the defaults."""
        ...


class ApiKeyStore(Protocol):
    """Tenants' API keys (the tenant area's ``api_keys``), for the token exchange."""

    async def get(self, tenant_id: str, key_id: str) -> ApiKeyRecord | None:
        """The key, or None."""
        ...

    async def touch(self, tenant_id: str, key_id: str, now: datetime) -> None:
        """Set ``last_used_at`` (unless another replica did within the resolution)."""
        ...


class SessionStore(Protocol):
    """Refresh-token sessions (hashed), by family."""

    async def insert(self, session: Session) -> None:
        """Store a session."""
        ...

    async def get(self, session_id: str) -> Session | None:
        """The session of a refresh token's hash."""
        ...

    async def by_access_jti(self, jti: str) -> Session | None:
        """The session an access token was issued with."""
        ...

    async def mark_rotated(self, session_id: str, now: datetime) -> bool:
        """Mark a live session rotated; False if it was rotated or revoked meanwhile."""
        ...

    async def revoke_family(self, family: str, now: datetime) -> list[Session]:
        """Revoke every session of a family; returns them all (as they were)."""
        ...

    async def families(self, subject: str, tenant_id: str | None) -> list[str]:
        """The families of a subject that still have a live session."""
        ...

    async def purge(self, before: datetime) -> int:
        """Delete sessions that expired before ``before``; how many went."""
        ...


class OperatorRepository(Protocol):
    """The platform's operators."""

    async def page(self, limit: int, after: str | None) -> Page[Operator]:
        """Operators by id (creation order), one page."""
        ...

    async def get(self, operator_id: str) -> Operator | None:
        """One operator."""
        ...

    async def insert(self, operator: Operator) -> None:
        """Store a new operator; Conflict (``username_taken``) if the username is in use."""
        ...

    async def replace(self, operator: Operator, expected_version: int) -> bool:
        """Store a new version if the stored one is still ``expected_version``."""
        ...

    async def delete(self, operator_id: str, expected_version: int) -> bool:
        """Delete if the stored version is still ``expected_version``."""
        ...

    async def restore(self, operator: Operator) -> None:
        """Put back a deleted operator as it was (undoing a delete that broke a rule)."""
        ...

    async def count_active(self) -> int:
        """How many operators can log in."""
        ...

    async def exists(self) -> bool:
        """Whether any operator exists (enabled or not)."""
        ...


class Revoker(Protocol):
    """Revokes access tokens for every service (``RevocationList``)."""

    async def revoke(self, jti: str, exp: datetime | float) -> None:
        """Revoke the token ``jti`` until it expires at ``exp``."""
        ...


class TenantDirectory(Protocol):
    """Tenants' statuses (``TenantGate``)."""

    def info(self, tenant_id: str) -> TenantInfo | None:
        """The tenant's record, or None when unknown."""
        ...
