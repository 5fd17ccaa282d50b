"""Development secrets in ``up``'s data dir (signing key, media URL secret) and ``dev-token``."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from callmesh.core.auth import (
    Role,
    TokenIssuer,
    generate_signing_key,
    key_thumbprint,
    load_signing_key,
    public_key_pem,
    signing_key_pem,
)
from callmesh.core.errors import DomainError
from callmesh.core.settings import PlatformSettings
from callmesh.proto.subjects import check_tenant_id

KEYS_DIR = "keys"
SIGNING_KEY = "dev-signing.pem"
PUBLIC_KEY = "dev-signing.pub.pem"
MEDIA_SECRET = "media-url-secret"
DATA_ENV = "CALLMESH_DATA_DIR"

_TTL_RE = re.compile(r"^(\d+)\s*([smhd]?)$")
_TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class DevKeys:
    """The development signing key of a data dir, and the public key file services verify with."""

    private_path: Path
    public_path: Path
    created: bool

    def private_key(self) -> Ed25519PrivateKey:
        """The signing key."""
        return load_signing_key(self.private_path.read_bytes())


def _create_private(path: Path, content: str) -> bool:
    """Write ``content`` to a new file readable by its owner only; False if it already exists."""
    try:
        # O_EXCL: two ``up`` runs racing on one data dir must not both write a key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(content)
    return True


def _owner_only(path: Path) -> None:
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


def ensure_dev_keys(data: Path) -> DevKeys:
    """The data dir's Ed25519 development key: generated on first use, reused afterwards."""
    keys_dir = data / KEYS_DIR
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_path = keys_dir / SIGNING_KEY
    created = not private_path.exists() and _create_private(
        private_path, signing_key_pem(generate_signing_key())
    )
    _owner_only(private_path)
    try:
        key = load_signing_key(private_path.read_bytes())
    except ValueError as err:
        raise click.ClickException(f"{private_path}: not an Ed25519 signing key ({err})") from err
    public_path = keys_dir / PUBLIC_KEY
    public = public_key_pem(key)
    # Derived from the private key on every run, so the two can never disagree.
    if not public_path.exists() or public_path.read_text(encoding="ascii") != public:
        public_path.write_text(public, encoding="ascii")
    return DevKeys(private_path, public_path, created)


def ensure_media_secret(data: Path) -> str:
    """The data dir's media URL secret: random on first use, reused afterwards."""
    keys_dir = data / KEYS_DIR
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = keys_dir / MEDIA_SECRET
    _create_private(path, secrets.token_urlsafe(32))
    _owner_only(path)
    return path.read_text(encoding="ascii").strip()


def parse_ttl(text: str) -> timedelta:
    """A duration like ``90s``, ``15m``, ``2h``, ``1d`` (or plain seconds)."""
    match = _TTL_RE.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"must be a positive duration like 30s, 15m, 2h or 1d (got {text!r})")
    return timedelta(seconds=int(match.group(1)) * _TTL_UNITS[match.group(2)])


def _ttl_option(_ctx: click.Context, _param: click.Parameter, value: str) -> timedelta:
    try:
        return parse_ttl(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from err


def _tenant_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return check_tenant_id(value, "tenant")
    except ValueError as err:
        raise click.BadParameter(str(err)) from err


def mint(
    data: Path,
    *,
    tenant: str | None,
    operator: bool,
    roles: tuple[str, ...],
    subject: str,
    ttl: timedelta,
) -> str:
    """A token signed with the data dir's development key, for the configured issuer/audience."""
    private_path = data / KEYS_DIR / SIGNING_KEY
    if not private_path.is_file():
        raise click.ClickException(
            f"no development signing key in {data / KEYS_DIR}: "
            f"start `callmesh up --data {data}` once to create it"
        )
    keys = ensure_dev_keys(data)
    key = keys.private_key()
    # The services take issuer and audience from the same environment, so tokens match them.
    settings = PlatformSettings()
    issuer = TokenIssuer(
        key,
        kid=key_thumbprint(key.public_key()),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    try:
        return issuer.issue(subject, tenant_id=tenant, roles=roles, operator=operator, ttl=ttl)
    except DomainError as err:
        raise click.ClickException(err.message) from err


_ROLE_CHOICES = [role.value for role in Role if role is not Role.OPERATOR]


@click.command("dev-token")
@click.option(
    "--data",
    "data",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=DATA_ENV,
    required=True,
    help="The data dir `callmesh up --data DIR` uses (it holds keys/dev-signing.pem).",
)
@click.option(
    "--tenant", metavar="T", callback=_tenant_option, help="The tenant the token is for (a slug)."
)
@click.option("--operator", is_flag=True, help="An operator token (all tenants) instead.")
@click.option(
    "--role",
    "roles",
    multiple=True,
    type=click.Choice(_ROLE_CHOICES),
    help="A role to grant (repeat for several); default tenant_admin for tenant tokens.",
)
@click.option("--subject", default="dev", show_default=True, help="The token's subject (sub).")
@click.option(
    "--ttl",
    metavar="DURATION",
    default="15m",
    show_default=True,
    callback=_ttl_option,
    help="Lifetime: 30s, 15m, 1h (at most 1h: MAX_ACCESS_TTL).",
)
def dev_token(
    data: Path,
    tenant: str | None,
    operator: bool,
    roles: tuple[str, ...],
    subject: str,
    ttl: timedelta,
) -> None:
    """Print a development access token signed with the key `callmesh up` gave the services.

    For development only: it signs with DATA/keys/dev-signing.pem, which `callmesh up` creates
    and hands to every service as CALLMESH_JWT_PUBLIC_KEY. Use it until the admin service
    issues real tokens. Example:

    \b
        TOKEN=$(callmesh dev-token --data DIR --tenant demo --role agent)
        curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8103/...
    """
    if operator == (tenant is not None):
        raise click.UsageError("give exactly one of --tenant T and --operator")
    if not roles and not operator:
        roles = (Role.TENANT_ADMIN.value,)
    token = mint(
        data.resolve(), tenant=tenant, operator=operator, roles=roles, subject=subject, ttl=ttl
    )
    click.echo(token)
