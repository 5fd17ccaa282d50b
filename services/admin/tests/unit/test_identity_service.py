"""Identity use cases on in-memory ports: login, refresh and reuse, logout, API keys, passwords,
operators and the last-operator rule, at the speed of a dict."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from callmesh.admin.adapters.keys import ClearVault
from callmesh.admin.domain.audit import AuditEntry
from callmesh.admin.domain.common import Actor, Page
from callmesh.admin.domain.identity import LoginState
from callmesh.admin.domain.keys import SigningKey
from callmesh.admin.domain.operators import Operator, VersionMismatch
from callmesh.admin.domain.tokens import (
    Account,
    AccountKind,
    ApiKeyRecord,
    Session,
    format_api_key,
    hash_secret,
    new_secret,
)
from callmesh.admin.ports.audit import AuditQuery
from callmesh.admin.service.audit import Auditor
from callmesh.admin.service.identity import (
    AccountLocked,
    Authenticator,
    IdentityConfig,
    OperatorPatch,
    Operators,
    SigningKeys,
    bootstrap_operator,
)
from callmesh.core.auth import Principal, TokenVerifier
from callmesh.core.errors import Conflict, Forbidden, InvalidInput, Unauthenticated
from callmesh.core.tenancy import TenantInfo, TenantStatus

PASSWORD = "Correct-Horse-42"
CONFIG = IdentityConfig(issuer="callmesh", audience="callmesh")


class Clock:
    """A clock the test moves (starting now: tokens it stamps verify in real time)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Hasher:
    """A password "hash" that is the password itself, tagged; counts verifications."""

    dummy_hash = "plain$\x00no-such-password"

    def __init__(self) -> None:
        self.verified = 0
        self.weak: set[str] = set()

    async def hash(self, password: str) -> str:
        return f"plain${password}"

    async def verify(self, password_hash: str, password: str) -> bool:
        self.verified += 1
        return password_hash.removeprefix("weak$") == f"plain${password}".removeprefix("weak$")

    def needs_rehash(self, password_hash: str) -> bool:
        return password_hash.startswith("weak$")


class KeyStore:
    """``SigningKeyStore`` in a dict."""

    def __init__(self) -> None:
        self.keys: dict[str, SigningKey] = {}

    async def all(self) -> list[SigningKey]:
        return list(self.keys.values())

    async def insert(self, key: SigningKey) -> None:
        if any(k.generation == key.generation for k in self.keys.values()):
            raise Conflict("generation taken", reason="generation_taken")
        self.keys[key.kid] = key

    async def delete(self, kid: str) -> bool:
        return self.keys.pop(kid, None) is not None


class Accounts:
    """``AccountStore`` in dicts: users by (tenant, id), operators by id, role overrides."""

    def __init__(self) -> None:
        self.users: dict[tuple[str | None, str], Account] = {}
        self.overrides: dict[str, dict[str, list[str]]] = {}
        self.last_login: dict[str, datetime] = {}

    def add(self, account: Account) -> Account:
        self.users[(account.tenant_id, account.account_id)] = account
        return account

    async def find(self, tenant_id: str | None, username: str) -> Account | None:
        for (tenant, _), found in self.users.items():
            if tenant == tenant_id and found.username == username:
                return found
        return None

    async def get(
        self, kind: AccountKind, tenant_id: str | None, account_id: str
    ) -> Account | None:
        found = self.users.get((tenant_id, account_id))
        return found if found is not None and found.kind is kind else None

    async def record_login(
        self, account: Account, state: LoginState, now: datetime, *, succeeded: bool
    ) -> bool:
        key = (account.tenant_id, account.account_id)
        stored = self.users.get(key)
        if stored is None or stored.login != account.login:
            return False
        self.users[key] = replace(stored, login=state)
        if succeeded:
            self.last_login[account.account_id] = now
        return True

    async def store_password_hash(
        self, account: Account, password_hash: str, now: datetime, *, rehash: bool
    ) -> bool:
        key = (account.tenant_id, account.account_id)
        stored = self.users[key]
        if not rehash and stored.version != account.version:
            return False
        version = stored.version if rehash else stored.version + 1
        self.users[key] = replace(stored, password_hash=password_hash, version=version)
        return True

    async def role_overrides(self, tenant_id: str) -> dict[str, list[str]]:
        return self.overrides.get(tenant_id, {})


