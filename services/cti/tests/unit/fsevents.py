"""Builders of FreeSWITCH events as the real switch serializes them (header names and order from
switch_event.c / switch_channel.c, see PROVENANCE.md), for the link's unit tests and fixtures."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

CORE_UUID = "6f0c4a5e-2b7d-4c1e-9a63-0d5e8f7b1a20"
_SEQ = itertools.count(1000)
T0 = 1_763_800_000_000_000  # µs


def base(name: str, ts_us: int, subclass: str | None = None) -> list[tuple[str, str]]:
    """The headers every event starts with, in FreeSWITCH's order."""
    headers = [
        ("Event-Name", name),
        ("Core-UUID", CORE_UUID),
        ("FreeSWITCH-Hostname", "fs1.example.net"),
        ("FreeSWITCH-Switchname", "fs1"),
        ("FreeSWITCH-IPv4", "10.0.0.5"),
        ("FreeSWITCH-IPv6", "::1"),
        ("Event-Date-Local", "2025-11-22 08:26:40"),
        ("Event-Date-GMT", "Sat, 22 Nov 2025 08:26:40 GMT"),
        ("Event-Date-Timestamp", str(ts_us)),
        ("Event-Calling-File", "switch_channel.c"),
        ("Event-Calling-Function", "switch_channel_perform_mark_answered"),
        ("Event-Calling-Line-Number", "3902"),
        ("Event-Sequence", str(next(_SEQ))),
    ]
    if subclass:
        headers.append(("Event-Subclass", subclass))
    return headers


