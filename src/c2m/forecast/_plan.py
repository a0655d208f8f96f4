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

With a changeover cost ``c``, binaries ``y[v,w]`` (item v set up in week w) add ``c y`` to the
cost, with ``x <= capacity y`` and the valid lot-sizing cuts of ``_lot_sizing_cuts``
(``x[v,t] <= d[v,t..l] y[v,t] + I[v,l] + backlog[v,t-1]``), which tighten the relaxation
without changing the optimum.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    items: Sequence[str] = ("variant",),
    pack_column: str | None = None,
    pack_supply: Mapping[str, float | Sequence[float]] | None = None,
    changeover_cost: float = 0.0,
    mip_gap: float | None = None,
) -> pl.DataFrame:
    """Optimal weekly build plan per item (``build_plan.csv`` schema, plus ``inventory``).

    ``forecast`` needs ``week``, the ``items`` columns (default ``variant``; e.g. ``variant,
    colour, battery`` for a plan by configuration) and ``demand`` (summed over cities);
    ``week_start`` is carried over when present. ``capacity`` is the plant's weekly capacity
    shared by all items (linear ramp over ``ramp_weeks``). ``backlog`` is unmet cumulative
    demand at the end of the week, ``inventory`` built cars not yet delivered.

    Battery packs: with ``pack_column`` (one of ``items``) and ``pack_supply`` (packs
    delivered per week for each pack type: one number, or one per week), the cars built with
    a pack type never use more packs than delivered so far (unused packs are kept).
    ``changeover_cost``: cost of each week in which an item is built at all (a line
    set-up), so the plan batches small items instead of building a few every week; the
    model then carries lot-sizing cuts (see ``_lot_sizing_cuts``) that tighten its relaxation.
    ``mip_gap``: the relative optimality gap at which the solver may stop (default 1e-9, or
    1e-6 with a changeover cost: optimal); with ``time_limit`` the best plan found so far.
    """
    items = list(items)
    missing = [c for c in ("week", *items, "demand") if c not in forecast.columns]
    if missing:
        raise C2MError(f"build_plan: forecast is missing column(s) {missing}; found {forecast.columns}")
    if capacity_per_week < 0 or ramp_weeks < 0 or safety_stock_weeks < 0:
        raise C2MError("build_plan: capacity_per_week, ramp_weeks and safety_stock_weeks must be >= 0")
    if not items:
        raise C2MError("build_plan: items must name at least one column, e.g. ('variant',)")
    if changeover_cost < 0:
        raise C2MError(f"build_plan: changeover_cost must be >= 0, got {changeover_cost}")
    if mip_gap is not None and not 0 <= mip_gap < 1:
        raise C2MError(f"build_plan: mip_gap must be in [0, 1), got {mip_gap}")
    if not (backlog_cost > safety_cost >= 0 and backlog_cost > holding_cost >= 0):
        raise C2MError(
            "build_plan: need backlog_cost > safety_cost >= 0 and backlog_cost > holding_cost >= 0"
        )
    agg = (
        forecast.with_columns(pl.col("week").cast(pl.Int64), *(pl.col(k).cast(pl.String) for k in items))
        .group_by([*items, "week"])
        .agg(pl.col("demand").cast(pl.Float64).sum())
        .sort([*items, "week"])
    )
    if agg["demand"].null_count() or (agg["demand"] < 0).any():
        raise C2MError("build_plan: demand must be non-negative numbers")
    item_table = agg.select(items).unique(maintain_order=True)
    weeks = np.arange(int(agg["week"].min()), int(agg["week"].max()) + 1)  # type: ignore[arg-type]
    V, H = item_table.height, len(weeks)
    d = np.zeros((V, H))
    index = {row: i for i, row in enumerate(item_table.iter_rows())}
    for *key, w, x in agg.iter_rows():
        d[index[tuple(key)], w - weeks[0]] = x
    cap = ramp_capacity(capacity_per_week, ramp_weeks, H)
    if fairness < 0:
        raise C2MError(f"build_plan: fairness must be >= 0, got {fairness}")
    costs = PlanCosts(backlog_cost, holding_cost, safety_cost, fairness)
    packs = _pack_constraints(item_table, pack_column, pack_supply, H)
    x, status = _solve(d, cap, safety_stock_weeks, costs, time_limit, packs, changeover_cost, mip_gap)
    if x is None:
        raise C2MError(f"build_plan: the solver failed ({status})")
    cum_x = x.cumsum(axis=1)
    cum_d = d.cumsum(axis=1)
    net = cum_x - cum_d
    week_start = _week_starts(forecast, weeks)
    repeated = item_table[np.repeat(np.arange(V), H)]
    return (
        pl.DataFrame(
            {
                "week": np.tile(weeks, V).astype(np.int64),
                "week_start": week_start * V,
            },
            schema_overrides={"week_start": pl.Date},
        )
        .hstack(repeated)
        .with_columns(
            build=pl.Series(x.ravel().astype(np.int64)),
            demand=pl.Series(d.ravel()),
            cumulative_build=pl.Series(cum_x.ravel().astype(np.int64)),
            cumulative_demand=pl.Series(cum_d.ravel()),
            backlog=pl.Series(np.maximum(-net, 0.0).ravel()),
            capacity=pl.Series(np.tile(cap, V).astype(np.int64)),
            inventory=pl.Series(np.maximum(net, 0.0).ravel()),
        )
        .sort(["week", *items])
    )


