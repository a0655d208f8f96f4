"""Weekly sales after launch: base forecasts for every node of a hierarchy, then reconciliation.

Every node of the hierarchy (national total, provinces, cities, city x variant, ...) gets a
base forecast from statsforecast: ``AutoETS`` for series that sell most weeks, ``Croston``
(optimised) for intermittent ones (at least ``intermittent_share`` of weeks without orders,
typical for a city x variant x colour cell). The base forecasts are reconciled
(:func:`c2m.forecast.reconcile`) so that cities add up to provinces and provinces to the
country, and the bottom series are kept non-negative (negative reconciled bottom values are
set to zero and the hierarchy summed again, so the result stays coherent).

Intervals (default): calibrated on the forecast's own out-of-sample errors, by horizon step,
in the manner of conformal intervals (statsforecast's ``ConformalIntervals``): the whole
forecast (base models and reconciliation) is re-run from a few origins inside the history
(:func:`calibration_errors`), and the sample paths are the reconciled forecast plus normal
combinations of those past error vectors (coherent, as actuals and reconciled forecasts are,
so the paths add up as drawn); the interval is their quantiles, floored at zero.

Without calibration windows (``calibration_windows=0``, or too short a history): base forecast
errors are drawn as normal with the covariance of the in-sample one-step errors of all nodes
(Panagiotelis et al. 2023, "normality" with the sample covariance; ETS errors scaled by the
model's growth of the error over the horizon; Croston errors are deviations from the
series' mean), each path is reconciled and the interval is the quantiles of the coherent,
non-negative paths. These ignore parameter and level uncertainty and cover far too little
over long horizons (80 % intervals held 52-56 % of the aggregate actuals over 26 weeks in
benchmarks/bench_forecast.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
import polars as pl

from c2m.errors import C2MError

from ._hierarchy import Hierarchy, build_hierarchy, reconciler

Z_95 = 1.959963984540054
LEVEL_WEEKS = 8  # weeks averaged for a series' level in calibration_errors
POOL = 2  # calibrated intervals pool the past errors of up to POOL steps either side


def weekly_panel(
    orders: pl.DataFrame,
    keys: Sequence[str],
    week: str = "week",
    value: str = "orders",
    fill_missing: bool = False,
) -> tuple[pl.DataFrame, list[date], np.ndarray]:
    """Validate an orders table and lay it out as ``(bottom keys, weeks, values[n_bottom, n_weeks])``.

    Rows: one per series (``keys``) and week (a date, the same weekday for every row, e.g.
    Monday week starts) with a non-negative count. Weeks before a series' first row count as
    zero (not launched there yet); a missing week after it is a gap: an error naming the
    series and the week, or zero with ``fill_missing=True``. Rows must be in increasing week
    order within each series, and unique.
    """
    keys = list(keys)
    missing = [c for c in [*keys, week, value] if c not in orders.columns]
    if missing:
        raise C2MError(f"orders: missing column(s) {missing}; have {orders.columns}")
    if orders.height == 0:
        raise C2MError("orders: the table is empty")
    table = orders.select(*keys, week, value).with_row_index("_row", offset=1)
    table = table.with_columns(_week=_as_date(table[week]))
    bad_dates = table.filter(pl.col("_week").is_null())
    if bad_dates.height:
        raise C2MError(f"orders: column {week!r} is not a date in row(s) {_rows(bad_dates)}")
    null_keys = table.filter(pl.any_horizontal(pl.col(k).is_null() for k in keys))
    if null_keys.height:
        raise C2MError(f"orders: missing {keys} values in row(s) {_rows(null_keys)}")
    try:
        counts = table[value].cast(pl.Float64, strict=True)
    except pl.exceptions.InvalidOperationError:
        raise C2MError(f"orders: column {value!r} must be numeric") from None
    table = table.with_columns(_y=counts)
    bad = table.filter(pl.col("_y").is_null() | pl.col("_y").is_nan() | (pl.col("_y") < 0))
    if bad.height:
        raise C2MError(f"orders: {value!r} must be a count >= 0; bad value in row(s) {_rows(bad)}")
    weekdays = table["_week"].dt.weekday().unique()
    if weekdays.len() > 1:
        first = table.filter(pl.col("_week").dt.weekday() != table["_week"].dt.weekday()[0])
        raise C2MError(
            f"orders: weeks must all start on the same weekday; row(s) {_rows(first)} differ from row 1"
        )
    dup = table.filter(pl.struct(*keys, "_week").is_duplicated())
    if dup.height:
        raise C2MError(f"orders: the same series and week appear twice in row(s) {_rows(dup)}")
    out_of_order = table.filter(pl.col("_week") <= pl.col("_week").shift(1).over(keys))
    if out_of_order.height:
        raise C2MError(
            f"orders: weeks out of order within a series in row(s) {_rows(out_of_order)} "
            "(each series' rows must go forward in time)"
        )

    first_week = table["_week"].min()
    last_week = table["_week"].max()
    assert isinstance(first_week, date) and isinstance(last_week, date)
    n_weeks = (last_week - first_week).days // 7 + 1
    weeks = [first_week + timedelta(days=7 * i) for i in range(n_weeks)]
    table = table.with_columns(_t=((pl.col("_week") - pl.lit(first_week)).dt.total_days() // 7).cast(pl.Int64))
    bottom = table.select(keys).unique().sort(keys)
    table = table.join(bottom.with_row_index("_series"), on=keys)
    values = np.zeros((bottom.height, n_weeks))
    series = table["_series"].to_numpy()
    t = table["_t"].to_numpy()
    values[series, t] = table["_y"].to_numpy()
    if not fill_missing:
        seen = np.zeros_like(values, dtype=bool)
        seen[series, t] = True
        started = np.maximum.accumulate(seen, axis=1)
        gaps = started & ~seen
        if gaps.any():
            s, w = np.argwhere(gaps)[0]
            where = ", ".join(f"{k}={v}" for k, v in bottom.row(int(s), named=True).items())
            raise C2MError(
                f"orders: {int(gaps.sum())} missing week(s) after a series' first row, e.g. {where} has no row "
                f"for week {weeks[int(w)].isoformat()}; add rows with 0 orders or pass fill_missing=True"
            )
    return bottom, weeks, values


def forecast_sales(
    orders: pl.DataFrame,
    keys: Sequence[str],
    levels: Sequence[Sequence[str]] | None = None,
    horizon: int = 26,
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
    """Reconciled weekly forecasts for every node of the hierarchy over ``keys``.

    Returns one row per node and future week: ``level``, ``node``, the key columns (null
    above their level), ``week``, ``base`` (the node's own forecast), ``forecast``
    (reconciled, coherent), ``low``/``high`` (an ``interval`` prediction interval) and
    ``model`` (``AutoETS`` or ``Croston``).

    The intervals are calibrated on the forecast's own out-of-sample errors: the whole
    forecast is re-run from ``calibration_windows`` origins inside the history,
    ``calibration_step`` weeks apart (default half the horizon, at least 4; see
    :func:`calibration_errors`); ``calibration_windows=0`` uses the models' one-step errors only
    (narrower, and too narrow over long horizons).
    """
    if horizon < 1:
        raise C2MError(f"forecast_sales: horizon must be >= 1 week, got {horizon}")
    if not 0 < interval < 1:
        raise C2MError(f"forecast_sales: interval must be in (0, 1), got {interval}")
    bottom, weeks, values = weekly_panel(orders, keys, week=week, value=value, fill_missing=fill_missing)
    if len(weeks) < 4:
        raise C2MError(f"forecast_sales: need at least 4 weeks of history, got {len(weeks)}")
    hierarchy = build_hierarchy(bottom, levels)
    history = hierarchy.aggregate(values)  # both sorted by the keys
    mean, growth, residuals, model = base_forecasts(history, horizon, season_length, intermittent_share)
    errors = calibration_errors(
        hierarchy, history, horizon, method, season_length, intermittent_share, calibration_windows, calibration_step
    )
    reconciled, low, high = reconcile_with_intervals(
        hierarchy, mean, growth, residuals, method=method, interval=interval, n_samples=n_samples, seed=seed,
        errors=errors,
    )
    future = [weeks[-1] + timedelta(days=7 * (i + 1)) for i in range(horizon)]
    n = hierarchy.n_nodes
    return (
        hierarchy.nodes[np.repeat(np.arange(n), horizon)]
        .with_columns(
            week=pl.Series(future * n, dtype=pl.Date),
            base=mean.reshape(-1),
            forecast=reconciled.reshape(-1),
            low=low.reshape(-1),
            high=high.reshape(-1),
            model=pl.Series(np.repeat(model, horizon)),
        )
    )


def base_forecasts(
    history: np.ndarray,
    horizon: int,
    season_length: int = 1,
    intermittent_share: float = 0.5,
    model_intervals: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each series' own forecast, for :func:`reconcile_with_intervals`.

    Returns ``mean`` and ``growth`` (``(n_series, horizon)``: the h-step forecast error's
    standard deviation over the one-step one), ``residuals`` (``(n_series, n_weeks - 1)``:
    in-sample one-step errors of the same weeks for every series) and the model names.
    ``model_intervals=False`` skips the models' own intervals (``growth`` is then all ones).
    """
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, CrostonOptimized

    n_series, n_weeks = history.shape
    intermittent = (history <= 0).mean(axis=1) >= intermittent_share
    mean = np.zeros((n_series, horizon))
    growth = np.ones((n_series, horizon))
    residuals = history[:, 1:] - history.mean(axis=1, keepdims=True)
    start = date(2000, 1, 3)
    ds = [start + timedelta(days=7 * i) for i in range(n_weeks)]

    def frame(rows: np.ndarray) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "unique_id": np.repeat(rows, n_weeks),
                "ds": pl.Series(ds * rows.size, dtype=pl.Date),
                "y": history[rows].reshape(-1),
            }
        )

    smooth = np.flatnonzero(~intermittent)
    if smooth.size:
        ets = AutoETS(season_length=season_length if n_weeks >= 2 * season_length + 2 else 1)
        engine = StatsForecast(models=[ets], freq="1w", n_jobs=1)
        level = [95] if model_intervals else None
        fc = engine.forecast(df=frame(smooth), h=horizon, level=level, fitted=True).sort("unique_id", "ds")
        mean[smooth] = fc["AutoETS"].to_numpy().reshape(smooth.size, horizon)
        if model_intervals:
            half = (fc["AutoETS-hi-95"] - fc["AutoETS-lo-95"]).to_numpy().reshape(smooth.size, horizon) / 2
            growth[smooth] = half / np.maximum(half[:, :1], 1e-12)
        fitted = engine.forecast_fitted_values().sort("unique_id", "ds")["AutoETS"].to_numpy()
        residuals[smooth] = (history[smooth] - fitted.reshape(smooth.size, n_weeks))[:, 1:]
    sparse = np.flatnonzero(intermittent)
    if sparse.size:
        fc = StatsForecast(models=[CrostonOptimized()], freq="1w", n_jobs=1).forecast(df=frame(sparse), h=horizon)
        mean[sparse] = fc.sort("unique_id", "ds")["CrostonOptimized"].to_numpy().reshape(sparse.size, horizon)
    mean = np.nan_to_num(mean, nan=0.0)
    residuals = np.nan_to_num(residuals, nan=0.0)
    growth = np.where(np.isfinite(growth) & (growth > 0), growth, 1.0)
    return mean, growth, residuals, np.where(intermittent, "Croston", "AutoETS")


