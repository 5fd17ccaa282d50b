"""Signing-key life and login lockout on a real MongoDB-wire server, with a clock the test moves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from callmesh.admin.adapters.keys import AesGcmVault, Argon2Passwords, ClearVault
from callmesh.admin.adapters.passwords import hash_password
from callmesh.admin.adapters.store_audit import COLLECTIONS as AUDIT_COLLECTIONS
from callmesh.admin.adapters.store_audit import MongoAuditLog
from callmesh.admin.adapters.store_identity import (
    COLLECTIONS,
    SIGNING_KEYS,
    MongoAccounts,
    MongoApiKeys,
    MongoSessions,
    MongoSigningKeys,
)
from callmesh.admin.domain.common import Actor
from callmesh.admin.ports.audit import AuditQuery
from callmesh.admin.service.audit import Auditor
from callmesh.admin.service.identity import (
    AccountLocked,
    Authenticator,
    IdentityConfig,
    SigningKeys,
)
from callmesh.core.auth import TokenVerifier
from callmesh.core.errors import Conflict, Unauthenticated, Unavailable
from callmesh.core.settings import PlatformSettings
from callmesh.core.store import Store
from callmesh.core.tenancy import TenantInfo, TenantStatus

PASSWORD = "Correct-Horse-42"
CONFIG = IdentityConfig(issuer="callmesh", audience="callmesh")


class Clock:
    """A clock the test moves (starting now, so tokens it stamps verify in real time)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Tenants:
    """Tenant statuses (what the tenant gate would say)."""

    def __init__(self, **statuses: TenantStatus) -> None:
        self.statuses = statuses

    def info(self, tenant_id: str) -> TenantInfo | None:
        status = self.statuses.get(tenant_id)
        return TenantInfo(tenant_id, status) if status is not None else None


class Revocations:
    """Revoked token ids (what ``RevocationList.revoke`` would publish)."""

    def __init__(self) -> None:
        self.revoked: dict[str, datetime | float] = {}

    async def revoke(self, jti: str, exp: datetime | float) -> None:
        self.revoked[jti] = exp


@pytest.fixture
async def platform_store(platform_settings: PlatformSettings) -> AsyncIterator[Store]:
    store = Store(
        platform_settings, collections=(*COLLECTIONS, *AUDIT_COLLECTIONS), operator_access=True
    )
    await store.provision()
    yield store
    await store.close()


def signing_keys(
    store: Store, clock: Clock, vault: ClearVault | AesGcmVault | None = None
) -> SigningKeys:
    platform = store.operator()
    return SigningKeys(
        MongoSigningKeys(platform),
        vault or ClearVault(),
        Auditor(MongoAuditLog(platform), clock),
        clock,
        CONFIG,
        cache_s=0.0,
    )


async def audited(store: Store, action: str) -> list[str]:
    page = await MongoAuditLog(store.operator()).search(AuditQuery(action_prefix=action))
    return [entry.target_id for entry in page.items]


# ---------------------------------------------------------------------------------------------
# Signing keys


async def test_a_rotated_key_is_pending_then_active_while_the_old_one_retires_then_goes(
    platform_store: Store,
) -> None:
    clock = Clock()
    keys = signing_keys(platform_store, clock)
    await keys.start()
    verifier = TokenVerifier(keys, issuer="callmesh", audience="callmesh")
    old = await keys.issuer()
    old_token = old.issue("usr_1", tenant_id="acme", roles=["agent"], now=clock())
    assert (await verifier.verify(old_token)).subject == "usr_1"

    new = await keys.rotate(Actor.system("test"))
    assert new.state == "pending"
    # (MongoDB keeps milliseconds.)
    assert abs(new.key.activates_at - (clock() + CONFIG.publish_ahead)) < timedelta(milliseconds=1)
    assert {k["kid"] for k in (await keys.jwks())["keys"]} == {old.kid, new.key.kid}
    assert (await keys.issuer()).kid == old.kid  # published ahead, not signing yet

    clock.advance(seconds=CONFIG.publish_ahead.total_seconds())
    states = {v.key.kid: v.state for v in await keys.views()}
    assert states == {new.key.kid: "active", old.kid: "retired"}
    assert (await keys.issuer()).kid == new.key.kid
    # A token the old key signed still verifies while it may be alive.
    assert (await verifier.verify(old_token)).subject == "usr_1"

    clock.advance(seconds=CONFIG.token_lifetime.total_seconds())
    assert [k["kid"] for k in (await keys.jwks())["keys"]] == [new.key.kid]
    with pytest.raises(Unauthenticated, match="unknown key"):
        await verifier.verify(old_token)
    remaining = platform_store.operator().collection(SIGNING_KEYS)
    assert [doc["_id"] async for doc in remaining.find({})] == [new.key.kid]
    assert await audited(platform_store, "signing_key.remove") == [old.kid]


