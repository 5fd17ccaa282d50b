"""The call journal's rules: one call record folded from the call's events, whatever their order.

Each bus event about a call becomes a ``Fact`` (its event id, time, kind and a few plain values).
A call's facts form a set keyed by event id, so a redelivered event changes nothing. The record
is a pure function of that set: ``build_record`` sorts the facts by (time, event id) and folds
them with first-wins rules (the earliest answer, the earliest hang-up of each leg …), so any
arrival order of the same events yields the same record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from callmesh.core.errors import DomainError

# A call's facts are kept whole so the record can always be folded again; past this many the
# journal refuses more (a runaway producer must not grow one document without bound).
MAX_FACTS = 2000


class FactKind(StrEnum):
    """The events the journal folds, named ``<domain>.<event>`` like the bus's metric labels."""

    CALL_CREATED = "call.created"
    CALL_RINGING = "call.ringing"
    CALL_ANSWERED = "call.answered"
    CALL_BRIDGED = "call.bridged"
    CALL_UNBRIDGED = "call.unbridged"
    CALL_HELD = "call.held"
    CALL_UNHELD = "call.unheld"
    CALL_TRANSFERRED = "call.transferred"
    RECORDING_STARTED = "call.recording_started"
    RECORDING_STOPPED = "call.recording_stopped"
    CALL_HUNG_UP = "call.hung_up"
    AGENT_OFFERED = "agent.offered"
    AGENT_ANSWERED = "agent.answered"
    AGENT_NO_ANSWER = "agent.no_answer"
    QUEUE_ENTERED = "queue.entered"
    QUEUE_LEFT = "queue.left"
    QUEUE_OVERFLOWED = "queue.overflowed"
    IVR_NODE_ENTERED = "ivr.node_entered"
    IVR_INPUT_RECEIVED = "ivr.input_received"
    IVR_VARIABLE_SET = "ivr.variable_set"
    IVR_FLOW_LEFT = "ivr.flow_left"


class Outcome(StrEnum):
    """How a call ended, from the caller's point of view (``in_progress`` until it has)."""

    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    ABANDONED_IVR = "abandoned_ivr"
    ABANDONED_QUEUE = "abandoned_queue"
    IVR_COMPLETED = "ivr_completed"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    TRANSFERRED = "transferred"
    VOICEMAIL = "voicemail"
    BLOCKED = "blocked"


class JournalFull(DomainError):
    """A call already holds ``MAX_FACTS`` events; more are refused (and counted by the caller)."""

    code = "journal_full"
    status = 409


_BUSY = frozenset({"USER_BUSY"})
_NO_ANSWER = frozenset(
    {
        "NO_ANSWER",
        "NO_USER_RESPONSE",
        "ALLOTTED_TIMEOUT",
        "PROGRESS_TIMEOUT",
        "RECOVERY_ON_TIMER_EXPIRE",
    }
)
_CANCELLED = frozenset({"ORIGINATOR_CANCEL", "LOSE_RACE"})


@dataclass(frozen=True)
class Fact:
    """One event of a call as the journal keeps it: plain values only (str, int, bool, dicts)."""

    event_id: str
    at: datetime
    kind: FactKind
    data: Mapping[str, Any] = field(default_factory=dict)

    def text(self, name: str) -> str:
        """A text value ('' when absent)."""
        value = self.data.get(name, "")
        return value if isinstance(value, str) else str(value)

    def number(self, name: str) -> int:
        """An integer value (0 when absent)."""
        value = self.data.get(name, 0)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    def mapping(self, name: str) -> dict[str, str]:
        """A string-to-string map value (empty when absent)."""
        value = self.data.get(name)
        if not isinstance(value, Mapping):
            return {}
        return {str(k): str(v) for k, v in value.items()}


def _canonical(fact: Fact) -> tuple[datetime, str, str]:
    return fact.at, fact.kind.value, json.dumps(fact.data, sort_keys=True, default=str)


