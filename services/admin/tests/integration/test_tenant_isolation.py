"""Isolation: a tenant admin of A cannot read, list, change or learn of anything of B (404 on
B's ids, exactly like ids that do not exist), while an operator can do everything in both."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

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
from callmesh.core.tenancy import TenantInfo, TenantStatus
from callmesh.proto.subjects import Bucket

A, B = "acme", "globex"
# Ids shaped like real ones that exist nowhere.
NOWHERE = {
    "users": "usr_0000000000000000deadbeef",
    "groups": "grp_0000000000000000deadbeef",
    "devices": "dev_0000000000000000deadbeef",
    "api-keys": "key_0000000000000000deadbeef",
    "calendars": "cal_0000000000000000deadbeef",
}


@dataclass
class Platform:
    """The admin app, a trusted token issuer, and two tenants."""

    http: httpx.AsyncClient
    runtime: Runtime
    issuer: TokenIssuer

    def admin(self, tenant_id: str) -> dict[str, str]:
        """Headers of a tenant admin of ``tenant_id``."""
        token = self.issuer.issue("usr_admin", tenant_id=tenant_id, roles=["tenant_admin"])
        return {"Authorization": f"Bearer {token}"}

    def operator(self) -> dict[str, str]:
        """Headers of an operator."""
        return {"Authorization": f"Bearer {self.issuer.issue('op-1', operator=True)}"}

    async def create_all(self, tenant_id: str, headers: dict[str, str]) -> dict[str, str]:
        """One object of every kind in the tenant; their ids by collection path."""
        http = self.http
        base = f"/v1/t/{tenant_id}"
        user = await http.post(f"{base}/users", json={"username": "ann"}, headers=headers)
        group = await http.post(f"{base}/groups", json={"name": "Sales"}, headers=headers)
        device = await http.post(f"{base}/devices", json={"username": "1001"}, headers=headers)
        key = await http.post(
            f"{base}/api-keys", json={"name": "CRM", "roles": ["agent"]}, headers=headers
        )
        calendar = await http.post(
            f"{base}/calendars",
            json={"name": "Main", "weekly": {"mon": [["09:00", "17:00"]]}},
            headers=headers,
        )
        ids = {}
        for path, response in (
            ("users", user),
            ("groups", group),
            ("devices", device),
            ("api-keys", key),
            ("calendars", calendar),
        ):
            assert response.status_code == 201, response.text
            ids[path] = response.json()["id"]
        return ids


@pytest.fixture
async def platform(
    platform_settings: PlatformSettings, bus: Bus, run_admin: Any
) -> AsyncIterator[Platform]:
    settings = platform_settings.model_copy(update={"api_rate_per_s": 1e6, "api_burst": 1_000_000})
    async with run_admin(AdminSettings(platform=settings), trust=generate_signing_key()) as running:
        runtime = running.runtime
        deadline = time.monotonic() + 30
        kv = await bus.kv(Bucket.TENANTS)
        for tenant_id in (A, B):
            await kv.put(tenant_id, TenantInfo(tenant_id, TenantStatus.ACTIVE).to_json())
        while not all(runtime.tenant_gate.is_active(t) for t in (A, B)):
            assert time.monotonic() < deadline, "the gate never saw the tenants"
            await asyncio.sleep(0.02)
        yield Platform(running.http, runtime, running.issuer)


def calls_on(path: str, ident: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every call of the API that names an object of ``path`` by its id."""
    one = f"/{path}/{ident}"
    common: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", one, None),
        ("DELETE", one, None),
    ]
    extra: dict[str, list[tuple[str, str, dict[str, Any] | None]]] = {
        "users": [
            ("PATCH", one, {"display_name": "x"}),
            ("POST", f"{one}/password", {"password": "Quite-Strong-123"}),
            ("POST", f"{one}/disable", None),
            ("POST", f"{one}/enable", None),
            ("POST", f"{one}/unlock", None),
        ],
        "groups": [("PATCH", one, {"name": "x"})],
        "devices": [
            ("PATCH", one, {"display_name": "x"}),
            ("POST", f"{one}/secret", {}),
            ("PUT", f"{one}/user", {"user_id": "usr_x"}),
            ("DELETE", f"{one}/user", None),
        ],
        "api-keys": [("POST", f"{one}/revoke", None)],
        "calendars": [
            ("PUT", one, {"name": "x", "weekly": {}}),
            ("GET", f"{one}/open", None),
        ],
    }
    # Deleting last: the other calls must meet the object still there (in B).
    return [*extra[path], *common]


async def test_a_tenant_admin_of_a_gets_404_on_every_id_of_b_exactly_as_on_no_id(
    platform: Platform,
) -> None:
    http = platform.http
    b_ids = await platform.create_all(B, platform.admin(B))
    admin_a = platform.admin(A)
    for path, b_id in b_ids.items():
        for (method, url, body), (_, ghost_url, _) in zip(
            calls_on(path, b_id), calls_on(path, NOWHERE[path]), strict=True
        ):
            theirs = await http.request(method, f"/v1/t/{A}{url}", json=body, headers=admin_a)
            nobody = await http.request(method, f"/v1/t/{A}{ghost_url}", json=body, headers=admin_a)
            assert theirs.status_code == 404, (method, url, theirs.text)
            assert nobody.status_code == 404, (method, ghost_url, nobody.text)
            # Same answer, word for word, but for the id itself.
            assert theirs.json()["detail"].replace(b_id, "ID") == nobody.json()["detail"].replace(
                NOWHERE[path], "ID"
            )
            assert theirs.json()["code"] == nobody.json()["code"] == "not_found"
    # And B's objects are as they were.
    admin_b = platform.admin(B)
    for path, b_id in b_ids.items():
        response = await http.get(f"/v1/t/{B}/{path}/{b_id}", headers=admin_b)
        assert response.status_code == 200, response.text
        if "version" in response.json():
            assert response.json()["version"] == 1
    key = (await http.get(f"/v1/t/{B}/api-keys/{b_ids['api-keys']}", headers=admin_b)).json()
    assert key["status"] == "active"


