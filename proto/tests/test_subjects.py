"""The subject map covers the whole schema and never lets a stream swallow a command."""

from __future__ import annotations

import pytest

from callmesh.proto.subjects import (
    EVENTS,
    STREAMS,
    Domain,
    Service,
    Subjects,
    check_tenant_id,
    event_kind,
    stream_of,
)
from callmesh.proto.v1.event_pb2 import Event


def _matches(pattern: str, subject: str) -> bool:
    p, s = pattern.split("."), subject.split(".")
    if p and p[-1] == ">":
        return len(s) >= len(p) and all(a in ("*", b) for a, b in zip(p[:-1], s, strict=False))
    return len(p) == len(s) and all(a in ("*", b) for a, b in zip(p, s, strict=True))


def test_every_event_body_in_the_schema_has_a_subject() -> None:
    bodies = {f.name for f in Event.DESCRIPTOR.oneofs_by_name["body"].fields}
    assert bodies == set(EVENTS)


def test_every_domain_has_exactly_one_stream() -> None:
    for domain in Domain:
        owners = [spec for spec in STREAMS if domain in spec.domains]
        assert len(owners) == 1, domain
        assert stream_of(domain) is owners[0]


def test_event_subject_is_prefix_tenant_domain_event() -> None:
    event = Event(tenant_id="acme")
    event.call_hung_up.cause = "NORMAL_CLEARING"
    assert Subjects("cm").for_event(event) == "cm.acme.call.hung_up"
    assert event_kind(event).domain is Domain.CALL


def test_node_events_are_addressed_by_node_not_tenant() -> None:
    event = Event()
    event.source.node_id = "fs-central-1"
    event.node_heartbeat.node_id = "fs-central-1"
    assert Subjects("cm").for_event(event) == "cm.node.fs-central-1.heartbeat"


def test_every_event_subject_is_captured_by_its_stream_and_no_other() -> None:
    subjects = Subjects("cm")
    for kind in EVENTS.values():
        subject = subjects.event(kind, tenant_id="acme", node_id="fs1")
        capturing = [
            spec.name
            for spec in STREAMS
            if any(_matches(p, subject) for p in subjects.stream_subjects(spec))
        ]
        assert capturing == [stream_of(kind.domain).name], subject


def test_no_stream_captures_a_command_subject() -> None:
    subjects = Subjects("cm")
    commands = [subjects.node_command("fs1")]
    commands += [subjects.service_command("acme", service, "do_something") for service in Service]
    commands += [subjects.platform_command(service, "number_lookup") for service in Service]
    for spec in STREAMS:
        for pattern in subjects.stream_subjects(spec):
            for command in commands:
                assert not _matches(pattern, command), (pattern, command)


def test_platform_commands_never_meet_a_tenants_subjects() -> None:
    subject = Subjects("cm").platform_command(Service.ADMIN, "number_lookup")
    assert subject == "cm.platform.admin.number_lookup"
    with pytest.raises(ValueError, match="reserved"):
        check_tenant_id("platform")


def test_a_service_op_named_like_an_event_of_its_token_is_refused() -> None:
    with pytest.raises(ValueError, match="op: 'node_entered' is an event"):
        Subjects("cm").service_command("acme", Service.IVR, "node_entered")


@pytest.mark.parametrize("bad", ["", "Acme", "a.b", "a*", "-acme", "node", "x" * 49, "a b"])
def test_bad_tenant_ids_are_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(ValueError, match="tenant_id"):
        check_tenant_id(bad)


def test_an_event_without_body_has_no_subject() -> None:
    with pytest.raises(ValueError, match="body"):
        Subjects("cm").for_event(Event(tenant_id="acme"))
