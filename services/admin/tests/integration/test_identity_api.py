"""Identity through the real admin app (real NATS and FerretDB): login, tokens verified here and
elsewhere, refresh rotation and reuse, logout everywhere, API keys, signing keys, operators."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from callmesh.admin.adapters.keys import Argon2Passwords
from callmesh.admin.adapters.passwords import hash_password
from callmesh.admin.adapters.store_audit import MongoAuditLog
from callmesh.admin.adapters.store_identity import MongoOperators
from callmesh.admin.app import AdminSettings
from callmesh.admin.domain.common import Actor
from callmesh.admin.domain.identity import PasswordPolicy
from callmesh.admin.domain.tokens import format_api_key, hash_secret, new_secret
from callmesh.admin.ports.audit import AuditQuery
from callmesh.admin.service.audit import Auditor
from callmesh.admin.service.context import utc_now
from callmesh.admin.service.identity import Operators
from callmesh.core.auth import (
    JwksKeys,
    RevocationList,
    StaticKeys,
    TokenVerifier,
)
from callmesh.core.bus import Bus
from callmesh.core.errors import Unauthenticated
from callmesh.core.runtime import Runtime
from callmesh.core.settings import PlatformSettings
from callmesh.core.tenancy import TenantInfo, TenantStatus
from callmesh.proto.subjects import Bucket

PASSWORD = "Correct-Horse-42"
OTHER_PASSWORD = "Battery-Staple-77"
OPERATOR_PASSWORD = "Operator-Pass-99"


@dataclass
class Admin:
    """The running admin app and what tests poke at."""

    app: FastAPI
    runtime: Runtime
    http: httpx.AsyncClient
    settings: AdminSettings

    async def set_tenant(self, tenant_id: str, status: TenantStatus) -> None:
        kv = await self.runtime.bus.kv(Bucket.TENANTS)
        await kv.put(tenant_id, TenantInfo(tenant_id, status, name=tenant_id).to_json())
        gate = self.runtime.tenant_gate
        await eventually(lambda: _status(gate.info(tenant_id)) == status)

    async def add_user(
        self,
        tenant_id: str,
        username: str,
        password: str = PASSWORD,
        roles: tuple[str, ...] = ("agent",),
        *,
        disabled: bool = False,
    ) -> str:
        now = datetime.now(UTC)
        user_id = f"usr_{int(now.timestamp() * 1000):012x}{abs(hash(username)) % 16**12:012x}"
        users = (await self.runtime.store.tenant(tenant_id)).collection("users")
        await users.insert_one(
            {
                "_id": user_id,
                "username": username,
                "display_name": username.title(),
                "email": None,
                "roles": list(roles),
                "groups": [],
                "password_hash": await hash_password(password),
                "password_changed_at": now,
                "must_change_password": False,
                "disabled": disabled,
                "login": {"failures": 0, "first_failure_at": None, "locked_until": None},
                "last_login_at": None,
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
        )
        return user_id

    async def add_operator(self, username: str = "root") -> str:
        platform = self.runtime.store.operator()
        operators = Operators(
            MongoOperators(platform),
            Argon2Passwords(),
            Auditor(MongoAuditLog(platform), utc_now),
            utc_now,
            PasswordPolicy(),
        )
        created = await operators.create(
            Actor.system("test"), username=username, password=OPERATOR_PASSWORD
        )
        return created.operator_id

    async def login(
        self, username: str, password: str = PASSWORD, tenant: str | None = None
    ) -> httpx.Response:
        body: dict[str, Any] = {"username": username, "password": password}
        if tenant is not None:
            body["tenant"] = tenant
        return await self.http.post("/v1/auth/login", json=body)

    async def tokens(
        self, username: str, password: str = PASSWORD, tenant: str | None = None
    ) -> dict[str, Any]:
        response = await self.login(username, password, tenant)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def audit(self, action: str) -> list[Any]:
        log = MongoAuditLog(self.runtime.store.operator())
        page = await log.search(AuditQuery(action_prefix=action, limit=100))
        return page.items


def _status(info: TenantInfo | None) -> TenantStatus | None:
    return info.status if info is not None else None


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        outcome = check()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def admin(platform_settings: PlatformSettings, run_admin: Any) -> AsyncIterator[Admin]:
    settings = AdminSettings(platform=platform_settings, login_max_failures=3)
    async with run_admin(settings, base_url="http://admin.test") as running:
        instance = Admin(running.app, running.runtime, running.http, settings)
        await instance.set_tenant("acme", TenantStatus.ACTIVE)
        await instance.set_tenant("globex", TenantStatus.ACTIVE)
        yield instance


# ---------------------------------------------------------------------------------------------
# Login and verification


async def test_a_users_token_is_verified_by_admin_and_by_a_verifier_fed_from_the_jwks(
    admin: Admin,
) -> None:
    user_id = await admin.add_user("acme", "ann", roles=("agent", "qa"))
    roles = (await admin.runtime.store.tenant("acme")).collection("roles")
    await roles.insert_one(
        {
            "_id": "acme:agent",
            "role": "agent",
            "permissions": ["desk.use", "reports.read"],
            "updated_at": datetime.now(UTC),
        }
    )

    response = await admin.login("ann", tenant="acme")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["refresh_expires_in"] == 30 * 86400
    token = body["access_token"]

    me = await admin.http.get("/v1/auth/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    who = me.json()
    assert (who["kind"], who["subject"], who["tenant_id"]) == ("user", user_id, "acme")
    assert who["username"] == "ann"
    assert who["roles"] == ["agent", "qa"]
    # The agent role's set is the tenant's override; qa keeps its default set.
    assert "reports.read" in who["permissions"]
    assert "evaluations.write" in who["permissions"]
    assert "queues.read" not in who["permissions"]

    jwks = await admin.http.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    assert jwks.headers["cache-control"] == "public, max-age=300"
    assert (await admin.http.get("/v1/auth/jwks")).json() == jwks.json()
    assert all("d" not in key for key in jwks.json()["keys"])
    platform = admin.settings.platform
    elsewhere = TokenVerifier(
        StaticKeys.from_jwks(jwks.json()),
        issuer=platform.jwt_issuer,
        audience=platform.jwt_audience,
    )
    principal = await elsewhere.verify(token)
    assert (principal.subject, principal.tenant_id) == (user_id, "acme")
    assert principal.permissions == frozenset(who["permissions"])

    # As another service fetches it: JwksKeys over HTTP (here through the app's ASGI transport).
    fetched = JwksKeys(
        "http://admin.test/.well-known/jwks.json",
        client=httpx.AsyncClient(
            transport=httpx.ASGITransport(app=admin.app), base_url="http://admin.test"
        ),
    )
    remote = TokenVerifier(fetched, issuer=platform.jwt_issuer, audience=platform.jwt_audience)
    assert (await remote.verify(token)).subject == user_id

    logins = await admin.audit("auth.login")
    assert [e.target_id for e in logins] == [user_id]


async def test_wrong_password_unknown_user_and_unknown_tenant_are_indistinguishable(
    admin: Admin,
) -> None:
    await admin.add_user("acme", "ann")
    await admin.add_user("acme", "dan", disabled=True)
    await admin.set_tenant("gone", TenantStatus.DELETED)
    await admin.add_user("gone", "ann")

    attempts = [
        await admin.login("ann", "Wrong-Password-1", tenant="acme"),
        await admin.login("nobody", tenant="acme"),
        await admin.login("ann", tenant="nosuchtenant"),
        await admin.login("dan", tenant="acme"),
        await admin.login("ann", tenant="gone"),
        await admin.login("Not A Username!", tenant="acme"),
        await admin.login("ann"),  # no tenant: an operator login, and there is no such operator
    ]

    def shape(response: httpx.Response) -> tuple[Any, ...]:
        headers = {k: v for k, v in response.headers.items() if k not in ("date",)}
        return response.status_code, response.json(), headers

    first = shape(attempts[0])
    assert first[0] == 401
    assert first[1]["code"] == "unauthenticated"
    assert first[1]["detail"] == "invalid credentials"
    assert all(shape(r) == first for r in attempts[1:])


async def test_a_user_of_one_tenant_cannot_log_in_to_another_with_the_same_username(
    admin: Admin,
) -> None:
    acme_ann = await admin.add_user("acme", "ann", PASSWORD)
    globex_ann = await admin.add_user("globex", "ann", OTHER_PASSWORD)

    assert (await admin.login("ann", PASSWORD, tenant="globex")).status_code == 401
    assert (await admin.login("ann", OTHER_PASSWORD, tenant="acme")).status_code == 401
    acme = await admin.tokens("ann", PASSWORD, tenant="acme")
    globex = await admin.tokens("ann", OTHER_PASSWORD, tenant="globex")
    me_acme = (await admin.http.get("/v1/auth/me", headers=bearer(acme["access_token"]))).json()
    me_globex = (await admin.http.get("/v1/auth/me", headers=bearer(globex["access_token"]))).json()
    assert (me_acme["subject"], me_acme["tenant_id"]) == (acme_ann, "acme")
    assert (me_globex["subject"], me_globex["tenant_id"]) == (globex_ann, "globex")


async def test_a_locked_account_says_so_only_to_the_right_password(admin: Admin) -> None:
    user_id = await admin.add_user("acme", "ann")
    for _ in range(3):
        assert (await admin.login("ann", "Wrong-Password-1", tenant="acme")).status_code == 401

    locked = await admin.login("ann", tenant="acme")
    assert locked.status_code == 401
    assert locked.json()["code"] == "account_locked"
    assert 1 <= int(locked.headers["retry-after"]) <= 900
    # A wrong guess during the lock gets the answer an unknown user gets.
    guess = await admin.login("ann", "Wrong-Password-2", tenant="acme")
    unknown = await admin.login("nobody", "Wrong-Password-2", tenant="acme")
    assert (guess.status_code, guess.json()) == (unknown.status_code, unknown.json())
    assert "retry-after" not in guess.headers
    assert [e.target_id for e in await admin.audit("user.lock")] == [user_id]


async def test_a_suspended_tenants_users_still_log_in_and_a_deleted_tenants_do_not(
    admin: Admin,
) -> None:
    await admin.add_user("acme", "ann")
    await admin.set_tenant("acme", TenantStatus.SUSPENDED)
    assert (await admin.login("ann", tenant="acme")).status_code == 200
    await admin.set_tenant("acme", TenantStatus.DELETED)
    assert (await admin.login("ann", tenant="acme")).status_code == 401


async def test_request_bodies_are_validated_naming_the_field(admin: Admin) -> None:
    extra = await admin.http.post(
        "/v1/auth/login", json={"username": "ann", "password": "x", "admin": True}
    )
    assert extra.status_code == 422
    assert extra.json()["errors"][0]["field"] == "body.admin"
    bad_tenant = await admin.http.post(
        "/v1/auth/login", json={"tenant": "Not_A_Slug", "username": "ann", "password": "x"}
    )
    assert bad_tenant.status_code == 422
    assert bad_tenant.json()["errors"][0]["field"] == "body.tenant"
    short = await admin.http.post("/v1/auth/refresh", json={"refresh_token": "short"})
    assert short.status_code == 422
    assert short.json()["errors"][0]["field"] == "body.refresh_token"


# ---------------------------------------------------------------------------------------------
# Refresh and logout


async def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(
    admin: Admin,
) -> None:
    await admin.add_user("acme", "ann")
    first = await admin.tokens("ann", tenant="acme")

    rotated = await admin.http.post(
        "/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    me = await admin.http.get("/v1/auth/me", headers=bearer(second["access_token"]))
    assert me.status_code == 200

    # The first refresh token again: someone replays it. The whole family dies.
    replay = await admin.http.post(
        "/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert replay.status_code == 401
    assert replay.json()["details"]["reason"] == "invalid_refresh_token"
    later = await admin.http.post(
        "/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert later.status_code == 401
    refused = await admin.http.get("/v1/auth/me", headers=bearer(second["access_token"]))
    assert refused.status_code == 401
    assert refused.json()["details"]["reason"] == "revoked"
    assert len(await admin.audit("auth.refresh_reuse")) == 1


async def test_refresh_reads_the_user_again(admin: Admin) -> None:
    user_id = await admin.add_user("acme", "ann", roles=("agent",))
    grant = await admin.tokens("ann", tenant="acme")
    users = (await admin.runtime.store.tenant("acme")).collection("users")

    await users.update_one({"_id": user_id}, {"$set": {"roles": ["agent", "supervisor"]}})
    rotated = await admin.http.post(
        "/v1/auth/refresh", json={"refresh_token": grant["refresh_token"]}
    )
    assert rotated.status_code == 200
    me = await admin.http.get("/v1/auth/me", headers=bearer(rotated.json()["access_token"]))
    assert me.json()["roles"] == ["agent", "supervisor"]

    await users.update_one({"_id": user_id}, {"$set": {"disabled": True}})
    refused = await admin.http.post(
        "/v1/auth/refresh", json={"refresh_token": rotated.json()["refresh_token"]}
    )
    assert refused.status_code == 401


@pytest.fixture
async def service_bus(platform_settings: PlatformSettings) -> AsyncIterator[Bus]:
    """Another service's own connection to NATS."""
    other = Bus(platform_settings, "acd")
    await other.connect(attempts=3)
    yield other
    await other.close()


