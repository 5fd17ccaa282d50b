"""``callmesh acd simulate`` through click: flags, scenario files, JSON out, usage errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from callmesh.acd.cli import acd


def test_single_queue_flags_print_statistics_and_erlang_c() -> None:
    result = CliRunner().invoke(
        acd,
        ["simulate", "--agents", "5", "--traffic", "3.5", "--aht", "120", "--calls", "2000"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["scenario"]["calls"] == 2000
    assert report["scenario"]["warmup"] == 100
    overall = report["overall"]
    assert overall["calls"] == 1900
    assert overall["answered"] == 1900
    for key in ("p_wait", "asa_s", "service_level", "abandon_rate", "occupancy", "ewt_error"):
        assert key in overall
    assert overall["ewt_error"]["calls"] > 0
    assert report["erlang"]["model"] == "erlang_c"
    assert report["erlang"]["traffic_erlangs"] == 3.5
    assert report["queues"]["q1"]["calls"] == 1900


def test_patience_switches_the_prediction_to_erlang_a() -> None:
    result = CliRunner().invoke(
        acd,
        [
            "simulate",
            "--agents=4",
            "--calls-per-hour=100",
            "--aht=150",
            "--patience=45",
            "--sl-threshold=15",
            "--calls=1500",
            "--warmup=0",
            "--seed=3",
            "--indent=0",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["erlang"]["model"] == "erlang_a"
    assert report["erlang"]["patience_s"] == 45
    assert report["overall"]["calls"] == 1500
    assert report["overall"]["service_level_threshold_s"] == 15
    assert report["overall"]["abandoned"] > 0


def test_antithetic_runs_two_halves() -> None:
    result = CliRunner().invoke(
        acd,
        ["simulate", "--agents=3", "--calls-per-second=0.01", "--aht=200", "--calls=1000"],
    )
    plain = json.loads(result.output)
    result = CliRunner().invoke(
        acd,
        [
            "simulate",
            "--agents=3",
            "--calls-per-second=0.01",
            "--aht=200",
            "--calls=1000",
            "--antithetic",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["run"]["runs"] == 2
    assert plain["run"]["runs"] == 1
    assert report["overall"]["calls"] == plain["overall"]["calls"] == 950


def test_a_scenario_file_with_overrides(tmp_path: Path) -> None:
    path = tmp_path / "skills.yaml"
    path.write_text(
        "calls: 50000\n"
        "warmup: 40000\n"
        "queues:\n"
        "  - {id: a, calls_per_hour: 60, handle: {mean_s: 120}}\n"
        "  - {id: b, calls_per_hour: 30, handle: {dist: lognormal, mean_s: 200, sd_s: 50}}\n"
        "agents:\n"
        "  - {count: 3, skills: {a: 2, b: 1}}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(acd, ["simulate", "--scenario", str(path), "--calls", "1200"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    # --calls replaces the file's run length; the file's warm-up no longer fits, so 5%
    assert report["scenario"]["calls"] == 1200
    assert report["scenario"]["warmup"] == 60
    assert set(report["queues"]) == {"a", "b"}
    assert report["erlang"] is None


def test_bad_flags_are_usage_errors_naming_the_flag(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(acd, ["simulate", "--traffic", "3"])
    assert result.exit_code == 2
    assert "--agents: required" in result.output
    result = runner.invoke(acd, ["simulate", "--agents", "3"])
    assert result.exit_code == 2
    assert "exactly one of --calls-per-hour, --calls-per-second and --traffic" in result.output
    result = runner.invoke(acd, ["simulate", "--agents", "3", "--traffic", "-1"])
    assert result.exit_code == 2
    assert "--traffic" in result.output
    result = runner.invoke(
        acd, ["simulate", "--agents", "3", "--traffic", "2", "--handle-sd", "30"]
    )
    assert result.exit_code == 2
    assert "sd_s is only for dist 'lognormal'" in result.output
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"queues": [], "agents": []}), encoding="utf-8")
    result = runner.invoke(acd, ["simulate", "--scenario", str(path)])
    assert result.exit_code == 2
    assert "queues: List should have at least 1 item" in result.output
    result = runner.invoke(acd, ["simulate", "--scenario", str(path), "--agents", "4"])
    assert result.exit_code == 2
    assert "--agents: single-queue flags cannot be mixed with --scenario" in result.output
