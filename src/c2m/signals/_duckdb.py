"""DuckDB engine: SQL over the market's Parquet files, out of core, on one machine."""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from c2m.errors import C2MError

from ._engine import EVENT_COLUMNS, EVENT_TYPES, PERSON_COLUMNS, Engine, check_event_weights, check_membership


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def market_paths(market_dir: str | Path) -> tuple[Path, Path, list[Path]]:
    """The persons file, events folder and event files of a market directory (checked)."""
    root = Path(market_dir)
    if not root.is_dir():
        raise C2MError(f"{root}: market directory not found")
    persons = root / "persons.parquet"
    if not persons.is_file():
        raise C2MError(f"{persons}: file not found (a market directory holds persons.parquet and events/)")
    events = root / "events"
    if not events.is_dir():
        raise C2MError(f"{events}: folder not found (a market directory holds persons.parquet and events/)")
    files = sorted(events.glob("month=*/*.parquet"))
    if not files:
        raise C2MError(f"{events}: no event files (expected hive partitions month=YYYY-MM/part-0.parquet)")
    return persons, events, files


class DuckDBEngine(Engine):
    """Queries the Parquet files of a market directory with DuckDB (nothing is loaded up front).

    ``threads`` and ``memory_limit`` (e.g. ``"2GB"``) are passed to DuckDB; above
    the memory limit DuckDB spills to ``temp_directory`` (default: a private folder in
    the system's temporary directory, removed on :meth:`close`; never the working folder).
    """

    name = "duckdb"

    def __init__(
        self,
        market_dir: str | Path,
        threads: int | None = None,
        memory_limit: str | None = None,
        temp_directory: str | Path | None = None,
    ):
        import duckdb

        persons, events, _ = market_paths(market_dir)
        self.root = Path(market_dir)
        config: dict[str, Any] = {}
        if threads is not None:
            config["threads"] = int(threads)
        if memory_limit is not None:
            config["memory_limit"] = str(memory_limit)
        self._own_temp = temp_directory is None
        self._temp = Path(tempfile.mkdtemp(prefix="c2m-duckdb-")) if temp_directory is None else Path(temp_directory)
        config["temp_directory"] = str(self._temp)
        config["preserve_insertion_order"] = False  # results are ordered explicitly; lets DuckDB stream
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._temp, True) if self._own_temp else None
        try:
            self._con = duckdb.connect(":memory:", config=config)
        except duckdb.Error as exc:
            if self._cleanup is not None:
                self._cleanup()
            raise C2MError(f"signals: cannot start DuckDB: {str(exc).splitlines()[0]}") from None
        glob = str(events / "month=*" / "*.parquet")
        self._run(
            f"CREATE VIEW events AS SELECT * FROM read_parquet({_literal(glob)}, hive_partitioning = true, "
            "hive_types_autocast = false, union_by_name = true)",
            where=events,
        )
        self._run(f"CREATE VIEW persons AS SELECT * FROM read_parquet({_literal(str(persons))})", where=persons)
        self._event_columns = [row[0] for row in self._run("DESCRIBE events", where=events)]
        self._person_columns = [row[0] for row in self._run("DESCRIBE persons", where=persons)]
        missing = [c for c in EVENT_COLUMNS if c not in self._event_columns]
        if missing:
            raise C2MError(f"{events}: missing column(s) {missing}; found {self._event_columns}")
        missing = [c for c in PERSON_COLUMNS if c not in self._person_columns]
        if missing:
            raise C2MError(f"{persons}: missing column(s) {missing}; found {self._person_columns}")

    def _run(self, sql: str, where: Path | None = None) -> list[tuple[Any, ...]]:
        """Run a statement and fetch all its (few) rows."""
        import duckdb

        try:
            return list(self._con.execute(sql).fetchall())
        except duckdb.Error as exc:
            place = where if where is not None else self.root
            raise C2MError(f"{place}: query failed: {str(exc).splitlines()[0]}") from None

    def _frame(self, sql: str) -> pl.DataFrame:
        """Run a query and return its (aggregated) result as a Polars frame."""
        import duckdb

        try:
            table = self._con.sql(sql).to_arrow_table()
        except duckdb.Error as exc:
            raise C2MError(f"{self.root}: query failed: {str(exc).splitlines()[0]}") from None
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return frame

    @property
    def event_columns(self) -> list[str]:
        return list(self._event_columns)

    @property
    def person_columns(self) -> list[str]:
        return list(self._person_columns)

    def _by_select(self, by: Sequence[str], allow_events: bool) -> tuple[list[str], bool]:
        """SELECT expressions of the ``by`` columns and whether the persons table is needed."""
        exprs: list[str] = []
        need_persons = False
        for col in by:
            if allow_events and col in self._event_columns:
                exprs.append(f"e.{_ident(col)} AS {_ident(col)}")
            elif col in self._person_columns:
                exprs.append(f"p.{_ident(col)} AS {_ident(col)}")
                need_persons = True
            else:
                known = sorted(set(self._person_columns) | (set(self._event_columns) if allow_events else set()))
                raise C2MError(f"signals: by column {col!r} not found; expected some of {known}")
        return exprs, need_persons

    def level_counts(
        self, attributes: Sequence[str], by: Sequence[str], event_weights: Mapping[str, float]
    ) -> pl.DataFrame:
        weights = {k: w for k, w in check_event_weights(event_weights).items() if w > 0}
        missing = [a for a in attributes if a not in self._event_columns]
        if missing:
            raise C2MError(f"{self.root / 'events'}: missing attribute column(s) {missing}")
        clash = [c for c in by if c in attributes or c in ("attribute", "level")]
        if clash:
            raise C2MError(f"signals: by column(s) {clash} clash with the attribute/level columns")
        by_exprs, need_persons = self._by_select(by, allow_events=True)
        cases = " ".join(f"WHEN {_literal(k)} THEN CAST({w!r} AS DOUBLE)" for k, w in weights.items())
        kinds = ", ".join(_literal(k) for k in weights)
        attr_exprs = [f"CAST(e.{_ident(a)} AS VARCHAR) AS {_ident(a)}" for a in attributes]
        join = "JOIN persons p ON p.person_id = e.person_id" if need_persons else ""
        keys = ", ".join([*(_ident(c) for c in by), "attribute", "level"])
        # weights as a CASE (not a join); one aggregate per attribute (not an UNPIVOT): the distinct
        # counts stay small enough to hold 50 M events in ~2 GB, where one big count(DISTINCT) cannot spill
        group = ", ".join([*(_ident(c) for c in by), "level"])
        parts = [
            f"""SELECT {", ".join([*(_ident(c) for c in by), f"{_literal(a)} AS attribute", f"{_ident(a)} AS level"])},
                CAST(count(*) AS BIGINT) AS events,
                CAST(sum(w) AS DOUBLE) AS weight,
                CAST(sum(w * w) AS DOUBLE) AS weight_sq,
                CAST(count(DISTINCT person_id) AS BIGINT) AS n_persons
            FROM ev WHERE {_ident(a)} IS NOT NULL
            GROUP BY {group}"""
            for a in attributes
        ]
        sql = f"""
            WITH ev AS (
                SELECT {", ".join(["e.person_id AS person_id", *by_exprs, *attr_exprs])},
                    CASE e.event_type {cases} END AS w
                FROM events e {join}
                WHERE e.event_type IN ({kinds})
            )
            SELECT * FROM ({" UNION ALL ".join(parts)})
            ORDER BY {keys}
        """
        return self._frame(sql)

    def person_activity(self, by: Sequence[str]) -> pl.DataFrame:
        by_exprs, _ = self._by_select(by, allow_events=False)
        counts = ", ".join(
            f"CAST(count(*) FILTER (WHERE event_type = {_literal(k)}) AS BIGINT) AS n_{k}" for k in EVENT_TYPES
        )
        sums = ", ".join(f"CAST(coalesce(sum(pe.n_{k}), 0) AS BIGINT) AS n_{k}" for k in EVENT_TYPES)
        group = f"GROUP BY {', '.join(_ident(c) for c in by)} ORDER BY {', '.join(_ident(c) for c in by)}"
        sql = f"""
            WITH pe AS (SELECT person_id, {counts} FROM events GROUP BY person_id)
            SELECT {", ".join([*by_exprs, "CAST(count(*) AS BIGINT) AS persons"])},
                CAST(count(*) FILTER (WHERE p.home_charging) AS BIGINT) AS home_charging,
                CAST(count(*) FILTER (WHERE p.owns_car) AS BIGINT) AS owns_car,
                CAST(count(*) FILTER (WHERE p.app_user) AS BIGINT) AS app_user,
                CAST(sum(p.daily_km) AS DOUBLE) AS daily_km,
                {sums},
                CAST(count(*) FILTER (WHERE pe.n_order > 0) AS BIGINT) AS buyers
            FROM persons p LEFT JOIN pe ON pe.person_id = p.person_id
            {group if by else ""}
        """
        return self._frame(sql)

    def band_counts(self, by: Sequence[str], column: str) -> pl.DataFrame:
        if column not in self._person_columns:
            raise C2MError(f"signals: persons have no column {column!r}")
        by_exprs, _ = self._by_select(by, allow_events=False)
        keys = [*(_ident(c) for c in by), "value"]
        sql = f"""
            SELECT {", ".join([*by_exprs, f"CAST(p.{_ident(column)} AS VARCHAR) AS value"])},
                CAST(count(*) AS BIGINT) AS persons
            FROM persons p GROUP BY {", ".join(keys)} ORDER BY {", ".join(keys)}
        """
        return self._frame(sql)

    def membership_sums(self, by: Sequence[str], features: Sequence[str], gamma: np.ndarray) -> pl.DataFrame:
        schema = dict(self._frame("SELECT * FROM persons LIMIT 0").schema)
        g = check_membership(by, features, gamma, schema, str(self.root / "persons.parquet"))
        K = g.shape[0]

        def num(x: float) -> str:  # string -> DOUBLE is correctly rounded (a bare 0.1 would be a DECIMAL)
            return f"CAST({_literal(repr(float(x)))} AS DOUBLE)"

        z = [f"CAST(p.{_ident(f)} AS DOUBLE)" for f in features]
        ok = " AND ".join(f"coalesce(isfinite({c}), false)" for c in z) or "true"
        etas = [" + ".join([num(g[k, 0]), *(f"{num(g[k, m + 1])} * {c}" for m, c in enumerate(z))]) for k in range(K)]
        if K == 1:
            weights = ["CAST(1.0 AS DOUBLE) AS w_0"]
        else:
            top = f"greatest({', '.join(f'_e{k}' for k in range(K))})"
            total = " + ".join(f"exp(_e{k} - _m)" for k in range(K))
            weights = [f"exp(_e{k} - _m) / ({total}) AS w_{k}" for k in range(K)]
        keys = [_ident(c) for c in by]
        group = f"GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}" if by else ""
        sql = f"""
            WITH e AS (
                SELECT {", ".join([*(f"p.{k} AS {k}" for k in keys), f"({ok}) AS _ok",
                                   *(f"CASE WHEN {ok} THEN {eta} END AS _e{k}" for k, eta in enumerate(etas))])}
                FROM persons p
            ), m AS (
                SELECT *, {top if K > 1 else "CAST(0.0 AS DOUBLE)"} AS _m FROM e
            ), w AS (
                SELECT {", ".join([*keys, "_ok", *weights])} FROM m
            )
            SELECT {", ".join([*keys, "CAST(count(*) AS BIGINT) AS persons",
                               "CAST(count(*) FILTER (WHERE NOT _ok) AS BIGINT) AS incomplete",
                               *(f"CAST(coalesce(sum(w_{k}) FILTER (WHERE _ok), 0) AS DOUBLE) AS w_{k}"
                                 for k in range(K))])}
            FROM w {group}
        """
        return self._frame(sql)

    def close(self) -> None:
        self._con.close()
        if self._cleanup is not None:
            self._cleanup()