class ApiKeys:
    """``ApiKeyStore`` in a dict."""

    def __init__(self) -> None:
        self.keys: dict[tuple[str, str], ApiKeyRecord] = {}
        self.touches = 0

    async def get(self, tenant_id: str, key_id: str) -> ApiKeyRecord | None:
        return self.keys.get((tenant_id, key_id))

    async def touch(self, tenant_id: str, key_id: str, now: datetime) -> None:
        self.touches += 1
        self.keys[(tenant_id, key_id)] = replace(self.keys[(tenant_id, key_id)], last_used_at=now)


class Sessions:
    """``SessionStore`` in a dict."""

    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        # Set to make the next rotation lose a race (another request rotated it first).
        self.lose_next_rotation = False

    async def insert(self, session: Session) -> None:
        self.sessions[session.session_id] = session

    async def get(self, session_id: str) -> Session | None:
        return self.sessions.get(session_id)

    async def by_access_jti(self, jti: str) -> Session | None:
        return next((s for s in self.sessions.values() if s.access_jti == jti), None)

    async def mark_rotated(self, session_id: str, now: datetime) -> bool:
        found = self.sessions[session_id]
        if self.lose_next_rotation or found.rotated_at or found.revoked_at:
            self.lose_next_rotation = False
            return False
        self.sessions[session_id] = replace(found, rotated_at=now)
        return True

    async def revoke_family(self, family: str, now: datetime) -> list[Session]:
        members = [s for s in self.sessions.values() if s.family == family]
        for member in members:
            if member.revoked_at is None:
                self.sessions[member.session_id] = replace(member, revoked_at=now)
        return members

    async def families(self, subject: str, tenant_id: str | None) -> list[str]:
        return sorted(
            {
                s.family
                for s in self.sessions.values()
                if (s.subject, s.tenant_id) == (subject, tenant_id) and s.revoked_at is None
            }
        )

    async def purge(self, before: datetime) -> int:
        dead = [k for k, s in self.sessions.items() if s.expires_at < before]
        for k in dead:
            del self.sessions[k]
        return len(dead)


class Revocations:
    """``Revoker``: token ids revoked."""

    def __init__(self) -> None:
        self.revoked: set[str] = set()

    async def revoke(self, jti: str, exp: datetime | float) -> None:
        self.revoked.add(jti)


class Tenants:
    """``TenantDirectory`` in a dict."""

    def __init__(self, **statuses: TenantStatus) -> None:
        self.statuses = dict(statuses)

    def info(self, tenant_id: str) -> TenantInfo | None:
        status = self.statuses.get(tenant_id)
        return TenantInfo(tenant_id, status) if status is not None else None


class AuditLog:
    """``AuditLog`` in a list."""

    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    async def append(self, entry: AuditEntry) -> None:
        self.entries.append(entry)

    async def search(self, query: AuditQuery) -> Page[AuditEntry]:
        return Page(list(reversed(self.entries)))

    def actions(self) -> list[str]:
        return [e.action for e in self.entries]


class OperatorRepo:
    """``OperatorRepository`` in a dict; ``meanwhile`` runs between a write and its re-check."""

    def __init__(self) -> None:
        self.operators: dict[str, Operator] = {}
        self.meanwhile: list[Operator] = []

    async def page(self, limit: int, after: str | None) -> Page[Operator]:
        ordered = sorted(self.operators.values(), key=lambda o: o.operator_id)
        items = [o for o in ordered if after is None or o.operator_id > after][:limit]
        return Page(items)

    async def get(self, operator_id: str) -> Operator | None:
        return self.operators.get(operator_id)

    async def insert(self, operator: Operator) -> None:
        if any(o.username == operator.username for o in self.operators.values()):
            raise Conflict("taken", reason="username_taken")
        self.operators[operator.operator_id] = operator

    async def replace(self, operator: Operator, expected_version: int) -> bool:
        stored = self.operators.get(operator.operator_id)
        if stored is None or stored.version != expected_version:
            return False
        self.operators[operator.operator_id] = operator
        self._race()
        return True

    async def delete(self, operator_id: str, expected_version: int) -> bool:
        stored = self.operators.get(operator_id)
        if stored is None or stored.version != expected_version:
            return False
        del self.operators[operator_id]
        self._race()
        return True

    async def restore(self, operator: Operator) -> None:
        self.operators[operator.operator_id] = operator

    async def count_active(self) -> int:
        return sum(o.active for o in self.operators.values())

    async def exists(self) -> bool:
        return bool(self.operators)

    def _race(self) -> None:
        # Another operator's change lands right after ours.
        while self.meanwhile:
            other = self.meanwhile.pop()
            self.operators[other.operator_id] = other


