"""The link's Prometheus metrics (``LinkObserver``): ESL events, lag, commands, channels."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram

from callmesh.core import telemetry

# ESL lag: from the switch's event time to our handling; 1 ms to a minute.
_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class LinkMetrics:
    """``LinkObserver`` on prometheus-client (thread-safe: the gevent side reports too)."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self._events = telemetry.counter(
            "callmesh_cti_esl_events_total", "ESL events received, by Event-Name", ["node", "event"]
        )
        self._lag = telemetry.histogram(
            "callmesh_cti_esl_lag_seconds",
            "Event-Date-Timestamp to handling",
            ["node"],
            buckets=_LAG_BUCKETS,
        )
        self._problems = telemetry.counter(
            "callmesh_cti_esl_problems_total",
            "Malformed frames/events and unknown events, by kind",
            ["node", "kind"],
        )
        self._unknown_tenant = telemetry.counter(
            "callmesh_cti_unknown_tenant_events_total",
            "Call events given up: their channel ended before its tenant was known",
            ["node"],
        ).labels(node_id)
        self._commands = telemetry.histogram(
            "callmesh_cti_command_seconds",
            "Switch command latency (bus request to bgapi job result), by command and outcome",
            ["node", "command", "outcome"],
        )
        self._refused = telemetry.counter(
            "callmesh_cti_commands_refused_total",
            "Commands refused before the switch, by reason",
            ["node", "reason"],
        )
        self._reconnects = telemetry.counter(
            "callmesh_cti_esl_reconnects_total", "Event socket reconnections", ["node"]
        ).labels(node_id)
        self._channels = telemetry.gauge(
            "callmesh_cti_live_channels", "Live channels per tenant", ["node", "tenant"]
        )
        self._connected = telemetry.gauge(
            "callmesh_cti_esl_connected", "1 while the event socket is up", ["node"]
        ).labels(node_id)
        self._event_children: dict[str, Counter] = {}
        self._lag_child: Histogram = self._lag.labels(node_id)
        self._tenants: set[str] = set()

    def esl_event(self, name: str, timestamp_us: int) -> None:
        """One event: rate by name and lag."""
        child = self._event_children.get(name)
        if child is None:
            child = self._events.labels(self.node_id, name[:64])
            if len(self._event_children) < 512:
                self._event_children[name] = child
        child.inc()
        if timestamp_us:
            self._lag_child.observe(max(0.0, time.time() - timestamp_us / 1_000_000))

    def esl_problem(self, kind: str) -> None:
        """A malformed frame or event, or an unknown event."""
        self._problems.labels(self.node_id, kind).inc()

    def unknown_tenant(self, count: int) -> None:
        """Call events given up for want of a tenant."""
        self._unknown_tenant.inc(count)

    def command(self, name: str, outcome: str, seconds: float) -> None:
        """A command's latency and outcome."""
        self._commands.labels(self.node_id, name, outcome).observe(seconds)

    def refused(self, reason: str) -> None:
        """A refused command."""
        self._refused.labels(self.node_id, reason).inc()

    def reconnect(self) -> None:
        """A reconnection."""
        self._reconnects.inc()

    def connected(self, up: bool) -> None:
        """Whether the event socket is up."""
        self._connected.set(1 if up else 0)

    def live_channels(self, per_tenant: dict[str, int]) -> None:
        """Live channels per tenant ("-" for channels whose tenant is not known yet)."""
        current = {tenant or "-": count for tenant, count in per_tenant.items()}
        for tenant in self._tenants - current.keys():
            self._channels.labels(self.node_id, tenant).set(0)
        for tenant, count in current.items():
            self._channels.labels(self.node_id, tenant).set(count)
        self._tenants = set(current) | self._tenants
