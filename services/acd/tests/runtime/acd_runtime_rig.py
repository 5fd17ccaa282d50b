"""A test rig for the acd runtime: real NATS and FerretDB, acd replicas in-process, and a small
stand-in for the SWITCH NODE (the cti link's side of ``cm.node.<node>.cmd``) that answers
``SwitchCommand``s as a switch would — originates answered, refused or left ringing by the
dialled user — and records them; call events are published on the bus as the link would."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf.message import Message
from nats.aio.msg import Msg

from callmesh.acd.adapters import config_store
from callmesh.acd.domain.config import AgentProfile, Announcements, QueueConfig, TenantAcdConfig
from callmesh.core.bus import Bus
from callmesh.core.errors import RequestTimeout, Unavailable
from callmesh.core.runtime import Runtime, create_app
from callmesh.core.settings import PlatformSettings
from callmesh.core.store import Store
from callmesh.core.tenancy import TenantInfo, TenantStatus
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
from callmesh.proto.v1.call_pb2 import CallAnswered, CallHungUp, CallRinging
from callmesh.proto.v1.event_pb2 import Event
from callmesh.proto.v1.switch_pb2 import SwitchCommand, SwitchErrorCode, SwitchReply

NODE = "fs-rt"
R = TypeVar("R", bound=Message)


async def eventually(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll ``check`` (sync or async) until truthy; fail naming ``what``."""
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


def queue(queue_id: str, **fields: Any) -> QueueConfig:
    """A queue with short timeouts, no wrap-up, English, position announced."""
    fields.setdefault("no_answer_timeout_s", 3.0)
    fields.setdefault("wrap_up_s", 0.0)
    fields.setdefault(
        "announcements", Announcements(moh="moh/default", position=True, languages=("en",))
    )
    return QueueConfig(queue_id=queue_id, name=queue_id, **fields)


def agent(agent_id: str, user: str, *, groups: tuple[str, ...] = (), **skills: int) -> AgentProfile:
    """An agent whose offers ring ``user:<user>``."""
    return AgentProfile(
        agent_id=agent_id, endpoint=f"user:{user}", skills=dict(skills), groups=groups
    )


@dataclass
class Pending:
    """An originate the switch has not answered yet."""

    command: SwitchCommand
    reply: asyncio.Future[SwitchReply]