@dataclass
class World:
    """The use cases on in-memory ports."""

    clock: Clock = field(default_factory=Clock)
    hasher: Hasher = field(default_factory=Hasher)
    accounts: Accounts = field(default_factory=Accounts)
    api_keys: ApiKeys = field(default_factory=ApiKeys)
    sessions: Sessions = field(default_factory=Sessions)
    revocations: Revocations = field(default_factory=Revocations)
    tenants: Tenants = field(
        default_factory=lambda: Tenants(acme=TenantStatus.ACTIVE, globex=TenantStatus.ACTIVE)
    )
    audit: AuditLog = field(default_factory=AuditLog)
    operator_repo: OperatorRepo = field(default_factory=OperatorRepo)

    def __post_init__(self) -> None:
        auditor = Auditor(self.audit, self.clock)
        self.keys = SigningKeys(KeyStore(), ClearVault(), auditor, self.clock, CONFIG)
        self.auth = Authenticator(
            accounts=self.accounts,
            api_keys=self.api_keys,
            sessions=self.sessions,
            keys=self.keys,
            hasher=self.hasher,
            revoker=self.revocations,
            tenants=self.tenants,
            auditor=auditor,
            clock=self.clock,
            config=CONFIG,
        )
        self.operators = Operators(
            self.operator_repo,
            self.hasher,
            auditor,
            self.clock,
            CONFIG.passwords,
            revoke_sessions=self.auth.revoke_sessions,
        )
        self.verifier = TokenVerifier(self.keys, issuer="callmesh", audience="callmesh")

    def user(self, username: str = "ann", tenant_id: str = "acme", **fields: object) -> Account:
        values: dict[str, object] = {
            "kind": AccountKind.USER,
            "account_id": f"usr_{tenant_id}_{username}",
            "tenant_id": tenant_id,
            "username": username,
            "display_name": username.title(),
            "roles": ("agent",),
            "password_hash": f"plain${PASSWORD}",
        }
        values.update(fields)
        return self.accounts.add(Account(**values))  # type: ignore[arg-type]

    async def principal(self, token: str) -> Principal:
        principal = await self.verifier.verify(token)
        if principal.token_id in self.revocations.revoked:
            raise Unauthenticated("revoked", reason="revoked")
        return principal


@pytest.fixture
async def world() -> World:
    instance = World()
    await instance.keys.start()
    return instance


# ---------------------------------------------------------------------------------------------
# Login


async def test_a_login_token_carries_the_roles_and_the_tenants_permission_sets(
    world: World,
) -> None:
    ann = world.user(roles=("agent", "report_viewer", "no_such_role"))
    world.accounts.overrides["acme"] = {"agent": ["desk.use"]}
    grant = await world.auth.login("acme", "ann", PASSWORD)
    principal = await world.principal(grant.access_token)
    assert (principal.subject, principal.tenant_id) == (ann.account_id, "acme")
    assert principal.roles == {"agent", "report_viewer"}  # an unknown stored role is dropped
    assert principal.permissions == {"desk.use", "reports.read", "calls.read"}
    assert grant.expires_in == 900
    assert world.accounts.last_login[ann.account_id] == world.clock()
    assert world.audit.actions() == ["signing_key.create", "auth.login"]


async def test_every_refused_login_costs_one_password_check_and_says_the_same(
    world: World,
) -> None:
    world.user()
    world.user("dan", disabled=True)
    world.tenants.statuses["gone"] = TenantStatus.DELETED
    world.user(tenant_id="gone")
    attempts = [
        ("acme", "ann", "Wrong-Password-1"),
        ("acme", "nobody", PASSWORD),
        ("nosuch", "ann", PASSWORD),
        ("gone", "ann", PASSWORD),
        ("acme", "dan", PASSWORD),
        ("node", "ann", PASSWORD),  # a reserved name, never a tenant
        (None, "ann", PASSWORD),
    ]
    for tenant, username, password in attempts:
        before = world.hasher.verified
        with pytest.raises(Unauthenticated) as refused:
            await world.auth.login(tenant, username, password)
        assert refused.value.to_dict() == {
            "code": "unauthenticated",
            "message": "invalid credentials",
            "details": {"reason": "invalid_credentials"},
        }
        assert world.hasher.verified == before + 1


