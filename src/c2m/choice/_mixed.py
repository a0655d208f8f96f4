"""Panel mixed logit (random coefficients) by maximum simulated likelihood."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
import polars as pl
from scipy.optimize import minimize

from c2m.choice import _mixed_math as mm
from c2m.choice._data import ChoiceData
from c2m.choice._draws import DRAW_KINDS, make_draws, standardise
from c2m.choice._io import _array, register_model
from c2m.choice._mnl import MultinomialLogit, _as_data
from c2m.choice._mnl_math import FloatArray
from c2m.choice._summary import coef_table, format_report
from c2m.choice._vcov import inverse_hessian, sandwich
from c2m.errors import C2MError

DISTRIBUTIONS = ("normal", "lognormal", "neg_lognormal", "triangular", "uniform")
_START_SD = 0.1
ENGINES = ("auto", "numpy", "numba")


class MixedLogit:
    """Mixed (random-coefficient) logit estimated by maximum simulated likelihood.

    A person's likelihood is ``mean_r prod_t P(choice_t | beta_nr)`` over ``n_draws`` draws of
    the random coefficients (``panel=True``: the same coefficients across the person's
    tasks; ``panel=False``: fresh coefficients per task). Coefficients are
    ``b + s e`` for ``"normal"`` (e ~ N(0,1)), ``"triangular"`` (e symmetric triangular on
    [-1, 1]) and ``"uniform"`` (e ~ U(-1, 1)); ``exp(b + s e)`` for ``"lognormal"`` and
    ``-exp(b + s e)`` for ``"neg_lognormal"`` (a negative coefficient such as price), with
    e ~ N(0,1). With ``correlated=True`` (normal / lognormal kinds only) ``s e`` becomes
    ``L e`` with L lower triangular (Cholesky factor of the covariance of b + L e).

    The simulated log-likelihood ``sum_n w_n log mean_r prod_t P_ntr`` and its analytic
    gradient are computed in log space: by a numba kernel person by person (draws innermost,
    memory O(R x (J + K))) or by the NumPy reference, vectorised over persons x draws in
    chunks of about 2**21 task x draw x (J + K) cells. L-BFGS-B starts from the MNL estimate
    with spreads 0.1 (or ``fit(..., start=...)``). Standard errors come from the inverse of
    the Hessian obtained by central finite differences of the analytic gradient;
    ``robust=True`` reports the sandwich with person-level scores. Task weights must be
    constant within a person (person weights).

    WTP space (``wtp_space="price"``, Train and Weeks 2005; the convention of logitr):
    utility is ``U_j = lambda (w'x_j - p_j) + e_j`` with p the price feature, lambda > 0 the
    scale and w the willingnesses to pay of the other features, so a preference-space
    coefficient is ``beta_k = lambda w_k`` and the price coefficient is ``-lambda`` (a higher
    price lowers utility; w_k > 0 means feature k is worth w_k units of price). lambda is
    lognormal (``exp(b + s e)``, random) unless ``random[price] = "fixed"`` (``exp(b)``); the
    w's are fixed or random with any distribution. The estimates are then WTPs directly:
    ``coef_`` and ``params_`` hold the w's (or their log for lognormal kinds) and, at the price
    feature, the location of ``log lambda``; ``individual_coef`` returns each person's w's and
    lambda. Starting values come from the preference-space MNL (w = -beta_k / beta_price,
    log lambda = log(-beta_price); a non-negative MNL price coefficient is an error), the
    parameters are scaled by their MNL standard errors for the optimiser, and an
    unconverged run is restarted (from where it stopped, then from a wider start), keeping
    the best.

    Fitted attributes: ``coef_`` (means; for lognormal kinds the mean of the log),
    ``sd_`` (absolute spreads; with ``correlated=True`` the standard deviations
    ``sqrt(diag(L L'))``), ``chol_`` (L or None), ``params_`` / ``param_names_``
    (means, then ``sd.<f>`` or ``chol.<row>.<col>``; sds as estimated, their sign is
    arbitrary), ``vcov_``, ``vcov_robust_``, ``se_``, ``loglik_``, ``aic_``, ``bic_``
    (n = tasks), ``converged_``, ``n_iter_``, ``engine_``.

    Args:
        random: feature -> distribution for the random coefficients; others are fixed.
        correlated: estimate a full Cholesky factor of the random coefficients.
        n_draws: draws per person.
        draws: ``"halton"``, ``"sobol"``, ``"mlhs"`` or ``"random"`` (see :func:`make_draws`).
        panel: same coefficients for all tasks of a person.
        seed: seed of the draws (scrambling for Halton / Sobol).
        robust: report sandwich standard errors.
        maxiter: maximum L-BFGS-B iterations.
        tol: gradient tolerance on the mean log-likelihood per person.
        skip: Halton / Sobol burn-in passed to :func:`make_draws` (``seed=None, skip=99``
            reproduces the unscrambled draws of xlogit and mlogit's published estimates).
        engine: ``"numba"`` (fused compiled kernel, person by person), ``"numpy"``
            (vectorised reference, chunks of persons) or ``"auto"`` (numba when importable).
        wtp_space: name of the price feature to estimate in WTP space (None: preference space).

    ``random`` may also map a feature to ``"fixed"`` (the same as leaving it out; in WTP space
    it fixes the scale).
    """

    def __init__(
        self,
        random: Mapping[str, str] | None = None,
        correlated: bool = False,
        n_draws: int = 100,
        draws: str = "halton",
        panel: bool = True,
        seed: int | None = 0,
        robust: bool = False,
        maxiter: int = 1000,
        tol: float = 1e-6,
        skip: int | None = None,
        engine: str = "auto",
        wtp_space: str | None = None,
    ) -> None:
        self.random = dict(random) if random is not None else {}
        self.correlated = correlated
        self.n_draws = n_draws
        self.draws = draws
        self.panel = panel
        self.seed = seed
        self.robust = robust
        self.maxiter = maxiter
        self.tol = tol
        self.skip = skip
        self.engine = engine
        self.wtp_space = wtp_space

    # ------------------------------------------------------------------ set-up
    def _validate(self, features: list[str]) -> None:
        price = self.wtp_space
        if price is not None:
            if price not in features:
                raise C2MError(f"wtp_space={price!r} is not a feature; features are {features}")
            if len(features) < 2:
                raise C2MError("WTP space needs the price feature and at least one other feature")
            if self.random.get(price, "lognormal") not in ("lognormal", "fixed"):
                raise C2MError(
                    f"in WTP space the scale (price feature {price!r}) is 'lognormal' or 'fixed', "
                    f"got {self.random[price]!r}"
                )
        for f, dist in self.random.items():
            if f not in features:
                raise C2MError(f"random coefficient {f!r} is not a feature; features are {features}")
            if dist == "fixed":
                continue
            if dist not in DISTRIBUTIONS:
                raise C2MError(f"unknown distribution {dist!r} for {f!r}; use one of {(*DISTRIBUTIONS, 'fixed')}")
            if self.correlated and dist in ("triangular", "uniform"):
                raise C2MError(
                    f"correlated=True needs normal-based distributions; {f!r} is {dist!r} "
                    "(use normal, lognormal or neg_lognormal)"
                )
        if self.draws not in DRAW_KINDS:
            raise C2MError(f"unknown draws {self.draws!r}; use one of {DRAW_KINDS}")
        if self.engine not in ENGINES:
            raise C2MError(f"unknown engine {self.engine!r}; use one of {ENGINES}")
        if self.engine == "numba" and not mm.numba_available():
            raise C2MError("engine='numba' needs numba: pip install numba (or use engine='numpy')")
        if int(self.n_draws) < 1:
            raise C2MError(f"n_draws must be >= 1, got {self.n_draws}")

    def _effective_random(self) -> dict[str, str]:
        """Random coefficients actually estimated: without "fixed" ones, with the WTP-space scale."""
        eff = dict(self.random)
        if self.wtp_space is not None:
            eff.setdefault(self.wtp_space, "lognormal")
        return {f: d for f, d in eff.items() if d != "fixed"}

    def _spec(self) -> mm.Spec:
        eff = self._effective_random()
        rand = [k for k, f in enumerate(self.feature_names_) if f in eff]
        self.random_features_ = [self.feature_names_[k] for k in rand]
        self.distributions_ = [eff[f] for f in self.random_features_]
        wtp = self.feature_names_.index(self.wtp_space) if self.wtp_space is not None else -1
        return mm.make_spec(len(self.feature_names_), rand, self.distributions_, bool(self.correlated), wtp)

    def _panel(self, data: ChoiceData) -> tuple[mm.Panel, np.ndarray]:
        """Tasks grouped by person (or one person per task), with draws; returns the sort order."""
        person = data.person if self.panel else np.arange(data.n_tasks, dtype=np.intp)
        order = np.argsort(person, kind="stable")
        p_sorted = person[order]
        N = int(p_sorted[-1]) + 1
        starts = np.searchsorted(p_sorted, np.arange(N + 1)).astype(np.intp)
        if np.any(np.diff(starts) == 0):
            raise C2MError("person index has gaps: every person code 0..n_persons-1 needs a task")
        X = np.ascontiguousarray(data.select(self.feature_names_)[order])
        w = data.weights[order]
        pw = w[starts[:-1]]
        if not np.allclose(np.maximum.reduceat(w, starts[:-1]), np.minimum.reduceat(w, starts[:-1])):
            raise C2MError(
                "panel mixed logit needs task weights that are constant within each person "
                "(they are person weights); use panel=False for task weights"
            )
        chosen = data.chosen[order]
        D = len(self.random_features_)
        u = make_draws(N, int(self.n_draws), D, kind=self.draws, seed=self.seed, skip=self.skip)
        E = standardise(u, self.distributions_)
        panel = mm.Panel(
            X=X,
            avail=data.avail[order],
            chosen=chosen,
            x_chosen=X[np.arange(X.shape[0]), chosen],
            starts=starts,
            weights=pw,
            E=E,
        )
        return panel, order

    def _start(self, data: ChoiceData, spec: mm.Spec) -> FloatArray:
        mnl = MultinomialLogit(maxiter=200).fit(data)  # feature_names_ == data.feature_names
        b = mnl.coef_.copy()
        self.mnl_loglik_ = float(mnl.loglik_)
        if spec.wtp_idx >= 0:
            return self._wtp_start(mnl, spec)
        for d, k in enumerate(spec.rand_idx):
            if spec.kinds[d] == 1:
                b[k] = np.log(max(b[k], 1e-2))
            elif spec.kinds[d] == 2:
                b[k] = np.log(max(-b[k], 1e-2))
        D = spec.n_random
        sp = (_START_SD * np.eye(D))[np.tril_indices(D)] if spec.correlated else np.full(D, _START_SD)
        return np.concatenate([b, sp])

    def _wtp_start(self, mnl: MultinomialLogit, spec: mm.Spec) -> FloatArray:
        """WTP-space start from the preference-space MNL; sets the optimiser's parameter scales."""
        p = spec.wtp_idx
        beta, V = mnl.coef_, mnl.vcov_
        bp = float(beta[p])
        if not bp < 0:
            raise C2MError(
                f"WTP space needs a negative price coefficient, but the preference-space MNL estimate for "
                f"{self.wtp_space!r} is {bp:.4g}; check the sign and coding of the price column"
            )
        K = spec.n_features
        b = -beta / bp
        b[p] = np.log(-bp)
        se = np.empty(K)  # delta-method standard errors of w_k = -beta_k / beta_p and of log(-beta_p)
        for k in range(K):
            g = np.zeros(K)
            if k == p:
                g[p] = 1.0 / bp
            else:
                g[k], g[p] = -1.0 / bp, beta[k] / bp**2
            se[k] = float(np.sqrt(max(float(g @ V @ g), 0.0)))
        sd0 = np.empty(spec.n_random)
        for d, k in enumerate(spec.rand_idx):
            if k != p and spec.kinds[d] != 0:  # lognormal WTP: location and scale of the log
                w = b[k] if spec.kinds[d] == 1 else -b[k]
                se[k] = se[k] / max(abs(w), 1e-2)
                b[k] = np.log(max(w, 1e-2))
            sd0[d] = _START_SD if spec.kinds[d] != 0 else _START_SD * max(abs(float(b[k])), float(se[k]), 1e-3)
        se = np.where(np.isfinite(se) & (se > 0), se, 1.0)
        D = spec.n_random
        if spec.correlated:
            sp = np.diag(sd0)[np.tril_indices(D)]
            sp_scale = se[spec.rand_idx][np.tril_indices(D)[0]]
        else:
            sp, sp_scale = sd0, se[spec.rand_idx]
        x_scale = np.concatenate([se, sp_scale])
        self._x_scale = x_scale / x_scale.min()
        return np.concatenate([b, sp])

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        data: ChoiceData | Any,
        features: Sequence[str] | None = None,
        *,
        start: Sequence[float] | None = None,
        **long_kwargs: Any,
    ) -> Self:
        """Estimate; ``data`` is ChoiceData or a long table with ``features=`` (as MultinomialLogit).

        ``start`` overrides the starting values (laid out as ``param_names_``); by default
        the means start at the MNL estimate (log of its magnitude for lognormal kinds) and
        the spreads at 0.1.
        """
        data = _as_data(data, features, long_kwargs)
        self.__dict__.pop("params_", None)
        self.feature_names_ = list(data.feature_names)
        self._validate(self.feature_names_)
        spec = self._spec()
        self.param_names_ = self._param_names(spec)
        panel, _ = self._panel(data)
        if start is None:
            theta0 = self._start(data, spec)
        else:
            theta0 = np.asarray(start, dtype=np.float64).copy()
            if theta0.shape != (spec.n_params,):
                raise C2MError(f"start needs {spec.n_params} values, one per {self.param_names_}")
        scale = 1.0 / float(panel.weights.sum())
        use_numba = self.engine == "numba" or (self.engine == "auto" and mm.numba_available())
        self.engine_ = "numba" if use_numba else "numpy"
        kernel = mm.loglik_scores_numba if use_numba else mm.loglik_scores
        wtp = spec.wtp_idx >= 0
        x_scale = getattr(self, "_x_scale", None) if wtp and start is None else None
        if x_scale is None:
            x_scale = np.ones(spec.n_params)

        def fun(z: FloatArray) -> tuple[float, FloatArray]:
            ll, sc = kernel(z * x_scale, spec, panel)
            return -ll * scale, -sc.sum(axis=0) * scale * x_scale

        def run(t0: FloatArray) -> tuple[FloatArray, float, FloatArray, int, bool]:
            res = minimize(
                fun,
                t0 / x_scale,
                jac=True,
                method="L-BFGS-B",
                options={"maxiter": int(self.maxiter), "gtol": self.tol, "ftol": 1e-13, "maxcor": 30},
            )
            theta = np.asarray(res.x, dtype=np.float64) * x_scale
            ll, scores = kernel(theta, spec, panel)
            grad = scores.sum(axis=0)
            ok = bool(res.success) or bool(np.max(np.abs(grad * scale)) <= 10 * self.tol)
            return theta, float(ll), scores, int(res.nit), ok and bool(np.isfinite(ll))

        best = run(theta0)
        n_iter = best[3]
        if wtp and not best[4]:  # WTP space: restart from where it stopped, then from a wider start
            wide = theta0.copy()
            wide[spec.n_features :] *= 5.0
            wide[spec.wtp_idx] += 0.5  # the mixed model's scale exceeds the MNL's
            for t0 in (best[0], wide):
                attempt = run(t0)
                n_iter += attempt[3]
                if (attempt[4], attempt[1]) > (best[4], best[1]):
                    best = attempt
                if best[4]:
                    break
        self.__dict__.pop("_x_scale", None)
        theta, ll, scores, _, converged = best
        H = _fd_hessian(lambda t: -kernel(t, spec, panel)[1].sum(axis=0), theta)
        self.vcov_ = inverse_hessian(H, self.param_names_)
        self.vcov_robust_ = sandwich(self.vcov_, scores)
        self.params_ = theta
        self.loglik_ = ll
        self.n_iter_ = n_iter
        self.converged_ = converged
        self.n_obs_ = data.n_tasks
        self.n_persons_ = int(panel.starts.size - 1)
        self._spec_ = spec
        self._set_fit_stats()
        return self

    def _param_names(self, spec: mm.Spec) -> list[str]:
        rf = self.random_features_
        if spec.correlated:
            r, c = np.tril_indices(len(rf))
            spread = [f"chol.{rf[i]}.{rf[j]}" for i, j in zip(r, c, strict=True)]
        else:
            spread = [f"sd.{f}" for f in rf]
        return [*self.feature_names_, *spread]

    def _set_fit_stats(self) -> None:
        spec = self._spec_
        K = spec.n_features
        theta = self.params_
        self.coef_ = theta[:K].copy()
        L = mm.spread_matrix(theta, spec)
        if spec.correlated:
            self.chol_: FloatArray | None = L
            self.sd_ = np.sqrt(np.diag(L @ L.T))
        else:
            self.chol_ = None
            self.sd_ = np.abs(np.diag(L)) if spec.n_random else np.zeros(0)
        V = self.vcov_robust_ if self.robust else self.vcov_
        self.se_ = np.sqrt(np.clip(np.diag(V), 0.0, None))
        k = theta.size
        self.aic_ = -2.0 * self.loglik_ + 2.0 * k
        self.bic_ = -2.0 * self.loglik_ + k * float(np.log(self.n_obs_))

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise C2MError("this MixedLogit is not fitted yet; call fit() first")

    def _new_panel(self, data: ChoiceData) -> tuple[mm.Panel, np.ndarray]:
        self._check_fitted()
        if not isinstance(data, ChoiceData):
            raise C2MError("expected ChoiceData; build it with ChoiceData.from_long(...)")
        missing = [f for f in self.feature_names_ if f not in data.feature_names]
        if missing:
            raise C2MError(f"choice data lacks the model's feature(s) {missing}")
        return self._panel(data)

    # ------------------------------------------------------------------ prediction
    def predict_proba(self, data: ChoiceData) -> FloatArray:
        """Unconditional probabilities (n_tasks, J): mean over the draws of the logit probabilities."""
        panel, order = self._new_panel(data)
        P_sorted = mm.mean_probabilities(self.params_, self._spec_, panel)
        out = np.empty_like(P_sorted)
        out[order] = P_sorted
        return out

    def individual_coef(self, data: ChoiceData) -> FloatArray:
        """Conditional means of each person's coefficients given their choices (n_persons, K).

        Revelt and Train (2000): ``sum_r w_nr beta_nr`` with ``w_nr`` proportional to the
        simulated probability of the person's observed choices at draw r. Rows follow
        ``data.person`` codes (with ``panel=False``: one row per task).
        """
        panel, _ = self._new_panel(data)
        return mm.posterior_coef(self.params_, self._spec_, panel)

    # ------------------------------------------------------------------ inference
    def summary(self) -> pl.DataFrame:
        """Table: parameter, estimate, std_err, z, p_value, ci_low, ci_high (95%)."""
        self._check_fitted()
        return coef_table(self.param_names_, self.params_, self.se_).rename({"feature": "parameter"})

    def summary_text(self) -> str:
        """Printable parameter table with a header of fit statistics."""
        self._check_fitted()
        dists = ", ".join(f"{f}:{d}" for f, d in zip(self.random_features_, self.distributions_, strict=True))
        header = [
            ("Tasks", f"{self.n_obs_}"),
            ("Persons", f"{self.n_persons_}"),
            ("Parameters", f"{self.params_.size}"),
            ("Draws", f"{self.n_draws} {self.draws}"),
            ("Std. errors", "robust" if self.robust else "FD Hessian"),
            ("Converged", f"{self.converged_} ({self.n_iter_} it)"),
            ("Log-likelihood", f"{self.loglik_:.3f}"),
            ("AIC", f"{self.aic_:.2f}"),
            ("BIC", f"{self.bic_:.2f}"),
            ("Panel", f"{self.panel}"),
        ]
        if self.wtp_space is not None:
            header.append(("Space", f"WTP (scale: log lambda at {self.wtp_space!r})"))
        title = "Mixed logit" + (" in WTP space" if self.wtp_space is not None else "")
        title += f" ({dists})" if dists else ""
        return format_report(title, header, self.summary().rename({"parameter": "feature"}))

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description of the fitted model."""
        self._check_fitted()
        return {
            "model": "MixedLogit",
            "version": 1,
            "features": list(self.feature_names_),
            "params": self.params_.tolist(),
            "param_names": list(self.param_names_),
            "vcov_classic": self.vcov_.tolist(),
            "vcov_robust": self.vcov_robust_.tolist(),
            "loglik": float(self.loglik_),
            "n_obs": int(self.n_obs_),
            "n_persons": int(self.n_persons_),
            "converged": bool(self.converged_),
            "n_iter": int(self.n_iter_),
            "settings": {
                "random": dict(self.random),
                "correlated": bool(self.correlated),
                "n_draws": int(self.n_draws),
                "draws": self.draws,
                "panel": bool(self.panel),
                "seed": self.seed,
                "robust": bool(self.robust),
                "maxiter": int(self.maxiter),
                "tol": float(self.tol),
                "skip": self.skip,
                "engine": self.engine,
                "wtp_space": self.wtp_space,
            },
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MixedLogit:
        """Rebuild a fitted model from :meth:`to_dict` output."""
        if d.get("model") != "MixedLogit":
            raise C2MError(f"expected a MixedLogit dictionary, got model {d.get('model')!r}")
        if d.get("version") != 1:
            raise C2MError(f"unsupported MixedLogit format version {d.get('version')!r}; expected 1")
        required = ["features", "params", "vcov_classic", "vcov_robust", "loglik", "n_obs", "settings"]
        missing = [k for k in required if k not in d]
        if missing:
            raise C2MError(f"MixedLogit dictionary lacks key(s) {missing}")
        m = cls(**d["settings"])
        m.feature_names_ = list(d["features"])
        m._validate(m.feature_names_)
        spec = m._spec()
        m.param_names_ = m._param_names(spec)
        P = spec.n_params
        m.params_ = _array(d["params"], (P,), "params")
        m.vcov_ = _array(d["vcov_classic"], (P, P), "vcov_classic")
        m.vcov_robust_ = _array(d["vcov_robust"], (P, P), "vcov_robust")
        m.loglik_ = float(d["loglik"])
        m.n_obs_ = int(d["n_obs"])
        m.n_persons_ = int(d.get("n_persons", 0))
        m.converged_ = bool(d.get("converged", False))
        m.n_iter_ = int(d.get("n_iter", 0))
        m._spec_ = spec
        m._set_fit_stats()
        return m

    def __repr__(self) -> str:
        state = f"fitted, {self.params_.size} params" if hasattr(self, "params_") else "not fitted"
        return f"MixedLogit({state})"


def _fd_hessian(grad: Any, theta: FloatArray) -> FloatArray:
    """Symmetrised central-difference Jacobian of an analytic gradient."""
    P = theta.size
    H = np.zeros((P, P))
    for i in range(P):
        h = 1e-5 * max(1.0, abs(float(theta[i])))
        tp, tm = theta.copy(), theta.copy()
        tp[i] += h
        tm[i] -= h
        H[:, i] = (grad(tp) - grad(tm)) / (2.0 * h)
    return np.asarray(0.5 * (H + H.T), dtype=np.float64)


register_model("MixedLogit", MixedLogit.from_dict)
