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


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def estimate(
    ctx: typer.Context,
    responses: Annotated[
        Path | None, typer.Option(help="Project mode: long-format survey responses (.parquet or .csv).")
    ] = None,
    project: ProjectOption = None,
    weights: Annotated[
        Path | None, typer.Option(help="respondents.parquet with a `weight` column: estimate with survey weights.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the model here (model.json).")] = None,
    id_col: Annotated[str | None, typer.Option("--id", help="DATA mode: person id column [id].")] = None,
    task_col: Annotated[str | None, typer.Option("--task", help="Task column within a person [task].")] = None,
    alt_col: Annotated[str | None, typer.Option("--alt", help="Alternative column [alt].")] = None,
    chosen_col: Annotated[
        str | None, typer.Option("--chosen", help="Chosen column: 0/1, true/false or TRUE/FALSE [chosen].")
    ] = None,
    variables: Annotated[str | None, typer.Option("--vars", help="Attribute columns, e.g. price,range.")] = None,
    asc: Annotated[bool, typer.Option("--asc", help="Add alternative-specific constants asc_<alt>.")] = False,
    random: Annotated[
        str | None, typer.Option(help="Random coefficients, e.g. range:normal,price:lognormal (mixed logit).")
    ] = None,
    correlated: Annotated[bool, typer.Option("--correlated", help="Correlated random coefficients.")] = False,
    draws: Annotated[int, typer.Option(help="Simulation draws per person (mixed logit).")] = 100,
    draw_type: Annotated[str, typer.Option(help="halton, sobol, mlhs or random.")] = "halton",
    panel: Annotated[
        bool, typer.Option("--panel/--no-panel", help="Same coefficients across a person's tasks.")
    ] = True,
    classes: Annotated[int | None, typer.Option(help="Latent class logit with K classes.")] = None,
    hb: Annotated[bool, typer.Option("--hb", help="Hierarchical Bayes logit.")] = False,
    iterations: Annotated[int | None, typer.Option(help="HB iterations per chain (half are burn-in).")] = None,
    wtp_space: Annotated[
        str | None, typer.Option(help="Mixed logit in WTP space with this price column (lognormal scale).")
    ] = None,
    se: Annotated[str | None, typer.Option(help="Standard errors: hessian, robust, clustered or bhhh.")] = None,
    seed: SeedOption = 0,
) -> None:
    """Estimate a choice model: `c2m estimate DATA --vars a,b ...` or the project MNL from `--responses`.

    DATA (.csv, .csv.gz or .parquet) is a long table, one row per person x task x alternative:
    multinomial logit by default, mixed logit with --random / --wtp-space, latent class with
    --classes, hierarchical Bayes with --hb. `--json OUT` writes the estimates as JSON
    (`--json` alone prints them).
    """
    from c2m.choice import save_model
    from c2m.pipeline._estimate_cli import EstimateRequest, run_estimate, split_extra_args

    positional, json_target, as_json = split_extra_args(list(ctx.args))
    if len(positional) > 1:
        raise C2MError(f"estimate takes one DATA file, got {positional}")
    general = {"--id": id_col, "--task": task_col, "--alt": alt_col, "--chosen": chosen_col, "--vars": variables,
               "--random": random, "--classes": classes, "--iterations": iterations, "--wtp-space": wtp_space,
               "--se": se}
    if positional:
        if responses is not None or weights is not None:
            raise C2MError("give either DATA (a long choice table) or --responses (project mode), not both")
        if variables is None:
            raise C2MError("DATA mode needs --vars with the attribute columns, e.g. --vars price,range")
        req = EstimateRequest(
            data=Path(positional[0]), id_col=id_col or "id", task_col=task_col or "task", alt_col=alt_col or "alt",
            chosen_col=chosen_col or "chosen", vars=variables, asc=asc, random=random, correlated=correlated,
            draws=draws, draw_type=draw_type, panel=panel, classes=classes, hb=hb, iterations=iterations,
            wtp_space=wtp_space, se=se, seed=seed,
        )
        fitted, result = run_estimate(req)
        if out is not None:
            save_model(fitted, out)
        if json_target is not None:
            _io.write_json(Path(json_target), result)
        elif as_json:
            sys.stdout.write(json.dumps(result, indent=2) + "\n")
            return
        console.print(fitted.summary_text())
        return
    if responses is None:
        raise C2MError("give DATA (a long choice table, e.g. `c2m estimate data.csv --vars a,b`) or --responses FILE")
    used = [k for k, v in general.items() if v is not None] + [k for k, v in {"--asc": asc, "--hb": hb,
                                                                               "--correlated": correlated}.items() if v]
    if used:
        raise C2MError(f"{', '.join(used)} only apply to `c2m estimate DATA`; project mode uses --responses alone")
    from c2m.pipeline import _stages, project_and_text, read_table

    proj, _ = project_and_text(project)
    survey_weights = _stages.survey_weights(read_table(weights)) if weights is not None else None
    model, validation = _stages.estimate(proj, read_table(responses), weights=survey_weights)
    if out is not None:
        save_model(model, out)
    if json_target is not None:
        _io.write_json(Path(json_target), model.to_dict())
    elif as_json:
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
    rule: Annotated[
        str, typer.Option(help="logit (share of preference), first-choice, rfc (randomized first choice) "
                               "or likelihood (purchase likelihood vs None; writes purchase_likelihood.csv).")
    ] = "logit",
    scale: Annotated[float, typer.Option(help="Exponent on utilities (logit, rfc, likelihood).")] = 1.0,
    out: Annotated[Path, typer.Option(help="Output folder for shares.csv and volumes.csv.")] = Path("."),
) -> None:
    """Shares of preference and volumes of a product line against the competitors and None."""
    from c2m.choice import load_model
    from c2m.domain import check_profile
    from c2m.pipeline import _stages, project_and_text, read_json

    proj, _ = project_and_text(project)
    rules = {"logit": "logit", "first-choice": "first_choice", "first_choice": "first_choice", "rfc": "rfc",
             "likelihood": "likelihood"}
    if rule not in rules:
        raise C2MError(f"--rule: unknown rule {rule!r}; expected logit, first-choice, rfc or likelihood")
    sim = _stages.simulator_for_model(proj, load_model(model), seed=seed, rule=rules[rule], scale=scale)
    variants = read_json(line).get("variants")
    if not variants:
        raise C2MError(f"{line}: no 'variants' list")
    profiles = [check_profile(proj, v["profile"], where=f"{line}: variants[{i}].profile")
                for i, v in enumerate(variants)]
    names = [str(v.get("name", f"variant {i + 1}")) for i, v in enumerate(variants)]
    shares = sim.shares(profiles, names=names)
    console.print(f"rule: {rules[rule].replace('_', '-')}, scale {sim.scale:g}")
    if not sim.sums_to_one:
        _io.write_csv(out / "purchase_likelihood.csv", shares)
        console.print(shares)
        console.print(f"wrote {out / 'purchase_likelihood.csv'} (likelihoods do not sum to 1: no volumes.csv)")
        return
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
    sim = _stages.simulator_for_model(proj, load_model(model), seed=seed)
    solution = _stages.optimize(proj, sim, n_variants=variants, objective=objective, seed=seed)
    definition = solution.to_dict()
    _io.write_json(out, definition)
    _print_line(definition)
    console.print(f"wrote {out}")


