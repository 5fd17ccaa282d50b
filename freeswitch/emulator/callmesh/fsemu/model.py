"""Call model constants and parsers shared by the engine: states, causes, dial strings, profiles."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from callmesh.core.esl import serialize_header_lines

# switch_channel_state_t, in order (Channel-State-Number is the index).
CHANNEL_STATES: tuple[str, ...] = (
    "CS_NEW", "CS_INIT", "CS_ROUTING", "CS_SOFT_EXECUTE", "CS_EXECUTE", "CS_EXCHANGE_MEDIA",
    "CS_PARK", "CS_CONSUME_MEDIA", "CS_HIBERNATE", "CS_RESET", "CS_HANGUP", "CS_REPORTING",
    "CS_DESTROY",
)  # fmt: skip
STATE_NUMBER = {name: str(i) for i, name in enumerate(CHANNEL_STATES)}
STATE_INDEX = {name: i for i, name in enumerate(CHANNEL_STATES)}

# switch_channel_callstate_t, in order.
CALL_STATES: tuple[str, ...] = (
    "DOWN", "DIALING", "RINGING", "EARLY", "ACTIVE", "HELD", "RING_WAIT", "HANGUP", "UNHELD",
)  # fmt: skip
CALL_STATE_NUMBER = {name: str(i) for i, name in enumerate(CALL_STATES)}

# switch_call_cause_t (src/include/switch_types.h).
CAUSES: dict[str, int] = {
    "NONE": 0, "UNALLOCATED_NUMBER": 1, "NO_ROUTE_TRANSIT_NET": 2, "NO_ROUTE_DESTINATION": 3,
    "CHANNEL_UNACCEPTABLE": 6, "CALL_AWARDED_DELIVERED": 7, "NORMAL_CLEARING": 16,
    "USER_BUSY": 17, "NO_USER_RESPONSE": 18, "NO_ANSWER": 19, "SUBSCRIBER_ABSENT": 20,
    "CALL_REJECTED": 21, "NUMBER_CHANGED": 22, "REDIRECTION_TO_NEW_DESTINATION": 23,
    "EXCHANGE_ROUTING_ERROR": 25, "DESTINATION_OUT_OF_ORDER": 27, "INVALID_NUMBER_FORMAT": 28,
    "FACILITY_REJECTED": 29, "RESPONSE_TO_STATUS_ENQUIRY": 30, "NORMAL_UNSPECIFIED": 31,
    "NORMAL_CIRCUIT_CONGESTION": 34, "NETWORK_OUT_OF_ORDER": 38, "NORMAL_TEMPORARY_FAILURE": 41,
    "SWITCH_CONGESTION": 42, "ACCESS_INFO_DISCARDED": 43, "REQUESTED_CHAN_UNAVAIL": 44,
    "PRE_EMPTED": 45, "FACILITY_NOT_SUBSCRIBED": 50, "OUTGOING_CALL_BARRED": 52,
    "INCOMING_CALL_BARRED": 54, "BEARERCAPABILITY_NOTAUTH": 57, "BEARERCAPABILITY_NOTAVAIL": 58,
    "SERVICE_UNAVAILABLE": 63, "BEARERCAPABILITY_NOTIMPL": 65, "CHAN_NOT_IMPLEMENTED": 66,
    "FACILITY_NOT_IMPLEMENTED": 69, "SERVICE_NOT_IMPLEMENTED": 79, "INVALID_CALL_REFERENCE": 81,
    "INCOMPATIBLE_DESTINATION": 88, "INVALID_MSG_UNSPECIFIED": 95, "MANDATORY_IE_MISSING": 96,
    "MESSAGE_TYPE_NONEXIST": 97, "WRONG_MESSAGE": 98, "IE_NONEXIST": 99, "INVALID_IE_CONTENTS": 100,
    "WRONG_CALL_STATE": 101, "RECOVERY_ON_TIMER_EXPIRE": 102, "MANDATORY_IE_LENGTH_ERROR": 103,
    "PROTOCOL_ERROR": 111, "INTERWORKING": 127, "SUCCESS": 142, "ORIGINATOR_CANCEL": 487,
    "CRASH": 700, "SYSTEM_SHUTDOWN": 701, "LOSE_RACE": 702, "MANAGER_REQUEST": 703,
    "BLIND_TRANSFER": 800, "ATTENDED_TRANSFER": 801, "ALLOTTED_TIMEOUT": 802,
    "USER_CHALLENGE": 803, "MEDIA_TIMEOUT": 804, "PICKED_OFF": 805, "USER_NOT_REGISTERED": 806,
    "PROGRESS_TIMEOUT": 807, "INVALID_GATEWAY": 808, "GATEWAY_DOWN": 809, "INVALID_URL": 810,
    "INVALID_PROFILE": 811, "NO_PICKUP": 812, "SRTP_READ_ERROR": 813, "BOWOUT": 814,
    "BUSY_EVERYWHERE": 815, "DECLINE": 816, "DOES_NOT_EXIST_ANYWHERE": 817, "NOT_ACCEPTABLE": 818,
    "UNWANTED": 819, "NO_IDENTITY": 820, "BAD_IDENTITY_INFO": 821, "UNSUPPORTED_CERTIFICATE": 822,
    "INVALID_IDENTITY": 823, "STALE_DATE": 824, "REJECT_ALL": 825,
}  # fmt: skip


def q850(cause: str) -> int:
    """switch_channel_cause_q850: the code itself up to INTERWORKING (127), else 16."""
    code = CAUSES.get(cause, CAUSES["NORMAL_UNSPECIFIED"])
    return code if code <= 127 else 16


def normalize_cause(cause: str) -> str:
    """A known cause name (case-insensitive, or a numeric code), else NORMAL_CLEARING."""
    upper = cause.strip().upper()
    if upper in CAUSES:
        return upper
    if upper.isdigit():
        code = int(upper)
        for name, value in CAUSES.items():
            if value == code:
                return name
    return "NORMAL_CLEARING"


# SIP status → cause, as sofia_glue_sip_cause_to_freeswitch.
SIP_TO_CAUSE = {
    404: "UNALLOCATED_NUMBER", 480: "NO_USER_RESPONSE", 486: "USER_BUSY", 487: "ORIGINATOR_CANCEL",
    408: "RECOVERY_ON_TIMER_EXPIRE", 603: "CALL_REJECTED", 403: "CALL_REJECTED",
    503: "NORMAL_TEMPORARY_FAILURE", 484: "INVALID_NUMBER_FORMAT", 600: "USER_BUSY",
}  # fmt: skip

DialKind = Literal["user", "gateway", "sofia", "loopback", "error", "other"]


@dataclass(slots=True)
class DialTarget:
    """A parsed dial string (one leg)."""

    kind: DialKind
    raw: str
    user: str = ""
    domain: str = ""
    gateway: str = ""
    number: str = ""
    profile: str = ""
    variables: dict[str, str] = field(default_factory=dict)


def split_vars(text: str) -> tuple[dict[str, str], str]:
    """Strip leading `{a=b,c=d}` / `[a=b]` / `<a=b>` blocks; return (variables, rest)."""
    variables: dict[str, str] = {}
    rest = text.strip()
    pairs = {"{": "}", "[": "]", "<": ">"}
    while rest and rest[0] in pairs:
        close = rest.find(pairs[rest[0]])
        if close < 0:
            break
        body = rest[1:close]
        rest = rest[close + 1 :].lstrip()
        for item in _split_unquoted(body, ","):
            if "=" in item:
                key, value = item.split("=", 1)
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] == "'":
                    value = value[1:-1]
                variables[key.strip()] = value.replace("\\,", ",")
    return variables, rest


def _split_unquoted(text: str, sep: str) -> list[str]:
    out: list[str] = []
    buf: list[str] = []
    quote = False
    escape = False
    for ch in text:
        if escape:
            buf.append(ch)
            escape = False
        elif ch == "\\":
            escape = True
        elif ch == "'":
            quote = not quote
            buf.append(ch)
        elif ch == sep and not quote:
            out.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    out.append("".join(buf))
    return [s for s in (x.strip() for x in out) if s]


def parse_dial_string(dial: str) -> DialTarget:
    """Parse one leg of a dial string (without the `,`/`|` separators)."""
    variables, rest = split_vars(dial)
    lowered = rest.lower()
    if lowered.startswith("user/"):
        spec = rest[5:]
        user, _, domain = spec.partition("@")
        return DialTarget("user", rest, user=user, domain=domain, number=user, variables=variables)
    if lowered.startswith("sofia/gateway/"):
        spec = rest[len("sofia/gateway/") :]
        gateway, _, number = spec.partition("/")
        return DialTarget(
            "gateway", rest, gateway=gateway, number=number, profile="external", variables=variables
        )
    if lowered.startswith("sofia/"):
        parts = rest.split("/", 2)
        profile = parts[1] if len(parts) > 1 else ""
        target = parts[2] if len(parts) > 2 else ""
        target = re.sub(r"^sips?:", "", target)
        number, _, domain = target.partition("@")
        return DialTarget(
            "sofia",
            rest,
            user=number,
            domain=domain,
            number=number,
            profile=profile,
            variables=variables,
        )
    if lowered.startswith("loopback/"):
        spec = rest[len("loopback/") :]
        number = spec.split("/", 1)[0]
        return DialTarget("loopback", rest, number=number, variables=variables)
    if lowered.startswith("error/"):
        return DialTarget("error", rest, number=rest[6:], variables=variables)
    return DialTarget("other", rest, number=rest, variables=variables)


def split_dial_legs(dial: str) -> tuple[dict[str, str], list[list[str]]]:
    """Global `{}` vars, then groups tried in turn (`|`) of legs rung together (`,`)."""
    global_vars: dict[str, str] = {}
    rest = dial.strip()
    if rest.startswith("{"):
        close = rest.find("}")
        if close > 0:
            global_vars, _ = split_vars(rest[: close + 1])
            rest = rest[close + 1 :]
    groups = [_split_unquoted(group, ",") for group in _split_top(rest, "|")]
    return global_vars, [g for g in groups if g]


def _split_top(text: str, sep: str) -> list[str]:
    out: list[str] = []
    depth = 0
    buf: list[str] = []
    for ch in text:
        if ch in "[{<":
            depth += 1
        elif ch in "]}>":
            depth = max(0, depth - 1)
        if ch == sep and depth == 0:
            out.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    out.append("".join(buf))
    return [s.strip() for s in out if s.strip()]


PROFILE_TIME_FIELDS = (
    ("Profile-Created-Time", "profile_created"),
    ("Channel-Created-Time", "created"),
    ("Channel-Answered-Time", "answered"),
    ("Channel-Progress-Time", "progress"),
    ("Channel-Progress-Media-Time", "progress_media"),
    ("Channel-Hangup-Time", "hungup"),
    ("Channel-Transfer-Time", "transferred"),
    ("Channel-Resurrect-Time", "resurrected"),
    ("Channel-Bridged-Time", "bridged"),
    ("Channel-Last-Hold", "last_hold"),
    ("Channel-Hold-Accum", "hold_accum"),
)


@dataclass(slots=True)
class CallerProfile:
    """switch_caller_profile_t: what the Caller-* / Other-Leg-* headers are made of."""

    direction: str
    uuid: str
    chan_name: str
    caller_id_name: str = ""
    caller_id_number: str = ""
    destination_number: str = ""
    username: str = ""
    dialplan: str = "XML"
    context: str = "default"
    network_addr: str = ""
    ani: str = ""
    aniii: str = ""
    rdnis: str = ""
    source: str = "mod_sofia"
    transfer_source: str = ""
    callee_id_name: str = ""
    callee_id_number: str = ""
    orig_caller_id_name: str = ""
    orig_caller_id_number: str = ""
    profile_index: str = "1"
    times: dict[str, int] = field(default_factory=dict)
    _cache: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    _text: dict[str, str] = field(default_factory=dict)

    def touch(self) -> None:
        """Forget the cached header lists (and their serialized text) after a change."""
        self._cache.clear()
        self._text.clear()

    def headers_text(self, prefix: str) -> str:
        """headers(prefix) serialized as event-plain lines, once per change."""
        text = self._text.get(prefix)
        if text is None:
            text = self._text[prefix] = serialize_header_lines(self.headers(prefix))
        return text

    def headers(self, prefix: str) -> list[tuple[str, str]]:
        """switch_caller_profile_event_set_data(profile, prefix, event)."""
        cached = self._cache.get(prefix)
        if cached is not None:
            return cached
        p = prefix
        out = [
            (p + "-Direction", self.direction),
            (p + "-Logical-Direction", self.direction),
        ]
        optional = (
            ("-Username", self.username),
            ("-Dialplan", self.dialplan),
            ("-Caller-ID-Name", self.caller_id_name),
            ("-Caller-ID-Number", self.caller_id_number),
            ("-Orig-Caller-ID-Name", self.orig_caller_id_name if self.caller_id_name else ""),
            ("-Orig-Caller-ID-Number", self.orig_caller_id_number if self.caller_id_number else ""),
            ("-Callee-ID-Name", self.callee_id_name),
            ("-Callee-ID-Number", self.callee_id_number),
            ("-Network-Addr", self.network_addr),
            ("-ANI", self.ani),
            ("-ANI-II", self.aniii),
            ("-Destination-Number", self.destination_number),
            ("-Unique-ID", self.uuid),
            ("-Source", self.source),
            ("-Transfer-Source", self.transfer_source),
            ("-Context", self.context),
            ("-RDNIS", self.rdnis),
            ("-Channel-Name", self.chan_name),
            ("-Profile-Index", self.profile_index),
        )
        out.extend((p + suffix, value) for suffix, value in optional if value)
        times = self.times
        out.extend((p + "-" + name, str(times.get(key, 0))) for name, key in PROFILE_TIME_FIELDS)
        out.append((p + "-Screen-Bit", "true"))
        out.append((p + "-Privacy-Hide-Name", "false"))
        out.append((p + "-Privacy-Hide-Number", "false"))
        self._cache[prefix] = out
        return out
