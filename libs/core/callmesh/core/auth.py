"""Access tokens: issue (admin) and verify (every service) Ed25519-signed JWTs; FastAPI guards.

A token is a JWS signed with EdDSA (Ed25519); its header carries ``kid``, the id of the key that
signed it. Claims:

=========  ========================================================================
``iss``    issuer; must equal ``PlatformSettings.jwt_issuer``
``aud``    audience; must equal (or, as a list, contain) ``PlatformSettings.jwt_audience``
``sub``    the user id or API-key id (non-empty string)
``exp``    expiry, seconds since the epoch; at most ``MAX_ACCESS_TTL`` (1 h) after ``iat``
``iat``    issued at, seconds since the epoch (not in the future, beyond the leeway)
``nbf``    optional: not before, seconds since the epoch
``jti``    token id (non-empty string): audit, revocation (the key in ``RevocationList``)
``tid``    tenant id (a valid tenant slug); absent on operator tokens, required otherwise
``roles``  list of role names (see ``Role``); ``"operator"`` only on operator tokens
``perms``  list of permission names (see ``callmesh.core.permissions.Permission``): what the
           subject may do in its tenant, its roles' sets after the tenant's overrides. Absent
           on operator tokens (they hold every permission); absent on tokens issued before
           the claim existed (then the roles' default sets apply). Names this code does not
           know are kept as they are, so an older service tolerates a newer permission.
``op``     ``true`` on operator tokens; absent or ``false`` otherwise
``typ``    ``"access"``
=========  ========================================================================

Verification accepts EdDSA only (``alg: none``, HS256 keyed with the public key, RS256… are
refused before any key is touched), checks ``exp``/``nbf``/``iat`` with a small leeway, then
``iss``, ``aud``, ``typ`` and the shape of every claim, and yields a ``Principal``. Every failure
is ``Unauthenticated`` with a message naming what was wrong and ``details.reason`` as a code
(``expired``, ``signature``, ``unknown_key``, ``issuer``, ``audience``, ``malformed``,
``revoked``, …).

Keys come from a ``KeySource``: ``StaticKeys`` (PEM text or file, a JWK or a JWKS document) or
``JwksKeys`` (admin's JWKS URL, cached for a TTL, refetched when a token names an unknown ``kid``
but at most once per ``min_refetch_interval_s``). Admin should publish a new key in its JWKS at
least one TTL before signing with it, so rotation never depends on the refetch.

Revocation (logout): tokens are verified locally, so a revoked token must be known to every
service without asking admin. Admin calls ``RevocationList.revoke(jti, exp)``, which writes the
KV bucket ``revocations`` (key = ``jti``, value = ``exp``; the bucket's TTL, at least
``MAX_ACCESS_TTL``, forgets entries once their tokens are dead). Every service runs a
``RevocationList`` that watches the bucket into an in-memory set (reloaded after a reconnect) and
hands it to its ``TokenVerifier``, which then refuses a revoked token (``revoked``) at the cost of
one set lookup, and answers 503 until the list has loaded.

HTTP: the service's composition root (``app.py``) sets ``app.state.token_verifier`` (usually
``verifier_from_settings(settings.platform, revocations=...)``) and calls
``callmesh.core.http.install_error_handlers(app)``; routes then depend on ``get_principal``,
``tenant_principal``, ``operator_principal``, ``require_permission(...)``,
``require_tenant_permission(...)`` or ``require_roles(...)`` (or the ``Annotated`` aliases
``CurrentPrincipal``, ``TenantPrincipal``, ``OperatorPrincipal``). Prefer permissions to roles:
a tenant can change what a role may do, not which roles a route names.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import math
import re
import secrets
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import httpx
import jwt
import nats.errors
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import Depends, Path, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt.exceptions import InvalidJTIError, InvalidSubjectError
from nats.js.kv import KeyValue
from starlette.requests import HTTPConnection

from callmesh.core.errors import Forbidden, InvalidInput, NotFound, Unauthenticated, Unavailable
from callmesh.core.kvwatch import ChangeBatch, KvMirror
from callmesh.core.permissions import (
    ALL_PERMISSIONS,
    PERMISSION_NAMES,
    ROLE_NAMES,
    default_permissions,
    parse_permissions,
)
from callmesh.core.permissions import Role as Role
from callmesh.core.settings import PlatformSettings
from callmesh.proto.subjects import Bucket, check_tenant_id

if TYPE_CHECKING:
    from callmesh.core.bus import Bus

log = logging.getLogger(__name__)

ALGORITHM = "EdDSA"
TOKEN_TYPE = "access"
# A real token is about 1.5 KiB at most (a tenant admin's ``perms`` lists every permission);
# refusing huge ones early keeps parsing cheap for attackers too.
MAX_TOKEN_LENGTH = 8192
_REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat", "jti", "typ", "roles"]
# Revocations are kept in a KV bucket whose TTL (1 h) must outlast every access token: a token
# living longer would come back to life once its revocation expired.
MAX_ACCESS_TTL = timedelta(hours=1)
# Token ids are KV keys in the revocations bucket (and safe in logs): no dots, no spaces.
_TOKEN_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified token speaks for: a tenant's user or API key, or an operator."""

    subject: str
    tenant_id: str | None
    roles: frozenset[str]
    is_operator: bool
    token_id: str
    expires_at: datetime
    # Names as the token carried them: a newer admin's permissions are kept, not dropped.
    permissions: frozenset[str] = frozenset()

    def grants_tenant(self, tenant_id: str) -> bool:
        """Whether this principal may act on ``tenant_id`` (operators may act on any)."""
        return self.is_operator or (self.tenant_id is not None and self.tenant_id == tenant_id)

    def has_any_role(self, *roles: str) -> bool:
        """Whether this principal holds at least one of ``roles`` (operators hold them all)."""
        return self.is_operator or not self.roles.isdisjoint(roles)

    def has_permission(self, permission: str) -> bool:
        """Whether this principal holds ``permission`` (operators hold every permission)."""
        return self.is_operator or permission in self.permissions

    def has_any_permission(self, *permissions: str) -> bool:
        """Whether this principal holds at least one of ``permissions`` (operators hold all)."""
        return self.is_operator or not self.permissions.isdisjoint(permissions)


