"""The call journal's subscription table and the proto-to-fact mapping of the events it reads.

Four durable consumers in cti's queue group (``cti-journal-call``, ``-queue``, ``-agent``,
``-ivr``), one per stream, each filtered to the events about a call that the journal folds
(DTMF digits, queue positions and agent logins/states are not part of a call record). The handler
is thin: event → fact → ``MongoCallJournal.apply`` → ack. An event the journal cannot use (no
tenant, no call id, no time, an unknown body) is logged, counted and acked: redelivering it
would never help. A store failure raises, so the bus redelivers the event later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from callmesh.core import telemetry
from callmesh.core.bus import Delivery, Subscription
from callmesh.core.errors import InvalidInput
from callmesh.cti.adapters.journal_store import Applied
from callmesh.cti.domain.journal import Fact, FactKind
from callmesh.proto.subjects import Domain, check_tenant_id, event_kind
from callmesh.proto.v1 import agent_pb2, call_pb2, common_pb2, ivr_pb2, queue_pb2
from callmesh.proto.v1.event_pb2 import Event

log = logging.getLogger(__name__)

MAX_TEXT = 256
MAX_MAP_ENTRIES = 64
MAX_CALL_ID = 128

# The events of each domain the journal folds (event names as in callmesh.proto.subjects).
JOURNAL_EVENTS: Mapping[Domain, tuple[str, ...]] = {
    Domain.CALL: (
        "created", "ringing", "answered", "bridged", "unbridged", "held", "unheld",
        "transferred", "recording_started", "recording_stopped", "hung_up",
    ),
    Domain.AGENT: ("offered", "answered", "no_answer"),
    Domain.QUEUE: ("entered", "left", "overflowed"),
    Domain.IVR: ("node_entered", "input_received", "variable_set", "flow_left"),
}  # fmt: skip


class Journal(Protocol):
    """What the consumer needs of the journal."""

    async def apply(self, tenant_id: str, call_id: str, fact: Fact) -> Applied:
        """Add one event to its call's record."""
        ...


def _text(value: str) -> str:
    return value[:MAX_TEXT]


def _map(value: Mapping[str, str]) -> dict[str, str]:
    items = sorted(value.items())[:MAX_MAP_ENTRIES]
    return {_text(k): _text(v) for k, v in items}


def _enum(wrapper: EnumTypeWrapper, value: int, prefix: str) -> str:
    """A proto enum value as the journal's lower-case word ('' for UNSPECIFIED)."""
    try:
        name = wrapper.Name(value)
    except ValueError:
        return str(value)  # a value from a newer schema: kept, not lost
    word = name.removeprefix(prefix).lower()
    return "" if word == "unspecified" else word


def _direction(value: int) -> str:
    return _enum(common_pb2.CallDirection, value, "CALL_DIRECTION_")


def _role(value: int) -> str:
    return _enum(common_pb2.LegRole, value, "LEG_ROLE_")


def _call_created(b: call_pb2.CallCreated) -> dict[str, Any]:
    return {
        "channel_uuid": _text(b.channel_uuid),
        "direction": _direction(b.direction),
        "role": _role(b.role),
        "caller_number": _text(b.caller.number),
        "caller_name": _text(b.caller.name),
        "callee_number": _text(b.callee.number),
        "callee_name": _text(b.callee.name),
        "destination_number": _text(b.destination_number),
        "media_channel": _enum(common_pb2.MediaChannel, b.media_channel, "MEDIA_CHANNEL_"),
        "variables": _map(b.variables),
    }


def _call_hung_up(b: call_pb2.CallHungUp) -> dict[str, Any]:
    return {
        "channel_uuid": _text(b.channel_uuid),
        "cause": _text(b.cause),
        "q850_code": b.q850_code,
        "side": _enum(call_pb2.HangupSide, b.side, "HANGUP_SIDE_"),
        "duration_ms": b.duration_ms,
        "billsec_ms": b.billsec_ms,
        "role": _role(b.role),
    }


