"""The Bass diffusion model and its maximum-likelihood fit on cumulative counts."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import least_squares
from scipy.special import gammaln

from c2m.errors import C2MError

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class BassModel:
    """Continuous-time Bass diffusion with innovation ``p``, imitation ``q`` and potential ``m``.

    ``F(t) = (1 - exp(-(p+q) t)) / (1 + (q/p) exp(-(p+q) t))``; ``cumulative(t) = m F(t)``
    and ``rate(t) = m dF/dt`` (adopters per unit of time at ``t``).
    """

    p: float
    q: float
    m: float

    def __post_init__(self) -> None:
        if not (self.p > 0 and self.q >= 0 and self.m >= 0):
            raise C2MError(f"BassModel needs p > 0, q >= 0, m >= 0; got p={self.p}, q={self.q}, m={self.m}")

    def fraction(self, t: ArrayLike) -> FloatArray:
        """Fraction ``F(t)`` of the potential adopted by time ``t``."""
        return bass_fraction(np.asarray(t, dtype=float), self.p, self.q)

    def cumulative(self, t: ArrayLike) -> FloatArray:
        """Cumulative adopters ``m F(t)``."""
        return self.m * self.fraction(t)

    def rate(self, t: ArrayLike) -> FloatArray:
        """Adoption rate ``m F'(t)`` (adopters per period at time ``t``)."""
        t = np.asarray(t, dtype=float)
        s = self.p + self.q
        e = np.exp(-s * t)
        return self.m * (s * s / self.p) * e / (1.0 + (self.q / self.p) * e) ** 2

    def adoptions(self, t0: ArrayLike, t1: ArrayLike) -> FloatArray:
        """Adopters between ``t0`` and ``t1``: ``m (F(t1) - F(t0))``."""
        return self.cumulative(t1) - self.cumulative(t0)

    @property
    def peak_time(self) -> float:
        """Time of the highest adoption rate, ``ln(q/p) / (p+q)`` (0 when q <= p)."""
        if self.q <= self.p:
            return 0.0
        return float(np.log(self.q / self.p) / (self.p + self.q))


def bass_fraction(t: FloatArray, p: float | FloatArray, q: float | FloatArray) -> FloatArray:
    """Bass ``F(t; p, q)``, broadcasting over arrays of t, p and q."""
    s = np.asarray(p) + np.asarray(q)
    e = np.exp(-s * t)
    return np.asarray((1.0 - e) / (1.0 + (np.asarray(q) / np.asarray(p)) * e), dtype=float)


def bass_fraction_jacobian(t: FloatArray, p: float, q: float) -> tuple[FloatArray, FloatArray]:
    """Analytic ``(dF/dp, dF/dq)`` at times ``t``."""
    t = np.asarray(t, dtype=float)
    r = q / p
    e = np.exp(-(p + q) * t)
    den = (1.0 + r * e) ** 2
    one_minus = 1.0 - e
    dfdp = (t * e * (1.0 + r * e) - one_minus * (-(q / p**2) * e - r * t * e)) / den
    dfdq = (t * e * (1.0 + r * e) - one_minus * ((1.0 / p) * e - r * t * e)) / den
    return dfdp, dfdq


def bass_increment_jacobian(t: FloatArray, p: float, q: float, m: float) -> FloatArray:
    """Jacobian of the increments ``m (F(t_i) - F(t_{i-1}))`` (t_0 = 0) w.r.t. ``(p, q, m)``."""
    t = np.asarray(t, dtype=float)
    prev = np.concatenate([[0.0], t[:-1]])
    fp1, fq1 = bass_fraction_jacobian(t, p, q)
    fp0, fq0 = bass_fraction_jacobian(prev, p, q)
    dF = bass_fraction(t, p, q) - bass_fraction(prev, p, q)
    return np.column_stack([m * (fp1 - fp0), m * (fq1 - fq0), dF])