# ---------------------------------------------------------------------------------------------
# Keys


def generate_signing_key() -> Ed25519PrivateKey:
    """A fresh Ed25519 signing key."""
    return Ed25519PrivateKey.generate()


def signing_key_pem(key: Ed25519PrivateKey) -> str:
    """A signing key as unencrypted PKCS#8 PEM (store it as a secret)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def load_signing_key(pem: str | bytes) -> Ed25519PrivateKey:
    """An Ed25519 signing key from unencrypted PKCS#8 PEM."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    key = serialization.load_pem_private_key(data, password=None)
    if isinstance(key, Ed25519PrivateKey):
        return key
    raise ValueError("signing key: must be an Ed25519 private key")


def public_key_pem(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The public key as SubjectPublicKeyInfo PEM (what ``CALLMESH_JWT_PUBLIC_KEY`` takes)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; a private key is refused (verifiers never hold one)."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as err:
        raise ValueError("public key: not a PEM public key (BEGIN PUBLIC KEY)") from err
    if isinstance(key, Ed25519PublicKey):
        return key
    raise ValueError("public key: must be an Ed25519 key")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_jwk(key: Ed25519PublicKey, kid: str) -> dict[str, str]:
    """The public key as an OKP JWK for signatures with EdDSA."""
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _b64url(_raw_public(key)),
        "kid": kid,
        "alg": ALGORITHM,
        "use": "sig",
    }