class CallFacts:
    """The set of a call's facts, keyed by event id: adding one twice changes nothing."""

    def __init__(self, facts: Iterable[Fact] = ()) -> None:
        self._by_id: dict[str, Fact] = {}
        for fact in facts:
            self.add(fact)

    def add(self, fact: Fact) -> bool:
        """Add a fact; True when the set changed, False for an event already held."""
        held = self._by_id.get(fact.event_id)
        if held is not None:
            # Two different events with one id (a producer bug): keep the same one whatever the
            # order they came in, so the record stays a function of what was received.
            if _canonical(fact) < _canonical(held):
                self._by_id[fact.event_id] = fact
                return True
            return False
        if len(self._by_id) >= MAX_FACTS:
            raise JournalFull(
                f"the call already holds {MAX_FACTS} events; event {fact.event_id} refused",
                max_facts=MAX_FACTS,
            )
        self._by_id[fact.event_id] = fact
        return True

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Fact]:
        return iter(self.ordered())

    def ordered(self) -> list[Fact]:
        """The facts in the order the fold reads them: time, then event id."""
        return sorted(self._by_id.values(), key=lambda f: (f.at, f.event_id))


# ---------------------------------------------------------------------------------------------
# The record


@dataclass
class Party:
    """One end of the call as the switch saw it."""

    number: str = ""
    name: str = ""


@dataclass
class Leg:
    """One channel of the call."""

    uuid: str
    role: str = ""
    direction: str = ""
    endpoint: str = ""
    caller_number: str = ""
    callee_number: str = ""
    created_at: datetime | None = None
    ringing_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    cause: str = ""
    q850: int = 0
    side: str = ""
    duration_ms: int = 0
    billsec_ms: int = 0


@dataclass
class IvrVisit:
    """A stay in one IVR flow."""

    flow_id: str
    flow_version: int = 0
    entered_at: datetime | None = None
    left_at: datetime | None = None
    outcome: str = ""
    detail: str = ""
    last_node_id: str = ""


@dataclass
class QueueVisit:
    """A stay in one queue."""

    queue_id: str
    entered_at: datetime | None = None
    left_at: datetime | None = None
    reason: str = ""
    wait_ms: int = 0
    agent_id: str = ""
    priority: int = 0
    overflow_target: str = ""
    overflow_target_id: str = ""
    left_seen: bool = False


@dataclass
class Offer:
    """The call offered to one agent: answered, not answered, or still ringing."""

    agent_id: str
    queue_id: str = ""
    attempt: int = 0
    offered_at: datetime | None = None
    result: str = "pending"
    result_at: datetime | None = None
    reason: str = ""
    ring_ms: int = 0


@dataclass
class Transfer:
    """A transfer of one of the call's legs."""

    at: datetime
    channel_uuid: str
    kind: str = ""
    destination: str = ""
    target_kind: str = ""
    target_id: str = ""


@dataclass
class Bridge:
    """Two legs joined, until unbridged."""

    a_uuid: str
    b_uuid: str
    bridged_at: datetime | None = None
    unbridged_at: datetime | None = None


@dataclass
class Hold:
    """A leg on hold, until taken off."""

    channel_uuid: str
    held_at: datetime | None = None
    unheld_at: datetime | None = None


@dataclass
class Recording:
    """A recording of the call."""

    recording_id: str
    channel_uuid: str = ""
    path: str = ""
    media_id: str = ""
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    duration_ms: int = 0


@dataclass
class Hangup:
    """The first hang-up of the call: who ended it and why."""

    at: datetime
    channel_uuid: str
    cause: str = ""
    q850: int = 0
    side: str = ""


@dataclass
class TimelineEntry:
    """One event of the call, in order."""

    at: datetime
    kind: str
    event_id: str
    data: dict[str, Any]


@dataclass
class CallRecord:
    """Everything the journal knows about one call."""

    tenant_id: str
    call_id: str
    started_at: datetime
    direction: str = ""
    caller: Party = field(default_factory=Party)
    callee: Party = field(default_factory=Party)
    dialled: str = ""
    created_at: datetime | None = None
    answered_at: datetime | None = None
    agent_answered_at: datetime | None = None
    bridged_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: str = Outcome.IN_PROGRESS.value
    hangup: Hangup | None = None
    answered_by: str = ""
    agent_ids: list[str] = field(default_factory=list)
    queue_ids: list[str] = field(default_factory=list)
    recording_ids: list[str] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    duration_ms: int = 0
    queue_wait_ms: int = 0
    talk_ms: int = 0
    legs: list[Leg] = field(default_factory=list)
    ivr: list[IvrVisit] = field(default_factory=list)
    queues: list[QueueVisit] = field(default_factory=list)
    offers: list[Offer] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    bridges: list[Bridge] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    recordings: list[Recording] = field(default_factory=list)
    data: dict[str, str] = field(default_factory=dict)
    event_count: int = 0
    timeline: list[TimelineEntry] = field(default_factory=list)


