"""The bus contract's addresses: subjects, JetStream streams and KV buckets, defined once, here.

Events travel on ``<prefix>.<tenant>.<domain>.<event>`` (platform events of switch nodes on
``<prefix>.node.<node>.<event>``); commands to a switch node on ``<prefix>.node.<node>.cmd``;
commands to a service on ``<prefix>.<tenant>.<service>.<op>``. A stream captures the exact event
subjects of its domains, never a wildcard over a domain token, so a service command that shares
the token (``ivr``) is never swallowed by a stream (which would answer the request with a PubAck).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from callmesh.proto.v1.event_pb2 import Event

DEFAULT_PREFIX = "cm"

_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Tenant ids are lowercase slugs: usable as subject tokens, database names and URL segments.
TENANT_ID_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$")
RESERVED_TENANT_IDS = frozenset({"node", "operator", "platform", "all", "any", "system"})


class Domain(StrEnum):
    """Event domains: the third subject token."""

    CALL = "call"
    AGENT = "agent"
    QUEUE = "queue"
    IVR = "ivr"
    NODE = "node"
    TENANT = "tenant"


class Service(StrEnum):
    """The services; the third token of their command subjects."""

    IVR = "ivr"
    ACD = "acd"
    CTI = "cti"
    OUTBOUND = "outbound"
    QA = "qa"
    WFM = "wfm"
    ADMIN = "admin"


class Bucket(StrEnum):
    """KV buckets (the stored name carries the prefix)."""

    NODES = "nodes"
    LEASES = "leases"
    TENANTS = "tenants"
    PLACEMENT = "placement"
    QUOTAS = "quotas"
    QUOTA_RATES = "quota_rates"
    REVOCATIONS = "revocations"
    ACD_STATE = "acd_state"


class AcdOp(StrEnum):
    """Ops of the acd service's tenant commands (``service_command(tenant, Service.ACD, op)``)."""

    ENQUEUE = "enqueue"
    AGENT_LOGIN = "agent_login"
    AGENT_READY = "agent_ready"
    AGENT_NOT_READY = "agent_not_ready"
    AGENT_BREAK = "agent_break"
    AGENT_END_WRAP_UP = "agent_end_wrap_up"
    AGENT_LOGOUT = "agent_logout"
    AGENT_SKILLS = "agent_skills"
    LIVE = "live"
    CONFIG_CHANGED = "config_changed"


class AdminOp(StrEnum):
    """Ops of the admin service's tenant commands."""

    CALENDAR_STATE = "calendar_state"


@dataclass(frozen=True)
class EventKind:
    """One event type: its body field in ``Event``, its domain and its subject token."""

    body: str
    domain: Domain
    name: str


@dataclass(frozen=True)
class StreamSpec:
    """A JetStream stream keeping the events of some domains."""

    name: str
    domains: tuple[Domain, ...]
    max_age_s: float
    description: str


@dataclass(frozen=True)
class BucketSpec:
    """A KV bucket; ``ttl_s`` None keeps values until deleted."""

    bucket: Bucket
    history: int
    ttl_s: float | None
    description: str


_DAY = 86400.0

