"""Assemble the report: numbers and figures into one self-contained HTML page."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from matplotlib.figure import Figure

from c2m import _io
from c2m.domain import Project, rent_plan_of
from c2m.errors import C2MError

from . import _figures as figs
from ._analysis import Preferences, fit_statistics, preferences
from ._format import (
    fmt_int,
    fmt_int_interval,
    fmt_num,
    fmt_pct,
    fmt_pct_interval,
    fmt_value,
    fmt_yuan,
    fmt_yuan_compact,
)
from ._inputs import ReportInputs, as_dict, validate_inputs
from ._svg import style, to_svg

_TEMPLATES = Path(__file__).parent / "templates"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        int=fmt_int, num=fmt_num, yuan=fmt_yuan, pct=fmt_pct, value=fmt_value, yuan_compact=fmt_yuan_compact
    )
    return env


# ------------------------------------------------------------------ figures


def _figure_builders(inputs: ReportInputs, prefs: Preferences | None) -> dict[str, Callable[[], Figure]]:
    """Every figure the inputs allow, in page order, as deferred builders."""
    out: dict[str, Callable[[], Figure]] = {}
    diagnostics = as_dict(inputs.design_diagnostics)
    counts = None if diagnostics is None else diagnostics.get("level_counts")
    if isinstance(counts, pl.DataFrame) and counts.height:
        labels = {a.name: a.label or a.name for a in inputs.project.attributes} if inputs.project else {}
        out["design_balance"] = lambda: figs.level_balance(counts, labels)
    if inputs.respondents is not None and inputs.respondents.height:
        respondents, population = inputs.respondents, inputs.population
        out["sample_vs_population"] = lambda: figs.sample_vs_population(respondents, population)
    if prefs is not None and prefs.partworths:
        if prefs.importance:
            out["importance"] = lambda: figs.importance(prefs.importance)
        out["partworths"] = lambda: figs.partworths(prefs)
    if inputs.shares is not None and inputs.shares.height:
        shares = inputs.shares
        out["shares"] = lambda: figs.shares(shares)
    if inputs.demand_curve is not None and inputs.demand_curve.height:
        curve = inputs.demand_curve
        out["demand_curve"] = lambda: figs.demand_curve(curve)
    if inputs.sensitivity is not None and inputs.sensitivity.height:
        sensitivity, baseline = inputs.sensitivity, _baseline_share(inputs)
        names = {a.name: a.label or a.name for a in inputs.project.attributes} if inputs.project else {}
        out["tornado"] = lambda: figs.tornado(sensitivity, baseline, names)
    if inputs.forecast is not None and inputs.forecast.height:
        forecast = inputs.forecast
        out["forecast_total"] = lambda: figs.forecast_total(forecast)
        out["forecast_cities"] = lambda: figs.forecast_cities(forecast)
    if (
        inputs.preorders is not None
        and inputs.preorders.height
        and figs.preorder_columns(inputs.preorders)[1]
    ):
        pre = inputs.preorders
        out["preorders"] = lambda: figs.preorders(pre)
    if inputs.build_plan is not None and inputs.build_plan.height:
        plan = inputs.build_plan
        out["build_plan"] = lambda: figs.build_plan(plan)
    stores = _stores(inputs)
    if (inputs.swap_plan is not None and inputs.swap_plan.height) or stores is not None:
        swap = inputs.swap_plan
        out["swap_map"] = lambda: figs.swap_map(swap, stores)
    if inputs.rent_vs_buy is not None and inputs.rent_vs_buy.height:
        rvb = inputs.rent_vs_buy
        out["rent_vs_buy"] = lambda: figs.rent_vs_buy(rvb)
    return out


def _stores(inputs: ReportInputs) -> pl.DataFrame | None:
    return inputs.stores if inputs.stores is not None and inputs.stores.height else None


def _baseline_share(inputs: ReportInputs) -> float | None:
    """The share the tornado is centred on: the sensitivity's base row, else the first variant's."""
    sensitivity = inputs.sensitivity
    if sensitivity is not None and "is_base" in sensitivity.columns:
        base = sensitivity.filter(pl.col("is_base").cast(pl.Boolean).fill_null(False))
        if base.height:
            return float(np.mean(base["share"].cast(pl.Float64).to_numpy()))
    definition = inputs.product_definition
    if definition and definition.get("variants"):
        share = definition["variants"][0].get("share")
        return float(share) if isinstance(share, int | float) else None
    return None


def _preferences(inputs: ReportInputs) -> Preferences | None:
    return None if inputs.model is None else preferences(inputs.model, inputs.project)


def render_figures(inputs: ReportInputs) -> dict[str, str]:
    """Every figure the inputs allow, as ``name -> <svg> text`` in page order."""
    validate_inputs(inputs)
    return _render(inputs, _preferences(inputs))


def _render(inputs: ReportInputs, prefs: Preferences | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, builder in _figure_builders(inputs, prefs).items():
        with style():
            fig = builder()
        out[name] = to_svg(fig, name)
    return out


def write_figures(inputs: ReportInputs, directory: str | Path) -> list[Path]:
    """Write every figure as ``directory/name.svg`` (a standalone SVG file each)."""
    directory = Path(directory)
    paths = []
    for name, svg in render_figures(inputs).items():
        text = svg if "xmlns=" in svg else svg.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg"', 1)
        paths.append(_io.write_text(directory / f"{name}.svg", text + "\n"))
    return paths


# ------------------------------------------------------------------ context


def _levels_of(project: Project | None, profile: dict[str, Any]) -> list[dict[str, str]]:
    chips = []
    for attr, level in profile.items():
        if project is None:
            if attr in ("price",):
                continue
            chips.append({"text": str(level), "title": f"{attr}: {level}"})
            continue
        try:
            attribute = project.attribute(attr)
        except KeyError:
            chips.append({"text": str(level), "title": f"{attr}: {level}"})
            continue
        if attribute.kind == "numeric" or attribute.role == "ownership":
            continue
        try:
            label = attribute.level(str(level)).label or str(level)
        except KeyError:
            label = str(level)
        chips.append({"text": label.split(":")[0], "title": f"{attribute.label or attr}: {label}"})
    return chips


def _battery_text(project: Project | None, variant: dict[str, Any]) -> str:
    profile = variant.get("profile") or {}
    if project is not None:
        try:
            plan = rent_plan_of(project, profile)
        except (KeyError, C2MError):  # a profile from another project: fall back on the file's field
            plan = None
        if plan is not None:
            _name, fee, cap, _ = plan
            cap_text = f"{cap:,.0f} km/month" if cap else "unlimited km"
            return f"Rent {fmt_yuan(fee)}/month, {cap_text}"
        owner = project.attribute_by_role("ownership")
        if owner is None or owner.name not in profile:
            return "\u2014"
    rent = variant.get("rent_plan")
    return f"Rent, {rent} plan" if rent else "Buy"


def _summary(inputs: ReportInputs) -> dict[str, Any] | None:
    definition = inputs.product_definition
    if definition is None and inputs.shares is None:
        return None
    tiles: list[dict[str, str]] = []
    rows: list[dict[str, Any]] = []
    headline = ""
    if definition is not None:
        line = definition.get("line") or {}
        variants = definition["variants"]
        for v in variants:
            margin, volume = v.get("unit_margin"), v.get("annual_volume")
            profit = (
                margin * volume
                if isinstance(margin, int | float) and isinstance(volume, int | float)
                else None
            )
            rows.append(
                {
                    "name": v["name"],
                    "levels": _levels_of(inputs.project, v["profile"]),
                    "price": fmt_yuan(v["price"]),
                    "battery": _battery_text(inputs.project, v),
                    "share": fmt_pct(v.get("share")),
                    "share_ci": _range(v.get("share_low"), v.get("share_high"), fmt_pct),
                    "volume": fmt_int(volume),
                    "volume_ci": _range(v.get("annual_volume_low"), v.get("annual_volume_high"), fmt_int),
                    "margin": fmt_yuan(margin),
                    "profit": fmt_yuan_compact(profit),
                }
            )
        if line:
            tiles += [
                {
                    "label": "Share of preference",
                    "value": fmt_pct(line.get("share")),
                    "note": _interval_note(line.get("share_low"), line.get("share_high")),
                },
                {"label": "Cars per year", "value": fmt_int(line.get("annual_volume")), "note": "whole line"},
                {
                    "label": "Revenue per year",
                    "value": fmt_yuan_compact(line.get("revenue")),
                    "note": fmt_yuan(line.get("revenue")),
                },
                {
                    "label": "Profit per year",
                    "value": fmt_yuan_compact(line.get("profit")),
                    "note": f"after {fmt_yuan(line.get('fixed_cost'))} fixed cost",
                },
            ]
        n = len(variants)
        headline = (
            f"Build {n} variant{'s' if n != 1 else ''}"
            + (f" of the {inputs.project.product.name}" if inputs.project is not None else "")
            + (
                f": together they win {fmt_pct(line.get('share'))} of preference, about "
                f"{fmt_int(line.get('annual_volume'))} cars a year and "
                f"{fmt_yuan_compact(line.get('profit'))} profit a year."
                if line
                else "."
            )
        )
        gap = definition.get("gap")
        if isinstance(gap, int | float):
            method = definition.get("method") or "search"
            objective = definition.get("objective") or "profit"
            tiles.append(
                {
                    "label": "Optimality gap",
                    "value": fmt_pct(gap, 2),
                    "note": f"{method}, maximising {objective}",
                }
            )
    elif inputs.shares is not None:
        ours = inputs.shares.filter(pl.col("kind") == "ours")
        total = float(ours["share"].sum())
        tiles.append(
            {"label": "Our share of preference", "value": fmt_pct(total), "note": f"{ours.height} products"}
        )
    if inputs.forecast is not None and inputs.forecast.height:
        weeks = inputs.forecast["week"].n_unique()
        tiles.append(
            {
                "label": f"Demand, first {weeks} weeks",
                "value": fmt_int(inputs.forecast["demand"].sum()),
                "note": "forecast, all cities",
            }
        )
    if inputs.swap_plan is not None and inputs.swap_plan.height:
        stations = inputs.swap_plan.filter(pl.col("station").cast(pl.Boolean).fill_null(False))
        note = f"of {inputs.swap_plan.height:,} stores"
        if "capital_cost" in stations.columns:
            note += f"; {fmt_yuan_compact(stations['capital_cost'].sum())} capital"
        tiles.append({"label": "Swap stations", "value": fmt_int(stations.height), "note": note})
    return {"headline": headline, "tiles": tiles, "rows": rows}


def _range(low: Any, high: Any, fmt: Callable[[Any], str]) -> str:
    if isinstance(low, int | float) and isinstance(high, int | float):
        return f"{fmt(low)}\u2013{fmt(high)}"
    return ""


def _interval_note(low: Any, high: Any) -> str:
    if isinstance(low, int | float) and isinstance(high, int | float):
        return f"95% interval {fmt_pct(low)}\u2013{fmt_pct(high)}"
    return ""


def _survey(inputs: ReportInputs) -> dict[str, Any] | None:
    diagnostics = as_dict(inputs.design_diagnostics)
    if diagnostics is None and inputs.respondents is None:
        return None
    design_rows: list[tuple[str, str]] = []
    if diagnostics is not None:
        labels = [
            ("method", "Design method"),
            ("n_versions", "Questionnaire versions"),
            ("n_tasks", "Choice tasks per respondent"),
            ("n_alts", "Products per task"),
            ("d_error", "D-error (lower is better)"),
            ("none_option", "\u201cNone of these\u201d offered"),
        ]
        for key, label in labels:
            value = diagnostics.get(key)
            if value is not None:
                text = fmt_num(value, 4) if key == "d_error" else fmt_value(value)
                design_rows.append((label, text))
    sample_note = ""
    if inputs.respondents is not None:
        n = inputs.respondents.height
        cities = inputs.respondents["city"].n_unique()
        sample_note = f"{n:,} respondents from {cities:,} cities"
        if inputs.population is not None and inputs.population.height:
            gap = _largest_gap(inputs.respondents, inputs.population)
            if gap is not None:
                city, s, p = gap
                sample_note += (
                    f"; the largest difference from the population ({inputs.population.height:,} people) "
                    f"is {city}: {fmt_pct(s)} of the sample vs {fmt_pct(p)} of the population."
                )
        else:
            sample_note += "."
    return {"design_rows": design_rows, "sample_note": sample_note}


def _largest_gap(sample: pl.DataFrame, population: pl.DataFrame) -> tuple[str, float, float] | None:
    s = sample.group_by("city").agg(s=pl.len()).with_columns(pl.col("s") / pl.col("s").sum())
    p = population.group_by("city").agg(p=pl.len()).with_columns(pl.col("p") / pl.col("p").sum())
    both = p.join(s, on="city", how="full", coalesce=True).fill_null(0.0)
    if not both.height:
        return None
    both = both.with_columns(gap=(pl.col("s") - pl.col("p")).abs()).sort(
        ["gap", "city"], descending=[True, False]
    )
    row = both.row(0, named=True)
    return str(row["city"]), float(row["s"]), float(row["p"])


def _preferences_context(prefs: Preferences | None, inputs: ReportInputs) -> dict[str, Any] | None:
    if prefs is None:
        return None
    rows = []
    previous = None
    for pw in prefs.partworths:
        ci = "" if pw.low is None or pw.high is None else f"{pw.low:,.3f} to {pw.high:,.3f}"
        rows.append(
            {
                "attribute": pw.attribute_label,
                "level": pw.level_label,
                "partworth": "0 (reference)" if pw.reference else f"{pw.partworth:,.3f}",
                "ci": ci,
                "wtp": "" if pw.wtp is None or pw.reference else fmt_yuan(pw.wtp),
                "positive": pw.partworth > 0,
                "first": pw.attribute != previous,
            }
        )
        previous = pw.attribute
    top = prefs.importance[0] if prefs.importance else None
    note = ""
    if top is not None:
        note = f"{top.attribute_label} matters most ({fmt_pct(top.share)} of the total part-worth range)."
    wtp_note = ""
    if prefs.price_coef is not None and prefs.price_scale:
        if prefs.price_coef < 0:
            per_unit = -1.0 / prefs.price_coef * prefs.price_scale
            wtp_note = (
                "Willingness to pay = \u2212part-worth / price coefficient \u00d7 price scale; "
                f"one unit of utility is worth {fmt_yuan(per_unit)} to the average buyer."
            )
        else:
            wtp_note = "The price coefficient is not negative, so willingness to pay is not defined."
    none_note = ""
    if prefs.none_coef is not None:
        none_note = f"\u201cNone of these\u201d constant: {prefs.none_coef:,.3f}" + (
            f" (s.e. {prefs.none_se:,.3f})." if prefs.none_se is not None else "."
        )
    coefficients = [
        {
            "feature": r["feature"],
            "coef": fmt_num(r["coef"], 4),
            "se": fmt_num(r["se"], 4),
            "z": fmt_num(r["z"], 2),
            "p": "<0.001" if isinstance(r["p"], float) and r["p"] < 0.001 else fmt_num(r["p"], 3),
        }
        for r in prefs.coefficients
    ]
    importance = [
        {"attribute": i.attribute_label, "share": fmt_pct(i.share), "range": fmt_num(i.range, 3)}
        for i in prefs.importance
    ]
    return {
        "rows": rows,
        "note": note,
        "fit_note": _fit_note(inputs.model or {}),
        "wtp_note": wtp_note,
        "none_note": none_note,
        "coefficients": coefficients,
        "importance": importance,
        "has_wtp": any(r["wtp"] for r in rows),
        "decoded": inputs.project is not None,
    }


RHO2 = "McFadden \u03c1\u00b2"


def _fit_note(model: dict[str, Any]) -> str:
    stats = dict(fit_statistics(model))
    parts = []
    if "Choice observations" in stats:
        parts.append(f"{fmt_int(stats['Choice observations'])} choices")
    if "Respondents" in stats:
        parts.append(f"{fmt_int(stats['Respondents'])} respondents")
    text = f"{stats.get('Model', 'Choice model')}"
    if parts:
        text += " fitted on " + " from ".join(parts)
    rho2 = stats.get(RHO2)
    if rho2 is not None:
        text += f"; McFadden \u03c1\u00b2 = {fmt_num(rho2, 3)}"
    if stats.get("Converged") is False:
        text += "; WARNING: the estimation did not converge"
    return text + "."


def _market(inputs: ReportInputs) -> dict[str, Any] | None:
    if inputs.shares is None and inputs.demand_curve is None and inputs.sensitivity is None:
        return None
    share_rows = []
    if inputs.shares is not None:
        order = {"ours": 0, "competitor": 1, "none": 2}
        data = sorted(
            inputs.shares.iter_rows(named=True), key=lambda r: (order.get(r["kind"], 3), -(r["share"] or 0.0))
        )
        for r in data:
            share_rows.append(
                {
                    "product": r["product"],
                    "kind": r["kind"],
                    "share": fmt_pct_interval(r["share"], r.get("share_low"), r.get("share_high")),
                }
            )
    curve_notes = []
    if inputs.demand_curve is not None:
        for name, (price, profit) in figs.profit_max(inputs.demand_curve).items():
            who = f"{name}: " if name else ""
            curve_notes.append(
                f"{who}profit peaks at a price of {fmt_yuan(price)} ({fmt_yuan_compact(profit)} a year)."
            )
    tornado_note = ""
    if inputs.sensitivity is not None and inputs.sensitivity.height:
        sensitivity = inputs.sensitivity
        if "prohibited" in sensitivity.columns:
            sensitivity = sensitivity.filter(~pl.col("prohibited").cast(pl.Boolean).fill_null(False))
        spans = (
            sensitivity.group_by("attribute")
            .agg(span=pl.col("share").max() - pl.col("share").min())
            .sort(["span", "attribute"], descending=[True, False])
        )
        top = spans.row(0, named=True)
        label = str(top["attribute"])
        if inputs.project is not None and label in inputs.project.attribute_names:
            label = inputs.project.attribute(label).label or label
        tornado_note = (
            f"Changing {label.lower()} moves the share most: by up to {fmt_num(100 * top['span'], 1)} points."
        )
    return {"share_rows": share_rows, "curve_notes": curve_notes, "tornado_note": tornado_note}


def _forecast(inputs: ReportInputs) -> dict[str, Any] | None:
    if inputs.forecast is None and inputs.preorders is None:
        return None
    note = ""
    if inputs.forecast is not None and inputs.forecast.height:
        f = inputs.forecast
        weekly = f.group_by("week").agg(pl.col("demand").sum()).sort("week")
        peak = weekly.sort(["demand", "week"], descending=[True, False]).row(0, named=True)
        total = float(f["demand"].sum())
        low = float(f["demand_low"].sum()) if "demand_low" in f.columns else None
        high = float(f["demand_high"].sum()) if "demand_high" in f.columns else None
        note = (
            f"{fmt_int_interval(total, low, high)} cars over {weekly.height} weeks in "
            f"{f['city'].n_unique():,} cities; demand peaks in week {peak['week']} "
            f"at {fmt_int(peak['demand'])} cars."
        )
    pre_note = ""
    if inputs.preorders is not None and inputs.preorders.height:
        _, counts = figs.preorder_columns(inputs.preorders)
        parts = [f"{fmt_int(inputs.preorders[c].sum())} {c}" for c in counts]
        if parts:
            pre_note = "Totals: " + ", ".join(parts) + "."
    cities = (
        figs.top_cities(inputs.forecast) if inputs.forecast is not None and inputs.forecast.height else []
    )
    return {"note": note, "preorders_note": pre_note, "n_cities": len(cities)}


def _build_plan(inputs: ReportInputs) -> dict[str, Any] | None:
    plan = inputs.build_plan
    if plan is None:
        return None
    aggs = [pl.col("build").sum().alias("build")]
    if "demand" in plan.columns:
        aggs.append(pl.col("demand").sum().alias("demand"))
    if "backlog" in plan.columns:
        aggs += [
            pl.col("backlog").sort_by("week").last().alias("final_backlog"),
            pl.col("backlog").max().alias("max_backlog"),
        ]
    per_variant = plan.group_by("variant", maintain_order=True).agg(aggs)
    rows = [
        {
            "variant": r["variant"],
            "build": fmt_int(r["build"]),
            "demand": fmt_int(r.get("demand")),
            "final_backlog": fmt_int(r.get("final_backlog")),
            "max_backlog": fmt_int(r.get("max_backlog")),
        }
        for r in per_variant.iter_rows(named=True)
    ]
    note = ""
    capacity = figs.weekly_capacity(plan)
    if capacity is not None and capacity.height:
        weekly = plan.group_by("week").agg(pl.col("build").sum()).join(capacity, on="week")
        cap_total = float(weekly["capacity"].sum())
        if cap_total > 0:
            util = float(weekly["build"].sum()) / cap_total
            full = int((weekly["build"] >= weekly["capacity"] * 0.999).sum())
            note = (
                f"Capacity used: {fmt_pct(util)} over the plan; "
                f"the line runs full in {full} of {weekly.height} weeks."
            )
    return {
        "rows": rows,
        "note": note,
        "fit_note": _fit_note(inputs.model or {}),
        "has_demand": "demand" in plan.columns,
        "has_backlog": "backlog" in plan.columns,
    }


def _battery(inputs: ReportInputs) -> dict[str, Any] | None:
    if inputs.swap_plan is None and inputs.rent_vs_buy is None and inputs.stores is None:
        return None
    station_rows: list[dict[str, str]] = []
    totals: dict[str, str] | None = None
    swap = inputs.swap_plan
    if swap is not None and swap.height and "city" in swap.columns:
        stations = swap.filter(pl.col("station").cast(pl.Boolean).fill_null(False))
        cols = {
            "lanes": pl.col("lanes").sum() if "lanes" in stations.columns else pl.lit(None),
            "packs": pl.col("packs").sum() if "packs" in stations.columns else pl.lit(None),
            "swaps": pl.col("swaps_per_day").sum() if "swaps_per_day" in stations.columns else pl.lit(None),
            "p_wait": pl.col("p_wait").mean() if "p_wait" in stations.columns else pl.lit(None),
            "capital": pl.col("capital_cost").sum() if "capital_cost" in stations.columns else pl.lit(None),
        }
        by_city = (
            stations.group_by("city")
            .agg(n=pl.len(), **cols)
            .sort(["swaps" if "swaps_per_day" in stations.columns else "n", "city"], descending=[True, False])
        )
        for r in by_city.iter_rows(named=True):
            station_rows.append(
                {
                    "city": r["city"],
                    "n": fmt_int(r["n"]),
                    "lanes": fmt_int(r["lanes"]),
                    "packs": fmt_int(r["packs"]),
                    "swaps": fmt_int(r["swaps"]),
                    "p_wait": fmt_pct(r["p_wait"]),
                    "capital": fmt_yuan(r["capital"]),
                }
            )
        t = stations.select(n=pl.len(), **cols).row(0, named=True)
        totals = {
            "city": f"All cities ({by_city.height})",
            "n": fmt_int(t["n"]),
            "lanes": fmt_int(t["lanes"]),
            "packs": fmt_int(t["packs"]),
            "swaps": fmt_int(t["swaps"]),
            "p_wait": fmt_pct(t["p_wait"]),
            "capital": fmt_yuan(t["capital"]),
        }
    break_even: list[dict[str, str]] = []
    rvb = inputs.rent_vs_buy
    if rvb is not None and "break_even_month" in rvb.columns:
        keys = [c for c in ("pack", "plan") if c in rvb.columns]
        if keys:
            table = rvb.group_by(keys, maintain_order=True).agg(
                pl.col("break_even_month").first(),
                rent_end=pl.col("rent_cost").sort_by("month").last(),
                buy_end=pl.col("buy_cost").sort_by("month").last(),
                months=pl.col("month").max(),
            )
            for r in table.iter_rows(named=True):
                m = r["break_even_month"]
                break_even.append(
                    {
                        "pack": str(r.get("pack", "")),
                        "plan": str(r.get("plan", "")),
                        "break_even": "never"
                        if m is None or (isinstance(m, float) and math.isnan(m))
                        else f"month {fmt_int(m)}",
                        "rent_end": fmt_yuan(r["rent_end"]),
                        "buy_end": fmt_yuan(r["buy_end"]),
                        "months": fmt_int(r["months"]),
                    }
                )
    return {"station_rows": station_rows, "totals": totals, "break_even": break_even}


def _method(inputs: ReportInputs) -> dict[str, Any] | None:
    if inputs.run_info is None:
        return None
    fit = []
    if inputs.model is not None:
        for label, value in fit_statistics(inputs.model):
            if "\u03c1" in label:
                text = fmt_num(value, 4)
            elif isinstance(value, float):
                text = fmt_num(value, 1)
            else:
                text = fmt_value(value)
            fit.append((label, text))
    run = [_run_row(k, v) for k, v in _flatten(inputs.run_info or {})]
    return {"fit": fit, "run": run}


def _run_row(key: str, value: Any) -> tuple[str, str]:
    """A run-info entry for the method table: timings in seconds, names without underscores."""
    for prefix in ("timings_s.", "timings."):
        if key.startswith(prefix) and isinstance(value, int | float) and not isinstance(value, bool):
            return f"time: {key[len(prefix) :]}", f"{value:,.2f} s"
    return key.replace("_", " "), fmt_value(value)


def _flatten(value: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict):
            out += _flatten(item, f"{name}.")
        else:
            out.append((name, item))
    return out


SECTION_TITLES = {
    "summary": "Executive summary",
    "survey": "Survey",
    "preferences": "Preferences",
    "market": "Market",
    "forecast": "Forecast",
    "build": "Build plan",
    "battery": "Battery service",
    "method": "Method notes",
}


def report_context(inputs: ReportInputs) -> dict[str, Any]:
    """Everything the template shows, computed from validated inputs."""
    validate_inputs(inputs)
    prefs = _preferences(inputs)
    sections = {
        "summary": _summary(inputs),
        "survey": _survey(inputs),
        "preferences": _preferences_context(prefs, inputs),
        "market": _market(inputs),
        "forecast": _forecast(inputs),
        "build": _build_plan(inputs),
        "battery": _battery(inputs),
        "method": _method(inputs),
    }
    shown = [key for key, value in sections.items() if value is not None]
    numbered = {key: i + 1 for i, key in enumerate(shown)}
    figures = {name: Markup(svg) for name, svg in _render(inputs, prefs).items()}
    project = inputs.project
    title = f"{project.product.name} \u2014 product decision report" if project else "Product decision report"
    subtitle = project.description if project is not None else ""
    return {
        "title": title,
        "subtitle": subtitle,
        "project_name": project.name if project is not None else "",
        "sections": sections,
        "numbers": numbered,
        "titles": SECTION_TITLES,
        "toc": [(key, numbered[key], SECTION_TITLES[key]) for key in shown],
        "figures": figures,
    }


def build_report(inputs: ReportInputs) -> str:
    """The whole report as one self-contained HTML page (inline CSS and SVG, no scripts)."""
    context = report_context(inputs)
    return _environment().get_template("report.html.j2").render(**context)


def write_report(inputs: ReportInputs, path: str | Path) -> Path:
    """Render the report and write it to ``path`` atomically; nothing is written if rendering fails."""
    html = build_report(inputs)
    return _io.write_text(path, html)
