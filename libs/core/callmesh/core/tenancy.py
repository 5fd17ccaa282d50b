"""Tenancy as every service sees it: status gate, data placement and number/SIP look-ups.

Admin is the source of truth and writes; every other service reads through this module:

- ``TenantGate`` mirrors the KV bucket ``tenants`` (``<tenant_id>`` → JSON status and settings)
  and refuses new work for suspended tenants (``TenantSuspended``, 423) and unknown or deleted
  ones (``NotFound``); ``tenant_writable`` is its FastAPI dependency for tenant routes.
- ``KvPlacement`` mirrors the KV bucket ``placement`` (``tenant.<id>`` → cluster and database,
  ``cluster.<name>`` → MongoDB URI) as the store's ``PlacementResolver``.
- ``NumberDirectory`` and ``SipDirectory`` ask admin (request/reply) which tenant owns a number or
  a SIP user, cache answers (found or not) for a TTL and drop them when admin's tenant events
  say they changed. Concurrent look-ups of one key share one request.

Both mirrors watch their bucket with nats-py's KV watcher (current values, then updates) and
re-watch from scratch after a NATS reconnect or when the watcher's consumer is gone, so a
restarted server or a lost ephemeral consumer never leaves a service on a frozen copy. The KV
layouts and caching rules are in ``docs/tenancy.md``: they are admin's contract with everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Coroutine, Hashable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from types import MappingProxyType
from typing import Annotated, Any, Generic, TypeVar

import nats.errors
import nats.js.errors
from fastapi import Depends, Path, Request
from google.protobuf.message import DecodeError, Message
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as CoreSubscription

from callmesh.core import telemetry
from callmesh.core.bus import Bus
from callmesh.core.errors import (
    InvalidInput,
    NotFound,
    RequestTimeout,
    TenantSuspended,
    Unavailable,
)
from callmesh.core.kvwatch import ChangeBatch, KvMirror
from callmesh.core.store import Placement, Store
from callmesh.proto.subjects import Bucket, Domain, Service, check_tenant_id, check_token
from callmesh.proto.v1.admin_pb2 import (
    DirectoryLookup,
    DirectoryLookupReply,
    NumberLookup,
    NumberLookupReply,
)
from callmesh.proto.v1.event_pb2 import Event

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
R = TypeVar("R", bound=Message)

# Safe methods a suspended tenant may still use: its people can read, export and look, not act.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Tenant events after which cached look-ups of that tenant may be wrong (restored is included:
# a restored tenant's numbers are found again, and negative answers cannot say whose they were).
_STATUS_EVENTS = ("suspended", "resumed", "deleted", "restored")
_STATUS_BODIES = frozenset(f"tenant_{name}" for name in _STATUS_EVENTS)


def _suspended(tenant_id: str, message: str | None = None) -> TenantSuspended:
    return TenantSuspended(
        message or f"tenant {tenant_id} is suspended: new work is refused", tenant_id=tenant_id
    )


# ---------------------------------------------------------------------------------------------
# The tenant gate


class TenantStatus(StrEnum):
    """A tenant's lifecycle status, as admin writes it."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETED = "deleted"


class RecordError(ValueError):
    """A KV record that does not follow admin's contract (``docs/tenancy.md``)."""


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError as err:
        raise RecordError("not JSON") from err
    if isinstance(doc, dict):
        return doc
    raise RecordError("not a JSON object")


def _field(doc: Mapping[str, Any], name: str, kind: type[T], default: T) -> T:
    value = doc.get(name, default)
    if isinstance(value, kind):
        return value
    raise RecordError(f"{name}: must be a {kind.__name__}")


