"""`c2m tco` and `c2m battery-life` from the command line."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from tests.conftest import run_c2m


def test_tco_hand_checked_plan(tmp_path: Path) -> None:
    """399 yuan/month, 3,000 km cap, 0.2 yuan/km above it, 3,500 km/month -> 499 yuan/month."""
    result = run_c2m("tco", "--rent", "399", "--cap-km", "3000", "--overage", "0.2", "--km-per-month", "3500",
                     "--buy-price", "40000", "--months", "120", "--out", "tco.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = pl.read_csv(tmp_path / "tco.csv")
    assert table["monthly_rent"].unique().to_list() == [499.0]
    assert table["break_even_month"][0] == 81  # 80 x 499 = 39,920 < 40,000 <= 81 x 499
    assert "499" in result.stdout
    # the project's own plans, at the default mileage
    plans = run_c2m("tco", "--km-per-month", "1000", "--out", "plans.csv", cwd=tmp_path)
    assert plans.returncode == 0, plans.stderr
    assert pl.read_csv(tmp_path / "plans.csv")["plan"].n_unique() >= 2
    bad = run_c2m("tco", "--rent", "399", cwd=tmp_path)
    assert bad.returncode == 2 and "--buy-price" in bad.stderr and "Traceback" not in bad.stderr


def test_battery_life_table(tmp_path: Path) -> None:
    result = run_c2m("battery-life", "--vehicles", "100,200,200", "--km-per-month", "3000", "--out", "life.csv",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = pl.read_csv(tmp_path / "life.csv")
    assert table["year"].to_list() == [1, 2, 3]
    assert (table["packs_in_service"] >= table["vehicles"]).all()
    assert table["mean_soh"].is_between(0.8, 1.0).all() and (table["mean_soh"].diff().drop_nulls() < 0).all()
    assert "years at 3,000 km/month" in result.stdout
    bad = run_c2m("battery-life", "--rotation", "sideways", cwd=tmp_path)
    assert bad.returncode == 2 and "rotation" in bad.stderr
