"""What a simulation runs: queues with their traffic, pools of agents with skills, run length.

A scenario comes from YAML/JSON (``--scenario FILE``) or from the single-queue CLI flags
(:func:`single_queue`). Bad input raises ``InvalidInput`` naming the field and the rule.
"""

from __future__ import annotations

import json
import math
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from callmesh.acd.domain.config import (
    AgentProfile,
    AgentStrategy,
    Announcements,
    OverflowKind,
    OverflowReason,
    OverflowTarget,
    QueueConfig,
    TenantAcdConfig,
)
from callmesh.core.errors import InvalidInput

# Warm-up when none is given: this share of the calls is discarded from the statistics.
DEFAULT_WARMUP_SHARE = 0.05
# An offer that is never answered in the simulated world must not time out (ring_s < this).
_OFFER_TIMEOUT_S = 24 * 3600.0


class HandleDistribution(StrEnum):
    """How talk (handle) times are drawn."""

    EXPONENTIAL = "exponential"
    LOGNORMAL = "lognormal"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HandleSpec(_Model):
    """Talk time of a queue's calls: exponential with ``mean_s``, or lognormal (mean, sd)."""

    dist: HandleDistribution = HandleDistribution.EXPONENTIAL
    mean_s: float = Field(gt=0, allow_inf_nan=False)
    # lognormal only; defaults to mean_s (the same spread as the exponential)
    sd_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _sd_only_for_lognormal(self) -> HandleSpec:
        if self.sd_s is not None and self.dist is HandleDistribution.EXPONENTIAL:
            raise ValueError("sd_s is only for dist 'lognormal' (an exponential's sd is its mean)")
        return self

    @property
    def sd(self) -> float:
        """Standard deviation of the talk time."""
        return self.mean_s if self.sd_s is None else self.sd_s


class OverflowSpec(_Model):
    """Where a call goes on overflow: another queue of the scenario (it keeps waiting there,
    counted in its entry queue), or out of the ACD (ivr_flow, voicemail, announcement)."""

    kind: OverflowKind
    target: str = Field(min_length=1)