async def test_a_suspended_tenants_user_logs_in_to_read(world: World) -> None:
    world.user()
    world.tenants.statuses["acme"] = TenantStatus.SUSPENDED
    assert (await world.auth.login("acme", "ann", PASSWORD)).access_token


async def test_a_lockout_is_told_only_with_the_right_password_and_lifts_after_the_period(
    world: World,
) -> None:
    ann = world.user()
    for _ in range(CONFIG.lockout.max_failures):
        with pytest.raises(Unauthenticated):
            await world.auth.login("acme", "ann", "Wrong-Password-1")
    with pytest.raises(AccountLocked) as locked:
        await world.auth.login("acme", "ann", PASSWORD)
    assert locked.value.details["retry_after_s"] == CONFIG.lockout.lockout.total_seconds()
    assert locked.value.status == 401
    world.clock.advance(seconds=CONFIG.lockout.lockout.total_seconds())
    await world.auth.login("acme", "ann", PASSWORD)
    assert world.audit.actions().count("user.lock") == 1
    assert world.accounts.users[("acme", ann.account_id)].login == LoginState()


async def test_a_hash_with_weak_parameters_is_replaced_at_login(world: World) -> None:
    ann = world.user(password_hash=f"weak$plain${PASSWORD}")
    await world.auth.login("acme", "ann", PASSWORD)
    assert world.accounts.users[("acme", ann.account_id)].password_hash == f"plain${PASSWORD}"


async def test_an_operator_logs_in_without_a_tenant_and_gets_an_operator_token(
    world: World,
) -> None:
    await bootstrap_operator(world.operators, username="root", password="Operator-Pass-99")
    [root] = world.operator_repo.operators.values()
    world.accounts.add(root.account())
    principal = await world.principal(
        (await world.auth.login(None, "root", "Operator-Pass-99")).access_token
    )
    assert principal.is_operator
    assert principal.tenant_id is None


# ---------------------------------------------------------------------------------------------
# Refresh and logout


async def test_a_refresh_token_is_used_once_and_its_reuse_revokes_the_family(
    world: World,
) -> None:
    world.user()
    first = await world.auth.login("acme", "ann", PASSWORD)
    assert first.refresh_token is not None
    second = await world.auth.refresh(first.refresh_token)
    assert second.refresh_token is not None
    third = await world.auth.refresh(second.refresh_token)

    with pytest.raises(Unauthenticated, match="invalid refresh token"):
        await world.auth.refresh(first.refresh_token)
    assert third.refresh_token is not None
    with pytest.raises(Unauthenticated):
        await world.auth.refresh(third.refresh_token)
    # Every access token of the family is revoked (the expired ones need not be).
    for grant in (first, second, third):
        with pytest.raises(Unauthenticated, match="revoked"):
            await world.principal(grant.access_token)
    assert world.audit.actions()[-1] == "auth.refresh_reuse"


async def test_two_refreshes_of_one_token_at_the_same_moment_count_as_reuse(
    world: World,
) -> None:
    world.user()
    grant = await world.auth.login("acme", "ann", PASSWORD)
    assert grant.refresh_token is not None
    world.sessions.lose_next_rotation = True
    with pytest.raises(Unauthenticated):
        await world.auth.refresh(grant.refresh_token)
    assert all(s.revoked_at is not None for s in world.sessions.sessions.values())


async def test_refresh_applies_a_disabled_account_and_a_deleted_tenant(world: World) -> None:
    ann = world.user()
    grant = await world.auth.login("acme", "ann", PASSWORD)
    assert grant.refresh_token is not None
    world.accounts.add(replace(ann, disabled=True))
    with pytest.raises(Unauthenticated):
        await world.auth.refresh(grant.refresh_token)

    world.user("bob")
    bob = await world.auth.login("acme", "bob", PASSWORD)
    assert bob.refresh_token is not None
    world.tenants.statuses["acme"] = TenantStatus.DELETED
    with pytest.raises(Unauthenticated):
        await world.auth.refresh(bob.refresh_token)


