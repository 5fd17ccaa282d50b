"""Structured logs carry tenant, call and trace; settings come from the environment, checked."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import ValidationError

from callmesh.core.logging import JsonFormatter, log_context
from callmesh.core.settings import PlatformSettings


def render(record_msg: str, **extra: object) -> dict[str, object]:
    record = logging.LogRecord("callmesh.test", logging.INFO, __file__, 1, record_msg, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    line = JsonFormatter("acd").format(record)
    assert "\n" not in line
    parsed: dict[str, object] = json.loads(line)
    return parsed


def test_a_log_line_is_one_json_object_with_the_service() -> None:
    line = render("queue overflowed", queue_id="q1")
    assert line["msg"] == "queue overflowed"
    assert line["service"] == "acd"
    assert line["level"] == "info"
    assert line["queue_id"] == "q1"
    assert "tenant_id" not in line


def test_log_lines_inside_a_context_carry_its_tenant_and_call() -> None:
    with log_context(tenant_id="acme", call_id="c-42"):
        inside = render("offered")
        with log_context(call_id="c-43"):
            nested = render("offered again")
    after = render("done")
    assert (inside["tenant_id"], inside["call_id"]) == ("acme", "c-42")
    assert (nested["tenant_id"], nested["call_id"]) == ("acme", "c-43")
    assert "tenant_id" not in after
    assert "call_id" not in after


def test_log_lines_inside_a_span_carry_its_trace_id(spans: InMemorySpanExporter) -> None:
    with trace.get_tracer("test").start_as_current_span("work") as span:
        line = render("traced")
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")


def test_settings_come_from_callmesh_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLMESH_NATS_URL", "nats://bus.example:4222")
    monkeypatch.setenv("CALLMESH_LEASE_TTL_S", "7.5")
    settings = PlatformSettings()
    assert settings.nats_url == "nats://bus.example:4222"
    assert settings.lease_ttl_s == 7.5
    assert settings.subject_prefix == "cm"


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("subject_prefix", "Has.Dots", "lowercase letters/digits"),
        ("lease_ttl_s", "0.1", "at least 1 second"),
        ("log_format", "xml", "json"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, field: str, value: str, rule: str
) -> None:
    monkeypatch.setenv(f"CALLMESH_{field.upper()}", value)
    with pytest.raises(ValidationError) as caught:
        PlatformSettings()
    text = str(caught.value)
    assert field in text
    assert rule in text
