"""The `c2m` command: one subcommand per stage, each reading and writing files."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from c2m import __version__, _io
from c2m.errors import C2MError

app = typer.Typer(
    name="c2m",
    help="Retail-driven reverse manufacturing: survey -> choice model -> product line -> build plan.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

ProjectOption = Annotated[
    Path | None,
    typer.Option("--project", "-p", help="Project file (TOML); the embedded default project if omitted."),
]
SeedOption = Annotated[int, typer.Option(help="Random seed: same seed, same output.")]


def _version(value: bool) -> None:
    if value:
        console.print(f"c2m {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """c2m: from what customers say and do to what the factory builds."""


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to write c2m-project.toml into.")] = Path("."),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write the default project file for you to edit."""
    from c2m.data import default_project_text

    target = directory / "c2m-project.toml"
    if target.exists() and not force:
        raise C2MError(f"{target} already exists; use --force to overwrite it")
    _io.write_text(target, default_project_text())
    console.print(f"wrote {target}: edit it, then run `c2m validate --project {target}`")


@app.command()
def validate(project: ProjectOption = None) -> None:
    """Check a project file and summarise it."""
    from c2m.domain import FeatureCoder, enumerate_profiles
    from c2m.pipeline import project_and_text

    proj, _ = project_and_text(project)
    table = Table(title=f"project {proj.name}")
    table.add_column("attribute")
    table.add_column("kind")
    table.add_column("levels")
    for attribute in proj.attributes:
        table.add_row(attribute.name, attribute.kind, ", ".join(attribute.level_names))
    console.print(table)
    console.print(
        f"{len(enumerate_profiles(proj))} allowed profiles, "
        f"{FeatureCoder.from_project(proj).n_features} utility features, "
        f"{len(proj.competitors)} competitors, {len(proj.cities)} cities, {len(proj.stores)} stores, "
        f"{len(proj.battery_packs)} battery packs: OK"
    )


@app.command()
def generate(
    project: ProjectOption = None,
    persons: Annotated[int, typer.Option(min=100, help="Number of persons in the population.")] = 100_000,
    seed: SeedOption = 0,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("c2m-market"),
) -> None:
    """Generate the synthetic market (persons, stores, events, hidden truth) as Parquet."""
    from c2m.pipeline import _stages, project_and_text

    proj, _ = project_and_text(project)
    market = _stages.generate(proj, out, n_persons=persons, seed=seed)
    console.print(
        f"wrote {out}: {market.persons.height:,} persons, {market.stores.height} stores, "
        f"{market.events.height:,} events"
    )


@app.command()
def design(
    project: ProjectOption = None,
    method: Annotated[
        str,
        typer.Option(help="random, complete_enumeration, balanced_overlap, shortcut or d_efficient."),
    ] = "balanced_overlap",
    versions: Annotated[int, typer.Option(min=1)] = 20,
    tasks: Annotated[int, typer.Option(min=1)] = 12,
    alts: Annotated[int, typer.Option(min=2)] = 3,
    respondents: Annotated[int, typer.Option(min=1, help="Sample size for expected standard errors.")] = 1500,
    seed: SeedOption = 0,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("c2m-design"),
) -> None:
    """Make a choice-based-conjoint design and print its diagnostics."""
    from c2m.pipeline import _stages, project_and_text
    from c2m.survey import design_diagnostics

    proj, _ = project_and_text(project)
    result = _stages.design(proj, out, method, versions, tasks, alts, seed)
    console.print(design_diagnostics(proj, result, n_respondents=respondents).summary())
    console.print(f"wrote {out}")


@app.command("simulate-responses")
def simulate_responses(
    market: Annotated[Path, typer.Option(help="Folder written by `c2m generate`.")],
    design_dir: Annotated[Path, typer.Option("--design", help="Folder written by `c2m design`.")],
    respondents: Annotated[int, typer.Option(min=1)] = 1500,
    seed: SeedOption = 0,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("c2m-survey"),
) -> None:
    """Simulate respondents answering the survey from the market's hidden preferences."""
    from c2m.data import read_market
    from c2m.pipeline import _stages
    from c2m.survey import read_design

    sim_market = read_market(market)
    if sim_market.project is None:
        raise C2MError(f"{market}: the market's manifest carries no project; regenerate it with `c2m generate`")
    _, responses, raking = _stages.field_survey(
        sim_market.project, sim_market, read_design(design_dir), out, respondents, seed
    )
    console.print(
        f"wrote {out}/responses.parquet: {responses.height:,} rows; respondents.parquet with survey weights "
        f"(design effect {raking.design_effect:.2f}, effective sample {raking.effective_sample_size:,.0f})"
    )