@app.command()
def forecast(
    volumes: Annotated[Path | None, typer.Option(help="Before launch: volumes.csv from `c2m simulate`.")] = None,
    preorders: Annotated[Path | None, typer.Option(help="Observed pre-orders (csv), with --volumes.")] = None,
    orders: Annotated[
        Path | None, typer.Option(help="After launch: weekly orders (week, the --keys columns, orders).")
    ] = None,
    keys: Annotated[str, typer.Option(help="With --orders: bottom series keys, top down.")] = "city",
    levels: Annotated[
        str | None,
        typer.Option(help="With --orders: levels to reconcile, ';'-separated key lists, e.g. 'province;variant'."),
    ] = None,
    method: Annotated[str, typer.Option(help="With --orders: bottom_up, ols, wls_struct or wls_var.")] = "wls_struct",
    backtest: Annotated[int, typer.Option(min=0, help="With --orders: also backtest from N past origins.")] = 0,
    weeks: Annotated[int, typer.Option(min=1, help="Horizon in weeks.")] = 52,
    seed: SeedOption = 0,
    out: Annotated[Path, typer.Option(help="Output file.")] = Path("forecast.csv"),
) -> None:
    """Weekly demand: before launch by diffusion of simulated volumes; after launch from orders, reconciled."""
    from c2m.pipeline import read_table

    if (volumes is None) == (orders is None):
        raise C2MError("forecast: give either --volumes (before launch) or --orders (after launch)")
    if orders is not None:
        import polars as pl

        from c2m.forecast import backtest_sales, forecast_sales

        key_list = [k.strip() for k in keys.split(",") if k.strip()]
        level_list = None
        if levels is not None:
            level_list = [[k.strip() for k in part.split(",") if k.strip()] for part in levels.split(";")]
        table = read_table(orders, required=["week", "orders", *key_list])
        result = forecast_sales(table, key_list, levels=level_list, horizon=weeks, method=method, seed=seed)
        _io.write_csv(out, result)
        total = result.filter(pl.col("level") == "total")["forecast"].sum()
        console.print(f"wrote {out}: {total:,.0f} orders forecast over {weeks} weeks, reconciled ({method})")
        if backtest:
            scores = backtest_sales(table, key_list, levels=level_list, horizon=min(weeks, 4), n_origins=backtest,
                                    method=method, seed=seed)
            target = out.with_name(out.stem + "_backtest.csv")
            _io.write_csv(target, scores)
            console.print(f"wrote {target}: MASE and 90% interval coverage by level")
        return
    from c2m.forecast import forecast_demand

    assert volumes is not None
    table = read_table(volumes, required=["variant", "city", "annual_volume"])
    observed = read_table(preorders) if preorders is not None else None
    result = forecast_demand(table, horizon_weeks=weeks, preorders=observed, seed=seed)
    _io.write_csv(out, result)
    console.print(f"wrote {out}: {result['demand'].sum():,.0f} units over {weeks} weeks")


