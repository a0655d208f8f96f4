"""MNL Fisher information of choice tasks and the D-error built on it."""

from __future__ import annotations

import numpy as np

from c2m.errors import C2MError


def as_draws(coef: np.ndarray | None, n_features: int, names: list[str] | None = None) -> np.ndarray:
    """Coefficients as a 2-D array of draws ``(R, K)``: zeros when None, one row for a vector."""
    if coef is None:
        return np.zeros((1, n_features))
    beta = np.asarray(coef, dtype=float)
    if beta.ndim == 1:
        beta = beta[None, :]
    if beta.ndim != 2 or beta.shape[1] != n_features or beta.shape[0] < 1:
        expected = f" ({', '.join(names)})" if names else ""
        raise C2MError(
            f"survey design: coefficients must have {n_features} columns in the feature order"
            f"{expected}; got shape {np.asarray(coef).shape}"
        )
    if not np.all(np.isfinite(beta)):
        raise C2MError("survey design: coefficients must be finite numbers")
    return beta


def task_information(X: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Fisher information of MNL choice tasks, one matrix per task and draw.

    ``X`` is ``(..., M, K)`` (M alternatives per task), ``beta`` is ``(R, K)``;
    returns ``(R, ..., K, K)`` with ``I = X' (diag(p) - p p') X`` per task.
    """
    U = np.einsum("...mk,rk->r...m", X, beta)
    U -= U.max(axis=-1, keepdims=True)
    P = np.exp(U)
    P /= P.sum(axis=-1, keepdims=True)
    Xbar = np.einsum("r...m,...mk->r...k", P, X)
    PX = P[..., None] * X[None]
    return np.einsum("r...mk,...ml->r...kl", PX, X) - Xbar[..., :, None] * Xbar[..., None, :]


def log_det(matrices: np.ndarray) -> np.ndarray:
    """log det of symmetric matrices ``(..., K, K)``; ``-inf`` where not positive definite."""
    sign, logdet = np.linalg.slogdet(matrices)
    return np.where(sign > 0, logdet, -np.inf)


def d_error_from_information(info: np.ndarray) -> float:
    """Mean over draws of ``det(I)^(-1/K)`` for per-respondent information ``info`` ``(R, K, K)``."""
    K = info.shape[-1]
    ld = log_det(info)
    with np.errstate(over="ignore"):
        return float(np.mean(np.exp(-ld / K)))
