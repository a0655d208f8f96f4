"""D-error and standard errors checked against brute force and simulated MNL estimation."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from scipy.optimize import minimize

from c2m.domain import FeatureCoder, Project
from c2m.survey import (
    Design,
    d_error,
    design_diagnostics,
    expected_standard_errors,
    make_design,
    required_sample_size,
)

from .conftest import SMALL_DESIGN, small_project

TINY = small_project(
    [
        {"name": "colour", "levels": [{"name": "red"}, {"name": "blue"}, {"name": "green"}]},
        {"name": "fast", "levels": [{"name": "no"}, {"name": "yes"}]},
        {
            "name": "price",
            "kind": "numeric",
            "scale": 100.0,
            "levels": [
                {"name": "low", "value": 100.0},
                {"name": "mid", "value": 150.0},
                {"name": "high", "value": 200.0},
            ],
        },
    ],
    prohibitions=[{"levels": {"colour": "green", "fast": "yes"}}],
)


def task_matrices(project: Project, design: Design) -> np.ndarray:
    """Features (V, T, M, K) of the non-holdout tasks via the domain coder, None row appended."""
    coder = FeatureCoder.from_project(project)
    frame = design.frame.filter(~pl.col("holdout")).sort("version", "task", "alt")
    X = coder.encode_frame(frame).reshape(design.n_versions, -1, design.n_alts, coder.n_features)
    if design.none_option:
        none = np.broadcast_to(coder.none_row(), (*X.shape[:2], 1, coder.n_features))
        X = np.concatenate([X, none], axis=2)
    return X


def brute_force_information(X: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """E[score score'] over every possible answer sheet, scores by central finite differences."""
    V, T, M, K = X.shape
    info = np.zeros((K, K))

    def loglik(b: np.ndarray, version: int, choices: tuple[int, ...]) -> float:
        u = X[version] @ b
        return float(sum(u[t, c] - np.log(np.exp(u[t]).sum()) for t, c in enumerate(choices)))

    for v in range(V):
        for choices in itertools.product(range(M), repeat=T):
            prob = np.exp(loglik(beta, v, choices))
            h = 1e-5
            score = np.array(
                [
                    (loglik(beta + h * e, v, choices) - loglik(beta - h * e, v, choices)) / (2 * h)
                    for e in np.eye(K)
                ]
            )
            info += prob * np.outer(score, score)
    return info / V


def test_d_error_equals_brute_force_on_a_tiny_design() -> None:
    design = make_design(TINY, method="random", n_versions=2, n_tasks=4, n_alts=2, n_holdout=1, seed=5)
    beta = np.array([0.4, -0.3, 0.8, -1.1, 0.2])
    X = task_matrices(TINY, design)
    assert X.shape == (2, 3, 3, 5)
    info = brute_force_information(X, beta)
    expected = np.linalg.det(info) ** (-1 / 5)
    assert d_error(TINY, design, beta) == pytest.approx(expected, rel=1e-6)
    # zero coefficients by default; Bayesian D-error is the mean over draws
    info0 = brute_force_information(X, np.zeros(5))
    assert d_error(TINY, design) == pytest.approx(np.linalg.det(info0) ** (-1 / 5), rel=1e-6)
    draws = np.stack([beta, np.zeros(5), -beta])
    mean = np.mean([d_error(TINY, design, b) for b in draws])
    assert d_error(TINY, design, draws) == pytest.approx(mean, rel=1e-12)


def test_d_efficient_beats_random_and_its_starting_design(project: Project) -> None:
    rng = np.random.default_rng(0)
    prior = rng.normal(0.0, 0.3, size=20)
    prior[-2] = -0.6  # price, per 10,000 yuan
    efficient = make_design(project, method="d_efficient", prior=prior, **SMALL_DESIGN)
    random = make_design(project, method="random", **SMALL_DESIGN)
    start = make_design(project, method="complete_enumeration", **SMALL_DESIGN)
    d_eff, d_rand, d_start = (d_error(project, d, prior) for d in (efficient, random, start))
    assert d_eff < 0.9 * d_start  # coordinate exchange improves on its complete-enumeration start
    assert d_eff < 0.9 * d_rand
    # at zero coefficients (utility-neutral) too, against random designs of other seeds
    neutral = make_design(project, method="d_efficient", **SMALL_DESIGN)
    randoms = [make_design(project, method="random", **{**SMALL_DESIGN, "seed": s}) for s in range(3)]
    assert d_error(project, neutral) < 0.9 * min(d_error(project, d) for d in randoms)


def test_complete_enumeration_is_more_efficient_than_random_when_neutral(
    project: Project, designs: dict[str, Design]
) -> None:
    d_random = d_error(project, designs["random"])
    assert d_error(project, designs["complete_enumeration"]) < 0.95 * d_random
    assert d_error(project, designs["balanced_overlap"]) < d_random


def test_bayesian_d_efficient_beats_random_on_mean_d_error() -> None:
    draws = np.random.default_rng(1).normal([0.5, 0.2, 0.6, -1.5, 0.0], 0.3, size=(16, 5))
    kwargs = {"n_versions": 3, "n_tasks": 6, "n_alts": 3, "n_holdout": 1, "seed": 2}
    efficient = make_design(TINY, method="d_efficient", prior=draws, **kwargs)
    random = make_design(TINY, method="random", **kwargs)
    assert d_error(TINY, efficient, draws) < 0.9 * d_error(TINY, random, draws)


def simulate_and_fit(
    X: np.ndarray, beta: np.ndarray, n_per_version: int, rng: np.random.Generator
) -> np.ndarray:
    """Simulate MNL answers for n_per_version respondents per version and fit the MNL by ML."""
    K = X.shape[-1]
    Xr = np.repeat(X, n_per_version, axis=0)  # (N, T, M, K)
    u = Xr @ beta + rng.gumbel(size=Xr.shape[:3])
    chosen = u.argmax(axis=2)
    Xc = np.take_along_axis(Xr, chosen[..., None, None], axis=2)[:, :, 0]  # (N, T, K)
    xc_sum = Xc.sum(axis=(0, 1))

    def negloglik(b: np.ndarray) -> tuple[float, np.ndarray]:
        v = Xr @ b
        vmax = v.max(axis=2, keepdims=True)
        p = np.exp(v - vmax)
        denom = p.sum(axis=2, keepdims=True)
        p /= denom
        ll = float((xc_sum @ b) - (np.log(denom) + vmax).sum())
        grad = xc_sum - np.einsum("ntm,ntmk->k", p, Xr)
        return -ll, -grad

    result = minimize(negloglik, np.zeros(K), jac=True, method="BFGS", options={"gtol": 1e-8})
    return np.asarray(result.x)


def test_analytic_standard_errors_match_simulated_estimates() -> None:
    beta = np.array([0.5, -0.4, 0.7, -1.2, 0.3])
    design = make_design(
        TINY, method="balanced_overlap", n_versions=4, n_tasks=9, n_alts=3, n_holdout=1, seed=7
    )
    n_per_version = 40
    n_respondents = n_per_version * design.n_versions
    se = expected_standard_errors(TINY, design, beta, n_respondents=n_respondents)["se"].to_numpy()
    X = task_matrices(TINY, design)
    rng = np.random.default_rng(123)
    estimates = np.array([simulate_and_fit(X, beta, n_per_version, rng) for _ in range(150)])
    empirical = estimates.std(axis=0, ddof=1)
    ratio = empirical / se
    assert np.all((ratio > 0.8) & (ratio < 1.25)), ratio
    assert abs(ratio.mean() - 1.0) < 0.1, ratio
    assert np.all(np.abs(estimates.mean(axis=0) - beta) < 3 * se / np.sqrt(len(estimates)) + 0.05 * se)


def test_required_sample_size_meets_the_target(project: Project, designs: dict[str, Design]) -> None:
    design = designs["balanced_overlap"]
    table = required_sample_size(project, design, target_se=0.05)
    assert table["feature"].to_list() == FeatureCoder.from_project(project).feature_names
    for row in table.iter_rows(named=True):
        n = row["n_required"]
        assert row["se_one"] / np.sqrt(n) <= 0.05 < row["se_one"] / np.sqrt(max(n - 1, 1)) or n == 1
    diagnostics = design_diagnostics(project, design, n_respondents=int(table["n_required"].max()))
    assert (diagnostics.expected_se["se"] <= 0.05 + 1e-12).all()
    assert diagnostics.d_error == pytest.approx(d_error(project, design))


def test_unidentified_design_reports_infinite_error() -> None:
    # every task shows the same colour twice over: colour effects cannot be estimated
    design = make_design(TINY, method="random", n_versions=1, n_tasks=2, n_alts=2, n_holdout=0, seed=0)
    frame = design.frame.with_columns(colour=pl.lit("red"), fast=pl.lit("no"))
    frame = frame.with_columns(price=pl.Series([100.0, 150.0, 100.0, 200.0]))
    broken = Design(frame, "random", 0, 1, 2, 2, True, "test")
    assert d_error(TINY, broken) == float("inf")
    table = required_sample_size(TINY, broken)
    assert table.filter(pl.col("feature") == "colour=blue")["n_required"].is_null().all()


def test_low_rank_candidate_update_equals_direct_log_det() -> None:
    from c2m.survey._efficient import _candidate_values
    from c2m.survey._information import log_det, task_information

    rng = np.random.default_rng(4)
    R, n, M, K, V = 3, 7, 4, 6, 5
    Xc, Xo = rng.normal(size=(n, M, K)), rng.normal(size=(M, K))
    beta = rng.normal(0.0, 0.5, size=(R, K))
    B = rng.normal(size=(R, K, K))
    total = (B @ np.swapaxes(B, -1, -2) + np.eye(K)) * V
    total_with_old = total + task_information(Xo[None], beta)[:, 0]
    A = total_with_old / V
    direct = log_det((total[:, None] + task_information(Xc, beta)) / V)  # (R, n)
    got = _candidate_values(Xc, Xo, beta, np.linalg.inv(A), log_det(A), V, lambda ld: ld)
    assert np.allclose(got, direct, atol=1e-10)