@app.command()
def estimate(
    responses: Annotated[Path, typer.Option(help="Long-format responses (.parquet or .csv).")],
    project: ProjectOption = None,
    weights: Annotated[
        Path | None, typer.Option(help="respondents.parquet with a `weight` column: estimate with survey weights.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the model here (model.json).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the model as JSON.")] = False,
) -> None:
    """Estimate a multinomial logit on survey responses."""
    from c2m.choice import save_model
    from c2m.pipeline import _stages, project_and_text, read_table

    proj, _ = project_and_text(project)
    survey_weights = _stages.survey_weights(read_table(weights)) if weights is not None else None
    model, validation = _stages.estimate(proj, read_table(responses), weights=survey_weights)
    if out is not None:
        save_model(model, out)
    if as_json:
        sys.stdout.write(json.dumps(model.to_dict(), indent=2) + "\n")
        return
    console.print(model.summary_text())
    for key, value in validation.items():
        console.print(f"{key}: {value:.4f}")


@app.command()
def simulate(
    model: Annotated[Path, typer.Option(help="model.json from `c2m estimate`.")],
    line: Annotated[Path, typer.Option(help="product_definition.json (its variants are simulated).")],
    project: ProjectOption = None,
    seed: SeedOption = 0,
    out: Annotated[Path, typer.Option(help="Output folder for shares.csv and volumes.csv.")] = Path("."),
) -> None:
    """Shares of preference and volumes of a product line against the competitors and None."""
    from c2m.choice import load_model
    from c2m.domain import check_profile
    from c2m.pipeline import _stages, project_and_text, read_json

    proj, _ = project_and_text(project)
    sim = _stages.simulator(proj, load_model(model).to_dict(), seed=seed)
    variants = read_json(line).get("variants")
    if not variants:
        raise C2MError(f"{line}: no 'variants' list")
    profiles = [check_profile(proj, v["profile"], where=f"{line}: variants[{i}].profile")
                for i, v in enumerate(variants)]
    names = [str(v.get("name", f"variant {i + 1}")) for i, v in enumerate(variants)]
    shares = sim.shares(profiles, names=names)
    _io.write_csv(out / "shares.csv", shares)
    _io.write_csv(out / "volumes.csv", sim.volumes(profiles, names=names))
    console.print(shares)


@app.command()
def optimize(
    model: Annotated[Path, typer.Option(help="model.json from `c2m estimate`.")],
    project: ProjectOption = None,
    variants: Annotated[int, typer.Option(min=1, help="Number of variants in the line.")] = 3,
    objective: Annotated[str, typer.Option(help="profit, share or revenue.")] = "profit",
    seed: SeedOption = 0,
    out: Annotated[Path, typer.Option(help="Output file.")] = Path("product_definition.json"),
) -> None:
    """Search the product line that maximises the objective; prove how far from optimal it is."""
    from c2m.choice import load_model
    from c2m.pipeline import _stages, project_and_text

    proj, _ = project_and_text(project)
    sim = _stages.simulator(proj, load_model(model).to_dict(), seed=seed)
    solution = _stages.optimize(proj, sim, n_variants=variants, objective=objective, seed=seed)
    definition = solution.to_dict()
    _io.write_json(out, definition)
    _print_line(definition)
    console.print(f"wrote {out}")


@app.command()
def forecast(
    volumes: Annotated[Path, typer.Option(help="volumes.csv from `c2m simulate`.")],
    preorders: Annotated[Path | None, typer.Option(help="Observed pre-orders (csv).")] = None,
    weeks: Annotated[int, typer.Option(min=1)] = 52,
    seed: SeedOption = 0,
    out: Annotated[Path, typer.Option(help="Output file.")] = Path("forecast.csv"),
) -> None:
    """Weekly demand by variant and city (diffusion, with intervals)."""
    from c2m.forecast import forecast_demand
    from c2m.pipeline import read_table

    table = read_table(volumes, required=["variant", "city", "annual_volume"])
    orders = read_table(preorders) if preorders is not None else None
    result = forecast_demand(table, horizon_weeks=weeks, preorders=orders, seed=seed)
    _io.write_csv(out, result)
    console.print(f"wrote {out}: {result['demand'].sum():,.0f} units over {weeks} weeks")


@app.command()
def plan(
    forecast_file: Annotated[Path, typer.Option("--forecast", help="forecast.csv from `c2m forecast`.")],
    capacity: Annotated[int, typer.Option(min=1, help="Units per week at full rate.")] = 2500,
    out: Annotated[Path, typer.Option(help="Output file.")] = Path("build_plan.csv"),
) -> None:
    """Production plan by week and variant within the plant's capacity."""
    from c2m.forecast import build_plan
    from c2m.pipeline import read_table

    table = read_table(forecast_file, required=["week", "variant", "city", "demand"])
    result = build_plan(table, capacity_per_week=capacity)
    _io.write_csv(out, result)
    console.print(f"wrote {out}: {result['build'].sum():,.0f} units planned")


