"""Candidate products: every allowed non-price configuration x a price grid, as arrays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from c2m.domain import Attribute, FeatureCoder, Project, enumerate_profiles, is_prohibited
from c2m.errors import C2MError
from c2m.market import MarketSimulator, unit_economics


@dataclass
class Candidates:
    """``N`` configurations (every attribute but price) and ``G`` prices.

    A candidate is a pair ``(n, g)``; ``allowed[n, g]`` is false for prohibited
    pairs. ``fl_bits[n]`` flags the levels with a fixed cost that configuration
    ``n`` uses (bit ``l`` for ``fixed_levels[l]``); ``cover[n, r]`` is true when it
    has the ``r``-th must-include level.
    """

    configs: list[dict[str, str | float]]
    prices: np.ndarray  # (G,)
    price_name: str | None
    u0: np.ndarray  # (R, N) utility without the price term
    price_slope: np.ndarray  # (R,) utility per yuan
    cost: np.ndarray  # (N,)
    rent: np.ndarray  # (N,) rent per car (battery firm's revenue)
    allowed: np.ndarray  # (N, G) bool
    fixed_levels: list[tuple[str, str, float]]
    fl_bits: np.ndarray  # (N,) int64
    requirements: list[tuple[str, str]]
    cover: np.ndarray  # (N, q) bool

    @property
    def n_configs(self) -> int:
        return len(self.configs)

    def profile(self, n: int, g: int) -> dict[str, str | float]:
        out = dict(self.configs[n])
        if self.price_name is not None:
            out[self.price_name] = float(self.prices[g])
        return out

    def margins(self, objective: str, include_rent: bool) -> np.ndarray:
        """Money (or share) per unit sold of each candidate, ``(N, G)``."""
        rent = self.rent[:, None] if include_rent else 0.0
        if objective == "share":
            return np.ones((self.n_configs, self.prices.size))
        if objective == "revenue":
            return self.prices[None, :] + rent + np.zeros((self.n_configs, 1))
        return self.prices[None, :] - self.cost[:, None] + rent


def default_price_grid(project: Project, step: float = 2000.0) -> np.ndarray:
    """Every ``step`` yuan from the price attribute's smallest to its largest level."""
    attr = project.attribute_by_role("price")
    if attr is None:
        return np.zeros(1)
    lo, hi = attr.value_range
    grid = np.arange(lo, hi + 1e-9, step)
    if grid[-1] < hi - 1e-9:
        grid = np.append(grid, hi)
    return grid


def build_candidates(
    project: Project,
    sim: MarketSimulator,
    price_grid: Sequence[float] | None,
    must_include: Mapping[str, str] | None,
    must_exclude: Mapping[str, Sequence[str]] | None,
) -> Candidates:
    """Enumerate allowed configurations, code them, and cost them."""
    price_attr = project.attribute_by_role("price")
    price_name = price_attr.name if price_attr is not None else None
    prices = default_price_grid(project) if price_grid is None else np.asarray(price_grid, dtype=float)
    if prices.ndim != 1 or prices.size == 0 or not np.all(np.isfinite(prices)):
        raise C2MError("optimize: price_grid must be a non-empty list of numbers")
    prices = np.unique(prices)
    if price_attr is None:
        prices = np.zeros(1)
    else:
        lo, hi = price_attr.value_range
        if prices.min() < lo - 1e-9 or prices.max() > hi + 1e-9:
            import warnings

            from c2m.market import ExtrapolationWarning

            warnings.warn(
                f"optimize: price_grid goes outside the measured range [{lo:g}, {hi:g}]; "
                "utilities there are extrapolated",
                ExtrapolationWarning,
                stacklevel=3,
            )
    exclude = _check_exclude(project, must_exclude, price_name)
    requirements = _check_include(project, must_include, exclude, price_name)

    price_in_prohibitions = price_name is not None and any(
        price_name in p.levels for p in project.prohibitions
    )
    numeric_values = {price_name: [float(prices[0])]} if price_name else None
    raw = enumerate_profiles(project, numeric_values) if not price_in_prohibitions else [
        p for p in _enumerate_ignoring_price(project, price_name, float(prices[0]))
    ]
    configs = [
        {k: v for k, v in p.items() if k != price_name}
        for p in raw
        if not any(str(p[a]) in levels for a, levels in exclude.items())
    ]
    if not configs:
        raise C2MError("optimize: no allowed product configuration (check must_exclude and prohibitions)")
    n_cfg, n_g = len(configs), prices.size
    allowed = np.ones((n_cfg, n_g), dtype=bool)
    if price_in_prohibitions:
        for n, cfg in enumerate(configs):
            for g, price in enumerate(prices):
                allowed[n, g] = not is_prohibited(project, {**cfg, price_name: float(price)})  # type: ignore[dict-item]

    coder = FeatureCoder.from_project(project)
    full = [{**c, price_name: 0.0} if price_name else c for c in configs]
    X = coder.encode_many(full)
    U0 = sim.betas @ X.T  # (R, N) with the price term at zero
    if price_name is not None:
        j = coder.feature_names.index(price_name)
        slope = sim.betas[:, j] / price_attr.scale  # type: ignore[union-attr]
    else:
        slope = np.zeros(sim.betas.shape[0])
    costs = np.empty(n_cfg)
    rents = np.empty(n_cfg)
    for n, p in enumerate(full):
        ue = unit_economics(project, p)
        costs[n] = ue.unit_cost
        rents[n] = ue.rent_per_car
    fixed_levels = [
        (a.name, lv.name, float(lv.fixed_cost))
        for a in project.attributes
        if a.kind != "numeric"
        for lv in a.levels
        if lv.fixed_cost > 0
    ]
    bits = np.zeros(n_cfg, dtype=np.int64)
    for i, (attr_name, level_name, _) in enumerate(fixed_levels):
        has = np.array([str(c[attr_name]) == level_name for c in configs])
        bits |= has.astype(np.int64) << i
    cover = np.zeros((n_cfg, len(requirements)), dtype=bool)
    for r, (attr_name, level_name) in enumerate(requirements):
        cover[:, r] = [str(c[attr_name]) == level_name for c in configs]
        if not cover[:, r].any():
            raise C2MError(
                f"optimize: must_include {attr_name}={level_name} is impossible with the prohibitions "
                "and must_exclude"
            )
    return Candidates(configs, prices, price_name, U0, slope, costs, rents, allowed,
                      fixed_levels, bits, requirements, cover)


