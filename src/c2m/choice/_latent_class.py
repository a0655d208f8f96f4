"""Latent class (finite mixture) logit on panel choice data: EM, then a BFGS polish."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import polars as pl
from scipy.optimize import minimize

from c2m.choice import _lc_math as lc
from c2m.choice._data import ChoiceData
from c2m.choice._io import _array, register_model
from c2m.choice._mnl import MultinomialLogit, _as_data, _jsonable
from c2m.choice._mnl_math import FloatArray, probabilities
from c2m.choice._summary import coef_table, format_report
from c2m.choice._vcov import inverse_hessian
from c2m.errors import C2MError


class LatentClassLogit:
    """Latent class logit: K classes of MNL coefficients, class membership per person.

    A person's likelihood is ``sum_k pi_k prod_t P(choice_t | beta_k)`` (task weights act
    as exponents). Estimated by EM (posteriors in log space, weighted MNL per class) from
    ``n_starts`` seeded starts (alternately the MNL estimate plus random perturbations and
    MNL fits on random partitions of the persons); the best
    start is polished by BFGS on the full log-likelihood with its analytic gradient.
    Classes are sorted by share, largest first. Standard errors come from the inverse
    of the Hessian (central differences of the analytic gradient) at the optimum.

    Args:
        n_classes: number of classes K.
        membership_features: person traits for a membership logit (a ``persons`` table
            passed to :meth:`fit`); ``None`` means constant class shares.
        n_starts: number of EM starts.
        max_em_iter: maximum EM iterations per start.
        tol: EM stops when the log-likelihood gains less than ``tol * |loglik|``.
        seed: seed of the random starts.

    BIC and CAIC use the number of persons as the sample size (the usual convention
    for panel latent class models). Alternative-specific constants must be feature columns.
    """

    def __init__(
        self,
        n_classes: int = 2,
        membership_features: Sequence[str] | None = None,
        n_starts: int = 5,
        max_em_iter: int = 200,
        tol: float = 1e-6,
        seed: int = 0,
    ) -> None:
        self.n_classes = n_classes
        self.membership_features = membership_features
        self.n_starts = n_starts
        self.max_em_iter = max_em_iter
        self.tol = tol
        self.seed = seed

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        data: ChoiceData | Any,
        features: Sequence[str] | None = None,
        *,
        persons: pl.DataFrame | None = None,
        person_id: str | None = None,
        **long_kwargs: Any,
    ) -> Self:
        """Estimate the model on ChoiceData (or a long table with ``features=``).

        ``persons`` holds one row per person: the id column (``person_id``, default the
        id column of the data) and the ``membership_features``.
        """
        K = int(self.n_classes)
        if K < 1:
            raise C2MError(f"n_classes must be >= 1, got {self.n_classes}")
        if self.n_starts < 1 or self.max_em_iter < 1:
            raise C2MError("n_starts and max_em_iter must be >= 1")
        data = _as_data(data, features, long_kwargs)
        self.__dict__.pop("coef_", None)
        self.feature_names_ = list(data.feature_names)
        self.membership_features_ = list(self.membership_features or [])
        self.person_id_ = _person_id_col(data, person_id, long_kwargs)
        Z = self._membership_design(data, persons)
        panel = lc.Panel(data.X, data.avail, data.chosen, data.weights, data.person, Z)
        F, M1 = data.X.shape[2], Z.shape[1]

        mnl = MultinomialLogit().fit(data)
        rng = np.random.default_rng(self.seed)
        scale = np.maximum(np.abs(mnl.coef_), 2.0 * mnl.se_)
        best: tuple[float, FloatArray, FloatArray, list[float], bool] | None = None
        for s in range(self.n_starts if K > 1 else 1):
            if K == 1:
                beta0 = mnl.coef_[None, :].copy()
            elif s % 2 == 0:  # the MNL estimate, perturbed (class 1 unperturbed in the first start)
                beta0 = mnl.coef_[None, :] + 0.75 * scale * rng.normal(size=(K, F))
                if s == 0:
                    beta0[0] = mnl.coef_
            else:  # a random partition of the persons, one weighted MNL per part
                part = rng.integers(0, K, size=data.n_persons)[data.person]
                beta0 = np.stack(
                    [lc.weighted_mnl(mnl.coef_, panel, data.weights * (part == k), 1e-9) for k in range(K)]
                )
            gamma0 = np.zeros((K, M1))
            run = self._em(beta0, gamma0, panel)
            if best is None or run[0] > best[0]:
                best = run
        assert best is not None
        _, beta, gamma, trace, em_conv = best
        theta = lc.pack(beta, gamma)
        theta, polished = _polish(theta, panel, K)
        beta, gamma = lc.unpack(theta, K, F, M1)
        post = lc.e_step(beta, gamma, panel)[1]
        order = np.argsort(-post.mean(axis=0), kind="stable")
        beta, gamma = beta[order], gamma[order] - gamma[order][0]
        theta = lc.pack(beta, gamma)
        ll, post, _, _ = lc.e_step(beta, gamma, panel)
        grad = lc.loglik_and_grad(theta, panel, K)[1]

        names = self._param_names(K)
        H = -lc.numerical_hessian(theta, panel, K)
        try:
            vcov = inverse_hessian(H, names)
        except C2MError:
            vcov = np.full((theta.size, theta.size), np.nan)  # e.g. an empty class
        se = np.sqrt(np.maximum(np.diag(vcov), 0.0)) if np.isfinite(vcov).all() else np.diag(vcov)

        self.n_classes_ = K
        self.coef_ = beta
        self.membership_coef_ = gamma[1:].copy()
        self.vcov_ = vcov
        self.se_ = se[: K * F].reshape(K, F)
        self.membership_se_ = se[K * F :].reshape(K - 1, M1)
        self.posterior_ = post
        self.class_shares_ = post.mean(axis=0)
        self.loglik_ = ll
        self.loglik_trace_ = trace
        self.em_converged_ = em_conv
        self.converged_ = bool(polished or np.max(np.abs(grad)) / data.n_persons < 1e-4)
        self.gradient_norm_ = float(np.max(np.abs(grad)))
        self.n_obs_ = data.n_tasks
        self.n_persons_ = data.n_persons
        self.loglik_mnl_ = mnl.loglik_
        self._set_fit_stats()
        return self

    def _em(
        self, beta: FloatArray, gamma: FloatArray, panel: lc.Panel
    ) -> tuple[float, FloatArray, FloatArray, list[float], bool]:
        trace: list[float] = []
        converged = False
        for _ in range(self.max_em_iter):
            ll, post, _, _ = lc.e_step(beta, gamma, panel)
            trace.append(ll)
            if len(trace) > 1 and trace[-1] - trace[-2] <= self.tol * abs(ll):
                converged = True
                break
            w_task = post[panel.person]
            beta = np.stack(
                [lc.weighted_mnl(beta[k], panel, panel.weights * w_task[:, k], 1e-9) for k in range(len(beta))]
            )
            gamma = lc.membership_step(gamma, post, panel.Z, 1e-9)
        else:
            ll = lc.e_step(beta, gamma, panel)[0]
            trace.append(ll)
        return trace[-1], beta, gamma, trace, converged

    def _membership_design(self, data: ChoiceData, persons: pl.DataFrame | None) -> FloatArray:
        N = data.n_persons
        feats = self.membership_features_
        if not feats:
            return np.ones((N, 1))
        if persons is None:
            raise C2MError("membership_features need fit(..., persons=table with the id and those columns)")
        return np.column_stack([np.ones(N), _person_table(data, persons, self.person_id_, feats)])

    def _param_names(self, K: int) -> list[str]:
        names = [f"class{k + 1}:{f}" for k in range(K) for f in self.feature_names_]
        mem = ["const", *self.membership_features_]
        names += [f"member{k + 1}:{m}" for k in range(1, K) for m in mem]
        return names

    def _set_fit_stats(self) -> None:
        K, F = self.coef_.shape
        self.n_params_ = K * F + self.membership_coef_.size
        k, n = self.n_params_, float(self.n_persons_)
        self.aic_ = -2.0 * self.loglik_ + 2.0 * k
        self.bic_ = -2.0 * self.loglik_ + k * np.log(n)
        self.caic_ = -2.0 * self.loglik_ + k * (np.log(n) + 1.0)

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise C2MError("this LatentClassLogit is not fitted yet; call fit() first")

    # ------------------------------------------------------------------ prediction
    def _log_membership(self, data: ChoiceData, persons: pl.DataFrame | None) -> FloatArray:
        gamma = np.vstack([np.zeros((1, self.membership_coef_.shape[1])), self.membership_coef_])
        if self.membership_features_ and persons is not None:
            Z = np.column_stack(
                [np.ones(data.n_persons), _person_table(data, persons, self.person_id_, self.membership_features_)]
            )
            return lc.log_membership(gamma, Z)
        logshare = np.log(np.maximum(self.class_shares_, 1e-300))
        return np.repeat(logshare[None, :], data.n_persons, axis=0)

    def _panel(self, data: ChoiceData) -> lc.Panel:
        X = data.select(self.feature_names_)
        return lc.Panel(X, data.avail, data.chosen, data.weights, data.person, np.ones((data.n_persons, 1)))

    def predict_proba(self, data: ChoiceData, persons: pl.DataFrame | None = None) -> FloatArray:
        """Unconditional choice probabilities (n_tasks, J): ``sum_k pi_k P_k``.

        Without ``persons`` (or without membership features) the class shares are used.
        """
        self._check_fitted()
        if not isinstance(data, ChoiceData):
            raise C2MError("predict_proba expects ChoiceData; build it with ChoiceData.from_long(...)")
        X = data.select(self.feature_names_)
        pi = np.exp(self._log_membership(data, persons))[data.person]
        P = np.zeros(data.avail.shape)
        for k in range(self.coef_.shape[0]):
            P += pi[:, k : k + 1] * probabilities(self.coef_[k], X, data.avail)
        return P

    def posterior(self, data: ChoiceData, persons: pl.DataFrame | None = None) -> FloatArray:
        """Class membership posteriors (n_persons, K) given the persons' observed choices."""
        self._check_fitted()
        L, _ = lc.class_logliks(self.coef_, self._panel(data))
        a = self._log_membership(data, persons) + L
        a -= a.max(axis=1, keepdims=True)
        e = np.exp(a)
        return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)

    def individual_coef(self, data: ChoiceData, persons: pl.DataFrame | None = None) -> FloatArray:
        """Posterior-mean coefficients per person (n_persons, F).

        With membership features, pass ``persons`` to use each person's own prior;
        otherwise the class shares are the prior.
        """
        return np.asarray(self.posterior(data, persons) @ self.coef_, dtype=np.float64)

    # ------------------------------------------------------------------ inference
    def summary(self) -> pl.DataFrame:
        """Table: class, feature, estimate, std_err, z, p_value, ci_low, ci_high (95%).

        Membership coefficients follow with feature ``member:<trait>`` (class 1 is the base).
        """
        self._check_fitted()
        K, F = self.coef_.shape
        parts = []
        for k in range(K):
            t = coef_table(self.feature_names_, self.coef_[k], self.se_[k])
            parts.append(t.insert_column(0, pl.Series("class", [k + 1] * F)))
        mem = ["const", *self.membership_features_]
        for k in range(1, K):
            t = coef_table([f"member:{m}" for m in mem], self.membership_coef_[k - 1], self.membership_se_[k - 1])
            parts.append(t.insert_column(0, pl.Series("class", [k + 1] * len(mem))))
        return pl.concat(parts)

    def summary_text(self) -> str:
        """Printable report: fit statistics, class shares and the coefficient table."""
        self._check_fitted()
        tab = self.summary()
        tab = tab.with_columns((pl.lit("c") + pl.col("class").cast(pl.Utf8) + ":" + pl.col("feature")).alias("feature"))
        shares = " ".join(f"{s:.3f}" for s in self.class_shares_)
        header = [
            ("Tasks", f"{self.n_obs_}"),
            ("Persons", f"{self.n_persons_}"),
            ("Classes", f"{self.n_classes_}"),
            ("Parameters", f"{self.n_params_}"),
            ("Converged", f"{self.converged_}"),
            ("Log-likelihood", f"{self.loglik_:.3f}"),
            ("AIC", f"{self.aic_:.2f}"),
            ("BIC", f"{self.bic_:.2f}"),
            ("CAIC", f"{self.caic_:.2f}"),
            ("Shares", shares),
        ]
        return format_report("Latent class logit", header, tab.drop("class"))

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description of the fitted model."""
        self._check_fitted()
        return {
            "model": "LatentClassLogit",
            "version": 1,
            "features": list(self.feature_names_),
            "coef": self.coef_.tolist(),
            "class_shares": self.class_shares_.tolist(),
            "se": self.se_.tolist(),
            "membership_features": list(self.membership_features_),
            "membership_coef": self.membership_coef_.tolist(),
            "membership_se": self.membership_se_.tolist(),
            "vcov": self.vcov_.tolist(),
            "loglik": float(self.loglik_),
            "loglik_trace": [float(v) for v in self.loglik_trace_],
            "aic": float(self.aic_),
            "bic": float(self.bic_),
            "caic": float(self.caic_),
            "n_params": int(self.n_params_),
            "n_obs": int(self.n_obs_),
            "n_persons": int(self.n_persons_),
            "converged": bool(self.converged_),
            "person_id": self.person_id_,
            "settings": {
                "n_classes": self.n_classes,
                "membership_features": _jsonable(list(self.membership_features or [])),
                "n_starts": self.n_starts,
                "max_em_iter": self.max_em_iter,
                "tol": self.tol,
                "seed": self.seed,
            },
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LatentClassLogit:
        """Rebuild a fitted model from :meth:`to_dict` output."""
        if d.get("model") != "LatentClassLogit":
            raise C2MError(f"expected a LatentClassLogit dictionary, got model {d.get('model')!r}")
        if d.get("version") != 1:
            raise C2MError(f"unsupported LatentClassLogit format version {d.get('version')!r}; expected 1")
        required = ["features", "coef", "class_shares", "se", "loglik", "n_obs", "n_persons", "converged"]
        missing = [k for k in required if k not in d]
        if missing:
            raise C2MError(f"LatentClassLogit dictionary lacks key(s) {missing}")
        s = d.get("settings", {})
        m = cls(**{k: s[k] for k in s if k in _SETTINGS})
        m.feature_names_ = list(d["features"])
        coef = np.asarray(d["coef"], dtype=np.float64)
        if coef.ndim != 2 or coef.shape[1] != len(m.feature_names_):
            raise C2MError(f"'coef' must be (n_classes, {len(m.feature_names_)}), got shape {coef.shape}")
        K, F = coef.shape
        m.n_classes_ = K
        m.coef_ = coef
        m.se_ = _array(d["se"], (K, F), "se")
        m.class_shares_ = _array(d["class_shares"], (K,), "class_shares")
        m.membership_features_ = list(d.get("membership_features", []))
        M1 = 1 + len(m.membership_features_)
        if "membership_coef" in d:
            m.membership_coef_ = _array(d["membership_coef"], (K - 1, M1), "membership_coef")
        else:
            logs = np.log(np.maximum(m.class_shares_, 1e-300))
            m.membership_coef_ = (logs[1:] - logs[0])[:, None]
        m.membership_se_ = (
            _array(d["membership_se"], (K - 1, M1), "membership_se")
            if "membership_se" in d
            else np.full((K - 1, M1), np.nan)
        )
        p = K * F + (K - 1) * M1
        m.vcov_ = _array(d["vcov"], (p, p), "vcov") if "vcov" in d else np.full((p, p), np.nan)
        m.loglik_ = float(d["loglik"])
        m.loglik_trace_ = [float(v) for v in d.get("loglik_trace", [])]
        m.n_obs_ = int(d["n_obs"])
        m.n_persons_ = int(d["n_persons"])
        m.converged_ = bool(d["converged"])
        m.person_id_ = d.get("person_id")
        m._set_fit_stats()
        return m

    def __repr__(self) -> str:
        state = f"fitted, {self.coef_.shape[0]} classes" if hasattr(self, "coef_") else "not fitted"
        return f"LatentClassLogit({state})"


_SETTINGS = {"n_classes", "membership_features", "n_starts", "max_em_iter", "tol", "seed"}


def _polish(theta: FloatArray, panel: lc.Panel, K: int) -> tuple[FloatArray, bool]:
    """BFGS on the mean negative log-likelihood from the EM solution; never worse than it."""
    N = panel.n_persons

    def fun(x: FloatArray) -> tuple[float, FloatArray]:
        ll, g = lc.loglik_and_grad(x, panel, K)
        return -ll / N, -g / N

    f0 = fun(theta)[0]
    res = minimize(fun, theta, jac=True, method="BFGS", options={"gtol": 1e-7, "maxiter": 2000})
    if not np.isfinite(res.fun) or res.fun > f0:
        return theta, False
    return np.asarray(res.x, dtype=np.float64), bool(res.success)


def _person_id_col(data: ChoiceData, person_id: str | None, long_kwargs: dict[str, Any]) -> str | None:
    if person_id is not None:
        return person_id
    if "id_col" in long_kwargs:
        return long_kwargs["id_col"]
    if data.task_keys is not None and data.task_keys.width >= 2:
        return str(data.task_keys.columns[0])
    return None


def _person_table(data: ChoiceData, persons: pl.DataFrame, id_col: str | None, feats: list[str]) -> FloatArray:
    """Membership traits (n_persons, M) aligned on the data's person index."""
    if not isinstance(persons, pl.DataFrame):
        raise C2MError("persons must be a polars DataFrame with the id column and the membership features")
    if id_col is None or data.task_keys is None or id_col not in data.task_keys.columns:
        if persons.height != data.n_persons:
            raise C2MError(
                f"the choice data has no id column to match persons on; persons must have one row per "
                f"person in person-index order ({data.n_persons} rows), got {persons.height}"
            )
        table = persons
    else:
        if id_col not in persons.columns:
            raise C2MError(f"persons table has no id column {id_col!r}; it has {persons.columns}")
        if persons.get_column(id_col).is_duplicated().any():
            raise C2MError(f"persons table has duplicated ids in column {id_col!r}")
        keys = data.task_keys.get_column(id_col)
        ids = pl.DataFrame({id_col: keys, "_p": data.person}).unique(subset="_p").sort("_p")
        table = ids.join(persons, on=id_col, how="left", coalesce=True).sort("_p")
    missing_cols = [f for f in feats if f not in table.columns]
    if missing_cols:
        raise C2MError(f"persons table lacks membership feature(s) {missing_cols}")
    Zm = table.select([pl.col(f).cast(pl.Float64) for f in feats]).to_numpy()
    if not np.isfinite(Zm).all():
        r = int(np.argwhere(~np.isfinite(Zm))[0, 0])
        who = f"id {table.get_column(id_col)[r]!r}" if id_col in table.columns else f"person #{r}"
        raise C2MError(f"membership features are missing or not finite for {who} in the persons table")
    return np.asarray(Zm, dtype=np.float64)


