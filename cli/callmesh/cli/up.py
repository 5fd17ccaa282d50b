"""``callmesh up``: the embedded platform (NATS, FerretDB, every service) under one supervisor."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import click
import httpx

from callmesh.cli.devtoken import DATA_ENV, DevKeys, ensure_dev_keys, ensure_media_secret
from callmesh.cli.supervisor import Output, ProcessSpec, Supervisor, describe_exit
from callmesh.core.servers import ManagedServer, ServerError, free_port, start_ferretdb, start_nats

HOST = "127.0.0.1"
DATABASE = "callmesh"
# This run's addresses, for commands run beside it (`callmesh admin create-operator --data DIR`).
PLATFORM_ENV = "platform.env"
DEFAULT_NATS_PORT = 4222
DEFAULT_NATS_MONITOR_PORT = 8222
DEFAULT_MONGODB_PORT = 27017
DEFAULT_BASE_PORT = 8101
# The emulated FreeSWITCH: its Event Socket where a real switch has it, its control API beside.
DEFAULT_ESL_PORT = 8021
DEFAULT_FSEMU_CONTROL_PORT = 8190
FSEMU = "fsemu"
# The node id the cti link reports for the switch `up` runs (or is pointed at).
NODE_ID = "node-1"
# Matches the services' own default of 20 s, plus time for the interpreter to exit.
DEFAULT_GRACE_S = 20.0
EXIT_MARGIN_S = 5.0


@dataclass(frozen=True)
class ServiceComponent:
    """A service ``up`` can run: its name and its port's offset from the base port."""

    name: str
    offset: int

    @property
    def module(self) -> str:
        """The module run as ``python -m``."""
        return f"callmesh.{self.name}"


# The services in start and port order (admin on the base port, 8101, … wfm on 8107). The
# FreeSWITCH emulator, when it runs, starts before them (event socket 8021, control API 8190).
SERVICES: tuple[ServiceComponent, ...] = tuple(
    ServiceComponent(name, offset)
    for offset, name in enumerate(("admin", "ivr", "acd", "cti", "outbound", "qa", "wfm"))
)
SERVICE_NAMES = tuple(service.name for service in SERVICES)


@dataclass(frozen=True)
class FreeswitchTarget:
    """A real FreeSWITCH's Event Socket for the cti link: ``host:port:password``."""

    host: str
    port: int
    password: str


def parse_freeswitch(text: str) -> FreeswitchTarget:
    """``host:port:password`` (the password may contain ``:``); ValueError names the rule."""
    host, sep, rest = text.partition(":")
    port_text, sep2, password = rest.partition(":")
    if not sep or not sep2 or not host or not password:
        raise ValueError(f"must be HOST:PORT:PASSWORD, e.g. 10.0.0.5:8021:secret (got {text!r})")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"port must be a number from 1 to 65535 (got {port_text!r})")
    return FreeswitchTarget(host, int(port_text), password)


@dataclass(frozen=True)
class UpOptions:
    """What ``callmesh up`` was asked to run."""

    data: Path | None
    services: tuple[str, ...] = SERVICE_NAMES
    # 0: free ports for everything (tests); otherwise services on base..base+6.
    base_port: int = DEFAULT_BASE_PORT
    nats_url: str | None = None
    mongodb_uri: str | None = None
    log_format: str = "text"
    timeout_s: float = 90.0
    restart: bool = False
    # A real switch for the cti link; None runs the emulator (when cti runs at all).
    freeswitch: FreeswitchTarget | None = None

    @property
    def emulator(self) -> bool:
        """Whether ``up`` runs the FreeSWITCH emulator (cti runs and no real switch is named)."""
        return "cti" in self.services and self.freeswitch is None


@dataclass(frozen=True)
class Endpoint:
    """A row of the summary: a component, where it answers, its metrics and its log."""

    name: str
    address: str
    metrics: str
    log: str


class Forced(Exception):
    """A second Ctrl-C: everything has been killed; leave at once."""


def parse_services(text: str) -> tuple[str, ...]:
    """Service names from ``acd,ivr`` (or ``all``), in start order; ValueError names the unknown."""
    names = {name.strip() for name in text.split(",") if name.strip()}
    if not names or names == {"all"}:
        return SERVICE_NAMES
    unknown = sorted(names - set(SERVICE_NAMES))
    if unknown:
        raise ValueError(
            f"unknown service {', '.join(unknown)} (choose from {', '.join(SERVICE_NAMES)})"
        )
    return tuple(name for name in SERVICE_NAMES if name in names)


