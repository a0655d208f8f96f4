"""Share-of-preference market simulator: our line against competitors and the None option."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import polars as pl

from c2m.domain import FeatureCoder, Profile, Project, check_profile, fixed_cost, is_prohibited
from c2m.errors import C2MError

from ._economics import UnitEconomics, unit_economics

Rule = Literal["logit", "first_choice"]


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
    rule : ``"logit"`` (share of preference) or ``"first_choice"``.
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
        if rule not in ("logit", "first_choice"):
            raise C2MError(f"simulator: unknown rule {rule!r}; expected 'logit' or 'first_choice'")
        self.rule: Rule = rule
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
        self.betas = self.coef[None, :] if self.individual is None else self.individual
        self.draws = self._make_draws()
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
        self.price_attribute = project.attribute_by_role("price")
        self.market_size = float(sum(c.market_size for c in project.cities))

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
        return self.betas[None, :, :] + shocks[:, None, :]

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

    def _alt_matrix(self, X_ours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = np.vstack([X_ours, self._X_other])
        offset = np.concatenate([np.zeros(X_ours.shape[0]), self._asc_other])
        return X, offset

    def _probs(self, betas: np.ndarray, X: np.ndarray, offset: np.ndarray) -> np.ndarray:
        """Choice probabilities ``(..., R, J)`` for parameter sets ``(..., R, F)``."""
        u = betas @ X.T + offset
        if self.rule == "logit":
            u = u - u.max(axis=-1, keepdims=True)
            e = np.exp(u)
            return e / e.sum(axis=-1, keepdims=True)
        best = u >= u.max(axis=-1, keepdims=True) - 1e-12
        return best / best.sum(axis=-1, keepdims=True)

    def _shares_arrays(self, X_ours: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Point shares ``(J,)`` and draws ``(D, J)`` (None without vcov)."""
        X, offset = self._alt_matrix(X_ours)
        point = self.weights @ self._probs(self.betas, X, offset)
        draws = None
        if self.draws is not None:
            draws = np.einsum("r,drj->dj", self.weights, self._probs(self.draws, X, offset))
        return point, draws

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
        """Deterministic utilities: ``(n,)`` under ``coef``, or ``(R, n)`` with individual betas."""
        prepared = [check_profile(self.project, p, where=f"profiles[{i}]") for i, p in enumerate(profiles)]
        X = self.coder.encode_many(prepared)
        if self.individual is None:
            return X @ self.coef
        return self.individual @ X.T

    def other_utilities(self) -> np.ndarray:
        """Utilities ``(R, J)`` of the competitors (with their ASC) then None, per parameter set."""
        return self.betas @ self._X_other.T + self._asc_other

    def unit_economics(self, profile: Profile, include_rent: bool = False) -> UnitEconomics:
        """Price, unit cost, rent per car and margin of one profile."""
        return unit_economics(self.project, check_profile(self.project, profile), include_rent)

    def shares(self, line: Sequence[Profile], names: Sequence[str] | None = None) -> pl.DataFrame:
        """Shares of our products, the competitors and None (they sum to 1), with 95% intervals."""
        prepared = self._prepare(line)
        labels = self._names(prepared, names)
        point, draws = self._shares_arrays(self.coder.encode_many(prepared))
        lo, hi = self._interval(point, draws)
        rows = [(n, "ours") for n in labels] + self._other_rows()
        return pl.DataFrame(
            {
                "product": [r[0] for r in rows],
                "kind": [r[1] for r in rows],
                "share": point,
                "share_low": lo,
                "share_high": hi,
            },
            schema={"product": pl.String, "kind": pl.String, "share": pl.Float64,
                    "share_low": pl.Float64, "share_high": pl.Float64},
        )

    def volumes(self, line: Sequence[Profile], names: Sequence[str] | None = None) -> pl.DataFrame:
        """Annual volume per variant and city: share x the city's market size, with intervals."""
        if not self.project.cities:
            raise C2MError("simulator: the project has no [[cities]] with a market_size; cannot size volumes")
        prepared = self._prepare(line)
        labels = self._names(prepared, names)
        point, draws = self._shares_arrays(self.coder.encode_many(prepared))
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
        if years <= 0:
            raise C2MError(f"line_economics: years must be > 0, got {years}")
        prepared = self._prepare(line)
        labels = self._names(prepared, names)
        point, draws = self._shares_arrays(self.coder.encode_many(prepared))
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
        X_rest = self.coder.encode_many(rest) if rest else np.zeros((0, self.coder.n_features))
        for price in prices:
            profile = {**base, attr.name: price}
            X = np.vstack([self.coder.encode(profile)[None, :], X_rest])
            point, _ = self._shares_arrays(X)
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
        attr = self._require_price()
        prepared = self._prepare(line)
        labels = self._names(prepared, names)
        k = len(prepared)
        products = prepared + list(self.competitor_profiles)
        col_names = labels + self.competitor_names
        row_kinds = [(n, "ours") for n in labels] + self._other_rows()
        n_alt = len(row_kinds)
        prices = np.array([float(p[attr.name]) for p in products])
        X_ours = self.coder.encode_many(prepared)
        point, _ = self._shares_arrays(X_ours)
        E = np.zeros((n_alt, len(products)))
        if kind == "point" and self.rule == "logit":
            X, offset = self._alt_matrix(X_ours)
            probs = self._probs(self.betas, X, offset)  # (R, J)
            slope = self.betas[:, self.coder.feature_names.index(attr.name)] / attr.scale  # (R,)
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
                    X = self.coder.encode_many(changed[:k])
                    if j >= k:  # a competitor's price: re-code the competitor rows
                        s.append(self._shares_with_competitors(X, changed[k:]))
                    else:
                        s.append(self._shares_arrays(X)[0])
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

    def _shares_with_competitors(self, X_ours: np.ndarray, competitors: list[dict[str, Any]]) -> np.ndarray:
        rows = [X_ours, self.coder.encode_many(competitors)]
        if self.coder.with_none:
            rows.append(self.coder.none_row()[None, :])
        X = np.vstack(rows)
        offset = np.concatenate([np.zeros(X_ours.shape[0]), self._asc_other])
        return self.weights @ self._probs(self.betas, X, offset)

    def cannibalisation(self, line: Sequence[Profile], names: Sequence[str] | None = None) -> pl.DataFrame:
        """For each variant, the share it takes from every other product (vs the line without it).

        ``taken = share_without - share_with``; ``fraction`` is ``taken`` over the
        variant's own share (where its buyers come from; the fractions sum to 1).
        """
        prepared = self._prepare(line)
        labels = self._names(prepared, names)
        X = self.coder.encode_many(prepared)
        full, _ = self._shares_arrays(X)
        rows_all = [(n, "ours") for n in labels] + self._other_rows()
        out: dict[str, list[Any]] = {k: [] for k in (
            "variant", "product", "kind", "share_without", "share_with", "taken", "fraction")}
        for v in range(len(prepared)):
            keep = [j for j in range(len(prepared)) if j != v]
            without = np.zeros_like(full)
            if keep:
                part, _ = self._shares_arrays(X[keep])
                idx = keep + list(range(len(prepared), len(full)))
                without[idx] = part
            else:
                X_other, offset = self._X_other, self._asc_other
                without[len(prepared):] = self.weights @ self._probs(self.betas, X_other, offset)
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
        base = self._prepare([base_product])[0]
        rest = self._prepare(others) if others else []
        X_rest = self.coder.encode_many(rest) if rest else np.zeros((0, self.coder.n_features))
        base_share = float(self._shares_arrays(np.vstack([self.coder.encode(base)[None, :], X_rest]))[0][0])
        out: dict[str, list[Any]] = {k: [] for k in (
            "attribute", "level", "share", "share_change", "is_base", "prohibited")}
        for attribute in self.project.attributes:
            for level in attribute.levels:
                value: str | float = float(level.value) if attribute.kind == "numeric" else level.name  # type: ignore[arg-type]
                profile = {**base, attribute.name: value}
                prohibited = is_prohibited(self.project, profile)
                share: float | None = None
                if not prohibited:
                    X = np.vstack([self.coder.encode(profile)[None, :], X_rest])
                    share = float(self._shares_arrays(X)[0][0])
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
