"""Spark engine: the same aggregates with the PySpark DataFrame API, for markets on a cluster.

Only the small aggregated results come back to the driver (as Arrow when the
PySpark version can, else as rows), converted to Polars frames with the same
columns, dtypes and row order as :class:`c2m.signals.DuckDBEngine`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from c2m.errors import C2MError

from ._engine import (
    ACTIVITY_COLUMNS,
    EVENT_COLUMNS,
    EVENT_TYPES,
    PERSON_COLUMNS,
    Engine,
    check_event_weights,
    check_membership,
)

if TYPE_CHECKING:
    from ._validate import EventRules

LOCAL_MASTER = "local[2]"
_QUIET = "ERROR"


def _require_pyspark() -> None:
    try:
        import pyspark  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        raise C2MError(
            "signals: engine 'spark' needs pyspark, which is not installed; "
            "install the spark extra (pip install 'c2m[spark]') or use engine='duckdb'"
        ) from None


def resolve_master(master: str | None = None) -> str:
    """The Spark master URL: ``master`` if given, else ``$SPARK_MASTER``, else ``local[2]``."""
    url = master or os.environ.get("SPARK_MASTER") or LOCAL_MASTER
    if not isinstance(url, str) or not url.strip() or any(ch.isspace() for ch in url):
        raise C2MError(f"spark master: expected a URL such as local[2] or spark://host:7077, got {url!r}")
    return url


def spark_session(
    master: str | None = None, app_name: str = "c2m-signals", config: Mapping[str, str] | None = None
) -> Any:
    """A SparkSession (the active one is reused by Spark) set up for the signals.

    ``master`` defaults to ``$SPARK_MASTER`` and then to ``local[2]``. The session
    time zone is UTC; in local mode shuffles use few partitions and
    ``SPARK_LOCAL_IP`` defaults to 127.0.0.1. ``config`` entries are passed to the
    builder last (they win). Logging is quiet (errors only).
    """
    _require_pyspark()
    from pyspark.sql import SparkSession  # type: ignore[import-not-found,unused-ignore]

    url = resolve_master(master)
    local = url.startswith("local")
    if local:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    settings: dict[str, str] = {
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    }
    if local:
        settings.update(
            {
                "spark.sql.shuffle.partitions": "4",
                "spark.default.parallelism": "2",
                "spark.ui.enabled": "false",
                "spark.driver.host": os.environ["SPARK_LOCAL_IP"],
                "spark.driver.bindAddress": os.environ["SPARK_LOCAL_IP"],
            }
        )
    settings["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile=file:{_quiet_log4j()}"
    settings.update({str(k): str(v) for k, v in (config or {}).items()})
    builder = SparkSession.builder.master(url).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # Java missing, bad master URL, port in use: Py4J / runtime errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise C2MError(
            f"signals: cannot start Spark (master {url!r}): {first}; Spark needs Java 17+ (java -version)"
        ) from None
    session.sparkContext.setLogLevel(_QUIET)
    return session


_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
"""


def _quiet_log4j() -> str:
    """A log4j2 configuration logging errors only (written once to the temp folder)."""
    import tempfile

    path = Path(tempfile.gettempdir()) / "c2m-spark-log4j2.properties"
    if not path.is_file() or path.read_text(encoding="utf-8") != _LOG4J:
        from c2m import _io

        _io.write_text(path, _LOG4J)
    return str(path)


def _to_polars(frame: Any) -> pl.DataFrame:
    """A small Spark DataFrame on the driver as a Polars frame (Arrow when available, else rows)."""
    if hasattr(frame, "toArrow"):  # PySpark >= 4.0
        out = pl.from_arrow(frame.toArrow())
        assert isinstance(out, pl.DataFrame)
        return out
    rows = frame.collect()
    return pl.DataFrame([tuple(r) for r in rows], schema=frame.columns, orient="row")


