"""Rolling-origin backtests of the reconciled sales forecast: MASE and interval coverage."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from c2m.errors import C2MError

from ._hierarchy import build_hierarchy
from ._sales import base_forecasts, calibration_errors, reconcile_with_intervals, weekly_panel


def backtest_sales(
    orders: pl.DataFrame,
    keys: Sequence[str],
    levels: Sequence[Sequence[str]] | None = None,
    horizon: int = 4,
    n_origins: int = 5,
    step: int = 1,
    min_train: int = 12,
    method: str = "wls_struct",
    interval: float = 0.9,
    season_length: int = 1,
    intermittent_share: float = 0.5,
    fill_missing: bool = False,
    n_samples: int = 400,
    seed: int = 0,
    week: str = "week",
    value: str = "orders",
    calibration_windows: int = 4,
    calibration_step: int | None = None,
) -> pl.DataFrame:
    """Forecast from ``n_origins`` past weeks (``step`` apart, the last one ``horizon`` weeks
    before the end) with the same method as :func:`forecast_sales`, and score each against
    what happened.

    Returns one row per hierarchy level: ``mase`` (mean absolute error over the in-sample
    mean absolute one-step naive error of each node's training series, averaged over nodes
    with a non-zero scale, origins and steps), ``coverage`` (share of actuals inside the
    ``interval`` bounds), ``bias`` (mean of forecast - actual) and ``n`` (forecasts scored).
    The intervals are calibrated as in :func:`forecast_sales`, from windows inside each
    origin's training weeks only.
    """
    bottom, weeks, values = weekly_panel(orders, keys, week=week, value=value, fill_missing=fill_missing)
    if n_origins < 1 or step < 1 or horizon < 1:
        raise C2MError("backtest_sales: n_origins, step and horizon must be >= 1")
    last_origin = len(weeks) - horizon
    first_origin = last_origin - (n_origins - 1) * step
    if first_origin < max(min_train, 4):
        raise C2MError(
            f"backtest_sales: {len(weeks)} weeks of history are too few for {n_origins} origins {step} week(s) "
            f"apart, a {horizon}-week horizon and {max(min_train, 4)} training weeks"
        )
    hierarchy = build_hierarchy(bottom, levels)
    history = hierarchy.aggregate(values)
    level_of_node = hierarchy.nodes["level"].to_numpy()
    scores: list[pl.DataFrame] = []
    for k in range(n_origins):
        origin = first_origin + k * step
        train, test = history[:, :origin], history[:, origin : origin + horizon]
        mean, growth, residuals, _ = base_forecasts(train, horizon, season_length, intermittent_share)
        errors = calibration_errors(
            hierarchy, train, horizon, method, season_length, intermittent_share, calibration_windows,
            calibration_step, min_train,
        )
        point, low, high = reconcile_with_intervals(
            hierarchy, mean, growth, residuals, method=method, interval=interval, n_samples=n_samples, seed=seed + k,
            errors=errors,
        )
        scale = np.abs(np.diff(train, axis=1)).mean(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = np.abs(point - test) / scale[:, None]
        scores.append(
            pl.DataFrame(
                {
                    "level": np.repeat(level_of_node, horizon),
                    "scaled_error": np.where(scale[:, None] > 0, scaled, np.nan).reshape(-1),
                    "covered": ((test >= low - 1e-9) & (test <= high + 1e-9)).reshape(-1),
                    "error": (point - test).reshape(-1),
                }
            )
        )
    order = {name: i for i, name in enumerate(dict.fromkeys(level_of_node.tolist()))}
    return (
        pl.concat(scores)
        .group_by("level")
        .agg(
            mase=pl.col("scaled_error").fill_nan(None).mean(),
            coverage=pl.col("covered").mean(),
            bias=pl.col("error").mean(),
            n=pl.len(),
        )
        .sort(pl.col("level").replace_strict(order, return_dtype=pl.Int64))
    )