async def test_logout_revokes_the_token_for_every_service(admin: Admin, service_bus: Bus) -> None:
    await admin.add_user("acme", "ann")
    grant = await admin.tokens("ann", tenant="acme")
    token = grant["access_token"]
    jwks = (await admin.http.get("/.well-known/jwks.json")).json()
    revocations = RevocationList(service_bus, check_interval_s=0.1)
    await revocations.start()
    try:
        await asyncio.wait_for(revocations.ready.wait(), 15)
        platform = admin.settings.platform
        acd = TokenVerifier(
            StaticKeys.from_jwks(jwks),
            issuer=platform.jwt_issuer,
            audience=platform.jwt_audience,
            revocations=revocations,
        )
        principal = await acd.verify(token)

        logout = await admin.http.post("/v1/auth/logout", headers=bearer(token))
        assert logout.status_code == 204

        await eventually(lambda: revocations.is_revoked(principal.token_id))
        with pytest.raises(Unauthenticated, match="revoked"):
            await acd.verify(token)
    finally:
        await revocations.stop()
    assert (await admin.http.get("/v1/auth/me", headers=bearer(token))).status_code == 401
    # The session family went with it: its refresh token is dead too.
    refresh = await admin.http.post(
        "/v1/auth/refresh", json={"refresh_token": grant["refresh_token"]}
    )
    assert refresh.status_code == 401
    assert len(await admin.audit("auth.logout")) == 1


