"""Tenants' rules: what a tenant is, how it may change, and its lifecycle.

``provisioning`` → ``active`` ⇄ ``suspended``; any of them → ``deleted`` (soft: kept for a
retention period, restorable until then, purged after). The slug is the tenant id and never
changes; so is the data placement (data is not migrated). Encryption at rest may be switched on,
never off: data written while it was on may be encrypted, and nothing decrypts it back.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callmesh.admin.domain.quotas import Limits, limits_from_record, limits_record, unlimited
from callmesh.core.errors import Conflict, DomainError, InvalidInput, NotFound
from callmesh.proto.subjects import check_tenant_id

# The console and the prompts exist in these; another language needs both before it is offered.
LANGUAGES = ("en", "zh-CN", "zh-TW")
NAME_MAX = 100
REASON_MAX = 500
DEFAULT_CLUSTER = "default"
CLUSTER_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Valid on MongoDB and on FerretDB's SQLite backend alike (as callmesh.core.tenancy checks).
_DATABASE_RE = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
_TZ_RE = re.compile(r"^[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+)*$")


class Lifecycle(StrEnum):
    """Where a tenant is in its life (admin's view; services see active/suspended/deleted)."""

    PROVISIONING = "provisioning"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETED = "deleted"


VISIBLE = frozenset({Lifecycle.ACTIVE, Lifecycle.SUSPENDED})


class VersionMismatch(DomainError):
    """``If-Match`` named a version the tenant no longer has (someone changed it meanwhile)."""

    code = "version_mismatch"
    status = 412


@dataclass(frozen=True)
class TenantPlacement:
    """Where a tenant's data lives: a named MongoDB deployment and a database on it."""

    cluster: str
    database: str


@dataclass(frozen=True)
class Tenant:
    """One tenant as admin keeps it (the ``tenants`` document)."""

    tenant_id: str
    name: str
    language: str
    time_zone: str
    encryption_at_rest: bool
    status: Lifecycle
    placement: TenantPlacement
    quotas: Limits
    created_at: datetime
    updated_at: datetime
    version: int = 1
    status_reason: str = ""
    created_by: str = ""
    deleted_at: datetime | None = None
    purge_after: datetime | None = None
    # What a restore brings the tenant back to (a suspended tenant stays suspended).
    status_before_delete: Lifecycle | None = None
    # Set when a purge has begun: from then on a restore is refused and the purge is finished.
    purging: bool = False
    encryption_since: datetime | None = None

    @property
    def slug(self) -> str:
        """The slug is the tenant id."""
        return self.tenant_id

    @property
    def visible(self) -> bool:
        """Whether services see the tenant (active or suspended)."""
        return self.status in VISIBLE

    def record(self) -> dict[str, Any]:
        """The tenant as a plain document (what is stored and what the audit log shows)."""
        return {
            "tenant_id": self.tenant_id,
            "name": self.name,
            "slug": self.tenant_id,
            "language": self.language,
            "time_zone": self.time_zone,
            "encryption_at_rest": self.encryption_at_rest,
            "encryption_since": self.encryption_since,
            "status": self.status.value,
            "status_reason": self.status_reason,
            "quotas": limits_record(self.quotas),
            "placement": {"cluster": self.placement.cluster, "database": self.placement.database},
            "created_at": self.created_at,
            "created_by": self.created_by,
            "updated_at": self.updated_at,
            "deleted_at": self.deleted_at,
            "purge_after": self.purge_after,
            "status_before_delete": (
                self.status_before_delete.value if self.status_before_delete else None
            ),
            "purging": self.purging,
            "version": self.version,
        }


@dataclass(frozen=True)
class TenantChanges:
    """A partial update of a tenant (None: leave as it is)."""

    name: str | None = None
    language: str | None = None
    time_zone: str | None = None
    encryption_at_rest: bool | None = None
    # Accepted only to refuse a change with its reason (both are fixed at creation).
    slug: str | None = None
    placement: TenantPlacement | None = None


@dataclass(frozen=True)
class NewTenant:
    """What an operator gives to create a tenant."""

    slug: str
    name: str
    language: str
    time_zone: str
    encryption_at_rest: bool = False
    quotas: Limits = field(default_factory=unlimited)
    placement: TenantPlacement | None = None


# --- field rules ---------------------------------------------------------------------------------


def check_slug(value: str, field: str = "slug") -> str:
    """A slug: the tenant id (1-48 lowercase letters, digits, inner '-'; not a reserved word)."""
    try:
        return check_tenant_id(value, field)
    except ValueError as err:
        reserved = "reserved" in str(err)
        rule = "is a reserved word" if reserved else "must be 1-48 lowercase letters, digits or '-'"
        raise InvalidInput(field, rule) from None


def check_name(value: str, field: str = "name") -> str:
    """A display name: 1-100 characters, no control characters, trimmed."""
    text = value.strip()
    if not 1 <= len(text) <= NAME_MAX:
        raise InvalidInput(field, f"must be 1-{NAME_MAX} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in text):
        raise InvalidInput(field, "must not contain control characters")
    return text


def check_language(value: str, field: str = "language") -> str:
    """One of the languages the platform speaks."""
    if value not in LANGUAGES:
        raise InvalidInput(field, f"must be one of {', '.join(LANGUAGES)}")
    return value


def check_time_zone(value: str, field: str = "time_zone") -> str:
    """An IANA time zone name (``Europe/Paris``, ``Asia/Taipei``, ``UTC``)."""
    if not value or len(value) > 64 or not _TZ_RE.match(value) or ".." in value:
        raise InvalidInput(field, "must be an IANA time zone such as Europe/Paris")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput(field, "must be an IANA time zone such as Europe/Paris") from None
    return value


def check_reason(value: str, field: str = "reason") -> str:
    """Why a tenant is suspended: 1-500 characters."""
    text = value.strip()
    if not 1 <= len(text) <= REASON_MAX:
        raise InvalidInput(field, f"must be 1-{REASON_MAX} characters")
    return text


def check_placement(
    placement: TenantPlacement | None, default_database: str, field: str = "placement"
) -> TenantPlacement:
    """A placement (the default cluster and database when none is given)."""
    if placement is None:
        return TenantPlacement(DEFAULT_CLUSTER, default_database)
    if not CLUSTER_RE.match(placement.cluster):
        raise InvalidInput(f"{field}.cluster", "must be 1-64 letters, digits, '_' or '-'")
    if not _DATABASE_RE.match(placement.database):
        raise InvalidInput(f"{field}.database", "must be 1-63 letters, digits, '_' or '-'")
    return placement


def check_version(tenant: Tenant, expected: int | None) -> None:
    """Honor ``If-Match``: the change applies only to the version the caller saw."""
    if expected is not None and expected != tenant.version:
        raise VersionMismatch(
            f"tenant {tenant.tenant_id} is at version {tenant.version}, not {expected}: "
            "read it again and retry",
            version=tenant.version,
        )


# --- lifecycle -----------------------------------------------------------------------------------


def new_tenant(
    spec: NewTenant, placement: TenantPlacement, now: datetime, created_by: str = ""
) -> Tenant:
    """A tenant being provisioned (every field checked: nothing half-valid is ever stored)."""
    encrypted = spec.encryption_at_rest
    return Tenant(
        tenant_id=check_slug(spec.slug),
        name=check_name(spec.name),
        language=check_language(spec.language),
        time_zone=check_time_zone(spec.time_zone),
        encryption_at_rest=encrypted,
        encryption_since=now if encrypted else None,
        status=Lifecycle.PROVISIONING,
        placement=placement,
        quotas=dict(spec.quotas),
        created_at=now,
        updated_at=now,
        created_by=created_by,
    )


def _not_deleted(tenant: Tenant, action: str) -> None:
    if tenant.status is Lifecycle.DELETED:
        raise Conflict(
            f"tenant {tenant.tenant_id} is deleted: restore it before you {action}",
            reason="deleted",
        )


def _bumped(tenant: Tenant, now: datetime, **changes: Any) -> Tenant:
    return replace(tenant, updated_at=now, version=tenant.version + 1, **changes)


def update(
    tenant: Tenant, changes: TenantChanges, now: datetime, expected_version: int | None = None
) -> tuple[Tenant, list[str]]:
    """The tenant with ``changes`` applied and the names of the fields that changed."""
    check_version(tenant, expected_version)
    _not_deleted(tenant, "change it")
    if changes.slug is not None and changes.slug != tenant.tenant_id:
        raise Conflict("the slug is the tenant id and never changes", field="slug")
    if changes.placement is not None and changes.placement != tenant.placement:
        raise placement_is_fixed(tenant)
    new: dict[str, Any] = {}
    if changes.name is not None:
        new["name"] = check_name(changes.name)
    if changes.language is not None:
        new["language"] = check_language(changes.language)
    if changes.time_zone is not None:
        new["time_zone"] = check_time_zone(changes.time_zone)
    if changes.encryption_at_rest is not None:
        if tenant.encryption_at_rest and not changes.encryption_at_rest:
            raise Conflict(
                "encryption at rest cannot be switched off: data written while it was on "
                "may be encrypted, and switching off would leave it unreadable",
                field="encryption_at_rest",
            )
        if changes.encryption_at_rest and not tenant.encryption_at_rest:
            new["encryption_at_rest"] = True
            new["encryption_since"] = now
    changed = sorted(k for k, v in new.items() if getattr(tenant, k) != v)
    if not changed:
        return tenant, []
    return _bumped(tenant, now, **{k: new[k] for k in new}), changed


def with_quotas(
    tenant: Tenant, quotas: Limits, now: datetime, expected_version: int | None = None
) -> tuple[Tenant, bool]:
    """The tenant with new quota limits, and whether they changed."""
    check_version(tenant, expected_version)
    _not_deleted(tenant, "change its quotas")
    if dict(tenant.quotas) == dict(quotas):
        return tenant, False
    return _bumped(tenant, now, quotas=dict(quotas)), True


def placement_is_fixed(tenant: Tenant) -> Conflict:
    """The refusal of a placement change."""
    return Conflict(
        f"tenant {tenant.tenant_id}'s placement is fixed at creation: its data is not migrated "
        "between databases, so it stays on "
        f"{tenant.placement.cluster}/{tenant.placement.database}",
        field="placement",
    )


def activate(tenant: Tenant, now: datetime) -> Tenant:
    """A provisioned tenant becomes active."""
    if tenant.status is not Lifecycle.PROVISIONING:
        return tenant
    return _bumped(tenant, now, status=Lifecycle.ACTIVE)


def suspend(tenant: Tenant, reason: str, now: datetime) -> tuple[Tenant, bool]:
    """Suspend an active tenant (again on a suspended one: only the reason may change)."""
    text = check_reason(reason)
    _not_deleted(tenant, "suspend it")
    if tenant.status is Lifecycle.PROVISIONING:
        raise Conflict(f"tenant {tenant.tenant_id} is still being provisioned", reason="state")
    if tenant.status is Lifecycle.SUSPENDED:
        if tenant.status_reason == text:
            return tenant, False
        return _bumped(tenant, now, status_reason=text), False
    return _bumped(tenant, now, status=Lifecycle.SUSPENDED, status_reason=text), True


def resume(tenant: Tenant, now: datetime) -> tuple[Tenant, bool]:
    """Resume a suspended tenant (a no-op on an active one)."""
    _not_deleted(tenant, "resume it")
    if tenant.status is Lifecycle.PROVISIONING:
        raise Conflict(f"tenant {tenant.tenant_id} is still being provisioned", reason="state")
    if tenant.status is Lifecycle.ACTIVE:
        return tenant, False
    return _bumped(tenant, now, status=Lifecycle.ACTIVE, status_reason=""), True


def delete(tenant: Tenant, now: datetime, retention: timedelta) -> tuple[Tenant, bool]:
    """Soft-delete: gone for everyone now, purged after ``retention`` unless restored."""
    if tenant.status is Lifecycle.DELETED:
        return tenant, False
    before = tenant.status if tenant.status in VISIBLE else Lifecycle.ACTIVE
    return (
        _bumped(
            tenant,
            now,
            status=Lifecycle.DELETED,
            status_before_delete=before,
            deleted_at=now,
            purge_after=now + retention,
        ),
        True,
    )


def restore(tenant: Tenant, now: datetime) -> Tenant:
    """Bring a soft-deleted tenant back, as it was, within its retention period."""
    if tenant.status is not Lifecycle.DELETED:
        raise Conflict(f"tenant {tenant.tenant_id} is not deleted", reason="state")
    if tenant.purging or (tenant.purge_after is not None and now >= tenant.purge_after):
        raise Conflict(
            f"tenant {tenant.tenant_id} is past its retention period and being purged",
            reason="purging",
        )
    return _bumped(
        tenant,
        now,
        status=tenant.status_before_delete or Lifecycle.ACTIVE,
        status_before_delete=None,
        deleted_at=None,
        purge_after=None,
    )


def due_for_purge(tenant: Tenant, now: datetime) -> bool:
    """Whether a deleted tenant's retention period is over."""
    return (
        tenant.status is Lifecycle.DELETED
        and tenant.purge_after is not None
        and now >= tenant.purge_after
    )


def slug_taken(existing: Tenant) -> Conflict:
    """The refusal of a slug already used (a deleted tenant keeps its slug until purged)."""
    if existing.status is Lifecycle.DELETED and existing.purge_after is not None:
        return Conflict(
            f"slug {existing.tenant_id} is taken by a deleted tenant kept until "
            f"{existing.purge_after.isoformat()}: restore it, or wait for its purge",
            field="slug",
        )
    if existing.status is Lifecycle.PROVISIONING:
        return Conflict(
            f"slug {existing.tenant_id} is being provisioned with other settings: it completes "
            "on its own within minutes; change it then",
            field="slug",
        )
    return Conflict(f"slug {existing.tenant_id} is taken", field="slug")


def visible_or_not_found(tenant: Tenant | None, tenant_id: str) -> Tenant:
    """The tenant if services see it; NotFound otherwise (as for a tenant that never existed)."""
    if tenant is None or not tenant.visible:
        raise NotFound(f"no tenant {tenant_id}")
    return tenant


def existing(tenant: Tenant | None, tenant_id: str) -> Tenant:
    """The tenant, or NotFound."""
    if tenant is None:
        raise NotFound(f"no tenant {tenant_id}")
    return tenant


def from_record(doc: Mapping[str, Any]) -> Tenant:
    """A tenant from its stored document (``record``'s inverse)."""
    placement = doc.get("placement") or {}
    before = doc.get("status_before_delete")
    return Tenant(
        tenant_id=str(doc["tenant_id"]),
        name=str(doc.get("name", "")),
        language=str(doc.get("language", "")),
        time_zone=str(doc.get("time_zone", "")),
        encryption_at_rest=bool(doc.get("encryption_at_rest", False)),
        encryption_since=doc.get("encryption_since"),
        status=Lifecycle(doc["status"]),
        status_reason=str(doc.get("status_reason", "")),
        placement=TenantPlacement(
            str(placement.get("cluster", DEFAULT_CLUSTER)), str(placement.get("database", ""))
        ),
        quotas=limits_from_record(doc.get("quotas") or {}),
        created_at=doc["created_at"],
        created_by=str(doc.get("created_by", "")),
        updated_at=doc["updated_at"],
        deleted_at=doc.get("deleted_at"),
        purge_after=doc.get("purge_after"),
        status_before_delete=Lifecycle(before) if before else None,
        purging=bool(doc.get("purging", False)),
        version=int(doc.get("version", 1)),
    )