@dataclass
class SwitchNode:
    """The switch node's command subject: answers and records what the ACD sends."""

    bus: Bus
    tenant: str
    # dialled user → "answer" (default), "ring" (never answers by itself) or a cause name.
    behaviour: dict[str, str] = field(default_factory=dict)
    commands: list[SwitchCommand] = field(default_factory=list)
    pending: dict[str, Pending] = field(default_factory=dict)
    # Lease tokens the node saw per lease: it refuses older ones like the link.
    highest: dict[str, int] = field(default_factory=dict)
    # Channel → the tenant's call id (for the events the node publishes).
    calls: dict[str, str] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def on_command(self, msg: Msg) -> None:
        cmd = SwitchCommand.FromString(msg.data)
        self.commands.append(cmd)
        reply = SwitchReply(command_id=cmd.command_id, ok=True)
        if cmd.lease:
            if cmd.fencing_token < self.highest.get(cmd.lease, 0):
                reply.ok = False
                reply.error_code = SwitchErrorCode.SWITCH_ERROR_CODE_STALE_FENCING_TOKEN
                reply.message = "stale"
                await msg.respond(reply.SerializeToString())
                return
            self.highest[cmd.lease] = cmd.fencing_token
        which = cmd.WhichOneof("command")
        if which == "originate":
            leg = cmd.originate.channel_uuid
            self.calls[leg] = cmd.call_id
            user = cmd.originate.endpoint.user
            how = self.behaviour.get(user, "answer")
            reply.channel_uuid = leg
            if how == "answer":
                await self.event(cmd.call_id, call_ringing=CallRinging(channel_uuid=leg))
                await self.event(cmd.call_id, call_answered=CallAnswered(channel_uuid=leg))
            elif how == "ring":
                await self.event(cmd.call_id, call_ringing=CallRinging(channel_uuid=leg))
                future: asyncio.Future[SwitchReply] = asyncio.get_running_loop().create_future()
                self.pending[leg] = Pending(cmd, future)
                task = asyncio.create_task(self._later(msg, future))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
                return
            else:
                reply.ok = False
                reply.error_code = SwitchErrorCode.SWITCH_ERROR_CODE_SWITCH_ERROR
                reply.message = how
                await self.event(cmd.call_id, call_hung_up=CallHungUp(channel_uuid=leg, cause=how))
        elif which == "hangup":
            leg = cmd.hangup.channel_uuid
            waiting = self.pending.pop(leg, None)
            if waiting is not None and not waiting.reply.done():
                waiting.reply.set_result(
                    SwitchReply(
                        command_id=waiting.command.command_id,
                        ok=False,
                        error_code=SwitchErrorCode.SWITCH_ERROR_CODE_SWITCH_ERROR,
                        message="ORIGINATOR_CANCEL",
                    )
                )
            await self.event(
                cmd.call_id,
                call_hung_up=CallHungUp(channel_uuid=leg, cause=cmd.hangup.cause or "NORMAL"),
            )
        await msg.respond(reply.SerializeToString())

    async def _later(self, msg: Msg, future: asyncio.Future[SwitchReply]) -> None:
        reply = await future
        with contextlib.suppress(Exception):
            await msg.respond(reply.SerializeToString())

    async def event(self, call_id: str, **body: Message) -> None:
        """Publish a call event of the tenant as the cti link would."""
        event = self.bus.new_event(tenant_id=self.tenant, call_id=call_id, node_id=NODE)
        ((name, message),) = body.items()
        getattr(event, name).CopyFrom(message)
        await self.bus.publish(event)

    def of(self, kind: str) -> list[SwitchCommand]:
        """The commands of one kind, in order."""
        return [c for c in self.commands if c.WhichOneof("command") == kind]

    def originates_to(self, user: str) -> list[SwitchCommand]:
        """Originates to ``user:<user>``."""
        return [c for c in self.of("originate") if c.originate.endpoint.user == user]


@dataclass
class Replica:
    """One acd replica in-process."""

    instance: str
    runtime: Runtime
    close: Callable[[], Any]


