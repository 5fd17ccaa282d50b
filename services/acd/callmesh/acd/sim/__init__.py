"""``callmesh acd simulate``: the real ACD engine on a virtual clock, compared with Erlang C/A."""

from __future__ import annotations

from typing import Any

from callmesh.acd.sim.report import build_report
from callmesh.acd.sim.scenario import (
    AgentPool,
    HandleDistribution,
    HandleSpec,
    QueueSpec,
    Scenario,
    load_scenario,
    parse_scenario,
    parse_scenario_text,
    single_queue,
)
from callmesh.acd.sim.simulator import SimResult, SimulationError, Simulator, merge

__all__ = [
    "AgentPool",
    "HandleDistribution",
    "HandleSpec",
    "QueueSpec",
    "Scenario",
    "SimResult",
    "SimulationError",
    "Simulator",
    "build_report",
    "load_scenario",
    "parse_scenario",
    "parse_scenario_text",
    "run",
    "simulate_scenario",
    "single_queue",
]


def simulate_scenario(scenario: Scenario) -> SimResult:
    """Run the scenario through a fresh engine (two mirrored halves when antithetic)."""
    if not scenario.antithetic or scenario.calls < 2:
        return Simulator(scenario).run()
    # Each half keeps its own warm-up (both start empty); model_copy skips re-validation, and
    # the halves are as valid as the whole.
    first = scenario.model_copy(
        update={"calls": (scenario.calls + 1) // 2, "warmup": (scenario.warmup_calls + 1) // 2}
    )
    second = scenario.model_copy(
        update={"calls": scenario.calls // 2, "warmup": scenario.warmup_calls // 2}
    )
    result = merge(Simulator(first).run(), Simulator(second, antithetic=True).run())
    result.scenario = scenario
    return result


def run(scenario: Scenario) -> dict[str, Any]:
    """Run the scenario and return the report (the JSON the CLI prints)."""
    return build_report(simulate_scenario(scenario))