def _channel(b: Any) -> dict[str, Any]:
    return {"channel_uuid": _text(b.channel_uuid)}


def _pair(b: Any) -> dict[str, Any]:
    return {"a_channel_uuid": _text(b.a_channel_uuid), "b_channel_uuid": _text(b.b_channel_uuid)}


_BODIES: dict[str, tuple[FactKind, Callable[[Any], dict[str, Any]]]] = {
    "call_created": (FactKind.CALL_CREATED, _call_created),
    "call_ringing": (
        FactKind.CALL_RINGING,
        lambda b: {**_channel(b), "early_media": b.early_media},
    ),
    "call_answered": (
        FactKind.CALL_ANSWERED,
        lambda b: {**_channel(b), "role": _role(b.role)},
    ),
    "call_bridged": (FactKind.CALL_BRIDGED, _pair),
    "call_unbridged": (FactKind.CALL_UNBRIDGED, _pair),
    "call_held": (FactKind.CALL_HELD, _channel),
    "call_unheld": (FactKind.CALL_UNHELD, _channel),
    "call_transferred": (
        FactKind.CALL_TRANSFERRED,
        lambda b: {
            **_channel(b),
            "kind": _enum(call_pb2.TransferKind, b.kind, "TRANSFER_KIND_"),
            "destination": _text(b.destination),
            "dialplan": _text(b.dialplan),
            "context": _text(b.context),
            "target_kind": _text(b.target_kind),
            "target_id": _text(b.target_id),
        },
    ),
    "recording_started": (
        FactKind.RECORDING_STARTED,
        lambda b: {**_channel(b), "recording_id": _text(b.recording_id), "path": _text(b.path)},
    ),
    "recording_stopped": (
        FactKind.RECORDING_STOPPED,
        lambda b: {
            **_channel(b),
            "recording_id": _text(b.recording_id),
            "path": _text(b.path),
            "media_id": _text(b.media_id),
            "duration_ms": b.duration_ms,
            "size_bytes": b.size_bytes,
            "completion_cause": _text(b.completion_cause),
        },
    ),
    "call_hung_up": (FactKind.CALL_HUNG_UP, _call_hung_up),
    "agent_offered": (
        FactKind.AGENT_OFFERED,
        lambda b: {
            "agent_id": _text(b.agent_id),
            "queue_id": _text(b.queue_id),
            "timeout_ms": b.timeout_ms,
            "attempt": b.attempt,
        },
    ),
    "agent_answered": (
        FactKind.AGENT_ANSWERED,
        lambda b: {
            "agent_id": _text(b.agent_id),
            "queue_id": _text(b.queue_id),
            "ring_ms": b.ring_ms,
        },
    ),
    "agent_no_answer": (
        FactKind.AGENT_NO_ANSWER,
        lambda b: {
            "agent_id": _text(b.agent_id),
            "queue_id": _text(b.queue_id),
            "reason": _enum(agent_pb2.NoAnswerReason, b.reason, "NO_ANSWER_REASON_"),
            "ring_ms": b.ring_ms,
        },
    ),
    "queue_entered": (
        FactKind.QUEUE_ENTERED,
        lambda b: {
            "queue_id": _text(b.queue_id),
            "priority": b.priority,
            "position": b.position,
            "data": _map(b.data),
        },
    ),
    "queue_left": (
        FactKind.QUEUE_LEFT,
        lambda b: {
            "queue_id": _text(b.queue_id),
            "reason": _enum(queue_pb2.QueueLeaveReason, b.reason, "QUEUE_LEAVE_REASON_"),
            "wait_ms": b.wait_ms,
            "agent_id": _text(b.agent_id),
        },
    ),
    "queue_overflowed": (
        FactKind.QUEUE_OVERFLOWED,
        lambda b: {
            "queue_id": _text(b.queue_id),
            "reason": _enum(queue_pb2.OverflowReason, b.reason, "OVERFLOW_REASON_"),
            "target": _enum(queue_pb2.OverflowTarget, b.target, "OVERFLOW_TARGET_"),
            "target_id": _text(b.target_id),
            "wait_ms": b.wait_ms,
        },
    ),
    "ivr_node_entered": (
        FactKind.IVR_NODE_ENTERED,
        lambda b: {
            "flow_id": _text(b.flow_id),
            "flow_version": b.flow_version,
            "node_id": _text(b.node_id),
            "node_type": _text(b.node_type),
        },
    ),
    "ivr_input_received": (
        FactKind.IVR_INPUT_RECEIVED,
        lambda b: {
            "flow_id": _text(b.flow_id),
            "node_id": _text(b.node_id),
            "input": _text(b.input),
            "kind": _enum(ivr_pb2.IvrInputKind, b.kind, "IVR_INPUT_KIND_"),
            "attempt": b.attempt,
        },
    ),
    "ivr_variable_set": (
        FactKind.IVR_VARIABLE_SET,
        lambda b: {
            "flow_id": _text(b.flow_id),
            "node_id": _text(b.node_id),
            "name": _text(b.name),
            "value": _text(b.value),
        },
    ),
    "ivr_flow_left": (
        FactKind.IVR_FLOW_LEFT,
        lambda b: {
            "flow_id": _text(b.flow_id),
            "flow_version": b.flow_version,
            "outcome": _enum(ivr_pb2.IvrOutcome, b.outcome, "IVR_OUTCOME_"),
            "detail": _text(b.detail),
            "duration_ms": b.duration_ms,
            "last_node_id": _text(b.last_node_id),
        },
    ),
}


