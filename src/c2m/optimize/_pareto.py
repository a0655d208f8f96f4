"""Share-vs-profit efficient frontier of product lines with up to K variants.

Two ways to find the lines, then one dominance filter:

* ``"enumerate"`` (exact): every line of ``1..K`` distinct configurations, each at one
  price of the grid, is scored at once with array arithmetic over the people (any
  rule: logit, first choice, randomized first choice; individual betas or one MNL).
  Used by ``"auto"`` when there are at most ``max_lines`` lines.
* ``"sweep"``: for each ``k`` and each weight ``mu`` of a grid the line maximising
  ``profit + mu x market_size x share`` (unit margins shifted by ``mu``) is solved,
  with the exact Dinkelbach machinery for one MNL under the logit rule and the
  greedy + local search otherwise, plus the share-maximising line. A weighted sum
  only reaches the *supported* points of the frontier (those on its concave hull), so
  the sweep can miss non-supported lines; it is the fallback for large markets.

A line is kept when no other line found has at least its share and its profit (and,
with ``by_variants``, no more variants), one of them strictly better.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from math import comb
from typing import Any

import numpy as np
import polars as pl

from c2m.domain import Project
from c2m.errors import C2MError
from c2m.market import MarketSimulator

from ._candidates import Candidates, build_candidates
from ._exact import solve_exact
from ._greedy import greedy_line
from ._line import (
    MAX_EXACT_FIXED_LEVELS,
    _cand_utilities,
    _homogeneous_exp,
    _min_fixed_cost,
    _other_utilities,
    _people_weights,
    _problem,
    optimize_line,
)

LINE_BATCH_CELLS = 4_000_000  # people x lines x alternatives scored at once


def pareto_front(
    project: Project,
    sim: MarketSimulator,
    max_variants: int = 3,
    price_grid: Sequence[float] | None = None,
    method: str = "auto",
    n_weights: int = 25,
    must_include: Mapping[str, str] | None = None,
    must_exclude: Mapping[str, Sequence[str]] | None = None,
    years: float = 4.0,
    include_rent: bool = False,
    by_variants: bool = True,
    max_lines: int = 200_000,
    time_limit: float = 60.0,
    seed: int = 0,
) -> pl.DataFrame:
    """Non-dominated lines of share vs profit with ``1..max_variants`` variants.

    Returns one row per line, by increasing share: ``n_variants``, ``share`` (of the
    line, our variants summed), ``profit`` (per year, fixed costs amortised over
    ``years``), ``revenue``, ``method`` (``enumerate``, ``exact`` or ``greedy``) and
    ``variants`` (the profiles, a list of structs, by increasing price). Share and
    profit are the simulator's own ``line_economics`` of the line. ``by_variants``
    also counts fewer variants as better (a 1-variant line is kept unless a line with
    at most one variant beats it), so the frontier is share vs profit vs variants;
    without it the frontier is share vs profit only. See the module for the methods.
    """
    sim._require_shares("pareto_front")
    if method not in ("auto", "enumerate", "sweep"):
        raise C2MError(f"pareto_front: method must be 'auto', 'enumerate' or 'sweep', got {method!r}")
    if int(max_variants) != max_variants or max_variants < 1:
        raise C2MError(f"pareto_front: max_variants must be a positive integer, got {max_variants!r}")
    if max_variants > project.product.max_variants:
        raise C2MError(
            f"pareto_front: max_variants = {max_variants} exceeds product.max_variants = "
            f"{project.product.max_variants}"
        )
    if int(n_weights) != n_weights or n_weights < 1:
        raise C2MError(f"pareto_front: n_weights must be a positive integer, got {n_weights!r}")
    if years <= 0:
        raise C2MError(f"pareto_front: years must be > 0, got {years}")
    if sim.market_size <= 0:
        raise C2MError("pareto_front: profit needs [[cities]] with market_size in the project")
    if project.attribute_by_role("price") is None:
        raise C2MError("pareto_front: profit needs an attribute with role = 'price'")
    K = int(max_variants)
    cand = build_candidates(project, sim, price_grid, must_include, must_exclude)
    if cand.n_configs < 1:
        raise C2MError("pareto_front: no allowed configuration")
    n_all = int(cand.allowed.sum())
    n_lines = sum(comb(n_all, k) for k in range(1, K + 1))
    if method == "enumerate" or (method == "auto" and n_lines <= max_lines):
        lines = _enumerate(project, sim, cand, K, years, include_rent)
        label = "enumerate"
        found = [(line, label) for line in lines]
    else:
        found = _sweep(project, sim, cand, K, int(n_weights), years, include_rent, must_include,
                       must_exclude, price_grid, time_limit, seed)
    if not found:
        raise C2MError("pareto_front: no line satisfies must_include and must_exclude")
    rows = []
    seen: set[tuple[tuple[int, int], ...]] = set()
    for line, how in found:
        key = tuple(sorted(line))
        if key in seen:
            continue
        seen.add(key)
        profiles = [cand.profile(n, g) for n, g in key]
        if cand.price_name is not None:
            profiles.sort(key=lambda p: float(p[cand.price_name]))  # type: ignore[index]
        econ = sim.line_economics(profiles, years=years, include_rent=include_rent)["line"]
        rows.append((len(key), float(econ["share"]), float(econ["profit"]), float(econ["revenue"]), how, profiles))
    keep = non_dominated(
        np.array([r[1] for r in rows]), np.array([r[2] for r in rows]),
        np.array([r[0] for r in rows]) if by_variants else None,
    )
    chosen = sorted((rows[i] for i in keep), key=lambda r: (r[1], r[2]))
    struct = pl.Struct({
        a.name: (pl.Float64 if a.kind == "numeric" else pl.String) for a in project.attributes
    })
    return pl.DataFrame(
        {
            "n_variants": [r[0] for r in chosen],
            "share": [r[1] for r in chosen],
            "profit": [r[2] for r in chosen],
            "revenue": [r[3] for r in chosen],
            "method": [r[4] for r in chosen],
            "variants": [[_typed(project, p) for p in r[5]] for r in chosen],
        },
        schema={"n_variants": pl.Int64, "share": pl.Float64, "profit": pl.Float64, "revenue": pl.Float64,
                "method": pl.String, "variants": pl.List(struct)},
    )


def non_dominated(share: np.ndarray, profit: np.ndarray, n_variants: np.ndarray | None = None) -> list[int]:
    """Indices of the points no other point beats: share and profit at least as high (and no more
    variants when ``n_variants`` is given), one strictly better; of equal points the first is kept."""
    n = share.size
    nv = np.zeros(n, dtype=int) if n_variants is None else np.asarray(n_variants, dtype=int)
    keep: list[int] = []
    for k in np.unique(nv):
        pool = np.flatnonzero(nv <= k)
        order = pool[np.lexsort((pool, nv[pool], -profit[pool], -share[pool]))]
        best = -np.inf
        for i in order:
            tol = 1e-9 * max(1.0, abs(float(profit[i])))
            if profit[i] > best + tol:
                if nv[i] == k:
                    keep.append(int(i))
                best = max(best, float(profit[i]))
    return sorted(keep)


def _typed(project: Project, profile: Mapping[str, Any]) -> dict[str, Any]:
    return {a.name: float(profile[a.name]) if a.kind == "numeric" else str(profile[a.name])
            for a in project.attributes}


def _enumerate(
    project: Project, sim: MarketSimulator, cand: Candidates, K: int, years: float, include_rent: bool
) -> list[list[tuple[int, int]]]:
    """Every line of 1..K distinct configurations, scored together; returns those on the frontier.

    Returns the non-dominated lines (share, profit, n_variants) of the vectorised scores,
    to be re-evaluated by the simulator.
    """
    n_idx, g_idx = np.nonzero(cand.allowed)
    U = _cand_utilities(sim, cand, n_idx, g_idx)  # (P, n)
    other = _other_utilities(sim)  # (P, J)
    w = _people_weights(sim)
    margin = cand.margins("profit", include_rent)[n_idx, g_idx]
    fl_cost = np.array([f for _, _, f in cand.fixed_levels])
    bits = cand.fl_bits[n_idx]
    cover = cand.cover[n_idx]
    size = sim.market_size
    logit = sim.rule == "logit"
    if logit:
        top = np.maximum(U.max(axis=1), other.max(axis=1) if other.size else -np.inf)
        E = np.exp(U - top[:, None])
        D = np.exp(other - top[:, None]).sum(axis=1)
    all_lines: list[np.ndarray] = []
    shares: list[np.ndarray] = []
    profits: list[np.ndarray] = []
    sizes: list[np.ndarray] = []
    P, J = U.shape[0], other.shape[1]
    for k in range(1, K + 1):
        combos = np.array(list(itertools.combinations(range(n_idx.size), k)), dtype=np.int64).reshape(-1, k)
        cfg = n_idx[combos]
        distinct = np.ones(len(combos), dtype=bool)
        for a, b in itertools.combinations(range(k), 2):
            distinct &= cfg[:, a] != cfg[:, b]
        if cover.shape[1]:
            distinct &= np.all(np.any(cover[combos], axis=1), axis=1)
        combos = combos[distinct]
        if combos.size == 0:
            continue
        line_bits = np.bitwise_or.reduce(bits[combos], axis=1)
        fixed = project.product.fixed_cost_per_variant * k + sum(
            c * ((line_bits >> i) & 1) for i, c in enumerate(fl_cost)
        )
        batch = max(1, LINE_BATCH_CELLS // (P * (k + J)))
        for start in range(0, len(combos), batch):
            c = combos[start:start + batch]  # (B, k)
            if logit:
                e = E[:, c]  # (P, B, k)
                s = e / (D[:, None, None] + e.sum(axis=2, keepdims=True))
            else:
                u = np.concatenate([U[:, c], np.broadcast_to(other[:, None, :], (P, len(c), J))], axis=2)
                best = u >= u.max(axis=2, keepdims=True) - 1e-12
                s = (best / best.sum(axis=2, keepdims=True))[:, :, :k]
            per_variant = np.einsum("p,pbk->bk", w, s)
            shares.append(per_variant.sum(axis=1))
            profits.append(size * (per_variant * margin[c]).sum(axis=1) - fixed[start:start + batch] / years)
            sizes.append(np.full(len(c), k))
            all_lines.append(c)
    if not all_lines:
        return []
    share = np.concatenate(shares)
    profit = np.concatenate(profits)
    nv = np.concatenate(sizes)
    keep = non_dominated(share, profit, nv)
    # keep a margin around the vectorised frontier so the simulator's re-evaluation decides ties
    flat: list[np.ndarray] = [row for block in all_lines for row in block]
    out = [[(int(n_idx[j]), int(g_idx[j])) for j in flat[i]] for i in keep]
    near = _near_front(share, profit, nv, keep)
    out += [[(int(n_idx[j]), int(g_idx[j])) for j in flat[i]] for i in near]
    return out


def _near_front(share: np.ndarray, profit: np.ndarray, nv: np.ndarray, keep: list[int]) -> list[int]:
    """Points within rounding of a kept point (equal share and profit up to 1e-9 relative)."""
    if not keep:
        return []
    kept = set(keep)
    out = []
    for i in keep:
        close = np.flatnonzero(
            (np.abs(share - share[i]) <= 1e-9 * max(1.0, abs(float(share[i]))))
            & (np.abs(profit - profit[i]) <= 1e-9 * max(1.0, abs(float(profit[i]))))
        )
        out += [int(j) for j in close if int(j) not in kept]
    return out


def _sweep(
    project: Project, sim: MarketSimulator, cand: Candidates, K: int, n_weights: int, years: float,
    include_rent: bool, must_include: Mapping[str, str] | None, must_exclude: Mapping[str, Sequence[str]] | None,
    price_grid: Sequence[float] | None, time_limit: float, seed: int,
) -> list[tuple[list[tuple[int, int]], str]]:
    """Lines maximising ``profit + mu x size x share`` over a grid of ``mu``, for each ``k``."""
    m = cand.margins("profit", include_rent)
    span = float(np.abs(m[cand.allowed]).max()) if cand.allowed.any() else 1.0
    span = max(span, 1.0)
    mus = np.concatenate([[0.0], np.geomspace(span * 1e-3, span * 1e3, max(n_weights - 1, 1))])
    homogeneous = sim.individual is None and sim.rule == "logit"
    exact = homogeneous and len(cand.fixed_levels) <= MAX_EXACT_FIXED_LEVELS
    fl_cost = np.array([f for _, _, f in cand.fixed_levels])
    found: list[tuple[list[tuple[int, int]], str]] = []
    per_solve = max(time_limit / max(K * (mus.size + 1), 1), 0.5)
    rng = np.random.default_rng(seed)
    import time

    for k in range(1, min(K, cand.n_configs) + 1):
        c_min = _min_fixed_cost(project, cand, k)
        if exact:
            e, D = _homogeneous_exp(sim, cand)
        for mu in mus:
            shifted = m + mu
            if exact:
                res = solve_exact(cand, shifted, sim.market_size, k, project.product.fixed_cost_per_variant,
                                  years, True, None, e, D, deadline=time.perf_counter() + per_solve)
                if res is not None:
                    found.append((list(zip(res.configs.tolist(), res.prices.tolist(), strict=True)), "exact"))
                continue
            flat, idx, _ = _problem(sim, cand, shifted, sim.market_size, k, project, years, True, None, 0.0,
                                    fl_cost, c_min)
            chosen, value, viol = greedy_line(flat, k, per_solve, restarts=3, rng=rng)
            if np.isfinite(value) and viol <= 1e-12:
                found.append(([idx[c] for c in chosen], "greedy"))
        try:
            share_line = optimize_line(project, sim, n_variants=k, objective="share", price_grid=price_grid,
                                       must_include=must_include, must_exclude=must_exclude, years=years,
                                       include_rent=include_rent, time_limit=per_solve, seed=seed)
        except C2MError:
            continue
        by_profile = {_profile_key(cand.profile(n, g)): (n, g) for n, g in zip(*np.nonzero(cand.allowed),
                                                                                strict=True)}
        line = [by_profile.get(_profile_key(p)) for p in share_line.variants]
        if all(x is not None for x in line):
            found.append(([(int(x[0]), int(x[1])) for x in line if x is not None],
                          "exact" if share_line.method == "exact" else "greedy"))
    return found


def _profile_key(profile: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, repr(float(v)) if isinstance(v, float) else str(v)) for k, v in profile.items()))
