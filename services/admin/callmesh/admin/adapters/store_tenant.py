"""MongoDB adapters of the tenant area: users, groups, roles, devices, API keys, calendars.

Every collection is reached through the tenant wall (``Store.tenant``): each document carries
``tenant_id``, each index starts with it, so uniqueness (usernames, group and calendar names) is
per tenant and another tenant's ids simply are not found. The documents are the domain's
``record()``s; ``users``, ``roles`` and ``api_keys`` are also read by the identity area.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any, TypeVar

from pymongo.errors import DuplicateKeyError

from callmesh.admin.adapters import passwords
from callmesh.admin.domain.apikeys import ApiKey
from callmesh.admin.domain.calendars import Calendar
from callmesh.admin.domain.common import Page
from callmesh.admin.domain.devices import Device
from callmesh.admin.domain.groups import Group
from callmesh.admin.domain.roles import TENANT_ROLE_NAMES, RoleOverride
from callmesh.admin.domain.users import User
from callmesh.admin.ports.tenant import DeviceQuery, ListQuery, UserQuery
from callmesh.core.errors import Conflict
from callmesh.core.permissions import Role
from callmesh.core.store import CollectionSpec, IndexSpec, Store, TenantCollection, TenantStore

T = TypeVar("T")

USERS = "users"
GROUPS = "groups"
ROLES = "roles"
DEVICES = "devices"
API_KEYS = "api_keys"
CALENDARS = "calendars"

_BY_ID = IndexSpec((("tenant_id", 1), ("_id", 1)), name="tenant_order")

COLLECTIONS = (
    CollectionSpec(
        USERS,
        (
            _BY_ID,
            IndexSpec((("tenant_id", 1), ("username", 1)), unique=True, name="tenant_username"),
        ),
    ),
    CollectionSpec(
        GROUPS,
        (_BY_ID, IndexSpec((("tenant_id", 1), ("name", 1)), unique=True, name="tenant_name")),
    ),
    CollectionSpec(
        ROLES, (IndexSpec((("tenant_id", 1), ("role", 1)), unique=True, name="tenant_role"),)
    ),
    CollectionSpec(
        DEVICES,
        (
            _BY_ID,
            IndexSpec((("tenant_id", 1), ("username", 1)), unique=True, name="tenant_username"),
            IndexSpec((("tenant_id", 1), ("user_id", 1)), name="tenant_user"),
        ),
    ),
    CollectionSpec(API_KEYS, (_BY_ID,)),
    CollectionSpec(
        CALENDARS,
        (_BY_ID, IndexSpec((("tenant_id", 1), ("name", 1)), unique=True, name="tenant_name")),
    ),
)


class _Collection:
    """One collection of the area, opened per tenant (placement resolved by the store)."""

    name = ""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def _col(self, tenant_id: str) -> TenantCollection:
        tenant: TenantStore = await self._store.tenant(tenant_id)
        return tenant.collection(self.name)

    async def _existing(self, tenant_id: str, ids: Collection[str]) -> set[str]:
        if not ids:
            return set()
        col = await self._col(tenant_id)
        docs = await col.find_list({"_id": {"$in": list(ids)}}, projection={"_id": 1})
        return {doc["_id"] for doc in docs}

    async def _replace(self, tenant_id: str, record: Mapping[str, Any], expected: int) -> bool:
        col = await self._col(tenant_id)
        result = await col.replace_one({"_id": record["_id"], "version": expected}, record)
        return result.matched_count == 1

    async def _delete(self, tenant_id: str, ident: str) -> bool:
        col = await self._col(tenant_id)
        return (await col.delete_one({"_id": ident})).deleted_count == 1


async def _page(
    col: TenantCollection,
    flt: dict[str, Any],
    query: ListQuery,
    read: Callable[[Mapping[str, Any]], T],
) -> Page[T]:
    """A page in id order (ids are time-ordered), fetching one more to see the end."""
    if query.after:
        flt["_id"] = {"$gt": query.after}
    docs = await col.find_list(flt, sort=[("_id", 1)], limit=query.limit + 1)
    items = [read(doc) for doc in docs[: query.limit]]
    more = len(docs) > query.limit
    return Page(items, str(docs[query.limit - 1]["_id"]) if more else None)


_REGEX_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")


def _literal(text: str) -> str:
    """``text`` as a regular expression matching itself.

    Not ``re.escape``: it escapes spaces too, which FerretDB's (Go) regexp refuses.
    """
    return _REGEX_SPECIAL.sub(r"\\\1", text)


def _taken(what: str, field: str) -> Conflict:
    return Conflict(f"{field} already taken: another {what} of the tenant has it", field=field)


# ---------------------------------------------------------------------------------------------


class MongoUsers(_Collection):
    """``Users`` in MongoDB."""

    name = USERS

    async def insert(self, user: User) -> None:
        """Store a new user; Conflict if the username is taken."""
        col = await self._col(user.tenant_id)
        try:
            await col.insert_one(user.record())
        except DuplicateKeyError as err:
            raise _taken("user", "username") from err

    async def get(self, tenant_id: str, user_id: str) -> User | None:
        """The user, or None."""
        doc = await (await self._col(tenant_id)).find_one({"_id": user_id})
        return User.from_record(doc) if doc else None

    async def existing(self, tenant_id: str, user_ids: Collection[str]) -> set[str]:
        """Which of these are users of the tenant."""
        return await self._existing(tenant_id, user_ids)

    async def find(self, tenant_id: str, query: UserQuery) -> Page[User]:
        """A page of users, filtered."""
        flt: dict[str, Any] = {}
        if query.role is not None:
            flt["roles"] = query.role
        if query.group is not None:
            flt["groups"] = query.group
        if query.disabled is not None:
            flt["disabled"] = query.disabled
        if query.search:
            pattern = {"$regex": _literal(query.search), "$options": "i"}
            flt["$or"] = [{"username": pattern}, {"display_name": pattern}]
        return await _page(await self._col(tenant_id), flt, query, User.from_record)

    async def replace(self, user: User, expected_version: int) -> bool:
        """Write over ``expected_version``."""
        return await self._replace(user.tenant_id, user.record(), expected_version)

    async def delete(self, tenant_id: str, user_id: str, expected_version: int) -> bool:
        """Remove the user if still at ``expected_version``."""
        col = await self._col(tenant_id)
        result = await col.delete_one({"_id": user_id, "version": expected_version})
        return result.deleted_count == 1

    async def count_active_admins(self, tenant_id: str, excluding: str) -> int:
        """Enabled tenant admins other than ``excluding``."""
        col = await self._col(tenant_id)
        return await col.count_documents(
            {"roles": Role.TENANT_ADMIN.value, "disabled": False, "_id": {"$ne": excluding}}
        )

    async def remove_group(self, tenant_id: str, group_id: str, now: datetime) -> int:
        """Take the group out of every member, in one update of many."""
        col = await self._col(tenant_id)
        result = await col.update_many(
            {"groups": group_id},
            {"$pull": {"groups": group_id}, "$set": {"updated_at": now}, "$inc": {"version": 1}},
        )
        return result.modified_count


class MongoGroups(_Collection):
    """``Groups`` in MongoDB."""

    name = GROUPS

    async def insert(self, group: Group) -> None:
        """Store a new group; Conflict if the name is taken."""
        col = await self._col(group.tenant_id)
        try:
            await col.insert_one(group.record())
        except DuplicateKeyError as err:
            raise _taken("group", "name") from err

    async def get(self, tenant_id: str, group_id: str) -> Group | None:
        """The group, or None."""
        doc = await (await self._col(tenant_id)).find_one({"_id": group_id})
        return Group.from_record(doc) if doc else None

    async def existing(self, tenant_id: str, group_ids: Collection[str]) -> set[str]:
        """Which of these are groups of the tenant."""
        return await self._existing(tenant_id, group_ids)

    async def find(self, tenant_id: str, query: ListQuery) -> Page[Group]:
        """A page of groups."""
        return await _page(await self._col(tenant_id), {}, query, Group.from_record)

    async def replace(self, group: Group, expected_version: int) -> bool:
        """Write over ``expected_version``; Conflict if the new name is taken."""
        try:
            return await self._replace(group.tenant_id, group.record(), expected_version)
        except DuplicateKeyError as err:
            raise _taken("group", "name") from err

    async def delete(self, tenant_id: str, group_id: str) -> bool:
        """Remove the group."""
        return await self._delete(tenant_id, group_id)

    async def remove_supervisor(self, tenant_id: str, user_id: str, now: datetime) -> int:
        """Take a user out of every group's supervisors."""
        col = await self._col(tenant_id)
        result = await col.update_many(
            {"supervisor_ids": user_id},
            {
                "$pull": {"supervisor_ids": user_id},
                "$set": {"updated_at": now},
                "$inc": {"version": 1},
            },
        )
        return result.modified_count


