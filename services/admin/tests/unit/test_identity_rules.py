"""Identity rules: login and refresh verdicts, API-key strings, key life, operators, vaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callmesh.admin.adapters.keys import AesGcmVault, ClearVault
from callmesh.admin.domain.identity import LockoutPolicy, LoginState, check_email
from callmesh.admin.domain.keys import KeyState, SigningKey, active_key, plan_rotation, timeline
from callmesh.admin.domain.operators import (
    Operator,
    VersionMismatch,
    check_keeps_an_operator,
    check_version,
)
from callmesh.admin.domain.tokens import (
    Account,
    AccountKind,
    ApiKeyRecord,
    LoginVerdict,
    RefreshVerdict,
    Session,
    format_api_key,
    judge_login,
    judge_refresh,
    key_token_ttl,
    new_secret,
    parse_api_key,
)
from callmesh.core.errors import Conflict, InvalidInput, Unavailable

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
POLICY = LockoutPolicy(max_failures=3, window=timedelta(minutes=15), lockout=timedelta(minutes=15))


def account(**fields: object) -> Account:
    values: dict[str, object] = {
        "kind": AccountKind.USER,
        "account_id": "usr_1",
        "tenant_id": "acme",
        "username": "ann",
        "display_name": "Ann",
        "roles": ("agent",),
        "password_hash": "hash",
    }
    values.update(fields)
    return Account(**values)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Login


def test_no_account_and_a_disabled_account_are_refused_like_a_wrong_password() -> None:
    for who in (None, account(disabled=True)):
        outcome = judge_login(who, True, T0, POLICY)
        assert outcome.verdict is LoginVerdict.INVALID
        assert outcome.state is None  # nothing to count, nothing written


def test_the_third_failure_in_the_window_locks_the_account() -> None:
    who = account()
    for attempt in range(1, 4):
        outcome = judge_login(who, False, T0 + timedelta(minutes=attempt), POLICY)
        assert outcome.verdict is LoginVerdict.INVALID
        assert outcome.state is not None
        assert outcome.state.failures == attempt
        who = account(login=outcome.state)
    assert outcome.locked_now
    assert outcome.locked_until == T0 + timedelta(minutes=3) + POLICY.lockout


def test_failures_spread_beyond_the_window_do_not_lock() -> None:
    who = account()
    for attempt in range(5):
        outcome = judge_login(who, False, T0 + timedelta(minutes=20 * attempt), POLICY)
        assert outcome.state is not None
        who = account(login=outcome.state)
    assert not who.login.locked(T0 + timedelta(minutes=80))


def test_a_locked_account_tells_only_the_right_password_and_is_not_extended() -> None:
    until = T0 + timedelta(minutes=10)
    locked = account(login=LoginState(3, T0, until))
    right = judge_login(locked, True, T0 + timedelta(minutes=1), POLICY)
    assert (right.verdict, right.locked_until, right.state) == (LoginVerdict.LOCKED, until, None)
    wrong = judge_login(locked, False, T0 + timedelta(minutes=1), POLICY)
    assert (wrong.verdict, wrong.state) == (LoginVerdict.INVALID, None)
    after = judge_login(locked, True, until, POLICY)
    assert after.verdict is LoginVerdict.OK
    assert after.state == LoginState()


# ---------------------------------------------------------------------------------------------
# Refresh


def session(**fields: object) -> Session:
    values: dict[str, object] = {
        "session_id": "h",
        "family": "fam_1",
        "subject": "usr_1",
        "tenant_id": "acme",
        "kind": AccountKind.USER,
        "created_at": T0,
        "expires_at": T0 + timedelta(days=1),
        "access_jti": "jti",
        "access_expires_at": T0 + timedelta(minutes=15),
    }
    values.update(fields)
    return Session(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("found", "verdict"),
    [
        (None, RefreshVerdict.UNKNOWN),
        (session(kind=AccountKind.API_KEY), RefreshVerdict.UNKNOWN),
        (session(revoked_at=T0), RefreshVerdict.REVOKED),
        (session(rotated_at=T0), RefreshVerdict.REUSED),
        (session(expires_at=T0), RefreshVerdict.EXPIRED),
        (session(), RefreshVerdict.OK),
    ],
)
def test_a_refresh_token_is_judged_by_its_session(
    found: Session | None, verdict: RefreshVerdict
) -> None:
    assert judge_refresh(found, T0) is verdict


# ---------------------------------------------------------------------------------------------
# API keys


def test_an_api_key_string_splits_into_tenant_id_and_secret_even_with_underscores() -> None:
    secret = "abc_def-" + new_secret()[8:]
    text = format_api_key("acme-eu", "key_0123456789abcdef01234567", secret)
    parts = parse_api_key(text)
    assert parts is not None
    assert (parts.tenant_id, parts.key_id, parts.secret) == (
        "acme-eu",
        "key_0123456789abcdef01234567",
        secret,
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "cmk_acme",
        "xyz_acme_0123456789abcdef01234567_" + "s" * 43,
        "cmk__0123456789abcdef01234567_" + "s" * 43,
        "cmk_acme_0123456789ABCDEF01234567_" + "s" * 43,
        "cmk_acme_0123456789abcdef01234567_short",
        "cmk_acme_0123456789abcdef01234567_" + "s" * 42 + "!",
    ],
)
def test_malformed_api_keys_are_not_keys(text: str) -> None:
    assert parse_api_key(text) is None


def test_a_keys_token_never_outlives_the_key_and_last_use_is_written_once_a_minute() -> None:
    key = ApiKeyRecord("key_1", "acme", "crm", ("agent",), "h", expires_at=T0 + timedelta(5))
    assert key_token_ttl(key, T0, timedelta(minutes=15)) == timedelta(minutes=15)
    soon = ApiKeyRecord("key_1", "acme", "crm", (), "h", expires_at=T0 + timedelta(minutes=2))
    assert key_token_ttl(soon, T0, timedelta(minutes=15)) == timedelta(minutes=2)
    assert not soon.usable(T0 + timedelta(minutes=2))
    assert not ApiKeyRecord("key_1", "acme", "crm", (), "h", revoked_at=T0).usable(T0)
    used = ApiKeyRecord("key_1", "acme", "crm", (), "h", last_used_at=T0)
    assert not used.needs_touch(T0 + timedelta(seconds=59))
    assert used.needs_touch(T0 + timedelta(seconds=60))


# ---------------------------------------------------------------------------------------------
# Signing keys


def key(generation: int, activates_at: datetime) -> SigningKey:
    return SigningKey(f"k{generation}", generation, activates_at, activates_at, {}, {})


LIFETIME = timedelta(hours=1, minutes=1)


def test_a_keys_state_follows_from_its_successor_and_the_time() -> None:
    keys = [key(1, T0), key(2, T0 + timedelta(minutes=10))]

    def states(at: datetime) -> dict[str, KeyState]:
        return {v.key.kid: v.state for v in timeline(keys, at, LIFETIME)}

    assert states(T0 + timedelta(minutes=5)) == {"k1": "active", "k2": "pending"}
    assert states(T0 + timedelta(minutes=10)) == {"k1": "retired", "k2": "active"}
    gone = T0 + timedelta(minutes=10) + LIFETIME
    assert states(gone) == {"k1": "expired", "k2": "active"}
    views = timeline(keys, gone, LIFETIME)
    assert [v.key.kid for v in views] == ["k2", "k1"]  # newest first
    assert views[1].removed_after == gone
    assert not views[1].published
    assert active_key(views) == keys[1]


def test_one_rotation_at_a_time_and_the_next_generation_is_planned() -> None:
    one = timeline([key(1, T0)], T0, LIFETIME)
    plan = plan_rotation(one, T0, timedelta(minutes=10))
    assert (plan.generation, plan.activates_at) == (2, T0 + timedelta(minutes=10))
    assert plan_rotation(one, T0, timedelta(minutes=10), immediate=True).activates_at == T0
    pending = timeline([key(1, T0), key(2, T0 + timedelta(minutes=10))], T0, LIFETIME)
    with pytest.raises(Conflict, match="rotation is under way"):
        plan_rotation(pending, T0, timedelta(minutes=10))


# ---------------------------------------------------------------------------------------------
# Operators


def operator(**fields: object) -> Operator:
    values: dict[str, object] = {
        "operator_id": "opr_1",
        "username": "root",
        "display_name": "Root",
        "created_at": T0,
        "updated_at": T0,
        "password_hash": "hash",
    }
    values.update(fields)
    return Operator(**values)  # type: ignore[arg-type]


def test_the_last_active_operator_cannot_be_disabled_or_deleted() -> None:
    root = operator()
    with pytest.raises(Conflict, match="last active operator"):
        check_keeps_an_operator(root, operator(disabled=True), 0)
    with pytest.raises(Conflict, match="cannot delete"):
        check_keeps_an_operator(root, None, 0)
    check_keeps_an_operator(root, operator(disabled=True), 1)
    # A disabled operator may always go: it is not keeping the platform administered.
    check_keeps_an_operator(operator(disabled=True), None, 0)


def test_an_operator_record_reads_back_as_written_and_logs_in_as_an_operator() -> None:
    root = operator(email="ops@example.com", login=LoginState(2, T0, None))
    assert Operator.from_record(root.record()) == root
    login = root.account()
    assert (login.kind, login.tenant_id, login.roles) == (AccountKind.OPERATOR, None, ("operator",))


def test_emails_are_checked_and_versions_compared() -> None:
    assert check_email("Ops@Example.COM") == "Ops@example.com"
    with pytest.raises(InvalidInput, match="e-mail"):
        check_email("not-an-address")
    check_version(None, 3)
    with pytest.raises(VersionMismatch):
        check_version(2, 3)


# ---------------------------------------------------------------------------------------------
# Vaults


def test_a_sealed_key_opens_only_with_its_master_key_and_under_its_own_kid() -> None:
    vault = AesGcmVault("the-master-key-of-this-test")
    sealed = vault.seal("kid-1", "PEM TEXT")
    assert "PEM TEXT" not in str(sealed)
    assert vault.open("kid-1", sealed) == "PEM TEXT"
    with pytest.raises(Unavailable):
        vault.open("kid-2", sealed)
    with pytest.raises(Unavailable):
        AesGcmVault("another-master-key-here").open("kid-1", sealed)
    with pytest.raises(Unavailable, match="MASTER_KEY is not set"):
        ClearVault().open("kid-1", sealed)
    # A key stored in clear before a master key was set still opens.
    assert vault.open("kid-0", ClearVault().seal("kid-0", "OLD PEM")) == "OLD PEM"


def test_a_short_master_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        AesGcmVault("short")
