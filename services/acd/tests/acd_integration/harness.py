"""The ACD end to end, in-process: a real NATS and FerretDB, the FreeSWITCH emulator with its world
of phones, the cti link speaking ESL to it, and one or more acd replicas on the bus.

A customer call is what ivr will hand the ACD: an inbound leg the emulator's dialplan answers and
parks (number ``QUEUE_NUMBER``), then an ``EnqueueRequest`` naming its channel and node. Agents
log in over the bus (``AgentCommand``) with the endpoint ``user:<sip user>``; their phones are
world phones registered in the tenant's SIP domain that answer, ring out, refuse or are busy by
profile. Everything the ACD tells the switch is seen twice: as the ``SwitchCommand`` requests on
the node's command subject (every replica's, with their fencing tokens) and as the emulator's
own events (playbacks, bridges, hang-ups).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from google.protobuf.message import Message
from nats.aio.msg import Msg

from callmesh.acd.domain.config import (
    AgentProfile,
    Announcements,
    QueueConfig,
    TenantAcdConfig,
)
from callmesh.core.bus import Bus
from callmesh.core.errors import RequestTimeout, Unavailable
from callmesh.core.runtime import Runtime, create_app
from callmesh.core.settings import PlatformSettings
from callmesh.core.tenancy import TenantInfo, TenantStatus
from callmesh.cti.app import CtiSettings
from callmesh.cti.app import build as build_cti
from callmesh.fsemu.esl_inbound import EslServer, start_esl_server
from callmesh.fsemu.events import Event as SwitchEvent
from callmesh.fsemu.media import write_silence
from callmesh.fsemu.switch import Channel, Switch
from callmesh.fsemu.world.phones import Phone
from callmesh.fsemu.world.scenario import BUILTIN_PROFILES, PhoneProfile
from callmesh.fsemu.world.world import World
from callmesh.proto.subjects import AcdOp, Bucket, Service
from callmesh.proto.v1.acd_pb2 import (
    AgentCommand,
    AgentCommandReply,
    ConfigChanged,
    ConfigChangedReply,
    EnqueueReply,
    EnqueueRequest,
    LiveReply,
    LiveRequest,
)
from callmesh.proto.v1.agent_pb2 import AgentState
from callmesh.proto.v1.event_pb2 import Event
from callmesh.proto.v1.switch_pb2 import SwitchCommand

NODE = "fs-acd"
TENANT = "acme"
SIP_SUFFIX = "sip.callmesh.local"
DOMAIN = f"{TENANT}.{SIP_SUFFIX}"
# The emulator's static dialplan answers and parks calls to this number (ivr's job, later).
QUEUE_NUMBER = "5000"
# Seconds of the music-on-hold WAV (long: one playback per wait, few events).
MOH_SECONDS = 30.0
PROMPT_SECONDS = 0.3
# What the acd's PromptResolver makes of the prompts the tests' queues use (relative to the
# switch's sounds dir, which the emulator resolves against its media dir).
MEDIA = (
    "moh/default.wav",
    "acd/en/position.wav",
    "acd/en/estimated_wait.wav",
    "acd/en/agent_id.wav",
    "acd/en/queue_full.wav",
    "acd/en/closed.wav",
)

R = TypeVar("R", bound=Message)


async def eventually(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll ``check`` (sync or async) until it gives something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not in time: {what}")
        await asyncio.sleep(0.02)


def queue(queue_id: str, *, skill: str | None = None, **fields: Any) -> QueueConfig:
    """A queue with test-friendly defaults: English, short timeouts, no wrap-up."""
    fields.setdefault("no_answer_timeout_s", 4.0)
    fields.setdefault("wrap_up_s", 0.0)
    fields.setdefault(
        "announcements", Announcements(moh="moh/default", position=True, languages=("en",))
    )
    return QueueConfig(queue_id=queue_id, name=queue_id, skill=skill, **fields)


def agent(agent_id: str, sip_user: str, **skills: int) -> AgentProfile:
    """An agent whose offers ring ``user:<sip_user>``."""
    return AgentProfile(
        agent_id=agent_id,
        user_id=f"usr_{agent_id}",
        display_name=agent_id,
        endpoint=f"user:{sip_user}",
        skills=dict(skills),
    )


def tenant_config(queues: Iterable[QueueConfig], agents: Iterable[AgentProfile]) -> TenantAcdConfig:
    """The tenant's ACD configuration."""
    return TenantAcdConfig(
        tenant_id=TENANT,
        queues={q.queue_id: q for q in queues},
        agents={a.agent_id: a for a in agents},
    )


