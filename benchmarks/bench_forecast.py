"""Benchmark: reconciled weekly sales forecast and build-plan MILP at the issue's size, plus a backtest.

Synthetic orders with known truth (seeded): 300 cities in 30 provinces, 40 configurations
(2 variants x 5 colours x 4 batteries), weekly orders from each city's launch (the 30
largest cities at week 0, the others staggered over the first half-year) to week 104. The
true weekly mean of a city x configuration is

    M * size(city) * Bass increment(weeks since the city's launch; p, q)
      * annual season (1 + 0.15 cos) * take rate(variant) * (colour) * (battery)

with Zipf-like city sizes, and the orders are negative binomial around it (dispersion 4:
variance = mean + mean^2 / 4). 26 more weeks are drawn for scoring.

Figures:

* forecast: one ``c2m.forecast.forecast_sales`` call on the 104 weeks, horizon 26, over the
  hierarchy total > province > city and variant > colour > battery (12,000 bottom series
  province/city/variant/colour/battery, 12,383 nodes), after a small warm-up call (imports,
  statsforecast's numba compilation; timed separately). Target: under 60 s on 2 cores.
* build plan: ``c2m.forecast.build_plan`` over the reconciled variant/colour/battery
  forecast (26 weeks x 40 configurations), items variant/colour/battery, plant capacity 5%
  below the mean weekly demand, a battery-pack supply per type (the 70 kWh pack 15% short),
  solved twice: without and with a changeover cost per set-up (``--changeover``), under a
  ``--time-limit`` of 30 s. Target: 1% gap in under 30 s. The script wraps
  ``scipy.optimize.milp`` as ``build_plan`` calls it to read the gap HiGHS reports, and
  checks the plan without the solver: capacity, cumulative packs, whole cars, and the
  objective recomputed by ``plan_cost``.
* reconciliation check: every node's forecast against the sum of its bottom series,
  summed with polars group-bys on the key columns (independent of the library's
  summing matrix); largest relative difference.
* backtest: rolling origins (``--origins``, 13 weeks apart, the last at week 104), each a
  26-week forecast (``interval=0.8`` and ``0.95``: two calls) scored on the drawn future
  orders: MASE (scale: the in-sample mean absolute error of the 52-week seasonal naive
  forecast, nodes with a non-zero scale), sMAPE (0/0 counts as 0), both next to the
  seasonal-naive forecast (``y[t - 52]``) and to the true mean ("oracle"), and the
  share of actual orders inside the 80% / 95% intervals, by level.

Usage:

    python benchmarks/bench_forecast.py                  # the issue's size, 1 backtest origin
    python benchmarks/bench_forecast.py --origins 3      # 3 rolling origins (weeks 78, 91, 104)
    python benchmarks/bench_forecast.py --cities 30      # quick
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

START = date(2024, 1, 1)  # a Monday
VARIANTS = {"Standard": 0.62, "Sport": 0.38}
COLOURS = {"white": 0.34, "black": 0.24, "grey": 0.20, "blue": 0.13, "green": 0.09}
BATTERIES = {"lfp42": 0.36, "ncm52": 0.28, "lfp56": 0.22, "ncm70": 0.14}
ITEMS = ("variant", "colour", "battery")
KEYS = ["province", "city", *ITEMS]
LEVELS = [(), ("province",), ("province", "city"), ("variant",), ("variant", "colour"), ITEMS]
SEASON = 52


def bass_cdf(t: np.ndarray, p: float, q: float) -> np.ndarray:
    t = np.maximum(t, 0.0)
    e = np.exp(-(p + q) * t)
    return np.asarray((1 - e) / (1 + q / p * e))


def simulate(
    n_cities: int, n_weeks: int, seed: int, market: float = 700_000.0, p: float = 0.002, q: float = 0.025
) -> dict[str, Any]:
    """True weekly means ``(city, configuration, week)`` and negative binomial orders around them."""
    rng = np.random.default_rng(seed)
    n_provinces = max(1, n_cities // 10)
    rank = np.arange(1, n_cities + 1)
    size = rank**-0.8 * rng.lognormal(0.0, 0.2, n_cities)
    size /= size.sum()
    province = rng.integers(0, n_provinces, n_cities)
    province[:n_provinces] = np.arange(n_provinces)  # every province has a city
    launch = np.where(rank <= 30, 0, rng.integers(0, 27, n_cities))
    t = np.arange(n_weeks, dtype=float)
    age = t[None, :] - launch[:, None]
    increment = np.where(age >= 0, bass_cdf(age + 1, p, q) - bass_cdf(age, p, q), 0.0)
    season = 1 + 0.15 * np.cos(2 * np.pi * (t - 20) / SEASON)
    configs = [(v, c, b) for v in VARIANTS for c in COLOURS for b in BATTERIES]
    take = np.array([VARIANTS[v] * COLOURS[c] * BATTERIES[b] for v, c, b in configs])
    mean = market * size[:, None, None] * take[None, :, None] * (increment * season[None, :])[:, None, :]
    dispersion = 4.0
    orders = rng.negative_binomial(dispersion, dispersion / (dispersion + mean))
    return {"mean": mean, "orders": orders, "launch": launch, "province": province, "configs": configs}


def orders_table(sim: dict[str, Any], n_weeks: int) -> pl.DataFrame:
    """Rows (week, province, city, variant, colour, battery, orders) from each city's launch to ``n_weeks``."""
    orders, launch = sim["orders"], sim["launch"]
    n_cities, n_configs = orders.shape[:2]
    city, config, week = [], [], []
    for c in range(n_cities):
        w = np.arange(min(launch[c], n_weeks - 1), n_weeks)
        city.append(np.full(n_configs * w.size, c))
        config.append(np.repeat(np.arange(n_configs), w.size))
        week.append(np.tile(w, n_configs))
    ci, ki, ti = (np.concatenate(x) for x in (city, config, week))
    weeks = pl.date_range(START, START + timedelta(weeks=n_weeks - 1), "1w", eager=True)
    configs = sim["configs"]
    return pl.DataFrame(
        {
            "week": weeks.gather(ti),
            "province": pl.Series([f"P{p:02d}" for p in sim["province"]]).gather(ci),
            "city": pl.Series([f"C{c:03d}" for c in range(n_cities)]).gather(ci),
            **{k: pl.Series([cfg[j] for cfg in configs]).gather(ki) for j, k in enumerate(ITEMS)},
            "orders": orders[ci, ki, ti],
        }
    ).sort([*KEYS, "week"])


