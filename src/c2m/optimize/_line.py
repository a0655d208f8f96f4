"""Product-line optimisation: choose K variants (configuration + price) for profit, share or revenue."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from c2m.domain import Project
from c2m.errors import C2MError
from c2m.market import MarketSimulator

from ._candidates import Candidates, build_candidates
from ._exact import max_ratio, max_ratio_batch, solve_exact
from ._greedy import Problem, greedy_line
from ._milp import solve_milp

MAX_EXACT_FIXED_LEVELS = 14  # 2^14 level sets at most in the exact enumeration
SHORTLIST_CELLS = 20_000_000  # people x candidates scored at once by the heuristic


@dataclass
class LineSolution:
    """An optimised product line and its certificate.

    ``objective_value`` is the line's value as the simulator computes it; ``bound``
    a proven upper bound on the best value (equal to it when ``method == "exact"``);
    ``gap = (bound - objective_value) / |bound|``.
    """

    variants: list[dict[str, str | float]]
    objective: str
    objective_value: float
    bound: float
    gap: float
    method: str
    table: pl.DataFrame
    n_candidates: int
    n_configs: int
    seconds: float
    names: list[str]
    sim: MarketSimulator = field(repr=False)
    years: float = 4.0
    include_rent: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The ``product_definition.json`` contract (docs/schemas.md)."""
        sim = self.sim
        econ = sim.line_economics(self.variants, self.names, years=self.years, include_rent=self.include_rent)
        shares = sim.shares(self.variants, self.names)
        variants = [
            {
                "name": v["name"], "profile": v["profile"], "price": v["price"],
                "unit_cost": v["unit_cost"], "share": v["share"], "share_low": v["share_low"],
                "share_high": v["share_high"], "annual_volume": v["annual_volume"],
                "annual_volume_low": v["annual_volume_low"], "annual_volume_high": v["annual_volume_high"],
                "unit_margin": v["unit_margin"], "rent_plan": v["rent_plan"],
            }
            for v in econ["variants"]
        ]
        line = econ["line"]
        comp = shares.filter(pl.col("kind") == "competitor")
        none = shares.filter(pl.col("kind") == "none")["share"]
        return {
            "project": sim.project.name,
            "objective": self.objective,
            "method": self.method,
            "variants": variants,
            "line": {
                "share": line["share"], "share_low": line["share_low"], "share_high": line["share_high"],
                "annual_volume": line["annual_volume"], "revenue": line["revenue"],
                "profit": line["profit"], "fixed_cost": line["fixed_cost"],
            },
            "bound": self.bound,
            "gap": self.gap,
            "competitors": [
                {"name": n, "share": s} for n, s in zip(comp["product"], comp["share"], strict=True)
            ],
            "none_share": float(none[0]) if none.len() else 0.0,
        }


def line_objective(
    sim: MarketSimulator,
    line: Sequence[Mapping[str, str | float]],
    objective: str,
    years: float = 4.0,
    include_rent: bool = False,
) -> float:
    """The value a line scores on ``objective`` ("profit", "share" or "revenue")."""
    econ = sim.line_economics(list(line), years=years, include_rent=include_rent)
    if objective == "share":
        return float(econ["line"]["share"])
    if objective == "revenue":
        return float(econ["line"]["revenue"])
    return float(econ["line"]["profit"])


