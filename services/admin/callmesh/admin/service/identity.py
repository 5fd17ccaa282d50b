"""The identity use cases: signing keys, logins and tokens, sessions, API keys, operators.

``SigningKeys`` (the signer, the JWKS, rotation; admin's own ``KeySource``), ``Authenticator``
(login, refresh, logout, API-key exchange, who-am-I, password change) and ``Operators``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from callmesh.admin.domain.common import Actor, ActorKind, Page, is_id, new_id
from callmesh.admin.domain.identity import (
    USERNAME_RE,
    LockoutPolicy,
    LoginState,
    PasswordPolicy,
    check_display_name,
    check_email,
    check_username,
)
from callmesh.admin.domain.keys import (
    KeyState,
    KeyView,
    SigningKey,
    active_key,
    plan_rotation,
    timeline,
)
from callmesh.admin.domain.operators import (
    OPERATOR_PREFIX,
    Operator,
    check_keeps_an_operator,
    check_version,
)
from callmesh.admin.domain.tokens import (
    API_KEY_ID_PREFIX,
    Account,
    AccountKind,
    LoginVerdict,
    RefreshVerdict,
    Session,
    hash_secret,
    judge_login,
    judge_refresh,
    key_token_ttl,
    new_secret,
    new_token_id,
    parse_api_key,
    same_hash,
)
from callmesh.admin.ports.identity import (
    AccountStore,
    ApiKeyStore,
    KeyVault,
    OperatorRepository,
    PasswordHasher,
    Revoker,
    SessionStore,
    SigningKeyStore,
    TenantDirectory,
)
from callmesh.admin.service.audit import Auditor
from callmesh.admin.service.context import AdminContext
from callmesh.core import telemetry
from callmesh.core.auth import (
    MAX_ACCESS_TTL,
    Principal,
    TokenIssuer,
    generate_signing_key,
    key_thumbprint,
    load_signing_key,
    public_jwk,
    public_key_from_jwk,
    signing_key_pem,
)
from callmesh.core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
    Unavailable,
)
from callmesh.core.permissions import ROLE_NAMES, Role, resolve
from callmesh.core.runtime import Runtime
from callmesh.core.tenancy import TenantStatus
from callmesh.proto.subjects import check_tenant_id

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# Verifiers accept a token up to 30 s past its exp; a retired key stays published past that.
VERIFIER_LEEWAY = timedelta(seconds=60)
# Every admin replica re-reads the keys this often, so all agree on the signer within seconds.
KEY_CACHE_S = 5.0
# A token naming a kid we do not know makes us re-read the keys, at most this often.
UNKNOWN_KID_RELOAD_S = 1.0
# Expired sessions are deleted by the replica that notices, at most this often.
SESSION_PURGE_EVERY_S = 3600.0
# Tenant roles a token may carry (``operator`` is only for operator tokens).
_TENANT_ROLES = frozenset(ROLE_NAMES - {Role.OPERATOR.value})
# A hash that no secret has (the exchange compares against it when the key does not exist).
_NO_SECRET_HASH = "0" * 64
_INVALID_CREDENTIALS = "invalid credentials"


class AccountLocked(DomainError):
    """Too many failed logins: the account refuses logins until ``retry_after_s`` has passed."""

    code = "account_locked"
    status = 401


def invalid_credentials() -> Unauthenticated:
    """The one refusal of a login, whatever was wrong."""
    return Unauthenticated(_INVALID_CREDENTIALS, reason="invalid_credentials")


def invalid_refresh_token() -> Unauthenticated:
    """The one refusal of a refresh, whatever was wrong."""
    return Unauthenticated("invalid refresh token", reason="invalid_refresh_token")


def invalid_api_key() -> Unauthenticated:
    """The one refusal of an API-key exchange, whatever was wrong."""
    return Unauthenticated("invalid API key", reason="invalid_api_key")


@dataclass(frozen=True)
class IdentityConfig:
    """The identity area's settings, as the use cases take them."""

    issuer: str
    audience: str
    access_ttl: timedelta = timedelta(minutes=15)
    refresh_ttl: timedelta = timedelta(days=30)
    api_key_ttl: timedelta = timedelta(minutes=15)
    publish_ahead: timedelta = timedelta(minutes=10)
    lockout: LockoutPolicy = field(default_factory=LockoutPolicy)
    passwords: PasswordPolicy = field(default_factory=PasswordPolicy)

    def __post_init__(self) -> None:
        for name in ("access_ttl", "api_key_ttl"):
            ttl = getattr(self, name)
            if not timedelta(0) < ttl <= MAX_ACCESS_TTL:
                # Revocations are kept only MAX_ACCESS_TTL: a longer token would outlive logout.
                raise ValueError(f"{name}: must be positive and at most {MAX_ACCESS_TTL}")
        if self.refresh_ttl <= timedelta(0):
            raise ValueError("refresh_ttl: must be positive")
        if self.publish_ahead < timedelta(0):
            raise ValueError("publish_ahead: must not be negative")

    @property
    def token_lifetime(self) -> timedelta:
        """How long after a key stops signing a token it signed may still be presented."""
        return MAX_ACCESS_TTL + VERIFIER_LEEWAY