def channel(
    name: str,
    uuid: str,
    *,
    ts_us: int = T0,
    direction: str = "inbound",
    call_uuid: str | None = None,
    channel_name: str = "sofia/external/+33612345678@carrier.example.net",
    caller: str = "+33612345678",
    destination: str = "+33140000000",
    state: str = "CS_EXECUTE",
    answer_state: str = "ringing",
    created_us: int = T0,
    answered_us: int = 0,
    hangup_us: int = 0,
    hangup_cause: str | None = None,
    transfer_source: str | None = None,
    other: tuple[str, str] | None = None,
    variables: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """A channel event: basic data, caller profile, other leg, extra headers, variables."""
    headers = base(name, ts_us)
    headers += [
        ("Channel-State", state),
        ("Channel-Call-State", "ACTIVE" if answered_us else "RINGING"),
        ("Channel-State-Number", "4"),
        ("Channel-Name", channel_name),
        ("Unique-ID", uuid),
        ("Call-Direction", direction),
        ("Presence-Call-Direction", direction),
        ("Channel-HIT-Dialplan", "true" if direction == "inbound" else "false"),
        ("Channel-Call-UUID", call_uuid or uuid),
        ("Answer-State", answer_state),
    ]
    if hangup_cause:
        headers.append(("Hangup-Cause", hangup_cause))
    headers += [
        ("Caller-Direction", direction),
        ("Caller-Logical-Direction", direction),
        ("Caller-Username", caller),
        ("Caller-Dialplan", "XML"),
        ("Caller-Caller-ID-Name", caller),
        ("Caller-Caller-ID-Number", caller),
        ("Caller-Orig-Caller-ID-Name", caller),
        ("Caller-Orig-Caller-ID-Number", caller),
        ("Caller-Network-Addr", "192.0.2.10"),
        ("Caller-ANI", caller),
        ("Caller-Destination-Number", destination),
        ("Caller-Unique-ID", uuid),
        ("Caller-Source", "mod_sofia"),
    ]
    if transfer_source:
        headers.append(("Caller-Transfer-Source", transfer_source))
    headers += [
        ("Caller-Context", "public"),
        ("Caller-Channel-Name", channel_name),
        ("Caller-Profile-Index", "1"),
        ("Caller-Profile-Created-Time", str(created_us)),
        ("Caller-Channel-Created-Time", str(created_us)),
        ("Caller-Channel-Answered-Time", str(answered_us)),
        ("Caller-Channel-Progress-Time", "0"),
        ("Caller-Channel-Progress-Media-Time", "0"),
        ("Caller-Channel-Hangup-Time", str(hangup_us)),
        ("Caller-Channel-Transfer-Time", "0"),
        ("Caller-Channel-Resurrect-Time", "0"),
        ("Caller-Channel-Bridged-Time", "0"),
        ("Caller-Channel-Last-Hold", "0"),
        ("Caller-Channel-Hold-Accum", "0"),
        ("Caller-Screen-Bit", "true"),
        ("Caller-Privacy-Hide-Name", "false"),
        ("Caller-Privacy-Hide-Number", "false"),
    ]
    if other:
        kind, other_uuid = other
        headers += [("Other-Type", kind), ("Other-Leg-Direction", "outbound")]
        headers += [("Other-Leg-Unique-ID", other_uuid)]
    for key, value in (extra or {}).items():
        headers.append((key, value))
    for key, value in (variables or {}).items():
        headers.append((f"variable_{key}", value))
    return headers


def as_dict(headers: list[tuple[str, str]]) -> dict[str, str]:
    """First occurrence wins, as EslEvent.as_dict."""
    out: dict[str, str] = {}
    for key, value in headers:
        out.setdefault(key, value)
    return out


A = "0b3e1c52-8a4f-4d7e-b1a9-5c2d7e3f9a01"
B = "7d2f4a90-1c3b-4e5d-8f6a-9b0c1d2e3f04"
AGENT_CHANNEL = "sofia/internal/1001@acme.sip.callmesh.local"


def inbound_call_to_agent(tenant: str = "acme") -> list[list[tuple[str, str]]]:
    """A carrier call handed to ivr, bridged to agent 1001, held, recorded; the caller hangs up.

    The tenant is set by the dialplan (export), so CHANNEL_CREATE of A does not carry it.
    """
    t = T0
    tv = {"callmesh_tenant": tenant, "callmesh_call_id": A}
    a_vars = {**tv, "callmesh_role": "caller", "domain_name": "carrier.example.net"}
    b_vars = {
        **tv,
        "callmesh_role": "agent",
        "originating_leg_uuid": A,
        "domain_name": f"{tenant}.sip.callmesh.local",
        "user_name": "1001",
    }
    b: dict[str, Any] = {
        "direction": "outbound",
        "call_uuid": A,
        "channel_name": AGENT_CHANNEL,
        "caller": "+33612345678",
        "destination": "1001",
    }
    rec = f"/var/lib/freeswitch/recordings/{tenant}/{A}.wav"
    return [
        channel("CHANNEL_CREATE", A, ts_us=t, state="CS_INIT"),
        channel(
            "CHANNEL_EXECUTE",
            A,
            ts_us=t + 20_000,
            variables=a_vars,
            extra={"Application": "socket", "Application-Data": "127.0.0.1:8084 async full"},
        ),
        channel(
            "CHANNEL_ANSWER",
            A,
            ts_us=t + 100_000,
            answer_state="answered",
            answered_us=t + 100_000,
            variables=a_vars,
        ),
        channel(
            "DTMF",
            A,
            ts_us=t + 3_000_000,
            answered_us=t + 100_000,
            extra={"DTMF-Digit": "1", "DTMF-Duration": "2000", "DTMF-Source": "RTP"},
        ),
        channel("CHANNEL_CREATE", B, ts_us=t + 10_000_000, state="CS_INIT", **b, variables=b_vars),
        channel(
            "CHANNEL_PROGRESS",
            B,
            ts_us=t + 10_200_000,
            **b,
            other=("originator", A),
            variables=b_vars,
        ),
        channel(
            "CHANNEL_ANSWER",
            B,
            ts_us=t + 14_000_000,
            answer_state="answered",
            answered_us=t + 14_000_000,
            **b,
            other=("originator", A),
            variables=b_vars,
        ),
        channel(
            "CHANNEL_BRIDGE",
            A,
            ts_us=t + 14_010_000,
            answer_state="answered",
            answered_us=t + 100_000,
            other=("originatee", B),
            extra={"Bridge-A-Unique-ID": A, "Bridge-B-Unique-ID": B},
            variables=a_vars,
        ),
        channel(
            "RECORD_START",
            A,
            ts_us=t + 14_020_000,
            answered_us=t + 100_000,
            extra={"Record-File-Path": rec},
            variables=a_vars,
        ),
        channel(
            "CHANNEL_HOLD",
            B,
            ts_us=t + 30_000_000,
            **b,
            answered_us=t + 14_000_000,
            other=("originator", A),
            variables=b_vars,
        ),
        channel(
            "CHANNEL_UNHOLD",
            B,
            ts_us=t + 40_000_000,
            **b,
            answered_us=t + 14_000_000,
            other=("originator", A),
            variables=b_vars,
        ),
        channel(
            "RECORD_STOP",
            A,
            ts_us=t + 60_000_000,
            answered_us=t + 100_000,
            extra={"Record-File-Path": rec, "Record-Completion-Cause": "success"},
            variables={**a_vars, "record_ms": "45980"},
        ),
        channel(
            "CHANNEL_UNBRIDGE",
            A,
            ts_us=t + 60_010_000,
            answered_us=t + 100_000,
            other=("originatee", B),
            extra={"Bridge-A-Unique-ID": A, "Bridge-B-Unique-ID": B},
            variables=a_vars,
        ),
        channel(
            "CHANNEL_HANGUP_COMPLETE",
            A,
            ts_us=t + 60_020_000,
            state="CS_REPORTING",
            answer_state="hangup",
            answered_us=t + 100_000,
            hangup_us=t + 60_000_000,
            hangup_cause="NORMAL_CLEARING",
            variables={
                **a_vars,
                "sip_hangup_disposition": "recv_bye",
                "hangup_cause": "NORMAL_CLEARING",
                "hangup_cause_q850": "16",
                "duration": "60",
                "billsec": "60",
                "mduration": "60000",
                "billmsec": "59900",
            },
        ),
        channel(
            "CHANNEL_HANGUP_COMPLETE",
            B,
            ts_us=t + 60_030_000,
            **b,
            state="CS_REPORTING",
            answer_state="hangup",
            answered_us=t + 14_000_000,
            hangup_us=t + 60_005_000,
            hangup_cause="NORMAL_CLEARING",
            variables={
                **b_vars,
                "sip_hangup_disposition": "send_bye",
                "hangup_cause": "NORMAL_CLEARING",
                "hangup_cause_q850": "16",
                "mduration": "50005",
                "billmsec": "46005",
            },
        ),
        channel("CHANNEL_DESTROY", A, ts_us=t + 60_040_000, state="CS_DESTROY", variables=a_vars),
        channel("CHANNEL_DESTROY", B, ts_us=t + 60_050_000, state="CS_DESTROY", **b),
    ]
