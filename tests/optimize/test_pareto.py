"""Share-vs-profit Pareto front: non-dominated, reproducible, equal to brute-force enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from c2m.errors import C2MError
from c2m.market import MarketSimulator
from c2m.optimize import default_price_grid, pareto_front

CONFIGS = [(s, c) for s in ("a", "b", "c") for c in ("white", "red") if (s, c) != ("c", "red")]


def _all_lines(grid, k_max):  # type: ignore[no-untyped-def]
    products = [{"style": s, "colour": c, "price": float(p)} for s, c in CONFIGS for p in grid]
    for k in range(1, k_max + 1):
        for line in itertools.combinations(products, k):
            if len({(p["style"], p["colour"]) for p in line}) == k:
                yield list(line)


def _brute_front(sim, grid, k_max, by_variants=True):  # type: ignore[no-untyped-def]
    points = []
    for line in _all_lines(grid, k_max):
        econ = sim.line_economics(line)["line"]
        points.append((len(line), econ["share"], econ["profit"]))
    pts = np.array(points)
    front = []
    for k, s, p in pts:
        fewer = pts[:, 0] <= k if by_variants else np.ones(len(pts), dtype=bool)
        ge = fewer & (pts[:, 1] >= s - 1e-12) & (pts[:, 2] >= p - 1e-6)
        strict = (pts[:, 1] > s + 1e-12) | (pts[:, 2] > p + 1e-6) | (by_variants & (pts[:, 0] < k))
        if not np.any(ge & strict):
            front.append((k, s, p))
    return _dedupe(front)


def _dedupe(points):  # type: ignore[no-untyped-def]
    """Sorted points, identical ones (same size, share and profit up to rounding) once."""
    out: list[tuple[int, float, float]] = []
    for k, s, p in sorted((int(k), float(s), float(p)) for k, s, p in points):
        if out and out[-1][0] == k and abs(out[-1][1] - s) < 1e-10 and abs(out[-1][2] - p) < 1e-3:
            continue
        out.append((k, s, p))
    return out


def _as_set(frame):  # type: ignore[no-untyped-def]
    return _dedupe(frame.select("n_variants", "share", "profit").iter_rows())


def _same(a, b) -> bool:  # type: ignore[no-untyped-def]
    return len(a) == len(b) and all(
        x[0] == y[0] and abs(x[1] - y[1]) < 1e-10 and abs(x[2] - y[2]) <= 1e-9 * max(1.0, abs(x[2]))
        for x, y in zip(a, b, strict=True)
    )


def _check_front(project, sim, frame) -> None:  # type: ignore[no-untyped-def]
    rows = list(frame.iter_rows(named=True))
    assert rows
    for row in rows:  # the simulator reproduces each point
        econ = sim.line_economics(row["variants"])["line"]
        assert econ["share"] == pytest.approx(row["share"], rel=1e-10)
        assert econ["profit"] == pytest.approx(row["profit"], rel=1e-10)
        assert len(row["variants"]) == row["n_variants"]
    for a, b in itertools.permutations(rows, 2):  # nothing returned is dominated by another returned point
        dominated = (b["share"] >= a["share"] and b["profit"] >= a["profit"] and b["n_variants"] <= a["n_variants"]
                     and (b["share"] > a["share"] or b["profit"] > a["profit"] or b["n_variants"] < a["n_variants"]))
        assert not dominated
    assert frame["share"].is_sorted()


def test_front_equals_brute_force_one_mnl(project, make_coef) -> None:
    sim = MarketSimulator(project, make_coef(project, 3))
    grid = default_price_grid(project)
    front = pareto_front(project, sim, max_variants=2)
    _check_front(project, sim, front)
    assert set(front["method"]) == {"enumerate"}
    assert _same(_as_set(front), _brute_front(sim, grid, 2))
    assert front["n_variants"].to_list().count(1) >= 1 and front["n_variants"].to_list().count(2) >= 1


@pytest.mark.parametrize("rule", ["first_choice", "rfc", "logit"])
def test_front_equals_brute_force_individual_betas(project, make_coef, rule) -> None:
    coefs = np.vstack([make_coef(project, s) for s in range(12)])
    coefs[:, -1] = -2.0
    sim = MarketSimulator(project, coefs.mean(axis=0), individual=coefs, rule=rule, n_rfc_draws=20,
                          product_variability=0.5, attribute_variability=0.5)
    grid = [40000.0, 46000.0, 52000.0, 60000.0]
    front = pareto_front(project, sim, max_variants=2, price_grid=grid)
    _check_front(project, sim, front)
    assert _same(_as_set(front), _brute_front(sim, grid, 2))
    two_d = pareto_front(project, sim, max_variants=2, price_grid=grid, by_variants=False)
    assert _same(_as_set(two_d), _brute_front(sim, grid, 2, by_variants=False))
    assert len(two_d) <= len(front)


def test_sweep_points_lie_on_the_exact_front(project, make_coef) -> None:
    sim = MarketSimulator(project, make_coef(project, 5))
    grid = default_price_grid(project)
    exact = _brute_front(sim, grid, 2)
    for individual in (False, True):
        s = sim if not individual else MarketSimulator(project, sim.coef, individual=sim.coef[None, :] + 0.0)
        sweep = pareto_front(project, s, max_variants=2, method="sweep")
        _check_front(project, s, sweep)
        assert set(sweep["method"]) <= {"exact", "greedy"}
        assert all(any(_same([pt], [e]) for e in exact) for pt in _as_set(sweep))
        # the supported ends: the most profitable and the largest-share lines are found
        assert sweep["profit"].max() == pytest.approx(max(p for _, _, p in exact), rel=1e-9)
        assert sweep["share"].max() == pytest.approx(max(sh for _, sh, _ in exact), rel=1e-9)


def test_errors(project, make_coef) -> None:
    coef = make_coef(project, 1)
    with pytest.raises(C2MError, match="likelihood"):
        pareto_front(project, MarketSimulator(project, coef, rule="likelihood"))
    with pytest.raises(C2MError, match="method"):
        pareto_front(project, MarketSimulator(project, coef), method="nsga")
    with pytest.raises(C2MError, match="max_variants"):
        pareto_front(project, MarketSimulator(project, coef), max_variants=9)
