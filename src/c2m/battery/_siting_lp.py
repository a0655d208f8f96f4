"""Fewest stations for one zone-store component: LP bound, LP-guided rounding and local search.

The model is :func:`c2m.battery.site_zones`'s: integer stations ``k_i`` in ``[0, K]`` at stores, each
serving ``cap`` swaps/day; zone ``j``'s demand ``w_j`` split over the stores in reach (``y_ij``).

* Bound: the LP relaxation (HiGHS dual simplex through ``scipy.optimize.linprog``) with one linking row
  per zone, ``sum_i y_ij <= sum_{i near j} k_i``. The objective ``sum_i k_i`` is integral, so
  ``ceil(LP)`` is a certified lower bound. The per-pair form ``y_ij <= k_i`` is stronger in theory,
  but capacity dominates here. On the benchmark's largest city it lifts the LP only from 178.47 to
  178.95 (same ceiling), and its LP takes 600 s instead of 0.8 s.
* Primal: for integer ``k``, feasibility is a max-flow (source -> zone ``w_j``, zone -> store in reach,
  store -> sink ``cap k_i``), computed exactly on integers with demands rounded up, so a plan that
  passes is feasible for the real data. Start from ``floor(k_LP)``. Repair: add a station where the
  unserved demand in reach is largest, until all is served. Then local search until no move helps:
  drop one station (stores with the least LP value first), or "two for one": close one station at
  each of two stores that share a zone and repair with a single station.
* Cutoff MILP: while a gap is left, HiGHS on the same model plus ``sum_i k_i <= incumbent - 1``.
  It finds a better plan, or proves there is none (then the incumbent is optimal), or runs out of time.
* :func:`assign`: the transport LP for a fixed ``k`` (least swap-weighted distance), which gives the
  final assignment and settles the plans that are tight to within the max-flow check's rounding.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import csr_array, vstack
from scipy.sparse.csgraph import maximum_flow

from c2m._quiet import quiet_stdout
from c2m.errors import C2MError

_SCALE = 1000.0  # max-flow units per swap/day (integer capacities), at most


@dataclass
class ComponentPlan:
    """Stations for one component, with its certified lower bound."""

    k: np.ndarray  # stations per site (integers in [0, K])
    bound: float  # ceil(LP relaxation): no plan has fewer stations
    lp: float  # the LP relaxation's optimum
    seconds: float


def _model(si: np.ndarray, pj: np.ndarray, w: np.ndarray, n: int, cap: float, K: int) -> tuple[Any, ...]:
    """``c, A_ub, A_eq, bounds`` of the model on ``[k (n), y (pairs)]`` (``A_ub x <= 0``, ``A_eq x = 1``)."""
    P, m = si.size, w.size
    cols = n + np.arange(P)
    serve = csr_array((np.ones(P), (pj, cols)), shape=(m, n + P))
    capacity = csr_array(
        (
            np.concatenate([w[pj], np.full(n, -cap)]),
            (np.concatenate([si, np.arange(n)]), np.concatenate([cols, np.arange(n)])),
        ),
        shape=(n, n + P),
    )
    link = csr_array(
        (np.concatenate([np.ones(P), -np.ones(P)]), (np.tile(pj, 2), np.concatenate([cols, si]))), shape=(m, n + P)
    )
    bounds = np.column_stack([np.zeros(n + P), np.concatenate([np.full(n, float(K)), np.ones(P)])])
    c = np.concatenate([np.ones(n), np.zeros(P)])
    return c, vstack([capacity, link]).tocsr(), serve, bounds


def lp_relaxation(
    si: np.ndarray, pj: np.ndarray, w: np.ndarray, n: int, cap: float, K: int
) -> tuple[float, np.ndarray]:
    """LP relaxation of the fewest-stations model: its optimum and the stations ``k``."""
    c, A_ub, A_eq, bounds = _model(si, pj, w, n, cap, K)
    with quiet_stdout():
        r = linprog(
            c,
            A_ub=A_ub,
            b_ub=np.zeros(A_ub.shape[0]),
            A_eq=A_eq,
            b_eq=np.ones(A_eq.shape[0]),
            bounds=bounds,
            method="highs",
        )
    if r.status != 0:
        raise C2MError(f"site_zones: the LP relaxation failed ({r.message})")
    return float(r.fun), np.clip(r.x[:n], 0.0, K)


def below(
    si: np.ndarray, pj: np.ndarray, w: np.ndarray, n: int, cap: float, K: int, stations: int, time_limit: float
) -> tuple[np.ndarray | None, float]:
    """MILP (HiGHS) restricted to plans with at most ``stations`` stations (the incumbent as a cutoff).

    Returns the best plan found (or None) and a certified lower bound on the fewest stations: the
    MILP's dual bound, or ``stations + 1`` where HiGHS proves that there is no such plan.
    """
    c, A_ub, A_eq, bounds = _model(si, pj, w, n, cap, K)
    cons = [
        LinearConstraint(A_ub, -np.inf, 0.0),
        LinearConstraint(A_eq, 1.0, 1.0),
        LinearConstraint(c[None, :], 0.0, float(stations)),
    ]
    integrality = np.concatenate([np.ones(n), np.zeros(si.size)])
    opts = {"time_limit": max(time_limit, 0.1), "mip_rel_gap": 0.0}
    with quiet_stdout():
        r = milp(c, constraints=cons, integrality=integrality, bounds=Bounds(bounds[:, 0], bounds[:, 1]), options=opts)
    if r.status == 2:  # infeasible: every plan needs more than ``stations``
        return None, float(stations + 1)
    dual = getattr(r, "mip_dual_bound", None)
    dual = float(math.ceil(dual - 1e-6 * max(1.0, abs(dual)))) if dual is not None and np.isfinite(dual) else 0.0
    return (None if r.x is None else np.round(r.x[:n]).astype(np.int64)), dual


class FlowCheck:
    """Is an integer station vector feasible? Max-flow on integer capacities, demands rounded up."""

    def __init__(self, si: np.ndarray, pj: np.ndarray, w: np.ndarray, n: int, cap: float) -> None:
        m = w.size
        # units per swap/day: up to 1000, fewer where the capacities would overflow int32
        self.scale = min(_SCALE, 2.0**29 / (w.sum() + cap * n + 1.0))
        self.n, self.m, self.cap = n, m, math.floor(cap * self.scale)
        self.demand = np.ceil(w * self.scale).astype(np.int64)
        # nodes: 0 source, 1..m zones, m+1..m+n stores, m+n+1 sink; rows built in CSR order
        order = np.lexsort((si, pj))
        zone_cols = m + 1 + si[order]
        counts = np.bincount(pj, minlength=m)
        indptr = np.concatenate([[0, m], m + np.cumsum(counts), m + si.size + np.arange(1, n + 1), [m + si.size + n]])
        indices = np.concatenate([np.arange(1, m + 1), zone_cols, np.full(n, m + n + 1)])
        self.data = np.concatenate([self.demand, self.demand[pj[order]], np.zeros(n, dtype=np.int64)]).astype(np.int32)
        self.store_at = m + si.size  # where the store -> sink capacities start in ``data``
        self.indptr, self.indices = indptr.astype(np.int32), indices.astype(np.int32)
        self.reach = csr_array((np.ones(si.size), (si, pj)), shape=(n, m))  # store x zone
        self.calls = 0

    def unserved(self, k: np.ndarray) -> np.ndarray:
        """Per zone, the demand (in swaps/day) that a max flow with ``k`` stations leaves unserved."""
        self.data[self.store_at :] = (self.cap * k).astype(np.int32)
        N = self.m + self.n + 2
        g = csr_array((self.data, self.indices, self.indptr), shape=(N, N))
        res = maximum_flow(g, 0, N - 1)
        self.calls += 1
        f = res.flow
        served = np.asarray(f[[0], 1 : self.m + 1].todense()).ravel()
        return (self.demand - served) / self.scale

    def feasible(self, k: np.ndarray) -> bool:
        return bool(self.unserved(k).sum() <= 0)


def _repair(k: np.ndarray, fc: FlowCheck, K: int, prefer: np.ndarray) -> np.ndarray:
    """Add stations, one at a time, where the unserved demand within reach is largest."""
    k = k.copy()
    while True:
        u = fc.unserved(k)
        if u.sum() <= 0:
            return k
        score = fc.reach @ u + 1e-9 * prefer
        score[k >= K] = -np.inf
        i = int(np.argmax(score))
        if not np.isfinite(score[i]):
            raise C2MError("site_zones: no feasible plan within max_stations_per_site")
        k[i] += 1


def _local_search(k: np.ndarray, fc: FlowCheck, K: int, prefer: np.ndarray, deadline: float) -> np.ndarray:
    """Drop single stations, then two-for-one moves between neighbouring stores, while time allows."""
    near = (fc.reach @ fc.reach.T).tocsr()  # stores sharing a zone
    improved = True
    while improved and time.perf_counter() < deadline:
        improved = False
        for i in np.argsort(prefer + 10.0 * k, kind="stable"):
            if k[i] == 0 or time.perf_counter() > deadline:
                continue
            k[i] -= 1
            if fc.feasible(k):
                improved = True
            else:
                k[i] += 1
        if improved:
            continue
        for i in np.argsort(prefer, kind="stable"):
            if k[i] == 0 or time.perf_counter() > deadline:
                continue
            nb = near.indices[near.indptr[i] : near.indptr[i + 1]]
            for a in nb[(nb > i) & (k[nb] > 0)]:
                trial = k.copy()
                trial[i] -= 1
                trial[a] -= 1
                u = fc.unserved(trial)
                score = fc.reach @ u
                score[trial >= K] = -np.inf
                b = int(np.argmax(score))
                trial[b] += 1
                if fc.feasible(trial):
                    k = trial
                    improved = True
                    break
            if improved:
                break
    return k


def fewest_stations(
    si: np.ndarray, pj: np.ndarray, w: np.ndarray, n: int, cap: float, K: int, time_limit: float, rel_gap: float = 0.0
) -> ComponentPlan:
    """Certified plan for one component (``si``/``pj``: the pairs' sites and zones, ``w``: zone demand).

    LP bound, rounding and local search (at most half the ``time_limit``), then, while the gap is above
    ``rel_gap``, the MILP with the incumbent as a cutoff for the time that is left.
    """
    t0 = time.perf_counter()
    deadline = t0 + time_limit
    lp, k_lp = lp_relaxation(si, pj, w, n, cap, K)
    bound = float(math.ceil(lp - 1e-6 * max(1.0, lp)))
    fc = FlowCheck(si, pj, w, n, cap)
    k = _repair(np.floor(k_lp + 1e-6).astype(np.int64), fc, K, k_lp)

    def open_gap() -> bool:
        return bool(k.sum() - bound > rel_gap * k.sum())

    if open_gap():
        k = _local_search(k, fc, K, k_lp, t0 + time_limit / 2)
    while open_gap() and time.perf_counter() < deadline - 0.1:
        k_mip, dual = below(si, pj, w, n, cap, K, int(k.sum()) - 1, deadline - time.perf_counter())
        bound = max(bound, dual)
        if k_mip is None:
            break
        if not fc.feasible(k_mip):  # the max-flow check rounds demand up: a tight plan may need the LP
            zero = np.zeros(si.size)
            k_mip = k_mip if assign(si, pj, zero, w, n, cap, k_mip.astype(float), None, 0.0) is not None else k
        if k_mip.sum() >= k.sum():
            break
        k = k_mip
    return ComponentPlan(k, bound, lp, time.perf_counter() - t0)


def assign(
    si: np.ndarray,
    pj: np.ndarray,
    km: np.ndarray,
    w: np.ndarray,
    n: int,
    cap: float,
    k: np.ndarray,
    budget: int | None,
    served: float,
) -> np.ndarray | None:
    """Phase 2, the transport LP over ``y`` alone with the stations ``k`` fixed: least swap-weighted
    distance, every zone served (no budget) or ``served`` swaps kept (budget). None if it fails."""
    P, m = si.size, w.size
    A2 = csr_array((np.ones(P), (pj, np.arange(P))), shape=(m, P))
    C2 = csr_array((w[pj], (si, np.arange(P))), shape=(n, P))
    cons2 = [LinearConstraint(A2, 1.0 if budget is None else 0.0, 1.0), LinearConstraint(C2, -np.inf, cap * k)]
    if budget is not None:
        cons2.append(LinearConstraint(w[pj][None, :], served * (1 - 1e-9), np.inf))
    with quiet_stdout():
        lp = milp(km * w[pj], constraints=cons2, bounds=Bounds(0.0, 1.0))
    return None if lp.x is None else np.asarray(lp.x)
