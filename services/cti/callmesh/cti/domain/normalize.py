"""FreeSWITCH events → platform call events (``Event`` bodies), node-independent and pure.

One ``Normalizer`` per switch node holds the ``ChannelTable``. ``feed`` takes one event's
URL-decoded headers (a dict: lookups must be O(1) at 20,000 events/s) and tells what it was and
which call events it produced, each with the tenant and call id to publish it under. Which FS
event gives which platform event is tabled in docs/cti.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from callmesh.cti.domain.legs import MAX_PENDING, ChannelTable, Leg, PendingEvent
from callmesh.proto.v1.call_pb2 import (
    CallAnswered,
    CallBridged,
    CallCreated,
    CallDtmf,
    CallHeld,
    CallHungUp,
    CallRinging,
    CallTransferred,
    CallUnbridged,
    CallUnheld,
    DtmfSource,
    HangupSide,
    RecordingStarted,
    RecordingStopped,
    TransferKind,
)
from callmesh.proto.v1.common_pb2 import CallDirection, LegRole, MediaChannel, Party

# Q.850 codes of FreeSWITCH's cause names (switch_channel.c CAUSE_CHART). Names above 127 are
# FreeSWITCH's own; switch_channel_cause_q850() reports them as NORMAL_CLEARING (16).
Q850: Mapping[str, int] = {
    "UNSPECIFIED": 0,
    "UNALLOCATED_NUMBER": 1,
    "NO_ROUTE_TRANSIT_NET": 2,
    "NO_ROUTE_DESTINATION": 3,
    "CHANNEL_UNACCEPTABLE": 6,
    "CALL_AWARDED_DELIVERED": 7,
    "NORMAL_CLEARING": 16,
    "USER_BUSY": 17,
    "NO_USER_RESPONSE": 18,
    "NO_ANSWER": 19,
    "SUBSCRIBER_ABSENT": 20,
    "CALL_REJECTED": 21,
    "NUMBER_CHANGED": 22,
    "REDIRECTION_TO_NEW_DESTINATION": 23,
    "EXCHANGE_ROUTING_ERROR": 25,
    "DESTINATION_OUT_OF_ORDER": 27,
    "INVALID_NUMBER_FORMAT": 28,
    "FACILITY_REJECTED": 29,
    "RESPONSE_TO_STATUS_ENQUIRY": 30,
    "NORMAL_UNSPECIFIED": 31,
    "NORMAL_CIRCUIT_CONGESTION": 34,
    "NETWORK_OUT_OF_ORDER": 38,
    "NORMAL_TEMPORARY_FAILURE": 41,
    "SWITCH_CONGESTION": 42,
    "ACCESS_INFO_DISCARDED": 43,
    "REQUESTED_CHAN_UNAVAIL": 44,
    "PRE_EMPTED": 45,
    "FACILITY_NOT_SUBSCRIBED": 50,
    "OUTGOING_CALL_BARRED": 52,
    "INCOMING_CALL_BARRED": 54,
    "BEARERCAPABILITY_NOTAUTH": 57,
    "BEARERCAPABILITY_NOTAVAIL": 58,
    "SERVICE_UNAVAILABLE": 63,
    "BEARERCAPABILITY_NOTIMPL": 65,
    "CHAN_NOT_IMPLEMENTED": 66,
    "FACILITY_NOT_IMPLEMENTED": 69,
    "SERVICE_NOT_IMPLEMENTED": 79,
    "INVALID_CALL_REFERENCE": 81,
    "INCOMPATIBLE_DESTINATION": 88,
    "INVALID_MSG_UNSPECIFIED": 95,
    "MANDATORY_IE_MISSING": 96,
    "MESSAGE_TYPE_NONEXIST": 97,
    "WRONG_MESSAGE": 98,
    "IE_NONEXIST": 99,
    "INVALID_IE_CONTENTS": 100,
    "WRONG_CALL_STATE": 101,
    "RECOVERY_ON_TIMER_EXPIRE": 102,
    "MANDATORY_IE_LENGTH_ERROR": 103,
    "PROTOCOL_ERROR": 111,
    "INTERWORKING": 127,
}

# The events the link subscribes to (``event plain …``); CUSTOM subclasses separately.
CHANNEL_EVENTS: tuple[str, ...] = (
    "CHANNEL_CREATE",
    "CHANNEL_ORIGINATE",
    "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_ANSWER",
    "CHANNEL_BRIDGE",
    "CHANNEL_UNBRIDGE",
    "CHANNEL_HOLD",
    "CHANNEL_UNHOLD",
    "CHANNEL_PARK",
    "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_DESTROY",
    "CALL_UPDATE",
    "DTMF",
    "RECORD_START",
    "RECORD_STOP",
)
CUSTOM_SUBCLASSES: tuple[str, ...] = (
    "sofia::register",
    "sofia::unregister",
    "sofia::expire",
    "conference::maintenance",
)
SUBSCRIBED: tuple[str, ...] = (*CHANNEL_EVENTS, "BACKGROUND_JOB")

# Every header the normalizer and its channel table read by name, and the name prefixes of the
# headers they read by iterating (``_platform_variables``). The event readers pick only these
# out of an event's raw bytes (``esl_parse.parse_event_fast``); a name outside them still reads
# right, it only costs a whole parse of that event. A unit test checks the list against the code.
HEADERS_READ: frozenset[str] = frozenset(
    {
        "Event-Name",
        "Event-Subclass",
        "Event-Date-Timestamp",
        "Unique-ID",
        "Channel-Name",
        "Channel-Call-UUID",
        "Call-Direction",
        "Caller-Direction",
        "Caller-Transfer-Source",
        "Caller-Destination-Number",
        "Caller-Caller-ID-Number",
        "Caller-Caller-ID-Name",
        "Caller-Callee-ID-Number",
        "Caller-Callee-ID-Name",
        "Caller-Channel-Created-Time",
        "Caller-Channel-Answered-Time",
        "Caller-Channel-Hangup-Time",
        "Caller-Dialplan",
        "Caller-Context",
        "Other-Type",
        "Other-Leg-Unique-ID",
        "Bridge-A-Unique-ID",
        "Bridge-B-Unique-ID",
        "Hangup-Cause",
        "DTMF-Digit",
        "DTMF-Duration",
        "DTMF-Source",
        "Record-File-Path",
        "Record-Completion-Cause",
        "variable_originating_leg_uuid",
        "variable_domain_name",
        "variable_sip_to_host",
        "variable_sip_from_host",
        "variable_user_name",
        "variable_sip_from_user",
        "variable_sip_to_user",
        "variable_sip_via_protocol",
        "variable_sip_gateway_name",
        "variable_sip_hangup_disposition",
        "variable_hangup_cause",
        "variable_hangup_cause_q850",
        "variable_mduration",
        "variable_duration",
        "variable_billmsec",
        "variable_billsec",
        "variable_record_ms",
        "variable_record_seconds",
    }
)
HEADER_PREFIXES_READ: tuple[str, ...] = ("variable_callmesh_",)

_DTMF_SOURCES: Mapping[str, int] = {
    "RTP": DtmfSource.DTMF_SOURCE_RTP,
    "INBAND_AUDIO": DtmfSource.DTMF_SOURCE_INBAND,
    "ENDPOINT": DtmfSource.DTMF_SOURCE_INFO,
    "INFO": DtmfSource.DTMF_SOURCE_INFO,
    "APP": DtmfSource.DTMF_SOURCE_APP,
}
_PARTY_SIDE: Mapping[int, int] = {
    LegRole.LEG_ROLE_CUSTOMER: HangupSide.HANGUP_SIDE_CALLER,
    LegRole.LEG_ROLE_AGENT: HangupSide.HANGUP_SIDE_AGENT,
    LegRole.LEG_ROLE_SUPERVISOR: HangupSide.HANGUP_SIDE_SUPERVISOR,
    LegRole.LEG_ROLE_EXTERNAL: HangupSide.HANGUP_SIDE_CALLEE,
    LegRole.LEG_ROLE_IVR: HangupSide.HANGUP_SIDE_SYSTEM,
}
# Causes that say the far party of an outbound leg refused or never answered.
_FAR_REFUSALS = frozenset(
    {"USER_BUSY", "NO_ANSWER", "NO_USER_RESPONSE", "CALL_REJECTED", "SUBSCRIBER_ABSENT"}
)
# DTMF durations are in samples of the 8 kHz telephone-event clock (2000 = 250 ms).
_DTMF_SAMPLES_PER_MS = 8


@dataclass(slots=True)
class CallEvent:
    """One platform call event, ready to be put in an ``Event`` envelope and published."""

    tenant_id: str
    call_id: str
    channel_uuid: str
    time_us: int
    body: str
    message: Any


@dataclass(slots=True)
class Outcome:
    """What one FreeSWITCH event was and what came of it."""

    kind: str  # call | registration | conference | job | ignored | unknown | malformed
    events: list[CallEvent] = field(default_factory=list)
    # Call events given up because their leg ended before its tenant was known.
    dropped: int = 0
    # A leg whose tenant only the SIP directory can tell (ask once, then ``tenant_found``).
    ask_tenant: Leg | None = None
    reason: str = ""


def _int(value: str | None) -> int:
    if value and value.isdigit():
        return int(value)
    return 0


def q850_code(cause: str, reported: str | None = None) -> int:
    """The Q.850 code of a hangup: FreeSWITCH's own report, else the cause chart."""
    if reported and reported.isdigit():
        return int(reported)
    code = Q850.get(cause)
    if code is not None:
        return code
    return 16 if cause else 0


