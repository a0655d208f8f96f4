"""DuckDB engine: SQL over the market's Parquet files, out of core, on one machine."""

from __future__ import annotations

import os
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

# bit-mask types for up to 8, 16, 32 and 64 levels (level_counts)
_MASK_TYPES = ((8, "UTINYINT"), (16, "USMALLINT"), (32, "UINTEGER"), (64, "UBIGINT"))


def _default_memory_limit() -> str:
    """3 GB, or 80% of the physical memory when that is less (DuckDB's own default is 80%)."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not on this platform
        return "3GB"
    return f"{min(3000, int(ram * 0.8 / 1e6))}MB"


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

    ``threads`` and ``memory_limit`` (e.g. ``"2GB"``; default 3 GB, or 80% of the RAM when
    that is less: enough for 50 M events, see benchmarks/README.md) are passed to DuckDB;
    above the memory limit DuckDB spills to ``temp_directory`` (default: a private folder in
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
        config["memory_limit"] = str(memory_limit) if memory_limit is not None else _default_memory_limit()
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

    def _frame(self, sql: str, tables: Mapping[str, pl.DataFrame] | None = None) -> pl.DataFrame:
        """Run a query (that may read the small frames ``tables`` by name) and return its result as a Polars frame."""
        import duckdb

        tables = dict(tables or {})
        try:
            for name, frame in tables.items():
                self._con.register(name, frame.to_arrow())
            table = self._con.sql(sql).to_arrow_table()
        except duckdb.Error as exc:
            raise C2MError(f"{self.root}: query failed: {str(exc).splitlines()[0]}") from None
        finally:
            for name in tables:
                self._con.unregister(name)
        out = pl.from_arrow(table)
        assert isinstance(out, pl.DataFrame)
        return out

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
        cols = [_ident(c) for c in by]
        keys = [*cols, "attribute", "level"]
        # 1. events and weights per cell x attribute x level: one scan, one small grouping set per attribute
        inner = ", ".join([*by_exprs, *(f"CAST(e.{_ident(a)} AS VARCHAR) AS {_ident(a)}" for a in attributes)])
        join = "JOIN persons p ON p.person_id = e.person_id" if need_persons else ""
        sets = ", ".join("(" + ", ".join([*cols, _ident(a)]) + ")" for a in attributes)
        which = " ".join(f"WHEN GROUPING({_ident(a)}) = 0 THEN {_literal(a)}" for a in attributes)
        level = " ".join(f"WHEN GROUPING({_ident(a)}) = 0 THEN {_ident(a)}" for a in attributes)
        outer = ", ".join([*cols, f"CASE {which} END AS attribute", f"CASE {level} END AS level"])
        counts = self._frame(f"""
            SELECT * FROM (
                SELECT {outer},
                    CAST(count(*) AS BIGINT) AS events,
                    CAST(sum(w) AS DOUBLE) AS weight,
                    CAST(sum(w * w) AS DOUBLE) AS weight_sq
                FROM (SELECT {inner}, CASE e.event_type {cases} END AS w
                      FROM events e {join} WHERE e.event_type IN ({kinds}))
                GROUP BY GROUPING SETS ({sets})
            ) WHERE level IS NOT NULL
        """)
        # 2. distinct persons per cell x level without count(DISTINCT) (which cannot spill): per person
        # and event cell, one bit mask per attribute of the levels seen (a GROUP BY, which spills), then
        # the persons with each bit set per cell; person columns are joined to the ~persons masks only
        bits: list[tuple[str, str, str, int]] = []  # attribute, level, mask column, bit
        masks: list[str] = []
        for a in attributes:
            seen = sorted(set(counts.filter(pl.col("attribute") == a)["level"].to_list()))
            for start in range(0, len(seen), 64):
                chunk, col = seen[start : start + 64], f"_m{len(masks)}"
                kind = next(t for n, t in _MASK_TYPES if len(chunk) <= n)
                when = " ".join(f"WHEN {_literal(lv)} THEN CAST({1 << i} AS {kind})" for i, lv in enumerate(chunk))
                masks.append(f"bit_or(CASE CAST(e.{_ident(a)} AS VARCHAR) {when} END) AS {col}")
                bits.extend((a, lv, col, i) for i, lv in enumerate(chunk))
        if not bits:  # no events with a level
            return counts.with_columns(pl.lit(0, dtype=pl.Int64).alias("n_persons"))
        event_by = [_ident(c) for c in by if c in self._event_columns and c != "person_id"]
        person_by = [_ident(c) for c in by if c not in self._event_columns]
        per_person = ", ".join(["e.person_id AS person_id", *(f"e.{c} AS {c}" for c in event_by), *masks])
        person_keys = ", ".join(["e.person_id", *(f"e.{c}" for c in event_by)])
        cell = [f"{'p' if c in person_by else 's'}.{c} AS {c}" for c in cols]
        per_bit = [f"CAST(count(*) FILTER (WHERE ({col} >> {i}) & 1 = 1) AS BIGINT) AS _b{j}"
                   for j, (_, _, col, i) in enumerate(bits)]
        join = (
            f"JOIN (SELECT DISTINCT {', '.join(['person_id', *person_by])} FROM persons) p ON p.person_id = s.person_id"
            if need_persons
            else ""
        )
        group = f"GROUP BY {', '.join(cols)}" if by else ""
        names = ", ".join(f"('_b{j}', {_literal(a)}, {_literal(lv)})" for j, (a, lv, _, _) in enumerate(bits))
        on = " AND ".join(f"c.{k} IS NOT DISTINCT FROM n.{k}" for k in keys)
        sql = f"""
            WITH s AS (
                SELECT {per_person} FROM events e
                WHERE e.event_type IN ({kinds}) AND e.person_id IS NOT NULL
                GROUP BY {person_keys}
            ), wide AS (
                SELECT {", ".join([*cell, *per_bit])} FROM s {join} {group}
            ), n AS (
                SELECT w.* EXCLUDE (_bit), b.attribute, b.level
                FROM (UNPIVOT wide ON COLUMNS('^_b[0-9]+$') INTO NAME _bit VALUE n_persons) w
                JOIN (VALUES {names}) b(_bit, attribute, level) ON b._bit = w._bit
            )
            SELECT c.*, coalesce(n.n_persons, 0) AS n_persons
            FROM _lc_counts c LEFT JOIN n ON {on}
            ORDER BY {", ".join(f"c.{k}" for k in keys)}
        """
        return self._frame(sql, tables={"_lc_counts": counts})

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
