"""The hidden "true" preferences of the synthetic population (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from c2m.domain import FeatureCoder, Level, Project

from ._population import Population

SEGMENTS = ("budget", "trend", "long_distance", "swap_convenience")
"""Latent classes: 0 budget practical, 1 young trend, 2 long distance, 3 swap convenience."""

KM_REF = 35.0
KM_LOG_SD = 0.6
PRICE_SPAN_UTILITY = 4.5
"""Utility a median person loses from the cheapest to the dearest price level."""
NONE_OFFSET = 2.6
"""None utility above the person's utility of an average product at the mid price."""
LEVEL_SD = 0.45
PRICE_LOG_SD = 0.35
NONE_SD = 0.8


@dataclass(frozen=True)
class Traits:
    """Person traits the preference model depends on, as float arrays (n,)."""

    age18: np.ndarray
    age25: np.ndarray
    older: np.ndarray
    inc: np.ndarray  # -1 low, 0 middle, +1 high
    low_income: np.ndarray
    km_z: np.ndarray
    no_home: np.ndarray
    tier1: np.ndarray
    owns_car: np.ndarray
    seg: np.ndarray  # (n, K) one-hot segment membership

    @classmethod
    def of(cls, pop: Population, segment: np.ndarray | None = None) -> Traits:
        seg = np.zeros((pop.n, len(SEGMENTS)))
        if segment is not None:
            seg[np.arange(pop.n), segment] = 1.0
        return cls(
            age18=(pop.age == 0).astype(float),
            age25=(pop.age == 1).astype(float),
            older=(pop.age >= 3).astype(float),
            inc=pop.income.astype(float) - 1.0,
            low_income=(pop.income == 0).astype(float),
            km_z=(np.log(np.maximum(pop.daily_km, 1.0)) - np.log(KM_REF)) / KM_LOG_SD,
            no_home=(~pop.home_charging).astype(float),
            tier1=(pop.tier == 1).astype(float),
            owns_car=pop.owns_car.astype(float),
            seg=seg,
        )


def segment_logits(t: Traits) -> np.ndarray:
    """Class-membership utilities (n, K): a multinomial logit on traits."""
    return np.column_stack(
        [
            0.0 + 0.7 * t.low_income + 0.5 * t.older,
            -0.5 + 1.3 * t.age18 + 0.8 * t.age25 + 0.3 * t.tier1 - 0.5 * t.older,
            -0.7 + 1.1 * t.km_z + 0.4 * t.owns_car,
            -0.6 + 1.4 * t.no_home + 0.3 * t.tier1,
        ]
    )


LevelRule = Callable[[Traits], np.ndarray]

# Mean utility of named levels (relative to 0), by level name; ("attribute", "level") first.
_NAMED: dict[str | tuple[str, str], LevelRule] = {
    "sporty": lambda t: 0.1 + 0.9 * t.seg[:, 1] + 0.3 * t.age18 - 0.3 * t.older,
    "retro": lambda t: -0.15 + 0.35 * t.seg[:, 1] - 0.1 * t.older,
    "classic": lambda t: 0.0 * t.inc,
    "white": lambda t: 0.0 * t.inc,
    "black": lambda t: 0.1 + 0.05 * t.inc,
    "grey": lambda t: 0.05 + 0.0 * t.inc,
    "blue": lambda t: -0.1 + 0.35 * t.seg[:, 1],
    "green": lambda t: -0.2 + 0.3 * t.seg[:, 1] - 0.1 * t.older,
    "pink": lambda t: -0.7 + 1.1 * t.seg[:, 1] + 0.4 * t.age18 - 0.3 * t.older,
    "orange": lambda t: -0.45 + 0.7 * t.seg[:, 1] + 0.2 * t.age18 - 0.2 * t.older,
    "plugin": lambda t: 0.0 * t.inc,
    "swap": lambda t: 0.35 + 0.9 * t.no_home + 1.1 * t.seg[:, 3] + 0.15 * t.km_z,
    "both": lambda t: 0.55 + 0.7 * t.no_home + 0.8 * t.seg[:, 3] + 0.7 * t.seg[:, 2] + 0.2 * t.km_z,
    ("sunroof", "no"): lambda t: 0.0 * t.inc,
    ("sunroof", "yes"): lambda t: 0.3 + 0.2 * t.inc + 0.3 * t.seg[:, 1],
}