@dataclass(frozen=True)
class TokenGrant:
    """What a login, refresh or exchange hands out."""

    access_token: str
    expires_in: int
    refresh_token: str | None = None
    refresh_expires_in: int | None = None


@dataclass(frozen=True)
class Me:
    """Who a token speaks for."""

    kind: AccountKind
    subject: str
    tenant_id: str | None
    roles: tuple[str, ...]
    permissions: tuple[str, ...]
    expires_at: datetime
    token_id: str
    username: str | None = None
    display_name: str | None = None
    must_change_password: bool = False


def kind_of(principal: Principal) -> AccountKind:
    """Whom a verified token speaks for."""
    if principal.is_operator:
        return AccountKind.OPERATOR
    if principal.subject.startswith(API_KEY_ID_PREFIX):
        return AccountKind.API_KEY
    return AccountKind.USER


def actor_for(account: Account) -> Actor:
    """The audit actor of an account acting on its own behalf (login, logout)."""
    kind = ActorKind.OPERATOR if account.kind is AccountKind.OPERATOR else ActorKind.USER
    return Actor(kind, account.account_id, account.tenant_id, tuple(sorted(account.roles)))


def _session_actor(session: Session) -> Actor:
    kinds = {
        AccountKind.OPERATOR: ActorKind.OPERATOR,
        AccountKind.USER: ActorKind.USER,
        AccountKind.API_KEY: ActorKind.API_KEY,
    }
    return Actor(kinds[session.kind], session.subject, session.tenant_id)


def _tenant_roles(roles: Sequence[str], where: str) -> tuple[str, ...]:
    """The stored roles a token may carry; names this version does not know are dropped."""
    known = tuple(sorted({r for r in roles if r in _TENANT_ROLES}))
    if len(known) != len(set(roles)):
        log.warning("ignoring unknown roles of %s: %s", where, sorted(set(roles) - set(known)))
    return known


def _seconds(delta: timedelta) -> int:
    return max(0, math.ceil(delta.total_seconds()))


# ---------------------------------------------------------------------------------------------
# Signing keys