@app.command()
def plan(
    forecast_file: Annotated[Path, typer.Option("--forecast", help="forecast.csv from `c2m forecast`.")],
    capacity: Annotated[int, typer.Option(min=1, help="Units per week at full rate.")] = 2500,
    ramp_weeks: Annotated[int, typer.Option(min=0, help="Weeks for the plant to ramp up to full rate.")] = 8,
    items: Annotated[str, typer.Option(help="Plan by these forecast columns, e.g. variant,colour,battery.")] = (
        "variant"
    ),
    pack_supply: Annotated[
        str | None,
        typer.Option(help="Battery packs delivered per week by type, e.g. '42kWh=800,56kWh=600' (the `battery` item)."),
    ] = None,
    pack_column: Annotated[str, typer.Option(help="The item column naming the battery pack.")] = "battery",
    changeover_cost: Annotated[float, typer.Option(min=0, help="Cost of each week an item is built at all.")] = 0.0,
    allocate_to_cities: Annotated[
        bool, typer.Option("--allocate", help="Also allocate builds to cities (allocation.csv) and report service.")
    ] = False,
    within_weeks: Annotated[int, typer.Option(min=0, help="Service level: delivered within N weeks of ordering.")] = 4,
    scenarios: Annotated[
        bool, typer.Option("--what-if", help="Also plan capacity +20%, a colour dropped, half a pack's supply.")
    ] = False,
    out: Annotated[Path, typer.Option(help="Output file.")] = Path("build_plan.csv"),
) -> None:
    """Production plan by week and item within the plant's capacity (and battery supply); delivery allocation."""
    from c2m.forecast import allocate, build_plan, service_level, standard_scenarios, what_if
    from c2m.pipeline import read_table

    item_list = [k.strip() for k in items.split(",") if k.strip()]
    table = read_table(forecast_file, required=["week", *item_list, "city", "demand"])
    supply = _pack_supply_option(pack_supply) if pack_supply is not None else None
    result = build_plan(
        table, capacity_per_week=capacity, ramp_weeks=ramp_weeks, items=item_list,
        pack_column=pack_column if supply is not None else None, pack_supply=supply, changeover_cost=changeover_cost,
    )
    _io.write_csv(out, result)
    console.print(f"wrote {out}: {result['build'].sum():,.0f} units planned")
    if allocate_to_cities:
        allocation = allocate(result, table, items=item_list)
        target = out.with_name("allocation.csv")
        _io.write_csv(target, allocation)
        level = service_level(allocation, within_weeks=within_weeks)
        on_time = float(level["on_time"].item()) if level.height else 1.0
        console.print(f"wrote {target}: {on_time:.1%} of orders delivered within {within_weeks} week(s)")
    if scenarios:
        runs = standard_scenarios(table, item_list, pack_column=pack_column if supply is not None else None)
        summary = what_if(
            table, runs, items=item_list, capacity_per_week=capacity, ramp_weeks=ramp_weeks,
            pack_column=pack_column if supply is not None else None, pack_supply=supply,
            within_weeks=within_weeks, changeover_cost=changeover_cost,
        )
        target = out.with_name("what_if.csv")
        _io.write_csv(target, summary)
        console.print(summary)
        console.print(f"wrote {target}")


