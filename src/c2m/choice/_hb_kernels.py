"""Person log-likelihoods of the logit for many coefficient vectors at once (HB kernels).

Tasks are sorted by person: person ``n`` owns tasks ``starts[n]:starts[n + 1]``. Given
coefficients ``B`` shaped (C, N, K) (C chains, N persons), the kernels return the (C, N)
log-likelihoods ``sum_t log P(chosen_t | B[c, n])`` over each person's tasks. The NumPy
reference is vectorised over tasks; the numba kernel (optionally parallel over chains x
persons) must agree with it to 1e-8 (tested). numba is optional: :func:`numba_available` says if it imports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from c2m.choice._mnl_math import BoolArray, FloatArray, IntArray

_KERNELS: tuple[Callable[..., Any], ...] | None = None
_TRIED = False


def person_loglik_numpy(
    B: FloatArray, X: FloatArray, avail: BoolArray, chosen: IntArray, starts: IntArray
) -> FloatArray:
    """NumPy reference: (C, N) person log-likelihoods for coefficients B (C, N, K)."""
    n_persons = starts.size - 1
    person = np.repeat(np.arange(n_persons), np.diff(starts))
    rows = np.arange(X.shape[0])
    out = np.empty(B.shape[:2])
    for c in range(B.shape[0]):
        V = np.einsum("tjk,tk->tj", X, B[c][person])
        V = np.where(avail, V, -np.inf)
        vmax = V.max(axis=1)
        lse = vmax + np.log(np.exp(V - vmax[:, None]).sum(axis=1))
        out[c] = np.bincount(person, weights=V[rows, chosen] - lse, minlength=n_persons)
    return out


def metropolis_step_numpy(
    beta: FloatArray,
    ll: FloatArray,
    Z: FloatArray,
    rho: FloatArray,
    b: FloatArray,
    L: FloatArray,
    Linv: FloatArray,
    log_u: FloatArray,
    X: FloatArray,
    avail: BoolArray,
    chosen: IntArray,
    starts: IntArray,
) -> FloatArray:
    """One random-walk Metropolis step for every chain and person (NumPy reference).

    Proposal ``beta + rho_c L_c z``; target ``L_n(beta) N(beta | b_c, L_c L_c')``; accepted
    when ``log_u < log ratio``. Updates ``beta`` (C, N, K) and ``ll`` (C, N) in place and
    returns the (C, N) acceptance indicators (as floats).
    """
    step = rho[:, None, None] * Z
    prop = beta + step @ L.transpose(0, 2, 1)
    E = (beta - b[:, None, :]) @ Linv.transpose(0, 2, 1)  # whitened deviations: prior q = |E|^2
    ll_prop = person_loglik_numpy(prop, X, avail, chosen, starts)
    log_r = ll_prop - ll - 0.5 * (((E + step) ** 2).sum(axis=2) - (E**2).sum(axis=2))
    acc = log_u < log_r
    beta[acc] = prop[acc]
    ll[acc] = ll_prop[acc]
    return acc.astype(np.float64)


def _build() -> tuple[Callable[..., Any], ...] | None:
    try:
        import numba
    except ImportError:  # pragma: no cover - depends on the environment
        return None

    @numba.njit(cache=True, inline="always")
    def person_ll(beta, X, avail, chosen, t0, t1, v):  # pragma: no cover - compiled
        J, K = X.shape[1], X.shape[2]
        ll = 0.0
        for t in range(t0, t1):
            vmax = -np.inf
            for j in range(J):
                if avail[t, j]:
                    s = 0.0
                    for k in range(K):
                        s += X[t, j, k] * beta[k]
                    v[j] = s
                    if s > vmax:
                        vmax = s
            denom = 0.0
            for j in range(J):
                if avail[t, j]:
                    denom += np.exp(v[j] - vmax)
            ll += v[chosen[t]] - vmax - np.log(denom)
        return ll

    def loglik(B, X, avail, chosen, starts):  # pragma: no cover - compiled
        C, N = B.shape[0], B.shape[1]
        out = np.empty((C, N))
        for i in numba.prange(C * N):
            c = i // N
            n = i - c * N
            v = np.empty(X.shape[1])
            out[c, n] = person_ll(B[c, n], X, avail, chosen, starts[n], starts[n + 1], v)
        return out

    def step(beta, ll, Z, rho, b, L, Linv, log_u, X, avail, chosen, starts):  # pragma: no cover - compiled
        C, N, K = beta.shape
        acc = np.zeros((C, N))
        for i in numba.prange(C * N):
            c = i // N
            n = i - c * N
            prop = np.empty(K)
            v = np.empty(X.shape[1])
            q_cur = 0.0
            q_prop = 0.0
            for k in range(K):
                s = 0.0
                e = 0.0
                for m in range(k + 1):
                    s += L[c, k, m] * Z[c, n, m]
                    e += Linv[c, k, m] * (beta[c, n, m] - b[c, m])
                prop[k] = beta[c, n, k] + rho[c] * s
                ep = e + rho[c] * Z[c, n, k]
                q_cur += e * e
                q_prop += ep * ep
            ll_prop = person_ll(prop, X, avail, chosen, starts[n], starts[n + 1], v)
            if log_u[c, n] < ll_prop - ll[c, n] - 0.5 * (q_prop - q_cur):
                beta[c, n, :] = prop
                ll[c, n] = ll_prop
                acc[c, n] = 1.0
        return acc

    return (
        numba.njit(cache=True)(loglik),
        numba.njit(cache=True, parallel=True)(loglik),
        numba.njit(cache=True)(step),
        numba.njit(cache=True, parallel=True)(step),
    )


def numba_available() -> bool:
    """True when numba can be imported (the kernel is compiled on first use)."""
    global _KERNELS, _TRIED
    if not _TRIED:
        _TRIED = True
        _KERNELS = _build()
    return _KERNELS is not None


def person_loglik_numba(
    B: FloatArray, X: FloatArray, avail: BoolArray, chosen: IntArray, starts: IntArray, parallel: bool = False
) -> FloatArray:
    """Compiled kernel: same result as :func:`person_loglik_numpy`; ``parallel`` uses numba
    threads over chains x persons (faster on an idle multi-core machine, slower when the
    cores are oversubscribed)."""
    if not numba_available() or _KERNELS is None:
        raise RuntimeError("numba is not installed")
    kernel = _KERNELS[1] if parallel else _KERNELS[0]
    return np.asarray(kernel(np.ascontiguousarray(B), X, avail, chosen, starts))


def metropolis_step_numba(
    beta: FloatArray,
    ll: FloatArray,
    Z: FloatArray,
    rho: FloatArray,
    b: FloatArray,
    L: FloatArray,
    Linv: FloatArray,
    log_u: FloatArray,
    X: FloatArray,
    avail: BoolArray,
    chosen: IntArray,
    starts: IntArray,
    parallel: bool = False,
) -> FloatArray:
    """Compiled, fused version of :func:`metropolis_step_numpy` (same arguments and effect)."""
    if not numba_available() or _KERNELS is None:
        raise RuntimeError("numba is not installed")
    kernel = _KERNELS[3] if parallel else _KERNELS[2]
    return np.asarray(kernel(beta, ll, Z, rho, b, L, Linv, log_u, X, avail, chosen, starts))