async def test_refresh_tokens_expire(world: World) -> None:
    world.user()
    grant = await world.auth.login("acme", "ann", PASSWORD)
    assert grant.refresh_token is not None
    world.clock.advance(seconds=CONFIG.refresh_ttl.total_seconds())
    with pytest.raises(Unauthenticated):
        await world.auth.refresh(grant.refresh_token)


async def test_logout_revokes_the_token_and_its_family_but_not_other_sessions(
    world: World,
) -> None:
    world.user()
    here = await world.auth.login("acme", "ann", PASSWORD)
    there = await world.auth.login("acme", "ann", PASSWORD)
    await world.auth.logout(await world.principal(here.access_token))
    with pytest.raises(Unauthenticated, match="revoked"):
        await world.principal(here.access_token)
    assert here.refresh_token is not None
    with pytest.raises(Unauthenticated):
        await world.auth.refresh(here.refresh_token)
    assert there.refresh_token is not None
    assert (await world.auth.refresh(there.refresh_token)).access_token


async def test_logout_ignores_someone_elses_refresh_token(world: World) -> None:
    world.user()
    world.user("bob")
    ann = await world.auth.login("acme", "ann", PASSWORD)
    bob = await world.auth.login("acme", "bob", PASSWORD)
    await world.auth.logout(await world.principal(ann.access_token), bob.refresh_token)
    assert bob.refresh_token is not None
    assert (await world.auth.refresh(bob.refresh_token)).access_token


# ---------------------------------------------------------------------------------------------
# API keys


def add_key(world: World, tenant_id: str = "acme", **fields: object) -> str:
    secret = new_secret()
    key_id = "key_0123456789abcdef01234567"
    values: dict[str, object] = {
        "key_id": key_id,
        "tenant_id": tenant_id,
        "name": "crm",
        "roles": ("supervisor",),
        "secret_hash": hash_secret(secret),
    }
    values.update(fields)
    world.api_keys.keys[(tenant_id, key_id)] = ApiKeyRecord(**values)  # type: ignore[arg-type]
    return format_api_key(tenant_id, key_id, secret)


async def test_an_api_key_becomes_a_token_of_its_roles_and_its_use_is_noted_once_a_minute(
    world: World,
) -> None:
    key = add_key(world)
    grant = await world.auth.exchange_api_key(key)
    assert grant.refresh_token is None
    principal = await world.principal(grant.access_token)
    assert (principal.subject, principal.tenant_id) == ("key_0123456789abcdef01234567", "acme")
    assert principal.roles == {"supervisor"}
    await world.auth.exchange_api_key(key)
    assert world.api_keys.touches == 1
    world.clock.advance(seconds=60)
    await world.auth.exchange_api_key(key)
    assert world.api_keys.touches == 2
    # Revoking the key's sessions revokes the tokens it was exchanged for.
    assert await world.auth.revoke_sessions("key_0123456789abcdef01234567", "acme") == 3
    with pytest.raises(Unauthenticated, match="revoked"):
        await world.principal(grant.access_token)


async def test_an_api_key_cannot_be_presented_as_another_tenants(world: World) -> None:
    key = add_key(world, "acme")
    with pytest.raises(Unauthenticated, match="invalid API key"):
        await world.auth.exchange_api_key(key.replace("cmk_acme_", "cmk_globex_"))
    assert (await world.auth.exchange_api_key(key)).access_token


# ---------------------------------------------------------------------------------------------
# Who am I, passwords


async def test_me_names_the_account(world: World) -> None:
    ann = world.user(must_change_password=True)
    principal = await world.principal(
        (await world.auth.login("acme", "ann", PASSWORD)).access_token
    )
    me = await world.auth.me(principal)
    assert (me.kind, me.subject, me.username, me.must_change_password) == (
        AccountKind.USER,
        ann.account_id,
        "ann",
        True,
    )


