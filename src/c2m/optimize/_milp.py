"""Exact MILP (Charnes-Cooper linearisation, HiGHS) for one MNL with per-variant share floors.

With ``t = 1 / (D + sum_j e_j y_j)`` and ``z_j = y_j t`` (exact for binary ``y`` via
``z <= t``, ``z <= T y``, ``z >= t - T (1 - y)``), shares are ``e_j z_j`` and the line's
value ``scale * sum_j m_j e_j z_j - fixed / years`` is linear; a share floor is
``e_j z_j >= s y_j`` and level use is ``sum_{j uses l} y_j <= K w_l``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix, csr_matrix, vstack

from c2m._quiet import quiet_stdout

from ._candidates import Candidates


@dataclass
class MilpResult:
    configs: np.ndarray
    prices: np.ndarray
    value: float | None  # objective of the incumbent (None when none was found)
    bound: float  # proven upper bound
    optimal: bool


MAX_MILP_CANDIDATES = 20_000


def solve_milp(
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
    min_share: float,
    time_limit: float,
) -> MilpResult | None:
    """Solve the line problem exactly; ``None`` when too many candidates remain after pruning."""
    keep = cand.allowed.copy()
    if min_share > 0:  # a variant with share >= s needs e >= s D / (1 - s) even when alone
        keep &= e >= min_share * D / (1.0 - min_share) * (1 - 1e-12)
    n_idx, g_idx = np.nonzero(keep)
    n = n_idx.size
    if n == 0:
        return MilpResult(np.zeros(0, int), np.zeros(0, int), None, -np.inf, True)
    if n > MAX_MILP_CANDIDATES:
        return None
    L = len(cand.fixed_levels)
    fl_cost = np.array([f for _, _, f in cand.fixed_levels])
    ee = e[n_idx, g_idx] / D  # normalise: D = 1, so t is in (0, 1]
    mm = m[n_idx, g_idx]
    norm = max(scale * float(np.abs(mm).max()), 1.0)
    # variables: y (n), z (n), t (1), w (L)
    ny, nz, nt = n, n, 1
    iy, iz, it, iw = 0, n, 2 * n, 2 * n + 1
    nvar = ny + nz + nt + L
    c = np.zeros(nvar)
    c[iz : iz + n] = -scale * mm * ee / norm
    if charge_fixed:
        c[iw : iw + L] = fl_cost / years / norm
    const = -(fixed_per_variant * k / years if charge_fixed else 0.0)
    rows: list[csr_matrix] = []
    lo: list[np.ndarray] = []
    hi: list[np.ndarray] = []

    def add(mat: csr_matrix, lb: np.ndarray | float, ub: np.ndarray | float) -> None:
        rows.append(mat)
        lo.append(np.broadcast_to(np.asarray(lb, float), (mat.shape[0],)).copy())
        hi.append(np.broadcast_to(np.asarray(ub, float), (mat.shape[0],)).copy())

    ar = np.arange(n)
    # t + sum e z = 1
    add(csr_matrix(np.concatenate([np.zeros(n), ee, [1.0], np.zeros(L)])[None, :]), 1.0, 1.0)
    # z - y <= 0 ; z - t <= 0 ; z - t - y >= -1
    def sparse(r: np.ndarray, col: np.ndarray, val: np.ndarray, nrows: int) -> csr_matrix:
        return coo_matrix((val, (r, col)), shape=(nrows, nvar)).tocsr()

    ones = np.ones(n)
    add(sparse(np.r_[ar, ar], np.r_[iz + ar, iy + ar], np.r_[ones, -ones], n), -np.inf, 0.0)
    add(sparse(np.r_[ar, ar], np.r_[iz + ar, np.full(n, it)], np.r_[ones, -ones], n), -np.inf, 0.0)
    add(sparse(np.r_[ar, ar, ar], np.r_[iz + ar, np.full(n, it), iy + ar], np.r_[ones, -ones, -ones], n),
        -1.0, np.inf)
    # exactly k variants, distinct configurations
    add(sparse(np.zeros(n, int), iy + ar, ones, 1), k, k)
    configs, inverse = np.unique(n_idx, return_inverse=True)
    add(sparse(inverse, iy + ar, ones, configs.size), -np.inf, 1.0)
    # level use
    for l_ in range(L):
        users = np.flatnonzero((cand.fl_bits[n_idx] >> l_) & 1)
        if users.size:
            add(sparse(np.zeros(users.size + 1, int), np.r_[iy + users, iw + l_],
                       np.r_[np.ones(users.size), -float(k)], 1), -np.inf, 0.0)
    # coverage
    for r in range(cand.cover.shape[1]):
        members = np.flatnonzero(cand.cover[n_idx, r])
        add(sparse(np.zeros(members.size, int), iy + members, np.ones(members.size), 1), 1.0, np.inf)
    if budget is not None and L:
        add(sparse(np.zeros(L, int), iw + np.arange(L), fl_cost, 1), -np.inf, budget - fixed_per_variant * k)
    if min_share > 0:  # e z - s y >= 0
        add(sparse(np.r_[ar, ar], np.r_[iz + ar, iy + ar], np.r_[ee, -min_share * ones], n), 0.0, np.inf)
    A = vstack(rows).tocsr()
    integrality = np.zeros(nvar)
    integrality[iy : iy + n] = 1
    integrality[iw : iw + L] = 1
    upper = np.ones(nvar)
    lower = np.zeros(nvar)
    with quiet_stdout():
        res = milp(c, constraints=LinearConstraint(A, np.concatenate(lo), np.concatenate(hi)),
                   integrality=integrality, bounds=Bounds(lower, upper),
                   options={"time_limit": float(time_limit), "mip_rel_gap": 1e-9, "disp": False})
    bound_raw = getattr(res, "mip_dual_bound", None)
    if res.x is None:
        if res.status == 2:  # infeasible
            return MilpResult(np.zeros(0, int), np.zeros(0, int), None, -np.inf, True)
        bound = np.inf if bound_raw is None else -float(bound_raw) * norm + const
        return MilpResult(np.zeros(0, int), np.zeros(0, int), None, bound, False)
    chosen = np.flatnonzero(res.x[iy : iy + n] > 0.5)
    value = -float(res.fun) * norm + const
    optimal = res.status == 0
    bound = value if optimal or bound_raw is None else max(value, -float(bound_raw) * norm + const)
    return MilpResult(n_idx[chosen], g_idx[chosen], value, bound, optimal)
