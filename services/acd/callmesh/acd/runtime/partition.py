"""One tenant's partition while this replica owns its lease: the engine and its actor.

Everything that touches the engine — requests on ``cm.<tenant>.acd.<op>``, the tenant's call
events, offer outcomes, timers — goes through one asyncio task reading one inbox, so the engine
is single-threaded. Each turn takes what is queued (up to ``max_batch``), runs the engine, then:

1. writes the snapshot first when the turn answered a request or made an offer (write-ahead: a
   reply or an originate is never sent for state a successor could not restore);
2. carries out the effects in order: switch commands (fenced with the lease's token) in per-leg
   lanes — commands on one channel go one after another — and originates as their own tasks
   (their reply comes when the agent answers or the offer fails, and returns as an input);
   events to an ordered publisher;
3. answers the requests.

Other changes (call events, timers) are snapshotted at most ``snapshot_debounce_s`` later with
the call-event stream sequence consumed, so a successor replays what came after.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import nats.errors
import nats.js.errors
from google.protobuf.message import DecodeError, Message
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as CoreSubscription
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.kv import KeyValue
from opentelemetry.trace import SpanKind

from callmesh.acd.domain import effects as fx
from callmesh.acd.domain.config import OverflowKind, TenantAcdConfig
from callmesh.acd.domain.engine import AcdEngine, CallRequest
from callmesh.acd.runtime.calendar import CalendarCache
from callmesh.acd.runtime.commands import (
    answer_timeout_s,
    endpoint_of,
    no_answer_reason,
    reason_of_cause,
)
from callmesh.acd.runtime.events import proto_state, skills_proto, to_event
from callmesh.acd.runtime.metrics import AcdMetrics
from callmesh.acd.runtime.options import RuntimeOptions
from callmesh.acd.runtime.prompts import PromptResolver
from callmesh.core import telemetry
from callmesh.core.bus import ERROR_HEADER, Bus, timestamp
from callmesh.core.errors import DomainError, InvalidInput, QuotaExceeded, Unavailable
from callmesh.core.leases import LeaseGrant
from callmesh.core.quotas import QuotaKind, Quotas
from callmesh.proto.subjects import AcdOp, Bucket, Domain, Service, stream_of
from callmesh.proto.v1 import acd_pb2
from callmesh.proto.v1.common_pb2 import Party
from callmesh.proto.v1.event_pb2 import Event
from callmesh.proto.v1.switch_pb2 import (
    Bridge,
    Broadcast,
    BroadcastLeg,
    Hangup,
    Originate,
    Play,
    SetVariable,
    StopMedia,
    SwitchCommand,
    SwitchErrorCode,
    SwitchReply,
    Transfer,
)

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT = 1
# Snapshots of tenants with at least this many agents and calls are encoded in a thread.
_THREAD_OVER = 2000
_ZLIB = b"z"

_AGENT_OPS = frozenset(
    {
        AcdOp.AGENT_LOGIN,
        AcdOp.AGENT_READY,
        AcdOp.AGENT_NOT_READY,
        AcdOp.AGENT_BREAK,
        AcdOp.AGENT_END_WRAP_UP,
        AcdOp.AGENT_LOGOUT,
        AcdOp.AGENT_SKILLS,
    }
)
_REQUESTS: dict[AcdOp, type[Message]] = {
    AcdOp.ENQUEUE: acd_pb2.EnqueueRequest,
    AcdOp.LIVE: acd_pb2.LiveRequest,
    AcdOp.CONFIG_CHANGED: acd_pb2.ConfigChanged,
    **dict.fromkeys(_AGENT_OPS, acd_pb2.AgentCommand),
}
# Ops that change nothing: answered without a snapshot first.
_READ_ONLY = frozenset({AcdOp.LIVE})
_CODES = {
    "unknown_agent": acd_pb2.ACD_ERROR_CODE_UNKNOWN_AGENT,
    "unknown_queue": acd_pb2.ACD_ERROR_CODE_UNKNOWN_QUEUE,
    "refused": acd_pb2.ACD_ERROR_CODE_REFUSED,
    "invalid_input": acd_pb2.ACD_ERROR_CODE_INVALID_ARGUMENT,
    "quota_exceeded": acd_pb2.ACD_ERROR_CODE_QUOTA_EXCEEDED,
    "tenant_suspended": acd_pb2.ACD_ERROR_CODE_REFUSED,
}


# -- inputs of the actor --------------------------------------------------------------------


@dataclass
class _Request:
    op: AcdOp
    request: Message
    reply: asyncio.Future[Message]


@dataclass
class _CallEvent:
    event: Event
    seq: int


@dataclass
class _OfferOutcome:
    offer_id: str
    agent_id: str
    answered: bool
    reason: fx.NoAnswerReason = fx.NoAnswerReason.SWITCH_ERROR


_Work = _Request | _CallEvent | _OfferOutcome
_Input = _Work | None


@dataclass
class CallerLeg:
    """Where a call's caller is: its channel on a switch node."""

    channel_uuid: str
    node_id: str
    caller_number: str = ""
    touched: float = 0.0


@dataclass
class PartitionContext:
    """What every partition of a replica shares."""

    bus: Bus
    options: RuntimeOptions
    quotas: Quotas
    prompts: PromptResolver
    metrics: AcdMetrics
    load_config: Callable[[str], Awaitable[TenantAcdConfig]]
    tenant_active: Callable[[str], bool]
    # Called (once) when the partition finds it is fenced off: a stale token or a snapshot
    # written by someone else.
    on_fenced: Callable[[str, str], Awaitable[None]]


@dataclass
class _Turn:
    effects: list[fx.Effect] = field(default_factory=list)
    replies: list[tuple[asyncio.Future[Message], Message | BaseException]] = field(
        default_factory=list
    )
    persist: bool = False


class Fenced(Exception):
    """Someone else owns the partition now."""


