"""``callmesh acd …``: tools around the ACD (the simulator)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from callmesh.acd.sim.scenario import (
    HandleDistribution,
    Scenario,
    load_scenario,
    parse_scenario,
    single_queue,
)
from callmesh.core.errors import InvalidInput

_POSITIVE = click.FloatRange(min=0, min_open=True)
_NON_NEGATIVE = click.FloatRange(min=0)


@click.group()
def acd() -> None:
    """ACD tools: simulate routing on a virtual clock."""


@acd.command()
@click.option(
    "--scenario",
    "scenario_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML or JSON scenario (several queues, skills); replaces the single-queue flags.",
)
@click.option("--agents", type=click.IntRange(min=1), help="Agents serving the single queue.")
@click.option("--calls-per-hour", type=_POSITIVE, help="Poisson arrival rate (calls per hour).")
@click.option("--calls-per-second", type=_POSITIVE, help="Poisson arrival rate (calls per s).")
@click.option("--traffic", type=_POSITIVE, help="Offered load in Erlangs (instead of a rate).")
@click.option("--aht", type=_POSITIVE, default=180.0, show_default=True, help="Mean talk s.")
@click.option(
    "--handle",
    type=click.Choice(["exponential", "lognormal"]),
    default="exponential",
    show_default=True,
    help="Talk-time distribution.",
)
@click.option("--handle-sd", type=_POSITIVE, help="Lognormal talk-time sd in s (default AHT).")
@click.option("--patience", type=_POSITIVE, help="Mean exponential patience in s (none: never).")
@click.option("--sl-threshold", type=_NON_NEGATIVE, default=20.0, show_default=True)
@click.option("--wrap-up", type=_NON_NEGATIVE, default=0.0, show_default=True, help="ACW s.")
@click.option("--ring", type=_NON_NEGATIVE, default=0.0, show_default=True, help="Ring s.")
@click.option("--calls", type=click.IntRange(min=1), help="Calls to simulate [100000].")
@click.option("--warmup", type=click.IntRange(min=0), help="First calls left out [5% of calls].")
@click.option("--seed", type=int, help="Random seed [1].")
@click.option(
    "--antithetic/--no-antithetic",
    default=None,
    help="Two mirrored half runs pooled (less noise for the same calls).",
)
@click.option("--indent", type=click.IntRange(min=0), default=2, show_default=True)
def simulate(
    scenario_file: Path | None,
    agents: int | None,
    calls_per_hour: float | None,
    calls_per_second: float | None,
    traffic: float | None,
    aht: float,
    handle: str,
    handle_sd: float | None,
    patience: float | None,
    sl_threshold: float,
    wrap_up: float,
    ring: float,
    calls: int | None,
    warmup: int | None,
    seed: int | None,
    antithetic: bool | None,
    indent: int,
) -> None:
    """Run the real ACD engine on a virtual clock and print the statistics as JSON.

    One queue from the flags (``--agents 10 --traffic 8 --aht 180``), or several queues and
    skills from ``--scenario FILE``; ``--calls``, ``--warmup`` and ``--seed`` override the
    file's values. With one queue the Erlang C (no patience) or Erlang A (patience) prediction
    is printed beside the simulated values.
    """
    # Imported here so `callmesh --help` stays quick.
    from callmesh.acd.sim import build_report, simulate_scenario

    try:
        scenario = _scenario(
            scenario_file,
            agents=agents,
            calls_per_hour=calls_per_hour,
            calls_per_second=calls_per_second,
            traffic=traffic,
            aht=aht,
            handle=handle,
            handle_sd=handle_sd,
            patience=patience,
            sl_threshold=sl_threshold,
            wrap_up=wrap_up,
            ring=ring,
            calls=calls,
            warmup=warmup,
            seed=seed,
            antithetic=antithetic,
        )
    except InvalidInput as err:
        raise click.UsageError(err.message) from err
    report = build_report(simulate_scenario(scenario))
    click.echo(json.dumps(report, indent=indent or None))


def _scenario(
    scenario_file: Path | None,
    *,
    agents: int | None,
    calls_per_hour: float | None,
    calls_per_second: float | None,
    traffic: float | None,
    aht: float,
    handle: str,
    handle_sd: float | None,
    patience: float | None,
    sl_threshold: float,
    wrap_up: float,
    ring: float,
    calls: int | None,
    warmup: int | None,
    seed: int | None,
    antithetic: bool | None,
) -> Scenario:
    """The scenario of the file (with the run overrides) or of the single-queue flags."""
    if scenario_file is not None:
        flags = {
            "--agents": agents,
            "--calls-per-hour": calls_per_hour,
            "--calls-per-second": calls_per_second,
            "--traffic": traffic,
            "--handle-sd": handle_sd,
            "--patience": patience,
        }
        given = [name for name, value in flags.items() if value is not None]
        if given:
            raise InvalidInput(given[0], "single-queue flags cannot be mixed with --scenario")
        scenario = load_scenario(scenario_file)
        overrides = {"calls": calls, "warmup": warmup, "seed": seed, "antithetic": antithetic}
        changes: dict[str, object] = {k: v for k, v in overrides.items() if v is not None}
        if calls is not None and warmup is None:
            # the file's warm-up was chosen for its own run length
            changes["warmup"] = None
        if changes:
            scenario = parse_scenario({**scenario.model_dump(mode="json"), **changes})
        return scenario
    if agents is None:
        raise InvalidInput("--agents", "required (or give --scenario FILE)")
    if sum(x is not None for x in (calls_per_hour, calls_per_second, traffic)) != 1:
        raise InvalidInput(
            "--calls-per-hour",
            "give exactly one of --calls-per-hour, --calls-per-second and --traffic",
        )
    if calls_per_second is not None:
        calls_per_hour = calls_per_second * 3600.0
    return single_queue(
        agents=agents,
        aht_s=aht,
        calls_per_hour=calls_per_hour,
        traffic=traffic,
        handle=HandleDistribution(handle),
        handle_sd_s=handle_sd,
        patience_s=patience,
        sl_threshold_s=sl_threshold,
        wrap_up_s=wrap_up,
        ring_s=ring,
        calls=calls if calls is not None else 100_000,
        warmup=warmup,
        seed=seed if seed is not None else 1,
        antithetic=bool(antithetic),
    )
