"""Event validation shared by every engine: bad rows are counted by reason, refused or quarantined.

A row of the events is bad when a required value is missing (``person_id``,
``ts``, ``city``, ``event_type``; a file without the column has it missing on
every row), when ``ts`` is in the future, when ``city`` is not one of the
project's (or the persons') cities or when ``event_type`` is unknown. Bad rows
are never dropped silently: :func:`validate_events` raises a :class:`C2MError`
giving the count per reason, or, with ``quarantine=PATH``, writes them (with a
``reasons`` column) to a Parquet file and lets the engine go on with the good
rows. Each engine counts, writes and filters where the data lives.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl

from c2m.errors import C2MError

from ._engine import EVENT_TYPES, Engine

if TYPE_CHECKING:
    from c2m.domain import Project

REQUIRED = ("person_id", "ts", "city", "event_type")
REASONS = (*(f"missing_{c}" for c in REQUIRED), "future_ts", "unknown_city", "unknown_event_type")
_EXAMPLES = {"unknown_city": "city", "unknown_event_type": "event_type"}


@dataclass(frozen=True)
class EventRules:
    """What a good event row is: known ``cities`` and ``event_types``, ``ts`` not after ``now`` (naive UTC)."""

    cities: tuple[str, ...]
    now: dt.datetime
    event_types: tuple[str, ...] = EVENT_TYPES
    required: tuple[str, ...] = REQUIRED

    def label(self, reason: str) -> str:
        if reason.startswith("missing_"):
            return f"missing {reason.removeprefix('missing_')}"
        if reason == "future_ts":
            return f"ts in the future (after {self.now:%Y-%m-%d %H:%M:%S} UTC)"
        if reason == "unknown_city":
            shown = ", ".join(self.cities[:12]) + (", ..." if len(self.cities) > 12 else "")
            return f"unknown city (known: {shown or 'none'})"
        if reason == "unknown_event_type":
            return f"unknown event_type (known: {', '.join(self.event_types)})"
        return reason


@dataclass(frozen=True)
class EventCheck:
    """The outcome of :func:`validate_events`: rows, bad rows, bad rows per reason, quarantine file."""

    rows: int
    bad_rows: int
    counts: dict[str, int]
    rules: EventRules
    examples: dict[str, list[str]] = field(default_factory=dict)
    quarantine: Path | None = None

    @property
    def good_rows(self) -> int:
        return self.rows - self.bad_rows

    def describe(self) -> str:
        """``N of M event rows are bad: k missing city, j unknown city (e.g. 'x'); ...``."""
        if not self.bad_rows:
            return f"all {self.rows:,} event rows are good"
        parts = []
        for reason in REASONS:
            n = self.counts.get(reason, 0)
            if n:
                seen = self.examples.get(reason)
                example = f" e.g. {', '.join(repr(v) for v in seen)}" if seen else ""
                parts.append(f"{n:,} {self.rules.label(reason)}{example}")
        return f"{self.bad_rows:,} of {self.rows:,} event rows are bad: " + "; ".join(parts)


class _Adapter(Protocol):
    def event_problem_counts(self, rules: EventRules) -> dict[str, int]: ...

    def event_problem_examples(self, rules: EventRules, reason: str, column: str, limit: int = 5) -> list[str]: ...

    def write_bad_events(self, rules: EventRules, path: Path) -> int: ...

    def keep_good_events(self, rules: EventRules) -> None: ...


def event_rules(
    engine: Engine,
    project: Project | None = None,
    cities: Sequence[str] | None = None,
    now: dt.datetime | None = None,
) -> EventRules:
    """Rules with the given ``cities``, else the project's, else the persons' cities; ``now`` defaults to now."""
    if cities is not None:
        known = tuple(str(c) for c in cities)
    elif project is not None and project.cities:
        known = tuple(c.name for c in project.cities)
    else:
        values = engine.band_counts([], "city")["value"].drop_nulls().to_list()
        known = tuple(sorted(str(v) for v in values))
    if now is None:
        moment = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    elif not isinstance(now, dt.datetime):
        raise C2MError(f"signals: now must be a datetime, got {type(now).__name__}")
    elif now.tzinfo is not None:
        moment = now.astimezone(dt.UTC).replace(tzinfo=None)
    else:
        moment = now
    return EventRules(cities=known, now=moment)


def _adapter(engine: Engine) -> _Adapter:
    from ._duckdb import DuckDBEngine
    from ._polars import PolarsEngine

    if isinstance(engine, DuckDBEngine):
        return _DuckDBEvents(engine)
    if isinstance(engine, PolarsEngine):
        return _PolarsEvents(engine)
    if all(hasattr(engine, m) for m in ("event_problem_counts", "write_bad_events", "keep_good_events")):
        return engine  # type: ignore[return-value]
    raise C2MError(f"signals: engine {engine.name!r} cannot validate events; pass validate=False to skip")


def validate_events(
    engine: Engine, rules: EventRules, quarantine: str | Path | None = None, where: str | Path = "events"
) -> EventCheck:
    """Count the bad event rows by reason; raise unless ``quarantine`` is given, then set them aside there.

    With ``quarantine``, the bad rows (all their columns plus ``reasons``,
    comma-separated) are written to that Parquet file (an empty file when there
    are none) and the engine's later queries see only the good rows.
    """
    adapter = _adapter(engine)
    counts = adapter.event_problem_counts(rules)
    rows, bad = counts.pop("rows"), counts.pop("bad_rows")
    examples: dict[str, list[str]] = {}
    for reason, column in _EXAMPLES.items():
        if counts.get(reason, 0):
            examples[reason] = adapter.event_problem_examples(rules, reason, column, 3)
    check = EventCheck(rows=rows, bad_rows=bad, counts=counts, rules=rules, examples=examples)
    if quarantine is None:
        if bad:
            raise C2MError(
                f"{where}: {check.describe()}; fix them, or quarantine them with quarantine=FILE "
                "(c2m signals --quarantine FILE) to go on with the good rows"
            )
        return check
    path = Path(quarantine)
    if path.exists() and path.is_dir():
        raise C2MError(f"{path}: quarantine must be a file path, not a folder")
    written = adapter.write_bad_events(rules, path)
    if written != bad:  # the data changed under us: never lose rows silently
        raise C2MError(f"{where}: counted {bad:,} bad event rows but quarantined {written:,}; are files changing?")
    if bad:
        adapter.keep_good_events(rules)
    return EventCheck(rows=rows, bad_rows=bad, counts=counts, rules=rules, examples=examples, quarantine=path)


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class _DuckDBEvents:
    """Validation on DuckDB: SQL over the ``events`` view, replaced by a filtered view when quarantining."""

    def __init__(self, engine: Any):
        self.engine = engine

    def _source(self) -> str:
        rows = self.engine._run("SELECT count(*) FROM duckdb_views() WHERE view_name = 'events_unchecked'")
        return "events_unchecked" if rows[0][0] else "events"

    def _conditions(self, rules: EventRules) -> dict[str, str]:
        types = {name: str(kind) for name, kind, *_ in self.engine._run(f"DESCRIBE {self._source()}")}
        ts_type = types.get("ts", "TIMESTAMP").upper()
        if "TIMESTAMP" not in ts_type and ts_type != "DATE":
            raise C2MError(f"{self.engine.root / 'events'}: column 'ts' has type {ts_type}, expected a timestamp")
        stamp = f"{rules.now:%Y-%m-%d %H:%M:%S.%f}"
        now = f"TIMESTAMPTZ '{stamp}+00'" if "TIME ZONE" in ts_type else f"TIMESTAMP '{stamp}'"
        out = {f"missing_{c}": f'"{c}" IS NULL' for c in rules.required}
        out["future_ts"] = f"ts IS NOT NULL AND ts > {now}"
        cities = ", ".join(_sql_string(c) for c in rules.cities)
        out["unknown_city"] = f"city IS NOT NULL AND city NOT IN ({cities})" if cities else "city IS NOT NULL"
        kinds = ", ".join(_sql_string(k) for k in rules.event_types)
        out["unknown_event_type"] = f"event_type IS NOT NULL AND event_type NOT IN ({kinds})"
        return {k: f"coalesce(({v}), false)" for k, v in out.items()}

    def event_problem_counts(self, rules: EventRules) -> dict[str, int]:
        cond = self._conditions(rules)
        filters = ", ".join(f"count(*) FILTER (WHERE {c}) AS {k}" for k, c in cond.items())
        bad = " OR ".join(cond.values())
        sql = f"SELECT count(*) AS rows, {filters}, count(*) FILTER (WHERE {bad}) AS bad_rows FROM {self._source()}"
        names = ["rows", *cond, "bad_rows"]
        return {k: int(v) for k, v in zip(names, self.engine._run(sql)[0], strict=True)}

    def event_problem_examples(self, rules: EventRules, reason: str, column: str, limit: int = 5) -> list[str]:
        cond = self._conditions(rules)[reason]
        sql = (
            f'SELECT DISTINCT CAST("{column}" AS VARCHAR) AS v FROM {self._source()} WHERE {cond} '
            f"ORDER BY v LIMIT {int(limit)}"
        )
        return [str(r[0]) for r in self.engine._run(sql)]

    def write_bad_events(self, rules: EventRules, path: Path) -> int:
        from c2m import _io

        cond = self._conditions(rules)
        columns = [c for c in self.engine.event_columns if c != "month"]
        columns += ["month"] if "month" in self.engine.event_columns else []
        reasons = "concat_ws(',', " + ", ".join(f"CASE WHEN {c} THEN '{k}' END" for k, c in cond.items()) + ")"
        select = ", ".join(f'"{c}"' for c in columns)
        written: list[int] = []

        def write(tmp: Path) -> None:
            where = " OR ".join(cond.values())
            sql = (
                f"COPY (SELECT {select}, {reasons} AS reasons FROM {self._source()} WHERE {where}) "
                f"TO {_sql_string(str(tmp))} (FORMAT PARQUET, COMPRESSION ZSTD)"
            )
            written.append(int(self.engine._run(sql)[0][0]))

        _io.atomic_write(path, write)
        return written[0]

    def keep_good_events(self, rules: EventRules) -> None:
        bad = " OR ".join(self._conditions(rules).values())
        if self._source() == "events":
            self.engine._run("ALTER VIEW events RENAME TO events_unchecked")
        self.engine._run(f"CREATE OR REPLACE VIEW events AS SELECT * FROM events_unchecked WHERE NOT ({bad})")


class _PolarsEvents:
    """Validation on the Polars engine: lazy expressions over its events frame."""

    def __init__(self, engine: Any):
        self.engine = engine
        if not hasattr(engine, "_events_unchecked"):
            engine._events_unchecked = engine._events

    def _conditions(self, rules: EventRules) -> dict[str, pl.Expr]:
        schema = self.engine._events_unchecked.collect_schema()
        ts_type = schema.get("ts")
        if isinstance(ts_type, pl.Datetime):
            now = pl.lit(rules.now, dtype=pl.Datetime(ts_type.time_unit))
            if ts_type.time_zone is not None:
                now = now.dt.replace_time_zone("UTC").dt.convert_time_zone(ts_type.time_zone)
        elif ts_type == pl.Date:
            now = pl.lit(rules.now.date())
        else:
            raise C2MError(f"{self.engine.where}: events column 'ts' has type {ts_type}, expected a timestamp")
        out = {f"missing_{c}": pl.col(c).is_null() for c in rules.required}
        out["future_ts"] = pl.col("ts").is_not_null() & (pl.col("ts") > now)
        out["unknown_city"] = pl.col("city").is_not_null() & ~pl.col("city").is_in(list(rules.cities))
        out["unknown_event_type"] = pl.col("event_type").is_not_null() & ~pl.col("event_type").is_in(
            list(rules.event_types)
        )
        return {k: v.fill_null(False) for k, v in out.items()}

    def _bad(self, rules: EventRules) -> pl.Expr:
        return pl.any_horizontal(list(self._conditions(rules).values()))

    def event_problem_counts(self, rules: EventRules) -> dict[str, int]:
        aggs = [pl.len().alias("rows")] + [c.sum().alias(k) for k, c in self._conditions(rules).items()]
        aggs.append(self._bad(rules).sum().alias("bad_rows"))
        frame = self.engine._collect(self.engine._events_unchecked.select(aggs))
        return {k: int(v) for k, v in frame.row(0, named=True).items()}

    def event_problem_examples(self, rules: EventRules, reason: str, column: str, limit: int = 5) -> list[str]:
        query = (
            self.engine._events_unchecked.filter(self._conditions(rules)[reason])
            .select(pl.col(column).cast(pl.String).alias("v"))
            .unique()
            .sort("v")
            .head(limit)
        )
        return [str(v) for v in self.engine._collect(query)["v"].to_list()]

    def write_bad_events(self, rules: EventRules, path: Path) -> int:
        from c2m import _io

        cond = self._conditions(rules)
        columns = [c for c in self.engine.event_columns if c != "month"]
        columns += ["month"] if "month" in self.engine.event_columns else []
        reasons = pl.concat_str([pl.when(c).then(pl.lit(k)) for k, c in cond.items()], separator=",", ignore_nulls=True)
        bad = self.engine._collect(
            self.engine._events_unchecked.filter(self._bad(rules)).select(*columns, reasons.alias("reasons"))
        )
        _io.write_parquet(path, bad)
        return bad.height

    def keep_good_events(self, rules: EventRules) -> None:
        self.engine._events = self.engine._events_unchecked.filter(~self._bad(rules))