async def test_logout_with_a_refresh_token_ends_that_session_too(admin: Admin) -> None:
    await admin.add_user("acme", "ann")
    laptop = await admin.tokens("ann", tenant="acme")
    phone = await admin.tokens("ann", tenant="acme")
    response = await admin.http.post(
        "/v1/auth/logout",
        headers=bearer(laptop["access_token"]),
        json={"refresh_token": phone["refresh_token"]},
    )
    assert response.status_code == 204
    for grant in (laptop, phone):
        refresh = await admin.http.post(
            "/v1/auth/refresh", json={"refresh_token": grant["refresh_token"]}
        )
        assert refresh.status_code == 401


async def test_a_user_changes_their_password_and_other_sessions_end(admin: Admin) -> None:
    await admin.add_user("acme", "ann")
    here = await admin.tokens("ann", tenant="acme")
    there = await admin.tokens("ann", tenant="acme")
    new_password = "Brand-New-Secret-7"

    weak = await admin.http.post(
        "/v1/auth/password",
        headers=bearer(here["access_token"]),
        json={"current_password": PASSWORD, "new_password": "short"},
    )
    assert weak.status_code == 422
    assert weak.json()["details"]["field"] == "new_password"
    wrong = await admin.http.post(
        "/v1/auth/password",
        headers=bearer(here["access_token"]),
        json={"current_password": "Not-The-Password-1", "new_password": new_password},
    )
    assert wrong.status_code == 422
    assert wrong.json()["details"]["field"] == "current_password"
    changed = await admin.http.post(
        "/v1/auth/password",
        headers=bearer(here["access_token"]),
        json={"current_password": PASSWORD, "new_password": new_password},
    )
    assert changed.status_code == 204, changed.text

    assert (await admin.login("ann", PASSWORD, tenant="acme")).status_code == 401
    assert (await admin.login("ann", new_password, tenant="acme")).status_code == 200
    kept = await admin.http.post("/v1/auth/refresh", json={"refresh_token": here["refresh_token"]})
    ended = await admin.http.post(
        "/v1/auth/refresh", json={"refresh_token": there["refresh_token"]}
    )
    assert (kept.status_code, ended.status_code) == (200, 401)


