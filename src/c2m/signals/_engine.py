"""The engine interface: the few aggregate queries the signals need, run where the data lives.

An engine reads a market's ``persons`` and ``events`` tables and returns small
aggregated Polars frames; everything statistical (shares, shrinkage, priors)
happens on those aggregates in :mod:`c2m.signals._interest`, so every engine
gives the same results. DuckDB runs on one machine (out of core); the Spark
engine (the ``spark`` extra) implements the same methods for clusters.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from c2m.errors import C2MError

EVENT_TYPES = ("view", "search", "cart", "order", "service_visit")
PRODUCT_EVENTS = ("view", "search", "cart", "order")
EVENT_COLUMNS = ("person_id", "ts", "city", "event_type", "store_id", "price")
PERSON_COLUMNS = (
    "person_id",
    "city",
    "age_band",
    "income_band",
    "owns_car",
    "daily_km",
    "home_charging",
    "app_user",
)
ENGINES = ("duckdb", "polars", "spark")
ACTIVITY_COLUMNS = (
    "persons",
    "home_charging",
    "owns_car",
    "app_user",
    "daily_km",
    *(f"n_{k}" for k in EVENT_TYPES),
    "buyers",
)


class Engine(ABC):
    """Aggregate queries over a market's ``persons`` and ``events`` (see docs/schemas.md).

    Implementations must return exactly the columns documented on each method,
    with ``by`` columns first, and never materialise the raw events in Python.
    """

    name: str = "engine"

    @property
    @abstractmethod
    def event_columns(self) -> list[str]:
        """Columns of the events table (including a hive ``month`` column if any)."""

    @property
    @abstractmethod
    def person_columns(self) -> list[str]:
        """Columns of the persons table."""

    @abstractmethod
    def level_counts(
        self, attributes: Sequence[str], by: Sequence[str], event_weights: Mapping[str, float]
    ) -> pl.DataFrame:
        """Events per cell x attribute x level, over the event types of ``event_weights``.

        Columns: ``by...`` (events' column if it has it, else the person's),
        ``attribute`` String, ``level`` String, ``events`` Int64 (count),
        ``weight`` Float64 (sum of event weights), ``weight_sq`` Float64 (sum of
        squared weights), ``n_persons`` Int64 (distinct persons). Null levels
        (attribute not shown) are left out.
        """

    @abstractmethod
    def person_activity(self, by: Sequence[str]) -> pl.DataFrame:
        """Persons and their events aggregated by ``by`` (person columns; one row when empty).

        Columns: ``by...``, ``persons`` Int64, ``home_charging``, ``owns_car``,
        ``app_user`` Int64 (persons with the flag true), ``daily_km`` Float64
        (sum), one ``n_<event_type>`` Int64 per event type (sum over persons) and
        ``buyers`` Int64 (persons with at least one order).
        """

    @abstractmethod
    def band_counts(self, by: Sequence[str], column: str) -> pl.DataFrame:
        """Persons per ``by...`` cell and value of ``column``: columns ``by...``, ``value`` String, ``persons``."""

    def membership_sums(self, by: Sequence[str], features: Sequence[str], gamma: np.ndarray) -> pl.DataFrame:
        """Persons per ``by...`` cell and the sums of their type (class) probabilities.

        A person's probability of type ``k`` is the membership logit
        ``exp(eta_k) / sum_j exp(eta_j)`` with ``eta_k = gamma[k, 0] + sum_m gamma[k, m + 1] x_m`` on
        the person's traits ``x = features`` (numeric or boolean person columns, cast to double).
        Columns: ``by...``, ``persons`` Int64, ``incomplete`` Int64 (persons with a missing or
        non-finite trait, left out of the sums), ``w_0 .. w_{K-1}`` Float64. Sorted by ``by``
        (nulls last); one row when ``by`` is empty. See :func:`c2m.signals.score_population`.
        """
        raise C2MError(f"signals: engine {self.name!r} cannot score populations (no membership_sums)")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (connections, sessions)."""


def check_event_weights(event_weights: Mapping[str, float]) -> dict[str, float]:
    """Validate event weights: known product event types, finite, >= 0, at least one > 0."""
    if not isinstance(event_weights, Mapping) or not event_weights:
        raise C2MError(f"event_weights: expected a non-empty mapping event type -> weight, got {event_weights!r}")
    out: dict[str, float] = {}
    for kind, value in event_weights.items():
        if kind not in PRODUCT_EVENTS:
            raise C2MError(
                f"event_weights: unknown event type {kind!r}; expected some of {', '.join(PRODUCT_EVENTS)} "
                "(service visits show no product levels)"
            )
        try:
            weight = float(value)
        except (TypeError, ValueError):
            raise C2MError(f"event_weights[{kind!r}]: must be a number, got {value!r}") from None
        if not math.isfinite(weight) or weight < 0:
            raise C2MError(f"event_weights[{kind!r}]: must be a finite number >= 0, got {value!r}")
        out[str(kind)] = weight
    if not any(w > 0 for w in out.values()):
        raise C2MError("event_weights: at least one weight must be > 0")
    return out


def make_engine(market_dir: str | Path, engine: str | Engine, **options: object) -> Engine:
    """The engine named ``engine`` on the market directory (or ``engine`` itself when given one)."""
    if isinstance(engine, Engine):
        return engine
    if engine == "duckdb":
        from ._duckdb import DuckDBEngine

        return DuckDBEngine(market_dir, **options)  # type: ignore[arg-type]
    if engine == "spark":
        from ._spark import SparkEngine, _require_pyspark

        _require_pyspark()
        return SparkEngine(market_dir, **options)  # type: ignore[arg-type]
    if engine == "polars":
        from ._polars import PolarsEngine

        return PolarsEngine.from_dir(market_dir)
    raise C2MError(f"signals: unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")


MEMBERSHIP_COLUMNS = ("persons", "incomplete")


def check_membership(
    by: Sequence[str], features: Sequence[str], gamma: np.ndarray, schema: Mapping[str, pl.DataType], where: str
) -> np.ndarray:
    """Validate the arguments of :meth:`Engine.membership_sums` against the persons' ``schema``; ``gamma`` as floats."""
    known = list(schema)
    for col in by:
        if col not in schema:
            raise C2MError(f"score: by column {col!r} not found in the persons of {where}; expected some of {known}")
    clash = [c for c in by if c in MEMBERSHIP_COLUMNS or c.startswith("w_")]
    if clash:
        raise C2MError(f"score: by column(s) {clash} clash with the result columns persons, incomplete, w_<k>")
    if len(set(by)) != len(by):
        raise C2MError(f"score: by has repeated columns {list(by)}")
    for col in features:
        if col not in schema:
            raise C2MError(
                f"score: membership trait {col!r} is not a column of the persons of {where}; they have {known}"
            )
        dtype = schema[col]
        if not (dtype.is_numeric() or dtype == pl.Boolean):
            raise C2MError(
                f"score: membership trait {col!r} of the persons of {where} has type {dtype}; "
                "membership traits must be numeric or boolean columns"
            )
    g = np.asarray(gamma, dtype=np.float64)
    if g.ndim != 2 or g.shape[0] < 1 or g.shape[1] != 1 + len(features):
        raise C2MError(
            f"score: membership coefficients must be (K, 1 + {len(features)}) for traits {list(features)}, "
            f"got shape {g.shape}"
        )
    if not np.isfinite(g).all():
        raise C2MError("score: membership coefficients have non-finite values")
    return g
