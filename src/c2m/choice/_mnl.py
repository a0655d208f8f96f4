"""The multinomial logit estimator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import polars as pl

from c2m.choice._data import ChoiceData
from c2m.choice._mnl_math import FloatArray, probabilities, task_scores
from c2m.choice._optim import newton_fit
from c2m.choice._summary import coef_table, format_report
from c2m.choice._vcov import clustered_sandwich, inverse_hessian, sandwich
from c2m.choice._wtp import _price_index, elasticity_matrix, wtp_table
from c2m.errors import C2MError


class MultinomialLogit:
    """Multinomial (conditional) logit estimated by maximum likelihood.

    Args:
        fit_intercept: add alternative-specific constants (as xlogit does); a single
            intercept is not identified in MNL.
        alt_specific_constants: add ``asc_<alt>`` for every alternative but the first
            (sorted) value of the alt column; ``None`` follows ``fit_intercept``.
        robust: report Huber-White sandwich standard errors.
        cluster: ``True`` or ``"person"`` reports sandwich standard errors clustered by
            person (the id column) with the small-sample factor G/(G-1).
        tol: convergence tolerance on the gradient of the mean log-likelihood.
        maxiter: maximum number of Newton (trust-region) iterations.
        engine: ``"numpy"`` (reference), ``"numba"`` (one fused compiled pass per iteration,
            needs numba) or ``"auto"`` (numba for >= 200,000 task x alternative cells when
            numba is installed, else NumPy).

    Person traits (income, age...) do not vary within a task, so they are not
    identified alone: interact them with an attribute or a constant in a feature column.
    """

    def __init__(
        self,
        fit_intercept: bool = False,
        alt_specific_constants: bool | None = None,
        robust: bool = False,
        cluster: bool | str | None = None,
        tol: float = 1e-8,
        maxiter: int = 500,
        engine: str = "auto",
    ) -> None:
        self.fit_intercept = fit_intercept
        self.alt_specific_constants = alt_specific_constants
        self.robust = robust
        self.cluster = cluster
        self.tol = tol
        self.maxiter = maxiter
        self.engine = engine

    # ------------------------------------------------------------------ fitting
    def fit(self, data: ChoiceData | Any, features: Sequence[str] | None = None, **long_kwargs: Any) -> Self:
        """Estimate the coefficients; ``data`` is ChoiceData or a long table with ``features=``."""
        data = _as_data(data, features, long_kwargs)
        se_type = self._se_type()
        if se_type == "cluster" and data.n_persons < 2:
            raise C2MError("clustered standard errors need at least 2 persons in the id column")
        self.__dict__.pop("coef_", None)  # a failed refit must not leave a half-updated model
        self.base_features_ = list(data.feature_names)
        use_asc = (
            self.alt_specific_constants if self.alt_specific_constants is not None else self.fit_intercept
        )
        self.asc_alternatives_: list[Any] = list(data.alt_labels[1:]) if use_asc else []
        self.alternatives_: list[Any] = list(data.alt_labels)
        self.feature_names_ = self.base_features_ + [f"asc_{a}" for a in self.asc_alternatives_]
        X = self._design(data)
        fit = newton_fit(
            X, data.avail, data.chosen, data.weights, tol=self.tol, maxiter=self.maxiter, engine=self.engine
        )
        try:
            vcov = inverse_hessian(fit.hess, self.feature_names_)
        except C2MError:
            _check_variation(X, data.avail, self.feature_names_)  # the more specific message, if it applies
            raise
        scores = task_scores(fit.beta, X, data.avail, data.chosen, data.weights)
        self.vcov_ = vcov
        self.vcov_robust_ = sandwich(vcov, scores)
        self.vcov_cluster_: FloatArray | None = None
        if data.n_persons >= 2:
            self.vcov_cluster_ = clustered_sandwich(vcov, scores, data.person)
        self.se_type_ = se_type
        self.n_iter_ = fit.n_iter
        self.converged_ = fit.success
        self.engine_ = fit.engine
        self.loglik_ = -fit.loss
        self.loglik_null_ = -float(data.weights @ np.log(data.avail.sum(axis=1)))
        self.n_obs_ = data.n_tasks
        self.n_persons_ = data.n_persons
        self.coef_ = fit.beta
        self._set_fit_stats()
        return self

    def _se_type(self) -> str:
        if self.cluster in (None, False):
            return "robust" if self.robust else "classic"
        if self.cluster is True or self.cluster in ("person", "id"):
            return "cluster"
        raise C2MError(
            f"cluster must be None, True or 'person' (cluster by the id column), got {self.cluster!r}"
        )

    def _set_fit_stats(self) -> None:
        k = len(self.coef_)
        self.se_ = np.sqrt(np.diag(self._vcov_for_se()))
        self.rho2_ = 1.0 - self.loglik_ / self.loglik_null_ if self.loglik_null_ else float("nan")
        self.rho2_adj_ = 1.0 - (self.loglik_ - k) / self.loglik_null_ if self.loglik_null_ else float("nan")
        self.aic_ = -2.0 * self.loglik_ + 2.0 * k
        self.bic_ = -2.0 * self.loglik_ + k * float(np.log(self.n_obs_))

    def _vcov_for_se(self) -> FloatArray:
        self._check_fitted()
        if self.se_type_ == "robust":
            return self.vcov_robust_
        if self.se_type_ == "cluster" and self.vcov_cluster_ is not None:
            return self.vcov_cluster_
        return self.vcov_

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise C2MError("this MultinomialLogit is not fitted yet; call fit() first")

    def _design(self, data: ChoiceData) -> FloatArray:
        """Model matrix for ``data``: the base features plus ASC columns if any."""
        X = data.select(self.base_features_)
        if not self.asc_alternatives_:
            return X
        codes = {lab: i for i, lab in enumerate(data.alt_labels)}
        asc = np.stack([data.alt_index == codes.get(a, -2) for a in self.asc_alternatives_], axis=2).astype(
            np.float64
        )
        return np.concatenate([X, asc], axis=2)

    def _design_one(self, X: Any) -> FloatArray:
        """One choice set (J, K); with ASCs, (J, K_base) rows are taken in ``alternatives_`` order."""
        self._check_fitted()
        Xa = np.asarray(X, dtype=np.float64)
        K, kb = len(self.feature_names_), len(self.base_features_)
        if Xa.ndim != 2 or Xa.shape[1] not in (K, kb):
            raise C2MError(f"X must have shape (n_alternatives, {K}) with columns {self.feature_names_}")
        if Xa.shape[1] == K:
            return Xa
        if Xa.shape[0] != len(self.alternatives_):
            raise C2MError(f"X without ASC columns must have one row per alternative {self.alternatives_}")
        asc = np.zeros((Xa.shape[0], K - kb))
        asc[1:, :] = np.eye(K - kb)
        return np.hstack([Xa, asc])

    # ------------------------------------------------------------------ prediction
    def predict_proba(self, data: ChoiceData) -> FloatArray:
        """Choice probabilities (n_tasks, J), zeros at unavailable alternatives."""
        self._check_fitted()
        if not isinstance(data, ChoiceData):
            raise C2MError("predict_proba expects ChoiceData; build it with ChoiceData.from_long(...)")
        return probabilities(self.coef_, self._design(data), data.avail)

    def predict_shares(self, X: Any) -> FloatArray:
        """Shares (J,) of the alternatives of one choice set X (J, K)."""
        v = self._design_one(X) @ self.coef_
        e = np.exp(v - v.max())
        return np.asarray(e / e.sum(), dtype=np.float64)

    def hit_rate(self, data: ChoiceData) -> float:
        """Weighted share of tasks whose most probable alternative was chosen."""
        P = self.predict_proba(data)
        hits = (P.argmax(axis=1) == data.chosen).astype(np.float64)
        return float(data.weights @ hits / data.weights.sum())

    def share_mae(self, data: ChoiceData) -> float:
        """Mean absolute error between predicted and observed shares per alternative slot."""
        P = self.predict_proba(data)
        w = data.weights / data.weights.sum()
        observed = np.bincount(data.chosen, weights=w, minlength=P.shape[1])
        predicted = w @ P
        used = data.avail.any(axis=0)
        return float(np.mean(np.abs(predicted - observed)[used]))

    # ------------------------------------------------------------------ inference
    def summary(self) -> pl.DataFrame:
        """Table: feature, estimate, std_err, z, p_value, ci_low, ci_high (95%)."""
        self._check_fitted()
        return coef_table(self.feature_names_, self.coef_, self.se_)

    def summary_text(self) -> str:
        """Printable coefficient table with a header of fit statistics."""
        self._check_fitted()
        header = [
            ("Tasks", f"{self.n_obs_}"),
            ("Persons", f"{self.n_persons_}"),
            ("Parameters", f"{len(self.coef_)}"),
            ("Std. errors", self.se_type_),
            ("Converged", f"{self.converged_} ({self.n_iter_} it)"),
            ("Log-likelihood", f"{self.loglik_:.3f}"),
            ("LL (equal shares)", f"{self.loglik_null_:.3f}"),
            ("rho2", f"{self.rho2_:.4f}"),
            ("rho2 adjusted", f"{self.rho2_adj_:.4f}"),
            ("AIC", f"{self.aic_:.2f}"),
            ("BIC", f"{self.bic_:.2f}"),
        ]
        return format_report("Multinomial logit", header, self.summary())

    def wtp(
        self, price_feature: str = "price", method: str = "delta", n_draws: int = 10_000, seed: int = 0
    ) -> pl.DataFrame:
        """Willingness to pay -b_k / b_price with SE and 95% CI ("delta" or "krinsky_robb")."""
        self._check_fitted()
        return wtp_table(
            self.feature_names_, self.coef_, self._vcov_for_se(), price_feature, method, n_draws, seed
        )

    def elasticities(self, X: Any, price_feature: str, price_scale: float = 1.0) -> FloatArray:
        """Point elasticity matrix (J, J): E[i, j] = d ln share_i / d ln price_j for X (J, K)."""
        Xd = self._design_one(X)
        return elasticity_matrix(
            self.coef_, Xd, _price_index(self.feature_names_, price_feature), price_scale
        )

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description of the fitted model; "vcov" is the one behind "se"."""
        self._check_fitted()
        d: dict[str, Any] = {
            "model": "MultinomialLogit",
            "version": 1,
            "features": list(self.feature_names_),
            "coef": self.coef_.tolist(),
            "vcov": self._vcov_for_se().tolist(),
            "se": self.se_.tolist(),
            "loglik": float(self.loglik_),
            "loglik_null": float(self.loglik_null_),
            "n_obs": int(self.n_obs_),
            "n_persons": int(self.n_persons_),
            "aic": float(self.aic_),
            "bic": float(self.bic_),
            "converged": bool(self.converged_),
            "n_iter": int(self.n_iter_),
            "se_type": self.se_type_,
            "base_features": list(self.base_features_),
            "alternatives": _jsonable(self.alternatives_),
            "asc_alternatives": _jsonable(self.asc_alternatives_),
            "settings": {
                "fit_intercept": self.fit_intercept,
                "alt_specific_constants": self.alt_specific_constants,
                "robust": self.robust,
                "cluster": self.cluster,
                "tol": self.tol,
                "maxiter": self.maxiter,
                "engine": self.engine,
            },
        }
        d["vcov_classic"] = self.vcov_.tolist()
        d["vcov_robust"] = self.vcov_robust_.tolist()
        d["vcov_cluster"] = None if self.vcov_cluster_ is None else self.vcov_cluster_.tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MultinomialLogit:
        """Rebuild a fitted model from :meth:`to_dict` output."""
        from c2m.choice._io import mnl_from_dict

        return mnl_from_dict(cls, d)

    def __repr__(self) -> str:
        state = f"fitted, {len(self.coef_)} coefs" if hasattr(self, "coef_") else "not fitted"
        return f"MultinomialLogit({state})"


