"""The per-tenant API through HTTP on the real admin app (real NATS and FerretDB)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from callmesh.admin.adapters.store_audit import MongoAuditLog
from callmesh.admin.app import AdminSettings
from callmesh.admin.ports.audit import AuditQuery
from callmesh.core.auth import (
    TokenIssuer,
    generate_signing_key,
)
from callmesh.core.bus import Bus
from callmesh.core.runtime import Runtime
from callmesh.core.settings import PlatformSettings
from callmesh.core.tenancy import SipDirectory, TenantInfo, TenantStatus
from callmesh.proto.subjects import Bucket, Domain

STRONG = "Correct-Horse-42"


@dataclass
class Platform:
    """The admin app under test, a token issuer its verifier trusts, and the test's bus."""

    http: httpx.AsyncClient
    runtime: Runtime
    issuer: TokenIssuer
    bus: Bus
    app: FastAPI

    async def tenant(
        self, tenant_id: str, status: TenantStatus = TenantStatus.ACTIVE, time_zone: str = "UTC"
    ) -> None:
        """Write the tenant's record as the operator area would, and wait for the gate."""
        info = TenantInfo(tenant_id, status, name=tenant_id, language="en", time_zone=time_zone)
        kv = await self.bus.kv(Bucket.TENANTS)
        await kv.put(tenant_id, info.to_json())
        deadline = time.monotonic() + 10
        while self.runtime.tenant_gate.info(tenant_id) != info:
            assert time.monotonic() < deadline, f"the gate never saw {tenant_id} {status}"
            await asyncio.sleep(0.02)

    def as_(
        self,
        tenant_id: str,
        *roles: str,
        subject: str = "usr_000000000000000000000000",
        permissions: Iterable[str] | None = None,
    ) -> dict[str, str]:
        """Headers of a tenant user holding ``roles``."""
        token = self.issuer.issue(
            subject, tenant_id=tenant_id, roles=roles, permissions=permissions
        )
        return {"Authorization": f"Bearer {token}"}

    async def audit(self, tenant_id: str, action_prefix: str) -> list[dict[str, Any]]:
        """The tenant's audit entries, newest first, as the tenant audit API shows them."""
        log = MongoAuditLog(self.runtime.store.operator())
        page = await log.search(
            AuditQuery(tenant_id=tenant_id, action_prefix=action_prefix, limit=500)
        )
        return [
            {"action": e.action, "target_id": e.target_id, "before": e.before, "after": e.after}
            for e in page.items
        ]

    def operator(self) -> dict[str, str]:
        """Headers of an operator."""
        return {"Authorization": f"Bearer {self.issuer.issue('op-1', operator=True)}"}


@pytest.fixture
async def platform(
    platform_settings: PlatformSettings, bus: Bus, run_admin: Any
) -> AsyncIterator[Platform]:
    # The API's per-tenant rate limit is not what these tests are about.
    settings = platform_settings.model_copy(update={"api_rate_per_s": 1e6, "api_burst": 1_000_000})
    async with run_admin(AdminSettings(platform=settings), trust=generate_signing_key()) as running:
        yield Platform(running.http, running.runtime, running.issuer, bus, running.app)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem body of a response that must have ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


def ok(response: httpx.Response, status: int = 200) -> Any:
    """The JSON body of a response that must have ``status``."""
    assert response.status_code == status, response.text
    return response.json() if response.content else None


# ---------------------------------------------------------------------------------------------
# Users