@dataclass
class Rig:
    """The test's bus, store and switch node, and the acd replicas it started."""

    settings: PlatformSettings
    bus: Bus
    store: Store
    tenant: str
    node: SwitchNode
    events: list[Event] = field(default_factory=list)
    replicas: dict[str, Replica] = field(default_factory=dict)

    async def configure(self, config: TenantAcdConfig, *, tell: bool = True) -> None:
        """Save the tenant's config as the API does and (when someone owns it) reload."""
        await config_store.save_tenant_config(await self.store.tenant(config.tenant_id), config)
        if tell and self.replicas:
            await self.ask(AcdOp.CONFIG_CHANGED, ConfigChanged(kinds=["all"]), ConfigChangedReply)

    async def ask(
        self,
        op: AcdOp,
        request: Message,
        reply_type: type[R],
        *,
        tenant: str | None = None,
        timeout: float = 30.0,
    ) -> R:
        """A request to the tenant's owner, retried while nobody owns it."""
        subject = self.bus.subjects.service_command(tenant or self.tenant, Service.ACD, op)
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

    async def enqueue(self, call_id: str, queue_id: str, **fields: Any) -> EnqueueReply:
        """Enqueue a parked caller whose channel uuid is its call id."""
        tenant = fields.pop("tenant", None)
        request = EnqueueRequest(
            call_id=call_id,
            queue_id=queue_id,
            channel_uuid=call_id,
            node_id=NODE,
            language="en",
            **fields,
        )
        return await self.ask(AcdOp.ENQUEUE, request, EnqueueReply, tenant=tenant)

    async def agent(
        self, op: AcdOp, agent_id: str, *, tenant: str | None = None, **fields: Any
    ) -> AgentCommandReply:
        """An agent command (requested by the agent unless said)."""
        fields.setdefault("requested_by", agent_id)
        command = AgentCommand(agent_id=agent_id, **fields)
        return await self.ask(op, command, AgentCommandReply, tenant=tenant)

    async def live(self, tenant: str | None = None) -> LiveReply:
        """The owner's live view (agents and calls)."""
        request = LiveRequest(include_agents=True, include_calls=True)
        return await self.ask(AcdOp.LIVE, request, LiveReply, tenant=tenant)

    async def state(self, agent_id: str, tenant: str | None = None) -> int:
        """The agent's state in the live view."""
        for a in (await self.live(tenant)).agents:
            if a.agent_id == agent_id:
                return int(a.state)
        return int(AgentState.AGENT_STATE_LOGGED_OUT)

    async def caller_hangs_up(self, call_id: str) -> None:
        """The caller's leg ends (its channel uuid is the call id)."""
        await self.node.event(
            call_id, call_hung_up=CallHungUp(channel_uuid=call_id, cause="NORMAL_CLEARING")
        )

    def of(self, body: str, **match: Any) -> list[Event]:
        """Bus events with that body whose fields match."""
        out = []
        for event in self.events:
            if event.WhichOneof("body") != body:
                continue
            message = getattr(event, body)
            if all(getattr(message, k) == v for k, v in match.items()):
                out.append(event)
        return out

    async def start_acd(self, instance: str, **acd: Any) -> Replica:
        """Start a replica (lifespan and all) and wait until it serves the tenant."""
        from callmesh.acd.app import AcdSettings, build

        platform = self.settings.model_copy(update={"instance": instance})
        runtime = Runtime(build(AcdSettings(platform=platform, **acd)))
        app = create_app(runtime)
        stack = contextlib.AsyncExitStack()
        await stack.enter_async_context(app.router.lifespan_context(app))
        await eventually(lambda: runtime.start_error or runtime.started.is_set(), "acd started")
        assert runtime.start_error is None, runtime.start_error
        replica = Replica(instance, runtime, stack.aclose)
        self.replicas[instance] = replica
        return replica

    async def stop_acd(self, instance: str) -> None:
        """A clean stop (final snapshot, leases released)."""
        await self.replicas.pop(instance).close()

    async def crash_acd(self, instance: str) -> None:
        """The replica's NATS connection is cut: nothing released, the lease runs out."""
        replica = self.replicas.pop(instance)
        await replica.runtime.bus.nc.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(replica.close(), 30)


async def write_tenant(bus: Bus, tenant: str, status: TenantStatus = TenantStatus.ACTIVE) -> None:
    """The tenant's record in the tenants bucket, as admin writes it."""
    info = TenantInfo(tenant, status, name=tenant, language="en")
    await (await bus.kv(Bucket.TENANTS)).put(tenant, info.to_json())


@contextlib.asynccontextmanager
async def running(
    settings: PlatformSettings, bus: Bus, store: Store, tenant: str = "acme"
) -> AsyncIterator[Rig]:
    """The switch node up and the tenant written; replicas are started by the tests."""
    node = SwitchNode(bus, tenant)
    rig = Rig(settings, bus, store, tenant, node)

    async def seen(msg: Msg) -> None:
        rig.events.append(Event.FromString(msg.data))

    prefix = bus.subjects.prefix
    subs = [
        await bus.nc.subscribe(bus.subjects.node_command(NODE), cb=node.on_command),
        await bus.nc.subscribe(f"{prefix}.*.agent.*", cb=seen),
        await bus.nc.subscribe(f"{prefix}.*.queue.*", cb=seen),
    ]
    await bus.nc.flush()
    await write_tenant(bus, tenant)
    try:
        yield rig
    finally:
        for instance in list(rig.replicas):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(rig.stop_acd(instance), 30)
        for sub in subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()


def call_id() -> str:
    """A fresh call id (also the caller's channel uuid)."""
    return str(uuid.uuid4())