def optimize_line(
    project: Project,
    sim: MarketSimulator,
    n_variants: int = 3,
    objective: str = "profit",
    price_grid: Sequence[float] | None = None,
    method: str = "auto",
    must_include: Mapping[str, str] | None = None,
    must_exclude: Mapping[str, Sequence[str]] | None = None,
    min_share_per_variant: float = 0.0,
    fixed_cost_budget: float | None = None,
    time_limit: float = 60.0,
    seed: int = 0,
    years: float = 4.0,
    include_rent: bool = False,
    restarts: int = 10,
) -> LineSolution:
    """Choose ``n_variants`` distinct configurations, each at one price of the grid.

    ``method="exact"`` (one MNL coefficient vector, logit rule) is Dinkelbach's
    parametric method with an enumeration of fixed-cost level sets: the optimum is
    proven (``gap = 0``). ``"greedy"`` is greedy add + 1-swap local search, with a
    bound from the exact relaxation (one MNL) or per-person optima (individual
    betas). ``"auto"`` is exact when possible. See ``c2m.optimize`` for details.

    ``years`` amortises fixed costs in the profit; ``include_rent`` counts the battery
    rent in margins; ``restarts`` random kicks (drawn from ``seed``) follow the local
    search of the heuristic; ``time_limit`` (seconds) caps the heuristic and the MILP.
    """
    started = time.perf_counter()
    sim._require_shares("optimize")
    if objective not in ("profit", "share", "revenue"):
        raise C2MError(f"optimize: objective must be 'profit', 'share' or 'revenue', got {objective!r}")
    if method not in ("exact", "greedy", "auto"):
        raise C2MError(f"optimize: method must be 'exact', 'greedy' or 'auto', got {method!r}")
    if int(n_variants) != n_variants or n_variants < 1:
        raise C2MError(f"optimize: n_variants must be a positive integer, got {n_variants!r}")
    if n_variants > project.product.max_variants:
        raise C2MError(
            f"optimize: n_variants = {n_variants} exceeds "
            f"product.max_variants = {project.product.max_variants}"
        )
    if not 0.0 <= min_share_per_variant < 1.0:
        raise C2MError(f"optimize: min_share_per_variant must be in [0, 1), got {min_share_per_variant}")
    if years <= 0:
        raise C2MError(f"optimize: years must be > 0, got {years}")
    if objective != "share" and sim.market_size <= 0:
        raise C2MError(f"optimize: objective {objective!r} needs [[cities]] with market_size in the project")
    if objective != "share" and project.attribute_by_role("price") is None:
        raise C2MError(f"optimize: objective {objective!r} needs an attribute with role = 'price'")
    k = int(n_variants)
    cand = build_candidates(project, sim, price_grid, must_include, must_exclude)
    if cand.n_configs < k:
        raise C2MError(f"optimize: only {cand.n_configs} allowed configurations for {k} variants")
    scale = 1.0 if objective == "share" else sim.market_size
    m = cand.margins(objective, include_rent)
    charge_fixed = objective == "profit"
    homogeneous = sim.individual is None and sim.rule == "logit"
    if method == "exact" and not homogeneous:
        warnings.warn(
            "optimize: the exact method needs one MNL coefficient vector and the logit rule; "
            "using greedy + local search with an upper bound",
            UserWarning,
            stacklevel=2,
        )
    use_exact = method in ("exact", "auto") and homogeneous
    fl_cost = np.array([f for _, _, f in cand.fixed_levels])
    c_min = _min_fixed_cost(project, cand, k)

    line: list[tuple[int, int]] | None = None
    bound = np.inf
    used_method = "greedy"
    enumerable = len(cand.fixed_levels) <= MAX_EXACT_FIXED_LEVELS
    if homogeneous:
        e, D = _homogeneous_exp(sim, cand)
        if enumerable:
            res = solve_exact(cand, m, scale, k, project.product.fixed_cost_per_variant, years,
                              charge_fixed, fixed_cost_budget, e, D, deadline=started + time_limit)
            if res is None:
                raise C2MError("optimize: no line satisfies must_include, must_exclude and the budget")
            bound = res.bound
            exact_line = list(zip(res.configs.tolist(), res.prices.tolist(), strict=True))
            if use_exact and _min_share_ok(sim, cand, exact_line, min_share_per_variant):
                line = exact_line
                used_method = "exact" if res.optimal else "dinkelbach"
        else:
            relax = max_ratio(e, m, cand.allowed, D, k, cand.cover)
            if relax is None:
                raise C2MError("optimize: no line satisfies must_include and must_exclude")
            bound = scale * relax.value - (c_min / years if charge_fixed else 0.0)
    if line is None and homogeneous and use_exact:
        remaining = max(time_limit - (time.perf_counter() - started), 1.0)
        mres = solve_milp(cand, m, scale, k, project.product.fixed_cost_per_variant, years, charge_fixed,
                          fixed_cost_budget, e, D, min_share_per_variant, remaining)
        if mres is not None:
            if mres.value is None and mres.optimal:
                raise C2MError(
                    "optimize: no line satisfies must_include, min_share_per_variant and fixed_cost_budget"
                )
            bound = min(float(bound), mres.bound)
            if mres.value is not None:
                line = list(zip(mres.configs.tolist(), mres.prices.tolist(), strict=True))
                used_method = "exact" if mres.optimal else "milp"
    if line is None:
        flat, idx, bound_alone = _problem(sim, cand, m, scale, k, project, years, charge_fixed,
                                          fixed_cost_budget, min_share_per_variant, fl_cost, c_min)
        remaining = max(time_limit - (time.perf_counter() - started), 1.0)
        chosen, value, viol = greedy_line(flat, k, remaining, restarts=restarts,
                                          rng=np.random.default_rng(seed))
        if not np.isfinite(value) or viol > 1e-12:
            raise C2MError(
                "optimize: the heuristic found no line meeting must_include, min_share_per_variant "
                "and fixed_cost_budget; relax them"
            )
        line = [idx[c] for c in chosen]
        bound = min(float(bound), bound_alone)
        if not homogeneous:
            bound = min(bound, _individual_bound(sim, cand, m, scale, k, years, charge_fixed, c_min))
    profiles = [cand.profile(n, g) for n, g in line]
    price_name = cand.price_name
    if price_name is not None:
        profiles.sort(key=lambda p: float(p[price_name]))
    names = [f"V{i + 1}" for i in range(len(profiles))]
    value = line_objective(sim, profiles, objective, years, include_rent)
    if used_method in ("exact", "dinkelbach"):
        bound = max(float(bound), value)
    gap = _gap(float(bound), value)
    if used_method == "exact" and gap < 1e-9:
        gap = 0.0
    table = _table(sim, profiles, names, years, include_rent)
    return LineSolution(
        variants=profiles, objective=objective, objective_value=value, bound=float(bound), gap=gap,
        method=used_method, table=table, n_candidates=int(cand.allowed.sum()), n_configs=cand.n_configs,
        seconds=time.perf_counter() - started, names=names, sim=sim, years=years, include_rent=include_rent,
    )


