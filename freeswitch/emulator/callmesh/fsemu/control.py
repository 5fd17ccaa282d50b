"""The emulator's HTTP control API: phones, calls, channels, traffic, scenarios, stats, metrics."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field, field_validator

from callmesh.core.errors import Conflict, InvalidInput, NotFound
from callmesh.core.http import install_error_handlers, problem_responses
from callmesh.fsemu.world.callers import CallerScript
from callmesh.fsemu.world.distributions import Dist, Fixed
from callmesh.fsemu.world.phones import Phone, UnknownPhone
from callmesh.fsemu.world.scenario import (
    BUILTIN_PROFILES,
    DigitStep,
    PhoneProfile,
    Scenario,
    ScenarioError,
    TrafficSpec,
    parse_scenario_text,
)
from callmesh.fsemu.world.stats import StatsCollector
from callmesh.fsemu.world.traffic import TrafficGenerator
from callmesh.fsemu.world.world import TrafficExists, World

_DTMF_RE = re.compile(r"^[0-9*#A-Da-d]{1,64}$")
_CAUSE_RE = re.compile(r"^[A-Z_]{3,40}$")
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")


class _Body(BaseModel):
    """Request bodies refuse unknown fields, so a typo is an error and not a silent default."""

    model_config = ConfigDict(extra="forbid")


class PhoneIn(_Body):
    """A phone to create (or re-profile) and, by default, register."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    user: str = Field(pattern=r"^[A-Za-z0-9_.+-]{1,64}$")
    domain: str = Field(pattern=r"^[A-Za-z0-9.-]{1,253}$")
    profile: str | PhoneProfile = "answer"
    expires: int = Field(default=3600, ge=1, le=86_400)
    registers: bool = Field(default=True, alias="register")
    sip_profile: str = "internal"
    user_agent: str = "callmesh-fsemu-phone/1.0"


class ProfileIn(_Body):
    """A new behaviour for a phone: a built-in or scenario profile name, or a profile inline."""

    profile: str | PhoneProfile


class PhoneCallIn(_Body):
    """The phone dials a number."""

    destination: str = Field(pattern=r"^\+?[0-9A-Za-z*#_.-]{1,64}$")


class CallIn(_Body):
    """An inbound call: who dials what, the digits they press, how long they wait and talk."""

    number: str = Field(pattern=r"^\+?[0-9A-Za-z*#_.-]{1,64}$")
    caller: str = Field(default="+15550100000", pattern=r"^\+?[0-9A-Za-z*#_.-]{1,64}$")
    caller_name: str = ""
    digits: list[DigitStep] = []
    patience: Dist | None = Fixed(value=120.0)
    talk: Dist | None = Fixed(value=30.0)
    variables: dict[str, str] = {}


class CallOut(BaseModel):
    """The channel an inbound call created."""

    uuid: str
    name: str


class DtmfIn(_Body):
    """Digits the far side of a channel presses."""

    digits: str
    duration_ms: int = Field(default=100, ge=40, le=2000)

    @field_validator("digits")
    @classmethod
    def _dtmf(cls, value: str) -> str:
        if not _DTMF_RE.match(value):
            raise ValueError("must be 1-64 DTMF digits: 0-9, *, #, A-D")
        return value.upper()


class HangupIn(_Body):
    """The far side of a channel hangs up with a cause."""

    cause: str = "NORMAL_CLEARING"

    @field_validator("cause")
    @classmethod
    def _cause(cls, value: str) -> str:
        if not _CAUSE_RE.match(value):
            raise ValueError("must be a hang-up cause name such as NORMAL_CLEARING")
        return value


def _phone(world: World, key: str) -> Phone:
    try:
        return world.phones.get(key)
    except UnknownPhone as err:
        raise NotFound(f"no phone {key}", code="no_such_phone", phone=key) from err


def _profile(world: World, ref: str | PhoneProfile) -> tuple[PhoneProfile, str]:
    if isinstance(ref, PhoneProfile):
        return ref, "inline"
    named = (world.scenario.profiles if world.scenario else {}) | BUILTIN_PROFILES
    if ref not in named:
        raise InvalidInput("profile", "known_profile", f"profile: unknown profile {ref!r}")
    return named[ref], ref


def _channel_view(channel: Any) -> dict[str, Any]:
    return {
        "uuid": channel.uuid,
        "name": channel.name,
        "direction": channel.direction,
        "state": channel.state,
        "call_state": channel.call_state,
        "answered": channel.answered,
        "caller_number": channel.caller_number,
        "destination_number": channel.destination_number,
    }