@dataclass(frozen=True)
class BassFit:
    """A fitted Bass model: estimates, standard errors and covariance of ``(p, q, m)``."""

    p: float
    q: float
    m: float
    cov: FloatArray
    loglik: float
    dispersion: float
    n_obs: int
    converged: bool
    se: dict[str, float] = field(default_factory=dict)

    @property
    def model(self) -> BassModel:
        return BassModel(self.p, self.q, self.m)

    def draws(self, n: int = 2000, seed: int = 0) -> FloatArray:
        """Parameter draws ``(n, 3)`` of ``(p, q, m)``: normal on the log scale (delta method)."""
        theta = np.array([self.p, self.q, self.m])
        log_cov = self.cov / np.outer(theta, theta)
        rng = np.random.default_rng(seed)
        z = rng.multivariate_normal(np.zeros(3), log_cov, size=n, method="eigh")
        return theta * np.exp(z)

    def predict(
        self, t: ArrayLike, level: float = 0.9, n_draws: int = 2000, seed: int = 0
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Cumulative adopters at ``t``: point estimate and a ``level`` interval from parameter draws."""
        if not 0 < level < 1:
            raise C2MError(f"predict: level must be in (0, 1), got {level}")
        t = np.atleast_1d(np.asarray(t, dtype=float))
        mean = self.model.cumulative(t)
        d = self.draws(n_draws, seed)
        paths = d[:, 2:3] * bass_fraction(t[None, :], d[:, 0:1], d[:, 1:2])
        alpha = (1.0 - level) / 2.0
        low, high = np.quantile(paths, [alpha, 1.0 - alpha], axis=0)
        return mean, low, high

    def summary(self) -> dict[str, float]:
        return {"p": self.p, "q": self.q, "m": self.m, **{f"se_{k}": v for k, v in self.se.items()}}


def fit_bass(
    t: ArrayLike,
    cumulative_counts: ArrayLike,
    m_prior: float | tuple[float, float] | None = None,
    max_iter: int = 50,
) -> BassFit:
    """Fit ``(p, q, m)`` to cumulative adoption counts observed at times ``t`` (counted from 0).

    The per-period increments are taken as Poisson counts with mean ``m (F(t_i) - F(t_{i-1}))``;
    the maximum-likelihood estimate is found by iteratively reweighted nonlinear least squares
    (``scipy.optimize.least_squares`` with the analytic Jacobian; at convergence the Pearson
    residuals solve the Poisson score equations). The covariance is the inverse Fisher
    information scaled by the Pearson dispersion (quasi-Poisson, never below 1).
    ``m_prior`` (a value, or ``(mean, sd)``; a bare value gets sd = 25 %) adds a normal prior on m.
    """
    t_arr = np.asarray(t, dtype=float).ravel()
    y_cum = np.asarray(cumulative_counts, dtype=float).ravel()
    if t_arr.size != y_cum.size:
        raise C2MError(f"fit_bass: t has {t_arr.size} values but cumulative_counts has {y_cum.size}")
    if t_arr.size < 3:
        raise C2MError(f"fit_bass: needs at least 3 observations, got {t_arr.size}")
    if np.any(np.diff(t_arr) <= 0) or t_arr[0] <= 0:
        raise C2MError("fit_bass: t must be positive and strictly increasing")
    if not np.all(np.isfinite(y_cum)) or np.any(y_cum < 0):
        raise C2MError("fit_bass: cumulative_counts must be finite and non-negative")
    y = np.diff(np.concatenate([[0.0], y_cum]))
    if np.any(y < -1e-9):
        raise C2MError("fit_bass: cumulative_counts must not decrease")
    y = np.maximum(y, 0.0)
    if y_cum[-1] <= 0:
        raise C2MError("fit_bass: no adoptions observed")

    prior: tuple[float, float] | None = None
    if isinstance(m_prior, tuple):
        prior = (float(m_prior[0]), float(m_prior[1]))
    elif m_prior is not None:
        prior = (float(m_prior), 0.25 * float(m_prior))
    if prior is not None and not (prior[0] > 0 and prior[1] > 0):
        raise C2MError(f"fit_bass: m_prior needs a positive mean and sd, got {m_prior}")

    total = float(y_cum[-1])
    rate = 5.0 / t_arr[-1]  # starting values scaled to the observed time span
    best: tuple[float, FloatArray, bool] | None = None
    for p0, q0, mfac in ((0.05, 0.3, 1.5), (0.3, 0.5, 1.1), (0.01, 1.0, 2.0), (1.0, 1.0, 1.02)):
        x0 = np.array([p0 * rate, q0 * rate, total * mfac])
        theta, conv = _irls(t_arr, y, x0, prior, max_iter)
        dev = _poisson_deviance(y, _increments(t_arr, theta)) + _prior_penalty(theta, prior)
        if best is None or dev < best[0]:
            best = (dev, theta, conv)
    assert best is not None
    _, theta, converged = best
    p, q, m = (float(v) for v in theta)
    mu = np.maximum(_increments(t_arr, theta), 1e-12)
    J = bass_increment_jacobian(t_arr, p, q, m)
    n, k = y.size, 3
    pearson = float(np.sum((y - mu) ** 2 / mu))
    dispersion = max(1.0, pearson / (n - k)) if n > k else 1.0
    info = J.T @ (J / mu[:, None]) / dispersion
    if prior is not None:
        info[2, 2] += 1.0 / prior[1] ** 2
    scale = np.abs(theta)  # invert on the relative scale: p and m differ by many orders
    scaled = info * np.outer(scale, scale)
    try:
        cov = np.linalg.inv(scaled) * np.outer(scale, scale)
    except np.linalg.LinAlgError:
        cov = np.linalg.pinv(scaled) * np.outer(scale, scale)
    loglik = float(np.sum(y * np.log(mu) - mu - gammaln(y + 1.0)))
    se = {name: float(np.sqrt(max(cov[i, i], 0.0))) for i, name in enumerate(("p", "q", "m"))}
    return BassFit(p, q, m, cov, loglik, dispersion, int(n), bool(converged), se)


def _increments(t: FloatArray, theta: FloatArray) -> FloatArray:
    p, q, m = theta
    prev = np.concatenate([[0.0], t[:-1]])
    return np.asarray(m * (bass_fraction(t, p, q) - bass_fraction(prev, p, q)), dtype=float)


def _poisson_deviance(y: FloatArray, mu: FloatArray) -> float:
    mu = np.maximum(mu, 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return float(2.0 * np.sum(term - (y - mu)))


def _prior_penalty(theta: FloatArray, prior: tuple[float, float] | None) -> float:
    if prior is None:
        return 0.0
    return float(((theta[2] - prior[0]) / prior[1]) ** 2)


def _irls(
    t: FloatArray, y: FloatArray, x0: FloatArray, prior: tuple[float, float] | None, max_iter: int
) -> tuple[FloatArray, bool]:
    """Iteratively reweighted least squares for the Poisson likelihood of the increments."""
    theta = x0.copy()
    lower = np.array([1e-8, 0.0, 1e-9])
    upper = np.array([1e3, 1e3, 1e15])
    theta = np.clip(theta, lower * 1.0001 + 1e-12, upper)
    w = np.maximum(y, 1.0)
    converged = False
    for _ in range(max_iter):
        sw = np.sqrt(w)

        def residuals(th: FloatArray, sw: FloatArray = sw) -> FloatArray:
            r = (y - _increments(t, th)) / sw
            if prior is not None:
                r = np.append(r, (th[2] - prior[0]) / prior[1])
            return r

        def jac(th: FloatArray, sw: FloatArray = sw) -> FloatArray:
            J = -bass_increment_jacobian(t, th[0], th[1], th[2]) / sw[:, None]
            if prior is not None:
                J = np.vstack([J, [0.0, 0.0, 1.0 / prior[1]]])
            return J

        x_scale = np.maximum(np.abs(theta), 1e-6)
        res = least_squares(
            residuals, theta, jac=jac, bounds=(lower, upper), method="trf", x_scale=x_scale, max_nfev=500
        )
        new = res.x
        step = np.max(np.abs(new - theta) / np.maximum(np.abs(theta), 1e-12))
        theta = new
        w = np.maximum(_increments(t, theta), 1e-6)
        if step < 1e-8:
            converged = True
            break
    return theta, converged
