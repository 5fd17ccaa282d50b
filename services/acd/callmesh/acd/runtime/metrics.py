"""Prometheus metrics of the ACD, labelled by tenant and queue (names in docs/acd.md)."""

from __future__ import annotations

import contextlib
from collections import Counter as Tally

from callmesh.acd.domain import effects as fx
from callmesh.acd.domain.engine import AcdEngine
from callmesh.core import telemetry


class AcdMetrics:
    """The process's ACD metrics (one set, shared by every partition it owns)."""

    def __init__(self) -> None:
        self.waiting = telemetry.gauge(
            "callmesh_acd_waiting_calls", "Calls waiting in a queue", ["tenant", "queue"]
        )
        self.longest_wait = telemetry.gauge(
            "callmesh_acd_longest_wait_seconds",
            "Wait of the longest-waiting call of a queue",
            ["tenant", "queue"],
        )
        self.agents = telemetry.gauge(
            "callmesh_acd_agents", "Logged-in agents by state", ["tenant", "state"]
        )
        self.offers = telemetry.counter(
            "callmesh_acd_offers_total", "Offers made to agents", ["tenant", "queue"]
        )
        self.answers = telemetry.counter(
            "callmesh_acd_answers_total", "Offers answered by agents", ["tenant", "queue"]
        )
        self.no_answers = telemetry.counter(
            "callmesh_acd_no_answers_total",
            "Offers not answered, by reason",
            ["tenant", "queue", "reason"],
        )
        self.abandons = telemetry.counter(
            "callmesh_acd_abandons_total", "Callers who hung up while queued", ["tenant", "queue"]
        )
        self.overflows = telemetry.counter(
            "callmesh_acd_overflows_total",
            "Calls overflowed, by reason",
            ["tenant", "queue", "reason"],
        )
        self.service_level = telemetry.gauge(
            "callmesh_acd_service_level",
            "Share of today's answered calls answered within the queue's threshold (0..1)",
            ["tenant", "queue"],
        )
        self.routing = telemetry.histogram(
            "callmesh_acd_routing_seconds",
            "Time of one engine call (a decision and its routing)",
            ["tenant", "op"],
            buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25),
        )
        self.partitions = telemetry.gauge(
            "callmesh_acd_partitions_owned", "Tenant partitions this replica owns", []
        )
        self.snapshot_seconds = telemetry.histogram(
            "callmesh_acd_snapshot_seconds", "Time to encode and store one snapshot", ["tenant"]
        )
        self.snapshot_bytes = telemetry.gauge(
            "callmesh_acd_snapshot_bytes", "Size of the last snapshot stored", ["tenant"]
        )
        self.command_failures = telemetry.counter(
            "callmesh_acd_command_failures_total",
            "Switch commands that failed, by command and error",
            ["tenant", "command", "error"],
        )
        self._queues: dict[str, set[str]] = {}

    def count(self, tenant: str, effect: fx.Effect) -> None:
        """Count one engine event in the counters."""
        if isinstance(effect, fx.AgentOffered):
            self.offers.labels(tenant, effect.queue_id).inc()
        elif isinstance(effect, fx.AgentAnswered):
            self.answers.labels(tenant, effect.queue_id).inc()
        elif isinstance(effect, fx.AgentNoAnswer):
            self.no_answers.labels(tenant, effect.queue_id, effect.reason.value).inc()
        elif isinstance(effect, fx.CallLeftQueue) and effect.reason is fx.LeaveReason.ABANDONED:
            self.abandons.labels(tenant, effect.queue_id).inc()
        elif isinstance(effect, fx.CallOverflowed):
            self.overflows.labels(tenant, effect.queue_id, effect.reason.value).inc()

    def observe(self, tenant: str, engine: AcdEngine, now: float) -> None:
        """Set the gauges from the engine's live views."""
        seen = self._queues.setdefault(tenant, set())
        current: set[str] = set()
        for view in engine.queue_views(now):
            current.add(view.queue_id)
            self.waiting.labels(tenant, view.queue_id).set(view.waiting)
            self.longest_wait.labels(tenant, view.queue_id).set(view.longest_wait_s)
            self.service_level.labels(tenant, view.queue_id).set(view.service_level)
        for gone in seen - current:
            self._drop_queue(tenant, gone)
        self._queues[tenant] = current
        states = Tally(a.state for a in engine.agents.values())
        for state in fx.AgentState:
            if state is not fx.AgentState.LOGGED_OUT:
                self.agents.labels(tenant, state.value).set(states.get(state, 0))

    def forget(self, tenant: str) -> None:
        """Drop the tenant's gauges (another replica owns it now)."""
        for queue in self._queues.pop(tenant, set()):
            self._drop_queue(tenant, queue)
        for state in fx.AgentState:
            if state is not fx.AgentState.LOGGED_OUT:
                with contextlib.suppress(KeyError):
                    self.agents.remove(tenant, state.value)

    def _drop_queue(self, tenant: str, queue: str) -> None:
        for gauge in (self.waiting, self.longest_wait, self.service_level):
            with contextlib.suppress(KeyError):
                gauge.remove(tenant, queue)


_METRICS: AcdMetrics | None = None


def metrics() -> AcdMetrics:
    """The process's ACD metrics (created once: the registry refuses duplicates)."""
    global _METRICS
    if _METRICS is None:
        _METRICS = AcdMetrics()
    return _METRICS