def build_router(world: World) -> APIRouter:
    """Every route of the control API, bound to one world."""
    router = APIRouter(responses=problem_responses(404, 409, 422))
    switch = world.switch

    @router.get("/phones")
    async def list_phones() -> list[dict[str, object]]:
        return [p.describe() for p in world.phones.phones.values()]

    @router.post("/phones", status_code=201)
    async def add_phone(body: PhoneIn) -> dict[str, object]:
        profile, name = _profile(world, body.profile)
        phone = world.phones.add(
            body.user,
            body.domain,
            profile,
            profile_name=name,
            sip_profile=body.sip_profile,
            expires=body.expires,
            user_agent=body.user_agent,
        )
        if body.registers:
            world.phones.register(phone)
        return phone.describe()

    @router.get("/phones/{key}")
    async def get_phone(key: str) -> dict[str, object]:
        return _phone(world, key).describe()

    @router.post("/phones/{key}/register")
    async def register_phone(key: str) -> dict[str, object]:
        phone = _phone(world, key)
        world.phones.register(phone)
        return phone.describe()

    @router.post("/phones/{key}/unregister")
    async def unregister_phone(key: str) -> dict[str, object]:
        phone = _phone(world, key)
        world.phones.unregister(phone)
        return phone.describe()

    @router.post("/phones/{key}/offline")
    async def phone_offline(key: str) -> dict[str, object]:
        phone = _phone(world, key)
        world.phones.go_offline(phone)
        return phone.describe()

    @router.put("/phones/{key}/profile")
    async def set_phone_profile(key: str, body: ProfileIn) -> dict[str, object]:
        phone = _phone(world, key)
        profile, name = _profile(world, body.profile)
        world.phones.set_profile(phone, profile, name)
        return phone.describe()

    @router.post("/phones/{key}/calls", status_code=201)
    async def phone_calls(key: str, body: PhoneCallIn) -> CallOut:
        phone = _phone(world, key)
        if phone.state != "registered":
            raise Conflict(f"phone {key} is not registered", code="phone_not_registered")
        channel = await world.phone_call(phone, body.destination)
        return CallOut(uuid=channel.uuid, name=channel.name)

    @router.post("/calls", status_code=201)
    async def place_call(body: CallIn) -> CallOut:
        rng = world.rng
        script = CallerScript(
            steps=tuple(body.digits),
            patience_s=body.patience.sample(rng) if body.patience is not None else None,
            talk_s=body.talk.sample(rng) if body.talk is not None else None,
        )
        channel = await world.place_call(
            number=body.number,
            caller=body.caller,
            caller_name=body.caller_name,
            script=script,
            variables=body.variables or None,
        )
        return CallOut(uuid=channel.uuid, name=channel.name)

    @router.get("/calls")
    async def calls() -> dict[str, object]:
        return world.describe_calls()

    @router.get("/channels")
    async def list_channels() -> list[dict[str, Any]]:
        return [_channel_view(c) for c in switch.channels()]

    def _live(uuid: str) -> Any:
        channel = switch.channel(uuid)
        if channel is None:
            raise NotFound(f"no channel {uuid}", code="no_such_channel", uuid=uuid)
        return channel

    @router.get("/channels/{uuid}")
    async def get_channel(uuid: str) -> dict[str, Any]:
        channel = _live(uuid)
        return _channel_view(channel) | {"variables": dict(channel.variables)}

    @router.post("/channels/{uuid}/dtmf", status_code=202)
    async def send_dtmf(uuid: str, body: DtmfIn) -> dict[str, str]:
        await _live(uuid).far_dtmf(body.digits, body.duration_ms)
        return {"uuid": uuid, "digits": body.digits}

    @router.post("/channels/{uuid}/hangup", status_code=202)
    async def hangup(uuid: str, body: HangupIn | None = None) -> dict[str, str]:
        cause = body.cause if body is not None else "NORMAL_CLEARING"
        await _live(uuid).far_hangup(cause)
        return {"uuid": uuid, "cause": cause}

    @router.get("/traffic")
    async def list_traffic() -> list[dict[str, object]]:
        return [g.describe() for g in world.traffic.values()]

    @router.post("/traffic", status_code=201)
    async def start_traffic(body: TrafficSpec) -> dict[str, object]:
        try:
            generator: TrafficGenerator = world.start_traffic(body)
        except TrafficExists as err:
            raise Conflict(f"traffic {body.name} is running", code="traffic_running") from err
        return generator.describe()

    @router.delete("/traffic/{name}")
    async def stop_traffic(name: str) -> dict[str, object]:
        generator = world.traffic.get(name)
        if generator is None:
            raise NotFound(f"no traffic {name}", code="no_such_traffic")
        await generator.stop()
        return generator.describe()

    @router.delete("/traffic")
    async def stop_all_traffic() -> list[dict[str, object]]:
        await world.stop_traffic()
        return [g.describe() for g in world.traffic.values()]

    @router.post(
        "/scenario",
        status_code=201,
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/yaml": {"schema": {"type": "string"}},
                    "application/json": {"schema": Scenario.model_json_schema()},
                }
            }
        },
    )
    async def load_scenario(request: Request) -> dict[str, object]:
        raw = (await request.body()).decode("utf-8", errors="replace")
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        if content_type and content_type not in (*_YAML_TYPES, "application/json"):
            raise InvalidInput(
                "content-type", "yaml_or_json", f"content type {content_type!r} is not YAML or JSON"
            )
        try:
            # YAML is a superset of JSON: one parser takes either body.
            scenario = parse_scenario_text(raw)
        except ScenarioError as err:
            raise InvalidInput(
                "scenario", "valid_scenario", str(err), problems=err.problems
            ) from err
        try:
            await world.load(scenario)
        except TrafficExists as err:
            raise Conflict(f"traffic {err} is running", code="traffic_running") from err
        return {"name": scenario.name, "phones": len(world.phones.phones)}

    @router.get("/stats")
    async def stats() -> dict[str, object]:
        return world.stats.snapshot(len(switch.channels())) | {
            "callers": world.describe_calls(),
            "carrier_outcomes": dict(world.carriers.outcomes),
            "phones_registered": sum(
                1 for p in world.phones.phones.values() if p.state == "registered"
            ),
            # mod_xml_curl dialplan look-ups: lookups, found, not_found, errors, fallbacks
            # (to the static dialplan), no_route; null when no URL is configured.
            "xml_curl": dict(switch.xml_curl.stats) if switch.xml_curl is not None else None,
        }

    return router


def create_control_app(world: World) -> FastAPI:
    """The control API of one world: the routes, /healthz and /metrics (Prometheus)."""
    app = FastAPI(title="callmesh fsemu control", version="1")
    install_error_handlers(app)
    app.include_router(build_router(world))
    registry = CollectorRegistry()
    registry.register(StatsCollector(world.stats, lambda: len(world.switch.channels())))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "core_uuid": world.switch.core_uuid}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