# Phone behaviours the tests use (the emulator's profiles; ring times are seconds at speed 1).
ANSWERS = PhoneProfile(ring=BUILTIN_PROFILES["answer"].ring)
NO_ANSWER = BUILTIN_PROFILES["no_answer"]
REJECTS = PhoneProfile(behaviour="reject", ring=BUILTIN_PROFILES["answer"].ring)
BUSY = BUILTIN_PROFILES["busy"]


@dataclass
class Playback:
    """A PLAYBACK_START the switch fired on a channel."""

    channel_uuid: str
    path: str


@dataclass
class AcdReplica:
    """One acd service replica running in-process."""

    instance: str
    runtime: Runtime
    stop: Callable[[], Any]


@dataclass
class AcdHarness:
    """Emulator + world + cti link + the test's bus, and what they saw."""

    settings: PlatformSettings
    bus: Bus
    switch: Switch
    world: World
    server: EslServer
    cti: Runtime
    media_dir: Path
    events: list[Event] = field(default_factory=list)
    # When each event arrived (time.monotonic), parallel to ``events``.
    event_times: list[float] = field(default_factory=list)
    commands: list[tuple[float, SwitchCommand]] = field(default_factory=list)
    playbacks: list[Playback] = field(default_factory=list)
    switch_events: list[SwitchEvent] = field(default_factory=list)
    replicas: dict[str, AcdReplica] = field(default_factory=dict)
    # The admin service when the test asked for it (calendar_state for queue hours).
    admin: Any = None
    # Legs to each SIP user alive now, the most ever alive at once, and every leg's user.
    legs_now: dict[str, int] = field(default_factory=dict)
    legs_max: dict[str, int] = field(default_factory=dict)
    leg_user: dict[str, str] = field(default_factory=dict)

    # -- the world ------------------------------------------------------------------------------

    def phone(self, user: str, profile: PhoneProfile = ANSWERS) -> Phone:
        """A SIP phone of the tenant's domain, registered, behaving by ``profile``."""
        phone = self.world.phones.add(user, DOMAIN, profile, profile_name="test")
        self.world.phones.register(phone)
        return phone

    def set_profile(self, user: str, profile: PhoneProfile) -> None:
        """Change how ``user``'s phone behaves on its next call."""
        phone = self.world.phones.get(f"{user}@{DOMAIN}")
        self.world.phones.set_profile(phone, profile)

    async def caller(self, number: str) -> Channel:
        """A customer calls: an inbound leg answered and parked, known to the cti link."""
        call_id = str(uuid.uuid4())
        channel = await self.switch.inbound_call(
            caller_number=number,
            destination_number=QUEUE_NUMBER,
            variables={"callmesh_tenant": TENANT, "callmesh_call_id": call_id},
            uuid=call_id,
        )
        await eventually(lambda: channel.parked, f"caller {number} parked")
        await self.wait_event("call_answered", channel.uuid)
        return channel

    # -- configuration ------------------------------------------------------------------------

    async def configure(self, config: TenantAcdConfig) -> None:
        """Write the tenant's queues and agents to the store as the API does, and tell the owner
        (when there is one) to reload."""
        from callmesh.acd.adapters import config_store

        await config_store.save_tenant_config(await self.cti.store.tenant(TENANT), config)
        if self.replicas:
            await self.acd(AcdOp.CONFIG_CHANGED, ConfigChanged(kinds=["all"]), ConfigChangedReply)

    # -- the ACD over the bus -------------------------------------------------------------------

    async def acd(
        self, op: AcdOp, request: Message, reply_type: type[R], *, timeout: float = 30.0
    ) -> R:
        """Ask the tenant's acd owner, retrying while nobody owns the tenant (a failover)."""
        subject = self.bus.subjects.service_command(TENANT, Service.ACD, op)
        deadline = time.monotonic() + timeout
        while True:
            try:
                return await self.bus.request(subject, request, reply_type, timeout=5.0)
            except (Unavailable, RequestTimeout):
                # A request in flight when the owner changes may be dropped unanswered (the old
                # owner's subscription goes with its pending messages): retry, as every sender must.
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)

    async def enqueue(self, channel: Channel, queue_id: str, **fields: Any) -> EnqueueReply:
        """What ivr sends at a queue step: the parked call into ``queue_id``."""
        request = EnqueueRequest(
            call_id=channel.get_var("callmesh_call_id") or channel.uuid,
            queue_id=queue_id,
            channel_uuid=channel.uuid,
            node_id=NODE,
            caller_number=channel.caller_number,
            called_number=QUEUE_NUMBER,
            language=fields.pop("language", "en"),
            **fields,
        )
        return await self.acd(AcdOp.ENQUEUE, request, EnqueueReply)

    async def agent(self, op: AcdOp, agent_id: str, **fields: Any) -> AgentCommandReply:
        """An agent's command from the desk (``requested_by`` the agent unless given)."""
        fields.setdefault("requested_by", agent_id)
        return await self.acd(op, AgentCommand(agent_id=agent_id, **fields), AgentCommandReply)

    async def login(self, agent_id: str, sip_user: str, *, ready: bool = True) -> None:
        """Log in with the endpoint ``user:<sip user>`` and (by default) go ready."""
        reply = await self.agent(
            AcdOp.AGENT_LOGIN, agent_id, endpoint=f"user:{sip_user}", ready=ready
        )
        assert reply.ok, f"login {agent_id}: {reply.message}"

    async def live(self, *, calls: bool = True, agents: bool = True) -> LiveReply:
        """The owner's live view."""
        request = LiveRequest(include_agents=agents, include_calls=calls)
        return await self.acd(AcdOp.LIVE, request, LiveReply)

    async def agent_state(self, agent_id: str) -> int:
        """The agent's state in the owner's live view (LOGGED_OUT when absent)."""
        for live in (await self.live(calls=False)).agents:
            if live.agent_id == agent_id:
                return int(live.state)
        return int(AgentState.AGENT_STATE_LOGGED_OUT)

    async def agent_is(self, agent_id: str, state: int) -> bool:
        """Whether the agent is in ``state`` now (for ``eventually``)."""
        return await self.agent_state(agent_id) == state

    # -- what was seen --------------------------------------------------------------------------

    def of(self, body: str, **match: str) -> list[Event]:
        """Bus events with that body whose body fields (or envelope call_id) match."""
        out = []
        for event in self.events:
            if event.WhichOneof("body") != body:
                continue
            message = getattr(event, body)
            if all(
                (
                    event.call_id
                    if name == "call_id" and not hasattr(message, name)
                    else getattr(message, name)
                )
                == value
                for name, value in match.items()
            ):
                out.append(event)
        return out

    async def wait_event(
        self,
        body: str,
        channel: str | None = None,
        *,
        count: int = 1,
        timeout: float = 30.0,
        **match: str,
    ) -> list[Event]:
        """Wait for ``count`` bus events of ``body`` (on ``channel`` for call events)."""
        if channel is not None:
            key = "a_channel_uuid" if body in ("call_bridged", "call_unbridged") else "channel_uuid"
            match[key] = channel
        return await eventually(  # type: ignore[no-any-return]
            lambda: (found := self.of(body, **match)) and len(found) >= count and found,
            f"{count} {body} {match}",
            timeout,
        )

    def originates(self) -> list[SwitchCommand]:
        """Every Originate the acd sent to the node, in order."""
        return [c for _, c in self.commands if c.WhichOneof("command") == "originate"]

    def originates_to(self, sip_user: str) -> list[SwitchCommand]:
        """Originates whose endpoint is ``user:<sip_user>``."""
        return [c for c in self.originates() if c.originate.endpoint.user == sip_user]

    def double_offers(self) -> list[str]:
        """Agents offered a call while an earlier offer to them was still alive, judged from the
        originates on the node subject (every replica's): an offer lives from its originate
        until its leg's hang-up event (a leg the switch never created lives for no time)."""
        ended: dict[str, float] = {}
        for event, at in zip(self.events, self.event_times, strict=True):
            if event.HasField("call_hung_up"):
                ended.setdefault(event.call_hung_up.channel_uuid, at)
        offers: dict[str, list[tuple[float, float, str]]] = {}
        for at, command in self.commands:
            if command.WhichOneof("command") != "originate":
                continue
            leg = command.originate.channel_uuid
            end = ended.get(leg, float("inf")) if leg in self.leg_user else at
            user = command.originate.endpoint.user
            offers.setdefault(user, []).append((at, end, command.call_id))
        problems = []
        for user, spans in offers.items():
            spans.sort()
            for (_, end, call), (start, _, later) in itertools.pairwise(spans):
                if start < end:
                    problems.append(f"{user}: offered {later} while {call} was still offered")
        return problems

    def sent(self, kind: str, channel_uuid: str | None = None) -> list[SwitchCommand]:
        """Switch commands of one kind (play, bridge, hangup …), optionally on one channel."""
        out = []
        for _, command in self.commands:
            if command.WhichOneof("command") != kind:
                continue
            body = getattr(command, kind)
            uuids = {getattr(body, n, "") for n in ("channel_uuid", "a_channel_uuid")}
            if channel_uuid is None or channel_uuid in uuids:
                out.append(command)
        return out

    def played(self, channel_uuid: str) -> list[str]:
        """Paths the switch started playing on a channel, in order."""
        return [p.path for p in self.playbacks if p.channel_uuid == channel_uuid]

    def channel_alive(self, channel_uuid: str) -> bool:
        """Whether the switch still has the channel."""
        channel = self.switch.channel(channel_uuid)
        return channel is not None and channel.ready

    # -- acd replicas ---------------------------------------------------------------------------

    async def start_acd(self, instance: str, **acd: Any) -> AcdReplica:
        """Start an acd replica in-process (its runtime, lifespan and all)."""
        from callmesh.acd.app import AcdSettings, build

        platform = self.settings.model_copy(update={"instance": instance})
        runtime = Runtime(build(AcdSettings(platform=platform, **acd)))
        app = create_app(runtime)
        stack = contextlib.AsyncExitStack()
        await stack.enter_async_context(app.router.lifespan_context(app))
        await eventually(
            lambda: runtime.start_error or runtime.started.is_set(), f"acd {instance} started", 60
        )
        assert runtime.start_error is None, runtime.start_error
        replica = AcdReplica(instance, runtime, stack.aclose)
        self.replicas[instance] = replica
        return replica

    async def stop_acd(self, instance: str) -> None:
        """Stop a replica cleanly (it releases its leases)."""
        replica = self.replicas.pop(instance)
        await replica.stop()

    async def crash_acd(self, instance: str) -> None:
        """The replica dies: its NATS connection is cut at once, nothing is released or said
        goodbye; its leases run out on their TTL. What is left of it is then torn down."""
        replica = self.replicas.pop(instance)
        nc = replica.runtime.bus.nc
        # Closing without a drain: the server forgets its subscriptions, no more renewals.
        await nc.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(replica.stop(), 30)

    async def calendar(self, name: str, weekly: dict[str, list[list[str]]]) -> str:
        """A business calendar of the tenant in admin (UTC), its id; needs ``with_admin``."""
        from callmesh.admin.domain.common import Actor, ActorKind
        from callmesh.admin.service.tenant import CalendarAdmin, CalendarSpec

        assert self.admin is not None, "start the harness with with_admin=True"
        calendars: CalendarAdmin = self.admin.get(CalendarAdmin)
        actor = Actor(ActorKind.USER, "usr_admin", TENANT, ("tenant_admin",))
        spec = CalendarSpec(name=name, weekly=weekly, time_zone="UTC")
        return (await calendars.create(TENANT, actor, spec, "UTC")).calendar_id

    async def lease_holder(self) -> str | None:
        """Who holds ``acd.<tenant>`` now (the leases bucket), None when nobody does."""
        import json

        kv = await self.bus.kv(Bucket.LEASES)
        try:
            entry = await kv.get(f"acd.{TENANT}")
        except Exception:
            return None
        if not entry.value:
            return None
        try:
            doc = json.loads(entry.value)
        except ValueError:
            return entry.value.decode(errors="replace")
        holder = doc.get("holder") if isinstance(doc, dict) else None
        return str(holder) if holder else None


