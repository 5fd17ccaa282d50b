"""The tenant API (``/v1/t/{tenant}/…``): users, roles, groups, devices, API keys, calendars.

Every route authenticates and spends one unit of the tenant's rate (``rate_limit``), checks its
permission, then the tenant's status (``tenant_writable``: 404 for unknown or deleted tenants,
423 for writes while suspended). Handlers are thin: parse, call a use case, shape the answer.
Rule errors from the use cases name the body field (``body.roles[1]``, ``body.weekly.mon[0]``).
"""

# No ``from __future__ import annotations`` here: the routes' Annotated aliases are local to
# ``routers`` (they close over the context), and FastAPI must evaluate them where they are.
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from callmesh.admin.api.common import After, Limit, PageOut, actor_of
from callmesh.admin.domain.apikeys import ApiKey
from callmesh.admin.domain.calendars import WEEKDAYS, Calendar, ExtraDay, Holiday, TimeRange
from callmesh.admin.domain.devices import Device, DeviceKind
from callmesh.admin.domain.groups import Group
from callmesh.admin.domain.roles import RoleView
from callmesh.admin.domain.users import User, parse_version
from callmesh.admin.ports.tenant import DeviceQuery, ListQuery, UserQuery
from callmesh.admin.service.context import AdminContext
from callmesh.admin.service.identity import Authenticator
from callmesh.admin.service.tenant import (
    UNSET,
    ApiKeyAdmin,
    CalendarAdmin,
    CalendarSpec,
    DeviceAdmin,
    DeviceChanges,
    GroupAdmin,
    GroupChanges,
    RoleAdmin,
    UserAdmin,
    UserChanges,
)
from callmesh.core.auth import Principal, require_permission
from callmesh.core.errors import InvalidInput
from callmesh.core.permissions import TENANT_ROLES, Permission
from callmesh.core.ratelimit import rate_limit
from callmesh.core.tenancy import TenantInfo, tenant_writable

_P = Permission
_ROLE_ENUM = [r.value for r in TENANT_ROLES]

# ---------------------------------------------------------------------------------------------
# Schemas


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProblemOut(BaseModel):
    """An error (RFC 9457 problem+json), as ``callmesh.core.http`` writes it."""

    type: str
    title: str
    status: int
    code: str
    detail: str
    details: dict[str, Any] | None = None
    errors: list[dict[str, str]] | None = None


_PROBLEM: dict[str, Any] = {
    "model": ProblemOut,
    "description": "a problem (problem+json): what went wrong, with its code",
    "content": {"application/problem+json": {"schema": ProblemOut.model_json_schema()}},
}
ERRORS: dict[int | str, dict[str, Any]] = {"4XX": _PROBLEM, 503: _PROBLEM}

RoleName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=32,
        json_schema_extra={"enum": _ROLE_ENUM},
        description="a tenant role",
    ),
]
Ident = Annotated[str, Field(min_length=1, max_length=64)]
Roles = Annotated[list[RoleName], Field(max_length=len(_ROLE_ENUM))]
Ranges = Annotated[
    list[Annotated[list[Annotated[str, Field(max_length=8)]], Field(max_length=4)]],
    Field(
        max_length=24,
        description='ranges ["HH:MM", "HH:MM"], ordered, not overlapping; 24:00 ends a day',
        examples=[[["09:00", "12:00"], ["13:00", "18:00"]]],
    ),
]
UserId = Annotated[str, Path(max_length=64, description="user id (usr_…)")]
GroupId = Annotated[str, Path(max_length=64, description="group id (grp_…)")]
DeviceId = Annotated[str, Path(max_length=64, description="device id (dev_…)")]
KeyId = Annotated[str, Path(max_length=64, description="API key id (key_…)")]
CalendarId = Annotated[str, Path(max_length=64, description="calendar id (cal_…)")]
IfMatch = Annotated[
    str | None,
    Header(max_length=32, description='the ETag of the version you changed, e.g. "3"'),
]


# -- users


class UserCreateIn(_In):
    """A new user."""

    username: str = Field(min_length=1, max_length=64, examples=["ann.lee"])
    display_name: str | None = Field(default=None, max_length=128)
    email: str | None = Field(default=None, max_length=254)
    roles: Roles = []
    groups: Annotated[list[Ident], Field(max_length=100)] = []
    password: str | None = Field(
        default=None,
        max_length=256,
        description="initial password (policy-checked); none: set later",
    )
    must_change_password: bool | None = Field(
        default=None, description="default true: the user picks their own at first login"
    )