async def test_a_tenant_admin_manages_users_from_creation_to_deletion(platform: Platform) -> None:
    await platform.tenant("acme")
    admin = platform.as_("acme", "tenant_admin")
    http = platform.http
    team = ok(await http.post("/v1/t/acme/groups", json={"name": "Team A"}, headers=admin), 201)
    ann = ok(
        await http.post(
            "/v1/t/acme/users",
            json={
                "username": "ann",
                "display_name": "Ann Lee",
                "email": "Ann@Example.COM",
                "roles": ["agent", "qa", "agent"],
                "groups": [team["id"]],
                "password": STRONG,
            },
            headers=admin,
        ),
        201,
    )
    assert ann["roles"] == ["agent", "qa"]
    assert ann["email"] == "Ann@example.com"
    assert ann["password_set"] is True
    assert ann["must_change_password"] is True
    assert "password_hash" not in ann
    assert STRONG not in str(ann)
    assert "argon2" not in str(ann)
    bob = ok(
        await http.post(
            "/v1/t/acme/users",
            json={"username": "bob", "roles": ["supervisor"], "must_change_password": True},
            headers=admin,
        ),
        201,
    )
    assert bob["password_set"] is False
    assert bob["display_name"] == "bob"

    got = await http.get(f"/v1/t/acme/users/{ann['id']}", headers=admin)
    assert ok(got)["username"] == "ann"
    assert got.headers["etag"] == '"1"'
    listed = ok(await http.get("/v1/t/acme/users", headers=admin))
    assert [u["username"] for u in listed["items"]] == ["ann", "bob"]
    assert listed["next"] is None
    by_role = ok(await http.get("/v1/t/acme/users?role=supervisor", headers=admin))
    assert [u["username"] for u in by_role["items"]] == ["bob"]
    by_group = ok(await http.get(f"/v1/t/acme/users?group={team['id']}", headers=admin))
    assert [u["username"] for u in by_group["items"]] == ["ann"]
    found = ok(await http.get("/v1/t/acme/users", params={"search": "N LE"}, headers=admin))
    assert [u["username"] for u in found["items"]] == ["ann"]
    odd = ok(await http.get("/v1/t/acme/users", params={"search": "a.* (b)"}, headers=admin))
    assert odd["items"] == []
    page = ok(await http.get("/v1/t/acme/users?limit=1", headers=admin))
    rest = ok(await http.get(f"/v1/t/acme/users?limit=1&after={page['next']}", headers=admin))
    assert [u["username"] for u in page["items"] + rest["items"]] == ["ann", "bob"]

    url = f"/v1/t/acme/users/{ann['id']}"
    change = {"display_name": "Ann Lee-Wong", "roles": ["agent"], "email": None}
    problem(await http.patch(url, json=change, headers=admin), 428)
    problem(await http.patch(url, json=change, headers={**admin, "If-Match": '"7"'}), 412)
    patched = await http.patch(url, json=change, headers={**admin, "If-Match": '"1"'})
    assert ok(patched)["display_name"] == "Ann Lee-Wong"
    assert patched.headers["etag"] == '"2"'
    assert patched.json()["roles"] == ["agent"]
    assert patched.json()["email"] is None
    assert patched.json()["groups"] == [team["id"]]

    reset = await http.post(
        f"{url}/password",
        json={"password": "Another-Good-1", "must_change_password": False},
        headers=admin,
    )
    assert ok(reset)["must_change_password"] is False
    assert ok(await http.post(f"{url}/disable", headers=admin))["disabled"] is True
    assert (
        ok(await http.get("/v1/t/acme/users?disabled=true", headers=admin))["items"][0]["username"]
        == "ann"
    )
    assert ok(await http.post(f"{url}/enable", headers=admin))["disabled"] is False
    assert ok(await http.post(f"{url}/unlock", headers=admin))["failed_logins"] == 0
    assert ok(await http.delete(url, headers=admin), 204) is None
    problem(await http.get(url, headers=admin), 404)

    audit = await platform.audit("acme", "user.")
    actions = [e["action"] for e in audit]
    assert actions.count("user.create") == 2
    assert {"user.update", "user.password_reset", "user.disable", "user.delete"} <= set(actions)
    created = next(e for e in audit if e["target_id"] == ann["id"] and e["after"])
    assert created["after"]["password_hash"] == "***"
    assert "argon2" not in str(audit)


async def test_usernames_are_unique_per_tenant_only(platform: Platform) -> None:
    await platform.tenant("acme")
    await platform.tenant("globex")
    http = platform.http
    for tenant in ("acme", "globex"):
        ok(
            await http.post(
                f"/v1/t/{tenant}/users",
                json={"username": "ann"},
                headers=platform.as_(tenant, "tenant_admin"),
            ),
            201,
        )
    again = await http.post(
        "/v1/t/acme/users", json={"username": "ann"}, headers=platform.as_("acme", "tenant_admin")
    )
    body = problem(again, 409)
    assert "username" in body["detail"]
    assert body["details"]["field"] == "username"


async def test_a_user_changes_their_own_password_by_proving_the_current_one(
    platform: Platform,
) -> None:
    await platform.tenant("acme")
    admin = platform.as_("acme", "tenant_admin")
    user = ok(
        await platform.http.post(
            "/v1/t/acme/users",
            json={"username": "ann", "roles": ["agent"], "password": STRONG},
            headers=admin,
        ),
        201,
    )
    ann = platform.as_("acme", "agent", subject=user["id"])
    me = ok(await platform.http.get("/v1/t/acme/users/me", headers=ann))
    assert me["username"] == "ann"
    wrong = await platform.http.post(
        "/v1/t/acme/users/me/password",
        json={"current_password": "not-it", "new_password": "Brand-New-Secret-9"},
        headers=ann,
    )
    assert problem(wrong, 422)["details"]["field"] == "body.current_password"
    weak = await platform.http.post(
        "/v1/t/acme/users/me/password",
        json={"current_password": STRONG, "new_password": "short"},
        headers=ann,
    )
    assert problem(weak, 422)["details"]["field"] == "body.new_password"
    changed = await platform.http.post(
        "/v1/t/acme/users/me/password",
        json={"current_password": STRONG, "new_password": "Brand-New-Secret-9"},
        headers=ann,
    )
    assert ok(changed)["must_change_password"] is False
    assert changed.json()["failed_logins"] == 0
    # The failed attempt was counted but is not an edit (an admin's pending PATCH stays valid);
    # the change is: version 1 (created), then 2.
    assert (
        ok(await platform.http.get(f"/v1/t/acme/users/{user['id']}", headers=admin))["version"] == 2
    )