def media_channel(headers: Mapping[str, str]) -> int:
    """Where a leg came in or goes out: PSTN (external/gateway), SIP phone, or WebRTC."""
    protocol = (headers.get("variable_sip_via_protocol") or "").lower()
    name = headers.get("Channel-Name") or ""
    if protocol in ("ws", "wss") or "webrtc" in name or name.startswith("verto"):
        return MediaChannel.MEDIA_CHANNEL_WEB
    if name.startswith("sofia/"):
        profile = name.split("/", 2)[1] if name.count("/") >= 2 else ""
        if profile == "external" or headers.get("variable_sip_gateway_name"):
            return MediaChannel.MEDIA_CHANNEL_PSTN
        return MediaChannel.MEDIA_CHANNEL_SIP
    return MediaChannel.MEDIA_CHANNEL_UNSPECIFIED


def hangup_side(role: int, direction: str, disposition: str, cause: str, partner_side: int) -> int:
    """Who ended a leg, from the SIP disposition, the leg's role and the cause."""
    party = _PARTY_SIDE.get(role)
    if party is None:
        party = (
            HangupSide.HANGUP_SIDE_CALLER
            if direction == "inbound"
            else HangupSide.HANGUP_SIDE_CALLEE
        )
    if disposition.startswith("recv_"):
        # recv_bye / recv_cancel / recv_refuse: this leg's far party ended it.
        return party
    if disposition.startswith("send_"):
        # We ended it: because the other leg's party hung up, or the platform decided.
        if partner_side:
            return partner_side
        return HangupSide.HANGUP_SIDE_SYSTEM
    if cause == "ORIGINATOR_CANCEL" and direction == "inbound":
        return party
    if cause in _FAR_REFUSALS and direction == "outbound":
        return party
    if cause in ("MANAGER_REQUEST", "SYSTEM_SHUTDOWN", "CRASH", "ALLOTTED_TIMEOUT"):
        return HangupSide.HANGUP_SIDE_SYSTEM
    if partner_side:
        return partner_side
    return HangupSide.HANGUP_SIDE_UNSPECIFIED


