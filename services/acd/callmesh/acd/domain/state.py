"""The engine's records and indexes: agents, waiting calls, offers, timers, sorted lists."""

from __future__ import annotations

import bisect
import heapq
import json
from dataclasses import dataclass, field
from typing import Any

from callmesh.acd.domain.effects import AgentState

# Level index 0 holds every member of a queue (requirement "anyone of the queue"); 1..5 hold the
# agents whose level in the queue's skill is at least that much.
LEVELS = (0, 1, 2, 3, 4, 5)
DAY_S = 86400.0

# Call keys sort ascending: best first. The first element puts calls sent back to the head of
# their queue (no-answer, an agent logging out during the offer) before every other call.
CallKey = tuple[Any, ...]
AgentKey = tuple[Any, ...]


class SortedIndex:
    """A sorted list of (key, id) with removal by key; ``bisect`` keeps it ordered.

    Finding an entry is O(log n); insertion and removal move the tail of one Python list
    (a memmove of pointers: microseconds at 10,000 entries)."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[tuple[Any, str]] = []

    def add(self, key: tuple[Any, ...], item: str) -> None:
        """Insert ``item`` under ``key``."""
        bisect.insort(self.items, (key, item))

    def remove(self, key: tuple[Any, ...], item: str) -> None:
        """Remove ``item`` stored under ``key`` (absent: nothing happens)."""
        entry = (key, item)
        at = bisect.bisect_left(self.items, entry)
        if at < len(self.items) and self.items[at] == entry:
            del self.items[at]

    def rank(self, key: tuple[Any, ...], item: str) -> int:
        """How many entries sort before (key, item)."""
        return bisect.bisect_left(self.items, (key, item))

    def first(self) -> tuple[Any, str] | None:
        """The best entry."""
        return self.items[0] if self.items else None

    def __len__(self) -> int:
        return len(self.items)


class _Cached:
    """Keeps the entity's snapshot JSON until any attribute is set again (``touch`` after
    changing a list or dict in place)."""

    frag: str

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name != "frag":
            object.__setattr__(self, "frag", "")

    def touch(self) -> None:
        """Forget the cached JSON after an in-place change."""
        object.__setattr__(self, "frag", "")

    def record(self) -> dict[str, Any]:
        """JSON-able form for snapshots."""
        raise NotImplementedError

    def json(self) -> str:
        """The snapshot JSON of the entity, cached until it changes."""
        if not self.frag:
            object.__setattr__(self, "frag", json.dumps(self.record(), separators=(",", ":")))
        return self.frag


@dataclass
class Agent(_Cached):
    """A logged-in agent."""

    agent_id: str
    endpoint: str
    skills: dict[str, int]
    groups: tuple[str, ...]
    site: str
    order: int
    voice_capacity: int
    state: AgentState
    reason: str
    since: float
    idle_since: float
    temporary_skills: bool = False
    pending_not_ready: str | None = None
    offer_id: str = ""
    call_id: str = ""
    queue_id: str = ""
    answered_at: float = 0.0
    day: int = 0
    calls_today: int = 0
    talk_s_today: float = 0.0
    no_answers_today: int = 0
    random_key: float = 0.0
    # (queue_id, level) -> the key this agent is filed under while READY
    filed: dict[tuple[str, int], AgentKey] = field(default_factory=dict)
    wrap_version: int = 0
    frag: str = field(default="", compare=False, repr=False)

    def record(self) -> dict[str, Any]:
        """JSON-able form for snapshots."""
        out = {k: v for k, v in self.__dict__.items() if k not in ("filed", "frag")}
        out["state"] = self.state.value
        out["groups"] = list(self.groups)
        return out

    @classmethod
    def from_record(cls, doc: dict[str, Any]) -> Agent:
        """Inverse of ``record``."""
        data = dict(doc)
        data["state"] = AgentState(data["state"])
        data["groups"] = tuple(data["groups"])
        return cls(**data)


@dataclass
class Call(_Cached):
    """A call in the ACD: waiting, being offered, or connected to an agent."""

    call_id: str
    queue_id: str
    caller_number: str
    called_number: str
    base_priority: int
    language: str
    data: dict[str, str]
    enqueued_at: float
    entered_at: float
    seq: int
    channel_uuid: str
    node_id: str
    preferred_agent_id: str = ""
    # "waiting" | "offering" | "connected"
    phase: str = "waiting"
    head: bool = False
    # current requirement level index (0..5); -1 while held for one agent
    level: int = 0
    hold_agent: str = ""
    hold_until: float = 0.0
    offers: dict[str, str] = field(default_factory=dict)
    attempt: int = 0
    agent_id: str = ""
    visited: list[str] = field(default_factory=list)
    next_announce: float = 0.0
    version: int = 0
    filed_key: CallKey | None = None
    frag: str = field(default="", compare=False, repr=False)

    def record(self) -> dict[str, Any]:
        """JSON-able form for snapshots."""
        return {k: v for k, v in self.__dict__.items() if k not in ("filed_key", "frag")}

    @classmethod
    def from_record(cls, doc: dict[str, Any]) -> Call:
        """Inverse of ``record``."""
        return cls(**doc)


@dataclass
class Offer(_Cached):
    """An agent's phone ringing (or about to) for a call."""

    offer_id: str
    call_id: str
    agent_id: str
    queue_id: str
    started: float
    deadline: float
    attempt: int
    ringing_at: float = 0.0
    frag: str = field(default="", compare=False, repr=False)

    def record(self) -> dict[str, Any]:
        """JSON-able form for snapshots."""
        return {k: v for k, v in self.__dict__.items() if k != "frag"}


@dataclass
class QueueStats:
    """Today's counters of one queue (the views and service level)."""

    offered: int = 0
    answered: int = 0
    answered_in_sl: int = 0
    abandoned: int = 0
    overflowed: int = 0
    no_answers: int = 0
    # exponentially weighted handle time (talk + wrap-up), seconds
    aht_s: float = 0.0
    last_ready_at: float = 0.0


class Timers:
    """A heap of (when, seq, kind, ref, version); stale entries are skipped when they fire."""

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, str, str, int]] = []
        self.seq = 0

    def add(self, when: float, kind: str, ref: str, version: int = 0) -> None:
        """Schedule ``kind`` for ``ref`` at ``when``."""
        self.seq += 1
        heapq.heappush(self.heap, (when, self.seq, kind, ref, version))

    def due(self, now: float) -> list[tuple[float, str, str, int]]:
        """Pop everything due at ``now`` (in time order)."""
        out = []
        while self.heap and self.heap[0][0] <= now:
            when, _, kind, ref, version = heapq.heappop(self.heap)
            out.append((when, kind, ref, version))
        return out

    def next(self) -> float | None:
        """When the earliest timer is due."""
        return self.heap[0][0] if self.heap else None
