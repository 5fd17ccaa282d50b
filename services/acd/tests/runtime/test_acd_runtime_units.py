"""The runtime's pure parts: prompt ids to files, endpoints, originate failure causes, the
snapshot encoding."""

from __future__ import annotations

import pytest

from callmesh.acd.domain.effects import NoAnswerReason, Prompt
from callmesh.acd.runtime.commands import answer_timeout_s, endpoint_of, no_answer_reason
from callmesh.acd.runtime.partition import decode_snapshot, encode_snapshot
from callmesh.acd.runtime.prompts import PromptResolver
from callmesh.core.errors import InvalidInput
from callmesh.proto.v1.switch_pb2 import SwitchErrorCode, SwitchReply


def test_prompt_ids_resolve_per_language_under_the_sounds_dir() -> None:
    prompts = PromptResolver()
    assert prompts.file("acd/position", "en") == "acd/en/position.wav"
    assert prompts.file("acd/position", "") == "acd/en/position.wav"
    assert prompts.file("acd/position", "zh-CN") == "acd/zh-CN/position.wav"
    assert prompts.file("welcome", "yue") == "yue/welcome.wav"
    assert prompts.file("moh/default", "zh-CN") == "moh/default.wav"
    assert prompts.file("brand/{lang}/hello.mp3", "en") == "brand/en/hello.mp3"
    url = "http_cache://http://media.local/t/acme/{lang}/closed.wav"
    assert prompts.file(url, "en") == "http_cache://http://media.local/t/acme/en/closed.wav"
    assert prompts.file("/srv/sounds/x.wav", "en") == "/srv/sounds/x.wav"
    assert PromptResolver(prefix="/opt/sounds/").file("acd/closed", "en") == (
        "/opt/sounds/acd/en/closed.wav"
    )


def test_prompt_parameters_follow_as_phrases() -> None:
    prompts = PromptResolver()
    assert prompts.files(Prompt("acd/position", {"position": "3"}), "en") == [
        "acd/en/position.wav",
        "phrase:callmesh_say:3",
    ]
    assert PromptResolver(say_macro="").files(Prompt("acd/position", {"position": "3"})) == [
        "acd/en/position.wav"
    ]


def test_endpoints_parse_and_bad_ones_name_the_rule() -> None:
    assert endpoint_of("user:1001").user == "1001"
    gateway = endpoint_of("gateway:carrier1:+861380000")
    assert (gateway.gateway.gateway, gateway.gateway.number) == ("carrier1", "+861380000")
    node = endpoint_of("node:fs-2:2001")
    assert (node.node.node_id, node.node.number) == ("fs-2", "2001")
    assert endpoint_of("dial:sofia/internal/1001@x").dial_string == "sofia/internal/1001@x"
    for bad in ("", "user:", "gateway:gw", "sip:1001", "node::1"):
        with pytest.raises(InvalidInput) as err:
            endpoint_of(bad)
        assert err.value.details["field"] == "endpoint"


@pytest.mark.parametrize(
    ("message", "code", "reason"),
    [
        ("NO_ANSWER", SwitchErrorCode.SWITCH_ERROR_CODE_SWITCH_ERROR, NoAnswerReason.TIMEOUT),
        (
            "ORIGINATOR_CANCEL",
            SwitchErrorCode.SWITCH_ERROR_CODE_SWITCH_ERROR,
            NoAnswerReason.TIMEOUT,
        ),
        ("USER_BUSY", SwitchErrorCode.SWITCH_ERROR_CODE_SWITCH_ERROR, NoAnswerReason.BUSY),
        ("CALL_REJECTED", SwitchErrorCode.SWITCH_ERROR_CODE_SWITCH_ERROR, NoAnswerReason.REJECTED),
        (
            "USER_NOT_REGISTERED",
            SwitchErrorCode.SWITCH_ERROR_CODE_SWITCH_ERROR,
            NoAnswerReason.UNREACHABLE,
        ),
        (
            "SUBSCRIBER_ABSENT",
            SwitchErrorCode.SWITCH_ERROR_CODE_SWITCH_ERROR,
            NoAnswerReason.UNREACHABLE,
        ),
        (
            "UNALLOCATED_NUMBER",
            SwitchErrorCode.SWITCH_ERROR_CODE_SWITCH_ERROR,
            NoAnswerReason.UNREACHABLE,
        ),
        ("no answer within 8 s", SwitchErrorCode.SWITCH_ERROR_CODE_TIMEOUT, NoAnswerReason.TIMEOUT),
        (
            "INCOMPATIBLE_DESTINATION",
            SwitchErrorCode.SWITCH_ERROR_CODE_SWITCH_ERROR,
            NoAnswerReason.SWITCH_ERROR,
        ),
        ("", SwitchErrorCode.SWITCH_ERROR_CODE_NOT_CONNECTED, NoAnswerReason.SWITCH_ERROR),
    ],
)
def test_originate_failures_map_to_no_answer_reasons(
    message: str, code: int, reason: NoAnswerReason
) -> None:
    reply = SwitchReply(ok=False, error_code=code, message=message)  # type: ignore[arg-type]
    assert no_answer_reason(reply) is reason


def test_answer_timeouts_are_whole_seconds() -> None:
    assert answer_timeout_s(20.0) == 20
    assert answer_timeout_s(2.5) == 3
    assert answer_timeout_s(0.0) == 1


def test_snapshots_round_trip_plain_and_compressed() -> None:
    doc = {"format": 1, "engine": {"calls": [{"call_id": str(i)} for i in range(200)]}}
    plain = encode_snapshot(doc, compress_over=1 << 20)
    assert plain.startswith(b"{")
    small = encode_snapshot(doc, compress_over=100)
    assert small.startswith(b"z")
    assert len(small) < len(plain)
    assert decode_snapshot(plain) == doc == decode_snapshot(small)
    for bad in (b"[]", b'{"format": 1}', b'{"format": 9, "engine": {}}', b"z-not-zlib", b"{"):
        with pytest.raises(ValueError, match=r"."):
            decode_snapshot(bad)
