"""What the engine asks the world to do (commands) and what it tells the world (events).

Every engine method returns ``list[Effect]`` in the order they must be carried out. The runtime
turns commands into switch commands (fenced with the lease token) and events into proto events on
the bus; the simulator applies them to its virtual world. The engine never does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from callmesh.acd.domain.config import OverflowReason, OverflowTarget
from callmesh.core.errors import DomainError


class AgentState(StrEnum):
    """The agent state machine (proto AgentState)."""

    LOGGED_OUT = "logged_out"
    NOT_READY = "not_ready"
    READY = "ready"
    RESERVED = "reserved"
    RINGING = "ringing"
    ON_CALL = "on_call"
    AFTER_CALL_WORK = "after_call_work"
    BREAK = "break"


class LeaveReason(StrEnum):
    """Why a call left its queue (proto QueueLeaveReason)."""

    ANSWERED = "answered"
    ABANDONED = "abandoned"
    OVERFLOWED = "overflowed"
    TIMEOUT = "timeout"
    TRANSFERRED = "transferred"
    REJECTED = "rejected"
    ERROR = "error"


class NoAnswerReason(StrEnum):
    """Why an offer failed (proto NoAnswerReason)."""

    TIMEOUT = "timeout"
    REJECTED = "rejected"
    BUSY = "busy"
    UNREACHABLE = "unreachable"
    SWITCH_ERROR = "switch_error"


class StopReason(StrEnum):
    """Why the engine stops an agent's phone ringing."""

    # another agent of a ring-all/progressive offer answered first
    ANSWERED_ELSEWHERE = "answered_elsewhere"
    CALLER_ABANDONED = "caller_abandoned"
    AGENT_LOGGED_OUT = "agent_logged_out"
    TIMEOUT = "timeout"
    # the call left the queue while ringing (overflow, transfer, removal)
    CALL_LEFT = "call_left"


class AcdRefused(DomainError):
    """The state machine or the tenant's rules do not allow the request now.

    ``code`` is one of ``unknown_agent``, ``unknown_queue``, ``refused`` (message says why, e.g.
    "break: 2 of group 'day' already on break, the maximum is 2"), ``invalid_input``.
    """

    code = "refused"
    status = 409


# ---------------------------------------------------------------------------------------------
# Commands: the runtime must carry these out (switch commands); the engine learns the outcome
# through its methods (offer_ringing / offer_answered / offer_failed / call_ended ...).


@dataclass(frozen=True)
class Prompt:
    """A prompt id with its parameters, e.g. ``Prompt("acd/position", {"position": "3"})``."""

    prompt_id: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PlayToCaller:
    """Play prompts to the waiting caller, then music on hold (``moh``) in a loop when set."""

    call_id: str
    prompts: tuple[Prompt, ...]
    language: str
    moh: str = ""


@dataclass(frozen=True)
class RingAgent:
    """Originate to the agent's endpoint for this call; the offer lives until the engine hears
    answered/failed or sends StopRinging."""

    offer_id: str
    call_id: str
    agent_id: str
    endpoint: str
    queue_id: str
    timeout_s: float
    attempt: int


@dataclass(frozen=True)
class StopRinging:
    """Hang up the agent leg of an offer that will not be connected."""

    offer_id: str
    call_id: str
    agent_id: str
    reason: StopReason


@dataclass(frozen=True)
class ConnectAgent:
    """The agent answered: (optionally greet the caller with the agent id) then bridge."""

    offer_id: str
    call_id: str
    agent_id: str
    greeting: Prompt | None = None


@dataclass(frozen=True)
class RouteOverflow:
    """Send the call out of the ACD: to an IVR flow, voicemail, or an announcement and release
    (queue-to-queue overflow stays inside the engine and only emits ``CallOverflowed``)."""

    call_id: str
    queue_id: str
    reason: OverflowReason
    target: OverflowTarget
    language: str


# ---------------------------------------------------------------------------------------------
# Events: the runtime publishes each as the proto event of the same meaning.


@dataclass(frozen=True)
class AgentLoggedIn:
    agent_id: str
    endpoint: str
    skills: dict[str, int]
    groups: tuple[str, ...]
    site: str


@dataclass(frozen=True)
class AgentLoggedOut:
    agent_id: str
    reason: str
    forced_by: str


@dataclass(frozen=True)
class AgentStateChanged:
    agent_id: str
    from_state: AgentState
    to_state: AgentState
    reason: str
    changed_by: str


@dataclass(frozen=True)
class AgentOffered:
    agent_id: str
    call_id: str
    queue_id: str
    timeout_s: float
    attempt: int


@dataclass(frozen=True)
class AgentAnswered:
    agent_id: str
    call_id: str
    queue_id: str
    ring_s: float


@dataclass(frozen=True)
class AgentNoAnswer:
    agent_id: str
    call_id: str
    queue_id: str
    reason: NoAnswerReason
    ring_s: float


@dataclass(frozen=True)
class CallQueued:
    call_id: str
    queue_id: str
    priority: int
    position: int
    enqueued_at: float
    data: dict[str, str]


@dataclass(frozen=True)
class CallPositionChanged:
    call_id: str
    queue_id: str
    position: int
    estimated_wait_s: float


@dataclass(frozen=True)
class CallLeftQueue:
    call_id: str
    queue_id: str
    reason: LeaveReason
    wait_s: float
    agent_id: str = ""


@dataclass(frozen=True)
class CallOverflowed:
    call_id: str
    queue_id: str
    reason: OverflowReason
    target: OverflowTarget
    wait_s: float


Command = PlayToCaller | RingAgent | StopRinging | ConnectAgent | RouteOverflow
Event = (
    AgentLoggedIn
    | AgentLoggedOut
    | AgentStateChanged
    | AgentOffered
    | AgentAnswered
    | AgentNoAnswer
    | CallQueued
    | CallPositionChanged
    | CallLeftQueue
    | CallOverflowed
)
Effect = Command | Event