async def test_changing_a_password_checks_the_old_one_and_ends_the_other_sessions(
    world: World,
) -> None:
    world.user()
    here = await world.auth.login("acme", "ann", PASSWORD)
    there = await world.auth.login("acme", "ann", PASSWORD)
    principal = await world.principal(here.access_token)
    with pytest.raises(InvalidInput, match="current_password"):
        await world.auth.change_password(principal, "Wrong-Password-1", "Brand-New-Secret-7")
    with pytest.raises(InvalidInput, match="new_password"):
        await world.auth.change_password(principal, PASSWORD, "weak")
    await world.auth.change_password(principal, PASSWORD, "Brand-New-Secret-7")

    assert (await world.auth.login("acme", "ann", "Brand-New-Secret-7")).access_token
    assert here.refresh_token is not None
    assert there.refresh_token is not None
    assert (await world.auth.refresh(here.refresh_token)).access_token
    with pytest.raises(Unauthenticated):
        await world.auth.refresh(there.refresh_token)
    assert "user.password_change" in world.audit.actions()


async def test_an_api_key_has_no_password_to_change(world: World) -> None:
    key = add_key(world)
    principal = await world.principal((await world.auth.exchange_api_key(key)).access_token)
    with pytest.raises(Forbidden):
        await world.auth.change_password(principal, PASSWORD, "Brand-New-Secret-7")


# ---------------------------------------------------------------------------------------------
# Operators


ACTOR = Actor.system("test")


async def test_operators_are_created_once_per_username_with_a_strong_password(
    world: World,
) -> None:
    root = await bootstrap_operator(world.operators, username="root", password="Operator-Pass-99")
    with pytest.raises(Conflict, match="has an operator already"):
        await bootstrap_operator(world.operators, username="other", password="Operator-Pass-99")
    with pytest.raises(Conflict):
        await world.operators.create(ACTOR, username="root", password="Operator-Pass-98")
    with pytest.raises(InvalidInput, match="password"):
        await world.operators.create(ACTOR, username="ops", password="short")
    with pytest.raises(InvalidInput, match="username"):
        await world.operators.create(ACTOR, username="Not Valid", password="Operator-Pass-98")
    assert (await world.operators.get(root.operator_id)).username == "root"
    created = world.audit.entries[-1]
    assert created.action == "operator.create"
    assert created.after is not None
    assert created.after["password_hash"] == "***"


async def test_the_last_active_operator_stays_even_when_two_disable_each_other(
    world: World,
) -> None:
    root = await world.operators.create(ACTOR, username="root", password="Operator-Pass-99")
    ops = await world.operators.create(ACTOR, username="ops", password="Operator-Pass-99")
    # ops is disabled by someone else while root's disabling is being written.
    world.operator_repo.meanwhile.append(replace(ops, disabled=True, version=ops.version + 1))
    with pytest.raises(Conflict, match="last active operator"):
        await world.operators.update(ACTOR, root.operator_id, OperatorPatch(disabled=True), None)
    assert (await world.operators.get(root.operator_id)).active
    assert await world.operator_repo.count_active() == 1


async def test_a_disabled_operator_loses_its_sessions_and_a_stale_version_is_refused(
    world: World,
) -> None:
    await world.operators.create(ACTOR, username="root", password="Operator-Pass-99")
    ops = await world.operators.create(ACTOR, username="ops", password="Operator-Pass-99")
    world.accounts.add(ops.account())
    grant = await world.auth.login(None, "ops", "Operator-Pass-99")
    with pytest.raises(VersionMismatch, match="changed meanwhile"):
        await world.operators.update(
            ACTOR, ops.operator_id, OperatorPatch(display_name="Ops"), expected_version=9
        )
    changed = await world.operators.update(
        ACTOR, ops.operator_id, OperatorPatch(disabled=True, email="a@b.io", email_given=True), 1
    )
    assert (changed.disabled, changed.email, changed.version) == (True, "a@b.io", 2)
    with pytest.raises(Unauthenticated, match="revoked"):
        await world.principal(grant.access_token)
    # Nothing to change: no new version, no audit entry.
    entries = len(world.audit.entries)
    same = await world.operators.update(ACTOR, ops.operator_id, OperatorPatch(disabled=True), 2)
    assert same.version == 2
    assert len(world.audit.entries) == entries


async def test_an_operator_is_deleted_unless_it_is_the_last_active_one(world: World) -> None:
    root = await world.operators.create(ACTOR, username="root", password="Operator-Pass-99")
    ops = await world.operators.create(ACTOR, username="ops", password="Operator-Pass-99")
    await world.operators.delete(ACTOR, ops.operator_id, None)
    with pytest.raises(Conflict, match="cannot delete root"):
        await world.operators.delete(ACTOR, root.operator_id, None)
    assert [o.username for o in (await world.operators.page(10, None)).items] == ["root"]
