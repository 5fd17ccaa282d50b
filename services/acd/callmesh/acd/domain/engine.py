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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from callmesh.acd.domain.config import TenantAcdConfig
from callmesh.acd.domain.effects import AgentState, Effect, NoAnswerReason

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


class AcdEngine:
    """The ACD of one tenant."""

    def __init__(
        self,
        config: TenantAcdConfig,
        *,
        calendar: CalendarCheck | None = None,
        seed: int = 0,
    ) -> None:
        raise NotImplementedError

    # -- configuration (takes effect at once; waiting calls of a removed queue overflow/leave) --

    def configure(self, config: TenantAcdConfig, now: float) -> list[Effect]:
        """Replace the tenant's configuration (queues, profiles, groups, VIP, routing table)."""
        raise NotImplementedError

    # -- agents -------------------------------------------------------------------------------

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
        raise NotImplementedError

    def set_ready(self, agent_id: str, now: float, *, by: str = "") -> list[Effect]:
        """Ready (from not-ready, break, after-call work); forced when ``by`` is a supervisor."""
        raise NotImplementedError

    def set_not_ready(
        self, agent_id: str, reason: str, now: float, *, by: str = ""
    ) -> list[Effect]:
        """Not ready with a reason; while reserved/ringing/on call it applies when the call ends."""
        raise NotImplementedError

    def request_break(
        self, agent_id: str, reason: str, now: float, *, by: str = "", forced: bool = False
    ) -> list[Effect]:
        """Break with reason; refused (AcdRefused) when a group of the agent is at its maximum
        (unless forced by a supervisor) or the agent is on a call."""
        raise NotImplementedError

    def end_wrap_up(self, agent_id: str, now: float, *, by: str = "") -> list[Effect]:
        """Leave after-call work early → ready (or the pending not-ready)."""
        raise NotImplementedError

    def logout(
        self, agent_id: str, now: float, *, reason: str = "", forced_by: str = ""
    ) -> list[Effect]:
        """Log out; a live offer is stopped and its call goes back to the head of its queue;
        temporary skill changes revert (AGT-9)."""
        raise NotImplementedError

    def set_skills(
        self, agent_id: str, skills: Mapping[str, int], now: float, *, temporary: bool
    ) -> list[Effect]:
        """Change a logged-in agent's skills at once; temporary ones last until logout."""
        raise NotImplementedError

    # -- calls --------------------------------------------------------------------------------

    def enqueue(self, call: CallRequest, now: float) -> list[Effect]:
        """Queue a call (idempotent by call_id): entry prompts + MOH, overflow checks, route."""
        raise NotImplementedError

    def offer_ringing(self, offer_id: str, agent_id: str, now: float) -> list[Effect]:
        """The agent's phone rings (RESERVED → RINGING)."""
        raise NotImplementedError

    def offer_answered(self, offer_id: str, agent_id: str, now: float) -> list[Effect]:
        """The agent answered: ConnectAgent, other ringing agents stopped, call leaves the queue."""
        raise NotImplementedError

    def offer_failed(
        self, offer_id: str, agent_id: str, reason: NoAnswerReason, now: float
    ) -> list[Effect]:
        """No answer/reject/busy/unreachable/switch error: the call goes back to the head of its
        queue, the agent to not-ready with the queue's no_answer_reason (AGT-6)."""
        raise NotImplementedError

    def call_ended(self, call_id: str, now: float) -> list[Effect]:
        """The caller hung up (waiting: abandoned; during an offer: stop ringing, release the
        agent at once) or the connected call ended (agent → after-call work or ready)."""
        raise NotImplementedError

    def call_transferred(self, call_id: str, now: float) -> list[Effect]:
        """The connected call was transferred away from the agent (agent → after-call work)."""
        raise NotImplementedError

    def remove_call(self, call_id: str, now: float, *, reason: str = "error") -> list[Effect]:
        """Take a waiting call out (switch error, call moved elsewhere)."""
        raise NotImplementedError

    # -- time ---------------------------------------------------------------------------------

    def tick(self, now: float) -> list[Effect]:
        """Fire every timer due at ``now`` and route."""
        raise NotImplementedError

    def next_deadline(self) -> float | None:
        """When ``tick`` next has something to do (None: nothing scheduled)."""
        raise NotImplementedError

    # -- views --------------------------------------------------------------------------------

    def queue_view(self, queue_id: str, now: float) -> QueueView:
        raise NotImplementedError

    def queue_views(self, now: float) -> list[QueueView]:
        raise NotImplementedError

    def agent_view(self, agent_id: str, now: float) -> AgentView:
        raise NotImplementedError

    def agent_views(self, now: float) -> list[AgentView]:
        raise NotImplementedError

    def waiting_calls(self, queue_id: str, now: float) -> list[WaitingCallView]:
        raise NotImplementedError

    def estimated_wait(self, queue_id: str, position: int, now: float) -> float:
        """EWT in seconds for a caller at ``position`` (1-based) from recent handle times and
        the agents serving the queue."""
        raise NotImplementedError

    def agent_state(self, agent_id: str) -> AgentState:
        """LOGGED_OUT for an agent not logged in."""
        raise NotImplementedError

    def offer_of_call(self, call_id: str) -> list[tuple[str, str]]:
        """Live offers of a call as (offer_id, agent_id)."""
        raise NotImplementedError

    # -- persistence --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state (waiting calls with original enqueue times and data, agents with
        states/since/counters, live offers, round-robin memory, sticky memory, timers) so a new
        owner continues where this one stopped."""
        raise NotImplementedError

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
        """Rebuild from a snapshot (config from the store, which may have changed meanwhile)."""
        raise NotImplementedError