@dataclass(frozen=True, slots=True)
class TenantInfo:
    """What services need to know about a tenant (admin's record in the ``tenants`` bucket)."""

    tenant_id: str
    status: TenantStatus
    name: str = ""
    language: str = ""
    time_zone: str = ""
    encryption_at_rest: bool = False

    @property
    def active(self) -> bool:
        """True when the tenant may start new work."""
        return self.status is TenantStatus.ACTIVE

    @classmethod
    def from_json(cls, tenant_id: str, data: bytes) -> TenantInfo:
        """Parse a ``tenants`` bucket value; RecordError says what is wrong with it."""
        doc = _json_object(data)
        status = _field(doc, "status", str, "")
        try:
            parsed = TenantStatus(status)
        except ValueError as err:
            raise RecordError(f"status: {status!r} is not active, suspended or deleted") from err
        return cls(
            tenant_id=tenant_id,
            status=parsed,
            name=_field(doc, "name", str, ""),
            language=_field(doc, "language", str, ""),
            time_zone=_field(doc, "time_zone", str, ""),
            encryption_at_rest=_field(doc, "encryption_at_rest", bool, False),
        )

    def to_json(self, updated_at: datetime | None = None) -> bytes:
        """The ``tenants`` bucket value of this record (what admin writes)."""
        return json.dumps(
            {
                "status": self.status.value,
                "name": self.name,
                "language": self.language,
                "time_zone": self.time_zone,
                "encryption_at_rest": self.encryption_at_rest,
                "updated_at": (updated_at or datetime.now(UTC)).isoformat(),
            }
        ).encode()


TenantChangeCallback = Callable[[TenantInfo | None, TenantInfo | None], Awaitable[None] | None]


class TenantGate:
    """Every tenant's status from the ``tenants`` bucket: who may start new work, who may not."""

    def __init__(self, bus: Bus) -> None:
        self._tenants: dict[str, TenantInfo] = {}
        self._callbacks: list[TenantChangeCallback] = []
        # Callbacks run one change at a time, in order, away from the watch loop: a slow or
        # failing callback must not hold back (or break) what every other request relies on.
        self._changes: asyncio.Queue[tuple[TenantInfo | None, TenantInfo | None]] = asyncio.Queue()
        self._dispatcher: asyncio.Task[None] | None = None
        self._mirror = KvMirror(bus, Bucket.TENANTS, self._apply)
        self._gauge = telemetry.gauge("callmesh_tenants", "Tenants known, by status", ["status"])

    @property
    def ready(self) -> asyncio.Event:
        """Set once the bucket's initial values are loaded."""
        return self._mirror.ready

    async def start(self) -> None:
        """Start watching the bucket (returns at once; wait on ``ready`` or ``wait_ready``)."""
        if self._dispatcher is None:
            self._dispatcher = asyncio.create_task(self._dispatch(), name="tenant-gate-callbacks")
        self._mirror.start()

    async def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Wait for the initial values; Unavailable if they do not come in time."""
        try:
            await asyncio.wait_for(self.ready.wait(), timeout_s)
        except TimeoutError as err:
            raise Unavailable("tenant statuses not loaded", reason="loading") from err

    async def stop(self) -> None:
        """Stop watching and calling back."""
        await self._mirror.stop()
        task, self._dispatcher = self._dispatcher, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def on_change(self, callback: TenantChangeCallback) -> Callable[[], None]:
        """Call ``callback(old, new)`` after each change (None: absent); returns an unregister.

        The initial load is the baseline, not a change (read it with ``tenants()``); changes
        found after a re-watch are reported like any other.
        """
        self._callbacks.append(callback)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._callbacks.remove(callback)

        return remove

    def tenants(self) -> Mapping[str, TenantInfo]:
        """Every known tenant (a live read-only view)."""
        return MappingProxyType(self._tenants)

    def info(self, tenant_id: str) -> TenantInfo | None:
        """The tenant's record, or None if admin has none; Unavailable before the first load."""
        if not self.ready.is_set():
            raise Unavailable("tenant statuses not loaded yet", reason="loading")
        return self._tenants.get(tenant_id)

    def is_active(self, tenant_id: str) -> bool:
        """True if the tenant exists and is active (False, failing closed, before the load)."""
        info = self._tenants.get(tenant_id) if self.ready.is_set() else None
        return info is not None and info.active

    def require_active(self, tenant_id: str) -> TenantInfo:
        """The tenant's record if it may start new work; TenantSuspended or NotFound otherwise."""
        info = self.info(tenant_id)
        if info is None or info.status is TenantStatus.DELETED:
            raise NotFound(f"no tenant {tenant_id}", tenant_id=tenant_id)
        if info.status is not TenantStatus.ACTIVE:
            raise _suspended(tenant_id)
        return info

    def _apply(self, changes: ChangeBatch, initial: bool) -> None:
        for key, raw in changes:
            try:
                check_tenant_id(key, "key")
            except ValueError:
                log.warning("tenants bucket: ignoring a key that is not a tenant id: %r", key)
                continue
            new: TenantInfo | None = None
            if raw is not None:
                try:
                    new = TenantInfo.from_json(key, raw)
                except RecordError as err:
                    # Fail closed: an unreadable record must not leave a suspension unenforced.
                    log.error(  # noqa: TRY400 — the traceback says nothing the message does not
                        "tenants bucket: unreadable record, tenant treated as unknown: %s",
                        err,
                        extra={"tenant_id": key},
                    )
            old = self._tenants.get(key)
            if new is None:
                self._tenants.pop(key, None)
            else:
                self._tenants[key] = new
            if old != new:
                self._log_change(key, old, new, initial)
                if not initial:
                    self._changes.put_nowait((old, new))
        counts = dict.fromkeys(TenantStatus, 0)
        for info in self._tenants.values():
            counts[info.status] += 1
        for status, count in counts.items():
            self._gauge.labels(status.value).set(count)

    @staticmethod
    def _log_change(
        tenant_id: str, old: TenantInfo | None, new: TenantInfo | None, initial: bool
    ) -> None:
        before = old.status.value if old else "absent"
        after = new.status.value if new else "absent"
        if initial or before == after:
            log.debug("tenant %s: %s", tenant_id, after, extra={"tenant_id": tenant_id})
        else:
            log.info(
                "tenant %s: %s -> %s", tenant_id, before, after, extra={"tenant_id": tenant_id}
            )

    async def _dispatch(self) -> None:
        while True:
            old, new = await self._changes.get()
            for callback in list(self._callbacks):
                try:
                    result = callback(old, new)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    about = new or old
                    log.exception(
                        "tenant change callback failed",
                        extra={"tenant_id": about.tenant_id if about else "-"},
                    )


