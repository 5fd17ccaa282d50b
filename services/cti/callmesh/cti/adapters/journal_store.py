"""The call journal in MongoDB: each call's events in ``call_events``, its record in ``calls``.

FerretDB 1.24 has no atomic compare-and-set: an update or replace filtered on a version matches
for several concurrent writers (measured: 8 writers, 28 of 30 rounds had more than one "winner"),
and ``$inc`` loses increments. What it does keep atomic is a unique index. So the journal writes:

1. the event, as one document under the unique (tenant_id, call_id, event_id) index of
   ``call_events``: a redelivered event is refused by the index and changes nothing, and no
   event is ever lost to a race;
2. the record, folded by the domain from every stored event of the call, over the call's one
   document in ``calls`` (unique (tenant_id, call_id); upserted, never with a client ``_id``)
   unless that document was folded from as many events or more (so a slow writer does not take
   it back, and a record is not rewritten with itself: a call's events only grow, so a fold of
   as many is the same fold, and on FerretDB a rewrite lets a concurrent search miss the call);
3. then it counts the call's events again: if there are more than it folded, a racing writer's
   event may be missing from what it just wrote, so it folds and writes again.

Whichever write lands last, its writer checked afterwards that it held every event stored by
then, so the record converges to the fold of all the call's events; events stored later have
writers of their own that write later. Same on MongoDB, no transactions.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pymongo.errors import DuplicateKeyError

from callmesh.core.errors import InvalidInput
from callmesh.core.store import CollectionSpec, IndexSpec, Store, TenantCollection
from callmesh.cti.domain.journal import (
    MAX_FACTS,
    SUMMARY_FIELDS,
    CallFacts,
    CallRecord,
    CallSummary,
    Fact,
    FactKind,
    Hangup,
    JournalFull,
    Outcome,
    Party,
    build_record,
)

COLLECTION = "calls"
EVENTS = "call_events"
# Bumped when the stored record's shape changes (documents of an older schema are refolded).
SCHEMA = 1
MAX_PAGE = 500
# Writers racing on one call retry this often before the event goes back to the bus.
MAX_ATTEMPTS = 25


def _by_time(field: str, name: str) -> IndexSpec:
    return IndexSpec((("tenant_id", 1), (field, 1), ("started_at", -1)), name=name)


COLLECTIONS = (
    CollectionSpec(
        COLLECTION,
        (
            IndexSpec((("tenant_id", 1), ("call_id", 1)), unique=True, name="tenant_call"),
            IndexSpec(
                (("tenant_id", 1), ("started_at", -1), ("call_id", -1)), name="tenant_started"
            ),
            _by_time("numbers", "tenant_numbers"),
            _by_time("agent_ids", "tenant_agents"),
            _by_time("queue_ids", "tenant_queues"),
            _by_time("outcome", "tenant_outcome"),
        ),
    ),
    CollectionSpec(
        EVENTS,
        (
            IndexSpec(
                (("tenant_id", 1), ("call_id", 1), ("id", 1)), unique=True, name="tenant_event"
            ),
        ),
    ),
)


class Applied(StrEnum):
    """What adding one event did to the journal."""

    ADDED = "added"
    DUPLICATE = "duplicate"


class JournalContention(RuntimeError):
    """Too many writers raced on one call; the event is handed back to the bus to try later."""


@dataclass(frozen=True)
class CallQuery:
    """A search of the journal; every filter is optional, ``after`` is a page cursor."""

    since: datetime | None = None
    until: datetime | None = None
    number: str | None = None
    caller: str | None = None
    callee: str | None = None
    agent: str | None = None
    queue: str | None = None
    outcome: Outcome | None = None
    direction: str | None = None
    limit: int = 50
    after: str | None = None


@dataclass(frozen=True)
class CallPage:
    """One page of calls, newest first, and the cursor of the next (None at the end)."""

    items: list[CallSummary]
    next: str | None = None


# ---------------------------------------------------------------------------------------------
# Documents


def _pairs(value: Mapping[str, Any]) -> list[dict[str, str]]:
    # Maps are stored as pairs: IVR variable names may hold '.' or '$', which field names may not.
    return [{"k": str(k), "v": str(v)} for k, v in value.items()]


def _unpairs(value: Any) -> dict[str, str]:
    if isinstance(value, list):
        return {str(p.get("k", "")): str(p.get("v", "")) for p in value if isinstance(p, dict)}
    return {}


def fact_doc(fact: Fact) -> dict[str, Any]:
    """A fact as stored (a map value becomes ``{"pairs": [{"k": …, "v": …}, …]}``)."""
    data = {
        name: {"pairs": _pairs(value)} if isinstance(value, Mapping) else value
        for name, value in fact.data.items()
    }
    return {"id": fact.event_id, "at": fact.at, "kind": fact.kind.value, "data": data}


def fact_of_doc(doc: Mapping[str, Any]) -> Fact | None:
    """A stored fact (None for a kind this code does not know)."""
    try:
        kind = FactKind(doc["kind"])
    except ValueError:
        return None
    data: dict[str, Any] = {}
    for name, value in (doc.get("data") or {}).items():
        data[name] = _unpairs(value["pairs"]) if isinstance(value, dict) else value
    return Fact(str(doc["id"]), _aware(doc["at"]), kind, data)


def _record_doc(record: CallRecord) -> dict[str, Any]:
    fields = asdict(record)
    fields.pop("timeline")
    fields["data"] = _pairs(record.data)
    return {**fields, "schema": SCHEMA}


def _aware(value: Any) -> Any:
    # MongoDB keeps UTC; a client without tz_aware hands it back naive.
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def summary_of_doc(doc: Mapping[str, Any]) -> CallSummary:
    """The summary fields of a stored record."""
    values = {name: _aware(doc[name]) for name in SUMMARY_FIELDS if name in doc}
    values["caller"] = Party(**doc.get("caller") or {})
    values["callee"] = Party(**doc.get("callee") or {})
    hangup = doc.get("hangup")
    values["hangup"] = Hangup(**{k: _aware(v) for k, v in hangup.items()}) if hangup else None
    return CallSummary(**values)


# ---------------------------------------------------------------------------------------------
# Cursors


def _cursor(summary: CallSummary) -> str:
    millis = int(summary.started_at.timestamp() * 1000)
    raw = json.dumps([millis, summary.call_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(cursor: str) -> tuple[datetime, str]:
    refusal = InvalidInput("after", "must be the `next` of a previous page")
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error) as err:
        raise refusal from err
    match parts:
        case [int(millis), str(call_id)] if 0 <= millis < 253_402_300_799_000:
            return datetime.fromtimestamp(millis / 1000, UTC), call_id
    raise refusal


def search_filter(query: CallQuery) -> dict[str, Any]:
    """The MongoDB filter of a search (within the tenant: the wall adds the tenant)."""
    flt: dict[str, Any] = {}
    if query.since is not None or query.until is not None:
        flt["started_at"] = {
            **({"$gte": query.since} if query.since is not None else {}),
            **({"$lt": query.until} if query.until is not None else {}),
        }
    wanted = [n for n in (query.number, query.caller, query.callee) if n]
    if wanted:
        # Every searched number is in ``numbers`` (indexed); caller/callee then narrow the side.
        unique = sorted(set(wanted))
        flt["numbers"] = unique[0] if len(unique) == 1 else {"$all": unique}
    if query.caller:
        flt["caller.number"] = query.caller
    if query.callee:
        flt["callee.number"] = query.callee
    if query.agent:
        flt["agent_ids"] = query.agent
    if query.queue:
        flt["queue_ids"] = query.queue
    if query.outcome is not None:
        flt["outcome"] = query.outcome.value
    if query.direction:
        flt["direction"] = query.direction
    if query.after:
        started, call_id = _after(query.after)
        flt["$or"] = [
            {"started_at": {"$lt": started}},
            {"started_at": started, "call_id": {"$lt": call_id}},
        ]
    return flt


def check_query(query: CallQuery) -> CallQuery:
    """Refuse a search that cannot be answered, naming the parameter."""
    if not 1 <= query.limit <= MAX_PAGE:
        raise InvalidInput("limit", f"must be between 1 and {MAX_PAGE}")
    if query.since is not None and query.until is not None and query.since >= query.until:
        raise InvalidInput("from", "must be before `to`")
    return query


# ---------------------------------------------------------------------------------------------
# The journal


class MongoCallJournal:
    """The call journal on each tenant's database (reached through the tenant wall)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def _cols(self, tenant_id: str) -> tuple[TenantCollection, TenantCollection]:
        tenant = await self._store.tenant(tenant_id)
        return tenant.collection(COLLECTION), tenant.collection(EVENTS)

    async def apply(self, tenant_id: str, call_id: str, fact: Fact) -> Applied:
        """Add one event to its call and fold the call's record again (see the module doc)."""
        calls, events = await self._cols(tenant_id)
        facts = await self._facts(events, call_id)
        if fact.event_id in facts:
            # Folded again all the same: the writer that stored it may have died before folding.
            applied = Applied.DUPLICATE
        else:
            if len(facts) >= MAX_FACTS:
                raise JournalFull(f"call {call_id} already holds {MAX_FACTS} events", max=MAX_FACTS)
            try:
                await events.insert_one({"call_id": call_id, **fact_doc(fact)})
                applied = Applied.ADDED
                facts.add(fact)
            except DuplicateKeyError:
                applied = Applied.DUPLICATE  # the same event, stored by a racing redelivery
                facts = await self._facts(events, call_id)
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                # Writers of one call collide in bursts (both legs hang up at once): spread out.
                await asyncio.sleep(random.uniform(0, 0.002 * min(attempt, 10)))
                facts = await self._facts(events, call_id)
            record = build_record(tenant_id, call_id, facts)
            stored = await calls.find_one({"call_id": call_id}, projection={"event_count": 1})
            if stored is None or int(stored.get("event_count") or 0) < len(facts):
                # Never over a record folded from as many events or more: a slow writer does not
                # take the record back (atomic on MongoDB, a much narrower window on FerretDB),
                # and a fold is not written again over itself (a call's events only grow, so a
                # fold of as many is the same fold). The read above spares the write in the
                # common case: on FerretDB a write, even one that matches nothing, can hide the
                # document from a concurrent search. A duplicate key says such a record is
                # there, or two first writers raced: either way, count again.
                with contextlib.suppress(DuplicateKeyError):
                    await calls.replace_one(
                        {"call_id": call_id, "event_count": {"$lt": len(facts)}},
                        _record_doc(record),
                        upsert=True,
                    )
            if await events.count_documents({"call_id": call_id}) <= len(facts):
                return applied
        raise JournalContention(f"call {call_id}: {MAX_ATTEMPTS} writers raced; try again later")

    @staticmethod
    async def _facts(events: TenantCollection, call_id: str) -> CallFacts:
        docs = await events.find_list(
            {"call_id": call_id}, sort=[("at", 1), ("id", 1)], limit=MAX_FACTS
        )
        return CallFacts(f for f in map(fact_of_doc, docs) if f is not None)

    async def get(self, tenant_id: str, call_id: str) -> CallRecord | None:
        """One call's record, folded from its events (None if the tenant has no such call)."""
        _, events = await self._cols(tenant_id)
        facts = await self._facts(events, call_id)
        if not len(facts):
            return None
        return build_record(tenant_id, call_id, facts)

    async def search(self, tenant_id: str, query: CallQuery) -> CallPage:
        """A page of the tenant's calls matching ``query``, newest first."""
        query = check_query(query)
        calls, _ = await self._cols(tenant_id)
        docs = await calls.find_list(
            search_filter(query),
            projection=dict.fromkeys(SUMMARY_FIELDS, 1),
            sort=[("started_at", -1), ("call_id", -1)],
            limit=query.limit + 1,
        )
        items = [summary_of_doc(d) for d in docs[: query.limit]]
        more = len(docs) > query.limit
        return CallPage(items, _cursor(items[-1]) if more and items else None)