class UserPatchIn(_In):
    """Changes to a user (only the fields sent; ``email: null`` clears it)."""

    display_name: str | None = Field(default=None, max_length=128)
    email: str | None = Field(default=None, max_length=254)
    roles: Roles | None = None
    groups: Annotated[list[Ident], Field(max_length=100)] | None = None


class PasswordSetIn(_In):
    """An administrator's new password for a user."""

    password: str = Field(min_length=1, max_length=256)
    must_change_password: bool = True


class OwnPasswordIn(_In):
    """A user's own password change."""

    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class UserOut(BaseModel):
    """A user (never its password or hash)."""

    id: str
    username: str
    display_name: str
    email: str | None
    roles: list[str]
    groups: list[str]
    password_set: bool
    password_changed_at: datetime | None
    must_change_password: bool
    disabled: bool
    locked_until: datetime | None
    failed_logins: int
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int


def user_out(user: User) -> UserOut:
    """The API shape of a user."""
    return UserOut(
        id=user.user_id,
        username=user.username,
        display_name=user.display_name,
        email=user.email,
        roles=list(user.roles),
        groups=list(user.groups),
        password_set=user.password_hash is not None,
        password_changed_at=user.password_changed_at,
        must_change_password=user.must_change_password,
        disabled=user.disabled,
        locked_until=user.login.locked_until,
        failed_logins=user.login.failures,
        last_login_at=user.last_login_at,
        created_at=user.created_at,
        updated_at=user.updated_at,
        version=user.version,
    )


# -- roles


class RoleOut(BaseModel):
    """A role in the tenant: what it grants now, and whether the tenant changed that."""

    role: str
    permissions: list[str]
    default_permissions: list[str]
    overridden: bool
    updated_at: datetime | None


class RolePutIn(_In):
    """The permission set a role grants in the tenant (replacing its default)."""

    permissions: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=100)]


class PermissionOut(BaseModel):
    """One permission of the vocabulary."""

    name: str
    resource: str
    description: str


def role_out(view: RoleView) -> RoleOut:
    """The API shape of a role."""
    return RoleOut(
        role=view.role.value,
        permissions=sorted(p.value for p in view.permissions),
        default_permissions=sorted(p.value for p in view.defaults),
        overridden=view.overridden,
        updated_at=view.updated_at,
    )


# -- groups


class GroupIn(_In):
    """A new group."""

    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=1000)
    supervisor_ids: Annotated[list[Ident], Field(max_length=50)] = []


class GroupPatchIn(_In):
    """Changes to a group (only the fields sent)."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=1000)
    supervisor_ids: Annotated[list[Ident], Field(max_length=50)] | None = None


class GroupOut(BaseModel):
    """A group (its members: ``GET /users?group=<id>``)."""

    id: str
    name: str
    description: str
    supervisor_ids: list[str]
    created_at: datetime
    updated_at: datetime
    version: int


def group_out(group: Group) -> GroupOut:
    """The API shape of a group."""
    return GroupOut(
        id=group.group_id,
        name=group.name,
        description=group.description,
        supervisor_ids=list(group.supervisor_ids),
        created_at=group.created_at,
        updated_at=group.updated_at,
        version=group.version,
    )


# -- devices


class DeviceIn(_In):
    """A new SIP or WebRTC endpoint."""

    kind: Literal["sip", "webrtc"] = "sip"
    username: str = Field(min_length=1, max_length=128, examples=["1001"])
    display_name: str = Field(default="", max_length=128)
    password: str | None = Field(
        default=None, max_length=128, description="at least 12 characters; none: one is generated"
    )
    user_id: str | None = Field(default=None, max_length=64)
    site_id: str | None = Field(default=None, max_length=64)
    caller_id_number: str | None = Field(default=None, max_length=32)


class DevicePatchIn(_In):
    """Changes to a device (only the fields sent; ``null`` clears the optional ones)."""

    display_name: str | None = Field(default=None, max_length=128)
    user_id: str | None = Field(default=None, max_length=64)
    site_id: str | None = Field(default=None, max_length=64)
    caller_id_number: str | None = Field(default=None, max_length=32)


class SecretIn(_In):
    """A device's new password (none: one is generated and returned once)."""

    password: str | None = Field(default=None, max_length=128)


class BindIn(_In):
    """The user a device belongs to."""

    user_id: str = Field(min_length=1, max_length=64)


class DeviceOut(BaseModel):
    """A device (never its password or a1-hash)."""

    id: str
    kind: str
    username: str
    domain: str
    display_name: str
    user_id: str | None
    site_id: str | None
    caller_id_number: str | None
    created_at: datetime
    updated_at: datetime
    version: int


class DeviceSecretOut(DeviceOut):
    """A device with its password when admin generated it: shown this once, never again."""

    password: str | None


