"""The fast event parse (only the headers the link reads) reads what the whole parse reads."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callmesh.core.esl import EslParseError, Frame, FrameParser, serialize_event_plain
from callmesh.cti.adapters.esl_parse import (
    PICKED,
    PICKED_PREFIXES,
    LazyHeaders,
    parse_event_fast,
    parse_event_lazy,
)
from callmesh.cti.domain import legs, normalize
from callmesh.cti.domain.normalize import Normalizer
from callmesh.cti.service import link

FIXTURES = Path(__file__).parent / "fixtures"


def _payloads(name: str) -> list[bytes]:
    frames = FrameParser().feed((FIXTURES / name).read_bytes())
    return [f.body for f in frames if isinstance(f, Frame) and f.content_type == "text/event-plain"]


def _assert_same(payload: bytes) -> None:
    """Fast and whole parse agree on every name (picked or not), the order and the body."""
    try:
        whole, whole_body = parse_event_lazy(payload)
    except EslParseError as err:
        reason = str(err)
        with pytest.raises(EslParseError) as raised:
            parse_event_fast(payload)
        assert str(raised.value) == reason
        return
    fast, body = parse_event_fast(payload)
    assert body == whole_body
    names = list(whole)
    # Picked names first, before anything makes the fast headers parse the whole event.
    for name in sorted(PICKED) + [n for n in names if n.startswith(PICKED_PREFIXES)]:
        assert fast.get(name) == whole.get(name), name
        assert (name in fast) == (name in whole), name
    for prefix in PICKED_PREFIXES:
        assert list(fast.names_with_prefix(prefix)) == [n for n in names if n.startswith(prefix)]
    # Then every other name, iteration order and the decoded dict (these parse it whole).
    for name in names:
        assert fast[name] == whole[name], name
        assert fast.get(name) == fast[name]  # read twice: decoded once
    assert "No-Such-Header" not in fast
    assert fast.get("No-Such-Header", "x") == "x"
    assert list(fast) == names
    assert len(fast) == len(whole)
    assert fast.decoded() == whole.decoded()


def test_every_fixture_event_takes_the_fast_path_and_reads_as_the_whole_parse() -> None:
    payloads = _payloads("inbound_call_to_agent.esl")
    assert len(payloads) > 15
    for payload in payloads:
        fast, body = parse_event_fast(payload)
        # Events with a body of their own (BACKGROUND_JOB) are parsed whole.
        assert fast.picked == (body is None), "FreeSWITCH-shaped events take the fast path"
        _assert_same(payload)


def test_damaged_fixture_events_read_or_fail_as_the_whole_parse() -> None:
    payloads = _payloads("damaged.esl")
    assert payloads
    for payload in payloads:
        _assert_same(payload)


def test_the_normalizer_gives_the_same_call_events_from_either_parse() -> None:
    payloads = _payloads("inbound_call_to_agent.esl")
    slow, fast = Normalizer(), Normalizer()
    for payload in payloads:
        a = slow.feed(parse_event_lazy(payload)[0])
        headers, body = parse_event_fast(payload)
        b = fast.feed(headers)
        assert headers.picked or body is not None, "the normalizer reads only picked headers"
        assert (a.kind, a.dropped, a.reason) == (b.kind, b.dropped, b.reason)
        assert [(e.tenant_id, e.call_id, e.body, e.message) for e in a.events] == [
            (e.tenant_id, e.call_id, e.body, e.message) for e in b.events
        ]


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\n",
        b"Event-Name: X\nno colon here\n\n",
        b"Event-Name: X\nUnique-ID:abc\n\n",
        b"Event-Name: X\nUnique-ID:\n\n",
        b"Event-Name: X\nContent-Length: ten\n\nbody",
        b"Event-Name: X\nContent-Length: 10\n\nshort",
        b"Event-Name: X\nContent-Length: 5\n\nhello",
        b"Event-Name: X\nUnique-ID: a\n\nUnique-ID: b\n\n",
        b"\nEvent-Name: X\nUnique-ID: a\n\n",
        b"Event-Name: X\nUnique-ID: a\n\n\n",
        b"Event-Name: X\nUnique-ID: a\n",
        b"Event-Name: X\nUnique-ID: a",
        b"Event-Name: X\r\nUnique-ID: a\r\n\r\n",
        b"Event-Name: X\nUnique-ID: a\nUnique-ID: b\n\n",
        b"Event-Name: X\nUnique-ID-Extra: a\nUnique-I: b\n\n",
        b"Event-Name: X\nvariable_callmesh_x: 1\nvariable_callmesh_: 2\nvariable_callmesh_x: 3\n\n",
        b"Event-Name: X\nvariable_callmesh_tenant: a%2541\n\n",
        b"Event-Name: X\nUnique-ID: a%3Ab%20c\nx: \n\n",
    ],
)
def test_edge_payloads_read_or_fail_as_the_whole_parse(payload: bytes) -> None:
    _assert_same(payload)


_NAME_CHARS = st.characters(
    min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters=":%"
) | st.sampled_from("é☎")
_NAMES = st.one_of(
    st.sampled_from(sorted(PICKED)),
    st.sampled_from(PICKED_PREFIXES).flatmap(
        lambda p: st.text(_NAME_CHARS, max_size=8).map(lambda s: p + s)
    ),
    st.text(_NAME_CHARS, min_size=1, max_size=20),
)


@settings(max_examples=300, deadline=None)
@given(
    headers=st.lists(st.tuples(_NAMES, st.text(max_size=30)), min_size=1, max_size=40),
    body=st.none() | st.text(max_size=20),
)
def test_random_headers_read_as_the_whole_parse(
    headers: list[tuple[str, str]], body: str | None
) -> None:
    payload = serialize_event_plain([("Event-Name", "CUSTOM"), *headers], body)
    _assert_same(payload)
    if body is None and all(name != "Content-Length" for name, _ in headers):
        assert parse_event_fast(payload)[0].picked, payload


def _header_names_read(module: object) -> set[str]:
    """String literals passed to ``.get(...)`` that look like FreeSWITCH header names."""
    source = Path(str(getattr(module, "__file__", ""))).read_text()
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            value = node.args[0].value
            if value[:1].isupper() or value.startswith("variable_"):
                names.add(value)
    return names


def test_every_header_the_link_reads_by_name_is_picked() -> None:
    read = _header_names_read(normalize) | _header_names_read(legs) | _header_names_read(link)
    assert "Unique-ID" in read
    missing = {n for n in read if n not in PICKED and not n.startswith(PICKED_PREFIXES)}
    assert not missing, f"add to normalize.HEADERS_READ: {sorted(missing)}"


def test_lazy_headers_built_from_a_dict_behave_as_before() -> None:
    headers = LazyHeaders({"A": "1%2541", "B": "x"})
    assert not headers.picked
    assert headers.get("A") == "1%41"
    assert headers["A"] == "1%41"  # decoded once, not twice
    assert list(headers) == ["A", "B"]
    assert headers.pop_raw("A") == "1%2541"
    assert "A" not in headers
