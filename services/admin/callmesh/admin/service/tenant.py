"""The tenant use cases: users, roles, groups, devices, API keys and business calendars.

Each use case loads, decides with the domain's rules, writes, announces and audits. Everything is
validated before the first write; when one change needs several writes they are ordered so that
a failure half-way leaves a state that repeating the request repairs (each method says how).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from callmesh.admin.domain import apikeys as keys_rules
from callmesh.admin.domain import calendars as cal_rules
from callmesh.admin.domain import devices as dev_rules
from callmesh.admin.domain import groups as group_rules
from callmesh.admin.domain import identity as identity_rules
from callmesh.admin.domain import users as user_rules
from callmesh.admin.domain.apikeys import ApiKey
from callmesh.admin.domain.calendars import Calendar, OpenState
from callmesh.admin.domain.common import Actor, ActorKind, Page, new_id
from callmesh.admin.domain.devices import Device, DeviceKind
from callmesh.admin.domain.groups import Group
from callmesh.admin.domain.identity import (
    LockoutPolicy,
    LoginState,
    PasswordPolicy,
    check_username,
)
from callmesh.admin.domain.roles import (
    TENANT_ROLE_NAMES,
    RoleOverride,
    RoleView,
    check_grant,
    check_may_manage,
    check_override,
    parse_tenant_roles,
    role_views,
    tenant_role,
)
from callmesh.admin.domain.users import User, check_keeps_an_admin, check_version
from callmesh.admin.ports.tenant import (
    ApiKeys,
    Calendars,
    DeviceQuery,
    Devices,
    Groups,
    ListQuery,
    PasswordHasher,
    Roles,
    SessionRevoker,
    TenantNotifier,
    UserQuery,
    Users,
)
from callmesh.admin.service.audit import Auditor
from callmesh.admin.service.context import AdminContext
from callmesh.core import telemetry
from callmesh.core.errors import Conflict, DomainError, InvalidInput, NotFound
from callmesh.core.permissions import DESCRIPTIONS, Permission, Role
from callmesh.core.runtime import Runtime

log = logging.getLogger(__name__)

MAX_PAGE = 500
Clock = Callable[[], datetime]


def _now(clock: Clock) -> datetime:
    # MongoDB keeps milliseconds: trimming here keeps what we return equal to what we stored.
    now = clock()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _checked(query: ListQuery) -> None:
    if not 1 <= query.limit <= MAX_PAGE:
        raise InvalidInput("limit", f"must be between 1 and {MAX_PAGE}")


def _missing(kind: str, ident: str) -> NotFound:
    # Another tenant's ids get exactly this answer: nothing tells them apart from unknown ones.
    return NotFound(f"no {kind} {ident[:64]}")


def _lost_race(kind: str, ident: str) -> Conflict:
    return Conflict(
        f"{kind} {ident} was changed by someone else meanwhile; read it again and retry",
        reason="concurrent_change",
    )


class _Changes:
    """Audit and count each change (every use case records through one of these)."""

    def __init__(self, auditor: Auditor) -> None:
        self._auditor = auditor
        self._count = telemetry.counter(
            "callmesh_admin_tenant_changes_total",
            "Changes through the tenant API, by tenant, kind of object and action",
            ["tenant", "kind", "action"],
        )

    async def record(
        self,
        actor: Actor,
        action: str,
        target_kind: str,
        target_id: str,
        tenant_id: str,
        *,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
        outcome: str = "ok",
        detail: str = "",
    ) -> None:
        await self._auditor.record(
            actor,
            action,
            target_kind,
            target_id,
            tenant_id=tenant_id,
            before=before,
            after=after,
            outcome=outcome,
            detail=detail,
        )
        if outcome == "ok":
            self._count.labels(tenant_id, target_kind, action.rpartition(".")[2]).inc()


class _Announcer:
    """Publishes directory and calendar changes; a failure is logged, not raised.

    The change is stored by then: failing the request would make the client repeat a change
    that happened. Caches elsewhere keep the old answer until their TTL (30-60 s) instead.
    """

    def __init__(self, notifier: TenantNotifier) -> None:
        self._notifier = notifier
        self._failed = telemetry.counter(
            "callmesh_admin_tenant_announce_failures_total",
            "Change events of the tenant area that could not be published",
            ["event"],
        )

    async def directory(self, tenant_id: str, usernames: Sequence[str]) -> None:
        if not usernames:
            return
        try:
            await self._notifier.directory_changed(tenant_id, list(usernames))
        except DomainError:
            self._failed.labels("directory_changed").inc()
            log.exception("directory change not announced", extra={"tenant_id": tenant_id})

    async def calendars(self, tenant_id: str, calendar_ids: Sequence[str]) -> None:
        try:
            await self._notifier.calendars_changed(tenant_id, list(calendar_ids))
        except DomainError:
            self._failed.labels("calendars_changed").inc()
            log.exception("calendar change not announced", extra={"tenant_id": tenant_id})


# ---------------------------------------------------------------------------------------------
# Users


UNSET: Any = object()


@dataclass(frozen=True)
class UserChanges:
    """What a PATCH of a user changes (UNSET: left as it is)."""

    display_name: Any = UNSET
    email: Any = UNSET
    roles: Any = UNSET
    groups: Any = UNSET


class UserAdmin:
    """Users of a tenant: create, read, list, change, passwords, disable, unlock, delete."""

    def __init__(
        self,
        users: Users,
        groups: Groups,
        devices: Devices,
        hasher: PasswordHasher,
        auditor: Auditor,
        notifier: TenantNotifier,
        clock: Clock,
        password_policy: PasswordPolicy,
        lockout_policy: LockoutPolicy,
        sessions: SessionRevoker | None = None,
    ) -> None:
        self._users = users
        self._sessions = sessions
        self._groups = groups
        self._devices = devices
        self._hasher = hasher
        self._changes = _Changes(auditor)
        self._announce = _Announcer(notifier)
        self._clock = clock
        self._policy = password_policy
        self._lockout = lockout_policy

    async def create(
        self,
        tenant_id: str,
        actor: Actor,
        *,
        username: str,
        display_name: str | None = None,
        email: str | None = None,
        roles: Sequence[str] = (),
        groups: Sequence[str] = (),
        password: str | None = None,
        must_change_password: bool | None = None,
    ) -> User:
        """A new user; without a password it must get one (reset) before it can log in."""
        username = check_username(username)
        name = identity_rules.check_display_name(display_name or username)
        mail = identity_rules.check_email(email)
        held = parse_tenant_roles(roles)
        check_grant(actor, held)
        member_of = user_rules.check_group_refs(groups)
        await self._check_groups(tenant_id, member_of)
        password_hash: str | None = None
        if password is not None:
            self._policy.check(password, username=username)
            password_hash = await self._hasher.hash(password)
        now = _now(self._clock)
        user = User(
            user_id=new_id(user_rules.USER_PREFIX, now),
            tenant_id=tenant_id,
            username=username,
            display_name=name,
            email=mail,
            roles=tuple(r.value for r in held),
            groups=member_of,
            password_hash=password_hash,
            password_changed_at=now if password_hash else None,
            # Someone else chose it (or there is none yet): the user should pick their own.
            must_change_password=True if must_change_password is None else must_change_password,
            created_at=now,
            updated_at=now,
        )
        await self._users.insert(user)
        await self._changes.record(
            actor, "user.create", "user", user.user_id, tenant_id, after=user.record()
        )
        return user

    async def get(self, tenant_id: str, user_id: str) -> User:
        """The user (404 if it is not one of the tenant's)."""
        user = await self._users.get(tenant_id, user_id)
        if user is None:
            raise _missing("user", user_id)
        return user

    async def me(self, tenant_id: str, actor: Actor) -> User:
        """The user the request speaks for (404 for API keys and operators)."""
        if actor.kind is not ActorKind.USER:
            raise NotFound("this credential is not a user of the tenant")
        return await self.get(tenant_id, actor.subject)

    async def find(self, tenant_id: str, query: UserQuery) -> Page[User]:
        """A page of the tenant's users, filtered."""
        _checked(query)
        if query.role is not None and query.role not in TENANT_ROLE_NAMES:
            raise InvalidInput("role", f"must be one of: {', '.join(sorted(TENANT_ROLE_NAMES))}")
        if query.search is not None and len(query.search) > 64:
            raise InvalidInput("search", "must be at most 64 characters")
        return await self._users.find(tenant_id, query)

    async def update(
        self, tenant_id: str, actor: Actor, user_id: str, version: int | None, changes: UserChanges
    ) -> User:
        """Change a user's name, e-mail, roles or groups, from the version the caller read."""
        before = await self.get(tenant_id, user_id)
        check_version(version, before.version, required=True)
        check_may_manage(actor, before.roles, f"user {before.username}")
        fields: dict[str, Any] = {}
        if changes.display_name is not UNSET:
            fields["display_name"] = identity_rules.check_display_name(changes.display_name)
        if changes.email is not UNSET:
            fields["email"] = identity_rules.check_email(changes.email)
        if changes.roles is not UNSET:
            held = parse_tenant_roles(changes.roles)
            check_grant(actor, held)
            fields["roles"] = tuple(r.value for r in held)
        if changes.groups is not UNSET:
            member_of = user_rules.check_group_refs(changes.groups)
            await self._check_groups(tenant_id, member_of)
            fields["groups"] = member_of
        after = before.changed(_now(self._clock), **fields)
        await self._write(tenant_id, actor, "user.update", before, after)
        return after

    async def set_password(
        self,
        tenant_id: str,
        actor: Actor,
        user_id: str,
        password: str,
        must_change_password: bool = True,
    ) -> User:
        """An administrator sets a user's password (the user changes it at next login)."""
        before = await self.get(tenant_id, user_id)
        check_may_manage(actor, before.roles, f"user {before.username}")
        self._policy.check(password, username=before.username)
        password_hash = await self._hasher.hash(password)
        now = _now(self._clock)
        after = before.changed(
            now,
            password_hash=password_hash,
            password_changed_at=now,
            must_change_password=must_change_password,
        )
        await self._write(tenant_id, actor, "user.password_reset", before, after)
        await self._end_sessions(tenant_id, user_id)
        return after

    async def set_disabled(
        self, tenant_id: str, actor: Actor, user_id: str, disabled: bool
    ) -> User:
        """Disable (no login, no refresh) or enable a user."""
        before = await self.get(tenant_id, user_id)
        check_may_manage(actor, before.roles, f"user {before.username}")
        if before.disabled == disabled:
            return before
        after = before.changed(_now(self._clock), disabled=disabled)
        await self._write(
            tenant_id, actor, "user.disable" if disabled else "user.enable", before, after
        )
        if disabled:
            await self._end_sessions(tenant_id, user_id)
        return after

    async def unlock(self, tenant_id: str, actor: Actor, user_id: str) -> User:
        """Clear a user's failed-login lockout."""
        before = await self.get(tenant_id, user_id)
        check_may_manage(actor, before.roles, f"user {before.username}")
        if before.login == LoginState.succeeded():
            return before
        after = before.changed(_now(self._clock), login=LoginState.succeeded())
        await self._write(tenant_id, actor, "user.unlock", before, after)
        return after

    async def delete(self, tenant_id: str, actor: Actor, user_id: str) -> None:
        """Remove a user, unbinding its devices and leaving the groups it supervised.

        The references go first, then the user: a failure in between leaves a user with fewer
        references, and repeating the delete finishes it.
        """
        before = await self.get(tenant_id, user_id)
        check_may_manage(actor, before.roles, f"user {before.username}")
        await self._check_admins(tenant_id, actor, before, None)
        now = _now(self._clock)
        usernames = await self._devices.unbind_user(tenant_id, user_id, now)
        await self._announce.directory(tenant_id, usernames)
        await self._groups.remove_supervisor(tenant_id, user_id, now)
        if not await self._users.delete(tenant_id, user_id, before.version):
            raise _lost_race("user", user_id)
        if await self._lost_last_admin(tenant_id, actor, before, None):
            await self._users.insert(before)
            raise _last_admin_race(before)
        await self._changes.record(
            actor,
            "user.delete",
            "user",
            user_id,
            tenant_id,
            before=before.record(),
            detail=f"unbound devices: {', '.join(usernames)}" if usernames else "",
        )
        await self._end_sessions(tenant_id, user_id)

    async def _end_sessions(self, tenant_id: str, subject: str) -> None:
        # A disabled, deleted or re-passworded account must lose its live tokens now, not at
        # their expiry: the identity area revokes its refresh tokens and access tokens.
        if self._sessions is not None:
            await self._sessions.revoke_sessions(subject, tenant_id)

    async def _check_groups(self, tenant_id: str, group_ids: Sequence[str]) -> None:
        if not group_ids:
            return
        found = await self._groups.existing(tenant_id, group_ids)
        for index, group_id in enumerate(group_ids):
            if group_id not in found:
                raise InvalidInput(f"groups[{index}]", "must be the id of a group of the tenant")

    async def _check_admins(
        self, tenant_id: str, actor: Actor, before: User, after: User | None
    ) -> None:
        # Operators may leave a tenant without an admin: they can always make a new one.
        if actor.kind is ActorKind.OPERATOR or not before.active_admin:
            return
        if after is not None and after.active_admin:
            return
        others = await self._users.count_active_admins(tenant_id, before.user_id)
        check_keeps_an_admin(before, after, others)

    async def _lost_last_admin(
        self, tenant_id: str, actor: Actor, before: User, after: User | None
    ) -> bool:
        """After the write: did two admins just demote each other at the same time?"""
        if actor.kind is ActorKind.OPERATOR or not before.active_admin:
            return False
        if after is not None and after.active_admin:
            return False
        return await self._users.count_active_admins(tenant_id, before.user_id) == 0

    async def _write(
        self, tenant_id: str, actor: Actor, action: str, before: User, after: User
    ) -> None:
        await self._check_admins(tenant_id, actor, before, after)
        if not await self._users.replace(after, before.version):
            raise _lost_race("user", before.user_id)
        if await self._lost_last_admin(tenant_id, actor, before, after):
            # Put the admin back: both concurrent demotions are refused, one admin remains.
            restored = replace(before, updated_at=_now(self._clock), version=after.version + 1)
            if not await self._users.replace(restored, after.version):
                log.error("could not restore the last tenant admin", extra={"tenant_id": tenant_id})
            raise _last_admin_race(before)
        await self._changes.record(
            actor,
            action,
            "user",
            after.user_id,
            tenant_id,
            before=before.record(),
            after=after.record(),
        )


def _last_admin_race(user: User) -> Conflict:
    return Conflict(
        f"cannot change {user.username}: another change left the tenant without an active "
        "tenant admin at the same time; both were refused",
        reason="last_admin",
        user_id=user.user_id,
    )


# ---------------------------------------------------------------------------------------------
# Roles


@dataclass(frozen=True)
class PermissionInfo:
    """One permission of the vocabulary."""

    name: str
    resource: str
    description: str


class RoleAdmin:
    """What each role grants in a tenant: the defaults, and the tenant's overrides."""

    def __init__(self, roles: Roles, auditor: Auditor, clock: Clock) -> None:
        self._roles = roles
        self._changes = _Changes(auditor)
        self._clock = clock

    async def roles(self, tenant_id: str) -> list[RoleView]:
        """Every tenant role with its effective permissions."""
        return role_views(await self._roles.overrides(tenant_id))

    @staticmethod
    def permissions() -> list[PermissionInfo]:
        """The permission vocabulary, with what each allows."""
        return [PermissionInfo(p.value, p.resource, DESCRIPTIONS[p]) for p in Permission]

    async def override(
        self, tenant_id: str, actor: Actor, role_name: str, permissions: Sequence[str]
    ) -> RoleView:
        """Replace a role's permission set in the tenant (effective at each token refresh)."""
        role = tenant_role(role_name)
        granted = check_override(role, permissions)
        current = await self._roles.overrides(tenant_id)
        before = current.get(role)
        override = RoleOverride(tenant_id, role, granted, _now(self._clock))
        await self._roles.put(override)
        await self._changes.record(
            actor,
            "role.update",
            "role",
            role.value,
            tenant_id,
            before=before.record() if before else _defaults_record(tenant_id, role),
            after=override.record(),
        )
        return next(v for v in role_views({**current, role: override}) if v.role is role)

    async def reset(self, tenant_id: str, actor: Actor, role_name: str) -> RoleView:
        """Give a role back its default permission set."""
        role = tenant_role(role_name)
        current = await self._roles.overrides(tenant_id)
        before = current.pop(role, None)
        if before is not None and await self._roles.delete(tenant_id, role):
            await self._changes.record(
                actor,
                "role.reset",
                "role",
                role.value,
                tenant_id,
                before=before.record(),
                after=_defaults_record(tenant_id, role),
            )
        return next(v for v in role_views(current) if v.role is role)


def _defaults_record(tenant_id: str, role: Role) -> dict[str, Any]:
    view = next(v for v in role_views({}) if v.role is role)
    return {
        "tenant_id": tenant_id,
        "role": role.value,
        "permissions": sorted(p.value for p in view.permissions),
        "default": True,
    }


# ---------------------------------------------------------------------------------------------
# Groups


@dataclass(frozen=True)
class GroupChanges:
    """What a PATCH of a group changes (UNSET: left as it is)."""

    name: Any = UNSET
    description: Any = UNSET
    supervisor_ids: Any = UNSET


class GroupAdmin:
    """Groups (logical teams) of a tenant."""

    def __init__(self, groups: Groups, users: Users, auditor: Auditor, clock: Clock) -> None:
        self._groups = groups
        self._users = users
        self._changes = _Changes(auditor)
        self._clock = clock

    async def create(
        self,
        tenant_id: str,
        actor: Actor,
        *,
        name: str,
        description: str = "",
        supervisor_ids: Sequence[str] = (),
    ) -> Group:
        """A new group (name unique in the tenant: 409 otherwise)."""
        name = group_rules.check_group_name(name)
        description = group_rules.check_description(description)
        supervisors = group_rules.check_supervisors(supervisor_ids)
        await self._check_users(tenant_id, supervisors)
        now = _now(self._clock)
        group = Group(
            group_id=new_id(group_rules.GROUP_PREFIX, now),
            tenant_id=tenant_id,
            name=name,
            description=description,
            supervisor_ids=supervisors,
            created_at=now,
            updated_at=now,
        )
        await self._groups.insert(group)
        await self._changes.record(
            actor, "group.create", "group", group.group_id, tenant_id, after=group.record()
        )
        return group

    async def get(self, tenant_id: str, group_id: str) -> Group:
        """The group (404 if it is not one of the tenant's)."""
        group = await self._groups.get(tenant_id, group_id)
        if group is None:
            raise _missing("group", group_id)
        return group

    async def find(self, tenant_id: str, query: ListQuery) -> Page[Group]:
        """A page of the tenant's groups."""
        _checked(query)
        return await self._groups.find(tenant_id, query)

    async def update(
        self,
        tenant_id: str,
        actor: Actor,
        group_id: str,
        version: int | None,
        changes: GroupChanges,
    ) -> Group:
        """Change a group's name, description or supervisors."""
        before = await self.get(tenant_id, group_id)
        check_version(version, before.version)
        fields: dict[str, Any] = {}
        if changes.name is not UNSET:
            fields["name"] = group_rules.check_group_name(changes.name)
        if changes.description is not UNSET:
            fields["description"] = group_rules.check_description(changes.description)
        if changes.supervisor_ids is not UNSET:
            supervisors = group_rules.check_supervisors(changes.supervisor_ids)
            await self._check_users(tenant_id, supervisors)
            fields["supervisor_ids"] = supervisors
        after = before.changed(_now(self._clock), **fields)
        if not await self._groups.replace(after, before.version):
            raise _lost_race("group", group_id)
        await self._changes.record(
            actor,
            "group.update",
            "group",
            group_id,
            tenant_id,
            before=before.record(),
            after=after.record(),
        )
        return after

    async def delete(self, tenant_id: str, actor: Actor, group_id: str) -> None:
        """Remove a group and take it out of its members (in one update of many).

        Members first, then the group: a failure in between leaves an empty group, which
        repeating the delete removes.
        """
        before = await self.get(tenant_id, group_id)
        members = await self._users.remove_group(tenant_id, group_id, _now(self._clock))
        if not await self._groups.delete(tenant_id, group_id):
            raise _missing("group", group_id)
        await self._changes.record(
            actor,
            "group.delete",
            "group",
            group_id,
            tenant_id,
            before=before.record(),
            detail=f"removed from {members} members",
        )

    async def _check_users(self, tenant_id: str, user_ids: Sequence[str]) -> None:
        if not user_ids:
            return
        found = await self._users.existing(tenant_id, user_ids)
        for index, user_id in enumerate(user_ids):
            if user_id not in found:
                raise InvalidInput(
                    f"supervisor_ids[{index}]", "must be the id of a user of the tenant"
                )


# ---------------------------------------------------------------------------------------------
# Devices


@dataclass(frozen=True)
class DeviceChanges:
    """What a PATCH of a device changes (UNSET: left as it is)."""

    display_name: Any = UNSET
    site_id: Any = UNSET
    caller_id_number: Any = UNSET
    user_id: Any = UNSET


class DeviceAdmin:
    """SIP and WebRTC endpoints of a tenant, and the SIP directory FreeSWITCH asks."""

    def __init__(
        self,
        devices: Devices,
        users: Users,
        auditor: Auditor,
        notifier: TenantNotifier,
        clock: Clock,
        sip_domain_suffix: str,
    ) -> None:
        self._devices = devices
        self._users = users
        self._changes = _Changes(auditor)
        self._announce = _Announcer(notifier)
        self._clock = clock
        self.suffix = sip_domain_suffix

    def domain(self, tenant_id: str) -> str:
        """The tenant's SIP domain (the realm of its devices' a1-hash)."""
        return dev_rules.sip_domain(tenant_id, self.suffix)

    async def create(
        self,
        tenant_id: str,
        actor: Actor,
        *,
        kind: DeviceKind,
        username: str,
        display_name: str = "",
        password: str | None = None,
        user_id: str | None = None,
        site_id: str | None = None,
        caller_id_number: str | None = None,
    ) -> tuple[Device, str | None]:
        """A new device; returns it and the generated password (None if the caller gave one)."""
        username = dev_rules.check_device_username(username)
        name = dev_rules.check_device_display_name(display_name)
        generated = None
        if password is None:
            password = generated = dev_rules.generate_password()
        dev_rules.check_device_password(password)
        site = dev_rules.check_site_id(site_id)
        caller_id = dev_rules.check_caller_id(caller_id_number)
        await self._check_user(tenant_id, user_id)
        now = _now(self._clock)
        device = Device(
            device_id=new_id(dev_rules.DEVICE_PREFIX, now),
            tenant_id=tenant_id,
            kind=kind,
            username=username,
            display_name=name,
            a1_hash=dev_rules.a1_hash(username, self.domain(tenant_id), password),
            user_id=user_id,
            site_id=site,
            caller_id_number=caller_id,
            created_at=now,
            updated_at=now,
        )
        await self._devices.insert(device)
        await self._announce.directory(tenant_id, [username])
        await self._changes.record(
            actor, "device.create", "device", device.device_id, tenant_id, after=device.record()
        )
        return device, generated

    async def get(self, tenant_id: str, device_id: str) -> Device:
        """The device (404 if it is not one of the tenant's)."""
        device = await self._devices.get(tenant_id, device_id)
        if device is None:
            raise _missing("device", device_id)
        return device

    async def find(self, tenant_id: str, query: DeviceQuery) -> Page[Device]:
        """A page of the tenant's devices."""
        _checked(query)
        return await self._devices.find(tenant_id, query)

    async def update(
        self, tenant_id: str, actor: Actor, device_id: str, changes: DeviceChanges
    ) -> Device:
        """Change a device's display name, site, caller id or bound user."""
        before = await self.get(tenant_id, device_id)
        fields: dict[str, Any] = {}
        if changes.display_name is not UNSET:
            fields["display_name"] = dev_rules.check_device_display_name(changes.display_name)
        if changes.site_id is not UNSET:
            fields["site_id"] = dev_rules.check_site_id(changes.site_id)
        if changes.caller_id_number is not UNSET:
            fields["caller_id_number"] = dev_rules.check_caller_id(changes.caller_id_number)
        if changes.user_id is not UNSET:
            await self._check_user(tenant_id, changes.user_id)
            fields["user_id"] = changes.user_id
        return await self._write(tenant_id, actor, "device.update", before, fields)

    async def bind(
        self, tenant_id: str, actor: Actor, device_id: str, user_id: str | None
    ) -> Device:
        """Bind the device to a user of the tenant (None: unbind)."""
        before = await self.get(tenant_id, device_id)
        await self._check_user(tenant_id, user_id)
        action = "device.bind" if user_id else "device.unbind"
        return await self._write(tenant_id, actor, action, before, {"user_id": user_id})

    async def rotate_secret(
        self, tenant_id: str, actor: Actor, device_id: str, password: str | None = None
    ) -> tuple[Device, str | None]:
        """A new password (given, or generated and returned once); the old one stops working."""
        before = await self.get(tenant_id, device_id)
        generated = None
        if password is None:
            password = generated = dev_rules.generate_password()
        dev_rules.check_device_password(password)
        a1 = dev_rules.a1_hash(before.username, self.domain(tenant_id), password)
        after = await self._write(tenant_id, actor, "device.rotate_secret", before, {"a1_hash": a1})
        return after, generated

    async def delete(self, tenant_id: str, actor: Actor, device_id: str) -> None:
        """Remove a device (its phone can no longer register)."""
        before = await self.get(tenant_id, device_id)
        if not await self._devices.delete(tenant_id, device_id):
            raise _missing("device", device_id)
        await self._announce.directory(tenant_id, [before.username])
        await self._changes.record(
            actor, "device.delete", "device", device_id, tenant_id, before=before.record()
        )

    async def lookup(self, tenant_id: str, username: str) -> Device | None:
        """The device registering as ``username`` in the tenant's SIP domain, or None.

        Whether a tenant's devices are served at all (not when deleted) is the caller's call:
        the bus adapter asks the tenant gate.
        """
        return await self._devices.by_username(tenant_id, username)

    async def _check_user(self, tenant_id: str, user_id: str | None) -> None:
        if user_id is None:
            return
        if user_id not in await self._users.existing(tenant_id, [user_id]):
            raise InvalidInput("user_id", "must be the id of a user of the tenant")

    async def _write(
        self,
        tenant_id: str,
        actor: Actor,
        action: str,
        before: Device,
        fields: Mapping[str, Any],
    ) -> Device:
        after = before.changed(_now(self._clock), **fields)
        if not await self._devices.replace(after, before.version):
            raise _lost_race("device", before.device_id)
        # After the write, so a look-up racing the event cannot cache the old answer.
        await self._announce.directory(tenant_id, [after.username])
        await self._changes.record(
            actor,
            action,
            "device",
            after.device_id,
            tenant_id,
            before=before.record(),
            after=after.record(),
        )
        return after


# ---------------------------------------------------------------------------------------------
# API keys


class ApiKeyAdmin:
    """API keys of a tenant's integrations: minted once, stored hashed, revocable."""

    def __init__(
        self,
        keys: ApiKeys,
        auditor: Auditor,
        clock: Clock,
        sessions: SessionRevoker | None = None,
    ) -> None:
        self._keys = keys
        self._changes = _Changes(auditor)
        self._clock = clock
        self._sessions = sessions

    async def create(
        self,
        tenant_id: str,
        actor: Actor,
        *,
        name: str,
        roles: Sequence[str],
        expires_at: datetime | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key with roles the creator may grant; returns it and the key string (once)."""
        name = keys_rules.check_key_name(name)
        held = parse_tenant_roles(roles)
        if not held:
            raise InvalidInput("roles", "must name at least one role")
        check_grant(actor, held)
        now = _now(self._clock)
        keys_rules.check_expiry(expires_at, now)
        minted = keys_rules.mint(tenant_id, new_id(keys_rules.KEY_PREFIX, now))
        key = ApiKey(
            key_id=minted.key_id,
            tenant_id=tenant_id,
            name=name,
            roles=tuple(r.value for r in held),
            secret_hash=minted.secret_hash,
            prefix=minted.prefix,
            created_at=now,
            created_by=actor.subject,
            expires_at=_trim(expires_at),
        )
        await self._keys.insert(key)
        await self._changes.record(
            actor, "api_key.create", "api_key", key.key_id, tenant_id, after=key.record()
        )
        return key, minted.key_string

    async def get(self, tenant_id: str, key_id: str) -> ApiKey:
        """The key (404 if it is not one of the tenant's)."""
        key = await self._keys.get(tenant_id, key_id)
        if key is None:
            raise _missing("API key", key_id)
        return key

    async def find(self, tenant_id: str, query: ListQuery) -> Page[ApiKey]:
        """A page of the tenant's keys."""
        _checked(query)
        return await self._keys.find(tenant_id, query)

    async def revoke(self, tenant_id: str, actor: Actor, key_id: str) -> ApiKey:
        """Revoke a key (idempotent): exchanging it for tokens stops at once."""
        before = await self.get(tenant_id, key_id)
        check_may_manage(actor, before.roles, f"API key {before.name}")
        if before.revoked_at is not None:
            return before
        after = await self._keys.revoke(tenant_id, key_id, _now(self._clock))
        if after is None:
            raise _missing("API key", key_id)
        await self._changes.record(
            actor,
            "api_key.revoke",
            "api_key",
            key_id,
            tenant_id,
            before=before.record(),
            after=after.record(),
        )
        if self._sessions is not None:
            # Tokens already exchanged for the key die with it.
            await self._sessions.revoke_sessions(key_id, tenant_id)
        return after

    async def delete(self, tenant_id: str, actor: Actor, key_id: str) -> None:
        """Remove a key for good."""
        before = await self.get(tenant_id, key_id)
        check_may_manage(actor, before.roles, f"API key {before.name}")
        if not await self._keys.delete(tenant_id, key_id):
            raise _missing("API key", key_id)
        await self._changes.record(
            actor, "api_key.delete", "api_key", key_id, tenant_id, before=before.record()
        )


def _trim(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# ---------------------------------------------------------------------------------------------
# Calendars


@dataclass(frozen=True)
class CalendarSpec:
    """A calendar as the caller writes it (checked by ``CalendarAdmin``)."""

    name: str
    weekly: Mapping[str, Any]
    time_zone: str | None = None
    holidays: Sequence[Mapping[str, Any]] = ()
    exceptions: Sequence[Mapping[str, Any]] = ()


class CalendarAdmin:
    """Business calendars of a tenant, and whether one is open at an instant."""

    def __init__(
        self, calendars: Calendars, auditor: Auditor, notifier: TenantNotifier, clock: Clock
    ) -> None:
        self._calendars = calendars
        self._changes = _Changes(auditor)
        self._announce = _Announcer(notifier)
        self._clock = clock
        self._evaluations = telemetry.counter(
            "callmesh_admin_calendar_evaluations_total",
            "Calendar open/closed evaluations, by tenant and result",
            ["tenant", "open"],
        )

    def _checked(self, spec: CalendarSpec, default_zone: str) -> tuple[str, str, cal_rules.Rules]:
        name = cal_rules.check_calendar_name(spec.name)
        zone = cal_rules.check_time_zone(spec.time_zone or default_zone or "UTC")
        rules = cal_rules.parse_rules(spec.weekly, spec.holidays, spec.exceptions)
        return name, zone, rules

    async def create(
        self, tenant_id: str, actor: Actor, spec: CalendarSpec, default_zone: str
    ) -> Calendar:
        """A new calendar (time zone: the tenant's unless given)."""
        name, zone, rules = self._checked(spec, default_zone)
        now = _now(self._clock)
        calendar = Calendar(
            calendar_id=new_id(cal_rules.CALENDAR_PREFIX, now),
            tenant_id=tenant_id,
            name=name,
            time_zone=zone,
            rules=rules,
            created_at=now,
            updated_at=now,
        )
        await self._calendars.insert(calendar)
        await self._announce.calendars(tenant_id, [calendar.calendar_id])
        await self._changes.record(
            actor,
            "calendar.create",
            "calendar",
            calendar.calendar_id,
            tenant_id,
            after=calendar.record(),
        )
        return calendar

    async def get(self, tenant_id: str, calendar_id: str) -> Calendar:
        """The calendar (404 if it is not one of the tenant's)."""
        calendar = await self._calendars.get(tenant_id, calendar_id)
        if calendar is None:
            raise _missing("calendar", calendar_id)
        return calendar

    async def find(self, tenant_id: str, query: ListQuery) -> Page[Calendar]:
        """A page of the tenant's calendars."""
        _checked(query)
        return await self._calendars.find(tenant_id, query)

    async def replace(
        self,
        tenant_id: str,
        actor: Actor,
        calendar_id: str,
        version: int | None,
        spec: CalendarSpec,
        default_zone: str,
    ) -> Calendar:
        """Replace a calendar's name, time zone and rules as a whole."""
        before = await self.get(tenant_id, calendar_id)
        check_version(version, before.version)
        name, zone, rules = self._checked(spec, default_zone)
        after = before.changed(_now(self._clock), name=name, time_zone=zone, rules=rules)
        if not await self._calendars.replace(after, before.version):
            raise _lost_race("calendar", calendar_id)
        await self._announce.calendars(tenant_id, [calendar_id])
        await self._changes.record(
            actor,
            "calendar.update",
            "calendar",
            calendar_id,
            tenant_id,
            before=before.record(),
            after=after.record(),
        )
        return after

    async def delete(self, tenant_id: str, actor: Actor, calendar_id: str) -> None:
        """Remove a calendar."""
        before = await self.get(tenant_id, calendar_id)
        if not await self._calendars.delete(tenant_id, calendar_id):
            raise _missing("calendar", calendar_id)
        await self._announce.calendars(tenant_id, [calendar_id])
        await self._changes.record(
            actor, "calendar.delete", "calendar", calendar_id, tenant_id, before=before.record()
        )

    async def evaluate(
        self, tenant_id: str, calendar_id: str, at: datetime | None = None
    ) -> tuple[Calendar, OpenState]:
        """Whether the calendar is open at ``at`` (now by default), why, and until when."""
        calendar = await self.get(tenant_id, calendar_id)
        state = cal_rules.evaluate(calendar.rules, calendar.time_zone, at or self._clock())
        self._evaluations.labels(tenant_id, str(state.open).lower()).inc()
        return calendar, state


# ---------------------------------------------------------------------------------------------
# Composition


async def start(ctx: AdminContext, runtime: Runtime) -> None:
    """Build this area's use cases on the connected runtime and provide them in ``ctx``."""
    # Adapters are wired here, the area's composition step (imported late: they import us).
    from callmesh.admin.adapters import bus_tenant, store_tenant

    settings = ctx.settings
    auditor = ctx.get(Auditor)
    store = runtime.store
    users = store_tenant.MongoUsers(store)
    groups = store_tenant.MongoGroups(store)
    devices = store_tenant.MongoDevices(store)
    notifier = bus_tenant.BusTenantNotifier(runtime.bus)
    # The identity area starts first; its Authenticator ends sessions (see _end_sessions).
    from callmesh.admin.service.identity import Authenticator

    sessions: SessionRevoker = ctx.get(Authenticator)
    ctx.provide(
        UserAdmin(
            users,
            groups,
            devices,
            store_tenant.Argon2Hasher(),
            auditor,
            notifier,
            ctx.clock,
            PasswordPolicy(min_length=settings.password_min_length),
            LockoutPolicy(
                max_failures=settings.login_max_failures,
                window=timedelta(seconds=settings.login_failure_window_s),
                lockout=timedelta(seconds=settings.login_lockout_s),
            ),
            sessions,
        )
    )
    ctx.provide(RoleAdmin(store_tenant.MongoRoles(store), auditor, ctx.clock))
    ctx.provide(GroupAdmin(groups, users, auditor, ctx.clock))
    ctx.provide(
        DeviceAdmin(devices, users, auditor, notifier, ctx.clock, settings.sip_domain_suffix)
    )
    ctx.provide(ApiKeyAdmin(store_tenant.MongoApiKeys(store), auditor, ctx.clock, sessions))
    ctx.provide(CalendarAdmin(store_tenant.MongoCalendars(store), auditor, notifier, ctx.clock))
