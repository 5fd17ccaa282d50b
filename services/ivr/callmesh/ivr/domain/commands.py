"""What the flow engine asks of the world, what the world answers, and the trail it leaves.

The engine (``engine.FlowRun``) is a pure state machine, no I/O and no clock of its own::

    run = FlowRun(flow, flow_id, version, context)   # context: CallContext
    command = run.start()                             # the first command
    while not isinstance(command, Finish):
        result = <execute command>                    # the runner (ESL) or a dry run
        command = run.resume(result)
    trail = run.drain_trail()                         # also drainable after each step

The runner executes ``Play`` through the switch (``playback``; with ``interruptible`` a DTMF
stops it and is answered as ``KeyPressed``), waits for keys (``AwaitKey``), performs look-ups
(``HttpRequest``, ``LookupRow``, ``CheckBlacklist``, ``CalendarState``), records
(``Record``), hands over (``Enqueue``, ``TransferCall``), hangs up (``Hangup``). A caller who
hangs up mid-flow: ``run.caller_hung_up()`` returns the final ``Finish``. Exactly one command is
outstanding at a time; a result of the wrong kind raises ``UnexpectedResult``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from callmesh.ivr.domain.flow import PromptKind

__all__ = [
    "AwaitKey",
    "BlacklistAnswer",
    "CalendarAnswer",
    "CalendarState",
    "CallContext",
    "CheckBlacklist",
    "Command",
    "Enqueue",
    "EnqueueAnswer",
    "Finish",
    "Hangup",
    "HttpAnswer",
    "HttpRequest",
    "KeyPressed",
    "LookupRow",
    "Outcome",
    "Play",
    "Played",
    "Record",
    "RecordAnswer",
    "Result",
    "RowAnswer",
    "Sound",
    "TimedOut",
    "TrailEntry",
    "TrailKind",
    "TransferAnswer",
    "TransferCall",
    "UnexpectedResult",
]


class UnexpectedResult(Exception):
    """``resume`` got a result that does not answer the outstanding command."""


@dataclass(frozen=True, slots=True)
class CallContext:
    """What the engine knows of the call before the first node."""

    call_id: str
    tenant_id: str
    caller: str
    dialled: str
    now: datetime  # when the call entered the flow (aware, UTC)
    caller_name: str = ""
    language: str = ""  # "" = the flow's default
    variables: Mapping[str, str] = field(default_factory=dict)  # preset (e.g. from a transfer)
    time_zone: str = "UTC"  # the tenant's, for time nodes without their own


# ---------------------------------------------------------------------------------------------
# Commands


@dataclass(frozen=True, slots=True)
class Sound:
    """One playable item, resolved by the runner: TTS text already templated."""

    kind: PromptKind
    value: str
    language: str


@dataclass(frozen=True, slots=True)
class Play:
    """Play ``sounds`` in order. Answer: ``Played`` or (interruptible) ``KeyPressed``."""

    node_id: str
    sounds: tuple[Sound, ...]
    interruptible: bool = True


@dataclass(frozen=True, slots=True)
class AwaitKey:
    """Wait up to ``timeout_ms`` for one DTMF key. Answer: ``KeyPressed`` or ``TimedOut``."""

    node_id: str
    timeout_ms: int


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """An HTTP call (templates already filled). Answer: ``HttpAnswer``."""

    node_id: str
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None
    timeout_ms: int


@dataclass(frozen=True, slots=True)
class LookupRow:
    """A row of the tenant's data table by key. Answer: ``RowAnswer``."""

    node_id: str
    table: str
    key: str


@dataclass(frozen=True, slots=True)
class CheckBlacklist:
    """Is ``number`` blacklisted now (and count the hit)? Answer: ``BlacklistAnswer``."""

    node_id: str
    number: str


@dataclass(frozen=True, slots=True)
class CalendarState:
    """Is the tenant's calendar open at ``at``? Answer: ``CalendarAnswer``."""

    node_id: str
    calendar_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Record:
    """Beep (if asked) and record a voicemail. Answer: ``RecordAnswer``."""

    node_id: str
    mailbox: str
    max_seconds: int
    beep: bool
    # The data package stored with the message (caller, variables).
    data: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Enqueue:
    """Hand the call to acd. Answer: ``EnqueueAnswer``."""

    node_id: str
    queue_id: str
    priority: int
    language: str
    data: Mapping[str, str]
    preferred_agent_id: str = ""


