"""Draws for simulated likelihood: Halton against van der Corput, uniformity, seeding."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from c2m.choice import make_draws
from c2m.choice._draws import first_primes, halton, standardise
from c2m.errors import C2MError


def test_first_primes() -> None:
    assert first_primes(10) == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]


def test_unscrambled_halton_is_van_der_corput() -> None:
    u = halton(8, 2, skip=0, seed=None)
    base2 = [1 / 2, 1 / 4, 3 / 4, 1 / 8, 5 / 8, 3 / 8, 7 / 8, 1 / 16]
    base3 = [1 / 3, 2 / 3, 1 / 9, 4 / 9, 7 / 9, 2 / 9, 5 / 9, 8 / 9]
    np.testing.assert_allclose(u[:, 0], base2, rtol=0, atol=1e-15)
    np.testing.assert_allclose(u[:, 1], base3, rtol=0, atol=1e-15)


def test_halton_burn_in_and_person_blocks() -> None:
    # default burn-in = largest base (3 for two dimensions); persons get consecutive blocks
    full = halton(3 + 12, 2, skip=0, seed=None)
    d = make_draws(4, 3, 2, kind="halton", seed=None)
    np.testing.assert_allclose(d.reshape(12, 2), full[3:], atol=1e-15)


@pytest.mark.parametrize("kind", ["halton", "sobol", "mlhs", "random"])
def test_uniform_marginals(kind: str) -> None:
    u = make_draws(50, 40, 3, kind=kind, seed=7)
    assert u.shape == (50, 40, 3)
    assert ((u > 0) & (u < 1)).all()
    for d in range(3):
        assert stats.kstest(u[:, :, d].ravel(), "uniform").pvalue > 0.01


def test_mlhs_is_stratified_per_person() -> None:
    u = make_draws(5, 10, 2, kind="mlhs", seed=3)
    for n in range(5):
        for d in range(2):
            cells = np.sort(np.floor(u[n, :, d] * 10).astype(int))
            np.testing.assert_array_equal(cells, np.arange(10))


@pytest.mark.parametrize("kind", ["halton", "sobol", "mlhs", "random"])
def test_seeded_determinism_and_seeds_differ(kind: str) -> None:
    a = make_draws(20, 16, 4, kind=kind, seed=1)
    b = make_draws(20, 16, 4, kind=kind, seed=1)
    c = make_draws(20, 16, 4, kind=kind, seed=2)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 0.05


def test_scrambled_halton_keeps_low_discrepancy() -> None:
    plain = halton(512, 5, seed=None)
    scr = halton(512, 5, seed=4)
    rnd = np.random.default_rng(4).random((512, 5))
    d_plain, d_scr, d_rnd = (stats.qmc.discrepancy(x) for x in (plain, scr, rnd))
    assert d_scr < d_rnd
    assert d_scr < 3 * d_plain


def test_standardise_distributions() -> None:
    u = make_draws(200, 50, 3, kind="sobol", seed=0)
    e = standardise(u, ["normal", "triangular", "uniform"])
    assert abs(e[..., 0].mean()) < 0.02 and abs(e[..., 0].std() - 1) < 0.02
    assert e[..., 1].min() >= -1 and e[..., 1].max() <= 1
    assert abs(e[..., 1].var() - 1 / 6) < 0.01  # symmetric triangular on [-1, 1]
    assert abs(e[..., 2].var() - 1 / 3) < 0.01


def test_bad_arguments() -> None:
    with pytest.raises(C2MError, match="unknown draw kind"):
        make_draws(2, 2, 1, kind="lattice")
    with pytest.raises(C2MError, match="seed"):
        make_draws(2, 2, 1, kind="mlhs", seed=None)
    with pytest.raises(C2MError, match="n_draws"):
        make_draws(2, 0, 1)