class SigningKeys:
    """The platform's token-signing keys: the signer, the JWKS, rotation; a ``KeySource`` too.

    Replicas agree because the keys' states follow from stored generations and times (see
    ``callmesh.admin.domain.keys``) and each replica re-reads them every few seconds; a creation
    race is settled by the unique index on ``generation``.
    """

    def __init__(
        self,
        store: SigningKeyStore,
        vault: KeyVault,
        auditor: Auditor,
        clock: Clock,
        config: IdentityConfig,
        *,
        cache_s: float = KEY_CACHE_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._vault = vault
        self._auditor = auditor
        self._clock = clock
        self._config = config
        self._cache_s = cache_s
        self._monotonic = monotonic
        self._keys: list[SigningKey] = []
        self._public: dict[str, Ed25519PublicKey] = {}
        # When each key leaves the JWKS (None while no newer key exists).
        self._removed_after: dict[str, datetime | None] = {}
        self._issuers: dict[str, TokenIssuer] = {}
        self._loaded_at = -math.inf
        self._unknown_kid_at = -math.inf
        self._lock = asyncio.Lock()
        self._rotations = telemetry.counter(
            "callmesh_admin_signing_key_rotations_total", "Signing keys created", ["how"]
        )

    async def start(self) -> None:
        """Load the keys; on a platform with none, create one that signs at once."""
        if not self._vault.encrypts:
            log.warning(
                "CALLMESH_ADMIN_MASTER_KEY is not set: token-signing keys are stored in clear "
                "in the platform database (fine for development, not for production)"
            )
        if not await self._reload(force=True):
            now = self._clock()
            try:
                await self._create(1, now, Actor.system("admin"), now=now, how="first")
            except Conflict:
                log.info("another admin replica created the first signing key")
            await self._reload(force=True)
        for key in self._keys:
            if self._vault.encrypts and not key.encrypted:
                log.warning("signing key %s is stored in clear: rotate to replace it", key.kid)

    async def views(self) -> list[KeyView]:
        """Every known key with its state now, newest first."""
        await self._reload()
        return timeline(self._keys, self._clock(), self._config.token_lifetime)

    async def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWKS document: pending, active and retired keys (never private material)."""
        return {"keys": [dict(v.key.public_jwk) for v in await self.views() if v.published]}

    async def issuer(self) -> TokenIssuer:
        """The issuer signing with the active key."""
        key = active_key(await self.views())
        if key is None:
            await self._reload(force=True)
            key = active_key(timeline(self._keys, self._clock(), self._config.token_lifetime))
        if key is None:
            raise Unavailable("no active token-signing key", reason="no_signing_key")
        issuer = self._issuers.get(key.kid)
        if issuer is None:
            try:
                private = load_signing_key(self._vault.open(key.kid, key.sealed))
            except ValueError as err:
                raise Unavailable(f"signing key {key.kid} cannot be read") from err
            issuer = TokenIssuer(
                private, key.kid, issuer=self._config.issuer, audience=self._config.audience
            )
            self._issuers[key.kid] = issuer
        return issuer

    async def keys_for(self, kid: str | None) -> Sequence[Ed25519PublicKey]:
        """The public key a token names (``KeySource``): admin verifies with its own keys."""
        if kid is None:
            raise Unauthenticated("token malformed: header has no key id (kid)", reason="malformed")
        await self._reload()
        key = self._published(kid)
        if key is None and self._monotonic() - self._unknown_kid_at >= UNKNOWN_KID_RELOAD_S:
            # Maybe another replica rotated a moment ago; random kids cost one read a second.
            self._unknown_kid_at = self._monotonic()
            await self._reload(force=True)
            key = self._published(kid)
        if key is None:
            raise Unauthenticated("token signed with an unknown key id (kid)", reason="unknown_key")
        return (key,)

    async def rotate(self, actor: Actor, *, immediate: bool = False) -> KeyView:
        """Create the next key: it signs after the publish-ahead time (or at once)."""
        await self._reload(force=True)
        now = self._clock()
        views = timeline(self._keys, now, self._config.token_lifetime)
        plan = plan_rotation(views, now, self._config.publish_ahead, immediate=immediate)
        try:
            key = await self._create(
                plan.generation,
                plan.activates_at,
                actor,
                now=now,
                how="immediate" if immediate else "ahead",
            )
        except Conflict as err:
            raise Conflict(
                "a rotation is under way: another admin rotated the key at the same moment",
                reason="rotation_pending",
            ) from err
        await self._reload(force=True)
        for view in timeline(self._keys, self._clock(), self._config.token_lifetime):
            if view.key.kid == key.kid:
                return view
        raise Unavailable("the new signing key is not readable back yet")  # pragma: no cover

    def _published(self, kid: str) -> Ed25519PublicKey | None:
        # The hot path of every request admin verifies: two dict lookups and a comparison.
        key = self._public.get(kid)
        if key is None:
            return None
        removed_after = self._removed_after.get(kid)
        if removed_after is not None and self._clock() >= removed_after:
            return None
        return key

    async def _create(
        self, generation: int, activates_at: datetime, actor: Actor, *, now: datetime, how: str
    ) -> SigningKey:
        private = generate_signing_key()
        kid = key_thumbprint(private.public_key())
        key = SigningKey(
            kid=kid,
            generation=generation,
            created_at=now,
            activates_at=activates_at,
            public_jwk=public_jwk(private.public_key(), kid),
            sealed=self._vault.seal(kid, signing_key_pem(private)),
            created_by=actor.subject,
        )
        await self._store.insert(key)
        self._rotations.labels(how).inc()
        await self._auditor.record(
            actor,
            "signing_key.create",
            "signing_key",
            kid,
            tenant_id=None,
            after=key_summary(key),
            detail=f"generation {generation}, signs from {activates_at.isoformat()}",
        )
        return key

    async def _reload(self, *, force: bool = False) -> list[SigningKey]:
        if not force and self._monotonic() - self._loaded_at < self._cache_s:
            return self._keys
        async with self._lock:
            if not force and self._monotonic() - self._loaded_at < self._cache_s:
                return self._keys
            try:
                keys = await self._store.all()
            except Unavailable:
                if not self._keys:
                    raise
                # The database is briefly away: keep verifying and signing with what we know.
                log.warning("signing keys cannot be re-read now; using the cached ones")
                return self._keys
            now = self._clock()
            expired = {
                v.key.kid
                for v in timeline(keys, now, self._config.token_lifetime)
                if v.state is KeyState.EXPIRED
            }
            for key in keys:
                if key.kid in expired:
                    await self._remove(key)
            self._keys = [k for k in keys if k.kid not in expired]
            self._public = {k.kid: public_key_from_jwk(k.public_jwk) for k in self._keys}
            self._removed_after = {
                v.key.kid: v.removed_after
                for v in timeline(self._keys, now, self._config.token_lifetime)
            }
            self._issuers = {kid: i for kid, i in self._issuers.items() if kid in self._public}
            self._loaded_at = self._monotonic()
            return self._keys

    async def _remove(self, key: SigningKey) -> None:
        # Every token it signed has expired: nobody needs it any more. Replicas race here
        # harmlessly; the one whose delete removed it writes the audit entry.
        if await self._store.delete(key.kid):
            await self._auditor.record(
                Actor.system("admin"),
                "signing_key.remove",
                "signing_key",
                key.kid,
                tenant_id=None,
                before=key_summary(key),
                detail="retired and past the lifetime of every token it signed",
            )


def key_summary(key: SigningKey) -> dict[str, Any]:
    """A key as the audit log and the API show it (no private material)."""
    return {
        "kid": key.kid,
        "generation": key.generation,
        "created_at": key.created_at,
        "activates_at": key.activates_at,
        "encrypted": key.encrypted,
    }


# ---------------------------------------------------------------------------------------------
# Login, refresh, logout, API-key exchange


class Authenticator:
    """Turns credentials into tokens, rotates refresh tokens, revokes sessions."""

    def __init__(
        self,
        *,
        accounts: AccountStore,
        api_keys: ApiKeyStore,
        sessions: SessionStore,
        keys: SigningKeys,
        hasher: PasswordHasher,
        revoker: Revoker,
        tenants: TenantDirectory,
        auditor: Auditor,
        clock: Clock,
        config: IdentityConfig,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._accounts = accounts
        self._api_keys = api_keys
        self._sessions = sessions
        self._keys = keys
        self._hasher = hasher
        self._revoker = revoker
        self._tenants = tenants
        self._auditor = auditor
        self._clock = clock
        self.config = config
        self._monotonic = monotonic
        self._next_purge = -math.inf
        self._logins = telemetry.counter(
            "callmesh_admin_logins_total",
            "Password logins by outcome (ok, invalid, locked)",
            ["kind", "tenant", "outcome"],
        )
        self._refreshes = telemetry.counter(
            "callmesh_admin_token_refreshes_total",
            "Refresh-token presentations by outcome (ok, unknown, expired, revoked, reused)",
            ["outcome"],
        )
        self._exchanges = telemetry.counter(
            "callmesh_admin_api_key_exchanges_total",
            "API-key token exchanges by outcome",
            ["tenant", "outcome"],
        )

    # -- login ---------------------------------------------------------------------------------

    async def login(self, tenant_id: str | None, username: str, password: str) -> TokenGrant:
        """Password login of a tenant's user (``tenant_id``) or of an operator (None).

        Every refusal is the same 401 "invalid credentials" and costs the same (a password hash
        is checked even when there is no account), except a locked account whose right password
        was given (``AccountLocked``, see ``judge_login``). A suspended tenant's users may log
        in: the tenant API is read-only for them, not closed.
        """
        now = self._clock()
        await self._purge_sessions(now)
        account: Account | None = None
        known_tenant = tenant_id is None or self._tenant_may_work(tenant_id)
        if known_tenant and USERNAME_RE.match(username):
            account = await self._accounts.find(tenant_id, username)
        stored = account.password_hash if account is not None else None
        password_ok = await self._hasher.verify(stored or self._hasher.dummy_hash, password)
        password_ok = password_ok and stored is not None
        kind = "user" if tenant_id is not None else "operator"
        label = tenant_id if tenant_id is not None and known_tenant else "-"
        outcome = judge_login(account, password_ok, now, self.config.lockout)
        for _ in range(3):
            if account is None or outcome.state is None:
                break
            succeeded = outcome.verdict is LoginVerdict.OK
            if await self._accounts.record_login(account, outcome.state, now, succeeded=succeeded):
                break
            # Another attempt changed the bookkeeping meanwhile: judge again on what it wrote.
            account = await self._accounts.get(account.kind, account.tenant_id, account.account_id)
            outcome = judge_login(account, password_ok, now, self.config.lockout)
        self._logins.labels(kind, label, outcome.verdict.value).inc()
        if outcome.verdict is LoginVerdict.LOCKED:
            assert outcome.locked_until is not None
            raise AccountLocked(
                "the account is locked after too many failed logins; try again later",
                retry_after_s=max(1, _seconds(outcome.locked_until - now)),
            )
        if outcome.verdict is not LoginVerdict.OK or account is None:
            if outcome.locked_now and account is not None:
                await self._auditor.record(
                    Actor.system("login"),
                    f"{account.kind.value}.lock",
                    account.kind.value,
                    account.account_id,
                    tenant_id=account.tenant_id,
                    detail=f"{self.config.lockout.max_failures} failed logins: locked until "
                    f"{outcome.locked_until.isoformat() if outcome.locked_until else '?'}",
                    outcome="refused",
                )
            raise invalid_credentials()
        if stored is not None and self._hasher.needs_rehash(stored):
            # The password is at hand only now: bring its hash up to today's parameters.
            fresh = await self._hasher.hash(password)
            await self._accounts.store_password_hash(account, fresh, now, rehash=True)
        grant = await self._grant(account, now)
        await self._auditor.record(
            actor_for(account),
            "auth.login",
            account.kind.value,
            account.account_id,
            tenant_id=account.tenant_id,
            detail=f"password login of {account.username}",
        )
        return grant

    # -- refresh -------------------------------------------------------------------------------

    async def refresh(self, refresh_token: str) -> TokenGrant:
        """A new access token and refresh token for a live refresh token (which is used up).

        A used-up token presented again revokes its whole family: it was copied, and either the
        thief or the owner is replaying it. The account is read again, so a disabled user or
        changed roles take effect here.
        """
        now = self._clock()
        session = await self._sessions.get(hash_secret(refresh_token))
        verdict = judge_refresh(session, now)
        if verdict is RefreshVerdict.OK:
            assert session is not None
            if not await self._sessions.mark_rotated(session.session_id, now):
                # Presented twice at the same moment: one of the two is a replay.
                verdict = RefreshVerdict.REUSED
        self._refreshes.labels(verdict.value).inc()
        if verdict is RefreshVerdict.REUSED:
            assert session is not None
            await self._revoke_family(session.family, now)
            await self._auditor.record(
                _session_actor(session),
                "auth.refresh_reuse",
                "session",
                session.family,
                tenant_id=session.tenant_id,
                outcome="refused",
                detail="a used refresh token was presented again: the session family is revoked",
            )
            raise invalid_refresh_token()
        if verdict is not RefreshVerdict.OK or session is None:
            raise invalid_refresh_token()
        account = await self._accounts.get(session.kind, session.tenant_id, session.subject)
        tenant_ok = session.tenant_id is None or self._tenant_may_work(session.tenant_id)
        if account is None or account.disabled or not tenant_ok:
            await self._revoke_family(session.family, now)
            raise invalid_refresh_token()
        return await self._grant(account, now, family=session.family)

    # -- logout --------------------------------------------------------------------------------

    async def logout(self, principal: Principal, refresh_token: str | None = None) -> None:
        """Revoke the access token (for every service) and its session family."""
        now = self._clock()
        await self._revoker.revoke(principal.token_id, principal.expires_at)
        families: set[str] = set()
        current = await self._sessions.by_access_jti(principal.token_id)
        if current is not None and current.subject == principal.subject:
            families.add(current.family)
        if refresh_token:
            named = await self._sessions.get(hash_secret(refresh_token))
            # Only one's own sessions: a stray token of someone else is ignored, not revoked.
            if named is not None and (named.subject, named.tenant_id) == (
                principal.subject,
                principal.tenant_id,
            ):
                families.add(named.family)
        for family in sorted(families):
            await self._revoke_family(family, now)
        await self._auditor.record(
            _principal_actor(principal),
            "auth.logout",
            kind_of(principal).value,
            principal.subject,
            tenant_id=principal.tenant_id,
            detail=f"access token and {len(families)} session famil"
            + ("y" if len(families) == 1 else "ies")
            + " revoked",
        )

    async def revoke_sessions(self, subject: str, tenant_id: str | None) -> int:
        """Revoke every session (and its access token) of a user, operator or API key.

        For other use cases: a user or operator disabled or deleted, an API key revoked, a
        password changed. Returns how many families were revoked.
        """
        now = self._clock()
        families = await self._sessions.families(subject, tenant_id)
        for family in families:
            await self._revoke_family(family, now)
        return len(families)

    # -- API keys ------------------------------------------------------------------------------

    async def exchange_api_key(self, api_key: str) -> TokenGrant:
        """An access token for a tenant's API key (no refresh token: exchange the key again)."""
        now = self._clock()
        parts = parse_api_key(api_key)
        record = None
        tenant_label = "-"
        if parts is not None and self._tenant_may_work(parts.tenant_id):
            tenant_label = parts.tenant_id
            record = await self._api_keys.get(parts.tenant_id, parts.key_id)
        presented = hash_secret(parts.secret if parts is not None else api_key)
        matches = same_hash(
            record.secret_hash if record is not None else _NO_SECRET_HASH, presented
        )
        if record is None or not matches or not record.usable(now):
            self._exchanges.labels(tenant_label, "invalid").inc()
            raise invalid_api_key()
        roles = _tenant_roles(record.roles, f"API key {record.key_id}")
        permissions = await self._permissions(record.tenant_id, roles)
        ttl = key_token_ttl(record, now, self.config.api_key_ttl)
        jti = new_token_id()
        issuer = await self._keys.issuer()
        token = issuer.issue(
            record.key_id,
            tenant_id=record.tenant_id,
            roles=roles,
            permissions=permissions,
            token_id=jti,
            ttl=ttl,
            now=now,
        )
        # Recorded (under a hash nobody holds) so that revoking the key revokes its tokens.
        await self._sessions.insert(
            Session(
                session_id=hash_secret(new_secret()),
                family=new_id("fam", now),
                subject=record.key_id,
                tenant_id=record.tenant_id,
                kind=AccountKind.API_KEY,
                created_at=now,
                expires_at=now + ttl,
                access_jti=jti,
                access_expires_at=now + ttl,
            )
        )
        if record.needs_touch(now):
            await self._api_keys.touch(record.tenant_id, record.key_id, now)
        self._exchanges.labels(tenant_label, "ok").inc()
        return TokenGrant(token, _seconds(ttl))

    # -- who am I, password --------------------------------------------------------------------

    async def me(self, principal: Principal) -> Me:
        """The token's principal, with the account's names when it has an account."""
        kind = kind_of(principal)
        me = Me(
            kind=kind,
            subject=principal.subject,
            tenant_id=principal.tenant_id,
            roles=tuple(sorted(principal.roles)),
            permissions=tuple(sorted(principal.permissions)),
            expires_at=principal.expires_at,
            token_id=principal.token_id,
        )
        if kind is AccountKind.API_KEY:
            return me
        account = await self._accounts.get(kind, principal.tenant_id, principal.subject)
        if account is None:
            return me
        return replace(
            me,
            username=account.username,
            display_name=account.display_name,
            must_change_password=account.must_change_password,
        )

    async def change_password(self, principal: Principal, current: str, new: str) -> None:
        """Change one's own password; other sessions of the account are revoked.

        The current password is checked like a login (failures count towards the lockout), so a
        stolen access token cannot be used to guess it faster than the login form could.
        """
        kind = kind_of(principal)
        if kind is AccountKind.API_KEY:
            raise Forbidden("an API key has no password")
        now = self._clock()
        account = await self._accounts.get(kind, principal.tenant_id, principal.subject)
        if account is None or account.disabled:
            raise Unauthenticated("the account of this token no longer exists or is disabled")
        self.config.passwords.check(new, username=account.username, field="new_password")
        if new == current:
            raise InvalidInput("new_password", "must differ from the current password")
        stored = account.password_hash
        password_ok = await self._hasher.verify(stored or self._hasher.dummy_hash, current)
        outcome = judge_login(account, password_ok and stored is not None, now, self.config.lockout)
        if outcome.verdict is LoginVerdict.LOCKED:
            assert outcome.locked_until is not None
            raise AccountLocked(
                "the account is locked after too many failed attempts; try again later",
                retry_after_s=max(1, _seconds(outcome.locked_until - now)),
            )
        if outcome.verdict is not LoginVerdict.OK:
            if outcome.state is not None:
                await self._accounts.record_login(account, outcome.state, now, succeeded=False)
            raise InvalidInput("current_password", "does not match the account's password")
        fresh = await self._hasher.hash(new)
        if not await self._accounts.store_password_hash(account, fresh, now, rehash=False):
            raise Conflict("the account changed meanwhile; try again", reason="changed")
        keep = await self._sessions.by_access_jti(principal.token_id)
        for family in await self._sessions.families(principal.subject, principal.tenant_id):
            if keep is None or family != keep.family:
                await self._revoke_family(family, now)
        await self._auditor.record(
            _principal_actor(principal),
            f"{kind.value}.password_change",
            kind.value,
            principal.subject,
            tenant_id=principal.tenant_id,
            before={"password_hash": stored, "version": account.version},
            after={"password_hash": fresh, "version": account.version + 1},
            detail="changed by the account itself; its other sessions are revoked",
        )

    # -- helpers -------------------------------------------------------------------------------

    def _tenant_may_work(self, tenant_id: str) -> bool:
        """Whether the tenant exists and is not deleted (suspended tenants may log in to read)."""
        try:
            check_tenant_id(tenant_id, "tenant")
        except ValueError:
            return False
        info = self._tenants.info(tenant_id)
        return info is not None and info.status is not TenantStatus.DELETED

    async def _permissions(self, tenant_id: str, roles: Sequence[str]) -> frozenset[str]:
        overrides = await self._accounts.role_overrides(tenant_id)
        try:
            return frozenset(p.value for p in resolve(roles, overrides))
        except InvalidInput:
            # A stored override this version cannot read must not lock the tenant out: the
            # role falls back to its default set (the tenant area validates what it writes).
            log.exception("unreadable role overrides of tenant %s: using defaults", tenant_id)
            return frozenset(p.value for p in resolve(roles))

    async def _grant(
        self, account: Account, now: datetime, family: str | None = None
    ) -> TokenGrant:
        operator = account.kind is AccountKind.OPERATOR
        roles: tuple[str, ...] = ()
        permissions: frozenset[str] | None = None
        if not operator:
            assert account.tenant_id is not None
            roles = _tenant_roles(account.roles, f"user {account.account_id}")
            permissions = await self._permissions(account.tenant_id, roles)
        issuer = await self._keys.issuer()
        jti = new_token_id()
        access = issuer.issue(
            account.account_id,
            tenant_id=account.tenant_id,
            roles=roles,
            operator=operator,
            permissions=permissions,
            token_id=jti,
            ttl=self.config.access_ttl,
            now=now,
        )
        refresh = new_secret()
        await self._sessions.insert(
            Session(
                session_id=hash_secret(refresh),
                family=family or new_id("fam", now),
                subject=account.account_id,
                tenant_id=account.tenant_id,
                kind=account.kind,
                created_at=now,
                expires_at=now + self.config.refresh_ttl,
                access_jti=jti,
                access_expires_at=now + self.config.access_ttl,
            )
        )
        return TokenGrant(
            access,
            _seconds(self.config.access_ttl),
            refresh,
            _seconds(self.config.refresh_ttl),
        )

    async def _revoke_family(self, family: str, now: datetime) -> None:
        for session in await self._sessions.revoke_family(family, now):
            if session.access_expires_at > now:
                await self._revoker.revoke(session.access_jti, session.access_expires_at)

    async def _purge_sessions(self, now: datetime) -> None:
        # FerretDB has no TTL indexes: whoever logs in sweeps now and then (an indexed delete).
        if self._monotonic() < self._next_purge:
            return
        self._next_purge = self._monotonic() + SESSION_PURGE_EVERY_S
        try:
            purged = await self._sessions.purge(now)
        except Unavailable:
            log.warning("expired sessions could not be purged now")
            return
        if purged:
            log.info("purged %d expired sessions", purged)


def _principal_actor(principal: Principal) -> Actor:
    kinds = {
        AccountKind.OPERATOR: ActorKind.OPERATOR,
        AccountKind.USER: ActorKind.USER,
        AccountKind.API_KEY: ActorKind.API_KEY,
    }
    return Actor(
        kinds[kind_of(principal)],
        principal.subject,
        principal.tenant_id,
        tuple(sorted(principal.roles)),
    )


# ---------------------------------------------------------------------------------------------
# Operators


@dataclass(frozen=True)
class OperatorPatch:
    """The fields a change of an operator sets (None: unchanged; ``email_given`` for email)."""

    display_name: str | None = None
    email: str | None = None
    email_given: bool = False
    password: str | None = None
    disabled: bool | None = None
    must_change_password: bool | None = None
    unlock: bool = False


class Operators:
    """The platform's operators: listed, created, changed, deleted; never the last one."""

    def __init__(
        self,
        repo: OperatorRepository,
        hasher: PasswordHasher,
        auditor: Auditor,
        clock: Clock,
        passwords: PasswordPolicy,
        revoke_sessions: Callable[[str, str | None], Awaitable[int]] | None = None,
    ) -> None:
        self._repo = repo
        self._hasher = hasher
        self._auditor = auditor
        self._clock = clock
        self._passwords = passwords
        self._revoke_sessions = revoke_sessions

    async def page(self, limit: int, after: str | None) -> Page[Operator]:
        """Operators in creation order."""
        if not 1 <= limit <= 500:
            raise InvalidInput("limit", "must be between 1 and 500")
        return await self._repo.page(limit, after)

    async def get(self, operator_id: str) -> Operator:
        """One operator (404 if there is none by that id)."""
        found = await self._repo.get(operator_id) if is_id(operator_id, OPERATOR_PREFIX) else None
        if found is None:
            raise NotFound(f"no operator {operator_id[:64]}", operator_id=operator_id[:64])
        return found

    async def exists(self) -> bool:
        """Whether the platform has any operator."""
        return await self._repo.exists()

    async def create(
        self,
        actor: Actor,
        *,
        username: str,
        password: str,
        display_name: str | None = None,
        email: str | None = None,
        must_change_password: bool = False,
    ) -> Operator:
        """A new operator; 409 if the username is taken."""
        check_username(username)
        name = check_display_name(display_name if display_name is not None else username)
        address = check_email(email)
        self._passwords.check(password, username=username)
        now = self._clock()
        operator = Operator(
            operator_id=new_id(OPERATOR_PREFIX, now),
            username=username,
            display_name=name,
            email=address,
            password_hash=await self._hasher.hash(password),
            password_changed_at=now,
            must_change_password=must_change_password,
            created_at=now,
            updated_at=now,
        )
        await self._repo.insert(operator)
        await self._auditor.record(
            actor,
            "operator.create",
            "operator",
            operator.operator_id,
            tenant_id=None,
            after=operator.record(),
        )
        return operator

    async def update(
        self, actor: Actor, operator_id: str, patch: OperatorPatch, expected_version: int | None
    ) -> Operator:
        """Change an operator; 412 on a stale version, 409 if it would disable the last one."""
        before = await self.get(operator_id)
        check_version(expected_version, before.version)
        changes: dict[str, Any] = {}
        if patch.display_name is not None:
            changes["display_name"] = check_display_name(patch.display_name)
        if patch.email_given:
            changes["email"] = check_email(patch.email)
        if patch.disabled is not None:
            changes["disabled"] = patch.disabled
        if patch.must_change_password is not None:
            changes["must_change_password"] = patch.must_change_password
        if patch.unlock and before.login != LoginState():
            changes["login"] = LoginState()
        if patch.password is not None:
            self._passwords.check(patch.password, username=before.username)
            changes["password_hash"] = await self._hasher.hash(patch.password)
        changed = {k: v for k, v in changes.items() if getattr(before, k) != v}
        if not changed:
            return before
        now = self._clock()
        if "password_hash" in changed:
            changed["password_changed_at"] = now
        after = before.changed(now, **changed)
        check_keeps_an_operator(before, after, await self._others_active(before))
        if not await self._repo.replace(after, before.version):
            raise self._changed_meanwhile(operator_id)
        if before.active and not after.active and await self._repo.count_active() == 0:
            # Someone disabled the other operators at the same moment: undo ours.
            await self._repo.replace(replace(before, version=after.version + 1), after.version)
            check_keeps_an_operator(before, after, 0)
        if after.disabled or "password_hash" in changed:
            await self._end_sessions(after.operator_id)
        await self._auditor.record(
            actor,
            "operator.update",
            "operator",
            after.operator_id,
            tenant_id=None,
            before=before.record(),
            after=after.record(),
        )
        return after

    async def delete(self, actor: Actor, operator_id: str, expected_version: int | None) -> None:
        """Delete an operator; 409 if it is the last active one."""
        before = await self.get(operator_id)
        check_version(expected_version, before.version)
        check_keeps_an_operator(before, None, await self._others_active(before))
        if not await self._repo.delete(operator_id, before.version):
            raise self._changed_meanwhile(operator_id)
        if before.active and await self._repo.count_active() == 0:
            await self._repo.restore(before)
            check_keeps_an_operator(before, None, 0)
        await self._end_sessions(operator_id)
        await self._auditor.record(
            actor,
            "operator.delete",
            "operator",
            operator_id,
            tenant_id=None,
            before=before.record(),
        )

    async def _others_active(self, operator: Operator) -> int:
        return await self._repo.count_active() - (1 if operator.active else 0)

    async def _end_sessions(self, operator_id: str) -> None:
        if self._revoke_sessions is not None:
            await self._revoke_sessions(operator_id, None)

    @staticmethod
    def _changed_meanwhile(operator_id: str) -> DomainError:
        return Conflict(
            f"operator {operator_id} changed meanwhile; read it again", reason="changed"
        )


async def bootstrap_operator(
    operators: Operators,
    *,
    username: str,
    password: str,
    display_name: str | None = None,
    force_additional: bool = False,
) -> Operator:
    """The first operator of an empty platform (``callmesh admin create-operator``)."""
    if not force_additional and await operators.exists():
        raise Conflict(
            "the platform has an operator already: log in as one and create others through "
            "the API, or pass --force-additional to add one anyway (recovery)",
            reason="not_empty",
        )
    return await operators.create(
        Actor.system("cli"),
        username=username,
        password=password,
        display_name=display_name,
        must_change_password=False,
    )


# ---------------------------------------------------------------------------------------------
# Wiring


def config_from(settings: Any) -> IdentityConfig:
    """The identity configuration of the admin's settings."""
    platform = settings.platform
    return IdentityConfig(
        issuer=platform.jwt_issuer,
        audience=platform.jwt_audience,
        access_ttl=timedelta(seconds=settings.access_token_ttl_s),
        refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_s),
        api_key_ttl=timedelta(seconds=min(settings.access_token_ttl_s, 3600)),
        publish_ahead=timedelta(seconds=settings.signing_key_publish_ahead_s),
        lockout=LockoutPolicy(
            max_failures=settings.login_max_failures,
            window=timedelta(seconds=settings.login_failure_window_s),
            lockout=timedelta(seconds=settings.login_lockout_s),
        ),
        passwords=PasswordPolicy(min_length=settings.password_min_length),
    )


