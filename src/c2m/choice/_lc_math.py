"""Latent-class logit math: panel mixture log-likelihood, gradient, EM steps (NumPy).

Parameters are packed as ``theta = [beta.ravel(), gamma.ravel()]`` with ``beta`` (K, F)
the class coefficients and ``gamma`` (K-1, M1) the membership logit of classes 1..K-1
against class 0 on ``Z`` (n_persons, M1), whose first column is the constant.
Person n's likelihood is ``sum_k pi_nk prod_t P(choice_t | beta_k) ** w_t``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

from c2m.choice import _mnl_numba
from c2m.choice._mnl_math import BoolArray, FloatArray, IntArray, chosen_rows, log_probabilities
from c2m.choice._optim import _Objective


@dataclass(frozen=True)
class Panel:
    """Choice tasks with their person index and the person-level membership design."""

    X: FloatArray
    avail: BoolArray
    chosen: IntArray
    weights: FloatArray
    person: IntArray
    Z: FloatArray  # (n_persons, M1), constant first

    @property
    def n_persons(self) -> int:
        return int(self.Z.shape[0])


def unpack(theta: FloatArray, K: int, F: int, M1: int) -> tuple[FloatArray, FloatArray]:
    """``(beta (K, F), gamma_full (K, M1))`` with a zero first row in ``gamma_full``."""
    beta = theta[: K * F].reshape(K, F)
    gamma = np.zeros((K, M1))
    gamma[1:] = theta[K * F :].reshape(K - 1, M1)
    return beta, gamma


def pack(beta: FloatArray, gamma_full: FloatArray) -> FloatArray:
    """Inverse of :func:`unpack` (``gamma_full`` is normalised on its first row)."""
    g = gamma_full[1:] - gamma_full[0]
    return np.concatenate([beta.ravel(), g.ravel()])


def log_membership(gamma_full: FloatArray, Z: FloatArray) -> FloatArray:
    """Log class-membership probabilities (n_persons, K)."""
    eta = Z @ gamma_full.T
    return np.asarray(eta - logsumexp(eta, axis=1, keepdims=True), dtype=np.float64)


def _person_sum(values: FloatArray, person: IntArray, n_persons: int) -> FloatArray:
    return np.bincount(person, weights=values, minlength=n_persons).astype(np.float64)


def class_logliks(beta: FloatArray, panel: Panel) -> tuple[FloatArray, list[FloatArray]]:
    """Per person and class ``sum_t w_t log P(choice_t | beta_k)`` (N, K) and per-class scores.

    The scores are ``w_t (x_chosen - xbar_k)`` per task, (T, F), for the gradient.
    """
    K = beta.shape[0]
    N = panel.n_persons
    L = np.empty((N, K))
    scores = []
    xc = chosen_rows(panel.X, panel.chosen)
    rows = np.arange(panel.X.shape[0])
    for k in range(K):
        logp, P = log_probabilities(beta[k], panel.X, panel.avail)
        L[:, k] = _person_sum(panel.weights * logp[rows, panel.chosen], panel.person, N)
        xbar = np.einsum("tj,tjf->tf", P, panel.X)
        scores.append(panel.weights[:, None] * (xc - xbar))
    return L, scores


def e_step(
    beta: FloatArray, gamma_full: FloatArray, panel: Panel
) -> tuple[float, FloatArray, FloatArray, list[FloatArray]]:
    """Log-likelihood, posteriors (N, K), log membership probs (N, K) and class scores."""
    L, scores = class_logliks(beta, panel)
    logpi = log_membership(gamma_full, panel.Z)
    a = logpi + L
    lse = logsumexp(a, axis=1, keepdims=True)
    post = np.exp(a - lse)
    return float(lse.sum()), post, logpi, scores


def loglik_and_grad(theta: FloatArray, panel: Panel, K: int) -> tuple[float, FloatArray]:
    """Panel mixture log-likelihood and its analytic gradient with respect to ``theta``."""
    F = panel.X.shape[2]
    M1 = panel.Z.shape[1]
    beta, gamma = unpack(theta, K, F, M1)
    ll, post, logpi, scores = e_step(beta, gamma, panel)
    g_beta = np.stack([post[panel.person, k] @ scores[k] for k in range(K)])
    g_gamma = (post - np.exp(logpi))[:, 1:].T @ panel.Z
    return ll, np.concatenate([g_beta.ravel(), g_gamma.ravel()])


def weighted_mnl(beta0: FloatArray, panel: Panel, weights: FloatArray, tol: float) -> FloatArray:
    """Weighted MNL maximum likelihood from ``beta0`` (trust-exact, analytic Hessian)."""
    if float(weights.sum()) <= 1e-10 * weights.size:
        return beta0  # an (almost) empty class: nothing to learn from
    engine = "numba" if _mnl_numba.available() else "numpy"  # fused kernel: no BLAS thread overhead
    obj = _Objective(panel.X, panel.avail, panel.chosen, weights, engine)
    res = minimize(obj.fun, beta0, jac=True, hess=obj.hess, method="trust-exact", options={"gtol": tol})
    x = np.asarray(res.x, dtype=np.float64)
    # trust-exact never accepts a worse point, so the EM step cannot lower the likelihood
    return x


def membership_step(gamma_full: FloatArray, post: FloatArray, Z: FloatArray, tol: float) -> FloatArray:
    """Maximise ``sum_n sum_k post_nk log pi_nk`` over the membership coefficients."""
    K, M1 = gamma_full.shape
    if M1 == 1 and np.allclose(Z[:, 0], 1.0):
        share = np.maximum(post.mean(axis=0), 1e-300)
        g = np.log(share) - np.log(share[0])
        return g[:, None]
    N = Z.shape[0]

    def fun(x: FloatArray) -> tuple[float, FloatArray]:
        gf = np.zeros((K, M1))
        gf[1:] = x.reshape(K - 1, M1)
        logpi = log_membership(gf, Z)
        val = -float((post * logpi).sum()) / N
        grad = -((post - np.exp(logpi))[:, 1:].T @ Z) / N
        return val, grad.ravel()

    x0 = (gamma_full[1:] - gamma_full[0]).ravel()
    res = minimize(fun, x0, jac=True, method="BFGS", options={"gtol": tol})
    x = res.x if fun(res.x)[0] <= fun(x0)[0] else x0
    out = np.zeros((K, M1))
    out[1:] = np.asarray(x).reshape(K - 1, M1)
    return out


def numerical_hessian(theta: FloatArray, panel: Panel, K: int) -> FloatArray:
    """Hessian of the log-likelihood by central differences of the analytic gradient."""
    p = theta.size
    H = np.empty((p, p))
    for i in range(p):
        h = 1e-5 * max(1.0, abs(float(theta[i])))
        up, dn = theta.copy(), theta.copy()
        up[i] += h
        dn[i] -= h
        H[:, i] = (loglik_and_grad(up, panel, K)[1] - loglik_and_grad(dn, panel, K)[1]) / (2 * h)
    return np.asarray(0.5 * (H + H.T), dtype=np.float64)