async def test_replicas_starting_together_create_one_first_key_and_agree_on_it(
    platform_store: Store,
) -> None:
    clock = Clock()
    replicas = [signing_keys(platform_store, clock) for _ in range(4)]
    await asyncio.gather(*(r.start() for r in replicas))
    kids = {(await r.issuer()).kid for r in replicas}
    assert len(kids) == 1
    stored = platform_store.operator().collection(SIGNING_KEYS)
    assert await stored.count_documents({}) == 1


async def test_two_rotations_at_the_same_moment_create_one_key(platform_store: Store) -> None:
    clock = Clock()
    first, second = signing_keys(platform_store, clock), signing_keys(platform_store, clock)
    await first.start()
    await second.start()
    outcomes = await asyncio.gather(
        first.rotate(Actor.system("a")), second.rotate(Actor.system("b")), return_exceptions=True
    )
    assert sum(isinstance(o, Conflict) for o in outcomes) == 1
    assert len(await first.views()) == 2


async def test_private_keys_are_stored_encrypted_under_the_master_key(
    platform_store: Store,
) -> None:
    clock = Clock()
    keys = signing_keys(platform_store, clock, AesGcmVault("a-master-key-of-some-length"))
    await keys.start()
    doc = await platform_store.operator().collection(SIGNING_KEYS).find_one({})
    assert doc is not None
    assert doc["private_key"]["alg"] == "A256GCM"
    assert "PRIVATE KEY" not in str(doc)
    token = (await keys.issuer()).issue("usr_1", tenant_id="acme", now=clock())

    wrong = signing_keys(platform_store, clock, AesGcmVault("another-master-key-entirely"))
    await wrong.start()
    with pytest.raises(Unavailable, match="cannot be decrypted"):
        await wrong.issuer()
    # Verifying needs no private key: a replica with the wrong master key still verifies.
    verifier = TokenVerifier(wrong, issuer="callmesh", audience="callmesh")
    assert (await verifier.verify(token)).subject == "usr_1"
    without = signing_keys(platform_store, clock, ClearVault())
    await without.start()
    with pytest.raises(Unavailable, match="MASTER_KEY is not set"):
        await without.issuer()


# ---------------------------------------------------------------------------------------------
# Lockout


async def test_an_account_locks_after_repeated_failures_and_unlocks_after_the_period(
    platform_store: Store,
) -> None:
    clock = Clock()
    keys = signing_keys(platform_store, clock)
    await keys.start()
    platform = platform_store.operator()
    users = (await platform_store.tenant("acme")).collection("users")
    await users.insert_one(
        {
            "_id": "usr_0192a0000000aaaaaaaaaaaa",
            "username": "ann",
            "display_name": "Ann",
            "roles": ["agent"],
            "groups": [],
            "password_hash": await hash_password(PASSWORD),
            "must_change_password": False,
            "disabled": False,
            "login": {"failures": 0, "first_failure_at": None, "locked_until": None},
            "last_login_at": None,
            "created_at": clock(),
            "updated_at": clock(),
            "version": 1,
        }
    )
    authenticator = Authenticator(
        accounts=MongoAccounts(platform_store, platform),
        api_keys=MongoApiKeys(platform_store),
        sessions=MongoSessions(platform),
        keys=keys,
        hasher=Argon2Passwords(),
        revoker=Revocations(),
        tenants=Tenants(acme=TenantStatus.ACTIVE),
        auditor=Auditor(MongoAuditLog(platform), clock),
        clock=clock,
        config=CONFIG,
    )
    policy = CONFIG.lockout
    for _ in range(policy.max_failures):
        with pytest.raises(Unauthenticated, match="invalid credentials"):
            await authenticator.login("acme", "ann", "Wrong-Password-1")
        clock.advance(seconds=10)

    with pytest.raises(AccountLocked) as locked:
        await authenticator.login("acme", "ann", PASSWORD)
    retry = locked.value.details["retry_after_s"]
    assert 0 < retry <= policy.lockout.total_seconds()
    stored = await users.find_one({"username": "ann"})
    assert stored is not None
    assert stored["login"]["failures"] == policy.max_failures

    clock.advance(seconds=retry)
    grant = await authenticator.login("acme", "ann", PASSWORD)
    assert grant.refresh_token is not None
    stored = await users.find_one({"username": "ann"})
    assert stored is not None
    assert stored["login"] == {"failures": 0, "first_failure_at": None, "locked_until": None}
    assert stored["last_login_at"] is not None
    assert await audited(platform_store, "user.lock") == ["usr_0192a0000000aaaaaaaaaaaa"]
