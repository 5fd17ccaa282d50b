"""The engine's events as proto ``Event``s (agent_* and queue_* bodies), and back for states."""

from __future__ import annotations

from callmesh.acd.domain import effects as fx
from callmesh.acd.domain.config import OverflowKind, OverflowReason
from callmesh.core.bus import Bus, timestamp
from callmesh.proto.v1 import agent_pb2, queue_pb2
from callmesh.proto.v1.event_pb2 import Event

_STATES = {
    fx.AgentState.LOGGED_OUT: agent_pb2.AGENT_STATE_LOGGED_OUT,
    fx.AgentState.NOT_READY: agent_pb2.AGENT_STATE_NOT_READY,
    fx.AgentState.READY: agent_pb2.AGENT_STATE_READY,
    fx.AgentState.RESERVED: agent_pb2.AGENT_STATE_RESERVED,
    fx.AgentState.RINGING: agent_pb2.AGENT_STATE_RINGING,
    fx.AgentState.ON_CALL: agent_pb2.AGENT_STATE_ON_CALL,
    fx.AgentState.AFTER_CALL_WORK: agent_pb2.AGENT_STATE_AFTER_CALL_WORK,
    fx.AgentState.BREAK: agent_pb2.AGENT_STATE_BREAK,
}
_NO_ANSWER = {
    fx.NoAnswerReason.TIMEOUT: agent_pb2.NO_ANSWER_REASON_TIMEOUT,
    fx.NoAnswerReason.REJECTED: agent_pb2.NO_ANSWER_REASON_REJECTED,
    fx.NoAnswerReason.BUSY: agent_pb2.NO_ANSWER_REASON_BUSY,
    fx.NoAnswerReason.UNREACHABLE: agent_pb2.NO_ANSWER_REASON_UNREACHABLE,
    fx.NoAnswerReason.SWITCH_ERROR: agent_pb2.NO_ANSWER_REASON_SWITCH_ERROR,
}
_LEAVE = {
    fx.LeaveReason.ANSWERED: queue_pb2.QUEUE_LEAVE_REASON_ANSWERED,
    fx.LeaveReason.ABANDONED: queue_pb2.QUEUE_LEAVE_REASON_ABANDONED,
    fx.LeaveReason.OVERFLOWED: queue_pb2.QUEUE_LEAVE_REASON_OVERFLOWED,
    fx.LeaveReason.TIMEOUT: queue_pb2.QUEUE_LEAVE_REASON_TIMEOUT,
    fx.LeaveReason.TRANSFERRED: queue_pb2.QUEUE_LEAVE_REASON_TRANSFERRED,
    fx.LeaveReason.REJECTED: queue_pb2.QUEUE_LEAVE_REASON_REJECTED,
    fx.LeaveReason.ERROR: queue_pb2.QUEUE_LEAVE_REASON_ERROR,
}
_OVERFLOW_REASON = {
    OverflowReason.MAX_WAIT: queue_pb2.OVERFLOW_REASON_MAX_WAIT,
    OverflowReason.MAX_LENGTH: queue_pb2.OVERFLOW_REASON_MAX_LENGTH,
    OverflowReason.NO_AGENTS_LOGGED_IN: queue_pb2.OVERFLOW_REASON_NO_AGENTS_LOGGED_IN,
    OverflowReason.NO_AGENTS_READY: queue_pb2.OVERFLOW_REASON_NO_AGENTS_READY,
    OverflowReason.CLOSED: queue_pb2.OVERFLOW_REASON_CLOSED,
}
_OVERFLOW_KIND = {
    OverflowKind.QUEUE: queue_pb2.OVERFLOW_TARGET_QUEUE,
    OverflowKind.IVR_FLOW: queue_pb2.OVERFLOW_TARGET_IVR_FLOW,
    OverflowKind.VOICEMAIL: queue_pb2.OVERFLOW_TARGET_VOICEMAIL,
    OverflowKind.ANNOUNCEMENT: queue_pb2.OVERFLOW_TARGET_ANNOUNCEMENT,
}


