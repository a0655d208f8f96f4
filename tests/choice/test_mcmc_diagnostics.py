"""Split R-hat and effective sample size on chains whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from c2m.choice._mcmc_diagnostics import ess, ess_mean, rhat, split_rhat, summarise
from c2m.errors import C2MError


def _ar1(phi: float, n_chains: int, n: int, seed: int) -> np.ndarray:
    """Stationary AR(1) chains with unit marginal variance."""
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(n_chains, n)) * np.sqrt(1.0 - phi**2)
    x = np.empty((n_chains, n))
    x[:, 0] = rng.normal(size=n_chains)
    for t in range(1, n):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x


def test_iid_normal_draws_have_ess_near_n_and_rhat_near_one() -> None:
    draws = np.random.default_rng(0).normal(size=(4, 2000))
    assert abs(rhat(draws) - 1.0) < 0.01
    assert abs(split_rhat(draws) - 1.0) < 0.01
    # ESS of iid draws has sampling sd about n * sqrt(2 / n_lags...) ~ a few %; 10% is safe.
    assert ess(draws) == pytest.approx(8000, rel=0.1)
    assert ess_mean(draws) == pytest.approx(8000, rel=0.1)


@pytest.mark.parametrize("phi", [0.5, 0.9, -0.3])
def test_ar1_chains_have_the_known_ess(phi: float) -> None:
    # integrated autocorrelation time of AR(1): tau = (1 + phi) / (1 - phi), ESS = n / tau
    draws = _ar1(phi, n_chains=4, n=20_000, seed=1)
    expected = draws.size * (1.0 - phi) / (1.0 + phi)
    assert ess_mean(draws) == pytest.approx(expected, rel=0.12)
    assert ess(draws) == pytest.approx(expected, rel=0.12)
    assert rhat(draws) < 1.01


def test_chains_with_different_means_have_large_rhat() -> None:
    rng = np.random.default_rng(2)
    draws = rng.normal(size=(2, 1000)) + np.array([[0.0], [3.0]])
    assert rhat(draws) > 1.5
    assert split_rhat(draws) > 1.5


def test_trend_within_one_chain_is_caught_by_splitting() -> None:
    # one chain drifting from -2 to 2: chain means agree, but the halves differ
    rng = np.random.default_rng(3)
    drift = np.linspace(-2.0, 2.0, 1000)
    draws = np.stack([drift + rng.normal(size=1000) * 0.3, -drift + rng.normal(size=1000) * 0.3])
    assert split_rhat(draws) > 1.5


def test_split_rhat_matches_the_gelman_formula_by_hand() -> None:
    rng = np.random.default_rng(4)
    draws = rng.normal(size=(3, 11)) + np.array([[0.0], [0.5], [1.0]])
    halves = [draws[c, :5] for c in range(3)] + [draws[c, -5:] for c in range(3)]
    n = 5
    means = np.array([h.mean() for h in halves])
    B = n * sum((m - means.mean()) ** 2 for m in means) / (len(halves) - 1)
    W = np.mean([sum((h - h.mean()) ** 2) / (n - 1) for h in halves])
    var_plus = (n - 1) / n * W + B / n
    assert split_rhat(draws) == pytest.approx(np.sqrt(var_plus / W), rel=1e-12)


def test_summarise_over_trailing_axes_and_bad_shapes() -> None:
    rng = np.random.default_rng(5)
    draws = rng.normal(size=(2, 500, 2, 3))
    r, e = summarise(draws)
    assert r.shape == (2, 3) and e.shape == (2, 3)
    assert np.all(np.abs(r - 1.0) < 0.02)
    assert rhat(np.ones((2, 50))) != rhat(np.ones((2, 50)))  # NaN for constant draws
    with pytest.raises(C2MError, match="at least 4 draws"):
        rhat(np.zeros((2, 3)))
    with pytest.raises(C2MError, match="n_chains, n_draws"):
        ess(np.zeros((2, 3, 4)))
