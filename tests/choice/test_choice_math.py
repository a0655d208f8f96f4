"""Analytic derivatives against finite differences; the numba kernel against NumPy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import approx_fprime, check_grad

from c2m.choice import ChoiceData, MultinomialLogit, _mnl_numba
from c2m.choice._mnl_math import _hessian, _loss_and_grad, _loss_grad_hess, probabilities, task_scores


def _random_problem(seed: int, n: int = 300, J: int = 4, K: int = 5) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, J, K))
    avail = rng.random((n, J)) > 0.25
    avail[:, 0] = True  # at least one alternative per task
    X[~avail] = 0.0
    chosen = np.array([rng.choice(np.flatnonzero(a)) for a in avail])
    weights = rng.uniform(0.5, 2.0, size=n)
    beta = rng.normal(scale=0.7, size=K)
    return beta, X, avail, chosen, weights


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_matches_finite_differences(seed: int) -> None:
    beta, X, avail, chosen, w = _random_problem(seed)
    args = (X, avail, chosen, w)
    err = check_grad(lambda b: _loss_and_grad(b, *args)[0], lambda b: _loss_and_grad(b, *args)[1], beta)
    scale = np.linalg.norm(_loss_and_grad(beta, *args)[1])
    assert err < 1e-5 * max(scale, 1.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_hessian_matches_finite_differences_of_gradient(seed: int) -> None:
    beta, X, avail, chosen, w = _random_problem(seed)
    H = _hessian(beta, X, avail, w)
    eps = 1e-6
    fd = np.column_stack(
        [
            (
                _loss_and_grad(beta + eps * e, X, avail, chosen, w)[1]
                - _loss_and_grad(beta - eps * e, X, avail, chosen, w)[1]
            )
            / (2 * eps)
            for e in np.eye(beta.size)
        ]
    )
    np.testing.assert_allclose(H, fd, rtol=1e-6, atol=1e-6)
    assert np.all(np.linalg.eigvalsh(H) > 0)


def test_scores_sum_to_minus_gradient() -> None:
    beta, X, avail, chosen, w = _random_problem(3)
    np.testing.assert_allclose(
        task_scores(beta, X, avail, chosen, w).sum(axis=0), -_loss_and_grad(beta, X, avail, chosen, w)[1]
    )


def test_log_sum_exp_is_stable_for_huge_utilities() -> None:
    beta, X, avail, chosen, w = _random_problem(4)
    loss, grad = _loss_and_grad(beta * 1e4, X, avail, chosen, w)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    P = probabilities(beta * 1e4, X, avail)
    assert np.all(np.isfinite(P))
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    assert np.all(P[~avail] == 0.0)
    # finite differences of the loss agree with the gradient for a mid-range beta too
    fd = approx_fprime(beta, lambda b: _loss_and_grad(b, X, avail, chosen, w)[0], 1e-6)
    np.testing.assert_allclose(fd, _loss_and_grad(beta, X, avail, chosen, w)[1], rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not _mnl_numba.available(), reason="numba not installed")
def test_numba_kernel_agrees_with_numpy_reference() -> None:
    beta, X, avail, chosen, w = _random_problem(5, n=2000, J=5, K=7)
    loss, grad, H = _mnl_numba.loss_grad_hess(beta, X, avail, chosen, w)
    ref_loss, ref_grad = _loss_and_grad(beta, X, avail, chosen, w)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(H, _hessian(beta, X, avail, w), rtol=1e-9, atol=1e-9)


@pytest.mark.skipif(not _mnl_numba.available(), reason="numba not installed")
def test_numba_and_numpy_engines_give_the_same_fit(electricity_data: ChoiceData) -> None:
    a = MultinomialLogit(engine="numpy").fit(electricity_data)
    b = MultinomialLogit(engine="numba").fit(electricity_data)
    assert (a.engine_, b.engine_) == ("numpy", "numba")
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=1e-9)
    np.testing.assert_allclose(b.se_, a.se_, rtol=1e-8)
    assert b.loglik_ == pytest.approx(a.loglik_, rel=1e-12)


def test_fused_numpy_derivatives_agree_with_separate_ones() -> None:
    beta, X, avail, chosen, w = _random_problem(6)
    loss, grad, H = _loss_grad_hess(beta, X, avail, chosen, w)
    ref_loss, ref_grad = _loss_and_grad(beta, X, avail, chosen, w)
    assert loss == pytest.approx(ref_loss, rel=1e-14)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-12)
    np.testing.assert_allclose(H, _hessian(beta, X, avail, w), rtol=1e-12)
