"""Partition leases in the KV bucket ``leases``: one owner each, a fencing token that only grows.

How it works (nothing but JetStream KV primitives, so it behaves the same on one server or a
cluster):

- The bucket has a TTL (``lease_ttl_s``): a value not rewritten within the TTL disappears.
- To take a partition a contender ``create``s its key (fails while someone holds it). The
  revision of that write is the **fencing token**: revisions are the bucket stream's sequence
  numbers, which only grow, across every key, even after values expire — so a later owner always
  holds a larger token than any earlier one (unless the bucket itself is deleted).
- The owner renews every ``ttl/3`` with ``update(key, last=revision)``; a renewal that finds
  another revision means someone else owns it now → lost.
- The owner also keeps a local deadline: the moment it *sent* its last successful renewal plus
  the TTL, minus a margin. If it cannot renew by then (NATS unreachable) it declares the lease lost
  itself, before any other contender can have taken it.
- On a clean stop the owner deletes its key so another replica takes over at once.
- Commands carry ``(lease, token)``; receivers (the cti link) refuse a token lower than the
  highest they have seen for that lease, so a stale owner can never act twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.js.kv import KeyValue

from callmesh.core import telemetry
from callmesh.core.bus import Bus
from callmesh.proto.subjects import Bucket, check_token

log = logging.getLogger(__name__)

# Renewal keeps this share of the TTL in hand before the local deadline declares the lease lost.
_SAFETY_MARGIN = 0.2


@dataclass(frozen=True)
class LeaseGrant:
    """A lease held: which partition, by whom, and its fencing token."""

    key: str
    holder: str
    token: int


Gained = Callable[[LeaseGrant], Awaitable[None]]
Lost = Callable[[LeaseGrant, str], Awaitable[None]]


@dataclass
class _Claim:
    key: str
    on_gained: Gained
    on_lost: Lost
    grant: LeaseGrant | None = None
    revision: int = 0
    deadline: float = 0.0
    task: asyncio.Task[None] | None = None


class LeaseManager:
    """Contends for partitions for one holder (a service replica) and keeps them renewed."""

    def __init__(
        self,
        bus: Bus,
        holder: str,
        *,
        ttl_s: float | None = None,
        renew_every_s: float | None = None,
        retry_every_s: float | None = None,
    ) -> None:
        self.bus = bus
        self.holder = check_token("holder", holder)
        self.ttl_s = ttl_s or bus.settings.lease_ttl_s
        self.renew_every_s = renew_every_s or self.ttl_s / 3
        self.retry_every_s = retry_every_s or self.ttl_s / 4
        self._claims: dict[str, _Claim] = {}
        self._kv: KeyValue | None = None
        self._callbacks: set[asyncio.Task[None]] = set()
        self._owned = telemetry.gauge(
            "callmesh_leases_owned", "1 while this replica owns the partition", ["holder", "lease"]
        )
        self._changes = telemetry.counter(
            "callmesh_lease_changes_total", "Leases gained and lost", ["lease", "change"]
        )

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self.bus.kv(Bucket.LEASES)
        return self._kv

    def claim(self, key: str, on_gained: Gained, on_lost: Lost) -> None:
        """Contend for a partition until ``release``/``stop``; callbacks run in their own tasks."""
        check_token("lease", key.replace(".", "_"))
        if key in self._claims:
            raise ValueError(f"lease: {key!r} is already claimed by this manager")
        claim = _Claim(key, on_gained, on_lost)
        claim.task = asyncio.create_task(self._run(claim), name=f"lease:{key}")
        self._claims[key] = claim

    def grant(self, key: str) -> LeaseGrant | None:
        """The grant held for a partition, if this replica owns it now."""
        claim = self._claims.get(key)
        if claim is None or claim.grant is None or time.monotonic() > claim.deadline:
            return None
        return claim.grant

    async def release(self, key: str) -> None:
        """Stop contending for a partition, giving it up at once if owned."""
        claim = self._claims.pop(key, None)
        if claim is None:
            return
        if claim.task is not None:
            claim.task.cancel()
            await asyncio.gather(claim.task, return_exceptions=True)
        if claim.grant is not None:
            grant = claim.grant
            with contextlib.suppress(nats.errors.Error, nats.js.errors.Error, asyncio.TimeoutError):
                kv = await self._bucket()
                await kv.delete(key, last=claim.revision)
            self._lose(claim, "released")
            await self._guarded(claim.on_lost(grant, "released"))

    async def stop(self) -> None:
        """Release every partition (the next owner need not wait for the TTL)."""
        for key in list(self._claims):
            await self.release(key)
        if self._callbacks:
            await asyncio.gather(*self._callbacks, return_exceptions=True)

    # -- the loop of one claim --------------------------------------------------------------

    async def _run(self, claim: _Claim) -> None:
        while True:
            try:
                if claim.grant is None:
                    await self._try_acquire(claim)
                    await asyncio.sleep(
                        self.retry_every_s if claim.grant is None else self.renew_every_s
                    )
                else:
                    await self._renew(claim)
                    await asyncio.sleep(self.renew_every_s)
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop must outlive any one failure
                log.exception("lease loop error", extra={"lease": claim.key})
                await asyncio.sleep(self.retry_every_s)

    def _value(self, token: int) -> bytes:
        return json.dumps({"holder": self.holder, "token": token, "ttl_s": self.ttl_s}).encode()

    async def _try_acquire(self, claim: _Claim) -> None:
        kv = await self._bucket()
        sent = time.monotonic()
        try:
            revision = await kv.create(claim.key, self._value(0))
        except nats.js.errors.KeyWrongLastSequenceError:
            return  # held by someone else
        except (TimeoutError, nats.errors.Error, nats.js.errors.Error) as err:
            log.warning("lease acquisition failed", extra={"lease": claim.key, "error": str(err)})
            return
        grant = LeaseGrant(claim.key, self.holder, revision)
        claim.revision = revision
        claim.deadline = sent + self.ttl_s * (1 - _SAFETY_MARGIN)
        # Record the token in the value so observers see who holds it with which token.
        # If this fails the next renewal retries; the grant stands on the create.
        with contextlib.suppress(TimeoutError, nats.errors.Error, nats.js.errors.Error):
            claim.revision = await kv.update(claim.key, self._value(revision), last=revision)
        claim.grant = grant
        self._owned.labels(self.holder, claim.key).set(1)
        self._changes.labels(claim.key, "gained").inc()
        log.info("lease gained", extra={"lease": claim.key, "token": revision})
        self._callback(claim.on_gained(grant))

    async def _renew(self, claim: _Claim) -> None:
        assert claim.grant is not None
        grant = claim.grant
        kv = await self._bucket()
        sent = time.monotonic()
        try:
            claim.revision = await kv.update(
                claim.key, self._value(grant.token), last=claim.revision
            )
        except nats.js.errors.KeyWrongLastSequenceError:
            self._lose(claim, "taken over")
            self._callback(claim.on_lost(grant, "taken over"))
            return
        except (TimeoutError, nats.errors.Error, nats.js.errors.Error) as err:
            if time.monotonic() >= claim.deadline:
                self._lose(claim, "could not renew")
                self._callback(claim.on_lost(grant, f"could not renew: {err}"))
            return
        if time.monotonic() >= claim.deadline:
            # Renewed, but only after our own deadline: others may have acted on our silence.
            self._lose(claim, "renewed too late")
            with contextlib.suppress(nats.errors.Error, nats.js.errors.Error, asyncio.TimeoutError):
                await kv.delete(claim.key, last=claim.revision)
            self._callback(claim.on_lost(grant, "renewed too late"))
            return
        claim.deadline = sent + self.ttl_s * (1 - _SAFETY_MARGIN)

    def _lose(self, claim: _Claim, why: str) -> None:
        log.warning("lease lost: %s", why, extra={"lease": claim.key})
        claim.grant = None
        claim.revision = 0
        self._owned.labels(self.holder, claim.key).set(0)
        self._changes.labels(claim.key, "lost").inc()

    def _callback(self, coro: Awaitable[None]) -> None:
        task = asyncio.create_task(self._guarded(coro))
        self._callbacks.add(task)
        task.add_done_callback(self._callbacks.discard)

    @staticmethod
    async def _guarded(coro: Awaitable[None]) -> None:
        try:
            await coro
        except Exception:  # a failing callback must not break the lease loop
            log.exception("lease callback failed")


class FencingGuard:
    """Receiver side: remembers the highest token per lease and refuses older ones."""

    def __init__(self) -> None:
        self._highest: dict[str, int] = {}

    def admit(self, lease: str, token: int) -> bool:
        """True (and remembered) when ``token`` is at least the highest seen for ``lease``."""
        if token < self._highest.get(lease, 0):
            return False
        self._highest[lease] = token
        return True

    def highest(self, lease: str) -> int:
        """The highest token seen for a lease (0 when none)."""
        return self._highest.get(lease, 0)
