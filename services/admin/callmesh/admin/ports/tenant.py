"""Ports of the tenant area: where users, groups, roles, devices, keys and calendars are kept,
how changes are announced, how passwords are hashed.

Every method takes the tenant first; implementations keep each tenant's data apart (in MongoDB
through the tenant wall). ``replace`` methods are optimistic: they write only over the version
the caller read, and answer False when someone else changed (or removed) it meanwhile.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from callmesh.admin.domain.apikeys import ApiKey
from callmesh.admin.domain.calendars import Calendar
from callmesh.admin.domain.common import Page
from callmesh.admin.domain.devices import Device, DeviceKind
from callmesh.admin.domain.groups import Group
from callmesh.admin.domain.roles import RoleOverride
from callmesh.admin.domain.users import User
from callmesh.core.permissions import Role


@dataclass(frozen=True)
class ListQuery:
    """One page of a listing in creation order: ``after`` is the last id of the previous page."""

    limit: int = 50
    after: str | None = None


@dataclass(frozen=True)
class UserQuery(ListQuery):
    """Filters of the user listing (all optional)."""

    role: str | None = None
    group: str | None = None
    disabled: bool | None = None
    # Case-insensitive substring of the username or the display name.
    search: str | None = None


@dataclass(frozen=True)
class DeviceQuery(ListQuery):
    """Filters of the device listing (all optional)."""

    kind: DeviceKind | None = None
    user_id: str | None = None


class Users(Protocol):
    """A tenant's users."""

    async def insert(self, user: User) -> None:
        """Store a new user; Conflict if the username is taken in the tenant."""
        ...

    async def get(self, tenant_id: str, user_id: str) -> User | None:
        """The user, or None."""
        ...

    async def existing(self, tenant_id: str, user_ids: Collection[str]) -> set[str]:
        """Which of these ids are users of the tenant."""
        ...

    async def find(self, tenant_id: str, query: UserQuery) -> Page[User]:
        """A page of users."""
        ...

    async def replace(self, user: User, expected_version: int) -> bool:
        """Write ``user`` over version ``expected_version``; False if that is not the stored one."""
        ...

    async def delete(self, tenant_id: str, user_id: str, expected_version: int) -> bool:
        """Remove the user if still at ``expected_version``."""
        ...

    async def count_active_admins(self, tenant_id: str, excluding: str) -> int:
        """Enabled tenant admins other than ``excluding``."""
        ...

    async def remove_group(self, tenant_id: str, group_id: str, now: datetime) -> int:
        """Take the group out of every member (one update of many); returns how many changed."""
        ...


class Groups(Protocol):
    """A tenant's groups."""

    async def insert(self, group: Group) -> None:
        """Store a new group; Conflict if the name is taken in the tenant."""
        ...

    async def get(self, tenant_id: str, group_id: str) -> Group | None:
        """The group, or None."""
        ...

    async def existing(self, tenant_id: str, group_ids: Collection[str]) -> set[str]:
        """Which of these ids are groups of the tenant."""
        ...

    async def find(self, tenant_id: str, query: ListQuery) -> Page[Group]:
        """A page of groups."""
        ...

    async def replace(self, group: Group, expected_version: int) -> bool:
        """Write over ``expected_version``; Conflict if the new name is taken."""
        ...

    async def delete(self, tenant_id: str, group_id: str) -> bool:
        """Remove the group; False if it was not there."""
        ...

    async def remove_supervisor(self, tenant_id: str, user_id: str, now: datetime) -> int:
        """Take a user out of every group's supervisors."""
        ...


class Roles(Protocol):
    """A tenant's overrides of role permission sets."""

    async def overrides(self, tenant_id: str) -> dict[Role, RoleOverride]:
        """Every override of the tenant."""
        ...

    async def put(self, override: RoleOverride) -> None:
        """Store (or replace) the override of one role."""
        ...

    async def delete(self, tenant_id: str, role: Role) -> bool:
        """Remove the override of one role; False if there was none."""
        ...


class Devices(Protocol):
    """A tenant's SIP and WebRTC endpoints."""

    async def insert(self, device: Device) -> None:
        """Store a new device; Conflict if the username is taken in the tenant."""
        ...

    async def get(self, tenant_id: str, device_id: str) -> Device | None:
        """The device, or None."""
        ...

    async def by_username(self, tenant_id: str, username: str) -> Device | None:
        """The device registering as ``username`` in the tenant's domain, or None."""
        ...

    async def find(self, tenant_id: str, query: DeviceQuery) -> Page[Device]:
        """A page of devices."""
        ...

    async def replace(self, device: Device, expected_version: int) -> bool:
        """Write over ``expected_version``."""
        ...

    async def delete(self, tenant_id: str, device_id: str) -> bool:
        """Remove the device; False if it was not there."""
        ...

    async def unbind_user(self, tenant_id: str, user_id: str, now: datetime) -> list[str]:
        """Unbind every device of a user; returns their usernames."""
        ...


class ApiKeys(Protocol):
    """A tenant's API keys."""

    async def insert(self, key: ApiKey) -> None:
        """Store a new key."""
        ...

    async def get(self, tenant_id: str, key_id: str) -> ApiKey | None:
        """The key, or None."""
        ...

    async def find(self, tenant_id: str, query: ListQuery) -> Page[ApiKey]:
        """A page of keys."""
        ...

    async def revoke(self, tenant_id: str, key_id: str, now: datetime) -> ApiKey | None:
        """Set ``revoked_at`` unless already set; the key as it is then, or None if absent."""
        ...

    async def delete(self, tenant_id: str, key_id: str) -> bool:
        """Remove the key; False if it was not there."""
        ...


class Calendars(Protocol):
    """A tenant's business calendars."""

    async def insert(self, calendar: Calendar) -> None:
        """Store a new calendar; Conflict if the name is taken in the tenant."""
        ...

    async def get(self, tenant_id: str, calendar_id: str) -> Calendar | None:
        """The calendar, or None."""
        ...

    async def find(self, tenant_id: str, query: ListQuery) -> Page[Calendar]:
        """A page of calendars."""
        ...

    async def replace(self, calendar: Calendar, expected_version: int) -> bool:
        """Write over ``expected_version``; Conflict if the new name is taken."""
        ...

    async def delete(self, tenant_id: str, calendar_id: str) -> bool:
        """Remove the calendar; False if it was not there."""
        ...


class TenantNotifier(Protocol):
    """Announces changes other services cache (one method per event)."""

    async def directory_changed(self, tenant_id: str, usernames: Sequence[str]) -> None:
        """SIP/WebRTC users of the tenant changed (directory caches drop them)."""
        ...

    async def calendars_changed(self, tenant_id: str, calendar_ids: Sequence[str]) -> None:
        """Calendars of the tenant changed (services caching them reload these)."""
        ...


class PasswordHasher(Protocol):
    """Password hashing (argon2id in production)."""

    async def hash(self, password: str) -> str:
        """A hash of the password."""
        ...

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether the password matches the hash."""
        ...


class SessionRevoker(Protocol):
    """Ends every session of a subject (the identity area): refresh tokens and live tokens."""

    async def revoke_sessions(self, subject: str, tenant_id: str | None) -> int:
        """Revoke the subject's sessions and access tokens; returns how many families."""
        ...