class Partition:
    """The engine of one tenant while this replica holds ``acd.<tenant>``."""

    def __init__(self, ctx: PartitionContext, tenant_id: str, grant: LeaseGrant) -> None:
        self.ctx = ctx
        self.tenant_id = tenant_id
        self.grant = grant
        self.bus = ctx.bus
        self.options = ctx.options
        self.engine: AcdEngine | None = None
        self.calendar = CalendarCache(ctx.bus, tenant_id, timeout_s=ctx.options.calendar_timeout_s)
        self.stream_seq = 0
        self.stopped = False
        self._inbox: asyncio.Queue[_Input] = asyncio.Queue()
        self._actor: asyncio.Task[None] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._outbox: asyncio.Queue[Event | None] = asyncio.Queue()
        self._ops_sub: CoreSubscription | None = None
        self._events_sub: Any = None
        self._kv: KeyValue | None = None
        self._revision = 0
        self._dirty = False
        self._save_due: float | None = None
        self._metrics_due = 0.0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._answers: set[asyncio.Task[None]] = set()
        self._lanes: dict[str, asyncio.Task[None]] = {}
        self._waiting_replies: set[asyncio.Future[Message]] = set()
        self._callers: dict[str, CallerLeg] = {}
        self._by_channel: dict[str, str] = {}
        # Agent legs of connected calls: offer id (= the leg's uuid) → call id.
        self._agent_legs: dict[str, str] = {}
        # Offers whose originate this replica is waiting on (their reply decides, not events).
        self._originating: set[str] = set()
        # Caller legs that may be playing something (a Play is broken before the next).
        self._playing: set[str] = set()
        self._fenced = False
        self._fence_task: asyncio.Future[None] | None = None
        self._counted = False
        self._tracer = telemetry.tracer("callmesh.acd")

    @property
    def lease(self) -> str:
        """The lease key this partition acts under."""
        return self.grant.key

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load config and snapshot, rebuild the engine, then take events and requests."""
        tenant = self.tenant_id
        config = await self.ctx.load_config(tenant)
        self._kv = await self.bus.kv(Bucket.ACD_STATE)
        doc = await self._load_snapshot()
        await self.calendar.warm(q.calendar_id for q in config.queues.values() if q.calendar_id)
        now = time.time()
        start_seq: int
        pending: list[fx.Effect] = []
        if doc is not None:
            engine = AcdEngine.restore(
                config, doc["engine"], now, calendar=self.calendar.check, seed=_seed()
            )
            self.stream_seq = int(doc.get("stream_seq", 0))
            self._agent_legs = {str(k): str(v) for k, v in doc.get("agent_legs", {}).items()}
            pending = engine.tick(now)
            start_seq = self.stream_seq + 1
            # Whatever the caller legs were playing, a new Play breaks it first.
            for call in engine.calls.values():
                self._remember_caller(call.call_id, call.channel_uuid, call.node_id, now)
                self._playing.add(call.channel_uuid)
            log.info(
                "partition restored",
                extra={
                    "tenant_id": tenant,
                    "calls": len(engine.calls),
                    "agents": len(engine.agents),
                    "stream_seq": self.stream_seq,
                    "token": self.grant.token,
                },
            )
        else:
            engine = AcdEngine(config, calendar=self.calendar.check, seed=_seed())
            self.stream_seq = await self._last_call_seq()
            start_seq = self.stream_seq + 1
            log.info("partition started fresh", extra={"tenant_id": tenant})
        self.engine = engine
        # What the quota counts is what this owner holds (a dead owner may have left it off).
        with contextlib.suppress(DomainError):
            await self.ctx.quotas.set_used(tenant, QuotaKind.AGENTS_LOGGED_IN, len(engine.agents))
        self._publisher = asyncio.create_task(self._publish_loop(), name=f"acd-pub:{tenant}")
        self._actor = asyncio.create_task(self._run(pending), name=f"acd:{tenant}")
        await self._consume_from(start_seq)
        one = self.bus.subjects.service_command(tenant, Service.ACD, AcdOp.LIVE)
        subject = one.rsplit(".", 1)[0] + ".*"
        self._ops_sub = await self.bus.nc.subscribe(subject, cb=self._on_request)
        await self.bus.nc.flush()
        self.ctx.metrics.partitions.inc()
        self._counted = True

    async def stop(self, *, final_snapshot: bool) -> None:
        """Stop at once: no more requests, events or commands; a final snapshot when asked."""
        if self.stopped:
            return
        self.stopped = True
        for sub in (self._ops_sub, self._events_sub):
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
        actor = self._actor
        if actor is not None:
            if final_snapshot:
                self._inbox.put_nowait(None)
                done, _ = await asyncio.wait({actor}, timeout=self.options.stop_grace_s)
                if not done:
                    actor.cancel()
            else:
                actor.cancel()
            await asyncio.gather(actor, return_exceptions=True)
        for reply in list(self._waiting_replies):
            if not reply.done():
                reply.set_exception(Unavailable(f"acd of {self.tenant_id} is changing owner"))
        if final_snapshot and self.engine is not None and not self._fenced:
            try:
                await self._save()
            except (Fenced, DomainError, nats.errors.Error, TimeoutError) as err:
                # A dead connection's traceback says nothing more.
                log.warning(
                    "final snapshot failed: %s",
                    str(err) or type(err).__name__,
                    extra={"tenant_id": self.tenant_id},
                )
        for task in list(self._tasks) + list(self._lanes.values()):
            task.cancel()
        await asyncio.gather(*self._tasks, *self._lanes.values(), return_exceptions=True)
        if self._publisher is not None:
            self._outbox.put_nowait(None)
            done, _ = await asyncio.wait(
                {self._publisher}, timeout=self.options.stop_grace_s if final_snapshot else 1.0
            )
            if not done:
                self._publisher.cancel()
            await asyncio.gather(self._publisher, return_exceptions=True)
        if self._answers:
            await asyncio.wait(set(self._answers), timeout=1.0)
        await self.calendar.close()
        self.ctx.metrics.forget(self.tenant_id)
        if self._counted:
            self.ctx.metrics.partitions.dec()

    # -- snapshots ------------------------------------------------------------------------------

    async def _load_snapshot(self) -> dict[str, Any] | None:
        assert self._kv is not None
        try:
            entry = await self._kv.get(self.tenant_id)
        except nats.js.errors.KeyNotFoundError:
            self._revision = 0
            return None
        self._revision = entry.revision or 0
        if not entry.value:
            return None
        try:
            doc = decode_snapshot(entry.value)
        except ValueError as err:
            # Kept aside for a post-mortem; the tenant starts empty rather than not at all.
            log.error(  # noqa: TRY400 - the message says it all
                "unreadable snapshot set aside, starting empty: %s",
                err,
                extra={"tenant_id": self.tenant_id},
            )
            with contextlib.suppress(Exception):
                await self._kv.put(f"{self.tenant_id}.broken.{int(time.time())}", entry.value)
            return None
        return doc

    def snapshot_doc(self, *, engine_part: bool = True) -> dict[str, Any]:
        """The snapshot as stored: the engine's plus what the runtime needs to continue."""
        assert self.engine is not None
        doc: dict[str, Any] = {
            "format": SNAPSHOT_FORMAT,
            "tenant_id": self.tenant_id,
            "owner": self.grant.holder,
            "fencing_token": self.grant.token,
            "saved_at": time.time(),
            "stream_seq": self.stream_seq,
            "agent_legs": dict(self._agent_legs),
        }
        if engine_part:
            doc["engine"] = self.engine.snapshot()
        return doc

    async def _save(self) -> None:
        """Write the snapshot (compare-and-set on our last revision: a successor's wins)."""
        assert self._kv is not None
        began = time.perf_counter()
        engine = self.engine
        assert engine is not None
        # The engine's part comes as JSON text re-encoded only where agents, calls or offers
        # changed since the last save (a whole-tenant json.dumps per turn was the cost of the
        # write-ahead: ~4-9 ms at 200 agents).
        head = self.snapshot_doc(engine_part=False)
        text = json.dumps(head, separators=(",", ":"))
        raw = f'{text[:-1]},"engine":{engine.snapshot_json()}}}'.encode()
        if len(engine.agents) + len(engine.calls) >= _THREAD_OVER:
            # A big tenant's compression takes long: done in a thread so the other partitions
            # of the process keep going.
            data = await asyncio.to_thread(pack_snapshot, raw, self.options.snapshot_compress_over)
        else:
            data = pack_snapshot(raw, self.options.snapshot_compress_over)
        try:
            if self._revision:
                self._revision = await self._kv.update(self.tenant_id, data, last=self._revision)
            else:
                self._revision = await self._kv.create(self.tenant_id, data)
        except nats.js.errors.KeyWrongLastSequenceError as err:
            raise Fenced("the snapshot was written by another owner") from err
        self._dirty = False
        self._save_due = None
        self.ctx.metrics.snapshot_seconds.labels(self.tenant_id).observe(
            time.perf_counter() - began
        )
        self.ctx.metrics.snapshot_bytes.labels(self.tenant_id).set(len(data))

    async def _last_call_seq(self) -> int:
        stream = self.bus.subjects.stream(stream_of(Domain.CALL))
        info = await self.bus.js.stream_info(stream)
        return int(info.state.last_seq)

    # -- inputs ---------------------------------------------------------------------------------

    async def _consume_from(self, start_seq: int) -> None:
        subject = self.bus.subjects.events(Domain.CALL, tenant_id=self.tenant_id)
        stream = self.bus.subjects.stream(stream_of(Domain.CALL))

        async def on_event(msg: Msg) -> None:
            try:
                event = Event.FromString(msg.data)
            except DecodeError:
                log.warning("undecodable call event skipped", extra={"subject": msg.subject})
                return
            self._inbox.put_nowait(_CallEvent(event, msg.metadata.sequence.stream))

        self._events_sub = await self.bus.js.subscribe(
            subject,
            stream=stream,
            cb=on_event,
            ordered_consumer=True,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(1, start_seq)
            ),
        )

    async def _on_request(self, msg: Msg) -> None:
        # Not among the tasks a stop cancels: every request gets an answer (Unavailable then).
        task = asyncio.create_task(self._answer(msg))
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)

    async def _answer(self, msg: Msg) -> None:
        op_name = msg.subject.rsplit(".", 1)[-1]
        parent = telemetry.extract_trace(msg.headers)
        with self._tracer.start_as_current_span(
            f"acd {op_name}", context=parent, kind=SpanKind.SERVER
        ):
            try:
                try:
                    op = AcdOp(op_name)
                except ValueError as err:
                    raise InvalidInput("op", f"{op_name!r} is not an acd op") from err
                try:
                    request = _REQUESTS[op].FromString(msg.data)
                except DecodeError as err:
                    raise InvalidInput("request", f"not a valid {_REQUESTS[op].__name__}") from err
                self._check_running()
                future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
                self._waiting_replies.add(future)
                try:
                    self._inbox.put_nowait(_Request(op, request, future))
                    reply = await future
                finally:
                    self._waiting_replies.discard(future)
                payload, headers = reply.SerializeToString(), None
            except DomainError as err:
                payload = json.dumps(err.to_dict()).encode()
                headers = {ERROR_HEADER: err.code}
            except Exception as err:
                log.exception("acd request failed", extra={"op": op_name})
                body = {"code": "internal", "message": f"{op_name} failed: {type(err).__name__}"}
                payload, headers = json.dumps(body).encode(), {ERROR_HEADER: "internal"}
        if msg.reply:
            with contextlib.suppress(nats.errors.Error):
                await self.bus.nc.publish(msg.reply, payload, headers=headers)

    def _check_running(self) -> None:
        if self.stopped:
            raise Unavailable(f"acd of {self.tenant_id} is changing owner")

    # -- the actor ------------------------------------------------------------------------------

    async def _run(self, pending: list[fx.Effect]) -> None:
        engine = self.engine
        assert engine is not None
        if pending:
            self._execute(pending)
            self._mark_dirty(time.time())
        while True:
            wake = self._next_wake()
            try:
                if wake is None:
                    first = await self._inbox.get()
                else:
                    delay = wake - time.time()
                    async with asyncio.timeout(max(0.0, delay)):
                        first = await self._inbox.get()
                batch: list[_Input] = [first]
            except TimeoutError:
                batch = []
            while len(batch) < self.options.max_batch and not self._inbox.empty():
                batch.append(self._inbox.get_nowait())
            stop = any(item is None for item in batch)
            inputs = [item for item in batch if item is not None]
            try:
                await self._turn(inputs)
            except Fenced as err:
                await self._fence(str(err))
                return
            except Exception:
                log.exception("acd turn failed", extra={"tenant_id": self.tenant_id})
                self._fail_replies(inputs)
            if stop:
                return

    def _fail_replies(self, inputs: list[_Work]) -> None:
        """Every request of a failed turn still gets an answer."""
        for item in inputs:
            if isinstance(item, _Request) and not item.reply.done():
                item.reply.set_exception(RuntimeError("the acd turn failed"))

    def _next_wake(self) -> float | None:
        assert self.engine is not None
        times = [self._metrics_due]
        deadline = self.engine.next_deadline()
        if deadline is not None:
            times.append(deadline)
        if self._save_due is not None:
            times.append(self._save_due)
        return min(times)

    async def _turn(self, batch: list[_Work]) -> None:
        engine = self.engine
        assert engine is not None
        now = time.time()
        turn = _Turn()
        for item in batch:
            try:
                if isinstance(item, _Request):
                    try:
                        reply = await self._request(item.op, item.request, now, turn)
                        turn.replies.append((item.reply, reply))
                    except DomainError as err:
                        turn.replies.append((item.reply, err))
                    if item.op not in _READ_ONLY:
                        # A change may have no effect to show (a pending not-ready): stored anyway.
                        turn.persist = True
                        self._dirty = True
                elif isinstance(item, _CallEvent):
                    if item.seq > self.stream_seq:
                        self.stream_seq = item.seq
                        self._dirty = True
                    turn.effects += self._call_event(item.event, now)
                elif isinstance(item, _OfferOutcome):
                    turn.effects += self._outcome(item, now)
            except Exception as err:
                # One bad input must not take the others of the turn (or the loop) with it.
                log.exception("acd input failed", extra={"tenant_id": self.tenant_id})
                if isinstance(item, _Request):
                    turn.replies.append((item.reply, err))
        deadline = engine.next_deadline()
        if deadline is not None and deadline <= now:
            turn.effects += self._timed("tick", lambda: engine.tick(now))
        if any(isinstance(e, fx.RingAgent) for e in turn.effects):
            turn.persist = True
        if turn.effects:
            self._dirty = True
        if turn.persist and self._dirty:
            await self._save_or_log()
        elif self._dirty:
            self._mark_dirty(now)
        if turn.effects:
            self._execute(turn.effects)
        for future, result in turn.replies:
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
        if self._save_due is not None and time.time() >= self._save_due and self._dirty:
            await self._save_or_log()
        if time.time() >= self._metrics_due:
            self._metrics_due = time.time() + self.options.metrics_every_s
            self.ctx.metrics.observe(self.tenant_id, engine, now)
            self._prune(now)

    def _mark_dirty(self, now: float) -> None:
        self._dirty = True
        if self._save_due is None:
            self._save_due = now + self.options.snapshot_debounce_s

    async def _save_or_log(self) -> None:
        try:
            await self._save()
        except Fenced:
            raise
        except Exception:
            # The state is still in memory; the next turn tries again.
            log.exception("snapshot not stored", extra={"tenant_id": self.tenant_id})
            self._save_due = time.time() + max(self.options.snapshot_debounce_s, 0.5)

    def _timed(self, op: str, call: Callable[[], list[fx.Effect]]) -> list[fx.Effect]:
        began = time.perf_counter()
        try:
            return call()
        finally:
            self.ctx.metrics.routing.labels(self.tenant_id, op).observe(time.perf_counter() - began)

    async def _fence(self, why: str) -> None:
        if self._fenced:
            return
        self._fenced = True
        log.warning("partition fenced off: %s", why, extra={"tenant_id": self.tenant_id})
        # Outlives the partition's own tasks (it stops them).
        self._fence_task = asyncio.ensure_future(self.ctx.on_fenced(self.tenant_id, why))

    def _prune(self, now: float) -> None:
        """Forget legs of calls the engine no longer holds (after a grace for late commands)."""
        engine = self.engine
        assert engine is not None
        for call_id, leg in list(self._callers.items()):
            if engine.call(call_id) is None and now - leg.touched > 60.0:
                del self._callers[call_id]
                self._by_channel.pop(leg.channel_uuid, None)
                self._playing.discard(leg.channel_uuid)
        for leg_id, call_id in list(self._agent_legs.items()):
            if engine.call(call_id) is None:
                del self._agent_legs[leg_id]

    # -- requests -------------------------------------------------------------------------------

    async def _request(self, op: AcdOp, request: Message, now: float, turn: _Turn) -> Message:
        engine = self.engine
        assert engine is not None
        if op is AcdOp.ENQUEUE:
            assert isinstance(request, acd_pb2.EnqueueRequest)
            return self._enqueue(request, now, turn)
        if op in _AGENT_OPS:
            assert isinstance(request, acd_pb2.AgentCommand)
            return await self._agent_command(op, request, now, turn)
        if op is AcdOp.LIVE:
            assert isinstance(request, acd_pb2.LiveRequest)
            return self._live(request, now)
        assert isinstance(request, acd_pb2.ConfigChanged)
        config = await self.ctx.load_config(self.tenant_id)
        await self.calendar.warm(q.calendar_id for q in config.queues.values() if q.calendar_id)
        turn.effects += self._timed("configure", lambda: engine.configure(config, time.time()))
        log.info(
            "configuration reloaded",
            extra={"tenant_id": self.tenant_id, "kinds": list(request.kinds)},
        )
        return acd_pb2.ConfigChangedReply(applied=True)

    def _enqueue(
        self, req: acd_pb2.EnqueueRequest, now: float, turn: _Turn
    ) -> acd_pb2.EnqueueReply:
        engine = self.engine
        assert engine is not None
        try:
            for name in ("call_id", "queue_id", "channel_uuid", "node_id"):
                if not getattr(req, name):
                    raise InvalidInput(name, "required")
            if engine.call(req.call_id) is None and not self.ctx.tenant_active(self.tenant_id):
                raise fx.AcdRefused(f"tenant {self.tenant_id} is suspended: new calls are refused")
            call = CallRequest(
                call_id=req.call_id,
                queue_id=req.queue_id,
                caller_number=req.caller_number,
                called_number=req.called_number,
                priority=req.priority,
                language=req.language,
                data=dict(req.data),
                enqueued_at=(
                    req.enqueued_at.seconds + req.enqueued_at.nanos / 1e9
                    if req.HasField("enqueued_at")
                    else None
                ),
                preferred_agent_id=req.preferred_agent_id,
                channel_uuid=req.channel_uuid,
                node_id=req.node_id,
            )
            effects = self._timed("enqueue", lambda: engine.enqueue(call, now))
        except DomainError as err:
            return acd_pb2.EnqueueReply(
                ok=False, error_code=_code(err), message=err.message, queue_id=req.queue_id
            )
        self._remember_caller(req.call_id, req.channel_uuid, req.node_id, now, req.caller_number)
        turn.effects += effects
        overflow = next(
            (e for e in effects if isinstance(e, fx.RouteOverflow) and e.call_id == req.call_id),
            None,
        )
        held = engine.call(req.call_id)
        if overflow is not None or held is None:
            reason = overflow.reason.value if overflow is not None else "released"
            return acd_pb2.EnqueueReply(
                ok=False,
                error_code=acd_pb2.ACD_ERROR_CODE_OVERFLOWED,
                message=f"queue {req.queue_id!r}: overflowed ({reason})",
                queue_id=overflow.queue_id if overflow is not None else req.queue_id,
            )
        position = 0
        for effect in effects:
            if (
                isinstance(effect, fx.CallQueued | fx.CallPositionChanged)
                and effect.call_id == req.call_id
            ):
                position = effect.position
        if held.phase == "connected":
            position = 0
        elif not position:
            for view in engine.waiting_calls(held.queue_id, now):
                if view.call_id == req.call_id:
                    position = view.position
                    break
        ewt = engine.estimated_wait(held.queue_id, max(1, position), now) if position else 0.0
        return acd_pb2.EnqueueReply(
            ok=True,
            queue_id=held.queue_id,
            position=position,
            estimated_wait_s=max(0, round(ewt)),
        )

    async def _agent_command(
        self, op: AcdOp, cmd: acd_pb2.AgentCommand, now: float, turn: _Turn
    ) -> acd_pb2.AgentCommandReply:
        engine = self.engine
        assert engine is not None
        agent_id = cmd.agent_id
        by = cmd.requested_by
        took_quota = False
        try:
            if not agent_id:
                raise InvalidInput("agent_id", "required")
            skills = {s.name: int(s.level) for s in cmd.skills}
            if op is AcdOp.AGENT_LOGIN:
                if engine.agent_state(agent_id) is fx.AgentState.LOGGED_OUT:
                    if not self.ctx.tenant_active(self.tenant_id):
                        raise fx.AcdRefused(
                            f"tenant {self.tenant_id} is suspended: logins are refused"
                        )
                    if agent_id not in engine.config.agents:
                        raise fx.AcdRefused(
                            f"agent {agent_id!r} has no agent profile", code="unknown_agent"
                        )
                    await self.ctx.quotas.take(self.tenant_id, QuotaKind.AGENTS_LOGGED_IN)
                    took_quota = True
                effects = self._timed(
                    "login",
                    lambda: engine.login(
                        agent_id,
                        now,
                        endpoint=cmd.endpoint,
                        skills=skills or None,
                        ready=cmd.ready,
                        by=by,
                    ),
                )
                took_quota = False
            elif op is AcdOp.AGENT_READY:
                effects = self._timed("ready", lambda: engine.set_ready(agent_id, now, by=by))
            elif op is AcdOp.AGENT_NOT_READY:
                effects = self._timed(
                    "not_ready", lambda: engine.set_not_ready(agent_id, cmd.reason, now, by=by)
                )
            elif op is AcdOp.AGENT_BREAK:
                effects = self._timed(
                    "break",
                    lambda: engine.request_break(
                        agent_id, cmd.reason, now, by=by, forced=cmd.forced
                    ),
                )
            elif op is AcdOp.AGENT_END_WRAP_UP:
                effects = self._timed(
                    "end_wrap_up", lambda: engine.end_wrap_up(agent_id, now, by=by)
                )
            elif op is AcdOp.AGENT_LOGOUT:
                forced_by = by if (cmd.forced or (by and by != agent_id)) else ""
                effects = self._timed(
                    "logout",
                    lambda: engine.logout(agent_id, now, reason=cmd.reason, forced_by=forced_by),
                )
            else:
                effects = self._timed(
                    "skills",
                    lambda: engine.set_skills(agent_id, skills, now, temporary=cmd.temporary),
                )
        except DomainError as err:
            if took_quota:
                with contextlib.suppress(DomainError):
                    await self.ctx.quotas.release(self.tenant_id, QuotaKind.AGENTS_LOGGED_IN)
            return self._agent_reply(agent_id, ok=False, err=err)
        turn.effects += effects
        return self._agent_reply(agent_id, ok=True)

    def _agent_reply(
        self, agent_id: str, *, ok: bool, err: DomainError | None = None
    ) -> acd_pb2.AgentCommandReply:
        engine = self.engine
        assert engine is not None
        agent = engine.agents.get(agent_id)
        reply = acd_pb2.AgentCommandReply(
            ok=ok,
            state=proto_state(agent.state if agent else fx.AgentState.LOGGED_OUT),
            reason=agent.reason if agent else "",
        )
        if err is not None:
            reply.error_code = _code(err)
            reply.message = err.message
        return reply

    def _live(self, req: acd_pb2.LiveRequest, now: float) -> acd_pb2.LiveReply:
        engine = self.engine
        assert engine is not None
        wanted = set(req.queue_ids)
        reply = acd_pb2.LiveReply(owner=self.grant.holder, fencing_token=self.grant.token)
        for q in engine.queue_views(now):
            if wanted and q.queue_id not in wanted:
                continue
            reply.queues.append(
                acd_pb2.QueueLive(
                    queue_id=q.queue_id,
                    waiting=q.waiting,
                    longest_wait_s=q.longest_wait_s,
                    agents_logged_in=q.agents_logged_in,
                    agents_ready=q.agents_ready,
                    agents_busy=q.agents_busy,
                    estimated_wait_s=q.estimated_wait_s,
                    offered=q.offered,
                    answered=q.answered,
                    abandoned=q.abandoned,
                    overflowed=q.overflowed,
                    no_answers=q.no_answers,
                    service_level=q.service_level,
                    open=q.open,
                )
            )
            if req.include_calls:
                for c in engine.waiting_calls(q.queue_id, now):
                    reply.calls.append(
                        acd_pb2.WaitingCallLive(
                            call_id=c.call_id,
                            queue_id=c.queue_id,
                            position=c.position,
                            priority=c.priority,
                            waited_s=c.waited_s,
                            caller_number=c.caller_number,
                            language=c.language,
                            offered_to=list(c.offered_to),
                        )
                    )
        if req.include_agents:
            for a in engine.agent_views(now):
                reply.agents.append(
                    acd_pb2.AgentLive(
                        agent_id=a.agent_id,
                        state=proto_state(a.state),
                        reason=a.reason,
                        since=timestamp(a.since),
                        endpoint=a.endpoint,
                        skills=skills_proto(dict(a.skills)),
                        groups=list(a.groups),
                        call_id=a.call_id,
                        queue_id=a.queue_id,
                        calls_today=a.calls_today,
                        talk_s_today=a.talk_s_today,
                        no_answers_today=a.no_answers_today,
                    )
                )
        return reply

    # -- call events and offer outcomes ---------------------------------------------------------

    def _call_event(self, event: Event, now: float) -> list[fx.Effect]:
        engine = self.engine
        assert engine is not None
        body = event.WhichOneof("body")
        if body == "call_ringing":
            offer = engine.offer(event.call_ringing.channel_uuid)
            if offer is None:
                return []
            offer_id, agent_id = offer.offer_id, offer.agent_id
            return self._timed("ringing", lambda: engine.offer_ringing(offer_id, agent_id, now))
        if body == "call_answered":
            channel = event.call_answered.channel_uuid
            offer = engine.offer(channel)
            if offer is None or channel in self._originating:
                return []
            offer_id, agent_id = offer.offer_id, offer.agent_id
            self._agent_legs[offer_id] = offer.call_id
            return self._timed("answered", lambda: engine.offer_answered(offer_id, agent_id, now))
        if body == "call_hung_up":
            channel = event.call_hung_up.channel_uuid
            caller_of = self._by_channel.get(channel)
            if caller_of is not None:
                self._playing.discard(channel)
                return self._timed("call_ended", lambda: engine.call_ended(caller_of, now))
            offer = engine.offer(channel)
            if offer is not None:
                if channel in self._originating:
                    return []
                offer_id, agent_id = offer.offer_id, offer.agent_id
                reason = reason_of_cause(event.call_hung_up.cause)
                return self._timed(
                    "offer_failed",
                    lambda: engine.offer_failed(offer_id, agent_id, reason, now),
                )
            connected = self._agent_legs.pop(channel, None)
            if connected is not None:
                return self._timed("call_ended", lambda: engine.call_ended(connected, now))
            return []
        if body == "call_transferred":
            channel = event.call_transferred.channel_uuid
            moved = self._by_channel.get(channel) or self._agent_legs.get(channel)
            if moved is None:
                return []
            return self._timed("transferred", lambda: engine.call_transferred(moved, now))
        return []

    def _outcome(self, outcome: _OfferOutcome, now: float) -> list[fx.Effect]:
        engine = self.engine
        assert engine is not None
        self._originating.discard(outcome.offer_id)
        offer = engine.offer(outcome.offer_id)
        if offer is None:
            return []
        if outcome.answered:
            self._agent_legs[offer.offer_id] = offer.call_id
            return self._timed(
                "answered", lambda: engine.offer_answered(offer.offer_id, offer.agent_id, now)
            )
        return self._timed(
            "offer_failed",
            lambda: engine.offer_failed(offer.offer_id, offer.agent_id, outcome.reason, now),
        )

    def _remember_caller(
        self, call_id: str, channel: str, node: str, now: float, number: str = ""
    ) -> None:
        if not channel:
            return
        leg = self._callers.get(call_id)
        if leg is None:
            self._callers[call_id] = CallerLeg(channel, node, number, now)
        else:
            leg.touched = now
        self._by_channel[channel] = call_id

    # -- effects --------------------------------------------------------------------------------

    def _execute(self, effects: Iterable[fx.Effect]) -> None:
        for effect in effects:
            if isinstance(effect, fx.PlayToCaller):
                self._play_to_caller(effect)
            elif isinstance(effect, fx.RingAgent):
                self._ring(effect)
            elif isinstance(effect, fx.StopRinging):
                self._lane(
                    effect.offer_id,
                    effect.call_id,
                    [_cmd(hangup=Hangup(channel_uuid=effect.offer_id, cause="ORIGINATOR_CANCEL"))],
                    self._node_of(effect.call_id),
                )
            elif isinstance(effect, fx.ConnectAgent):
                self._connect(effect)
            elif isinstance(effect, fx.RouteOverflow):
                self._route_overflow(effect)
            else:
                self.ctx.metrics.count(self.tenant_id, effect)
                if isinstance(effect, fx.AgentLoggedOut):
                    self._spawn(self._release_quota())
                self._outbox.put_nowait(to_event(self.bus, self.tenant_id, effect))

    def _node_of(self, call_id: str) -> str:
        leg = self._callers.get(call_id)
        return leg.node_id if leg is not None else ""

    def _play_to_caller(self, play: fx.PlayToCaller) -> None:
        leg = self._callers.get(play.call_id)
        if leg is None:
            log.warning("no caller leg to play to", extra={"call_id": play.call_id})
            return
        channel = leg.channel_uuid
        steps: list[SwitchCommand] = []
        if channel in self._playing:
            steps.append(_cmd(stop_media=StopMedia(channel_uuid=channel)))
        files = [f for p in play.prompts for f in self.ctx.prompts.files(p, play.language)]
        if files:
            steps.append(_cmd(play=Play(channel_uuid=channel, files=files, loop=False)))
        if play.moh:
            moh = self.ctx.prompts.file(play.moh, play.language)
            steps.append(_cmd(play=Play(channel_uuid=channel, files=[moh], loop=True)))
            self._playing.add(channel)
        elif files:
            self._playing.add(channel)
        if steps:
            self._lane(channel, play.call_id, steps, leg.node_id)

    def _connect(self, connect: fx.ConnectAgent) -> None:
        leg = self._callers.get(connect.call_id)
        self._agent_legs[connect.offer_id] = connect.call_id
        if leg is None:
            log.warning("no caller leg to bridge", extra={"call_id": connect.call_id})
            return
        channel = leg.channel_uuid
        steps: list[SwitchCommand] = []
        if channel in self._playing:
            steps.append(_cmd(stop_media=StopMedia(channel_uuid=channel)))
            self._playing.discard(channel)
        steps.append(
            _cmd(bridge=Bridge(a_channel_uuid=channel, b_channel_uuid=connect.offer_id)),
        )
        if connect.greeting is not None:
            language = ""
            call = self.engine.call(connect.call_id) if self.engine is not None else None
            if call is not None:
                language = call.language
            # Played into the bridged call to the caller's leg: a broadcast before the bridge
            # would be cut off by it.
            for file in self.ctx.prompts.files(connect.greeting, language):
                steps.append(
                    _cmd(
                        broadcast=Broadcast(
                            channel_uuid=channel, file=file, leg=BroadcastLeg.BROADCAST_LEG_A
                        )
                    )
                )
        self._lane(channel, connect.call_id, steps, leg.node_id, agent_leg=connect.offer_id)

    def _route_overflow(self, route: fx.RouteOverflow) -> None:
        leg = self._callers.get(route.call_id)
        if leg is None:
            log.warning("no caller leg to overflow", extra={"call_id": route.call_id})
            return
        channel = leg.channel_uuid
        steps: list[SwitchCommand] = []
        if channel in self._playing:
            steps.append(_cmd(stop_media=StopMedia(channel_uuid=channel)))
            self._playing.discard(channel)
        target = route.target
        steps.append(
            _cmd(
                set_variable=SetVariable(
                    channel_uuid=channel,
                    name="callmesh_acd_overflow",
                    value=f"{route.queue_id}:{route.reason.value}",
                )
            )
        )
        if target.kind is OverflowKind.ANNOUNCEMENT:
            files = self.ctx.prompts.files(fx.Prompt(target.target), route.language)
            steps.append(_cmd(play=Play(channel_uuid=channel, files=files, loop=False)))
            # Queued behind the announcement on the parked leg: hang up once it has played.
            steps.append(_cmd(play=Play(channel_uuid=channel, files=["hangup::NORMAL_CLEARING"])))
        else:
            prefix = (
                self.options.ivr_extension_prefix
                if target.kind is OverflowKind.IVR_FLOW
                else self.options.voicemail_extension_prefix
            )
            steps.append(
                _cmd(
                    transfer=Transfer(
                        channel_uuid=channel,
                        destination=f"{prefix}{target.target}",
                        dialplan="XML",
                        context=self.options.transfer_context,
                    )
                )
            )
        self._lane(channel, route.call_id, steps, leg.node_id)

    def _ring(self, ring: fx.RingAgent) -> None:
        leg = self._callers.get(ring.call_id)
        self._originating.add(ring.offer_id)
        self._spawn(self._originate(ring, leg))

    async def _originate(self, ring: fx.RingAgent, leg: CallerLeg | None) -> None:
        try:
            endpoint = endpoint_of(ring.endpoint)
        except InvalidInput as err:
            log.warning("offer cannot ring: %s", err.message, extra={"agent_id": ring.agent_id})
            endpoint = None
        if leg is None or endpoint is None:
            self._inbox.put_nowait(
                _OfferOutcome(ring.offer_id, ring.agent_id, False, fx.NoAnswerReason.UNREACHABLE)
            )
            return
        answer = answer_timeout_s(ring.timeout_s)
        wait_s = answer + self.options.originate_extra_timeout_s
        cmd = _cmd(
            originate=Originate(
                channel_uuid=ring.offer_id,
                endpoint=endpoint,
                caller_id=Party(number=leg.caller_number),
                answer_timeout_s=answer,
                variables={
                    "callmesh_tenant": self.tenant_id,
                    "callmesh_call_id": ring.call_id,
                    "callmesh_role": "agent",
                    "callmesh_offer_id": ring.offer_id,
                    "callmesh_agent_id": ring.agent_id,
                    "callmesh_queue_id": ring.queue_id,
                },
                application="park",
            )
        )
        cmd.call_id = ring.call_id
        reply = await self._send(cmd, leg.node_id, wait_s)
        if reply is None:
            return
        if reply.ok:
            self._inbox.put_nowait(_OfferOutcome(ring.offer_id, ring.agent_id, True))
            return
        if reply.error_code in (
            SwitchErrorCode.SWITCH_ERROR_CODE_TIMEOUT,
            SwitchErrorCode.SWITCH_ERROR_CODE_NOT_CONNECTED,
        ):
            # The leg's fate is unknown: make sure it does not ring on.
            hangup = _cmd(hangup=Hangup(channel_uuid=ring.offer_id, cause="ORIGINATOR_CANCEL"))
            hangup.call_id = ring.call_id
            self._spawn(self._send(hangup, leg.node_id, self.options.command_timeout_s))
        self._inbox.put_nowait(
            _OfferOutcome(ring.offer_id, ring.agent_id, False, no_answer_reason(reply))
        )

    def _lane(
        self,
        key: str,
        call_id: str,
        steps: list[SwitchCommand],
        node_id: str,
        *,
        agent_leg: str = "",
    ) -> None:
        """Send ``steps`` one after another, after whatever the lane ``key`` still runs."""
        for step in steps:
            step.call_id = call_id
        previous = self._lanes.get(key)
        task = asyncio.create_task(self._run_lane(previous, steps, node_id, agent_leg))
        self._lanes[key] = task

        def done(t: asyncio.Task[None]) -> None:
            if self._lanes.get(key) is t:
                del self._lanes[key]

        task.add_done_callback(done)

    async def _run_lane(
        self,
        previous: asyncio.Task[None] | None,
        steps: list[SwitchCommand],
        node_id: str,
        agent_leg: str,
    ) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        for step in steps:
            reply = await self._send(step, node_id, self.options.command_timeout_s)
            if reply is None:
                return
            which = step.WhichOneof("command")
            if not reply.ok and which == "bridge":
                # Nobody may stay stuck: a connected call that cannot be bridged ends both legs
                # (their hang-up events release the agent).
                for uuid_ in (step.bridge.b_channel_uuid, step.bridge.a_channel_uuid):
                    end = _cmd(hangup=Hangup(channel_uuid=uuid_, cause="NORMAL_TEMPORARY_FAILURE"))
                    end.call_id = step.call_id
                    await self._send(end, node_id, self.options.command_timeout_s)
                return

    async def _send(self, cmd: SwitchCommand, node_id: str, timeout_s: float) -> SwitchReply | None:
        """Send one fenced command; None when the partition stopped (nothing sent)."""
        if self.stopped or self._fenced or not node_id:
            if not node_id:
                log.warning("no node for the command", extra={"call_id": cmd.call_id})
            return None
        cmd.command_id = uuid.uuid4().hex
        cmd.tenant_id = self.tenant_id
        cmd.lease = self.grant.key
        cmd.fencing_token = self.grant.token
        cmd.timeout_ms = int(timeout_s * 1000)
        cmd.source.service = self.bus.service
        cmd.source.instance = self.bus.settings.instance
        which = cmd.WhichOneof("command") or "-"
        try:
            reply = await self.bus.request(
                self.bus.subjects.node_command(node_id), cmd, SwitchReply, timeout=timeout_s + 1.0
            )
        except DomainError as err:
            code = (
                SwitchErrorCode.SWITCH_ERROR_CODE_TIMEOUT
                if err.code == "timeout"
                else SwitchErrorCode.SWITCH_ERROR_CODE_NOT_CONNECTED
            )
            reply = SwitchReply(ok=False, error_code=code, message=err.message)
        if not reply.ok:
            error = SwitchErrorCode.Name(reply.error_code)
            self.ctx.metrics.command_failures.labels(self.tenant_id, which, error).inc()
            log.info(
                "switch command failed: %s %s",
                which,
                reply.message,
                extra={"tenant_id": self.tenant_id, "call_id": cmd.call_id, "error": error},
            )
            if reply.error_code == SwitchErrorCode.SWITCH_ERROR_CODE_STALE_FENCING_TOKEN:
                await self._fence(f"stale fencing token: {reply.message}")
        return reply

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _release_quota(self) -> None:
        try:
            await self.ctx.quotas.release(self.tenant_id, QuotaKind.AGENTS_LOGGED_IN)
        except DomainError as err:
            log.warning("agents quota not released: %s", err.message)

    async def _publish_loop(self) -> None:
        while True:
            first = await self._outbox.get()
            if first is None:
                return
            batch = [first]
            done = False
            while not self._outbox.empty() and len(batch) < 256:
                item = self._outbox.get_nowait()
                if item is None:
                    done = True
                    break
                batch.append(item)
            try:
                failed = await self.bus.publish_many(batch)
            except Exception:
                log.exception("acd events not published", extra={"tenant_id": self.tenant_id})
                failed = []
            for failure in failed:
                log.warning(
                    "acd event not stored: %s",
                    failure.error,
                    extra={"tenant_id": self.tenant_id, "event_id": failure.event.event_id},
                )
            if done:
                return


