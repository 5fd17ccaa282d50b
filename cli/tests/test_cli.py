"""The callmesh command in-process: help, versions, dev tokens, plugins, refused options."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from callmesh.cli.devtoken import ensure_dev_keys, ensure_media_secret, parse_ttl
from callmesh.cli.main import PluginGroup, callmesh, load_plugins
from callmesh.cli.up import FreeswitchTarget, UpOptions, parse_freeswitch, parse_services, up
from callmesh.core.auth import Principal, StaticKeys, TokenVerifier


class FakeEntryPoint:
    """Just enough of ``importlib.metadata.EntryPoint`` for plugin discovery."""

    def __init__(self, name: str, value: str, loaded: Any = None, error: Exception | None = None):
        self.name = name
        self.value = value
        self._loaded = loaded
        self._error = error

    def load(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._loaded


@click.command()
def _hello() -> None:
    """Say hello (a plugin's command)."""
    click.echo("hello from the plugin")


def _verify(data: Path, token: str) -> Any:
    keys = StaticKeys.from_pem((data / "keys" / "dev-signing.pub.pem").read_bytes())
    return TokenVerifier(keys, issuer="callmesh", audience="callmesh").verify(token)


def test_help_lists_up_version_and_dev_token() -> None:
    result = CliRunner().invoke(callmesh, ["--help"])
    assert result.exit_code == 0, result.output
    for command in ("up", "version", "dev-token"):
        assert f"  {command} " in result.output


def test_version_option_prints_the_cli_version() -> None:
    result = CliRunner().invoke(callmesh, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("callmesh 0.")


def test_version_lists_callmesh_packages_nats_server_and_ferretdb() -> None:
    result = CliRunner().invoke(callmesh, ["version"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert {"callmesh-cli", "callmesh-core", "nats-server", "ferretdb"} <= set(lines)
    assert " v2." in lines["nats-server"]
    assert " v1." in lines["ferretdb"] or "not built" in lines["ferretdb"]


def test_the_signing_key_is_created_once_owner_only_and_then_reused(tmp_path: Path) -> None:
    first = ensure_dev_keys(tmp_path)
    pem = first.private_path.read_bytes()
    second = ensure_dev_keys(tmp_path)
    assert (first.created, second.created) == (True, False)
    assert second.private_path == tmp_path / "keys" / "dev-signing.pem"
    assert second.private_path.read_bytes() == pem
    assert stat.S_IMODE(second.private_path.stat().st_mode) == 0o600
    assert second.public_path.read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_the_media_url_secret_is_random_once_and_then_reused(tmp_path: Path) -> None:
    secret = ensure_media_secret(tmp_path)
    assert len(secret) >= 32
    assert ensure_media_secret(tmp_path) == secret
    assert ensure_media_secret(tmp_path / "other") != secret


async def test_dev_token_is_a_tenant_token_the_services_key_verifies(tmp_path: Path) -> None:
    ensure_dev_keys(tmp_path)
    result = CliRunner().invoke(
        callmesh,
        [
            *("dev-token", "--data", str(tmp_path), "--tenant", "acme"),
            *("--role", "agent", "--role", "supervisor", "--ttl", "5m", "--subject", "alice"),
        ],
    )
    assert result.exit_code == 0, result.output
    principal: Principal = await _verify(tmp_path, result.stdout.strip())
    assert principal.tenant_id == "acme"
    assert principal.subject == "alice"
    assert principal.roles == {"agent", "supervisor"}
    assert not principal.is_operator
    remaining = principal.expires_at - datetime.now(UTC)
    assert timedelta(minutes=4) < remaining <= timedelta(minutes=5)


async def test_dev_token_gives_a_tenant_admin_by_default_and_operators_on_request(
    tmp_path: Path,
) -> None:
    ensure_dev_keys(tmp_path)
    runner = CliRunner()
    tenant = runner.invoke(callmesh, ["dev-token", "--data", str(tmp_path), "--tenant", "demo"])
    operator = runner.invoke(callmesh, ["dev-token", "--data", str(tmp_path), "--operator"])
    assert (tenant.exit_code, operator.exit_code) == (0, 0), tenant.output + operator.output
    as_tenant: Principal = await _verify(tmp_path, tenant.stdout.strip())
    as_operator: Principal = await _verify(tmp_path, operator.stdout.strip())
    assert as_tenant.roles == {"tenant_admin"}
    assert as_operator.is_operator
    assert as_operator.tenant_id is None


def test_dev_token_without_a_key_says_to_run_up_first(tmp_path: Path) -> None:
    result = CliRunner().invoke(callmesh, ["dev-token", "--data", str(tmp_path), "--operator"])
    assert result.exit_code == 1
    assert "no development signing key" in result.stderr
    assert f"callmesh up --data {tmp_path}" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "keys").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "exactly one of --tenant T and --operator"),
        (["--tenant", "acme", "--operator"], "exactly one of --tenant T and --operator"),
        (["--tenant", "Not A Slug"], "tenant: must be 1-48 lowercase"),
        (["--tenant", "system"], "'system' is reserved"),
        (["--tenant", "acme", "--ttl", "soon"], "positive duration like 30s"),
        (["--tenant", "acme", "--role", "operator"], "Invalid value for '--role'"),
    ],
)
def test_dev_token_refuses_bad_options_naming_the_rule(
    tmp_path: Path, args: list[str], message: str
) -> None:
    ensure_dev_keys(tmp_path)
    result = CliRunner().invoke(callmesh, ["dev-token", "--data", str(tmp_path), *args])
    assert result.exit_code == 2
    assert message in result.stderr


