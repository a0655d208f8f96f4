"""Weekly demand by variant and city: Bass diffusion of the simulated annual volume.

Assumptions (documented in ``forecast_demand``):

* the market simulator's ``annual_volume`` is a steady yearly sales rate, so the market
  potential of a ``horizon_weeks`` forecast is ``M = annual_volume * horizon_weeks / 52``;
* within the horizon, sales follow a Bass diffusion in weeks (``p``, ``q``) truncated at the
  horizon: cumulative demand at week ``w`` is ``M F(w) / F(H)``, so the horizon's total is M;
* observed pre-orders are firm early demand of the same market: they come first (observed
  counts in their weeks, the fitted Bass curve of the pre-orders after that) and the rest of
  the potential, ``M - preorders(H)``, follows the sales diffusion;
* intervals come from Monte Carlo draws of the volume (``annual_volume_low/high`` read as a 95 %
  interval of a two-piece normal, common to all cells), of the sales ``p`` and ``q``
  (log-normal with ``bass_sd``) and of the pre-order Bass fit (its ML covariance).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from c2m.errors import C2MError

from ._bass import bass_fraction, fit_bass
from ._preorders import _volume_cells


def forecast_demand(
    volumes: pl.DataFrame,
    horizon_weeks: int = 52,
    start: date = date(2026, 1, 5),
    preorders: pl.DataFrame | None = None,
    seed: int = 0,
    p: float = 0.01,
    q: float = 0.12,
    bass_sd: float = 0.25,
    level: float = 0.9,
    n_draws: int = 1000,
) -> pl.DataFrame:
    """Weekly demand forecast (``forecast.csv`` schema of docs/schemas.md).

    ``volumes`` has ``variant``, ``city``, ``annual_volume`` and optionally
    ``annual_volume_low``/``annual_volume_high``. Market potential over the horizon is
    ``annual_volume * horizon_weeks / 52``, spread over the weeks by a Bass diffusion with
    weekly ``p`` and ``q`` (default peak near week 19), normalised so the horizon sums to it.
    ``preorders`` (``week`` or ``day`` and ``preorders``, optionally ``variant``/``city``) pull
    the first weeks forward: a Bass model is fitted to their weekly cumulative counts and the
    pre-ordered demand comes first. ``demand`` is the point forecast (it adds up over cities);
    ``demand_low``/``demand_high`` is a ``level`` interval from volume and Bass parameter draws.
    """
    if horizon_weeks < 1:
        raise C2MError(f"forecast_demand: horizon_weeks must be >= 1, got {horizon_weeks}")
    if not 0 < level < 1:
        raise C2MError(f"forecast_demand: level must be in (0, 1), got {level}")
    if not (p > 0 and q >= 0):
        raise C2MError(f"forecast_demand: need p > 0 and q >= 0, got p={p}, q={q}")
    cells = _volume_cells(volumes, "forecast_demand")
    vol = cells["annual_volume"].to_numpy()
    low = _optional(volumes, "annual_volume_low", vol)
    high = _optional(volumes, "annual_volume_high", vol)
    if np.any(low > vol + 1e-9) or np.any(high < vol - 1e-9):
        raise C2MError("forecast_demand: need annual_volume_low <= annual_volume <= annual_volume_high")
    H = horizon_weeks
    scale = H / 52.0
    M, M_low, M_high = vol * scale, low * scale, high * scale
    weeks = np.arange(1, H + 1, dtype=float)
    n_cells = cells.height
    rng = np.random.default_rng(seed)

    # pre-orders: observed cumulative per cell for the observed weeks, fitted Bass after.
    pre_cum = np.zeros((n_cells, H))  # point cumulative pre-orders by week
    pre_draws: np.ndarray | None = None  # (n_draws, n_cells, H)
    if preorders is not None:
        observed, shares = _weekly_preorders(preorders, cells)
        W = observed.shape[1]
        total = observed.sum(axis=0).cumsum()
        if total[-1] <= 0:
            raise C2MError("forecast_demand: preorders holds no pre-order at all; pass preorders=None")
        # a weak prior (sd = 100 %) at the horizon's potential keeps m finite on early data
        potential = max(float(M.sum()), float(total[-1]))
        fit = fit_bass(np.arange(1, W + 1, dtype=float), total, m_prior=(potential, potential))
        pre_cum = _preorder_path(observed, shares, fit.p, fit.q, fit.m, H)
        d = fit.draws(n_draws, seed=int(rng.integers(2**31)))
        pre_draws = np.stack(
            [_preorder_path(observed, shares, d[i, 0], d[i, 1], d[i, 2], H) for i in range(n_draws)]
        )

    # point forecast
    demand_cum = _combine(M[None, :], pre_cum[None], p, q, weeks)[0]
    demand = np.diff(np.concatenate([np.zeros((n_cells, 1)), demand_cum], axis=1), axis=1)

    # draws: volume (two-piece normal, common factor), sales Bass (log-normal), pre-order fit
    z = rng.standard_normal(n_draws)
    sig_lo, sig_hi = (M - M_low) / 1.96, (M_high - M) / 1.96
    M_d = np.maximum(M[None, :] + np.where(z[:, None] < 0, z[:, None] * sig_lo, z[:, None] * sig_hi), 0.0)
    p_d = p * np.exp(bass_sd * rng.standard_normal(n_draws))
    q_d = q * np.exp(bass_sd * rng.standard_normal(n_draws))
    pre_d = pre_draws if pre_draws is not None else np.zeros((n_draws, n_cells, H))
    cum_d = _combine(M_d, pre_d, p_d, q_d, weeks)
    inc_d = np.diff(np.concatenate([np.zeros((n_draws, n_cells, 1)), cum_d], axis=2), axis=2)
    alpha = (1.0 - level) / 2.0
    lo_q, hi_q = np.quantile(inc_d, [alpha, 1.0 - alpha], axis=0)
    lo_q = np.minimum(lo_q, demand)
    hi_q = np.maximum(hi_q, demand)

    week_col = np.tile(np.arange(1, H + 1, dtype=np.int64), n_cells)
    return pl.DataFrame(
        {
            "week": week_col,
            "week_start": [start + timedelta(weeks=int(w) - 1) for w in week_col],
            "variant": np.repeat(cells["variant"].to_numpy(), H),
            "city": np.repeat(cells["city"].to_numpy(), H),
            "demand": demand.ravel(),
            "demand_low": lo_q.ravel(),
            "demand_high": hi_q.ravel(),
        },
        schema={
            "week": pl.Int64,
            "week_start": pl.Date,
            "variant": pl.String,
            "city": pl.String,
            "demand": pl.Float64,
            "demand_low": pl.Float64,
            "demand_high": pl.Float64,
        },
    ).sort(["week", "variant", "city"])


def _combine(
    M: np.ndarray, pre_cum: np.ndarray, p: float | np.ndarray, q: float | np.ndarray, weeks: np.ndarray
) -> np.ndarray:
    """Cumulative demand ``(draws, cells, H)``: pre-orders first, the rest by the sales diffusion."""
    p_arr = np.asarray(p, dtype=float).reshape(-1, 1)
    q_arr = np.asarray(q, dtype=float).reshape(-1, 1)
    F = bass_fraction(weeks[None, :], p_arr, q_arr)  # (draws, H)
    shape = F / F[:, -1:]
    pre_total = pre_cum[:, :, -1]
    rest = np.maximum(M - pre_total, 0.0)
    return np.asarray(pre_cum + rest[:, :, None] * shape[:, None, :])


def _preorder_path(
    observed: np.ndarray, shares: np.ndarray, p: float, q: float, m: float, H: int
) -> np.ndarray:
    """Cumulative pre-orders per cell and week: observed, then the fitted curve's increments."""
    W = observed.shape[1]
    cum_obs = observed.cumsum(axis=1)
    out = np.empty((observed.shape[0], H))
    k = min(W, H)
    out[:, :k] = cum_obs[:, :k]
    if H > W:
        weeks = np.arange(W + 1, H + 1, dtype=float)
        extra = m * (bass_fraction(weeks, p, q) - bass_fraction(np.array(float(W)), p, q))
        out[:, W:] = cum_obs[:, -1:] + shares[:, None] * np.maximum(extra, 0.0)[None, :]
    return out


