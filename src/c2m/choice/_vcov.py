"""Covariance estimators: inverse Hessian, sandwich (robust) and person-clustered sandwich."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from c2m.choice._mnl_math import FloatArray, IntArray
from c2m.errors import C2MError


def inverse_hessian(H: FloatArray, names: Sequence[str]) -> FloatArray:
    """Invert a positive-definite Hessian; a clear error names the unidentified direction."""
    try:
        L = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        L = None
    if L is not None:
        cond = np.linalg.cond(H)
        if np.isfinite(cond) and cond < 1e14:
            Linv = np.linalg.inv(L)
            V = Linv.T @ Linv
            return np.asarray(0.5 * (V + V.T), dtype=np.float64)
    w, vecs = np.linalg.eigh(H)
    v = vecs[:, 0]
    involved = [names[k] for k in np.argsort(-np.abs(v)) if abs(v[k]) > 0.1]
    raise C2MError(
        "the model is not identified: the Hessian is singular at the estimate "
        f"(smallest eigenvalue {w[0]:.3g}); features {involved} are collinear, constant within "
        "tasks, or perfectly predict the choices. Drop or recode one of them."
    )


def sandwich(bread: FloatArray, scores: FloatArray) -> FloatArray:
    """Huber-White sandwich ``bread @ (S'S) @ bread`` from per-observation scores S."""
    meat = scores.T @ scores
    V = bread @ meat @ bread
    return np.asarray(0.5 * (V + V.T), dtype=np.float64)


def clustered_sandwich(bread: FloatArray, scores: FloatArray, groups: IntArray) -> FloatArray:
    """Sandwich with scores summed within clusters and the small-sample factor G/(G-1)."""
    G = int(groups.max()) + 1
    if G < 2:
        raise C2MError("clustered standard errors need at least 2 persons (clusters)")
    summed: FloatArray = np.column_stack(
        [np.bincount(groups, weights=scores[:, k], minlength=G) for k in range(scores.shape[1])]
    )
    return sandwich(bread, summed) * (G / (G - 1))
