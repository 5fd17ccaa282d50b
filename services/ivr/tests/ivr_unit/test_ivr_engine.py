"""The flow engine, driven by dry runs and step by step: every node type and the trail."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from callmesh.ivr.domain.collect import Collector, Verdict
from callmesh.ivr.domain.commands import (
    AwaitKey,
    CallContext,
    Enqueue,
    EnqueueAnswer,
    Finish,
    Hangup,
    HttpAnswer,
    KeyPressed,
    Outcome,
    Play,
    Played,
    Sound,
    TimedOut,
    TrailKind,
    UnexpectedResult,
)
from callmesh.ivr.domain.dryrun import DryRunInput, DryRunResult, dry_run
from callmesh.ivr.domain.engine import MAX_STEPS, FlowRun
from callmesh.ivr.domain.flow import PromptKind, TimeConfig, TimeRule
from callmesh.ivr.domain.parse import parse_flow
from callmesh.ivr.domain.timerules import state_at
from callmesh.ivr.samples import en_zh, main_flow, node

MONDAY_NOON = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)  # 12:00 in Paris
SUNDAY = datetime(2026, 11, 22, 11, 0, tzinfo=UTC)
GOLD = HttpAnswer(200, json.dumps({"data": {"tier": "gold", "balance": 12.5}}).encode(), "", 40)
SILVER = HttpAnswer(200, json.dumps({"data": {"tier": "silver", "balance": 3}}).encode(), "", 40)


def run(inputs: list[str], doc: dict[str, Any] | None = None, **kw: Any) -> DryRunResult:
    flow = parse_flow(doc or main_flow())
    given = DryRunInput(
        caller=kw.pop("caller", "+33611111111"),
        dialled="+33140000000",
        at=kw.pop("at", MONDAY_NOON),
        inputs=inputs,
        **kw,
    )
    return dry_run(flow, "main", 3, "acme", given)


def test_menu_choice_queues_with_the_data_package() -> None:
    got = run(["2", "1"])  # Chinese, then sales
    assert got.path == ["blk", "hours", "lang", "menu", "sales"]
    assert got.outcome.outcome is Outcome.QUEUED
    assert got.outcome.detail == "sales"
    assert got.variables["call.language"] == "zh"
    assert got.prompts[1]["sounds"][0]["value"].startswith("中文")
    enqueue = [c for c in got.commands if c.startswith("enqueue")]
    assert enqueue == ["enqueue sales priority 0"]


def test_collect_http_lookup_and_condition_route_a_gold_customer_with_priority() -> None:
    got = run(["1", "3", "12345#"], http={"lookup": GOLD})
    assert got.path == ["blk", "hours", "lang", "menu", "account", "lookup", "vip", "sales"]
    assert got.variables["account.number"] == "12345"
    assert got.variables["customer.tier"] == "gold"
    assert got.variables["account.balance"] == "12.5"
    assert "enqueue sales priority 5" in got.commands
    http = [c for c in got.commands if c.startswith("http")]
    assert http == ["http POST http://crm.example/accounts/12345?key=secret"]
    called = next(e for e in got.trail if e.kind is TrailKind.HTTP_CALLED)
    assert called.detail["url"] == "http://crm.example/accounts/12345"  # no query secrets
    assert called.detail["status"] == "200"


def test_a_silver_customer_hears_the_balance_then_goodbye() -> None:
    got = run(["1", "3", "9876#"], http={"lookup": SILVER})
    assert got.path[-2:] == ["say", "bye"]
    assert {"kind": "tts", "value": "Your balance is 3"} in got.prompts[-2]["sounds"]
    assert got.outcome.outcome is Outcome.COMPLETED


def test_http_failure_takes_the_failure_port() -> None:
    got = run(["1", "3", "12345#"])  # no answer given: status 0
    assert got.path[-1] == "sorry"
    assert got.variables["http.error"] == "not called in a dry run"


def test_star_resets_and_short_input_retries() -> None:
    got = run(["1", "3", "12#", "99*5555#"], http={"lookup": SILVER})
    assert got.variables["account.number"] == "5555"
    inputs = [
        e.detail for e in got.trail if e.kind is TrailKind.INPUT_RECEIVED and e.node_id == "account"
    ]
    assert [(i["kind"], i["attempt"]) for i in inputs] == [("invalid", "1"), ("dtmf", "2")]


def test_timeouts_and_invalid_keys_use_up_the_retries() -> None:
    got = run(["1", "timeout", "9"])
    assert got.path[-2:] == ["menu", "sorry"]
    menu = [
        e.detail for e in got.trail if e.kind is TrailKind.INPUT_RECEIVED and e.node_id == "menu"
    ]
    assert [m["kind"] for m in menu] == ["timeout", "invalid"]
    # No timeout prompt: the menu prompt again; then retries are used up and "sorry" plays.
    assert got.prompts[2]["sounds"][0]["value"] == "Sales 1, support 2, account 3"
    assert got.prompts[3]["sounds"][0]["value"] == "Sorry"
    assert got.outcome.hangup_cause == ""


def test_deep_menu_shortcut_jumps_to_its_node() -> None:
    got = run(["1", "*31#", "4444#"], http={"lookup": SILVER})
    assert got.path[:5] == ["blk", "hours", "lang", "menu", "account"]
    assert got.variables["ivr.shortcut"] == "31"
    bad = run(["1", "*99#", "timeout"])
    assert bad.path[-1] == "sorry"


def test_after_hours_callers_leave_a_voicemail() -> None:
    got = run([], at=SUNDAY)
    assert got.path == ["blk", "hours", "vm"]
    assert got.outcome.outcome is Outcome.VOICEMAIL
    assert got.outcome.detail == "general"
    assert "record voicemail into general" in got.commands


def test_blacklisted_callers_are_rejected() -> None:
    got = run([], blacklisted={"+33611111111"})
    assert got.path == ["blk", "blocked"]
    assert "hangup CALL_REJECTED" in got.commands


def test_caller_hang_up_ends_the_run_where_it_is() -> None:
    got = run(["1", "hangup"])
    assert got.outcome.outcome is Outcome.CALLER_HUNG_UP
    assert got.outcome.last_node_id == "menu"
    assert got.trail[-1].kind is TrailKind.FLOW_LEFT


def test_refused_enqueue_takes_the_failure_port() -> None:
    got = run(["1", "1"], enqueue_accepted=False)
    assert got.path[-1] == "sorry"


def test_survey_lookup_transfer_and_set_nodes() -> None:
    doc = {
        "start": "s",
        "variables": {"n": "1"},
        "nodes": [
            node("s", "set", assignments=[{"variable": "n", "expression": "n * 10 + 2"}]),
            node(
                "q",
                "survey",
                questions=[{"id": "speed", "prompt": {"en": [{"tts": "Rate 1-5"}]}}],
                thanks={"en": [{"sound": "ivr/thanks.wav"}]},
            ),
            node(
                "l", "lookup", table="orders", key_expression="n", columns={"order.state": "state"}
            ),
            node("t", "transfer", kind="external", target="+1555{n}"),
            node("x", "hangup"),
        ],
        "edges": [
            {"from": "s", "port": "next", "to": "q"},
            {"from": "q", "port": "next", "to": "l"},
            {"from": "l", "port": "found", "to": "t"},
            {"from": "l", "port": "not_found", "to": "x"},
        ],
    }
    got = run(["4"], doc=doc, rows={"orders": {"12": {"state": "shipped"}}})
    assert got.variables["n"] == "12"
    assert got.variables["survey.speed"] == "4"
    assert got.variables["order.state"] == "shipped"
    assert got.outcome.outcome is Outcome.TRANSFERRED
    assert got.outcome.detail == "external:+155512"
    assert got.prompts[-1]["sounds"] == [{"kind": "sound", "value": "ivr/thanks.wav"}]


def test_a_runtime_expression_error_ends_the_flow_with_an_error() -> None:
    doc = {
        "start": "s",
        "nodes": [node("s", "set", assignments=[{"variable": "x", "expression": "1 / 0"}])],
        "edges": [],
    }
    got = run([], doc=doc)
    assert got.outcome.outcome is Outcome.ERROR
    assert "division by zero" in got.outcome.detail


def test_a_runaway_flow_stops_at_the_step_limit() -> None:
    doc = {
        "start": "a",
        "variables": {"n": "0"},
        "nodes": [
            node("a", "set", assignments=[{"variable": "n", "expression": "n + 1"}]),
            node("b", "condition", branches=[{"port": "big", "expression": "n > 100000"}]),
        ],
        "edges": [
            {"from": "a", "port": "next", "to": "b"},
            {"from": "b", "port": "else", "to": "a"},
        ],
    }
    got = run([], doc=doc)
    assert got.outcome.outcome is Outcome.ERROR
    assert f"more than {MAX_STEPS} steps" in got.outcome.detail


def test_step_by_step_barge_in_skips_the_next_prompt_and_emergency_plays_first() -> None:
    flow = parse_flow(main_flow())
    ctx = CallContext("c1", "acme", "+331", "+332", MONDAY_NOON)
    emergency = (Sound(PromptKind.TTS, "Storm warning", "en"),)
    r = FlowRun(flow, "main", 1, ctx, preamble=emergency)
    cmd = r.start()
    assert isinstance(cmd, Play)
    assert cmd.sounds == emergency
    assert not cmd.interruptible
    cmd = r.resume(Played())
    assert cmd.__class__.__name__ == "CheckBlacklist"
    from callmesh.ivr.domain.commands import BlacklistAnswer

    cmd = r.resume(BlacklistAnswer(False))
    assert isinstance(cmd, Play)
    assert cmd.node_id == "lang"
    cmd = r.resume(KeyPressed("1"))  # barge-in during the language prompt
    assert isinstance(cmd, Play)
    assert cmd.node_id == "menu"
    cmd = r.resume(KeyPressed("2"))
    assert isinstance(cmd, Enqueue)
    assert cmd.queue_id == "support"
    assert cmd.data["ivr.path"] == "blk>hours>lang>menu>support"
    assert cmd.data["ivr.keys"] == "2"
    assert cmd.data["ivr.flow"] == "main@1"
    done = r.resume(EnqueueAnswer(True))
    assert isinstance(done, Finish)
    assert done.outcome is Outcome.QUEUED
    kinds = [e.kind for e in r.drain_trail()]
    assert kinds[0] is TrailKind.NODE_ENTERED
    assert kinds[-1] is TrailKind.FLOW_LEFT
    with pytest.raises(UnexpectedResult):
        FlowRun(flow, "main", 1, ctx).resume(Played())


def test_a_wrong_result_is_refused() -> None:
    flow = parse_flow(main_flow())
    r = FlowRun(flow, "main", 1, CallContext("c1", "acme", "+331", "+332", MONDAY_NOON))
    r.start()
    with pytest.raises(UnexpectedResult):
        r.resume(TimedOut())


def test_hangup_node_asks_to_hang_up_with_its_cause() -> None:
    doc = {"start": "x", "nodes": [node("x", "hangup", cause="USER_BUSY")], "edges": []}
    r = FlowRun(parse_flow(doc), "f", 1, CallContext("c", "t", "1", "2", MONDAY_NOON))
    cmd = r.start()
    assert isinstance(cmd, Hangup)
    assert cmd.cause == "USER_BUSY"
    assert isinstance(r.resume(Played()), Finish)


def test_await_key_timeouts_are_first_digit_then_inter_digit() -> None:
    doc = {
        "start": "c",
        "nodes": [
            node(
                "c",
                "collect",
                prompt={"en": [{"tts": "Digits"}]},
                variable="d",
                first_digit_timeout_ms=7000,
                inter_digit_timeout_ms=2000,
            )
        ],
        "edges": [],
    }
    r = FlowRun(parse_flow(doc), "f", 1, CallContext("c", "t", "1", "2", MONDAY_NOON))
    assert isinstance(r.start(), Play)
    first = r.resume(Played())
    assert isinstance(first, AwaitKey)
    assert first.timeout_ms == 7000
    nxt = r.resume(KeyPressed("4"))
    assert isinstance(nxt, AwaitKey)
    assert nxt.timeout_ms == 2000
    done = r.resume(TimedOut())  # the inter-digit timeout ends the input
    assert isinstance(done, Finish)
    assert r.variables["d"] == "4"


def test_collector_rules() -> None:
    c = Collector(min_digits=2, max_digits=3)
    assert [c.feed(k) for k in "12"] == [Verdict.MORE, Verdict.MORE]
    assert c.feed("3") is Verdict.DONE
    assert c.value == "123"
    c = Collector(min_digits=2)
    assert c.feed("1") is Verdict.MORE
    assert c.feed("#") is Verdict.INVALID
    c = Collector(pattern="9.*")
    assert c.feed("8") is Verdict.MORE
    assert c.timeout() is Verdict.INVALID
    assert Collector().timeout() is Verdict.TIMEOUT
    c = Collector(terminator="", reset_key="")
    assert c.feed("#") is Verdict.MORE
    assert c.timeout() is Verdict.INVALID


def test_time_rules_with_zones_holidays_and_midnight() -> None:
    office = TimeConfig(rules=(TimeRule(("mon",), "08:00", "18:00"),), holidays=("2026-11-30",))
    assert state_at(office, MONDAY_NOON, "Europe/Paris") == "open"
    assert state_at(office, datetime(2026, 11, 23, 17, 30, tzinfo=UTC), "Europe/Paris") == "closed"
    assert state_at(office, datetime(2026, 11, 30, 10, tzinfo=UTC), "Europe/Paris") == "holiday"
    night = TimeConfig(rules=(TimeRule(("fri",), "22:00", "06:00"),))
    assert state_at(night, datetime(2026, 11, 27, 23, tzinfo=UTC), "UTC") == "open"
    assert state_at(night, datetime(2026, 11, 28, 5, tzinfo=UTC), "UTC") == "open"
    assert state_at(night, datetime(2026, 11, 28, 7, tzinfo=UTC), "UTC") == "closed"


def test_prompts_fall_back_to_the_default_language() -> None:
    doc = {
        "start": "p",
        "languages": ["en", "zh"],
        "nodes": [node("p", "play", prompt=en_zh("Hi") | {"zh": []})],
        "edges": [],
    }
    got = run([], doc=doc, language="zh")
    assert got.prompts[0]["sounds"] == [{"kind": "tts", "value": "Hi"}]


def test_a_priority_that_is_not_a_number_takes_the_failure_port() -> None:
    doc = {
        "start": "q",
        "nodes": [
            node("q", "queue", queue_id="sales", priority_expression="'high'"),
            node("x", "hangup"),
        ],
        "edges": [{"from": "q", "port": "failure", "to": "x"}],
    }
    got = run([], doc=doc)
    assert got.path == ["q", "x"]
    assert "is not a number" in got.variables["last.error"]
