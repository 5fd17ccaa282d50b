"""The ACD API's bodies: pydantic models, their rules, and their conversion to the domain config.

Shape rules (types, ranges, patterns, enums) are pydantic's and answer 422 naming ``body.<field>``
and the rule; rules across fields (steps sorted, overflow not to itself …) are ``check_*`` here and
answer the same way through ``InvalidInput``.
"""

# No ``from __future__ import annotations``: FastAPI evaluates the models' Annotated aliases.
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from callmesh.acd.adapters.config_store import RoutingEntry, Skill, VipEntry
from callmesh.acd.domain.config import (
    AgentProfile,
    AgentStrategy,
    Announcements,
    CallOrder,
    GroupConfig,
    OverflowKind,
    OverflowReason,
    OverflowTarget,
    QueueConfig,
    RequirementStep,
    RingMode,
    StickyConfig,
)
from callmesh.core.errors import InvalidInput

T = TypeVar("T")

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
NUMBER_PATTERN = r"^\+?[0-9A-Za-z*#_.-]{1,64}$"
Id = Annotated[str, Field(pattern=ID_PATTERN, description="letters, digits, '_', '.', '-'")]
Number = Annotated[str, Field(pattern=NUMBER_PATTERN, description="a caller number")]
Text = Annotated[str, Field(max_length=200)]
Level = Annotated[int, Field(ge=1, le=5)]
DAY = 86400.0
Seconds = Annotated[float, Field(ge=0, le=DAY)]
Positive = Annotated[float, Field(gt=0, le=DAY)]

CallOrderName = Literal["priority", "longest_wait"]
StrategyName = Literal[
    "longest_idle", "least_talk_time", "fewest_calls", "round_robin", "linear", "random",
    "highest_skill",
]  # fmt: skip
RingName = Literal["single", "ring_all", "progressive"]
ReasonName = Literal["max_wait", "max_length", "no_agents_logged_in", "no_agents_ready", "closed"]
KindName = Literal["queue", "ivr_flow", "voicemail", "announcement"]
assert set(CallOrderName.__args__) == {o.value for o in CallOrder}  # type: ignore[attr-defined]
assert set(StrategyName.__args__) == {s.value for s in AgentStrategy}  # type: ignore[attr-defined]
assert set(RingName.__args__) == {r.value for r in RingMode}  # type: ignore[attr-defined]
assert set(ReasonName.__args__) == {r.value for r in OverflowReason}  # type: ignore[attr-defined]
assert set(KindName.__args__) == {k.value for k in OverflowKind}  # type: ignore[attr-defined]


class Model(BaseModel):
    """Bodies refuse unknown fields and non-finite numbers."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class PageOut(BaseModel, Generic[T]):
    """A page of results; pass ``next`` back as ``after`` for the following page."""

    items: list[T]
    next: str | None = None


# ---------------------------------------------------------------------------------------------
# Skills and groups


class SkillBody(Model):
    """A skill of the tenant's catalog."""

    skill_id: Id
    name: Text = ""
    description: Annotated[str, Field(max_length=1000)] = ""

    def domain(self) -> Skill:
        """As stored."""
        return Skill(self.skill_id, self.name, self.description)

    @classmethod
    def of(cls, skill: Skill) -> "SkillBody":
        """From the stored skill."""
        return cls(skill_id=skill.skill_id, name=skill.name, description=skill.description)


class GroupBody(Model):
    """A logical group of agents; ``max_on_break`` 0 = breaks not limited."""

    group_id: Id
    name: Text = ""
    max_on_break: Annotated[int, Field(ge=0, le=10000)] = 0

    def domain(self) -> GroupConfig:
        """As the engine takes it."""
        return GroupConfig(self.group_id, self.name, self.max_on_break)

    @classmethod
    def of(cls, group: GroupConfig) -> "GroupBody":
        """From the domain's group."""
        return cls(group_id=group.group_id, name=group.name, max_on_break=group.max_on_break)


# ---------------------------------------------------------------------------------------------
# Queues


class StepBody(Model):
    """From ``after_s`` seconds of waiting, agents need the queue's skill at ``min_level`` or
    more; null = any agent of the queue."""

    after_s: Seconds
    min_level: Level | None


class OverflowBody(Model):
    """Where an overflowing call goes: a queue id, an IVR flow id, a voicemail box, or an
    announcement played before release."""

    kind: KindName
    target: Annotated[str, Field(min_length=1, max_length=200)]


class StickyBody(Model):
    """Sticky agent: who served the caller within ``within_s`` gets the first offer, the call
    waiting up to ``wait_s`` for them."""

    within_s: Positive = 24 * 3600.0
    wait_s: Seconds = 20.0


