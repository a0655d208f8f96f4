"""Raking: exact cases, a hand-written IPF, margins, trimming, Kish design effect, errors."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest

from c2m.errors import C2MError
from c2m.signals import RakingResult, rake


def _sample(rng: np.random.Generator, n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "age": rng.choice(["young", "mid", "old"], size=n, p=[0.5, 0.3, 0.2]),
            "city": rng.choice(["A", "B"], size=n, p=[0.7, 0.3]),
            "income": rng.choice(["low", "middle", "high"], size=n, p=[0.2, 0.5, 0.3]),
        }
    )


POP = {
    "age": {"young": 0.25, "mid": 0.45, "old": 0.30},
    "city": {"A": 0.55, "B": 0.45},
    "income": {"low": 0.3, "middle": 0.45, "high": 0.25},
}


def test_single_variable_is_population_over_sample_share() -> None:
    sample = pl.DataFrame({"g": ["a"] * 6 + ["b"] * 3 + ["c"] * 1})
    pop = {"g": {"a": 0.2, "b": 0.5, "c": 0.3}}
    res = rake(sample, pop, trim=None)
    expected = np.array([0.2 / 0.6] * 6 + [0.5 / 0.3] * 3 + [0.3 / 0.1])
    expected /= expected.mean()
    assert isinstance(res, RakingResult)
    assert res.converged and res.iterations == 1
    np.testing.assert_allclose(res.weights, expected, rtol=1e-12)
    assert res.weights.mean() == pytest.approx(1.0)


def _ipf_table(counts: np.ndarray, rows: np.ndarray, cols: np.ndarray, sweeps: int = 2000) -> np.ndarray:
    """Textbook IPF on a two-way table: fitted cell totals with the given row and column totals."""
    fit = counts.astype(float).copy()
    for _ in range(sweeps):
        fit *= (rows / fit.sum(axis=1))[:, None]
        fit *= (cols / fit.sum(axis=0))[None, :]
    return fit


def test_two_variables_match_hand_written_ipf() -> None:
    counts = np.array([[30, 10, 5], [8, 20, 27]])  # sample contingency table (row x col)
    rows = np.array([0.4, 0.6])
    cols = np.array([0.2, 0.3, 0.5])
    r_levels, c_levels = ["r0", "r1"], ["c0", "c1", "c2"]
    records = [
        (r_levels[i], c_levels[j]) for i, j in itertools.product(range(2), range(3)) for _ in range(counts[i, j])
    ]
    sample = pl.DataFrame(records, schema=["r", "c"], orient="row")
    margins = {"r": dict(zip(r_levels, rows, strict=True)), "c": dict(zip(c_levels, cols, strict=True))}
    res = rake(sample, margins, trim=None, tol=1e-12, max_iter=1000)
    assert res.converged
    fit = _ipf_table(counts, rows * counts.sum(), cols * counts.sum())
    per_person = fit / counts  # every member of a cell gets the same weight
    expected = np.array([per_person[r_levels.index(r), c_levels.index(c)] for r, c in records])
    np.testing.assert_allclose(res.weights, expected / expected.mean(), rtol=1e-9)
    # raking weights are multiplicative: log w = a_row + b_col (rank-one in log space)
    log_cell = np.log(per_person)
    interaction = log_cell[0, :] - log_cell[1, :]
    np.testing.assert_allclose(interaction, interaction[0], atol=1e-9)


def test_margins_reproduced_on_every_variable() -> None:
    sample = _sample(np.random.default_rng(3), 2000)
    res = rake(sample, POP, trim=None)
    assert res.converged
    m = res.margins
    assert set(m.columns) == {"variable", "level", "sample_share", "weighted_share", "population_share"}
    assert m.height == 8
    np.testing.assert_allclose(m["weighted_share"], m["population_share"], atol=1e-6)
    # check directly from the weights, not only the reported table
    w = res.weights
    for var, levels in POP.items():
        col = sample[var].to_numpy()
        for level, share in levels.items():
            assert w[col == level].sum() / w.sum() == pytest.approx(share, abs=1e-6)
    assert res.max_margin_error < 1e-8


def test_population_table_gives_the_same_weights_as_its_margins() -> None:
    rng = np.random.default_rng(5)
    population = _sample(rng, 5000).with_columns(
        pl.Series("age", rng.choice(["young", "mid", "old"], size=5000, p=[0.2, 0.4, 0.4]))
    )
    sample = _sample(rng, 800)
    margins = {v: {k: c / 5000 for k, c in population[v].value_counts().iter_rows()} for v in ("age", "city")}
    a = rake(sample, population, variables=["age", "city"], trim=None)
    b = rake(sample, population=population, variables=["age", "city"], trim=None)
    c = rake(sample, margins, trim=None)
    np.testing.assert_allclose(a.weights, c.weights, rtol=1e-10)
    np.testing.assert_allclose(b.weights, c.weights, rtol=1e-10)


def test_trimming_bounds_and_kish_design_effect() -> None:
    rng = np.random.default_rng(11)
    sample = pl.DataFrame({"g": rng.choice(["a", "b", "c"], size=1000, p=[0.8, 0.15, 0.05])})
    pop = {"g": {"a": 0.2, "b": 0.3, "c": 0.5}}  # untrimmed: c members get weight 10x the mean
    free = rake(sample, pop, trim=None)
    assert free.weights.max() / free.weights.mean() > 5
    res = rake(sample, pop, trim=(0.5, 2.0))
    ratio = res.weights / res.weights.mean()
    assert ratio.min() >= 0.5 - 1e-9 and ratio.max() <= 2.0 + 1e-9
    assert not res.converged  # the margins cannot be met inside these bounds
    w = res.weights
    cv2 = np.var(w) / np.mean(w) ** 2
    assert res.design_effect == pytest.approx(1 + cv2, rel=1e-12)
    assert res.effective_sample_size == pytest.approx(w.sum() ** 2 / (w**2).sum(), rel=1e-12)


def test_trimming_with_feasible_bounds_still_meets_margins() -> None:
    sample = _sample(np.random.default_rng(4), 3000)
    res = rake(sample, POP, trim=(0.3, 3.0), max_iter=500)
    ratio = res.weights / res.weights.mean()
    assert ratio.min() >= 0.3 - 1e-9 and ratio.max() <= 3.0 + 1e-9
    assert res.converged
    np.testing.assert_allclose(res.margins["weighted_share"], res.margins["population_share"], atol=1e-6)


def test_base_weights_are_kept_within_cells() -> None:
    sample = pl.DataFrame({"g": ["a", "a", "b", "b", "b"]})
    base = np.array([1.0, 3.0, 1.0, 1.0, 2.0])
    res = rake(sample, {"g": {"a": 0.5, "b": 0.5}}, base_weights=base, trim=None)
    w = res.weights
    assert w[1] / w[0] == pytest.approx(3.0)
    assert w[4] / w[2] == pytest.approx(2.0)
    assert w[:2].sum() == pytest.approx(w[2:].sum())


def test_errors_name_the_variable_and_level() -> None:
    sample = pl.DataFrame({"g": ["a", "b", "z"], "h": ["x", "x", "y"]})
    with pytest.raises(C2MError, match=r"'g'.*'z'"):
        rake(sample, {"g": {"a": 0.5, "b": 0.5}})
    with pytest.raises(C2MError, match=r"g='c'.*no sample members"):
        rake(sample, {"g": {"a": 0.3, "b": 0.3, "z": 0.2, "c": 0.2}})
    with pytest.raises(C2MError, match=r"missing column\(s\) \['age'\]"):
        rake(sample, {"age": {"a": 1.0}})
    with pytest.raises(C2MError, match="population is missing column"):
        rake(sample, population=pl.DataFrame({"h": ["x"]}), variables=["g"])
    with pytest.raises(C2MError, match="trim"):
        rake(sample, {"h": {"x": 0.5, "y": 0.5}}, trim=(2.0, 5.0))
    with pytest.raises(C2MError, match="base_weights"):
        rake(sample, {"h": {"x": 0.5, "y": 0.5}}, base_weights=[1.0, -1.0, 1.0])


@pytest.mark.parametrize("seed", range(5))
def test_random_feasible_margins_are_met(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sample = _sample(rng, 1500)
    margins = {
        var: dict(zip(levels, rng.dirichlet(np.full(len(levels), 5.0)), strict=True))
        for var, levels in (
            ("age", ["young", "mid", "old"]),
            ("city", ["A", "B"]),
            ("income", ["low", "middle", "high"]),
        )
    }
    res = rake(sample, margins, trim=None, max_iter=1000)
    assert res.converged
    np.testing.assert_allclose(res.margins["weighted_share"], res.margins["population_share"], atol=1e-6)
    assert res.weights.mean() == pytest.approx(1.0)
    assert res.design_effect >= 1.0
