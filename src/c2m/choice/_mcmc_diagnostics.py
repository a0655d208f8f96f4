"""MCMC convergence diagnostics: split R-hat and effective sample size (as Stan / ArviZ).

All functions take draws of one scalar quantity shaped ``(n_chains, n_draws)``.
:func:`rhat` is the rank-normalised split R-hat of Vehtari, Gelman, Simpson, Carpenter and
Bürkner (2021), the maximum of the bulk and the folded (tail) versions; :func:`ess` is the
bulk effective sample size (rank-normalised split chains) and :func:`ess_mean` the ESS of
the raw split chains, both with Geyer's initial monotone sequence estimator of the
autocorrelation time, computed by FFT.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from c2m.choice._mnl_math import FloatArray
from c2m.errors import C2MError


def _as_chains(draws: Any) -> FloatArray:
    a = np.asarray(draws, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise C2MError(f"MCMC draws must have shape (n_chains, n_draws), got {a.shape}")
    if a.shape[1] < 4:
        raise C2MError(f"MCMC diagnostics need at least 4 draws per chain, got {a.shape[1]}")
    return a


def split_chains(draws: FloatArray) -> FloatArray:
    """Each chain cut into its first and second half (the middle draw dropped if odd)."""
    half = draws.shape[1] // 2
    return np.concatenate([draws[:, :half], draws[:, -half:]], axis=0)


def z_scale(draws: FloatArray) -> FloatArray:
    """Rank-normalise all draws jointly: normal quantiles of the (average) ranks."""
    r = stats.rankdata(draws, method="average").reshape(draws.shape)
    return np.asarray(stats.norm.ppf((r - 0.375) / (draws.size + 0.25)), dtype=np.float64)


def _basic_rhat(draws: FloatArray) -> float:
    n = draws.shape[1]
    between = n * np.var(draws.mean(axis=1), ddof=1)
    within = float(np.mean(np.var(draws, axis=1, ddof=1)))
    if within <= 0.0:
        return float("nan")
    return float(np.sqrt((between / within + n - 1) / n))


def split_rhat(draws: Any) -> float:
    """Classic split R-hat (Gelman et al., BDA3) of the raw draws."""
    return _basic_rhat(split_chains(_as_chains(draws)))


def rhat(draws: Any) -> float:
    """Rank-normalised split R-hat: max of bulk and tail (folded) versions; NaN if constant."""
    a = _as_chains(draws)
    if np.ptp(a) < np.finfo(float).resolution:
        return float("nan")
    bulk = _basic_rhat(z_scale(split_chains(a)))
    folded = np.abs(a - np.median(a))
    tail = _basic_rhat(z_scale(split_chains(folded)))
    return float(max(bulk, tail))


def _autocov(draws: FloatArray) -> FloatArray:
    """Biased autocovariance of each chain at lags 0..n-1 (FFT)."""
    n = draws.shape[1]
    centred = draws - draws.mean(axis=1, keepdims=True)
    m = 1 << int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(centred, n=m, axis=1)
    acov = np.fft.irfft(f * np.conjugate(f), n=m, axis=1)[:, :n]
    return np.asarray(acov / n, dtype=np.float64)


def _ess(draws: FloatArray) -> float:
    """ESS of (already split / normalised) chains by Geyer's initial monotone sequence."""
    n_chain, n = draws.shape
    if np.ptp(draws) < np.finfo(float).resolution:
        return float(draws.size)
    acov = _autocov(draws)
    mean_var = float(np.mean(acov[:, 0])) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if n_chain > 1:
        var_plus += float(np.var(draws.mean(axis=1), ddof=1))
    rho = np.zeros(n)
    mean_acov = acov.mean(axis=0)
    rho_even = 1.0
    rho[0] = rho_even
    rho_odd = 1.0 - (mean_var - mean_acov[1]) / var_plus
    rho[1] = rho_odd
    t = 1
    while t < n - 3 and rho_even + rho_odd > 0.0:  # initial positive sequence
        rho_even = 1.0 - (mean_var - mean_acov[t + 1]) / var_plus
        rho_odd = 1.0 - (mean_var - mean_acov[t + 2]) / var_plus
        if rho_even + rho_odd >= 0.0:
            rho[t + 1] = rho_even
            rho[t + 2] = rho_odd
        t += 2
    max_t = t - 2
    if rho_even > 0.0:
        rho[max_t + 1] = rho_even
    t = 1
    while t <= max_t - 2:  # initial monotone sequence
        if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t]:
            rho[t + 1] = (rho[t - 1] + rho[t]) / 2.0
            rho[t + 2] = rho[t + 1]
        t += 2
    total = n_chain * n
    tau = -1.0 + 2.0 * float(np.sum(rho[: max_t + 1])) + float(np.sum(rho[max_t + 1 : max_t + 2]))
    tau = max(tau, 1.0 / np.log10(total))
    return float(total / tau)


def ess(draws: Any) -> float:
    """Bulk effective sample size (rank-normalised split chains), as ArviZ's default."""
    a = _as_chains(draws)
    return _ess(z_scale(split_chains(a)))


def ess_mean(draws: Any) -> float:
    """Effective sample size for the mean: raw split chains, no rank normalisation."""
    return _ess(split_chains(_as_chains(draws)))


def summarise(draws: Any) -> tuple[FloatArray, FloatArray]:
    """R-hat and bulk ESS of every trailing element of draws shaped (n_chains, n_draws, ...)."""
    a = np.asarray(draws, dtype=np.float64)
    if a.ndim < 2:
        raise C2MError(f"MCMC draws must have shape (n_chains, n_draws, ...), got {a.shape}")
    shape = a.shape[2:]
    flat = a.reshape(a.shape[0], a.shape[1], -1)
    r = np.array([rhat(flat[:, :, i]) for i in range(flat.shape[2])])
    e = np.array([ess(flat[:, :, i]) for i in range(flat.shape[2])])
    return r.reshape(shape), e.reshape(shape)
