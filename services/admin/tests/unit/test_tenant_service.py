"""The tenant use cases on in-memory ports: writes, announcements, audit, and their rules."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

import pytest

from callmesh.admin.domain.apikeys import ApiKey, hash_secret, parse_key_string
from callmesh.admin.domain.audit import AuditEntry
from callmesh.admin.domain.calendars import Calendar
from callmesh.admin.domain.common import Actor, ActorKind, Page
from callmesh.admin.domain.devices import Device, DeviceKind, a1_hash
from callmesh.admin.domain.groups import Group
from callmesh.admin.domain.identity import LockoutPolicy, PasswordPolicy
from callmesh.admin.domain.roles import RoleOverride
from callmesh.admin.domain.users import User, VersionRequired
from callmesh.admin.ports.audit import AuditQuery
from callmesh.admin.ports.tenant import DeviceQuery, ListQuery, UserQuery
from callmesh.admin.service.audit import Auditor
from callmesh.admin.service.tenant import (
    ApiKeyAdmin,
    CalendarAdmin,
    CalendarSpec,
    DeviceAdmin,
    GroupAdmin,
    RoleAdmin,
    UserAdmin,
    UserChanges,
)
from callmesh.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unavailable
from callmesh.core.permissions import Role

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
OPERATOR = Actor(ActorKind.OPERATOR, "op-1")
ADMIN = Actor(ActorKind.USER, "usr_admin", "acme", ("tenant_admin",))
SUPERVISOR = Actor(ActorKind.USER, "usr_sup", "acme", ("supervisor",))
STRONG = "Correct-Horse-42"

X = TypeVar("X")


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Table(Generic[X]):
    """Objects by (tenant, id), with an optional unique attribute per tenant."""

    def __init__(self, ident: str, unique: str | None = None) -> None:
        self.rows: dict[tuple[str, str], X] = {}
        self._ident = ident
        self._unique = unique

    def key(self, thing: X) -> tuple[str, str]:
        return getattr(thing, "tenant_id"), getattr(thing, self._ident)  # noqa: B009

    def insert(self, thing: X) -> None:
        tenant, ident = self.key(thing)
        self._check_unique(thing, ident)
        self.rows[(tenant, ident)] = thing

    def _check_unique(self, thing: X, ident: str) -> None:
        if self._unique is None:
            return
        tenant = getattr(thing, "tenant_id")  # noqa: B009
        value = getattr(thing, self._unique)
        for (t, i), other in self.rows.items():
            if t == tenant and i != ident and getattr(other, self._unique) == value:
                raise Conflict(f"{self._unique} already taken", field=self._unique)

    def replace(self, thing: X, expected: int) -> bool:
        key = self.key(thing)
        current = self.rows.get(key)
        if current is None or getattr(current, "version") != expected:  # noqa: B009
            return False
        self._check_unique(thing, key[1])
        self.rows[key] = thing
        return True

    def of(self, tenant: str) -> list[X]:
        return [v for (t, i), v in sorted(self.rows.items()) if t == tenant]

    def page(self, tenant: str, query: ListQuery, items: list[X]) -> Page[X]:
        ordered = [x for x in items if query.after is None or self.key(x)[1] > query.after]
        chunk = ordered[: query.limit]
        more = len(ordered) > query.limit
        return Page(chunk, self.key(chunk[-1])[1] if more else None)


class MemoryUsers:
    def __init__(self) -> None:
        self.table: Table[User] = Table("user_id", "username")

    async def insert(self, user: User) -> None:
        self.table.insert(user)

    async def get(self, tenant_id: str, user_id: str) -> User | None:
        return self.table.rows.get((tenant_id, user_id))

    async def existing(self, tenant_id: str, user_ids: Collection[str]) -> set[str]:
        return {i for i in user_ids if (tenant_id, i) in self.table.rows}

    async def find(self, tenant_id: str, query: UserQuery) -> Page[User]:
        items = [
            u
            for u in self.table.of(tenant_id)
            if (query.role is None or query.role in u.roles)
            and (query.group is None or query.group in u.groups)
            and (query.disabled is None or u.disabled == query.disabled)
        ]
        return self.table.page(tenant_id, query, items)

    async def replace(self, user: User, expected_version: int) -> bool:
        return self.table.replace(user, expected_version)

    async def delete(self, tenant_id: str, user_id: str, expected_version: int) -> bool:
        current = self.table.rows.get((tenant_id, user_id))
        if current is None or current.version != expected_version:
            return False
        del self.table.rows[(tenant_id, user_id)]
        return True

    async def count_active_admins(self, tenant_id: str, excluding: str) -> int:
        return sum(1 for u in self.table.of(tenant_id) if u.active_admin and u.user_id != excluding)

    async def remove_group(self, tenant_id: str, group_id: str, now: datetime) -> int:
        changed = 0
        for user in self.table.of(tenant_id):
            if group_id in user.groups:
                groups = tuple(g for g in user.groups if g != group_id)
                self.table.rows[self.table.key(user)] = user.changed(now, groups=groups)
                changed += 1
        return changed


class MemoryGroups:
    def __init__(self) -> None:
        self.table: Table[Group] = Table("group_id", "name")

    async def insert(self, group: Group) -> None:
        self.table.insert(group)

    async def get(self, tenant_id: str, group_id: str) -> Group | None:
        return self.table.rows.get((tenant_id, group_id))

    async def existing(self, tenant_id: str, group_ids: Collection[str]) -> set[str]:
        return {i for i in group_ids if (tenant_id, i) in self.table.rows}

    async def find(self, tenant_id: str, query: ListQuery) -> Page[Group]:
        return self.table.page(tenant_id, query, self.table.of(tenant_id))

    async def replace(self, group: Group, expected_version: int) -> bool:
        return self.table.replace(group, expected_version)

    async def delete(self, tenant_id: str, group_id: str) -> bool:
        return self.table.rows.pop((tenant_id, group_id), None) is not None

    async def remove_supervisor(self, tenant_id: str, user_id: str, now: datetime) -> int:
        changed = 0
        for group in self.table.of(tenant_id):
            if user_id in group.supervisor_ids:
                kept = tuple(s for s in group.supervisor_ids if s != user_id)
                self.table.rows[self.table.key(group)] = group.changed(now, supervisor_ids=kept)
                changed += 1
        return changed


class MemoryRoles:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, Role], RoleOverride] = {}

    async def overrides(self, tenant_id: str) -> dict[Role, RoleOverride]:
        return {r: o for (t, r), o in self.rows.items() if t == tenant_id}

    async def put(self, override: RoleOverride) -> None:
        self.rows[(override.tenant_id, override.role)] = override

    async def delete(self, tenant_id: str, role: Role) -> bool:
        return self.rows.pop((tenant_id, role), None) is not None


class MemoryDevices:
    def __init__(self) -> None:
        self.table: Table[Device] = Table("device_id", "username")

    async def insert(self, device: Device) -> None:
        self.table.insert(device)

    async def get(self, tenant_id: str, device_id: str) -> Device | None:
        return self.table.rows.get((tenant_id, device_id))

    async def by_username(self, tenant_id: str, username: str) -> Device | None:
        return next((d for d in self.table.of(tenant_id) if d.username == username), None)

    async def find(self, tenant_id: str, query: DeviceQuery) -> Page[Device]:
        items = [
            d
            for d in self.table.of(tenant_id)
            if (query.kind is None or d.kind is query.kind)
            and (query.user_id is None or d.user_id == query.user_id)
        ]
        return self.table.page(tenant_id, query, items)

    async def replace(self, device: Device, expected_version: int) -> bool:
        return self.table.replace(device, expected_version)

    async def delete(self, tenant_id: str, device_id: str) -> bool:
        return self.table.rows.pop((tenant_id, device_id), None) is not None

    async def unbind_user(self, tenant_id: str, user_id: str, now: datetime) -> list[str]:
        names = []
        for device in self.table.of(tenant_id):
            if device.user_id == user_id:
                self.table.rows[self.table.key(device)] = device.changed(now, user_id=None)
                names.append(device.username)
        return names


class MemoryKeys:
    def __init__(self) -> None:
        self.table: Table[ApiKey] = Table("key_id")

    async def insert(self, key: ApiKey) -> None:
        self.table.insert(key)

    async def get(self, tenant_id: str, key_id: str) -> ApiKey | None:
        return self.table.rows.get((tenant_id, key_id))

    async def find(self, tenant_id: str, query: ListQuery) -> Page[ApiKey]:
        return self.table.page(tenant_id, query, self.table.of(tenant_id))

    async def revoke(self, tenant_id: str, key_id: str, now: datetime) -> ApiKey | None:
        key = self.table.rows.get((tenant_id, key_id))
        if key is None:
            return None
        self.table.rows[(tenant_id, key_id)] = key.revoked(now)
        return self.table.rows[(tenant_id, key_id)]

    async def delete(self, tenant_id: str, key_id: str) -> bool:
        return self.table.rows.pop((tenant_id, key_id), None) is not None


class MemoryCalendars:
    def __init__(self) -> None:
        self.table: Table[Calendar] = Table("calendar_id", "name")

    async def insert(self, calendar: Calendar) -> None:
        self.table.insert(calendar)

    async def get(self, tenant_id: str, calendar_id: str) -> Calendar | None:
        return self.table.rows.get((tenant_id, calendar_id))

    async def find(self, tenant_id: str, query: ListQuery) -> Page[Calendar]:
        return self.table.page(tenant_id, query, self.table.of(tenant_id))

    async def replace(self, calendar: Calendar, expected_version: int) -> bool:
        return self.table.replace(calendar, expected_version)

    async def delete(self, tenant_id: str, calendar_id: str) -> bool:
        return self.table.rows.pop((tenant_id, calendar_id), None) is not None


@dataclass
class MemoryNotifier:
    directory: list[tuple[str, list[str]]] = field(default_factory=list)
    calendars: list[tuple[str, list[str]]] = field(default_factory=list)
    broken: bool = False

    async def directory_changed(self, tenant_id: str, usernames: Sequence[str]) -> None:
        if self.broken:
            raise Unavailable("bus down")
        self.directory.append((tenant_id, list(usernames)))

    async def calendars_changed(self, tenant_id: str, calendar_ids: Sequence[str]) -> None:
        if self.broken:
            raise Unavailable("bus down")
        self.calendars.append((tenant_id, list(calendar_ids)))


class PlainHasher:
    """Not a hash at all: enough to tell passwords apart in tests, instantly."""

    async def hash(self, password: str) -> str:
        return f"plain${password}"

    async def verify(self, password_hash: str, password: str) -> bool:
        return password_hash == f"plain${password}"


class MemoryAudit:
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    async def append(self, entry: AuditEntry) -> None:
        self.entries.append(entry)

    async def search(self, query: AuditQuery) -> Page[AuditEntry]:
        return Page(list(reversed(self.entries)))


class MemorySessions:
    """Records whose sessions the area ended."""

    def __init__(self) -> None:
        self.ended: list[tuple[str, str | None]] = []

    async def revoke_sessions(self, subject: str, tenant_id: str | None) -> int:
        self.ended.append((subject, tenant_id))
        return 1


@dataclass
class Area:
    users: UserAdmin
    groups: GroupAdmin
    roles: RoleAdmin
    devices: DeviceAdmin
    keys: ApiKeyAdmin
    calendars: CalendarAdmin
    user_table: MemoryUsers
    notifier: MemoryNotifier
    audit: MemoryAudit
    clock: Clock
    sessions: MemorySessions

    def actions(self) -> list[str]:
        return [e.action for e in self.audit.entries]


@pytest.fixture
def area() -> Area:
    clock = Clock()
    audit = MemoryAudit()
    auditor = Auditor(audit, clock)
    users, groups, devices = MemoryUsers(), MemoryGroups(), MemoryDevices()
    notifier = MemoryNotifier()
    sessions = MemorySessions()
    return Area(
        users=UserAdmin(
            users,
            groups,
            devices,
            PlainHasher(),
            auditor,
            notifier,
            clock,
            PasswordPolicy(),
            LockoutPolicy(max_failures=2),
            sessions,
        ),
        groups=GroupAdmin(groups, users, auditor, clock),
        roles=RoleAdmin(MemoryRoles(), auditor, clock),
        devices=DeviceAdmin(devices, users, auditor, notifier, clock, "sip.example.net"),
        keys=ApiKeyAdmin(MemoryKeys(), auditor, clock, sessions),
        calendars=CalendarAdmin(MemoryCalendars(), auditor, notifier, clock),
        user_table=users,
        notifier=notifier,
        audit=audit,
        clock=clock,
        sessions=sessions,
    )


# -- users


async def test_a_new_user_is_stored_with_a_hash_and_audited_without_it(area: Area) -> None:
    ann = await area.users.create(
        "acme", ADMIN, username="ann", roles=["agent", "qa"], password=STRONG
    )
    assert ann.password_hash == f"plain${STRONG}"
    assert ann.must_change_password
    assert ann.roles == ("agent", "qa")
    assert ann.display_name == "ann"
    entry = area.audit.entries[-1]
    assert entry.action == "user.create"
    assert entry.tenant_id == "acme"
    assert entry.after is not None
    assert entry.after["password_hash"] == "***"
    assert entry.actor == ADMIN


async def test_nothing_is_written_when_any_field_is_wrong(area: Area) -> None:
    bad_calls: list[tuple[dict[str, Any], str]] = [
        ({"username": "ann", "roles": ["agent", "pilot"]}, "roles[1]"),
        ({"username": "ann", "password": "weak"}, "password"),
        ({"username": "ann", "groups": ["grp_nope"]}, "groups[0]"),
        ({"username": "ann", "email": "nope"}, "email"),
        ({"username": "ANN"}, "username"),
    ]
    for kwargs, field_name in bad_calls:
        with pytest.raises(InvalidInput) as caught:
            await area.users.create("acme", ADMIN, **kwargs)
        assert caught.value.field == field_name
    assert area.user_table.table.rows == {}
    assert area.audit.entries == []


async def test_a_supervisor_with_users_write_cannot_mint_or_touch_an_admin(area: Area) -> None:
    admin = await area.users.create("acme", ADMIN, username="boss", roles=["tenant_admin"])
    with pytest.raises(Forbidden):
        await area.users.create("acme", SUPERVISOR, username="x", roles=["tenant_admin"])
    with pytest.raises(Forbidden):
        await area.users.set_password("acme", SUPERVISOR, admin.user_id, STRONG)
    agent = await area.users.create("acme", SUPERVISOR, username="agent1", roles=["supervisor"])
    assert agent.roles == ("supervisor",)


async def test_updates_need_the_version_they_were_made_from(area: Area) -> None:
    ann = await area.users.create("acme", ADMIN, username="ann", roles=["agent"])
    with pytest.raises(VersionRequired):
        await area.users.update("acme", ADMIN, ann.user_id, None, UserChanges(display_name="A"))
    area.clock.now += timedelta(seconds=1)
    changed = await area.users.update(
        "acme", ADMIN, ann.user_id, 1, UserChanges(display_name="Ann", email=None)
    )
    assert changed.version == 2
    assert changed.display_name == "Ann"
    assert area.audit.entries[-1].changes == ("display_name", "updated_at", "version")


async def test_two_admins_demoting_each_other_at_once_are_both_refused(area: Area) -> None:
    one = await area.users.create("acme", ADMIN, username="one", roles=["tenant_admin"])
    two = await area.users.create("acme", ADMIN, username="two", roles=["tenant_admin"])
    table = area.user_table.table
    # "two" was demoted behind our back after our check counted it: the recount catches it.
    real_count = area.user_table.count_active_admins
    calls = 0

    async def racing_count(tenant_id: str, excluding: str) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            count = await real_count(tenant_id, excluding)
            table.rows[("acme", two.user_id)] = two.changed(T0, roles=("agent",))
            return count
        return await real_count(tenant_id, excluding)

    area.user_table.count_active_admins = racing_count  # type: ignore[method-assign]
    with pytest.raises(Conflict, match="same time"):
        await area.users.update("acme", ADMIN, one.user_id, 1, UserChanges(roles=["agent"]))
    restored = table.rows[("acme", one.user_id)]
    assert restored.active_admin
    assert restored.version == 3


async def test_deleting_a_user_unbinds_its_devices_and_leaves_its_groups(area: Area) -> None:
    await area.users.create("acme", ADMIN, username="boss", roles=["tenant_admin"])
    ann = await area.users.create("acme", ADMIN, username="ann")
    group = await area.groups.create("acme", ADMIN, name="Sales", supervisor_ids=[ann.user_id])
    phone, _ = await area.devices.create(
        "acme", ADMIN, kind=DeviceKind.SIP, username="1001", user_id=ann.user_id
    )
    area.notifier.directory.clear()
    await area.users.delete("acme", ADMIN, ann.user_id)
    assert (await area.devices.get("acme", phone.device_id)).user_id is None
    assert (await area.groups.get("acme", group.group_id)).supervisor_ids == ()
    assert area.notifier.directory == [("acme", ["1001"])]
    with pytest.raises(NotFound):
        await area.users.get("acme", ann.user_id)


async def test_disabling_deleting_or_resetting_a_user_ends_its_sessions(area: Area) -> None:
    ann = await area.users.create("acme", ADMIN, username="ann", password=STRONG)
    bob = await area.users.create("acme", ADMIN, username="bob", password=STRONG)
    await area.users.set_disabled("acme", ADMIN, ann.user_id, True)
    await area.users.set_disabled("acme", ADMIN, ann.user_id, False)
    await area.users.set_password("acme", ADMIN, bob.user_id, "Another-Secret-77")
    await area.users.delete("acme", ADMIN, ann.user_id)
    assert area.sessions.ended == [
        (ann.user_id, "acme"),
        (bob.user_id, "acme"),
        (ann.user_id, "acme"),
    ], "enabling ends nothing; disabling, a reset and a deletion each end the sessions"


async def test_revoking_an_api_key_ends_the_tokens_exchanged_for_it(area: Area) -> None:
    key, _ = await area.keys.create("acme", ADMIN, name="crm", roles=["report_viewer"])
    await area.keys.revoke("acme", ADMIN, key.key_id)
    await area.keys.revoke("acme", ADMIN, key.key_id)
    assert area.sessions.ended == [(key.key_id, "acme")], "once: revoking is idempotent"


# -- groups and roles


async def test_deleting_a_group_takes_it_out_of_every_member(area: Area) -> None:
    group = await area.groups.create("acme", ADMIN, name="Sales")
    other = await area.groups.create("acme", ADMIN, name="Support")
    ann = await area.users.create(
        "acme", ADMIN, username="ann", groups=[group.group_id, other.group_id]
    )
    with pytest.raises(Conflict):
        await area.groups.create("acme", ADMIN, name="Sales")
    await area.groups.create("globex", ADMIN, name="Sales")  # another tenant's name space
    await area.groups.delete("acme", ADMIN, group.group_id)
    assert (await area.users.get("acme", ann.user_id)).groups == (other.group_id,)
    assert area.audit.entries[-1].detail == "removed from 1 members"


async def test_role_overrides_replace_and_reset_a_roles_permissions(area: Area) -> None:
    view = await area.roles.override("acme", ADMIN, "qa", ["calls.read"])
    assert view.overridden
    assert {p.value for p in view.permissions} == {"calls.read"}
    assert not next(v for v in await area.roles.roles("globex") if v.role is Role.QA).overridden
    reset = await area.roles.reset("acme", ADMIN, "qa")
    assert not reset.overridden
    assert area.actions() == ["role.update", "role.reset"]
    await area.roles.reset("acme", ADMIN, "qa")  # nothing to reset: nothing recorded
    assert area.actions() == ["role.update", "role.reset"]


# -- devices, keys, calendars


async def test_devices_announce_every_change_to_the_directory(area: Area) -> None:
    phone, password = await area.devices.create("acme", ADMIN, kind=DeviceKind.SIP, username="1001")
    assert password is not None
    assert phone.a1_hash == a1_hash("1001", "acme.sip.example.net", password)
    _, none = await area.devices.rotate_secret("acme", ADMIN, phone.device_id, "given-secret-1")
    assert none is None
    await area.devices.delete("acme", ADMIN, phone.device_id)
    assert area.notifier.directory == [("acme", ["1001"])] * 3
    assert area.actions() == ["device.create", "device.rotate_secret", "device.delete"]


async def test_a_change_stands_when_its_announcement_cannot_be_published(area: Area) -> None:
    area.notifier.broken = True
    phone, _ = await area.devices.create("acme", ADMIN, kind=DeviceKind.SIP, username="1001")
    assert await area.devices.get("acme", phone.device_id) == phone
    assert area.actions() == ["device.create"]


async def test_an_api_key_keeps_only_the_hash_of_its_secret(area: Area) -> None:
    key, text = await area.keys.create("acme", ADMIN, name="CRM", roles=["report_viewer"])
    parsed = parse_key_string(text)
    assert parsed is not None
    assert parsed[:2] == ("acme", key.key_id)
    assert key.secret_hash == hash_secret(parsed[2])
    assert parsed[2] not in str(key.record())
    assert key.created_by == "usr_admin"
    area.clock.now += timedelta(minutes=1)
    revoked = await area.keys.revoke("acme", ADMIN, key.key_id)
    assert revoked.revoked_at == area.clock.now
    again = await area.keys.revoke("acme", ADMIN, key.key_id)
    assert again.revoked_at == revoked.revoked_at
    assert area.actions() == ["api_key.create", "api_key.revoke"]
    with pytest.raises(InvalidInput, match="at least one role"):
        await area.keys.create("acme", ADMIN, name="none", roles=[])


async def test_calendars_default_to_the_tenants_zone_and_are_announced(area: Area) -> None:
    spec = CalendarSpec(name="Main", weekly={"mon": [["09:00", "18:00"]]})
    calendar = await area.calendars.create("acme", ADMIN, spec, "Asia/Taipei")
    assert calendar.time_zone == "Asia/Taipei"
    replaced = await area.calendars.replace(
        "acme", ADMIN, calendar.calendar_id, 1, replace(spec, time_zone="UTC"), "Asia/Taipei"
    )
    assert replaced.time_zone == "UTC"
    assert replaced.version == 2
    _, state = await area.calendars.evaluate(
        "acme", calendar.calendar_id, datetime(2026, 11, 2, 10, tzinfo=UTC)
    )
    assert state.open
    await area.calendars.delete("acme", ADMIN, calendar.calendar_id)
    assert area.notifier.calendars == [("acme", [calendar.calendar_id])] * 3
    with pytest.raises(NotFound):
        await area.calendars.evaluate("acme", calendar.calendar_id)


async def test_lists_refuse_page_sizes_out_of_range(area: Area) -> None:
    with pytest.raises(InvalidInput, match="limit"):
        await area.users.find("acme", UserQuery(limit=0))
    with pytest.raises(InvalidInput) as caught:
        await area.users.find("acme", UserQuery(role="pilot"))
    assert caught.value.field == "role"