def _jsonable(values: list[Any]) -> list[Any]:
    return [v.item() if hasattr(v, "item") else v for v in values]


def _as_data(data: Any, features: Sequence[str] | None, long_kwargs: dict[str, Any]) -> ChoiceData:
    if isinstance(data, ChoiceData):
        if features is not None or long_kwargs:
            raise C2MError("features= and column names are only used with a long table, not ChoiceData")
        return data
    if features is None:
        raise C2MError("fitting from a table needs features=[...] (the attribute columns)")
    return ChoiceData.from_long(data, features, **long_kwargs)


def _check_variation(X: FloatArray, avail: np.ndarray, names: list[str]) -> None:
    """Every feature must vary among the available alternatives of at least one task."""
    varies = np.zeros(X.shape[2], dtype=bool)
    for k in range(X.shape[2]):  # one feature at a time keeps the extra memory at O(n * J)
        hi = np.where(avail, X[:, :, k], -np.inf).max(axis=1)
        lo = np.where(avail, X[:, :, k], np.inf).min(axis=1)
        varies[k] = bool(((hi - lo) > 0).any())
    if not varies.all():
        bad = [n for n, v in zip(names, varies, strict=True) if not v]
        raise C2MError(
            f"feature(s) {bad} never vary within a task, so MNL cannot identify them; "
            "interact person traits with an attribute or a constant (e.g. income * price)"
        )