@dataclass(frozen=True, slots=True)
class TransferCall:
    """Transfer to another flow (``flow``), or an outside number (``external``). Answer:
    ``TransferAnswer``."""

    node_id: str
    kind: str  # "flow" | "external"
    target: str
    data: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Hangup:
    """Hang up with ``cause`` (after playing nothing more). The run is over: the next
    ``resume`` must not be called; use ``run.finish`` (the engine returns ``Finish`` next if
    ``resume(Played())`` is called anyway)."""

    node_id: str
    cause: str


class Outcome(StrEnum):
    """How the call left the flow (mirrors proto ``IvrOutcome``)."""

    QUEUED = "queued"
    TRANSFERRED = "transferred"
    CALLER_HUNG_UP = "caller_hung_up"
    COMPLETED = "completed"
    VOICEMAIL = "voicemail"
    BLOCKED = "blocked"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Finish:
    """The run is over. ``hangup_cause`` non-empty: the runner hangs up with it (the engine
    already returned ``Hangup`` for a hangup node; ``Finish`` after a completed flow asks the
    runner to hang up NORMAL_CLEARING). Queued/transferred calls are not hung up."""

    outcome: Outcome
    last_node_id: str
    detail: str = ""
    hangup_cause: str = ""


Command = (
    Play
    | AwaitKey
    | HttpRequest
    | LookupRow
    | CheckBlacklist
    | CalendarState
    | Record
    | Enqueue
    | TransferCall
    | Hangup
    | Finish
)


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True, slots=True)
class Played:
    """The sounds played to the end."""


@dataclass(frozen=True, slots=True)
class KeyPressed:
    """A DTMF key (``0``-``9``, ``*``, ``#``, ``A``-``D``)."""

    key: str


@dataclass(frozen=True, slots=True)
class TimedOut:
    """No key in time."""


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """``status`` 0 with ``error`` when there was no response (timeout, refused, …)."""

    status: int
    body: bytes = b""
    error: str = ""
    duration_ms: int = 0


@dataclass(frozen=True, slots=True)
class RowAnswer:
    """The row (column -> value), or None."""

    row: Mapping[str, str] | None


@dataclass(frozen=True, slots=True)
class BlacklistAnswer:
    """Whether the number is blocked, and by which entry."""

    blocked: bool
    entry_id: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CalendarAnswer:
    """``state``: "open", "closed" or "holiday"."""

    state: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RecordAnswer:
    """The stored voicemail (``voicemail_id`` empty: nothing was recorded)."""

    voicemail_id: str
    duration_ms: int = 0


@dataclass(frozen=True, slots=True)
class EnqueueAnswer:
    """``accepted`` False with ``reason`` when acd refused or could not be reached."""

    accepted: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class TransferAnswer:
    """Whether the transfer was done."""

    done: bool
    reason: str = ""


Result = (
    Played
    | KeyPressed
    | TimedOut
    | HttpAnswer
    | RowAnswer
    | BlacklistAnswer
    | CalendarAnswer
    | RecordAnswer
    | EnqueueAnswer
    | TransferAnswer
)


# ---------------------------------------------------------------------------------------------
# The trail


class TrailKind(StrEnum):
    """What a trail entry records (each becomes an IVR event on the bus)."""

    NODE_ENTERED = "node_entered"
    INPUT_RECEIVED = "input_received"  # detail: input, kind (dtmf/timeout/invalid), attempt
    VARIABLE_SET = "variable_set"  # detail: name, value, previous
    HTTP_CALLED = "http_called"  # detail: method, url (no query secrets), status, error, ms
    PROMPT_PLAYED = "prompt_played"  # detail: sounds (kind:value|…), language
    FLOW_LEFT = "flow_left"  # detail: outcome, detail, last_node_id


@dataclass(frozen=True, slots=True)
class TrailEntry:
    """One step of the call's way through the flow, in order; ``seq`` counts from 1."""

    seq: int
    kind: TrailKind
    node_id: str
    node_type: str
    detail: Mapping[str, str]
