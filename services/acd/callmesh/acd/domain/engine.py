"""The ACD of one tenant: waiting calls, agents, offers, timers — pure, clock passed in.

INTERFACE CONTRACT (written first so the runtime, the simulator and the API can be built at the
same time; the domain helper replaces every ``NotImplementedError`` and may add methods, but must
not change these signatures or meanings without telling the others).

Rules every method keeps:
- ``now`` is seconds since the epoch (float) — the runtime passes wall time, the simulator a
  virtual clock; the engine never reads a clock itself and never sleeps.
- Every method returns the effects to carry out, in order; it raises ``AcdRefused`` (nothing
  changed) when the request is not allowed, ``InvalidInput`` for malformed arguments.
- After any method returns, these invariants hold (the property test checks them):
  * an agent is RESERVED or RINGING iff exactly one live offer names them;
  * no call waits while an agent who matches it (by the call's current requirement step, sticky
    and routing-table holds aside) is READY with free capacity — ``tick``/every method routes
    before returning;
  * a call is in at most one queue, and leaves it exactly once (one CallLeftQueue).
- Timers (offer timeouts, wrap-up ends, periodic announcements, requirement expansion, sticky
  hold expiry, max wait, no-agents-ready) fire in ``tick(now)``; ``next_deadline()`` says when the
  next one is due, so the runtime sleeps until then or until the next input.
- Routing decisions are O(log n) in ready agents and waiting calls (indexes, not scans).
"""

from __future__ import annotations

import heapq
import json
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from callmesh.acd.domain.config import (
    AgentProfile,
    AgentStrategy,
    CallOrder,
    OverflowKind,
    OverflowReason,
    OverflowTarget,
    QueueConfig,
    RingMode,
    TenantAcdConfig,
)
from callmesh.acd.domain.effects import (
    AcdRefused,
    AgentAnswered,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentNoAnswer,
    AgentOffered,
    AgentState,
    AgentStateChanged,
    CallLeftQueue,
    CallOverflowed,
    CallPositionChanged,
    CallQueued,
    ConnectAgent,
    Effect,
    LeaveReason,
    NoAnswerReason,
    PlayToCaller,
    Prompt,
    RingAgent,
    RouteOverflow,
    StopReason,
    StopRinging,
)
from callmesh.acd.domain.state import (
    DAY_S,
    LEVELS,
    Agent,
    AgentKey,
    Call,
    CallKey,
    Offer,
    QueueStats,
    SortedIndex,
    Timers,
)
from callmesh.core.errors import InvalidInput

# (calendar_id, now) -> open? ; the runtime answers from admin's calendar_state (cached until
# next_change), the simulator with a constant.
CalendarCheck = Callable[[str, float], bool]


@dataclass(frozen=True)
class CallRequest:
    """A call asking to be queued (EnqueueRequest)."""

    call_id: str
    queue_id: str
    caller_number: str = ""
    called_number: str = ""
    priority: int = 0
    language: str = ""
    data: Mapping[str, str] = field(default_factory=dict)
    # original enqueue time (kept across overflow/transfer and failover); None = now
    enqueued_at: float | None = None
    preferred_agent_id: str = ""
    # where the caller's leg is (opaque to the engine, kept for the runtime and snapshots)
    channel_uuid: str = ""
    node_id: str = ""


@dataclass(frozen=True)
class WaitingCallView:
    call_id: str
    queue_id: str
    position: int
    priority: float
    waited_s: float
    caller_number: str
    language: str
    offered_to: tuple[str, ...]
    channel_uuid: str
    node_id: str
    data: Mapping[str, str]


@dataclass(frozen=True)
class QueueView:
    """Live view of one queue for supervisors and metrics."""

    queue_id: str
    waiting: int
    longest_wait_s: float
    agents_logged_in: int
    agents_ready: int
    agents_busy: int
    estimated_wait_s: float
    offered: int
    answered: int
    abandoned: int
    overflowed: int
    no_answers: int
    # share of answered calls answered within service_level_s (today's counters), 0..1
    service_level: float
    open: bool


@dataclass(frozen=True)
class AgentView:
    """Live view of one logged-in agent."""

    agent_id: str
    state: AgentState
    reason: str
    since: float
    endpoint: str
    skills: Mapping[str, int]
    groups: tuple[str, ...]
    call_id: str
    queue_id: str
    calls_today: int
    talk_s_today: float
    no_answers_today: int


OFFER_GRACE_S = 5.0
_STAFFED = frozenset(
    {
        AgentState.READY,
        AgentState.RESERVED,
        AgentState.RINGING,
        AgentState.ON_CALL,
        AgentState.AFTER_CALL_WORK,
    }
)
_BUSY = (
    AgentState.RESERVED,
    AgentState.RINGING,
    AgentState.ON_CALL,
    AgentState.AFTER_CALL_WORK,
)
DEFAULT_HOLD_S = 20.0
DEFAULT_AHT_S = 180.0
AHT_WEIGHT = 0.05
MAX_OVERFLOW_HOPS = 5
SNAPSHOT_VERSION = 1


def _check_id(field_name: str, value: str) -> str:
    if not value or len(value) > 128:
        raise InvalidInput(field_name, "must be 1-128 characters")
    return value