async def test_a_tenant_admin_lists_only_its_own_tenant(platform: Platform) -> None:
    http = platform.http
    a_ids = await platform.create_all(A, platform.admin(A))
    b_ids = await platform.create_all(B, platform.admin(B))
    for path in NOWHERE:
        listed = (await http.get(f"/v1/t/{A}/{path}", headers=platform.admin(A))).json()
        assert [item["id"] for item in listed["items"]] == [a_ids[path]]
        assert b_ids[path] not in str(listed)
    # Filters cannot reach across either: B's group id filters A's users to nothing.
    by_group = await http.get(
        f"/v1/t/{A}/users", params={"group": b_ids["groups"]}, headers=platform.admin(A)
    )
    assert by_group.json()["items"] == []
    entries = await MongoAuditLog(platform.runtime.store.operator()).search(
        AuditQuery(tenant_id=A, limit=500)
    )
    assert entries.items
    assert {e.tenant_id for e in entries.items} == {A}


async def test_a_token_of_a_is_refused_at_the_gate_of_b_and_says_why(platform: Platform) -> None:
    http = platform.http
    b_ids = await platform.create_all(B, platform.admin(B))
    admin_a = platform.admin(A)
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", f"/v1/t/{B}/users", {"username": "mallory", "roles": ["tenant_admin"]}),
        ("GET", f"/v1/t/{B}/users", None),
        ("GET", f"/v1/t/{B}/users/{b_ids['users']}", None),
        ("DELETE", f"/v1/t/{B}/devices/{b_ids['devices']}", None),
        ("POST", f"/v1/t/{B}/api-keys", {"name": "x", "roles": ["tenant_admin"]}),
        ("PUT", f"/v1/t/{B}/roles/agent", {"permissions": []}),
        ("GET", f"/v1/t/{B}/calendars/{b_ids['calendars']}/open", None),
    ]
    for method, url, body in calls:
        response = await http.request(method, url, json=body, headers=admin_a)
        assert response.status_code == 403, (method, url, response.text)
        assert response.json()["detail"] == f"token does not grant tenant {B}"
    users = (await http.get(f"/v1/t/{B}/users", headers=platform.admin(B))).json()
    assert [u["username"] for u in users["items"]] == ["ann"]


async def test_ids_of_b_in_a_request_of_a_are_unknown_ids(platform: Platform) -> None:
    http = platform.http
    b_ids = await platform.create_all(B, platform.admin(B))
    a_ids = await platform.create_all(A, platform.admin(A))
    admin_a = platform.admin(A)
    for method, url, body, field in [
        (
            "POST",
            "/groups",
            {"name": "X", "supervisor_ids": [b_ids["users"]]},
            "body.supervisor_ids[0]",
        ),
        ("POST", "/users", {"username": "bob", "groups": [b_ids["groups"]]}, "body.groups[0]"),
        ("POST", "/devices", {"username": "1002", "user_id": b_ids["users"]}, "body.user_id"),
        ("PUT", f"/devices/{a_ids['devices']}/user", {"user_id": b_ids["users"]}, "body.user_id"),
    ]:
        response = await http.request(method, f"/v1/t/{A}{url}", json=body, headers=admin_a)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["details"]["field"] == field
        assert response.json()["details"]["rule"].endswith("of the tenant")


async def test_names_taken_in_b_are_free_in_a_so_conflicts_reveal_nothing(
    platform: Platform,
) -> None:
    await platform.create_all(B, platform.admin(B))
    # The very same usernames, device names, group and calendar names: all created.
    await platform.create_all(A, platform.admin(A))


async def test_an_operator_can_do_everything_in_both_tenants(platform: Platform) -> None:
    http = platform.http
    operator = platform.operator()
    for tenant in (A, B):
        ids = await platform.create_all(tenant, operator)
        base = f"/v1/t/{tenant}"
        admin = await http.post(
            f"{base}/users", json={"username": "boss", "roles": ["tenant_admin"]}, headers=operator
        )
        assert admin.status_code == 201, admin.text
        assert (await http.get(f"{base}/users", headers=operator)).json()["items"]
        patched = await http.patch(
            f"{base}/users/{ids['users']}",
            json={"roles": ["tenant_admin", "agent"]},
            headers={**operator, "If-Match": '"1"'},
        )
        assert patched.status_code == 200, patched.text
        role = await http.put(f"{base}/roles/qa", json={"permissions": []}, headers=operator)
        assert role.status_code == 200, role.text
        for path, ident in ids.items():
            got = await http.get(f"{base}/{path}/{ident}", headers=operator)
            assert got.status_code == 200, got.text
        for path in ("devices", "api-keys", "calendars", "groups", "users"):
            gone = await http.delete(f"{base}/{path}/{ids[path]}", headers=operator)
            assert gone.status_code == 204, gone.text
        # The operator may even remove the last tenant admin.
        boss = admin.json()["id"]
        assert (await http.delete(f"{base}/users/{boss}", headers=operator)).status_code == 204
        entries = await MongoAuditLog(platform.runtime.store.operator()).search(
            AuditQuery(tenant_id=tenant, actor="op-1", limit=500)
        )
        assert len(entries.items) >= 13