def key_thumbprint(key: Ed25519PublicKey) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256): a stable ``kid`` derived from the key itself."""
    canonical = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": _b64url(_raw_public(key))},
        separators=(",", ":"),
        sort_keys=True,
    )
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def public_key_from_jwk(jwk: Mapping[str, Any]) -> Ed25519PublicKey:
    """An Ed25519 public key from an OKP JWK; refuses other key types and private JWKs."""
    if not isinstance(jwk, Mapping) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError("jwk: must be an object with kty 'OKP' and crv 'Ed25519'")
    if jwk.get("alg", ALGORITHM) not in (ALGORITHM, "Ed25519"):
        raise ValueError("jwk: alg must be 'EdDSA'")
    if jwk.get("use", "sig") != "sig":
        raise ValueError("jwk: use must be 'sig'")
    if "d" in jwk:
        # A private key published as a verification key is a leak; refuse rather than use it.
        raise ValueError("jwk: holds a private key ('d'); publish only the public part")
    x = jwk.get("x")
    try:
        raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)) if isinstance(x, str) else b""
    except ValueError as err:
        raise ValueError("jwk: x must be base64url") from err
    if len(raw) != 32:
        raise ValueError("jwk: x must be the 32-byte public key, base64url")
    return Ed25519PublicKey.from_public_bytes(raw)


def _jwk_list(document: Mapping[str, Any]) -> list[Any]:
    """The JWKs of a JWKS document (``{"keys": [...]}``) or of a single JWK."""
    if "keys" not in document:
        return [document]
    keys = document["keys"]
    if isinstance(keys, list):
        return keys
    raise ValueError("jwks: keys must be a list")


# ---------------------------------------------------------------------------------------------
# Signing


class TokenIssuer:
    """Signs access tokens with one Ed25519 key (admin, and tests)."""

    def __init__(
        self, private_key: Ed25519PrivateKey, kid: str, issuer: str, audience: str
    ) -> None:
        if not kid:
            raise ValueError("kid: must not be empty")
        self._key = private_key
        self.kid = kid
        self.issuer = issuer
        self.audience = audience

    def issue(
        self,
        subject: str,
        *,
        tenant_id: str | None = None,
        roles: Iterable[str] = (),
        operator: bool = False,
        permissions: Iterable[str] | None = None,
        token_id: str | None = None,
        ttl: timedelta = timedelta(minutes=15),
        now: datetime | None = None,
    ) -> str:
        """A signed access token for a tenant's subject, or for an operator (``operator=True``).

        ``permissions`` (admin passes ``permissions.resolve(roles, tenant_overrides)``) become
        the ``perms`` claim; None issues the roles' default sets. Operator tokens carry none.
        ``token_id`` (the ``jti``, random by default) lets admin record the token it revokes.
        """
        if not subject:
            raise InvalidInput("sub", "must not be empty")
        if operator and tenant_id is not None:
            raise InvalidInput("tid", "an operator token cannot be scoped to a tenant")
        if not operator and tenant_id is None:
            raise InvalidInput("tid", "a non-operator token needs a tenant id")
        if tenant_id is not None:
            try:
                check_tenant_id(tenant_id, "tid")
            except ValueError as err:
                raise InvalidInput("tid", "must be a tenant id", str(err)) from err
        role_set = set(roles)
        unknown = role_set - ROLE_NAMES
        if unknown:
            raise InvalidInput("roles", f"unknown roles: {', '.join(sorted(unknown))}")
        if operator:
            role_set.add(Role.OPERATOR)
        elif Role.OPERATOR in role_set:
            raise InvalidInput("roles", "'operator' is only for operator tokens")
        granted: frozenset[str] | None = None
        if operator:
            if permissions is not None:
                raise InvalidInput("perms", "an operator token holds every permission; give none")
        elif permissions is None:
            granted = default_permissions(role_set)
        else:
            granted = parse_permissions(permissions, "perms")
        if token_id is None:
            token_id = secrets.token_urlsafe(16)
        elif not _TOKEN_ID_RE.fullmatch(token_id):
            raise InvalidInput("jti", "must be 1-128 letters, digits, '-' or '_'")
        if ttl <= timedelta(0):
            raise InvalidInput("ttl", "must be positive")
        if ttl > MAX_ACCESS_TTL:
            raise InvalidInput(
                "ttl",
                "must be at most 1 h (MAX_ACCESS_TTL)",
                f"ttl: {ttl} is longer than MAX_ACCESS_TTL ({MAX_ACCESS_TTL}); revocations are "
                "kept only that long, so a longer-lived token could outlive its logout",
            )
        issued = now if now is not None else datetime.now(UTC)
        if issued.tzinfo is None:
            raise ValueError("now: must be timezone-aware")
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": int(issued.timestamp()),
            "exp": int((issued + ttl).timestamp()),
            "jti": token_id,
            "roles": sorted(str(role) for role in role_set),
            "typ": TOKEN_TYPE,
        }
        if operator:
            claims["op"] = True
        else:
            claims["tid"] = tenant_id
        if granted is not None:
            claims["perms"] = sorted(str(permission) for permission in granted)
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def jwk(self) -> dict[str, str]:
        """The public key as a JWK (kid, alg EdDSA, use sig)."""
        return public_jwk(self._key.public_key(), self.kid)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """A JWKS document with this issuer's public key."""
        return {"keys": [self.jwk()]}


# ---------------------------------------------------------------------------------------------
# Key sources


class KeySource(Protocol):
    """Where a verifier finds the public keys a token may be signed with."""

    async def keys_for(self, kid: str | None) -> Sequence[Ed25519PublicKey]:
        """The candidate keys for a token's ``kid``; raises Unauthenticated when there are none."""
        ...


def _unknown_key() -> Unauthenticated:
    return Unauthenticated("token signed with an unknown key id (kid)", reason="unknown_key")