def _weekly_preorders(preorders: pl.DataFrame, cells: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Weekly pre-order counts ``(cells, W)`` and each cell's share of the pre-orders."""
    if "preorders" not in preorders.columns:
        raise C2MError(f"forecast_demand: preorders needs a 'preorders' column; found {preorders.columns}")
    if "week" in preorders.columns:
        week = pl.col("week").cast(pl.Int64)
    elif "day" in preorders.columns:
        week = (pl.col("day").cast(pl.Int64) - 1) // 7 + 1
    else:
        raise C2MError("forecast_demand: preorders needs a 'week' or a 'day' column (1 = launch)")
    frame = preorders.with_columns(week.alias("_week"), pl.col("preorders").cast(pl.Float64))
    if frame["_week"].min() is None or int(frame["_week"].min()) < 1:  # type: ignore[arg-type]
        raise C2MError("forecast_demand: preorder weeks/days must start at 1")
    W = int(frame["_week"].max())  # type: ignore[arg-type]
    if W < 3:
        raise C2MError(f"forecast_demand: need at least 3 weeks of pre-orders to fit, got {W}")
    n = cells.height
    vol = cells["annual_volume"].to_numpy()
    base_share = vol / vol.sum() if vol.sum() > 0 else np.full(n, 1.0 / n)
    total = frame.group_by("_week").agg(pl.col("preorders").sum()).sort("_week")
    weekly_total = np.zeros(W)
    weekly_total[total["_week"].to_numpy() - 1] = total["preorders"].to_numpy()
    if {"variant", "city"} <= set(frame.columns):
        keyed = (
            frame.with_columns(pl.col("variant").cast(pl.String), pl.col("city").cast(pl.String))
            .group_by(["variant", "city", "_week"])
            .agg(pl.col("preorders").sum())
        )
        index = {(v, c): i for i, (v, c) in enumerate(zip(cells["variant"], cells["city"], strict=True))}
        observed = np.zeros((n, W))
        unknown = set()
        for v, c, w, x in keyed.iter_rows():
            i = index.get((v, c))
            if i is None:
                unknown.add((v, c))
                continue
            observed[i, w - 1] += x
        if unknown:
            raise C2MError(
                f"forecast_demand: preorders name (variant, city) cells not in volumes: {sorted(unknown)[:3]}"
            )
        tot = observed.sum()
        shares = observed.sum(axis=1) / tot if tot > 0 else base_share
    else:
        shares = base_share
        observed = shares[:, None] * weekly_total[None, :]
    return observed, shares


def _optional(volumes: pl.DataFrame, column: str, default: np.ndarray) -> np.ndarray:
    if column not in volumes.columns:
        return default.copy()
    values = volumes[column].cast(pl.Float64).to_numpy()
    return np.where(np.isnan(values), default, values)
