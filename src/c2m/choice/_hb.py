"""Hierarchical Bayes logit (CBC/HB): normal upper level, Gibbs sampler with Metropolis steps."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import polars as pl

from c2m.choice import _hb_kernels as hk
from c2m.choice._data import ChoiceData
from c2m.choice._io import _array, register_model
from c2m.choice._mcmc_diagnostics import summarise
from c2m.choice._mnl import _as_data, _jsonable
from c2m.choice._mnl_math import BoolArray, FloatArray, IntArray
from c2m.errors import C2MError

ENGINES = ("auto", "numpy", "numba")
PERSONS = ("auto", "fitted", "new")
_CHUNK_CELLS = 1 << 22  # draws x tasks x alternatives x features per prediction chunk
_START_RHO = 0.1


@dataclass(frozen=True)
class _Panel:
    """Tasks sorted by person; person n owns tasks starts[n]:starts[n+1]."""

    X: FloatArray
    avail: BoolArray
    chosen: IntArray
    starts: IntArray


@dataclass
class _Chains:
    b: FloatArray  # (C, S, K) kept draws of the mean
    W: FloatArray  # (C, S, K, K) kept draws of the covariance
    loglik: FloatArray  # (C, S) sum of the persons' log-likelihoods at the kept draws
    individual: FloatArray  # (D, N, K) kept draws of the individual coefficients
    beta_mean: FloatArray  # (N, K) posterior mean over all post-burn-in iterations
    beta_sd: FloatArray  # (N, K)
    acceptance: FloatArray  # (C,) post-burn-in acceptance rate
    rho: FloatArray  # (C,) final jump scale


class HierarchicalBayesLogit:
    """Hierarchical Bayes multinomial logit, the standard CBC/HB model.

    Each person's part-worths are ``beta_n ~ N(b, W)``; the choices given ``beta_n`` are
    logit. The Gibbs sampler (as Sawtooth CBC/HB, bayesm ``rhierMnlRwMixture`` with one
    component, Train 2009 ch. 12) alternates, per iteration and chain:

    1. ``b | W, beta ~ N(mean_n beta_n, W / N)`` (flat prior on ``b``);
    2. ``W | b, beta ~ IW(nu0 + N, S0 + sum_n (beta_n - b)(beta_n - b)')`` with the
       inverse-Wishart prior ``nu0 = K + prior_df``, ``S0 = nu0 * prior_variance * I``
       (a prior guess of ``prior_variance`` for every variance, worth ``nu0`` persons; the
       prior mean of W is ``nu0 / (prior_df - 1) * prior_variance * I``, so with few tasks
       per person the posterior variances lean upward: lower ``prior_variance`` if the
       attributes are on a small scale);
    3. for all persons at once, one random-walk Metropolis step
       ``beta_n* = beta_n + rho * L z`` (``L L' = W``, ``z ~ N(0, I)``) accepted with
       probability ``min(1, L_n(beta*) phi(beta* | b, W) / (L_n(beta) phi(beta | b, W)))``.

    During burn-in the jump scale ``rho`` of each chain is adapted every ``adapt_every``
    iterations toward ``target_acceptance`` (``log rho += 2 (rate - target)``, clipped at
    +-1); afterwards it is fixed, so the kept draws come from a valid Markov chain.
    Chains start from dispersed points (``b ~ N(0, prior_variance I)``).

    ``n_iter`` counts all iterations of a chain, burn-in included; every ``thin``-th
    post-burn-in iteration is kept for ``b`` and ``W`` (memory ``n_chains x kept x K^2``).
    Individual coefficients are averaged over all post-burn-in iterations
    (``individual_coef_``, ``individual_sd_``) and only ``n_individual_draws`` draws in all
    are stored (evenly spaced over the kept iterations of every chain).

    Task weights of the ChoiceData are **ignored** in estimation: each person's part-worths
    come from their own choices, and weighting a likelihood by survey weights has no
    Bayesian meaning for individual-level parameters; apply population weights when
    aggregating (``hit_rate`` and ``share_mae`` use them as MultinomialLogit does).

    Fitted attributes: ``coef_`` (posterior mean of ``b``), ``coef_sd_``, ``cov_``
    (posterior mean of ``W``), ``sd_`` (sqrt of its diagonal: the spread of tastes),
    ``individual_coef_`` (N, K), ``individual_sd_``, ``b_draws_`` (C, S, K), ``cov_draws_``
    (C, S, K, K), ``individual_draws_`` (D, N, K), ``rhat_`` / ``ess_`` (per feature, for
    ``b``), ``rhat_cov_`` / ``ess_cov_`` (K, K, for ``W``), ``acceptance_rate_`` and
    ``rho_`` (per chain), ``loglik_`` (at the posterior means of the individual
    coefficients), ``loglik_null_``, ``rho2_``, ``rlh_`` (root likelihood),
    ``person_ids_`` (the id of every fitted person, when the data had an id column).

    Args:
        n_iter: iterations per chain, burn-in included.
        burn_in: iterations discarded at the start of every chain.
        thin: keep every ``thin``-th post-burn-in draw of ``b`` and ``W``.
        n_chains: independent chains (run together, vectorised).
        prior_df: extra degrees of freedom of the inverse-Wishart prior (Sawtooth: 5).
        prior_variance: prior guess of the variances (Sawtooth: 1.0).
        target_acceptance: Metropolis acceptance rate aimed at during burn-in.
        adapt_every: iterations between two adjustments of the jump scale.
        n_individual_draws: individual draws stored in all (for posterior predictions).
        n_predict_draws: draws from the upper level used for new persons.
        seed: seed of the sampler.
        engine: ``"numba"`` (compiled person log-likelihoods), ``"numpy"`` (reference) or
            ``"auto"`` (numba when importable).
        parallel: with numba, evaluate the persons in parallel threads (worth it on an idle
            multi-core machine; on oversubscribed cores the thread barrier makes it slower).
    """

    def __init__(
        self,
        n_iter: int = 20_000,
        burn_in: int = 10_000,
        thin: int = 10,
        n_chains: int = 2,
        prior_df: float = 5.0,
        prior_variance: float = 1.0,
        target_acceptance: float = 0.3,
        adapt_every: int = 100,
        n_individual_draws: int = 100,
        n_predict_draws: int = 500,
        seed: int = 0,
        engine: str = "auto",
        parallel: bool = False,
    ) -> None:
        self.n_iter = n_iter
        self.burn_in = burn_in
        self.thin = thin
        self.n_chains = n_chains
        self.prior_df = prior_df
        self.prior_variance = prior_variance
        self.target_acceptance = target_acceptance
        self.adapt_every = adapt_every
        self.n_individual_draws = n_individual_draws
        self.n_predict_draws = n_predict_draws
        self.seed = seed
        self.engine = engine
        self.parallel = parallel

    # ------------------------------------------------------------------ set-up
    def _validate(self) -> None:
        checks = [
            (int(self.burn_in) >= 0, f"burn_in must be >= 0, got {self.burn_in}"),
            (
                int(self.n_iter) > int(self.burn_in),
                f"n_iter ({self.n_iter}) must be larger than burn_in ({self.burn_in}): "
                "n_iter counts all iterations, burn-in included",
            ),
            (int(self.thin) >= 1, f"thin must be >= 1, got {self.thin}"),
            (int(self.n_chains) >= 1, f"n_chains must be >= 1, got {self.n_chains}"),
            (float(self.prior_df) >= 0, f"prior_df must be >= 0, got {self.prior_df}"),
            (float(self.prior_variance) > 0, f"prior_variance must be > 0, got {self.prior_variance}"),
            (
                0 < float(self.target_acceptance) < 1,
                f"target_acceptance must be in (0, 1), got {self.target_acceptance}",
            ),
            (int(self.adapt_every) >= 1, f"adapt_every must be >= 1, got {self.adapt_every}"),
            (int(self.n_individual_draws) >= 1, f"n_individual_draws must be >= 1, got {self.n_individual_draws}"),
            (int(self.n_predict_draws) >= 1, f"n_predict_draws must be >= 1, got {self.n_predict_draws}"),
            (self.engine in ENGINES, f"unknown engine {self.engine!r}; use one of {ENGINES}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise C2MError(msg)
        if self.engine == "numba" and not hk.numba_available():
            raise C2MError("engine='numba' needs numba: pip install numba (or use engine='numpy')")
        kept = (int(self.n_iter) - int(self.burn_in)) // int(self.thin)
        if kept < 4:
            raise C2MError(
                f"n_iter - burn_in = {int(self.n_iter) - int(self.burn_in)} with thin={self.thin} keeps {kept} "
                "draws per chain; the convergence diagnostics need at least 4"
            )

    def _kernels(self) -> tuple[Callable[..., FloatArray], Callable[..., FloatArray]]:
        """(person log-likelihoods, Metropolis step) for the chosen engine."""
        use_numba = self.engine == "numba" or (self.engine == "auto" and hk.numba_available())
        self.engine_ = "numba" if use_numba else "numpy"
        if not use_numba:
            return hk.person_loglik_numpy, hk.metropolis_step_numpy
        parallel = bool(self.parallel)
        return (
            functools.partial(hk.person_loglik_numba, parallel=parallel),
            functools.partial(hk.metropolis_step_numba, parallel=parallel),
        )

    def _panel(self, data: ChoiceData) -> tuple[_Panel, IntArray]:
        order = np.argsort(data.person, kind="stable")
        p = data.person[order]
        N = int(p[-1]) + 1
        starts = np.searchsorted(p, np.arange(N + 1)).astype(np.intp)
        if np.any(np.diff(starts) == 0):
            raise C2MError("person index has gaps: every person code 0..n_persons-1 needs a task")
        X = np.ascontiguousarray(data.select(self.feature_names_)[order])
        panel = _Panel(
            X=X,
            avail=np.ascontiguousarray(data.avail[order]),
            chosen=np.ascontiguousarray(data.chosen[order], dtype=np.intp),
            starts=starts,
        )
        return panel, order

    # ------------------------------------------------------------------ fitting
    def fit(self, data: ChoiceData | Any, features: Sequence[str] | None = None, **long_kwargs: Any) -> Self:
        """Run the sampler; ``data`` is ChoiceData or a long table with ``features=``."""
        data = _as_data(data, features, long_kwargs)
        self._validate()
        self.__dict__.pop("coef_", None)  # a failed refit must not leave a half-updated model
        self.feature_names_ = list(data.feature_names)
        kernel, step = self._kernels()
        panel, _ = self._panel(data)
        ch = _sample(self, panel, kernel, step)
        self.b_draws_ = ch.b
        self.cov_draws_ = ch.W
        self.loglik_draws_ = ch.loglik
        self.individual_draws_ = ch.individual
        self.individual_coef_ = ch.beta_mean
        self.individual_sd_ = ch.beta_sd
        self.acceptance_rate_ = ch.acceptance
        self.rho_ = ch.rho
        self.person_ids_ = _person_ids(data)
        self.n_obs_ = data.n_tasks
        self.n_persons_ = int(panel.starts.size - 1)
        at_mean = kernel(self.individual_coef_[None], panel.X, panel.avail, panel.chosen, panel.starts)
        self.loglik_ = float(at_mean.sum())
        self.loglik_null_ = -float(np.log(data.avail.sum(axis=1)).sum())
        self._set_fit_stats()
        return self

    def _set_fit_stats(self) -> None:
        b, W = self.b_draws_, self.cov_draws_
        self.coef_sd_ = b.std(axis=(0, 1), ddof=1)
        self.ci_low_, self.ci_high_ = np.quantile(b, [0.025, 0.975], axis=(0, 1))
        self.cov_ = W.mean(axis=(0, 1))
        self.sd_ = np.sqrt(np.diag(self.cov_))
        self.rhat_, self.ess_ = summarise(b)
        K = b.shape[2]
        r, c = np.tril_indices(K)
        rl, el = summarise(W[:, :, r, c])
        self.rhat_cov_ = np.zeros((K, K))
        self.ess_cov_ = np.zeros((K, K))
        self.rhat_cov_[r, c] = self.rhat_cov_[c, r] = rl
        self.ess_cov_[r, c] = self.ess_cov_[c, r] = el
        self.rho2_ = 1.0 - self.loglik_ / self.loglik_null_ if self.loglik_null_ else float("nan")
        self.rlh_ = float(np.exp(self.loglik_ / self.n_obs_))
        self._pop_draws_ = self._population_draws()
        self.coef_ = b.mean(axis=(0, 1))

    def _population_draws(self) -> FloatArray:
        """``n_predict_draws`` coefficient vectors from the posterior predictive N(b, W) mixture."""
        C, S, K = self.b_draws_.shape
        R = int(self.n_predict_draws)
        idx = np.linspace(0, C * S - 1, R).round().astype(np.intp)
        b = self.b_draws_.reshape(C * S, K)[idx]
        L = np.linalg.cholesky(self.cov_draws_.reshape(C * S, K, K)[idx])
        z = np.random.default_rng(self.seed).standard_normal((R, K))
        return np.asarray(b + np.einsum("rij,rj->ri", L, z), dtype=np.float64)

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise C2MError("this HierarchicalBayesLogit is not fitted yet; call fit() first")

    # ------------------------------------------------------------------ prediction
    def _known_index(self, data: ChoiceData, persons: str) -> IntArray:
        """Fitted-person row for every task of ``data`` (-1: a new person)."""
        if persons not in PERSONS:
            raise C2MError(f"persons must be one of {PERSONS}, got {persons!r}")
        n = data.n_tasks
        if persons == "new":
            return np.full(n, -1, dtype=np.intp)
        ids = _person_ids(data)
        if ids is not None and self.person_ids_ is not None:
            lookup = {v: i for i, v in enumerate(self.person_ids_)}
            rows = np.array([lookup.get(v, -1) for v in ids], dtype=np.intp)[data.person]
            if persons == "fitted" and (rows < 0).any():
                t = int(np.flatnonzero(rows < 0)[0])
                raise C2MError(f"person of {data.describe_task(t)} was not in the fitted data (persons='fitted')")
            return rows
        if persons == "auto":
            return np.full(n, -1, dtype=np.intp)
        if int(data.person.max()) >= self.n_persons_:
            t = int(np.argmax(data.person))
            raise C2MError(
                f"person code {int(data.person[t])} of {data.describe_task(t)} is not a fitted person "
                f"(0..{self.n_persons_ - 1}) (persons='fitted')"
            )
        return data.person.astype(np.intp)

    def predict_proba(self, data: ChoiceData, persons: str = "auto") -> FloatArray:
        """Posterior-predictive choice probabilities (n_tasks, J).

        Tasks of fitted persons average the logit probabilities over that person's stored
        draws; tasks of new persons integrate over the upper level (draws of N(b, W) at
        kept draws of b and W). ``persons``: ``"auto"`` matches persons by the id column
        when both the fitted and this data have one (others are new), ``"fitted"`` requires
        every person to be a fitted one (by id, else by person code), ``"new"`` treats all
        persons as new.
        """
        self._check_fitted()
        if not isinstance(data, ChoiceData):
            raise C2MError("predict_proba expects ChoiceData; build it with ChoiceData.from_long(...)")
        rows = self._known_index(data, persons)
        X = data.select(self.feature_names_)
        P = np.zeros(data.avail.shape)
        known = rows >= 0
        if known.any():
            P[known] = _mean_proba(X[known], data.avail[known], self.individual_draws_[:, rows[known], :])
        if (~known).any():
            R = self._pop_draws_.shape[0]
            n_new = int((~known).sum())
            B = np.broadcast_to(self._pop_draws_[:, None, :], (R, n_new, len(self.feature_names_)))
            P[~known] = _mean_proba(X[~known], data.avail[~known], B)
        return P

    def predict_shares(self, X: Any, by: str = "persons") -> FloatArray:
        """Shares (J,) of one choice set X (J, K): mean over the fitted persons' draws
        (``by="persons"``, as a market simulator on the sample) or over the upper level
        (``by="population"``)."""
        self._check_fitted()
        K = len(self.feature_names_)
        Xa = np.asarray(X, dtype=np.float64)
        if Xa.ndim != 2 or Xa.shape[1] != K:
            raise C2MError(f"X must have shape (n_alternatives, {K}) with columns {self.feature_names_}")
        if by == "persons":
            B = self.individual_draws_.reshape(-1, K)
        elif by == "population":
            B = self._pop_draws_
        else:
            raise C2MError(f"by must be 'persons' or 'population', got {by!r}")
        V = B @ Xa.T
        E = np.exp(V - V.max(axis=1, keepdims=True))
        return np.asarray((E / E.sum(axis=1, keepdims=True)).mean(axis=0), dtype=np.float64)

    def hit_rate(self, data: ChoiceData, persons: str = "auto") -> float:
        """Weighted share of tasks whose most probable alternative (posterior predictive) was chosen."""
        P = self.predict_proba(data, persons)
        hits = (P.argmax(axis=1) == data.chosen).astype(np.float64)
        return float(data.weights @ hits / data.weights.sum())

    def share_mae(self, data: ChoiceData, persons: str = "auto") -> float:
        """Mean absolute error between predicted and observed shares per alternative slot."""
        P = self.predict_proba(data, persons)
        w = data.weights / data.weights.sum()
        observed = np.bincount(data.chosen, weights=w, minlength=P.shape[1])
        used = data.avail.any(axis=0)
        return float(np.mean(np.abs(w @ P - observed)[used]))

    def loglik(self, data: ChoiceData, persons: str = "auto") -> float:
        """Log-likelihood of ``data``'s choices under the posterior-predictive probabilities."""
        P = self.predict_proba(data, persons)
        return float(np.log(np.maximum(P[np.arange(data.n_tasks), data.chosen], 1e-300)).sum())

    # ------------------------------------------------------------------ inference
    def summary(self) -> pl.DataFrame:
        """Table per feature: posterior mean and sd of b, 95% credible interval, taste spread
        sqrt(W_kk), split R-hat and bulk ESS of b."""
        self._check_fitted()
        return pl.DataFrame(
            {
                "feature": list(self.feature_names_),
                "estimate": self.coef_,
                "std_err": self.coef_sd_,
                "ci_low": self.ci_low_,
                "ci_high": self.ci_high_,
                "sd": self.sd_,
                "rhat": self.rhat_,
                "ess": self.ess_,
            }
        )

    def summary_text(self) -> str:
        """Printable table with a header of sampler settings and fit statistics."""
        self._check_fitted()
        C, S, _ = self.b_draws_.shape
        acc = ", ".join(f"{a:.3f}" for a in self.acceptance_rate_)
        header = [
            ("Tasks", f"{self.n_obs_}"),
            ("Persons", f"{self.n_persons_}"),
            ("Chains x kept", f"{C} x {S}"),
            ("Iterations", f"{self.n_iter} ({self.burn_in} burn-in)"),
            ("Acceptance", acc),
            ("Max R-hat (b)", f"{np.nanmax(self.rhat_):.4f}"),
            ("Max R-hat (W)", f"{np.nanmax(self.rhat_cov_):.4f}"),
            ("Min ESS (b)", f"{np.nanmin(self.ess_):.0f}"),
            ("Log-likelihood", f"{self.loglik_:.3f}"),
            ("rho2", f"{self.rho2_:.4f}"),
            ("RLH", f"{self.rlh_:.4f}"),
            ("Prior", f"df +{self.prior_df:g}, var {self.prior_variance:g}"),
        ]
        title = "Hierarchical Bayes logit (posterior of the upper-level mean b)"
        lines = [title, "=" * len(title)]
        half = (len(header) + 1) // 2
        for i in range(half):
            a = f"{header[i][0]:<16}{header[i][1]:>16}"
            b = f"{header[half + i][0]:<16}{header[half + i][1]:>16}" if half + i < len(header) else ""
            lines.append(f"{a}    {b}".rstrip())
        width = max(len(f) for f in [*self.feature_names_, "feature"])
        cols = f"{'feature':<{width}} {'mean':>10} {'post_sd':>9} {'ci_low':>10} {'ci_high':>10} "
        cols += f"{'sd(W)':>9} {'rhat':>7} {'ess':>7}"
        lines += ["-" * len(cols), cols, "-" * len(cols)]
        for r in self.summary().iter_rows(named=True):
            lines.append(
                f"{r['feature']:<{width}} {r['estimate']:>10.4g} {r['std_err']:>9.3g} {r['ci_low']:>10.4g} "
                f"{r['ci_high']:>10.4g} {r['sd']:>9.3g} {r['rhat']:>7.3f} {r['ess']:>7.0f}"
            )
        lines += ["-" * len(cols), "ci: 95% credible interval; sd(W): sqrt of the posterior mean of W_kk"]
        return "\n".join(lines)

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fitted model, with the kept draws (W as lower triangles)."""
        self._check_fitted()
        K = len(self.feature_names_)
        r, c = np.tril_indices(K)
        return {
            "model": "HierarchicalBayesLogit",
            "version": 1,
            "features": list(self.feature_names_),
            "coef": self.coef_.tolist(),
            "cov": self.cov_.tolist(),
            "b_draws": self.b_draws_.tolist(),
            "cov_draws_tril": self.cov_draws_[:, :, r, c].tolist(),
            "loglik_draws": self.loglik_draws_.tolist(),
            "individual_draws": self.individual_draws_.tolist(),
            "individual_coef": self.individual_coef_.tolist(),
            "individual_sd": self.individual_sd_.tolist(),
            "person_ids": None if self.person_ids_ is None else _jsonable(self.person_ids_),
            "acceptance_rate": self.acceptance_rate_.tolist(),
            "rho": self.rho_.tolist(),
            "loglik": float(self.loglik_),
            "loglik_null": float(self.loglik_null_),
            "n_obs": int(self.n_obs_),
            "n_persons": int(self.n_persons_),
            "engine": self.engine_,
            "settings": {k: getattr(self, k) for k in _SETTINGS},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HierarchicalBayesLogit:
        """Rebuild a fitted model from :meth:`to_dict` output."""
        if d.get("model") not in ("HierarchicalBayesLogit", "hierarchical_bayes"):
            raise C2MError(f"expected a HierarchicalBayesLogit dictionary, got model {d.get('model')!r}")
        if d.get("version") != 1:
            raise C2MError(f"unsupported HierarchicalBayesLogit format version {d.get('version')!r}; expected 1")
        required = ["features", "b_draws", "cov_draws_tril", "individual_draws", "individual_coef", "loglik"]
        missing = [k for k in [*required, "loglik_null", "n_obs", "settings"] if k not in d]
        if missing:
            raise C2MError(f"HierarchicalBayesLogit dictionary lacks key(s) {missing}")
        settings = d["settings"]
        m = cls(**{k: settings[k] for k in settings if k in _SETTINGS})
        m.feature_names_ = list(d["features"])
        K = len(m.feature_names_)
        b = np.asarray(d["b_draws"], dtype=np.float64)
        if b.ndim != 3 or b.shape[2] != K or b.shape[1] < 4:
            raise C2MError(f"'b_draws' must have shape (n_chains, >= 4 draws, {K}), got {b.shape}")
        C, S = b.shape[:2]
        tril = _array(d["cov_draws_tril"], (C, S, K * (K + 1) // 2), "cov_draws_tril")
        r, c = np.tril_indices(K)
        W = np.zeros((C, S, K, K))
        W[:, :, r, c] = tril
        W[:, :, c, r] = tril
        ind = np.asarray(d["individual_draws"], dtype=np.float64)
        if ind.ndim != 3 or ind.shape[2] != K:
            raise C2MError(f"'individual_draws' must have shape (n_draws, n_persons, {K}), got {ind.shape}")
        N = ind.shape[1]
        m.b_draws_, m.cov_draws_, m.individual_draws_ = b, W, ind
        m.loglik_draws_ = _array(d.get("loglik_draws", np.full((C, S), np.nan).tolist()), (C, S), "loglik_draws")
        m.individual_coef_ = _array(d["individual_coef"], (N, K), "individual_coef")
        m.individual_sd_ = _array(d.get("individual_sd", np.zeros((N, K)).tolist()), (N, K), "individual_sd")
        ids = d.get("person_ids")
        if ids is not None and len(ids) != N:
            raise C2MError(f"'person_ids' has {len(ids)} ids for {N} persons")
        m.person_ids_ = None if ids is None else list(ids)
        m.acceptance_rate_ = np.asarray(d.get("acceptance_rate", [np.nan] * C), dtype=np.float64)
        m.rho_ = np.asarray(d.get("rho", [np.nan] * C), dtype=np.float64)
        m.loglik_ = float(d["loglik"])
        m.loglik_null_ = float(d["loglik_null"])
        m.n_obs_ = int(d["n_obs"])
        m.n_persons_ = int(d.get("n_persons") or N)
        m.engine_ = str(d.get("engine", "numpy"))
        try:
            m._set_fit_stats()
        except np.linalg.LinAlgError:
            raise C2MError("'cov_draws_tril' holds a matrix that is not positive definite") from None
        return m

    def __repr__(self) -> str:
        state = f"fitted, {len(self.coef_)} coefs" if hasattr(self, "coef_") else "not fitted"
        return f"HierarchicalBayesLogit({state})"


_SETTINGS = (
    "n_iter",
    "burn_in",
    "thin",
    "n_chains",
    "prior_df",
    "prior_variance",
    "target_acceptance",
    "adapt_every",
    "n_individual_draws",
    "n_predict_draws",
    "seed",
    "engine",
    "parallel",
)


def _person_ids(data: ChoiceData) -> list[Any] | None:
    """The id-column value of every person code, when the data came from a table with ids."""
    keys = data.task_keys
    if keys is None or keys.width != 2:
        return None
    first = np.unique(data.person, return_index=True)[1]
    return list(keys.get_column(keys.columns[0]).gather(first).to_list())


def _mean_proba(X: FloatArray, avail: BoolArray, B: Any) -> FloatArray:
    """Mean over the leading axis of B (D, T, K) of the logit probabilities of tasks X (T, J, K)."""
    D, T, K = B.shape
    J = X.shape[1]
    out = np.zeros((T, J))
    step = max(1, _CHUNK_CELLS // max(1, D * J * K))
    for lo in range(0, T, step):
        hi = min(T, lo + step)
        V = np.einsum("tjk,dtk->dtj", X[lo:hi], B[:, lo:hi, :])
        V = np.where(avail[None, lo:hi], V, -np.inf)
        E = np.exp(V - V.max(axis=2, keepdims=True))
        out[lo:hi] = (E / E.sum(axis=2, keepdims=True)).mean(axis=0)
    return out


def draw_inverse_wishart(df: float, scale: FloatArray, rng: np.random.Generator) -> FloatArray:
    """Draws of IW(df, scale) for a stack of scale matrices (C, K, K), by Bartlett's method.

    ``W^-1 ~ Wishart(df, scale^-1)``; with ``scale = U U'`` and the Bartlett factor A
    (``A A' ~ Wishart(df, I)``), ``W = (U A^-T)(U A^-T)'``. Mean: ``scale / (df - K - 1)``.
    """
    C, K, _ = scale.shape
    U = np.linalg.cholesky(scale)
    A = np.zeros((C, K, K))
    A[:, np.arange(K), np.arange(K)] = np.sqrt(rng.chisquare(df - np.arange(K), size=(C, K)))
    r, c = np.tril_indices(K, -1)
    A[:, r, c] = rng.standard_normal((C, r.size))
    M = U @ np.linalg.inv(A).transpose(0, 2, 1)
    return np.asarray(M @ M.transpose(0, 2, 1), dtype=np.float64)


def _sample(
    m: HierarchicalBayesLogit,
    panel: _Panel,
    kernel: Callable[..., FloatArray],
    metropolis: Callable[..., FloatArray],
) -> _Chains:
    """The Gibbs sampler, all chains and all persons vectorised."""
    rng = np.random.default_rng(m.seed)
    C, N, K = int(m.n_chains), panel.starts.size - 1, panel.X.shape[2]
    n_iter, burn_in, thin = int(m.n_iter), int(m.burn_in), int(m.thin)
    S = (n_iter - burn_in) // thin
    nu = K + float(m.prior_df) + N
    S0 = (K + float(m.prior_df)) * float(m.prior_variance) * np.eye(K)
    target = float(m.target_acceptance)
    # dispersed starts
    b = rng.standard_normal((C, K)) * np.sqrt(float(m.prior_variance))
    beta = b[:, None, :] + 0.1 * rng.standard_normal((C, N, K))
    W = np.repeat(float(m.prior_variance) * np.eye(K)[None], C, axis=0)
    rho = np.full(C, _START_RHO)
    ll = kernel(beta, panel.X, panel.avail, panel.chosen, panel.starts)
    # storage
    b_keep = np.empty((C, S, K))
    W_keep = np.empty((C, S, K, K))
    ll_keep = np.empty((C, S))
    per_chain = min(S, max(1, -(-int(m.n_individual_draws) // C)))
    ind_at = np.unique(np.linspace(0, S - 1, per_chain).round().astype(np.intp))
    ind_keep = np.empty((C, ind_at.size, N, K))
    beta_sum = np.zeros((N, K))
    beta_sq = np.zeros((N, K))
    accepted = np.zeros(C)
    window = np.zeros(C)
    adapt_every = int(m.adapt_every)
    sqrt_n = np.sqrt(N)
    for it in range(n_iter):
        # 1. b | W, beta
        Lw = np.linalg.cholesky(W)
        b = beta.mean(axis=1) + np.einsum("cij,cj->ci", Lw, rng.standard_normal((C, K))) / sqrt_n
        # 2. W | b, beta
        D = beta - b[:, None, :]
        W = draw_inverse_wishart(nu, S0 + D.transpose(0, 2, 1) @ D, rng)
        # 3. beta | b, W: one random-walk Metropolis step per person
        L = np.linalg.cholesky(W)
        Linv = np.linalg.inv(L)
        Z = rng.standard_normal((C, N, K))
        log_u = np.log(rng.random((C, N)))
        acc = metropolis(beta, ll, Z, rho, b, L, Linv, log_u, panel.X, panel.avail, panel.chosen, panel.starts)
        rate = acc.mean(axis=1)
        if it < burn_in:
            window += rate
            if (it + 1) % adapt_every == 0:
                rho *= np.exp(np.clip(2.0 * (window / adapt_every - target), -1.0, 1.0))
                window[:] = 0.0
            continue
        accepted += rate
        beta_sum += beta.sum(axis=0)
        beta_sq += (beta**2).sum(axis=0)
        j = it - burn_in + 1
        if j % thin == 0:
            s = j // thin - 1
            b_keep[:, s], W_keep[:, s], ll_keep[:, s] = b, W, ll.sum(axis=1)
            pos = np.searchsorted(ind_at, s)
            if pos < ind_at.size and ind_at[pos] == s:
                ind_keep[:, pos] = beta
    n_post = (n_iter - burn_in) * C
    mean = beta_sum / n_post
    var = np.maximum(beta_sq / n_post - mean**2, 0.0)
    return _Chains(
        b=b_keep,
        W=W_keep,
        loglik=ll_keep,
        individual=ind_keep.reshape(C * ind_at.size, N, K),
        beta_mean=mean,
        beta_sd=np.sqrt(var),
        acceptance=accepted / (n_iter - burn_in),
        rho=rho,
    )


register_model("HierarchicalBayesLogit", HierarchicalBayesLogit.from_dict)
register_model("hierarchical_bayes", HierarchicalBayesLogit.from_dict)