def _enumerate_ignoring_price(project: Project, price_name: str | None, price: float) -> list[dict[str, Any]]:
    """Configurations when prohibitions mention the price: check them per price later."""
    import itertools

    axes: list[list[Any]] = []
    for attribute in project.attributes:
        if attribute.name == price_name:
            axes.append([price])
        elif attribute.kind == "numeric":
            axes.append([float(lv.value) for lv in attribute.levels if lv.value is not None])
        else:
            axes.append(attribute.level_names)
    names = project.attribute_names
    out = []
    for combo in itertools.product(*axes):
        profile = dict(zip(names, combo, strict=True))
        non_price = [p for p in project.prohibitions if price_name not in p.levels]
        if not any(
            all(str(profile.get(a)) in ([lv] if isinstance(lv, str) else lv) for a, lv in p.levels.items())
            for p in non_price
        ):
            out.append(profile)
    return out


def _check_exclude(
    project: Project, must_exclude: Mapping[str, Sequence[str]] | None, price_name: str | None
) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for attr_name, levels in (must_exclude or {}).items():
        where = f"must_exclude.{attr_name}"
        attribute = _attribute(project, attr_name, where)
        if attribute.kind == "numeric":
            raise C2MError(f"{where}: numeric attributes cannot be excluded by level; use price_grid")
        names = [levels] if isinstance(levels, str) else [str(v) for v in levels]
        for level in names:
            if level not in attribute.level_names:
                raise C2MError(f"{where}: unknown level {level!r}; expected one of {attribute.level_names}")
        out[attr_name] = set(names)
    return out


def _check_include(
    project: Project,
    must_include: Mapping[str, str] | None,
    exclude: dict[str, set[str]],
    price_name: str | None,
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for attr_name, level in (must_include or {}).items():
        where = f"must_include.{attr_name}"
        attribute = _attribute(project, attr_name, where)
        if attribute.kind == "numeric":
            raise C2MError(f"{where}: numeric attributes cannot be required by level")
        levels = [level] if isinstance(level, str) else [str(v) for v in level]
        for lv in levels:
            if lv not in attribute.level_names:
                raise C2MError(f"{where}: unknown level {lv!r}; expected one of {attribute.level_names}")
            if lv in exclude.get(attr_name, set()):
                raise C2MError(f"{where}: level {lv!r} is also in must_exclude")
            out.append((attr_name, lv))
    return out


def _attribute(project: Project, name: str, where: str) -> Attribute:
    try:
        return project.attribute(name)
    except KeyError:
        raise C2MError(f"{where}: unknown attribute; expected one of {project.attribute_names}") from None