def device_out(device: Device, domain: str) -> DeviceOut:
    """The API shape of a device."""
    return DeviceOut(
        id=device.device_id,
        kind=device.kind.value,
        username=device.username,
        domain=domain,
        display_name=device.display_name,
        user_id=device.user_id,
        site_id=device.site_id,
        caller_id_number=device.caller_id_number,
        created_at=device.created_at,
        updated_at=device.updated_at,
        version=device.version,
    )


# -- API keys


class ApiKeyIn(_In):
    """A new API key."""

    name: str = Field(min_length=1, max_length=100)
    roles: Annotated[list[RoleName], Field(min_length=1, max_length=len(_ROLE_ENUM))]
    expires_at: datetime | None = Field(default=None, description="with a UTC offset; none: never")


class ApiKeyOut(BaseModel):
    """An API key (never its secret or hash: ``prefix`` tells keys apart)."""

    id: str
    name: str
    roles: list[str]
    prefix: str
    status: Literal["active", "expired", "revoked"]
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreatedOut(ApiKeyOut):
    """A new key with the key string: shown this once, never again."""

    key: str


def key_out(key: ApiKey, now: datetime) -> ApiKeyOut:
    """The API shape of a key."""
    return ApiKeyOut(
        id=key.key_id,
        name=key.name,
        roles=list(key.roles),
        prefix=key.prefix,
        status=key.status(now).value,
        created_at=key.created_at,
        created_by=key.created_by,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
    )


# -- calendars


class WeeklyIn(_In):
    """Working hours of each weekday (a day left out is closed)."""

    mon: Ranges = []
    tue: Ranges = []
    wed: Ranges = []
    thu: Ranges = []
    fri: Ranges = []
    sat: Ranges = []
    sun: Ranges = []


class HolidayIn(_In):
    """A holiday: closed, or open with special hours (``closed: false`` and ``hours``)."""

    date: str = Field(max_length=10, examples=["2026-10-01"], description="YYYY-MM-DD")
    name: str = Field(max_length=100, examples=["National Day"])
    closed: bool = True
    hours: Ranges = []


class ExtraDayIn(_In):
    """An extra working day (e.g. a weekend made a working day) and its hours."""

    date: str = Field(max_length=10, description="YYYY-MM-DD")
    name: str = Field(default="", max_length=100)
    hours: Ranges


class CalendarIn(_In):
    """A business calendar (created, or replaced as a whole)."""

    name: str = Field(min_length=1, max_length=100)
    time_zone: str | None = Field(
        default=None, max_length=64, description="IANA zone; none: the tenant's time zone"
    )
    weekly: WeeklyIn
    holidays: Annotated[list[HolidayIn], Field(max_length=1000)] = []
    exceptions: Annotated[list[ExtraDayIn], Field(max_length=1000)] = []


class WeeklyOut(BaseModel):
    """Working hours of each weekday."""

    mon: list[list[str]]
    tue: list[list[str]]
    wed: list[list[str]]
    thu: list[list[str]]
    fri: list[list[str]]
    sat: list[list[str]]
    sun: list[list[str]]


class HolidayOut(BaseModel):
    """A holiday."""

    date: str
    name: str
    closed: bool
    hours: list[list[str]]


class ExtraDayOut(BaseModel):
    """An extra working day."""

    date: str
    name: str
    hours: list[list[str]]


class CalendarOut(BaseModel):
    """A business calendar."""

    id: str
    name: str
    time_zone: str
    weekly: WeeklyOut
    holidays: list[HolidayOut]
    exceptions: list[ExtraDayOut]
    created_at: datetime
    updated_at: datetime
    version: int


class OpenOut(BaseModel):
    """Whether a calendar is open at an instant, why, and when that next changes."""

    open: bool
    reason: str = Field(examples=["working hours", "holiday: National Day", "closed"])
    next_change: datetime | None = Field(description="none: no change within 400 days")
    at: datetime
    time_zone: str


def _texts(ranges: tuple[TimeRange, ...]) -> list[list[str]]:
    return [r.texts() for r in ranges]


def _holiday_out(h: Holiday) -> HolidayOut:
    return HolidayOut(date=h.day.isoformat(), name=h.name, closed=h.closed, hours=_texts(h.hours))


def _extra_out(x: ExtraDay) -> ExtraDayOut:
    return ExtraDayOut(date=x.day.isoformat(), name=x.name, hours=_texts(x.hours))