class QueueSpec(_Model):
    """One queue: its Poisson arrivals, talk times, patience and engine settings."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    # exactly one of the two rates
    calls_per_hour: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    calls_per_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    handle: HandleSpec
    # mean of the caller's exponential patience while waiting; None = callers never hang up
    patience_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    wrap_up_s: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    service_level_s: float = Field(default=20.0, ge=0, allow_inf_nan=False)
    # the skill agents need (level >= 1); defaults to the queue id
    skill: str | None = Field(default=None, min_length=1)
    priority: int = 0
    # 0 = unlimited (engine's max wait / max length overflow, counted as overflowed)
    max_wait_s: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    max_length: int = Field(default=0, ge=0)
    strategy: AgentStrategy = AgentStrategy.LONGEST_IDLE
    # the engine overflows only for reasons listed here (e.g. max_wait: {kind: voicemail, ...})
    overflow: dict[OverflowReason, OverflowSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_rate(self) -> QueueSpec:
        if (self.calls_per_hour is None) == (self.calls_per_s is None):
            raise ValueError("give exactly one of calls_per_hour and calls_per_s")
        return self

    @property
    def rate_per_s(self) -> float:
        """Arrival rate in calls per second."""
        if self.calls_per_s is not None:
            return self.calls_per_s
        assert self.calls_per_hour is not None
        return self.calls_per_hour / 3600.0

    @property
    def skill_name(self) -> str:
        """The skill that serves this queue."""
        return self.skill or self.id


class AgentPool(_Model):
    """``count`` identical agents with these skills (name -> level 1-5)."""

    id: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9_.:-]*$")
    count: int = Field(ge=1, le=100_000)
    skills: dict[str, int] = Field(min_length=1)

    @model_validator(mode="after")
    def _levels(self) -> AgentPool:
        for skill, level in self.skills.items():
            if not 1 <= level <= 5:
                raise ValueError(f"skills.{skill} must be a level from 1 to 5 (got {level})")
        return self


class Scenario(_Model):
    """A whole simulation run."""

    seed: int = 1
    # arrivals over all queues; the first ``warmup`` are left out of the statistics
    calls: int = Field(default=100_000, ge=1, le=50_000_000)
    warmup: int | None = Field(default=None, ge=0)
    # seconds an offer rings before the agent answers (the caller may abandon meanwhile)
    ring_s: float = Field(default=0.0, ge=0, lt=_OFFER_TIMEOUT_S, allow_inf_nan=False)
    # two half-length runs, the second with every random draw mirrored (u -> 1 - u), pooled:
    # the same calls in all, much less noise in the averages (antithetic variates)
    antithetic: bool = False
    queues: list[QueueSpec] = Field(min_length=1)
    agents: list[AgentPool] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        ids: list[str] = [q.id for q in self.queues]
        for queue_id in ids:
            if ids.count(queue_id) > 1:
                raise ValueError(f"queues: queue id {queue_id!r} is used more than once")
        if self.warmup is not None and self.warmup >= self.calls:
            raise ValueError(f"warmup must be less than calls ({self.calls}), got {self.warmup}")
        skills = {skill for pool in self.agents for skill in pool.skills}
        for index, queue in enumerate(self.queues):
            for reason, spec in queue.overflow.items():
                if spec.kind is OverflowKind.QUEUE and spec.target not in ids:
                    raise ValueError(
                        f"queues.{index}.overflow.{reason.value}.target: no queue "
                        f"{spec.target!r} in the scenario"
                    )
            if queue.skill_name not in skills:
                raise ValueError(
                    f"queues.{index}.skill: no agent pool has skill {queue.skill_name!r}"
                )
        pool_ids = [pool.id for pool in self.agents if pool.id]
        for pool_id in pool_ids:
            if pool_ids.count(pool_id) > 1:
                raise ValueError(f"agents: pool id {pool_id!r} is used more than once")
        return self

    @property
    def warmup_calls(self) -> int:
        """Calls left out of the statistics (given, or 5% of the calls)."""
        if self.warmup is not None:
            return self.warmup
        return math.floor(self.calls * DEFAULT_WARMUP_SHARE)

    def pool_ids(self) -> list[str]:
        """Each pool's id (``pool<n>`` when not given)."""
        return [pool.id or f"pool{index}" for index, pool in enumerate(self.agents)]

    def agent_ids(self) -> list[tuple[str, str]]:
        """(agent id, pool id) of every agent."""
        ids: list[tuple[str, str]] = []
        for pool_id, pool in zip(self.pool_ids(), self.agents, strict=True):
            ids.extend((f"{pool_id}-{n}", pool_id) for n in range(pool.count))
        return ids

    def engine_config(self, tenant_id: str = "sim") -> TenantAcdConfig:
        """The engine's configuration for this scenario."""
        queues = {
            q.id: QueueConfig(
                queue_id=q.id,
                name=q.id,
                priority=q.priority,
                skill=q.skill_name,
                strategies=(q.strategy,),
                no_answer_timeout_s=_OFFER_TIMEOUT_S,
                wrap_up_s=q.wrap_up_s,
                max_wait_s=q.max_wait_s,
                max_length=q.max_length,
                service_level_s=q.service_level_s,
                overflow={
                    reason: OverflowTarget(spec.kind, spec.target)
                    for reason, spec in q.overflow.items()
                },
                # no music or periodic prompts (nothing to hear); the entry announcement
                # carries the position and the EWT the simulator measures
                announcements=Announcements(moh="", position=True, estimated_wait=True),
            )
            for q in self.queues
        }
        agents: dict[str, AgentProfile] = {}
        for pool_index, pool in enumerate(self.agents):
            pool_id = self.pool_ids()[pool_index]
            for n in range(pool.count):
                agent_id = f"{pool_id}-{n}"
                agents[agent_id] = AgentProfile(
                    agent_id=agent_id,
                    user_id=agent_id,
                    endpoint=f"sim:{agent_id}",
                    skills=dict(pool.skills),
                    order=len(agents),
                )
        return TenantAcdConfig(tenant_id=tenant_id, queues=queues, agents=agents)

    def single_queue(self) -> bool:
        """One queue served by every agent: the case Erlang C/A predict."""
        if len(self.queues) != 1:
            return False
        skill = self.queues[0].skill_name
        return all(skill in pool.skills for pool in self.agents)


