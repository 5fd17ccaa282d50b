"""API keys for a tenant's integrations: the key string, its stored hash, its life.

The key string is shown once: ``cmk_<tenant>_<24 hex of the id>_<secret>`` where the secret is
32 random bytes, base64url without padding. Only ``sha256(secret)`` (hex) is stored; identity
finds the key by its id, compares the hash and exchanges it for an access token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from callmesh.core.errors import InvalidInput

KEY_PREFIX = "key"
KEY_STRING_PREFIX = "cmk"
MAX_NAME = 100
# Enough of the key string to tell keys apart in a list, none of the secret.
_DISPLAY_HEX = 8
_KEY_RE = re.compile(
    r"^cmk_(?P<tenant>[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?)_(?P<hex>[0-9a-f]{24})_(?P<secret>[A-Za-z0-9_-]{43})$"
)


class KeyStatus(StrEnum):
    """Whether a key can be used now."""

    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class MintedKey:
    """A new key's parts: the string shown once, and what is stored of it."""

    key_id: str
    key_string: str
    secret_hash: str
    prefix: str


def hash_secret(secret: str) -> str:
    """The stored form of a key's secret: sha256, hex."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def mint(tenant_id: str, key_id: str) -> MintedKey:
    """A fresh secret for key ``key_id`` (``key_<24 hex>``) of the tenant."""
    if not key_id.startswith(f"{KEY_PREFIX}_"):
        raise ValueError("key_id: must be a key id (key_<24 hex>)")
    hex_id = key_id.removeprefix(f"{KEY_PREFIX}_")
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")
    return MintedKey(
        key_id=key_id,
        key_string=f"{KEY_STRING_PREFIX}_{tenant_id}_{hex_id}_{secret}",
        secret_hash=hash_secret(secret),
        prefix=f"{KEY_STRING_PREFIX}_{tenant_id}_{hex_id[:_DISPLAY_HEX]}",
    )


def parse_key_string(text: str) -> tuple[str, str, str] | None:
    """(tenant id, key id, secret) of a key string, or None if it is not one."""
    match = _KEY_RE.match(text.strip())
    if match is None:
        return None
    return match["tenant"], f"{KEY_PREFIX}_{match['hex']}", match["secret"]


def secret_matches(secret: str, secret_hash: str) -> bool:
    """Whether a presented secret is the key's (constant time)."""
    return hmac.compare_digest(hash_secret(secret), secret_hash)


def check_key_name(value: str, field_name: str = "name") -> str:
    """A key's name: 1-100 characters once trimmed, no control characters."""
    text = value.strip()
    if not text:
        raise InvalidInput(field_name, "must not be empty")
    if len(text) > MAX_NAME:
        raise InvalidInput(field_name, f"must be at most {MAX_NAME} characters")
    if any(not c.isprintable() for c in text):
        raise InvalidInput(field_name, "must not contain control characters")
    return text


def check_expiry(
    expires_at: datetime | None, now: datetime, field_name: str = "expires_at"
) -> None:
    """An expiry must carry a time zone and lie in the future."""
    if expires_at is None:
        return
    if expires_at.tzinfo is None:
        raise InvalidInput(field_name, "must include a UTC offset")
    if expires_at <= now:
        raise InvalidInput(field_name, "must be in the future")


@dataclass(frozen=True)
class ApiKey:
    """A tenant's API key as stored (identity reads the same record to exchange keys)."""

    key_id: str
    tenant_id: str
    name: str
    roles: tuple[str, ...]
    secret_hash: str
    prefix: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def status(self, now: datetime) -> KeyStatus:
        """Active, expired or revoked, at ``now``."""
        if self.revoked_at is not None:
            return KeyStatus.REVOKED
        if self.expires_at is not None and now >= self.expires_at:
            return KeyStatus.EXPIRED
        return KeyStatus.ACTIVE

    def revoked(self, now: datetime) -> ApiKey:
        """The key revoked at ``now`` (a key stays revoked once it is)."""
        return self if self.revoked_at is not None else replace(self, revoked_at=now)

    def record(self) -> dict[str, Any]:
        """The stored document (``api_keys`` collection): the contract with the identity area."""
        return {
            "_id": self.key_id,
            "tenant_id": self.tenant_id,
            "name": self.name,
            "roles": list(self.roles),
            "secret_hash": self.secret_hash,
            "prefix": self.prefix,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "last_used_at": self.last_used_at,
        }

    @classmethod
    def from_record(cls, doc: Mapping[str, Any]) -> ApiKey:
        """Read a stored document."""
        return cls(
            key_id=doc["_id"],
            tenant_id=doc["tenant_id"],
            name=doc["name"],
            roles=tuple(doc.get("roles") or ()),
            secret_hash=doc["secret_hash"],
            prefix=doc.get("prefix", ""),
            created_at=doc["created_at"],
            created_by=doc.get("created_by", ""),
            expires_at=doc.get("expires_at"),
            revoked_at=doc.get("revoked_at"),
            last_used_at=doc.get("last_used_at"),
        )
