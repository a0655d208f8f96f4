"""Behaviour events: what the synthetic persons view, search, put in carts, order and where they service."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from c2m.domain import Attribute, FeatureCoder, Project

from ._population import Population

EVENT_TYPES = ("view", "search", "cart", "order", "service_visit")
YEAR = 2025
_EPOCH_US = (dt.date(YEAR, 1, 1) - dt.date(1970, 1, 1)).days * 86_400_000_000
_PRODUCT_MIX = np.array([0.66, 0.22, 0.09, 0.03])  # view, search, cart, order
_SHARPNESS = np.array([1.0, 1.0, 1.6, 2.2])  # orders follow preferences more closely than views
_AGE_ACTIVITY = np.array([1.35, 1.25, 1.0, 0.7, 0.45])
_CHUNK = 1_000_000


# Relative activity by hour of day: browsing peaks in the evening, stores open 9:00-19:00.
# fmt: off
_BROWSE_HOURS = np.array([0.5, 0.3, 0.15, 0.1, 0.1, 0.15, 0.3, 0.6, 0.9, 1.0, 1.0, 1.1,
                          1.3, 1.1, 1.0, 1.0, 1.0, 1.1, 1.3, 1.6, 2.0, 2.2, 1.8, 1.0])
_STORE_HOURS = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0.6, 1.0, 1.0,
                         0.7, 0.8, 1.0, 1.0, 0.9, 0.7, 0.4, 0, 0, 0, 0, 0])
# fmt: on


def _hour_profile(service: bool) -> np.ndarray:
    w = _STORE_HOURS if service else _BROWSE_HOURS
    return w / w.sum()


def _day_weights(service: bool) -> np.ndarray:
    """Daily activity over 2025: weekly cycle, Spring Festival dip, 618 and Double-11 sales."""
    days = (dt.date(YEAR + 1, 1, 1) - dt.date(YEAR, 1, 1)).days
    d = np.arange(days)
    weekday = (dt.date(YEAR, 1, 1).weekday() + d) % 7
    w = 0.85 + 0.3 * d / (days - 1)
    w = w * np.where(weekday >= 5, 1.3 if service else 1.15, 1.0)
    spring = (dt.date(YEAR, 1, 28) - dt.date(YEAR, 1, 1)).days
    w[spring : spring + 8] *= 0.6 if not service else 0.3
    if not service:
        d618 = (dt.date(YEAR, 6, 18) - dt.date(YEAR, 1, 1)).days
        d1111 = (dt.date(YEAR, 11, 11) - dt.date(YEAR, 1, 1)).days
        w[d618 - 17 : d618] *= 1.4
        w[d618] *= 2.5
        w[d1111 - 22 : d1111] *= 1.4
        w[d1111] *= 3.0
    return w / w.sum()


def _timestamps(rng: np.random.Generator, n: int, service: bool) -> np.ndarray:
    weights = _day_weights(service)
    day = rng.choice(weights.shape[0], size=n, p=weights)
    hour = rng.choice(24, size=n, p=_hour_profile(service))
    sec = rng.integers(0, 3600, size=n)
    return _EPOCH_US + (day.astype(np.int64) * 86_400 + hour * 3600 + sec) * 1_000_000


def _sample_levels(worth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One level per row with probability softmax(worth) (inverse CDF, one uniform per row)."""
    w = np.exp(worth - worth.max(axis=1, keepdims=True))
    cdf = np.cumsum(w, axis=1)
    u = rng.random(worth.shape[0]) * cdf[:, -1]
    return np.minimum((u[:, None] > cdf).sum(axis=1), worth.shape[1] - 1)


@dataclass(frozen=True)
class _StoreIndex:
    """Stores grouped by city: ``flat[offsets[c]:offsets[c + 1]]`` are city ``c``'s store rows."""

    flat: np.ndarray
    offsets: np.ndarray
    count: np.ndarray

    @classmethod
    def of(cls, project: Project, stores: pl.DataFrame) -> _StoreIndex:
        store_city = stores["city"].to_list()
        by_city = [
            np.array([j for j, c in enumerate(store_city) if c == city.name], dtype=np.int64)
            for city in project.cities
        ]
        count = np.array([len(s) for s in by_city], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(count)]).astype(np.int64)
        return cls(np.concatenate([*by_city, np.zeros(0, dtype=np.int64)]), offsets, count)


