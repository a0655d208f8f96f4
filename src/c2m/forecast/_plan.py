"""Production plan: integer builds per week and variant within a ramping plant capacity.

A mixed-integer program solved exactly with ``scipy.optimize.milp`` (HiGHS). For variant v and
week w, with cumulative demand ``D[v,w]``:

    minimise   sum  b B[v,w] + h I[v,w] + s U[v,w]
    subject to I[v,w] - B[v,w] = sum_{k<=w} x[v,k] - D[v,w]      (stock or backlog)
               sum_v x[v,w] <= capacity[w]                          (shared plant capacity)
               I[v,w] + U[v,w] >= safety_stock_weeks * d[v,w+1]    (safety stock, soft)
               x integer >= 0; I, B, U >= 0

``b`` = backlog cost per unit-week (a car ordered and not built), ``h`` = holding cost per
unit-week, ``s`` = cost per unit-week below the safety stock; with ``b > s > h`` the plan builds
ahead only when the capacity would be short later, or to hold the safety stock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_array, hstack, identity, kron, tril, vstack

from c2m.errors import C2MError


@dataclass(frozen=True)
class PlanCosts:
    backlog: float = 10.0
    holding: float = 1.0
    safety: float = 2.0


def ramp_capacity(capacity_per_week: int, ramp_weeks: int, n_weeks: int) -> np.ndarray:
    """Weekly capacity rising linearly to ``capacity_per_week`` at week ``ramp_weeks``."""
    w = np.arange(1, n_weeks + 1, dtype=float)
    frac = np.minimum(1.0, w / ramp_weeks) if ramp_weeks > 0 else np.ones(n_weeks)
    return np.floor(capacity_per_week * frac + 1e-9).astype(np.int64)


def build_plan(
    forecast: pl.DataFrame,
    capacity_per_week: int = 2500,
    ramp_weeks: int = 8,
    safety_stock_weeks: float = 1.0,
    backlog_cost: float = 10.0,
    holding_cost: float = 1.0,
    safety_cost: float = 2.0,
    time_limit: float = 60.0,
) -> pl.DataFrame:
    """Optimal weekly build plan per variant (``build_plan.csv`` schema, plus ``inventory``).

    ``forecast`` needs ``week``, ``variant`` and ``demand`` (summed over cities); ``week_start``
    is carried over when present. ``capacity`` is the plant's weekly capacity shared by all
    variants (linear ramp over ``ramp_weeks``). ``backlog`` is unmet cumulative demand at the
    end of the week, ``inventory`` built cars not yet delivered.
    """
    missing = [c for c in ("week", "variant", "demand") if c not in forecast.columns]
    if missing:
        raise C2MError(f"build_plan: forecast is missing column(s) {missing}; found {forecast.columns}")
    if capacity_per_week < 0 or ramp_weeks < 0 or safety_stock_weeks < 0:
        raise C2MError("build_plan: capacity_per_week, ramp_weeks and safety_stock_weeks must be >= 0")
    if not (backlog_cost > safety_cost >= 0 and backlog_cost > holding_cost >= 0):
        raise C2MError(
            "build_plan: need backlog_cost > safety_cost >= 0 and backlog_cost > holding_cost >= 0"
        )
    agg = (
        forecast.with_columns(pl.col("week").cast(pl.Int64), pl.col("variant").cast(pl.String))
        .group_by(["variant", "week"])
        .agg(pl.col("demand").cast(pl.Float64).sum())
        .sort(["variant", "week"])
    )
    if agg["demand"].null_count() or (agg["demand"] < 0).any():
        raise C2MError("build_plan: demand must be non-negative numbers")
    variants = agg["variant"].unique(maintain_order=True).to_list()
    weeks = np.arange(int(agg["week"].min()), int(agg["week"].max()) + 1)  # type: ignore[arg-type]
    V, H = len(variants), len(weeks)
    d = np.zeros((V, H))
    vi = {v: i for i, v in enumerate(variants)}
    for v, w, x in agg.iter_rows():
        d[vi[v], w - weeks[0]] = x
    cap = ramp_capacity(capacity_per_week, ramp_weeks, H)
    x, status = _solve(
        d, cap, safety_stock_weeks, PlanCosts(backlog_cost, holding_cost, safety_cost), time_limit
    )
    if x is None:
        raise C2MError(f"build_plan: the solver failed ({status})")
    cum_x = x.cumsum(axis=1)
    cum_d = d.cumsum(axis=1)
    net = cum_x - cum_d
    week_start = _week_starts(forecast, weeks)
    return pl.DataFrame(
        {
            "week": np.tile(weeks, V).astype(np.int64),
            "week_start": week_start * V,
            "variant": np.repeat(np.array(variants, dtype=object), H),
            "build": x.ravel().astype(np.int64),
            "demand": d.ravel(),
            "cumulative_build": cum_x.ravel().astype(np.int64),
            "cumulative_demand": cum_d.ravel(),
            "backlog": np.maximum(-net, 0.0).ravel(),
            "capacity": np.tile(cap, V).astype(np.int64),
            "inventory": np.maximum(net, 0.0).ravel(),
        },
        schema_overrides={"week_start": pl.Date, "variant": pl.String},
    ).sort(["week", "variant"])


def plan_cost(
    builds: np.ndarray, demand: np.ndarray, safety_stock_weeks: float = 1.0, costs: PlanCosts | None = None
) -> float:
    """Objective value of integer ``builds`` ``(V, H)`` against ``demand`` ``(V, H)``."""
    costs = costs or PlanCosts()
    net = np.cumsum(builds, axis=1) - np.cumsum(demand, axis=1)
    inv, back = np.maximum(net, 0.0), np.maximum(-net, 0.0)
    short = np.maximum(_safety_targets(demand, safety_stock_weeks) - inv, 0.0)
    return float(costs.backlog * back.sum() + costs.holding * inv.sum() + costs.safety * short.sum())


def _safety_targets(d: np.ndarray, weeks: float) -> np.ndarray:
    nxt = np.concatenate([d[:, 1:], d[:, -1:]], axis=1)
    return np.asarray(weeks * nxt)


def _solve(
    d: np.ndarray, cap: np.ndarray, ss_weeks: float, costs: PlanCosts, time_limit: float
) -> tuple[np.ndarray | None, str]:
    V, H = d.shape
    n = V * H  # blocks: x, I, B, U
    eye_v = identity(V, format="csr")
    lower_tri = tril(np.ones((H, H)), format="csr")
    cum = kron(eye_v, lower_tri, format="csr")  # cumulative sum of x per variant
    I_n = identity(n, format="csr")
    Z = csr_array((n, n))
    # I - B - cum(x) = -D
    A_bal = hstack([-cum, I_n, -I_n, Z], format="csr")
    D = d.cumsum(axis=1).ravel()
    # sum_v x[v, w] <= cap[w]
    A_cap = hstack([kron(np.ones((1, V)), identity(H), format="csr"), csr_array((H, 3 * n))], format="csr")
    # I + U >= ss
    A_ss = hstack([Z, I_n, Z, I_n], format="csr")
    ss = _safety_targets(d, ss_weeks).ravel()
    A = vstack([A_bal, A_cap, A_ss], format="csr")
    lb = np.concatenate([-D, np.full(H, -np.inf), ss])
    ub = np.concatenate([-D, cap.astype(float), np.full(n, np.inf)])
    c = np.concatenate(
        [np.zeros(n), np.full(n, costs.holding), np.full(n, costs.backlog), np.full(n, costs.safety)]
    )
    x_ub = np.tile(cap.astype(float), V)
    bounds = Bounds(np.zeros(4 * n), np.concatenate([x_ub, np.full(3 * n, np.inf)]))
    integrality = np.concatenate([np.ones(n), np.zeros(3 * n)])
    res = milp(
        c,
        constraints=LinearConstraint(A, lb, ub),
        integrality=integrality,
        bounds=bounds,
        options={"time_limit": time_limit, "mip_rel_gap": 1e-9},
    )
    if res.x is None:
        return None, str(res.message)
    return np.round(res.x[:n]).reshape(V, H), str(res.message)


def _week_starts(forecast: pl.DataFrame, weeks: np.ndarray) -> list[object]:
    if "week_start" not in forecast.columns:
        return [None] * len(weeks)
    col = forecast["week_start"]
    if col.dtype != pl.Date:
        try:
            col = col.cast(pl.String).str.to_date()
        except pl.exceptions.PolarsError:
            return [None] * len(weeks)
    pairs = pl.DataFrame({"week": forecast["week"].cast(pl.Int64), "week_start": col}).unique("week")
    lookup = dict(pairs.iter_rows())
    return [lookup.get(int(w)) for w in weeks]
