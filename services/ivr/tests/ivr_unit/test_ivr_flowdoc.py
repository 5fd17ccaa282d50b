"""Flow documents: parsing names every bad field; validation names node, field and rule."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from callmesh.ivr.domain.parse import FlowInvalid, flow_to_doc, parse_flow
from callmesh.ivr.domain.validate import validate
from callmesh.ivr.samples import main_flow, node


def problems(doc: dict[str, Any], **kwargs: Any) -> list[tuple[str, str, str]]:
    return [(p.node_id, p.field, p.rule) for p in validate(parse_flow(doc), **kwargs)]


def test_the_main_flow_parses_validates_and_round_trips() -> None:
    flow = parse_flow(main_flow())
    assert validate(flow) == []
    assert parse_flow(flow_to_doc(flow)) == flow
    assert flow.languages == ("en", "zh")
    assert flow.next_node("menu", "3") == "account"


def test_parsing_lists_every_structural_problem_with_its_field() -> None:
    doc = main_flow()
    doc["nodes"][0]["type"] = "teleport"
    doc["nodes"][5]["config"]["timeout_ms"] = 10
    doc["nodes"][8]["config"]["variable"] = "Not A Name"
    doc["languages"] = ["en", "EN!"]
    with pytest.raises(FlowInvalid) as err:
        parse_flow(doc)
    fields = {p.field for p in err.value.problems}
    assert {
        "nodes.blk.type",
        "nodes.menu.config.timeout_ms",
        "nodes.account.config.variable",
        "languages.1",
    } <= fields
    assert err.value.details["problems"]


def test_validation_finds_graph_problems() -> None:
    doc = main_flow()
    doc["edges"].append({"from": "menu", "port": "7", "to": "sales"})
    doc["edges"].append({"from": "ghost", "port": "next", "to": "sales"})
    doc["edges"].append({"from": "say", "port": "next", "to": "nowhere"})
    doc["nodes"].append(node("island", "play", prompt={"en": [{"tts": "x"}], "zh": [{"tts": "y"}]}))
    doc["edges"] = [e for e in doc["edges"] if not (e["from"] == "menu" and e["port"] == "2")]
    found = problems(doc)
    assert ("menu", "edges.16.port", "is not a port of menu (ports: 1, 2, 3, failure)") in found
    assert ("", "edges.17.from", "names unknown node 'ghost'") in found
    assert ("say", "edges.18.to", "names unknown node 'nowhere'") in found
    assert ("say", "edges.18.port", "already has an edge") in found
    assert ("menu", "nodes.menu.ports.2", "needs an edge") in found
    assert ("island", "nodes.island", "cannot be reached from the start") in found


def test_validation_finds_content_problems() -> None:
    doc = main_flow()
    nodes = {n["id"]: n for n in doc["nodes"]}
    del nodes["menu"]["config"]["prompt"]["zh"]
    nodes["vip"]["config"]["branches"][0]["expression"] = "customer.tier =="
    nodes["say"]["config"]["prompt"]["en"][0]["tts"] = "Balance {unknown.var}"
    nodes["lookup"]["config"]["url"] = "ftp://x"
    nodes["account"]["config"]["pattern"] = "[0-9"
    nodes["sales"]["config"]["queue_id"] = "nope"
    found = problems(doc, queues={"sales", "support"})
    rules = {(n, f): r for n, f, r in found}
    assert rules[("menu", "nodes.menu.config.prompt.zh")].startswith("is missing")
    assert rules[("vip", "nodes.vip.config.branches.0.expression")].startswith("bad expression")
    assert rules[("say", "nodes.say.config.prompt.en.0")] == "uses unknown variable 'unknown.var'"
    assert rules[("lookup", "nodes.lookup.config.url")].startswith("must be an http")
    assert rules[("account", "nodes.account.config.pattern")].startswith("is not a regular")
    assert rules[("sales", "nodes.sales.config.queue_id")] == "names unknown queue 'nope'"


def test_a_loop_that_never_waits_for_the_caller_is_refused() -> None:
    doc = {
        "start": "a",
        "nodes": [
            node("a", "set", assignments=[{"variable": "n", "expression": "n + 1"}]),
            node("b", "condition", branches=[{"port": "big", "expression": "n > 3"}]),
            node("c", "hangup"),
        ],
        "edges": [
            {"from": "a", "port": "next", "to": "b"},
            {"from": "b", "port": "else", "to": "a"},
            {"from": "b", "port": "big", "to": "c"},
        ],
    }
    found = problems(doc)
    assert any("loop that never waits" in r for _, _, r in found), found


def test_the_node_quota_and_shortcuts_are_checked() -> None:
    doc = main_flow()
    doc["shortcuts"] = {"3x": "ghost"}
    found = problems(doc, max_nodes=5)
    assert ("", "nodes", "has 14 nodes; the tenant's limit is 5") in found
    assert ("", "shortcuts.3x", "must be 1-10 digits") in found
    assert ("", "shortcuts.3x", "names unknown node 'ghost'") in found


def test_documents_that_are_not_objects_are_refused() -> None:
    with pytest.raises(FlowInvalid) as err:
        parse_flow({"start": "x", "nodes": "no"})
    assert err.value.field == "nodes"
    doc = copy.deepcopy(main_flow())
    doc["nodes"][1]["id"] = doc["nodes"][0]["id"]
    with pytest.raises(FlowInvalid, match="repeats node id"):
        parse_flow(doc)