async def start(ctx: AdminContext, runtime: Runtime) -> None:
    """Build this area's use cases on the connected runtime and provide them in ``ctx``."""
    # Adapters are wired here, the area's composition step (imported late, as in every area).
    from callmesh.admin.adapters.keys import Argon2Passwords, vault_for
    from callmesh.admin.adapters.store_identity import (
        MongoAccounts,
        MongoApiKeys,
        MongoOperators,
        MongoSessions,
        MongoSigningKeys,
    )

    config = config_from(ctx.settings)

    def clock() -> datetime:
        # Through the context, so a test (or a simulation) that sets ctx.clock is followed.
        return ctx.clock()

    auditor = ctx.get(Auditor)
    platform_db = runtime.store.operator()
    hasher = Argon2Passwords()
    keys = SigningKeys(
        MongoSigningKeys(platform_db), vault_for(ctx.settings.master_key), auditor, clock, config
    )
    await keys.start()
    authenticator = Authenticator(
        accounts=MongoAccounts(runtime.store, platform_db),
        api_keys=MongoApiKeys(runtime.store),
        sessions=MongoSessions(platform_db),
        keys=keys,
        hasher=hasher,
        revoker=runtime.revocations,
        tenants=runtime.tenant_gate,
        auditor=auditor,
        clock=clock,
        config=config,
    )
    operators = Operators(
        MongoOperators(platform_db),
        hasher,
        auditor,
        clock,
        config.passwords,
        revoke_sessions=authenticator.revoke_sessions,
    )
    ctx.provide(keys)
    ctx.provide(authenticator)
    ctx.provide(operators)
    if not await operators.exists():
        log.warning(
            "no operator exists yet: create the first one with "
            "`callmesh admin create-operator --username NAME`"
        )