class StaticKeys:
    """A fixed set of public keys: by ``kid``, plus keys (from PEM) that match any ``kid``."""

    def __init__(
        self,
        keys: Mapping[str, Ed25519PublicKey] | None = None,
        *,
        any_kid: Sequence[Ed25519PublicKey] = (),
    ) -> None:
        self._by_kid = dict(keys or {})
        self._any_kid = tuple(any_kid)
        if not self._by_kid and not self._any_kid:
            raise ValueError("static keys: at least one public key is needed")

    @classmethod
    def from_pem(cls, pem: str | bytes, *, kid: str | None = None) -> StaticKeys:
        """One PEM public key; without ``kid`` it verifies tokens whatever their ``kid``."""
        key = load_public_key(pem)
        return cls({kid: key}) if kid else cls(any_kid=[key])

    @classmethod
    def from_pem_file(cls, path: str | FilePath, *, kid: str | None = None) -> StaticKeys:
        """One PEM public key read from a file."""
        return cls.from_pem(FilePath(path).read_bytes(), kid=kid)

    @classmethod
    def from_jwks(cls, document: Mapping[str, Any]) -> StaticKeys:
        """Keys from a JWKS document or a single JWK; a JWK without ``kid`` matches any ``kid``."""
        by_kid: dict[str, Ed25519PublicKey] = {}
        any_kid: list[Ed25519PublicKey] = []
        for jwk in _jwk_list(document):
            key = public_key_from_jwk(jwk)
            kid = jwk.get("kid")
            if isinstance(kid, str) and kid:
                by_kid[kid] = key
            else:
                any_kid.append(key)
        return cls(by_kid, any_kid=any_kid)

    @classmethod
    def from_text(cls, text: str) -> StaticKeys:
        """Keys from configuration text: PEM, JSON (JWK or JWKS), or a path to a file of either."""
        stripped = text.strip()
        if not stripped.startswith(("-----BEGIN", "{")):
            try:
                stripped = FilePath(stripped).read_text(encoding="utf-8").strip()
            except OSError as err:
                raise ValueError(
                    "public key: neither PEM, nor JSON (JWK/JWKS), nor a readable file"
                ) from err
        if stripped.startswith("{"):
            try:
                document = json.loads(stripped)
            except ValueError as err:
                raise ValueError("public key: not valid JSON (JWK or JWKS expected)") from err
            if not isinstance(document, dict):
                raise ValueError("public key: JSON must be a JWK or a JWKS object")
            return cls.from_jwks(document)
        return cls.from_pem(stripped)

    async def keys_for(self, kid: str | None) -> Sequence[Ed25519PublicKey]:
        """The key with this ``kid``, else the keys that match any ``kid``."""
        if kid is not None:
            key = self._by_kid.get(kid)
            if key is not None:
                return (key,)
        if self._any_kid:
            return self._any_kid
        raise _unknown_key()