class SparkEngine(Engine):
    """Queries a market directory's Parquet files with Spark (``persons.parquet`` and hive ``events/``).

    ``session`` is an existing SparkSession; otherwise one is made by
    :func:`spark_session` from ``master`` and ``config``. ``close()`` stops the
    session only when the engine made it. On a cluster the market directory
    must be readable at the same path by the driver and the executors.
    """

    name = "spark"

    def __init__(
        self,
        market_dir: str | Path,
        session: Any = None,
        master: str | None = None,
        config: Mapping[str, str] | None = None,
    ):
        from ._duckdb import market_paths

        persons, events, _ = market_paths(market_dir)
        self.root = Path(market_dir)
        if session is None:
            _require_pyspark()
            from pyspark.sql import SparkSession  # type: ignore[import-not-found,unused-ignore]

            self._own_session = SparkSession.getActiveSession() is None  # never stop a session we did not make
        else:
            self._own_session = False
        self.spark = session if session is not None else spark_session(master, config=config)
        try:
            self._setup(persons, events)
        except BaseException:
            self.close()
            raise

    def _setup(self, persons: Path, events: Path) -> None:
        self._persons = self._read(persons, where=persons)
        self._events = self._read(events, where=events, hive=True)
        self._events_unchecked = self._events
        self._event_columns = list(self._events.columns)
        self._person_columns = list(self._persons.columns)
        self._event_dtypes = self._polars_schema(self._events_unchecked)
        self._person_dtypes = self._polars_schema(self._persons)
        missing = [c for c in EVENT_COLUMNS if c not in self._event_columns]
        if missing:
            raise C2MError(f"{events}: missing column(s) {missing}; found {self._event_columns}")
        missing = [c for c in PERSON_COLUMNS if c not in self._person_columns]
        if missing:
            raise C2MError(f"{persons}: missing column(s) {missing}; found {self._person_columns}")

    def _read(self, path: Path, where: Path, hive: bool = False) -> Any:
        """A lazy Spark DataFrame over a Parquet file, or over the hive partitions of the events folder."""
        conf = self.spark.conf
        key = "spark.sql.sources.partitionColumnTypeInference.enabled"
        before = conf.get(key, "true")
        try:
            conf.set(key, "false")  # month=2025-01 stays a string, as on DuckDB
            reader = self.spark.read.option("mergeSchema", "true")
            if hive:
                reader = reader.option("basePath", str(path))
                return reader.parquet(str(path / "month=*" / "*.parquet"))
            return reader.parquet(str(path))
        except Exception as exc:  # AnalysisException, SparkException: corrupt files, no files
            raise C2MError(f"{where}: cannot read as Parquet: {_first_line(exc)}") from None
        finally:
            conf.set(key, before)

    def _polars_schema(self, frame: Any) -> dict[str, pl.DataType]:
        """Polars dtypes of a Spark frame's columns (as read from the Parquet files)."""
        simple: dict[str, pl.DataType] = {
            "string": pl.String(),
            "bigint": pl.Int64(),
            "int": pl.Int32(),
            "smallint": pl.Int16(),
            "tinyint": pl.Int8(),
            "double": pl.Float64(),
            "float": pl.Float32(),
            "boolean": pl.Boolean(),
            "date": pl.Date(),
            "timestamp_ntz": pl.Datetime("us"),
            "timestamp": pl.Datetime("us", "UTC"),
        }
        kinds = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
        if all(k in simple for k in kinds.values()):
            return {name: simple[k] for name, k in kinds.items()}
        return dict(_to_polars(frame.limit(0)).schema)  # rarer types: as Arrow converts them

    def _collect(self, frame: Any, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
        """Run a query and return its (aggregated) result as a Polars frame with ``schema``."""
        try:
            out = _to_polars(frame)
        except C2MError:
            raise
        except Exception as exc:  # Py4J / Spark errors
            raise C2MError(f"{self.root}: Spark query failed: {_first_line(exc)}") from None
        if out.height == 0 and not out.columns:
            return pl.DataFrame(schema=dict(schema))
        return out.select([pl.col(c).cast(dtype) for c, dtype in schema.items()])

    @property
    def event_columns(self) -> list[str]:
        return list(self._event_columns)

    @property
    def person_columns(self) -> list[str]:
        return list(self._person_columns)

    def _by_source(self, by: Sequence[str], allow_events: bool) -> tuple[list[str], dict[str, pl.DataType]]:
        """The ``by`` columns taken from the persons table and the dtype of every ``by`` column."""
        from_persons: list[str] = []
        dtypes: dict[str, pl.DataType] = {}
        for col in by:
            if allow_events and col in self._event_columns:
                dtypes[col] = self._event_dtypes[col]
            elif col in self._person_columns:
                from_persons.append(col)
                dtypes[col] = self._person_dtypes[col]
            else:
                known = sorted(set(self._person_columns) | (set(self._event_columns) if allow_events else set()))
                raise C2MError(f"signals: by column {col!r} not found; expected some of {known}")
        return from_persons, dtypes

    @staticmethod
    def _order(keys: Sequence[str]) -> list[Any]:
        from pyspark.sql import functions as sf  # type: ignore[import-not-found,unused-ignore]

        return [sf.col(k).asc_nulls_last() for k in keys]  # DuckDB's ORDER BY default

    def level_counts(
        self, attributes: Sequence[str], by: Sequence[str], event_weights: Mapping[str, float]
    ) -> pl.DataFrame:
        from pyspark.sql import functions as sf  # type: ignore[import-not-found,unused-ignore]

        weights = {k: w for k, w in check_event_weights(event_weights).items() if w > 0}
        missing = [a for a in attributes if a not in self._event_columns]
        if missing:
            raise C2MError(f"{self.root / 'events'}: missing attribute column(s) {missing}")
        clash = [c for c in by if c in attributes or c in ("attribute", "level")]
        if clash:
            raise C2MError(f"signals: by column(s) {clash} clash with the attribute/level columns")
        from_persons, dtypes = self._by_source(by, allow_events=True)
        w = sf.lit(None).cast("double")
        for kind, value in reversed(list(weights.items())):
            w = sf.when(sf.col("event_type") == kind, sf.lit(float(value))).otherwise(w)
        ev = self._events.where(sf.col("event_type").isin(list(weights))).select(
            "person_id",
            *[c for c in by if c not in from_persons],
            w.alias("_w"),
            *[sf.col(a).cast("string").alias(a) for a in attributes],
        )
        if from_persons:
            ev = ev.join(self._persons.select("person_id", *from_persons), on="person_id")
        pairs = sf.array(*[sf.struct(sf.lit(a).alias("attribute"), sf.col(a).alias("level")) for a in attributes])
        long = (
            ev.select("person_id", "_w", *by, sf.explode(pairs).alias("_al"))
            .select("person_id", "_w", *by, "_al.attribute", "_al.level")
            .where(sf.col("level").isNotNull())
        )
        keys = [*by, "attribute", "level"]
        # two plain aggregations (per person, then per cell) instead of countDistinct, which Spark
        # plans with an Expand that doubles the rows: ~20% faster in local mode
        per_person = long.groupBy(*keys, "person_id").agg(
            sf.count(sf.lit(1)).alias("_n"),
            sf.sum("_w").alias("_sw"),
            sf.sum(sf.col("_w") * sf.col("_w")).alias("_sw2"),
        )
        out = (
            per_person.groupBy(*keys)
            .agg(
                sf.sum("_n").alias("events"),
                sf.sum("_sw").alias("weight"),
                sf.sum("_sw2").alias("weight_sq"),
                sf.count(sf.lit(1)).alias("n_persons"),
            )
            .orderBy(*self._order(keys))
        )
        schema: dict[str, pl.DataType] = {
            **dtypes,
            "attribute": pl.String(),
            "level": pl.String(),
            "events": pl.Int64(),
            "weight": pl.Float64(),
            "weight_sq": pl.Float64(),
            "n_persons": pl.Int64(),
        }
        return self._collect(out, schema)

    def person_activity(self, by: Sequence[str]) -> pl.DataFrame:
        from pyspark.sql import functions as sf  # type: ignore[import-not-found,unused-ignore]

        _, dtypes = self._by_source(by, allow_events=False)
        clash = [c for c in by if c in ACTIVITY_COLUMNS]
        if clash:
            raise C2MError(f"signals: by column(s) {clash} clash with the activity columns {list(ACTIVITY_COLUMNS)}")
        pe = self._events.groupBy("person_id").agg(
            *[sf.count(sf.when(sf.col("event_type") == k, 1)).alias(f"n_{k}") for k in EVENT_TYPES]
        )
        p = self._persons.select("person_id", *by, "home_charging", "owns_car", "app_user", "daily_km")
        joined = p.join(pe, on="person_id", how="left")
        aggs = [
            sf.count(sf.lit(1)).alias("persons"),
            *[sf.count(sf.when(sf.col(c), 1)).alias(c) for c in ("home_charging", "owns_car", "app_user")],
            sf.sum(sf.col("daily_km").cast("double")).alias("daily_km"),
            *[sf.coalesce(sf.sum(f"n_{k}"), sf.lit(0)).alias(f"n_{k}") for k in EVENT_TYPES],
            sf.count(sf.when(sf.col("n_order") > 0, 1)).alias("buyers"),
        ]
        out = joined.groupBy(*by).agg(*aggs).orderBy(*self._order(by)) if by else joined.agg(*aggs)
        schema: dict[str, pl.DataType] = {
            **dtypes,
            "persons": pl.Int64(),
            "home_charging": pl.Int64(),
            "owns_car": pl.Int64(),
            "app_user": pl.Int64(),
            "daily_km": pl.Float64(),
            **{f"n_{k}": pl.Int64() for k in EVENT_TYPES},
            "buyers": pl.Int64(),
        }
        return self._collect(out, schema)

    def band_counts(self, by: Sequence[str], column: str) -> pl.DataFrame:
        from pyspark.sql import functions as sf  # type: ignore[import-not-found,unused-ignore]

        if column not in self._person_columns:
            raise C2MError(f"signals: persons have no column {column!r}")
        _, dtypes = self._by_source(by, allow_events=False)
        keys = [*by, "value"]
        out = (
            self._persons.select(*by, sf.col(column).cast("string").alias("value"))
            .groupBy(*keys)
            .agg(sf.count(sf.lit(1)).alias("persons"))
            .orderBy(*self._order(keys))
        )
        return self._collect(out, {**dtypes, "value": pl.String(), "persons": pl.Int64()})

    # event validation hooks (see c2m.signals._validate)

    def _conditions(self, rules: EventRules) -> dict[str, Any]:
        """One never-null boolean Column per reason a row is bad."""
        from pyspark.sql import functions as sf  # type: ignore[import-not-found,unused-ignore]

        out: dict[str, Any] = {}
        for col in rules.required:
            out[f"missing_{col}"] = sf.col(col).isNull()
        ts = sf.col("ts")
        now = sf.lit(rules.now.strftime("%Y-%m-%d %H:%M:%S.%f")).cast(self._ts_type())  # read in UTC
        out["future_ts"] = ts.isNotNull() & (ts > now)
        city = sf.col("city")
        out["unknown_city"] = (
            city.isNotNull() & ~city.isin(list(rules.cities)) if rules.cities else city.isNotNull()
        )
        kind = sf.col("event_type")
        out["unknown_event_type"] = kind.isNotNull() & ~kind.isin(list(rules.event_types))
        return {k: sf.coalesce(v, sf.lit(False)) for k, v in out.items()}

    def _ts_type(self) -> str:
        """Spark type of the ``ts`` column (naive timestamps compare with a naive ``now``)."""
        kind = "timestamp"
        for field in self._events_unchecked.schema.fields:
            if field.name == "ts":
                kind = str(field.dataType.simpleString())
        if kind not in ("timestamp", "timestamp_ntz", "date"):
            raise C2MError(f"{self.root / 'events'}: column 'ts' has type {kind}, expected a timestamp")
        return kind

    def _bad(self, rules: EventRules) -> Any:
        from functools import reduce

        conditions = list(self._conditions(rules).values())
        return reduce(lambda a, b: a | b, conditions)

    def event_problem_counts(self, rules: EventRules) -> dict[str, int]:
        """Rows of the (unchecked) events and bad rows per reason (key ``rows``: all rows)."""
        from pyspark.sql import functions as sf  # type: ignore[import-not-found,unused-ignore]

        conditions = self._conditions(rules)
        aggs = [sf.count(sf.lit(1)).alias("rows")] + [sf.count(sf.when(c, 1)).alias(k) for k, c in conditions.items()]
        aggs.append(sf.count(sf.when(self._bad(rules), 1)).alias("bad_rows"))
        schema = {a: pl.Int64() for a in ["rows", *conditions, "bad_rows"]}
        frame = self._collect(self._events_unchecked.agg(*aggs), schema)
        return {k: int(v) for k, v in frame.row(0, named=True).items()}

    def event_problem_examples(self, rules: EventRules, reason: str, column: str, limit: int = 5) -> list[str]:
        """Up to ``limit`` distinct values of ``column`` in the rows bad for ``reason`` (sorted)."""
        from pyspark.sql import functions as sf  # type: ignore[import-not-found,unused-ignore]

        cond = self._conditions(rules)[reason]
        frame = (
            self._events_unchecked.where(cond)
            .select(sf.col(column).cast("string").alias("v"))
            .distinct()
            .orderBy("v")
            .limit(limit)
        )
        return [str(v) for v in self._collect(frame, {"v": pl.String()})["v"].to_list()]

    def write_bad_events(self, rules: EventRules, path: Path) -> int:
        """Write the bad rows with a ``reasons`` column to the Parquet file ``path`` (collected on the driver)."""
        from pyspark.sql import functions as sf  # type: ignore[import-not-found,unused-ignore]

        from c2m import _io

        conditions = self._conditions(rules)
        reasons = sf.concat_ws(",", *[sf.when(c, sf.lit(k)) for k, c in conditions.items()])
        columns = [c for c in self._event_columns if c != "month"]
        columns += ["month"] if "month" in self._event_columns else []
        bad = self._events_unchecked.where(self._bad(rules)).select(*columns, reasons.alias("reasons"))
        schema = {**{c: self._event_dtypes[c] for c in columns}, "reasons": pl.String()}
        frame = self._collect(bad, schema)
        _io.write_parquet(path, frame)
        return frame.height

    def keep_good_events(self, rules: EventRules) -> None:
        """From now on, queries see only the events no rule flags."""
        self._events = self._events_unchecked.where(~self._bad(rules))

    def membership_sums(self, by: Sequence[str], features: Sequence[str], gamma: np.ndarray) -> pl.DataFrame:
        from pyspark.sql import functions as sf  # type: ignore[import-not-found,unused-ignore]

        g = check_membership(by, features, gamma, self._person_dtypes, str(self.root / "persons.parquet"))
        K = g.shape[0]
        z = [sf.col(f).cast("double") for f in features]
        ok = sf.lit(True)
        for c in z:
            ok = ok & sf.coalesce(~sf.isnan(c) & (sf.abs(c) != sf.lit(float("inf"))), sf.lit(False))
        etas = []
        for k in range(K):
            eta = sf.lit(float(g[k, 0]))
            for m, c in enumerate(z):
                eta = eta + sf.lit(float(g[k, m + 1])) * c
            etas.append(sf.when(ok, eta).alias(f"_e{k}"))
        frame = self._persons.select(*by, ok.alias("_ok"), *etas)
        if K == 1:
            weights = [sf.lit(1.0).alias("w_0")]
        else:
            top = sf.greatest(*[sf.col(f"_e{k}") for k in range(K)])
            frame = frame.withColumn("_m", top)
            parts = [sf.exp(sf.col(f"_e{k}") - sf.col("_m")) for k in range(K)]
            total = parts[0]
            for part in parts[1:]:
                total = total + part
            weights = [(parts[k] / total).alias(f"w_{k}") for k in range(K)]
        frame = frame.select(*by, "_ok", *weights)
        aggs = [
            sf.count(sf.lit(1)).alias("persons"),
            sf.count(sf.when(~sf.col("_ok"), 1)).alias("incomplete"),
            *[sf.coalesce(sf.sum(sf.when(sf.col("_ok"), sf.col(f"w_{k}"))), sf.lit(0.0)).alias(f"w_{k}")
              for k in range(K)],
        ]
        out = frame.groupBy(*by).agg(*aggs).orderBy(*self._order(by)) if by else frame.agg(*aggs)
        schema: dict[str, pl.DataType] = {
            **{c: self._person_dtypes[c] for c in by},
            "persons": pl.Int64(),
            "incomplete": pl.Int64(),
            **{f"w_{k}": pl.Float64() for k in range(K)},
        }
        return self._collect(out, schema)

    def close(self) -> None:
        if self._own_session:
            self.spark.stop()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
