"""Production plan: integer builds per week and variant within a ramping plant capacity.

A mixed-integer program solved exactly with ``scipy.optimize.milp`` (HiGHS). For variant v and
week w, with cumulative demand ``D[v,w]``:

    minimise   sum  sum_k b_k B_k[v,w] + h I[v,w] + s U[v,w]
    subject to I[v,w] - sum_k B_k[v,w] = sum_{j<=w} x[v,j] - D[v,w]   (stock or backlog)
               sum_v x[v,w] <= capacity[w]                           (shared plant capacity)
               I[v,w] + U[v,w] >= safety_stock_weeks * d[v,w+1]     (safety stock, soft)
               B_k[v,w] <= D[v,w] / T  for k < T - 1                 (backlog tiers)
               x integer >= 0; I, B_k, U >= 0

``b_k = b (1 + fairness * k / (T - 1))`` is the backlog cost per unit-week (a car ordered and
not built) of tier k: the backlog is split into T tiers of 1/T of the variant's cumulative
demand, each a little dearer, so that when the plant is short every variant waits about the
same share of its orders (with one flat cost, any split of the shortage would be optimal and
the solver may starve a variant). ``h`` = holding cost per unit-week, ``s`` = cost per
unit-week below the safety stock; with ``b > s > h`` the plan builds ahead only when the
capacity would be short later, or to hold the safety stock. It leaves no backlog (beyond the
fraction of a car that integer builds cannot match) whenever the cumulative capacity covers
the cumulative demand and no car would have to wait more than ``b / h`` weeks in stock for that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_array, hstack, identity, kron, tril, vstack

from c2m._quiet import quiet_stdout
from c2m.errors import C2MError


@dataclass(frozen=True)
class PlanCosts:
    """Unit-week costs of the build plan's objective (see the module docstring)."""

    backlog: float = 10.0
    holding: float = 1.0
    safety: float = 2.0
    fairness: float = 0.1
    tiers: int = 20

    def tier_costs(self) -> np.ndarray:
        k = np.arange(self.tiers)
        return np.asarray(self.backlog * (1.0 + self.fairness * k / max(self.tiers - 1, 1)), dtype=float)

    def backlog_cost(self, backlog: np.ndarray, cumulative_demand: np.ndarray) -> float:
        """Tiered cost of ``backlog`` given the cumulative demand (same shapes)."""
        width = cumulative_demand / self.tiers
        cost = 0.0
        for k, c in enumerate(self.tier_costs()):
            amount = np.maximum(backlog - k * width, 0.0)
            if k < self.tiers - 1:
                amount = np.minimum(amount, width)
            cost += c * float(amount.sum())
        return cost


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
    fairness: float = 0.1,
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
    if fairness < 0:
        raise C2MError(f"build_plan: fairness must be >= 0, got {fairness}")
    costs = PlanCosts(backlog_cost, holding_cost, safety_cost, fairness)
    x, status = _solve(d, cap, safety_stock_weeks, costs, time_limit)
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
    cum_d = np.cumsum(demand, axis=1)
    net = np.cumsum(builds, axis=1) - cum_d
    inv, back = np.maximum(net, 0.0), np.maximum(-net, 0.0)
    short = np.maximum(_safety_targets(demand, safety_stock_weeks) - inv, 0.0)
    return float(costs.backlog_cost(back, cum_d) + costs.holding * inv.sum() + costs.safety * short.sum())


def _safety_targets(d: np.ndarray, weeks: float) -> np.ndarray:
    nxt = np.concatenate([d[:, 1:], d[:, -1:]], axis=1)
    return np.asarray(weeks * nxt)


def _solve(
    d: np.ndarray, cap: np.ndarray, ss_weeks: float, costs: PlanCosts, time_limit: float
) -> tuple[np.ndarray | None, str]:
    V, H = d.shape
    T = costs.tiers
    n = V * H  # blocks: x, I, B_0 .. B_{T-1}, U
    eye_v = identity(V, format="csr")
    lower_tri = tril(np.ones((H, H)), format="csr")
    cum = kron(eye_v, lower_tri, format="csr")  # cumulative sum of x per variant
    I_n = identity(n, format="csr")
    Z = csr_array((n, n))
    # I - sum_k B_k - cum(x) = -D
    A_bal = hstack([-cum, I_n, *([-I_n] * T), Z], format="csr")
    D = d.cumsum(axis=1).ravel()
    # sum_v x[v, w] <= cap[w]
    A_cap = hstack(
        [kron(np.ones((1, V)), identity(H), format="csr"), csr_array((H, (T + 2) * n))], format="csr"
    )
    # I + U >= ss
    A_ss = hstack([Z, I_n, *([Z] * T), I_n], format="csr")
    ss = _safety_targets(d, ss_weeks).ravel()
    A = vstack([A_bal, A_cap, A_ss], format="csr")
    lb = np.concatenate([-D, np.full(H, -np.inf), ss])
    ub = np.concatenate([-D, cap.astype(float), np.full(n, np.inf)])
    c = np.concatenate(
        [np.zeros(n), np.full(n, costs.holding)]
        + [np.full(n, ck) for ck in costs.tier_costs()]
        + [np.full(n, costs.safety)]
    )
    tier_ub = [np.full(n, np.inf) if k == T - 1 else D / T for k in range(T)]
    x_ub = np.tile(cap.astype(float), V)
    upper = np.concatenate([x_ub, np.full(n, np.inf), *tier_ub, np.full(n, np.inf)])
    bounds = Bounds(np.zeros((T + 3) * n), upper)
    integrality = np.concatenate([np.ones(n), np.zeros((T + 2) * n)])
    with quiet_stdout():
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
