"""The ``callmesh`` command: built-in subcommands and those service packages plug in."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Collection, Iterable
from importlib.metadata import distributions, entry_points
from typing import Any, Protocol

import click

from callmesh.cli.devtoken import dev_token
from callmesh.cli.up import up
from callmesh.core.servers import ServerError, ferretdb_binary, nats_server_binary

PLUGIN_GROUP = "callmesh.cli"


class EntryPointLike(Protocol):
    """What plugin discovery needs of an entry point (``importlib.metadata.EntryPoint``)."""

    @property
    def name(self) -> str:
        """The subcommand's name."""
        ...

    @property
    def value(self) -> str:
        """Where it points (``module:attribute``), for messages."""
        ...

    def load(self) -> Any:
        """Import and return the object."""
        ...


def installed_plugins() -> list[EntryPointLike]:
    """The entry points installed packages declare in the ``callmesh.cli`` group."""
    return list(entry_points(group=PLUGIN_GROUP))


def _warn(message: str) -> None:
    click.echo(f"callmesh: warning: {message}", err=True)


def load_plugins(
    entries: Iterable[EntryPointLike],
    *,
    reserved: Collection[str] = (),
    warn: Callable[[str], None] = _warn,
) -> dict[str, click.Command]:
    """The plugin commands by name; a plugin that fails to load is reported and skipped."""
    commands: dict[str, click.Command] = {}
    for entry in entries:
        label = f"plugin {entry.name!r} ({entry.value})"
        if entry.name in reserved or entry.name in commands:
            warn(f"{label} skipped: the command name {entry.name!r} is taken")
            continue
        try:
            command = entry.load()
        except Exception as err:  # noqa: BLE001 — a plugin's import may fail in any way at all
            warn(f"{label} could not be loaded: {type(err).__name__}: {err}")
            continue
        if not isinstance(command, click.Command):
            warn(f"{label} skipped: it names a {type(command).__name__}, not a click command")
            continue
        commands[entry.name] = command
    return commands


class PluginGroup(click.Group):
    """A click group that adds the commands packages declare as ``callmesh.cli`` entry points.

    Plugins are loaded only when a command that is not built in is asked for (or for help), so
    ``callmesh up`` imports no service package.
    """

    def __init__(
        self,
        *args: Any,
        discover: Callable[[], Iterable[EntryPointLike]] = installed_plugins,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._discover = discover
        self._plugins: dict[str, click.Command] | None = None

    def plugins(self) -> dict[str, click.Command]:
        """The plugin commands, loaded once."""
        if self._plugins is None:
            self._plugins = load_plugins(self._discover(), reserved=set(self.commands))
        return self._plugins

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Built-in and plugin command names, sorted."""
        return sorted({*self.commands, *self.plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A built-in command, else a plugin's."""
        return self.commands.get(cmd_name) or self.plugins().get(cmd_name)


def _tool_version(binary: Callable[[], str], missing: str) -> str:
    try:
        path = binary()
    except ServerError:
        return missing
    try:
        result = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except OSError as err:
        return f"{missing} ({path}: {err.strerror})"
    # nats-server says "nats-server: v2.x.y"; FerretDB says "version: v1.x.y" then build details.
    first = (result.stdout or result.stderr).strip().splitlines()[:1]
    text = first[0].split(":", 1)[-1].strip() if first else "unknown"
    return f"{text} ({path})"


def _callmesh_packages() -> dict[str, str]:
    found: dict[str, str] = {}
    for dist in distributions():
        name = dist.metadata["Name"] or ""
        if name.startswith("callmesh"):
            found[name] = dist.version
    return dict(sorted(found.items()))


@click.group(cls=PluginGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    package_name="callmesh-cli", prog_name="callmesh", message="%(prog)s %(version)s"
)
def callmesh() -> None:
    """callmesh: a multi-tenant contact-center platform.

    `callmesh up` runs the whole platform on this machine; services add their own subcommands.
    """


@callmesh.command("version")
def version_command() -> None:
    """Print the versions of the callmesh packages, nats-server and FerretDB."""
    for name, package_version in _callmesh_packages().items():
        click.echo(f"{name:<20} {package_version}")
    click.echo(f"{'nats-server':<20} {_tool_version(nats_server_binary, 'not installed')}")
    click.echo(f"{'ferretdb':<20} {_tool_version(ferretdb_binary, 'not built')}")


callmesh.add_command(up)
callmesh.add_command(dev_token)


def main() -> None:
    """The console script's entry point."""
    callmesh(prog_name="callmesh")
