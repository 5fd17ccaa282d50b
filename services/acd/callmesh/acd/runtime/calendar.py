"""Business calendars for the engine's synchronous ``CalendarCheck``, asked of admin in the
background (``cm.<tenant>.admin.calendar_state``) and cached until the state's next change.

Until admin's first answer about a calendar arrives the queue counts as **open** (a call is never
turned away because admin was slow or down); the partition warms the cache for every queue's
calendar before it takes requests, so in practice the first call already sees the real state.
An expired entry keeps answering its last state while a refresh runs; a calendar admin does not
know (or another tenant's) counts as open and is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from callmesh.core.bus import Bus
from callmesh.core.errors import DomainError
from callmesh.proto.subjects import AdminOp, Service
from callmesh.proto.v1.admin_pb2 import CalendarStateReply, CalendarStateRequest

log = logging.getLogger(__name__)

# How long an answer without a next change (or a failed look-up) is trusted.
_DEFAULT_TTL_S = 300.0
_RETRY_S = 10.0


@dataclass
class _Entry:
    open: bool
    until: float


class CalendarCache:
    """One tenant's calendar states, refreshed from admin."""

    def __init__(self, bus: Bus, tenant_id: str, *, timeout_s: float = 2.0) -> None:
        self._bus = bus
        self._subject = bus.subjects.service_command(
            tenant_id, Service.ADMIN, AdminOp.CALENDAR_STATE
        )
        self._timeout_s = timeout_s
        self._entries: dict[str, _Entry] = {}
        self._asking: dict[str, asyncio.Task[None]] = {}
        self.tenant_id = tenant_id

    def check(self, calendar_id: str, now: float) -> bool:
        """Open at ``now``? (the engine's CalendarCheck; never blocks)."""
        entry = self._entries.get(calendar_id)
        if entry is None or now >= entry.until:
            self._ask(calendar_id)
        return True if entry is None else entry.open

    async def warm(self, calendar_ids: Iterable[str]) -> None:
        """Ask about every calendar now and wait (bounded by the timeout) for the answers."""
        tasks = [self._ask(cid) for cid in set(calendar_ids) if cid]
        if tasks:
            await asyncio.wait(tasks, timeout=self._timeout_s + 0.5)

    async def close(self) -> None:
        """Stop every look-up still running."""
        tasks = list(self._asking.values())
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)

    def _ask(self, calendar_id: str) -> asyncio.Task[None]:
        task = self._asking.get(calendar_id)
        if task is None:
            task = asyncio.create_task(self._fetch(calendar_id), name=f"calendar:{calendar_id}")
            self._asking[calendar_id] = task
            task.add_done_callback(lambda _t: self._asking.pop(calendar_id, None))
        return task

    async def _fetch(self, calendar_id: str) -> None:
        now = time.time()
        try:
            reply = await self._bus.request(
                self._subject,
                CalendarStateRequest(calendar_id=calendar_id),
                CalendarStateReply,
                timeout=self._timeout_s,
            )
        except DomainError as err:
            log.warning(
                "calendar state not known, the queue counts as open: %s",
                err.message,
                extra={"tenant_id": self.tenant_id, "calendar_id": calendar_id},
            )
            known = self._entries.get(calendar_id)
            self._entries[calendar_id] = _Entry(known.open if known else True, now + _RETRY_S)
            return
        if not reply.found:
            log.warning(
                "calendar not found, the queue counts as open",
                extra={"tenant_id": self.tenant_id, "calendar_id": calendar_id},
            )
            self._entries[calendar_id] = _Entry(True, now + _DEFAULT_TTL_S)
            return
        until = now + _DEFAULT_TTL_S
        if reply.HasField("next_change"):
            until = min(until, max(now + 1.0, event_time_of(reply)))
        self._entries[calendar_id] = _Entry(reply.open, until)


def event_time_of(reply: CalendarStateReply) -> float:
    """The reply's next change as a UNIX time."""
    ts = reply.next_change
    return ts.seconds + ts.nanos / 1e9