class MongoRoles(_Collection):
    """``Roles`` (overrides) in MongoDB.

    A document's ``_id`` is ``<tenant>:<role>``: every tenant may override the same role names,
    and ``_id`` is unique in the whole collection, which tenants share. The id is derived from
    the tenant, so upserting on it can never meet another tenant's document.
    """

    name = ROLES

    async def overrides(self, tenant_id: str) -> dict[Role, RoleOverride]:
        """Every override of the tenant (documents of roles this code does not know are skipped)."""
        docs = await (await self._col(tenant_id)).find_list({})
        return {
            Role(doc["role"]): RoleOverride.from_record(doc)
            for doc in docs
            if doc.get("role") in TENANT_ROLE_NAMES
        }

    async def put(self, override: RoleOverride) -> None:
        """Store (or replace) one role's override."""
        col = await self._col(override.tenant_id)
        await col.replace_one({"_id": override.record_id}, override.record(), upsert=True)

    async def delete(self, tenant_id: str, role: Role) -> bool:
        """Remove one role's override."""
        return await self._delete(tenant_id, f"{tenant_id}:{role.value}")


async def role_overrides(store: Store, tenant_id: str) -> dict[str, list[str]]:
    """The tenant's permission sets that replace roles' defaults, as ``permissions.resolve`` takes
    them (for the identity area when it issues a token)."""
    return {
        role.value: sorted(p.value for p in override.permissions)
        for role, override in (await MongoRoles(store).overrides(tenant_id)).items()
    }