def _gate_of(request: Request) -> TenantGate:
    gate = getattr(request.app.state, "tenant_gate", None)
    if isinstance(gate, TenantGate):
        return gate
    # Fail closed, and say what the composition root must set.
    raise Unavailable(
        "tenant status is not configured: set app.state.tenant_gate", reason="no_tenant_gate"
    )


async def tenant_writable(
    request: Request, tenant: Annotated[str, Path(description="tenant id")]
) -> TenantInfo:
    """For routes ``/v1/t/{tenant}/…``: 404 for unknown or deleted tenants, read-only if suspended.

    Depend on it after ``tenant_principal`` so a token for another tenant gets its 403 first.
    """
    gate = _gate_of(request)
    try:
        check_tenant_id(tenant, "tenant")
    except ValueError:
        raise NotFound("not found") from None
    info = gate.info(tenant)
    if info is None or info.status is TenantStatus.DELETED:
        raise NotFound(f"no tenant {tenant}", tenant_id=tenant)
    if info.status is TenantStatus.SUSPENDED and request.method not in READ_METHODS:
        raise _suspended(tenant, "the tenant API is read-only while the tenant is suspended")
    return info


WritableTenant = Annotated[TenantInfo, Depends(tenant_writable)]


# ---------------------------------------------------------------------------------------------
# Placement

_TENANT_KEY = "tenant."
_CLUSTER_KEY = "cluster."
DEFAULT_CLUSTER = "default"
# Conservative: valid on MongoDB and on FerretDB's SQLite backend alike.
_DATABASE_RE = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SECRET_PARAMS = frozenset({"authmechanismproperties", "sslclientcertificatekeypassword"})


def placement_key(tenant_id: str) -> str:
    """The ``placement`` bucket key of a tenant's placement."""
    return f"{_TENANT_KEY}{check_tenant_id(tenant_id)}"


def cluster_key(name: str) -> str:
    """The ``placement`` bucket key of a cluster's URI."""
    return f"{_CLUSTER_KEY}{check_token('cluster', name)}"


def encode_placement(placement: Placement) -> bytes:
    """The ``placement`` bucket value of a tenant's placement (what admin writes)."""
    _check_placement(placement)
    return json.dumps({"cluster": placement.cluster, "database": placement.database}).encode()


