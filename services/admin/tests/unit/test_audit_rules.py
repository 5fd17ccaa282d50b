"""Audit rules: secrets never enter the log; changed fields are named."""

from __future__ import annotations

from callmesh.admin.domain.audit import REDACTED, changed_fields, redact


def test_secrets_are_redacted_at_any_depth() -> None:
    doc = {
        "username": "ann",
        "password_hash": "$argon2id$...",
        "devices": [{"username": "1001", "a1_hash": "abc"}],
        "cluster": {"name": "vip", "uri": "mongodb://u:p@db/"},
        "note": None,
    }
    assert redact(doc) == {
        "username": "ann",
        "password_hash": REDACTED,
        "devices": [{"username": "1001", "a1_hash": REDACTED}],
        "cluster": {"name": "vip", "uri": REDACTED},
        "note": None,
    }


def test_an_unset_secret_stays_visibly_unset() -> None:
    assert redact({"password_hash": None}) == {"password_hash": None}


def test_changed_fields_lists_what_differs_and_ignores_internal_keys() -> None:
    before = {"name": "Acme", "language": "en", "_id": "acme", "version": 1}
    after = {"name": "Acme Ltd", "language": "en", "_id": "acme", "version": 2, "time_zone": "UTC"}
    assert changed_fields(before, after) == ["name", "time_zone", "version"]
    assert changed_fields(None, {"name": "x"}) == ["name"]
    assert changed_fields({"name": "x"}, None) == ["name"]