def proto_state(state: fx.AgentState) -> agent_pb2.AgentState:
    """The proto AgentState of a domain state."""
    return _STATES[state]


def skills_proto(skills: dict[str, int] | object) -> list[agent_pb2.Skill]:
    """Skills as proto ``Skill``s, sorted by name."""
    assert isinstance(skills, dict)
    return [agent_pb2.Skill(name=name, level=level) for name, level in sorted(skills.items())]


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def to_event(bus: Bus, tenant_id: str, effect: fx.Event) -> Event:
    """The proto event of an engine event (envelope ``call_id`` = the call's id)."""
    call_id = getattr(effect, "call_id", "")
    event = bus.new_event(tenant_id=tenant_id, call_id=call_id)
    if isinstance(effect, fx.AgentLoggedIn):
        event.agent_logged_in.CopyFrom(
            agent_pb2.AgentLoggedIn(
                agent_id=effect.agent_id,
                endpoint=effect.endpoint,
                skills=skills_proto(dict(effect.skills)),
                groups=list(effect.groups),
                site=effect.site,
            )
        )
    elif isinstance(effect, fx.AgentLoggedOut):
        event.agent_logged_out.CopyFrom(
            agent_pb2.AgentLoggedOut(
                agent_id=effect.agent_id, reason=effect.reason, forced_by=effect.forced_by
            )
        )
    elif isinstance(effect, fx.AgentStateChanged):
        event.agent_state_changed.CopyFrom(
            agent_pb2.AgentStateChanged(
                agent_id=effect.agent_id,
                from_state=_STATES[effect.from_state],
                to_state=_STATES[effect.to_state],
                reason=effect.reason,
                changed_by=effect.changed_by,
            )
        )
    elif isinstance(effect, fx.AgentOffered):
        event.agent_offered.CopyFrom(
            agent_pb2.AgentOffered(
                agent_id=effect.agent_id,
                queue_id=effect.queue_id,
                timeout_ms=_ms(effect.timeout_s),
                attempt=effect.attempt,
            )
        )
    elif isinstance(effect, fx.AgentAnswered):
        event.agent_answered.CopyFrom(
            agent_pb2.AgentAnswered(
                agent_id=effect.agent_id, queue_id=effect.queue_id, ring_ms=_ms(effect.ring_s)
            )
        )
    elif isinstance(effect, fx.AgentNoAnswer):
        event.agent_no_answer.CopyFrom(
            agent_pb2.AgentNoAnswer(
                agent_id=effect.agent_id,
                queue_id=effect.queue_id,
                reason=_NO_ANSWER[effect.reason],
                ring_ms=_ms(effect.ring_s),
            )
        )
    elif isinstance(effect, fx.CallQueued):
        event.queue_entered.CopyFrom(
            queue_pb2.QueueEntered(
                queue_id=effect.queue_id,
                priority=effect.priority,
                position=effect.position,
                enqueued_at=timestamp(effect.enqueued_at),
                data=dict(effect.data),
            )
        )
    elif isinstance(effect, fx.CallPositionChanged):
        event.queue_position_changed.CopyFrom(
            queue_pb2.QueuePositionChanged(
                queue_id=effect.queue_id,
                position=effect.position,
                estimated_wait_s=max(0, round(effect.estimated_wait_s)),
            )
        )
    elif isinstance(effect, fx.CallLeftQueue):
        event.queue_left.CopyFrom(
            queue_pb2.QueueLeft(
                queue_id=effect.queue_id,
                reason=_LEAVE[effect.reason],
                wait_ms=_ms(effect.wait_s),
                agent_id=effect.agent_id,
            )
        )
    elif isinstance(effect, fx.CallOverflowed):
        event.queue_overflowed.CopyFrom(
            queue_pb2.QueueOverflowed(
                queue_id=effect.queue_id,
                reason=_OVERFLOW_REASON[effect.reason],
                target=_OVERFLOW_KIND[effect.target.kind],
                target_id=effect.target.target,
                wait_ms=_ms(effect.wait_s),
            )
        )
    else:  # pragma: no cover - the Event union is closed
        raise TypeError(f"not an engine event: {effect!r}")
    return event
