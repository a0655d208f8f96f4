"""The Spark engine gives the same tables as DuckDB (exact counts, 1e-9 rates), validation included.

One SparkSession in local[2] mode for the module (start-up takes seconds).
Skipped with a reason when pyspark or Java is missing (fails in CI, C2M_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from tests.conftest import skip_or_fail
from tests.signals.test_validate import NOW, PLANTED, PLANTED_ROWS, assert_same_table, make_bad_market

from c2m.domain import Project
from c2m.errors import C2MError
from c2m.signals import DuckDBEngine, Signals, SparkEngine, design_prior, spark_session
from c2m.signals._spark import resolve_master

WEIGHTS = {"view": 1.0, "search": 1.0, "cart": 3.0, "order": 10.0}


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    if importlib.util.find_spec("pyspark") is None:
        skip_or_fail("pyspark is not installed (pip install -e '.[spark]')")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        skip_or_fail("Java is not installed (Spark needs Java 17+)")
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = spark_session("local[2]", app_name="c2m-tests")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def engines(spark: Any, market_dir: Path) -> Iterator[tuple[DuckDBEngine, SparkEngine]]:
    duck, sp = DuckDBEngine(market_dir), SparkEngine(market_dir, session=spark)
    yield duck, sp
    duck.close()
    sp.close()  # does not stop a session it did not make


def _attributes(project: Project) -> list[str]:
    return [a.name for a in project.attributes if a.kind != "numeric"]


def test_session_settings(spark: Any) -> None:
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.sparkContext.master == "local[2]"
    assert int(spark.conf.get("spark.sql.shuffle.partitions")) <= 8


@pytest.mark.parametrize("by", [["month", "income_band"], []])
def test_level_counts_identical(engines: tuple[DuckDBEngine, SparkEngine], project: Project, by: list[str]) -> None:
    duck, sp = engines
    want = duck.level_counts(_attributes(project), by, WEIGHTS)
    got = sp.level_counts(_attributes(project), by, WEIGHTS)
    assert want.height > 20
    assert_same_table(got, want)


def test_person_activity_and_band_counts_identical(engines: tuple[DuckDBEngine, SparkEngine]) -> None:
    duck, sp = engines
    by = ["income_band", "age_band"]
    assert_same_table(sp.person_activity(by), duck.person_activity(by))
    assert_same_table(sp.band_counts([], "owns_car"), duck.band_counts([], "owns_car"))
    with pytest.raises(C2MError, match="clash"):
        sp.person_activity(["home_charging"])
    assert sp.event_columns == duck.event_columns
    assert sp.person_columns == duck.person_columns


def test_signals_public_functions_identical(spark: Any, market_dir: Path, project: Project) -> None:
    with Signals(market_dir) as duck, Signals(market_dir, engine="spark", session=spark) as sp:
        assert sp.engine.name == "spark"
        assert sp.check_events().rows == duck.check_events().rows
        want = duck.interest_by_level(project, by=("city", "age_band"))
        got = sp.interest_by_level(project, by=("city", "age_band"))
        assert_same_table(got, want)
        np.testing.assert_allclose(design_prior(project, got), design_prior(project, want), rtol=1e-9, atol=1e-12)
        for by in (("city",), ()):
            assert_same_table(sp.segment_profiles(by=by), duck.segment_profiles(by=by))
    assert spark.sparkContext._jsc is not None  # the shared session is still alive


def test_validation_identical(
    spark: Any, market_dir: Path, events: pl.DataFrame, project: Project, tmp_path_factory: pytest.TempPathFactory
) -> None:
    bad = make_bad_market(market_dir, events, tmp_path_factory.mktemp("bad") / "market")
    messages = []
    for engine, options in (("duckdb", {}), ("spark", {"session": spark})):
        with Signals(bad, engine=engine, now=NOW, **options) as sig, pytest.raises(C2MError) as info:
            sig.interest_by_level(project)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert f"{PLANTED_ROWS} of" in messages[1] and "4 unknown city" in messages[1]
    out = tmp_path_factory.mktemp("quarantine")
    tables = []
    for engine, options in (("duckdb", {}), ("spark", {"session": spark})):
        with Signals(bad, engine=engine, now=NOW, quarantine=out / f"{engine}.parquet", **options) as sig:
            assert sig.check_events().counts == PLANTED
            tables.append(sig.interest_by_level(project, by=("city",)))
    assert_same_table(tables[1], tables[0])
    with Signals(market_dir) as clean:
        assert_same_table(tables[1], clean.interest_by_level(project, by=("city",)))
    keys = ["reasons", "person_id", "ts", "event_type", "city"]
    q_duck = pl.read_parquet(out / "duckdb.parquet").sort(keys, nulls_last=True)
    q_spark = pl.read_parquet(out / "spark.parquet").sort(keys, nulls_last=True)
    assert q_spark.height == PLANTED_ROWS
    assert_same_table(q_spark, q_duck)


def test_spark_errors(spark: Any, market_dir: Path, tmp_path: Path, project: Project) -> None:
    sp = SparkEngine(market_dir, session=spark)
    with pytest.raises(C2MError, match="by column 'planet'"):
        sp.level_counts(_attributes(project), ["planet"], WEIGHTS)
    with pytest.raises(C2MError, match="event type 'click'"):
        sp.level_counts(_attributes(project), ["city"], {"click": 1.0})
    with pytest.raises(C2MError, match="persons have no column"):
        sp.band_counts([], "shoe_size")
    broken = tmp_path / "broken"
    (broken / "events" / "month=2025-01").mkdir(parents=True)
    pl.read_parquet(market_dir / "persons.parquet").write_parquet(broken / "persons.parquet")
    pl.DataFrame({"person_id": [1], "city": ["x"]}).write_parquet(broken / "events" / "month=2025-01" / "p.parquet")
    with pytest.raises(C2MError, match=r"missing column\(s\).*event_type"):
        SparkEngine(broken, session=spark)
    (broken / "events" / "month=2025-01" / "p.parquet").write_text("not parquet")
    with pytest.raises(C2MError, match="broken"):
        SparkEngine(broken, session=spark)


def test_master_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPARK_MASTER", raising=False)
    assert resolve_master() == "local[2]"
    monkeypatch.setenv("SPARK_MASTER", "spark://head:7077")
    assert resolve_master() == "spark://head:7077"
    assert resolve_master("local[1]") == "local[1]"
    with pytest.raises(C2MError, match="spark master"):
        resolve_master("local [2]")


def test_missing_pyspark_is_a_clear_error(market_dir: Path) -> None:
    """Without pyspark (hidden from the import system), engine='spark' names the extra to install."""
    import subprocess

    code = (
        "import sys; sys.modules['pyspark'] = None\n"
        "from c2m.errors import C2MError\n"
        "from c2m.signals import Signals\n"
        "try:\n"
        f"    Signals({str(market_dir)!r}, engine='spark')\n"
        "except C2MError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "needs pyspark" in done.stdout and "c2m[spark]" in done.stdout
