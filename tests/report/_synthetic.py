"""Small synthetic stage results (any valid values) for the report tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl

from c2m.data import default_project
from c2m.domain import FeatureCoder, Project, variable_cost
from c2m.report import ReportInputs, level_counts

CITIES = ["Shanghai", "Beijing", "Shenzhen", "Guangzhou", "Chengdu", "Hangzhou", "Wuhan", "Xi'an"]


def synthetic_model(project: Project, seed: int = 1) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    names = FeatureCoder.from_project(project).feature_names
    coef = rng.normal(0.0, 0.5, len(names))
    coef[names.index("price")] = -0.9
    coef[names.index("none")] = -1.2
    se = rng.uniform(0.03, 0.12, len(names))
    ll0 = -3300.0
    ll = -2650.0
    return {
        "model": "MultinomialLogit",
        "version": 1,
        "features": names,
        "coef": coef.tolist(),
        "se": se.tolist(),
        "vcov": np.diag(se**2).tolist(),
        "loglik": ll,
        "loglik_null": ll0,
        "n_obs": 3000,
        "n_persons": 300,
        "aic": -2 * ll + 2 * len(names),
        "bic": -2 * ll + np.log(3000) * len(names),
        "converged": True,
    }


def synthetic_inputs(seed: int = 1) -> ReportInputs:
    project = default_project()
    rng = np.random.default_rng(seed)
    attrs = project.attributes
    # survey design: random levels
    n_rows = 20 * 12 * 3
    design = pl.DataFrame(
        {
            "version": np.repeat(np.arange(1, 21), 36),
            "task": np.tile(np.repeat(np.arange(1, 13), 3), 20),
            "alt": np.tile(np.arange(1, 4), 240),
            **{
                a.name: (
                    rng.choice([float(lv.value or 0) for lv in a.levels], n_rows)
                    if a.kind == "numeric"
                    else rng.choice(a.level_names, n_rows)
                )
                for a in attrs
            },
        }
    )
    diagnostics = {
        "method": "balanced_overlap",
        "n_versions": 20,
        "n_tasks": 12,
        "n_alts": 3,
        "d_error": 0.1834,
        "level_counts": level_counts(design, project=project),
    }
    weights = np.array([62, 55, 58, 52, 44, 46, 34, 30], dtype=float)
    population = pl.DataFrame(
        {"person_id": np.arange(5000), "city": rng.choice(CITIES, 5000, p=weights / weights.sum())}
    )
    respondents = population.sample(400, seed=seed)
    # product line
    variants = []
    profiles = [
        {
            "style": "sporty",
            "colour": "pink",
            "smart_pack": "plus",
            "battery": "lfp42",
            "energy_mode": "swap",
            "sunroof": "no",
            "ownership": "rent_capped",
            "price": 49900.0,
        },
        {
            "style": "classic",
            "colour": "white",
            "smart_pack": "max",
            "battery": "ncm52",
            "energy_mode": "both",
            "sunroof": "yes",
            "ownership": "buy",
            "price": 89900.0,
        },
        {
            "style": "retro",
            "colour": "green",
            "smart_pack": "basic",
            "battery": "lfp42",
            "energy_mode": "plugin",
            "sunroof": "no",
            "ownership": "buy",
            "price": 59900.0,
        },
    ]
    shares_v = [0.1234, 0.0712, 0.0455]
    for k, (profile, share) in enumerate(zip(profiles, shares_v, strict=True)):
        cost = variable_cost(project, profile)
        volume = share * 900_000
        variants.append(
            {
                "name": f"V{k + 1}",
                "profile": profile,
                "price": profile["price"],
                "unit_cost": cost,
                "share": share,
                "share_low": share * 0.85,
                "share_high": share * 1.15,
                "annual_volume": volume,
                "annual_volume_low": volume * 0.85,
                "annual_volume_high": volume * 1.15,
                "unit_margin": float(profile["price"]) - cost,
                "rent_plan": "capped" if profile["ownership"] == "rent_capped" else None,
            }
        )
    revenue = sum(v["price"] * v["annual_volume"] for v in variants)
    fixed = 90_000_000.0
    profit = sum(v["unit_margin"] * v["annual_volume"] for v in variants) - fixed
    line_share = sum(shares_v)
    definition = {
        "project": project.name,
        "objective": "profit",
        "method": "milp",
        "variants": variants,
        "line": {
            "share": line_share,
            "share_low": line_share * 0.88,
            "share_high": line_share * 1.12,
            "annual_volume": sum(v["annual_volume"] for v in variants),
            "revenue": revenue,
            "profit": profit,
            "fixed_cost": fixed,
        },
        "bound": profit * 1.001,
        "gap": 0.001,
        "competitors": [{"name": c.name, "share": 0.1} for c in project.competitors],
        "none_share": 0.26,
    }
    comp_shares = [0.11, 0.14, 0.09, 0.08, 0.06]
    none_share = 1.0 - line_share - sum(comp_shares)
    shares = pl.DataFrame(
        {
            "product": [v["name"] for v in variants] + [c.name for c in project.competitors] + ["None"],
            "kind": ["ours"] * 3 + ["competitor"] * 5 + ["none"],
            "share": [*shares_v, *comp_shares, none_share],
        }
    ).with_columns(share_low=pl.col("share") * 0.88, share_high=pl.col("share") * 1.12)
    prices = np.linspace(45000, 110000, 41)
    share_curve = 0.3 / (1 + np.exp((prices - 60000) / 12000))
    volume_curve = share_curve * 900_000
    demand_curve = pl.DataFrame(
        {
            "price": prices,
            "share": share_curve,
            "volume": volume_curve,
            "revenue": prices * volume_curve,
            "profit": (prices - 38000) * volume_curve - 30e6,
        }
    )
    sens_rows = []
    for a in attrs:
        if a.kind == "numeric":
            continue
        for lv in a.level_names:
            sens_rows.append(
                {
                    "attribute": a.name,
                    "level": lv,
                    "share": float(np.clip(0.1234 + rng.normal(0, 0.03), 0, 1)),
                }
            )
    sensitivity = pl.DataFrame(sens_rows)
    weeks = np.arange(1, 27)
    start = dt.date(2026, 1, 5)
    rows = []
    for city, w in zip(CITIES, weights, strict=True):
        for v in ("V1", "V2", "V3"):
            base = w * 4 * (1 - np.exp(-weeks / 5)) * np.exp(-weeks / 40)
            for wk, d in zip(weeks, base, strict=True):
                rows.append(
                    {
                        "week": int(wk),
                        "week_start": start + dt.timedelta(weeks=int(wk) - 1),
                        "variant": v,
                        "city": city,
                        "demand": float(d),
                        "demand_low": float(d * 0.8),
                        "demand_high": float(d * 1.25),
                    }
                )
    forecast = pl.DataFrame(rows)
    preorders = pl.DataFrame(
        {
            "week": np.arange(-7, 1),
            "reservations": rng.integers(800, 1500, 8),
            "preorders": rng.integers(200, 600, 8),
        }
    )
    weekly = forecast.group_by("week", "variant").agg(pl.col("demand").sum()).sort("week", "variant")
    cap = 1800.0
    plan_rows = []
    backlog = {"V1": 0.0, "V2": 0.0, "V3": 0.0}
    cum_b = {"V1": 0.0, "V2": 0.0, "V3": 0.0}
    cum_d = {"V1": 0.0, "V2": 0.0, "V3": 0.0}
    for wk in weeks:
        part = weekly.filter(pl.col("week") == int(wk))
        total = float(part["demand"].sum()) + sum(backlog.values())
        scale = min(1.0, cap / total) if total > 0 else 1.0
        for r in part.iter_rows(named=True):
            v = r["variant"]
            need = r["demand"] + backlog[v]
            build = need * scale
            backlog[v] = need - build
            cum_b[v] += build
            cum_d[v] += r["demand"]
            plan_rows.append(
                {
                    "week": int(wk),
                    "week_start": start + dt.timedelta(weeks=int(wk) - 1),
                    "variant": v,
                    "build": round(build),
                    "demand": r["demand"],
                    "cumulative_build": cum_b[v],
                    "cumulative_demand": cum_d[v],
                    "backlog": backlog[v],
                    "capacity": cap,
                }
            )
    build_plan = pl.DataFrame(plan_rows)
    stores = pl.DataFrame(
        {
            "store_id": [s.id for s in project.stores],
            "city": [s.city for s in project.stores],
            "lat": [s.lat for s in project.stores],
            "lon": [s.lon for s in project.stores],
            "kind": [s.kind for s in project.stores],
        }
    )
    station = rng.random(stores.height) < 0.3
    swaps = np.where(station, rng.gamma(2.0, 30.0, stores.height), 0.0)
    swap_plan = stores.select("store_id", "city", "lat", "lon").with_columns(
        station=pl.Series(station),
        lanes=pl.Series(np.where(station, 1 + (swaps > 60), 0)).cast(pl.Int64),
        packs=pl.Series(np.where(station, 6 + (swaps // 10), 0)).cast(pl.Int64),
        swaps_per_day=pl.Series(swaps),
        peak_swaps_per_hour=pl.Series(swaps * 0.12),
        p_wait=pl.Series(np.where(station, rng.uniform(0.01, 0.2, stores.height), 0.0)),
        capital_cost=pl.Series(np.where(station, 1_500_000.0, 0.0)),
    )
    rvb_rows = []
    for pack in project.battery_packs:
        for plan in pack.rent_plans:
            be = int(np.ceil(pack.cost / plan.monthly_fee))
            for m in range(0, 121, 3):
                rvb_rows.append(
                    {
                        "pack": pack.id,
                        "plan": plan.name,
                        "month": m,
                        "rent_cost": plan.monthly_fee * m,
                        "buy_cost": float(pack.cost),
                        "break_even_month": be,
                    }
                )
    rent_vs_buy = pl.DataFrame(rvb_rows)
    run_info = {
        "c2m": "0.1.0",
        "seed": seed,
        "persons": 5000,
        "timings_s": {"estimate": 1.234, "report": 2.5},
    }
    return ReportInputs(
        project=project,
        design_diagnostics=diagnostics,
        respondents=respondents,
        population=population,
        model=synthetic_model(project, seed),
        shares=shares,
        product_definition=definition,
        demand_curve=demand_curve,
        sensitivity=sensitivity,
        forecast=forecast,
        preorders=preorders,
        build_plan=build_plan,
        swap_plan=swap_plan,
        stores=stores,
        rent_vs_buy=rent_vs_buy,
        run_info=run_info,
    )
