"""Bass model: analytic identities, Jacobian, and recovery of known parameters."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from c2m.errors import C2MError
from c2m.forecast import BassModel, fit_bass
from c2m.forecast._bass import bass_fraction, bass_fraction_jacobian, bass_increment_jacobian


@pytest.mark.parametrize(("p", "q", "m"), [(0.03, 0.4, 1000.0), (0.01, 0.12, 5e4), (0.5, 0.05, 10.0)])
def test_cumulative_is_integral_of_rate(p: float, q: float, m: float) -> None:
    model = BassModel(p, q, m)
    for t in (0.5, 3.0, 17.0, 60.0):
        integral, _ = quad(lambda s: float(model.rate(s)), 0.0, t, epsabs=1e-10, epsrel=1e-10)
        assert model.cumulative(t) == pytest.approx(integral, rel=1e-8, abs=1e-9)
    assert float(model.cumulative(0.0)) == 0.0
    assert float(model.cumulative(1e4)) == pytest.approx(m)


def test_peak_time_maximises_rate() -> None:
    model = BassModel(0.01, 0.12, 1.0)
    grid = np.linspace(0, 60, 60001)
    assert grid[np.argmax(model.rate(grid))] == pytest.approx(model.peak_time, abs=2e-3)


@pytest.mark.parametrize(("p", "q"), [(0.03, 0.4), (0.2, 1.5), (0.01, 0.0)])
def test_jacobian_matches_finite_differences(p: float, q: float) -> None:
    t = np.array([0.3, 1.0, 2.5, 7.0, 20.0])
    dfdp, dfdq = bass_fraction_jacobian(t, p, q)
    h = 1e-7
    num_p = (bass_fraction(t, p + h, q) - bass_fraction(t, p - h, q)) / (2 * h)
    num_q = (
        (bass_fraction(t, p, q + h) - bass_fraction(t, p, q - h)) / (2 * h)
        if q > 0
        else (bass_fraction(t, p, q + h) - bass_fraction(t, p, q)) / h
    )
    np.testing.assert_allclose(dfdp, num_p, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(dfdq, num_q, rtol=1e-4, atol=1e-7)
    m = 123.0
    J = bass_increment_jacobian(t, p, q, m)

    def inc(theta: np.ndarray) -> np.ndarray:
        prev = np.concatenate([[0.0], t[:-1]])
        return theta[2] * (bass_fraction(t, theta[0], theta[1]) - bass_fraction(prev, theta[0], theta[1]))

    theta = np.array([p, q, m])
    for k in range(3):
        step = np.zeros(3)
        step[k] = 1e-6 * max(1.0, theta[k])
        lo = theta - step if theta[k] - step[k] > 0 else theta
        num = (inc(theta + step) - inc(lo)) / (theta[k] + step[k] - lo[k])
        np.testing.assert_allclose(J[:, k], num, rtol=1e-4, atol=1e-6)


def test_fit_recovers_known_parameters_within_intervals() -> None:
    truth = BassModel(0.02, 0.3, 50_000.0)
    t = np.arange(1, 31, dtype=float)
    hits = 0
    n_rep = 20
    for seed in range(n_rep):
        rng = np.random.default_rng(seed)
        counts = rng.poisson(truth.adoptions(t - 1, t))
        fit = fit_bass(t, np.cumsum(counts))
        assert fit.converged
        z = [abs(getattr(fit, k) - getattr(truth, k)) / fit.se[k] for k in ("p", "q", "m")]
        assert max(z) < 4.0
        hits += all(v < 1.96 for v in z)
    # 95 % intervals on each of three parameters: expect most replications to cover all three
    assert hits >= 14


def test_fit_on_truncated_data_and_predict_interval() -> None:
    truth = BassModel(0.05, 0.5, 2_000.0)
    t = np.arange(1, 9, dtype=float)
    rng = np.random.default_rng(3)
    fit = fit_bass(t, np.cumsum(rng.poisson(truth.adoptions(t - 1, t))))
    mean, low, high = fit.predict([4.0, 8.0, 30.0], level=0.9)
    assert np.all(low <= mean) and np.all(mean <= high)
    assert low[2] < truth.m * 1.05 and high[2] > truth.m * 0.95
    assert np.isfinite(fit.loglik)


def test_m_prior_pulls_potential() -> None:
    truth = BassModel(0.01, 0.2, 10_000.0)
    t = np.arange(1, 7, dtype=float)  # early data: m is weakly identified
    rng = np.random.default_rng(0)
    y = np.cumsum(rng.poisson(truth.adoptions(t - 1, t)))
    free = fit_bass(t, y)
    tight = fit_bass(t, y, m_prior=(10_000.0, 100.0))
    assert abs(tight.m - 10_000.0) < 300
    assert tight.se["m"] < free.se["m"]


def test_fit_rejects_bad_input() -> None:
    with pytest.raises(C2MError, match="decrease"):
        fit_bass([1, 2, 3], [5, 4, 6])
    with pytest.raises(C2MError, match="at least 3"):
        fit_bass([1, 2], [1, 2])
