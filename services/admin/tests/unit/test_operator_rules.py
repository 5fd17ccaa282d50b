"""The operator area's rules: tenant fields and lifecycle, quota limits, number ranges, sites
and nodes, node health."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from callmesh.admin.domain import numbers as number_rules
from callmesh.admin.domain import sites as site_rules
from callmesh.admin.domain import tenants as rules
from callmesh.admin.domain.quotas import MAX_LIMIT, check_limits, limits_from_record, report
from callmesh.admin.domain.sites import Heartbeat, NodeState
from callmesh.admin.domain.tenants import (
    Lifecycle,
    NewTenant,
    TenantChanges,
    TenantPlacement,
    VersionMismatch,
)
from callmesh.core.errors import Conflict, InvalidInput, NotFound
from callmesh.core.quotas import QuotaKind

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
HOME = TenantPlacement("default", "callmesh")


def acme(**kwargs: object) -> rules.Tenant:
    spec = NewTenant(
        slug="acme",
        name="Acme",
        language="en",
        time_zone="Europe/Paris",
        **kwargs,  # type: ignore[arg-type]
    )
    return rules.activate(rules.new_tenant(spec, HOME, T0, created_by="op-1"), T0)


# --- tenants -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slug", "rule"),
    [
        ("Acme", "lowercase"),
        ("-acme", "lowercase"),
        ("a" * 49, "lowercase"),
        ("platform", "reserved"),
        ("", "lowercase"),
    ],
)
def test_a_bad_slug_is_refused_naming_the_rule(slug: str, rule: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        rules.check_slug(slug)
    assert caught.value.field == "slug"
    assert rule in caught.value.rule


@pytest.mark.parametrize(
    ("field", "spec"),
    [
        ("name", {"name": "  "}),
        ("name", {"name": "x" * 101}),
        ("name", {"name": "bad\x00name"}),
        ("language", {"language": "fr"}),
        ("time_zone", {"time_zone": "Mars/Olympus"}),
        ("time_zone", {"time_zone": "../../etc/passwd"}),
        ("time_zone", {"time_zone": "/usr/share/zoneinfo/UTC"}),
    ],
)
def test_a_new_tenant_with_a_bad_field_is_refused_naming_it(
    field: str, spec: dict[str, str]
) -> None:
    base = {"slug": "acme", "name": "Acme", "language": "en", "time_zone": "UTC", **spec}
    with pytest.raises(InvalidInput) as caught:
        rules.new_tenant(NewTenant(**base), HOME, T0)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_a_new_tenant_is_provisioning_with_every_quota_unlimited() -> None:
    tenant = rules.new_tenant(
        NewTenant(slug="acme", name=" Acme ", language="zh-TW", time_zone="Asia/Taipei"), HOME, T0
    )
    assert tenant.status is Lifecycle.PROVISIONING
    assert tenant.name == "Acme"
    assert set(tenant.quotas) == set(QuotaKind)
    assert all(limit is None for limit in tenant.quotas.values())
    assert not tenant.visible


def test_the_default_placement_is_the_default_cluster_and_database() -> None:
    assert rules.check_placement(None, "callmesh") == TenantPlacement("default", "callmesh")
    with pytest.raises(InvalidInput) as caught:
        rules.check_placement(TenantPlacement("default", "bad.name"), "callmesh")
    assert caught.value.field == "placement.database"
    with pytest.raises(InvalidInput) as caught:
        rules.check_placement(TenantPlacement("bad cluster", "db"), "callmesh")
    assert caught.value.field == "placement.cluster"


def test_an_update_names_what_changed_and_bumps_the_version() -> None:
    tenant = acme()
    later = T0 + timedelta(minutes=1)
    changed, fields = rules.update(
        tenant, TenantChanges(name="Acme Corp", language="en"), later, tenant.version
    )
    assert fields == ["name"]
    assert changed.version == tenant.version + 1
    assert changed.updated_at == later
    same, none = rules.update(changed, TenantChanges(name="Acme Corp"), later)
    assert none == []
    assert same is changed


def test_a_stale_if_match_is_a_version_mismatch() -> None:
    tenant = acme()
    with pytest.raises(VersionMismatch) as caught:
        rules.update(tenant, TenantChanges(name="X"), T0, tenant.version - 1)
    assert caught.value.status == 412


def test_slug_and_placement_never_change_and_say_why() -> None:
    tenant = acme()
    with pytest.raises(Conflict, match="tenant id"):
        rules.update(tenant, TenantChanges(slug="globex"), T0)
    with pytest.raises(Conflict, match="not migrated"):
        rules.update(tenant, TenantChanges(placement=TenantPlacement("eu", "acme")), T0)
    # The same values are not a change.
    assert rules.update(tenant, TenantChanges(slug="acme", placement=HOME), T0)[1] == []


def test_encryption_at_rest_switches_on_but_never_off() -> None:
    tenant = acme()
    on, fields = rules.update(tenant, TenantChanges(encryption_at_rest=True), T0)
    assert fields == ["encryption_at_rest", "encryption_since"]
    assert on.encryption_since == T0
    with pytest.raises(Conflict, match="unreadable"):
        rules.update(on, TenantChanges(encryption_at_rest=False), T0)


def test_suspend_and_resume_are_idempotent_and_keep_the_reason() -> None:
    tenant = acme()
    suspended, fresh = rules.suspend(tenant, "unpaid invoice", T0)
    assert (suspended.status, suspended.status_reason, fresh) == (
        Lifecycle.SUSPENDED,
        "unpaid invoice",
        True,
    )
    again, fresh_again = rules.suspend(suspended, "unpaid invoice", T0)
    assert again is suspended
    assert not fresh_again
    reworded, _ = rules.suspend(suspended, "fraud check", T0)
    assert reworded.status_reason == "fraud check"
    resumed, fresh = rules.resume(suspended, T0)
    assert (resumed.status, resumed.status_reason, fresh) == (Lifecycle.ACTIVE, "", True)
    assert rules.resume(resumed, T0) == (resumed, False)
    with pytest.raises(InvalidInput):
        rules.suspend(tenant, "  ", T0)


def test_a_deleted_tenant_is_kept_for_the_retention_period_then_due_for_purge() -> None:
    tenant, _ = rules.suspend(acme(), "closing", T0)
    deleted, fresh = rules.delete(tenant, T0, timedelta(days=30))
    assert fresh
    assert deleted.purge_after == T0 + timedelta(days=30)
    assert not deleted.visible
    assert not rules.due_for_purge(deleted, T0 + timedelta(days=29))
    assert rules.due_for_purge(deleted, T0 + timedelta(days=30))
    assert rules.delete(deleted, T0, timedelta(days=1)) == (deleted, False)
    with pytest.raises(Conflict, match="restore"):
        rules.suspend(deleted, "x", T0)


def test_a_restore_within_retention_brings_the_tenant_back_as_it_was() -> None:
    tenant, _ = rules.suspend(acme(), "closing", T0)
    deleted, _ = rules.delete(tenant, T0, timedelta(days=30))
    restored = rules.restore(deleted, T0 + timedelta(days=1))
    assert restored.status is Lifecycle.SUSPENDED
    assert (restored.deleted_at, restored.purge_after) == (None, None)
    with pytest.raises(Conflict, match="not deleted"):
        rules.restore(restored, T0)


def test_a_restore_after_retention_or_once_the_purge_began_is_refused() -> None:
    deleted, _ = rules.delete(acme(), T0, timedelta(days=30))
    with pytest.raises(Conflict, match="purged"):
        rules.restore(deleted, T0 + timedelta(days=31))
    with pytest.raises(Conflict, match="purged"):
        rules.restore(replace(deleted, purging=True), T0)


def test_a_taken_slug_says_whether_a_deleted_tenant_holds_it() -> None:
    deleted, _ = rules.delete(acme(), T0, timedelta(days=30))
    assert "restore it" in rules.slug_taken(deleted).message
    assert rules.slug_taken(acme()).message == "slug acme is taken"


def test_only_visible_tenants_are_found_by_their_own_view() -> None:
    deleted, _ = rules.delete(acme(), T0, timedelta(days=30))
    with pytest.raises(NotFound):
        rules.visible_or_not_found(deleted, "acme")
    with pytest.raises(NotFound):
        rules.visible_or_not_found(None, "acme")
    assert rules.visible_or_not_found(acme(), "acme").tenant_id == "acme"


def test_a_tenant_survives_its_stored_form() -> None:
    tenant, _ = rules.suspend(acme(quotas=check_limits({"calls_pstn": 5})), "x", T0)
    deleted, _ = rules.delete(tenant, T0, timedelta(days=3))
    assert rules.from_record(deleted.record()) == deleted


# --- quotas --------------------------------------------------------------------------------------


def test_limits_cover_every_kind_and_name_the_bad_one() -> None:
    limits = check_limits({"calls_pstn": 10, "recording_bytes": None})
    assert limits[QuotaKind.CALLS_PSTN] == 10
    assert limits[QuotaKind.AGENTS_LOGGED_IN] is None
    assert set(limits) == set(QuotaKind)
    for value, rule in ((-1, "≥ 0"), (True, "integer"), ("3", "integer"), (MAX_LIMIT + 1, "≤")):
        with pytest.raises(InvalidInput) as caught:
            check_limits({"calls_pstn": value})
        assert caught.value.field == "quotas.calls_pstn"
        assert rule in caught.value.rule
    with pytest.raises(InvalidInput) as caught:
        check_limits({"calls_fax": 1})
    assert caught.value.field == "quotas.calls_fax"


def test_stored_limits_ignore_what_a_newer_admin_added() -> None:
    limits = limits_from_record({"calls_pstn": 3, "calls_fax": 9, "calls_web": True})
    assert limits[QuotaKind.CALLS_PSTN] == 3
    assert limits[QuotaKind.CALLS_WEB] is None


def test_the_report_puts_usage_next_to_each_limit() -> None:
    lines = report(check_limits({"calls_sip": 4}), {QuotaKind.CALLS_SIP: 3})
    assert (lines[QuotaKind.CALLS_SIP].limit, lines[QuotaKind.CALLS_SIP].used) == (4, 3)
    assert (lines[QuotaKind.IVR_FLOWS].limit, lines[QuotaKind.IVR_FLOWS].used) == (None, 0)


# --- numbers -------------------------------------------------------------------------------------


def test_a_range_keeps_leading_zeros_and_its_plus() -> None:
    assert number_rules.expand_range("0100", "0102", 10) == ["0100", "0101", "0102"]
    assert number_rules.expand_range("+3310", "+3311", 10) == ["+3310", "+3311"]


@pytest.mark.parametrize(
    ("first", "last", "field", "rule"),
    [
        ("+3310", "3311", "range.to", "'+'"),
        ("100", "1000", "range.to", "as many digits"),
        ("105", "100", "range.to", "below"),
        ("100", "199", "range", "at most 50"),
    ],
)
def test_a_bad_range_is_refused_naming_the_rule(
    first: str, last: str, field: str, rule: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        number_rules.expand_range(first, last, 50)
    assert caught.value.field == field
    assert rule in caught.value.rule


def test_an_assignment_skips_numbers_the_tenant_owns_and_refuses_others() -> None:
    plan = number_rules.plan_assignment("acme", ["1", "2", "3"], {"2": "acme"})
    assert (plan.new, plan.already_owned) == (["1", "3"], ["2"])
    with pytest.raises(Conflict) as caught:
        number_rules.plan_assignment("acme", ["1", "2"], {"2": "globex"})
    assert "2 (globex)" in caught.value.message
    assert caught.value.details["numbers"] == ["2"]


def test_a_conflict_names_ten_numbers_and_counts_the_rest() -> None:
    taken = {f"+33{i:03d}": "globex" for i in range(25)}
    err = number_rules.already_owned(taken)
    assert "and 15 more" in err.message
    assert err.details["count"] == 25


def test_requests_without_numbers_and_bad_prefixes_and_labels_are_refused() -> None:
    with pytest.raises(InvalidInput, match="at least one"):
        number_rules.unique([], 10)
    with pytest.raises(InvalidInput, match="at most 2"):
        number_rules.unique(["1", "2", "3"], 2)
    assert number_rules.unique(["1", "2", "1"], 2) == ["1", "2"]
    for bad in ("", "+1+", "12a", "1" * 21):
        with pytest.raises(InvalidInput):
            number_rules.check_prefix(bad)
    assert number_rules.check_prefix("+") == "+"
    with pytest.raises(InvalidInput):
        number_rules.check_label("x" * 101)


def test_an_audit_target_names_one_number_or_the_span() -> None:
    assert number_rules.describe(["+331"]) == "+331"
    assert number_rules.describe(["3", "1", "2"]) == "1..3 (3)"


# --- sites and nodes -----------------------------------------------------------------------------


def test_a_node_is_checked_field_by_field() -> None:
    node = site_rules.new_node(
        "fs-central-1", "paris", ["10.0.0.5", "SIP.example.net", "10.0.0.5"], "10.0.0.5", 8021,
        "central", "", T0,
    )  # fmt: skip
    assert node.addresses == ("10.0.0.5", "sip.example.net")
    cases: list[tuple[dict[str, object], str]] = [
        ({"node_id": "fs.1"}, "node_id"),
        ({"site_id": "Paris"}, "site_id"),
        ({"addresses": []}, "addresses"),
        ({"addresses": ["not a host"]}, "addresses.0"),
        ({"esl_host": "-bad-"}, "esl_endpoint.host"),
        ({"esl_port": 0}, "esl_endpoint.port"),
        ({"role": "edge"}, "role"),
    ]
    base: dict[str, object] = {
        "node_id": "fs-1", "site_id": "paris", "addresses": ["10.0.0.5"], "esl_host": "::1",
        "esl_port": 8021, "role": "branch", "description": "", "now": T0,
    }  # fmt: skip
    for change, field in cases:
        with pytest.raises(InvalidInput) as caught:
            site_rules.new_node(**{**base, **change})  # type: ignore[arg-type]
        assert caught.value.field == field


def test_a_site_update_says_whether_anything_changed() -> None:
    site = site_rules.new_site("paris", "Paris", "", "eu-west", "1 rue X", T0)
    same, changed = site_rules.update_site(site, {"name": "Paris", "region": None}, T0)
    assert same is site
    assert not changed
    moved, changed = site_rules.update_site(site, {"address": "2 rue Y"}, T0 + timedelta(1))
    assert changed
    assert moved.address == "2 rue Y"
    with pytest.raises(InvalidInput) as caught:
        site_rules.update_site(site, {"name": ""}, T0)
    assert caught.value.field == "name"


def beat(at: datetime, *, esl: bool = True) -> Heartbeat:
    return Heartbeat("fs-1", "paris", "1.10", esl, 12, 5, 3600, at)


def test_a_node_is_up_on_a_fresh_heartbeat_with_esl_connected() -> None:
    status = site_rules.node_status(beat(T0), T0 + timedelta(seconds=3))
    assert status.state is NodeState.UP
    assert (status.channels, status.calls, status.last_heartbeat_at) == (12, 5, T0)


def test_a_node_is_down_without_a_heartbeat_on_a_stale_one_or_without_esl() -> None:
    assert site_rules.node_status(None, T0).state is NodeState.DOWN
    stale = site_rules.node_status(beat(T0), T0 + timedelta(seconds=16))
    assert stale.state is NodeState.DOWN
    assert "ago" in stale.reason
    assert site_rules.node_status(beat(T0, esl=False), T0).state is NodeState.DOWN
    assert site_rules.status_unknown("bus down").state is NodeState.UNKNOWN
