"""What a tenant configures for its ACD: queues, agent profiles, groups, VIP lists, routing tables.

Plain frozen dataclasses, validated where they are built (the API's pydantic models turn into
these); the engine takes them as they are. Times are seconds (float), levels 1-5.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class CallOrder(StrEnum):
    """Call-selection rules, applied in the order a queue lists them (ACD-1)."""

    # queue priority + customer priority (VIP list / data package) + aging per second waited
    PRIORITY = "priority"
    # the longest-waiting call first (by the original enqueue time, kept across overflow)
    LONGEST_WAIT = "longest_wait"


class AgentStrategy(StrEnum):
    """Agent-selection rules (ACD-1, ACD-2); a queue lists one or more, the first decides and
    later ones break its ties."""

    LONGEST_IDLE = "longest_idle"
    LEAST_TALK_TIME = "least_talk_time"
    FEWEST_CALLS = "fewest_calls"
    ROUND_ROBIN = "round_robin"
    LINEAR = "linear"
    RANDOM = "random"
    HIGHEST_SKILL = "highest_skill"


class RingMode(StrEnum):
    """How an offer rings agents: one at a time (default), every eligible agent at once, or one
    more eligible agent every ``progressive_step_s`` (groups of hard phones, ACD-2)."""

    SINGLE = "single"
    RING_ALL = "ring_all"
    PROGRESSIVE = "progressive"


class OverflowReason(StrEnum):
    """Why a call leaves its queue for somewhere else (ACD-3)."""

    MAX_WAIT = "max_wait"
    MAX_LENGTH = "max_length"
    NO_AGENTS_LOGGED_IN = "no_agents_logged_in"
    NO_AGENTS_READY = "no_agents_ready"
    CLOSED = "closed"


class OverflowKind(StrEnum):
    """Where an overflowing call goes."""

    QUEUE = "queue"
    IVR_FLOW = "ivr_flow"
    VOICEMAIL = "voicemail"
    # play the announcement ``target`` (a media id or TTS text key) and release the call
    ANNOUNCEMENT = "announcement"


@dataclass(frozen=True)
class OverflowTarget:
    """An overflow destination: a queue id, an IVR flow id, a voicemail box, an announcement."""

    kind: OverflowKind
    target: str


@dataclass(frozen=True)
class RequirementStep:
    """Expanding requirements: from ``after_s`` seconds of waiting, agents need the queue's skill
    at ``min_level`` or more; ``min_level`` None = any agent of the queue (no skill needed)."""

    after_s: float
    min_level: int | None


@dataclass(frozen=True)
class Announcements:
    """The waiting experience (ACD-4). Media values are prompt ids the runtime resolves per
    language (``{lang}`` in a value is replaced by the caller's language); empty = none."""

    moh: str = "moh/default"
    entry: str = ""
    # every ``periodic_every_s`` seconds while waiting (0 = never)
    periodic: str = ""
    periodic_every_s: float = 0.0
    # announce the caller's position / estimated wait at entry and every ``periodic_every_s``
    position: bool = False
    estimated_wait: bool = False
    # play "agent <id> is serving you" to the caller before bridging (AGT-2)
    agent_id_greeting: bool = False
    languages: tuple[str, ...] = ("zh-CN",)


@dataclass(frozen=True)
class StickyConfig:
    """Sticky agent: the agent who last served this caller within ``within_s`` gets the first
    offer; the call waits up to ``wait_s`` for that agent to become ready before normal routing."""

    within_s: float = 24 * 3600.0
    wait_s: float = 20.0


@dataclass(frozen=True)
class QueueConfig:
    """One queue (a service/skill group) of a tenant."""

    queue_id: str
    name: str = ""
    # higher is served first when agents serve several queues
    priority: int = 0
    # the skill agents need; None = every agent listed in ``agents`` or in ``groups``
    skill: str | None = None
    # agents or groups that belong to the queue regardless of skill (may be empty)
    agents: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    # expanding requirements, sorted by after_s; empty = skill level >= 1 for the whole wait
    steps: tuple[RequirementStep, ...] = ()
    call_order: tuple[CallOrder, ...] = (CallOrder.PRIORITY, CallOrder.LONGEST_WAIT)
    # priority points a call gains per second waited
    aging_per_s: float = 0.0
    strategies: tuple[AgentStrategy, ...] = (AgentStrategy.LONGEST_IDLE,)
    ring: RingMode = RingMode.SINGLE
    progressive_step_s: float = 5.0
    sticky: StickyConfig | None = None
    # look up the caller in the tenant's customer->agent routing table first
    use_routing_table: bool = False
    no_answer_timeout_s: float = 20.0
    # not-ready reason set on an agent who did not answer (AGT-6)
    no_answer_reason: str = "no_answer"
    # after-call work; 0 = straight back to ready
    wrap_up_s: float = 0.0
    # 0 = unlimited
    max_wait_s: float = 0.0
    max_length: int = 0
    # overflow when nobody of the queue has been ready for this long (0 = never)
    no_agents_ready_s: float = 0.0
    service_level_s: float = 20.0
    # business calendar id (admin's calendars); None = always open
    calendar_id: str | None = None
    overflow: dict[OverflowReason, OverflowTarget] = field(default_factory=dict)
    announcements: Announcements = field(default_factory=Announcements)


@dataclass(frozen=True)
class AgentProfile:
    """An agent as the tenant configured them (the API's agent profile)."""

    agent_id: str
    # the user id in admin (who logs in as this agent)
    user_id: str = ""
    display_name: str = ""
    # where offers ring: "user:<sip user>", "gateway:<gw>:<number>", "node:<node>:<number>" or
    # "dial:<dial string>" (see callmesh.acd.runtime.commands)
    endpoint: str = ""
    skills: dict[str, int] = field(default_factory=dict)
    groups: tuple[str, ...] = ()
    # per media channel; voice = 1 (chat/e-mail will use the same model)
    capacity: dict[str, int] = field(default_factory=lambda: {"voice": 1})
    site: str = ""
    # position for the LINEAR strategy (lower first)
    order: int = 0


@dataclass(frozen=True)
class GroupConfig:
    """A logical group of agents; ``max_on_break`` 0 = breaks never limited (AGT-5)."""

    group_id: str
    name: str = ""
    max_on_break: int = 0


@dataclass(frozen=True)
class TenantAcdConfig:
    """Everything of one tenant the engine needs; the runtime rebuilds it on every change."""

    tenant_id: str
    queues: dict[str, QueueConfig] = field(default_factory=dict)
    agents: dict[str, AgentProfile] = field(default_factory=dict)
    groups: dict[str, GroupConfig] = field(default_factory=dict)
    # caller number -> customer priority bonus
    vip: dict[str, int] = field(default_factory=dict)
    # caller number -> agent id (customer->agent routing table)
    routing_table: dict[str, str] = field(default_factory=dict)
    # data-package key whose integer value adds to a call's priority (e.g. "priority")
    priority_data_key: str = "priority"
