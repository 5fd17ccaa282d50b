"""Scenario files: every example loads, and every broken rule is named with its field."""

from __future__ import annotations

from pathlib import Path

import pytest

from callmesh.fsemu.world.distributions import Exponential, Fixed
from callmesh.fsemu.world.scenario import (
    ScenarioError,
    expand_users,
    load_scenario,
    parse_scenario,
    parse_scenario_text,
)

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_scenario_loads(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name


def test_an_empty_file_is_an_empty_world() -> None:
    scenario = parse_scenario_text("")
    assert scenario.phones == []
    assert scenario.speed == 1.0


def test_bare_numbers_are_fixed_durations() -> None:
    scenario = parse_scenario({"callers": [{"number": "5000", "patience": 12, "talk": 3}]})
    assert scenario.callers[0].patience == Fixed(value=12)
    assert scenario.callers[0].talk == Fixed(value=3)


def test_distributions_are_chosen_by_their_dist_field() -> None:
    scenario = parse_scenario(
        {
            "traffic": [
                {
                    "name": "t",
                    "rate": 1,
                    "numbers": ["5000"],
                    "holding": {"dist": "exponential", "mean": 90},
                }
            ]
        }
    )
    assert scenario.traffic[0].holding == Exponential(mean=90)


def test_ranges_of_extensions_expand_and_keep_their_padding() -> None:
    assert expand_users(["0998-1001", "alice"]) == ["0998", "0999", "1000", "1001", "alice"]


def test_a_downward_range_is_refused_with_its_field() -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario({"phones": [{"domain": "acme.test", "users": ["1010-1001"]}]})
    assert err.value.problems == ["phones.0.users: range '1010-1001' must go upwards"]


def test_each_broken_rule_names_its_field() -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(
            {
                "speed": 0,
                "phones": [{"domain": "bad domain", "users": ["1001"], "expires": 0}],
                "carriers": [{"gateway": "gw", "outcomes": {"human": 0}}],
                "traffic": [{"name": "t", "rate": 1, "numbers": ["5000"], "start": 10, "stop": 5}],
                "callers": [{"number": "5000", "digits": [{"digits": "12x", "at": 1}]}],
            }
        )
    problems = err.value.problems
    assert "speed: Input should be greater than 0" in problems
    assert "phones.0.domain: must be a host name (letters, digits, dots, hyphens)" in problems
    assert "phones.0.expires: Input should be greater than or equal to 1" in problems
    assert "carriers.0.outcomes: at least one outcome must have a chance above 0" in problems
    assert "traffic.0: stop must be later than start" in problems
    assert "callers.0.digits.0.digits: must be DTMF digits: 0-9, *, #, A-D" in problems


def test_a_digit_step_needs_exactly_one_trigger() -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(
            {"callers": [{"number": "5000", "digits": [{"digits": "1", "at": 1, "on_prompt": 1}]}]}
        )
    assert err.value.problems == ["callers.0.digits.0: set exactly one of 'at' and 'on_prompt'"]


def test_an_unknown_key_is_refused_not_ignored() -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario({"phones": [{"domain": "acme.test", "users": ["1"], "profle": "busy"}]})
    assert err.value.problems == ["phones.0.profle: Extra inputs are not permitted"]


def test_an_unknown_profile_name_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario({"phones": [{"domain": "acme.test", "users": ["1"], "profile": "sleepy"}]})
    assert err.value.problems[0].startswith("phones.0.profile: unknown profile 'sleepy'; known: [")


def test_the_same_phone_twice_is_refused() -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(
            {
                "phones": [
                    {"domain": "acme.test", "users": ["1001-1002"]},
                    {"domain": "ACME.test", "users": ["1002"]},
                ]
            }
        )
    assert err.value.problems == ["phones.1.users: 1002@acme.test is defined twice"]


def test_an_unknown_sip_code_is_refused() -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario({"profiles": {"odd": {"behaviour": "dnd", "sip_code": 499}}})
    assert err.value.problems[0].startswith("profiles.odd.sip_code: must be a SIP final response")


def test_bad_yaml_names_the_line() -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario_text("phones:\n  - domain: [unclosed\n")
    assert err.value.problems[0].startswith("(yaml) line ")


def test_a_list_at_top_level_is_refused() -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario_text("- 1\n- 2\n")
    assert err.value.problems == ["(top level): must be a mapping, not list"]


def test_a_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as err:
        load_scenario(tmp_path / "nope.yaml")
    assert "nope.yaml" in err.value.problems[0]


def test_dialplan_steps_may_be_written_as_one_string() -> None:
    scenario = parse_scenario(
        {"dialplan": {5000: ["answer", "playback /tmp/a.wav", {"app": "park"}]}}
    )
    assert scenario.dialplan is not None
    steps = [(s.app, s.data) for s in scenario.dialplan["5000"]]
    assert steps == [("answer", ""), ("playback", "/tmp/a.wav"), ("park", "")]