def format_errors(err: ValidationError) -> InvalidInput:
    """The first pydantic error as ``InvalidInput(field, rule)``, every error in the message."""
    lines = []
    first: tuple[str, str] | None = None
    for error in err.errors():
        rule = str(error["msg"]).removeprefix("Value error, ")
        field = ".".join(str(part) for part in error["loc"]) or "(scenario)"
        lines.append(f"{field}: {rule}")
        if first is None:
            first = (field, rule)
    assert first is not None
    return InvalidInput(first[0], first[1], "; ".join(lines))


def parse_scenario(data: Any) -> Scenario:
    """A scenario from parsed YAML/JSON data; InvalidInput names the field and the rule."""
    if not isinstance(data, dict):
        raise InvalidInput("(scenario)", f"must be a mapping, not {type(data).__name__}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        raise format_errors(err) from err


def parse_scenario_text(text: str, *, name: str = "scenario") -> Scenario:
    """A scenario from JSON or YAML text (JSON is tried first)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = _load_yaml(text, name)
    return parse_scenario(data)


def load_scenario(path: Path) -> Scenario:
    """A scenario from a YAML or JSON file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise InvalidInput("scenario", f"cannot read {path}: {err.strerror or err}") from err
    return parse_scenario_text(text, name=str(path))


def _load_yaml(text: str, name: str) -> Any:
    try:
        # Only YAML scenarios need it (it ships with the emulator in this workspace).
        import yaml
    except ImportError as err:  # pragma: no cover - pyyaml is installed in the workspace
        raise InvalidInput(
            "scenario", "YAML needs pyyaml installed; write the file as JSON"
        ) from err
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "?"
        problem = getattr(err, "problem", None) or str(err)
        raise InvalidInput(
            "scenario", f"not valid YAML or JSON ({name} {where}: {problem})"
        ) from err


def single_queue(
    *,
    agents: int,
    aht_s: float,
    calls_per_hour: float | None = None,
    traffic: float | None = None,
    handle: HandleDistribution = HandleDistribution.EXPONENTIAL,
    handle_sd_s: float | None = None,
    patience_s: float | None = None,
    sl_threshold_s: float = 20.0,
    wrap_up_s: float = 0.0,
    ring_s: float = 0.0,
    calls: int = 100_000,
    warmup: int | None = None,
    seed: int = 1,
    antithetic: bool = False,
) -> Scenario:
    """The scenario of the simple CLI flags: one queue, ``agents`` agents, rate or Erlangs."""
    if (calls_per_hour is None) == (traffic is None):
        raise InvalidInput("calls_per_hour", "give exactly one of --calls-per-hour and --traffic")
    if traffic is not None:
        if not (math.isfinite(traffic) and traffic > 0):
            raise InvalidInput("traffic", f"must be finite and > 0 (got {traffic})")
        if not (math.isfinite(aht_s) and aht_s > 0):
            raise InvalidInput("aht", f"must be finite and > 0 (got {aht_s})")
        # Erlangs = arrival rate x the time an agent is held per call (talk + wrap-up + ring).
        calls_per_hour = traffic * 3600.0 / (aht_s + wrap_up_s + ring_s)
    return parse_scenario(
        {
            "seed": seed,
            "calls": calls,
            "warmup": warmup,
            "ring_s": ring_s,
            "antithetic": antithetic,
            "queues": [
                {
                    "id": "q1",
                    "calls_per_hour": calls_per_hour,
                    "handle": {"dist": handle, "mean_s": aht_s, "sd_s": handle_sd_s},
                    "patience_s": patience_s,
                    "wrap_up_s": wrap_up_s,
                    "service_level_s": sl_threshold_s,
                }
            ],
            "agents": [{"id": "agent", "count": agents, "skills": {"q1": 1}}],
        }
    )
