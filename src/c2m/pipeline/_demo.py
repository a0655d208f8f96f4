"""`c2m demo`: the whole flow of DESIGN.md on one project, every file written."""

from __future__ import annotations

import hashlib
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from c2m import __version__, _io
from c2m.battery import plan_swap_network, rent_vs_buy
from c2m.choice import save_model
from c2m.domain import Project
from c2m.forecast import build_plan, forecast_demand, simulate_preorders
from c2m.report import read_inputs, write_report
from c2m.survey import design_diagnostics

from . import _stages

STAGES = (
    "generate market",
    "design survey",
    "field survey",
    "estimate choice model",
    "simulate market",
    "optimise product line",
    "forecast demand",
    "plan build",
    "plan swap stations",
    "write report",
)


@dataclass
class DemoResult:
    """What the demo produced: the output folder, the chosen line and timings per stage."""

    out: Path
    product_definition: dict[str, Any]
    validation: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


def run_demo(
    project: Project,
    project_text: str,
    out: Path,
    n_persons: int = 100_000,
    n_respondents: int = 1_500,
    n_variants: int = 3,
    seed: int = 0,
    on_stage: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run every stage on ``project`` and write all outputs under ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started: list[tuple[str, float]] = []

    def stage(name: str | None) -> None:
        now = time.perf_counter()
        if started:
            previous, since = started[-1]
            timings[previous] = round(now - since, 3)
        if name is not None:
            started.append((name, now))
            if on_stage is not None:
                on_stage(name)

    _io.write_text(out / "project.toml", project_text)

    stage("generate market")
    market = _stages.generate(project, out / "market", n_persons=n_persons, seed=seed)

    stage("design survey")
    survey_design = _stages.design(project, out / "design", seed=seed)
    diagnostics = design_diagnostics(project, survey_design, n_respondents=n_respondents)

    stage("field survey")
    respondents, responses, raking = _stages.field_survey(project, market, survey_design, out, n_respondents, seed)

    stage("estimate choice model")
    model, validation = _stages.estimate(project, responses, weights=_stages.survey_weights(respondents))
    save_model(model, out / "model.json")
    model_dict = model.to_dict()

    stage("simulate market")
    sim = _stages.simulator(project, model_dict, seed=seed)

    stage("optimise product line")
    solution = _stages.optimize(project, sim, n_variants=n_variants, objective="profit", seed=seed)
    line = solution.variants
    definition = solution.to_dict()
    _io.write_json(out / "product_definition.json", definition)
    names = [v["name"] for v in definition["variants"]]
    _io.write_csv(out / "shares.csv", sim.shares(line, names=names))
    volumes = sim.volumes(line, names=names)
    _io.write_csv(out / "volumes.csv", volumes)
    best = line[0]
    price_attr = project.attribute_by_role("price")
    if price_attr is not None:
        low, high = price_attr.value_range
        prices = [low + (high - low) * i / 40 for i in range(41)]
        _io.write_csv(out / "demand_curve.csv", sim.demand_curve(best, prices))
    _io.write_csv(out / "sensitivity.csv", sim.sensitivity(best))

    stage("forecast demand")
    preorders = simulate_preorders(volumes, seed=seed)
    _io.write_csv(out / "preorders.csv", preorders)
    forecast = forecast_demand(volumes, preorders=preorders, seed=seed)
    _io.write_csv(out / "forecast.csv", forecast)

    stage("plan build")
    plan = build_plan(forecast)
    _io.write_csv(out / "build_plan.csv", plan)

    stage("plan swap stations")
    fleet = forecast.group_by("city").agg(vehicles=pl.col("demand").sum()).sort("city")
    swap_plan = plan_swap_network(project, fleet, persons=market.persons)
    _io.write_csv(out / "swap_plan.csv", swap_plan)
    _io.write_csv(out / "rent_vs_buy.csv", rent_vs_buy(project))

    stage("write report")
    run_info = {
        "c2m": __version__,
        "python": platform.python_version(),
        "seed": seed,
        "persons": n_persons,
        "respondents": n_respondents,
        "project_sha256": hashlib.sha256(project_text.encode("utf-8")).hexdigest(),
        "model_loglik": model_dict.get("loglik"),
        "design_d_error": diagnostics.d_error,
        "survey_weighting": ", ".join(_stages.SURVEY_WEIGHTING_VARIABLES),
        "survey_design_effect": raking.design_effect,
        "survey_effective_sample_size": raking.effective_sample_size,
        "survey_weights_converged": raking.converged,
        "survey_weights_max_margin_error": raking.max_margin_error,
        **validation,
    }
    _io.write_json(out / "run.json", {**run_info, "timings_s": timings})
    inputs = read_inputs(out, project=project)
    inputs.run_info = run_info
    inputs.population = market.persons
    write_report(inputs, out / "report.html")
    stage(None)
    _io.write_json(out / "run.json", {**run_info, "timings_s": timings})
    return DemoResult(out=out, product_definition=definition, validation=validation, timings=timings)
