"""The schema: generated code matches the .proto files, and every message survives the wire."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from callmesh.proto.subjects import EVENTS
from callmesh.proto.v1.event_pb2 import Event
from callmesh.proto.v1.switch_pb2 import SwitchCommand, SwitchReply

PROTO_ROOT = Path(__file__).resolve().parents[1]


def _codegen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("callmesh_codegen", PROTO_ROOT / "codegen.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_generated_code_matches_the_proto_files() -> None:
    problems = _codegen().drift()
    assert problems == [], "run `make proto` and commit: " + "; ".join(problems)


def _fill(message: Message, depth: int = 0) -> None:
    """Give every scalar field a non-default value and recurse into sub-messages."""
    for field in message.DESCRIPTOR.fields:
        if field.containing_oneof is not None and depth == 0:
            continue
        if field.message_type is not None:
            if field.message_type.GetOptions().map_entry:
                getattr(message, field.name)["k"] = "v"
            elif field.is_repeated:
                _fill(getattr(message, field.name).add(), depth + 1)
            elif field.message_type.full_name == "google.protobuf.Timestamp":
                getattr(message, field.name).FromSeconds(1_700_000_000)
            else:
                _fill(getattr(message, field.name), depth + 1)
        elif field.is_repeated:
            value = "x" if field.type == field.TYPE_STRING else 1
            getattr(message, field.name).append(value)
        elif field.type == field.TYPE_STRING:
            setattr(message, field.name, f"{field.name}-value")
        elif field.type == field.TYPE_BOOL:
            setattr(message, field.name, True)
        elif field.type == field.TYPE_ENUM:
            assert field.enum_type is not None
            setattr(message, field.name, field.enum_type.values[-1].number)
        else:
            setattr(message, field.name, 7)


@pytest.mark.parametrize("body", sorted(EVENTS))
def test_every_event_round_trips_binary_and_json(body: str) -> None:
    event = Event(event_id="e1", tenant_id="acme", call_id="c1")
    event.time.FromSeconds(1_700_000_000)
    event.source.service = "cti"
    event.source.node_id = "fs1"
    _fill(getattr(event, body))
    assert event.WhichOneof("body") == body
    assert Event.FromString(event.SerializeToString()) == event
    assert json_format.Parse(json_format.MessageToJson(event), Event()) == event


@pytest.mark.parametrize(
    "command", [f.name for f in SwitchCommand.DESCRIPTOR.oneofs_by_name["command"].fields]
)
def test_every_switch_command_round_trips(command: str) -> None:
    cmd = SwitchCommand(command_id="k1", tenant_id="acme", lease="acd.acme", fencing_token=42)
    _fill(getattr(cmd, command))
    assert cmd.WhichOneof("command") == command
    assert SwitchCommand.FromString(cmd.SerializeToString()) == cmd
    reply = SwitchReply()
    _fill(reply)
    assert SwitchReply.FromString(reply.SerializeToString()) == reply


def test_a_newer_field_is_kept_by_an_older_reader() -> None:
    # Forward compatibility: unknown fields survive a decode/encode by a reader that lacks them.
    newer = Event(event_id="e1").SerializeToString() + b"\xf8\xff\x03\x01"  # field 65535 = 1
    again = Event.FromString(newer).SerializeToString()
    assert again == newer
