"""Product-line optimiser: exact against brute force, heuristics against bounds, business rules."""

from __future__ import annotations

import itertools
import json
import time

import numpy as np
import pytest

from c2m.data import default_project
from c2m.domain import FeatureCoder, enumerate_profiles, fixed_cost, is_prohibited
from c2m.errors import C2MError
from c2m.market import MarketSimulator, unit_economics
from c2m.optimize import default_price_grid, line_objective, optimize_line

GRID = [40000.0, 46000.0, 52000.0, 60000.0]


def brute_force(project, sim, k, objective, grid=GRID, must_include=None, must_exclude=None,  # type: ignore[no-untyped-def]
                budget=None, min_share=0.0, years=4.0):
    """Best line of k distinct configurations by enumerating every line (independent of the optimiser)."""
    profiles = enumerate_profiles(project, {"price": grid})
    if must_exclude:
        profiles = [p for p in profiles if not any(p[a] in lv for a, lv in must_exclude.items())]
    utils = np.atleast_2d(sim.utilities(profiles))  # (R, n)
    other = np.exp(sim.other_utilities())  # (R, J)
    e = np.exp(utils)
    size = 1.0 if objective == "share" else sum(c.market_size for c in project.cities)
    margin = np.array([
        1.0 if objective == "share"
        else (p["price"] if objective == "revenue" else unit_economics(project, p).margin)
        for p in profiles
    ])
    configs = [tuple(v for a, v in p.items() if a != "price") for p in profiles]
    best, best_line = -np.inf, None
    for combo in itertools.combinations(range(len(profiles)), k):
        if len({configs[i] for i in combo}) < k:
            continue
        line = [profiles[i] for i in combo]
        if must_include and not all(any(p[a] == lv for p in line) for a, lv in must_include.items()):
            continue
        fc = fixed_cost(project, line)
        if budget is not None and fc > budget:
            continue
        den = other.sum(axis=1) + e[:, list(combo)].sum(axis=1)
        shares = sim.weights @ (e[:, list(combo)] / den[:, None])
        if np.any(shares < min_share):
            continue
        value = size * float(shares @ margin[list(combo)])
        if objective == "profit":
            value -= fc / years
        if value > best:
            best, best_line = value, line
    return best, best_line