def test_ttl_takes_seconds_minutes_hours_and_days() -> None:
    assert parse_ttl("90") == timedelta(seconds=90)
    assert parse_ttl("30s") == timedelta(seconds=30)
    assert parse_ttl("15m") == timedelta(minutes=15)
    assert parse_ttl("2h") == timedelta(hours=2)
    assert parse_ttl("1d") == timedelta(days=1)
    with pytest.raises(ValueError, match="positive duration"):
        parse_ttl("0m")


def test_services_are_chosen_by_name_and_started_in_platform_order() -> None:
    assert parse_services("all") == ("admin", "ivr", "acd", "cti", "outbound", "qa", "wfm")
    assert parse_services("wfm, acd,ivr") == ("ivr", "acd", "wfm")
    with pytest.raises(ValueError, match="unknown service nope"):
        parse_services("acd,nope")


def test_up_refuses_an_unknown_service_before_starting_anything(tmp_path: Path) -> None:
    result = CliRunner().invoke(callmesh, ["up", "--data", str(tmp_path), "--services", "x"])
    assert result.exit_code == 2
    assert "unknown service x" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_freeswitch_targets_are_host_port_password_and_bad_ones_name_the_rule(
    tmp_path: Path,
) -> None:
    assert parse_freeswitch("10.0.0.5:8021:se:cret") == FreeswitchTarget(
        "10.0.0.5", 8021, "se:cret"
    )
    with pytest.raises(ValueError, match="must be HOST:PORT:PASSWORD"):
        parse_freeswitch("10.0.0.5:8021")
    with pytest.raises(ValueError, match="port must be a number from 1 to 65535"):
        parse_freeswitch("10.0.0.5:80x:pw")
    result = CliRunner().invoke(
        callmesh, ["up", "--data", str(tmp_path), "--freeswitch", "127.0.0.1:99999:pw"]
    )
    assert result.exit_code == 2
    assert "port must be a number from 1 to 65535" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_emulator_runs_only_with_cti_and_without_a_real_switch() -> None:
    real = FreeswitchTarget("10.0.0.5", 8021, "pw")
    assert UpOptions(data=None).emulator
    assert not UpOptions(data=None, freeswitch=real).emulator
    assert not UpOptions(data=None, services=("admin", "acd")).emulator


def test_plugin_discovery_reports_broken_plugins_and_keeps_the_good_ones() -> None:
    warnings: list[str] = []
    commands = load_plugins(
        [
            FakeEntryPoint("esl", "callmesh.fsemu.cli:esl", error=ImportError("no module gevent")),
            FakeEntryPoint("acd", "callmesh.acd.cli:acd", loaded=_hello),
            FakeEntryPoint("odd", "callmesh.odd:VALUE", loaded=42),
            FakeEntryPoint("up", "callmesh.other:up", loaded=_hello),
        ],
        reserved={"up"},
        warn=warnings.append,
    )
    assert commands == {"acd": _hello}
    assert warnings == [
        "plugin 'esl' (callmesh.fsemu.cli:esl) could not be loaded: ImportError: no module gevent",
        "plugin 'odd' (callmesh.odd:VALUE) skipped: it names a int, not a click command",
        "plugin 'up' (callmesh.other:up) skipped: the command name 'up' is taken",
    ]


def test_a_broken_plugin_is_reported_on_stderr_and_the_cli_still_works() -> None:
    entries = [
        FakeEntryPoint("broken", "callmesh.broken.cli:cli", error=RuntimeError("boom")),
        FakeEntryPoint("hello", "callmesh.hello.cli:hello", loaded=_hello),
    ]

    def cli() -> PluginGroup:
        # A fresh group each time, as each run of the console script is a new process.
        return PluginGroup("callmesh", commands={"up": up}, discover=lambda: entries)

    runner = CliRunner()
    helped = runner.invoke(cli(), ["--help"])
    assert helped.exit_code == 0, helped.output
    assert "hello" in helped.stdout
    assert "up" in helped.stdout
    assert "broken" not in helped.stdout
    assert "warning: plugin 'broken' (callmesh.broken.cli:cli) could not be loaded" in (
        helped.stderr
    )
    said = runner.invoke(cli(), ["hello"])
    assert said.exit_code == 0
    assert said.stdout == "hello from the plugin\n"
    assert "plugin 'broken'" in said.stderr


def test_built_in_commands_load_no_plugin() -> None:
    def explode() -> list[FakeEntryPoint]:
        raise AssertionError("plugins were discovered")

    group = PluginGroup("callmesh", commands={"up": up}, discover=explode)
    result = CliRunner().invoke(group, ["up", "--help"])
    assert result.exit_code == 0, result.output
    assert "--base-port N" in result.stdout