def calendar_out(calendar: Calendar) -> CalendarOut:
    """The API shape of a calendar."""
    rules = calendar.rules
    return CalendarOut(
        id=calendar.calendar_id,
        name=calendar.name,
        time_zone=calendar.time_zone,
        weekly=WeeklyOut(**{day: _texts(rules.weekly[day]) for day in WEEKDAYS}),
        holidays=[_holiday_out(h) for h in rules.holidays],
        exceptions=[_extra_out(x) for x in rules.exceptions],
        created_at=calendar.created_at,
        updated_at=calendar.updated_at,
        version=calendar.version,
    )


def calendar_spec(body: CalendarIn) -> CalendarSpec:
    """The use case's input from the body."""
    return CalendarSpec(
        name=body.name,
        time_zone=body.time_zone,
        weekly=body.weekly.model_dump(),
        holidays=[h.model_dump() for h in body.holidays],
        exceptions=[x.model_dump() for x in body.exceptions],
    )


# ---------------------------------------------------------------------------------------------
# Helpers


@contextmanager
def _from(part: str) -> Iterator[None]:
    """Name rule errors after where the input came from (``body.roles[1]``, ``query.role``)."""
    try:
        yield
    except InvalidInput as err:
        field = f"{part}.{err.field}"
        message = err.message
        if message.startswith(err.field):
            message = f"{part}.{message}"
        details = {k: v for k, v in err.details.items() if k not in ("field", "rule")}
        raise InvalidInput(field, err.rule, message, **details) from None


def _etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


def _sent(body: BaseModel, name: str) -> Any:
    """The field's value if the body sent it, else UNSET."""
    return getattr(body, name) if name in body.model_fields_set else UNSET


def _sent_not_null(body: BaseModel, name: str) -> Any:
    """Like ``_sent``, but an explicit null leaves the field as it is (it cannot be cleared)."""
    value = _sent(body, name)
    return UNSET if value is None else value


# ---------------------------------------------------------------------------------------------
# Routers


