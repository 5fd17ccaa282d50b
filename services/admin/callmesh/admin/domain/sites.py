"""Sites and switch nodes: what registering them requires, and how a node's health is judged.

A site is a place (the center or a branch); a node is a FreeSWITCH server at a site, reached by
its cti link over ESL. The cti link writes the node's latest heartbeat into the ``nodes`` KV
bucket (gone 30 s after the last); admin judges the node ``up``, ``down`` or ``unknown`` from it.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from callmesh.core.errors import Conflict, InvalidInput

SITE_ID_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$")
# Node ids are subject tokens (cm.node.<node>.*) and KV keys.
NODE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME_RE = re.compile(rf"^(?=.{{1,253}}$){_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?$")
NAME_MAX = 100
TEXT_MAX = 500
MAX_ADDRESSES = 16
# A heartbeat older than this is a node that stopped beating (the cti link beats every few
# seconds; the bucket forgets a node 30 s after its last beat).
STALE_AFTER_S = 15.0


class NodeRole(StrEnum):
    """What a node does: the center's switch or a branch site's."""

    CENTRAL = "central"
    BRANCH = "branch"


class NodeState(StrEnum):
    """A node's health as admin judges it from heartbeats."""

    UP = "up"
    DOWN = "down"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Site:
    """A place where switch nodes run."""

    site_id: str
    name: str
    description: str
    region: str
    address: str
    created_at: datetime
    updated_at: datetime

    def record(self) -> dict[str, Any]:
        """As stored and audited."""
        return {
            "site_id": self.site_id,
            "name": self.name,
            "description": self.description,
            "region": self.region,
            "address": self.address,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class EslEndpoint:
    """Where the node's event socket listens."""

    host: str
    port: int


@dataclass(frozen=True)
class Node:
    """A FreeSWITCH node registered at a site."""

    node_id: str
    site_id: str
    addresses: tuple[str, ...]
    esl_endpoint: EslEndpoint
    role: NodeRole
    description: str
    created_at: datetime
    updated_at: datetime

    def record(self) -> dict[str, Any]:
        """As stored and audited."""
        return {
            "node_id": self.node_id,
            "site_id": self.site_id,
            "addresses": list(self.addresses),
            "esl_endpoint": {"host": self.esl_endpoint.host, "port": self.esl_endpoint.port},
            "role": self.role.value,
            "description": self.description,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class Heartbeat:
    """A node's latest heartbeat, as the cti link wrote it, and when."""

    node_id: str
    site: str
    version: str
    esl_connected: bool
    channels: int
    calls: int
    uptime_s: int
    at: datetime | None


@dataclass(frozen=True)
class NodeStatus:
    """A node's health now."""

    state: NodeState
    last_heartbeat_at: datetime | None = None
    esl_connected: bool | None = None
    channels: int | None = None
    calls: int | None = None
    version: str | None = None
    uptime_s: int | None = None
    reason: str = ""


# --- field rules ---------------------------------------------------------------------------------


def _text(value: str, field: str, low: int, high: int) -> str:
    text = value.strip()
    if not low <= len(text) <= high:
        raise InvalidInput(field, f"must be {low}-{high} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in text):
        raise InvalidInput(field, "must not contain control characters")
    return text


def check_site_id(value: str, field: str = "site_id") -> str:
    """A site id: 1-48 lowercase letters, digits or inner '-'."""
    if not SITE_ID_RE.match(value):
        raise InvalidInput(field, "must be 1-48 lowercase letters, digits or inner '-'")
    return value


def check_node_id(value: str, field: str = "node_id") -> str:
    """A node id: 1-64 letters, digits, '_' or '-' (it is a subject token and a KV key)."""
    if not NODE_ID_RE.match(value):
        raise InvalidInput(field, "must be 1-64 letters, digits, '_' or '-'")
    return value


def check_host(value: str, field: str) -> str:
    """A host: an IP address or a DNS name."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if not _HOSTNAME_RE.match(value):
        raise InvalidInput(field, "must be an IP address or a host name")
    return value.lower()


def check_port(value: int, field: str) -> int:
    """A TCP port."""
    if isinstance(value, bool) or not 1 <= value <= 65535:
        raise InvalidInput(field, "must be a port from 1 to 65535")
    return value


def check_addresses(values: list[str], field: str = "addresses") -> tuple[str, ...]:
    """The node's SIP/media addresses: 1-16 hosts (IP or DNS name), no repeats."""
    if not 1 <= len(values) <= MAX_ADDRESSES:
        raise InvalidInput(field, f"must hold 1-{MAX_ADDRESSES} addresses")
    hosts = [check_host(v, f"{field}.{i}") for i, v in enumerate(values)]
    return tuple(dict.fromkeys(hosts))


def new_site(
    site_id: str, name: str, description: str, region: str, address: str, now: datetime
) -> Site:
    """A site, every field checked."""
    return Site(
        site_id=check_site_id(site_id),
        name=_text(name, "name", 1, NAME_MAX),
        description=_text(description, "description", 0, TEXT_MAX),
        region=_text(region, "region", 0, NAME_MAX),
        address=_text(address, "address", 0, TEXT_MAX),
        created_at=now,
        updated_at=now,
    )


def update_site(site: Site, changes: dict[str, str | None], now: datetime) -> tuple[Site, bool]:
    """The site with ``changes`` (name, description, region, address) and whether it changed."""
    limits = {"name": (1, NAME_MAX), "description": (0, TEXT_MAX), "region": (0, NAME_MAX)}
    new: dict[str, Any] = {}
    for key, value in changes.items():
        if value is None:
            continue
        low, high = limits.get(key, (0, TEXT_MAX))
        new[key] = _text(value, key, low, high)
    if all(getattr(site, k) == v for k, v in new.items()):
        return site, False
    return replace(site, updated_at=now, **new), True


def new_node(
    node_id: str,
    site_id: str,
    addresses: list[str],
    esl_host: str,
    esl_port: int,
    role: str,
    description: str,
    now: datetime,
) -> Node:
    """A node, every field checked (the site's existence is the service's to check)."""
    return Node(
        node_id=check_node_id(node_id),
        site_id=check_site_id(site_id),
        addresses=check_addresses(addresses),
        esl_endpoint=EslEndpoint(
            check_host(esl_host, "esl_endpoint.host"), check_port(esl_port, "esl_endpoint.port")
        ),
        role=check_role(role),
        description=_text(description, "description", 0, TEXT_MAX),
        created_at=now,
        updated_at=now,
    )


def check_role(value: str, field: str = "role") -> NodeRole:
    """central or branch."""
    try:
        return NodeRole(value)
    except ValueError:
        raise InvalidInput(field, "must be central or branch") from None


def site_has_nodes(site_id: str, count: int) -> Conflict:
    """The refusal of deleting a site that still has nodes."""
    return Conflict(
        f"site {site_id} still has {count} node(s): move or delete them first",
        reason="site_in_use",
        nodes=count,
    )


def node_status(
    heartbeat: Heartbeat | None, now: datetime, stale_after_s: float = STALE_AFTER_S
) -> NodeStatus:
    """Judge a node from its latest heartbeat (None: none in the bucket, i.e. none for 30 s)."""
    if heartbeat is None:
        return NodeStatus(NodeState.DOWN, reason="no heartbeat in the last 30 s")
    fields: dict[str, Any] = {
        "last_heartbeat_at": heartbeat.at,
        "esl_connected": heartbeat.esl_connected,
        "channels": heartbeat.channels,
        "calls": heartbeat.calls,
        "version": heartbeat.version,
        "uptime_s": heartbeat.uptime_s,
    }
    if heartbeat.at is not None and (now - heartbeat.at).total_seconds() > stale_after_s:
        return NodeStatus(
            NodeState.DOWN, reason=f"last heartbeat over {stale_after_s:g} s ago", **fields
        )
    if not heartbeat.esl_connected:
        return NodeStatus(NodeState.DOWN, reason="cti link not connected to the switch", **fields)
    return NodeStatus(NodeState.UP, **fields)


def status_unknown(reason: str) -> NodeStatus:
    """The status when heartbeats cannot be read (the bus is unreachable, a value is garbage)."""
    return NodeStatus(NodeState.UNKNOWN, reason=reason)
