"""A KV bucket mirrored in memory: current values, then every change, robust to reconnects.

nats-py's KV watcher delivers a bucket's current values, a marker, then updates. ``KvMirror``
wraps it for the services that must act on what admin writes (tenant status, placement, token
revocations): it re-watches from scratch after a NATS reconnect (a restarted server may have
lost the watcher's ephemeral consumer, and changes made meanwhile were never delivered) or when
the consumer is gone, and hands its owner only what differs from what it had.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

import nats.errors
import nats.js.errors
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from callmesh.core import telemetry
from callmesh.core.bus import Bus
from callmesh.core.errors import Unavailable
from callmesh.proto.subjects import Bucket

log = logging.getLogger(__name__)

# Watch loop pacing: how often an idle watcher looks for a reconnect, how often it asks the
# server whether its consumer still exists, and the backoff while the bucket cannot be watched.
_POLL_S = 0.5
_LIVENESS_S = 30.0
_RETRY_MIN_S = 0.2
_RETRY_MAX_S = 5.0


ChangeBatch = list[tuple[str, bytes | None]]


class KvMirror:
    """Keeps a bucket's current values in memory and hands every change to ``apply``.

    ``apply(changes, initial)`` gets (key, value or None when deleted) pairs: all keys on the
    first load (``initial=True``), then each update, and after a re-watch only what differs
    from what it had (a key deleted while we were away arrives as None).
    """

    def __init__(
        self,
        bus: Bus,
        bucket: Bucket,
        apply: Callable[[ChangeBatch, bool], None],
        *,
        poll_s: float = _POLL_S,
        liveness_s: float = _LIVENESS_S,
    ) -> None:
        self._bus = bus
        self._bucket = bucket
        self._name = bus.subjects.bucket(bucket)
        self._apply = apply
        self._poll_s = poll_s
        self._liveness_s = liveness_s
        self._values: dict[str, bytes] = {}
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        # Complete loads so far: the first, then one after every re-watch.
        self.loads = 0
        self._restarts = telemetry.counter(
            "callmesh_kv_watch_restarts_total",
            "KV watches started again (after a reconnect or a lost consumer)",
            ["bucket"],
        ).labels(self._name)

    def start(self) -> None:
        """Start watching in the background (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"watch-{self._name}")

    async def stop(self) -> None:
        """Stop watching (the last values stay readable)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        delay = _RETRY_MIN_S
        first = True
        while True:
            if not first:
                self._restarts.inc()
            first = False
            try:
                if await self._watch():
                    delay = _RETRY_MIN_S  # it worked until told to re-watch: no backoff
                    continue
            except (nats.errors.Error, TimeoutError, OSError, Unavailable) as err:
                # Disconnected, JetStream not ready after a restart, bucket not provisioned yet.
                log.warning(
                    "cannot watch KV bucket, retrying: %s",
                    str(err) or type(err).__name__,
                    extra={"bucket": self._name},
                )
            except Exception:
                # A bug must not leave the service on a frozen copy forever: log it, watch again.
                log.exception("KV watch failed, retrying", extra={"bucket": self._name})
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, _RETRY_MAX_S)

    async def _watch(self) -> bool:
        """Watch until a re-watch is needed (True) or the watcher was stopped under us (False)."""
        nc = self._bus.nc
        reconnects = nc.stats["reconnects"]
        kv = await self._bus.kv(self._bucket)
        watcher = await kv.watchall()
        loop = asyncio.get_running_loop()
        checked = loop.time()
        # Values of this watch's initial load; None once the load is complete.
        fresh: dict[str, bytes] | None = {}
        try:
            while True:
                # A reconnect may have been to a restarted server that lost our ephemeral
                # consumer (nats-py would only notice after missed heartbeats): start over.
                if nc.stats["reconnects"] != reconnects:
                    log.info("NATS reconnected: watching again", extra={"bucket": self._name})
                    return True
                if loop.time() - checked >= self._liveness_s:
                    checked = loop.time()
                    if not await self._alive(watcher):
                        log.warning("KV watcher lost its consumer", extra={"bucket": self._name})
                        return True
                # Not watcher.updates(): its asyncio.wait_for can swallow a cancellation on
                # Python 3.11 when an entry arrives at the same moment, and stop() would hang.
                try:
                    async with asyncio.timeout(self._poll_s):
                        entry = await anext(watcher)
                except TimeoutError:
                    continue
                except StopAsyncIteration:
                    return True  # the watcher was stopped under us: watch again
                if entry is None:  # the end of the initial values
                    if fresh is not None:
                        self._install(fresh)
                        fresh = None
                    continue
                if not isinstance(entry, KeyValue.Entry):
                    return False
                value = None if entry.operation in (KV_DEL, KV_PURGE) else (entry.value or b"")
                if fresh is not None:
                    if value is None:
                        fresh.pop(entry.key, None)
                    else:
                        fresh[entry.key] = value
                else:
                    self._change([(entry.key, value)])
        finally:
            with contextlib.suppress(nats.errors.Error, TimeoutError, AttributeError):
                await watcher.stop()  # type: ignore[no-untyped-call]

    @staticmethod
    async def _alive(watcher: KeyValue.KeyWatcher) -> bool:
        sub: Any = getattr(watcher, "_sub", None)
        if sub is None:
            return False
        try:
            await sub.consumer_info()
        except nats.js.errors.NotFoundError:
            return False
        except (nats.errors.Error, TimeoutError):
            return True  # cannot tell now; a reconnect, if that is the trouble, is noticed
        return True

    def _install(self, fresh: dict[str, bytes]) -> None:
        """Replace the mirror with a complete load, handing on only what changed."""
        initial = not self.ready.is_set()
        changes: ChangeBatch = [
            (key, value) for key, value in fresh.items() if self._values.get(key) != value
        ]
        changes += [(key, None) for key in self._values if key not in fresh]
        self._values = fresh
        self.loads += 1
        self._deliver(changes, initial)
        self.ready.set()

    def _change(self, changes: ChangeBatch) -> None:
        for key, value in changes:
            if value is None:
                self._values.pop(key, None)
            else:
                self._values[key] = value
        self._deliver(changes, False)

    def _deliver(self, changes: ChangeBatch, initial: bool) -> None:
        if not changes and not initial:
            return
        try:
            self._apply(changes, initial)
        except Exception:
            log.exception("applying KV changes failed", extra={"bucket": self._name})
