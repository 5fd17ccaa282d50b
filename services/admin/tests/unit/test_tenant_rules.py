"""Rules of the tenant area: roles and grants, users, devices and their a1-hash, API keys."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from callmesh.admin.domain.apikeys import (
    ApiKey,
    KeyStatus,
    check_expiry,
    hash_secret,
    mint,
    parse_key_string,
    secret_matches,
)
from callmesh.admin.domain.common import Actor, ActorKind
from callmesh.admin.domain.devices import (
    a1_hash,
    check_caller_id,
    check_device_password,
    check_device_username,
    sip_domain,
    tenant_of_domain,
)
from callmesh.admin.domain.identity import LoginState, check_email
from callmesh.admin.domain.roles import (
    RoleOverride,
    check_grant,
    check_may_manage,
    check_override,
    grantable_roles,
    parse_tenant_roles,
    role_views,
    tenant_role,
)
from callmesh.admin.domain.users import (
    User,
    VersionMismatch,
    VersionRequired,
    check_keeps_an_admin,
    check_version,
    parse_version,
)
from callmesh.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from callmesh.core.permissions import DEFAULT_ROLE_PERMISSIONS, Permission, Role

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
OPERATOR = Actor(ActorKind.OPERATOR, "op-1")
ADMIN = Actor(ActorKind.USER, "usr_a", "acme", ("tenant_admin",))
SUPERVISOR = Actor(ActorKind.USER, "usr_s", "acme", ("supervisor",))


# -- roles


def test_tenant_roles_are_parsed_deduplicated_and_operator_is_refused() -> None:
    assert parse_tenant_roles(["agent", "qa", "agent"]) == (Role.AGENT, Role.QA)
    with pytest.raises(InvalidInput) as caught:
        parse_tenant_roles(["agent", "operator"])
    assert caught.value.field == "roles[1]"
    with pytest.raises(InvalidInput) as unknown:
        parse_tenant_roles(["agent", "pilot"])
    assert unknown.value.field == "roles[1]"


def test_only_tenant_roles_can_be_addressed() -> None:
    assert tenant_role("qa") is Role.QA
    with pytest.raises(NotFound):
        tenant_role("operator")
    with pytest.raises(NotFound):
        tenant_role("pilot")


def test_tenant_admin_must_keep_the_rights_to_fix_roles_and_users() -> None:
    with pytest.raises(InvalidInput, match=r"roles\.write"):
        check_override(Role.TENANT_ADMIN, ["users.write"])
    kept = check_override(Role.TENANT_ADMIN, ["users.write", "roles.write"])
    assert kept == {Permission.USERS_WRITE, Permission.ROLES_WRITE}
    assert check_override(Role.AGENT, []) == frozenset()
    with pytest.raises(InvalidInput) as caught:
        check_override(Role.AGENT, ["desk.use", "desk.fly"])
    assert caught.value.field == "permissions[1]"


def test_role_views_show_overrides_next_to_defaults() -> None:
    override = RoleOverride("acme", Role.QA, frozenset({Permission.CALLS_READ}), NOW)
    views = {v.role: v for v in role_views({Role.QA: override})}
    assert set(views) == set(Role) - {Role.OPERATOR}
    assert views[Role.QA].overridden
    assert views[Role.QA].permissions == {Permission.CALLS_READ}
    assert views[Role.QA].defaults == DEFAULT_ROLE_PERMISSIONS[Role.QA]
    assert not views[Role.AGENT].overridden
    assert RoleOverride.from_record(override.record()) == override
    assert override.record()["_id"] == "acme:qa"


def test_admins_and_operators_grant_every_role_others_only_their_own() -> None:
    assert grantable_roles(OPERATOR) == grantable_roles(ADMIN) == set(Role) - {Role.OPERATOR}
    assert grantable_roles(SUPERVISOR) == {Role.SUPERVISOR}
    check_grant(SUPERVISOR, [Role.SUPERVISOR])
    with pytest.raises(Forbidden) as caught:
        check_grant(SUPERVISOR, [Role.SUPERVISOR, Role.TENANT_ADMIN])
    assert caught.value.details["field"] == "roles[1]"
    check_may_manage(SUPERVISOR, ["supervisor"], "user x")
    with pytest.raises(Forbidden, match="tenant_admin"):
        check_may_manage(SUPERVISOR, ["agent", "tenant_admin"], "user x")


# -- users


def user(**changes: object) -> User:
    base = User("usr_1", "acme", "ann", "Ann", NOW, NOW, roles=("tenant_admin",))
    return base.changed(NOW, **changes) if changes else base


def test_a_user_survives_its_stored_form() -> None:
    locked = user(
        email="ann@example.com",
        groups=("grp_1",),
        password_hash="$argon2id$x",
        login=LoginState(3, NOW, NOW + timedelta(minutes=15)),
    )
    record = locked.record()
    assert record["login"] == {
        "failures": 3,
        "first_failure_at": NOW,
        "locked_until": NOW + timedelta(minutes=15),
    }
    assert record["version"] == 2
    assert record["_id"] == "usr_1"
    assert User.from_record(record) == locked


def test_the_last_active_admin_cannot_be_demoted_disabled_or_deleted() -> None:
    admin = user()
    for after in (user(roles=("agent",)), user(disabled=True), None):
        with pytest.raises(Conflict) as caught:
            check_keeps_an_admin(admin, after, other_active_admins=0)
        assert caught.value.details["reason"] == "last_admin"
        check_keeps_an_admin(admin, after, other_active_admins=1)
    check_keeps_an_admin(user(disabled=True), None, other_active_admins=0)
    check_keeps_an_admin(admin, user(display_name="Ann L."), other_active_admins=0)


def test_versions_come_from_if_match() -> None:
    assert parse_version('"3"') == 3
    assert parse_version('W/"12"') == 12
    assert parse_version("4") == 4
    assert parse_version(None) is None
    with pytest.raises(InvalidInput):
        parse_version('"abc"')
    check_version(3, 3, required=True)
    with pytest.raises(VersionMismatch):
        check_version(2, 3)
    with pytest.raises(VersionRequired):
        check_version(None, 3, required=True)
    check_version(None, 3)


@pytest.mark.parametrize("bad", ["ann", "ann@", "@example.com", "a b@example.com", "a@b"])
def test_email_addresses_are_checked_loosely(bad: str) -> None:
    with pytest.raises(InvalidInput, match="email"):
        check_email(bad)
    assert check_email(" Ann.Lee@Example.COM ") == "Ann.Lee@example.com"


# -- devices


def test_the_a1_hash_is_freeswitchs_md5_of_user_realm_password() -> None:
    domain = sip_domain("acme", "SIP.Example.NET.")
    assert domain == "acme.sip.example.net"
    expected = hashlib.md5(b"1001:acme.sip.example.net:s3cret-s3cret").hexdigest()
    assert a1_hash("1001", domain, "s3cret-s3cret") == expected


def test_a_sip_domain_names_its_tenant_only_under_the_suffix() -> None:
    assert tenant_of_domain("Acme.sip.example.net.", "sip.example.net") == "acme"
    assert tenant_of_domain("acme.sip.elsewhere.net", "sip.example.net") is None
    assert tenant_of_domain("a.b.sip.example.net", "sip.example.net") is None
    assert tenant_of_domain("platform.sip.example.net", "sip.example.net") is None
    assert tenant_of_domain("sip.example.net", "sip.example.net") is None


def test_device_credentials_and_numbers_are_checked() -> None:
    with pytest.raises(InvalidInput, match="at least 12"):
        check_device_password("short")
    with pytest.raises(InvalidInput, match="without spaces"):
        check_device_password("has a space inside")
    with pytest.raises(InvalidInput) as caught:
        check_device_username("ann@acme")
    assert caught.value.field == "username"
    assert check_caller_id("+33 (1) 23-45") == "+3312345"
    assert check_caller_id("") is None
    with pytest.raises(InvalidInput) as bad:
        check_caller_id("call me")
    assert bad.value.field == "caller_id_number"


# -- API keys


def test_a_minted_key_is_its_id_and_a_secret_of_which_only_the_hash_is_kept() -> None:
    minted = mint("acme", "key_0123456789abcdef01234567")
    tenant, key_id, secret = parse_key_string(minted.key_string) or ("", "", "")
    assert (tenant, key_id) == ("acme", "key_0123456789abcdef01234567")
    assert minted.key_string.startswith("cmk_acme_0123456789abcdef01234567_")
    assert len(secret) == 43
    assert minted.secret_hash == hash_secret(secret)
    assert secret_matches(secret, minted.secret_hash)
    other = "B" if secret.endswith("A") else "A"
    assert not secret_matches(secret[:-1] + other, minted.secret_hash)
    assert minted.prefix == "cmk_acme_01234567"
    assert secret not in minted.prefix
    assert parse_key_string("cmk_acme_nothex_x") is None
    assert parse_key_string("cmk_my-tenant_" + "a" * 24 + "_" + "b_-" * 14 + "c") is not None


def test_a_key_is_active_until_it_expires_or_is_revoked() -> None:
    key = ApiKey(
        "key_1",
        "acme",
        "CRM",
        ("agent",),
        "h",
        "cmk_acme_1",
        NOW,
        "usr_a",
        expires_at=NOW + timedelta(days=1),
    )
    assert key.status(NOW) is KeyStatus.ACTIVE
    assert key.status(NOW + timedelta(days=1)) is KeyStatus.EXPIRED
    revoked = key.revoked(NOW)
    assert revoked.status(NOW) is KeyStatus.REVOKED
    assert revoked.revoked(NOW + timedelta(hours=1)).revoked_at == NOW
    assert ApiKey.from_record(revoked.record()) == revoked
    with pytest.raises(InvalidInput, match="future"):
        check_expiry(NOW, NOW)
    with pytest.raises(InvalidInput, match="UTC offset"):
        check_expiry(datetime(2030, 1, 1), NOW)