def encode_cluster(uri: str) -> bytes:
    """The ``placement`` bucket value of a cluster (what admin writes)."""
    return json.dumps({"uri": uri}).encode()


def _check_placement(placement: Placement) -> Placement:
    check_token("cluster", placement.cluster)
    if not _DATABASE_RE.match(placement.database):
        raise ValueError("database: must be 1-63 letters, digits, '_' or '-'")
    return placement


def _decode_placement(data: bytes) -> Placement:
    doc = _json_object(data)
    placement = Placement(
        database=_field(doc, "database", str, ""), cluster=_field(doc, "cluster", str, "")
    )
    try:
        return _check_placement(placement)
    except ValueError as err:
        raise RecordError(str(err)) from err


def _decode_cluster(data: bytes) -> str:
    uri = _field(_json_object(data), "uri", str, "")
    if "://" in uri:
        return uri
    raise RecordError("uri: must be a MongoDB URI (mongodb:// or mongodb+srv://)")


def redact_uri(uri: str) -> str:
    """A connection URI fit for logs and APIs: password and secret parameters replaced by ***."""
    scheme, sep, rest = uri.partition("://")
    if not sep or not scheme:
        return "***"  # not a URI we understand: show nothing rather than a secret
    rest, q, query = rest.partition("?")
    at = rest.rfind("@")
    if at >= 0:
        # The last '@' ends the user info (an unescaped '@' in a password would otherwise leak
        # its tail as a host); over-redacting a database name holding '@' is the safe mistake.
        user, colon, _ = rest[:at].partition(":")
        rest = f"{user}:***@{rest[at + 1 :]}" if colon else f"{user}@{rest[at + 1 :]}"
    if q:
        pairs = []
        for pair in query.split("&"):
            name, eq, _ = pair.partition("=")
            lowered = name.lower()
            secret = lowered in _SECRET_PARAMS or any(
                word in lowered for word in ("password", "secret", "token")
            )
            pairs.append(f"{name}=***" if eq and secret else pair)
        rest = f"{rest}?{'&'.join(pairs)}"
    return f"{scheme}://{rest}"


