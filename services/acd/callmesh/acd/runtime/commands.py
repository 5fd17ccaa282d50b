"""The engine's commands as switch commands (``SwitchCommand`` on ``cm.node.<node>.cmd``).

Endpoints: an agent's endpoint string is ``user:<sip user>``, ``gateway:<gw>:<number>``,
``node:<node>:<number>`` or ``dial:<dial string>``. Originate failures come back as the
switch's hangup cause (the link's ``-ERR <CAUSE>``) and map to the engine's ``NoAnswerReason``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from callmesh.acd.domain.effects import NoAnswerReason
from callmesh.core.errors import InvalidInput
from callmesh.proto.v1.switch_pb2 import (
    Endpoint,
    GatewayDial,
    NodeDial,
    SwitchErrorCode,
    SwitchReply,
)

# FreeSWITCH hangup causes of a failed originate → why the offer failed (CONTRACTS).
_CAUSES: dict[str, NoAnswerReason] = {
    "NO_ANSWER": NoAnswerReason.TIMEOUT,
    "ORIGINATOR_CANCEL": NoAnswerReason.TIMEOUT,
    "NO_USER_RESPONSE": NoAnswerReason.TIMEOUT,
    "ALLOTTED_TIMEOUT": NoAnswerReason.TIMEOUT,
    "RECOVERY_ON_TIMER_EXPIRE": NoAnswerReason.TIMEOUT,
    "USER_BUSY": NoAnswerReason.BUSY,
    "CALL_REJECTED": NoAnswerReason.REJECTED,
    "USER_NOT_REGISTERED": NoAnswerReason.UNREACHABLE,
    "UNALLOCATED_NUMBER": NoAnswerReason.UNREACHABLE,
    "SUBSCRIBER_ABSENT": NoAnswerReason.UNREACHABLE,
    "NO_ROUTE_DESTINATION": NoAnswerReason.UNREACHABLE,
}


def endpoint_of(value: str) -> Endpoint:
    """The proto endpoint of an agent's endpoint string; InvalidInput names the rule broken."""
    kind, _, rest = value.partition(":")
    if kind == "user" and rest:
        return Endpoint(user=rest)
    if kind in ("gateway", "node"):
        target, _, number = rest.partition(":")
        if target and number:
            if kind == "gateway":
                return Endpoint(gateway=GatewayDial(gateway=target, number=number))
            return Endpoint(node=NodeDial(node_id=target, number=number))
    if kind == "dial" and rest:
        return Endpoint(dial_string=rest)
    raise InvalidInput(
        "endpoint",
        "must be user:<sip user>, gateway:<gateway>:<number>, node:<node>:<number> or "
        f"dial:<dial string> (got {value!r})",
    )


def cause_of(reply: SwitchReply) -> str:
    """The hangup cause a failed originate's reply names ("" when it names none)."""
    words = reply.message.strip().split()
    return words[0].upper() if words else ""


def no_answer_reason(reply: SwitchReply) -> NoAnswerReason:
    """Why an originate failed, from its reply."""
    if reply.error_code == SwitchErrorCode.SWITCH_ERROR_CODE_TIMEOUT:
        return NoAnswerReason.TIMEOUT
    return reason_of_cause(cause_of(reply))


def reason_of_cause(cause: str) -> NoAnswerReason:
    """Why an offer failed, from the hangup cause of its leg."""
    return _CAUSES.get(cause.upper(), NoAnswerReason.SWITCH_ERROR)


def answer_timeout_s(timeout_s: float) -> int:
    """The originate's whole-second answer timeout (at least 1)."""
    return max(1, math.ceil(timeout_s))


@dataclass(frozen=True)
class Fence:
    """The lease a partition acts under and its fencing token."""

    lease: str
    token: int
