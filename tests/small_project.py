"""A small project (3 attributes, 2 competitors, None) shared by the market and optimiser tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from c2m.domain import FeatureCoder, Project, project_from_dict

SMALL: dict[str, Any] = {
    "name": "small",
    "product": {"name": "Gadget", "base_unit_cost": 20000, "fixed_cost_per_variant": 50_000_000,
                "max_variants": 4, "months_of_rent": 48},
    "attributes": [
        {"name": "style", "levels": [
            {"name": "a"}, {"name": "b", "cost": 1500, "fixed_cost": 120_000_000},
            {"name": "c", "cost": 800, "fixed_cost": 60_000_000}]},
        {"name": "colour", "levels": [
            {"name": "white"}, {"name": "red", "cost": 300, "fixed_cost": 30_000_000}]},
        {"name": "price", "kind": "numeric", "role": "price", "scale": 10000, "levels": [
            {"name": "p40", "value": 40000}, {"name": "p50", "value": 50000},
            {"name": "p60", "value": 60000}]},
    ],
    "prohibitions": [{"levels": {"style": "c", "colour": "red"}, "reason": "test"}],
    "competitors": [
        {"name": "Rival1", "profile": {"style": "a", "colour": "white", "price": 45000}},
        {"name": "Rival2", "profile": {"style": "b", "colour": "red", "price": 55000}, "asc": 0.3},
    ],
    "none_option": {"enabled": True},
    "cities": [
        {"name": "North", "lat": 30.0, "lon": 110.0, "market_size": 60000},
        {"name": "South", "lat": 22.0, "lon": 113.0, "market_size": 40000},
    ],
}


def small_project() -> Project:
    return project_from_dict(SMALL)


def random_coef(project: Project, seed: int) -> np.ndarray:
    coder = FeatureCoder.from_project(project)
    rng = np.random.default_rng(seed)
    coef = rng.normal(0.0, 1.0, coder.n_features)
    coef[coder.feature_names.index("price")] = -rng.uniform(0.5, 1.5)
    coef[coder.feature_names.index("none")] = rng.normal(-4.0, 1.0)
    return coef


@pytest.fixture
def project() -> Project:
    return small_project()


@pytest.fixture
def make_coef():  # type: ignore[no-untyped-def]
    return random_coef
