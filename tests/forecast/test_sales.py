"""Weekly sales after launch: input checks, coherent reconciled forecasts, backtests on known truth."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from c2m.errors import C2MError
from c2m.forecast import backtest_sales, build_hierarchy, forecast_sales, weekly_panel

START = date(2026, 1, 5)  # a Monday
KEYS = ["province", "city", "variant"]


def synthetic_launch(weeks: int = 52, seed: int = 0, ramp_weeks: float = 6.0) -> tuple[pl.DataFrame, dict]:
    """Poisson weekly orders by city and variant around a known mean: a launch ramp, then a plateau."""
    rng = np.random.default_rng(seed)
    rows = []
    truth = {}
    for p in range(4):
        for c in range(3):
            size = rng.uniform(2, 30)
            for variant, share in (("Standard", 0.6), ("Long range", 0.4)):
                rate = size * share
                truth[(f"P{p}", f"P{p}-C{c}", variant)] = rate
                for t in range(weeks):
                    mean = rate * (1 - np.exp(-(t + 1) / ramp_weeks))
                    rows.append((f"P{p}", f"P{p}-C{c}", variant, START + timedelta(days=7 * t), int(rng.poisson(mean))))
    return pl.DataFrame(rows, schema=[*KEYS, "week", "orders"], orient="row"), truth


def test_panel_reads_weeks_and_treats_weeks_before_launch_as_zero() -> None:
    orders = pl.DataFrame(
        {
            "city": ["a", "a", "b", "a"],
            "week": ["2026-01-05", "2026-01-12", "2026-01-19", "2026-01-19"],
            "orders": [3, 4, 7, 5],
        }
    )
    bottom, weeks, values = weekly_panel(orders, ["city"])
    assert bottom["city"].to_list() == ["a", "b"]
    assert weeks == [START, START + timedelta(days=7), START + timedelta(days=14)]
    assert values.tolist() == [[3, 4, 5], [0, 0, 7]]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.with_columns(orders=pl.when(pl.int_range(pl.len()) == 2).then(-1).otherwise("orders")),
         r"count >= 0; bad value in row\(s\) 3"),
        (lambda d: d.filter(pl.int_range(pl.len()) != 3), "missing week.*P0-C0.*2026-01-26"),
        (lambda d: pl.concat([d.head(2).reverse(), d.slice(2)]), r"out of order.*row\(s\) 2"),
        (lambda d: pl.concat([d, d.head(1)]), "appear twice"),
        (lambda d: d.with_columns(
            week=pl.when(pl.int_range(pl.len()) == 5).then(pl.col("week") + timedelta(days=1)).otherwise("week")),
         "same weekday"),
        (lambda d: d.drop("orders"), "missing column"),
        (lambda d: d.with_columns(week=pl.lit("soon")), "not a date"),
        (lambda d: d.with_columns(orders=pl.lit("many")), "numeric"),
    ],
)
def test_bad_orders_are_named(change, message: str) -> None:  # type: ignore[no-untyped-def]
    orders, _ = synthetic_launch(weeks=10)
    with pytest.raises(C2MError, match=message):
        weekly_panel(change(orders), KEYS)


def test_gaps_can_be_filled_with_zero_on_request() -> None:
    orders, _ = synthetic_launch(weeks=10)
    holey = orders.filter(pl.int_range(pl.len()) != 3)  # P0-C0 Standard, week 3
    bottom, _, values = weekly_panel(holey, KEYS, fill_missing=True)
    series = bottom.with_row_index().filter(pl.col("city") == "P0-C0", pl.col("variant") == "Standard")["index"].item()
    assert values[series, 3] == 0 and values.sum() == holey["orders"].sum()
    full = weekly_panel(orders, KEYS)[2]
    assert full[series, 3] == orders["orders"][3] and np.delete(full, 3, axis=1).sum() == np.delete(values, 3, 1).sum()


def test_forecast_is_coherent_non_negative_and_near_the_truth() -> None:
    orders, truth = synthetic_launch(weeks=40, seed=1)
    levels = [(), ("province",), ("province", "city"), ("variant",)]
    result = forecast_sales(orders, KEYS, levels=levels, horizon=6, n_samples=200)
    hierarchy = build_hierarchy(orders.select(KEYS).unique(), levels)
    assert result.height == hierarchy.n_nodes * 6
    assert (result["low"] <= result["forecast"]).all() and (result["forecast"] <= result["high"]).all()
    assert (result["low"] >= 0).all()
    for week in result["week"].unique():
        values = result.filter(pl.col("week") == week)["forecast"].to_numpy()
        assert hierarchy.is_coherent(values)
    total = result.filter(pl.col("level") == "total")
    assert total["forecast"].mean() == pytest.approx(sum(truth.values()), rel=0.1)
    by_variant = result.filter(pl.col("level") == "variant").group_by("variant").agg(pl.col("forecast").mean())
    for variant, share in (("Standard", 0.6), ("Long range", 0.4)):
        forecast = by_variant.filter(pl.col("variant") == variant)["forecast"].item()
        assert forecast == pytest.approx(share / 0.6 * sum(v for k, v in truth.items() if k[2] == "Standard"), rel=0.15)
    assert result["week"].min() == START + timedelta(days=7 * 40)


def test_backtest_intervals_cover_at_their_stated_rate_and_beat_the_naive_forecast() -> None:
    orders, _ = synthetic_launch(weeks=60, seed=2)
    scores = backtest_sales(orders, KEYS, horizon=4, n_origins=10, step=3, interval=0.9, n_samples=300)
    assert scores["level"].to_list() == ["total", "province", "province/city", "province/city/variant"]
    pooled = float((scores["coverage"] * scores["n"]).sum() / scores["n"].sum())
    # measured pooled 0.86 (seed 2) and 0.88 (seed 3) with the intervals calibrated on past
    # out-of-sample errors (0.84 and 0.86 from the one-step errors alone); only 4 calibration
    # windows of 4 weeks here, so +-0.07 (test_intervals.py checks +-0.05 on longer histories)
    assert abs(pooled - 0.9) <= 0.07, scores
    assert float(scores.filter(pl.col("level") == "province/city/variant")["coverage"].item()) >= 0.83
    assert (scores["mase"] < 1.0).all(), scores


def test_backtest_needs_enough_history() -> None:
    orders, _ = synthetic_launch(weeks=12)
    with pytest.raises(C2MError, match="too few"):
        backtest_sales(orders, KEYS, horizon=4, n_origins=5)
