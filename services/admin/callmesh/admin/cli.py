"""``callmesh admin …``: operator commands that work on an empty platform (bootstrap, recovery).

They reach MongoDB directly (no admin service, no NATS needed): the first operator must exist
before anyone can log in to create one through the API.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from callmesh.admin.adapters import store_audit, store_identity
from callmesh.admin.adapters.keys import Argon2Passwords
from callmesh.admin.domain.identity import PasswordPolicy, check_username
from callmesh.admin.service.audit import Auditor
from callmesh.admin.service.context import utc_now
from callmesh.admin.service.identity import Operators, bootstrap_operator
from callmesh.admin.settings import AdminSettings
from callmesh.core.errors import DomainError, InvalidInput
from callmesh.core.settings import PlatformSettings
from callmesh.core.store import Store
from callmesh.core.tenancy import redact_uri

# Written by ``callmesh up --data DIR`` for the commands that need the platform's addresses.
PLATFORM_ENV = "platform.env"
_URI = "CALLMESH_MONGODB_URI"
_DATABASE = "CALLMESH_MONGODB_DATABASE"


@dataclass(frozen=True)
class Target:
    """The MongoDB deployment and platform database a command works on, and where that came from."""

    uri: str
    database: str
    source: str


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (``#`` comments, optional quotes), as ``callmesh up`` writes them."""
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip().removeprefix("export ").strip()] = value
    return values


def resolve_target(uri: str | None, database: str | None, data: Path | None) -> Target:
    """Options first, then ``<data>/platform.env``, then the environment (and its defaults)."""
    settings = PlatformSettings()
    found_uri, found_db, source = settings.mongodb_uri, settings.mongodb_database, "environment"
    if data is not None:
        env_file = data / PLATFORM_ENV
        if env_file.is_file():
            try:
                values = read_env_file(env_file)
            except OSError as err:
                raise click.ClickException(f"{env_file}: {err.strerror}") from err
            found_uri = values.get(_URI, found_uri)
            found_db = values.get(_DATABASE, found_db)
            source = str(env_file)
        else:
            click.echo(
                f"no {env_file}: using the environment ({_URI}, {_DATABASE}) and its defaults",
                err=True,
            )
    if uri is not None or database is not None:
        source = "options"
    return Target(uri or found_uri, database or found_db, source)


def read_password(from_stdin: bool, policy: PasswordPolicy, username: str) -> str:
    """The new operator's password: one line of stdin, or asked twice on the terminal."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        policy.check(password, username=username)
    except InvalidInput as err:
        raise click.ClickException(f"password {err.rule}") from err
    return password


async def create_operator(
    target: Target,
    *,
    username: str,
    password: str,
    display_name: str | None,
    force_additional: bool,
    policy: PasswordPolicy,
) -> str:
    """Create the operator on the target database; returns its id."""
    platform = PlatformSettings(mongodb_uri=target.uri, mongodb_database=target.database)
    store = Store(
        platform,
        collections=(*store_identity.COLLECTIONS, *store_audit.COLLECTIONS),
        operator_access=True,
    )
    try:
        if not await store.ping():
            raise click.ClickException(
                f"MongoDB at {redact_uri(target.uri)} is not reachable (from {target.source}); "
                "is the platform (`callmesh up`) running?"
            )
        await store.provision()
        platform_db = store.operator()
        operators = Operators(
            store_identity.MongoOperators(platform_db),
            Argon2Passwords(),
            Auditor(store_audit.MongoAuditLog(platform_db), utc_now),
            utc_now,
            policy,
        )
        operator = await bootstrap_operator(
            operators,
            username=username,
            password=password,
            display_name=display_name,
            force_additional=force_additional,
        )
    except DomainError as err:
        raise click.ClickException(err.message) from err
    finally:
        await store.close()
    return operator.operator_id


@click.group()
def admin() -> None:
    """Administer the platform (bootstrap and recovery commands)."""


@admin.command("create-operator")
@click.option("--username", required=True, help="The operator's login name.")
@click.option("--display-name", default=None, help="The name shown in the console.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (else it is prompted for).",
)
@click.option(
    "--data",
    "data",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The data dir of `callmesh up --data DIR`: MongoDB's address is read from its "
    "platform.env.",
)
@click.option("--mongodb-uri", default=None, help=f"MongoDB URI (default: {_URI}).")
@click.option("--database", default=None, help=f"Platform database (default: {_DATABASE}).")
@click.option(
    "--force-additional",
    is_flag=True,
    help="Create the operator even though operators exist (recovery, e.g. all locked out).",
)
def create_operator_command(
    username: str,
    display_name: str | None,
    password_stdin: bool,
    data: Path | None,
    mongodb_uri: str | None,
    database: str | None,
    force_additional: bool,
) -> None:
    """Create the first operator of an empty platform.

    Refused when an operator exists already (they create others through the API), unless
    --force-additional. Example, with the platform running under `callmesh up --data DIR`:

    \b
        callmesh admin create-operator --data DIR --username root
    """
    try:
        check_username(username)
    except InvalidInput as err:
        raise click.BadParameter(err.rule, param_hint="--username") from err
    policy = PasswordPolicy(min_length=AdminSettings().password_min_length)
    target = resolve_target(mongodb_uri, database, data.resolve() if data else None)
    password = read_password(password_stdin, policy, username)
    operator_id = asyncio.run(
        create_operator(
            target,
            username=username,
            password=password,
            display_name=display_name,
            force_additional=force_additional,
            policy=policy,
        )
    )
    click.echo(f"created operator {username} ({operator_id}) in database {target.database}")
    click.echo('log in: POST /v1/auth/login {"username": ..., "password": ...} on admin')