def routers(ctx: AdminContext) -> list[APIRouter]:
    """This area's routers."""
    limited = rate_limit()
    Caller = Annotated[Principal, Depends(limited)]
    Identity_ = Annotated[Authenticator, Depends(ctx.dependency(Authenticator))]
    Tenant = Annotated[TenantInfo, Depends(tenant_writable)]

    def guard(*permissions: Permission) -> list[Any]:
        # Order: who you are and that you may touch this tenant (403), what you may do (403),
        # then the tenant's state (404 unknown or deleted, 423 writes while suspended).
        deps: list[Any] = [Depends(limited)]
        if permissions:
            deps.append(Depends(require_permission(*permissions)))
        deps.append(Depends(tenant_writable))
        return deps

    Users_ = Annotated[UserAdmin, Depends(ctx.dependency(UserAdmin))]
    Roles_ = Annotated[RoleAdmin, Depends(ctx.dependency(RoleAdmin))]
    Groups_ = Annotated[GroupAdmin, Depends(ctx.dependency(GroupAdmin))]
    Devices_ = Annotated[DeviceAdmin, Depends(ctx.dependency(DeviceAdmin))]
    Keys_ = Annotated[ApiKeyAdmin, Depends(ctx.dependency(ApiKeyAdmin))]
    Calendars_ = Annotated[CalendarAdmin, Depends(ctx.dependency(CalendarAdmin))]

    # -- users ----------------------------------------------------------------------------
    users = APIRouter(prefix="/v1/t/{tenant}/users", tags=["tenant: users"], responses=ERRORS)
    read_users, write_users = guard(_P.USERS_READ), guard(_P.USERS_WRITE)

    @users.post("", status_code=201, dependencies=write_users)
    async def create_user(
        tenant: str, body: UserCreateIn, caller: Caller, admin: Users_
    ) -> UserOut:
        """Create a user (``users.write``); roles you may grant, groups of the tenant."""
        with _from("body"):
            user = await admin.create(
                tenant,
                actor_of(caller),
                username=body.username,
                display_name=body.display_name,
                email=body.email,
                roles=body.roles,
                groups=body.groups,
                password=body.password,
                must_change_password=body.must_change_password,
            )
        return user_out(user)

    @users.get("", dependencies=read_users)
    async def list_users(
        tenant: str,
        admin: Users_,
        limit: Limit = 50,
        after: After = None,
        role: Annotated[
            str | None, Query(max_length=32, json_schema_extra={"enum": _ROLE_ENUM})
        ] = None,
        group: Annotated[str | None, Query(max_length=64, description="group id")] = None,
        disabled: bool | None = None,
        search: Annotated[
            str | None, Query(max_length=64, description="part of the username or name")
        ] = None,
    ) -> PageOut[UserOut]:
        """List users (``users.read``), filtered by role, group, disabled, a search text."""
        query = UserQuery(
            limit=limit, after=after, role=role, group=group, disabled=disabled, search=search
        )
        with _from("query"):
            page = await admin.find(tenant, query)
        return PageOut(items=[user_out(u) for u in page.items], next=page.next)

    @users.get("/me", dependencies=guard())
    async def get_me(tenant: str, caller: Caller, admin: Users_, response: Response) -> UserOut:
        """The calling user (any user of the tenant)."""
        user = await admin.me(tenant, actor_of(caller))
        _etag(response, user.version)
        return user_out(user)

    @users.post("/me/password", dependencies=guard())
    async def change_own_password(
        tenant: str, body: OwnPasswordIn, caller: Caller, admin: Users_, identity: Identity_
    ) -> UserOut:
        """Change your own password, proving the current one (any user of the tenant).

        The same as ``POST /v1/auth/password``: a wrong current password counts as a failed
        login, and the account's other sessions end.
        """
        with _from("body"):
            await identity.change_password(caller, body.current_password, body.new_password)
        return user_out(await admin.me(tenant, actor_of(caller)))

    @users.get("/{user_id}", dependencies=read_users)
    async def get_user(tenant: str, user_id: UserId, admin: Users_, response: Response) -> UserOut:
        """A user (``users.read``); its ``ETag`` is the version to send in ``If-Match``."""
        user = await admin.get(tenant, user_id)
        _etag(response, user.version)
        return user_out(user)

    @users.patch("/{user_id}", dependencies=write_users)
    async def update_user(
        tenant: str,
        user_id: UserId,
        body: UserPatchIn,
        caller: Caller,
        admin: Users_,
        response: Response,
        if_match: IfMatch = None,
    ) -> UserOut:
        """Change a user (``users.write``): needs ``If-Match`` (412 if it changed, 428 without)."""
        version = parse_version(if_match)
        changes = UserChanges(
            display_name=_sent_not_null(body, "display_name"),
            email=_sent(body, "email"),
            roles=_sent_not_null(body, "roles"),
            groups=_sent_not_null(body, "groups"),
        )
        with _from("body"):
            user = await admin.update(tenant, actor_of(caller), user_id, version, changes)
        _etag(response, user.version)
        return user_out(user)

    @users.post("/{user_id}/password", dependencies=write_users)
    async def set_password(
        tenant: str, user_id: UserId, body: PasswordSetIn, caller: Caller, admin: Users_
    ) -> UserOut:
        """Set a user's password (``users.write``); by default they must change it at login."""
        with _from("body"):
            user = await admin.set_password(
                tenant, actor_of(caller), user_id, body.password, body.must_change_password
            )
        return user_out(user)

    @users.post("/{user_id}/disable", dependencies=write_users)
    async def disable_user(tenant: str, user_id: UserId, caller: Caller, admin: Users_) -> UserOut:
        """Disable a user: no login, no token refresh (``users.write``)."""
        return user_out(await admin.set_disabled(tenant, actor_of(caller), user_id, True))

    @users.post("/{user_id}/enable", dependencies=write_users)
    async def enable_user(tenant: str, user_id: UserId, caller: Caller, admin: Users_) -> UserOut:
        """Enable a disabled user (``users.write``)."""
        return user_out(await admin.set_disabled(tenant, actor_of(caller), user_id, False))

    @users.post("/{user_id}/unlock", dependencies=write_users)
    async def unlock_user(tenant: str, user_id: UserId, caller: Caller, admin: Users_) -> UserOut:
        """Clear a user's failed-login lockout (``users.write``)."""
        return user_out(await admin.unlock(tenant, actor_of(caller), user_id))

    @users.delete("/{user_id}", status_code=204, dependencies=write_users)
    async def delete_user(tenant: str, user_id: UserId, caller: Caller, admin: Users_) -> Response:
        """Delete a user; its devices are unbound (``users.write``)."""
        await admin.delete(tenant, actor_of(caller), user_id)
        return Response(status_code=204)

    # -- roles and permissions ------------------------------------------------------------
    roles = APIRouter(prefix="/v1/t/{tenant}", tags=["tenant: roles"], responses=ERRORS)
    read_roles, write_roles = guard(_P.ROLES_READ), guard(_P.ROLES_WRITE)

    @roles.get("/roles", dependencies=read_roles)
    async def list_roles(tenant: str, admin: Roles_) -> list[RoleOut]:
        """Every role with its effective permissions and whether overridden (``roles.read``)."""
        return [role_out(v) for v in await admin.roles(tenant)]

    @roles.get("/permissions", dependencies=read_roles)
    async def list_permissions(tenant: str) -> list[PermissionOut]:
        """The permission vocabulary with what each allows (``roles.read``)."""
        return [
            PermissionOut(name=p.name, resource=p.resource, description=p.description)
            for p in RoleAdmin.permissions()
        ]

    @roles.put("/roles/{role}", dependencies=write_roles)
    async def override_role(
        tenant: str,
        role: Annotated[str, Path(max_length=32, json_schema_extra={"enum": _ROLE_ENUM})],
        body: RolePutIn,
        caller: Caller,
        admin: Roles_,
    ) -> RoleOut:
        """Replace what a role grants in the tenant (``roles.write``; at each token refresh)."""
        with _from("body"):
            view = await admin.override(tenant, actor_of(caller), role, body.permissions)
        return role_out(view)

    @roles.delete("/roles/{role}", dependencies=write_roles)
    async def reset_role(
        tenant: str,
        role: Annotated[str, Path(max_length=32, json_schema_extra={"enum": _ROLE_ENUM})],
        caller: Caller,
        admin: Roles_,
    ) -> RoleOut:
        """Give a role back its default permissions (``roles.write``)."""
        return role_out(await admin.reset(tenant, actor_of(caller), role))

    # -- groups ---------------------------------------------------------------------------
    groups = APIRouter(prefix="/v1/t/{tenant}/groups", tags=["tenant: groups"], responses=ERRORS)
    read_groups, write_groups = guard(_P.GROUPS_READ), guard(_P.GROUPS_WRITE)

    @groups.post("", status_code=201, dependencies=write_groups)
    async def create_group(tenant: str, body: GroupIn, caller: Caller, admin: Groups_) -> GroupOut:
        """Create a group (``groups.write``); its name is unique in the tenant."""
        with _from("body"):
            group = await admin.create(
                tenant,
                actor_of(caller),
                name=body.name,
                description=body.description,
                supervisor_ids=body.supervisor_ids,
            )
        return group_out(group)

    @groups.get("", dependencies=read_groups)
    async def list_groups(
        tenant: str, admin: Groups_, limit: Limit = 50, after: After = None
    ) -> PageOut[GroupOut]:
        """List groups (``groups.read``)."""
        with _from("query"):
            page = await admin.find(tenant, ListQuery(limit=limit, after=after))
        return PageOut(items=[group_out(g) for g in page.items], next=page.next)

    @groups.get("/{group_id}", dependencies=read_groups)
    async def get_group(
        tenant: str, group_id: GroupId, admin: Groups_, response: Response
    ) -> GroupOut:
        """A group (``groups.read``)."""
        group = await admin.get(tenant, group_id)
        _etag(response, group.version)
        return group_out(group)

    @groups.patch("/{group_id}", dependencies=write_groups)
    async def update_group(
        tenant: str,
        group_id: GroupId,
        body: GroupPatchIn,
        caller: Caller,
        admin: Groups_,
        response: Response,
        if_match: IfMatch = None,
    ) -> GroupOut:
        """Change a group (``groups.write``; ``If-Match`` optional)."""
        version = parse_version(if_match)
        changes = GroupChanges(
            name=_sent_not_null(body, "name"),
            description=_sent_not_null(body, "description"),
            supervisor_ids=_sent_not_null(body, "supervisor_ids"),
        )
        with _from("body"):
            group = await admin.update(tenant, actor_of(caller), group_id, version, changes)
        _etag(response, group.version)
        return group_out(group)

    @groups.delete("/{group_id}", status_code=204, dependencies=write_groups)
    async def delete_group(
        tenant: str, group_id: GroupId, caller: Caller, admin: Groups_
    ) -> Response:
        """Delete a group and take it out of its members (``groups.write``)."""
        await admin.delete(tenant, actor_of(caller), group_id)
        return Response(status_code=204)

    # -- devices --------------------------------------------------------------------------
    devices = APIRouter(prefix="/v1/t/{tenant}/devices", tags=["tenant: devices"], responses=ERRORS)
    read_devices, write_devices = guard(_P.DEVICES_READ), guard(_P.DEVICES_WRITE)

    @devices.post("", status_code=201, dependencies=write_devices)
    async def create_device(
        tenant: str, body: DeviceIn, caller: Caller, admin: Devices_
    ) -> DeviceSecretOut:
        """Create a device (``devices.write``); a generated password is returned this once."""
        with _from("body"):
            device, password = await admin.create(
                tenant,
                actor_of(caller),
                kind=DeviceKind(body.kind),
                username=body.username,
                display_name=body.display_name,
                password=body.password,
                user_id=body.user_id,
                site_id=body.site_id,
                caller_id_number=body.caller_id_number,
            )
        out = device_out(device, admin.domain(tenant))
        return DeviceSecretOut(**out.model_dump(), password=password)

    @devices.get("", dependencies=read_devices)
    async def list_devices(
        tenant: str,
        admin: Devices_,
        limit: Limit = 50,
        after: After = None,
        kind: Literal["sip", "webrtc"] | None = None,
        user_id: Annotated[str | None, Query(max_length=64)] = None,
    ) -> PageOut[DeviceOut]:
        """List devices (``devices.read``), filtered by kind or bound user."""
        query = DeviceQuery(
            limit=limit, after=after, kind=DeviceKind(kind) if kind else None, user_id=user_id
        )
        with _from("query"):
            page = await admin.find(tenant, query)
        domain = admin.domain(tenant)
        return PageOut(items=[device_out(d, domain) for d in page.items], next=page.next)

    @devices.get("/{device_id}", dependencies=read_devices)
    async def get_device(tenant: str, device_id: DeviceId, admin: Devices_) -> DeviceOut:
        """A device (``devices.read``)."""
        return device_out(await admin.get(tenant, device_id), admin.domain(tenant))

    @devices.patch("/{device_id}", dependencies=write_devices)
    async def update_device(
        tenant: str, device_id: DeviceId, body: DevicePatchIn, caller: Caller, admin: Devices_
    ) -> DeviceOut:
        """Change a device's name, bound user, site or caller id (``devices.write``)."""
        changes = DeviceChanges(
            display_name=_sent_not_null(body, "display_name"),
            user_id=_sent(body, "user_id"),
            site_id=_sent(body, "site_id"),
            caller_id_number=_sent(body, "caller_id_number"),
        )
        with _from("body"):
            device = await admin.update(tenant, actor_of(caller), device_id, changes)
        return device_out(device, admin.domain(tenant))

    @devices.post("/{device_id}/secret", dependencies=write_devices)
    async def rotate_secret(
        tenant: str, device_id: DeviceId, body: SecretIn, caller: Caller, admin: Devices_
    ) -> DeviceSecretOut:
        """Rotate the device's password (``devices.write``); a generated one is shown once."""
        with _from("body"):
            device, password = await admin.rotate_secret(
                tenant, actor_of(caller), device_id, body.password
            )
        out = device_out(device, admin.domain(tenant))
        return DeviceSecretOut(**out.model_dump(), password=password)

    @devices.put("/{device_id}/user", dependencies=write_devices)
    async def bind_device(
        tenant: str, device_id: DeviceId, body: BindIn, caller: Caller, admin: Devices_
    ) -> DeviceOut:
        """Bind the device to a user of the tenant (``devices.write``)."""
        with _from("body"):
            device = await admin.bind(tenant, actor_of(caller), device_id, body.user_id)
        return device_out(device, admin.domain(tenant))

    @devices.delete("/{device_id}/user", dependencies=write_devices)
    async def unbind_device(
        tenant: str, device_id: DeviceId, caller: Caller, admin: Devices_
    ) -> DeviceOut:
        """Unbind the device from its user (``devices.write``)."""
        device = await admin.bind(tenant, actor_of(caller), device_id, None)
        return device_out(device, admin.domain(tenant))

    @devices.delete("/{device_id}", status_code=204, dependencies=write_devices)
    async def delete_device(
        tenant: str, device_id: DeviceId, caller: Caller, admin: Devices_
    ) -> Response:
        """Delete a device (``devices.write``)."""
        await admin.delete(tenant, actor_of(caller), device_id)
        return Response(status_code=204)

    # -- API keys -------------------------------------------------------------------------
    keys = APIRouter(prefix="/v1/t/{tenant}/api-keys", tags=["tenant: API keys"], responses=ERRORS)
    read_keys, write_keys = guard(_P.API_KEYS_READ), guard(_P.API_KEYS_WRITE)

    @keys.post("", status_code=201, dependencies=write_keys)
    async def create_key(
        tenant: str, body: ApiKeyIn, caller: Caller, admin: Keys_
    ) -> ApiKeyCreatedOut:
        """Create a key with roles you may grant (``api_keys.write``); the key is shown once."""
        with _from("body"):
            key, text = await admin.create(
                tenant,
                actor_of(caller),
                name=body.name,
                roles=body.roles,
                expires_at=body.expires_at,
            )
        return ApiKeyCreatedOut(**key_out(key, ctx.clock()).model_dump(), key=text)

    @keys.get("", dependencies=read_keys)
    async def list_keys(
        tenant: str, admin: Keys_, limit: Limit = 50, after: After = None
    ) -> PageOut[ApiKeyOut]:
        """List keys (``api_keys.read``): prefix and status, never the secret."""
        with _from("query"):
            page = await admin.find(tenant, ListQuery(limit=limit, after=after))
        now = ctx.clock()
        return PageOut(items=[key_out(k, now) for k in page.items], next=page.next)

    @keys.get("/{key_id}", dependencies=read_keys)
    async def get_key(tenant: str, key_id: KeyId, admin: Keys_) -> ApiKeyOut:
        """A key (``api_keys.read``)."""
        return key_out(await admin.get(tenant, key_id), ctx.clock())

    @keys.post("/{key_id}/revoke", dependencies=write_keys)
    async def revoke_key(tenant: str, key_id: KeyId, caller: Caller, admin: Keys_) -> ApiKeyOut:
        """Revoke a key (``api_keys.write``; idempotent)."""
        return key_out(await admin.revoke(tenant, actor_of(caller), key_id), ctx.clock())

    @keys.delete("/{key_id}", status_code=204, dependencies=write_keys)
    async def delete_key(tenant: str, key_id: KeyId, caller: Caller, admin: Keys_) -> Response:
        """Delete a key (``api_keys.write``)."""
        await admin.delete(tenant, actor_of(caller), key_id)
        return Response(status_code=204)

    # -- calendars ------------------------------------------------------------------------
    calendars = APIRouter(
        prefix="/v1/t/{tenant}/calendars", tags=["tenant: calendars"], responses=ERRORS
    )
    read_cals, write_cals = guard(_P.CALENDARS_READ), guard(_P.CALENDARS_WRITE)

    @calendars.post("", status_code=201, dependencies=write_cals)
    async def create_calendar(
        tenant: str, body: CalendarIn, caller: Caller, info: Tenant, admin: Calendars_
    ) -> CalendarOut:
        """Create a calendar (``calendars.write``); time zone: the tenant's unless given."""
        with _from("body"):
            calendar = await admin.create(
                tenant, actor_of(caller), calendar_spec(body), info.time_zone
            )
        return calendar_out(calendar)

    @calendars.get("", dependencies=read_cals)
    async def list_calendars(
        tenant: str, admin: Calendars_, limit: Limit = 50, after: After = None
    ) -> PageOut[CalendarOut]:
        """List calendars (``calendars.read``)."""
        with _from("query"):
            page = await admin.find(tenant, ListQuery(limit=limit, after=after))
        return PageOut(items=[calendar_out(c) for c in page.items], next=page.next)

    @calendars.get("/{calendar_id}", dependencies=read_cals)
    async def get_calendar(
        tenant: str, calendar_id: CalendarId, admin: Calendars_, response: Response
    ) -> CalendarOut:
        """A calendar (``calendars.read``)."""
        calendar = await admin.get(tenant, calendar_id)
        _etag(response, calendar.version)
        return calendar_out(calendar)

    @calendars.put("/{calendar_id}", dependencies=write_cals)
    async def replace_calendar(
        tenant: str,
        calendar_id: CalendarId,
        body: CalendarIn,
        caller: Caller,
        info: Tenant,
        admin: Calendars_,
        response: Response,
        if_match: IfMatch = None,
    ) -> CalendarOut:
        """Replace a calendar as a whole (``calendars.write``; ``If-Match`` optional)."""
        version = parse_version(if_match)
        with _from("body"):
            calendar = await admin.replace(
                tenant, actor_of(caller), calendar_id, version, calendar_spec(body), info.time_zone
            )
        _etag(response, calendar.version)
        return calendar_out(calendar)

    @calendars.delete("/{calendar_id}", status_code=204, dependencies=write_cals)
    async def delete_calendar(
        tenant: str, calendar_id: CalendarId, caller: Caller, admin: Calendars_
    ) -> Response:
        """Delete a calendar (``calendars.write``)."""
        await admin.delete(tenant, actor_of(caller), calendar_id)
        return Response(status_code=204)

    @calendars.get("/{calendar_id}/open", dependencies=read_cals)
    async def calendar_open(
        tenant: str,
        calendar_id: CalendarId,
        admin: Calendars_,
        at: Annotated[
            datetime | None,
            Query(description="the instant, ISO 8601 with a UTC offset; default: now"),
        ] = None,
    ) -> OpenOut:
        """Is the calendar open at ``at``, why, and when does that change (``calendars.read``)."""
        moment = at or ctx.clock()
        with _from("query"):
            calendar, state = await admin.evaluate(tenant, calendar_id, moment)
        return OpenOut(
            open=state.open,
            reason=state.reason,
            next_change=state.next_change,
            at=moment,
            time_zone=calendar.time_zone,
        )

    return [users, roles, groups, devices, keys, calendars]
