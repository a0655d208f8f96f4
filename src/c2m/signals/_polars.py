"""Polars engine: the same aggregates with Polars lazy frames (in-memory markets, cross-checks)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from c2m.errors import C2MError

from ._duckdb import market_paths
from ._engine import EVENT_COLUMNS, EVENT_TYPES, PERSON_COLUMNS, Engine, check_event_weights, check_membership


class PolarsEngine(Engine):
    """Aggregates over Polars frames (lazy scans of a market directory, or frames in memory)."""

    name = "polars"

    def __init__(
        self, persons: pl.DataFrame | pl.LazyFrame, events: pl.DataFrame | pl.LazyFrame, where: str = "market"
    ):
        self._persons = persons.lazy()
        self._events = events.lazy()
        self.where = where
        try:
            self._event_columns = self._events.collect_schema().names()
            self._person_columns = self._persons.collect_schema().names()
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise C2MError(f"{where}: cannot read: {str(exc).splitlines()[0]}") from None
        for table, cols, needed in (
            ("events", self._event_columns, EVENT_COLUMNS),
            ("persons", self._person_columns, PERSON_COLUMNS),
        ):
            missing = [c for c in needed if c not in cols]
            if missing:
                raise C2MError(f"{where}: {table} missing column(s) {missing}; found {cols}")

    @classmethod
    def from_dir(cls, market_dir: str | Path) -> PolarsEngine:
        persons, events, _ = market_paths(market_dir)
        return cls(
            pl.scan_parquet(persons),
            pl.scan_parquet(events / "month=*" / "*.parquet", hive_partitioning=True),
            where=str(market_dir),
        )

    @property
    def event_columns(self) -> list[str]:
        return list(self._event_columns)

    @property
    def person_columns(self) -> list[str]:
        return list(self._person_columns)

    def _collect(self, frame: pl.LazyFrame) -> pl.DataFrame:
        try:
            return frame.collect()
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise C2MError(f"{self.where}: query failed: {str(exc).splitlines()[0]}") from None

    def _check_by(self, by: Sequence[str], allow_events: bool) -> list[str]:
        """The ``by`` columns to take from the persons table."""
        from_persons = []
        for col in by:
            if allow_events and col in self._event_columns:
                continue
            if col in self._person_columns:
                from_persons.append(col)
                continue
            known = sorted(set(self._person_columns) | (set(self._event_columns) if allow_events else set()))
            raise C2MError(f"signals: by column {col!r} not found; expected some of {known}")
        return from_persons

    def level_counts(
        self, attributes: Sequence[str], by: Sequence[str], event_weights: Mapping[str, float]
    ) -> pl.DataFrame:
        weights = {k: w for k, w in check_event_weights(event_weights).items() if w > 0}
        missing = [a for a in attributes if a not in self._event_columns]
        if missing:
            raise C2MError(f"{self.where}: events missing attribute column(s) {missing}")
        clash = [c for c in by if c in attributes or c in ("attribute", "level")]
        if clash:
            raise C2MError(f"signals: by column(s) {clash} clash with the attribute/level columns")
        from_persons = self._check_by(by, allow_events=True)
        wt = pl.LazyFrame({"event_type": list(weights), "w": list(weights.values())})
        ev = self._events.select(
            "person_id",
            "event_type",
            *[c for c in by if c not in from_persons],
            *[pl.col(a).cast(pl.String) for a in attributes],
        ).join(wt, on="event_type")
        if from_persons:
            ev = ev.join(self._persons.select("person_id", *from_persons), on="person_id")
        long = ev.unpivot(
            on=list(attributes), index=["person_id", "w", *by], variable_name="attribute", value_name="level"
        ).drop_nulls("level")
        keys = [*by, "attribute", "level"]
        out = long.group_by(keys).agg(
            pl.len().cast(pl.Int64).alias("events"),
            pl.col("w").sum().cast(pl.Float64).alias("weight"),
            (pl.col("w") ** 2).sum().cast(pl.Float64).alias("weight_sq"),
            pl.col("person_id").n_unique().cast(pl.Int64).alias("n_persons"),
        )
        return self._collect(out.sort(keys))

    def person_activity(self, by: Sequence[str]) -> pl.DataFrame:
        self._check_by(by, allow_events=False)
        pe = self._events.group_by("person_id").agg(
            *[(pl.col("event_type") == k).sum().cast(pl.Int64).alias(f"n_{k}") for k in EVENT_TYPES]
        )
        joined = self._persons.join(pe, on="person_id", how="left")
        aggs = [
            pl.len().cast(pl.Int64).alias("persons"),
            *[pl.col(c).sum().cast(pl.Int64).alias(c) for c in ("home_charging", "owns_car", "app_user")],
            pl.col("daily_km").sum().cast(pl.Float64).alias("daily_km"),
            *[pl.col(f"n_{k}").fill_null(0).sum().cast(pl.Int64).alias(f"n_{k}") for k in EVENT_TYPES],
            (pl.col("n_order").fill_null(0) > 0).sum().cast(pl.Int64).alias("buyers"),
        ]
        out = joined.group_by(list(by)).agg(aggs).sort(list(by)) if by else joined.select(aggs)
        return self._collect(out)

    def band_counts(self, by: Sequence[str], column: str) -> pl.DataFrame:
        if column not in self._person_columns:
            raise C2MError(f"signals: persons have no column {column!r}")
        self._check_by(by, allow_events=False)
        keys = [*by, "value"]
        out = (
            self._persons.with_columns(pl.col(column).cast(pl.String).alias("value"))
            .group_by(keys)
            .agg(pl.len().cast(pl.Int64).alias("persons"))
            .sort(keys)
        )
        return self._collect(out)

    def membership_sums(self, by: Sequence[str], features: Sequence[str], gamma: np.ndarray) -> pl.DataFrame:
        schema = dict(self._persons.collect_schema())
        g = check_membership(by, features, gamma, schema, self.where)
        K = g.shape[0]
        z = [pl.col(f).cast(pl.Float64) for f in features]
        ok = pl.all_horizontal([c.is_finite().fill_null(False) for c in z]) if z else pl.lit(True)
        etas = []
        for k in range(K):
            eta = pl.lit(float(g[k, 0]), dtype=pl.Float64)
            for m, c in enumerate(z):
                eta = eta + pl.lit(float(g[k, m + 1]), dtype=pl.Float64) * c
            etas.append(pl.when(ok).then(eta).alias(f"_e{k}"))
        frame = self._persons.select(*by, ok.alias("_ok"), *etas)
        if K == 1:
            frame = frame.with_columns(pl.lit(1.0, dtype=pl.Float64).alias("w_0"))
        else:
            top = pl.max_horizontal([pl.col(f"_e{k}") for k in range(K)])
            frame = frame.with_columns(top.alias("_m"))
            total = pl.sum_horizontal([(pl.col(f"_e{k}") - pl.col("_m")).exp() for k in range(K)])
            frame = frame.with_columns(
                [((pl.col(f"_e{k}") - pl.col("_m")).exp() / total).alias(f"w_{k}") for k in range(K)]
            )
        aggs = [
            pl.len().cast(pl.Int64).alias("persons"),
            (~pl.col("_ok")).sum().cast(pl.Int64).alias("incomplete"),
            *[pl.col(f"w_{k}").filter(pl.col("_ok")).sum().cast(pl.Float64).alias(f"w_{k}") for k in range(K)],
        ]
        out = frame.group_by(list(by)).agg(aggs).sort(list(by), nulls_last=True) if by else frame.select(aggs)
        return self._collect(out)