@contextlib.asynccontextmanager
async def running_admin(settings: PlatformSettings) -> AsyncIterator[Any]:
    """The admin service in-process; yields its context (the use cases)."""
    from callmesh.admin.app import AdminSettings
    from callmesh.admin.app import build as build_admin
    from callmesh.admin.domain.common import Actor, ActorKind
    from callmesh.admin.domain.tenants import NewTenant
    from callmesh.admin.service.operator import TenantAdmin

    runtime = Runtime(build_admin(AdminSettings(platform=settings)))
    app = create_app(runtime)
    async with app.router.lifespan_context(app):
        await eventually(lambda: runtime.start_error or runtime.started.is_set(), "admin", 60)
        assert runtime.start_error is None, runtime.start_error
        ctx = app.state.admin_context
        # Admin keeps the tenants bucket equal to its database: the tenant is made through it.
        operator = Actor(ActorKind.OPERATOR, "op-test")
        spec = NewTenant(slug=TENANT, name=TENANT, language="en", time_zone="UTC")
        await ctx.get(TenantAdmin).create(operator, spec)
        await eventually(lambda: runtime.tenant_gate.is_active(TENANT), "admin knows the tenant")
        yield ctx


async def write_tenant(bus: Bus, tenant_id: str = TENANT) -> None:
    """The tenant's record in the tenants bucket, as admin's operator area writes it."""
    info = TenantInfo(tenant_id, TenantStatus.ACTIVE, name=tenant_id, language="en")
    await (await bus.kv(Bucket.TENANTS)).put(tenant_id, info.to_json())