def _platform_variables(headers: Mapping[str, str]) -> dict[str, str]:
    """The channel variables the platform set (``callmesh_*``); nothing else leaves the node."""
    # By name, then get(): header mappings may decode values only when read. A mapping that
    # can list its names by prefix (``LazyHeaders``) is not iterated whole.
    by_prefix = getattr(headers, "names_with_prefix", None)
    names = by_prefix("variable_callmesh_") if by_prefix is not None else headers
    return {
        name[9:]: headers.get(name) or ""
        for name in names
        if name.startswith("variable_callmesh_") and not name.endswith(("_secret", "_password"))
    }


def _durations(headers: Mapping[str, str]) -> tuple[int, int]:
    """(duration, billed) in ms, from FreeSWITCH's variables or the profile's timestamps."""
    duration = _int(headers.get("variable_mduration"))
    if not duration:
        duration = _int(headers.get("variable_duration")) * 1000
    billed = _int(headers.get("variable_billmsec"))
    if not billed:
        billed = _int(headers.get("variable_billsec")) * 1000
    if not duration:
        created = _int(headers.get("Caller-Channel-Created-Time"))
        ended = _int(headers.get("Caller-Channel-Hangup-Time")) or _int(
            headers.get("Event-Date-Timestamp")
        )
        if created and ended > created:
            duration = (ended - created) // 1000
    if not billed:
        answered = _int(headers.get("Caller-Channel-Answered-Time"))
        ended = _int(headers.get("Caller-Channel-Hangup-Time")) or _int(
            headers.get("Event-Date-Timestamp")
        )
        if answered and ended > answered:
            billed = (ended - answered) // 1000
    return duration, billed


