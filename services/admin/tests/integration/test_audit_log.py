"""The audit log on a real MongoDB-wire server: written, redacted, searched, walled per tenant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from callmesh.admin.adapters.store_audit import COLLECTIONS, MongoAuditLog
from callmesh.admin.app import AdminSettings
from callmesh.admin.domain.common import Actor, ActorKind
from callmesh.admin.ports.audit import AuditQuery
from callmesh.admin.service.audit import Auditor
from callmesh.core.auth import generate_signing_key
from callmesh.core.errors import InvalidInput
from callmesh.core.settings import PlatformSettings
from callmesh.core.store import Store

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
async def auditor(platform_settings: PlatformSettings) -> Auditor:
    store = Store(platform_settings, collections=COLLECTIONS, operator_access=True)
    await store.provision()
    return Auditor(MongoAuditLog(store.operator()), Clock())


OPERATOR = Actor(ActorKind.OPERATOR, "op-1")
ACME_ADMIN = Actor(ActorKind.USER, "usr_1", "acme", ("tenant_admin",))


async def seed(auditor: Auditor) -> None:
    await auditor.record(
        OPERATOR, "tenant.create", "tenant", "acme", tenant_id="acme", after={"name": "Acme"}
    )
    await auditor.record(
        ACME_ADMIN,
        "user.update",
        "user",
        "usr_2",
        tenant_id="acme",
        before={"roles": ["agent"], "password_hash": "old"},
        after={"roles": ["agent", "qa"], "password_hash": "new"},
    )
    await auditor.record(
        OPERATOR, "tenant.create", "tenant", "globex", tenant_id="globex", after={"name": "G"}
    )
    await auditor.record(OPERATOR, "site.create", "site", "branch-1", tenant_id=None)


async def test_entries_are_searchable_newest_first_with_what_changed(auditor: Auditor) -> None:
    await seed(auditor)
    page = await auditor.search(AuditQuery())
    assert [e.action for e in page.items] == [
        "site.create",
        "tenant.create",
        "user.update",
        "tenant.create",
    ]
    update = page.items[2]
    assert update.changes == ("password_hash", "roles")
    assert update.before == {"roles": ["agent"], "password_hash": "***"}
    assert update.after == {"roles": ["agent", "qa"], "password_hash": "***"}
    assert update.actor == ACME_ADMIN


async def test_a_tenants_view_holds_only_its_own_entries(auditor: Auditor) -> None:
    await seed(auditor)
    acme = await auditor.search_tenant("acme", AuditQuery(tenant_id="globex"))
    assert {e.tenant_id for e in acme.items} == {"acme"}
    assert len(acme.items) == 2
    platform = await auditor.search(AuditQuery(platform_only=True))
    assert [e.target_id for e in platform.items] == ["branch-1"]


async def test_filters_and_pages(auditor: Auditor) -> None:
    await seed(auditor)
    created = await auditor.search(AuditQuery(action_prefix="tenant."))
    assert [e.target_id for e in created.items] == ["globex", "acme"]
    by_actor = await auditor.search(AuditQuery(actor="usr_1"))
    assert [e.action for e in by_actor.items] == ["user.update"]
    first = await auditor.search(AuditQuery(limit=3))
    assert first.next is not None
    rest = await auditor.search(AuditQuery(limit=3, after=first.next))
    assert len(first.items) + len(rest.items) == 4
    assert rest.next is None
    window = await auditor.search(
        AuditQuery(since=T0 + timedelta(seconds=2), until=T0 + timedelta(seconds=3))
    )
    assert [e.target_id for e in window.items] == ["globex", "usr_2"]


async def test_bad_search_parameters_name_the_field(auditor: Auditor) -> None:
    with pytest.raises(InvalidInput, match="limit"):
        await auditor.search(AuditQuery(limit=0))
    with pytest.raises(InvalidInput, match="since"):
        await auditor.search(AuditQuery(since=T0, until=T0 - timedelta(days=1)))


async def test_the_audit_api_shows_the_operator_everything_and_a_tenant_admin_its_own(
    platform_settings: PlatformSettings, run_admin: Any
) -> None:
    settings = platform_settings.model_copy(update={"api_rate_per_s": 1e6, "api_burst": 1_000_000})
    async with run_admin(AdminSettings(platform=settings), trust=generate_signing_key()) as admin:
        operator = {"Authorization": f"Bearer {admin.issuer.issue('op-1', operator=True)}"}
        for slug in ("acme", "globex"):
            made = await admin.http.post(
                "/v1/operator/tenants",
                json={"slug": slug, "name": slug.title(), "language": "en", "time_zone": "UTC"},
                headers=operator,
            )
            assert made.status_code == 201, made.text

        def tenant_user(*roles: str) -> dict[str, str]:
            token = admin.issuer.issue("usr_1", tenant_id="acme", roles=roles)
            return {"Authorization": f"Bearer {token}"}

        everything = (await admin.http.get("/v1/operator/audit", headers=operator)).json()
        assert {e["target_id"] for e in everything["items"]} >= {"acme", "globex"}
        own = await admin.http.get("/v1/t/acme/audit", headers=tenant_user("tenant_admin"))
        assert own.status_code == 200, own.text
        assert {e["tenant_id"] for e in own.json()["items"]} == {"acme"}
        # Naming the other tenant in the query changes nothing: the path decides.
        sneaky = await admin.http.get(
            "/v1/t/acme/audit?tenant=globex", headers=tenant_user("tenant_admin")
        )
        assert {e["tenant_id"] for e in sneaky.json()["items"]} == {"acme"}
        other = await admin.http.get("/v1/t/globex/audit", headers=tenant_user("tenant_admin"))
        assert other.status_code == 403
        for role in ("supervisor", "agent"):
            refused = await admin.http.get("/v1/t/acme/audit", headers=tenant_user(role))
            assert refused.status_code == 403, role
            assert "audit.read" in refused.json()["detail"]
        bad = await admin.http.get("/v1/operator/audit?limit=0", headers=operator)
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "query.limit"