# ---------------------------------------------------------------------------------------------
# Roles, groups


async def test_roles_are_overridden_per_tenant_and_reset_to_their_defaults(
    platform: Platform,
) -> None:
    await platform.tenant("acme")
    await platform.tenant("globex")
    http = platform.http
    admin = platform.as_("acme", "tenant_admin")
    roles = ok(await http.get("/v1/t/acme/roles", headers=admin))
    agent = next(r for r in roles if r["role"] == "agent")
    assert agent["overridden"] is False
    assert agent["permissions"] == agent["default_permissions"]
    assert "operator" not in {r["role"] for r in roles}

    put = await http.put(
        "/v1/t/acme/roles/agent",
        json={"permissions": ["desk.use", "users.read"]},
        headers=admin,
    )
    assert ok(put)["permissions"] == ["desk.use", "users.read"]
    assert put.json()["overridden"]
    # Another tenant overriding the same role keeps its own set.
    other = platform.as_("globex", "tenant_admin")
    ok(await http.put("/v1/t/globex/roles/agent", json={"permissions": []}, headers=other))
    acme_agent = next(
        r for r in ok(await http.get("/v1/t/acme/roles", headers=admin)) if r["role"] == "agent"
    )
    assert acme_agent["permissions"] == ["desk.use", "users.read"]

    lockout = await http.put(
        "/v1/t/acme/roles/tenant_admin", json={"permissions": ["users.write"]}, headers=admin
    )
    assert "roles.write" in problem(lockout, 422)["detail"]
    unknown = await http.put(
        "/v1/t/acme/roles/agent", json={"permissions": ["desk.use", "desk.fly"]}, headers=admin
    )
    assert problem(unknown, 422)["details"]["field"] == "body.permissions[1]"
    problem(
        await http.put("/v1/t/acme/roles/operator", json={"permissions": []}, headers=admin), 404
    )

    reset = ok(await http.delete("/v1/t/acme/roles/agent", headers=admin))
    assert reset["overridden"] is False
    assert reset["permissions"] == agent["default_permissions"]
    permissions = ok(await http.get("/v1/t/acme/permissions", headers=admin))
    names = {p["name"] for p in permissions}
    assert {"users.write", "calendars.read", "desk.use"} <= names
    assert all(p["description"] for p in permissions)
    audit = await platform.audit("acme", "role.")
    assert [e["action"] for e in audit] == ["role.reset", "role.update"]


async def test_group_names_are_unique_and_a_deleted_group_leaves_its_members(
    platform: Platform,
) -> None:
    await platform.tenant("acme")
    http = platform.http
    admin = platform.as_("acme", "tenant_admin")
    boss = ok(await http.post("/v1/t/acme/users", json={"username": "boss"}, headers=admin), 201)
    group = ok(
        await http.post(
            "/v1/t/acme/groups",
            json={"name": "Sales", "description": "inbound sales", "supervisor_ids": [boss["id"]]},
            headers=admin,
        ),
        201,
    )
    problem(await http.post("/v1/t/acme/groups", json={"name": "Sales"}, headers=admin), 409)
    bad = await http.post(
        "/v1/t/acme/groups", json={"name": "X", "supervisor_ids": ["usr_nope"]}, headers=admin
    )
    assert problem(bad, 422)["details"]["field"] == "body.supervisor_ids[0]"
    members = []
    for name in ("ann", "bob"):
        members.append(
            ok(
                await http.post(
                    "/v1/t/acme/users",
                    json={"username": name, "groups": [group["id"]]},
                    headers=admin,
                ),
                201,
            )
        )
    renamed = await http.patch(
        f"/v1/t/acme/groups/{group['id']}", json={"name": "Sales EU"}, headers=admin
    )
    assert ok(renamed)["name"] == "Sales EU"
    assert renamed.json()["supervisor_ids"] == [boss["id"]]
    listed = ok(await http.get("/v1/t/acme/groups", headers=admin))
    assert [g["name"] for g in listed["items"]] == ["Sales EU"]
    ok(await http.delete(f"/v1/t/acme/groups/{group['id']}", headers=admin), 204)
    for member in members:
        after = ok(await http.get(f"/v1/t/acme/users/{member['id']}", headers=admin))
        assert after["groups"] == []
        assert after["version"] == 2
    problem(await http.get(f"/v1/t/acme/groups/{group['id']}", headers=admin), 404)