def calibration_errors(
    hierarchy: Hierarchy,
    history: np.ndarray,
    horizon: int,
    method: str = "wls_struct",
    season_length: int = 1,
    intermittent_share: float = 0.5,
    n_windows: int = 4,
    step: int | None = None,
    min_train: int = 12,
) -> np.ndarray:
    """Out-of-sample errors of the reconciled forecast from origins inside the history.

    Origins ``step`` weeks apart (default half the horizon, at least 4) back from the end, the first
    ``step`` weeks before it, keeping at least ``min_train`` weeks of training: each refits the
    base models on the weeks before it, reconciles, and scores up to ``horizon`` weeks that
    followed. Each bottom series' errors are rescaled to its level now (mean of the last
    ``LEVEL_WEEKS`` weeks, plus one) over its level at that origin: by the ratio when the
    level fell, by its square root when it rose (scaling the errors of a young, growing series
    in proportion over-covered on the benchmark's launches; not scaling them under-covered),
    and the nodes' errors are the sums of their bottom series'. Returns ``(n_origins, n_nodes, horizon)`` errors
    ``actual - forecast`` (NaN past the end of the history); every ``[k, :, h]`` is coherent.
    """
    n_weeks = history.shape[1]
    step = step or max(4, (horizon + 1) // 2)
    origins = [n_weeks - j * step for j in range(1, n_windows + 1) if n_weeks - j * step >= max(min_train, 4)]
    errors = np.full((len(origins), hierarchy.n_nodes, horizon), np.nan)
    bottom = history[hierarchy.bottom_rows]
    level_now = bottom[:, -LEVEL_WEEKS:].mean(axis=1) + 1.0
    for k, origin in enumerate(origins):
        train = history[:, :origin]
        mean, _, residuals, _ = base_forecasts(train, horizon, season_length, intermittent_share, model_intervals=False)
        variances = np.maximum(residuals.var(axis=1), 1e-6)
        point = _nonnegative(hierarchy, reconciler(hierarchy, method=method, variances=variances)(mean))
        m = min(horizon, n_weeks - origin)
        # errors follow the series' level: in proportion when it fell, by its square root when it rose
        ratio = level_now / (bottom[:, max(0, origin - LEVEL_WEEKS) : origin].mean(axis=1) + 1.0)
        scale = np.where(ratio < 1, ratio, np.sqrt(ratio))
        missed = bottom[:, origin : origin + m] - point[hierarchy.bottom_rows, :m]
        errors[k, :, :m] = hierarchy.aggregate(scale[:, None] * missed)
    return errors


def reconcile_with_intervals(
    hierarchy: Hierarchy,
    mean: np.ndarray,
    growth: np.ndarray,
    residuals: np.ndarray,
    method: str = "wls_struct",
    interval: float = 0.9,
    n_samples: int = 400,
    seed: int = 0,
    errors: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coherent non-negative point forecasts and ``interval`` bounds, ``(n_nodes, horizon)`` each.

    With ``errors`` (:func:`calibration_errors`), the sample paths are the reconciled point
    forecast plus random combinations of the past out-of-sample error vectors of the same
    step and of up to ``POOL`` steps either side (normal, with their second moments), so
    the paths are coherent as drawn and their spread (bias included) is the one the
    forecast had out of sample; the bounds are their quantiles floored at zero. Without
    them (or where they are all missing), the one-step method:

    Sample paths are the base means plus normal errors with the covariance of the nodes'
    in-sample one-step errors (random combinations of the past weeks' error vectors, so
    the errors of a city and of its province stay correlated as they were), scaled by each
    model's error growth over the horizon; each path is reconciled and kept non-negative,
    and the bounds are their quantiles.
    """
    variances = np.maximum(residuals.var(axis=1), 1e-6)  # for "wls_var"
    project = reconciler(hierarchy, method=method, variances=variances)  # factored once for all paths
    point = _nonnegative(hierarchy, project(mean))
    rng = np.random.default_rng(seed)
    horizon = mean.shape[1]
    low = np.zeros_like(mean)
    high = np.zeros_like(mean)
    alpha = (1 - interval) / 2
    n_weeks = residuals.shape[1]
    steps = _error_pools(errors, horizon) if errors is not None else [None] * horizon
    for h in range(horizon):
        vectors = steps[h]
        if vectors is None:
            mixing = rng.standard_normal((n_weeks, n_samples)) / np.sqrt(max(n_weeks - 2, 1))  # 2 d.f.: level, alpha
            samples = mean[:, h : h + 1] + growth[:, h : h + 1] * (residuals @ mixing)
            coherent = _nonnegative(hierarchy, project(samples))
        else:
            mixing = rng.standard_normal((vectors.shape[1], n_samples)) / np.sqrt(vectors.shape[1])
            coherent = point[:, h : h + 1] + vectors @ mixing  # floored at zero below (after the quantiles)
        low[:, h], high[:, h] = np.quantile(coherent, [alpha, 1 - alpha], axis=1)
    low = np.clip(low, 0.0, None)  # = the quantiles of the paths floored at zero node by node
    return point, np.minimum(low, point), np.maximum(high, point)


def _error_pools(errors: np.ndarray, horizon: int) -> list[np.ndarray | None]:
    """For each step: the past error vectors ``(n_nodes, m)`` of the steps within ``POOL`` of it; a step
    no origin reached uses the last one reached, scaled as a random walk (``sqrt`` of the step);
    None when there are no errors at all."""
    reached = [h for h in range(horizon) if np.isfinite(errors[:, 0, h]).any()]
    if not reached:
        return [None] * horizon
    pools: list[np.ndarray | None] = []
    for h in range(horizon):
        base = min(h, reached[-1])
        scale = np.sqrt((h + 1) / (base + 1))
        window = errors[:, :, max(0, base - POOL) : base + POOL + 1]
        ok = np.isfinite(window[:, 0, :])
        vectors = window.transpose(1, 0, 2)[:, ok]
        pools.append(scale * vectors)
    return pools


def _nonnegative(hierarchy: Hierarchy, values: np.ndarray) -> np.ndarray:
    bottom = np.clip(values[hierarchy.bottom_rows], 0.0, None)
    return hierarchy.aggregate(bottom)


def _as_date(column: pl.Series) -> pl.Series:
    if column.dtype == pl.Date:
        return column
    if column.dtype == pl.Datetime:
        return column.dt.date()
    if column.dtype == pl.String:
        return column.str.to_date("%Y-%m-%d", strict=False)
    return pl.Series(column.name, [None] * column.len(), dtype=pl.Date)


def _rows(frame: pl.DataFrame, limit: int = 5) -> str:
    rows = frame["_row"].to_list()
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return ", ".join(str(r) for r in rows[:limit]) + more
