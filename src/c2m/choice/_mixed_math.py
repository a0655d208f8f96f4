"""Simulated log-likelihood of the panel mixed logit with its analytic gradient (NumPy).

Parameters ``theta = [b (K means / locations), spread]`` where the spread is either one
scale per random coefficient (``s``) or the lower-triangular Cholesky factor ``L`` of the
random coefficients (row-major ``np.tril_indices``). For person n and draw r,
``eta_nr = b[rand] + s * e_nr`` (or ``b[rand] + L e_nr``) and the coefficient is
``beta_nrk = g_k(eta_nrk)`` with g the identity (normal, triangular, uniform), ``exp``
(lognormal) or ``-exp`` (neg_lognormal); fixed coefficients are ``b_k``.

In WTP space (``spec.wtp_idx = p >= 0``, Train and Weeks 2005, logitr's convention) the
coefficients above are the model-space ones ``c``: ``lambda = c_p > 0`` is the scale (its
location ``b_p`` is ``log lambda``, also when it is fixed) and ``c_k`` (k != p) are the
willingnesses to pay ``w_k``; utility is ``V_j = lambda (sum_{k != p} w_k x_jk - x_jp)``, i.e.
the preference-space coefficients are ``beta_k = lambda w_k`` and ``beta_p = -lambda``. The
gradient goes through ``d log P / d w_k = lambda G_k`` and
``d log P / d lambda = sum_{k != p} w_k G_k - G_p`` with ``G = d log P / d beta``.

``log L_n = log mean_r prod_t P_ntr`` is computed in log space (log-sum-exp over draws), and
``d log L_n / d theta = sum_r w_nr (d log P_nr / d theta)`` with posterior draw weights
``w_nr = P_nr / sum_r' P_nr'``, where ``d log P_nr / d beta = sum_t (x_t,chosen - xbar_ntr)``
and the chain rule through ``g`` and ``eta``. Persons are processed in chunks so that
memory stays O(chunk tasks x R x (J + K)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import logsumexp

from c2m.choice._mnl_math import BoolArray, FloatArray, IntArray

CHUNK_CELLS = 2**21  # task x draw x (J + K) cells per chunk: about 16 MB per float64 array


@dataclass
class Panel:
    """Tasks sorted by person (contiguous), with per-person standard draws."""

    X: FloatArray  # (T, J, K) tasks sorted by person
    avail: BoolArray  # (T, J)
    chosen: IntArray  # (T,)
    x_chosen: FloatArray  # (T, K)
    starts: IntArray  # (N + 1,) first task of each person, then T
    weights: FloatArray  # (N,) person weights
    E: FloatArray  # (N, R, D) standard draws (normal / triangular / uniform)


@dataclass(frozen=True)
class Spec:
    """Which features are random, how they are distributed and whether correlated."""

    n_features: int
    rand_idx: IntArray  # (D,) feature index of each random coefficient
    kinds: IntArray  # (D,) 0 identity, 1 exp, 2 -exp
    correlated: bool
    wtp_idx: int = -1  # WTP space: index of the price feature (its coefficient is the scale); -1 preference space

    @property
    def wtp_fixed(self) -> bool:
        """WTP space with a fixed scale ``lambda = exp(b_p)``."""
        return self.wtp_idx >= 0 and self.wtp_idx not in self.rand_idx

    @property
    def n_random(self) -> int:
        return int(self.rand_idx.size)

    @property
    def n_spread(self) -> int:
        D = self.n_random
        return D * (D + 1) // 2 if self.correlated else D

    @property
    def n_params(self) -> int:
        return self.n_features + self.n_spread


def make_spec(
    n_features: int, rand_idx: list[int], dists: list[str], correlated: bool, wtp_idx: int = -1
) -> Spec:
    """Spec from feature indices and distribution names (``wtp_idx``: price feature in WTP space)."""
    code = {"normal": 0, "triangular": 0, "uniform": 0, "lognormal": 1, "neg_lognormal": 2}
    kinds = [code[d] for d in dists]
    if wtp_idx >= 0 and wtp_idx in rand_idx and kinds[rand_idx.index(wtp_idx)] != 1:
        raise ValueError("in WTP space the scale (price) coefficient must be lognormal or fixed")
    return Spec(
        n_features,
        np.asarray(rand_idx, dtype=np.intp),
        np.asarray(kinds, dtype=np.intp),
        correlated,
        int(wtp_idx),
    )


def spread_matrix(theta: FloatArray, spec: Spec) -> FloatArray:
    """The (D, D) matrix applied to the standard draws: diag(s) or lower-triangular L."""
    D = spec.n_random
    sp = theta[spec.n_features :]
    if spec.correlated:
        L = np.zeros((D, D))
        L[np.tril_indices(D)] = sp
        return L
    return np.diag(sp)


def coefficients(theta: FloatArray, spec: Spec, E: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Individual model-space coefficients (P, R, K) for standard draws E (P, R, D), and g'(eta) (P, R, D).

    In WTP space these are the WTPs and, at the price feature, the scale lambda.
    """
    K = spec.n_features
    b = theta[:K]
    P, R, _ = E.shape
    beta = np.broadcast_to(b, (P, R, K)).copy()
    if spec.wtp_fixed:
        beta[..., spec.wtp_idx] = np.exp(min(float(b[spec.wtp_idx]), 700.0))
    if spec.n_random == 0:
        return beta, np.zeros((P, R, 0))
    sp = theta[K:]
    eta = b[spec.rand_idx] + (E @ spread_matrix(theta, spec).T if spec.correlated else E * sp)
    g = eta.copy()
    gp = np.ones_like(eta)
    for d, kind in enumerate(spec.kinds):
        if kind == 1:
            g[..., d] = np.exp(np.minimum(eta[..., d], 700.0))
            gp[..., d] = g[..., d]
        elif kind == 2:
            g[..., d] = -np.exp(np.minimum(eta[..., d], 700.0))
            gp[..., d] = g[..., d]
    beta[..., spec.rand_idx] = g
    return beta, gp


