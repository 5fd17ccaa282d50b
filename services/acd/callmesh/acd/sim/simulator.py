"""Discrete-event simulation of one tenant's ACD: the real ``AcdEngine`` on a virtual clock.

The world around the engine is simulated: callers arrive (Poisson per queue), wait with an
exponential patience (they hang up only while waiting — in the queue or while an offer rings),
agents answer every offer after ``ring_s`` seconds and talk for a drawn handle time. The engine
decides everything else (routing, wrap-up timers, announcements, overflow) exactly as it does in
production: its commands are carried out here and its timers driven with ``next_deadline``/``tick``.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from callmesh.acd.domain.effects import (
    AgentState,
    AgentStateChanged,
    CallLeftQueue,
    CallOverflowed,
    CallPositionChanged,
    CallQueued,
    ConnectAgent,
    Effect,
    LeaveReason,
    PlayToCaller,
    RingAgent,
    RouteOverflow,
    StopRinging,
)
from callmesh.acd.domain.engine import AcdEngine, CallRequest
from callmesh.acd.sim.scenario import HandleDistribution, HandleSpec, Scenario

# What a call is doing; the last four are final.
WAITING = 0
RINGING = 1
TALKING = 2
ANSWERED = 3
ABANDONED = 4
OVERFLOWED = 5
# Not yet arrived (only seen in partial results).
PENDING = 6

# Heap event kinds.
_ARRIVAL = 0
_ABANDON = 1
_TALK_END = 2
_ANSWER = 3

# States in which an agent is held by a call (reserved for an offer through after-call work).
BUSY_STATES = frozenset(
    {AgentState.RESERVED, AgentState.RINGING, AgentState.ON_CALL, AgentState.AFTER_CALL_WORK}
)
# An engine that keeps asking for a tick at the same instant is stuck; stop instead of looping.
_MAX_TICKS_AT_ONE_INSTANT = 10_000


class SimulationError(RuntimeError):
    """The engine refused or misbehaved during a run (a bug to report, with where and when)."""


class _Call:
    """One simulated caller."""

    __slots__ = (
        "announced_ewt",
        "arrival",
        "call_id",
        "end",
        "handle_s",
        "index",
        "patience_s",
        "queue",
        "state",
    )

    def __init__(self, index: int, call_id: str, queue: int, arrival: float, handle_s: float):
        self.index = index
        self.call_id = call_id
        self.queue = queue
        self.arrival = arrival
        self.handle_s = handle_s
        self.patience_s = math.inf
        self.state = WAITING
        # answered: when; abandoned/overflowed: when it left
        self.end = math.nan
        self.announced_ewt = math.nan


@dataclass
class SimResult:
    """Raw outcome of a run: per call (index order) queue, state, wait, EWT; agent busy time."""

    scenario: Scenario
    queue_ids: list[str]
    call_queue: list[int]
    call_state: list[int]
    call_arrival: list[float]
    # answered: arrival -> answer; abandoned/overflowed: arrival -> leaving; else NaN
    call_wait: list[float]
    # EWT announced at entry to calls that had to wait (NaN when none)
    call_ewt: list[float]
    # the talk time and patience drawn for each call (inf: never hangs up)
    call_handle: list[float]
    call_patience: list[float]
    # the calls in the statistics (after each run's warm-up)
    measured: list[int]
    # statistics window: from the arrival of the first measured call to the last arrival (summed
    # over merged runs), the inter-arrival gaps inside it, and each agent's busy seconds in it
    window_s: float
    gaps: int
    agent_pool: dict[str, str]
    agent_busy_s: dict[str, float]
    virtual_s: float
    wall_s: float
    events: int
    engine_calls: int
    counters: dict[str, int] = field(default_factory=dict)
    runs: int = 1


def _exponential(rng: random.Random, mean: float, antithetic: bool) -> Callable[[], float]:
    """Exponential draws by inversion of one uniform (mirrored: u -> 1 - u when antithetic)."""
    uniform = rng.random
    log = math.log
    if antithetic:
        # random() is in [0, 1): 1 - u is in (0, 1], u itself may be 0 (guarded)
        return lambda: -mean * log(uniform() or 5e-324)
    return lambda: -mean * log(1.0 - uniform())


def _handle_sampler(spec: HandleSpec, rng: random.Random, antithetic: bool) -> Callable[[], float]:
    """Draws talk times of the given distribution (lognormal matched to mean and sd)."""
    if spec.dist is HandleDistribution.EXPONENTIAL:
        return _exponential(rng, spec.mean_s, antithetic)
    sigma2 = math.log1p((spec.sd / spec.mean_s) ** 2)
    mu = math.log(spec.mean_s) - sigma2 / 2
    sigma = -math.sqrt(sigma2) if antithetic else math.sqrt(sigma2)
    gauss = rng.gauss
    exp = math.exp
    return lambda: exp(mu + sigma * gauss())


def merge(first: SimResult, second: SimResult) -> SimResult:
    """Two runs of the same scenario as one sample (the second's calls follow the first's)."""
    offset = len(first.call_state)
    return SimResult(
        scenario=first.scenario,
        queue_ids=first.queue_ids,
        call_queue=first.call_queue + second.call_queue,
        call_state=first.call_state + second.call_state,
        call_arrival=first.call_arrival + second.call_arrival,
        call_wait=first.call_wait + second.call_wait,
        call_ewt=first.call_ewt + second.call_ewt,
        call_handle=first.call_handle + second.call_handle,
        call_patience=first.call_patience + second.call_patience,
        measured=first.measured + [offset + i for i in second.measured],
        window_s=first.window_s + second.window_s,
        gaps=first.gaps + second.gaps,
        agent_pool=first.agent_pool,
        agent_busy_s={a: b + second.agent_busy_s[a] for a, b in first.agent_busy_s.items()},
        virtual_s=first.virtual_s + second.virtual_s,
        wall_s=first.wall_s + second.wall_s,
        events=first.events + second.events,
        engine_calls=first.engine_calls + second.engine_calls,
        counters={k: v + second.counters.get(k, 0) for k, v in first.counters.items()},
        runs=first.runs + second.runs,
    )


class Simulator:
    """Runs one scenario through a fresh ``AcdEngine``."""

    def __init__(
        self, scenario: Scenario, *, start: float = 1_700_000_000.0, antithetic: bool = False
    ) -> None:
        self.scenario = scenario
        self.start = start
        self.now = start
        self.engine = AcdEngine(
            scenario.engine_config(), calendar=lambda _cal, _now: True, seed=scenario.seed
        )
        self._queue_ids = [q.id for q in scenario.queues]
        self._queue_index = {q: i for i, q in enumerate(self._queue_ids)}
        seed = scenario.seed
        # One stream per purpose and queue: changing one queue's traffic leaves the others'
        # draws alone (common random numbers across runs).
        # An antithetic run mirrors every uniform of the plain run with the same seed.
        self._interarrival = [
            _exponential(random.Random(f"{seed}:arrival:{q.id}"), 1.0 / q.rate_per_s, antithetic)
            for q in scenario.queues
        ]
        self._handle = [
            _handle_sampler(q.handle, random.Random(f"{seed}:handle:{q.id}"), antithetic)
            for q in scenario.queues
        ]
        self._patience = [
            _exponential(random.Random(f"{seed}:patience:{q.id}"), q.patience_s, antithetic)
            if q.patience_s is not None
            else None
            for q in scenario.queues
        ]
        self._heap: list[tuple[float, int, int, object]] = []
        self._seq = 0
        self._calls: list[_Call] = []
        self._by_id: dict[str, _Call] = {}
        self._live_offers: set[str] = set()
        # engine calls to make at this same instant once the current effects are applied
        self._soon: deque[tuple[str, str]] = deque()
        self._agent_state: dict[str, AgentState] = {}
        self._busy_since: dict[str, float] = {}
        self._busy_s: dict[str, float] = {}
        self._window = (math.inf, math.inf)
        self._unresolved = 0
        self._engine_calls = 0
        self._events = 0
        self._entering: _Call | None = None
        self.counters: dict[str, int] = {
            "offers": 0,
            "prompts_played": 0,
            "stop_ringing": 0,
            "overflow_events": 0,
            "engine_wait_mismatch": 0,
        }
        self._handlers: dict[type, Callable[[Effect], None]] = {
            RingAgent: self._on_ring,  # type: ignore[dict-item]
            ConnectAgent: self._on_connect,  # type: ignore[dict-item]
            StopRinging: self._on_stop_ringing,  # type: ignore[dict-item]
            RouteOverflow: self._on_route_overflow,  # type: ignore[dict-item]
            AgentStateChanged: self._on_agent_state,  # type: ignore[dict-item]
            CallLeftQueue: self._on_left_queue,  # type: ignore[dict-item]
            CallQueued: self._on_queued,  # type: ignore[dict-item]
            CallPositionChanged: self._on_position,  # type: ignore[dict-item]
            CallOverflowed: self._on_overflowed,  # type: ignore[dict-item]
            PlayToCaller: self._on_play,  # type: ignore[dict-item]
        }

    # -- driving ----------------------------------------------------------------------------

    def run(self) -> SimResult:
        """Simulate every call of the scenario until all have left the ACD."""
        wall = time.perf_counter()
        scenario = self.scenario
        agent_pool = dict(scenario.agent_ids())
        for agent_id in agent_pool:
            self._busy_s[agent_id] = 0.0
            self._agent_state[agent_id] = AgentState.LOGGED_OUT
        for agent_id in agent_pool:
            self._apply(self._call("login", agent_id, self.now, ready=True, by="sim"))
        for index in range(len(scenario.queues)):
            self._schedule_arrival(index)
        self._loop()
        end = self._window[1]
        for agent_id, since in self._busy_since.items():
            self._add_busy(agent_id, since, end)
        calls = self._calls
        return SimResult(
            scenario=scenario,
            queue_ids=self._queue_ids,
            call_queue=[c.queue for c in calls],
            call_state=[c.state for c in calls],
            call_arrival=[c.arrival for c in calls],
            call_wait=[
                c.end - c.arrival if c.state in (ANSWERED, ABANDONED, OVERFLOWED) else math.nan
                for c in calls
            ],
            call_ewt=[c.announced_ewt for c in calls],
            call_handle=[c.handle_s for c in calls],
            call_patience=[c.patience_s for c in calls],
            measured=list(range(min(scenario.warmup_calls, len(calls)), len(calls))),
            window_s=self._window[1] - self._window[0] if math.isfinite(self._window[0]) else 0.0,
            gaps=max(0, len(calls) - scenario.warmup_calls - 1),
            agent_pool=agent_pool,
            agent_busy_s=self._busy_s,
            virtual_s=self.now - self.start,
            wall_s=time.perf_counter() - wall,
            events=self._events,
            engine_calls=self._engine_calls,
            counters=self.counters,
        )

    def _loop(self) -> None:
        heap = self._heap
        engine = self.engine
        pop = heapq.heappop
        calls_total = self.scenario.calls
        same_instant = 0
        while heap or self._unresolved:
            deadline = engine.next_deadline()
            if deadline is not None and (not heap or deadline <= heap[0][0]):
                at = max(deadline, self.now)
                same_instant = same_instant + 1 if at == self.now else 0
                if same_instant > _MAX_TICKS_AT_ONE_INSTANT:
                    raise SimulationError(
                        f"engine.next_deadline() stays at {at - self.start:.6f}s after tick: "
                        "its timer never fires"
                    )
                self.now = at
                self._apply(self._call("tick", at))
                continue
            if not heap:
                waiting = [c.call_id for c in self._calls if c.state in (WAITING, RINGING)]
                raise SimulationError(
                    f"{self._unresolved} call(s) still in the ACD with nothing scheduled "
                    f"(e.g. {waiting[:5]}): a call waits while no timer or event can move it"
                )
            at, _seq, kind, what = pop(heap)
            self.now = at
            same_instant = 0
            self._events += 1
            if kind == _ARRIVAL:
                self._arrive(what, calls_total)  # type: ignore[arg-type]
            elif kind == _TALK_END:
                call: _Call = what  # type: ignore[assignment]
                self._apply(self._call("call_ended", call.call_id, at))
                call.state = ANSWERED
            elif kind == _ABANDON:
                call = what  # type: ignore[assignment]
                if call.state in (WAITING, RINGING):
                    call.state = ABANDONED
                    call.end = at
                    self._unresolved -= 1
                    self._apply(self._call("call_ended", call.call_id, at))
            else:
                offer: tuple[str, str] = what  # type: ignore[assignment]
                if offer[0] in self._live_offers:
                    self._apply(self._call("offer_answered", offer[0], offer[1], at))

    def _push(self, at: float, kind: int, what: object) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, kind, what))

    def _schedule_arrival(self, queue: int) -> None:
        self._push(self.now + self._interarrival[queue](), _ARRIVAL, queue)

    def _arrive(self, queue: int, calls_total: int) -> None:
        index = len(self._calls)
        if index >= calls_total:
            return
        now = self.now
        spec = self.scenario.queues[queue]
        call = _Call(index, f"c{index}", queue, now, self._handle[queue]())
        self._calls.append(call)
        self._by_id[call.call_id] = call
        self._unresolved += 1
        warmup = self.scenario.warmup_calls
        if index == warmup:
            self._window = (now, math.inf)
        if index == calls_total - 1:
            self._window = (self._window[0], now)
        else:
            self._schedule_arrival(queue)
        patience = self._patience[queue]
        if patience is not None:
            call.patience_s = patience()
            self._push(now + call.patience_s, _ABANDON, call)
        self._entering = call
        request = CallRequest(
            call_id=call.call_id,
            queue_id=spec.id,
            caller_number=f"+1555{index:07d}",
            language="en",
            channel_uuid=call.call_id,
        )
        self._apply(self._call("enqueue", request, now))
        self._entering = None
        if call.state != WAITING:
            # offered at once: nothing was announced to a caller who never waited
            call.announced_ewt = math.nan

    def _call(self, method: str, *args: object, **kwargs: object) -> list[Effect]:
        self._engine_calls += 1
        try:
            effects: list[Effect] = getattr(self.engine, method)(*args, **kwargs)
        except Exception as err:
            shown = ", ".join(
                [*(repr(a) for a in args[:2]), *(f"{k}={v!r}" for k, v in kwargs.items())]
            )
            raise SimulationError(
                f"engine.{method}({shown}) at t={self.now - self.start:.6f}s raised "
                f"{type(err).__name__}: {err}"
            ) from err
        return effects

    def _apply(self, effects: list[Effect]) -> None:
        handlers = self._handlers
        for effect in effects:
            handler = handlers.get(type(effect))
            if handler is not None:
                handler(effect)
        soon = self._soon
        while soon:
            offer_id, agent_id = soon.popleft()
            if offer_id in self._live_offers:
                self._apply(self._call("offer_answered", offer_id, agent_id, self.now))

    # -- effects ----------------------------------------------------------------------------

    def _on_ring(self, effect: RingAgent) -> None:
        self.counters["offers"] += 1
        call = self._by_id.get(effect.call_id)
        if call is None:
            raise SimulationError(f"RingAgent for unknown call {effect.call_id!r}")
        if call.state not in (WAITING, RINGING):
            raise SimulationError(
                f"RingAgent {effect.offer_id} for call {effect.call_id} that is no longer waiting"
            )
        call.state = RINGING
        self._live_offers.add(effect.offer_id)
        ring_s = self.scenario.ring_s
        if ring_s <= 0:
            self._soon.append((effect.offer_id, effect.agent_id))
        else:
            self._apply(self._call("offer_ringing", effect.offer_id, effect.agent_id, self.now))
            self._push(self.now + ring_s, _ANSWER, (effect.offer_id, effect.agent_id))

    def _on_connect(self, effect: ConnectAgent) -> None:
        self._live_offers.discard(effect.offer_id)
        call = self._by_id[effect.call_id]
        if call.state not in (WAITING, RINGING):
            raise SimulationError(f"ConnectAgent for call {effect.call_id} that is not waiting")
        call.state = TALKING
        call.end = self.now
        self._unresolved -= 1
        self._push(self.now + call.handle_s, _TALK_END, call)

    def _on_stop_ringing(self, effect: StopRinging) -> None:
        self.counters["stop_ringing"] += 1
        self._live_offers.discard(effect.offer_id)

    def _on_route_overflow(self, effect: RouteOverflow) -> None:
        self._left(effect.call_id)

    def _on_overflowed(self, effect: CallOverflowed) -> None:
        self.counters["overflow_events"] += 1

    def _left(self, call_id: str) -> None:
        call = self._by_id.get(call_id)
        if call is not None and call.state in (WAITING, RINGING):
            call.state = OVERFLOWED
            call.end = self.now
            self._unresolved -= 1

    def _on_left_queue(self, effect: CallLeftQueue) -> None:
        call = self._by_id.get(effect.call_id)
        if call is None:
            return
        if effect.reason is LeaveReason.ANSWERED or effect.reason is LeaveReason.ABANDONED:
            if abs(effect.wait_s - (self.now - call.arrival)) > 1e-6:
                self.counters["engine_wait_mismatch"] += 1
        elif effect.reason is not LeaveReason.OVERFLOWED:
            # timeout/rejected/error without a RouteOverflow: out of the ACD all the same
            self._left(effect.call_id)

    def _on_queued(self, effect: CallQueued) -> None:
        # A queue-to-queue overflow puts the call in its new queue: waiting again.
        call = self._by_id.get(effect.call_id)
        if call is not None and call.state == OVERFLOWED:
            call.state = WAITING
            call.end = math.nan
            self._unresolved += 1

    def _on_position(self, effect: CallPositionChanged) -> None:
        call = self._entering
        if call is not None and call.call_id == effect.call_id:
            call.announced_ewt = effect.estimated_wait_s

    def _on_play(self, effect: PlayToCaller) -> None:
        self.counters["prompts_played"] += len(effect.prompts)
        call = self._entering
        if call is None or call.call_id != effect.call_id or not math.isnan(call.announced_ewt):
            return
        for prompt in effect.prompts:
            for key, value in prompt.params.items():
                if "wait" in key:
                    try:
                        call.announced_ewt = float(value)
                    except ValueError:
                        continue

    def _on_agent_state(self, effect: AgentStateChanged) -> None:
        agent_id = effect.agent_id
        self._agent_state[agent_id] = effect.to_state
        was_busy = effect.from_state in BUSY_STATES
        busy = effect.to_state in BUSY_STATES
        if busy and not was_busy:
            self._busy_since[agent_id] = self.now
        elif was_busy and not busy:
            since = self._busy_since.pop(agent_id, self.now)
            self._add_busy(agent_id, since, self.now)

    def _add_busy(self, agent_id: str, since: float, until: float) -> None:
        start, end = self._window
        low = max(since, start)
        high = min(until, end)
        if high > low:
            self._busy_s[agent_id] += high - low
