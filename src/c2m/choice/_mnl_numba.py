"""Optional numba kernel: loss, gradient and Hessian of the MNL in one pass over the tasks.

It must agree with the NumPy reference in ``_mnl_math`` (tested). numba is optional:
:func:`available` is False when it cannot be imported, and callers fall back to NumPy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from c2m.choice._mnl_math import BoolArray, FloatArray, IntArray

_KERNEL: Callable[..., Any] | None = None
_TRIED = False


def _build() -> Callable[..., Any] | None:
    try:
        import numba
    except ImportError:  # pragma: no cover - depends on the environment
        return None

    @numba.njit(cache=True)
    def kernel(beta, X, avail, chosen, weights):
        n, J, K = X.shape
        loss = 0.0
        g = np.zeros(K)
        H = np.zeros((K, K))
        v = np.empty(J)
        xbar = np.empty(K)
        for t in range(n):
            w = weights[t]
            vmax = -np.inf
            for j in range(J):
                if avail[t, j]:
                    s = 0.0
                    for k in range(K):
                        s += X[t, j, k] * beta[k]
                    v[j] = s
                    vmax = max(vmax, s)
            ch = chosen[t]
            loss -= w * (v[ch] - vmax)
            denom = 0.0
            for j in range(J):
                if avail[t, j]:
                    v[j] = np.exp(v[j] - vmax)
                    denom += v[j]
                else:
                    v[j] = 0.0
            loss += w * np.log(denom)
            xbar[:] = 0.0
            for j in range(J):
                if v[j] > 0.0:
                    p = v[j] / denom
                    wp = w * p
                    for k in range(K):
                        xk = X[t, j, k]
                        xbar[k] += p * xk
                        for m in range(k + 1):
                            H[k, m] += wp * xk * X[t, j, m]
            for k in range(K):
                g[k] += w * (xbar[k] - X[t, ch, k])
                for m in range(k + 1):
                    H[k, m] -= w * xbar[k] * xbar[m]
        for k in range(K):
            for m in range(k):
                H[m, k] = H[k, m]
        return loss, g, H

    return kernel


def available() -> bool:
    """True when numba can be imported (the kernel is compiled on first use)."""
    global _KERNEL, _TRIED
    if not _TRIED:
        _TRIED = True
        _KERNEL = _build()
    return _KERNEL is not None


def loss_grad_hess(
    beta: FloatArray, X: FloatArray, avail: BoolArray, chosen: IntArray, weights: FloatArray
) -> tuple[float, FloatArray, FloatArray]:
    """Negative weighted log-likelihood, its gradient and Hessian (numba, one pass)."""
    if not available() or _KERNEL is None:
        raise RuntimeError("numba is not installed")
    loss, g, H = _KERNEL(
        np.ascontiguousarray(beta, dtype=np.float64),
        np.ascontiguousarray(X, dtype=np.float64),
        np.ascontiguousarray(avail, dtype=np.bool_),
        np.ascontiguousarray(chosen, dtype=np.intp),
        np.ascontiguousarray(weights, dtype=np.float64),
    )
    return float(loss), np.asarray(g), np.asarray(H)
