"""Tenant quotas: take and release units atomically in NATS KV; refusals are clear and audited.

Semantics:

- A **counter** quota (agents logged in, concurrent calls by channel, IVR flows and sessions,
  recording bytes) lives in the bucket ``quotas`` under ``<tenant>.<kind>`` as JSON
  ``{"used": int, "limit": int | null}``. ``take`` adds units, ``release`` gives them back. A
  missing key or ``limit: null`` means unlimited, but the units are still counted, so admin can
  show what a tenant uses before it sets a limit.
- Every change is a compare-and-set on the key's revision (``update(..., last=revision)``): two
  writers can never both win, so no unit is ever granted twice. A writer that loses the race
  reads again and retries after a short random pause (full jitter, bounded attempts); after
  ``MAX_ATTEMPTS`` it gives up with ``Unavailable`` rather than spin.
- A take that would make ``used`` exceed ``limit`` is refused with ``QuotaExceeded`` (status 429)
  naming the tenant, the quota and the numbers; the refusal is counted
  (``callmesh_quota_refusals_total``) and published as ``TenantQuotaExceeded`` for admin's audit
  log. Publishing is best effort: if the bus cannot take the event the refusal still stands.
- A **rate** quota (calls per second) is only taken, never released: ``take_rate`` counts in the
  current one-second window (``<tenant>.<kind>.<unix-second>`` in the bucket ``quota_rates``,
  whose values vanish after 10 s); its limit is the ``limit`` of ``<tenant>.<kind>`` in
  ``quotas``.
- A cancelled ``take`` leaves nothing taken (a unit granted while the caller was being cancelled
  is given back in the background) and a cancelled ``release`` still completes; ``hold`` takes,
  and releases on every way out of its block. ``close`` waits for those background give-backs.

Limits of the design:

- The count is only as right as the services keeping it. A process that dies holding units
  leaves them counted until the service (after its restart, recounting what it really holds) or
  an operator reconciles with ``set_used``; nothing expires by itself.
- One key per tenant and quota is a hot spot. Within a process, writers of a key take turns (a
  lock per key), so they never race each other; across replicas they race and CAS retries
  settle it. Either way one key sustains roughly one write per two NATS round trips
  (``bench/quota.py`` measures it); different tenants or quotas never contend.
- The per-second window is a fixed window: up to twice the limit can pass across a window
  boundary (the end of one second and the start of the next). Windows follow each caller's wall
  clock, so replicas on hosts whose clocks differ share the window only as well as NTP allows.
- A refusal is decided on a read; on a clustered bucket that read may be slightly stale and
  refuse a unit released an instant before. It never grants one too many: grants go through CAS.
- Every refusal is one event in the 365-day ``CM_ADMIN`` stream: a tenant hammering a full quota
  (a call flood against its calls-per-second limit) writes one event per refused attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

import nats.errors
import nats.js.errors
from nats.js.kv import KeyValue

from callmesh.core import telemetry
from callmesh.core.bus import Bus
from callmesh.core.errors import DomainError, InvalidInput, QuotaExceeded, Unavailable
from callmesh.proto.subjects import Bucket, check_tenant_id
from callmesh.proto.v1.tenant_pb2 import TenantQuotaExceeded

log = logging.getLogger(__name__)

T = TypeVar("T")

# A lost CAS is retried after a random pause of up to base * 2**attempt (capped): spreading the
# losers out lets most of them win on their next try instead of colliding again.
MAX_ATTEMPTS = 100
_BACKOFF_BASE_S = 0.0005
_BACKOFF_CAP_S = 0.025


class QuotaKind(StrEnum):
    """What a quota limits: counters (taken and released) and rates (taken per second)."""

    AGENTS_LOGGED_IN = "agents_logged_in"
    CALLS_PSTN = "calls_pstn"
    CALLS_SIP = "calls_sip"
    CALLS_WEB = "calls_web"
    IVR_FLOWS = "ivr_flows"
    IVR_SESSIONS = "ivr_sessions"
    RECORDING_BYTES = "recording_bytes"
    CALLS_PER_SECOND = "calls_per_second"


RATE_KINDS = frozenset({QuotaKind.CALLS_PER_SECOND})


@dataclass(frozen=True, slots=True)
class QuotaGrant:
    """Units taken: of which quota, how many, and the count and limit right after the take."""

    tenant_id: str
    kind: QuotaKind
    amount: int
    used: int
    limit: int | None


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    """A quota's current count next to its limit (None: unlimited)."""

    used: int
    limit: int | None

    @property
    def remaining(self) -> int | None:
        """Units still free (None when unlimited; 0 when over a lowered limit)."""
        return None if self.limit is None else max(0, self.limit - self.used)


