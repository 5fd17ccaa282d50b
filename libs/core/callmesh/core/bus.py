"""The bus: NATS connection with reconnects, typed proto publishing to JetStream, durable consumers,
request/reply with error replies, provisioning of streams and KV buckets, graceful drain.

Delivery is at least once: a handler's message is acked only after the handler returns, so a
handler must be idempotent (use ``event.event_id``). ``Nats-Msg-Id`` = ``event_id`` makes a
re-publish within the stream's duplicate window a no-op. A durable consumer is shared by every
replica of a service (push consumers delivering to a queue group: each event goes to one replica).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as CoreSubscription
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    PubAck,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.kv import KeyValue
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import Counter, Histogram

from callmesh.core import telemetry
from callmesh.core.errors import (
    DomainError,
    InvalidInput,
    RequestTimeout,
    Unavailable,
    error_from_dict,
)
from callmesh.core.logging import log_context
from callmesh.core.settings import PlatformSettings
from callmesh.proto.subjects import (
    BUCKETS,
    EVENTS,
    STREAMS,
    Bucket,
    Domain,
    EventKind,
    StreamSpec,
    Subjects,
    event_kind,
    kinds_of,
    stream_of,
)
from callmesh.proto.v1.event_pb2 import Event

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Message)
Q = TypeVar("Q", bound=Message)

ERROR_HEADER = "Cm-Error"
TRACEPARENT = "traceparent"
# Metric label of each event kind ("call.hung_up").
_LABELS = {body: f"{kind.domain}.{kind.name}" for body, kind in EVENTS.items()}
# Stands in for a span when the trace is not sampled (all its methods are no-ops).
_UNTRACED = trace.INVALID_SPAN
MSG_ID_HEADER = "Nats-Msg-Id"
# publish_many: windows sent before the oldest one's acks are awaited.
_WINDOWS_IN_FLIGHT = 4
DUPLICATE_WINDOW_S = 120.0


@dataclass(frozen=True)
class Delivery:
    """One event handed to a handler, with where it came from and how often it was delivered."""

    event: Event
    subject: str
    # Parsing the ack subject (nats-py builds a datetime and two dataclasses, ~5 us) is left
    # until a handler asks: most never do.
    msg: Msg = field(repr=False, compare=False)

    @property
    def num_delivered(self) -> int:
        """How many times the stream has delivered this event (1 on the first delivery)."""
        return self.msg.metadata.num_delivered

    @property
    def stream_sequence(self) -> int:
        """The event's sequence number in its stream."""
        return self.msg.metadata.sequence.stream


