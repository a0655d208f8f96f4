"""Multinomial-logit likelihood, gradient, Hessian and per-task scores (NumPy reference).

Shapes: ``X`` (n, J, K) float64, ``avail`` (n, J) bool, ``chosen`` (n,) int index of the
chosen alternative, ``weights`` (n,) float64. Unavailable alternatives get utility -inf,
so they have probability zero; their rows of ``X`` must be finite (zeros by convention).
Everything is vectorised over tasks: no Python loop per task.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]


def utilities(beta: FloatArray, X: FloatArray, avail: BoolArray) -> FloatArray:
    """Systematic utilities ``X @ beta``, -inf at unavailable alternatives."""
    V = X @ beta
    return np.where(avail, V, -np.inf)


def log_probabilities(beta: FloatArray, X: FloatArray, avail: BoolArray) -> tuple[FloatArray, FloatArray]:
    """Return ``(log P, P)`` with log-sum-exp stabilisation; P is 0 at unavailable alternatives."""
    V = utilities(beta, X, avail)
    vmax = V.max(axis=1, keepdims=True)
    shifted = V - vmax
    expv = np.exp(shifted)
    denom = expv.sum(axis=1, keepdims=True)
    logp = shifted - np.log(denom)
    return logp, expv / denom


def probabilities(beta: FloatArray, X: FloatArray, avail: BoolArray) -> FloatArray:
    """Choice probabilities (n, J), zeros at unavailable alternatives."""
    return log_probabilities(beta, X, avail)[1]


def chosen_rows(X: FloatArray, chosen: IntArray) -> FloatArray:
    """Attributes of the chosen alternative of each task, (n, K)."""
    return X[np.arange(X.shape[0]), chosen]


def _loss_and_grad(
    beta: FloatArray, X: FloatArray, avail: BoolArray, chosen: IntArray, weights: FloatArray
) -> tuple[float, FloatArray]:
    """Negative weighted log-likelihood and its gradient with respect to ``beta``."""
    logp, P = log_probabilities(beta, X, avail)
    n = X.shape[0]
    loss = -float(weights @ logp[np.arange(n), chosen])
    xbar = np.einsum("tj,tjk->tk", P, X)  # expected attributes under the model
    grad = (weights @ xbar) - weights @ chosen_rows(X, chosen)
    return loss, grad


def _hessian(beta: FloatArray, X: FloatArray, avail: BoolArray, weights: FloatArray) -> FloatArray:
    """Analytic Hessian of the negative weighted log-likelihood (positive semi-definite).

    ``H = sum_t w_t [ sum_j P_tj x_tj x_tj' - xbar_t xbar_t' ]``.
    """
    P = probabilities(beta, X, avail)
    n, J, K = X.shape
    wp = (weights[:, None] * P).reshape(n * J, 1)
    flat = X.reshape(n * J, K)
    second = flat.T @ (flat * wp)
    xbar = np.einsum("tj,tjk->tk", P, X)
    first = xbar.T @ (xbar * weights[:, None])
    H = second - first
    return np.asarray(0.5 * (H + H.T), dtype=np.float64)


def _loss_grad_hess(
    beta: FloatArray, X: FloatArray, avail: BoolArray, chosen: IntArray, weights: FloatArray
) -> tuple[float, FloatArray, FloatArray]:
    """Loss, gradient and Hessian sharing one probability computation (Newton iterations)."""
    logp, P = log_probabilities(beta, X, avail)
    n, J, K = X.shape
    loss = -float(weights @ logp[np.arange(n), chosen])
    xbar = np.einsum("tj,tjk->tk", P, X)
    grad = (weights @ xbar) - weights @ chosen_rows(X, chosen)
    flat = X.reshape(n * J, K)
    H = flat.T @ (flat * (weights[:, None] * P).reshape(n * J, 1)) - xbar.T @ (xbar * weights[:, None])
    return loss, grad, np.asarray(0.5 * (H + H.T), dtype=np.float64)


def task_scores(
    beta: FloatArray, X: FloatArray, avail: BoolArray, chosen: IntArray, weights: FloatArray
) -> FloatArray:
    """Per-task gradient contributions of the weighted log-likelihood, (n, K)."""
    P = probabilities(beta, X, avail)
    xbar = np.einsum("tj,tjk->tk", P, X)
    return np.asarray(weights[:, None] * (chosen_rows(X, chosen) - xbar), dtype=np.float64)