def _pack_supply_option(text: str) -> dict[str, float]:
    supply: dict[str, float] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            supply[name.strip()] = float(value)
        except ValueError:
            raise C2MError(f"--pack-supply: expected TYPE=PACKS_PER_WEEK pairs, got {part!r}") from None
        if not name.strip() or supply[name.strip()] < 0:
            raise C2MError(f"--pack-supply: expected TYPE=PACKS_PER_WEEK >= 0, got {part!r}")
    return supply


@app.command()
def tco(
    project: ProjectOption = None,
    km_per_month: Annotated[float, typer.Option(min=0, help="Kilometres driven per month.")] = 1500.0,
    rent: Annotated[float | None, typer.Option(min=0, help="A plan of your own: monthly rent (yuan).")] = None,
    cap_km: Annotated[float | None, typer.Option(min=0, help="Its km cap per month (none: unlimited).")] = None,
    overage: Annotated[float, typer.Option(min=0, help="Its price per km above the cap.")] = 0.0,
    buy_price: Annotated[float | None, typer.Option(min=0, help="Its pack's price (with --rent).")] = None,
    months: Annotated[int, typer.Option(min=1, help="Months to compare.")] = 96,
    out: Annotated[Path | None, typer.Option(help="Write the month-by-month table here (csv).")] = None,
) -> None:
    """Battery rent versus buy: monthly cost of each rent plan and the month renting overtakes buying."""
    import polars as pl

    from c2m.battery import plan_cost_table, rent_vs_buy
    from c2m.pipeline import project_and_text

    if rent is not None:
        if buy_price is None:
            raise C2MError("--rent needs --buy-price (the price of buying the pack)")
        table = plan_cost_table("custom", "custom", rent, cap_km, overage, km_per_month, buy_price, months)
    else:
        if cap_km is not None or buy_price is not None or overage:
            raise C2MError("--cap-km, --overage and --buy-price describe a plan of your own: give --rent too")
        table = rent_vs_buy(project_and_text(project)[0], monthly_km=km_per_month, months=months)
    summary = table.group_by("pack", "plan", maintain_order=True).agg(
        pl.col("monthly_rent").first(), pl.col("buy_cost").first().alias("buy_price"),
        pl.col("break_even_month").first(),
    )
    view = Table(title=f"rent vs buy at {km_per_month:,.0f} km/month over {months} months")
    for column in ("pack", "plan", "monthly rent", "buy price", "break-even month"):
        view.add_column(column)
    for row in summary.iter_rows(named=True):
        month = row["break_even_month"]
        view.add_row(row["pack"], row["plan"], f"{row['monthly_rent']:,.0f}", f"{row['buy_price']:,.0f}",
                     str(month) if month is not None else f"> {months}")
    console.print(view)
    if out is not None:
        _io.write_csv(out, table)
        console.print(f"wrote {out}")


@app.command("battery-life")
def battery_life(
    project: ProjectOption = None,
    pack: Annotated[str | None, typer.Option(help="Battery pack id (default: the fleet pack).")] = None,
    km_per_month: Annotated[float, typer.Option(min=0, help="Mean km per car per month.")] = 1500.0,
    vehicles: Annotated[str, typer.Option(help="Cars in service by year, e.g. 2000,6000,12000,12000.")] = (
        "2000,6000,12000,12000,12000,12000,12000,12000,12000,12000"
    ),
    rotation: Annotated[str, typer.Option(help="even (the swap network evens ageing) or none.")] = "even",
    retire_at: Annotated[float, typer.Option(help="Retire packs below this state of health.")] = 0.8,
    temperature: Annotated[str, typer.Option(help="cool, mild or hot.")] = "mild",
    seed: SeedOption = 0,
    out: Annotated[Path | None, typer.Option(help="Write the yearly table here (csv).")] = None,
) -> None:
    """Packs bought, in service, retired to second life and recycled, year by year; retirement age."""
    from c2m.battery import fleet_pack, retirement_month, simulate_pack_fleet
    from c2m.pipeline import project_and_text

    proj, _ = project_and_text(project)
    chosen = fleet_pack(proj, pack)
    try:
        fleet = [int(v) for v in vehicles.split(",") if v.strip()]
    except ValueError:
        raise C2MError(f"--vehicles: expected whole numbers separated by commas, got {vehicles!r}") from None
    table = simulate_pack_fleet(chosen, fleet, km_per_month=km_per_month, rotation=rotation, retire_at=retire_at,
                                temperature=temperature, seed=seed)
    years = retirement_month(chosen, km_per_month, threshold=retire_at, temperature=temperature) / 12
    console.print(table)
    console.print(f"{chosen.id} ({chosen.chemistry}): SoH {retire_at:.0%} after {years:.1f} years at "
                  f"{km_per_month:,.0f} km/month ({temperature})")
    if out is not None:
        _io.write_csv(out, table)
        console.print(f"wrote {out}")


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


