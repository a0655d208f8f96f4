"""Uniform draws for simulated likelihood: Halton, scrambled Sobol, MLHS and pseudo-random."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import norm, qmc

from c2m.choice._mnl_math import FloatArray
from c2m.errors import C2MError

DRAW_KINDS = ("halton", "sobol", "mlhs", "random")
_EPS = 1e-12  # uniforms are clipped to [_EPS, 1 - _EPS] so inverse CDFs stay finite


def first_primes(n: int) -> list[int]:
    """The first ``n`` prime numbers."""
    primes: list[int] = []
    cand = 2
    while len(primes) < n:
        if all(cand % p for p in primes if p * p <= cand):
            primes.append(cand)
        cand += 1
    return primes


def _halton_dim(index: np.ndarray, base: int, perms: np.ndarray | None) -> FloatArray:
    """Radical inverse of ``index`` in ``base``; ``perms`` (n_digits, base) scrambles digit by digit."""
    n_digits = perms.shape[0] if perms is not None else int(np.ceil(np.log(index.max() + 2) / np.log(base))) + 1
    out = np.zeros(index.shape, dtype=np.float64)
    i = index.astype(np.int64).copy()
    scale = 1.0 / base
    for k in range(n_digits):
        digit = i % base
        if perms is not None:
            digit = perms[k][digit]
        out += digit * scale
        i //= base
        scale /= base
    return out


def halton(n_points: int, n_dims: int, *, skip: int | None = None, seed: int | None = None) -> FloatArray:
    """Halton points (n_points, n_dims) with the first primes as bases, starting at index 1.

    ``skip`` drops the first points (burn-in; default: the largest base used, so that the
    early, strongly correlated points of high dimensions are not used). With a ``seed`` each
    dimension is scrambled by random digit permutations (a random permutation of 0..p-1 per
    digit position, drawn independently per dimension: Owen-type permutation scrambling,
    Matousek 1998), so different seeds give different, still low-discrepancy sequences.
    """
    if n_points < 0 or n_dims < 0:
        raise C2MError(f"halton needs n_points >= 0 and n_dims >= 0, got {n_points}, {n_dims}")
    primes = first_primes(n_dims)
    burn = (primes[-1] if primes else 0) if skip is None else int(skip)
    if burn < 0:
        raise C2MError(f"skip must be >= 0, got {skip}")
    index = np.arange(1 + burn, 1 + burn + n_points, dtype=np.int64)
    rng = np.random.default_rng(seed) if seed is not None else None
    cols = []
    for p in primes:
        perms = None
        if rng is not None:
            n_digits = int(np.ceil(53 * np.log(2) / np.log(p)))  # down to double precision
            perms = np.stack([rng.permutation(p) for _ in range(n_digits)])
        cols.append(_halton_dim(index, p, perms))
    return np.column_stack(cols) if cols else np.zeros((n_points, 0))


def make_draws(
    n_persons: int,
    n_draws: int,
    n_dims: int,
    kind: str = "halton",
    seed: int | None = 0,
    *,
    skip: int | None = None,
) -> FloatArray:
    """Standard uniform draws, shape (n_persons, n_draws, n_dims).

    Kinds:
        ``"halton"``: first primes as bases, burn-in ``skip`` (default: the largest base),
        consecutive blocks of ``n_draws`` points per person (Train 2009, ch. 9); scrambled by
        random digit permutations when ``seed`` is not None, plain Halton when it is None.
        ``"sobol"``: scipy's Owen-scrambled Sobol sequence (``seed``); with ``seed=None``
        unscrambled, skipping the origin.
        ``"mlhs"``: modified Latin hypercube (Hess, Train and Polak 2006): per person and
        dimension ``(r + u) / n_draws`` for r = 0..n_draws-1 with one uniform shift u, then
        randomly shuffled. Needs a seed.
        ``"random"``: pseudo-random uniforms from ``numpy.random.default_rng(seed)``.
    """
    if kind not in DRAW_KINDS:
        raise C2MError(f"unknown draw kind {kind!r}; use one of {DRAW_KINDS}")
    if n_persons < 1 or n_draws < 1 or n_dims < 0:
        raise C2MError(f"draws need n_persons >= 1, n_draws >= 1, n_dims >= 0; got {n_persons}, {n_draws}, {n_dims}")
    n = n_persons * n_draws
    if kind == "halton":
        u = halton(n, n_dims, skip=skip, seed=seed)
    elif kind == "sobol":
        if n_dims == 0:
            u = np.zeros((n, 0))
        else:
            sob = qmc.Sobol(d=n_dims, scramble=seed is not None, seed=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # balance warning for non-powers of 2
                if seed is None:
                    sob.fast_forward(1)
                if skip:
                    sob.fast_forward(int(skip))
                u = sob.random(n)
    else:
        if seed is None:
            raise C2MError(f"{kind!r} draws need an integer seed (randomness only through an explicit seed)")
        rng = np.random.default_rng(seed)
        if kind == "random":
            u = rng.random((n, n_dims))
        else:
            shift = rng.random((n_persons, 1, n_dims))
            grid = (np.arange(n_draws, dtype=np.float64)[None, :, None] + shift) / n_draws
            u = rng.permuted(np.broadcast_to(grid, (n_persons, n_draws, n_dims)), axis=1).reshape(n, n_dims)
    u = np.clip(u, _EPS, 1.0 - _EPS)
    return np.ascontiguousarray(u.reshape(n_persons, n_draws, n_dims))


def standardise(u: FloatArray, dists: list[str]) -> FloatArray:
    """Map uniforms (..., D) to the standard draws of each distribution.

    Normal, lognormal and neg_lognormal: N(0, 1); triangular: symmetric on [-1, 1];
    uniform: U(-1, 1).
    """
    e = np.empty_like(u)
    for d, dist in enumerate(dists):
        x = u[..., d]
        if dist in ("normal", "lognormal", "neg_lognormal"):
            e[..., d] = norm.ppf(x)
        elif dist == "triangular":
            e[..., d] = np.where(x < 0.5, np.sqrt(2.0 * x) - 1.0, 1.0 - np.sqrt(2.0 * (1.0 - x)))
        elif dist == "uniform":
            e[..., d] = 2.0 * x - 1.0
        else:  # pragma: no cover - validated by the estimator
            raise C2MError(f"unknown distribution {dist!r}")
    return e
