"""Login and token rules: accounts as login sees them, login verdicts, refresh sessions, API keys.

No I/O here: the use cases load, call these rules with the time, and store what they decide.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from callmesh.admin.domain.identity import LockoutPolicy, LoginState

# Refresh tokens and API-key secrets: 32 random bytes, base64url (43 characters).
SECRET_BYTES = 32
# An API key is ``cmk_<tenant>_<24 hex of its id>_<secret>``; tenant ids hold no ``_``.
API_KEY_SCHEME = "cmk"
API_KEY_ID_PREFIX = "key_"
_KEY_HEX_RE = re.compile(r"^[0-9a-f]{24}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
# ``last_used_at`` of an API key is written at most this often (a busy integration must not
# turn every token exchange into a write).
LAST_USED_RESOLUTION = timedelta(minutes=1)


def new_secret() -> str:
    """A fresh random secret (refresh token, API-key secret): 32 bytes, base64url."""
    return secrets.token_urlsafe(SECRET_BYTES)


def new_token_id() -> str:
    """A fresh access-token id (``jti``): the key of its revocation, safe in logs."""
    return secrets.token_urlsafe(16)


def hash_secret(secret: str) -> str:
    """The SHA-256 (hex) under which a secret is stored: enough for 256 random bits."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same_hash(stored: str, presented: str) -> bool:
    """Constant-time comparison of two hashes."""
    return hmac.compare_digest(stored.encode("ascii", "replace"), presented.encode("ascii"))


class AccountKind(StrEnum):
    """Who a token speaks for."""

    USER = "user"
    OPERATOR = "operator"
    API_KEY = "api_key"


@dataclass(frozen=True)
class Account:
    """A user of a tenant, or an operator, as login and refresh see it."""

    kind: AccountKind
    account_id: str
    tenant_id: str | None
    username: str
    display_name: str
    roles: tuple[str, ...]
    password_hash: str | None
    disabled: bool = False
    must_change_password: bool = False
    login: LoginState = field(default_factory=LoginState)
    version: int = 1


class LoginVerdict(StrEnum):
    """What a login attempt comes to."""

    OK = "ok"
    # Wrong password, unknown user, disabled user, unknown or deleted tenant: one answer for all.
    INVALID = "invalid"
    # Locked: said only to someone who gave the right password (see ``judge_login``).
    LOCKED = "locked"


@dataclass(frozen=True)
class LoginOutcome:
    """The verdict, the lockout bookkeeping to store (None: unchanged) and the lock's end."""

    verdict: LoginVerdict
    state: LoginState | None = None
    locked_until: datetime | None = None
    # True when this very attempt locked the account (worth an audit entry).
    locked_now: bool = False


def judge_login(
    account: Account | None, password_ok: bool, now: datetime, policy: LockoutPolicy
) -> LoginOutcome:
    """Decide a login attempt, the password having been checked (against a dummy hash if none).

    - A locked account refuses every attempt. Only someone who gave the right password learns
      that it is locked (and until when): anyone else gets the generic refusal, so probing
      cannot tell a locked account from a wrong password or from an account that does not
      exist. Attempts during the lock do not extend it: otherwise anyone could keep an account
      locked for ever by trying it now and then.
    - A wrong password counts as a failure; the ``max_failures``-th in the window locks.
    - A disabled account is refused like a wrong password, and counts nothing.
    """
    if account is None or account.disabled:
        return LoginOutcome(LoginVerdict.INVALID)
    if account.login.locked(now):
        if password_ok:
            return LoginOutcome(LoginVerdict.LOCKED, locked_until=account.login.locked_until)
        return LoginOutcome(LoginVerdict.INVALID)
    if not password_ok:
        state = account.login.failed(now, policy)
        return LoginOutcome(
            LoginVerdict.INVALID,
            state=state,
            locked_until=state.locked_until,
            locked_now=state.locked(now),
        )
    return LoginOutcome(LoginVerdict.OK, state=LoginState.succeeded())


# ---------------------------------------------------------------------------------------------
# Refresh sessions


@dataclass(frozen=True)
class Session:
    """One refresh token (stored by its hash) of a family that began at one login.

    Each refresh marks the token rotated and issues the next one in the same family; a rotated
    token presented again means two parties hold the family (one of them stole it), so the whole
    family is revoked. ``access_jti`` is the access token issued with it, revoked with the family.
    """

    session_id: str
    family: str
    subject: str
    tenant_id: str | None
    kind: AccountKind
    created_at: datetime
    expires_at: datetime
    access_jti: str
    access_expires_at: datetime
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None


class RefreshVerdict(StrEnum):
    """What presenting a refresh token comes to."""

    OK = "ok"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"
    # A rotated token came back: revoke the family.
    REUSED = "reused"


def judge_refresh(session: Session | None, now: datetime) -> RefreshVerdict:
    """Whether a presented refresh token may be rotated."""
    if session is None or session.kind is AccountKind.API_KEY:
        return RefreshVerdict.UNKNOWN
    if session.revoked_at is not None:
        return RefreshVerdict.REVOKED
    if session.rotated_at is not None:
        return RefreshVerdict.REUSED
    if now >= session.expires_at:
        return RefreshVerdict.EXPIRED
    return RefreshVerdict.OK


# ---------------------------------------------------------------------------------------------
# API keys


@dataclass(frozen=True)
class ApiKeyParts:
    """The parts of an API key string."""

    tenant_id: str
    key_id: str
    secret: str


def parse_api_key(text: str) -> ApiKeyParts | None:
    """Split ``cmk_<tenant>_<24 hex>_<secret>``; None if it cannot be one (never an error:
    a malformed key is refused like a wrong one)."""
    parts = text.strip().split("_", 3)
    if len(parts) != 4 or parts[0] != API_KEY_SCHEME:
        return None
    _, tenant_id, hex_id, secret = parts
    if not tenant_id or not _KEY_HEX_RE.match(hex_id) or not _SECRET_RE.match(secret):
        return None
    return ApiKeyParts(tenant_id, f"{API_KEY_ID_PREFIX}{hex_id}", secret)


def format_api_key(tenant_id: str, key_id: str, secret: str) -> str:
    """The key string shown once to its creator."""
    return f"{API_KEY_SCHEME}_{tenant_id}_{key_id.removeprefix(API_KEY_ID_PREFIX)}_{secret}"


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key as the exchange sees it (the tenant area creates and revokes them)."""

    key_id: str
    tenant_id: str
    name: str
    roles: tuple[str, ...]
    secret_hash: str
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def usable(self, now: datetime) -> bool:
        """Not revoked, not expired."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def needs_touch(self, now: datetime) -> bool:
        """Whether ``last_used_at`` is stale enough to be written again."""
        return self.last_used_at is None or now - self.last_used_at >= LAST_USED_RESOLUTION


def key_token_ttl(key: ApiKeyRecord, now: datetime, ttl: timedelta) -> timedelta:
    """An API key's token lives ``ttl`` at most, and never past the key's own expiry."""
    if key.expires_at is not None:
        return max(timedelta(seconds=1), min(ttl, key.expires_at - now))
    return ttl