def fact_of(event: Event) -> tuple[str, str, Fact]:
    """The tenant, call id and fact of an event; InvalidInput names what makes it unusable."""
    try:
        tenant_id = check_tenant_id(event.tenant_id)
    except ValueError as err:
        raise InvalidInput("tenant_id", str(err)) from None
    call_id = event.call_id
    if not call_id or len(call_id) > MAX_CALL_ID or not call_id.isprintable():
        raise InvalidInput("call_id", f"must be 1-{MAX_CALL_ID} printable characters")
    if not event.event_id or len(event.event_id) > MAX_CALL_ID:
        raise InvalidInput("event_id", f"must be 1-{MAX_CALL_ID} characters")
    if not event.HasField("time") or (event.time.seconds == 0 and event.time.nanos == 0):
        raise InvalidInput("time", "must be set")
    body = event.WhichOneof("body")
    known = _BODIES.get(body or "")
    if known is None:
        raise InvalidInput("body", f"{body or 'none'} is not an event the journal reads")
    kind, read = known
    # Milliseconds: what MongoDB keeps of a datetime, so a record read back equals the one built.
    millis = event.time.seconds * 1000 + event.time.nanos // 1_000_000
    try:
        at = datetime.fromtimestamp(millis / 1000, UTC)
    except (OverflowError, OSError, ValueError) as err:
        raise InvalidInput("time", "is out of range") from err
    return tenant_id, call_id, Fact(event.event_id, at, kind, read(getattr(event, body or "")))


def subscriptions(journal: Callable[[], Journal]) -> list[Subscription]:
    """The journal's rows of cti's subscription table (``journal`` gives the live journal)."""
    events = telemetry.counter(
        "callmesh_cti_journal_events_total",
        "Events read by the call journal, by outcome (created, updated, duplicate, unusable)",
        ["event", "outcome"],
    )

    async def handle(delivery: Delivery) -> None:
        event = delivery.event
        label = event_kind(event)
        try:
            tenant_id, call_id, fact = fact_of(event)
        except InvalidInput as err:
            log.warning(
                "event unusable by the call journal: %s",
                err.message,
                extra={"subject": delivery.subject, "event_id": event.event_id},
            )
            events.labels(f"{label.domain}.{label.name}", "unusable").inc()
            return
        applied = await journal().apply(tenant_id, call_id, fact)
        events.labels(fact.kind.value, applied.value).inc()

    return [
        Subscription(f"journal-{domain}", domain, handle, events=names)
        for domain, names in JOURNAL_EVENTS.items()
    ]
