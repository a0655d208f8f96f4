"""`c2m forecast --orders`: reconciled forecasts and a backtest from a weekly orders file."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from tests.conftest import run_c2m

from .test_sales import KEYS, synthetic_launch


def test_forecast_from_orders_writes_coherent_forecasts_and_a_backtest(tmp_path: Path) -> None:
    orders, _ = synthetic_launch(weeks=30, seed=4)
    orders.write_csv(tmp_path / "orders.csv")
    result = run_c2m("forecast", "--orders", "orders.csv", "--keys", ",".join(KEYS), "--levels", "province;variant",
                     "--weeks", "8", "--backtest", "3", "--out", "sales.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    forecast = pl.read_csv(tmp_path / "sales.csv")
    assert set(forecast["level"].unique()) == {"total", "province", "variant", "province/city/variant"}
    by_level = forecast.group_by("level").agg(pl.col("forecast").sum())
    totals = dict(by_level.iter_rows())
    for level in ("province", "variant", "province/city/variant"):
        assert abs(totals[level] - totals["total"]) < 1e-6 * totals["total"]
    backtest = pl.read_csv(tmp_path / "sales_backtest.csv")
    assert backtest["n"].sum() > 0 and backtest["coverage"].is_between(0, 1).all()


def test_bad_orders_file_is_one_line_naming_the_row(tmp_path: Path) -> None:
    orders, _ = synthetic_launch(weeks=10)
    orders.with_columns(orders=pl.when(pl.int_range(pl.len()) == 4).then(-2).otherwise("orders")).write_csv(
        tmp_path / "orders.csv"
    )
    result = run_c2m("forecast", "--orders", "orders.csv", "--keys", ",".join(KEYS), cwd=tmp_path)
    assert result.returncode == 2
    assert "row(s) 5" in result.stderr and "Traceback" not in result.stderr
    both = run_c2m("forecast", "--orders", "orders.csv", "--volumes", "v.csv", cwd=tmp_path)
    assert both.returncode == 2 and "either --volumes" in both.stderr
