"""The call journal API: ``GET /v1/t/{tenant}/calls`` (search) and ``…/calls/{call_id}`` (one).

Like every tenant route: authenticate and spend one unit of the tenant's rate (403 for a token of
another tenant), check ``calls.read``, then the tenant's state (404 unknown or deleted). Pages
follow the platform's cursor convention: ``limit`` and ``after`` (the ``next`` of the previous
page). Bad parameters answer 422 problem+json naming ``query.<parameter>``.
"""

# No ``from __future__ import annotations``: FastAPI evaluates the routes' Annotated aliases.
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel

from callmesh.core.auth import require_permission
from callmesh.core.errors import InvalidInput, NotFound
from callmesh.core.http import PROBLEM_JSON, Problem
from callmesh.core.permissions import Permission
from callmesh.core.ratelimit import rate_limit
from callmesh.core.tenancy import tenant_writable
from callmesh.cti.adapters.journal_bus import MAX_CALL_ID
from callmesh.cti.adapters.journal_store import MAX_PAGE, CallQuery, MongoCallJournal
from callmesh.cti.domain.journal import Outcome

T = TypeVar("T")

_PROBLEM: dict[str, Any] = {
    "model": Problem,
    "description": "a problem (problem+json): what went wrong, with its code",
    "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}
ERRORS: dict[int | str, dict[str, Any]] = {"4XX": _PROBLEM, 503: _PROBLEM}

OutcomeName = Literal[
    "in_progress", "answered", "abandoned", "abandoned_ivr", "abandoned_queue", "ivr_completed",
    "no_answer", "busy", "failed", "transferred", "voicemail", "blocked",
]  # fmt: skip
assert set(OutcomeName.__args__) == {o.value for o in Outcome}  # type: ignore[attr-defined]
Direction = Literal["inbound", "outbound", "internal"]


# ---------------------------------------------------------------------------------------------
# Schemas


class PageOut(BaseModel, Generic[T]):
    """A page of results; pass ``next`` back as ``after`` for the following page."""

    items: list[T]
    next: str | None = None


class PartyOut(BaseModel):
    """One end of the call as the switch saw it."""

    number: str
    name: str


class HangupOut(BaseModel):
    """The first hang-up: which leg, why (FreeSWITCH cause and Q.850 code) and which side."""

    at: datetime
    channel_uuid: str
    cause: str
    q850: int
    side: str


class CallSummaryOut(BaseModel):
    """A call as a search lists it."""

    call_id: str
    started_at: datetime
    direction: str
    caller: PartyOut
    callee: PartyOut
    dialled: str
    answered_at: datetime | None
    agent_answered_at: datetime | None
    ended_at: datetime | None
    outcome: OutcomeName
    hangup: HangupOut | None
    answered_by: str
    agent_ids: list[str]
    queue_ids: list[str]
    recording_ids: list[str]
    duration_ms: int
    queue_wait_ms: int
    talk_ms: int
    event_count: int


class LegOut(BaseModel):
    """One channel of the call."""

    uuid: str
    role: str
    direction: str
    endpoint: str
    caller_number: str
    callee_number: str
    created_at: datetime | None
    ringing_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    cause: str
    q850: int
    side: str
    duration_ms: int
    billsec_ms: int


class IvrVisitOut(BaseModel):
    """A stay in one IVR flow."""

    flow_id: str
    flow_version: int
    entered_at: datetime | None
    left_at: datetime | None
    outcome: str
    detail: str
    last_node_id: str


class QueueVisitOut(BaseModel):
    """A stay in one queue."""

    queue_id: str
    entered_at: datetime | None
    left_at: datetime | None
    reason: str
    wait_ms: int
    agent_id: str
    priority: int
    overflow_target: str
    overflow_target_id: str


class OfferOut(BaseModel):
    """The call offered to an agent."""

    agent_id: str
    queue_id: str
    attempt: int
    offered_at: datetime | None
    result: Literal["pending", "answered", "no_answer"]
    result_at: datetime | None
    reason: str
    ring_ms: int


class TransferOut(BaseModel):
    """A transfer of one leg."""

    at: datetime
    channel_uuid: str
    kind: str
    destination: str
    target_kind: str
    target_id: str


class BridgeOut(BaseModel):
    """Two legs joined."""

    a_uuid: str
    b_uuid: str
    bridged_at: datetime | None
    unbridged_at: datetime | None


class HoldOut(BaseModel):
    """A leg on hold."""

    channel_uuid: str
    held_at: datetime | None
    unheld_at: datetime | None


class RecordingOut(BaseModel):
    """A recording of the call."""

    recording_id: str
    channel_uuid: str
    path: str
    media_id: str
    started_at: datetime | None
    stopped_at: datetime | None
    duration_ms: int


class TimelineEntryOut(BaseModel):
    """One event of the call."""

    at: datetime
    kind: str
    event_id: str
    data: dict[str, Any]


class CallOut(CallSummaryOut):
    """One call with its legs, IVR and queue stays, offers, transfers, holds and timeline."""

    created_at: datetime | None
    bridged_at: datetime | None
    numbers: list[str]
    legs: list[LegOut]
    ivr: list[IvrVisitOut]
    queues: list[QueueVisitOut]
    offers: list[OfferOut]
    transfers: list[TransferOut]
    bridges: list[BridgeOut]
    holds: list[HoldOut]
    recordings: list[RecordingOut]
    data: dict[str, str]
    timeline: list[TimelineEntryOut]


# ---------------------------------------------------------------------------------------------
# Helpers


@contextmanager
def _from(part: str) -> Iterator[None]:
    """Name rule errors after where the input came from (``query.after``)."""
    try:
        yield
    except InvalidInput as err:
        raise InvalidInput(f"{part}.{err.field}", err.rule, f"{part}.{err.message}") from None


def _utc(name: str, value: datetime | None) -> datetime | None:
    """A query time in UTC (a time without an offset is taken as UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise InvalidInput(f"query.{name}", "must be a time between years 1 and 9999") from None


def _text(name: str, value: str | None) -> str | None:
    if value is not None and not value.isprintable():
        raise InvalidInput(f"query.{name}", "must be printable text")
    return value


def journal_of(request: Request) -> MongoCallJournal:
    """The journal on the service's store."""
    return MongoCallJournal(request.app.state.runtime.store)


# ---------------------------------------------------------------------------------------------
# Routers


def routers() -> list[APIRouter]:
    """The call journal's routers."""
    guard = [
        Depends(rate_limit()),
        Depends(require_permission(Permission.CALLS_READ)),
        Depends(tenant_writable),
    ]
    Journal_ = Annotated[MongoCallJournal, Depends(journal_of)]
    Text = Annotated[str | None, Query(min_length=1, max_length=64)]
    calls = APIRouter(prefix="/v1/t/{tenant}/calls", tags=["tenant: calls"], responses=ERRORS)

    @calls.get("", dependencies=guard)
    async def search_calls(
        tenant: str,
        journal: Journal_,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="page size")] = 50,
        after: Annotated[
            str | None,
            Query(max_length=256, description="cursor: the `next` of the previous page"),
        ] = None,
        from_: Annotated[
            datetime | None,
            Query(alias="from", description="calls started at or after (ISO 8601; UTC if bare)"),
        ] = None,
        to: Annotated[
            datetime | None, Query(description="calls started before (ISO 8601; UTC if bare)")
        ] = None,
        number: Annotated[
            str | None, Query(min_length=1, max_length=64, description="any number of the call")
        ] = None,
        caller: Text = None,
        callee: Text = None,
        agent: Annotated[
            str | None, Query(min_length=1, max_length=64, description="an agent offered it")
        ] = None,
        queue: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        outcome: OutcomeName | None = None,
        direction: Direction | None = None,
    ) -> PageOut[CallSummaryOut]:
        """Search the tenant's calls (``calls.read``), newest first."""
        query = CallQuery(
            since=_utc("from", from_),
            until=_utc("to", to),
            number=_text("number", number),
            caller=_text("caller", caller),
            callee=_text("callee", callee),
            agent=_text("agent", agent),
            queue=_text("queue", queue),
            outcome=Outcome(outcome) if outcome else None,
            direction=direction,
            limit=limit,
            after=after,
        )
        with _from("query"):
            page = await journal.search(tenant, query)
        return PageOut(
            items=[CallSummaryOut.model_validate(asdict(s)) for s in page.items], next=page.next
        )

    @calls.get("/{call_id}", dependencies=guard)
    async def get_call(
        tenant: str,
        journal: Journal_,
        call_id: Annotated[str, Path(min_length=1, max_length=MAX_CALL_ID)],
    ) -> CallOut:
        """One call (``calls.read``) with its legs, stays, offers and timeline."""
        record = await journal.get(tenant, call_id) if call_id.isprintable() else None
        if record is None:
            raise NotFound(f"no call {call_id}")
        return CallOut.model_validate(asdict(record))

    return [calls]