def node_values(sim: dict[str, Any], cube: np.ndarray) -> tuple[Any, np.ndarray]:
    """The hierarchy (public ``build_hierarchy``) and every node's series from a ``(city, config, week)`` cube."""
    from c2m.forecast import build_hierarchy

    n_cities, n_configs = cube.shape[:2]
    bottom = pl.DataFrame(
        {
            "province": [f"P{sim['province'][c]:02d}" for c in range(n_cities) for _ in range(n_configs)],
            "city": [f"C{c:03d}" for c in range(n_cities) for _ in range(n_configs)],
            **{k: [cfg[j] for _ in range(n_cities) for cfg in sim["configs"]] for j, k in enumerate(ITEMS)},
        }
    )
    order = bottom.with_row_index("_i").sort(KEYS)["_i"].to_numpy()
    hierarchy = build_hierarchy(bottom.sort(KEYS), LEVELS)
    flat = cube.reshape(n_cities * n_configs, -1)[order]
    return hierarchy, hierarchy.aggregate(flat)


def forecast_matrix(result: pl.DataFrame, hierarchy: Any, column: str, horizon: int) -> np.ndarray:
    """``(n_nodes, horizon)`` of one column of ``forecast_sales``'s output, in hierarchy node order."""
    labels = result["node"].gather_every(horizon)
    assert labels.to_list() == hierarchy.nodes["node"].to_list(), "node order differs from build_hierarchy"
    return result[column].to_numpy().reshape(hierarchy.n_nodes, horizon)


def coherence_error(result: pl.DataFrame) -> float:
    """Largest |node forecast - sum of its bottom forecasts| / max(1, |node forecast|), by polars group-bys."""
    bottom = result.filter(pl.col("level") == "/".join(KEYS))
    worst = 0.0
    for level in LEVELS:
        name = "/".join(level) if level else "total"
        sums = bottom.group_by([*level, "week"]).agg(pl.col("forecast").sum().alias("sum"))
        nodes = result.filter(pl.col("level") == name).select(*level, "week", "forecast")
        joined = nodes.join(sums, on=[*level, "week"], how="left") if level else nodes.join(sums, on="week")
        assert joined["sum"].null_count() == 0 and joined.height == nodes.height
        diff = ((joined["forecast"] - joined["sum"]).abs() / joined["forecast"].abs().clip(1.0, None)).max()
        worst = max(worst, float(diff))  # type: ignore[arg-type]
    return worst