def port_is_free(port: int, host: str = HOST) -> bool:
    """Whether a server could bind ``host:port`` now (SO_REUSEADDR, as servers set it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def redact(url: str) -> str:
    """A URL with any password replaced, for printing."""
    return re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", url)


def _grace(env: dict[str, str], name: str) -> float:
    try:
        return float(env.get(f"CALLMESH_{name.upper()}_SHUTDOWN_GRACE_S", DEFAULT_GRACE_S))
    except ValueError:
        return DEFAULT_GRACE_S


def _ferretdb_metrics_url(server: ManagedServer) -> str:
    debug = server.ports.get("debug")
    return f"http://127.0.0.1:{debug}/debug/metrics" if debug else "-"


class Platform:
    """One ``callmesh up`` run: data dir, servers, services, readiness, summary, ordered stop."""

    DUPLICATE_SIGNAL_S = 1.0

    def __init__(self, options: UpOptions, output: Output) -> None:
        self.options = options
        self.output = output
        self.supervisor = Supervisor(output, restart=options.restart)
        for name in ((FSEMU,) if options.emulator else ()) + options.services:
            # Known up front, so every prefix, the supervisor's first lines too, has one width.
            output.register(name)
        self.servers: list[ManagedServer] = []
        self.endpoints: list[Endpoint] = []
        self.temporary = options.data is None
        self.data = Path()
        self.keys: DevKeys | None = None
        self.ready_after_s = 0.0
        self._stop = threading.Event()
        self._forced = False
        self._first_signal_at = 0.0
        self._taken: set[int] = set()
        self._reported: set[str] = set()
        self._temporary_dir: Path | None = None
        self._mongodb_uri = ""

    # -- lifecycle -----------------------------------------------------------------------------

    def run(self) -> int:
        """Run until Ctrl-C/SIGTERM; the exit code (0 clean stop, 1 failure, 130 forced)."""
        previous = {
            sig: signal.signal(sig, self.handle_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            try:
                return self._run()
            except Forced:
                self.output.say("forced stop: killed every process", warn=True)
                return 130
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self._temporary_dir is not None:
                shutil.rmtree(self._temporary_dir, ignore_errors=True)

    def handle_signal(self, _signum: int, _frame: FrameType | None) -> None:
        """First SIGINT/SIGTERM: stop in order. Second: kill everything, raise ``Forced``."""
        # Only flags and kills here: printing could deadlock on the writer's lock, which the
        # interrupted main thread may be holding.
        now = time.monotonic()
        if not self._stop.is_set():
            self._stop.set()
            self._first_signal_at = now
            return
        # One Ctrl-C can arrive twice: from the terminal to the process group, and forwarded by
        # a wrapper such as `uv run` when it has no TTY. Only a later press means "force".
        if self._forced or now - self._first_signal_at < self.DUPLICATE_SIGNAL_S:
            return
        self._forced = True
        self.supervisor.kill_all()
        for server in self.servers:
            with contextlib.suppress(OSError):
                server.proc.kill()
        raise Forced

    def _run(self) -> int:
        self._prepare_data()
        try:
            code = self._start_and_watch()
        finally:
            clean = self._shutdown()
        return code if code else (0 if clean else 1)

    def _start_and_watch(self) -> int:
        nats_url = self._start_nats()
        if self._stop.is_set():
            return 0
        mongodb_uri = self._start_mongodb()
        self._mongodb_uri = mongodb_uri
        if self._stop.is_set():
            return 0
        for spec in self._service_specs(nats_url, mongodb_uri):
            self.supervisor.add(spec)
        self._write_platform_env(nats_url, mongodb_uri)
        self.output.say(f"starting {', '.join(self.options.services)}")
        self.supervisor.start_all()
        outcome = self._wait_ready()
        if outcome is not None:
            return outcome
        self._print_summary()
        while not self._stop.wait(0.25):
            self.supervisor.check()
            self._check_servers()
        return 0

    def _shutdown(self) -> bool:
        if self._forced:
            # Everything was killed by the second signal; only reap, quietly.
            self.supervisor.stop()
            for server in self.servers:
                server.stop(grace=1.0)
            return False
        if self.supervisor.children:
            self.output.say("stopping services (Ctrl-C again to force)")
        clean = self.supervisor.stop()
        # FerretDB before NATS: the reverse of the start order.
        for server in reversed(self.servers):
            self.output.say(f"stopping {server.name}")
            server.stop(grace=10.0)
        self.output.say("stopped" if clean else "stopped, not cleanly (see above)")
        return clean

    # -- data ----------------------------------------------------------------------------------

    def _prepare_data(self) -> None:
        try:
            if self.options.data is not None:
                self.data = self.options.data.resolve()
                self.data.mkdir(parents=True, exist_ok=True)
                self.output.say(f"data in {self.data} (kept between runs)")
            else:
                self.data = self._temporary_dir = Path(tempfile.mkdtemp(prefix="callmesh-up-"))
                self.output.say(
                    f"data in {self.data} (temporary: removed on exit; --data DIR keeps it)"
                )
            (self.data / "media").mkdir(exist_ok=True)
            (self.data / "logs").mkdir(exist_ok=True)
            self.keys = ensure_dev_keys(self.data)
        except OSError as err:
            raise click.ClickException(f"data dir {err.filename}: {err.strerror}") from err
        state = "created" if self.keys.created else "reusing"
        self.output.say(f"{state} development signing key {self.keys.private_path}")

    def _write_platform_env(self, nats_url: str, mongodb_uri: str) -> None:
        """Where this run's servers are, for `callmesh admin …` beside it (rewritten each run)."""
        lines = [
            "# written by `callmesh up`: this run's addresses (for `callmesh admin ... --data`)",
            f"CALLMESH_NATS_URL={nats_url}",
            f"CALLMESH_MONGODB_URI={mongodb_uri}",
            f"CALLMESH_MONGODB_DATABASE={DATABASE}",
        ]
        lines += [
            f"CALLMESH_ADMIN_URL={child.spec.url}"
            for child in self.supervisor.children
            if child.name == "admin"
        ]
        path = self.data / PLATFORM_ENV
        try:
            # The URI may carry credentials: readable by the owner only, like the keys.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write("\n".join(lines) + "\n")
            path.chmod(0o600)
        except OSError as err:
            self.output.say(f"{path}: {err.strerror} (callmesh admin --data will not find it)")

    def _operator_exists(self) -> bool | None:
        """Whether the platform has an operator yet (None when MongoDB cannot be asked)."""
        from pymongo import MongoClient  # only here: `up` imports no service package
        from pymongo.errors import PyMongoError

        client: MongoClient[dict[str, object]] = MongoClient(
            self._mongodb_uri, serverSelectionTimeoutMS=2000
        )
        try:
            return client[DATABASE]["operators"].find_one({}, {"_id": 1}) is not None
        except PyMongoError:
            return None
        finally:
            client.close()

    # -- ports ---------------------------------------------------------------------------------

    def pick_port(self, wanted: int, what: str) -> int:
        """``wanted`` if free (0: any free port); a free one otherwise, saying so."""
        if wanted and wanted not in self._taken and port_is_free(wanted):
            port = wanted
        else:
            port = free_port(HOST)
            while port in self._taken:
                port = free_port(HOST)
            if wanted:
                self.output.say(f"port {wanted} ({what}) is busy: using {port}")
        self._taken.add(port)
        return port

    # -- servers -------------------------------------------------------------------------------

    def _server_failed(self, err: ServerError, log_path: Path) -> click.ClickException:
        first, *rest = str(err).splitlines() or ["server did not start"]
        for text in rest:
            self.output.say(f"  | {text}", warn=True)
        where = "" if self.temporary or not rest else f" (log: {log_path})"
        return click.ClickException(first.rstrip(":") + where)

    def _start_nats(self) -> str:
        if self.options.nats_url:
            url = self.options.nats_url
            self.endpoints.append(Endpoint("nats", redact(url), "-", "(external)"))
            self.output.say(f"using NATS at {redact(url)}")
            return url
        directory = self.data / "nats"
        log_path = directory / "nats-server.log"
        base = self.options.base_port
        # -1 lets nats-server pick its own free ports, with no race against other processes.
        port = self.pick_port(DEFAULT_NATS_PORT, "nats") if base else -1
        monitor = self.pick_port(DEFAULT_NATS_MONITOR_PORT, "nats monitor") if base else -1
        self.output.say(f"starting nats-server (JetStream in {directory / 'jetstream'})")
        try:
            server = start_nats(directory, host=HOST, port=port, monitor_port=monitor)
        except ServerError as err:
            raise self._server_failed(err, log_path) from err
        except OSError as err:
            raise click.ClickException(
                f"nats-server could not be run: {err.filename}: {err.strerror}"
            ) from err
        self.servers.append(server)
        monitor_port = server.ports.get("monitor")
        metrics = f"http://{HOST}:{monitor_port}/varz" if monitor_port else "-"
        self.endpoints.append(Endpoint("nats", server.url, metrics, str(server.log_path)))
        return server.url

    def _start_mongodb(self) -> str:
        if self.options.mongodb_uri:
            uri = self.options.mongodb_uri
            self.endpoints.append(Endpoint("mongodb", redact(uri), "-", "(external)"))
            self.output.say(f"using MongoDB at {redact(uri)} (no FerretDB)")
            return uri
        directory = self.data / "ferretdb"
        base = self.options.base_port
        port = self.pick_port(DEFAULT_MONGODB_PORT, "ferretdb") if base else None
        self.output.say(f"starting FerretDB (SQLite files in {directory / 'sqlite'})")
        try:
            server = start_ferretdb(directory, host=HOST, port=port)
        except ServerError as err:
            raise self._server_failed(err, directory / "ferretdb.log") from err
        except OSError as err:
            raise click.ClickException(
                f"FerretDB could not be run: {err.filename}: {err.strerror}"
            ) from err
        self.servers.append(server)
        self.endpoints.append(
            Endpoint("ferretdb", server.url, _ferretdb_metrics_url(server), str(server.log_path))
        )
        return server.url

    def _check_servers(self) -> None:
        for server in self.servers:
            code = server.proc.poll()
            if code is None or server.name in self._reported:
                continue
            self._reported.add(server.name)
            self.output.say(
                f"{server.name} exited unexpectedly ({describe_exit(code)}); "
                f"services will not be ready until it is back. Its log {server.log_path} ends:",
                warn=True,
            )
            for text in server.log_tail(10).splitlines():
                self.output.say(f"  | {text}", warn=True)

    # -- services ------------------------------------------------------------------------------

    def _service_specs(self, nats_url: str, mongodb_uri: str) -> list[ProcessSpec]:
        assert self.keys is not None
        common = dict(os.environ)
        # The dev key is the one verifier ``up`` configures; a JWKS URL next to it is refused.
        common.pop("CALLMESH_JWKS_URL", None)
        common.update(
            {
                "CALLMESH_NATS_URL": nats_url,
                "CALLMESH_MONGODB_URI": mongodb_uri,
                "CALLMESH_MONGODB_DATABASE": DATABASE,
                "CALLMESH_LOG_FORMAT": self.options.log_format,
                "CALLMESH_JWT_PUBLIC_KEY": str(self.keys.public_path),
                "CALLMESH_MEDIA_DIR": str(self.data / "media"),
                "CALLMESH_MEDIA_URL_SECRET": ensure_media_secret(self.data),
                # Lines reach the screen as they are written, not when a buffer fills.
                "PYTHONUNBUFFERED": "1",
            }
        )
        specs: list[ProcessSpec] = []
        base = self.options.base_port
        switch = self.options.freeswitch
        # Ports first: the emulator asks cti's mod_xml_curl endpoints for its dialplan.
        ports = {
            service.name: self.pick_port(base + service.offset if base else 0, service.name)
            for service in SERVICES
            if service.name in self.options.services
        }
        if self.options.emulator:
            # (`up` runs the emulator only when cti runs.)
            emulator, switch = self._emulator_spec(common, f"http://{HOST}:{ports['cti']}")
            specs.append(emulator)
        jwks_url: str | None = None
        for service in SERVICES:
            if service.name not in self.options.services:
                continue
            port = ports[service.name]
            prefix = f"CALLMESH_{service.name.upper()}_"
            env = {**common, f"{prefix}HTTP_HOST": HOST, f"{prefix}HTTP_PORT": str(port)}
            if service.name == "admin":
                # Admin issues the tokens (and verifies them with its own keys).
                jwks_url = f"http://{HOST}:{port}/.well-known/jwks.json"
            elif jwks_url is not None:
                # The others verify with admin's JWKS; a URL and a public key are exclusive.
                env.pop("CALLMESH_JWT_PUBLIC_KEY", None)
                env["CALLMESH_JWKS_URL"] = jwks_url
            if service.name == "cti" and switch is not None:
                env.update(
                    {
                        "CALLMESH_CTI_NODE_ID": NODE_ID,
                        "CALLMESH_CTI_ESL_HOST": switch.host,
                        "CALLMESH_CTI_ESL_PORT": str(switch.port),
                        "CALLMESH_CTI_ESL_PASSWORD": switch.password,
                    }
                )
            url = f"http://{HOST}:{port}"
            specs.append(
                ProcessSpec(
                    name=service.name,
                    argv=(sys.executable, "-m", service.module),
                    env=env,
                    url=url,
                    ready_url=f"{url}/readyz",
                    metrics_url=f"{url}/metrics",
                    grace_s=_grace(env, service.name) + EXIT_MARGIN_S,
                    log_path=self.data / "logs" / f"{service.name}.log",
                )
            )
        return specs

    def _emulator_spec(
        self, common: dict[str, str], cti_url: str
    ) -> tuple[ProcessSpec, FreeswitchTarget]:
        """The FreeSWITCH emulator's process (its dialplan fetched from cti's mod_xml_curl
        endpoints at ``cti_url``), and where its Event Socket answers."""
        base = self.options.base_port
        esl_port = self.pick_port(DEFAULT_ESL_PORT if base else 0, "fsemu event socket")
        control_port = self.pick_port(DEFAULT_FSEMU_CONTROL_PORT if base else 0, "fsemu control")
        # A fresh password each run: only the cti link `up` starts needs it.
        target = FreeswitchTarget(HOST, esl_port, secrets.token_urlsafe(16))
        env = {
            **common,
            "CALLMESH_FSEMU_ESL_HOST": HOST,
            "CALLMESH_FSEMU_ESL_PORT": str(esl_port),
            "CALLMESH_FSEMU_PASSWORD": target.password,
            "CALLMESH_FSEMU_CONTROL_HOST": HOST,
            "CALLMESH_FSEMU_CONTROL_PORT": str(control_port),
            "CALLMESH_FSEMU_HOSTNAME": NODE_ID,
            "CALLMESH_FSEMU_XML_CURL_URL": cti_url,
        }
        url = f"http://{HOST}:{control_port}"
        self.endpoints.append(Endpoint("fsemu-esl", f"tcp://{HOST}:{esl_port}", "-", "-"))
        spec = ProcessSpec(
            name=FSEMU,
            argv=(sys.executable, "-m", "callmesh.fsemu"),
            env=env,
            url=url,
            ready_url=f"{url}/healthz",
            metrics_url=f"{url}/metrics",
            grace_s=10.0,
            log_path=self.data / "logs" / f"{FSEMU}.log",
        )
        return spec, target

    def _wait_ready(self) -> int | None:
        """None once every child is ready; else the exit code (0 if asked to stop, 1 failed)."""
        began = time.monotonic()
        deadline = began + self.options.timeout_s
        pending = {c.name: c.spec for c in self.supervisor.children if c.spec.ready_url}
        last: dict[str, str] = {}
        with httpx.Client(timeout=2.0, trust_env=False) as http:
            while pending:
                if self._stop.is_set():
                    return 0
                failed = self.supervisor.check()
                if failed:
                    names = ", ".join(child.name for child in failed)
                    self.output.say(f"{names} exited before being ready: stopping", warn=True)
                    return 1
                for name, spec in list(pending.items()):
                    assert spec.ready_url is not None
                    try:
                        response = http.get(spec.ready_url)
                    except httpx.HTTPError as err:
                        last[name] = f"no answer ({type(err).__name__})"
                        continue
                    if response.status_code == 200:
                        del pending[name]
                        self.output.say(f"{name} is ready ({time.monotonic() - began:.1f} s)")
                    else:
                        last[name] = f"{response.status_code} {response.text.strip()}"
                if pending and time.monotonic() >= deadline:
                    self._report_not_ready(pending, last)
                    return 1
                if pending:
                    self._stop.wait(0.25)
        self.ready_after_s = time.monotonic() - began
        return None

    def _report_not_ready(self, pending: dict[str, ProcessSpec], last: dict[str, str]) -> None:
        self.output.say(
            f"not ready after {self.options.timeout_s:g} s: {', '.join(pending)}", warn=True
        )
        for name in pending:
            self.output.say(f"  {name} /readyz: {last.get(name, 'no answer')}", warn=True)

    # -- summary -------------------------------------------------------------------------------

    def _print_summary(self) -> None:
        rows: list[Sequence[str]] = [("component", "address", "metrics", "log")]
        rows += [(e.name, e.address, e.metrics, e.log) for e in self.endpoints]
        rows += [
            (c.name, c.spec.url, c.spec.metrics_url or "-", str(c.spec.log_path or "-"))
            for c in self.supervisor.children
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        services = sum(1 for c in self.supervisor.children if c.name != FSEMU)
        real = self.options.freeswitch
        switch = ""
        if self.options.emulator:
            switch = " and the FreeSWITCH emulator"
        elif real is not None and "cti" in self.options.services:
            switch = f" (cti attached to FreeSWITCH {real.host}:{real.port})"
        out = self.output
        out.plain("")
        out.plain(
            f"callmesh is up: {services} services{switch} ready in {self.ready_after_s:.1f} s"
        )
        out.plain("")
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            out.plain("  " + "  ".join([*cells, row[-1]]))
        out.plain("")
        kept = "kept" if not self.temporary else "temporary, removed on exit"
        out.plain(f"  data      {self.data} ({kept})")
        out.plain(f"  media     {self.data / 'media'}")
        admin = next((c for c in self.supervisor.children if c.name == "admin"), None)
        if admin is None:
            if self.keys is not None:
                out.plain(f"  dev key   {self.keys.private_path} (services verify with it)")
            out.plain(f"  token     callmesh dev-token --data {self.data} --tenant demo")
            out.plain("            (or --operator; a development token: admin is not running)")
        else:
            if self._operator_exists() is False:
                out.plain(
                    "  first     create the first operator: "
                    f"callmesh admin create-operator --data {self.data} --username …"
                )
            out.plain(f"  login     POST {admin.spec.url}/v1/auth/login (username, password)")
        out.plain("")
        out.plain("Ctrl-C stops everything (press it twice to force).")
        out.plain("")


def _use_colour() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _freeswitch_option(value: str | None) -> FreeswitchTarget | None:
    if value is None:
        return None
    try:
        return parse_freeswitch(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from err


def _services_option(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, ...]:
    try:
        return parse_services(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from err


@click.command("up")
@click.option(
    "--data",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=DATA_ENV,
    help="Keep JetStream, FerretDB files, media, logs and the dev key here between runs "
    "(default: a temporary dir removed on exit).",
)
@click.option(
    "--services",
    metavar="LIST",
    default="all",
    show_default=True,
    callback=_services_option,
    help=f"Comma-separated subset of: {','.join(SERVICE_NAMES)}.",
)
@click.option(
    "--base-port",
    metavar="N",
    type=click.IntRange(0, 65535 - len(SERVICES) + 1),
    default=DEFAULT_BASE_PORT,
    show_default=True,
    help="Services listen on N..N+6 (a busy port is replaced by a free one); "
    "0 picks free ports for everything.",
)
@click.option(
    "--nats-url",
    metavar="URL",
    envvar="CALLMESH_NATS_URL",
    help="Use this NATS server (with JetStream) instead of starting one.",
)
@click.option(
    "--mongodb-uri",
    metavar="URI",
    envvar="CALLMESH_MONGODB_URI",
    help="Use this MongoDB instead of starting FerretDB.",
)
@click.option(
    "--freeswitch",
    metavar="HOST:PORT:PASSWORD",
    callback=lambda _ctx, _param, value: _freeswitch_option(value),
    help="Attach the cti link to this real FreeSWITCH's Event Socket instead of starting "
    "the emulator.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="The services' log format.",
)
@click.option(
    "--timeout",
    metavar="SECONDS",
    type=click.FloatRange(min=1),
    default=90.0,
    show_default=True,
    help="Seconds to wait for every service to be ready.",
)
@click.option(
    "--restart/--no-restart",
    default=False,
    show_default=True,
    help="Restart a service that exits unexpectedly (with backoff).",
)
@click.pass_context
def up(
    ctx: click.Context,
    data: Path | None,
    services: tuple[str, ...],
    base_port: int,
    nats_url: str | None,
    mongodb_uri: str | None,
    freeswitch: FreeswitchTarget | None,
    log_format: str,
    timeout: float,
    restart: bool,
) -> None:
    """Run the platform here: NATS, FerretDB and every service, until Ctrl-C."""
    missing = [name for name in services if importlib.util.find_spec(f"callmesh.{name}") is None]
    if missing:
        packages = ", ".join(f"callmesh-{name}" for name in missing)
        raise click.ClickException(
            f"service packages not installed: {packages} (run `uv sync --all-packages`)"
        )
    options = UpOptions(
        data=data,
        services=services,
        base_port=base_port,
        nats_url=nats_url or None,
        mongodb_uri=mongodb_uri or None,
        log_format=log_format,
        timeout_s=timeout,
        restart=restart,
        freeswitch=freeswitch,
    )
    ctx.exit(Platform(options, Output(sys.stdout, colour=_use_colour())).run())