# ---------------------------------------------------------------------------------------------
# API keys


async def add_api_key(
    admin: Admin,
    tenant_id: str,
    roles: tuple[str, ...] = ("report_viewer",),
    **fields: Any,
) -> tuple[str, str]:
    now = datetime.now(UTC)
    hex_id = f"{int(now.timestamp() * 1000):012x}{abs(hash((tenant_id, now))) % 16**12:012x}"
    key_id = f"key_{hex_id}"
    secret = new_secret()
    keys = (await admin.runtime.store.tenant(tenant_id)).collection("api_keys")
    await keys.insert_one(
        {
            "_id": key_id,
            "name": "crm",
            "roles": list(roles),
            "secret_hash": hash_secret(secret),
            "prefix": f"cmk_{tenant_id}_{hex_id[:8]}",
            "created_at": now,
            "created_by": "usr_test",
            "expires_at": None,
            "revoked_at": None,
            "last_used_at": None,
            **fields,
        }
    )
    return key_id, format_api_key(tenant_id, key_id, secret)


async def test_an_api_key_is_exchanged_for_a_short_lived_token_of_its_roles(admin: Admin) -> None:
    key_id, key = await add_api_key(admin, "acme", roles=("report_viewer",))

    response = await admin.http.post(
        "/v1/auth/token", json={"grant_type": "api_key", "api_key": key}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body
    assert 0 < body["expires_in"] <= 3600
    me = (await admin.http.get("/v1/auth/me", headers=bearer(body["access_token"]))).json()
    assert (me["kind"], me["subject"], me["tenant_id"]) == ("api_key", key_id, "acme")
    assert me["roles"] == ["report_viewer"]
    assert set(me["permissions"]) == {"reports.read", "calls.read"}

    by_header = await admin.http.post(
        "/v1/auth/token", json={"grant_type": "api_key"}, headers={"Authorization": f"ApiKey {key}"}
    )
    assert by_header.status_code == 200
    stored = (
        await (await admin.runtime.store.tenant("acme"))
        .collection("api_keys")
        .find_one({"_id": key_id})
    )
    assert stored is not None
    assert stored["last_used_at"] is not None

    both = await admin.http.post(
        "/v1/auth/token",
        json={"grant_type": "api_key", "api_key": key},
        headers={"Authorization": f"ApiKey {key}"},
    )
    assert both.status_code == 422
    assert both.json()["details"]["field"] == "api_key"


async def test_revoked_expired_wrong_and_foreign_api_keys_are_refused_alike(admin: Admin) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    _, revoked = await add_api_key(admin, "acme", revoked_at=past)
    _, expired = await add_api_key(admin, "acme", expires_at=past)
    _, good = await add_api_key(admin, "acme")
    wrong_secret = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    # acme's key presented as globex's: another tenant's key id is just unknown there.
    foreign = good.replace("cmk_acme_", "cmk_globex_")
    answers = []
    for key in (revoked, expired, wrong_secret, foreign, "cmk_garbage", "not even close"):
        response = await admin.http.post(
            "/v1/auth/token", json={"grant_type": "api_key", "api_key": key}
        )
        answers.append((response.status_code, response.json()["detail"]))
    assert set(answers) == {(401, "invalid API key")}


# ---------------------------------------------------------------------------------------------
# Signing keys and operators


async def test_operators_rotate_the_signing_key_and_the_jwks_publishes_it_ahead(
    admin: Admin,
) -> None:
    await admin.add_operator()
    await admin.add_user("acme", "ann", roles=("tenant_admin",))
    operator = await admin.tokens("root", OPERATOR_PASSWORD)
    headers = bearer(operator["access_token"])

    keys = (await admin.http.get("/v1/operator/signing-keys", headers=headers)).json()
    assert [k["state"] for k in keys] == ["active"]
    active_kid = keys[0]["kid"]
    assert "private_key" not in keys[0]

    rotated = await admin.http.post("/v1/operator/signing-keys/rotate", headers=headers)
    assert rotated.status_code == 201, rotated.text
    pending = rotated.json()
    assert pending["state"] == "pending"
    assert pending["generation"] == 2
    jwks = (await admin.http.get("/.well-known/jwks.json")).json()
    assert {k["kid"] for k in jwks["keys"]} == {active_kid, pending["kid"]}
    again = await admin.http.post("/v1/operator/signing-keys/rotate", headers=headers)
    assert again.status_code == 409
    assert again.json()["details"]["reason"] == "rotation_pending"

    # Until the new key activates, tokens are still signed with the active one.
    fresh = await admin.tokens("ann", tenant="acme")
    elsewhere = StaticKeys.from_jwks(jwks)
    assert await elsewhere.keys_for(active_kid)
    platform = admin.settings.platform
    verifier = TokenVerifier(elsewhere, issuer=platform.jwt_issuer, audience=platform.jwt_audience)
    assert (await verifier.verify(fresh["access_token"])).tenant_id == "acme"

    tenant_admin = bearer(fresh["access_token"])
    forbidden = await admin.http.post("/v1/operator/signing-keys/rotate", headers=tenant_admin)
    assert forbidden.status_code == 403
    assert len(await admin.audit("signing_key.create")) == 2


async def test_operators_manage_operators_but_never_the_last_one(admin: Admin) -> None:
    root_id = await admin.add_operator("root")
    root = bearer((await admin.tokens("root", OPERATOR_PASSWORD))["access_token"])

    created = await admin.http.post(
        "/v1/operator/operators",
        headers=root,
        json={"username": "ops", "password": "Second-Operator-8", "email": "Ops@Example.COM"},
    )
    assert created.status_code == 201, created.text
    ops = created.json()
    assert ops["email"] == "Ops@example.com"
    assert created.headers["etag"] == '"1"'
    assert "password_hash" not in ops
    taken = await admin.http.post(
        "/v1/operator/operators",
        headers=root,
        json={"username": "ops", "password": "Second-Operator-8"},
    )
    assert taken.status_code == 409
    assert taken.json()["details"]["reason"] == "username_taken"
    weak = await admin.http.post(
        "/v1/operator/operators", headers=root, json={"username": "weak", "password": "weak"}
    )
    assert weak.status_code == 422
    assert weak.json()["details"]["field"] == "password"

    listed = (await admin.http.get("/v1/operator/operators", headers=root)).json()
    assert [o["username"] for o in listed["items"]] == ["root", "ops"]
    ops_token = (await admin.tokens("ops", "Second-Operator-8"))["access_token"]

    stale = await admin.http.patch(
        f"/v1/operator/operators/{ops['id']}",
        headers={**root, "If-Match": '"7"'},
        json={"display_name": "Ops team"},
    )
    assert stale.status_code == 412
    disabled = await admin.http.patch(
        f"/v1/operator/operators/{ops['id']}",
        headers={**root, "If-Match": '"1"'},
        json={"disabled": True},
    )
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["version"] == 2
    assert (await admin.login("ops", "Second-Operator-8")).status_code == 401
    # Disabling ended the operator's sessions: its token is revoked at once.
    assert (await admin.http.get("/v1/auth/me", headers=bearer(ops_token))).status_code == 401

    last = await admin.http.patch(
        f"/v1/operator/operators/{root_id}", headers=root, json={"disabled": True}
    )
    assert last.status_code == 409
    assert last.json()["details"]["reason"] == "last_operator"
    assert (
        await admin.http.delete(f"/v1/operator/operators/{root_id}", headers=root)
    ).status_code == 409
    assert (
        await admin.http.delete(f"/v1/operator/operators/{ops['id']}", headers=root)
    ).status_code == 204
    assert (
        await admin.http.get(f"/v1/operator/operators/{ops['id']}", headers=root)
    ).status_code == 404
    assert (
        await admin.http.get("/v1/operator/operators/opr_nonsense", headers=root)
    ).status_code == 404

    await admin.add_user("acme", "ann", roles=("tenant_admin",))
    tenant_admin = bearer((await admin.tokens("ann", tenant="acme"))["access_token"])
    assert (await admin.http.get("/v1/operator/operators", headers=tenant_admin)).status_code == 403
    actions = [e.action for e in await admin.audit("operator.")]
    assert sorted(actions) == [
        "operator.create",
        "operator.create",
        "operator.delete",
        "operator.update",
    ]