def utility_coef(c: FloatArray, spec: Spec) -> FloatArray:
    """Preference-space coefficients from model-space ones (the identity outside WTP space)."""
    if spec.wtp_idx < 0:
        return c
    p = spec.wtp_idx
    lam = c[..., p : p + 1]
    beta = c * lam
    beta[..., p] = -lam[..., 0]
    return beta


def _wtp_chain(G: FloatArray, c: FloatArray, spec: Spec) -> FloatArray:
    """d log P / d c from d log P / d beta (both (..., K)) in WTP space."""
    p = spec.wtp_idx
    lam = c[..., p : p + 1]
    Gc = G * lam
    w = c.copy()
    w[..., p] = -1.0
    Gc[..., p] = (G * w).sum(axis=-1)
    return Gc


def _chunks(starts: IntArray, R: int, width: int) -> list[tuple[int, int]]:
    """Consecutive person ranges holding about CHUNK_CELLS task x draw x width cells each."""
    N = starts.size - 1
    max_tasks = max(1, CHUNK_CELLS // max(1, R * width))
    out = []
    p = 0
    while p < N:
        q = int(np.searchsorted(starts, starts[p] + max_tasks, side="right")) - 1
        q = min(max(q, p + 1), N)
        out.append((p, q))
        p = q
    return out


def _chunk_core(
    theta: FloatArray, spec: Spec, panel: Panel, p0: int, p1: int
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, IntArray]:
    """For persons p0..p1: log P_nr (P, R), model-space coefficients (P, R, K), g' (P, R, D), P_tr (T, R, J),
    local task starts."""
    t0, t1 = int(panel.starts[p0]), int(panel.starts[p1])
    X = panel.X[t0:t1]
    E = panel.E[p0:p1]
    beta, gp = coefficients(theta, spec, E)
    local = panel.starts[p0:p1] - t0
    owner = np.repeat(np.arange(p1 - p0), np.diff(panel.starts[p0 : p1 + 1]))
    Bt = utility_coef(beta, spec)[owner]  # (T, R, K)
    V = np.matmul(Bt, X.transpose(0, 2, 1))  # (T, R, J)
    V = np.where(panel.avail[t0:t1, None, :], V, -np.inf)
    lse = logsumexp(V, axis=2)  # (T, R)
    T = t1 - t0
    ch = panel.chosen[t0:t1]
    logp_ch = V[np.arange(T), :, ch] - lse
    logPn = np.add.reduceat(logp_ch, local, axis=0)  # (P, R)
    Ptr = np.exp(V - lse[:, :, None])
    return logPn, beta, gp, Ptr, local


def loglik_scores(theta: FloatArray, spec: Spec, panel: Panel) -> tuple[float, FloatArray]:
    """Weighted simulated log-likelihood and per-person scores d log L_n / d theta (N, n_params)."""
    N = panel.starts.size - 1
    R = panel.E.shape[1]
    K = spec.n_features
    J = panel.X.shape[1]
    scores = np.zeros((N, spec.n_params))
    total = 0.0
    logR = float(np.log(R))
    tril = np.tril_indices(spec.n_random)
    for p0, p1 in _chunks(panel.starts, R, J + K):
        t0, t1 = int(panel.starts[p0]), int(panel.starts[p1])
        logPn, cf, gp, Ptr, local = _chunk_core(theta, spec, panel, p0, p1)
        lse_r = logsumexp(logPn, axis=1)  # (P,)
        total += float(panel.weights[p0:p1] @ (lse_r - logR))
        w = np.exp(logPn - lse_r[:, None])  # (P, R) posterior weights of the draws
        xbar = np.matmul(Ptr, panel.X[t0:t1])  # (T, R, K)
        dif = panel.x_chosen[t0:t1, None, :] - xbar
        G = np.add.reduceat(dif, local, axis=0)  # (P, R, K) d log P_nr / d beta
        if spec.wtp_idx >= 0:
            G = _wtp_chain(G, cf, spec)  # d log P_nr / d c
        WG = w[:, :, None] * G
        sc = WG.sum(axis=1)  # (P, K): derivative w.r.t. fixed b and, before the chain rule, random b
        if spec.wtp_fixed:  # lambda = exp(b_p)
            sc[:, spec.wtp_idx] *= cf[0, 0, spec.wtp_idx]
        if spec.n_random:
            WGr = WG[:, :, spec.rand_idx] * gp  # (P, R, D) derivative w.r.t. eta
            sc[:, spec.rand_idx] = WGr.sum(axis=1)
            E = panel.E[p0:p1]
            if spec.correlated:
                dL = np.einsum("prk,prl->pkl", WGr, E)
                sp = dL[:, tril[0], tril[1]]
            else:
                sp = (WGr * E).sum(axis=1)
            sc = np.hstack([sc, sp])
        scores[p0:p1] = sc * panel.weights[p0:p1, None]
    return total, scores


def loglik(theta: FloatArray, spec: Spec, panel: Panel) -> float:
    """Weighted simulated log-likelihood only."""
    R = panel.E.shape[1]
    total = 0.0
    for p0, p1 in _chunks(panel.starts, R, panel.X.shape[1] + spec.n_features):
        logPn = _chunk_core(theta, spec, panel, p0, p1)[0]
        total += float(panel.weights[p0:p1] @ (logsumexp(logPn, axis=1) - np.log(R)))
    return total


def posterior_coef(theta: FloatArray, spec: Spec, panel: Panel) -> FloatArray:
    """Conditional means E[beta_n | choices of n] (N, K) (Revelt and Train 2000)."""
    N = panel.starts.size - 1
    R = panel.E.shape[1]
    out = np.zeros((N, spec.n_features))
    for p0, p1 in _chunks(panel.starts, R, panel.X.shape[1] + spec.n_features):
        logPn, beta, *_ = _chunk_core(theta, spec, panel, p0, p1)
        w = np.exp(logPn - logsumexp(logPn, axis=1, keepdims=True))
        out[p0:p1] = np.einsum("pr,prk->pk", w, beta)
    return out


def mean_probabilities(theta: FloatArray, spec: Spec, panel: Panel) -> FloatArray:
    """Unconditional probabilities mean_r P_tr (T, J) in the panel's (sorted) task order."""
    R = panel.E.shape[1]
    out = np.zeros(panel.avail.shape)
    for p0, p1 in _chunks(panel.starts, R, panel.X.shape[1] + spec.n_features):
        t0, t1 = int(panel.starts[p0]), int(panel.starts[p1])
        Ptr = _chunk_core(theta, spec, panel, p0, p1)[3]
        out[t0:t1] = Ptr.mean(axis=1)
    return out


# ---------------------------------------------------------------------- numba kernel
_KERNEL: Any = None
_TRIED = False


def _build() -> Any:
    try:
        import numba
    except ImportError:  # pragma: no cover - depends on the environment
        return None

    # Draws are the innermost loop (contiguous, vectorisable); memory O(R x (K + J)).
    @numba.njit(cache=True)
    def kernel(b, L, rand_idx, kinds, wtp, X, avail, chosen, starts, E):  # pragma: no cover - compiled
        N = starts.size - 1
        R = E.shape[1]
        D = E.shape[2]
        J = X.shape[1]
        K = X.shape[2]
        ll = np.zeros(N)
        out = np.zeros((N, K + D * D))
        fixed_scale = wtp >= 0
        for d in range(D):
            if rand_idx[d] == wtp:
                fixed_scale = False
        beta = np.empty((K, R))  # utility coefficients
        cf = np.empty((K, R))  # model-space coefficients (WTP space: WTPs and the scale)
        gp = np.empty((D, R))
        Et = np.empty((D, R))
        G = np.empty((K, R))
        logp = np.empty(R)
        u = np.empty((J, R))
        vmax = np.empty(R)
        den = np.empty(R)
        for n in range(N):
            for d in range(D):
                for r in range(R):
                    Et[d, r] = E[n, r, d]
            for k in range(K):
                for r in range(R):
                    cf[k, r] = b[k]
            if wtp >= 0:  # a fixed scale is exp(b_p); a random one is overwritten below
                for r in range(R):
                    cf[wtp, r] = np.exp(min(b[wtp], 700.0))
            for d in range(D):
                k = rand_idx[d]
                for r in range(R):
                    eta = b[k]
                    for m in range(D):
                        eta += L[d, m] * Et[m, r]
                    if kinds[d] == 0:
                        cf[k, r] = eta
                        gp[d, r] = 1.0
                    else:
                        g = np.exp(min(eta, 700.0))
                        if kinds[d] == 2:
                            g = -g
                        cf[k, r] = g
                        gp[d, r] = g
            for k in range(K):
                for r in range(R):
                    beta[k, r] = cf[k, r]
            if wtp >= 0:
                for k in range(K):
                    if k != wtp:
                        for r in range(R):
                            beta[k, r] = cf[k, r] * cf[wtp, r]
                for r in range(R):
                    beta[wtp, r] = -cf[wtp, r]
            G[:, :] = 0.0
            logp[:] = 0.0
            for t in range(starts[n], starts[n + 1]):
                vmax[:] = -np.inf
                for j in range(J):
                    if avail[t, j]:
                        for r in range(R):
                            u[j, r] = 0.0
                        for k in range(K):
                            x = X[t, j, k]
                            if x != 0.0:
                                for r in range(R):
                                    u[j, r] += x * beta[k, r]
                        for r in range(R):
                            vmax[r] = max(vmax[r], u[j, r])
                den[:] = 0.0
                for j in range(J):
                    if avail[t, j]:
                        for r in range(R):
                            u[j, r] = np.exp(u[j, r] - vmax[r])
                            den[r] += u[j, r]
                c = chosen[t]
                for r in range(R):
                    logp[r] += np.log(u[c, r] / den[r])
                    den[r] = 1.0 / den[r]
                for j in range(J):
                    if avail[t, j]:
                        for r in range(R):
                            u[j, r] *= den[r]
                for k in range(K):
                    xc = X[t, c, k]
                    for r in range(R):
                        G[k, r] += xc
                    for j in range(J):
                        if avail[t, j]:
                            x = X[t, j, k]
                            if x != 0.0:
                                for r in range(R):
                                    G[k, r] -= u[j, r] * x
            mx = -np.inf
            for r in range(R):
                mx = max(mx, logp[r])
            tot = 0.0
            for r in range(R):
                logp[r] = np.exp(logp[r] - mx)
                tot += logp[r]
            ll[n] = mx + np.log(tot / R)
            for r in range(R):
                logp[r] /= tot
            if wtp >= 0:  # d log P / d beta -> d log P / d c (G reused in place)
                for r in range(R):
                    lam = cf[wtp, r]
                    s = -G[wtp, r]
                    for k in range(K):
                        if k != wtp:
                            s += cf[k, r] * G[k, r]
                            G[k, r] *= lam
                    G[wtp, r] = s
            for k in range(K):
                s = 0.0
                for r in range(R):
                    s += logp[r] * G[k, r]
                out[n, k] = s
            if wtp >= 0 and fixed_scale:
                out[n, wtp] *= cf[wtp, 0]
            for d in range(D):
                k = rand_idx[d]
                s = 0.0
                for r in range(R):
                    a = logp[r] * G[k, r] * gp[d, r]
                    s += a
                    for m in range(D):
                        out[n, K + d * D + m] += a * Et[m, r]
                out[n, k] = s
        return ll, out

    return kernel


def numba_available() -> bool:
    """True when the numba kernel can be built (numba importable)."""
    global _KERNEL, _TRIED
    if not _TRIED:
        _KERNEL, _TRIED = _build(), True
    return _KERNEL is not None


def loglik_scores_numba(theta: FloatArray, spec: Spec, panel: Panel) -> tuple[float, FloatArray]:
    """Same as :func:`loglik_scores`: one fused compiled pass, person by person (memory O(R x K))."""
    if not numba_available():  # pragma: no cover - depends on the environment
        raise RuntimeError("numba is not available")
    K, D = spec.n_features, spec.n_random
    L = spread_matrix(theta, spec) if D else np.zeros((0, 0))
    ll, raw = _KERNEL(
        np.ascontiguousarray(theta[:K]),
        np.ascontiguousarray(L),
        spec.rand_idx,
        spec.kinds,
        spec.wtp_idx,
        panel.X,
        panel.avail,
        panel.chosen,
        panel.starts,
        panel.E,
    )
    dL = raw[:, K:].reshape(raw.shape[0], D, D)
    if spec.correlated:
        r, c = np.tril_indices(D)
        spread = dL[:, r, c]
    else:
        spread = dL[:, np.arange(D), np.arange(D)]
    scores = np.hstack([raw[:, :K], spread]) * panel.weights[:, None]
    return float(panel.weights @ ll), scores