def generate_events(
    project: Project,
    pop: Population,
    betas: np.ndarray,
    stores: pl.DataFrame,
    events_per_person: float,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """Behaviour events of every person over the 12 months of 2025, sorted by time then person.

    Who, what kind and when are drawn for all events at once and put in time
    order; the product levels, stores and prices are then drawn in chunks of
    events to bound memory.
    """
    n = pop.n
    coder = FeatureCoder.from_project(project)
    slices = coder.feature_slices()
    cat_attrs = [a for a in project.attributes if a.kind != "numeric"]
    price_attr = project.attribute_by_role("price")
    if price_attr is not None and price_attr.kind != "numeric":
        price_attr = None
    index = _StoreIndex.of(project, stores)

    activity = (
        np.where(pop.app_user, 1.0, 0.25) * _AGE_ACTIVITY[pop.age] * np.exp(0.8 * rng.standard_normal(n))
    )
    lam = events_per_person * activity / max(float(activity.mean()), 1e-12) if n else activity
    counts = rng.poisson(lam)
    owner = np.repeat(np.arange(n, dtype=np.int64), counts)
    home_pick = rng.integers(0, np.maximum(index.count[pop.city], 1))

    # kind: service visits (car owners, cities with a store), else the product mix
    m = owner.shape[0]
    p_service = np.where(pop.owns_car[owner], 0.12, 0.02) * (index.count[pop.city[owner]] > 0)
    u = rng.random(m)
    service = u < p_service
    v = (u - p_service) / np.maximum(1.0 - p_service, 1e-12)
    kind = np.searchsorted(np.cumsum(_PRODUCT_MIX)[:-1], v, side="right").astype(np.int8)
    kind[service] = 4
    ts = np.empty(m, dtype=np.int64)
    ts[service] = _timestamps(rng, int(service.sum()), True)
    ts[~service] = _timestamps(rng, int(m - service.sum()), False)
    order = np.lexsort((owner, ts))
    owner, kind, ts = owner[order], kind[order], ts[order]
    del order, service, u, v, p_service

    chunks = [
        _event_chunk(
            project,
            pop,
            betas,
            owner[start : start + _CHUNK],
            kind[start : start + _CHUNK],
            ts[start : start + _CHUNK],
            slices,
            cat_attrs,
            price_attr,
            index,
            home_pick,
            stores,
            rng,
        )
        for start in range(0, m, _CHUNK)
    ]
    if not chunks:
        return _empty_events(cat_attrs)
    return pl.concat(chunks, how="vertical", rechunk=False)


def _empty_events(cat_attrs: list[Attribute]) -> pl.DataFrame:
    return pl.DataFrame(schema=event_schema([a.name for a in cat_attrs]))


def event_schema(attribute_names: list[str]) -> dict[str, pl.DataType]:
    """Column types of the events table."""
    schema: dict[str, pl.DataType] = {
        "person_id": pl.Int64(),
        "ts": pl.Datetime("us"),
        "city": pl.String(),
        "event_type": pl.String(),
        "store_id": pl.String(),
    }
    for name in attribute_names:
        schema[name] = pl.String()
    schema["price"] = pl.Float64()
    return schema


def _event_chunk(
    project: Project,
    pop: Population,
    betas: np.ndarray,
    who: np.ndarray,
    kind: np.ndarray,
    ts: np.ndarray,
    slices: dict[str, slice],
    cat_attrs: list[Attribute],
    price_attr: Attribute | None,
    index: _StoreIndex,
    home_pick: np.ndarray,
    stores: pl.DataFrame,
    rng: np.random.Generator,
) -> pl.DataFrame:
    m = who.shape[0]
    city = pop.city[who]
    service = kind == 4
    product = ~service

    # service visits: the home store 80% of the time, else any store in the city
    other = rng.integers(0, np.maximum(index.count[city], 1))
    pick = np.where(rng.random(m) < 0.8, home_pick[who], other)
    if index.flat.shape[0]:
        store_index = index.flat[np.minimum(index.offsets[city] + pick, index.flat.shape[0] - 1)]
        store_ids = stores["store_id"].gather(pl.Series(store_index.astype(np.uint32)))
    else:
        store_ids = pl.Series("store_id", [None] * m, dtype=pl.String)
    store_ids = pl.select(pl.when(pl.lit(pl.Series(service))).then(store_ids).otherwise(None)).to_series()

    sharp = _SHARPNESS[np.minimum(kind, 3)]
    search = kind == 1
    search_attr = rng.integers(0, max(len(cat_attrs), 1), size=m)
    columns: dict[str, pl.Series] = {}
    B = betas[who]
    for a_index, attribute in enumerate(cat_attrs):
        cols = slices[attribute.name]
        shown = np.flatnonzero(product & (~search | (search_attr == a_index)))
        worth = np.zeros((shown.shape[0], len(attribute.levels)))
        worth[:, 1:] = B[shown, cols]
        level = np.full(m, -1, dtype=np.int64)
        level[shown] = _sample_levels(worth * sharp[shown, None], rng)
        codes = pl.Series(level).set(pl.Series(level < 0), None)
        columns[attribute.name] = pl.Series(attribute.level_names, dtype=pl.String).gather(codes)

    price = np.full(m, np.nan)
    if price_attr is not None:
        values = np.array([float(lv.value or 0.0) for lv in price_attr.levels])
        beta_p = B[:, slices[price_attr.name].start]
        worth = 0.5 * beta_p[:, None] * values[None, :] / price_attr.scale
        level = _sample_levels(worth * sharp[:, None], rng)
        jitter = rng.uniform(0.93, 1.07, size=m)
        price = np.round(values[level] * jitter / 100.0) * 100.0
        price = np.where(product & ~search, price, np.nan)

    city_names = pl.Series([c.name for c in project.cities], dtype=pl.String)
    frame = pl.DataFrame(
        {
            "person_id": pl.Series(who + 1, dtype=pl.Int64),
            "ts": pl.Series(ts, dtype=pl.Int64).cast(pl.Datetime("us")),
            "city": city_names.gather(pl.Series(city.astype(np.uint32))),
            "event_type": pl.Series(EVENT_TYPES, dtype=pl.String).gather(pl.Series(kind.astype(np.uint32))),
            "store_id": store_ids.cast(pl.String),
            **columns,
            "price": pl.Series(price, dtype=pl.Float64, nan_to_null=True),
        }
    )
    return frame
