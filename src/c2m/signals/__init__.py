"""Behaviour signals and survey weighting.

:class:`Signals` aggregates a market's behaviour events (views, searches, carts,
orders, service visits) with one query API over interchangeable engines: DuckDB
on one machine (SQL over the Parquet files, out of core), Polars, and Spark for
clusters (the ``spark`` extra). Events are validated first: bad rows (missing
values, future timestamps, unknown cities or event types) are counted and
refused, or quarantined to a Parquet file, never dropped silently. :func:`design_prior` turns interest by level into
prior coefficients for a D-efficient survey design, and :func:`rake` weights a
survey sample to population margins (raking with trimming). :func:`score_population` applies a
fitted choice model to every person (by traits) for expected shares by city, on any engine.
"""

from ._duckdb import DuckDBEngine
from ._engine import ENGINES, EVENT_TYPES, Engine
from ._interest import design_prior, method_of_moments_strength
from ._polars import PolarsEngine
from ._rake import RakingResult, rake
from ._score import score_population
from ._signals import DEFAULT_EVENT_WEIGHTS, Signals, interest_by_level
from ._spark import SparkEngine, spark_session
from ._validate import REASONS, EventCheck, EventRules, event_rules, validate_events

__all__ = [
    "DEFAULT_EVENT_WEIGHTS",
    "ENGINES",
    "EVENT_TYPES",
    "REASONS",
    "DuckDBEngine",
    "Engine",
    "EventCheck",
    "EventRules",
    "PolarsEngine",
    "RakingResult",
    "Signals",
    "SparkEngine",
    "design_prior",
    "event_rules",
    "interest_by_level",
    "method_of_moments_strength",
    "rake",
    "score_population",
    "spark_session",
    "validate_events",
]