def _pack_constraints(
    item_table: pl.DataFrame,
    pack_column: str | None,
    pack_supply: Mapping[str, float | Sequence[float]] | None,
    n_weeks: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Item-to-pack membership ``(P, V)`` and cumulative pack deliveries ``(P, H)``, or None."""
    if pack_column is None and pack_supply is None:
        return None
    if pack_column is None or pack_supply is None:
        raise C2MError("build_plan: pack_column and pack_supply go together")
    if pack_column not in item_table.columns:
        raise C2MError(f"build_plan: pack_column {pack_column!r} must be one of the items {item_table.columns}")
    used = item_table[pack_column].unique(maintain_order=True).to_list()
    unknown = [p for p in used if p not in pack_supply]
    if unknown:
        raise C2MError(f"build_plan: pack_supply has no supply for pack type(s) {unknown}; it has {list(pack_supply)}")
    membership = np.zeros((len(used), item_table.height))
    supply = np.zeros((len(used), n_weeks))
    for j, pack in enumerate(used):
        membership[j] = (item_table[pack_column] == pack).to_numpy()
        weekly = np.broadcast_to(np.asarray(pack_supply[pack], dtype=float), (n_weeks,)) if np.ndim(
            pack_supply[pack]
        ) == 0 else np.asarray(pack_supply[pack], dtype=float)
        if weekly.shape != (n_weeks,) or not np.all(np.isfinite(weekly)) or np.any(weekly < 0):
            raise C2MError(
                f"build_plan: pack_supply[{pack!r}] must be one number >= 0 or {n_weeks} of them (one per week)"
            )
        supply[j] = np.cumsum(weekly)
    return membership, supply


def plan_cost(
    builds: np.ndarray,
    demand: np.ndarray,
    safety_stock_weeks: float = 1.0,
    costs: PlanCosts | None = None,
    changeover_cost: float = 0.0,
) -> float:
    """Objective value of integer ``builds`` ``(V, H)`` against ``demand`` ``(V, H)``."""
    costs = costs or PlanCosts()
    cum_d = np.cumsum(demand, axis=1)
    net = np.cumsum(builds, axis=1) - cum_d
    inv, back = np.maximum(net, 0.0), np.maximum(-net, 0.0)
    short = np.maximum(_safety_targets(demand, safety_stock_weeks) - inv, 0.0)
    setups = changeover_cost * float(np.count_nonzero(builds))
    return float(costs.backlog_cost(back, cum_d) + costs.holding * inv.sum() + costs.safety * short.sum() + setups)


def _safety_targets(d: np.ndarray, weeks: float) -> np.ndarray:
    nxt = np.concatenate([d[:, 1:], d[:, -1:]], axis=1)
    return np.asarray(weeks * nxt)


def _solve(
    d: np.ndarray,
    cap: np.ndarray,
    ss_weeks: float,
    costs: PlanCosts,
    time_limit: float,
    packs: tuple[np.ndarray, np.ndarray] | None = None,
    changeover_cost: float = 0.0,
    mip_gap: float | None = None,
) -> tuple[np.ndarray | None, str]:
    V, H = d.shape
    T = costs.tiers
    n = V * H  # blocks: x, I, B_0 .. B_{T-1}, U, then y (set-ups) with a changeover cost
    setups = changeover_cost > 0
    n_vars = (T + 3 + setups) * n
    eye_v = identity(V, format="csr")
    lower_tri = tril(np.ones((H, H)), format="csr")
    cum = kron(eye_v, lower_tri, format="csr")  # cumulative sum of x per item
    I_n = identity(n, format="csr")
    Z = csr_array((n, n))
    tail = [Z] if setups else []
    # I - sum_k B_k - cum(x) = -D
    A_bal = hstack([-cum, I_n, *([-I_n] * T), Z, *tail], format="csr")
    D = d.cumsum(axis=1).ravel()
    # sum_v x[v, w] <= cap[w]
    A_cap = hstack([kron(np.ones((1, V)), identity(H), format="csr"), csr_array((H, n_vars - n))], format="csr")
    # I + U >= ss
    A_ss = hstack([Z, I_n, *([Z] * T), I_n, *tail], format="csr")
    ss = _safety_targets(d, ss_weeks).ravel()
    blocks = [A_bal, A_cap, A_ss]
    lb = [-D, np.full(H, -np.inf), ss]
    ub = [-D, cap.astype(float), np.full(n, np.inf)]
    if packs is not None:  # cumulative builds with each pack <= cumulative pack deliveries
        membership, supply = packs
        A_pack = kron(csr_array(membership), lower_tri, format="csr")
        blocks.append(hstack([A_pack, csr_array((A_pack.shape[0], n_vars - n))], format="csr"))
        lb.append(np.full(A_pack.shape[0], -np.inf))
        ub.append(supply.ravel())
    if setups:  # x[v, w] <= cap[w] y[v, w]
        link = csr_array(np.diag(np.tile(cap.astype(float), V)))
        blocks.append(hstack([I_n, csr_array((n, (T + 2) * n)), -link], format="csr"))
        lb.append(np.full(n, -np.inf))
        ub.append(np.zeros(n))
        A_ls = _lot_sizing_cuts(d, cap, T)
        blocks.append(A_ls)
        lb.append(np.full(A_ls.shape[0], -np.inf))
        ub.append(np.zeros(A_ls.shape[0]))
    A = vstack(blocks, format="csr")
    gap = 1e-9 if not setups else 1e-6
    c = np.concatenate(
        [np.zeros(n), np.full(n, costs.holding)]
        + [np.full(n, ck) for ck in costs.tier_costs()]
        + [np.full(n, costs.safety)]
        + ([np.full(n, changeover_cost)] if setups else [])
    )
    tier_ub = [np.full(n, np.inf) if k == T - 1 else D / T for k in range(T)]
    x_ub = np.tile(cap.astype(float), V)
    upper = np.concatenate([x_ub, np.full(n, np.inf), *tier_ub, np.full(n, np.inf), *([np.ones(n)] if setups else [])])
    bounds = Bounds(np.zeros(n_vars), upper)
    integrality = np.concatenate([np.ones(n), np.zeros((T + 2) * n), np.ones(n) if setups else np.zeros(0)])
    with quiet_stdout():
        res = milp(
            c,
            constraints=LinearConstraint(A, np.concatenate(lb), np.concatenate(ub)),
            integrality=integrality,
            bounds=bounds,
            options={"time_limit": time_limit, "mip_rel_gap": mip_gap if mip_gap is not None else gap},
        )
    if res.x is None:
        return None, str(res.message)
    return np.round(res.x[:n]).reshape(V, H), str(res.message)


def _lot_sizing_cuts(d: np.ndarray, cap: np.ndarray, tiers: int) -> csr_array:
    """Rows ``x[v,t] - d[v,t..l] y[v,t] - I[v,l] - backlog[v,t-1] <= 0`` for ``t <= l``: valid lot-sizing cuts.

    What week t builds goes to the demand of weeks t..l, to the stock left at the end of week l,
    or to the backlog of the weeks before t; so with no set-up nothing is built and with one at
    most ``d[v,t..l] + I[v,l] + backlog[v,t-1]``. Kept only where ``d[v,t..l] < cap[t]`` (otherwise
    ``x <= cap y`` is tighter). Much tighter than ``x <= cap y`` for items that sell little a week.
    """
    V, H = d.shape
    n = V * H
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    r = 0
    cum = np.concatenate([np.zeros((V, 1)), d.cumsum(axis=1)], axis=1)
    for v in range(V):
        for t in range(H):
            ls = np.arange(t, H)
            dtl = cum[v, ls + 1] - cum[v, t]
            ls, dtl = ls[dtl < cap[t]], dtl[dtl < cap[t]]
            for last, amount in zip(ls, dtl, strict=True):
                i = v * H
                c = [i + t, (tiers + 3) * n + i + t, n + i + last]
                w = [1.0, -amount, -1.0]
                if t > 0:
                    c += [(2 + k) * n + i + t - 1 for k in range(tiers)]
                    w += [-1.0] * tiers
                rows.append(np.full(len(c), r))
                cols.append(np.asarray(c))
                vals.append(np.asarray(w))
                r += 1
    if not rows:
        return csr_array((0, (tiers + 4) * n))
    return csr_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, (tiers + 4) * n)
    )


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
