"""Dry runs: a flow played against scripted caller input, without a call.

Each scripted input answers the next wait for the caller: ``"1"`` or ``"123#"`` are keys typed
at once (prompts play to their end), ``"timeout"`` lets a wait run out, ``"hangup"``
ends the call. When the script runs out, every further wait times out. Look-ups are answered
from what the dry run is given (HTTP answers by node, table rows, blacklisted numbers, calendar
states); a record or a hand-over is answered as done.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from callmesh.ivr.domain.commands import (
    AwaitKey,
    BlacklistAnswer,
    CalendarAnswer,
    CalendarState,
    CallContext,
    CheckBlacklist,
    Command,
    Enqueue,
    EnqueueAnswer,
    Finish,
    Hangup,
    HttpAnswer,
    HttpRequest,
    KeyPressed,
    LookupRow,
    Outcome,
    Play,
    Played,
    Record,
    RecordAnswer,
    Result,
    RowAnswer,
    TimedOut,
    TrailEntry,
    TransferAnswer,
    TransferCall,
)
from callmesh.ivr.domain.engine import FlowRun
from callmesh.ivr.domain.flow import Flow

__all__ = ["DryRunInput", "DryRunResult", "dry_run"]


@dataclass(frozen=True)
class DryRunInput:
    """The call to imagine."""

    caller: str
    dialled: str
    at: datetime
    inputs: Sequence[str] = ()
    http: Mapping[str, HttpAnswer] = field(default_factory=dict)
    rows: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)
    blacklisted: Collection[str] = ()
    calendars: Mapping[str, str] = field(default_factory=dict)
    language: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)
    time_zone: str = "UTC"
    enqueue_accepted: bool = True


@dataclass
class DryRunResult:
    """What the call would have met."""

    path: list[str]
    prompts: list[dict[str, Any]]
    variables: dict[str, str]
    trail: list[TrailEntry]
    outcome: Finish
    commands: list[str]
    unused_inputs: list[str]


def _describe(command: Command) -> str:
    if isinstance(command, Play):
        return "play " + " ".join(f"{s.kind.value}:{s.value}" for s in command.sounds)
    if isinstance(command, AwaitKey):
        return f"await key ({command.timeout_ms} ms) at {command.node_id}"
    if isinstance(command, HttpRequest):
        return f"http {command.method} {command.url}"
    if isinstance(command, LookupRow):
        return f"lookup {command.table}[{command.key}]"
    if isinstance(command, CheckBlacklist):
        return f"blacklist? {command.number}"
    if isinstance(command, CalendarState):
        return f"calendar {command.calendar_id}"
    if isinstance(command, Record):
        return f"record voicemail into {command.mailbox}"
    if isinstance(command, Enqueue):
        return f"enqueue {command.queue_id} priority {command.priority}"
    if isinstance(command, TransferCall):
        return f"transfer {command.kind} {command.target}"
    if isinstance(command, Hangup):
        return f"hangup {command.cause}"
    return f"finish {command.outcome.value}"


def dry_run(
    flow: Flow,
    flow_id: str,
    version: int,
    tenant_id: str,
    given: DryRunInput,
    *,
    max_steps: int = 1000,
) -> DryRunResult:
    """Run ``flow`` for an imagined call."""
    context = CallContext(
        call_id="dry-run",
        tenant_id=tenant_id,
        caller=given.caller,
        dialled=given.dialled,
        now=given.at,
        language=given.language,
        variables=given.variables,
        time_zone=given.time_zone,
    )
    run = FlowRun(flow, flow_id, version, context)
    script = list(given.inputs)
    keys: list[str] = []  # typed keys not yet consumed
    commands: list[str] = []
    prompts: list[dict[str, Any]] = []
    trail: list[TrailEntry] = []
    command = run.start()
    hung_up = False
    for _ in range(max_steps * 4):
        trail.extend(run.drain_trail())
        commands.append(_describe(command))
        if isinstance(command, Finish):
            break
        result: Result
        if isinstance(command, Play):
            prompts.append(
                {
                    "node_id": command.node_id,
                    "language": command.sounds[0].language if command.sounds else "",
                    "sounds": [{"kind": s.kind.value, "value": s.value} for s in command.sounds],
                }
            )
            result = Played()
        elif isinstance(command, AwaitKey):
            if not keys and script:
                step = script.pop(0)
                if step == "hangup":
                    hung_up = True
                    break
                if step != "timeout":
                    keys.extend(step)
            result = KeyPressed(keys.pop(0)) if keys else TimedOut()
        elif isinstance(command, HttpRequest):
            result = given.http.get(command.node_id, HttpAnswer(0, error="not called in a dry run"))
        elif isinstance(command, LookupRow):
            result = RowAnswer(given.rows.get(command.table, {}).get(command.key))
        elif isinstance(command, CheckBlacklist):
            blocked = command.number in given.blacklisted
            result = BlacklistAnswer(blocked, "dry-run" if blocked else "")
        elif isinstance(command, CalendarState):
            result = CalendarAnswer(given.calendars.get(command.calendar_id, "open"))
        elif isinstance(command, Record):
            result = RecordAnswer("dry-run-voicemail", 0)
        elif isinstance(command, Enqueue):
            result = EnqueueAnswer(
                given.enqueue_accepted, "" if given.enqueue_accepted else "refused"
            )
        elif isinstance(command, TransferCall):
            result = TransferAnswer(True)
        else:  # Hangup: the call is over
            result = Played()
        command = run.resume(result)
    else:  # the engine's own step limit ends runaway flows long before this
        commands.append(f"stopped: no end after {max_steps * 4} commands")
        command = run.caller_hung_up()
    if hung_up:
        command = run.caller_hung_up()
        commands.append("caller hangs up")
    trail.extend(run.drain_trail())
    outcome = command if isinstance(command, Finish) else Finish(Outcome.ERROR, run.node_id)
    return DryRunResult(
        path=list(run.path),
        prompts=prompts,
        variables=dict(run.variables),
        trail=trail,
        outcome=outcome,
        commands=commands,
        unused_inputs=(["".join(keys)] if keys else []) + script,
    )