_EVENT_LIST: tuple[EventKind, ...] = (
    EventKind("call_created", Domain.CALL, "created"),
    EventKind("call_ringing", Domain.CALL, "ringing"),
    EventKind("call_answered", Domain.CALL, "answered"),
    EventKind("call_bridged", Domain.CALL, "bridged"),
    EventKind("call_unbridged", Domain.CALL, "unbridged"),
    EventKind("call_held", Domain.CALL, "held"),
    EventKind("call_unheld", Domain.CALL, "unheld"),
    EventKind("call_transferred", Domain.CALL, "transferred"),
    EventKind("call_dtmf", Domain.CALL, "dtmf"),
    EventKind("recording_started", Domain.CALL, "recording_started"),
    EventKind("recording_stopped", Domain.CALL, "recording_stopped"),
    EventKind("call_hung_up", Domain.CALL, "hung_up"),
    EventKind("agent_logged_in", Domain.AGENT, "logged_in"),
    EventKind("agent_logged_out", Domain.AGENT, "logged_out"),
    EventKind("agent_state_changed", Domain.AGENT, "state_changed"),
    EventKind("agent_offered", Domain.AGENT, "offered"),
    EventKind("agent_answered", Domain.AGENT, "answered"),
    EventKind("agent_no_answer", Domain.AGENT, "no_answer"),
    EventKind("queue_entered", Domain.QUEUE, "entered"),
    EventKind("queue_position_changed", Domain.QUEUE, "position_changed"),
    EventKind("queue_left", Domain.QUEUE, "left"),
    EventKind("queue_overflowed", Domain.QUEUE, "overflowed"),
    EventKind("ivr_node_entered", Domain.IVR, "node_entered"),
    EventKind("ivr_input_received", Domain.IVR, "input_received"),
    EventKind("ivr_variable_set", Domain.IVR, "variable_set"),
    EventKind("ivr_flow_left", Domain.IVR, "flow_left"),
    EventKind("ivr_http_called", Domain.IVR, "http_called"),
    EventKind("ivr_voicemail_left", Domain.IVR, "voicemail_left"),
    EventKind("ivr_flow_published", Domain.IVR, "flow_published"),
    EventKind("ivr_blacklist_hit", Domain.IVR, "blacklist_hit"),
    EventKind("node_heartbeat", Domain.NODE, "heartbeat"),
    EventKind("node_up", Domain.NODE, "up"),
    EventKind("node_down", Domain.NODE, "down"),
    EventKind("tenant_created", Domain.TENANT, "created"),
    EventKind("tenant_updated", Domain.TENANT, "updated"),
    EventKind("tenant_suspended", Domain.TENANT, "suspended"),
    EventKind("tenant_resumed", Domain.TENANT, "resumed"),
    EventKind("tenant_deleted", Domain.TENANT, "deleted"),
    EventKind("tenant_restored", Domain.TENANT, "restored"),
    EventKind("tenant_numbers_changed", Domain.TENANT, "numbers_changed"),
    EventKind("tenant_directory_changed", Domain.TENANT, "directory_changed"),
    EventKind("tenant_calendars_changed", Domain.TENANT, "calendars_changed"),
    EventKind("tenant_quota_exceeded", Domain.TENANT, "quota_exceeded"),
)

EVENTS: Mapping[str, EventKind] = MappingProxyType({kind.body: kind for kind in _EVENT_LIST})

STREAMS: tuple[StreamSpec, ...] = (
    StreamSpec("CALLS", (Domain.CALL,), 30 * _DAY, "call lifecycle events of every tenant"),
    StreamSpec("AGENTS", (Domain.AGENT,), 30 * _DAY, "agent logins, states and offers"),
    StreamSpec("QUEUES", (Domain.QUEUE,), 30 * _DAY, "queue entries, positions, exits, overflows"),
    StreamSpec("IVR", (Domain.IVR,), 30 * _DAY, "IVR trails: nodes, inputs, variables, outcomes"),
    StreamSpec("NODES", (Domain.NODE,), 1 * _DAY, "switch node heartbeats, ups and downs"),
    StreamSpec("ADMIN", (Domain.TENANT,), 365 * _DAY, "tenant lifecycle"),
)

BUCKETS: tuple[BucketSpec, ...] = (
    BucketSpec(Bucket.NODES, 1, 30.0, "switch nodes' latest heartbeat; gone 30 s after the last"),
    BucketSpec(Bucket.LEASES, 1, None, "partition leases; TTL set from the lease settings"),
    BucketSpec(Bucket.TENANTS, 1, None, "each tenant's status and settings services act on"),
    BucketSpec(Bucket.PLACEMENT, 1, None, "where each tenant's data lives; clusters by name"),
    BucketSpec(Bucket.QUOTAS, 1, None, "per-tenant quota counters with their limits"),
    BucketSpec(Bucket.QUOTA_RATES, 1, 10.0, "per-second rate counters (calls per second)"),
    # Longest access token (1 h) plus the verifiers' leeway and a margin: a revoked token must
    # not outlive its entry, or a service started late would let it back in.
    BucketSpec(
        Bucket.ACD_STATE, 1, None, "acd owners' snapshots of each tenant's live queues and agents"
    ),
    BucketSpec(Bucket.REVOCATIONS, 1, 3720.0, "revoked access-token ids until they expire"),
)