def _gap(bound: float, value: float) -> float:
    if not np.isfinite(bound):
        return float("inf")
    denom = max(abs(bound), 1e-12)
    return max(0.0, (bound - value) / denom)


def _homogeneous_exp(sim: MarketSimulator, cand: Candidates) -> tuple[np.ndarray, float]:
    u = cand.u0[0][:, None] + cand.price_slope[0] * cand.prices[None, :]
    other = sim.other_utilities()[0]
    shift = max(float(u.max()), float(other.max()) if other.size else -np.inf)
    return np.exp(u - shift), float(np.exp(other - shift).sum())


def _min_share_ok(
    sim: MarketSimulator, cand: Candidates, line: list[tuple[int, int]], min_share: float
) -> bool:
    if min_share <= 0:
        return True
    shares = sim.shares([cand.profile(n, g) for n, g in line])["share"].to_numpy()[: len(line)]
    return bool(np.all(shares >= min_share - 1e-12))


def _min_fixed_cost(project: Project, cand: Candidates, k: int) -> float:
    """A lower bound on any feasible line's fixed cost."""
    total = project.product.fixed_cost_per_variant * k
    for attribute in project.attributes:
        if attribute.kind == "numeric":
            continue
        used = {str(c[attribute.name]) for c in cand.configs}
        cheapest = min(attribute.level(lv).fixed_cost for lv in used)
        required = sum(attribute.level(lv).fixed_cost for a, lv in cand.requirements if a == attribute.name)
        total += max(cheapest, required)
    return total


