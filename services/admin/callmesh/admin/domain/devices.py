"""Devices: a tenant's SIP and WebRTC endpoints, their FreeSWITCH a1-hash and SIP domain."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from callmesh.core.errors import InvalidInput
from callmesh.core.tenancy import check_sip_username, normalize_number, normalize_sip_domain
from callmesh.proto.subjects import check_tenant_id

DEVICE_PREFIX = "dev"
MIN_PASSWORD = 12
MAX_PASSWORD = 128
MAX_DISPLAY_NAME = 128
# Site ids as the operator registers them (lowercase slugs).
_SITE_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$")


class DeviceKind(StrEnum):
    """What kind of endpoint registers with the device's credentials."""

    SIP = "sip"
    WEBRTC = "webrtc"


def sip_domain(tenant_id: str, suffix: str) -> str:
    """The tenant's SIP domain (also the digest realm of its devices): ``<tenant>.<suffix>``."""
    return f"{tenant_id}.{normalize_sip_domain(suffix)}"


def tenant_of_domain(domain: str, suffix: str) -> str | None:
    """The tenant a SIP domain belongs to, or None if it is not a tenant domain of ``suffix``."""
    try:
        host = normalize_sip_domain(domain)
    except InvalidInput:
        return None
    tail = f".{normalize_sip_domain(suffix)}"
    if not host.endswith(tail):
        return None
    tenant = host[: -len(tail)]
    try:
        return check_tenant_id(tenant)
    except ValueError:
        return None


def a1_hash(username: str, domain: str, password: str) -> str:
    """FreeSWITCH's ``a1-hash``: md5 of ``username:realm:password`` in hex (HTTP digest's HA1)."""
    return hashlib.md5(
        f"{username}:{domain}:{password}".encode(), usedforsecurity=False
    ).hexdigest()


def generate_password() -> str:
    """A random device password (24 URL-safe characters, 144 bits)."""
    return secrets.token_urlsafe(18)


def check_device_password(value: str, field_name: str = "password") -> str:
    """A device password: 12-128 printable characters, no spaces."""
    if len(value) < MIN_PASSWORD:
        raise InvalidInput(field_name, f"must be at least {MIN_PASSWORD} characters")
    if len(value) > MAX_PASSWORD:
        raise InvalidInput(field_name, f"must be at most {MAX_PASSWORD} characters")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise InvalidInput(field_name, "must be printable characters without spaces")
    return value


def check_device_username(value: str, field_name: str = "username") -> str:
    """A SIP user name (1-128 printable characters, no spaces, '@' or ':')."""
    try:
        return check_sip_username(value)
    except InvalidInput as err:
        raise InvalidInput(field_name, err.rule) from None


def check_device_display_name(value: str, field_name: str = "display_name") -> str:
    """A device's display name: at most 128 characters, no control characters (may be empty)."""
    text = value.strip()
    if len(text) > MAX_DISPLAY_NAME:
        raise InvalidInput(field_name, f"must be at most {MAX_DISPLAY_NAME} characters")
    if any(not c.isprintable() for c in text):
        raise InvalidInput(field_name, "must not contain control characters")
    return text


def check_site_id(value: str | None, field_name: str = "site_id") -> str | None:
    """A site id (lowercase letters, digits, '-', '_'), or None."""
    if value is None:
        return None
    if not _SITE_RE.match(value):
        raise InvalidInput(
            field_name, "must be a site id (1-64 lowercase letters, digits, '-', '_')"
        )
    return value


def check_caller_id(value: str | None, field_name: str = "caller_id_number") -> str | None:
    """A caller id number, normalized like access numbers; None or empty for none."""
    if not value:
        return None
    try:
        return normalize_number(value)
    except InvalidInput as err:
        raise InvalidInput(field_name, err.rule) from None


@dataclass(frozen=True)
class Device:
    """A SIP or WebRTC endpoint of a tenant; the password itself is never kept, only its a1-hash."""

    device_id: str
    tenant_id: str
    kind: DeviceKind
    username: str
    a1_hash: str
    created_at: datetime
    updated_at: datetime
    display_name: str = ""
    user_id: str | None = None
    site_id: str | None = None
    caller_id_number: str | None = None
    version: int = 1

    def changed(self, now: datetime, **changes: Any) -> Device:
        """A new version of the device with ``changes``."""
        return replace(self, **changes, updated_at=now, version=self.version + 1)

    def record(self) -> dict[str, Any]:
        """The stored document (``devices`` collection)."""
        return {
            "_id": self.device_id,
            "tenant_id": self.tenant_id,
            "kind": self.kind.value,
            "username": self.username,
            "display_name": self.display_name,
            "a1_hash": self.a1_hash,
            "user_id": self.user_id,
            "site_id": self.site_id,
            "caller_id_number": self.caller_id_number,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "version": self.version,
        }

    @classmethod
    def from_record(cls, doc: Mapping[str, Any]) -> Device:
        """Read a stored document."""
        return cls(
            device_id=doc["_id"],
            tenant_id=doc["tenant_id"],
            kind=DeviceKind(doc["kind"]),
            username=doc["username"],
            display_name=doc.get("display_name", ""),
            a1_hash=doc["a1_hash"],
            user_id=doc.get("user_id"),
            site_id=doc.get("site_id"),
            caller_id_number=doc.get("caller_id_number"),
            created_at=doc["created_at"],
            updated_at=doc["updated_at"],
            version=int(doc.get("version", 1)),
        )