class MongoDevices(_Collection):
    """``Devices`` in MongoDB."""

    name = DEVICES

    async def insert(self, device: Device) -> None:
        """Store a new device; Conflict if the username is taken."""
        col = await self._col(device.tenant_id)
        try:
            await col.insert_one(device.record())
        except DuplicateKeyError as err:
            raise _taken("device", "username") from err

    async def get(self, tenant_id: str, device_id: str) -> Device | None:
        """The device, or None."""
        doc = await (await self._col(tenant_id)).find_one({"_id": device_id})
        return Device.from_record(doc) if doc else None

    async def by_username(self, tenant_id: str, username: str) -> Device | None:
        """The device with this SIP user name, or None."""
        doc = await (await self._col(tenant_id)).find_one({"username": username})
        return Device.from_record(doc) if doc else None

    async def find(self, tenant_id: str, query: DeviceQuery) -> Page[Device]:
        """A page of devices, filtered."""
        flt: dict[str, Any] = {}
        if query.kind is not None:
            flt["kind"] = query.kind.value
        if query.user_id is not None:
            flt["user_id"] = query.user_id
        return await _page(await self._col(tenant_id), flt, query, Device.from_record)

    async def replace(self, device: Device, expected_version: int) -> bool:
        """Write over ``expected_version``."""
        return await self._replace(device.tenant_id, device.record(), expected_version)

    async def delete(self, tenant_id: str, device_id: str) -> bool:
        """Remove the device."""
        return await self._delete(tenant_id, device_id)

    async def unbind_user(self, tenant_id: str, user_id: str, now: datetime) -> list[str]:
        """Unbind every device of the user; their usernames."""
        col = await self._col(tenant_id)
        docs = await col.find_list({"user_id": user_id}, projection={"username": 1})
        if docs:
            await col.update_many(
                {"user_id": user_id},
                {"$set": {"user_id": None, "updated_at": now}, "$inc": {"version": 1}},
            )
        return [doc["username"] for doc in docs]


class MongoApiKeys(_Collection):
    """``ApiKeys`` in MongoDB."""

    name = API_KEYS

    async def insert(self, key: ApiKey) -> None:
        """Store a new key."""
        await (await self._col(key.tenant_id)).insert_one(key.record())

    async def get(self, tenant_id: str, key_id: str) -> ApiKey | None:
        """The key, or None."""
        doc = await (await self._col(tenant_id)).find_one({"_id": key_id})
        return ApiKey.from_record(doc) if doc else None

    async def find(self, tenant_id: str, query: ListQuery) -> Page[ApiKey]:
        """A page of keys."""
        return await _page(await self._col(tenant_id), {}, query, ApiKey.from_record)

    async def revoke(self, tenant_id: str, key_id: str, now: datetime) -> ApiKey | None:
        """Set ``revoked_at`` unless set; the key as it is then."""
        col = await self._col(tenant_id)
        doc = await col.find_one_and_update(
            {"_id": key_id, "revoked_at": None}, {"$set": {"revoked_at": now}}
        )
        if doc is None:
            return await self.get(tenant_id, key_id)
        return ApiKey.from_record(doc)

    async def delete(self, tenant_id: str, key_id: str) -> bool:
        """Remove the key."""
        return await self._delete(tenant_id, key_id)


class MongoCalendars(_Collection):
    """``Calendars`` in MongoDB."""

    name = CALENDARS

    async def insert(self, calendar: Calendar) -> None:
        """Store a new calendar; Conflict if the name is taken."""
        col = await self._col(calendar.tenant_id)
        try:
            await col.insert_one(calendar.record())
        except DuplicateKeyError as err:
            raise _taken("calendar", "name") from err

    async def get(self, tenant_id: str, calendar_id: str) -> Calendar | None:
        """The calendar, or None."""
        doc = await (await self._col(tenant_id)).find_one({"_id": calendar_id})
        return Calendar.from_record(doc) if doc else None

    async def find(self, tenant_id: str, query: ListQuery) -> Page[Calendar]:
        """A page of calendars."""
        return await _page(await self._col(tenant_id), {}, query, Calendar.from_record)

    async def replace(self, calendar: Calendar, expected_version: int) -> bool:
        """Write over ``expected_version``; Conflict if the new name is taken."""
        try:
            return await self._replace(calendar.tenant_id, calendar.record(), expected_version)
        except DuplicateKeyError as err:
            raise _taken("calendar", "name") from err

    async def delete(self, tenant_id: str, calendar_id: str) -> bool:
        """Remove the calendar."""
        return await self._delete(tenant_id, calendar_id)


class Argon2Hasher:
    """``PasswordHasher`` on argon2id (``adapters.passwords``, hashing off the event loop)."""

    async def hash(self, password: str) -> str:
        """An argon2id hash."""
        return await passwords.hash_password(password)

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether the password matches."""
        return await passwords.verify_password(password_hash, password)