def write_media(media_dir: Path, names: Iterable[str]) -> None:
    """Silent WAVs at ``names`` (relative to the emulator's media dir); moh/ ones are long."""
    for name in names:
        path = media_dir / name
        if not path.suffix:
            path = path.with_suffix(".wav")
        seconds = MOH_SECONDS if name.startswith("moh") else PROMPT_SECONDS
        write_silence(path, seconds)


@contextlib.asynccontextmanager
async def running(
    settings: PlatformSettings,
    bus: Bus,
    tmp_path: Path,
    *,
    speed: float = 1.0,
    with_admin: bool = False,
) -> AsyncIterator[AcdHarness]:
    """Emulator, world and cti link up (and admin when asked), the tenant written; acd replicas
    are started by the tests."""
    media_dir = tmp_path / "sounds"
    media_dir.mkdir(parents=True, exist_ok=True)
    write_media(media_dir, MEDIA)
    switch = Switch(
        speed=speed, seed=7, media_dir=media_dir, recordings_dir=tmp_path / "recordings"
    )
    switch.set_dialplan({QUEUE_NUMBER: [("answer", ""), ("park", "")]})
    world = World(switch, seed=7)
    server = await start_esl_server(switch, port=0)
    cti = Runtime(
        build_cti(
            CtiSettings(
                platform=settings,
                node_id=NODE,
                esl_port=server.port,
                heartbeat_interval_s=0.5,
                recordings_dir=switch.recordings_dir,
                sip_domain_suffix=SIP_SUFFIX,
            )
        )
    )
    harness = AcdHarness(settings, bus, switch, world, server, cti, media_dir)

    def on_switch_event(event: SwitchEvent) -> None:
        if event.name == "CHANNEL_CREATE":
            channel = switch.channel(event.get("Unique-ID") or "")
            user = channel.variables.get("dialed_user") if channel is not None else None
            if channel is not None and user:
                harness.leg_user[channel.uuid] = user
                harness.legs_now[user] = harness.legs_now.get(user, 0) + 1
                harness.legs_max[user] = max(harness.legs_max.get(user, 0), harness.legs_now[user])
        if event.name == "CHANNEL_HANGUP":
            user = harness.leg_user.get(event.get("Unique-ID") or "")
            if user:
                harness.legs_now[user] -= 1
        if event.name == "PLAYBACK_START":
            harness.playbacks.append(
                Playback(event.get("Unique-ID") or "", event.get("Playback-File-Path") or "")
            )
        if event.name in ("CHANNEL_BRIDGE", "CHANNEL_HANGUP", "CHANNEL_ANSWER"):
            harness.switch_events.append(event)

    unsubscribe = switch.subscribe(on_switch_event)

    async def seen_event(msg: Msg) -> None:
        harness.events.append(Event.FromString(msg.data))
        harness.event_times.append(time.monotonic())

    async def seen_command(msg: Msg) -> None:
        harness.commands.append((time.monotonic(), SwitchCommand.FromString(msg.data)))

    prefix = bus.subjects.prefix
    subs = [
        await bus.nc.subscribe(f"{prefix}.{TENANT}.call.*", cb=seen_event),
        await bus.nc.subscribe(f"{prefix}.{TENANT}.agent.*", cb=seen_event),
        await bus.nc.subscribe(f"{prefix}.{TENANT}.queue.*", cb=seen_event),
        await bus.nc.subscribe(bus.subjects.node_command(NODE), cb=seen_command),
    ]
    await bus.nc.flush()
    await write_tenant(bus)
    app = create_app(cti)
    try:
        async with app.router.lifespan_context(app):
            await eventually(lambda: cti.start_error or cti.started.is_set(), "cti started", 60)
            assert cti.start_error is None, cti.start_error
            parts = cti.definition.on_start[0].__self__  # type: ignore[attr-defined]
            await eventually(lambda: parts.esl is None or parts.esl.connected, "commands up")
            async with contextlib.AsyncExitStack() as services:
                if with_admin:
                    harness.admin = await services.enter_async_context(running_admin(settings))
                try:
                    yield harness
                finally:
                    for instance in list(harness.replicas):
                        with contextlib.suppress(Exception):
                            await asyncio.wait_for(harness.stop_acd(instance), 30)
    finally:
        for sub in subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        unsubscribe()
        await world.close()
        await server.close()
        await switch.close()