def run_forecast(orders: pl.DataFrame, horizon: int, interval: float, n_samples: int) -> tuple[pl.DataFrame, float]:
    from c2m.forecast import forecast_sales

    t0 = time.perf_counter()
    result = forecast_sales(orders, KEYS, levels=LEVELS, horizon=horizon, interval=interval, n_samples=n_samples)
    return result, time.perf_counter() - t0


def warm_up() -> float:
    from c2m.forecast import forecast_sales

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    weeks = [START + timedelta(weeks=w) for w in range(20)]
    tiny = pl.DataFrame(
        {"week": weeks * 2, "city": ["a"] * 20 + ["b"] * 20, "orders": [*rng.poisson(5, 20), *rng.poisson(0.3, 20)]}
    )
    forecast_sales(tiny, ["city"], horizon=2, n_samples=10)
    return time.perf_counter() - t0


def smape(f: np.ndarray, a: np.ndarray) -> np.ndarray:
    denom = np.abs(f) + np.abs(a)
    return np.asarray(np.where(denom > 0, 200 * np.abs(f - a) / np.where(denom > 0, denom, 1), 0.0))


def score_origin(
    history: np.ndarray, actual: np.ndarray, truth: np.ndarray, point: np.ndarray, bands: dict[float, tuple]
) -> dict[str, np.ndarray]:
    """Per node and step: scaled errors of c2m / seasonal naive / true mean, sMAPE, interval hits."""
    horizon = actual.shape[1]
    origin = history.shape[1]
    scale = np.abs(history[:, SEASON:] - history[:, :-SEASON]).mean(axis=1)
    naive = history[:, origin - SEASON : origin - SEASON + horizon]
    ok = scale > 0
    safe = np.where(ok, scale, 1.0)[:, None]
    out = {"ok": np.repeat(ok[:, None], horizon, axis=1)}
    for name, f in (("c2m", point), ("naive", naive), ("oracle", truth)):
        out[f"ase_{name}"] = np.abs(f - actual) / safe
        out[f"smape_{name}"] = smape(f, actual)
    for level, (low, high) in bands.items():
        out[f"hit_{level}"] = (actual >= low - 1e-9) & (actual <= high + 1e-9)
    return out


def backtest(
    sim: dict[str, Any], hierarchy: Any, actual_nodes: np.ndarray, truth_nodes: np.ndarray,
    origins: list[int], horizon: int, n_samples: int, first: dict[float, pl.DataFrame],
) -> pl.DataFrame:
    """Scores by level pooled over ``origins``; ``first`` holds forecasts already made at the last origin."""
    level_of = np.repeat(hierarchy.nodes["level"].to_numpy()[:, None], horizon, axis=1)
    parts = []
    for origin in origins:
        results = {}
        for interval in (0.8, 0.95):
            if origin == origins[-1] and interval in first:
                results[interval] = first[interval]
            else:
                results[interval] = run_forecast(orders_table(sim, origin), horizon, interval, n_samples)[0]
        point = forecast_matrix(results[0.8], hierarchy, "forecast", horizon)
        bands = {iv: (forecast_matrix(r, hierarchy, "low", horizon), forecast_matrix(r, hierarchy, "high", horizon))
                 for iv, r in results.items()}
        window = slice(origin, origin + horizon)
        s = score_origin(actual_nodes[:, :origin], actual_nodes[:, window], truth_nodes[:, window], point, bands)
        parts.append(pl.DataFrame({"level": level_of.ravel(), **{k: v.ravel() for k, v in s.items()}}))
    scored = pl.concat(parts)
    scaled = [f"ase_{n}" for n in ("c2m", "naive", "oracle")]
    order = {name: i for i, name in enumerate(dict.fromkeys(hierarchy.nodes["level"].to_list()))}
    return (
        scored.group_by("level")
        .agg(
            nodes=pl.len() // (horizon * len(origins)),
            **{f"mase_{c[4:]}": pl.col(c).filter(pl.col("ok")).mean() for c in scaled},
            **{c: pl.col(c).mean() for c in ("smape_c2m", "smape_naive", "smape_oracle")},
            cover_80=pl.col("hit_0.8").mean(),
            cover_95=pl.col("hit_0.95").mean(),
        )
        .sort(pl.col("level").replace_strict(order, return_dtype=pl.Int64))
    )