@dataclass(frozen=True, slots=True)
class _State:
    used: int
    limit: int | None

    def encode(self) -> bytes:
        return json.dumps({"used": self.used, "limit": self.limit}).encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> _State:
        data = json.loads(raw or b"")
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        used, limit = data.get("used", 0), data.get("limit")
        # bool is an int subclass; JSON true is not a count.
        if type(used) is not int or used < 0:
            raise ValueError(f"used must be a count, got {used!r}")
        if limit is not None and (type(limit) is not int or limit < 0):
            raise ValueError(f"limit must be a count or null, got {limit!r}")
        return cls(used, limit)


_EMPTY = _State(0, None)


@dataclass(slots=True)
class _Turn:
    """The lock of one key's writers in this process; dropped when nobody waits on it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class _Metrics:
    def __init__(self) -> None:
        self.refusals = telemetry.counter(
            "callmesh_quota_refusals_total",
            "Quota takes refused because the limit was reached",
            ["tenant", "kind", "service"],
        )
        self.seconds = telemetry.histogram(
            "callmesh_quota_seconds",
            "Quota operation latency (take, take_rate, release), CAS retries included",
            ["op", "kind"],
        )
        self.conflicts = telemetry.counter(
            "callmesh_quota_cas_conflicts_total",
            "Quota writes that lost a compare-and-set race and were retried",
            ["kind"],
        )


def _check_tenant(tenant_id: str) -> str:
    try:
        return check_tenant_id(tenant_id)
    except ValueError as err:
        raise InvalidInput("tenant_id", "must be a tenant id", str(err)) from err


def _check_kind(kind: QuotaKind | str) -> QuotaKind:
    try:
        return QuotaKind(kind)
    except ValueError:
        names = ", ".join(QuotaKind)
        raise InvalidInput(
            "kind", "must be a quota kind", f"kind: {kind!r} is not one of {names}"
        ) from None


def _check_count(field: str, value: int, minimum: int) -> int:
    # bool passes an int annotation; True units is a caller's bug, not a count.
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        rule = "must be a positive integer" if minimum else "must be an integer of 0 or more"
        raise InvalidInput(field, rule, f"{field}: {rule} (got {value!r})")
    return value


def _counter_kind(kind: QuotaKind | str, op: str) -> QuotaKind:
    checked = _check_kind(kind)
    if checked in RATE_KINDS:
        raise InvalidInput(
            "kind", "must be a counter quota", f"kind: {checked} is a rate; {op} counts counters"
        )
    return checked


def _backoff(attempt: int) -> float:
    return random.uniform(0, min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2**attempt))


class Quotas:
    """One service's handle on the tenant quotas kept in NATS KV."""

    def __init__(self, bus: Bus, *, service: str) -> None:
        if not service:
            raise ValueError("service: must not be empty")
        self.bus = bus
        self.service = service
        self._counters: KeyValue | None = None
        self._rates: KeyValue | None = None
        self._metrics = _Metrics()
        # Per key: whose turn it is to write it from this process (see _cas).
        self._turns: dict[str, _Turn] = {}
        # Give-backs that outlived a cancelled caller; close() waits for them.
        self._background: set[asyncio.Task[Any]] = set()

    # -- taking and releasing ---------------------------------------------------------------

    async def take(self, tenant_id: str, kind: QuotaKind | str, amount: int = 1) -> QuotaGrant:
        """Take ``amount`` units, or raise ``QuotaExceeded`` (audited) when they do not fit."""
        tenant_id = _check_tenant(tenant_id)
        checked = _counter_kind(kind, "take")
        _check_count("amount", amount, 1)
        task = asyncio.ensure_future(self._take(tenant_id, checked, amount))
        try:
            # Shielded so a cancellation cannot cut the write off with its outcome unknown.
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            self._adopt(self._undo_take(task))
            raise

    async def _take(self, tenant_id: str, kind: QuotaKind, amount: int) -> QuotaGrant:
        started = time.perf_counter()
        try:

            def add(state: _State) -> _State | None:
                if state.limit is not None and state.used + amount > state.limit:
                    return None
                return _State(state.used + amount, state.limit)

            kv = await self._counter_bucket()
            before, after = await self._cas(kv, f"{tenant_id}.{kind}", kind, add)
            if after is None:
                assert before.limit is not None
                raise await self._refuse(tenant_id, kind, before.limit, before.used, amount)
            return QuotaGrant(tenant_id, kind, amount, after.used, after.limit)
        finally:
            self._metrics.seconds.labels("take", kind).observe(time.perf_counter() - started)

    async def _undo_take(self, task: asyncio.Future[QuotaGrant]) -> None:
        try:
            grant = await task
        except DomainError:
            return  # nothing was taken
        await self._release(grant.tenant_id, grant.kind, grant.amount)

    async def release(self, tenant_id: str, kind: QuotaKind | str, amount: int = 1) -> QuotaUsage:
        """Give units back (never below zero); completes even if the caller is cancelled."""
        tenant_id = _check_tenant(tenant_id)
        checked = _counter_kind(kind, "release")
        _check_count("amount", amount, 1)
        task = asyncio.ensure_future(self._release(tenant_id, checked, amount))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            self._adopt(task)
            raise

    async def _release(self, tenant_id: str, kind: QuotaKind, amount: int) -> QuotaUsage:
        started = time.perf_counter()
        key = f"{tenant_id}.{kind}"
        try:

            def subtract(state: _State) -> _State | None:
                if state.used < amount:
                    # Someone released what was never taken (or released twice): a bookkeeping
                    # bug elsewhere. Clamp so the quota stays usable, and say so.
                    log.warning(
                        "quota release below zero: clamped",
                        extra={
                            "tenant_id": tenant_id,
                            "kind": str(kind),
                            "used": state.used,
                            "amount": amount,
                            "service": self.service,
                        },
                    )
                    if state.used == 0:
                        return None
                return _State(max(0, state.used - amount), state.limit)

            kv = await self._counter_bucket()
            before, after = await self._cas(kv, key, kind, subtract)
            final = after or before
            return QuotaUsage(final.used, final.limit)
        finally:
            self._metrics.seconds.labels("release", kind).observe(time.perf_counter() - started)

    @contextlib.asynccontextmanager
    async def hold(
        self, tenant_id: str, kind: QuotaKind | str, amount: int = 1
    ) -> AsyncIterator[QuotaGrant]:
        """Hold units for the block: taken on entry, released on exit, exception or cancellation."""
        grant = await self.take(tenant_id, kind, amount)
        try:
            yield grant
        except BaseException:
            # The block's own error is what the caller must see, not a failed release.
            try:
                await self.release(grant.tenant_id, grant.kind, grant.amount)
            except DomainError:
                log.exception(
                    "quota release after a failed block did not go through",
                    extra={"tenant_id": grant.tenant_id, "kind": str(grant.kind)},
                )
            raise
        await self.release(grant.tenant_id, grant.kind, grant.amount)

    async def take_rate(
        self, tenant_id: str, kind: QuotaKind | str = QuotaKind.CALLS_PER_SECOND
    ) -> QuotaUsage:
        """Count one unit in the current second, or raise ``QuotaExceeded`` (audited)."""
        tenant_id = _check_tenant(tenant_id)
        checked = _check_kind(kind)
        if checked not in RATE_KINDS:
            raise InvalidInput(
                "kind", "must be a rate quota", f"kind: {checked} is a counter; use take"
            )
        started = time.perf_counter()
        try:
            counters, rates = await self._counter_bucket(), await self._rate_bucket()
            limit = (await self._read(counters, f"{tenant_id}.{checked}"))[0].limit
            refused: _State | None = None

            def add(state: _State) -> _State | None:
                nonlocal refused
                if limit is not None and state.used + 1 > limit:
                    refused = state
                    return None
                return _State(state.used + 1, limit)

            # The window is read again on every attempt: a retry may land in the next second.
            _, after = await self._cas(
                rates,
                lambda: f"{tenant_id}.{checked}.{int(time.time())}",
                checked,
                add,
                serial=f"{tenant_id}.{checked}.window",
            )
            if after is None:
                assert refused is not None
                assert limit is not None
                raise await self._refuse(tenant_id, checked, limit, refused.used, 1)
            return QuotaUsage(after.used, after.limit)
        finally:
            self._metrics.seconds.labels("take_rate", checked).observe(
                time.perf_counter() - started
            )

    # -- admin --------------------------------------------------------------------------------

    async def set_limit(
        self, tenant_id: str, kind: QuotaKind | str, limit: int | None
    ) -> QuotaUsage:
        """Set (or, with None, lift) a quota's limit, keeping what is in use."""
        tenant_id = _check_tenant(tenant_id)
        checked = _check_kind(kind)
        if limit is not None:
            _check_count("limit", limit, 0)

        def change(state: _State) -> _State | None:
            return None if state.limit == limit else _State(state.used, limit)

        kv = await self._counter_bucket()
        before, after = await self._cas(kv, f"{tenant_id}.{checked}", checked, change, repair=True)
        final = after or before
        log.info(
            "quota limit set",
            extra={
                "tenant_id": tenant_id,
                "kind": str(checked),
                "limit": limit,
                "used": final.used,
            },
        )
        return QuotaUsage(final.used, final.limit)

    async def set_used(self, tenant_id: str, kind: QuotaKind | str, used: int) -> QuotaUsage:
        """Reconcile a counter with what a service recounted it really holds (keeps the limit)."""
        tenant_id = _check_tenant(tenant_id)
        checked = _counter_kind(kind, "set_used")
        _check_count("used", used, 0)
        previous: int | None = None

        def change(state: _State) -> _State | None:
            nonlocal previous
            previous = state.used
            return None if state.used == used else _State(used, state.limit)

        kv = await self._counter_bucket()
        before, after = await self._cas(kv, f"{tenant_id}.{checked}", checked, change, repair=True)
        if after is not None:
            log.info(
                "quota count reconciled",
                extra={
                    "tenant_id": tenant_id,
                    "kind": str(checked),
                    "was": previous,
                    "used": used,
                    "service": self.service,
                },
            )
        final = after or before
        return QuotaUsage(final.used, final.limit)

    async def usage(self, tenant_id: str) -> dict[QuotaKind, QuotaUsage]:
        """Every quota of a tenant, used next to limit (rates: this second's count)."""
        tenant_id = _check_tenant(tenant_id)
        counters, rates = await self._counter_bucket(), await self._rate_bucket()
        second = int(time.time())
        kinds = list(QuotaKind)
        rate_kinds = [kind for kind in kinds if kind in RATE_KINDS]
        # Nine small reads at once: admin pages show every quota of a tenant together.
        results = await asyncio.gather(
            *(self._read(counters, f"{tenant_id}.{kind}", repair=True) for kind in kinds),
            *(self._read(rates, f"{tenant_id}.{kind}.{second}") for kind in rate_kinds),
        )
        out = {
            kind: QuotaUsage(state.used, state.limit)
            for kind, (state, _) in zip(kinds, results[: len(kinds)], strict=True)
        }
        for kind, (window, _) in zip(rate_kinds, results[len(kinds) :], strict=True):
            # A rate's count is the current window's; its key in ``quotas`` only holds the limit.
            out[kind] = QuotaUsage(window.used, out[kind].limit)
        return out

    async def forget(self, tenant_id: str) -> None:
        """Delete every quota key of a tenant (tenant purge): counters, limits and rate windows."""
        tenant_id = _check_tenant(tenant_id)
        for bucket in (Bucket.QUOTAS, Bucket.QUOTA_RATES):
            name = self.bus.subjects.bucket(bucket)
            # A KV bucket is the stream KV_<bucket> over $KV.<bucket>.<key>: one purge with a
            # subject filter removes all of the tenant's keys without listing them first.
            await self._edge(
                self.bus.js.purge_stream(f"KV_{name}", subject=f"$KV.{name}.{tenant_id}.>"),
                f"forget quotas of {tenant_id}",
            )
        log.info("quotas forgotten", extra={"tenant_id": tenant_id})

    async def close(self, timeout_s: float = 5.0) -> None:
        """Wait (up to ``timeout_s``) for give-backs still running for cancelled callers."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout_s)

    # -- internals ----------------------------------------------------------------------------

    async def _counter_bucket(self) -> KeyValue:
        if self._counters is None:
            self._counters = await self._edge(self.bus.kv(Bucket.QUOTAS), "open quotas bucket")
        return self._counters

    async def _rate_bucket(self) -> KeyValue:
        if self._rates is None:
            self._rates = await self._edge(
                self.bus.kv(Bucket.QUOTA_RATES), "open quota_rates bucket"
            )
        return self._rates

    @staticmethod
    async def _edge(work: Coroutine[Any, Any, T], what: str) -> T:
        """Await bus work, turning transport failures into ``Unavailable``."""
        try:
            return await work
        except (TimeoutError, nats.errors.Error) as err:
            raise Unavailable(f"{what} failed: {err or type(err).__name__}") from err

    async def _read(self, kv: KeyValue, key: str, *, repair: bool = False) -> tuple[_State, int]:
        """A key's state and revision (0 when absent)."""
        try:
            entry = await kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return _EMPTY, 0
        except (TimeoutError, nats.errors.Error) as err:
            raise Unavailable(f"read quota {key} failed: {err or type(err).__name__}") from err
        try:
            return _State.decode(entry.value), entry.revision or 0
        except (ValueError, TypeError) as err:
            if not repair:
                raise Unavailable(
                    f"quota {key} holds an unreadable value ({err}); set it again with "
                    "set_limit and set_used",
                    key=key,
                ) from err
            # An admin write replaces what nobody can read; it starts from an empty count.
            log.error(  # noqa: TRY400 — the traceback says nothing more than the message
                "unreadable quota value replaced", extra={"key": key, "error": str(err)}
            )
            return _EMPTY, entry.revision or 0

    async def _cas(
        self,
        kv: KeyValue,
        key: str | Callable[[], str],
        kind: QuotaKind,
        decide: Callable[[_State], _State | None],
        *,
        serial: str | None = None,
        repair: bool = False,
    ) -> tuple[_State, _State | None]:
        """Read, decide, compare-and-set until the write wins; (state read, state written or
        None when ``decide`` wanted no write).

        Writers of one key in this process take turns (``serial`` names the key, or its family
        when ``key`` moves, like a rate window): they would only make each other lose the CAS,
        and a lost race costs a re-read and a pause. Races between processes remain, and CAS
        settles them.
        """
        name = serial or (key if isinstance(key, str) else "")
        turn = self._turns.get(name)
        if turn is None:
            turn = self._turns[name] = _Turn()
        turn.users += 1
        try:
            async with turn.lock:
                return await self._cas_loop(kv, key, kind, decide, repair=repair)
        finally:
            turn.users -= 1
            if turn.users == 0:
                del self._turns[name]

    async def _cas_loop(
        self,
        kv: KeyValue,
        key: str | Callable[[], str],
        kind: QuotaKind,
        decide: Callable[[_State], _State | None],
        *,
        repair: bool,
    ) -> tuple[_State, _State | None]:
        for attempt in range(MAX_ATTEMPTS):
            current = key() if callable(key) else key
            state, revision = await self._read(kv, current, repair=repair)
            new = decide(state)
            if new is None:
                return state, None
            try:
                if revision:
                    await kv.update(current, new.encode(), last=revision)
                else:
                    # create() also steps over a delete marker left by a deleted key.
                    await kv.create(current, new.encode())
            except nats.js.errors.KeyWrongLastSequenceError:
                self._metrics.conflicts.labels(kind).inc()
                await asyncio.sleep(_backoff(attempt))
                continue
            except (TimeoutError, nats.errors.Error) as err:
                raise Unavailable(
                    f"write quota {current} failed: {err or type(err).__name__}"
                ) from err
            return state, new
        raise Unavailable(
            f"quota {kind}: gave up after {MAX_ATTEMPTS} contended attempts; try again",
            kind=str(kind),
        )

    async def _refuse(
        self, tenant_id: str, kind: QuotaKind, limit: int, used: int, requested: int
    ) -> QuotaExceeded:
        """The refusal to raise, counted and published for the audit log."""
        if kind in RATE_KINDS:
            numbers = f"{used} of {limit} taken this second"
        else:
            numbers = f"{used} of {limit} in use"
        err = QuotaExceeded(
            f"quota {kind} of tenant {tenant_id} exhausted: {numbers}, {requested} requested",
            tenant_id=tenant_id,
            kind=str(kind),
            limit=limit,
            used=used,
            requested=requested,
        )
        self._metrics.refusals.labels(tenant_id, kind, self.service).inc()
        log.info(err.message, extra={"tenant_id": tenant_id, "kind": str(kind)})
        event = self.bus.new_event(tenant_id=tenant_id)
        event.tenant_quota_exceeded.CopyFrom(
            TenantQuotaExceeded(
                kind=str(kind), limit=limit, used=used, requested=requested, service=self.service
            )
        )
        try:
            await self.bus.publish(event)
        except Exception:
            # Best effort: the refusal stands whether or not the audit trail got it.
            log.exception(
                "could not publish a quota refusal",
                extra={"tenant_id": tenant_id, "kind": str(kind)},
            )
        return err

    def _adopt(self, work: Coroutine[Any, Any, Any] | asyncio.Future[Any]) -> None:
        """Keep background work referenced until done, and log how it failed, if it did."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Future[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and (err := task.exception()) is not None:
            log.error(
                "quota give-back for a cancelled caller failed: %s",
                err,
                exc_info=err,
                extra={"service": self.service},
            )