def _check_skills(skills: Mapping[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, level in skills.items():
        if not name:
            raise InvalidInput("skills", "a skill name must not be empty")
        if not isinstance(level, int) or not 1 <= level <= 5:
            raise InvalidInput(f"skills.{name}", "level must be an integer from 1 to 5")
        out[name] = level
    return out


class AcdEngine:
    """The ACD of one tenant."""

    def __init__(
        self,
        config: TenantAcdConfig,
        *,
        calendar: CalendarCheck | None = None,
        seed: int = 0,
    ) -> None:
        self.config = config
        self.tenant_id = config.tenant_id
        self._calendar = calendar
        self._rng = random.Random(seed)
        self.agents: dict[str, Agent] = {}
        self.calls: dict[str, Call] = {}
        self.offers: dict[str, Offer] = {}
        self.stats: dict[str, QueueStats] = {}
        self._waiting: dict[tuple[str, int], SortedIndex] = {}
        self._ready: dict[tuple[str, int], SortedIndex] = {}
        self._held: dict[str, set[str]] = {}
        self._serves: dict[str, list[tuple[str, int]]] = {}
        self._logged: dict[str, int] = {}
        # members of each queue who are ready, on an offer, on a call or in wrap-up (for EWT)
        self._staffed: dict[str, int] = {}
        self._rr: dict[str, dict[str, int]] = {}
        self._rr_seq = 0
        self._sticky: dict[str, tuple[str, float]] = {}
        self._seq = 0
        self._timers = Timers()
        self._dirty_calls: set[str] = set()
        self._dirty_agents: set[str] = set()
        self._pending: list[Effect] = []
        self._stats_day = -1

    # -- helpers ---------------------------------------------------------------------------

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _queue(self, queue_id: str) -> QueueConfig:
        q = self.config.queues.get(queue_id)
        if q is None:
            raise AcdRefused(f"queue {queue_id!r} does not exist", code="unknown_queue")
        return q

    def _agent(self, agent_id: str) -> Agent:
        a = self.agents.get(agent_id)
        if a is None:
            raise AcdRefused(f"agent {agent_id!r} is not logged in", code="unknown_agent")
        return a

    def _stat(self, queue_id: str) -> QueueStats:
        st = self.stats.get(queue_id)
        if st is None:
            st = self.stats[queue_id] = QueueStats()
        return st

    def _roll_day(self, now: float) -> None:
        day = int(now // DAY_S)
        if day != self._stats_day:
            if self._stats_day >= 0:
                for qid, st in self.stats.items():
                    self.stats[qid] = QueueStats(aht_s=st.aht_s, last_ready_at=st.last_ready_at)
            self._stats_day = day

    def _roll_agent(self, a: Agent, now: float) -> None:
        day = int(now // DAY_S)
        if a.day != day:
            a.day, a.calls_today, a.talk_s_today, a.no_answers_today = day, 0, 0.0, 0

    def _level_of(self, q: QueueConfig, a: Agent) -> int | None:
        """The agent's level in the queue (0 = member without the skill), None = not a member."""
        listed = a.agent_id in q.agents or any(g in q.groups for g in a.groups)
        if q.skill is None:
            if listed or (not q.agents and not q.groups):
                return 0
            return None
        level = a.skills.get(q.skill, 0)
        if level > 0:
            return level
        return 0 if listed else None

    def _count_staffed(self, a: Agent, delta: int) -> None:
        if a.state in _STAFFED:
            for qid, _ in self._serves.get(a.agent_id, ()):
                self._staffed[qid] = self._staffed.get(qid, 0) + delta

    def _compute_serves(self, a: Agent) -> None:
        self._count_staffed(a, -1)
        for qid, _ in self._serves.get(a.agent_id, ()):
            self._logged[qid] = self._logged.get(qid, 1) - 1
        serves = []
        for q in self.config.queues.values():
            level = self._level_of(q, a)
            if level is not None:
                serves.append((q.queue_id, level))
                self._logged[q.queue_id] = self._logged.get(q.queue_id, 0) + 1
        serves.sort(key=lambda s: -self.config.queues[s[0]].priority)
        self._serves[a.agent_id] = serves
        self._count_staffed(a, +1)

    def _drop_serves(self, a: Agent) -> None:
        self._count_staffed(a, -1)
        for qid, _ in self._serves.pop(a.agent_id, ()):
            self._logged[qid] = self._logged.get(qid, 1) - 1

    def _call_level(self, q: QueueConfig, c: Call, now: float) -> int:
        if q.skill is None:
            return 0
        if not q.steps:
            return 1
        waited = now - c.entered_at
        level: int | None = q.steps[0].min_level
        for step in q.steps:
            if step.after_s <= waited + 1e-9:
                level = step.min_level
        return 0 if level is None else level

    def _next_step_at(self, q: QueueConfig, c: Call, now: float) -> float | None:
        if q.skill is None:
            return None
        for step in q.steps:
            at = c.entered_at + step.after_s
            if at > now + 1e-9:
                return at
        return None

    def _agent_key(self, q: QueueConfig, a: Agent, level: int) -> AgentKey:
        parts: list[Any] = []
        for strategy in q.strategies:
            if strategy is AgentStrategy.LONGEST_IDLE:
                parts.append(a.idle_since)
            elif strategy is AgentStrategy.LEAST_TALK_TIME:
                parts.append(a.talk_s_today)
            elif strategy is AgentStrategy.FEWEST_CALLS:
                parts.append(a.calls_today)
            elif strategy is AgentStrategy.ROUND_ROBIN:
                parts.append(self._rr.get(q.queue_id, {}).get(a.agent_id, 0))
            elif strategy is AgentStrategy.LINEAR:
                parts.append(a.order)
            elif strategy is AgentStrategy.RANDOM:
                parts.append(a.random_key)
            elif strategy is AgentStrategy.HIGHEST_SKILL:
                parts.append(-level)
        return tuple(parts)

    def _call_key(self, q: QueueConfig, c: Call) -> CallKey:
        parts: list[Any] = [0 if c.head else 1]
        for rule in q.call_order:
            if rule is CallOrder.PRIORITY:
                parts.append(q.aging_per_s * c.enqueued_at - c.base_priority)
            else:
                parts.append(c.enqueued_at)
        parts.append(c.seq)
        return tuple(parts)

    # -- filing ----------------------------------------------------------------------------

    def _file_agent(self, a: Agent, now: float) -> None:
        if a.state is not AgentState.READY or a.voice_capacity < 1 or a.filed:
            return
        self._roll_agent(a, now)
        a.random_key = self._rng.random()
        for qid, level in self._serves.get(a.agent_id, ()):
            q = self.config.queues[qid]
            key = self._agent_key(q, a, level)
            for lv in range(0, level + 1) if q.skill is not None else (0,):
                index = self._ready.get((qid, lv))
                if index is None:
                    index = self._ready[(qid, lv)] = SortedIndex()
                index.add(key, a.agent_id)
                a.filed[(qid, lv)] = key
            self._stat(qid).last_ready_at = now
        self._dirty_agents.add(a.agent_id)

    def _unfile_agent(self, a: Agent, now: float) -> None:
        for (qid, lv), key in a.filed.items():
            index = self._ready.get((qid, lv))
            if index is not None:
                index.remove(key, a.agent_id)
            if lv == 0:
                self._stat(qid).last_ready_at = now
        a.filed.clear()
        self._dirty_agents.discard(a.agent_id)

    def _file_call(self, c: Call, now: float) -> None:
        if c.phase != "waiting" or c.filed_key is not None or c.hold_agent:
            return
        q = self.config.queues[c.queue_id]
        c.level = self._call_level(q, c, now)
        key = self._call_key(q, c)
        index = self._waiting.get((c.queue_id, c.level))
        if index is None:
            index = self._waiting[(c.queue_id, c.level)] = SortedIndex()
        index.add(key, c.call_id)
        c.filed_key = key
        self._dirty_calls.add(c.call_id)

    def _unfile_call(self, c: Call) -> None:
        if c.filed_key is not None:
            index = self._waiting.get((c.queue_id, c.level))
            if index is not None:
                index.remove(c.filed_key, c.call_id)
            c.filed_key = None
        if c.hold_agent:
            held = self._held.get(c.hold_agent)
            if held is not None:
                held.discard(c.call_id)
                if not held:
                    del self._held[c.hold_agent]
            c.hold_agent = ""
        self._dirty_calls.discard(c.call_id)

    def _hold(self, c: Call, agent_id: str, until: float) -> None:
        c.hold_agent = agent_id
        c.hold_until = until
        self._held.setdefault(agent_id, set()).add(c.call_id)
        self._timers.add(until, "hold", c.call_id, c.version)
        a = self.agents.get(agent_id)
        if a is not None and a.filed:
            self._dirty_agents.add(agent_id)

    # -- state changes ---------------------------------------------------------------------

    def _set_state(
        self, a: Agent, to: AgentState, reason: str, by: str, now: float, out: list[Effect]
    ) -> None:
        was = a.state
        if was is AgentState.READY and to is not AgentState.READY:
            self._unfile_agent(a, now)
        if (was in _STAFFED) != (to in _STAFFED):
            self._count_staffed(a, -1)
            a.state = to
            self._count_staffed(a, +1)
        a.state, a.reason, a.since = to, reason, now
        out.append(AgentStateChanged(a.agent_id, was, to, reason, by))
        if to is AgentState.READY:
            self._file_agent(a, now)

    def _available(self, a: Agent, now: float, out: list[Effect], by: str = "") -> None:
        """After an offer or a call: the pending not-ready, else ready."""
        a.offer_id = ""
        if a.pending_not_ready is not None:
            reason, a.pending_not_ready = a.pending_not_ready, None
            self._set_state(a, AgentState.NOT_READY, reason, by, now, out)
        else:
            self._set_state(a, AgentState.READY, "", by, now, out)

    def _end_talk(self, a: Agent, c: Call, now: float, out: list[Effect]) -> None:
        q = self.config.queues.get(c.queue_id)
        self._roll_agent(a, now)
        talk = max(0.0, now - a.answered_at)
        a.calls_today += 1
        a.talk_s_today += talk
        a.call_id = a.queue_id = ""
        a.idle_since = now
        wrap = q.wrap_up_s if q is not None else 0.0
        st = self._stat(c.queue_id)
        handle = talk + wrap
        st.aht_s = handle if st.aht_s <= 0 else st.aht_s + AHT_WEIGHT * (handle - st.aht_s)
        if wrap > 0:
            self._set_state(a, AgentState.AFTER_CALL_WORK, "", "", now, out)
            a.wrap_version += 1
            self._timers.add(now + wrap, "wrap", a.agent_id, a.wrap_version)
        else:
            self._available(a, now, out)

    def _stop_offers(self, c: Call, reason: StopReason, now: float, out: list[Effect]) -> None:
        for offer_id, agent_id in list(c.offers.items()):
            self.offers.pop(offer_id, None)
            out.append(StopRinging(offer_id, c.call_id, agent_id, reason))
            a = self.agents.get(agent_id)
            if a is not None and a.offer_id == offer_id:
                self._available(a, now, out)
        c.offers.clear()
        c.touch()

    def _back_to_head(self, c: Call, now: float) -> None:
        c.phase = "waiting"
        c.head = True
        self._file_call(c, now)

    def _leave(
        self, c: Call, reason: LeaveReason, now: float, out: list[Effect], agent_id: str = ""
    ) -> None:
        self._unfile_call(c)
        c.version += 1
        out.append(CallLeftQueue(c.call_id, c.queue_id, reason, now - c.enqueued_at, agent_id))

    # -- offers ----------------------------------------------------------------------------

    def _offer(self, c: Call, agents: list[Agent], now: float, out: list[Effect]) -> None:
        q = self.config.queues[c.queue_id]
        self._unfile_call(c)
        c.phase = "offering"
        c.attempt += 1
        for a in agents:
            self._offer_more(c, a, now, out)
        if q.ring is RingMode.PROGRESSIVE:
            self._timers.add(now + q.progressive_step_s, "progressive", c.call_id, c.version)

    def _ready_for_call(self, c: Call) -> list[Agent]:
        q = self.config.queues[c.queue_id]
        index = self._ready.get((c.queue_id, c.level))
        if index is None or not index.items:
            return []
        if q.ring is RingMode.RING_ALL:
            return [self.agents[item] for _, item in index.items]
        return [self.agents[index.items[0][1]]]

    def _best_call_for(self, a: Agent, now: float) -> Call | None:
        held = self._held.get(a.agent_id)
        if held:
            return min((self.calls[cid] for cid in held), key=lambda c: (c.enqueued_at, c.seq))
        best: Call | None = None
        best_rank: tuple[Any, ...] | None = None
        for qid, level in self._serves.get(a.agent_id, ()):
            q = self.config.queues[qid]
            top: tuple[Any, str] | None = None
            for lv in range(0, level + 1) if q.skill is not None else (0,):
                index = self._waiting.get((qid, lv))
                if index is None or not index.items:
                    continue
                entry = index.items[0]
                if top is None or entry < top:
                    top = entry
            if top is None:
                continue
            c = self.calls[top[1]]
            rank = (
                -q.priority,
                0 if c.head else 1,
                -(c.base_priority + q.aging_per_s * (now - c.enqueued_at)),
                c.enqueued_at,
                c.seq,
            )
            if best_rank is None or rank < best_rank:
                best, best_rank = c, rank
        return best

    def _route(self, now: float, out: list[Effect]) -> None:
        """Match dirty calls with ready agents and dirty agents with waiting calls."""
        while self._dirty_calls or self._dirty_agents:
            if self._dirty_calls:
                cid = self._dirty_calls.pop()
                c = self.calls.get(cid)
                if c is None or c.phase != "waiting" or c.filed_key is None:
                    continue
                agents = self._ready_for_call(c)
                if agents:
                    self._offer(c, agents, now, out)
                continue
            aid = self._dirty_agents.pop()
            a = self.agents.get(aid)
            if a is None or a.state is not AgentState.READY or not a.filed:
                continue
            call = self._best_call_for(a, now)
            if call is None:
                continue
            q = self.config.queues[call.queue_id]
            agents = [a]
            if q.ring is RingMode.RING_ALL and not call.hold_agent:
                agents += [x for x in self._ready_for_call(call) if x is not a]
            self._offer(call, agents, now, out)

    # -- overflow --------------------------------------------------------------------------

    def _overflow(self, c: Call, reason: OverflowReason, now: float, out: list[Effect]) -> bool:
        q = self.config.queues[c.queue_id]
        target = q.overflow.get(reason)
        if target is None:
            return False
        if target.kind is OverflowKind.QUEUE and (
            target.target not in self.config.queues
            or target.target in c.visited
            or len(c.visited) > MAX_OVERFLOW_HOPS
        ):
            return False
        self._stop_offers(c, StopReason.CALL_LEFT, now, out)
        self._leave(c, LeaveReason.OVERFLOWED, now, out)
        out.append(CallOverflowed(c.call_id, c.queue_id, reason, target, now - c.enqueued_at))
        st = self._stat(c.queue_id)
        st.overflowed += 1
        if target.kind is OverflowKind.QUEUE:
            c.queue_id = target.target
            c.visited.append(target.target)
            c.touch()
            c.entered_at = now
            c.head = False
            c.phase = "waiting"
            self._place(c, now, out)
        else:
            del self.calls[c.call_id]
            out.append(RouteOverflow(c.call_id, q.queue_id, reason, target, c.language))
        return True

    def _position(self, c: Call) -> int:
        if c.filed_key is None:
            return 1
        ahead = 0
        for lv in LEVELS:
            index = self._waiting.get((c.queue_id, lv))
            if index is not None:
                ahead += index.rank(c.filed_key, c.call_id)
        return ahead + 1

    def _place(self, c: Call, now: float, out: list[Effect]) -> None:
        """Put a call into its queue ``c.queue_id``: checks, announcements, timers."""
        q = self.config.queues[c.queue_id]
        queued = False
        closed = bool(q.calendar_id) and self._calendar is not None
        if closed and q.calendar_id and self._calendar is not None:
            closed = not self._calendar(q.calendar_id, now)
        reason: OverflowReason | None = None
        if closed:
            reason = OverflowReason.CLOSED
        elif self._logged.get(c.queue_id, 0) == 0:
            reason = OverflowReason.NO_AGENTS_LOGGED_IN
        if reason is not None and reason in q.overflow:
            queued = True
            out.append(CallQueued(c.call_id, c.queue_id, c.base_priority, 0, c.enqueued_at, c.data))
            if self._overflow(c, reason, now, out):
                return
        hold_for = ""
        hold_s = q.sticky.wait_s if q.sticky is not None else DEFAULT_HOLD_S
        if c.preferred_agent_id:
            hold_for = c.preferred_agent_id
        elif q.use_routing_table and c.caller_number in self.config.routing_table:
            hold_for = self.config.routing_table[c.caller_number]
        elif q.sticky is not None and c.caller_number in self._sticky:
            agent_id, served_at = self._sticky[c.caller_number]
            if now - served_at <= q.sticky.within_s:
                hold_for = agent_id
        if hold_for and hold_for in self.agents and hold_s > 0:
            self._hold(c, hold_for, now + hold_s)
        else:
            self._file_call(c, now)
        position = self._position(c)
        ewt = self.estimated_wait(c.queue_id, position, now)
        if not queued:
            out.append(
                CallQueued(c.call_id, c.queue_id, c.base_priority, position, c.enqueued_at, c.data)
            )
        out.append(CallPositionChanged(c.call_id, c.queue_id, position, ewt))
        prompts: list[Prompt] = []
        ann = q.announcements
        if ann.entry:
            prompts.append(Prompt(ann.entry))
        if ann.position:
            prompts.append(Prompt("acd/position", {"position": str(position)}))
        if ann.estimated_wait:
            prompts.append(Prompt("acd/estimated_wait", {"estimated_wait_s": f"{ewt:.0f}"}))
        language = c.language or (ann.languages[0] if ann.languages else "")
        out.append(PlayToCaller(c.call_id, tuple(prompts), language, ann.moh))
        if q.max_wait_s > 0 and OverflowReason.MAX_WAIT in q.overflow:
            self._timers.add(c.entered_at + q.max_wait_s, "maxwait", c.call_id, c.version)
        if q.no_agents_ready_s > 0 and OverflowReason.NO_AGENTS_READY in q.overflow:
            self._timers.add(now + q.no_agents_ready_s, "noready", c.call_id, c.version)
        if ann.periodic_every_s > 0:
            self._timers.add(now + ann.periodic_every_s, "announce", c.call_id, c.version)
        step_at = self._next_step_at(q, c, now)
        if step_at is not None:
            self._timers.add(step_at, "step", c.call_id, c.version)

    # -- configuration ---------------------------------------------------------------------

    def configure(self, config: TenantAcdConfig, now: float) -> list[Effect]:
        """Replace the tenant's configuration (queues, profiles, groups, VIP, routing table)."""
        out: list[Effect] = []
        self._roll_day(now)
        self.config = config
        for a in list(self.agents.values()):
            profile = config.agents.get(a.agent_id)
            if profile is None:
                self._logout(a, now, "profile removed", "config", out)
                continue
            self._unfile_agent(a, now)
            if not a.temporary_skills:
                a.skills = dict(profile.skills)
            a.groups = tuple(profile.groups)
            a.order = profile.order
            a.voice_capacity = profile.capacity.get("voice", 1)
            self._compute_serves(a)
            self._file_agent(a, now)
        for c in list(self.calls.values()):
            if c.phase == "connected":
                continue
            if c.queue_id not in config.queues:
                self._stop_offers(c, StopReason.CALL_LEFT, now, out)
                self._leave(c, LeaveReason.ERROR, now, out)
                del self.calls[c.call_id]
                out.append(
                    RouteOverflow(
                        c.call_id,
                        c.queue_id,
                        OverflowReason.CLOSED,
                        OverflowTarget(OverflowKind.ANNOUNCEMENT, "acd/queue_removed"),
                        c.language,
                    )
                )
                continue
            if c.phase == "waiting" and c.filed_key is not None:
                self._unfile_call(c)
                self._file_call(c, now)
        self._route(now, out)
        return out

    # -- agents ----------------------------------------------------------------------------

    def login(
        self,
        agent_id: str,
        now: float,
        *,
        endpoint: str = "",
        skills: Mapping[str, int] | None = None,
        ready: bool = False,
        by: str = "",
    ) -> list[Effect]:
        """Log an agent in (profile required; overrides for this session); NOT_READY or READY."""
        _check_id("agent_id", agent_id)
        profile = self.config.agents.get(agent_id)
        if profile is None:
            raise AcdRefused(f"agent {agent_id!r} has no agent profile", code="unknown_agent")
        if agent_id in self.agents:
            return self.set_ready(agent_id, now, by=by) if ready else []
        endpoint = endpoint or profile.endpoint
        if not endpoint:
            raise InvalidInput("endpoint", "required: neither the login nor the profile has one")
        session_skills = _check_skills(skills) if skills else dict(profile.skills)
        out: list[Effect] = []
        self._roll_day(now)
        a = Agent(
            agent_id=agent_id,
            endpoint=endpoint,
            skills=session_skills,
            groups=tuple(profile.groups),
            site=profile.site,
            order=profile.order,
            voice_capacity=profile.capacity.get("voice", 1),
            state=AgentState.LOGGED_OUT,
            reason="",
            since=now,
            idle_since=now,
            temporary_skills=bool(skills),
            day=int(now // DAY_S),
        )
        self.agents[agent_id] = a
        self._compute_serves(a)
        out.append(AgentLoggedIn(agent_id, endpoint, dict(a.skills), a.groups, a.site))
        if ready:
            self._set_state(a, AgentState.READY, "login", by, now, out)
        else:
            self._set_state(a, AgentState.NOT_READY, "login", by, now, out)
        self._route(now, out)
        return out

    def set_ready(self, agent_id: str, now: float, *, by: str = "") -> list[Effect]:
        """Ready (from not-ready, break, after-call work); forced when ``by`` is a supervisor."""
        a = self._agent(agent_id)
        out: list[Effect] = []
        if a.state in (AgentState.NOT_READY, AgentState.BREAK):
            a.idle_since = now
            self._set_state(a, AgentState.READY, "", by, now, out)
        elif a.state is AgentState.AFTER_CALL_WORK:
            a.pending_not_ready = None
            a.wrap_version += 1
            self._set_state(a, AgentState.READY, "", by, now, out)
        elif a.state is not AgentState.READY:
            a.pending_not_ready = None
        self._route(now, out)
        return out

    def set_not_ready(
        self, agent_id: str, reason: str, now: float, *, by: str = ""
    ) -> list[Effect]:
        """Not ready with a reason; while reserved/ringing/on call it applies when the call ends."""
        a = self._agent(agent_id)
        out: list[Effect] = []
        reason = reason or "not_ready"
        if a.state in _BUSY:
            a.pending_not_ready = reason
        else:
            self._set_state(a, AgentState.NOT_READY, reason, by, now, out)
        self._route(now, out)
        return out

    def request_break(
        self, agent_id: str, reason: str, now: float, *, by: str = "", forced: bool = False
    ) -> list[Effect]:
        """Break with reason; refused (AcdRefused) when a group of the agent is at its maximum
        (unless forced by a supervisor) or the agent is on a call."""
        a = self._agent(agent_id)
        if a.state in (AgentState.RESERVED, AgentState.RINGING, AgentState.ON_CALL):
            raise AcdRefused(
                f"break: agent {agent_id!r} is {a.state.value}; a break starts after the call"
            )
        if a.state is AgentState.BREAK:
            return []
        if not forced:
            for gid in a.groups:
                group = self.config.groups.get(gid)
                if group is None or group.max_on_break <= 0:
                    continue
                on_break = sum(
                    1
                    for x in self.agents.values()
                    if x.state is AgentState.BREAK and gid in x.groups
                )
                if on_break >= group.max_on_break:
                    raise AcdRefused(
                        f"break: {on_break} of group {gid!r} already on break, the maximum is "
                        f"{group.max_on_break}"
                    )
        out: list[Effect] = []
        a.pending_not_ready = None
        a.wrap_version += 1
        self._set_state(a, AgentState.BREAK, reason or "break", by, now, out)
        self._route(now, out)
        return out

    def end_wrap_up(self, agent_id: str, now: float, *, by: str = "") -> list[Effect]:
        """Leave after-call work early → ready (or the pending not-ready)."""
        a = self._agent(agent_id)
        if a.state is not AgentState.AFTER_CALL_WORK:
            raise AcdRefused(f"end_wrap_up: agent {agent_id!r} is {a.state.value}, not in wrap-up")
        out: list[Effect] = []
        a.wrap_version += 1
        self._available(a, now, out, by)
        self._route(now, out)
        return out

    def _logout(self, a: Agent, now: float, reason: str, forced_by: str, out: list[Effect]) -> None:
        if a.offer_id:
            offer = self.offers.pop(a.offer_id, None)
            if offer is not None:
                c = self.calls.get(offer.call_id)
                out.append(
                    StopRinging(a.offer_id, offer.call_id, a.agent_id, StopReason.AGENT_LOGGED_OUT)
                )
                if c is not None:
                    c.offers.pop(a.offer_id, None)
                    c.touch()
                    if not c.offers and c.phase == "offering":
                        self._back_to_head(c, now)
            a.offer_id = ""
        for cid in list(self._held.get(a.agent_id, ())):
            c = self.calls[cid]
            self._unfile_call(c)
            self._file_call(c, now)
        self._set_state(a, AgentState.LOGGED_OUT, reason, forced_by, now, out)
        out.append(AgentLoggedOut(a.agent_id, reason, forced_by))
        self._drop_serves(a)
        del self.agents[a.agent_id]

    def logout(
        self, agent_id: str, now: float, *, reason: str = "", forced_by: str = ""
    ) -> list[Effect]:
        """Log out; a live offer is stopped and its call goes back to the head of its queue;
        temporary skill changes revert (AGT-9)."""
        a = self._agent(agent_id)
        out: list[Effect] = []
        self._logout(a, now, reason, forced_by, out)
        self._route(now, out)
        return out

    def set_skills(
        self, agent_id: str, skills: Mapping[str, int], now: float, *, temporary: bool
    ) -> list[Effect]:
        """Change a logged-in agent's skills at once; temporary ones last until logout."""
        a = self._agent(agent_id)
        checked = _check_skills(skills)
        out: list[Effect] = []
        self._unfile_agent(a, now)
        a.skills = checked
        a.temporary_skills = a.temporary_skills or temporary
        self._compute_serves(a)
        self._file_agent(a, now)
        for cid in list(self._held.get(a.agent_id, ())):
            self._dirty_calls.add(cid)
        self._route(now, out)
        return out

    # -- calls -----------------------------------------------------------------------------

    def enqueue(self, call: CallRequest, now: float) -> list[Effect]:
        """Queue a call (idempotent by call_id): entry prompts + MOH, overflow checks, route."""
        _check_id("call_id", call.call_id)
        if call.call_id in self.calls:
            return []
        q = self._queue(call.queue_id)
        self._roll_day(now)
        if q.max_length > 0 and self._waiting_count(q.queue_id) >= q.max_length:
            target = q.overflow.get(OverflowReason.MAX_LENGTH)
            if target is None:
                raise AcdRefused(
                    f"queue {q.queue_id!r} is full: {q.max_length} calls waiting (max_length)"
                )
        priority = call.priority + self.config.vip.get(call.caller_number, 0)
        raw = call.data.get(self.config.priority_data_key, "")
        if raw.lstrip("-").isdigit():
            priority += int(raw)
        self._seq += 1
        c = Call(
            call_id=call.call_id,
            queue_id=q.queue_id,
            caller_number=call.caller_number,
            called_number=call.called_number,
            base_priority=priority,
            language=call.language,
            data=dict(call.data),
            enqueued_at=call.enqueued_at if call.enqueued_at is not None else now,
            entered_at=now,
            seq=self._seq,
            channel_uuid=call.channel_uuid,
            node_id=call.node_id,
            preferred_agent_id=call.preferred_agent_id,
            visited=[q.queue_id],
        )
        self.calls[c.call_id] = c
        out: list[Effect] = []
        if q.max_length > 0 and self._waiting_count(q.queue_id) >= q.max_length:
            out.append(CallQueued(c.call_id, c.queue_id, c.base_priority, 0, c.enqueued_at, c.data))
            self._overflow(c, OverflowReason.MAX_LENGTH, now, out)
        else:
            self._place(c, now, out)
        self._route(now, out)
        return out

    def _waiting_count(self, queue_id: str) -> int:
        total = 0
        for lv in LEVELS:
            index = self._waiting.get((queue_id, lv))
            if index is not None:
                total += len(index)
        return total + sum(
            1
            for cid_set in self._held.values()
            for cid in cid_set
            if self.calls[cid].queue_id == queue_id
        )

    def _offer_for(self, offer_id: str, agent_id: str) -> tuple[Offer, Call, Agent] | None:
        offer = self.offers.get(offer_id)
        if offer is None or offer.agent_id != agent_id:
            return None
        c = self.calls.get(offer.call_id)
        a = self.agents.get(agent_id)
        if c is None or a is None or a.offer_id != offer_id:
            return None
        return offer, c, a

    def offer_ringing(self, offer_id: str, agent_id: str, now: float) -> list[Effect]:
        """The agent's phone rings (RESERVED → RINGING)."""
        found = self._offer_for(offer_id, agent_id)
        out: list[Effect] = []
        if found is None:
            return out
        offer, _, a = found
        if a.state is AgentState.RESERVED:
            offer.ringing_at = now
            self._set_state(a, AgentState.RINGING, "offer", "", now, out)
        return out

    def offer_answered(self, offer_id: str, agent_id: str, now: float) -> list[Effect]:
        """The agent answered: ConnectAgent, other ringing agents stopped, call leaves the queue."""
        found = self._offer_for(offer_id, agent_id)
        out: list[Effect] = []
        if found is None:
            return out
        offer, c, a = found
        q = self.config.queues.get(c.queue_id)
        del self.offers[offer_id]
        c.offers.pop(offer_id, None)
        c.touch()
        greeting = (
            Prompt("acd/agent_id", {"agent_id": a.agent_id})
            if q is not None and q.announcements.agent_id_greeting
            else None
        )
        out.append(ConnectAgent(offer_id, c.call_id, a.agent_id, greeting))
        self._stop_offers(c, StopReason.ANSWERED_ELSEWHERE, now, out)
        a.offer_id = ""
        a.answered_at = now
        self._set_state(a, AgentState.ON_CALL, "", "", now, out)
        wait = now - c.enqueued_at
        out.append(AgentAnswered(a.agent_id, c.call_id, c.queue_id, now - offer.started))
        st = self._stat(c.queue_id)
        st.answered += 1
        if q is not None and wait <= q.service_level_s + 1e-9:
            st.answered_in_sl += 1
        self._leave(c, LeaveReason.ANSWERED, now, out, a.agent_id)
        c.phase = "connected"
        c.agent_id = a.agent_id
        if c.caller_number:
            self._sticky[c.caller_number] = (a.agent_id, now)
        self._route(now, out)
        return out

    def offer_failed(
        self, offer_id: str, agent_id: str, reason: NoAnswerReason, now: float
    ) -> list[Effect]:
        """No answer/reject/busy/unreachable/switch error: the call goes back to the head of its
        queue, the agent to not-ready with the queue's no_answer_reason (AGT-6)."""
        found = self._offer_for(offer_id, agent_id)
        out: list[Effect] = []
        if found is None:
            return out
        offer, c, a = found
        q = self.config.queues.get(c.queue_id)
        del self.offers[offer_id]
        c.offers.pop(offer_id, None)
        c.touch()
        a.offer_id = ""
        a.call_id = a.queue_id = ""
        self._roll_agent(a, now)
        a.no_answers_today += 1
        self._stat(c.queue_id).no_answers += 1
        out.append(AgentNoAnswer(a.agent_id, c.call_id, c.queue_id, reason, now - offer.started))
        if reason in (NoAnswerReason.UNREACHABLE, NoAnswerReason.SWITCH_ERROR):
            why = reason.value
        else:
            why = q.no_answer_reason if q is not None else "no_answer"
        a.pending_not_ready = None
        self._set_state(a, AgentState.NOT_READY, why, "", now, out)
        if not c.offers and c.phase == "offering":
            self._back_to_head(c, now)
        self._route(now, out)
        return out

    def call_ended(self, call_id: str, now: float) -> list[Effect]:
        """The caller hung up (waiting: abandoned; during an offer: stop ringing, release the
        agent at once) or the connected call ended (agent → after-call work or ready)."""
        c = self.calls.get(call_id)
        out: list[Effect] = []
        if c is None:
            return out
        if c.phase == "connected":
            a = self.agents.get(c.agent_id)
            if a is not None and a.call_id == call_id and a.state is AgentState.ON_CALL:
                self._end_talk(a, c, now, out)
        else:
            self._stop_offers(c, StopReason.CALLER_ABANDONED, now, out)
            self._stat(c.queue_id).abandoned += 1
            self._leave(c, LeaveReason.ABANDONED, now, out)
        del self.calls[call_id]
        self._route(now, out)
        return out

    def call_transferred(self, call_id: str, now: float) -> list[Effect]:
        """The connected call was transferred away from the agent (agent → after-call work)."""
        c = self.calls.get(call_id)
        out: list[Effect] = []
        if c is None:
            return out
        if c.phase == "connected":
            return self.call_ended(call_id, now)
        self._stop_offers(c, StopReason.CALL_LEFT, now, out)
        self._leave(c, LeaveReason.TRANSFERRED, now, out)
        del self.calls[call_id]
        self._route(now, out)
        return out

    def remove_call(self, call_id: str, now: float, *, reason: str = "error") -> list[Effect]:
        """Take a waiting call out (switch error, call moved elsewhere)."""
        c = self.calls.get(call_id)
        out: list[Effect] = []
        if c is None:
            return out
        try:
            why = LeaveReason(reason)
        except ValueError:
            why = LeaveReason.ERROR
        if c.phase == "connected":
            return self.call_ended(call_id, now)
        self._stop_offers(c, StopReason.CALL_LEFT, now, out)
        self._leave(c, why, now, out)
        del self.calls[call_id]
        self._route(now, out)
        return out

    # -- time ------------------------------------------------------------------------------

    def tick(self, now: float) -> list[Effect]:
        """Fire every timer due at ``now`` and route."""
        out: list[Effect] = list(self._pending)
        self._pending.clear()
        self._roll_day(now)
        for _, kind, ref, version in self._timers.due(now):
            self._fire(kind, ref, version, now, out)
        self._route(now, out)
        return out

    def _fire(self, kind: str, ref: str, version: int, now: float, out: list[Effect]) -> None:
        if kind == "offer":
            offer = self.offers.get(ref)
            if offer is not None and offer.deadline <= now + 1e-9:
                out.append(StopRinging(ref, offer.call_id, offer.agent_id, StopReason.TIMEOUT))
                out.extend(self.offer_failed(ref, offer.agent_id, NoAnswerReason.TIMEOUT, now))
            return
        if kind == "wrap":
            a = self.agents.get(ref)
            if (
                a is not None
                and a.state is AgentState.AFTER_CALL_WORK
                and a.wrap_version == version
            ):
                self._available(a, now, out)
            return
        c = self.calls.get(ref)
        if c is None or c.version != version or c.phase == "connected":
            return
        q = self.config.queues.get(c.queue_id)
        if q is None:
            return
        if kind == "step":
            if c.phase == "waiting" and c.filed_key is not None:
                self._unfile_call(c)
                self._file_call(c, now)
            at = self._next_step_at(q, c, now)
            if at is not None:
                self._timers.add(at, "step", c.call_id, c.version)
        elif kind == "hold":
            if c.hold_agent and c.hold_until <= now + 1e-9:
                self._unfile_call(c)
                self._file_call(c, now)
        elif kind == "maxwait":
            if c.phase == "offering":
                self._timers.add(now + 1.0, "maxwait", c.call_id, c.version)
            else:
                self._overflow(c, OverflowReason.MAX_WAIT, now, out)
        elif kind == "noready":
            ready = self._ready.get((c.queue_id, 0))
            st = self._stat(c.queue_id)
            if (
                c.phase == "waiting"
                and not (ready and len(ready))
                and (st.last_ready_at <= now - q.no_agents_ready_s + 1e-9)
            ):
                self._overflow(c, OverflowReason.NO_AGENTS_READY, now, out)
            else:
                base = max(st.last_ready_at, now - q.no_agents_ready_s)
                self._timers.add(
                    max(now + 1.0, base + q.no_agents_ready_s), "noready", c.call_id, c.version
                )
        elif kind == "announce":
            if c.phase == "waiting":
                ann = q.announcements
                position = self._position(c)
                ewt = self.estimated_wait(c.queue_id, position, now)
                out.append(CallPositionChanged(c.call_id, c.queue_id, position, ewt))
                prompts: list[Prompt] = []
                if ann.periodic:
                    prompts.append(Prompt(ann.periodic))
                if ann.position:
                    prompts.append(Prompt("acd/position", {"position": str(position)}))
                if ann.estimated_wait:
                    prompts.append(Prompt("acd/estimated_wait", {"estimated_wait_s": f"{ewt:.0f}"}))
                if prompts:
                    language = c.language or (ann.languages[0] if ann.languages else "")
                    out.append(PlayToCaller(c.call_id, tuple(prompts), language, ann.moh))
            self._timers.add(
                now + q.announcements.periodic_every_s, "announce", c.call_id, c.version
            )
        elif kind == "progressive" and c.phase == "offering" and c.offers:
            index = self._ready.get((c.queue_id, c.level))
            if index is not None and index.items:
                self._offer_more(c, self.agents[index.items[0][1]], now, out)
            self._timers.add(now + q.progressive_step_s, "progressive", c.call_id, c.version)

    def _offer_more(self, c: Call, a: Agent, now: float, out: list[Effect]) -> None:
        """Ring one more agent for a call being offered."""
        q = self.config.queues[c.queue_id]
        offer_id = self._new_id()
        offer = Offer(
            offer_id,
            c.call_id,
            a.agent_id,
            c.queue_id,
            now,
            now + q.no_answer_timeout_s + OFFER_GRACE_S,
            c.attempt,
        )
        self.offers[offer_id] = offer
        c.offers[offer_id] = a.agent_id
        c.touch()
        self._rr_seq += 1
        self._rr.setdefault(c.queue_id, {})[a.agent_id] = self._rr_seq
        self._set_state(a, AgentState.RESERVED, "offer", "", now, out)
        a.offer_id, a.call_id, a.queue_id = offer_id, c.call_id, c.queue_id
        self._stat(c.queue_id).offered += 1
        out.append(
            AgentOffered(a.agent_id, c.call_id, c.queue_id, q.no_answer_timeout_s, c.attempt)
        )
        out.append(
            RingAgent(
                offer_id,
                c.call_id,
                a.agent_id,
                a.endpoint,
                c.queue_id,
                q.no_answer_timeout_s,
                c.attempt,
            )
        )
        self._timers.add(offer.deadline, "offer", offer_id)

    def next_deadline(self) -> float | None:
        """When ``tick`` next has something to do (None: nothing scheduled)."""
        if self._pending:
            return float("-inf")
        heap = self._timers.heap
        while heap and not self._live_timer(heap[0][2], heap[0][3], heap[0][4]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def _live_timer(self, kind: str, ref: str, version: int) -> bool:
        """Whether a timer would still do something (stale ones are dropped unfired)."""
        if kind == "offer":
            return ref in self.offers
        if kind == "wrap":
            a = self.agents.get(ref)
            return a is not None and a.wrap_version == version
        c = self.calls.get(ref)
        return c is not None and c.version == version and c.phase != "connected"

    # -- views -----------------------------------------------------------------------------

    def queue_view(self, queue_id: str, now: float) -> QueueView:
        """Live view of one queue."""
        q = self._queue(queue_id)
        st = self._stat(queue_id)
        waiting = [
            c for c in self.calls.values() if c.queue_id == queue_id and c.phase != "connected"
        ]
        longest = max((now - c.enqueued_at for c in waiting), default=0.0)
        ready = self._ready.get((queue_id, 0))
        members = [
            a
            for a in self.agents.values()
            if any(qid == queue_id for qid, _ in self._serves.get(a.agent_id, ()))
        ]
        busy = sum(
            1
            for a in members
            if a.state
            in (
                AgentState.RESERVED,
                AgentState.RINGING,
                AgentState.ON_CALL,
                AgentState.AFTER_CALL_WORK,
            )
        )
        counted = st.answered + st.abandoned
        is_open = not (
            q.calendar_id and self._calendar is not None and not self._calendar(q.calendar_id, now)
        )
        return QueueView(
            queue_id=queue_id,
            waiting=len(waiting),
            longest_wait_s=longest,
            agents_logged_in=len(members),
            agents_ready=len(ready) if ready else 0,
            agents_busy=busy,
            estimated_wait_s=self.estimated_wait(queue_id, len(waiting) + 1, now),
            offered=st.offered,
            answered=st.answered,
            abandoned=st.abandoned,
            overflowed=st.overflowed,
            no_answers=st.no_answers,
            service_level=st.answered_in_sl / counted if counted else 1.0,
            open=bool(is_open),
        )

    def queue_views(self, now: float) -> list[QueueView]:
        """Live views of every queue."""
        return [self.queue_view(qid, now) for qid in sorted(self.config.queues)]

    def agent_view(self, agent_id: str, now: float) -> AgentView:
        """Live view of one logged-in agent."""
        a = self._agent(agent_id)
        self._roll_agent(a, now)
        return AgentView(
            agent_id=a.agent_id,
            state=a.state,
            reason=a.reason,
            since=a.since,
            endpoint=a.endpoint,
            skills=dict(a.skills),
            groups=a.groups,
            call_id=a.call_id,
            queue_id=a.queue_id,
            calls_today=a.calls_today,
            talk_s_today=a.talk_s_today,
            no_answers_today=a.no_answers_today,
        )

    def agent_views(self, now: float) -> list[AgentView]:
        """Live views of every logged-in agent."""
        return [self.agent_view(aid, now) for aid in sorted(self.agents)]

    def waiting_calls(self, queue_id: str, now: float) -> list[WaitingCallView]:
        """The calls of a queue in the order they will be served."""
        self._queue(queue_id)
        calls = [
            c for c in self.calls.values() if c.queue_id == queue_id and c.phase != "connected"
        ]
        q = self.config.queues[queue_id]
        calls.sort(key=lambda c: self._call_key(q, c))
        out = []
        for position, c in enumerate(calls, start=1):
            out.append(
                WaitingCallView(
                    call_id=c.call_id,
                    queue_id=queue_id,
                    position=position,
                    priority=c.base_priority + q.aging_per_s * (now - c.enqueued_at),
                    waited_s=now - c.enqueued_at,
                    caller_number=c.caller_number,
                    language=c.language,
                    offered_to=tuple(c.offers.values()),
                    channel_uuid=c.channel_uuid,
                    node_id=c.node_id,
                    data=dict(c.data),
                )
            )
        return out

    def estimated_wait(self, queue_id: str, position: int, now: float) -> float:
        """EWT in seconds for a caller at ``position`` (1-based) from recent handle times and
        the agents serving the queue."""
        st = self._stat(queue_id)
        aht = st.aht_s if st.aht_s > 0 else DEFAULT_AHT_S
        staffed = self._staffed.get(queue_id, 0)
        ready_index = self._ready.get((queue_id, 0))
        ready = len(ready_index) if ready_index is not None else 0
        if staffed == 0:
            return aht * max(1, position)
        ahead = max(0, position - ready)
        # With N agents busy, one frees up every AHT/N on average (memoryless handle times).
        return ahead * aht / staffed

    def agent_state(self, agent_id: str) -> AgentState:
        """LOGGED_OUT for an agent not logged in."""
        a = self.agents.get(agent_id)
        return a.state if a is not None else AgentState.LOGGED_OUT

    def offer_of_call(self, call_id: str) -> list[tuple[str, str]]:
        """Live offers of a call as (offer_id, agent_id)."""
        c = self.calls.get(call_id)
        return list(c.offers.items()) if c is not None else []

    def offer(self, offer_id: str) -> Offer | None:
        """A live offer."""
        return self.offers.get(offer_id)

    def call(self, call_id: str) -> Call | None:
        """A call the engine holds (waiting, offered or connected)."""
        return self.calls.get(call_id)

    # -- persistence -----------------------------------------------------------------------

    def snapshot(self, *, entities: bool = True) -> dict[str, Any]:
        """JSON-able state so a new owner continues where this one stopped (``entities`` False:
        without agents, calls and offers — ``snapshot_json`` adds them from its cache)."""
        state = self._rng.getstate()
        head: dict[str, Any] = {}
        if entities:
            head = {
                "agents": [a.record() for a in self.agents.values()],
                "calls": [c.record() for c in self.calls.values()],
                "offers": [o.record() for o in self.offers.values()],
            }
        return {
            **head,
            "version": SNAPSHOT_VERSION,
            "tenant_id": self.tenant_id,
            "stats": {qid: dict(st.__dict__) for qid, st in self.stats.items()},
            "stats_day": self._stats_day,
            "rr": self._rr,
            "rr_seq": self._rr_seq,
            "sticky": {k: list(v) for k, v in self._sticky.items()},
            "seq": self._seq,
            "timers": [list(t) for t in self._timers.heap],
            "rng": [state[0], list(state[1]), state[2]],
        }

    def snapshot_json(self) -> str:
        """``snapshot()`` as JSON text, re-encoding only the agents, calls and offers that changed
        since the last call (the runtime writes it ahead of every reply and offer)."""
        doc = self.snapshot(entities=False)
        rest = json.dumps(doc, separators=(",", ":"))
        agents = ",".join(a.json() for a in self.agents.values())
        calls = ",".join(c.json() for c in self.calls.values())
        offers = ",".join(o.json() for o in self.offers.values())
        return f'{{"agents":[{agents}],"calls":[{calls}],"offers":[{offers}],{rest[1:]}'

    @classmethod
    def restore(
        cls,
        config: TenantAcdConfig,
        snapshot: Mapping[str, Any],
        now: float,
        *,
        calendar: CalendarCheck | None = None,
        seed: int = 0,
    ) -> AcdEngine:
        """Rebuild from a snapshot (config from the store, which may have changed meanwhile).

        Calls whose queue is gone and agents whose profile is gone leave with effects that the
        first ``tick(now)`` returns; call ``tick`` right after restoring."""
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise InvalidInput("snapshot.version", f"must be {SNAPSHOT_VERSION}")
        engine = cls(snapshot_config(config, snapshot), calendar=calendar, seed=seed)
        rng = snapshot["rng"]
        engine._rng.setstate((rng[0], tuple(rng[1]), rng[2]))
        engine._stats_day = int(snapshot.get("stats_day", -1))
        for qid, raw in snapshot.get("stats", {}).items():
            engine.stats[qid] = QueueStats(**raw)
        engine._rr = {q: dict(m) for q, m in snapshot.get("rr", {}).items()}
        engine._rr_seq = int(snapshot.get("rr_seq", 0))
        engine._sticky = {k: (v[0], float(v[1])) for k, v in snapshot.get("sticky", {}).items()}
        engine._seq = int(snapshot.get("seq", 0))
        for raw in snapshot.get("offers", []):
            offer = Offer(**raw)
            engine.offers[offer.offer_id] = offer
        for raw in snapshot.get("agents", []):
            a = Agent.from_record(raw)
            engine.agents[a.agent_id] = a
            engine._compute_serves(a)
        for raw in snapshot.get("calls", []):
            c = Call.from_record(raw)
            engine.calls[c.call_id] = c
        for t in snapshot.get("timers", []):
            engine._timers.add(float(t[0]), str(t[2]), str(t[3]), int(t[4]))
        for c in engine.calls.values():
            if c.hold_agent:
                agent_id, c.hold_agent = c.hold_agent, ""
                if agent_id in engine.agents:
                    engine._hold(c, agent_id, c.hold_until)
            if c.queue_id in engine.config.queues:
                engine._file_call(c, now)
        for a in engine.agents.values():
            engine._file_agent(a, now)
        engine._pending = engine.configure(config, now)
        return engine


def snapshot_config(config: TenantAcdConfig, snapshot: Mapping[str, Any]) -> TenantAcdConfig:
    """The config to rebuild a snapshot under: the new one, plus stand-ins for the queues and
    agent profiles the snapshot still uses (``configure`` then removes them with effects)."""
    queues = dict(config.queues)
    for raw in snapshot.get("calls", []):
        qid = raw["queue_id"]
        if qid not in queues:
            queues[qid] = QueueConfig(queue_id=qid)
    agents = dict(config.agents)
    for raw in snapshot.get("agents", []):
        aid = raw["agent_id"]
        if aid not in agents:
            agents[aid] = AgentProfile(agent_id=aid, endpoint=raw.get("endpoint", ""))
    return TenantAcdConfig(
        tenant_id=config.tenant_id,
        queues=queues,
        agents=agents,
        groups=config.groups,
        vip=config.vip,
        routing_table=config.routing_table,
        priority_data_key=config.priority_data_key,
    )