def _ordered_values(t: Traits, n_levels: int) -> np.ndarray:
    """Ordered attributes (feature packs): concave in the level index, more for the young and rich."""
    k = np.arange(n_levels, dtype=float)
    steps = np.sqrt(k)  # diminishing returns
    slope = 0.55 + 0.5 * t.seg[:, 1] + 0.15 * t.age18 - 0.2 * t.older + 0.1 * t.inc
    return slope[:, None] * steps[None, :]


def _battery_values(project: Project, t: Traits, levels: list[Level]) -> np.ndarray:
    """Battery levels: worth grows with range (per 100 km), more for long-distance drivers."""
    ranges: list[float] = []
    ncm: list[float] = []
    for k, level in enumerate(levels):
        pack = None
        if level.battery_pack is not None:
            try:
                pack = project.battery_pack(level.battery_pack)
            except KeyError:
                pack = None
        ranges.append(pack.range_km if pack is not None else 400.0 + 100.0 * k)
        ncm.append(1.0 if pack is not None and pack.chemistry == "NCM" else 0.0)
    r = (np.array(ranges) - ranges[0]) / 100.0
    w = 0.35 + 0.5 * t.seg[:, 2] + 0.25 * t.km_z + 0.05 * t.inc
    return w[:, None] * r[None, :] + 0.1 * np.array(ncm)[None, :]


def _ownership_values(t: Traits, levels: list[Level]) -> np.ndarray:
    """Battery rental: a monthly fee everyone dislikes, less without home charging; caps hurt long drivers."""
    out = np.zeros((t.inc.shape[0], len(levels)))
    for k, level in enumerate(levels):
        if level.ownership != "rent":
            continue
        v = -2.0 + 0.6 * t.no_home + 1.1 * t.seg[:, 3] - 0.2 * t.inc
        if level.rent_plan == "capped":
            v = v - 0.6 * np.maximum(t.km_z + 0.3, 0.0) - 1.0 * t.seg[:, 2]
        elif level.rent_plan is not None:
            v = v - 0.25 + 0.4 * t.seg[:, 2]
        out[:, k] = v
    return out


def generate_preferences(
    project: Project, pop: Population, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Individual coefficients (n, n_features) in the coder's feature order, and segments (n,)."""
    coder = FeatureCoder.from_project(project)
    names = coder.feature_names
    n = pop.n
    t0 = Traits.of(pop)
    logits = segment_logits(t0)
    segment = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1).astype(np.int64)
    t = Traits.of(pop, segment)
    level_rng = np.random.default_rng(rng.integers(2**63))

    betas = np.zeros((n, len(names)))
    typical = np.zeros(n)  # utility of an average product (mean over levels), for the None anchor
    slices = coder.feature_slices()
    for attribute in project.attributes:
        cols = slices[attribute.name]
        if attribute.kind == "numeric":
            lo, hi = attribute.value_range
            span = max((hi - lo) / attribute.scale, 1e-12)
            if attribute.role == "price":
                log_mu = (
                    np.log(PRICE_SPAN_UTILITY / span)
                    + 0.2 * t.seg[:, 0]
                    - 0.15 * t.seg[:, 1]
                    + 0.25 * t.low_income
                    - 0.3 * (t.inc > 0)
                    + 0.1 * t.older
                )
                beta = -np.exp(log_mu + PRICE_LOG_SD * rng.standard_normal(n))
            else:
                beta = (1.0 / span) * (1.0 + 0.3 * rng.standard_normal(n))
            betas[:, cols.start] = beta
            typical += beta * (lo + hi) / 2.0 / attribute.scale
            continue
        levels = attribute.levels
        if attribute.role == "battery":
            values = _battery_values(project, t, levels)
        elif attribute.role == "ownership":
            values = _ownership_values(t, levels)
        elif attribute.kind == "ordered":
            values = _ordered_values(t, len(levels))
        else:
            values = np.zeros((n, len(levels)))
            for k, level in enumerate(levels):
                rule = _NAMED.get((attribute.name, level.name)) or _NAMED.get(level.name)
                if rule is not None:
                    values[:, k] = rule(t)
                else:
                    values[:, k] = level_rng.normal(0.0, 0.35)
        values = values + LEVEL_SD * rng.standard_normal(values.shape)
        values = values - values[:, :1]
        betas[:, cols] = values[:, 1:]
        typical += values.mean(axis=1)

    if coder.with_none:
        none = (
            typical
            + NONE_OFFSET
            + 0.3 * t.owns_car
            + 0.3 * t.older
            - 0.25 * t.tier1
            - 0.3 * t.seg[:, 3]
            + NONE_SD * rng.standard_normal(n)
        )
        betas[:, -1] = none
    return betas, segment
