"""Market simulator: our line against competitors and the None option under several share rules."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import polars as pl

from c2m.domain import FeatureCoder, Profile, Project, check_profile, fixed_cost, is_prohibited
from c2m.errors import C2MError

from ._economics import UnitEconomics, unit_economics
from ._rules import LevelMap, first_choice, rfc_noise

Rule = Literal["logit", "first_choice", "rfc", "likelihood"]
RULES = ("logit", "first_choice", "rfc", "likelihood")
RFC_CELLS = 4_000_000  # persons x draws x (products + levels) held at once by the RFC
SHARE_BLOCK_CELLS = 400_000  # persons x products per block of the point shares (~3 MB)
RFC_INTERVAL_CELLS = 5_000_000  # parameter draws x persons x RFC draws x (products + levels) for intervals


class ExtrapolationWarning(UserWarning):
    """A numeric attribute (price, range) set outside its measured levels' range."""


class MarketSimulator:
    """Simulates choice shares of a product line among competitors and the None option.

    Parameters
    ----------
    project : the project (attributes, competitors, None option, cities).
    coef : ``(F,)`` coefficients in ``FeatureCoder(project).feature_names`` order.
    vcov : ``(F, F)`` covariance of ``coef``; intervals come from ``n_draws`` parameter
        draws from ``N(coef, vcov)`` (Krinsky-Robb). Without it intervals are points.
    individual : ``(R, F)`` individual-level coefficients; shares are their weighted mean
        (``weights``, default equal). With ``vcov`` each draw shifts every individual by
        ``draw - coef``.
    rule : how utilities become shares (``"first-choice"`` is accepted for ``"first_choice"``):

        * ``"logit"``: share of preference, ``exp(scale u) / sum exp(scale u)`` per person;
        * ``"first_choice"``: each person buys their highest-utility product (ties split);
          ``scale`` does not matter;
        * ``"rfc"``: Sawtooth's randomized first choice: ``n_rfc_draws`` first choices per
          person on ``u + (product_variability e_p + attribute_variability e_a) / scale``
          with Gumbel errors ``e_p`` on each product and ``e_a`` on each level's part-worth
          (see ``c2m.market._rules``). Both variabilities zero is exactly first choice;
          product variability 1 and no attribute variability is the logit at ``scale``
          (in expectation);
        * ``"likelihood"``: purchase likelihood, each product alone against None:
          ``exp(scale u) / (exp(scale u) + exp(scale u_none))``. Likelihoods do not sum to
          1: ``shares`` reports them in ``likelihood`` columns (no None row) and every
          method that needs shares summing to 1 (volumes, economics, elasticities,
          cannibalisation, the optimiser) raises ``C2MError``. It needs the None option.
    scale : the exponent multiplying utilities (logit, RFC, likelihood); tune it to known
        market shares with ``tune_scale``.
    n_rfc_draws : RFC draws per person; default ``max(10, ceil(10000 / R))``. Intervals (with
        ``vcov``) use fewer per parameter draw, at least 10, so that parameter draws x
        persons x RFC draws x (products + levels) stays near 5 million.
    """

    def __init__(
        self,
        project: Project,
        coef: np.ndarray,
        vcov: np.ndarray | None = None,
        individual: np.ndarray | None = None,
        weights: np.ndarray | None = None,
        rule: Rule = "logit",
        n_draws: int = 200,
        seed: int = 0,
        scale: float = 1.0,
        n_rfc_draws: int | None = None,
        product_variability: float = 0.0,
        attribute_variability: float = 1.0,
    ) -> None:
        self.project = project
        self.coder = FeatureCoder.from_project(project)
        n_feat = self.coder.n_features
        names = self.coder.feature_names
        self.coef = np.asarray(coef, dtype=float).reshape(-1)
        if self.coef.shape != (n_feat,):
            raise C2MError(
                f"simulator: coef has {self.coef.size} values; the project has {n_feat} features {names}"
            )
        if not np.all(np.isfinite(self.coef)):
            raise C2MError("simulator: coef has non-finite values")
        rule = str(rule).replace("-", "_")  # type: ignore[assignment]
        if rule not in RULES:
            raise C2MError(f"simulator: unknown rule {rule!r}; expected one of {list(RULES)}")
        if rule == "likelihood" and not self.coder.with_none:
            raise C2MError("simulator: rule 'likelihood' needs the None option ([none_option] enabled = true)")
        self.rule: Rule = rule
        self.scale = scale
        for name, value in (("product_variability", product_variability),
                            ("attribute_variability", attribute_variability)):
            if not (np.isfinite(value) and value >= 0):
                raise C2MError(f"simulator: {name} must be a finite number >= 0, got {value!r}")
        self.product_variability = float(product_variability)
        self.attribute_variability = float(attribute_variability)
        self.vcov: np.ndarray | None = None
        if vcov is not None:
            vcov = np.asarray(vcov, dtype=float)
            if vcov.shape != (n_feat, n_feat):
                raise C2MError(f"simulator: vcov has shape {vcov.shape}; expected ({n_feat}, {n_feat})")
            self.vcov = vcov
        self.individual: np.ndarray | None = None
        if individual is not None:
            ind = np.asarray(individual, dtype=float)
            if ind.ndim != 2 or ind.shape[1] != n_feat or ind.shape[0] == 0:
                raise C2MError(
                    f"simulator: individual betas have shape {ind.shape}; expected (R, {n_feat})"
                )
            self.individual = ind
        n_people = 1 if self.individual is None else self.individual.shape[0]
        if weights is None:
            w = np.full(n_people, 1.0 / n_people)
        else:
            w = np.asarray(weights, dtype=float).reshape(-1)
            if w.shape != (n_people,) or np.any(w < 0) or w.sum() <= 0:
                raise C2MError(
                    f"simulator: weights must be {n_people} non-negative numbers with a positive sum"
                )
            w = w / w.sum()
        self.weights = w
        self.n_draws = int(n_draws)
        self.seed = seed
        if n_rfc_draws is None:
            n_rfc_draws = max(10, -(-10_000 // n_people))
        if int(n_rfc_draws) != n_rfc_draws or n_rfc_draws < 1:
            raise C2MError(f"simulator: n_rfc_draws must be a positive integer, got {n_rfc_draws!r}")
        self.n_rfc_draws = int(n_rfc_draws)
        self._betas = self.coef[None, :] if self.individual is None else self.individual
        self._draws = self._make_draws()
        self.levels = LevelMap(project)
        # competitors and None
        comps = [
            check_profile(project, c.profile, where=f"competitors[{i}].profile")
            for i, c in enumerate(project.competitors)
        ]
        for i, profile in enumerate(comps):
            self._warn_range(profile, f"competitors[{i}].profile")
        self.competitor_names = [c.name for c in project.competitors]
        self.competitor_profiles = comps
        rows = [self.coder.encode_many(comps)] if comps else [np.zeros((0, n_feat))]
        offsets = [np.array([c.asc for c in project.competitors], dtype=float)]
        if self.coder.with_none:
            rows.append(self.coder.none_row()[None, :])
            offsets.append(np.zeros(1))
        self._X_other = np.vstack(rows)
        self._asc_other = np.concatenate(offsets)
        none_levels = np.zeros((int(self.coder.with_none), self.levels.n_levels))
        self._A_other = np.vstack([self.levels.matrix(comps), none_levels])
        self._keys_other = LevelMap.other_keys(len(comps), self.coder.with_none)
        self.price_attribute = project.attribute_by_role("price")
        self.market_size = float(sum(c.market_size for c in project.cities))

    # ------------------------------------------------------------------ scale
    @property
    def scale(self) -> float:
        """Exponent on utilities (logit, RFC, likelihood); first choice ignores it."""
        return self._scale

    @scale.setter
    def scale(self, value: float) -> None:
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise C2MError(f"simulator: scale must be a number > 0, got {value!r}") from None
        if not (np.isfinite(value) and value > 0):
            raise C2MError(f"simulator: scale must be a finite number > 0, got {value!r}")
        self._scale = value

    @property
    def _utility_scale(self) -> float:
        return self._scale if self.rule in ("logit", "likelihood") else 1.0

    @property
    def betas(self) -> np.ndarray:
        """``(R, F)`` parameter sets on the rule's scale (times ``scale`` for logit and likelihood)."""
        return self._betas * self._utility_scale

    @property
    def draws(self) -> np.ndarray | None:
        """``(D, R, F)`` Krinsky-Robb parameter draws on the rule's scale, or None."""
        return None if self._draws is None else self._draws * self._utility_scale

    @property
    def sums_to_one(self) -> bool:
        """Whether the rule gives shares that sum to 1 (every rule but purchase likelihood)."""
        return self.rule != "likelihood"

    def _require_shares(self, where: str) -> None:
        if self.rule == "likelihood":
            raise C2MError(
                f"{where}: purchase likelihoods (rule 'likelihood') do not sum to 1 across products; "
                "use rule 'logit', 'first_choice' or 'rfc' for shares, volumes and line optimisation"
            )

    # ------------------------------------------------------------------ internals
    def _make_draws(self) -> np.ndarray | None:
        """Parameter sets for intervals: ``(D, R, F)`` or None without vcov."""
        if self.vcov is None or self.n_draws <= 0:
            return None
        rng = np.random.default_rng(self.seed)
        sym = (self.vcov + self.vcov.T) / 2
        vals, vecs = np.linalg.eigh(sym)
        root = vecs * np.sqrt(np.clip(vals, 0.0, None))
        shocks = rng.standard_normal((self.n_draws, self.coef.size)) @ root.T
        return self._betas[None, :, :] + shocks[:, None, :]

    def _warn_range(self, profile: Profile, where: str) -> None:
        for attribute in self.project.attributes:
            if attribute.kind != "numeric":
                continue
            value = float(profile[attribute.name])
            lo, hi = attribute.value_range
            if value < lo - 1e-9 or value > hi + 1e-9:
                warnings.warn(
                    f"{where}.{attribute.name} = {value:g} is outside the measured range "
                    f"[{lo:g}, {hi:g}]; its utility is extrapolated linearly",
                    ExtrapolationWarning,
                    stacklevel=4,
                )

    def _prepare(self, line: Sequence[Profile], check: bool = True) -> list[dict[str, str | float]]:
        if len(line) == 0:
            raise C2MError("simulator: the product line is empty; give at least one profile")
        out = []
        for i, profile in enumerate(line):
            where = f"line[{i}]"
            p = check_profile(self.project, profile, where=where)
            if check:
                self._warn_range(p, where)
                if is_prohibited(self.project, p):
                    warnings.warn(f"{where} is a prohibited combination of levels", UserWarning, stacklevel=3)
            out.append(p)
        return out

    def _names(self, line: Sequence[Profile], names: Sequence[str] | None) -> list[str]:
        if names is None:
            return [f"V{k + 1}" for k in range(len(line))]
        names = [str(n) for n in names]
        if len(names) != len(line):
            raise C2MError(f"simulator: {len(names)} names for {len(line)} products")
        clash = sorted(set(names) & {*self.competitor_names, "none"})
        if len(set(names)) != len(names) or clash:
            raise C2MError(f"simulator: product names must be unique and differ from competitors {clash}")
        return names

    def _alts(
        self, ours: Sequence[Profile], competitors: Sequence[Profile] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Features ``X``, offsets, RFC keys and level weights ``A`` of our products then the others."""
        n_feat = self.coder.n_features
        X_ours = self.coder.encode_many(list(ours)) if len(ours) else np.zeros((0, n_feat))
        A_ours = self.levels.matrix(list(ours)) if len(ours) else np.zeros((0, self.levels.n_levels))
        X_other, A_other = self._X_other, self._A_other
        if competitors is not None:
            extra = [self.coder.none_row()[None, :]] if self.coder.with_none else []
            X_other = np.vstack([self.coder.encode_many(list(competitors)), *extra])
            none_A = np.zeros((int(self.coder.with_none), self.levels.n_levels))
            A_other = np.vstack([self.levels.matrix(list(competitors)), none_A])
        X = np.vstack([X_ours, X_other])
        offset = np.concatenate([np.zeros(X_ours.shape[0]), self._asc_other])
        keys = np.concatenate([self.levels.line_keys(list(ours)), self._keys_other])
        return X, offset, keys, np.vstack([A_ours, A_other])

    def _probs(
        self, betas: np.ndarray, alts: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    ) -> np.ndarray:
        """Per-person probabilities ``(..., R, J)`` for unscaled parameter sets ``(..., R, F)``.

        Under ``likelihood`` the last axis has our products and the competitors only.
        """
        X, offset, keys, A = alts
        u = betas @ X.T
        u += offset
        return self._rule_probs(u, keys, A)

    def _rule_probs(self, u: np.ndarray, keys: np.ndarray, A: np.ndarray) -> np.ndarray:
        """Probabilities from unscaled utilities ``(..., R, J)``; the logit works in place on ``u``."""
        if self.rule == "logit":  # in place: one (..., R, J) array, not five
            u *= self._scale
            u -= u.max(axis=-1, keepdims=True)
            np.exp(u, out=u)
            u /= u.sum(axis=-1, keepdims=True)
            return u
        if self.rule == "likelihood":
            diff = self._scale * (u[..., :-1] - u[..., -1:])
            return 0.5 * (1.0 + np.tanh(diff / 2.0))  # exp(a) / (exp(a) + exp(b)), overflow-free
        if self.rule == "first_choice":
            return first_choice(u)
        if u.ndim == 2:
            return self._rfc_probs(u, keys, A, self.n_rfc_draws)
        # Krinsky-Robb parameter draws: fewer RFC draws each, to bound the work
        flat = u.reshape(-1, u.shape[-2], u.shape[-1])
        per = RFC_INTERVAL_CELLS // max(1, flat.shape[0] * flat.shape[1] * (flat.shape[2] + A.shape[1]))
        n_rfc = max(10, min(self.n_rfc_draws, per))
        out = np.stack([self._rfc_probs(block, keys, A, n_rfc) for block in flat])
        return out.reshape(u.shape)

    def _rfc_probs(self, u: np.ndarray, keys: np.ndarray, A: np.ndarray, D: int) -> np.ndarray:
        """RFC probabilities ``(R, J)`` of utilities ``(R, J)``: mean of first choices over ``D`` draws."""
        R, J = u.shape
        if self.product_variability == 0 and self.attribute_variability == 0:
            return first_choice(u)
        out = np.empty((R, J))
        chunk = max(1, RFC_CELLS // (D * (J + A.shape[1])))
        for start in range(0, R, chunk):
            persons = np.arange(start, min(start + chunk, R))
            noise = self.rfc_noise(persons, keys, A, D)
            out[persons] = first_choice(u[persons, None, :] + noise).mean(axis=1)
        return out

    def rfc_noise(self, persons: np.ndarray, keys: np.ndarray, A: np.ndarray, n_draws: int | None = None) -> np.ndarray:
        """RFC errors ``(P, D, J)`` in utility units (divided by ``scale``) for products ``keys``/``A``."""
        D = self.n_rfc_draws if n_draws is None else n_draws
        noise = rfc_noise(persons, D, keys, A, self.product_variability,
                          self.attribute_variability, self.seed)
        return noise / self._scale

    def _shares_arrays(self, ours: Sequence[Profile]) -> tuple[np.ndarray, np.ndarray | None]:
        """Point shares ``(J,)`` and draws ``(D, J)`` (None without vcov)."""
        alts = self._alts(ours)
        point = self._point_shares(alts)
        draws = None
        if self._draws is not None:
            draws = np.einsum("r,drj->dj", self.weights, self._probs(self._draws, alts))
        return point, draws

    def _point_shares(self, alts: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        """``weights @ probs``: utilities in one matrix product, then the rule over blocks of
        persons that stay in cache (many small products would pay BLAS's threading each time).

        Not blocked under RFC, whose errors are keyed by the person's index in ``self._betas``.
        """
        R = self._betas.shape[0]
        block = max(1, SHARE_BLOCK_CELLS // max(1, alts[0].shape[0]))
        if self.rule == "rfc" or block >= R:
            return self.weights @ self._probs(self._betas, alts)
        X, offset, keys, A = alts
        u = self._betas @ X.T
        u += offset
        parts = [self.weights[s : s + block] @ self._rule_probs(u[s : s + block], keys, A)
                 for s in range(0, R, block)]
        return np.sum(parts, axis=0)

    def _other_rows(self) -> list[tuple[str, str]]:
        rows = [(n, "competitor") for n in self.competitor_names]
        if self.coder.with_none:
            rows.append(("none", "none"))
        return rows

    @staticmethod
    def _interval(point: np.ndarray, draws: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if draws is None:
            return point.copy(), point.copy()
        lo, hi = np.percentile(draws, [2.5, 97.5], axis=0)
        return np.minimum(lo, point), np.maximum(hi, point)

    # ------------------------------------------------------------------ public API
    def utilities(self, profiles: Sequence[Profile]) -> np.ndarray:
        """Deterministic utilities on the rule's scale (see ``betas``): ``(n,)`` under ``coef``,
        or ``(R, n)`` with individual betas."""
        prepared = [check_profile(self.project, p, where=f"profiles[{i}]") for i, p in enumerate(profiles)]
        X = self.coder.encode_many(prepared)
        if self.individual is None:
            return X @ self.coef * self._utility_scale
        return self.betas @ X.T

    def other_utilities(self) -> np.ndarray:
        """Utilities ``(R, J)`` of the competitors (with their ASC) then None, on the rule's scale."""
        return (self._betas @ self._X_other.T + self._asc_other) * self._utility_scale

    def unit_economics(self, profile: Profile, include_rent: bool = False) -> UnitEconomics:
        """Price, unit cost, rent per car and margin of one profile."""
        return unit_economics(self.project, check_profile(self.project, profile), include_rent)

    def shares(self, line: Sequence[Profile], names: Sequence[str] | None = None) -> pl.DataFrame:
        """Shares of our products, the competitors and None (they sum to 1), with 95% intervals.

        Under the ``likelihood`` rule the columns are ``likelihood``, ``likelihood_low`` and
        ``likelihood_high`` instead: each product's purchase likelihood against None (our
        products and the competitors, no None row); they do not sum to 1.
        """
        prepared = self._prepare(line)
        labels = self._names(prepared, names)
        point, draws = self._shares_arrays(prepared)
        lo, hi = self._interval(point, draws)
        rows = [(n, "ours") for n in labels] + self._other_rows()
        col = "share"
        if self.rule == "likelihood":
            rows = rows[:-1]
            col = "likelihood"
        return pl.DataFrame(
            {
                "product": [r[0] for r in rows],
                "kind": [r[1] for r in rows],
                col: point,
                f"{col}_low": lo,
                f"{col}_high": hi,
            },
            schema={"product": pl.String, "kind": pl.String, col: pl.Float64,
                    f"{col}_low": pl.Float64, f"{col}_high": pl.Float64},
        )

    def tune_scale(
        self,
        observed_shares: Mapping[str, float],
        line: Sequence[Profile] = (),
        names: Sequence[str] | None = None,
        loss: Literal["kl", "squared"] = "kl",
        bounds: tuple[float, float] = (1e-3, 1e3),
    ) -> float:
        """The ``scale`` whose simulated shares best match known market shares; sets and returns it.

        ``observed_shares`` maps product names (competitors, ``"none"``, and the products of
        ``line`` if given, named by ``names``) to their known shares, at least two of them.
        Simulated and observed shares are compared on those products only, both
        renormalised to sum to 1 there: ``loss="kl"`` minimises ``KL(observed || simulated)``,
        ``"squared"`` the sum of squared differences. The search is a grid over
        ``log(scale)`` in ``bounds`` refined by Brent's method. Only the logit and RFC
        rules depend on the scale.
        """
        if self.rule not in ("logit", "rfc"):
            raise C2MError(f"tune_scale: the {self.rule!r} rule does not use a scale to match shares; "
                           "use rule 'logit' or 'rfc'")
        if loss not in ("kl", "squared"):
            raise C2MError(f"tune_scale: loss must be 'kl' or 'squared', got {loss!r}")
        lo_b, hi_b = (float(b) for b in bounds)
        if not (0 < lo_b < hi_b and np.isfinite(hi_b)):
            raise C2MError(f"tune_scale: bounds must be 0 < low < high, got {bounds!r}")
        prepared = self._prepare(line, check=False) if len(line) else []
        labels = self._names(prepared, names) if prepared else []
        all_names = labels + [r[0] for r in self._other_rows()]
        if not isinstance(observed_shares, Mapping) or len(observed_shares) < 2:
            raise C2MError("tune_scale: observed_shares must map at least two product names to shares")
        idx, obs = [], []
        for name, value in observed_shares.items():
            if name not in all_names:
                raise C2MError(f"tune_scale: observed_shares[{name!r}] names no product; expected one of {all_names}")
            try:
                v = float(value)
            except (TypeError, ValueError):
                raise C2MError(f"tune_scale: observed_shares[{name!r}] must be a number, got {value!r}") from None
            if not (np.isfinite(v) and 0 <= v <= 1):
                raise C2MError(f"tune_scale: observed_shares[{name!r}] must be in [0, 1], got {value!r}")
            idx.append(all_names.index(name))
            obs.append(v)
        target = np.array(obs)
        if target.sum() <= 0:
            raise C2MError("tune_scale: observed_shares are all zero")
        target = target / target.sum()
        alts = self._alts(prepared)
        original = self._scale

        def objective(log_scale: float) -> float:
            self._scale = float(np.exp(log_scale))
            sim = (self.weights @ self._probs(self._betas, alts))[idx]
            total = sim.sum()
            sim = sim / total if total > 0 else np.full(sim.size, 1.0 / sim.size)
            if loss == "squared":
                return float(((sim - target) ** 2).sum())
            pos = target > 0
            return float((target[pos] * np.log(target[pos] / np.maximum(sim[pos], 1e-300))).sum())

        from scipy.optimize import minimize_scalar

        try:
            grid = np.linspace(np.log(lo_b), np.log(hi_b), 41)
            values = np.array([objective(g) for g in grid])
            best = int(np.argmin(values))
            a, b = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
            result = minimize_scalar(objective, bounds=(a, b), method="bounded", options={"xatol": 1e-8})
            x = float(result.x) if result.fun <= values[best] else float(grid[best])
        finally:
            self._scale = original
        self.scale = float(np.exp(x))
        return self.scale

    def volumes(self, line: Sequence[Profile], names: Sequence[str] | None = None) -> pl.DataFrame:
        """Annual volume per variant and city: share x the city's market size, with intervals."""
        if not self.project.cities:
            raise C2MError("simulator: the project has no [[cities]] with a market_size; cannot size volumes")
        self._require_shares("volumes")
        prepared = self._prepare(line)
        labels = self._names(prepared, names)
        point, draws = self._shares_arrays(prepared)
        lo, hi = self._interval(point, draws)
        k = len(prepared)
        variant, city, vol, vol_lo, vol_hi = [], [], [], [], []
        for j in range(k):
            for c in self.project.cities:
                variant.append(labels[j])
                city.append(c.name)
                vol.append(point[j] * c.market_size)
                vol_lo.append(lo[j] * c.market_size)
                vol_hi.append(hi[j] * c.market_size)
        return pl.DataFrame(
            {"variant": variant, "city": city, "annual_volume": vol,
             "annual_volume_low": vol_lo, "annual_volume_high": vol_hi},
            schema={"variant": pl.String, "city": pl.String, "annual_volume": pl.Float64,
                    "annual_volume_low": pl.Float64, "annual_volume_high": pl.Float64},
        )

    def line_economics(
        self,
        line: Sequence[Profile],
        names: Sequence[str] | None = None,
        years: float = 4.0,
        include_rent: bool = False,
    ) -> dict[str, Any]:
        """Per-variant and line totals: price, unit cost, margin, rent, volume, revenue, profit.

        ``profit = sum(volume x unit_margin) - fixed_cost(project, line) / years``; the
        battery rent (monthly fee x months of rent per rented car) is the battery firm's
        revenue, reported as ``rent_revenue`` and counted in margin, revenue and profit
        only when ``include_rent`` is true.
        """
        self._require_shares("line_economics")
        if years <= 0:
            raise C2MError(f"line_economics: years must be > 0, got {years}")
        prepared = self._prepare(line)
        labels = self._names(prepared, names)
        point, draws = self._shares_arrays(prepared)
        lo, hi = self._interval(point, draws)
        size = self.market_size
        variants: list[dict[str, Any]] = []
        for j, profile in enumerate(prepared):
            ue = unit_economics(self.project, profile, include_rent)
            volume = float(point[j] * size)
            revenue = volume * (ue.price + (ue.rent_per_car if include_rent else 0.0))
            variants.append({
                "name": labels[j], "profile": profile, "price": ue.price, "unit_cost": ue.unit_cost,
                "unit_margin": ue.margin, "rent_plan": ue.rent_plan, "rent_per_car": ue.rent_per_car,
                "share": float(point[j]), "share_low": float(lo[j]), "share_high": float(hi[j]),
                "annual_volume": volume, "annual_volume_low": float(lo[j] * size),
                "annual_volume_high": float(hi[j] * size), "revenue": revenue,
                "rent_revenue": volume * ue.rent_per_car, "contribution": volume * ue.margin,
            })
        k = len(prepared)
        fixed = fixed_cost(self.project, prepared)
        line_share = float(point[:k].sum())
        line_lo, line_hi = self._interval(
            np.array([line_share]), None if draws is None else draws[:, :k].sum(axis=1, keepdims=True)
        )
        contribution = sum(v["contribution"] for v in variants)
        totals = {
            "share": line_share, "share_low": float(line_lo[0]), "share_high": float(line_hi[0]),
            "annual_volume": line_share * size, "revenue": sum(v["revenue"] for v in variants),
            "rent_revenue": sum(v["rent_revenue"] for v in variants), "contribution": contribution,
            "fixed_cost": fixed, "fixed_cost_per_year": fixed / years,
            "profit": contribution - fixed / years, "years": years, "include_rent": include_rent,
        }
        return {"variants": variants, "line": totals}

    def demand_curve(
        self,
        product: Profile,
        prices: Sequence[float],
        others: Sequence[Profile] = (),
        years: float = 4.0,
        include_rent: bool = False,
    ) -> pl.DataFrame:
        """Share, volume, revenue and profit of ``product`` at each price, other products fixed.

        ``others`` are our other variants kept in the market (competitors always are);
        profit is the product's contribution minus its own fixed cost / ``years``.
        """
        self._require_shares("demand_curve")
        attr = self._require_price()
        base = self._prepare([product])[0]
        rest = self._prepare(others) if others else []
        prices = [float(p) for p in prices]
        lo, hi = attr.value_range
        if any(p < lo - 1e-9 or p > hi + 1e-9 for p in prices):
            warnings.warn(
                f"demand_curve: prices outside the measured range [{lo:g}, {hi:g}] are extrapolated",
                ExtrapolationWarning,
                stacklevel=2,
            )
        fixed = fixed_cost(self.project, [base]) / years
        rows: dict[str, list[float]] = {k: [] for k in ("price", "share", "volume", "revenue", "profit")}
        for price in prices:
            profile = {**base, attr.name: price}
            point, _ = self._shares_arrays([profile, *rest])
            ue = unit_economics(self.project, profile, include_rent)
            volume = float(point[0] * self.market_size)
            rows["price"].append(price)
            rows["share"].append(float(point[0]))
            rows["volume"].append(volume)
            rows["revenue"].append(volume * (price + (ue.rent_per_car if include_rent else 0.0)))
            rows["profit"].append(volume * ue.margin - fixed)
        return pl.DataFrame(rows, schema={k: pl.Float64 for k in rows})

    def price_elasticity(
        self,
        line: Sequence[Profile],
        names: Sequence[str] | None = None,
        kind: Literal["point", "arc"] = "point",
        step: float = 0.01,
    ) -> pl.DataFrame:
        """Own and cross price elasticities: row ``product``'s share w.r.t. each column's price.

        Columns are our variants and the competitors (every product with a price).
        ``point`` elasticities are analytic under the logit rule; ``arc`` elasticities
        (and every first-choice elasticity) use prices ``x (1 +/- step)``.
        """
        self._require_shares("price_elasticity")
        attr = self._require_price()
        prepared = self._prepare(line)
        labels = self._names(prepared, names)
        k = len(prepared)
        products = prepared + list(self.competitor_profiles)
        col_names = labels + self.competitor_names
        row_kinds = [(n, "ours") for n in labels] + self._other_rows()
        n_alt = len(row_kinds)
        prices = np.array([float(p[attr.name]) for p in products])
        point, _ = self._shares_arrays(prepared)
        E = np.zeros((n_alt, len(products)))
        if kind == "point" and self.rule == "logit":
            probs = self._probs(self._betas, self._alts(prepared))  # (R, J)
            slope = self.betas[:, self.coder.feature_names.index(attr.name)] / attr.scale  # (R,), scaled
            for j in range(len(products)):
                # d s_i / d p_j = sum_r w_r b_r s_ri (delta_ij - s_rj)
                delta = np.zeros(n_alt)
                delta[j] = 1.0
                deriv = self.weights @ (slope[:, None] * probs * (delta[None, :] - probs[:, [j]]))
                E[:, j] = deriv * prices[j] / np.where(point > 0, point, np.nan)
        elif kind in ("point", "arc"):
            for j in range(len(products)):
                s = []
                for sign in (1.0, -1.0):
                    changed = [dict(p) for p in products]
                    changed[j][attr.name] = prices[j] * (1.0 + sign * step)
                    if j >= k:  # a competitor's price: re-code the competitor rows
                        s.append(self._shares_with_competitors(changed[:k], changed[k:]))
                    else:
                        s.append(self._shares_arrays(changed[:k])[0])
                up, down = s
                ds = (up - down) / np.where(up + down > 0, up + down, np.nan)
                E[:, j] = ds / ((2 * step) / 2.0)
        else:
            raise C2MError(f"price_elasticity: kind must be 'point' or 'arc', got {kind!r}")
        data: dict[str, Any] = {
            "product": [r[0] for r in row_kinds],
            "kind": [r[1] for r in row_kinds],
        }
        for j, name in enumerate(col_names):
            data[name] = E[:, j]
        return pl.DataFrame(data)

    def _shares_with_competitors(self, ours: list[dict[str, Any]], competitors: list[dict[str, Any]]) -> np.ndarray:
        return self.weights @ self._probs(self._betas, self._alts(ours, competitors))

    def cannibalisation(self, line: Sequence[Profile], names: Sequence[str] | None = None) -> pl.DataFrame:
        """For each variant, the share it takes from every other product (vs the line without it).

        ``taken = share_without - share_with``; ``fraction`` is ``taken`` over the
        variant's own share (where its buyers come from; the fractions sum to 1).
        """
        self._require_shares("cannibalisation")
        prepared = self._prepare(line)
        labels = self._names(prepared, names)
        full, _ = self._shares_arrays(prepared)
        rows_all = [(n, "ours") for n in labels] + self._other_rows()
        out: dict[str, list[Any]] = {k: [] for k in (
            "variant", "product", "kind", "share_without", "share_with", "taken", "fraction")}
        for v in range(len(prepared)):
            keep = [j for j in range(len(prepared)) if j != v]
            without = np.zeros_like(full)
            if keep:
                part, _ = self._shares_arrays([prepared[j] for j in keep])
                idx = keep + list(range(len(prepared), len(full)))
                without[idx] = part
            else:
                without[len(prepared):] = self.weights @ self._probs(self._betas, self._alts([]))
            for j, (name, kind) in enumerate(rows_all):
                if j == v:
                    continue
                taken = float(without[j] - full[j])
                out["variant"].append(labels[v])
                out["product"].append(name)
                out["kind"].append(kind)
                out["share_without"].append(float(without[j]))
                out["share_with"].append(float(full[j]))
                out["taken"].append(taken)
                out["fraction"].append(taken / full[v] if full[v] > 0 else float("nan"))
        return pl.DataFrame(out)

    def sensitivity(self, base_product: Profile, others: Sequence[Profile] = ()) -> pl.DataFrame:
        """Tornado table: the base product's share when it takes each level of each attribute.

        Other products (``others`` and the competitors) stay fixed; prohibited
        combinations get a null share. Numeric attributes take their levels' values.
        """
        self._require_shares("sensitivity")
        base = self._prepare([base_product])[0]
        rest = self._prepare(others) if others else []
        base_share = float(self._shares_arrays([base, *rest])[0][0])
        out: dict[str, list[Any]] = {k: [] for k in (
            "attribute", "level", "share", "share_change", "is_base", "prohibited")}
        for attribute in self.project.attributes:
            for level in attribute.levels:
                value: str | float = float(level.value) if attribute.kind == "numeric" else level.name  # type: ignore[arg-type]
                profile = {**base, attribute.name: value}
                prohibited = is_prohibited(self.project, profile)
                share: float | None = None
                if not prohibited:
                    share = float(self._shares_arrays([profile, *rest])[0][0])
                out["attribute"].append(attribute.name)
                out["level"].append(level.name)
                out["share"].append(share)
                out["share_change"].append(None if share is None else share - base_share)
                out["is_base"].append(base[attribute.name] == value)
                out["prohibited"].append(prohibited)
        return pl.DataFrame(out, schema={
            "attribute": pl.String, "level": pl.String, "share": pl.Float64,
            "share_change": pl.Float64, "is_base": pl.Boolean, "prohibited": pl.Boolean})

    def _require_price(self) -> Any:
        if self.price_attribute is None:
            raise C2MError("simulator: the project has no attribute with role = 'price'")
        return self.price_attribute