def select_n_classes(
    data: ChoiceData | Any,
    k_values: Sequence[int] = (1, 2, 3, 4),
    criterion: str = "bic",
    **kw: Any,
) -> tuple[LatentClassLogit, pl.DataFrame]:
    """Fit a LatentClassLogit per K; return the best by ``criterion`` (aic, bic, caic) and a table.

    ``kw`` goes to the constructor, except ``features``, ``persons`` and long-table
    column names, which go to :meth:`LatentClassLogit.fit`.
    """
    if criterion not in ("aic", "bic", "caic"):
        raise C2MError(f"criterion must be 'aic', 'bic' or 'caic', got {criterion!r}")
    if not k_values:
        raise C2MError("k_values is empty")
    ctor = {k: v for k, v in kw.items() if k in _SETTINGS - {"n_classes"}}
    fit_kw = {k: v for k, v in kw.items() if k not in _SETTINGS}
    if "features" not in fit_kw and not isinstance(data, ChoiceData):
        raise C2MError("fitting from a table needs features=[...] (the attribute columns)")
    if isinstance(data, ChoiceData):
        data_ = data
    else:
        feats = fit_kw.pop("features")
        long_keys = {"id_col", "task_col", "alt_col", "chosen_col", "weight_col", "avail_col"}
        data_ = ChoiceData.from_long(data, feats, **{k: fit_kw.pop(k) for k in list(fit_kw) if k in long_keys})
    models = [LatentClassLogit(n_classes=int(k), **ctor).fit(data_, **fit_kw) for k in k_values]
    table = pl.DataFrame(
        {
            "k": [int(k) for k in k_values],
            "loglik": [m.loglik_ for m in models],
            "n_params": [m.n_params_ for m in models],
            "aic": [m.aic_ for m in models],
            "bic": [m.bic_ for m in models],
            "caic": [m.caic_ for m in models],
        }
    )
    best = min(models, key=lambda m: float(getattr(m, f"{criterion}_")))
    return best, table


register_model("LatentClassLogit", LatentClassLogit.from_dict)