class KvPlacement:
    """The store's ``PlacementResolver`` fed by admin's ``placement`` bucket.

    Tenants without an entry live on ``default``. Clusters are registered on ``store`` as their
    entries appear. A tenant whose entry cannot be read, or names a cluster not known yet, is
    refused (Unavailable) rather than written to the wrong database.
    """

    def __init__(
        self,
        bus: Bus,
        default: Placement,
        store: Store | None = None,
        *,
        ready_timeout_s: float = 10.0,
    ) -> None:
        self.default = default
        self._store = store
        self._ready_timeout_s = ready_timeout_s
        self._placements: dict[str, Placement] = {}
        self._broken: dict[str, str] = {}
        self._clusters: dict[str, str] = {}
        self._mirror = KvMirror(bus, Bucket.PLACEMENT, self._apply)

    @property
    def ready(self) -> asyncio.Event:
        """Set once the bucket's initial values are loaded."""
        return self._mirror.ready

    async def start(self) -> None:
        """Start watching the bucket (returns at once; ``resolve`` waits for the first load)."""
        self._mirror.start()

    async def stop(self) -> None:
        """Stop watching (known placements stay)."""
        await self._mirror.stop()

    async def resolve(self, tenant_id: str) -> Placement:
        """The tenant's placement; waits for the first load, refuses what cannot be trusted."""
        if not self.ready.is_set():
            try:
                await asyncio.wait_for(self.ready.wait(), self._ready_timeout_s)
            except TimeoutError as err:
                raise Unavailable("tenant placement not loaded yet", reason="loading") from err
        why = self._broken.get(tenant_id)
        if why is not None:
            raise Unavailable(
                f"placement of tenant {tenant_id} is unreadable: {why}", tenant_id=tenant_id
            )
        placement = self._placements.get(tenant_id, self.default)
        if not self._cluster_known(placement.cluster):
            raise Unavailable(
                f"tenant {tenant_id} is placed on cluster {placement.cluster!r}, not known yet",
                tenant_id=tenant_id,
            )
        return placement

    def _cluster_known(self, name: str) -> bool:
        if name == DEFAULT_CLUSTER or name in self._clusters:
            return True
        if self._store is None:
            return False
        try:
            self._store.client(name)  # clusters the store was built with count too
        except KeyError:
            return False
        return True

    def _apply(self, changes: ChangeBatch, initial: bool) -> None:
        for key, raw in changes:
            if key.startswith(_TENANT_KEY):
                self._apply_tenant(key[len(_TENANT_KEY) :], raw)
            elif key.startswith(_CLUSTER_KEY):
                self._apply_cluster(key[len(_CLUSTER_KEY) :], raw)
            else:
                log.warning("placement bucket: ignoring unknown key %r", key)

    def _apply_tenant(self, tenant_id: str, raw: bytes | None) -> None:
        try:
            check_tenant_id(tenant_id, "key")
        except ValueError:
            log.warning("placement bucket: ignoring key of a bad tenant id %r", tenant_id)
            return
        self._broken.pop(tenant_id, None)
        if raw is None:
            if self._placements.pop(tenant_id, None) is not None:
                log.info("tenant %s back on the default placement", tenant_id)
            return
        try:
            placement = _decode_placement(raw)
        except RecordError as err:
            self._placements.pop(tenant_id, None)
            self._broken[tenant_id] = str(err)
            log.error(  # noqa: TRY400 — the traceback says nothing the message does not
                "placement bucket: unreadable placement, tenant refused: %s",
                err,
                extra={"tenant_id": tenant_id},
            )
            return
        if self._placements.get(tenant_id) != placement:
            self._placements[tenant_id] = placement
            log.info(
                "tenant %s placed on %s/%s",
                tenant_id,
                placement.cluster,
                placement.database,
                extra={"tenant_id": tenant_id},
            )

    def _apply_cluster(self, name: str, raw: bytes | None) -> None:
        if name == DEFAULT_CLUSTER or not _TOKEN_RE.match(name):
            # The default cluster is the settings' (CALLMESH_MONGODB_URI), never the bucket's.
            log.warning("placement bucket: ignoring cluster key %r", name)
            return
        if raw is None:
            # The store cannot forget a client; tenants still placed there keep working.
            if self._clusters.pop(name, None) is not None:
                log.warning("cluster %s removed from the placement map", name)
            return
        try:
            uri = _decode_cluster(raw)
        except RecordError as err:
            log.error("placement bucket: unreadable cluster %s: %s", name, err)  # noqa: TRY400
            return
        previous = self._clusters.get(name)
        if previous == uri:
            return
        self._clusters[name] = uri
        if self._store is not None:
            self._store.add_cluster(name, uri)
        if previous is None:
            log.info("cluster %s at %s", name, redact_uri(uri))
        else:
            # Store.add_cluster replaced the client; work under way on the old one finishes.
            log.warning("cluster %s moved to %s", name, redact_uri(uri))


# ---------------------------------------------------------------------------------------------
# Look-ups through admin


_NUMBER_SEPARATORS = frozenset(" \t\u00a0-().")  # what people type between digit groups
_DIGITS = frozenset("0123456789")
_MAX_NUMBER_DIGITS = 20
_MAX_E164_DIGITS = 15


def normalize_number(text: str) -> str:
    """A phone number as admin stores it: digits, with a leading ``+`` if it had one.

    Spaces, dashes, dots and parentheses are dropped; anything else is refused
    (``InvalidInput`` on ``number``). ``00`` is not rewritten to ``+``: the international
    prefix depends on the country, so ``+33…`` and ``0033…`` are different keys.
    """
    if not isinstance(text, str) or len(text) > 64:
        raise InvalidInput("number", "must be a string of at most 64 characters")
    plus = False
    kept: list[str] = []
    for ch in text:
        if ch in _DIGITS:
            kept.append(ch)
        elif ch == "+" and not kept and not plus:
            plus = True  # only before the first digit: "(+33) 1 …" is fine, "1+2" is not
        elif ch not in _NUMBER_SEPARATORS:
            raise InvalidInput(
                "number",
                "digits only, with one leading '+' and spaces, dashes, dots or parentheses",
            )
    if not kept:
        raise InvalidInput("number", "must hold at least one digit")
    if plus:
        if kept[0] == "0" or len(kept) > _MAX_E164_DIGITS:
            raise InvalidInput(
                "number", "E.164: '+' then a country code (not 0) and at most 15 digits"
            )
        return "+" + "".join(kept)
    if len(kept) > _MAX_NUMBER_DIGITS:
        raise InvalidInput("number", f"at most {_MAX_NUMBER_DIGITS} digits")
    return "".join(kept)


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")


