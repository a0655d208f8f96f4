"""Exact product-line optimum under one homogeneous MNL: Dinkelbach on a ratio 0-1 program.

With one coefficient vector the line's objective is

    scale * sum_j m_j e_j / (D + sum_j e_j)  -  fixed_cost(line) / years

(``e_j = exp(u_j)``, ``D`` = competitors' and None's ``exp(u)``, ``m_j`` the unit margin,
price or 1 for share). For fixed ``lambda`` the parametric problem
``max_S sum_{j in S} (m_j - lambda) e_j - lambda D`` separates over configurations:
each configuration's best price is ``argmax_g (m_g - lambda) e_g`` and the line is
the ``K`` configurations with the largest values (with must-include coverage, a
tiny enumeration over the top ``K`` of each coverage class). Dinkelbach's iteration
``lambda <- ratio(S)`` reaches the exact optimum in finitely many steps.

Fixed costs depend on which fixed-cost levels the line uses: we enumerate the
allowed set ``U`` of such levels (``2^L`` sets, pruned by the bound
``ratio_max(all) - charge(U)``), solve the ratio problem over configurations
using only levels of ``U`` and charge ``U``'s full fixed cost. The best over ``U``
is the exact optimum (for ``U`` = the optimal line's levels the charge is exact).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from ._candidates import Candidates


@dataclass
class RatioResult:
    value: float  # max ratio sum m e / (D + sum e)
    configs: np.ndarray  # (K,) configuration indices
    prices: np.ndarray  # (K,) price indices


def select_top(v: np.ndarray, k: int, cover: np.ndarray) -> np.ndarray | None:
    """Indices of ``k`` entries of ``v`` (finite) with the largest sum covering every column of ``cover``."""
    finite = np.flatnonzero(np.isfinite(v))
    if finite.size < k:
        return None
    if cover.shape[1] == 0:
        top = finite[np.argpartition(-v[finite], k - 1)[:k]] if finite.size > k else finite
        return top
    # Restrict to the top k of every coverage class (exchange argument), then enumerate.
    q = cover.shape[1]
    pool: set[int] = set(_topk(v, finite, k).tolist())
    for mask in range(1, 2**q):
        cols = [r for r in range(q) if mask >> r & 1]
        members = finite[cover[finite][:, cols].all(axis=1)]
        if members.size:
            pool.update(_topk(v, members, k).tolist())
    idx = np.array(sorted(pool))
    if idx.size < k:
        return None
    n_combos = _n_combinations(idx.size, k)
    if n_combos <= 200_000:
        combos = np.array(list(itertools.combinations(range(idx.size), k)))
        covered = cover[idx][combos].any(axis=1).all(axis=1)
        if not covered.any():
            return None
        sums = np.where(covered, v[idx][combos].sum(axis=1), -np.inf)
        return idx[combos[int(np.argmax(sums))]]
    return _select_milp(v[idx], k, cover[idx], idx)


def _topk(v: np.ndarray, members: np.ndarray, k: int) -> np.ndarray:
    if members.size <= k:
        return members
    return members[np.argpartition(-v[members], k - 1)[:k]]


def _n_combinations(n: int, k: int) -> int:
    from math import comb

    return comb(n, k)


def _select_milp(v: np.ndarray, k: int, cover: np.ndarray, idx: np.ndarray) -> np.ndarray | None:
    n = v.size
    rows = [np.ones(n)] + [cover[:, r].astype(float) for r in range(cover.shape[1])]
    lb = [k] + [1] * cover.shape[1]
    ub = [k] + [np.inf] * cover.shape[1]
    res = milp(-v, constraints=LinearConstraint(np.array(rows), lb, ub),
               integrality=np.ones(n), bounds=Bounds(0, 1))
    if res.x is None:
        return None
    return idx[np.flatnonzero(res.x > 0.5)]


def max_ratio(
    e: np.ndarray,
    m: np.ndarray,
    allowed: np.ndarray,
    D: float,
    k: int,
    cover: np.ndarray,
    max_iter: int = 200,
) -> RatioResult | None:
    """Exact ``max sum_S m e / (D + sum_S e)`` over ``k`` distinct configurations, one price each."""
    a = m * e
    single = np.where(allowed, a / (D + e), -np.inf)
    best_g = np.argmax(single, axis=1)
    v0 = single[np.arange(single.shape[0]), best_g]
    S = select_top(v0, k, cover)
    if S is None:
        return None
    G = best_g[S]
    lam = float(a[S, G].sum() / (D + e[S, G].sum()))
    for _ in range(max_iter):
        V = np.where(allowed, (m - lam) * e, -np.inf)
        g_star = np.argmax(V, axis=1)
        v = V[np.arange(V.shape[0]), g_star]
        S_new = select_top(v, k, cover)
        if S_new is None:  # pragma: no cover - same feasibility as the first selection
            break
        h = float(v[S_new].sum() - lam * D)
        picked = (S_new, g_star[S_new])
        scale = abs(lam) * (D + float(e[picked].sum())) + float(np.abs(a[picked]).sum())
        if h <= 1e-13 * max(scale, 1e-300):
            break
        new_lam = float(a[S_new, g_star[S_new]].sum() / (D + e[S_new, g_star[S_new]].sum()))
        if new_lam <= lam:
            break
        S, G, lam = S_new, g_star[S_new], new_lam
    order = np.argsort(S)
    return RatioResult(lam, S[order], G[order])


def max_ratio_batch(e: np.ndarray, m: np.ndarray, allowed: np.ndarray, D: np.ndarray, k: int,
                    max_iter: int = 200) -> np.ndarray:
    """Per-person exact max ratio (no coverage constraint): ``e`` is ``(R, N, G)``; returns ``(R,)``."""
    R, N, _ = e.shape
    k = min(k, N)
    a = m[None] * e
    ratio = np.where(allowed[None], a / (D[:, None, None] + e), -np.inf)  # (R, N, G) single products
    best_g = np.argmax(ratio, axis=2)
    single = np.take_along_axis(ratio, best_g[:, :, None], axis=2)[:, :, 0]
    del ratio
    top = np.argpartition(-single, k - 1, axis=1)[:, :k] if k < N else np.tile(np.arange(N), (R, 1))
    rows = np.arange(R)[:, None]
    lam = (a[rows, top, best_g[rows, top]].sum(1)) / (D + e[rows, top, best_g[rows, top]].sum(1))
    for _ in range(max_iter):
        V = np.where(allowed[None], (m[None] - lam[:, None, None]) * e, -np.inf)
        g_star = np.argmax(V, axis=2)
        v = np.take_along_axis(V, g_star[:, :, None], axis=2)[:, :, 0]
        top = np.argpartition(-v, k - 1, axis=1)[:, :k] if k < N else np.tile(np.arange(N), (R, 1))
        gs = g_star[rows, top]
        new = a[rows, top, gs].sum(1) / (D + e[rows, top, gs].sum(1))
        if np.all(new <= lam * (1 + 1e-12) + 1e-300):
            break
        lam = np.maximum(lam, new)
    return lam


@dataclass
class ExactResult:
    configs: np.ndarray
    prices: np.ndarray
    value: float  # objective with the line's true fixed cost
    relaxation: float  # ratio optimum over all allowed configurations (scaled), before fixed costs
    n_level_sets: int
    bound: float = np.nan  # proven upper bound (= value when optimal)
    optimal: bool = True


def solve_exact(
    cand: Candidates,
    m: np.ndarray,
    scale: float,
    k: int,
    fixed_per_variant: float,
    years: float,
    charge_fixed: bool,
    budget: float | None,
    e: np.ndarray,
    D: float,
    deadline: float = np.inf,
) -> ExactResult | None:
    """Exact optimum over level sets ``U`` of fixed-cost levels (see the module docstring).

    Past ``deadline`` (``time.perf_counter()``) the remaining sets are skipped and
    ``bound`` is the largest upper bound among them (``optimal`` is then false).
    """
    L = len(cand.fixed_levels)
    fl_cost = np.array([f for _, _, f in cand.fixed_levels])
    full_mask = (1 << L) - 1

    def true_fixed(configs: np.ndarray) -> float:
        used = int(np.bitwise_or.reduce(cand.fl_bits[configs])) if configs.size else 0
        return fixed_per_variant * configs.size + sum(fl_cost[i] for i in range(L) if used >> i & 1)

    def run(mask_bits: int) -> RatioResult | None:
        ok = (cand.fl_bits & ~np.int64(mask_bits)) == 0
        allowed = cand.allowed & ok[:, None]
        return max_ratio(e, m, allowed, D, k, cand.cover)

    best_all = run(full_mask)
    if best_all is None:
        return None
    relax = scale * best_all.value
    need_sets = charge_fixed or budget is not None
    if not need_sets:
        return ExactResult(best_all.configs, best_all.prices, relax, relax, 1, relax, True)
    # enumerate level sets by charge; prune with relax - charge
    masks = np.arange(1 << L, dtype=np.int64)
    charges = np.array([fixed_per_variant * k + fl_cost[[i for i in range(L) if mk >> i & 1]].sum()
                        for mk in masks])
    order = np.argsort(charges, kind="stable")
    if not charge_fixed and budget is not None:
        # value grows with U: only level sets that cannot take one more level within budget matter
        room = budget + 1e-9 - charges
        cheapest_missing = np.array([
            min((fl_cost[i] for i in range(L) if not mk >> i & 1), default=np.inf) for mk in masks
        ])
        order = order[(cheapest_missing[order] > room[order])]
    best: tuple[float, RatioResult] | None = None
    n_sets = 0
    skipped_ub = -np.inf
    for mk in order:
        charge = charges[mk]
        if budget is not None and charge > budget + 1e-9:
            continue
        ub = relax - (charge / years if charge_fixed else 0.0)
        if best is not None and ub <= best[0] + 1e-9 * max(1.0, abs(best[0])):
            continue
        if best is not None and time.perf_counter() > deadline:
            skipped_ub = max(skipped_ub, ub)
            continue
        res = best_all if int(mk) == full_mask else run(int(mk))
        n_sets += 1
        if res is None:
            continue
        if budget is not None and true_fixed(res.configs) > budget + 1e-9:
            continue  # cannot happen: the line only uses levels of U
        value = scale * res.value - (true_fixed(res.configs) / years if charge_fixed else 0.0)
        if best is None or value > best[0]:
            best = (value, res)
    if best is None:
        return None
    bound = max(best[0], skipped_ub)
    return ExactResult(best[1].configs, best[1].prices, best[0], relax, n_sets, bound, skipped_ub == -np.inf)