Handler = Callable[[Delivery], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    """One row of a service's subscription table: which events, which handler, how.

    ``name`` names the durable consumer (prefixed with the service, shared by its replicas).
    ``events`` are (domain, event-name) pairs or whole domains; all must live in one stream.
    """

    name: str
    domain: Domain
    handler: Handler
    events: tuple[str, ...] = ()
    tenant_id: str = "*"
    concurrency: int = 16
    deliver_new_only: bool = False
    max_deliver: int | None = None
    ack_wait_s: float | None = None
    max_ack_pending: int | None = None

    def filter_subjects(self, subjects: Subjects) -> list[str]:
        """The consumer's filter: every event of the domain, or just the listed ones."""
        names = self.events or ("*",)
        known = {kind.name for kind in kinds_of([self.domain])}
        for name in names:
            if name != "*" and name not in known:
                raise ValueError(f"events: {name!r} is not an event of domain {self.domain}")
        return [subjects.events(self.domain, tenant_id=self.tenant_id, name=n) for n in names]


RequestHandler = Callable[[Q], Awaitable[Message]]


@dataclass
class _Consumer:
    sub: Subscription
    durable: str
    core: CoreSubscription | None = None
    # Delivered events wait here for one of ``concurrency`` workers; None tells a worker to stop.
    queue: asyncio.Queue[Msg | None] = field(default_factory=asyncio.Queue)
    workers: list[asyncio.Task[None]] = field(default_factory=list)


class _Metrics:
    def __init__(self) -> None:
        # labels() takes a lock and builds a key on every call; the children never change.
        self._children: dict[tuple[str, ...], tuple[Histogram, Counter]] = {}
        self.published = telemetry.counter(
            "callmesh_bus_published_total",
            "Events published to JetStream",
            ["service", "event", "tenant"],
        )
        self.publish_seconds = telemetry.histogram(
            "callmesh_bus_publish_seconds", "Publish latency until the stream's ack", ["event"]
        )
        self.consumed = telemetry.counter(
            "callmesh_bus_consumed_total",
            "Events handled, by outcome (ok, domain_error, error, bad_input, dropped)",
            ["service", "consumer", "event", "tenant", "outcome"],
        )
        self.handle_seconds = telemetry.histogram(
            "callmesh_bus_handle_seconds", "Handler duration", ["service", "consumer", "event"]
        )
        self.requests = telemetry.counter(
            "callmesh_bus_requests_total",
            "Requests served, by outcome",
            ["service", "op", "outcome"],
        )
        self.request_seconds = telemetry.histogram(
            "callmesh_bus_request_seconds", "Request handling duration", ["service", "op"]
        )
        self.connected = telemetry.gauge(
            "callmesh_bus_connected", "1 while connected to NATS", ["service"]
        )
        self.reconnects = telemetry.counter(
            "callmesh_bus_reconnects_total", "Reconnections to NATS", ["service"]
        )

    def published_children(
        self, service: str, label: str, tenant: str
    ) -> tuple[Histogram, Counter]:
        """The publish latency histogram and published counter children of one label set."""
        key = ("pub", service, label, tenant)
        children = self._children.get(key)
        if children is None:
            children = (
                self.publish_seconds.labels(label),
                self.published.labels(service, label, tenant),
            )
            self._children[key] = children
        return children

    def consumed_children(
        self, service: str, consumer: str, label: str, tenant: str, outcome: str
    ) -> tuple[Histogram, Counter]:
        """The handle latency histogram and consumed counter children of one label set."""
        key = ("con", service, consumer, label, tenant, outcome)
        children = self._children.get(key)
        if children is None:
            children = (
                self.handle_seconds.labels(service, consumer, label),
                self.consumed.labels(service, consumer, label, tenant, outcome),
            )
            self._children[key] = children
        return children


def _releaser(
    tasks: set[asyncio.Task[None]], slots: asyncio.Semaphore
) -> Callable[[asyncio.Task[None]], None]:
    """A done-callback forgetting a finished task and freeing its concurrency slot."""

    def done(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        slots.release()

    return done


def _op_of(subject: str) -> str:
    """A low-cardinality label for a request subject: drop the prefix and tenant/node tokens."""
    parts = subject.split(".")
    return ".".join(parts[2:]) if len(parts) > 2 else subject


class _AckWindow:
    """Publishes of one ``publish_many`` window waiting for their stream acks."""

    __slots__ = ("done", "failed", "left")

    def __init__(self, count: int) -> None:
        self.left = count
        self.failed: dict[int, str] = {}
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def settle(self, index: int, error: str | None) -> None:
        if error is not None:
            self.failed[index] = error
        self.left -= 1
        if self.left <= 0 and not self.done.done():
            self.done.set_result(None)


@dataclass(frozen=True)
class PublishFailure:
    """An event ``publish_many`` could not get stored, and why (its last attempt's error)."""

    event: Event
    error: str


class Bus:
    """One process's connection to the bus."""

    def __init__(self, settings: PlatformSettings, service: str) -> None:
        self.settings = settings
        self.service = service
        self.subjects = Subjects(settings.subject_prefix)
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._consumers: list[_Consumer] = []
        self._core_subs: list[CoreSubscription] = []
        self._request_tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._metrics = _Metrics()
        self._subjects: dict[tuple[str, str, str], str] = {}
        # publish_many: one reply subscription; each publish waiting for its ack, by reply token.
        self._ack_prefix = ""
        self._ack_sub: CoreSubscription | None = None
        self._ack_waiting: dict[str, tuple[_AckWindow, int]] = {}
        self._ack_counter = 0
        self._tracer = telemetry.tracer("callmesh.bus")
        # Decided once (asking per event costs an environment lookup): the process installs its
        # tracer provider, if any, before it builds its bus (run_service does).
        self._tracing = isinstance(trace.get_tracer_provider(), SdkTracerProvider)

    # -- connection -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while the NATS connection is up."""
        return self._nc is not None and self._nc.is_connected

    @property
    def nc(self) -> NatsClient:
        """The raw client (for adapters that need what the bus does not offer)."""
        if self._nc is None:
            raise Unavailable("bus not connected")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        """The JetStream context."""
        if self._js is None:
            raise Unavailable("bus not connected")
        return self._js

    async def connect(self, *, attempts: int | None = None, max_backoff_s: float = 5.0) -> None:
        """Connect, retrying the first connection with capped exponential backoff and jitter.

        ``attempts=None`` retries until cancelled. Once connected, nats-py reconnects by itself
        (forever), and subscriptions and consumers resume after it.
        """
        delay = 0.1
        attempt = 0
        while True:
            attempt += 1
            try:
                # The first connection fails fast so this loop owns its backoff (nats-py would
                # retry forever inside connect); once up, nats-py reconnects forever by itself.
                nc = await nats.connect(
                    self.settings.nats_url,
                    name=f"{self.service}@{self.settings.instance}",
                    allow_reconnect=False,
                    max_reconnect_attempts=1,
                    reconnect_time_wait=0,
                    connect_timeout=2,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    error_cb=self._on_error,
                )
                nc.options.update(
                    allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=1
                )
                self._nc = nc
                break
            except (TimeoutError, OSError, nats.errors.Error) as err:
                if attempts is not None and attempt >= attempts:
                    raise Unavailable(
                        f"cannot reach NATS at {self.settings.nats_url}: {err}"
                    ) from err
                log.warning(
                    "NATS not reachable, retrying",
                    extra={"url": self.settings.nats_url, "attempt": attempt, "error": str(err)},
                )
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, max_backoff_s)
        self._js = self._nc.jetstream()
        self._metrics.connected.labels(self.service).set(1)
        log.info("connected to NATS", extra={"url": self.settings.nats_url})

    async def _on_disconnected(self) -> None:
        self._metrics.connected.labels(self.service).set(0)
        if not self._closing:
            log.warning("disconnected from NATS")

    async def _on_reconnected(self) -> None:
        self._metrics.connected.labels(self.service).set(1)
        self._metrics.reconnects.labels(self.service).inc()
        log.info("reconnected to NATS")

    async def _on_error(self, err: Exception) -> None:
        if self._nc is not None:  # failures of the first connection are logged by connect()
            log.warning("NATS error: %s", err)

    # -- provisioning -----------------------------------------------------------------------

    def stream_config(self, spec: StreamSpec) -> StreamConfig:
        """The desired configuration of one stream."""
        return StreamConfig(
            name=self.subjects.stream(spec),
            description=spec.description,
            subjects=self.subjects.stream_subjects(spec),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=spec.max_age_s,
            discard=DiscardPolicy.OLD,
            duplicate_window=DUPLICATE_WINDOW_S,
            num_replicas=self.settings.stream_replicas,
        )

    async def provision(self) -> None:
        """Create or update every stream and KV bucket (idempotent; safe when replicas race)."""
        for spec in STREAMS:
            await self._ensure_stream(self.stream_config(spec))
        for bucket in BUCKETS:
            ttl = self.settings.lease_ttl_s if bucket.bucket is Bucket.LEASES else bucket.ttl_s
            await self._ensure_bucket(bucket.bucket, bucket.history, ttl, bucket.description)

    async def _ensure_stream(self, config: StreamConfig) -> None:
        assert config.name is not None
        for _ in range(3):
            try:
                info = await self.js.stream_info(config.name)
            except nats.js.errors.NotFoundError:
                try:
                    await self.js.add_stream(config)
                except nats.js.errors.BadRequestError:
                    continue  # another replica created it first: look again
                log.info("created stream", extra={"stream": config.name})
                return
            current = info.config
            if (
                sorted(current.subjects or []) != sorted(config.subjects or [])
                or current.max_age != config.max_age
                or current.duplicate_window != config.duplicate_window
            ):
                await self.js.update_stream(config)
                log.info("updated stream", extra={"stream": config.name})
            return
        raise Unavailable(f"could not provision stream {config.name}")

    async def _ensure_bucket(
        self, bucket: Bucket, history: int, ttl_s: float | None, description: str
    ) -> None:
        name = self.subjects.bucket(bucket)
        config = KeyValueConfig(bucket=name, history=history, ttl=ttl_s, description=description)
        try:
            kv = await self.js.key_value(name)
        except nats.js.errors.BucketNotFoundError:
            with contextlib.suppress(nats.js.errors.BadRequestError):
                await self.js.create_key_value(config)
                log.info("created KV bucket", extra={"bucket": name})
            return
        status = await kv.status()
        if (status.ttl or None) != (ttl_s or None):
            info = status.stream_info.config
            info.max_age = ttl_s
            await self.js.update_stream(info)
            log.info("updated KV bucket TTL", extra={"bucket": name, "ttl_s": ttl_s})

    async def kv(self, bucket: Bucket) -> KeyValue:
        """A provisioned KV bucket."""
        return await self.js.key_value(self.subjects.bucket(bucket))

    # -- publishing -------------------------------------------------------------------------

    def new_event(self, tenant_id: str = "", call_id: str = "", node_id: str = "") -> Event:
        """An event envelope with id, time and source filled; set one body on it and publish."""
        event = Event(event_id=uuid.uuid4().hex, tenant_id=tenant_id, call_id=call_id)
        event.time.GetCurrentTime()
        event.source.service = self.service
        event.source.instance = self.settings.instance
        event.source.site = self.settings.site
        if node_id:
            event.source.node_id = node_id
        return event

    def _subject(self, kind: EventKind, tenant_id: str, node_id: str) -> str:
        """``Subjects.event``, remembered: a service publishes few distinct subjects, many times."""
        key = (kind.body, tenant_id, node_id)
        subject = self._subjects.get(key)
        if subject is None:
            subject = self.subjects.event(kind, tenant_id=tenant_id, node_id=node_id)
            if len(self._subjects) < 100_000:
                self._subjects[key] = subject
        return subject

    def _span(
        self,
        name: str,
        kind: SpanKind,
        parent: otel_context.Context | None,
        attributes: dict[str, str],
    ) -> trace.Span:
        """A span for bus work, or ``_UNTRACED`` when the trace it belongs to is not sampled.

        An unsampled span records nothing; only its ids would travel on. Carrying the parent's
        context on unchanged keeps the trace id in logs and downstream headers at a fraction of
        the cost (two spans per event were most of the bus's overhead with an SDK provider).
        """
        current = trace.get_current_span(parent).get_span_context()
        if current.is_valid and not current.trace_flags.sampled:
            return _UNTRACED
        return self._tracer.start_span(name, context=parent, kind=kind, attributes=attributes)

    async def publish(self, event: Event) -> PubAck:
        """Publish an event and wait for the stream's ack (stored once per ``event_id``)."""
        kind = event_kind(event)
        if not event.event_id:
            event.event_id = uuid.uuid4().hex
        if not event.HasField("time"):
            event.time.GetCurrentTime()
        if not event.source.service:
            event.source.service = self.service
            event.source.instance = self.settings.instance
        subject = self._subject(kind, event.tenant_id, event.source.node_id)
        label = _LABELS[kind.body]
        # Nothing runs inside the publish that needs the span current: hand it to the
        # propagator explicitly and skip the context attach/detach (~5-7 us per publish).
        span = (
            self._span(
                f"publish {label}",
                SpanKind.PRODUCER,
                None,
                {
                    "messaging.system": "nats",
                    "messaging.destination.name": subject,
                    "messaging.message.id": event.event_id,
                    "callmesh.tenant_id": event.tenant_id,
                },
            )
            if self._tracing
            else _UNTRACED
        )
        try:
            headers = {MSG_ID_HEADER: event.event_id}
            telemetry.inject_trace(
                headers, trace.set_span_in_context(span) if span is not _UNTRACED else None
            )
            started = time.perf_counter()
            try:
                ack = await self.js.publish(subject, event.SerializeToString(), headers=headers)
            except (TimeoutError, nats.errors.Error) as err:
                span.record_exception(err)
                span.set_status(Status(StatusCode.ERROR, type(err).__name__))
                raise Unavailable(f"publish to {subject} failed: {err}") from err
        finally:
            span.end()
        seconds, count = self._metrics.published_children(
            self.service, label, event.tenant_id or "-"
        )
        seconds.observe(time.perf_counter() - started)
        count.inc()
        return ack

    async def publish_many(
        self,
        events: Sequence[Event],
        *,
        window: int = 1024,
        timeout_s: float = 10.0,
        attempts: int = 3,
    ) -> list[PublishFailure]:
        """Publish events in order, pipelined; every one confirmed by its stream's ack.

        Windows of up to ``window`` publishes are sent back to back, each publish with a reply
        subject of its own; their acks are collected as they come while the next windows are
        sent (up to 4 windows in flight), then awaited window by window. An event whose ack is
        an error, or that has none within ``timeout_s``, is published again with the same
        ``Nats-Msg-Id`` (the stream stores it once) up to ``attempts`` times in all. Returns
        the events still not stored (empty: all were); raises ValueError naming the field,
        before sending anything, for an event that cannot be published (no body, a bad tenant
        or node id). The published counter counts each stored event; the latency histogram
        gets one observation per event type and window (the window's send-to-last-ack time).
        With a tracer provider, one span per call carries the trace to every message.
        """
        if not events:
            return []
        # Every subject first: an event that cannot be published stops the call before any send.
        subjects = [self._subject(event_kind(e), e.tenant_id, e.source.node_id) for e in events]
        nc = self.nc
        if self._ack_sub is None:
            self._ack_prefix = nc.new_inbox() + "."
            self._ack_sub = await nc.subscribe(self._ack_prefix + "*", cb=self._on_ack)
        span = (
            self._span(
                "publish_many",
                SpanKind.PRODUCER,
                None,
                {"messaging.system": "nats", "messaging.batch.message_count": str(len(events))},
            )
            if self._tracing
            else _UNTRACED
        )
        trace_headers: dict[str, str] = {}
        if span is not _UNTRACED:
            telemetry.inject_trace(trace_headers, trace.set_span_in_context(span))
        pending = list(zip(events, subjects, strict=True))
        failures: list[PublishFailure] = []
        try:
            for attempt in range(1, attempts + 1):
                retry: list[tuple[Event, str, str]] = []
                # Windows overlap: the next one is sent while the earlier ones' acks come in
                # (up to ``_WINDOWS_IN_FLIGHT``), then each is settled in order.
                in_flight: collections.deque[asyncio.Task[list[tuple[Event, str, str]]]]
                in_flight = collections.deque()
                try:
                    for start in range(0, len(pending), window):
                        chunk = pending[start : start + window]
                        sent = await self._send_window(chunk, trace_headers)
                        in_flight.append(
                            asyncio.ensure_future(self._settle_window(chunk, sent, timeout_s))
                        )
                        while len(in_flight) >= _WINDOWS_IN_FLIGHT:
                            retry.extend(await in_flight.popleft())
                    while in_flight:
                        retry.extend(await in_flight.popleft())
                finally:
                    for task in in_flight:
                        task.cancel()
                if not retry:
                    break
                log.warning(
                    "events not stored; publishing them again",
                    extra={"count": len(retry), "attempt": attempt, "error": retry[0][2]},
                )
                pending = [(event, subject) for event, subject, _ in retry]
                failures = [PublishFailure(event, error) for event, _, error in retry]
            else:
                span.set_status(Status(StatusCode.ERROR, "not stored"))
                return failures
        finally:
            span.end()
        return []

    async def _send_window(
        self, batch: Sequence[tuple[Event, str]], trace_headers: dict[str, str]
    ) -> tuple[_AckWindow, list[str], str, float]:
        """Send a window of events, each with its own reply subject; what settling needs."""
        nc = self.nc
        waiting = self._ack_waiting
        prefix = self._ack_prefix
        window = _AckWindow(len(batch))
        tokens: list[str] = []
        unsent = ""
        started = time.perf_counter()
        try:
            for index, (event, subject) in enumerate(batch):
                if not event.event_id:
                    event.event_id = uuid.uuid4().hex
                if not event.HasField("time"):
                    event.time.GetCurrentTime()
                if not event.source.service:
                    event.source.service = self.service
                    event.source.instance = self.settings.instance
                self._ack_counter += 1
                token = f"{self._ack_counter:x}"
                tokens.append(token)
                waiting[token] = (window, index)
                headers = {MSG_ID_HEADER: event.event_id}
                if trace_headers:
                    headers.update(trace_headers)
                await nc.publish(
                    subject, event.SerializeToString(), reply=prefix + token, headers=headers
                )
        except (nats.errors.Error, OSError) as err:
            unsent = f"not sent: {err}"
        return window, tokens, unsent, started

    async def _settle_window(
        self,
        batch: Sequence[tuple[Event, str]],
        sent: tuple[_AckWindow, list[str], str, float],
        timeout_s: float,
    ) -> list[tuple[Event, str, str]]:
        """Wait for a sent window's acks (or the timeout); count what was stored; the rest."""
        window, tokens, unsent, started = sent
        waiting = self._ack_waiting
        try:
            # The timeout runs from the window's send: windows in flight expire together.
            left = started + timeout_s - time.perf_counter()
            if window.left > 0 and not unsent and left > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(window.done), left)
        finally:
            reason = unsent or f"no ack within {timeout_s:g} s"
            for token in tokens:
                entry = waiting.pop(token, None)
                if entry is not None:
                    window.failed.setdefault(entry[1], reason)
            for index in range(len(tokens), len(batch)):
                window.failed.setdefault(index, reason)
        failed = window.failed
        seconds = time.perf_counter() - started
        stored: dict[tuple[str, str], int] = {}
        for index, (event, _) in enumerate(batch):
            if index not in failed:
                key = _key_of(event)
                stored[key] = stored.get(key, 0) + 1
        observed: set[str] = set()
        for (label, tenant), count in stored.items():
            histogram, counter = self._metrics.published_children(self.service, label, tenant)
            counter.inc(count)
            if label not in observed:
                observed.add(label)
                histogram.observe(seconds)
        return [(batch[i][0], batch[i][1], error) for i, error in sorted(failed.items())]

    async def _on_ack(self, msg: Msg) -> None:
        """A stream's answer to one ``publish_many`` publish."""
        entry = self._ack_waiting.pop(msg.subject[len(self._ack_prefix) :], None)
        if entry is None:
            return  # timed out already (its window counted it as failed)
        window, index = entry
        data = msg.data
        error: str | None = None
        if not data:
            status = msg.headers.get("Status", "") if msg.headers else ""
            error = "no stream for the subject" if status == "503" else f"empty ack {status}"
        elif b'"error"' in data:
            try:
                error = str(json.loads(data).get("error", {}).get("description") or data[:200])
            except ValueError:
                error = data[:200].decode("utf-8", "replace")
        window.settle(index, error)

    # -- consuming --------------------------------------------------------------------------

    def deliver_subject(self, durable: str) -> str:
        """Where a push consumer delivers: outside every stream (first token is not the prefix)."""
        return f"_CM_DELIVER.{self.subjects.prefix}.{durable}"

    async def start(self, table: Sequence[Subscription]) -> None:
        """Create (or update) the durable consumers of a subscription table and start handling.

        Each row is a durable push consumer delivering to a queue group named after it: every
        replica of the service joins the group and the server hands each event to one of them
        as soon as it is stored (a pull ``fetch`` in nats-py would hold a lone event until the
        batch filled or the fetch timed out). ``max_ack_pending`` bounds what is in flight.
        """
        for sub in table:
            spec = stream_of(sub.domain)
            stream = self.subjects.stream(spec)
            durable = f"{self.service}-{sub.name}"
            deliver = self.deliver_subject(durable)
            config = ConsumerConfig(
                name=durable,
                durable_name=durable,
                description=f"{self.service}: {sub.name}",
                deliver_subject=deliver,
                deliver_group=durable,
                deliver_policy=DeliverPolicy.NEW if sub.deliver_new_only else DeliverPolicy.ALL,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=sub.ack_wait_s or self.settings.bus_ack_wait_s,
                max_deliver=sub.max_deliver or self.settings.bus_max_deliver,
                filter_subjects=sub.filter_subjects(self.subjects),
                max_ack_pending=sub.max_ack_pending or max(sub.concurrency * 4, 64),
            )
            await self.js.add_consumer(stream, config)
            consumer = _Consumer(sub, durable)
            consumer.workers = [
                asyncio.create_task(self._work(consumer), name=f"{durable}-{i}")
                for i in range(sub.concurrency)
            ]
            # The callback only queues: nats-py awaits it per message, in order, and a handler
            # awaited there would serialize the whole subscription.
            queue = consumer.queue

            async def enqueue(msg: Msg, queue: asyncio.Queue[Msg | None] = queue) -> None:
                queue.put_nowait(msg)

            consumer.core = await self.nc.subscribe(deliver, queue=durable, cb=enqueue)
            self._consumers.append(consumer)
            log.info("consuming", extra={"consumer": durable, "stream": stream})
        await self.nc.flush()

    async def _work(self, consumer: _Consumer) -> None:
        """One of a consumer's workers: handle queued events until told to stop."""
        while (msg := await consumer.queue.get()) is not None:
            try:
                await self._handle(consumer, msg)
            except (nats.errors.Error, TimeoutError) as err:
                # The ack (or nak) could not be sent: the server redelivers after ack_wait.
                log.warning(
                    "could not settle an event: %s", err, extra={"consumer": consumer.durable}
                )

    async def _handle(self, consumer: _Consumer, msg: Msg) -> None:
        sub = consumer.sub
        max_deliver = sub.max_deliver or self.settings.bus_max_deliver
        try:
            event = Event.FromString(msg.data)
            kind = event_kind(event)
        except (DecodeError, ValueError, KeyError) as err:
            # A message that cannot be decoded will never decode: drop it loudly, don't redeliver.
            log.error(  # noqa: TRY400 — the traceback of a decode error says nothing
                "undecodable message dropped",
                extra={"consumer": consumer.durable, "subject": msg.subject, "error": str(err)},
            )
            self._metrics.consumed.labels(self.service, sub.name, "-", "-", "bad_input").inc()
            await msg.term()
            return
        label = _LABELS[kind.body]
        tenant = event.tenant_id or "-"
        headers = msg.headers
        parent = telemetry.extract_trace(headers) if headers and TRACEPARENT in headers else None
        started = time.perf_counter()
        outcome = "ok"
        span = (
            self._span(
                f"consume {label}",
                SpanKind.CONSUMER,
                parent,
                {
                    "messaging.system": "nats",
                    "messaging.destination.name": msg.subject,
                    "messaging.message.id": event.event_id,
                    "messaging.consumer.group.name": consumer.durable,
                    "callmesh.tenant_id": event.tenant_id,
                },
            )
            if self._tracing
            else _UNTRACED
        )
        # Made current by hand (start_as_current_span's generator layers cost ~5 us a message),
        # and only when there is a trace to carry on.
        current = parent if span is _UNTRACED else trace.set_span_in_context(span, parent)
        token = otel_context.attach(current) if current is not None else None
        try:
            with log_context(tenant_id=event.tenant_id, call_id=event.call_id):
                try:
                    await sub.handler(Delivery(event, msg.subject, msg))
                    await msg.ack()
                except DomainError as err:
                    # Known refusals are final: redelivery would be refused again.
                    outcome = "domain_error"
                    log.warning(
                        "event refused: %s", err.message, extra={"code": err.code, "event": label}
                    )
                    span.set_status(Status(StatusCode.ERROR, err.code))
                    await msg.ack()
                except asyncio.CancelledError:
                    outcome = "error"
                    span.set_status(Status(StatusCode.ERROR, "cancelled"))
                    with contextlib.suppress(nats.errors.Error):
                        await msg.nak()
                    raise
                except Exception as err:
                    span.record_exception(err)
                    span.set_status(Status(StatusCode.ERROR, type(err).__name__))
                    num_delivered = msg.metadata.num_delivered
                    if num_delivered >= max_deliver:
                        outcome = "dropped"
                        log.exception(
                            "handler failed on the last delivery; event dropped",
                            extra={"event": label},
                        )
                        await msg.term()
                    else:
                        outcome = "error"
                        log.exception("handler failed; will be redelivered", extra={"event": label})
                        await msg.nak(delay=min(0.5 * 2 ** (num_delivered - 1), 30.0))
        finally:
            if token is not None:
                otel_context.detach(token)
            span.end()
        seconds, count = self._metrics.consumed_children(
            self.service, sub.name, label, tenant, outcome
        )
        seconds.observe(time.perf_counter() - started)
        count.inc()

    # -- request / reply --------------------------------------------------------------------

    async def request(
        self,
        subject: str,
        message: Message,
        reply_type: type[R],
        *,
        timeout: float | None = None,
    ) -> R:
        """Send a request and decode its reply; an error reply is raised as the original error."""
        timeout = timeout or self.settings.bus_request_timeout_s
        op = _op_of(subject)
        with self._tracer.start_as_current_span(
            f"request {op}",
            kind=SpanKind.CLIENT,
            attributes={"messaging.destination.name": subject},
        ):
            headers: dict[str, str] = {}
            telemetry.inject_trace(headers)
            try:
                reply = await self.nc.request(
                    subject, message.SerializeToString(), timeout=timeout, headers=headers
                )
            except nats.errors.NoRespondersError as err:
                raise Unavailable(f"nobody serves {subject}") from err
            except (TimeoutError, nats.errors.TimeoutError) as err:
                raise RequestTimeout(f"no answer from {subject} within {timeout:g} s") from err
        if reply.headers and reply.headers.get(ERROR_HEADER):
            raise error_from_dict(json.loads(reply.data or b"{}"))
        try:
            return reply_type.FromString(reply.data)
        except DecodeError as err:
            raise InvalidInput("reply", f"not a {reply_type.__name__}") from err

    async def serve(
        self,
        subject: str,
        request_type: type[Q],
        handler: RequestHandler[Q],
        *,
        concurrency: int = 64,
    ) -> None:
        """Answer requests on a subject in the service's queue group (one replica answers each)."""
        slots = asyncio.Semaphore(concurrency)
        op = _op_of(subject)

        async def on_message(msg: Msg) -> None:
            await slots.acquire()
            task = asyncio.create_task(self._answer(msg, request_type, handler, op))
            self._request_tasks.add(task)
            task.add_done_callback(_releaser(self._request_tasks, slots))

        sub = await self.nc.subscribe(subject, queue=self.service, cb=on_message)
        self._core_subs.append(sub)
        # The SUB must reach the server before we call ourselves ready, or an early request
        # finds no responder.
        await self.nc.flush()

    async def _answer(
        self, msg: Msg, request_type: type[Q], handler: RequestHandler[Q], op: str
    ) -> None:
        started = time.perf_counter()
        outcome = "ok"
        with self._tracer.start_as_current_span(
            f"serve {op}", context=telemetry.extract_trace(msg.headers), kind=SpanKind.SERVER
        ) as span:
            try:
                try:
                    request = request_type.FromString(msg.data)
                except DecodeError as err:
                    raise InvalidInput("request", f"not a valid {request_type.__name__}") from err
                reply = await handler(request)
                payload, headers = reply.SerializeToString(), None
            except DomainError as err:
                outcome = err.code
                span.set_status(Status(StatusCode.ERROR, err.code))
                payload, headers = json.dumps(err.to_dict()).encode(), {ERROR_HEADER: err.code}
            except Exception as err:
                outcome = "internal"
                span.record_exception(err)
                log.exception("request handler failed", extra={"op": op})
                body = {"code": "internal", "message": f"{op} failed: {type(err).__name__}"}
                payload, headers = json.dumps(body).encode(), {ERROR_HEADER: "internal"}
        if msg.reply:
            with contextlib.suppress(nats.errors.Error):
                await self.nc.publish(msg.reply, payload, headers=headers)
        self._metrics.request_seconds.labels(self.service, op).observe(
            time.perf_counter() - started
        )
        self._metrics.requests.labels(self.service, op, outcome).inc()

    # -- shutdown ---------------------------------------------------------------------------

    async def drain(self, grace_s: float = 20.0) -> None:
        """Stop taking work, let in-flight handlers finish (up to ``grace_s``), then close."""
        self._closing = True
        deadline = time.monotonic() + grace_s
        for sub in self._core_subs:
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()
        for consumer in self._consumers:
            await self._unsubscribe(consumer)
            await self._release_queued(consumer)
            for _ in consumer.workers:
                consumer.queue.put_nowait(None)
        pending: set[asyncio.Task[Any]] = set(self._request_tasks)
        for consumer in self._consumers:
            pending.update(consumer.workers)
        if pending:
            _, still = await asyncio.wait(pending, timeout=max(0.0, deadline - time.monotonic()))
            for task in still:
                task.cancel()
            if still:
                log.warning("cancelled %d handlers still running after %.0f s", len(still), grace_s)
                await asyncio.gather(*still, return_exceptions=True)
        await self.close()

    @staticmethod
    async def _release_queued(consumer: _Consumer) -> None:
        """Hand events delivered to us but not started back to the stream for other replicas."""
        while not consumer.queue.empty():
            msg = consumer.queue.get_nowait()
            if msg is not None:
                with contextlib.suppress(nats.errors.Error, TimeoutError):
                    await msg.nak()

    @staticmethod
    async def _unsubscribe(consumer: _Consumer) -> None:
        if consumer.core is not None:
            with contextlib.suppress(nats.errors.Error, asyncio.TimeoutError):
                await consumer.core.unsubscribe()
            consumer.core = None

    async def close(self) -> None:
        """Close the connection without waiting for handlers (use ``drain`` on shutdown)."""
        self._closing = True
        for consumer in self._consumers:
            await self._unsubscribe(consumer)
            for worker in consumer.workers:
                worker.cancel()
            await asyncio.gather(*consumer.workers, return_exceptions=True)
        nc = self._nc
        if nc is not None and not nc.is_closed:
            if nc.is_connected:
                with contextlib.suppress(nats.errors.Error, asyncio.TimeoutError):
                    await nc.flush(timeout=2)
            await nc.close()
        self._metrics.connected.labels(self.service).set(0)


def _key_of(event: Event) -> tuple[str, str]:
    body = event.WhichOneof("body") or ""
    return _LABELS.get(body, body), event.tenant_id or "-"


def event_time(event: Event) -> float:
    """An event's time as a UNIX timestamp."""
    return event.time.seconds + event.time.nanos / 1e9


def timestamp(seconds: float) -> Timestamp:
    """A protobuf Timestamp from a UNIX time."""
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts
