"""Pre-order simulation, weekly forecast and the optimal build plan."""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from c2m.errors import C2MError
from c2m.forecast import (
    PlanCosts,
    build_plan,
    forecast_demand,
    plan_cost,
    ramp_capacity,
    simulate_preorders,
)
from c2m.forecast._preorders import REFERENCE_ANNUAL_VOLUME


def _volumes(total: float = REFERENCE_ANNUAL_VOLUME) -> pl.DataFrame:
    rows = []
    weights = {"A": 0.5, "B": 0.3, "C": 0.2}
    cities = {"Shanghai": 0.4, "Beijing": 0.35, "Haikou": 0.25}
    for v, wv in weights.items():
        for c, wc in cities.items():
            a = total * wv * wc
            rows.append((v, c, a, 0.8 * a, 1.3 * a))
    return pl.DataFrame(
        rows,
        schema=["variant", "city", "annual_volume", "annual_volume_low", "annual_volume_high"],
        orient="row",
    )


def test_preorders_calibrated_and_reproducible() -> None:
    vol = _volumes()
    pre = simulate_preorders(vol, seed=1)
    assert pre.columns == ["date", "day", "week", "city", "variant", "reservations", "preorders"]
    assert pre.height == 56 * vol.height
    daily = pre.group_by("day").agg(pl.col("reservations", "preorders").sum()).sort("day")
    day_one = daily["reservations"][0]
    assert 15_000 < day_one < 21_000  # ~18,000 day-one reservations at the default project's volume
    assert daily["preorders"].head(14).sum() > 30_000  # > 30,000 pre-orders within two weeks
    # pre-orders are converted reservations: never ahead of them
    cum = daily.select(pl.col("reservations").cum_sum(), pl.col("preorders").cum_sum())
    assert (cum["preorders"] <= cum["reservations"]).all()
    assert pre.equals(simulate_preorders(vol, seed=1))
    assert not pre.equals(simulate_preorders(vol, seed=2))
    # scales with the volumes
    half = simulate_preorders(_volumes(REFERENCE_ANNUAL_VOLUME / 2), seed=1)
    ratio = half["reservations"].sum() / pre["reservations"].sum()
    assert ratio == pytest.approx(0.5, rel=0.03)


def test_forecast_schema_totals_and_parts_add_up() -> None:
    vol = _volumes()
    fc = forecast_demand(vol, horizon_weeks=52, seed=0)
    assert fc.columns == ["week", "week_start", "variant", "city", "demand", "demand_low", "demand_high"]
    assert fc.schema["week_start"] == pl.Date and fc.schema["week"] == pl.Int64
    assert fc["week_start"].min() == date(2026, 1, 5)
    assert fc.height == 52 * vol.height
    # the horizon's total is the annual volume scaled to the horizon, cell by cell
    by_cell = fc.group_by(["variant", "city"]).agg(pl.col("demand").sum())
    joined = by_cell.join(vol, on=["variant", "city"])
    np.testing.assert_allclose(joined["demand"], joined["annual_volume"], rtol=1e-9)
    assert (fc["demand_low"] <= fc["demand"] + 1e-9).all() and (
        fc["demand"] <= fc["demand_high"] + 1e-9
    ).all()
    assert (fc["demand"] >= 0).all()
    # parts add up: the sum over cities equals the forecast of the variant's total volume
    totals = vol.group_by("variant").agg(
        pl.lit("ALL").alias("city"), pl.col("annual_volume", "annual_volume_low", "annual_volume_high").sum()
    )
    fc_tot = forecast_demand(totals.select(vol.columns), seed=0)
    summed = fc.group_by(["variant", "week"]).agg(pl.col("demand").sum())
    cmp = summed.join(fc_tot, on=["variant", "week"])
    np.testing.assert_allclose(cmp["demand"], cmp["demand_right"], rtol=1e-9)
    # half the horizon: potential scales with it
    fc26 = forecast_demand(vol, horizon_weeks=26)
    assert fc26["demand"].sum() == pytest.approx(vol["annual_volume"].sum() / 2, rel=1e-9)


def test_forecast_with_preorders_pulls_demand_forward() -> None:
    vol = _volumes()
    pre = simulate_preorders(vol, seed=0)
    base = forecast_demand(vol, seed=0)
    fc = forecast_demand(vol, preorders=pre, seed=0)
    weekly = fc.group_by("week").agg(pl.col("demand").sum()).sort("week")["demand"].to_numpy()
    weekly_base = base.group_by("week").agg(pl.col("demand").sum()).sort("week")["demand"].to_numpy()
    observed = pre.group_by("week").agg(pl.col("preorders").sum()).sort("week")["preorders"].to_numpy()
    assert weekly[:4].sum() > 2 * weekly_base[:4].sum()
    assert np.all(weekly[: len(observed)] >= observed - 1e-6)
    assert weekly.sum() == pytest.approx(vol["annual_volume"].sum(), rel=1e-6)
    assert fc.equals(forecast_demand(vol, preorders=pre, seed=0))
    # pre-orders read back from a CSV with only week totals work too
    weekly_pre = pre.group_by("week").agg(pl.col("preorders").sum())
    fc2 = forecast_demand(vol, preorders=weekly_pre, seed=0)
    assert fc2["demand"].sum() == pytest.approx(fc["demand"].sum(), rel=1e-6)


def test_forecast_errors_name_the_problem() -> None:
    with pytest.raises(C2MError, match="annual_volume"):
        forecast_demand(pl.DataFrame({"variant": ["A"], "city": ["X"]}))
    with pytest.raises(C2MError, match="preorders"):
        forecast_demand(_volumes(), preorders=pl.DataFrame({"week": [1, 2, 3]}))


def _forecast_frame(d: np.ndarray) -> pl.DataFrame:
    V, H = d.shape
    return pl.DataFrame(
        {
            "week": np.tile(np.arange(1, H + 1), V),
            "variant": np.repeat([f"v{i}" for i in range(V)], H),
            "city": ["X"] * (V * H),
            "demand": d.ravel(),
        }
    )


def test_build_plan_respects_capacity_and_meets_demand_when_possible() -> None:
    fc = forecast_demand(_volumes(), preorders=simulate_preorders(_volumes(), seed=0), seed=0)
    plan = build_plan(fc, capacity_per_week=2500, ramp_weeks=8)
    assert plan.columns[:9] == [
        "week",
        "week_start",
        "variant",
        "build",
        "demand",
        "cumulative_build",
        "cumulative_demand",
        "backlog",
        "capacity",
    ]
    per_week = plan.group_by("week").agg(pl.col("build").sum(), pl.col("capacity").first())
    assert (per_week["build"] <= per_week["capacity"]).all()
    assert plan.schema["build"] == pl.Int64 and (plan["build"] >= 0).all()
    assert (plan["cumulative_build"] >= plan["cumulative_demand"] - plan["backlog"] - 1e-6).all()
    # ample capacity: no backlog at all
    rich = build_plan(fc, capacity_per_week=100_000, ramp_weeks=0)
    assert rich["backlog"].max() < 1e-6
    assert (rich["cumulative_build"] >= rich["cumulative_demand"] - 1e-6).all()
    np.testing.assert_array_equal(
        ramp_capacity(2500, 8, 10), [312, 625, 937, 1250, 1562, 1875, 2187, 2500, 2500, 2500]
    )


def test_build_plan_builds_ahead_for_a_later_peak() -> None:
    d = np.array([[0.0, 0.0, 0.0, 30.0, 0.0]])
    plan = build_plan(_forecast_frame(d), capacity_per_week=10, ramp_weeks=0, safety_stock_weeks=0.0)
    assert plan["build"].to_list() == [0, 10, 10, 10, 0]
    assert plan["backlog"].max() == 0.0


@pytest.mark.parametrize("ss", [0.0, 1.0])
def test_build_plan_is_optimal_against_brute_force(ss: float) -> None:
    rng = np.random.default_rng(7)
    d = rng.integers(0, 7, size=(2, 4)).astype(float)
    d[0, 2] = 9.0
    cap_total, ramp = 4, 2
    plan = build_plan(_forecast_frame(d), capacity_per_week=cap_total, ramp_weeks=ramp, safety_stock_weeks=ss)
    cap = ramp_capacity(cap_total, ramp, 4)
    x = np.zeros((2, 4))
    for row in plan.iter_rows(named=True):
        x[int(row["variant"][1:]), row["week"] - 1] = row["build"]
    got = plan_cost(x, d, ss, PlanCosts())
    best = np.inf
    ranges = [[(a, b) for a in range(c + 1) for b in range(c + 1 - a)] for c in cap]
    for combo in itertools.product(*ranges):
        xb = np.array(combo, dtype=float).T
        best = min(best, plan_cost(xb, d, ss, PlanCosts()))
    assert got == pytest.approx(best, abs=1e-9)


def test_csv_round_trip_like_the_cli(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Pre-orders and forecast written to CSV and read back (dates parsed) feed the next stage."""
    vol = _volumes()
    pre = simulate_preorders(vol, weeks=4, seed=5)
    pre.write_csv(tmp_path / "preorders.csv")
    pre_back = pl.read_csv(tmp_path / "preorders.csv", try_parse_dates=True)
    fc = forecast_demand(vol, horizon_weeks=20, preorders=pre_back, seed=5)
    assert fc.equals(forecast_demand(vol, horizon_weeks=20, preorders=pre, seed=5))
    fc.write_csv(tmp_path / "forecast.csv")
    plan = build_plan(pl.read_csv(tmp_path / "forecast.csv", try_parse_dates=True))
    assert plan.schema["week_start"] == pl.Date
    assert plan["week_start"].null_count() == 0
    assert plan.equals(build_plan(fc))
    out, err = capfd.readouterr()
    assert out == "" and err == ""


@settings(max_examples=25, deadline=None)
@given(
    demand=st.lists(st.lists(st.floats(0, 400), min_size=6, max_size=6), min_size=1, max_size=3),
    capacity=st.integers(0, 600),
    ramp=st.integers(0, 4),
    ss=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_build_plan_invariants(demand: list[list[float]], capacity: int, ramp: int, ss: float) -> None:
    d = np.array(demand)
    plan = build_plan(_forecast_frame(d), capacity_per_week=capacity, ramp_weeks=ramp, safety_stock_weeks=ss)
    per_week = plan.group_by("week").agg(pl.col("build").sum(), pl.col("capacity").first())
    assert (per_week["build"] <= per_week["capacity"]).all()
    net = plan["cumulative_build"] - plan["cumulative_demand"]
    np.testing.assert_allclose(net, plan["inventory"] - plan["backlog"], atol=1e-6)
    assert ((plan["inventory"] < 1e-9) | (plan["backlog"] < 1e-9)).all()
    # whenever the plant could have covered all demand so far, nothing is backlogged beyond the
    # fraction of a car that integer builds cannot match (a whole car in stock may cost more)
    cum_cap = np.cumsum(ramp_capacity(capacity, ramp, d.shape[1]))
    total_cum_demand = np.cumsum(d.sum(axis=0))
    if np.all(cum_cap >= np.ceil(total_cum_demand - 1e-9) + d.shape[0]):
        assert plan["backlog"].max() < 1.0


def test_build_plan_shares_a_shortage_across_variants() -> None:
    """With a flat backlog cost any split is optimal; the tiers make every variant wait alike."""
    d = np.array([[300.0] * 10, [300.0] * 10, [150.0] * 10])
    plan = build_plan(_forecast_frame(d), capacity_per_week=400, ramp_weeks=0, safety_stock_weeks=0.0)
    last = plan.filter(pl.col("week") == 10).sort("variant")
    shares = (last["backlog"] / last["cumulative_demand"]).to_numpy()
    assert shares.max() - shares.min() <= 1 / PlanCosts().tiers + 1e-6
    assert (last["cumulative_build"] > 0).all()