def recording_duration_ms(headers: Mapping[str, str]) -> int:
    """A stopped recording's length as FreeSWITCH reports it (0 when it does not)."""
    ms = _int(headers.get("variable_record_ms"))
    if ms:
        return ms
    return _int(headers.get("variable_record_seconds")) * 1000


class Normalizer:
    """Turns one node's FreeSWITCH events into platform call events."""

    def __init__(self, table: ChannelTable | None = None, *, keep_tenantless: bool = False) -> None:
        self.table = table if table is not None else ChannelTable()
        # Offline decoding keeps events whose tenant never became known (tenant "").
        self.keep_tenantless = keep_tenantless
        # Recording ids given with RecordStart commands, by file path.
        self.recording_ids: dict[str, str] = {}
        self._builders: dict[str, Callable[[Leg, Mapping[str, str], str], list[tuple[str, Any]]]]
        self._builders = {
            "CHANNEL_CREATE": self._created,
            "CHANNEL_PROGRESS": self._ringing,
            "CHANNEL_PROGRESS_MEDIA": self._ringing,
            "CHANNEL_ANSWER": self._answered,
            "CHANNEL_BRIDGE": self._bridged,
            "CHANNEL_UNBRIDGE": self._unbridged,
            "CHANNEL_HOLD": self._held,
            "CHANNEL_UNHOLD": self._unheld,
            "DTMF": self._dtmf,
            "RECORD_START": self._record_start,
            "RECORD_STOP": self._record_stop,
            "CHANNEL_HANGUP_COMPLETE": self._hung_up,
            "CHANNEL_DESTROY": self._destroyed,
        }
        self._quiet = frozenset(
            {
                "CHANNEL_ORIGINATE",
                "CHANNEL_PARK",
                "CHANNEL_EXECUTE",
                "CHANNEL_EXECUTE_COMPLETE",
                "CHANNEL_HANGUP",
                "CALL_UPDATE",
                "CHANNEL_STATE",
                "CHANNEL_CALLSTATE",
                "CHANNEL_OUTGOING",
                "CHANNEL_UNPARK",
                "CHANNEL_UUID",
                "CHANNEL_DATA",
                "PLAYBACK_START",
                "PLAYBACK_STOP",
            }
        )

    def feed(self, headers: Mapping[str, str]) -> Outcome:
        """One FreeSWITCH event (URL-decoded headers) → what came of it."""
        name = headers.get("Event-Name")
        if not name:
            return Outcome("malformed", reason="no Event-Name header")
        if name == "CUSTOM":
            subclass = headers.get("Event-Subclass") or ""
            if subclass.startswith("sofia::"):
                return Outcome("registration")
            if subclass.startswith("conference::"):
                return Outcome("conference")
            return Outcome("unknown", reason=f"CUSTOM {subclass}")
        if name == "BACKGROUND_JOB":
            return Outcome("job")
        builder = self._builders.get(name)
        if builder is None and name not in self._quiet:
            if name in ("HEARTBEAT", "RE_SCHEDULE", "API", "LOG", "MODULE_LOAD", "SHUTDOWN"):
                return Outcome("ignored")
            return Outcome("unknown", reason=name)
        uuid = headers.get("Unique-ID")
        if not uuid:
            return Outcome("malformed", reason=f"{name} without Unique-ID")
        time_us = _int(headers.get("Event-Date-Timestamp"))
        table = self.table
        known = table.get(uuid)
        knew_tenant = known is not None and bool(known.tenant_id)
        leg = table.observe(uuid, headers)
        if leg is None:
            return self._late(uuid, name, headers, time_us)
        bodies: list[tuple[str, Any]] = []
        source = headers.get("Caller-Transfer-Source")
        if source and source != leg.transfer_source:
            if leg.transfer_source or name != "CHANNEL_CREATE":
                bodies.append(("call_transferred", self._transfer(uuid, headers)))
            leg.transfer_source = source
        if builder is not None:
            bodies.extend(builder(leg, headers, uuid))
        outcome = Outcome("call")
        self._emit(leg, bodies, time_us, outcome)
        if not knew_tenant and leg.tenant_id:
            self._release_partners(leg, outcome)
        if name in ("CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY"):
            self._end(leg, outcome)
        return outcome

    def tenant_found(self, uuid: str, tenant_id: str) -> list[CallEvent]:
        """A leg's tenant learnt outside the events: its held events (and partners') go out."""
        leg = self.table.set_tenant(uuid, tenant_id)
        outcome = Outcome("call")
        if leg is not None and leg.tenant_id:
            self._emit(leg, [], 0, outcome)
            self._release_partners(leg, outcome)
        return outcome.events

    def sync(
        self, live: Mapping[str, str], time_us: int, since: int | None = None
    ) -> tuple[list[Leg], list[CallEvent]]:
        """After a (re)connect: adopt channels we never saw, end those that vanished meanwhile.

        A vanished leg gets a CallHungUp (cause empty, side SYSTEM) so its call does not stay
        open downstream; a leg we never saw is added (its tenant comes with its next event).
        """
        added, gone = self.table.sync(live, since)
        events: list[CallEvent] = []
        for leg in gone:
            ended = self.table.ended(leg.uuid)
            if ended is None or not ended.tenant_id or leg.hung_up:
                continue
            hung = CallHungUp(channel_uuid=leg.uuid, side=HangupSide.HANGUP_SIDE_SYSTEM)
            hung.role = leg.role  # type: ignore[assignment]
            events.append(
                CallEvent(ended.tenant_id, ended.call_id, leg.uuid, time_us, "call_hung_up", hung)
            )
        return added, events

    def flush_pending(self) -> list[CallEvent]:
        """Every held event, tenant or not (offline decoding: nobody can tell the tenant)."""
        out: list[CallEvent] = []
        for leg in self.table.legs():
            if leg.pending:
                tenant, call_id = self.table.fix(leg)
                out.extend(
                    CallEvent(tenant, call_id, leg.uuid, p.time_us, p.body, p.message)
                    for p in leg.pending
                )
                leg.pending = []
        return out

    # -- plumbing ---------------------------------------------------------------------------

    def _emit(self, leg: Leg, bodies: list[tuple[str, Any]], time_us: int, out: Outcome) -> None:
        table = self.table
        tenant = table.tenant_of(leg)
        if not tenant:
            for body, message in bodies:
                if len(leg.pending) >= MAX_PENDING:
                    leg.pending.pop(0)
                    leg.dropped += 1
                leg.pending.append(PendingEvent(body, message, time_us))
            if leg.sip_domain and leg.sip_user and not leg.tenant_asked:
                leg.tenant_asked = True
                out.ask_tenant = leg
            return
        tenant, call_id = table.fix(leg)
        if leg.pending:
            held, leg.pending = leg.pending, []
            out.events.extend(
                CallEvent(tenant, call_id, leg.uuid, p.time_us, p.body, p.message) for p in held
            )
        out.events.extend(
            CallEvent(tenant, call_id, leg.uuid, time_us, body, message) for body, message in bodies
        )

    def _release_partners(self, leg: Leg, out: Outcome) -> None:
        for other in self.table.linked(leg.uuid):
            if other.pending:
                self._emit(other, [], 0, out)

    def _end(self, leg: Leg, out: Outcome) -> None:
        if leg.pending and self.keep_tenantless:
            tenant, call_id = self.table.fix(leg)
            out.events.extend(
                CallEvent(tenant, call_id, leg.uuid, p.time_us, p.body, p.message)
                for p in leg.pending
            )
            leg.pending = []
        if leg.pending:
            out.dropped += len(leg.pending)
            leg.pending = []
        out.dropped += leg.dropped
        self.table.end(leg.uuid)

    def _late(self, uuid: str, name: str, headers: Mapping[str, str], time_us: int) -> Outcome:
        """An event about a leg that already ended (RECORD_STOP racing the hangup, DESTROY)."""
        if name not in ("RECORD_STOP", "DTMF"):
            return Outcome("call")
        ended = self.table.ended(uuid)
        if ended is None:
            return Outcome("call")
        bodies = (
            self._record_stop(None, headers, uuid)
            if name == "RECORD_STOP"
            else self._dtmf(None, headers, uuid)
        )
        if not ended.tenant_id:
            return Outcome("call", dropped=len(bodies))
        return Outcome(
            "call",
            [CallEvent(ended.tenant_id, ended.call_id, uuid, time_us, b, m) for b, m in bodies],
        )

    # -- builders ---------------------------------------------------------------------------

    def _created(self, leg: Leg, h: Mapping[str, str], uuid: str) -> list[tuple[str, Any]]:
        direction = h.get("Call-Direction") or ""
        destination = h.get("Caller-Destination-Number") or ""
        message = CallCreated(
            channel_uuid=uuid,
            direction=(
                CallDirection.CALL_DIRECTION_INBOUND
                if direction == "inbound"
                else CallDirection.CALL_DIRECTION_OUTBOUND
                if direction == "outbound"
                else CallDirection.CALL_DIRECTION_UNSPECIFIED
            ),
            caller=Party(
                number=h.get("Caller-Caller-ID-Number") or "",
                name=h.get("Caller-Caller-ID-Name") or "",
            ),
            callee=Party(
                number=h.get("Caller-Callee-ID-Number") or destination,
                name=h.get("Caller-Callee-ID-Name") or "",
            ),
            destination_number=destination,
            media_channel=media_channel(h),  # type: ignore[arg-type]
            role=leg.role,  # type: ignore[arg-type]
            variables=_platform_variables(h),
        )
        return [("call_created", message)]

    @staticmethod
    def _ringing(leg: Leg, h: Mapping[str, str], uuid: str) -> list[tuple[str, Any]]:
        early = h.get("Event-Name") == "CHANNEL_PROGRESS_MEDIA"
        return [("call_ringing", CallRinging(channel_uuid=uuid, early_media=early))]

    @staticmethod
    def _answered(leg: Leg, h: Mapping[str, str], uuid: str) -> list[tuple[str, Any]]:
        leg.answered_us = _int(h.get("Event-Date-Timestamp"))
        return [("call_answered", CallAnswered(channel_uuid=uuid, role=leg.role))]  # type: ignore[arg-type]

    def _bridged(self, leg: Leg, h: Mapping[str, str], uuid: str) -> list[tuple[str, Any]]:
        a = h.get("Bridge-A-Unique-ID") or uuid
        b = h.get("Bridge-B-Unique-ID") or h.get("Other-Leg-Unique-ID") or ""
        other = b if a == uuid else a
        leg.bridged_to = other
        peer = self.table.get(other)
        if peer is not None:
            peer.bridged_to = uuid
            self.table.link(other, uuid)
        return [("call_bridged", CallBridged(a_channel_uuid=a, b_channel_uuid=b))]

    @staticmethod
    def _unbridged(leg: Leg, h: Mapping[str, str], uuid: str) -> list[tuple[str, Any]]:
        a = h.get("Bridge-A-Unique-ID") or uuid
        b = h.get("Bridge-B-Unique-ID") or h.get("Other-Leg-Unique-ID") or leg.bridged_to
        leg.bridged_to = ""
        return [("call_unbridged", CallUnbridged(a_channel_uuid=a, b_channel_uuid=b))]

    @staticmethod
    def _held(leg: Leg, h: Mapping[str, str], uuid: str) -> list[tuple[str, Any]]:
        return [("call_held", CallHeld(channel_uuid=uuid))]

    @staticmethod
    def _unheld(leg: Leg, h: Mapping[str, str], uuid: str) -> list[tuple[str, Any]]:
        return [("call_unheld", CallUnheld(channel_uuid=uuid))]

    @staticmethod
    def _transfer(uuid: str, h: Mapping[str, str]) -> CallTransferred:
        return CallTransferred(
            channel_uuid=uuid,
            kind=TransferKind.TRANSFER_KIND_BLIND,
            destination=h.get("Caller-Destination-Number") or "",
            dialplan=h.get("Caller-Dialplan") or "",
            context=h.get("Caller-Context") or "",
        )

    @staticmethod
    def _dtmf(leg: Leg | None, h: Mapping[str, str], uuid: str) -> list[tuple[str, Any]]:
        digit = h.get("DTMF-Digit") or ""
        if not digit:
            return []
        message = CallDtmf(
            channel_uuid=uuid,
            digit=digit[:1],
            duration_ms=_int(h.get("DTMF-Duration")) // _DTMF_SAMPLES_PER_MS,
            source=_DTMF_SOURCES.get(  # type: ignore[arg-type]
                (h.get("DTMF-Source") or "").upper(), DtmfSource.DTMF_SOURCE_UNSPECIFIED
            ),
        )
        return [("call_dtmf", message)]

    def _recording_id(self, path: str, h: Mapping[str, str]) -> str:
        known = self.recording_ids.get(path) or h.get("variable_callmesh_recording_id")
        if known:
            return known
        base = path.rsplit("/", 1)[-1]
        return base.rsplit(".", 1)[0] if "." in base else base

    def _record_start(self, leg: Leg, h: Mapping[str, str], uuid: str) -> list[tuple[str, Any]]:
        path = h.get("Record-File-Path") or ""
        message = RecordingStarted(
            channel_uuid=uuid, recording_id=self._recording_id(path, h), path=path
        )
        return [("recording_started", message)]

    def _record_stop(
        self, leg: Leg | None, h: Mapping[str, str], uuid: str
    ) -> list[tuple[str, Any]]:
        path = h.get("Record-File-Path") or ""
        message = RecordingStopped(
            channel_uuid=uuid,
            recording_id=self._recording_id(path, h),
            path=path,
            duration_ms=recording_duration_ms(h),
            completion_cause=h.get("Record-Completion-Cause") or "",
        )
        self.recording_ids.pop(path, None)
        return [("recording_stopped", message)]

    def _hung_up(self, leg: Leg, h: Mapping[str, str], uuid: str) -> list[tuple[str, Any]]:
        if leg.hung_up:
            return []
        leg.hung_up = True
        cause = h.get("variable_hangup_cause") or h.get("Hangup-Cause") or ""
        partner_side = 0
        for other in (leg.bridged_to, leg.partner):
            ended = self.table.ended(other) if other else None
            if ended is not None and ended.side:
                partner_side = ended.side
                break
        side = hangup_side(
            leg.role,
            leg.direction,
            h.get("variable_sip_hangup_disposition") or "",
            cause,
            partner_side,
        )
        leg.side = side
        duration, billed = _durations(h)
        message = CallHungUp(
            channel_uuid=uuid,
            cause=cause,
            q850_code=q850_code(cause, h.get("variable_hangup_cause_q850")),
            side=side,  # type: ignore[arg-type]
            duration_ms=duration,
            billsec_ms=billed,
            role=leg.role,  # type: ignore[arg-type]
        )
        return [("call_hung_up", message)]

    def _destroyed(self, leg: Leg, h: Mapping[str, str], uuid: str) -> list[tuple[str, Any]]:
        # Only reached when HANGUP_COMPLETE was never seen (it ends the leg): say it now.
        return self._hung_up(leg, h, uuid)