def plan_demand(result: pl.DataFrame) -> pl.DataFrame:
    return (
        result.filter(pl.col("level") == "/".join(ITEMS))
        .with_columns(pl.col("week").rank("dense").cast(pl.Int64).alias("week"))
        .select("week", *ITEMS, demand="forecast")
    )


def run_plan(demand: pl.DataFrame, changeover_cost: float, time_limit: float) -> dict[str, Any]:
    import c2m.forecast._plan as plan_module
    from c2m.forecast import PlanCosts, build_plan, plan_cost

    weekly = demand.group_by("week").agg(pl.col("demand").sum())["demand"]
    capacity = int(0.95 * float(weekly.mean()))  # type: ignore[arg-type]
    packs = demand.group_by("battery").agg(pl.col("demand").sum() / demand["week"].n_unique())
    supply = {b: float(x) * (0.85 if b == "ncm70" else 1.10) for b, x in packs.iter_rows()}
    solved: dict[str, Any] = {}
    real_milp = plan_module.milp

    def recording_milp(*args: Any, **kwargs: Any) -> Any:
        res = real_milp(*args, **kwargs)
        solved.update(res=res, n_vars=len(args[0]), n_int=int(np.sum(kwargs["integrality"])))
        return res

    plan_module.milp = recording_milp  # type: ignore[assignment]
    try:
        t0 = time.perf_counter()
        plan = build_plan(
            demand, capacity_per_week=capacity, ramp_weeks=0, safety_stock_weeks=1.0, items=ITEMS,
            pack_column="battery", pack_supply=supply, changeover_cost=changeover_cost, time_limit=time_limit,
        )
        seconds = time.perf_counter() - t0
    finally:
        plan_module.milp = real_milp  # type: ignore[assignment]
    res = solved["res"]
    # checks without the solver
    by_week = plan.group_by("week").agg(pl.col("build").sum())
    cap_ok = bool((by_week["build"] <= capacity).all())
    used = plan.group_by("battery", "week").agg(pl.col("build").sum()).sort("battery", "week")
    packs_ok = all(
        bool(np.all(np.cumsum(g["build"].to_numpy()) <= np.cumsum(np.full(g.height, supply[b])) + 1e-6))
        for (b,), g in used.group_by("battery")
    )
    wide = plan.sort([*ITEMS, "week"])
    n_items, n_weeks = wide.select(ITEMS).n_unique(), wide["week"].n_unique()
    builds = wide["build"].to_numpy().reshape(n_items, n_weeks).astype(float)
    d = wide["demand"].to_numpy().reshape(n_items, n_weeks)
    cost = plan_cost(builds, d, 1.0, PlanCosts(), changeover_cost=changeover_cost)
    return {
        "seconds": seconds, "gap": res.mip_gap, "objective": res.fun, "bound": res.mip_dual_bound,
        "status": res.message, "nodes": res.mip_node_count, "n_vars": solved["n_vars"], "n_int": solved["n_int"],
        "capacity": capacity, "cap_ok": cap_ok, "packs_ok": packs_ok, "whole": bool((builds == np.round(builds)).all()),
        "cost": cost, "served": 1 - float(plan.filter(pl.col("week") == n_weeks)["backlog"].sum()) / float(d.sum()),
        "setups": int(np.count_nonzero(builds)), "cells": builds.size, "n_items": n_items, "n_weeks": n_weeks,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cities", type=int, default=300)
    ap.add_argument("--weeks", type=int, default=104, help="weeks of history")
    ap.add_argument("--horizon", type=int, default=26)
    ap.add_argument("--origins", type=int, default=1, help="backtest origins, 13 weeks apart, the last at --weeks")
    ap.add_argument("--samples", type=int, default=400, help="sample paths for the intervals (library default)")
    ap.add_argument("--changeover", type=float, default=100.0, help="cost per set-up in the build plan")
    ap.add_argument("--time-limit", type=float, default=30.0, help="build_plan's solver time limit, s (the target)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    load = os.getloadavg()
    n_configs = len(VARIANTS) * len(COLOURS) * len(BATTERIES)
    sim = simulate(args.cities, args.weeks + args.horizon, args.seed)
    orders = orders_table(sim, args.weeks)
    hierarchy, actual_nodes = node_values(sim, sim["orders"].astype(float))
    truth_nodes = node_values(sim, sim["mean"])[1]
    warm = warm_up()
    result, seconds = run_forecast(orders, args.horizon, 0.8, args.samples)
    models = result.filter(pl.col("week") == result["week"].min())["model"].value_counts()
    coherent = coherence_error(result)
    print(f"orders: {orders.height:,} rows, {args.cities} cities x {n_configs} configurations x {args.weeks} weeks; "
          f"{hierarchy.n_bottom:,} bottom series, {hierarchy.n_nodes:,} nodes; "
          + ", ".join(f"{m} {n:,}" for m, n in models.sort("model").iter_rows()))
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"warm-up (imports, numba) {warm:.1f} s")

    demand = plan_demand(result)
    plans = {c: run_plan(demand, c, args.time_limit) for c in (0.0, args.changeover)}

    origins = [args.weeks - 13 * k for k in reversed(range(args.origins))]
    t0 = time.perf_counter()
    scores = backtest(sim, hierarchy, actual_nodes, truth_nodes, origins, args.horizon, args.samples, {0.8: result})
    backtest_s = time.perf_counter() - t0

    size = f"{args.cities} x {n_configs} x {args.weeks} weeks"
    print()
    print(f"{'figure':58}{'c2m':>10}{'target':>10}{'ratio':>8}")
    print(f"{f'forecast, {size}, horizon {args.horizon} (s)':58}{seconds:>10.1f}{60:>10}{60 / seconds:>8.2f}")
    for c, plan in plans.items():
        label = f"build plan, {plan['n_weeks']} weeks x {plan['n_items']} configs, changeover {c:g} (s)"
        print(f"{label:58}{plan['seconds']:>10.1f}{30:>10}{30 / plan['seconds']:>8.2f}")
        print(f"{'  gap reached':58}{plan['gap']:>10.2%}{'1%':>10}")
    print(f"{'reconciliation: max |node - sum of its bottom| / node':58}{coherent:>10.1e}{'0':>10}")
    print(f"{'series (nodes forecast)':58}{hierarchy.n_nodes:>10,}")
    for c, plan in plans.items():
        print(f"\nbuild plan, changeover {c:g}: {plan['status']}; {plan['n_vars']:,} variables "
              f"({plan['n_int']:,} integer), {plan['nodes']} B&B nodes; objective {plan['objective']:,.1f}, "
              f"dual bound {plan['bound']:,.1f}; plan_cost of the builds {plan['cost']:,.1f}")
        print(f"  capacity {plan['capacity']}/week respected: {plan['cap_ok']}; cumulative packs <= supply: "
              f"{plan['packs_ok']}; whole cars: {plan['whole']}; demand served by the last week: "
              f"{plan['served']:.1%}; {plan['setups']} set-ups of {plan['cells']} item-weeks")
    print()
    print(f"backtest: origin(s) at week {', '.join(map(str, origins))}, horizon {args.horizon}, "
          f"{backtest_s:.0f} s (MASE scale: in-sample 52-week seasonal naive MAE)")
    print(f"{'level':38}{'nodes':>6}{'MASE c2m':>9}{'naive':>7}{'oracle':>7}"
          f"{'sMAPE c2m':>10}{'naive':>7}{'oracle':>7}{'cov 80%':>8}{'cov 95%':>8}")
    for r in scores.iter_rows(named=True):
        print(f"{r['level']:38}{r['nodes']:>6}{r['mase_c2m']:>9.2f}{r['mase_naive']:>7.2f}{r['mase_oracle']:>7.2f}"
              f"{r['smape_c2m']:>10.1f}{r['smape_naive']:>7.1f}{r['smape_oracle']:>7.1f}"
              f"{r['cover_80']:>8.3f}{r['cover_95']:>8.3f}")


if __name__ == "__main__":
    main()