def _problem(
    sim: MarketSimulator, cand: Candidates, m: np.ndarray, scale: float, k: int, project: Project,
    years: float, charge_fixed: bool, budget: float | None, min_share: float, fl_cost: np.ndarray,
    c_min: float,
) -> tuple[Problem, list[tuple[int, int]], float]:
    """Flatten allowed candidates and the people's utilities for the heuristic (shortlisted if large)."""
    n_idx, g_idx = np.nonzero(cand.allowed)
    R = _n_people(sim)
    other = _other_utilities(sim)  # (R, J)
    logit = sim.rule == "logit"

    def utilities(cols: np.ndarray) -> np.ndarray:
        return _cand_utilities(sim, cand, n_idx[cols], g_idx[cols])

    n_all = n_idx.size
    keep = np.arange(n_all)
    alone = _alone_shares(sim, cand, n_idx, g_idx)  # (n_all,) each candidate's share when alone
    if R * n_all > SHORTLIST_CELLS:
        # keep the candidates with the best single-product value (and the best per must-include level)
        single = alone * m[n_idx, g_idx]
        n_keep = max(min(SHORTLIST_CELLS // (4 * R), 3000), 50 * k)
        keep_set = set(np.argsort(-single)[:n_keep].tolist())
        for r in range(cand.cover.shape[1]):
            members = np.flatnonzero(cand.cover[n_idx, r])
            keep_set.update(members[np.argsort(-single[members])[: 20 * k]].tolist())
        keep = np.array(sorted(keep_set))
    u = utilities(keep)
    if logit:
        top = np.maximum(u.max(axis=1), other.max(axis=1) if other.size else -np.inf)
        util = np.exp(u - top[:, None])
        oth = np.exp(other - top[:, None]).sum(axis=1)
    else:
        util = u
        oth = other.max(axis=1) if other.size else np.full(R, -np.inf)
    problem = Problem(
        util=util, other=oth, weights=_people_weights(sim), margin=m[n_idx[keep], g_idx[keep]],
        config=n_idx[keep], fl_bits=cand.fl_bits[n_idx[keep]], cover=cand.cover[n_idx[keep]],
        fl_cost=fl_cost, fixed_per_variant=project.product.fixed_cost_per_variant, scale=scale,
        years=years, charge_fixed=charge_fixed, budget=budget, min_share=min_share, logit=logit, k=k,
    )
    # bound: a product's share in any line is at most its share alone (IIA and first choice alike)
    value_alone = alone * np.maximum(m[n_idx, g_idx], 0.0)
    per_config = np.full(cand.n_configs, 0.0)
    np.maximum.at(per_config, n_idx, value_alone)
    bound = scale * float(np.sort(per_config)[::-1][:k].sum())
    bound -= c_min / years if charge_fixed else 0.0
    return problem, list(zip(n_idx[keep].tolist(), g_idx[keep].tolist(), strict=True)), bound


def _alone_shares(sim: MarketSimulator, cand: Candidates, n_idx: np.ndarray, g_idx: np.ndarray) -> np.ndarray:
    """Each candidate's share when it is our only product (weighted over people), in chunks."""
    R = _n_people(sim)
    other = _other_utilities(sim)
    weights = _people_weights(sim)
    out = np.empty(n_idx.size)
    chunk = max(1, SHORTLIST_CELLS // (4 * R))
    # candidates x people: gather whole rows of u0.T (fast), not scattered columns of u0
    u0t = np.ascontiguousarray(cand.u0.T) if sim.rule != "rfc" else None
    for start in range(0, n_idx.size, chunk):
        cols = slice(start, min(start + chunk, n_idx.size))
        if u0t is not None:
            ut = u0t[n_idx[cols]]
            ut += cand.prices[g_idx[cols]][:, None] * cand.price_slope[None, :]
        else:
            ut = _cand_utilities(sim, cand, n_idx[cols], g_idx[cols]).T
        if sim.rule == "logit":
            top = np.maximum(ut.max(axis=0), other.max(axis=1)) if other.size else ut.max(axis=0)
            e = np.exp(ut - top)
            d = np.exp(other - top[:, None]).sum(axis=1)
            out[cols] = (e / (d + e)) @ weights
        else:
            best_other = other.max(axis=1) if other.size else np.full(R, -np.inf)
            out[cols] = (ut > best_other) @ weights
    return out


def _n_people(sim: MarketSimulator) -> int:
    """People the heuristic scores: parameter sets, times the draws under randomized first choice."""
    return int(sim.betas.shape[0] * (sim.n_rfc_draws if sim.rule == "rfc" else 1))


def _people_weights(sim: MarketSimulator) -> np.ndarray:
    if sim.rule != "rfc":
        return sim.weights
    return np.repeat(sim.weights / sim.n_rfc_draws, sim.n_rfc_draws)


def _other_utilities(sim: MarketSimulator, persons: np.ndarray | None = None) -> np.ndarray:
    """Competitors' and None's utilities ``(P, J)`` (one row per person and RFC draw)."""
    other = sim.other_utilities()
    if persons is not None:
        other = other[persons]
    if sim.rule != "rfc":
        return other
    persons = np.arange(other.shape[0]) if persons is None else persons
    noisy = other[:, None, :] + sim.rfc_noise(persons, sim._keys_other, sim._A_other)
    return noisy.reshape(-1, other.shape[1])


def _cand_utilities(
    sim: MarketSimulator, cand: Candidates, n_sel: np.ndarray, g_sel: np.ndarray, persons: np.ndarray | None = None
) -> np.ndarray:
    """Utilities ``(P, n)`` of candidates ``(n_sel, g_sel)``, with RFC errors under randomized first choice.

    Under RFC each candidate gets the simulator's errors for its configuration (keyed
    by its levels), so the heuristic scores exactly what the simulator evaluates.
    """
    u0 = cand.u0 if persons is None else cand.u0[persons]
    slope = cand.price_slope if persons is None else cand.price_slope[persons]
    u = u0[:, n_sel] + slope[:, None] * cand.prices[g_sel][None, :]
    if sim.rule != "rfc":
        return u
    profiles = [cand.profile(int(n), int(g)) for n, g in zip(n_sel, g_sel, strict=True)]
    keys = np.array([sim.levels.product_key(p) for p in profiles], dtype=np.uint64)
    A = sim.levels.matrix(profiles)
    persons = np.arange(u.shape[0]) if persons is None else persons
    out = np.empty((u.shape[0] * sim.n_rfc_draws, u.shape[1]))
    block = max(1, SHORTLIST_CELLS // (4 * sim.n_rfc_draws * (u.shape[1] + A.shape[1])))
    for start in range(0, u.shape[0], block):
        rows = np.arange(start, min(start + block, u.shape[0]))
        noisy = u[rows, None, :] + sim.rfc_noise(persons[rows], keys, A)
        out[start * sim.n_rfc_draws: (rows[-1] + 1) * sim.n_rfc_draws] = noisy.reshape(-1, u.shape[1])
    return out


def _individual_bound(
    sim: MarketSimulator, cand: Candidates, m: np.ndarray, scale: float, k: int, years: float,
    charge_fixed: bool, c_min: float,
) -> float:
    """Sum over people of each person's own best line value, minus the least possible fixed cost."""
    R = sim.betas.shape[0]
    other = sim.other_utilities()
    N, G = cand.allowed.shape
    if sim.rule == "rfc":
        return _rfc_individual_bound(sim, cand, m, scale, years, charge_fixed, c_min)
    per_person = np.empty(R)
    chunk = max(1, 4_000_000 // (N * G))
    for start in range(0, R, chunk):
        rows = np.arange(start, min(start + chunk, R))
        u = cand.u0[rows][:, :, None] + cand.price_slope[rows][:, None, None] * cand.prices[None, None, :]
        if sim.rule == "logit":
            top = np.maximum(u.max(axis=(1, 2)), other[rows].max(axis=1) if other.size else -np.inf)
            e = np.exp(u - top[:, None, None])
            d = np.exp(other[rows] - top[:, None]).sum(axis=1)
            per_person[rows] = max_ratio_batch(e, m, cand.allowed, d, k)
        else:
            best_other = other[rows].max(axis=1) if other.size else np.full(rows.size, -np.inf)
            wins = (u > best_other[:, None, None]) & cand.allowed[None]
            best_m = np.where(wins, m[None], -np.inf).max(axis=(1, 2))
            per_person[rows] = np.maximum(best_m, 0.0)
    value = scale * float(sim.weights @ per_person)
    return value - (c_min / years if charge_fixed else 0.0)


def _rfc_individual_bound(
    sim: MarketSimulator, cand: Candidates, m: np.ndarray, scale: float, years: float, charge_fixed: bool,
    c_min: float,
) -> float:
    """Per-person-and-draw best margin among the candidates that beat every rival (first choice bound).

    Skipped (``inf``) when people x draws x candidates exceeds 200 million cells.
    """
    R, D = sim.betas.shape[0], sim.n_rfc_draws
    n_idx, g_idx = np.nonzero(cand.allowed)
    if R * D * n_idx.size > 200_000_000:
        return float("inf")
    margin = m[n_idx, g_idx]
    per = np.empty(R * D)
    chunk = max(1, SHORTLIST_CELLS // (4 * D * n_idx.size))
    for start in range(0, R, chunk):
        persons = np.arange(start, min(start + chunk, R))
        u = _cand_utilities(sim, cand, n_idx, g_idx, persons)
        other = _other_utilities(sim, persons)
        best_other = other.max(axis=1) if other.size else np.full(u.shape[0], -np.inf)
        wins = u > best_other[:, None]
        best_m = np.where(wins, margin[None, :], -np.inf).max(axis=1)
        per[start * D: (persons[-1] + 1) * D] = np.maximum(best_m, 0.0)
    value = scale * float(_people_weights(sim) @ per)
    return value - (c_min / years if charge_fixed else 0.0)


def _table(
    sim: MarketSimulator, profiles: list[dict[str, str | float]], names: list[str], years: float,
    include_rent: bool,
) -> pl.DataFrame:
    econ = sim.line_economics(profiles, names, years=years, include_rent=include_rent)
    rows = []
    for v in econ["variants"]:
        row: dict[str, Any] = {"variant": v["name"]}
        row.update({k: (str(x) if not isinstance(x, float) else x) for k, x in v["profile"].items()})
        for key in ("price", "unit_cost", "unit_margin", "rent_plan", "rent_per_car", "share", "share_low",
                    "share_high", "annual_volume", "revenue", "contribution"):
            row[key] = v[key]
        rows.append(row)
    return pl.DataFrame(rows)
