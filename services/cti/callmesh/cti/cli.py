"""``callmesh esl decode FILE…``: raw Event Socket transcripts → call events as JSON lines.

A transcript is the bytes FreeSWITCH sent to an ESL client (e.g. a TCP stream saved from
tshark). Each event frame is parsed with the shared codec and run through the link's own
normalizer; every call event it produces is printed as one line: the proto ``Event``'s JSON
mapping, with the call id and tenant the link resolved (offline, the tenant comes only from the
``callmesh_tenant`` channel variable; else it is empty). Malformed frames are reported on stderr
with their byte offset, and decoding carries on. Exit status 0, or 2 if a file could not be read.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import click
from google.protobuf import json_format

from callmesh.core.esl import (
    EslParseError,
    Frame,
    FrameParser,
    MalformedFrame,
    parse_event_json,
    parse_event_plain,
)
from callmesh.cti.domain.normalize import CallEvent, Normalizer
from callmesh.proto.v1.event_pb2 import Event

_CHUNK = 64 * 1024


def _frames(data: bytes) -> Iterator[tuple[int, Frame | MalformedFrame]]:
    """Frames with a byte offset: where a frame's body or a malformed frame's bytes begin."""
    parser = FrameParser()
    cursor = 0
    fed = 0

    def located(item: Frame | MalformedFrame) -> int:
        # The parser does not count bytes: find what it returned, moving forward only.
        nonlocal cursor
        needle = item.raw[:32] if isinstance(item, MalformedFrame) else item.body
        if needle:
            found = data.find(needle, cursor)
            if found >= 0:
                cursor = found + (1 if isinstance(item, MalformedFrame) else len(needle))
                return found
        return cursor

    for start in range(0, len(data), _CHUNK):
        piece = data[start : start + _CHUNK]
        fed += len(piece)
        for item in parser.feed(piece):
            yield located(item), item
    for malformed in parser.close():
        yield located(malformed), malformed


def to_event(call: CallEvent, node_id: str, seq: int) -> Event:
    """The bus envelope of a decoded call event (ids deterministic: ``<node>-<n>``)."""
    event = Event(
        event_id=f"{node_id or 'esl'}-{seq}", tenant_id=call.tenant_id, call_id=call.call_id
    )
    if call.time_us:
        event.time.FromMicroseconds(call.time_us)
    event.source.node_id = node_id
    event.source.service = "esl-decode"
    getattr(event, call.body).CopyFrom(call.message)
    return event


def decode(data: bytes, name: str, out: IO[str], err: IO[str]) -> tuple[int, int]:
    """Decode one transcript; (events printed, problems reported)."""
    normalizer = Normalizer(keep_tenantless=True)
    printed = 0
    problems = 0
    node_id = ""

    def emit(events: list[CallEvent]) -> None:
        nonlocal printed
        for call in events:
            printed += 1
            mapping = json_format.MessageToDict(
                to_event(call, node_id, printed), preserving_proto_field_name=True
            )
            out.write(json.dumps(mapping, separators=(",", ":"), sort_keys=True) + "\n")

    for offset, item in _frames(data):
        if isinstance(item, MalformedFrame):
            problems += 1
            err.write(f"{name}: byte {offset}: malformed frame: {item.reason}\n")
            continue
        content_type = item.content_type
        if content_type not in ("text/event-plain", "text/event-json"):
            continue  # auth requests, command replies, api responses, disconnect notices
        try:
            if content_type == "text/event-plain":
                parsed = parse_event_plain(item.body)
            else:
                parsed = parse_event_json(item.body)
        except EslParseError as exc:
            problems += 1
            err.write(f"{name}: byte {offset}: malformed event: {exc}\n")
            continue
        headers = parsed.as_dict()
        node_id = node_id or headers.get("FreeSWITCH-Switchname") or ""
        outcome = normalizer.feed(headers)
        if outcome.kind == "malformed":
            problems += 1
            err.write(f"{name}: byte {offset}: malformed event: {outcome.reason}\n")
            continue
        emit(outcome.events)
    emit(normalizer.flush_pending())
    return printed, problems


@click.group()
def esl() -> None:
    """Event Socket tools."""


@esl.command("decode")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def decode_command(files: tuple[Path, ...]) -> None:
    """Print the call events in raw ESL transcripts, one JSON line each."""
    status = 0
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            click.echo(f"{path}: cannot read: {exc.strerror or exc}", err=True)
            status = 2
            continue
        decode(data, str(path), sys.stdout, sys.stderr)
    sys.stdout.flush()
    if status:
        raise SystemExit(status)