def normalize_sip_domain(text: str) -> str:
    """A SIP domain as a cache key: lowercase, no trailing dot; refuses what is not a host name."""
    domain = text.strip().lower().rstrip(".") if isinstance(text, str) else ""
    if not _DOMAIN_RE.match(domain):
        raise InvalidInput("domain", "must be a host name (letters, digits, '-' and '.')")
    return domain


def check_sip_username(text: str) -> str:
    """A SIP user name: 1-128 printable characters without spaces, '@' or ':'."""
    if (
        not isinstance(text, str)
        or not 1 <= len(text) <= 128
        or any(ch.isspace() or not ch.isprintable() or ch in "@:" for ch in text)
    ):
        raise InvalidInput("username", "1-128 printable characters without spaces, '@' or ':'")
    return text


# How long past its TTL a directory answer may still be served while admin cannot be reached
# (a branch site cut off from the center keeps its phones and numbers working for a day).
STALE_IF_ERROR_S = 86_400.0


@dataclass(slots=True)
class _Cached(Generic[R]):
    reply: R
    tenant_id: str  # "" for a negative answer: it belongs to no tenant
    expires: float


class _LookupCache(Generic[K, R]):
    """Answers by key for a TTL, bounded (least recently used go first), one request per key.

    Every invalidation bumps an epoch: an answer requested before it is handed to its waiters
    but not cached, and later look-ups do not join that request.

    Stale if error: an expired answer is kept (until ``stale_s`` past its expiry, an
    invalidation or eviction) and served when asking again fails because admin cannot be
    reached (``Unavailable``, ``RequestTimeout``) — so a branch site whose WAN link is down
    keeps registering its phones and routing its numbers from what it last knew.
    """

    def __init__(self, name: str, ttl_s: float, max_entries: int, stale_s: float = 0.0) -> None:
        if ttl_s < 0 or max_entries < 1 or stale_s < 0:
            raise ValueError("ttl_s and stale_s must be >= 0 and max_entries >= 1")
        self.name = name
        self._ttl_s = ttl_s
        self._stale_s = stale_s
        self._max = max_entries
        self._entries: OrderedDict[K, _Cached[R]] = OrderedDict()
        self._by_tenant: dict[str, set[K]] = {}
        self._inflight: dict[K, asyncio.Task[R]] = {}
        self._tasks: set[asyncio.Task[R]] = set()
        self._epoch = 0
        lookups = telemetry.counter(
            "callmesh_directory_lookups_total",
            "Look-ups through admin's directories, by outcome (hit, miss, joined, stale: an "
            "expired answer served because admin could not be reached)",
            ["directory", "outcome"],
        )
        self._hit = lookups.labels(name, "hit")
        self._miss = lookups.labels(name, "miss")
        self._joined = lookups.labels(name, "joined")
        self._stale = lookups.labels(name, "stale")

    def __len__(self) -> int:
        return len(self._entries)

    async def get(
        self, key: K, fetch: Callable[[], Coroutine[Any, Any, R]], tenant_of: Callable[[R], str]
    ) -> R:
        """The cached answer, the answer of a request in flight, or a new request's."""
        loop = asyncio.get_running_loop()
        cached = self._entries.get(key)
        stale: _Cached[R] | None = None
        if cached is not None:
            now = loop.time()
            if cached.expires > now:
                self._entries.move_to_end(key)
                self._hit.inc()
                return cached.reply
            if now - cached.expires < self._stale_s:
                stale = cached
            else:
                self._remove(key)
        task = self._inflight.get(key)
        if task is None:
            self._miss.inc()
            task = asyncio.create_task(fetch(), name=f"{self.name}-lookup")
            self._inflight[key] = task
            self._tasks.add(task)
            task.add_done_callback(partial(self._settled, key, self._epoch, tenant_of))
        else:
            self._joined.inc()
        # Shielded: one waiter giving up must not cancel the request the others wait for.
        try:
            return await asyncio.shield(task)
        except (Unavailable, RequestTimeout):
            # Only while the entry is still the one we saw (no invalidation dropped it since).
            if stale is None or self._entries.get(key) is not stale:
                raise
            log.warning("%s look-up failed: serving the expired answer", self.name)
            self._stale.inc()
            return stale.reply

    def _settled(
        self, key: K, epoch: int, tenant_of: Callable[[R], str], task: asyncio.Task[R]
    ) -> None:
        self._tasks.discard(task)
        if self._inflight.get(key) is task:
            del self._inflight[key]
        # Read the outcome even when every waiter left, so no failure goes unretrieved; errors
        # (timeouts, no responder, refusals) are never cached.
        if task.cancelled() or task.exception() is not None or epoch != self._epoch:
            return
        reply = task.result()
        self._remove(key)
        tenant = tenant_of(reply)
        expires = asyncio.get_running_loop().time() + self._ttl_s
        self._entries[key] = _Cached(reply, tenant, expires)
        self._by_tenant.setdefault(tenant, set()).add(key)
        while len(self._entries) > self._max:
            oldest = next(iter(self._entries))
            self._remove(oldest)

    def _remove(self, key: K) -> None:
        cached = self._entries.pop(key, None)
        if cached is not None:
            keys = self._by_tenant.get(cached.tenant_id)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tenant[cached.tenant_id]

    def _invalidated(self) -> None:
        self._epoch += 1
        self._inflight.clear()

    def drop(self, keys: Collection[K]) -> None:
        """Forget these keys."""
        self._invalidated()
        for key in keys:
            self._remove(key)

    def drop_where(self, predicate: Callable[[K, str], bool]) -> None:
        """Forget every entry whose (key, tenant) matches (a scan: for rare events only)."""
        self._invalidated()
        for key in [k for k, c in self._entries.items() if predicate(k, c.tenant_id)]:
            self._remove(key)

    def drop_tenant(self, tenant_id: str) -> None:
        """Forget a tenant's answers and every negative one (they cannot say whose they were)."""
        self._invalidated()
        for owner in (tenant_id, ""):
            for key in list(self._by_tenant.get(owner, ())):
                self._remove(key)

    def clear(self) -> None:
        """Forget everything."""
        self._invalidated()
        self._entries.clear()
        self._by_tenant.clear()

    async def close(self) -> None:
        """Cancel requests in flight."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class _AdminDirectory(Generic[K, R]):
    """Shared plumbing: admin requests through a cache, invalidated by tenant events."""

    _events: tuple[str, ...] = _STATUS_EVENTS

    def __init__(
        self,
        bus: Bus,
        name: str,
        ttl_s: float,
        max_entries: int,
        timeout_s: float | None,
        stale_s: float = 0.0,
    ) -> None:
        self._bus = bus
        self._timeout_s = timeout_s
        self._cache: _LookupCache[K, R] = _LookupCache(name, ttl_s, max_entries, stale_s)
        self._subs: list[CoreSubscription] = []
        self._reconnects: int | None = None

    def __len__(self) -> int:
        return len(self._cache)

    async def start(self) -> None:
        """Subscribe to the tenant events that invalidate answers (every replica gets each)."""
        if self._subs:
            return
        nc = self._bus.nc
        self._reconnects = nc.stats["reconnects"]
        for name in self._events:
            subject = self._bus.subjects.events(Domain.TENANT, name=name)
            # Plain subscriptions, no queue group: each replica keeps its own cache.
            self._subs.append(await nc.subscribe(subject, cb=self._on_message))
        # The SUBs must reach the server before a change can be published and missed.
        await nc.flush()

    async def stop(self) -> None:
        """Unsubscribe and cancel requests in flight."""
        subs, self._subs = self._subs, []
        for sub in subs:
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()
        await self._cache.close()

    def clear(self) -> None:
        """Forget every cached answer."""
        self._cache.clear()

    async def _get(
        self,
        key: K,
        request: Message,
        subject: str,
        reply_type: type[R],
        tenant_of: Callable[[R], str],
    ) -> R:
        self._check_reconnect()

        async def fetch() -> R:
            return await self._bus.request(subject, request, reply_type, timeout=self._timeout_s)

        reply = await self._cache.get(key, fetch, tenant_of)
        # A copy: callers may change what they get without changing what others are served.
        out = reply_type()
        out.CopyFrom(reply)
        return out

    def _check_reconnect(self) -> None:
        # Events published while we were disconnected were missed: start from an empty cache.
        if self._reconnects is None:
            return
        reconnects = self._bus.nc.stats["reconnects"]
        if reconnects != self._reconnects:
            self._reconnects = reconnects
            log.info("NATS reconnected: %s cache cleared", self._cache.name)
            self._cache.clear()

    async def _on_message(self, msg: Msg) -> None:
        try:
            event = Event.FromString(msg.data)
            body = event.WhichOneof("body")
        except DecodeError:
            # We cannot tell what changed, so assume anything did.
            log.warning("undecodable tenant event on %s: cache cleared", msg.subject)
            self._cache.clear()
            return
        tenant_id = event.tenant_id or msg.subject.split(".")[1]
        if body in _STATUS_BODIES:
            self._cache.drop_tenant(tenant_id)
        elif body is not None:
            self._on_event(tenant_id, body, event)

    def _on_event(self, tenant_id: str, body: str, event: Event) -> None:
        """Handle a directory-specific change event."""


class NumberDirectory(_AdminDirectory[str, NumberLookupReply]):
    """Which tenant owns a dialled number, asked of admin and cached (found or not) for a TTL."""

    _events = ("numbers_changed", *_STATUS_EVENTS)

    def __init__(
        self,
        bus: Bus,
        *,
        ttl_s: float = 60.0,
        max_entries: int = 100_000,
        timeout_s: float | None = None,
        stale_s: float = STALE_IF_ERROR_S,
    ) -> None:
        super().__init__(bus, "numbers", ttl_s, max_entries, timeout_s, stale_s)
        self._subject = bus.subjects.platform_command(Service.ADMIN, "number_lookup")

    async def lookup(self, number: str) -> NumberLookupReply:
        """Admin's answer for the number (normalized first; InvalidInput if it is not one)."""
        key = normalize_number(number)
        return await self._get(
            key, NumberLookup(number=key), self._subject, NumberLookupReply, _number_tenant
        )

    def _on_event(self, tenant_id: str, body: str, event: Event) -> None:
        if body != "tenant_numbers_changed":
            return
        change = event.tenant_numbers_changed
        keys: list[str] = []
        for number in (*change.added, *change.removed):
            try:
                keys.append(normalize_number(number))
            except InvalidInput:
                log.warning("numbers_changed of %s names a bad number: cache cleared", tenant_id)
                self._cache.clear()
                return
        self._cache.drop(keys)


