"""``callmesh admin create-operator`` against the test database (click's CliRunner)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from callmesh.admin.adapters.passwords import verify_password
from callmesh.admin.adapters.store_audit import MongoAuditLog
from callmesh.admin.adapters.store_identity import OPERATORS
from callmesh.admin.cli import admin
from callmesh.admin.ports.audit import AuditQuery
from callmesh.core.settings import PlatformSettings
from callmesh.core.store import Store

PASSWORD = "First-Operator-1"


async def invoke(args: Sequence[str], stdin: str = "") -> Result:
    # The command runs its own event loop (asyncio.run): give it a thread without one.
    return await asyncio.to_thread(
        CliRunner().invoke, admin, list(args), input=stdin, catch_exceptions=False
    )


def target(settings: PlatformSettings) -> list[str]:
    return ["--mongodb-uri", settings.mongodb_uri, "--database", settings.mongodb_database]


async def operators(settings: PlatformSettings) -> list[dict[str, object]]:
    store = Store(settings, operator_access=True)
    try:
        return [doc async for doc in store.operator().collection(OPERATORS).find({})]
    finally:
        await store.close()


async def test_the_first_operator_is_created_on_an_empty_platform_and_audited(
    platform_settings: PlatformSettings,
) -> None:
    result = await invoke(
        ["create-operator", "--username", "root", "--password-stdin", *target(platform_settings)],
        f"{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert "created operator root" in result.output

    [root] = await operators(platform_settings)
    assert root["username"] == "root"
    assert isinstance(root["password_hash"], str)
    assert await verify_password(root["password_hash"], PASSWORD)
    store = Store(platform_settings, operator_access=True)
    try:
        page = await MongoAuditLog(store.operator()).search(AuditQuery(action_prefix="operator."))
    finally:
        await store.close()
    [entry] = page.items
    assert (entry.action, entry.actor.kind, entry.actor.subject) == (
        "operator.create",
        "system",
        "cli",
    )
    assert entry.after is not None
    assert entry.after["password_hash"] == "***"


async def test_a_platform_with_an_operator_is_refused_unless_forced(
    platform_settings: PlatformSettings,
) -> None:
    args = ["create-operator", "--password-stdin", *target(platform_settings)]
    assert (await invoke([*args, "--username", "root"], f"{PASSWORD}\n")).exit_code == 0

    again = await invoke([*args, "--username", "second"], f"{PASSWORD}\n")
    assert again.exit_code == 1
    assert "has an operator already" in again.output
    forced = await invoke([*args, "--username", "second", "--force-additional"], f"{PASSWORD}\n")
    assert forced.exit_code == 0, forced.output
    taken = await invoke([*args, "--username", "second", "--force-additional"], f"{PASSWORD}\n")
    assert taken.exit_code == 1
    assert "taken" in taken.output
    assert sorted(str(o["username"]) for o in await operators(platform_settings)) == [
        "root",
        "second",
    ]


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("root", "short", "at least 12 characters"),
        ("root", "alllowercaseletters", "mix at least 3"),
        ("Root User", PASSWORD, "--username"),
    ],
)
async def test_bad_usernames_and_weak_passwords_are_refused_before_anything_is_written(
    platform_settings: PlatformSettings, username: str, password: str, message: str
) -> None:
    result = await invoke(
        [
            "create-operator",
            "--username",
            username,
            "--password-stdin",
            *target(platform_settings),
        ],
        f"{password}\n",
    )
    # A bad option is a usage error (2); a refused password a plain failure (1).
    assert result.exit_code == (2 if message.startswith("--") else 1)
    assert message in result.output
    assert await operators(platform_settings) == []


async def test_the_data_dir_of_callmesh_up_says_where_mongodb_is(
    platform_settings: PlatformSettings, tmp_path: Path
) -> None:
    (tmp_path / "platform.env").write_text(
        "# written by callmesh up\n"
        f"CALLMESH_MONGODB_URI={platform_settings.mongodb_uri}\n"
        f'CALLMESH_MONGODB_DATABASE="{platform_settings.mongodb_database}"\n'
    )
    result = await invoke(
        ["create-operator", "--data", str(tmp_path), "--username", "root", "--password-stdin"],
        f"{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert platform_settings.mongodb_database in result.output
    assert [o["username"] for o in await operators(platform_settings)] == ["root"]


async def test_an_unreachable_database_is_reported_with_its_address_redacted(
    platform_settings: PlatformSettings,
) -> None:
    result = await invoke(
        [
            "create-operator",
            "--username",
            "root",
            "--password-stdin",
            "--mongodb-uri",
            "mongodb://admin:s3cret@127.0.0.1:1/?serverSelectionTimeoutMS=200",
            "--database",
            platform_settings.mongodb_database,
        ],
        f"{PASSWORD}\n",
    )
    assert result.exit_code == 1
    assert "not reachable" in result.output
    assert "s3cret" not in result.output
