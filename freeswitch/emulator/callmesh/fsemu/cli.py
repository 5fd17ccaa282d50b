"""Run the emulator: the switch, its Event Socket, the control API and a scenario, until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import uvicorn
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from callmesh.core.logging import configure_logging
from callmesh.fsemu.control import create_control_app
from callmesh.fsemu.esl_inbound import start_esl_server
from callmesh.fsemu.switch import Switch
from callmesh.fsemu.world.scenario import Scenario, ScenarioError, load_scenario
from callmesh.fsemu.world.world import World
from callmesh.fsemu.xml_curl import DEFAULT_TIMEOUT_S, XmlCurlDialplan

log = logging.getLogger("callmesh.fsemu")


class FsemuSettings(BaseSettings):
    """The emulator's settings, from ``CALLMESH_FSEMU_…`` (command-line flags win)."""

    model_config = SettingsConfigDict(env_prefix="CALLMESH_FSEMU_", extra="ignore")

    esl_host: str = "127.0.0.1"
    esl_port: int = Field(default=8021, ge=0, le=65535)
    password: SecretStr = SecretStr("ClueCon")
    control_host: str = "127.0.0.1"
    control_port: int = Field(default=8190, ge=0, le=65535)
    hostname: str = "fsemu"
    scenario: Path | None = None
    seed: int | None = None
    speed: float | None = Field(default=None, gt=0, le=10_000)
    media_dir: Path | None = None
    # FreeSWITCH's event-heartbeat-interval (switch.conf.xml), seconds; 0 turns HEARTBEAT off.
    heartbeat_s: float = Field(default=20.0, ge=0)
    # mod_xml_curl: base URL of the cti link's endpoints (POST <url>/fs/dialplan); none: static.
    xml_curl_url: str | None = Field(default=None, pattern=r"^https?://")
    xml_curl_timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, gt=0, le=300)
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "text"


def parse_args(argv: Sequence[str] | None) -> dict[str, Any]:
    """The flags given on the command line (only those: the environment fills the rest)."""
    parser = argparse.ArgumentParser(prog="python -m callmesh.fsemu", description=__doc__)
    parser.add_argument("--esl-host")
    parser.add_argument("--esl-port", type=int)
    parser.add_argument("--password")
    parser.add_argument("--control-host")
    parser.add_argument("--control-port", type=int)
    parser.add_argument("--hostname")
    parser.add_argument("--scenario", type=Path, help="YAML scenario file")
    parser.add_argument("--seed", type=int, help="seed of every random draw (default: scenario's)")
    parser.add_argument("--speed", type=float, help="time factor: 10 plays 10 s of calls in 1 s")
    parser.add_argument("--media-dir", type=Path)
    parser.add_argument("--heartbeat-s", type=float, help="HEARTBEAT interval, s (0: none)")
    parser.add_argument("--xml-curl-url", help="mod_xml_curl base URL (POST <url>/fs/dialplan)")
    parser.add_argument("--xml-curl-timeout-s", type=float)
    parser.add_argument("--log-level")
    parser.add_argument("--log-format", choices=("json", "text"))
    args = vars(parser.parse_args(argv))
    return {key: value for key, value in args.items() if value is not None}


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the emulator's stop owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(settings: FsemuSettings, scenario: Scenario | None) -> None:
    """Run everything until SIGTERM/SIGINT, then stop in order: traffic, servers, switch."""
    seed = settings.seed if settings.seed is not None else (scenario.seed if scenario else None)
    speed = settings.speed if settings.speed is not None else (scenario.speed if scenario else 1.0)
    switch = Switch(
        hostname=settings.hostname, speed=speed, seed=seed, media_dir=settings.media_dir
    )
    world = World(switch, seed=seed)
    if settings.xml_curl_url:
        switch.set_xml_curl(
            XmlCurlDialplan(settings.xml_curl_url, timeout=settings.xml_curl_timeout_s)
        )
    esl = await start_esl_server(
        switch, settings.esl_host, settings.esl_port, settings.password.get_secret_value()
    )
    config = uvicorn.Config(
        create_control_app(world),
        host=settings.control_host,
        port=settings.control_port,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    control = _Server(config)
    heartbeat = switch.start_heartbeat(settings.heartbeat_s) if settings.heartbeat_s else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    control_task = loop.create_task(control.serve(), name="fsemu-control")
    try:
        if scenario is not None:
            await world.load(scenario)
        log.info(
            "fsemu ready: esl %s:%s control %s:%s speed %s seed %s xml_curl %s",
            settings.esl_host,
            settings.esl_port,
            settings.control_host,
            settings.control_port,
            speed,
            seed,
            settings.xml_curl_url or "off",
        )
        stopped = loop.create_task(stop.wait())
        await asyncio.wait({stopped, control_task}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
    finally:
        log.info("fsemu stopping")
        if heartbeat is not None:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
        await world.close()
        control.should_exit = True
        await asyncio.gather(control_task, return_exceptions=True)
        await esl.close()
        await switch.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m callmesh.fsemu``; returns the exit code."""
    settings = FsemuSettings(**parse_args(argv))
    configure_logging("fsemu", settings.log_level, settings.log_format)
    scenario = None
    problem = None
    if settings.scenario is not None:
        try:
            scenario = load_scenario(settings.scenario)
        except ScenarioError as err:
            problem = str(err)
    if problem is not None:
        log.error("%s", problem)
        return 2
    try:
        asyncio.run(serve(settings, scenario))
    except OSError as err:
        # A port already taken, an address not on this host: say which, without a traceback.
        log.error("cannot serve: %s", err)  # noqa: TRY400
        return 1
    return 0
