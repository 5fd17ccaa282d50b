"""Scenario files and flags: good input becomes the engine's config, bad input names field+rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from callmesh.acd.domain.config import AgentStrategy
from callmesh.acd.sim import (
    HandleDistribution,
    load_scenario,
    parse_scenario,
    parse_scenario_text,
    single_queue,
)
from callmesh.core.errors import InvalidInput

YAML = """
seed: 7
calls: 5000
queues:
  - id: sales
    calls_per_hour: 120
    handle: {dist: lognormal, mean_s: 240, sd_s: 120}
    patience_s: 90
    wrap_up_s: 10
    service_level_s: 30
  - id: support
    calls_per_s: 0.02
    handle: {mean_s: 300}
    skill: tech
    priority: 5
    strategy: fewest_calls
agents:
  - {id: sellers, count: 4, skills: {sales: 3}}
  - {id: techs, count: 3, skills: {tech: 2, sales: 1}}
"""


def _valid() -> dict[str, Any]:
    return {
        "queues": [{"id": "q", "calls_per_hour": 100, "handle": {"mean_s": 180}}],
        "agents": [{"count": 3, "skills": {"q": 1}}],
    }


def test_yaml_scenario_becomes_the_engine_config(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(YAML, encoding="utf-8")
    scenario = load_scenario(path)
    assert scenario.seed == 7
    assert scenario.warmup_calls == 250  # 5% of the calls by default
    sales, support = scenario.queues
    assert sales.rate_per_s == pytest.approx(120 / 3600)
    assert sales.handle.dist is HandleDistribution.LOGNORMAL
    assert support.rate_per_s == pytest.approx(0.02)
    assert support.handle.sd == 300  # an exponential's sd is its mean
    config = scenario.engine_config()
    assert set(config.queues) == {"sales", "support"}
    assert config.queues["support"].skill == "tech"
    assert config.queues["support"].priority == 5
    assert config.queues["support"].strategies == (AgentStrategy.FEWEST_CALLS,)
    assert config.queues["sales"].wrap_up_s == 10
    assert config.queues["sales"].service_level_s == 30
    assert len(config.agents) == 7
    assert config.agents["techs-2"].skills == {"tech": 2, "sales": 1}
    assert not scenario.single_queue()


def test_json_text_parses_like_yaml() -> None:
    scenario = parse_scenario_text(json.dumps(_valid()))
    assert scenario.single_queue()
    assert [a for a, _ in scenario.agent_ids()] == ["pool0-0", "pool0-1", "pool0-2"]


def test_single_queue_flags_turn_erlangs_into_a_rate() -> None:
    scenario = single_queue(agents=10, traffic=8.0, aht_s=180.0, wrap_up_s=20.0, calls=1000)
    # 8 Erlangs held 200 s per call (talk + wrap-up) = 144 calls per hour
    assert scenario.queues[0].rate_per_s * 3600 == pytest.approx(144.0)
    assert scenario.single_queue()


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"queues": []}, "queues", "at least 1 item"),
        ({"agents": []}, "agents", "at least 1 item"),
        ({"calls": 0}, "calls", "greater than or equal to 1"),
        ({"calls": 10, "warmup": 10}, "(scenario)", "warmup must be less than calls"),
        ({"ring_s": -1}, "ring_s", "greater than or equal to 0"),
        ({"surprise": 1}, "surprise", "Extra inputs are not permitted"),
    ],
)
def test_bad_run_settings_name_the_field_and_rule(
    change: dict[str, Any], field: str, rule: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_scenario({**_valid(), **change})
    assert caught.value.field == field
    assert rule in caught.value.message


@pytest.mark.parametrize(
    ("queue", "field", "rule"),
    [
        ({"calls_per_hour": None}, "queues.0", "exactly one of calls_per_hour and calls_per_s"),
        ({"calls_per_s": 1.0}, "queues.0", "exactly one of calls_per_hour and calls_per_s"),
        ({"calls_per_hour": -5}, "queues.0.calls_per_hour", "greater than 0"),
        ({"handle": {"mean_s": 0}}, "queues.0.handle.mean_s", "greater than 0"),
        ({"handle": {"dist": "gamma", "mean_s": 1}}, "queues.0.handle.dist", "'exponential'"),
        ({"handle": {"mean_s": 9, "sd_s": 3}}, "queues.0.handle", "only for dist 'lognormal'"),
        ({"patience_s": 0}, "queues.0.patience_s", "greater than 0"),
        ({"wrap_up_s": float("nan")}, "queues.0.wrap_up_s", "finite"),
        ({"id": "a b"}, "queues.0.id", "match pattern"),
        ({"strategy": "fastest"}, "queues.0.strategy", "longest_idle"),
    ],
)
def test_bad_queue_names_the_field_and_rule(queue: dict[str, Any], field: str, rule: str) -> None:
    data = _valid()
    data["queues"] = [{**data["queues"][0], **queue}]
    with pytest.raises(InvalidInput) as caught:
        parse_scenario(data)
    assert caught.value.field == field
    assert rule in caught.value.message


def test_a_queue_nobody_can_serve_is_refused() -> None:
    data = _valid()
    data["queues"][0]["skill"] = "french"
    with pytest.raises(InvalidInput, match=r"queues\.0\.skill: no agent pool has skill 'french'"):
        parse_scenario(data)


def test_duplicate_queue_ids_are_refused() -> None:
    data = _valid()
    data["queues"] = data["queues"] * 2
    with pytest.raises(InvalidInput, match="queue id 'q' is used more than once"):
        parse_scenario(data)


def test_skill_levels_are_one_to_five() -> None:
    data = _valid()
    data["agents"] = [{"count": 1, "skills": {"q": 6}}]
    with pytest.raises(InvalidInput, match=r"skills.q must be a level from 1 to 5 \(got 6\)"):
        parse_scenario(data)


def test_a_scenario_must_be_a_mapping() -> None:
    with pytest.raises(InvalidInput, match="must be a mapping, not list"):
        parse_scenario_text("[1, 2]")


def test_broken_yaml_says_where() -> None:
    with pytest.raises(InvalidInput, match="line 3, column 1"):
        parse_scenario_text("queues:\n  - id: [unclosed\n")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read"):
        load_scenario(tmp_path / "nope.yaml")


def test_single_queue_needs_exactly_one_rate() -> None:
    with pytest.raises(InvalidInput) as caught:
        single_queue(agents=3, aht_s=100.0)
    assert caught.value.field == "calls_per_hour"
    with pytest.raises(InvalidInput):
        single_queue(agents=3, aht_s=100.0, traffic=2.0, calls_per_hour=10.0)