def check_token(field: str, value: str) -> str:
    """A subject token (node id, op, instance): letters, digits, ``_`` and ``-``, 1-64 chars."""
    if not _TOKEN_RE.match(value):
        raise ValueError(f"{field}: must be 1-64 letters, digits, '_' or '-' (got {value!r})")
    return value


def check_tenant_id(value: str, field: str = "tenant_id") -> str:
    """A tenant id: a lowercase slug of 1-48 chars that is not a reserved word."""
    if not TENANT_ID_RE.match(value):
        raise ValueError(
            f"{field}: must be 1-48 lowercase letters, digits or inner '-' (got {value!r})"
        )
    if value in RESERVED_TENANT_IDS:
        raise ValueError(f"{field}: {value!r} is reserved")
    return value


def event_kind(event: Event) -> EventKind:
    """The kind of an event, from the body it carries."""
    body = event.WhichOneof("body")
    if body is None:
        raise ValueError("body: an event must carry exactly one body")
    return EVENTS[body]


def kinds_of(domains: Iterable[Domain]) -> list[EventKind]:
    """The event kinds of some domains, in schema order."""
    wanted = set(domains)
    return [kind for kind in _EVENT_LIST if kind.domain in wanted]


def stream_of(domain: Domain) -> StreamSpec:
    """The stream that keeps a domain's events."""
    for spec in STREAMS:
        if domain in spec.domains:
            return spec
    raise KeyError(domain)


class Subjects:
    """Subject, stream and bucket names under one prefix (``cm`` in production, one per test)."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = check_token("subject_prefix", prefix)

    def event(self, kind: EventKind, *, tenant_id: str = "", node_id: str = "") -> str:
        """The subject an event of ``kind`` is published on."""
        if kind.domain is Domain.NODE:
            return f"{self.prefix}.node.{check_token('node_id', node_id)}.{kind.name}"
        return f"{self.prefix}.{check_tenant_id(tenant_id)}.{kind.domain}.{kind.name}"

    def for_event(self, event: Event) -> str:
        """The subject of a built event (tenant from the envelope, node from its source)."""
        kind = event_kind(event)
        return self.event(kind, tenant_id=event.tenant_id, node_id=event.source.node_id)

    def events(
        self, domain: Domain, *, tenant_id: str = "*", node_id: str = "*", name: str = "*"
    ) -> str:
        """A filter over one domain's events: any or one tenant (or node), any or one event."""
        if domain is Domain.NODE:
            return f"{self.prefix}.node.{node_id}.{name}"
        return f"{self.prefix}.{tenant_id}.{domain}.{name}"

    def node_command(self, node_id: str) -> str:
        """Request/reply commands to the cti link of one switch node."""
        return f"{self.prefix}.node.{check_token('node_id', node_id)}.cmd"

    def platform_command(self, service: Service, op: str) -> str:
        """Request/reply commands to a service about no tenant in particular (e.g. which tenant
        owns a number); ``platform`` is a reserved tenant id, so these never meet a tenant's."""
        return f"{self.prefix}.platform.{service}.{check_token('op', op)}"

    def service_command(self, tenant_id: str, service: Service, op: str) -> str:
        """Request/reply commands to a service about one tenant."""
        check_token("op", op)
        for kind in _EVENT_LIST:
            if kind.domain.value == service.value and kind.name == op:
                raise ValueError(
                    f"op: {op!r} is an event of domain {kind.domain}; pick another name"
                )
        return f"{self.prefix}.{check_tenant_id(tenant_id)}.{service}.{op}"

    def stream(self, spec: StreamSpec) -> str:
        """The stream's name on the server."""
        return f"{self.prefix.upper()}_{spec.name}"

    def stream_subjects(self, spec: StreamSpec) -> list[str]:
        """The exact subjects a stream captures (see the module docstring for why not wildcards)."""
        out: list[str] = []
        for kind in kinds_of(spec.domains):
            if kind.domain is Domain.NODE:
                out.append(f"{self.prefix}.node.*.{kind.name}")
            else:
                out.append(f"{self.prefix}.*.{kind.domain}.{kind.name}")
        return out

    def bucket(self, bucket: Bucket) -> str:
        """The KV bucket's name on the server."""
        return f"{self.prefix}_{bucket}"
