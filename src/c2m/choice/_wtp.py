"""Willingness to pay (delta method, Krinsky-Robb) and MNL price elasticities."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from c2m.choice._mnl_math import FloatArray
from c2m.choice._summary import Z95
from c2m.errors import C2MError


def _price_index(names: Sequence[str], price_feature: str) -> int:
    if price_feature not in names:
        raise C2MError(f"price feature {price_feature!r} is not in the model; features are {list(names)}")
    return list(names).index(price_feature)


def wtp_table(
    names: Sequence[str],
    coef: FloatArray,
    vcov: FloatArray,
    price_feature: str,
    method: str = "delta",
    n_draws: int = 10_000,
    seed: int = 0,
) -> pl.DataFrame:
    """WTP_k = -b_k / b_price for every feature but the price, with SE and 95% CI.

    ``delta``: analytic gradient (dW/db_k = -1/b_p, dW/db_p = b_k/b_p^2), normal CI.
    ``krinsky_robb``: ``n_draws`` draws of the coefficients from N(b, V); SE is the
    standard deviation of the simulated WTP and the CI its 2.5/97.5 percentiles.
    WTP is in the units of the price feature (e.g. 10,000 yuan if price was divided by 10,000).
    """
    p = _price_index(names, price_feature)
    bp = float(coef[p])
    if bp == 0.0:
        raise C2MError(f"the coefficient of {price_feature!r} is zero: willingness to pay is undefined")
    others = [k for k in range(len(names)) if k != p]
    if not others:
        raise C2MError("willingness to pay needs at least one feature besides the price")
    point = -coef[others] / bp
    if method == "delta":
        G = np.zeros((len(others), len(names)))
        G[np.arange(len(others)), others] = -1.0 / bp
        G[:, p] = coef[others] / bp**2
        se = np.sqrt(np.einsum("ik,kl,il->i", G, vcov, G))
        lo, hi = point - Z95 * se, point + Z95 * se
    elif method == "krinsky_robb":
        if n_draws < 2:
            raise C2MError(f"n_draws must be at least 2, got {n_draws}")
        rng = np.random.default_rng(seed)
        draws = rng.multivariate_normal(coef, vcov, size=n_draws)
        sims = -draws[:, others] / draws[:, [p]]
        se = sims.std(axis=0, ddof=1)
        lo, hi = np.percentile(sims, [2.5, 97.5], axis=0)
    else:
        raise C2MError(f"unknown WTP method {method!r}; use 'delta' or 'krinsky_robb'")
    return pl.DataFrame(
        {
            "feature": [names[k] for k in others],
            "wtp": point,
            "std_err": se,
            "ci_low": lo,
            "ci_high": hi,
        }
    )


def elasticity_matrix(
    coef: FloatArray, X: FloatArray, price_index: int, price_scale: float = 1.0
) -> FloatArray:
    """Point elasticities E[i, j] = d ln P_i / d ln price_j for one choice set X (J, K).

    The price column of X is multiplied by ``price_scale`` to get model units (e.g. 1e-4
    when the model used price/10,000 and X holds raw prices). MNL gives
    E[j, j] = b x_j (1 - P_j) and E[i, j] = -b x_j P_j for i != j.
    """
    Xm = np.array(X, dtype=np.float64)
    Xm[:, price_index] *= price_scale
    v = Xm @ coef
    P = np.exp(v - v.max())
    P /= P.sum()
    bx = coef[price_index] * Xm[:, price_index]
    E = np.tile(-bx * P, (len(P), 1))
    E[np.diag_indices_from(E)] = bx * (1.0 - P)
    return E
