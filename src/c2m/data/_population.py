"""The synthetic population: the retailer's customers in the project's cities."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from c2m.domain import Project
from c2m.errors import C2MError

AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")
INCOME_BANDS = ("low", "middle", "high")

# Age mix of the customers interested in small cars (tier 1 skews slightly younger).
_AGE_P = np.array([0.15, 0.33, 0.26, 0.16, 0.10])
_AGE_P_TIER1 = np.array([0.17, 0.35, 0.25, 0.14, 0.09])
# Latent income: tier and age effects on a standard normal, cut into three bands.
_INCOME_TIER = {1: 0.55, 2: 0.15, 3: -0.15, 4: -0.35, 5: -0.5}
_INCOME_AGE = np.array([-0.7, 0.0, 0.3, 0.2, -0.25])
_INCOME_CUTS = (-0.45, 0.95)
# Car ownership (logit): licence-plate quotas in tier-1 cities lower it.
_CAR_AGE = np.array([-1.3, -0.2, 0.35, 0.45, 0.1])
_CAR_INCOME = np.array([-0.6, 0.0, 0.8])
# Home charging (logit): apartment living in tier-1 cities lowers it.
_HOME_TIER = {1: -1.0, 2: -0.05, 3: 0.45, 4: 0.65, 5: 0.75}
# Daily distance: lognormal with a median about 35 km.
_KM_MEDIAN = 29.0
_KM_SIGMA = 0.6
# Active on the retailer's app (logit).
_APP_AGE = np.array([1.0, 0.7, 0.0, -0.7, -1.4])


@dataclass(frozen=True)
class Population:
    """Persons as arrays (codes), kept alongside the frame for vectorised use."""

    city: np.ndarray  # index into project.cities
    tier: np.ndarray
    age: np.ndarray  # index into AGE_BANDS
    income: np.ndarray  # index into INCOME_BANDS
    owns_car: np.ndarray
    daily_km: np.ndarray
    home_charging: np.ndarray
    app_user: np.ndarray

    @property
    def n(self) -> int:
        return int(self.city.shape[0])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def city_weights(project: Project) -> np.ndarray:
    """Probability of each project city: proportional to its market size."""
    if not project.cities:
        raise C2MError("project: a synthetic market needs at least one entry in [[cities]]")
    sizes = np.array([c.market_size for c in project.cities], dtype=float)
    if sizes.sum() <= 0:
        raise C2MError("project.cities: every market_size is 0; at least one must be positive")
    return sizes / sizes.sum()


def generate_population(project: Project, n: int, rng: np.random.Generator) -> Population:
    """Draw ``n`` persons; every trait is a vectorised draw from ``rng``."""
    p_city = city_weights(project)
    city = rng.choice(len(p_city), size=n, p=p_city)
    tiers = np.array([c.tier for c in project.cities])
    tier = tiers[city]
    tier1 = tier == 1

    u = rng.random(n)
    cdf = np.where(tier1[:, None], np.cumsum(_AGE_P_TIER1), np.cumsum(_AGE_P)[None, :])
    age = np.minimum((u[:, None] > cdf).sum(axis=1), len(AGE_BANDS) - 1)

    tier_shift = np.array([_INCOME_TIER[int(t)] for t in range(1, 6)])[tier - 1]
    z = tier_shift + _INCOME_AGE[age] + rng.standard_normal(n)
    income = (z > _INCOME_CUTS[0]).astype(np.int64) + (z > _INCOME_CUTS[1]).astype(np.int64)

    car_logit = -0.05 + _CAR_AGE[age] + _CAR_INCOME[income] - 0.45 * tier1 + 0.2 * (tier >= 3)
    owns_car = rng.random(n) < _sigmoid(car_logit)

    log_km = (
        np.log(_KM_MEDIAN)
        + 0.22 * owns_car
        + 0.08 * (tier == 2)
        + 0.2 * (tier >= 3)
        - 0.1 * (age == 4)
        + _KM_SIGMA * rng.standard_normal(n)
    )
    daily_km = np.round(np.exp(log_km), 1)

    home_tier = np.array([_HOME_TIER[int(t)] for t in range(1, 6)])[tier - 1]
    home_logit = home_tier + 0.55 * owns_car + 0.3 * (income == 2) - 0.3 * (income == 0) - 0.3 * (age == 0)
    home_charging = rng.random(n) < _sigmoid(home_logit)

    app_logit = 1.7 + _APP_AGE[age] + 0.3 * tier1
    app_user = rng.random(n) < _sigmoid(app_logit)
    return Population(city, tier, age, income, owns_car, daily_km, home_charging, app_user)


def persons_frame(project: Project, pop: Population) -> pl.DataFrame:
    """The persons table of docs/schemas.md."""
    names = pl.Series([c.name for c in project.cities], dtype=pl.String)
    return pl.DataFrame(
        {
            "person_id": pl.Series(np.arange(1, pop.n + 1, dtype=np.int64)),
            "city": names.gather(pl.Series(pop.city.astype(np.uint32))),
            "age_band": pl.Series(AGE_BANDS, dtype=pl.String).gather(pl.Series(pop.age.astype(np.uint32))),
            "income_band": pl.Series(INCOME_BANDS, dtype=pl.String).gather(
                pl.Series(pop.income.astype(np.uint32))
            ),
            "owns_car": pl.Series(pop.owns_car, dtype=pl.Boolean),
            "daily_km": pl.Series(pop.daily_km, dtype=pl.Float64),
            "home_charging": pl.Series(pop.home_charging, dtype=pl.Boolean),
            "app_user": pl.Series(pop.app_user, dtype=pl.Boolean),
        }
    )


def population_from_frame(project: Project, persons: pl.DataFrame) -> Population:
    """Codes of a persons table (as read back from disk)."""
    city_index = {c.name: k for k, c in enumerate(project.cities)}
    unknown = sorted(set(persons["city"].unique().to_list()) - set(city_index))
    if unknown:
        raise C2MError(f"persons: city {unknown[0]!r} is not a city of project {project.name!r}")
    tiers = np.array([c.tier for c in project.cities])
    city = persons["city"].replace_strict(city_index, return_dtype=pl.Int64).to_numpy()
    age = (
        persons["age_band"]
        .replace_strict({a: k for k, a in enumerate(AGE_BANDS)}, return_dtype=pl.Int64)
        .to_numpy()
    )
    income = (
        persons["income_band"]
        .replace_strict({a: k for k, a in enumerate(INCOME_BANDS)}, return_dtype=pl.Int64)
        .to_numpy()
    )
    return Population(
        city=city,
        tier=tiers[city],
        age=age,
        income=income,
        owns_car=persons["owns_car"].to_numpy().astype(bool),
        daily_km=persons["daily_km"].to_numpy().astype(float),
        home_charging=persons["home_charging"].to_numpy().astype(bool),
        app_user=persons["app_user"].to_numpy().astype(bool),
    )


def stores_frame(project: Project, rng: np.random.Generator) -> pl.DataFrame:
    """The project's stores; when it lists none, stores spread over its cities by market size."""
    if project.stores:
        return pl.DataFrame(
            {
                "store_id": [s.id for s in project.stores],
                "city": [s.city for s in project.stores],
                "lat": [float(s.lat) for s in project.stores],
                "lon": [float(s.lon) for s in project.stores],
                "kind": [s.kind for s in project.stores],
            },
            schema={
                "store_id": pl.String,
                "city": pl.String,
                "lat": pl.Float64,
                "lon": pl.Float64,
                "kind": pl.String,
            },
        )
    p_city = city_weights(project)
    ids: list[str] = []
    cities: list[str] = []
    lats: list[float] = []
    lons: list[float] = []
    kinds: list[str] = []
    for k, city in enumerate(project.cities):
        count = max(1, round(float(p_city[k]) * 20 * len(project.cities)))
        prefix = "".join(ch for ch in city.name.upper() if ch.isalnum())[:3] or f"C{k}"
        for j in range(count):
            ids.append(f"{prefix}{k:02d}-{j + 1:03d}")
            cities.append(city.name)
            lats.append(round(city.lat + float(rng.normal(0, 0.04)), 4))
            lons.append(round(city.lon + float(rng.normal(0, 0.05)), 4))
            kinds.append("own" if rng.random() < 0.7 else "partner")
    return pl.DataFrame(
        {"store_id": ids, "city": cities, "lat": lats, "lon": lons, "kind": kinds},
        schema={
            "store_id": pl.String,
            "city": pl.String,
            "lat": pl.Float64,
            "lon": pl.Float64,
            "kind": pl.String,
        },
    )