def _cmd(**command: Message) -> SwitchCommand:
    return SwitchCommand(**command)  # type: ignore[arg-type]


def _code(err: DomainError) -> acd_pb2.AcdErrorCode:
    if isinstance(err, QuotaExceeded):
        return acd_pb2.ACD_ERROR_CODE_QUOTA_EXCEEDED
    if isinstance(err, InvalidInput):
        return acd_pb2.ACD_ERROR_CODE_INVALID_ARGUMENT
    return _CODES.get(err.code, acd_pb2.ACD_ERROR_CODE_REFUSED)


def _seed() -> int:
    return secrets.randbits(63)


def encode_snapshot(doc: dict[str, Any], compress_over: int) -> bytes:
    """JSON bytes; zlib-compressed behind a ``z`` when bigger than ``compress_over``."""
    return pack_snapshot(json.dumps(doc, separators=(",", ":")).encode(), compress_over)


def pack_snapshot(data: bytes, compress_over: int) -> bytes:
    """Snapshot JSON bytes as stored: zlib-compressed behind a ``z`` when bigger than
    ``compress_over``."""
    if len(data) > compress_over:
        return _ZLIB + zlib.compress(data, 1)
    return data


def decode_snapshot(data: bytes) -> dict[str, Any]:
    """Inverse of ``encode_snapshot``; ValueError when it is not a snapshot."""
    if data[:1] == _ZLIB:
        try:
            data = zlib.decompress(data[1:])
        except zlib.error as err:
            raise ValueError(f"compressed snapshot unreadable: {err}") from err
    doc = json.loads(data)
    if not isinstance(doc, dict) or not isinstance(doc.get("engine"), dict):
        raise ValueError("not an acd snapshot (no engine state)")  # noqa: TRY004
    if doc.get("format") != SNAPSHOT_FORMAT:
        raise ValueError(f"snapshot format {doc.get('format')!r} is not {SNAPSHOT_FORMAT}")
    return doc