class JwksKeys:
    """Public keys from a JWKS URL (admin's), cached for a TTL; refetches are rate-limited."""

    def __init__(
        self,
        url: str,
        *,
        ttl_s: float = 300.0,
        min_refetch_interval_s: float = 10.0,
        timeout_s: float = 5.0,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # A bad URL is a configuration mistake: say so at startup, not on the first request.
        if httpx.URL(url).scheme not in ("http", "https"):
            raise ValueError(f"jwks url: must be http(s) (got {url!r})")
        self.url = url
        self._ttl_s = ttl_s
        self._min_interval_s = min_refetch_interval_s
        self._timeout_s = timeout_s
        self._client = client
        self._clock = clock
        self._keys: dict[str, Ed25519PublicKey] | None = None
        self._fresh_until = -math.inf
        self._last_attempt = -math.inf
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        """Fetch the key set now (at startup, to fail early); raises Unavailable if it cannot."""
        async with self._lock:
            await self._fetch()

    async def keys_for(self, kid: str | None) -> Sequence[Ed25519PublicKey]:
        """The key with this ``kid``: from the cache when fresh, else after one (limited) fetch."""
        if kid is None:
            raise Unauthenticated("token malformed: header has no key id (kid)", reason="malformed")
        keys = self._keys
        if keys is not None:
            key = keys.get(kid)
            # Hot path: a fresh cache hit costs one dict lookup and no I/O. While another request
            # refreshes a stale set, known keys keep serving rather than queueing behind it.
            if key is not None and (self._clock() < self._fresh_until or self._lock.locked()):
                return (key,)
        async with self._lock:
            now = self._clock()
            stale = self._keys is None or now >= self._fresh_until
            unknown = self._keys is None or kid not in self._keys
            # Random kids from an attacker must not turn into a stream of fetches: one per interval.
            if (stale or unknown) and now - self._last_attempt >= self._min_interval_s:
                try:
                    await self._fetch()
                except Unavailable:
                    if self._keys is None:
                        raise
                    # Admin briefly down: keep verifying with the keys we have.
            if self._keys is None:
                raise Unavailable("token signing keys cannot be fetched now")
            key = self._keys.get(kid)
        if key is None:
            raise _unknown_key()
        return (key,)

    async def _fetch(self) -> None:
        self._last_attempt = self._clock()
        try:
            document = await self._get()
            keys = self._parse(document)
        except (httpx.HTTPError, ValueError) as err:
            log.warning("fetching JWKS from %s failed: %s", self.url, err)
            raise Unavailable("token signing keys cannot be fetched now") from err
        self._keys = keys
        self._fresh_until = self._clock() + self._ttl_s

    async def _get(self) -> Any:
        if self._client is not None:
            response = await self._client.get(self.url, timeout=self._timeout_s)
            response.raise_for_status()
            return response.json()
        # Fetches are rare (once per TTL), so a client per fetch costs little and ties the
        # verifier to no event loop and no shutdown step.
        async with httpx.AsyncClient(timeout=self._timeout_s) as client:
            response = await client.get(self.url)
            response.raise_for_status()
            return response.json()

    def _parse(self, document: Any) -> dict[str, Ed25519PublicKey]:
        if not isinstance(document, dict) or "keys" not in document:
            raise ValueError("not a JWKS document (an object with a 'keys' list)")
        keys: dict[str, Ed25519PublicKey] = {}
        for jwk in _jwk_list(document):
            kid = jwk.get("kid") if isinstance(jwk, dict) else None
            if not isinstance(kid, str) or not kid:
                log.warning("JWKS %s: skipping a key without kid", self.url)
                continue
            try:
                keys[kid] = public_key_from_jwk(jwk)
            except ValueError as err:
                # A JWKS may list keys meant for other consumers; skip them, keep ours.
                log.warning("JWKS %s: skipping key %r: %s", self.url, kid, err)
        if not keys:
            raise ValueError("no usable Ed25519 key in the JWKS")
        return keys


# ---------------------------------------------------------------------------------------------
# Revocation


def _check_token_id(jti: str) -> None:
    if not isinstance(jti, str) or not _TOKEN_ID_RE.fullmatch(jti):
        raise InvalidInput("jti", "must be 1-128 letters, digits, '-' or '_'")


class RevocationList:
    """Revoked token ids known to every service: the KV bucket ``revocations`` watched into memory.

    ``is_revoked`` is a dict lookup, never I/O. ``start`` mirrors the bucket (``KvMirror``: its
    entries, then every change, reloaded afresh after a NATS reconnect, so revocations made or
    deleted while this process was cut off are known) and sets ``ready`` once loaded. An entry is
    forgotten when its KV entry is deleted, or once its token is dead: ``exp`` plus ``grace_s``
    (keep it at least the verifiers' leeway). The bucket's TTL drops entries on the server
    without telling watchers; the ``exp`` rule does the same in memory, so the set holds at most
    the revocations of the last ``MAX_ACCESS_TTL``.
    """

    def __init__(
        self,
        bus: Bus,
        *,
        grace_s: float = 60.0,
        check_interval_s: float = 1.0,
        prune_interval_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._bus = bus
        self.grace_s = grace_s
        self._prune_interval_s = prune_interval_s
        self._clock = clock
        # jti -> when the entry may be forgotten, in seconds since the epoch (exp is wall time).
        self._revoked: dict[str, float] = {}
        self._kv: KeyValue | None = None
        self._mirror = KvMirror(bus, Bucket.REVOCATIONS, self._apply, poll_s=check_interval_s)
        self._pruner: asyncio.Task[None] | None = None

    @property
    def ready(self) -> asyncio.Event:
        """Set once the bucket's entries are loaded."""
        return self._mirror.ready

    @property
    def loads(self) -> int:
        """Complete loads of the bucket so far (one more after each reconnect or restart)."""
        return self._mirror.loads

    def __len__(self) -> int:
        return len(self._revoked)

    def is_revoked(self, jti: str) -> bool:
        """Whether the token with this ``jti`` has been revoked (a set lookup, no I/O)."""
        return jti in self._revoked

    async def start(self) -> None:
        """Start mirroring the bucket; ``ready`` is set once its current entries are loaded."""
        self._mirror.start()
        if self._pruner is None:
            self._pruner = asyncio.create_task(self._prune_forever(), name="revocations-prune")

    async def stop(self) -> None:
        """Stop watching; the revocations known so far stay in memory."""
        pruner, self._pruner = self._pruner, None
        if pruner is not None:
            pruner.cancel()
            await asyncio.gather(pruner, return_exceptions=True)
        await self._mirror.stop()

    async def revoke(self, jti: str, exp: datetime | float) -> None:
        """Revoke the token ``jti`` (expiring at ``exp``) for every service: admin, at logout."""
        _check_token_id(jti)
        expires = exp.timestamp() if isinstance(exp, datetime) else float(exp)
        if not math.isfinite(expires):
            raise InvalidInput("exp", "must be a finite time")
        now = self._clock()
        if expires > now + MAX_ACCESS_TTL.total_seconds() + self.grace_s:
            # Only a token issued past MAX_ACCESS_TTL (or a wrong clock) gets here: the bucket
            # will forget the revocation while the token still lives.
            log.warning("revoked token outlives the revocations bucket", extra={"jti": jti})
        try:
            kv = await self._bucket()
            await kv.put(jti, str(math.ceil(expires)).encode("ascii"))
        except (nats.errors.Error, TimeoutError) as err:
            raise Unavailable("the revocation cannot be recorded now; retry") from err
        # Refused here at once, not only when the watcher echoes the entry back.
        self._admit(jti, expires, now)

    def prune(self) -> int:
        """Forget the revocations of tokens dead by now; returns how many were forgotten."""
        now = self._clock()
        dead = [jti for jti, until in self._revoked.items() if until <= now]
        for jti in dead:
            del self._revoked[jti]
        return len(dead)

    async def _prune_forever(self) -> None:
        while True:
            await asyncio.sleep(self._prune_interval_s)
            self.prune()

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self._bus.kv(Bucket.REVOCATIONS)
        return self._kv

    def _admit(self, jti: str, expires: float, now: float) -> None:
        # The bucket keeps an entry at most MAX_ACCESS_TTL, so memory need not keep it longer;
        # the cap also stops a bogus far-future exp from pinning the entry.
        until = min(expires, now + MAX_ACCESS_TTL.total_seconds()) + self.grace_s
        if until > now:
            self._revoked[jti] = until
        else:
            self._revoked.pop(jti, None)

    def _apply(self, changes: ChangeBatch, initial: bool) -> None:
        now = self._clock()
        for jti, value in changes:
            if value is None:
                self._revoked.pop(jti, None)
                continue
            try:
                expires = float(value.decode("ascii"))
            except (UnicodeDecodeError, ValueError):
                expires = math.nan
            if not math.isfinite(expires):
                # Not written by revoke(): fail closed, for as long as any token can live.
                log.warning("revocation without a readable exp", extra={"jti": jti})
                expires = now + MAX_ACCESS_TTL.total_seconds()
            self._admit(jti, expires, now)
        if initial:
            log.info("token revocations loaded", extra={"count": len(self._revoked)})


# ---------------------------------------------------------------------------------------------
# Verification


def _malformed(what: str) -> Unauthenticated:
    return Unauthenticated(f"token malformed: {what}", reason="malformed")


def _translate(err: jwt.PyJWTError) -> Unauthenticated:
    """A PyJWT failure as a clear Unauthenticated; PyJWT's own wording is never passed on."""
    if isinstance(err, jwt.ExpiredSignatureError):
        return Unauthenticated("token expired", reason="expired")
    if isinstance(err, jwt.ImmatureSignatureError):
        return Unauthenticated(
            "token not yet valid (nbf/iat in the future)", reason="not_yet_valid"
        )
    if isinstance(err, jwt.InvalidSignatureError):
        return Unauthenticated("token signature invalid", reason="signature")
    if isinstance(err, jwt.InvalidAudienceError):
        return Unauthenticated("token audience wrong (not issued for us)", reason="audience")
    if isinstance(err, jwt.InvalidIssuerError):
        return Unauthenticated(
            "token issuer wrong (not issued by a trusted issuer)", reason="issuer"
        )
    if isinstance(err, jwt.InvalidAlgorithmError):
        return Unauthenticated("token algorithm not allowed (EdDSA required)", reason="algorithm")
    if isinstance(err, jwt.MissingRequiredClaimError):
        return _malformed(f"claim {err.claim!r} missing")
    if isinstance(err, jwt.InvalidIssuedAtError):
        return _malformed("claim 'iat' must be a number")
    if isinstance(err, InvalidSubjectError):
        return _malformed("claim 'sub' must be a string")
    if isinstance(err, InvalidJTIError):
        return _malformed("claim 'jti' must be a string")
    return _malformed("cannot be decoded")


class TokenVerifier:
    """Verifies access tokens against a key source and turns their claims into a Principal."""

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        leeway_s: float = 30.0,
        revocations: RevocationList | None = None,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        if revocations is not None and revocations.grace_s < leeway_s:
            # A revoked token is accepted up to leeway_s past its exp: its entry must last as long.
            raise ValueError("revocations: grace_s must be at least the verifier's leeway_s")
        self.revocations = revocations

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; raises Unauthenticated saying what was wrong."""
        kid = self._read_header(token)
        candidates = await self.keys.keys_for(kid)
        claims: dict[str, Any] | None = None
        last: jwt.PyJWTError | None = None
        for key in candidates:
            try:
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[ALGORITHM],
                    issuer=self.issuer,
                    audience=self.audience,
                    leeway=self.leeway_s,
                    options={"require": _REQUIRED_CLAIMS},
                )
                break
            except jwt.InvalidSignatureError as err:
                # Several keys match any kid only when configured that way (PEM rotation).
                last = err
            except jwt.PyJWTError as err:
                raise _translate(err) from err
        if claims is None:
            raise _translate(last or jwt.InvalidSignatureError()) from last
        principal = self._principal(claims)
        revocations = self.revocations
        if revocations is not None:
            # Fail closed: before the list has loaded, a revoked token would look valid.
            if not revocations.ready.is_set():
                raise Unavailable("token revocations are not loaded yet", reason="revocations")
            if revocations.is_revoked(principal.token_id):
                raise Unauthenticated("token has been revoked", reason="revoked")
        return principal

    def _read_header(self, token: str) -> str | None:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise _malformed("empty or too long")
        # Read here rather than with jwt.get_unverified_header, which decodes the whole token a
        # second time (PyJWT checks segments character by character): it would double the cost.
        segment, dot, rest = token.partition(".")
        if not dot or rest.count(".") != 1:
            raise _malformed("not a JWT (three dot-separated parts)")
        try:
            raw = base64.b64decode(segment + "=" * (-len(segment) % 4), b"-_", validate=True)
            header = json.loads(raw)
        except (ValueError, RecursionError) as err:
            raise _malformed("header is not base64url JSON") from err
        if not isinstance(header, dict):
            raise _malformed("header is not a JSON object")
        # Checked before any key is looked up: alg confusion (none, HS256 keyed with our public
        # key, RS256) must fail whatever key the token names.
        if header.get("alg") != ALGORITHM:
            raise Unauthenticated(
                "token algorithm not allowed (EdDSA required)", reason="algorithm"
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _malformed("header kid must be a string")
        return kid

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        if claims.get("typ") != TOKEN_TYPE:
            raise Unauthenticated("token is not an access token (typ)", reason="token_type")
        subject = claims["sub"]
        token_id = claims["jti"]
        if not subject or not token_id:
            raise _malformed("claims 'sub' and 'jti' must not be empty")
        roles = claims["roles"]
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise _malformed("claim 'roles' must be a list of strings")
        operator = claims.get("op", False)
        if operator is None:
            operator = False
        if not isinstance(operator, bool):
            raise _malformed("claim 'op' must be a boolean")
        tenant_id = claims.get("tid")
        if operator:
            if tenant_id is not None:
                raise _malformed("an operator token must not carry 'tid'")
        else:
            if not isinstance(tenant_id, str):
                raise _malformed("claim 'tid' missing (required unless 'op' is true)")
            try:
                check_tenant_id(tenant_id, "tid")
            except ValueError as err:
                raise _malformed("claim 'tid' is not a tenant id") from err
            # The role name must not let a tenant token pass an operator check made by role.
            if Role.OPERATOR in roles:
                raise _malformed("role 'operator' on a token without 'op'")
        permissions: frozenset[str]
        if "perms" in claims:
            perms = claims["perms"]
            if operator:
                raise _malformed("an operator token must not carry 'perms'")
            if not isinstance(perms, list) or not all(isinstance(p, str) for p in perms):
                raise _malformed("claim 'perms' must be a list of strings")
            permissions = frozenset(perms)
        elif operator:
            permissions = ALL_PERMISSIONS
        else:
            # Issued before the claim existed: what the roles grant by default.
            permissions = default_permissions(roles)
        return Principal(
            subject=subject,
            tenant_id=tenant_id,
            roles=frozenset(roles),
            is_operator=operator,
            token_id=token_id,
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            permissions=permissions,
        )


def verifier_from_settings(
    settings: PlatformSettings,
    *,
    leeway_s: float = 30.0,
    revocations: RevocationList | None = None,
) -> TokenVerifier:
    """The verifier the settings describe: ``jwks_url`` or ``jwt_public_key`` (one of them)."""
    if settings.jwks_url and settings.jwt_public_key:
        raise ValueError("set one of CALLMESH_JWKS_URL and CALLMESH_JWT_PUBLIC_KEY, not both")
    keys: KeySource
    if settings.jwks_url:
        keys = JwksKeys(settings.jwks_url)
    elif settings.jwt_public_key:
        keys = StaticKeys.from_text(settings.jwt_public_key)
    else:
        raise ValueError("token verification needs CALLMESH_JWKS_URL or CALLMESH_JWT_PUBLIC_KEY")
    return TokenVerifier(
        keys,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        leeway_s=leeway_s,
        revocations=revocations,
    )


# ---------------------------------------------------------------------------------------------
# FastAPI dependencies

# Declared through Security so OpenAPI (and the generated console client) knows the scheme; the
# header is judged below, so a malformed one gets a precise 401 rather than FastAPI's generic one.
_bearer = HTTPBearer(auto_error=False, bearerFormat="JWT", description="callmesh access token")


def token_verifier(conn: HTTPConnection) -> TokenVerifier:
    """The verifier the composition root put in ``app.state.token_verifier`` (HTTP or WebSocket)."""
    verifier = getattr(conn.app.state, "token_verifier", None)
    if isinstance(verifier, TokenVerifier):
        return verifier
    # Fail closed, and say what the operator must configure.
    raise Unavailable(
        "token verification is not configured: set CALLMESH_JWKS_URL or CALLMESH_JWT_PUBLIC_KEY",
        reason="no_verifier",
    )


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <jwt>`` header; Unauthenticated if there is none."""
    if not authorization:
        raise Unauthenticated("missing Authorization header (Bearer token)", reason="missing")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("Authorization header must be 'Bearer <token>'", reason="missing")
    return token


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    """The principal of the request's bearer token (401 if missing or invalid)."""
    if credentials is not None:
        token = credentials.credentials
    else:
        token = bearer_token(request.headers.get("authorization"))
    return await token_verifier(request).verify(token)


async def tenant_principal(
    tenant: Annotated[str, Path(description="tenant id")],
    principal: Annotated[Principal, Depends(get_principal)],
) -> Principal:
    """For routes ``/v1/t/{tenant}/…``: the principal, if its token grants that tenant."""
    try:
        check_tenant_id(tenant, "tenant")
    except ValueError:
        # Say nothing about why: a malformed id is as absent as someone else's tenant.
        raise NotFound("not found") from None
    if not principal.grants_tenant(tenant):
        raise Forbidden(f"token does not grant tenant {tenant}", tenant=tenant)
    return principal


async def operator_principal(
    principal: Annotated[Principal, Depends(get_principal)],
) -> Principal:
    """The principal, if it is an operator (403 otherwise)."""
    if not principal.is_operator:
        raise Forbidden("requires an operator token")
    return principal


def require_roles(
    *roles: str,
) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """A dependency passing principals that hold at least one of ``roles`` (403 otherwise)."""
    if not roles:
        raise ValueError("require_roles: name at least one role")
    needed = tuple(str(role) for role in roles)

    async def holds_a_role(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.has_any_role(*needed):
            raise Forbidden(f"requires one of the roles: {', '.join(needed)}", roles=list(needed))
        return principal

    return holds_a_role


def _check_required(permissions: tuple[str, ...], what: str) -> tuple[str, ...]:
    if not permissions:
        raise ValueError(f"{what}: name at least one permission")
    needed = tuple(str(permission) for permission in permissions)
    # A typo here would lock a route for everyone but operators: say so at import time.
    unknown = [name for name in needed if name not in PERMISSION_NAMES]
    if unknown:
        raise ValueError(f"{what}: unknown permissions: {', '.join(unknown)}")
    return needed


def _refusal(needed: tuple[str, ...]) -> Forbidden:
    if len(needed) == 1:
        return Forbidden(f"requires permission {needed[0]}", permissions=list(needed))
    return Forbidden(
        f"requires one of the permissions: {', '.join(needed)}", permissions=list(needed)
    )


def require_permission(
    *permissions: str,
) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """A dependency passing principals that hold at least one of ``permissions`` (403 otherwise)."""
    needed = _check_required(permissions, "require_permission")

    async def holds_a_permission(
        principal: Annotated[Principal, Depends(get_principal)],
    ) -> Principal:
        if not principal.has_any_permission(*needed):
            raise _refusal(needed)
        return principal

    return holds_a_permission


def require_tenant_permission(
    *permissions: str,
) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """For routes ``/v1/t/{tenant}/…``: ``tenant_principal`` plus one of ``permissions``."""
    needed = _check_required(permissions, "require_tenant_permission")

    async def holds_a_permission_here(
        principal: Annotated[Principal, Depends(tenant_principal)],
    ) -> Principal:
        if not principal.has_any_permission(*needed):
            raise _refusal(needed)
        return principal

    return holds_a_permission_here


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
TenantPrincipal = Annotated[Principal, Depends(tenant_principal)]
OperatorPrincipal = Annotated[Principal, Depends(operator_principal)]
