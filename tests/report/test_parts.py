"""Pieces of the report checked against hand computations: capacity, pre-orders, curves, tornado, run info."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from c2m.report import ReportInputs, build_report, render_figures
from c2m.report import _figures as figs
from c2m.report._build import _baseline_share
from c2m.report._svg import style, to_svg


def test_weekly_capacity_common_value_or_sum() -> None:
    plant = pl.DataFrame(
        {
            "week": [1, 1, 2, 2],
            "variant": ["A", "B"] * 2,
            "build": [1, 2, 3, 4],
            "capacity": [300.0, 300.0, 320.0, 320.0],
        }
    )
    got = figs.weekly_capacity(plant)
    assert got is not None and got["capacity"].to_list() == [300.0, 320.0]
    per_variant = plant.with_columns(capacity=pl.Series([100.0, 200.0, 110.0, 220.0]))
    got = figs.weekly_capacity(per_variant)
    assert got is not None and got["capacity"].to_list() == [300.0, 330.0]
    assert figs.weekly_capacity(plant.drop("capacity")) is None


def test_preorder_columns_of_the_forecast_file_format() -> None:
    frame = pl.DataFrame(
        {
            "date": [dt.date(2026, 1, 5)] * 4,
            "day": [1, 1, 2, 2],
            "week": [1, 1, 1, 1],
            "city": ["A", "B", "A", "B"],
            "variant": ["V1"] * 4,
            "reservations": [10, 20, 30, 40],
            "preorders": [1, 2, 3, 4],
        }
    )
    t, counts = figs.preorder_columns(frame)
    assert t == "week"
    assert counts == ["reservations", "preorders"]
    html = build_report(ReportInputs(preorders=frame))
    assert "Totals: 100 reservations, 10 preorders." in html


def test_profit_max_per_variant() -> None:
    prices = np.linspace(40_000, 100_000, 61)
    rows = []
    for name, peak in (("A", 55_000.0), ("B", 81_000.0)):
        profit = -((prices - peak) ** 2)
        rows.append(pl.DataFrame({"variant": name, "price": prices, "share": 0.1, "profit": profit}))
    curve = pl.concat(rows).sample(fraction=1.0, shuffle=True, seed=1)
    best = figs.profit_max(curve)
    assert best["A"][0] == pytest.approx(55_000.0)
    assert best["B"][0] == pytest.approx(81_000.0)
    html = build_report(ReportInputs(demand_curve=curve))
    assert "A: profit peaks at a price of \u00a555,000" in html
    assert "B: profit peaks at a price of \u00a581,000" in html


def test_tornado_baseline_and_prohibited_levels() -> None:
    sensitivity = pl.DataFrame(
        {
            "attribute": ["a", "a", "a", "b", "b"],
            "level": ["x", "y", "z", "u", "v"],
            "share": [0.20, 0.25, 0.90, 0.10, 0.30],
            "is_base": [False, True, False, True, False],
            "prohibited": [False, False, True, False, False],
        }
    )
    inputs = ReportInputs(sensitivity=sensitivity)
    assert _baseline_share(inputs) == pytest.approx(0.175)  # mean of the base rows
    html = build_report(inputs)
    # the prohibited level z (share 0.90) is left out: b moves the share most (20 points)
    assert "Changing b moves the share most: by up to 20.0 points." in html
    svg = render_figures(inputs)["tornado"]
    assert "z 90.0%" not in svg and "x 20.0%" in svg


def test_run_info_table() -> None:
    html = build_report(ReportInputs(run_info={"seed": 7, "timings_s": {"estimate": 1.234}, "ok": True}))
    assert "time: estimate" in html and "1.23 s" in html
    assert ">yes<" in html


def test_svg_is_stripped_and_responsive() -> None:
    from c2m.report._svg import new_figure, style

    with style():
        fig = new_figure(3, 2)
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], marker="o")
        ax.set_title("A & B <c>")
    svg = to_svg(fig, "t")
    assert svg.startswith("<svg") and "<?xml" not in svg and "DOCTYPE" not in svg
    assert "<metadata" not in svg
    assert 'width="' not in svg.split(">", 1)[0]
    assert "viewBox" in svg.split(">", 1)[0]
    assert "A &amp; B &lt;c&gt;" in svg
    assert svg == to_svg(fig, "t")


def test_design_diagnostics_as_a_dataclass() -> None:
    import dataclasses

    @dataclasses.dataclass
    class Diagnostics:
        method: str
        n_versions: int
        d_error: float
        level_counts: pl.DataFrame

    counts = pl.DataFrame(
        {
            "attribute": ["a", "a"],
            "level": ["x", "y"],
            "count": [3, 5],
            "share": [0.375, 0.625],
            "ideal_share": [0.5, 0.5],
        }
    )
    html = build_report(ReportInputs(design_diagnostics=Diagnostics("random", 4, 0.5, counts)))  # type: ignore[arg-type]
    assert "Design method" in html and "random" in html and "0.5000" in html
    assert html.count("<svg") == 1


def test_sample_chart_shows_the_weighted_sample_when_weights_exist() -> None:
    population = pl.DataFrame({"city": ["A"] * 60 + ["B"] * 40})
    respondents = pl.DataFrame({"city": ["A"] * 9 + ["B"]})
    with style():
        plain = to_svg(figs.sample_vs_population(respondents, population), "sample")
    assert "survey sample" in plain and "weighted sample" not in plain
    weights = [60 / 90] * 9 + [40 / 10]  # raked: A 60%, B 40%
    with style():
        svg = to_svg(figs.sample_vs_population(respondents.with_columns(weight=pl.Series(weights)), population), "s")
    assert "weighted sample" in svg