def _number_tenant(reply: NumberLookupReply) -> str:
    return reply.tenant_id if reply.found else ""


class SipDirectory(_AdminDirectory[tuple[str, str], DirectoryLookupReply]):
    """A tenant's SIP user by domain and user name, asked of admin and cached for a TTL."""

    _events = ("directory_changed", *_STATUS_EVENTS)

    def __init__(
        self,
        bus: Bus,
        *,
        ttl_s: float = 30.0,
        max_entries: int = 100_000,
        timeout_s: float | None = None,
        stale_s: float = STALE_IF_ERROR_S,
    ) -> None:
        super().__init__(bus, "sip_users", ttl_s, max_entries, timeout_s, stale_s)
        self._subject = bus.subjects.platform_command(Service.ADMIN, "directory_lookup")

    async def lookup(self, domain: str, username: str) -> DirectoryLookupReply:
        """Admin's answer for user ``username`` of SIP domain ``domain``."""
        key = (normalize_sip_domain(domain), check_sip_username(username))
        request = DirectoryLookup(domain=key[0], username=key[1])
        return await self._get(key, request, self._subject, DirectoryLookupReply, _sip_tenant)

    def _on_event(self, tenant_id: str, body: str, event: Event) -> None:
        if body != "tenant_directory_changed":
            return
        names = frozenset(event.tenant_directory_changed.usernames)
        # Negative answers name no tenant: drop them for these user names in every domain.
        self._cache.drop_where(lambda key, owner: key[1] in names and owner in (tenant_id, ""))


def _sip_tenant(reply: DirectoryLookupReply) -> str:
    return reply.tenant_id if reply.found else ""