@app.command("swap-plan")
def swap_plan(
    forecast_file: Annotated[Path, typer.Option("--forecast", help="forecast.csv from `c2m forecast`.")],
    project: ProjectOption = None,
    persons: Annotated[Path | None, typer.Option(help="persons.parquet (daily km, home charging).")] = None,
    out: Annotated[Path, typer.Option(help="Output file.")] = Path("swap_plan.csv"),
) -> None:
    """Choose which stores get swap stations, with lanes and battery stock."""
    import polars as pl

    from c2m.battery import plan_swap_network
    from c2m.pipeline import project_and_text, read_table

    proj, _ = project_and_text(project)
    table = read_table(forecast_file, required=["city", "demand"])
    fleet = table.group_by("city").agg(vehicles=pl.col("demand").sum()).sort("city")
    people = read_table(persons) if persons is not None else None
    result = plan_swap_network(proj, fleet, persons=people)
    _io.write_csv(out, result)
    console.print(f"wrote {out}: {int(result['station'].sum())} stations")


@app.command()
def report(
    directory: Annotated[Path, typer.Argument(help="Folder holding the stage files.")] = Path("c2m-demo"),
    project: ProjectOption = None,
    out: Annotated[Path | None, typer.Option(help="Output file (default DIR/report.html).")] = None,
) -> None:
    """Write the self-contained HTML decision report from a folder of stage files."""
    from c2m.pipeline import project_and_text
    from c2m.report import read_inputs, write_report

    if not directory.is_dir():
        raise C2MError(f"{directory}: not a folder")
    if project is None and (directory / "project.toml").exists():
        project = directory / "project.toml"
    proj, _ = project_and_text(project)
    target = write_report(read_inputs(directory, project=proj), out or directory / "report.html")
    console.print(f"wrote {target}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("c2m-demo"),
    project: ProjectOption = None,
    persons: Annotated[int, typer.Option(min=1000)] = 100_000,
    respondents: Annotated[int, typer.Option(min=50)] = 1500,
    variants: Annotated[int, typer.Option(min=1)] = 3,
    seed: SeedOption = 0,
) -> None:
    """Run the whole flow on the default (or given) project and write every output."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from c2m.pipeline import STAGES, project_and_text, run_demo

    proj, text = project_and_text(project)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err_console
    ) as progress:
        task = progress.add_task("starting", total=len(STAGES))

        def on_stage(name: str) -> None:
            progress.update(task, description=name, completed=STAGES.index(name))

        result = run_demo(
            proj, text, out, n_persons=persons, n_respondents=respondents, n_variants=variants,
            seed=seed, on_stage=on_stage,
        )
        progress.update(task, description="done", completed=len(STAGES))
    _print_line(result.product_definition)
    for key, value in result.validation.items():
        console.print(f"{key}: {value:.3f}")
    console.print(f"total {sum(result.timings.values()):.1f} s; open {out / 'report.html'}")


@app.command()
def serve(
    project: Annotated[
        list[Path] | None,
        typer.Option("--project", "-p", help="Project file to host; repeat for several. Default: the embedded one."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db. Default: sqlite:///./c2m.db."),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1)] = 1,
) -> None:
    """Serve the web platform (test-drive booking, early-purchase benefits); migrates the database first."""
    from c2m.platform import serve as serve_platform

    serve_platform(list(project or []), database_url, host, port, workers)


def _print_line(definition: dict[str, Any]) -> None:
    table = Table(title=f"recommended line ({definition.get('objective', '')})")
    for column in ("variant", "levels", "price", "share [95%]", "volume/yr", "unit margin"):
        table.add_column(column, justify="right" if column != "levels" else "left")
    for variant in definition["variants"]:
        profile = variant["profile"]
        levels = ", ".join(str(v) for k, v in profile.items() if k != "price")
        table.add_row(
            variant["name"],
            levels,
            f"¥{variant['price']:,.0f}",
            f"{variant['share']:.1%} [{variant['share_low']:.1%}, {variant['share_high']:.1%}]",
            f"{variant['annual_volume']:,.0f}",
            f"¥{variant['unit_margin']:,.0f}",
        )
    console.print(table)
    line = definition["line"]
    console.print(
        f"line share {line['share']:.1%}, volume {line['annual_volume']:,.0f}/yr, "
        f"profit ¥{line['profit']:,.0f}/yr; optimality gap {definition.get('gap', float('nan')):.2%}"
    )


def main() -> None:
    """Entry point: user mistakes print one line and exit 2, never a traceback."""
    try:
        app()
    except C2MError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))


def _fail(message: str) -> NoReturn:
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(2)