@dataclass
class CallSummary:
    """What a search lists of each call (the record without its legs, stays and timeline)."""

    call_id: str
    started_at: datetime
    direction: str = ""
    caller: Party = field(default_factory=Party)
    callee: Party = field(default_factory=Party)
    dialled: str = ""
    answered_at: datetime | None = None
    agent_answered_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: str = Outcome.IN_PROGRESS.value
    hangup: Hangup | None = None
    answered_by: str = ""
    agent_ids: list[str] = field(default_factory=list)
    queue_ids: list[str] = field(default_factory=list)
    recording_ids: list[str] = field(default_factory=list)
    duration_ms: int = 0
    queue_wait_ms: int = 0
    talk_ms: int = 0
    event_count: int = 0


SUMMARY_FIELDS = tuple(CallSummary.__dataclass_fields__)


# ---------------------------------------------------------------------------------------------
# The fold


def _ms(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds() * 1000))


class _Fold:
    """Reads ordered facts once; every rule below is 'the first (earliest) fact wins'."""

    def __init__(self, tenant_id: str, call_id: str) -> None:
        self.tenant_id = tenant_id
        self.call_id = call_id
        self.legs: dict[str, Leg] = {}
        self.created: list[tuple[Fact, Leg]] = []
        self.ivr: list[IvrVisit] = []
        self.queues: list[QueueVisit] = []
        self.offers: list[Offer] = []
        self.transfers: list[Transfer] = []
        self.bridges: list[Bridge] = []
        self.holds: list[Hold] = []
        self.recordings: dict[str, Recording] = {}
        self.hangups: list[Hangup] = []
        self.agent_answers: list[tuple[datetime, str]] = []
        self.data: dict[str, str] = {}

    def leg(self, uuid: str) -> Leg:
        leg = self.legs.get(uuid)
        if leg is None:
            leg = self.legs[uuid] = Leg(uuid=uuid)
        return leg

    # -- per kind ---------------------------------------------------------------------------

    def apply(self, fact: Fact) -> None:
        handler = getattr(self, "_" + fact.kind.value.replace(".", "_"), None)
        if handler is not None:
            handler(fact)

    def _call_created(self, f: Fact) -> None:
        leg = self.leg(f.text("channel_uuid"))
        if leg.created_at is not None:
            return
        leg.created_at = f.at
        leg.role = f.text("role")
        leg.direction = f.text("direction")
        leg.caller_number = f.text("caller_number")
        leg.callee_number = f.text("callee_number") or f.text("destination_number")
        leg.endpoint = f.text("endpoint") or f.text("destination_number")
        self.created.append((f, leg))

    def _call_ringing(self, f: Fact) -> None:
        leg = self.leg(f.text("channel_uuid"))
        if leg.ringing_at is None:
            leg.ringing_at = f.at

    def _call_answered(self, f: Fact) -> None:
        leg = self.leg(f.text("channel_uuid"))
        if leg.answered_at is None:
            leg.answered_at = f.at
            if not leg.role:
                leg.role = f.text("role")

    def _call_bridged(self, f: Fact) -> None:
        a, b = f.text("a_channel_uuid"), f.text("b_channel_uuid")
        if not any(
            x.a_uuid == a and x.b_uuid == b and x.unbridged_at is None for x in self.bridges
        ):
            self.bridges.append(Bridge(a, b, bridged_at=f.at))

    def _call_unbridged(self, f: Fact) -> None:
        a, b = f.text("a_channel_uuid"), f.text("b_channel_uuid")
        for bridge in self.bridges:
            if bridge.a_uuid == a and bridge.b_uuid == b and bridge.unbridged_at is None:
                bridge.unbridged_at = f.at
                return
        self.bridges.append(Bridge(a, b, unbridged_at=f.at))

    def _call_held(self, f: Fact) -> None:
        uuid = f.text("channel_uuid")
        if not any(h.channel_uuid == uuid and h.unheld_at is None for h in self.holds):
            self.holds.append(Hold(uuid, held_at=f.at))

    def _call_unheld(self, f: Fact) -> None:
        uuid = f.text("channel_uuid")
        for hold in self.holds:
            if hold.channel_uuid == uuid and hold.unheld_at is None:
                hold.unheld_at = f.at
                return
        self.holds.append(Hold(uuid, unheld_at=f.at))

    def _call_transferred(self, f: Fact) -> None:
        self.transfers.append(
            Transfer(
                at=f.at,
                channel_uuid=f.text("channel_uuid"),
                kind=f.text("kind"),
                destination=f.text("destination"),
                target_kind=f.text("target_kind"),
                target_id=f.text("target_id"),
            )
        )

    def _recording(self, f: Fact) -> Recording:
        rid = f.text("recording_id")
        rec = self.recordings.get(rid)
        if rec is None:
            rec = self.recordings[rid] = Recording(rid)
        rec.channel_uuid = rec.channel_uuid or f.text("channel_uuid")
        rec.path = rec.path or f.text("path")
        return rec

    def _call_recording_started(self, f: Fact) -> None:
        rec = self._recording(f)
        if rec.started_at is None:
            rec.started_at = f.at

    def _call_recording_stopped(self, f: Fact) -> None:
        rec = self._recording(f)
        if rec.stopped_at is None:
            rec.stopped_at = f.at
            rec.media_id = f.text("media_id")
            rec.duration_ms = f.number("duration_ms")

    def _call_hung_up(self, f: Fact) -> None:
        uuid = f.text("channel_uuid")
        leg = self.leg(uuid)
        if leg.ended_at is not None:
            return
        leg.ended_at = f.at
        leg.cause = f.text("cause")
        leg.q850 = f.number("q850_code")
        leg.side = f.text("side")
        leg.duration_ms = f.number("duration_ms")
        leg.billsec_ms = f.number("billsec_ms")
        if not leg.role:
            leg.role = f.text("role")
        self.hangups.append(Hangup(f.at, uuid, leg.cause, leg.q850, leg.side))

    def _agent_offered(self, f: Fact) -> None:
        agent, queue, attempt = f.text("agent_id"), f.text("queue_id"), f.number("attempt")
        for offer in self.offers:
            if (offer.agent_id, offer.queue_id, offer.attempt) == (agent, queue, attempt):
                return
        self.offers.append(Offer(agent, queue, attempt, offered_at=f.at))

    def _close_offer(self, f: Fact, result: str) -> None:
        agent = f.text("agent_id")
        ring_ms = f.number("ring_ms")
        for offer in reversed(self.offers):
            if offer.agent_id == agent and offer.result == "pending":
                break
        else:
            offer = Offer(
                agent, f.text("queue_id"), offered_at=f.at - timedelta(milliseconds=ring_ms)
            )
            self.offers.append(offer)
        offer.result = result
        offer.result_at = f.at
        offer.reason = f.text("reason")
        offer.ring_ms = ring_ms or (_ms(f.at - offer.offered_at) if offer.offered_at else 0)

    def _agent_answered(self, f: Fact) -> None:
        self._close_offer(f, "answered")
        self.agent_answers.append((f.at, f.text("agent_id")))

    def _agent_no_answer(self, f: Fact) -> None:
        self._close_offer(f, "no_answer")

    def _open_queue(self, queue_id: str) -> QueueVisit | None:
        for visit in reversed(self.queues):
            if visit.queue_id == queue_id and visit.left_at is None:
                return visit
        return None

    def _queue_entered(self, f: Fact) -> None:
        self.data.update(f.mapping("data"))
        queue_id = f.text("queue_id")
        if self._open_queue(queue_id) is None:
            self.queues.append(QueueVisit(queue_id, entered_at=f.at, priority=f.number("priority")))

    def _queue_left(self, f: Fact) -> None:
        queue_id = f.text("queue_id")
        visit = self._open_queue(queue_id)
        if visit is None:
            # Overflow may have closed it already: the left event completes that stay.
            for candidate in reversed(self.queues):
                if candidate.queue_id == queue_id and not candidate.left_seen:
                    visit = candidate
                    break
        if visit is None:
            wait = timedelta(milliseconds=f.number("wait_ms"))
            visit = QueueVisit(queue_id, entered_at=f.at - wait)
            self.queues.append(visit)
        if visit.left_at is None:
            visit.left_at = f.at
        visit.left_seen = True
        visit.reason = f.text("reason") or visit.reason
        visit.wait_ms = f.number("wait_ms") or visit.wait_ms
        visit.agent_id = f.text("agent_id")

    def _queue_overflowed(self, f: Fact) -> None:
        queue_id = f.text("queue_id")
        visit = self._open_queue(queue_id)
        if visit is None:
            for candidate in reversed(self.queues):
                if candidate.queue_id == queue_id and not candidate.overflow_target:
                    visit = candidate
                    break
        if visit is None:
            wait = timedelta(milliseconds=f.number("wait_ms"))
            visit = QueueVisit(queue_id, entered_at=f.at - wait)
            self.queues.append(visit)
        if visit.left_at is None:
            visit.left_at = f.at
            visit.reason = visit.reason or "overflowed"
        visit.overflow_target = f.text("target")
        visit.overflow_target_id = f.text("target_id")
        visit.wait_ms = visit.wait_ms or f.number("wait_ms")

    def _open_ivr(self, flow_id: str) -> IvrVisit | None:
        for visit in reversed(self.ivr):
            if visit.flow_id == flow_id and visit.left_at is None:
                return visit
        return None

    def _ivr_node_entered(self, f: Fact) -> None:
        flow_id = f.text("flow_id")
        visit = self._open_ivr(flow_id)
        if visit is None:
            visit = IvrVisit(flow_id, f.number("flow_version"), entered_at=f.at)
            self.ivr.append(visit)
        visit.last_node_id = f.text("node_id")

    def _ivr_input_received(self, f: Fact) -> None:
        visit = self._open_ivr(f.text("flow_id"))
        if visit is not None:
            visit.last_node_id = f.text("node_id") or visit.last_node_id

    def _ivr_variable_set(self, f: Fact) -> None:
        name = f.text("name")
        if name:
            self.data[name] = f.text("value")

    def _ivr_flow_left(self, f: Fact) -> None:
        flow_id = f.text("flow_id")
        visit = self._open_ivr(flow_id)
        if visit is None:
            entered = f.at - timedelta(milliseconds=f.number("duration_ms"))
            visit = IvrVisit(flow_id, f.number("flow_version"), entered_at=entered)
            self.ivr.append(visit)
        visit.left_at = f.at
        visit.flow_version = f.number("flow_version") or visit.flow_version
        visit.outcome = f.text("outcome")
        visit.detail = f.text("detail")
        visit.last_node_id = f.text("last_node_id") or visit.last_node_id

    # -- the record -------------------------------------------------------------------------

    def a_leg(self) -> Leg | None:
        """The customer's leg: the earliest created customer leg, else the earliest leg."""
        for _, leg in self.created:
            if leg.role == "customer":
                return leg
        if self.created:
            return self.created[0][1]
        for hangup in self.hangups:
            return self.legs[hangup.channel_uuid]
        return None

    def record(self, facts: list[Fact]) -> CallRecord:
        first = self.created[0][0] if self.created else None
        a_leg = self.a_leg()
        a_fact = next((f for f, leg in self.created if leg is a_leg), first)
        started = a_leg.created_at if a_leg and a_leg.created_at else facts[0].at
        rec = CallRecord(tenant_id=self.tenant_id, call_id=self.call_id, started_at=started)
        if a_fact is not None:
            rec.direction = a_fact.text("direction")
            rec.caller = Party(a_fact.text("caller_number"), a_fact.text("caller_name"))
            rec.callee = Party(a_fact.text("callee_number"), a_fact.text("callee_name"))
            rec.dialled = a_fact.text("destination_number")
            rec.created_at = a_fact.at
        if a_leg is not None:
            rec.answered_at = a_leg.answered_at
            if a_leg.ended_at is not None:
                rec.ended_at = max(leg.ended_at for leg in self.legs.values() if leg.ended_at)
        agent_leg_answers = sorted(
            leg.answered_at for leg in self.legs.values() if leg.role == "agent" and leg.answered_at
        )
        if self.agent_answers:
            rec.agent_answered_at, rec.answered_by = self.agent_answers[0]
        elif agent_leg_answers:
            rec.agent_answered_at = agent_leg_answers[0]
        if not rec.answered_by:
            rec.answered_by = next(
                (q.agent_id for q in self.queues if q.reason == "answered" and q.agent_id), ""
            )
        bridged = [b.bridged_at for b in self.bridges if b.bridged_at]
        rec.bridged_at = min(bridged) if bridged else None
        if self.hangups:
            # Legs torn down together hang up in the same millisecond: the customer's tells.
            a_uuid = a_leg.uuid if a_leg is not None else ""
            rec.hangup = min(self.hangups, key=lambda h: (h.at, h.channel_uuid != a_uuid))
        agents = {o.agent_id for o in self.offers} | {q.agent_id for q in self.queues}
        agents |= {agent for _, agent in self.agent_answers}
        rec.agent_ids = sorted(a for a in agents if a)
        rec.queue_ids = sorted({q.queue_id for q in self.queues if q.queue_id})
        rec.recording_ids = sorted(r for r in self.recordings if r)
        numbers = {rec.caller.number, rec.callee.number, rec.dialled}
        for leg in self.legs.values():
            numbers |= {leg.caller_number, leg.callee_number}
        rec.numbers = sorted(n for n in numbers if n)
        rec.legs = sorted(
            self.legs.values(), key=lambda leg: (leg.created_at is None, leg.created_at, leg.uuid)
        )
        rec.ivr, rec.queues, rec.offers = self.ivr, self.queues, self.offers
        rec.transfers, rec.bridges, rec.holds = self.transfers, self.bridges, self.holds
        rec.recordings = [self.recordings[r] for r in rec.recording_ids]
        rec.data = dict(sorted(self.data.items()))
        if rec.ended_at is not None:
            rec.duration_ms = _ms(rec.ended_at - rec.started_at)
            if rec.agent_answered_at is not None:
                rec.talk_ms = _ms(rec.ended_at - rec.agent_answered_at)
        for visit in self.queues:
            waited = visit.wait_ms
            if not waited and visit.entered_at and visit.left_at:
                waited = _ms(visit.left_at - visit.entered_at)
            rec.queue_wait_ms += waited
        rec.outcome = self.outcome(rec, a_leg).value
        rec.event_count = len(facts)
        rec.timeline = [TimelineEntry(f.at, f.kind.value, f.event_id, dict(f.data)) for f in facts]
        return rec

    def outcome(self, rec: CallRecord, a_leg: Leg | None) -> Outcome:
        """The first rule that fits, in a fixed order (see docs/call-journal.md)."""
        if rec.ended_at is None:
            return Outcome.IN_PROGRESS
        if rec.answered_by or rec.agent_answered_at:
            return Outcome.ANSWERED
        ivr_outcomes = {v.outcome for v in self.ivr}
        if "voicemail" in ivr_outcomes or any(
            q.overflow_target == "voicemail" for q in self.queues
        ):
            return Outcome.VOICEMAIL
        if (
            "transferred" in ivr_outcomes
            or any(q.reason == "transferred" for q in self.queues)
            or self.transfers
        ):
            return Outcome.TRANSFERRED
        if "blocked" in ivr_outcomes:
            return Outcome.BLOCKED
        # Where the caller was last (IVR or queue) says where the call was given up.
        visits: list[QueueVisit | IvrVisit] = [*self.queues, *self.ivr]
        stages = [(v.entered_at or rec.started_at, i, v) for i, v in enumerate(visits)]
        if stages:
            last = max(stages, key=lambda s: (s[0], s[1]))[2]
            if isinstance(last, QueueVisit):
                if last.reason in ("", "abandoned"):
                    return Outcome.ABANDONED_QUEUE
                return Outcome.FAILED
            if last.outcome in ("", "caller_hung_up"):
                return Outcome.ABANDONED_IVR
            if last.outcome == "queued":
                return Outcome.ABANDONED_QUEUE
            if last.outcome == "error":
                return Outcome.FAILED
            return Outcome.IVR_COMPLETED
        if rec.answered_at is not None:
            return Outcome.ANSWERED
        cause = a_leg.cause if a_leg is not None else ""
        if cause in _BUSY:
            return Outcome.BUSY
        if cause in _NO_ANSWER:
            return Outcome.NO_ANSWER
        if cause in _CANCELLED:
            return Outcome.ABANDONED if rec.direction == "inbound" else Outcome.NO_ANSWER
        return Outcome.FAILED


def build_record(tenant_id: str, call_id: str, facts: CallFacts | Iterable[Fact]) -> CallRecord:
    """The call record of a set of facts; the same set gives the same record in any order."""
    held = facts if isinstance(facts, CallFacts) else CallFacts(facts)
    ordered = held.ordered()
    if not ordered:
        raise ValueError("facts: a call record needs at least one event")
    fold = _Fold(tenant_id, call_id)
    for fact in ordered:
        fold.apply(fact)
    return fold.record(ordered)