admin_app = typer.Typer(help="Staff accounts of the platform's admin pages (/admin).", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
DatabaseOption = Annotated[
    str | None, typer.Option(help="SQLAlchemy URL of the platform database. Default: $C2M_DATABASE_URL or ./c2m.db.")
]


def _admin_auth(database_url: str | None) -> Any:
    from c2m.platform import Settings, make_engine, upgrade
    from c2m.platform._auth import AdminAuth

    url = database_url or Settings().database_url
    engine = make_engine(url)
    upgrade(engine)
    return AdminAuth(engine)


@admin_app.command("add-user")
def admin_add_user(
    username: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option(help="admin (everything) or analyst (dashboard, estimate, simulator).")] = (
        "analyst"
    ),
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Create a staff account (the password is asked for twice, or read from stdin; never echoed nor logged)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    _admin_auth(database_url).add_user(username, password, role)
    console.print(f"added {role} {escape(username)}")


@admin_app.command("set-password")
def admin_set_password(
    username: Annotated[str, typer.Argument(help="Login name.")],
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Change a staff password and end that account's sessions."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    _admin_auth(database_url).set_password(username, password)
    console.print(f"password of {escape(username)} changed; its sessions are ended")


@admin_app.command("users")
def admin_users(database_url: DatabaseOption = None) -> None:
    """List staff accounts."""
    table = Table("user", "role")
    for name, role in _admin_auth(database_url).users():
        table.add_row(escape(name), role)
    console.print(table)


@app.command("signals")
def signals_command(
    market: Annotated[Path, typer.Option(help="Market folder (persons.parquet, events/), e.g. from `c2m generate`.")],
    engine: Annotated[str, typer.Option(help="duckdb (one machine, out of core) or spark (spark extra).")] = "duckdb",
    spark_master: Annotated[
        str | None, typer.Option(help="Spark master URL (engine spark); default $SPARK_MASTER, else local[2].")
    ] = None,
    project: Annotated[
        Path | None,
        typer.Option("--project", "-p", help="Project file (TOML); default: the market's project, else the embedded."),
    ] = None,
    by: Annotated[str, typer.Option(help="Interest cells: comma-separated event or person columns.")] = "city",
    segments: Annotated[str, typer.Option(help="Segment profile cells: comma-separated person columns.")] = "city",
    quarantine: Annotated[
        Path | None, typer.Option(help="Write bad event rows to this Parquet file and go on with the good ones.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("c2m-signals"),
) -> None:
    """Interest by level and segment profiles from the behaviour events (DuckDB or Spark)."""
    import time

    from c2m.signals import Signals

    if engine not in ("duckdb", "spark"):
        raise C2MError(f"--engine: expected duckdb or spark, got {engine!r}")
    if spark_master is not None and engine != "spark":
        raise C2MError("--spark-master: only with --engine spark")
    proj = _signals_project(market, project)
    options: dict[str, Any] = {"master": spark_master} if engine == "spark" else {}
    started = time.perf_counter()
    with Signals(market, engine=engine, project=proj, quarantine=quarantine, **options) as sig:
        check = sig.check_events()
        interest = sig.interest_by_level(proj, by=_columns_option(by))
        profiles = sig.segment_profiles(by=_columns_option(segments))
    seconds = time.perf_counter() - started
    _io.write_parquet(out / "interest.parquet", interest)
    _io.write_parquet(out / "segments.parquet", profiles)
    _io.write_json(
        out / "signals.json",
        {
            "engine": engine,
            "market": str(market),
            "rows": check.rows,
            "bad_rows": check.bad_rows,
            "bad_rows_by_reason": {k: v for k, v in check.counts.items() if v},
            "quarantine": str(check.quarantine) if check.quarantine is not None else None,
            "seconds": round(seconds, 3),
        },
    )
    if check.quarantine is not None:
        console.print(f"{check.describe()}; quarantined to {check.quarantine}", highlight=False)
    else:
        console.print(check.describe(), highlight=False)
    console.print(
        f"wrote {out}: interest.parquet ({interest.height:,} rows), segments.parquet ({profiles.height:,} rows), "
        f"signals.json; {engine} {seconds:.1f} s",
        highlight=False,
    )


@app.command("score")
def score_command(
    model: Annotated[Path, typer.Option(help="model.json from `c2m estimate` (any c2m choice model).")],
    line: Annotated[Path, typer.Option(help="product_definition.json (its variants are scored).")],
    market: Annotated[Path, typer.Option(help="Market folder (persons.parquet, events/), e.g. from `c2m generate`.")],
    engine: Annotated[str, typer.Option(help="duckdb (one machine), polars or spark (spark extra).")] = "duckdb",
    spark_master: Annotated[
        str | None, typer.Option(help="Spark master URL (engine spark); default $SPARK_MASTER, else local[2].")
    ] = None,
    project: Annotated[
        Path | None,
        typer.Option("--project", "-p", help="Project file (TOML); default: the market's project, else the embedded."),
    ] = None,
    by: Annotated[str, typer.Option(help="Cells: comma-separated person columns (empty: the whole population).")] = (
        "city"
    ),
    scale: Annotated[float, typer.Option(help="Exponent on utilities (logit).")] = 1.0,
    out: Annotated[Path, typer.Option(help="Output folder for scores.parquet.")] = Path("c2m-score"),
) -> None:
    """Expected shares (and buyers per year) of a line in every city: the model applied to every person."""
    import time

    from c2m.choice import load_model
    from c2m.pipeline import read_json
    from c2m.signals import score_population

    if engine not in ("duckdb", "polars", "spark"):
        raise C2MError(f"--engine: expected duckdb, polars or spark, got {engine!r}")
    if spark_master is not None and engine != "spark":
        raise C2MError("--spark-master: only with --engine spark")
    proj = _signals_project(market, project)
    definition = read_json(line)
    if not isinstance(definition, dict) or not definition.get("variants"):
        raise C2MError(f"{line}: no 'variants' list (expected a product definition from `c2m optimize`)")
    options: dict[str, Any] = {"master": spark_master} if engine == "spark" else {}
    started = time.perf_counter()
    scores = score_population(
        market, proj, load_model(model), definition, by=_columns_option(by), engine=engine, scale=scale, **options
    )
    seconds = time.perf_counter() - started
    _io.write_parquet(out / "scores.parquet", scores)
    ours = scores.filter(kind="ours")
    cells = scores.height // max(1, scores["product"].n_unique())
    persons = int(scores["persons"].sum()) // max(1, scores["product"].n_unique())
    line_share = float((ours["share"] * ours["persons"]).sum()) / max(1, persons)
    text = f"{persons:,} persons in {cells:,} cell(s); line share {line_share:.1%}"
    if "buyers" in scores.columns and ours["buyers"].null_count() == 0:
        text += f", {float(ours['buyers'].sum()):,.0f} buyers/yr"
    console.print(text, highlight=False)
    console.print(
        f"wrote {out / 'scores.parquet'} ({scores.height:,} rows); {engine} {seconds:.1f} s",
        highlight=False,
        soft_wrap=True,
    )


def _columns_option(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def _signals_project(market: Path, path: Path | None) -> Any:
    """The project given, else the one in the market's manifest.json, else the embedded default."""
    from c2m.domain import project_from_dict
    from c2m.pipeline import project_and_text

    manifest = market / "manifest.json"
    if path is not None or not manifest.is_file():
        return project_and_text(path)[0]
    try:
        raw = json.loads(manifest.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise C2MError(f"{manifest}: not valid JSON ({exc})") from None
    if isinstance(raw, dict) and isinstance(raw.get("project"), dict):
        return project_from_dict(raw["project"], source=f"{manifest}: project")
    return project_and_text(None)[0]


@app.command("weight")
def weight_command(
    survey: Annotated[Path, typer.Option(help="Respondents to weight (.parquet or .csv), one row each.")],
    population: Annotated[Path, typer.Option(help="Population members (.parquet or .csv), e.g. persons.parquet.")],
    margins: Annotated[
        str,
        typer.Option(
            help="Comma-separated margin columns, e.g. city_tier,age,income (age, income: the *_band columns; "
            "city_tier: from city and the project's cities)."
        ),
    ],
    trim: Annotated[
        str, typer.Option(help="LOW,HIGH: clip weights to these multiples of the mean; 'none' for no trimming.")
    ] = "0.2,5",
    project: ProjectOption = None,
    out: Annotated[
        Path, typer.Option(help="Output file (.parquet or .csv): the survey with a `weight` column.")
    ] = Path("weighted.parquet"),
) -> None:
    """Rake survey respondents to the population's margins; print the design effect and effective sample size."""
    from c2m.pipeline import read_table
    from c2m.signals import rake

    if out.suffix not in (".parquet", ".csv"):
        raise C2MError(f"--out {out}: expected a .parquet or .csv file")
    bounds = _trim_option(trim)
    original = read_table(survey)
    people = read_table(population)
    names = _columns_option(margins)
    if not names:
        raise C2MError("--margins: name at least one column, e.g. --margins city_tier,age_band,income_band")
    sample, people, variables = _margin_columns(names, original, survey, people, population, project)
    result = rake(sample, population=people, variables=variables, trim=bounds)
    weighted = result.as_frame(original)
    if out.suffix == ".csv":
        _io.write_csv(out, weighted)
    else:
        _io.write_parquet(out, weighted)
    state = "converged" if result.converged else "did not converge (trimming can stop the margins being met)"
    console.print(
        f"raked {weighted.height:,} respondents on {', '.join(variables)}: {state} in {result.iterations} "
        f"iterations, max margin error {result.max_margin_error:.2e}",
        highlight=False,
    )
    console.print(
        f"design effect {result.design_effect:.3f}, effective sample size {result.effective_sample_size:,.1f}; "
        f"weights {result.weights.min():.3f} to {result.weights.max():.3f} (mean 1); wrote {out}",
        highlight=False,
    )


def _trim_option(text: str) -> tuple[float, float] | None:
    if text.strip().lower() in ("none", "no", "off"):
        return None
    parts = [p.strip() for p in text.split(",")]
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        raise C2MError(f"--trim: expected LOW,HIGH (e.g. 0.2,5) or none, got {text!r}") from None
    if not (0 <= low < 1 < high):
        raise C2MError(f"--trim: expected 0 <= LOW < 1 < HIGH, got {text!r}")
    return low, high


def _margin_columns(
    names: list[str], sample: Any, survey: Path, people: Any, population: Path, project: Path | None
) -> tuple[Any, Any, list[str]]:
    """Resolve margin names in both tables: as given, ``<name>_band`` (age, income), ``city_tier`` from ``city``."""
    import polars as pl

    from c2m.pipeline import project_and_text

    variables: list[str] = []
    for name in names:
        column = name
        if name not in sample.columns and name not in people.columns and f"{name}_band" in sample.columns:
            column = f"{name}_band"
        if column == "city_tier" and "city_tier" not in sample.columns and "city_tier" not in people.columns:
            proj = project_and_text(project)[0]
            tiers = pl.DataFrame(
                {"city": [c.name for c in proj.cities], "city_tier": [f"tier {c.tier}" for c in proj.cities]},
                schema={"city": pl.String, "city_tier": pl.String},
            )
            for table, where in ((sample, survey), (people, population)):
                if "city" not in table.columns:
                    raise C2MError(f"{where}: no column 'city_tier' nor 'city' to derive it; found {table.columns}")
                unknown = sorted(set(table["city"].drop_nulls().cast(pl.String).to_list()) - set(tiers["city"]))
                if unknown:
                    raise C2MError(f"{where}: column 'city' has city {unknown[0]!r} not in the project's cities")
            sample = sample.join(tiers, on="city", how="left", maintain_order="left")
            people = people.join(tiers, on="city", how="left", maintain_order="left")
        for table, where in ((sample, survey), (people, population)):
            if column not in table.columns:
                raise C2MError(f"--margins: column {name!r} not found in {where}; found {table.columns}")
        variables.append(column)
    if len(set(variables)) != len(variables):
        raise C2MError(f"--margins: repeated column in {names}")
    return sample, people, variables


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