# ---------------------------------------------------------------------------------------------
# Devices and the SIP directory


async def test_devices_keep_only_the_a1_hash_and_show_a_generated_password_once(
    platform: Platform,
) -> None:
    await platform.tenant("acme")
    http = platform.http
    admin = platform.as_("acme", "tenant_admin")
    ann = ok(await http.post("/v1/t/acme/users", json={"username": "ann"}, headers=admin), 201)
    phone = ok(
        await http.post(
            "/v1/t/acme/devices",
            json={"username": "1001", "display_name": "Desk 1", "caller_id_number": "+33 1 23"},
            headers=admin,
        ),
        201,
    )
    assert len(phone["password"]) >= 12
    assert phone["domain"] == "acme.sip.callmesh.local"
    assert phone["caller_id_number"] == "+33123"
    assert phone["kind"] == "sip"
    got = ok(await http.get(f"/v1/t/acme/devices/{phone['id']}", headers=admin))
    assert "password" not in got
    assert "a1_hash" not in got
    short = await http.post(
        "/v1/t/acme/devices", json={"username": "1002", "password": "short"}, headers=admin
    )
    assert problem(short, 422)["details"]["field"] == "body.password"
    web = ok(
        await http.post(
            "/v1/t/acme/devices",
            json={"kind": "webrtc", "username": "ann-web", "password": "a-long-secret-1"},
            headers=admin,
        ),
        201,
    )
    assert web["password"] is None
    problem(await http.post("/v1/t/acme/devices", json={"username": "1001"}, headers=admin), 409)

    bound = ok(
        await http.put(
            f"/v1/t/acme/devices/{phone['id']}/user", json={"user_id": ann["id"]}, headers=admin
        )
    )
    assert bound["user_id"] == ann["id"]
    mine = ok(await http.get(f"/v1/t/acme/devices?user_id={ann['id']}", headers=admin))
    assert [d["username"] for d in mine["items"]] == ["1001"]
    webs = ok(await http.get("/v1/t/acme/devices?kind=webrtc", headers=admin))
    assert [d["username"] for d in webs["items"]] == ["ann-web"]
    rotated = ok(
        await http.post(f"/v1/t/acme/devices/{phone['id']}/secret", json={}, headers=admin)
    )
    assert rotated["password"]
    assert rotated["password"] != phone["password"]
    patched = ok(
        await http.patch(
            f"/v1/t/acme/devices/{phone['id']}",
            json={"site_id": "branch-1", "caller_id_number": None},
            headers=admin,
        )
    )
    assert patched["site_id"] == "branch-1"
    assert patched["caller_id_number"] is None
    unbound = ok(await http.delete(f"/v1/t/acme/devices/{phone['id']}/user", headers=admin))
    assert unbound["user_id"] is None
    ok(await http.delete(f"/v1/t/acme/devices/{web['id']}", headers=admin), 204)
    audit = await platform.audit("acme", "device.")
    assert {e["action"] for e in audit} >= {
        "device.create",
        "device.bind",
        "device.rotate_secret",
        "device.unbind",
        "device.delete",
    }
    assert all((e["after"] or e["before"])["a1_hash"] == "***" for e in audit)


async def test_the_sip_directory_answers_freeswitch_and_follows_secret_rotation(
    platform: Platform,
) -> None:
    await platform.tenant("acme")
    http = platform.http
    admin = platform.as_("acme", "tenant_admin")
    ann = ok(await http.post("/v1/t/acme/users", json={"username": "ann"}, headers=admin), 201)
    phone = ok(
        await http.post(
            "/v1/t/acme/devices",
            json={
                "username": "1001",
                "display_name": "Ann's phone",
                "password": "first-password-1",
                "user_id": ann["id"],
                "site_id": "branch-1",
            },
            headers=admin,
        ),
        201,
    )
    directory = SipDirectory(platform.bus, ttl_s=300)
    await directory.start()
    try:
        domain = "ACME.sip.callmesh.local."
        answer = await directory.lookup(domain, "1001")
        realm = "acme.sip.callmesh.local"
        first = hashlib.md5(b"1001:acme.sip.callmesh.local:first-password-1").hexdigest()
        assert answer.found
        assert answer.tenant_id == "acme"
        assert answer.a1_hash == first
        assert (answer.user_id, answer.site_id, answer.kind) == (ann["id"], "branch-1", "sip")
        assert answer.display_name == "Ann's phone"
        assert not (await directory.lookup(realm, "1002")).found
        assert not (await directory.lookup("acme.sip.elsewhere.net", "1001")).found
        assert not (await directory.lookup("globex.sip.callmesh.local", "1001")).found

        ok(
            await http.post(
                f"/v1/t/acme/devices/{phone['id']}/secret",
                json={"password": "second-password-2"},
                headers=admin,
            )
        )
        second = hashlib.md5(b"1001:acme.sip.callmesh.local:second-password-2").hexdigest()
        # The cache holds the first answer for 300 s unless the change event drops it.
        deadline = time.monotonic() + 10
        while (await directory.lookup(realm, "1001")).a1_hash != second:
            assert time.monotonic() < deadline, "the rotation never reached the directory"
            await asyncio.sleep(0.02)

        ok(await http.post("/v1/t/acme/devices", json={"username": "1002"}, headers=admin), 201)
        deadline = time.monotonic() + 10
        while not (await directory.lookup(realm, "1002")).found:
            assert time.monotonic() < deadline, "a new device never reached the directory"
            await asyncio.sleep(0.02)

        # Suspended: still found (the dialplan refuses the calls); deleted: gone.
        # (Writing the record publishes no event here: the cache is cleared by hand.)
        await platform.tenant("acme", TenantStatus.SUSPENDED)
        directory.clear()
        assert (await directory.lookup(realm, "1001")).found
        await platform.tenant("acme", TenantStatus.DELETED)
        directory.clear()
        assert not (await directory.lookup(realm, "1001")).found
    finally:
        await directory.stop()