@pytest.mark.parametrize("objective", ["share", "profit", "revenue"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_exact_equals_brute_force(project, make_coef, objective, k) -> None:
    for seed in range(3):
        sim = MarketSimulator(project, make_coef(project, 10 * seed + k))
        sol = optimize_line(project, sim, k, objective, price_grid=GRID, method="exact")
        best, _ = brute_force(project, sim, k, objective)
        assert sol.method == "exact" and sol.gap == 0.0
        assert sol.objective_value == pytest.approx(best, rel=1e-9)
        assert sol.bound >= sol.objective_value
        assert len(sol.variants) == k
        assert len({tuple(v[a] for a in ("style", "colour")) for v in sol.variants}) == k
        assert not any(is_prohibited(project, v) for v in sol.variants)
        greedy = optimize_line(project, sim, k, objective, price_grid=GRID, method="greedy")
        assert greedy.objective_value <= sol.objective_value + 1e-9 * abs(sol.objective_value)
        assert greedy.bound >= sol.objective_value - 1e-9 * abs(sol.objective_value)


def test_business_rules_match_brute_force(project, make_coef) -> None:
    for seed in range(4):
        sim = MarketSimulator(project, make_coef(project, 100 + seed))
        rules = {"must_include": {"colour": "red"}, "must_exclude": {"style": ["a"]}}
        sol = optimize_line(project, sim, 2, "profit", price_grid=GRID, **rules)
        best, _ = brute_force(project, sim, 2, "profit", **rules)
        assert sol.objective_value == pytest.approx(best, rel=1e-9)
        assert any(v["colour"] == "red" for v in sol.variants)
        assert all(v["style"] != "a" for v in sol.variants)
        budget = 50_000_000 * 2 + 60_000_000
        sol = optimize_line(project, sim, 2, "share", price_grid=GRID, fixed_cost_budget=budget)
        best, _ = brute_force(project, sim, 2, "share", budget=budget)
        assert sol.objective_value == pytest.approx(best, rel=1e-9)
        assert fixed_cost(project, sol.variants) <= budget


def test_two_requirements(project, make_coef) -> None:
    sim = MarketSimulator(project, make_coef(project, 7))
    rules = {"must_include": {"colour": "red", "style": "c"}}
    sol = optimize_line(project, sim, 3, "profit", price_grid=GRID, **rules)
    best, _ = brute_force(project, sim, 3, "profit", **rules)
    assert sol.objective_value == pytest.approx(best, rel=1e-9)


def test_min_share_per_variant(project, make_coef) -> None:
    n_feasible = 0
    for seed in range(6):
        sim = MarketSimulator(project, make_coef(project, 200 + seed))
        free = optimize_line(project, sim, 3, "profit", price_grid=GRID)
        shares = sim.shares(free.variants)["share"].to_numpy()[:3]
        floor = float(np.sort(shares)[0]) * 1.5 + 1e-3
        best, _ = brute_force(project, sim, 3, "profit", min_share=floor)
        if not np.isfinite(best):
            with pytest.raises(C2MError, match="no line satisfies"):
                optimize_line(project, sim, 3, "profit", price_grid=GRID, min_share_per_variant=floor)
            continue
        n_feasible += 1
        sol = optimize_line(project, sim, 3, "profit", price_grid=GRID, min_share_per_variant=floor)
        got = sim.shares(sol.variants)["share"].to_numpy()[:3]
        assert np.all(got >= floor - 1e-12)
        assert sol.method == "exact" and sol.gap == 0.0
        assert sol.objective_value == pytest.approx(best, rel=1e-9)
    assert n_feasible >= 2


@pytest.mark.parametrize("seed", range(4))
def test_milp_agrees_with_dinkelbach(project, make_coef, seed) -> None:
    """Two independent exact methods (Charnes-Cooper MILP and Dinkelbach + level sets) agree."""
    from c2m.optimize._candidates import build_candidates
    from c2m.optimize._exact import solve_exact
    from c2m.optimize._line import _homogeneous_exp
    from c2m.optimize._milp import solve_milp

    sim = MarketSimulator(project, make_coef(project, 300 + seed))
    cand = build_candidates(project, sim, GRID, {"colour": "red"} if seed % 2 else None, None)
    e, D = _homogeneous_exp(sim, cand)
    size = sum(c.market_size for c in project.cities)
    for objective, budget in (("profit", None), ("share", 2.6e8), ("revenue", None)):
        m = cand.margins(objective, False)
        scale = 1.0 if objective == "share" else size
        args = (cand, m, scale, 3, project.product.fixed_cost_per_variant, 4.0, objective == "profit", budget,
                e, D)
        a = solve_exact(*args)
        b = solve_milp(*args, 0.0, 30.0)
        assert a is not None and b is not None and b.optimal
        assert b.value == pytest.approx(a.value, rel=1e-7)


@pytest.mark.parametrize("rule", ["logit", "first_choice"])
@pytest.mark.parametrize("objective", ["share", "profit"])
def test_individual_betas_heuristic_and_bound(project, make_coef, rule, objective) -> None:
    coefs = np.vstack([make_coef(project, s) for s in range(30)])
    sim = MarketSimulator(project, coefs.mean(axis=0), individual=coefs, rule=rule)
    sol = optimize_line(project, sim, 2, objective, price_grid=GRID)
    assert sol.method == "greedy"
    if rule == "logit":
        best, _ = brute_force(project, sim, 2, objective)
    else:
        best = max(
            line_objective(sim, list(line), objective)
            for line in itertools.combinations(enumerate_profiles(project, {"price": GRID}), 2)
            if line[0]["style"] != line[1]["style"] or line[0]["colour"] != line[1]["colour"]
        )
    assert sol.objective_value <= best + 1e-9 * abs(best) + 1e-6
    assert sol.bound >= best - 1e-9 * abs(best) - 1e-6
    assert sol.gap == pytest.approx((sol.bound - sol.objective_value) / max(abs(sol.bound), 1e-12))
    with pytest.warns(UserWarning, match="exact method needs"):
        optimize_line(project, sim, 2, objective, price_grid=GRID, method="exact")


def test_default_grid_and_errors(project, make_coef) -> None:
    grid = default_price_grid(project)
    assert grid[0] == 40000 and grid[-1] == 60000 and np.all(np.diff(grid) == 2000)
    sim = MarketSimulator(project, make_coef(project, 1))
    with pytest.raises(C2MError, match=r"must_include\.colour: unknown level"):
        optimize_line(project, sim, 2, must_include={"colour": "gold"})
    with pytest.raises(C2MError, match=r"must_exclude\.size: unknown attribute"):
        optimize_line(project, sim, 2, must_exclude={"size": ["x"]})
    with pytest.raises(C2MError, match=r"exceeds product\.max_variants"):
        optimize_line(project, sim, 5)
    with pytest.raises(C2MError, match="objective"):
        optimize_line(project, sim, 2, objective="fun")  # type: ignore[arg-type]


def test_to_dict_follows_the_contract(project, make_coef) -> None:
    sim = MarketSimulator(project, make_coef(project, 3), vcov=np.eye(5) * 0.02)
    sol = optimize_line(project, sim, 2, "profit", price_grid=GRID)
    out = json.loads(json.dumps(sol.to_dict()))
    assert set(out) == {"project", "objective", "method", "variants", "line", "bound", "gap",
                        "competitors", "none_share"}
    assert set(out["variants"][0]) == {
        "name", "profile", "price", "unit_cost", "share", "share_low", "share_high", "annual_volume",
        "annual_volume_low", "annual_volume_high", "unit_margin", "rent_plan"}
    assert set(out["line"]) == {"share", "share_low", "share_high", "annual_volume", "revenue", "profit",
                                "fixed_cost"}
    total = sum(v["share"] for v in out["variants"]) + sum(c["share"] for c in out["competitors"])
    assert total + out["none_share"] == pytest.approx(1.0)
    assert out["line"]["profit"] == pytest.approx(sol.objective_value)
    for v in out["variants"]:
        assert v["share_low"] <= v["share"] <= v["share_high"]
    assert sol.table.height == 2 and "share" in sol.table.columns


def test_default_project_profit_three_variants() -> None:
    project = default_project()
    coder = FeatureCoder.from_project(project)
    rng = np.random.default_rng(5)
    coef = rng.normal(0.0, 0.4, coder.n_features)
    coef[coder.feature_names.index("price")] = -1.2
    coef[coder.feature_names.index("none")] = 0.5
    sim = MarketSimulator(project, coef)
    start = time.perf_counter()
    sol = optimize_line(project, sim, 3, "profit")
    elapsed = time.perf_counter() - start
    assert sol.method == "exact" and sol.gap == 0.0
    assert elapsed < 30
    assert sol.n_candidates > 50_000
    greedy = optimize_line(project, sim, 3, "profit", method="greedy")
    assert greedy.objective_value <= sol.objective_value + 1e-9 * abs(sol.objective_value)
    assert not any(is_prohibited(project, v) for v in sol.variants)


def test_heuristic_is_deterministic_for_a_seed(project, make_coef) -> None:
    coefs = np.vstack([make_coef(project, s) for s in range(25)])
    sim = MarketSimulator(project, coefs.mean(axis=0), individual=coefs)
    a = optimize_line(project, sim, 3, "profit", price_grid=GRID, seed=4)
    b = optimize_line(project, sim, 3, "profit", price_grid=GRID, seed=4)
    assert a.variants == b.variants and a.objective_value == b.objective_value and a.bound == b.bound


def test_money_objectives_need_cities(project, make_coef) -> None:
    bare = project.model_copy(update={"cities": []})
    sim = MarketSimulator(bare, make_coef(project, 1))
    with pytest.raises(C2MError, match="market_size"):
        optimize_line(bare, sim, 2, "profit")
    assert optimize_line(bare, sim, 2, "share", price_grid=GRID).gap == 0.0


def test_time_limited_exact_keeps_a_valid_bound() -> None:
    project = default_project()
    coder = FeatureCoder.from_project(project)
    rng = np.random.default_rng(11)
    coef = rng.normal(0.0, 0.4, coder.n_features)
    coef[coder.feature_names.index("price")] = -1.0
    coef[coder.feature_names.index("none")] = 0.0
    sim = MarketSimulator(project, coef)
    full = optimize_line(project, sim, 2, "profit")
    rushed = optimize_line(project, sim, 2, "profit", time_limit=0.0)
    assert rushed.method in ("exact", "dinkelbach")
    assert rushed.objective_value <= full.objective_value + 1e-9 * abs(full.objective_value)
    assert rushed.bound >= full.objective_value - 1e-9 * abs(full.objective_value)