class AnnouncementsBody(Model):
    """The waiting experience; media values are prompt ids (``{lang}`` = the caller's language)."""

    moh: Text = "moh/default"
    entry: Text = ""
    periodic: Text = ""
    periodic_every_s: Seconds = 0.0
    position: bool = False
    estimated_wait: bool = False
    agent_id_greeting: bool = False
    languages: Annotated[
        list[Annotated[str, Field(pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")]],
        Field(min_length=1, max_length=20),
    ] = ["zh-CN"]


class QueueBody(Model):
    """A queue: who serves it, how calls and agents are chosen, what callers hear, overflow."""

    queue_id: Id
    name: Text = ""
    priority: Annotated[int, Field(ge=-1000, le=1000)] = 0
    skill: Id | None = None
    agents: Annotated[list[Id], Field(max_length=10000)] = []
    groups: Annotated[list[Id], Field(max_length=1000)] = []
    steps: Annotated[list[StepBody], Field(max_length=20)] = []
    call_order: Annotated[list[CallOrderName], Field(min_length=1, max_length=2)] = [
        "priority",
        "longest_wait",
    ]
    aging_per_s: Annotated[float, Field(ge=0, le=1000)] = 0.0
    strategies: Annotated[list[StrategyName], Field(min_length=1, max_length=7)] = ["longest_idle"]
    ring: RingName = "single"
    progressive_step_s: Positive = 5.0
    sticky: StickyBody | None = None
    use_routing_table: bool = False
    no_answer_timeout_s: Positive = 20.0
    no_answer_reason: Annotated[str, Field(min_length=1, max_length=64)] = "no_answer"
    wrap_up_s: Seconds = 0.0
    max_wait_s: Seconds = 0.0
    max_length: Annotated[int, Field(ge=0, le=100000)] = 0
    no_agents_ready_s: Seconds = 0.0
    service_level_s: Positive = 20.0
    calendar_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    overflow: dict[ReasonName, OverflowBody] = {}
    announcements: AnnouncementsBody = AnnouncementsBody()

    def domain(self) -> QueueConfig:
        """As the engine takes it (after ``check_queue``)."""
        a = self.announcements
        return QueueConfig(
            queue_id=self.queue_id,
            name=self.name,
            priority=self.priority,
            skill=self.skill,
            agents=tuple(self.agents),
            groups=tuple(self.groups),
            steps=tuple(RequirementStep(s.after_s, s.min_level) for s in self.steps),
            call_order=tuple(CallOrder(o) for o in self.call_order),
            aging_per_s=self.aging_per_s,
            strategies=tuple(AgentStrategy(s) for s in self.strategies),
            ring=RingMode(self.ring),
            progressive_step_s=self.progressive_step_s,
            sticky=(
                None
                if self.sticky is None
                else StickyConfig(within_s=self.sticky.within_s, wait_s=self.sticky.wait_s)
            ),
            use_routing_table=self.use_routing_table,
            no_answer_timeout_s=self.no_answer_timeout_s,
            no_answer_reason=self.no_answer_reason,
            wrap_up_s=self.wrap_up_s,
            max_wait_s=self.max_wait_s,
            max_length=self.max_length,
            no_agents_ready_s=self.no_agents_ready_s,
            service_level_s=self.service_level_s,
            calendar_id=self.calendar_id,
            overflow={
                OverflowReason(r): OverflowTarget(OverflowKind(t.kind), t.target)
                for r, t in self.overflow.items()
            },
            announcements=Announcements(
                moh=a.moh,
                entry=a.entry,
                periodic=a.periodic,
                periodic_every_s=a.periodic_every_s,
                position=a.position,
                estimated_wait=a.estimated_wait,
                agent_id_greeting=a.agent_id_greeting,
                languages=tuple(a.languages),
            ),
        )

    @classmethod
    def of(cls, queue: QueueConfig) -> "QueueBody":
        """From the domain's queue."""
        a = queue.announcements
        data: dict[str, Any] = {
            "queue_id": queue.queue_id,
            "name": queue.name,
            "priority": queue.priority,
            "skill": queue.skill,
            "agents": list(queue.agents),
            "groups": list(queue.groups),
            "steps": [{"after_s": s.after_s, "min_level": s.min_level} for s in queue.steps],
            "call_order": [o.value for o in queue.call_order],
            "aging_per_s": queue.aging_per_s,
            "strategies": [s.value for s in queue.strategies],
            "ring": queue.ring.value,
            "progressive_step_s": queue.progressive_step_s,
            "sticky": (
                None
                if queue.sticky is None
                else {"within_s": queue.sticky.within_s, "wait_s": queue.sticky.wait_s}
            ),
            "use_routing_table": queue.use_routing_table,
            "no_answer_timeout_s": queue.no_answer_timeout_s,
            "no_answer_reason": queue.no_answer_reason,
            "wrap_up_s": queue.wrap_up_s,
            "max_wait_s": queue.max_wait_s,
            "max_length": queue.max_length,
            "no_agents_ready_s": queue.no_agents_ready_s,
            "service_level_s": queue.service_level_s,
            "calendar_id": queue.calendar_id,
            "overflow": {
                r.value: {"kind": t.kind.value, "target": t.target}
                for r, t in queue.overflow.items()
            },
            "announcements": {
                "moh": a.moh,
                "entry": a.entry,
                "periodic": a.periodic,
                "periodic_every_s": a.periodic_every_s,
                "position": a.position,
                "estimated_wait": a.estimated_wait,
                "agent_id_greeting": a.agent_id_greeting,
                "languages": list(a.languages),
            },
        }
        return cls.model_validate(data)


def _unique(field: str, values: list[str]) -> None:
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise InvalidInput(f"{field}[{index}]", "must not repeat an earlier entry")
        seen.add(value)


def check_queue(body: QueueBody) -> None:
    """Rules across a queue's fields (references to other items are the store's to check)."""
    previous = -1.0
    for index, step in enumerate(body.steps):
        if step.after_s <= previous:
            raise InvalidInput(
                f"body.steps[{index}].after_s", "must be greater than the previous step's after_s"
            )
        previous = step.after_s
        if body.skill is None and step.min_level is not None:
            raise InvalidInput(
                f"body.steps[{index}].min_level", "must be null when the queue has no skill"
            )
    _unique("body.call_order", list(body.call_order))
    _unique("body.strategies", list(body.strategies))
    _unique("body.agents", body.agents)
    _unique("body.groups", body.groups)
    if body.skill is None and not body.agents and not body.groups:
        raise InvalidInput("body.skill", "must be set when the queue lists no agents and no groups")
    for reason, target in body.overflow.items():
        if target.kind == "queue":
            if target.target == body.queue_id:
                raise InvalidInput(f"body.overflow.{reason}.target", "must not be the queue itself")
            if not re.fullmatch(ID_PATTERN, target.target):
                raise InvalidInput(f"body.overflow.{reason}.target", "must be a queue id")
        elif not target.target.strip():
            raise InvalidInput(f"body.overflow.{reason}.target", "must not be blank")
    a = body.announcements
    if a.periodic and a.periodic_every_s <= 0:
        raise InvalidInput(
            "body.announcements.periodic_every_s", "must be > 0 when a periodic prompt is set"
        )
    _unique("body.announcements.languages", a.languages)


# ---------------------------------------------------------------------------------------------
# Agents

_SIP_USER = r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}"
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_DIGITS = r"\+?[0-9*#]{1,32}"
ENDPOINT_FORMS = (
    ("user", re.compile(rf"user:{_SIP_USER}")),
    ("gateway", re.compile(rf"gateway:{_NAME}:{_DIGITS}")),
    ("node", re.compile(rf"node:{_NAME}:{_DIGITS}")),
    ("dial", re.compile(r"dial:[!-~][ -~]{0,255}")),
)
ENDPOINT_RULE = (
    "must be user:<sip user>, gateway:<gateway>:<number>, node:<node>:<number> or "
    "dial:<dial string> (or empty: given at login)"
)


def check_endpoint(field: str, endpoint: str) -> None:
    """An agent endpoint in one of its forms, or empty."""
    if not endpoint:
        return
    kind = endpoint.partition(":")[0]
    for name, pattern in ENDPOINT_FORMS:
        if kind == name:
            if pattern.fullmatch(endpoint):
                return
            break
    raise InvalidInput(field, ENDPOINT_RULE)


SkillLevels = Annotated[dict[Id, Level], Field(max_length=200)]


class AgentBody(Model):
    """An agent profile: who logs in as the agent, where offers ring, skills and groups."""

    agent_id: Id
    user_id: Annotated[str, Field(max_length=64)] = ""
    display_name: Text = ""
    endpoint: Annotated[str, Field(max_length=300, description=ENDPOINT_RULE)] = ""
    skills: SkillLevels = {}
    groups: Annotated[list[Id], Field(max_length=100)] = []
    capacity: Annotated[
        dict[
            Annotated[str, Field(pattern=r"^[a-z][a-z_]{0,31}$")],
            Annotated[int, Field(ge=0, le=100)],
        ],
        Field(max_length=10),
    ] = {"voice": 1}
    site: Annotated[str, Field(max_length=64)] = ""
    order: Annotated[int, Field(ge=-1000000, le=1000000)] = 0

    def domain(self) -> AgentProfile:
        """As the engine takes it."""
        return AgentProfile(
            agent_id=self.agent_id,
            user_id=self.user_id,
            display_name=self.display_name,
            endpoint=self.endpoint,
            skills=dict(self.skills),
            groups=tuple(self.groups),
            capacity=dict(self.capacity),
            site=self.site,
            order=self.order,
        )

    @classmethod
    def of(cls, agent: AgentProfile) -> "AgentBody":
        """From the domain's profile."""
        return cls.model_validate(
            {
                "agent_id": agent.agent_id,
                "user_id": agent.user_id,
                "display_name": agent.display_name,
                "endpoint": agent.endpoint,
                "skills": dict(agent.skills),
                "groups": list(agent.groups),
                "capacity": dict(agent.capacity),
                "site": agent.site,
                "order": agent.order,
            }
        )


def check_agent(body: AgentBody) -> None:
    """Rules across an agent profile's fields."""
    check_endpoint("body.endpoint", body.endpoint)
    _unique("body.groups", body.groups)


# ---------------------------------------------------------------------------------------------
# VIP list and routing table


class VipBody(Model):
    """A caller number's priority bonus, optionally until ``expires_at``."""

    bonus: Annotated[int, Field(ge=-1000, le=1000)]
    expires_at: datetime | None = None
    note: Text = ""


class VipOut(VipBody):
    """A VIP entry."""

    number: Number


class VipRow(VipOut):
    """One row of a VIP import."""


class RoutingBody(Model):
    """The agent a customer number is offered to first."""

    agent_id: Id
    note: Text = ""


class RoutingOut(RoutingBody):
    """A routing-table entry."""

    number: Number


class RoutingRow(RoutingOut):
    """One row of a routing-table import."""


class ImportOut(BaseModel):
    """What an import wrote."""

    imported: int
    replaced: bool


def utc(value: datetime | None) -> datetime | None:
    """A time in UTC (a time without an offset is taken as UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def vip_entry(number: str, body: VipBody) -> VipEntry:
    """A VIP entry as stored."""
    return VipEntry(number, body.bonus, utc(body.expires_at), body.note)


def vip_out(entry: VipEntry) -> VipOut:
    """A stored VIP entry for the API."""
    return VipOut(
        number=entry.number, bonus=entry.bonus, expires_at=entry.expires_at, note=entry.note
    )


def routing_entry(number: str, body: RoutingBody) -> RoutingEntry:
    """A routing-table entry as stored."""
    return RoutingEntry(number, body.agent_id, body.note)


def routing_out(entry: RoutingEntry) -> RoutingOut:
    """A stored routing-table entry for the API."""
    return RoutingOut(number=entry.number, agent_id=entry.agent_id, note=entry.note)


# ---------------------------------------------------------------------------------------------
# Live views and supervisor actions

AgentStateName = Literal[
    "unspecified", "logged_out", "not_ready", "ready", "reserved", "ringing", "on_call",
    "after_call_work", "break",
]  # fmt: skip


class QueueLiveOut(BaseModel):
    """A queue right now, as its owner sees it."""

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
    service_level: float
    open: bool


class WaitingCallOut(BaseModel):
    """A call waiting in a queue."""

    call_id: str
    queue_id: str
    position: int
    priority: float
    waited_s: float
    caller_number: str
    language: str
    offered_to: list[str]


class QueueLiveDetailOut(QueueLiveOut):
    """A queue right now with its waiting calls, in order."""

    calls: list[WaitingCallOut]


class AgentLiveOut(BaseModel):
    """An agent right now."""

    agent_id: str
    state: AgentStateName
    reason: str
    since: datetime | None
    endpoint: str
    skills: dict[str, int]
    groups: list[str]
    call_id: str
    queue_id: str
    calls_today: int
    talk_s_today: float
    no_answers_today: int


class LiveQueuesOut(BaseModel):
    """Every queue right now, and which replica answered."""

    queues: list[QueueLiveOut]
    owner: str


class LiveAgentsOut(BaseModel):
    """Every logged-in agent right now, and which replica answered."""

    agents: list[AgentLiveOut]
    owner: str


class ForceStateIn(Model):
    """A supervisor's forced state change."""

    state: Literal["ready", "not_ready", "break", "logged_out"]
    reason: Annotated[str, Field(max_length=64)] = ""


class LiveSkillsIn(Model):
    """A supervisor's change of an agent's skills now (replacing all); ``temporary`` ones revert
    when the agent logs out."""

    skills: SkillLevels
    temporary: bool = False


class AgentCommandOut(BaseModel):
    """The agent's state after the owner applied the command."""

    agent_id: str
    state: AgentStateName
    reason: str