# ---------------------------------------------------------------------------------------------
# API keys


async def test_api_keys_are_shown_once_stored_hashed_and_revocable(platform: Platform) -> None:
    await platform.tenant("acme")
    http = platform.http
    admin = platform.as_("acme", "tenant_admin")
    created = ok(
        await http.post(
            "/v1/t/acme/api-keys",
            json={"name": "CRM", "roles": ["report_viewer"], "expires_at": "2099-01-01T00:00:00Z"},
            headers=admin,
        ),
        201,
    )
    key = created["key"]
    _, tenant, hex_id, secret = key.split("_", 3)
    assert key.startswith("cmk_acme_")
    assert tenant == "acme"
    assert created["id"] == f"key_{hex_id}"
    assert len(secret) == 43
    assert created["prefix"] == f"cmk_acme_{hex_id[:8]}"
    assert created["status"] == "active"
    stored = (
        await (await platform.runtime.store.tenant("acme"))
        .collection("api_keys")
        .find_one({"_id": created["id"]})
    )
    assert stored is not None
    assert stored["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(stored)

    listed = ok(await http.get("/v1/t/acme/api-keys", headers=admin))
    assert [k["name"] for k in listed["items"]] == ["CRM"]
    assert "key" not in listed["items"][0]
    assert secret not in str(listed)
    past = await http.post(
        "/v1/t/acme/api-keys",
        json={"name": "old", "roles": ["agent"], "expires_at": "2001-01-01T00:00:00Z"},
        headers=admin,
    )
    assert problem(past, 422)["details"]["field"] == "body.expires_at"
    problem(
        await http.post("/v1/t/acme/api-keys", json={"name": "x", "roles": []}, headers=admin),
        422,
    )

    # Someone given api_keys.write (not an admin) mints only roles they hold.
    keeper = platform.as_("acme", "supervisor", permissions=["api_keys.read", "api_keys.write"])
    above = await http.post(
        "/v1/t/acme/api-keys",
        json={"name": "x", "roles": ["supervisor", "tenant_admin"]},
        headers=keeper,
    )
    assert problem(above, 403)["details"]["field"] == "roles[1]"
    ok(
        await http.post(
            "/v1/t/acme/api-keys", json={"name": "sup", "roles": ["supervisor"]}, headers=keeper
        ),
        201,
    )
    problem(await http.post(f"/v1/t/acme/api-keys/{created['id']}/revoke", headers=keeper), 403)

    revoked = ok(await http.post(f"/v1/t/acme/api-keys/{created['id']}/revoke", headers=admin))
    assert revoked["status"] == "revoked"
    assert revoked["revoked_at"]
    again = ok(await http.post(f"/v1/t/acme/api-keys/{created['id']}/revoke", headers=admin))
    assert again["revoked_at"] == revoked["revoked_at"]
    ok(await http.delete(f"/v1/t/acme/api-keys/{created['id']}", headers=admin), 204)
    problem(await http.get(f"/v1/t/acme/api-keys/{created['id']}", headers=admin), 404)
    audit = await platform.audit("acme", "api_key.")
    assert [e["action"] for e in audit] == [
        "api_key.delete",
        "api_key.revoke",
        "api_key.create",
        "api_key.create",
    ]
    assert all((e["after"] or e["before"])["secret_hash"] == "***" for e in audit)


# ---------------------------------------------------------------------------------------------
# Calendars


WORKWEEK = {day: [["09:00", "12:00"], ["13:00", "18:00"]] for day in ("mon", "tue", "wed", "thu")}


async def test_a_calendar_says_when_it_is_open_across_a_dst_change_and_a_holiday(
    platform: Platform,
) -> None:
    await platform.tenant("acme", time_zone="Europe/Berlin")
    http = platform.http
    admin = platform.as_("acme", "tenant_admin")
    calendar = ok(
        await http.post(
            "/v1/t/acme/calendars",
            json={
                "name": "Support",
                "weekly": {**WORKWEEK, "fri": [["09:00", "17:00"]]},
                "holidays": [
                    {"date": "2026-10-03", "name": "German Unity Day"},
                    {
                        "date": "2026-12-24",
                        "name": "Christmas Eve",
                        "closed": False,
                        "hours": [["09:00", "12:00"]],
                    },
                ],
                "exceptions": [{"date": "2026-03-28", "hours": [["10:00", "14:00"]]}],
            },
            headers=admin,
        ),
        201,
    )
    assert calendar["time_zone"] == "Europe/Berlin"  # the tenant's
    assert calendar["weekly"]["sat"] == []
    assert calendar["exceptions"][0]["name"]

    async def at(moment: str) -> dict[str, Any]:
        url = f"/v1/t/acme/calendars/{calendar['id']}/open"
        body: dict[str, Any] = ok(await http.get(url, params={"at": moment}, headers=admin))
        return body

    # Saturday 28 March, an extra working day until 14:00 CET; clocks spring forward that night.
    saturday = await at("2026-03-28T12:00:00Z")
    assert saturday["open"]
    assert saturday["reason"] == "working hours"
    assert saturday["next_change"] == "2026-03-28T13:00:00Z"
    # Sunday closed; Monday opens at 09:00 summer time, 07:00 UTC (not 08:00).
    sunday = await at("2026-03-29T10:00:00+02:00")
    assert not sunday["open"]
    assert sunday["reason"] == "closed"
    assert sunday["next_change"] == "2026-03-30T07:00:00Z"
    lunch = await at("2026-03-30T10:30:00Z")  # 12:30 CEST
    assert not lunch["open"]
    assert lunch["next_change"] == "2026-03-30T11:00:00Z"
    # Saturday 3 October: a holiday (and a weekend); Monday 5 opens.
    unity = await at("2026-10-03T09:00:00Z")
    assert not unity["open"]
    assert unity["reason"] == "holiday: German Unity Day"
    assert unity["next_change"] == "2026-10-05T07:00:00Z"
    # Christmas Eve keeps special hours.
    eve = await at("2026-12-24T09:30:00Z")
    assert eve["open"]
    assert eve["reason"] == "holiday: Christmas Eve"
    assert eve["next_change"] == "2026-12-24T11:00:00Z"
    naive = await http.get(
        f"/v1/t/acme/calendars/{calendar['id']}/open",
        params={"at": "2026-03-30T10:30:00"},
        headers=admin,
    )
    assert problem(naive, 422)["details"]["field"] == "query.at"


async def test_calendars_are_validated_replaced_and_announced(platform: Platform) -> None:
    await platform.tenant("acme")
    http = platform.http
    admin = platform.as_("acme", "tenant_admin")
    changes: list[list[str]] = []
    subject = platform.bus.subjects.events(
        Domain.TENANT, tenant_id="acme", name="calendars_changed"
    )

    async def heard(msg: Any) -> None:
        from callmesh.proto.v1.event_pb2 import Event

        changes.append(list(Event.FromString(msg.data).tenant_calendars_changed.calendar_ids))

    sub = await platform.bus.nc.subscribe(subject, cb=heard)
    await platform.bus.nc.flush()
    bad_times = await http.post(
        "/v1/t/acme/calendars",
        json={"name": "x", "weekly": {"mon": [["09:00", "25:00"]]}},
        headers=admin,
    )
    assert problem(bad_times, 422)["details"]["field"] == "body.weekly.mon[0]"
    overlapping = await http.post(
        "/v1/t/acme/calendars",
        json={"name": "x", "weekly": {"tue": [["09:00", "13:00"], ["12:00", "18:00"]]}},
        headers=admin,
    )
    assert problem(overlapping, 422)["details"]["field"] == "body.weekly.tue[1]"
    bad_date = await http.post(
        "/v1/t/acme/calendars",
        json={"name": "x", "weekly": {}, "holidays": [{"date": "2026-02-30", "name": "no"}]},
        headers=admin,
    )
    assert problem(bad_date, 422)["details"]["field"] == "body.holidays[0].date"
    bad_zone = await http.post(
        "/v1/t/acme/calendars",
        json={"name": "x", "weekly": {}, "time_zone": "Mars/Olympus"},
        headers=admin,
    )
    assert problem(bad_zone, 422)["details"]["field"] == "body.time_zone"
    problem(
        await http.post(
            "/v1/t/acme/calendars", json={"name": "x", "weekly": {"monday": []}}, headers=admin
        ),
        422,
    )
    created = ok(
        await http.post(
            "/v1/t/acme/calendars",
            json={"name": "Main", "time_zone": "Asia/Shanghai", "weekly": WORKWEEK},
            headers=admin,
        ),
        201,
    )
    problem(
        await http.post("/v1/t/acme/calendars", json={"name": "Main", "weekly": {}}, headers=admin),
        409,
    )
    url = f"/v1/t/acme/calendars/{created['id']}"
    replaced = await http.put(
        url,
        json={
            "name": "Main",
            "time_zone": "Asia/Shanghai",
            "weekly": {"mon": [["00:00", "24:00"]]},
            "holidays": [{"date": "2026-10-01", "name": "National Day"}],
        },
        headers={**admin, "If-Match": '"1"'},
    )
    assert ok(replaced)["weekly"]["mon"] == [["00:00", "24:00"]]
    assert replaced.headers["etag"] == '"2"'
    problem(
        await http.put(
            url, json={"name": "Main", "weekly": {}}, headers={**admin, "If-Match": '"1"'}
        ),
        412,
    )
    national = ok(
        await http.get(f"{url}/open", params={"at": "2026-10-01T03:00:00Z"}, headers=admin)
    )
    assert national == {
        "open": False,
        "reason": "holiday: National Day",
        "next_change": "2026-10-04T16:00:00Z",  # Monday 5 October 00:00 in Shanghai
        "at": "2026-10-01T03:00:00Z",
        "time_zone": "Asia/Shanghai",
    }
    ok(await http.delete(url, headers=admin), 204)
    deadline = time.monotonic() + 10
    while len(changes) < 3:
        assert time.monotonic() < deadline, f"heard {changes}"
        await asyncio.sleep(0.02)
    assert changes == [[created["id"]]] * 3
    await sub.unsubscribe()


# ---------------------------------------------------------------------------------------------
# Permissions, the last admin, suspension, validation


async def test_each_role_reaches_only_what_its_permissions_allow(platform: Platform) -> None:
    await platform.tenant("acme")
    http = platform.http
    admin = platform.as_("acme", "tenant_admin")
    user = ok(await http.post("/v1/t/acme/users", json={"username": "ann"}, headers=admin), 201)
    agent = platform.as_("acme", "agent")
    denied = problem(await http.get("/v1/t/acme/users", headers=agent), 403)
    assert denied["detail"] == "requires permission users.read"
    supervisor = platform.as_("acme", "supervisor")
    ok(await http.get("/v1/t/acme/users", headers=supervisor))
    ok(await http.get(f"/v1/t/acme/users/{user['id']}", headers=supervisor))
    problem(await http.post("/v1/t/acme/users", json={"username": "x"}, headers=supervisor), 403)
    problem(await http.post(f"/v1/t/acme/users/{user['id']}/disable", headers=supervisor), 403)
    problem(await http.get("/v1/t/acme/api-keys", headers=supervisor), 403)
    ok(await http.get("/v1/t/acme/calendars", headers=agent))

    viewer = platform.as_("acme", "report_viewer")
    calls = [
        ("GET", "/v1/t/acme/users"),
        ("POST", "/v1/t/acme/users"),
        ("GET", f"/v1/t/acme/users/{user['id']}"),
        ("PATCH", f"/v1/t/acme/users/{user['id']}"),
        ("DELETE", f"/v1/t/acme/users/{user['id']}"),
        ("POST", f"/v1/t/acme/users/{user['id']}/password"),
        ("GET", "/v1/t/acme/roles"),
        ("GET", "/v1/t/acme/permissions"),
        ("PUT", "/v1/t/acme/roles/agent"),
        ("DELETE", "/v1/t/acme/roles/agent"),
        ("GET", "/v1/t/acme/groups"),
        ("POST", "/v1/t/acme/groups"),
        ("GET", "/v1/t/acme/devices"),
        ("POST", "/v1/t/acme/devices"),
        ("GET", "/v1/t/acme/api-keys"),
        ("POST", "/v1/t/acme/api-keys"),
        ("GET", "/v1/t/acme/calendars"),
        ("POST", "/v1/t/acme/calendars"),
        ("GET", "/v1/t/acme/calendars/cal_000000000000000000000000/open"),
    ]
    for method, url in calls:
        response = await http.request(method, url, headers=viewer, json={})
        assert response.status_code == 403, (method, url, response.text)


async def test_the_last_active_tenant_admin_cannot_be_removed_by_a_tenant_admin(
    platform: Platform,
) -> None:
    await platform.tenant("acme")
    http = platform.http
    operator = platform.operator()
    first = ok(
        await http.post(
            "/v1/t/acme/users",
            json={"username": "first", "roles": ["tenant_admin"]},
            headers=operator,
        ),
        201,
    )
    admin = platform.as_("acme", "tenant_admin", subject=first["id"])
    url = f"/v1/t/acme/users/{first['id']}"
    demote = await http.patch(url, json={"roles": ["agent"]}, headers={**admin, "If-Match": "1"})
    assert problem(demote, 409)["details"]["reason"] == "last_admin"
    problem(await http.post(f"{url}/disable", headers=admin), 409)
    problem(await http.delete(url, headers=admin), 409)

    second = ok(
        await http.post(
            "/v1/t/acme/users",
            json={"username": "second", "roles": ["tenant_admin"]},
            headers=admin,
        ),
        201,
    )
    ok(await http.post(f"/v1/t/acme/users/{second['id']}/disable", headers=admin))
    problem(await http.delete(url, headers=admin), 409)  # a disabled admin does not count
    ok(await http.post(f"/v1/t/acme/users/{second['id']}/enable", headers=admin))
    ok(await http.patch(url, json={"roles": ["agent"]}, headers={**admin, "If-Match": "1"}))
    # The operator may leave the tenant without an admin (and make a new one).
    ok(await http.delete(f"/v1/t/acme/users/{second['id']}", headers=operator), 204)


async def test_a_suspended_tenant_reads_but_cannot_write(platform: Platform) -> None:
    await platform.tenant("acme")
    http = platform.http
    admin = platform.as_("acme", "tenant_admin")
    user = ok(await http.post("/v1/t/acme/users", json={"username": "ann"}, headers=admin), 201)
    await platform.tenant("acme", TenantStatus.SUSPENDED)
    for path in ("users", "groups", "devices", "api-keys", "calendars", "roles", "permissions"):
        ok(await http.get(f"/v1/t/acme/{path}", headers=admin))
    refused = problem(
        await http.post("/v1/t/acme/users", json={"username": "bob"}, headers=admin), 423
    )
    assert refused["code"] == "tenant_suspended"
    problem(await http.post(f"/v1/t/acme/users/{user['id']}/disable", headers=admin), 423)
    problem(await http.post("/v1/t/acme/groups", json={"name": "g"}, headers=admin), 423)
    problem(await http.put("/v1/t/acme/roles/qa", json={"permissions": []}, headers=admin), 423)
    problem(await http.delete(f"/v1/t/acme/users/{user['id']}", headers=platform.operator()), 423)
    await platform.tenant("acme", TenantStatus.ACTIVE)
    ok(await http.post("/v1/t/acme/users", json={"username": "bob"}, headers=admin), 201)
    await platform.tenant("acme", TenantStatus.DELETED)
    problem(await http.get("/v1/t/acme/users", headers=admin), 404)


async def test_validation_errors_name_the_field_and_the_rule(platform: Platform) -> None:
    await platform.tenant("acme")
    http = platform.http
    admin = platform.as_("acme", "tenant_admin")
    roles = await http.post(
        "/v1/t/acme/users", json={"username": "ann", "roles": ["agent", "pilot"]}, headers=admin
    )
    body = problem(roles, 422)
    assert body["details"]["field"] == "body.roles[1]"
    assert "must be one of" in body["detail"]
    operator_role = await http.post(
        "/v1/t/acme/users", json={"username": "ann", "roles": ["operator"]}, headers=admin
    )
    assert problem(operator_role, 422)["details"]["field"] == "body.roles[0]"
    name = await http.post("/v1/t/acme/users", json={"username": "Ann!"}, headers=admin)
    assert problem(name, 422)["details"]["field"] == "body.username"
    weak = await http.post(
        "/v1/t/acme/users", json={"username": "ann", "password": "ann-password-1"}, headers=admin
    )
    assert problem(weak, 422)["details"] == {
        "field": "body.password",
        "rule": "must not contain the username",
    }
    extra = await http.post(
        "/v1/t/acme/users", json={"username": "ann", "admin": True}, headers=admin
    )
    assert problem(extra, 422)["errors"][0]["field"] == "body.admin"
    missing = await http.post("/v1/t/acme/groups", json={}, headers=admin)
    assert problem(missing, 422)["errors"][0] == {
        "field": "body.name",
        "rule": "missing",
        "message": "Field required",
    }
    group = await http.post(
        "/v1/t/acme/users", json={"username": "ann", "groups": ["grp_nope"]}, headers=admin
    )
    assert problem(group, 422)["details"]["field"] == "body.groups[0]"
    # Nothing was half-written by any of these.
    assert ok(await http.get("/v1/t/acme/users", headers=admin))["items"] == []
