"""Telemetry: Prometheus metrics (get-or-create per registry) and OpenTelemetry tracing.

Trace context crosses the bus as W3C ``traceparent``/``tracestate`` message headers.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, MutableMapping, Sequence
from typing import TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

_lock = threading.Lock()
_collectors: dict[tuple[int, str], object] = {}
_propagator = TraceContextTextMapPropagator()

M = TypeVar("M", Counter, Gauge, Histogram)

# Latency buckets for bus and API work: 100 µs to 10 s.
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
)  # fmt: skip


def _get_or_create(
    kind: type[M],
    name: str,
    documentation: str,
    labels: Sequence[str],
    registry: CollectorRegistry,
    **kwargs: object,
) -> M:
    key = (id(registry), name)
    with _lock:
        existing = _collectors.get(key)
        if existing is not None:
            if not isinstance(existing, kind):
                raise TypeError(f"metric {name} already registered as {type(existing).__name__}")
            return existing
        metric = kind(name, documentation, labelnames=tuple(labels), registry=registry, **kwargs)  # type: ignore[arg-type]
        _collectors[key] = metric
        return metric


def counter(
    name: str,
    documentation: str,
    labels: Sequence[str] = (),
    registry: CollectorRegistry = REGISTRY,
) -> Counter:
    """A counter, created once per registry."""
    return _get_or_create(Counter, name, documentation, labels, registry)


def gauge(
    name: str,
    documentation: str,
    labels: Sequence[str] = (),
    registry: CollectorRegistry = REGISTRY,
) -> Gauge:
    """A gauge, created once per registry."""
    return _get_or_create(Gauge, name, documentation, labels, registry)


def histogram(
    name: str,
    documentation: str,
    labels: Sequence[str] = (),
    registry: CollectorRegistry = REGISTRY,
    buckets: Sequence[float] = LATENCY_BUCKETS,
) -> Histogram:
    """A histogram (latency buckets by default), created once per registry."""
    return _get_or_create(Histogram, name, documentation, labels, registry, buckets=tuple(buckets))


def render_metrics(registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The Prometheus text exposition and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


def configure_tracing(service: str, instance: str, otlp_endpoint: str | None) -> None:
    """Install a tracer provider exporting over OTLP/HTTP, once, when an endpoint is set.

    Without an endpoint nothing would read spans, so none are made: the OpenTelemetry API stays
    a no-op (the bus then costs ~30 % less per event, bench/bus_throughput.py), while a trace
    context arriving from upstream is still carried on through bus headers and into log lines.
    With one, sampling follows the standard ``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG``
    variables (parent-based always-on by default; ``parentbased_traceidratio`` with a small ratio
    is the setting for busy platforms: unsampled traces take the bus's cheap path). A provider
    installed earlier (e.g. by a test) is left alone.
    """
    if not otlp_endpoint or isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # only when exporting
        OTLPSpanExporter,
    )

    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": f"callmesh-{service}", "service.instance.id": instance}
        )
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    trace.set_tracer_provider(provider)


def inject_trace(headers: MutableMapping[str, str], context: Context | None = None) -> None:
    """Write ``traceparent``/``tracestate`` of the current (or given) span into message headers."""
    _propagator.inject(headers, context=context)


def extract_trace(headers: Mapping[str, str] | None) -> Context:
    """The remote span context carried by message headers (empty context when none)."""
    return _propagator.extract(dict(headers or {}))


def tracer(name: str) -> trace.Tracer:
    """A tracer for a component."""
    return trace.get_tracer(name)
