"""Event validation: bad rows counted per reason, refused or quarantined, the same on every engine."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest

from c2m.domain import Project
from c2m.errors import C2MError
from c2m.signals import REASONS, Signals, event_rules, validate_events

# bad rows planted by make_bad_market, per reason (a row can be bad for several reasons)
PLANTED = {
    "missing_person_id": 1,
    "missing_ts": 0,
    "missing_city": 4,  # a file without the city column
    "missing_event_type": 1,
    "future_ts": 3,
    "unknown_city": 4,
    "unknown_event_type": 2,
}
PLANTED_ROWS = 14  # 3 unknown cities, 2 unknown types, 2 future, 1 + 1 missing, 1 future + unknown, 4 no city
NOW = dt.datetime(2026, 1, 1)


def assert_same_table(got: pl.DataFrame, want: pl.DataFrame, rtol: float = 1e-9) -> None:
    """Same columns, dtypes and row order; integers, strings and flags equal, floats within ``rtol``."""
    assert got.columns == want.columns
    assert got.schema == want.schema
    assert got.height == want.height
    for name in got.columns:
        a, b = got[name], want[name]
        if a.dtype.is_float():
            assert a.is_null().equals(b.is_null()), name
            assert a.is_infinite().equals(b.is_infinite()), name
            ok = (a == b) | ((a - b).abs() <= rtol * b.abs().clip(lower_bound=1e-300)) | (a.is_nan() & b.is_nan())
            assert ok.fill_null(True).all(), f"{name}: {pl.DataFrame({'got': a, 'want': b}).filter(~ok)}"
        else:
            assert a.equals(b), name


def bad_rows(events: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(bad rows in 2025, future rows, rows of a file without ``city``) made from real events."""
    base = events.filter(pl.col("event_type") == "view").head(15)
    rows = base.head(10).with_row_index("k")
    k = pl.col("k")
    rows = rows.with_columns(
        city=pl.when(k < 3).then(pl.lit("Atlantis")).when(k == 9).then(pl.lit("El Dorado")).otherwise(pl.col("city")),
        event_type=pl.when(k.is_in([3, 4]))
        .then(pl.lit("click"))
        .when(k == 8)
        .then(None)
        .otherwise(pl.col("event_type")),
        person_id=pl.when(k == 7).then(None).otherwise(pl.col("person_id")),
        ts=pl.when(k.is_in([5, 6, 9])).then(pl.lit(dt.datetime(2100, 1, 5, 12))).otherwise(pl.col("ts")),
    )
    rows = rows.with_columns(pl.col("ts").cast(events.schema["ts"])).drop("k")
    future = rows.filter(pl.col("ts").dt.year() == 2100)
    present = rows.filter(pl.col("ts").dt.year() != 2100)
    no_city = base.tail(4).drop("city")
    return present, future, no_city


def make_bad_market(market_dir: Path, events: pl.DataFrame, out: Path) -> Path:
    """A copy of the market with bad rows planted in extra event files (one without the city column)."""
    if out.exists():
        return out
    shutil.copytree(market_dir, out)
    present, future, no_city = bad_rows(events)
    month = sorted(p.name for p in (out / "events").iterdir())[2]
    present.write_parquet(out / "events" / month / "part-9.parquet")
    (out / "events" / "month=2100-01").mkdir()
    future.write_parquet(out / "events" / "month=2100-01" / "part-0.parquet")
    no_city.write_parquet(out / "events" / month / "part-8.parquet")
    return out


@pytest.fixture(scope="module")
def bad_market(market_dir: Path, events: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bad_market(market_dir, events, tmp_path_factory.mktemp("bad") / "market")


def test_planted_rows_are_what_the_counts_say(events: pl.DataFrame) -> None:
    present, future, no_city = bad_rows(events)
    assert present.height + future.height + no_city.height == PLANTED_ROWS
    assert (present["city"] == "Atlantis").sum() + (future["city"] == "El Dorado").sum() == PLANTED["unknown_city"]


def test_clean_market_passes(market_dir: Path, events: pl.DataFrame) -> None:
    with Signals(market_dir, now=NOW) as sig:
        check = sig.check_events()
    assert check.rows == events.height and check.bad_rows == 0 and check.quarantine is None
    assert set(check.counts) == set(REASONS) and not any(check.counts.values())


def test_bad_rows_are_refused_with_counts_per_reason(bad_market: Path, events: pl.DataFrame, project: Project) -> None:
    sig = Signals(bad_market, now=NOW)  # nothing is read yet
    with pytest.raises(C2MError) as info:
        sig.interest_by_level(project)
    message = str(info.value)
    assert str(bad_market / "events") in message
    assert f"{PLANTED_ROWS} of {events.height + PLANTED_ROWS:,} event rows are bad" in message
    for text in ("1 missing person_id", "4 missing city", "1 missing event_type", "3 ts in the future",
                 "4 unknown city", "2 unknown event_type", "'Atlantis'", "'El Dorado'", "'click'", "quarantine"):
        assert text in message
    assert "missing ts" not in message
    with pytest.raises(C2MError, match="event rows are bad"):
        sig.segment_profiles()
    sig.close()


def test_quarantine_sets_bad_rows_aside_and_keeps_the_good(
    bad_market: Path, market_dir: Path, project: Project, tmp_path: Path
) -> None:
    target = tmp_path / "q" / "bad.parquet"
    with Signals(bad_market, now=NOW, quarantine=target) as sig:
        check = sig.check_events()
        interest = sig.interest_by_level(project, by=("city", "age_band"))
        profiles = sig.segment_profiles(by=("city",))
    assert check.bad_rows == PLANTED_ROWS and check.counts == PLANTED and check.quarantine == target
    bad = pl.read_parquet(target)
    assert bad.height == PLANTED_ROWS
    assert "reasons" in bad.columns and bad.columns[-2:] == ["month", "reasons"]
    flagged = bad["reasons"].str.split(",").explode().value_counts()
    assert dict(flagged.iter_rows()) == {k: v for k, v in PLANTED.items() if v}
    assert bad.filter(pl.col("city") == "El Dorado")["reasons"].to_list() == ["future_ts,unknown_city"]
    # the good rows are exactly the original market's events: same tables as the clean market
    with Signals(market_dir, now=NOW) as clean:
        assert interest.equals(clean.interest_by_level(project, by=("city", "age_band")))
        assert_same_table(profiles, clean.segment_profiles(by=("city",)))
    # a clean market writes an empty quarantine file (no stale rows from an earlier run)
    with Signals(market_dir, now=NOW, quarantine=target) as clean:
        assert clean.check_events().bad_rows == 0
    assert pl.read_parquet(target).height == 0


def test_now_project_cities_and_options(market_dir: Path, events: pl.DataFrame, project: Project) -> None:
    early = dt.datetime(2025, 7, 1)
    with Signals(market_dir, now=early) as sig, pytest.raises(C2MError) as info:
        sig.check_events()
    assert f"{(events['ts'] > early).sum():,} ts in the future (after 2025-07-01 00:00:00 UTC)" in str(info.value)
    aware = dt.datetime(2025, 7, 1, 8, tzinfo=dt.timezone(dt.timedelta(hours=8)))  # the same instant
    with Signals(market_dir, now=aware) as sig:
        rules = event_rules(sig.engine, now=aware)
        assert rules.now == early
    # cities come from the project when given: drop one and its events become unknown
    cities = sorted(events["city"].unique().to_list())
    smaller = project.model_copy(update={"cities": [c for c in project.cities if c.name != cities[0]]})
    with Signals(market_dir, project=smaller, now=NOW) as sig, pytest.raises(C2MError) as info:
        sig.check_events()
    assert f"{(events['city'] == cities[0]).sum():,} unknown city" in str(info.value)
    assert f"{cities[0]!r}" in str(info.value)
    with Signals(market_dir, validate=False, project=smaller) as sig:
        assert sig.segment_profiles(by=()).height == 1
        with pytest.raises(C2MError, match=r"'owns_car'.*profile measures"):
            sig.segment_profiles(by=("city", "owns_car"))
    with pytest.raises(C2MError, match="quarantine needs validate"):
        Signals(market_dir, validate=False, quarantine="x.parquet")
    with pytest.raises(C2MError, match="must be a file path"), Signals(market_dir, quarantine=market_dir) as sig:
        sig.check_events()


def test_polars_engine_validates_the_same(
    market_dir: Path, events: pl.DataFrame, project: Project, tmp_path: Path
) -> None:
    from c2m.data import read_market

    market = read_market(market_dir)
    present, future, no_city = bad_rows(events)
    planted = pl.concat([events, present, future, no_city], how="diagonal_relaxed")
    bad = dataclasses.replace(market, events=planted)
    with pytest.raises(C2MError) as info:
        Signals.from_market(bad, now=NOW).interest_by_level(project)
    assert f"{PLANTED_ROWS} of {planted.height:,} event rows are bad" in str(info.value)
    sig = Signals.from_market(bad, now=NOW, quarantine=tmp_path / "bad.parquet")
    assert sig.check_events().counts == PLANTED
    assert pl.read_parquet(tmp_path / "bad.parquet").height == PLANTED_ROWS
    clean = Signals.from_market(market, now=NOW).interest_by_level(project)
    assert sig.interest_by_level(project).equals(clean)


def test_engine_level_api_and_bad_ts_type(tmp_path: Path, market_dir: Path) -> None:
    from c2m.signals import DuckDBEngine

    broken = tmp_path / "m"
    shutil.copytree(market_dir, broken, ignore=shutil.ignore_patterns("events"))
    (broken / "events" / "month=2025-01").mkdir(parents=True)
    frame = pl.read_parquet(market_dir / "events" / "month=2025-01" / "part-0.parquet")
    frame.with_columns(pl.col("ts").cast(pl.String)).write_parquet(broken / "events" / "month=2025-01" / "p.parquet")
    engine = DuckDBEngine(broken)
    with pytest.raises(C2MError, match="column 'ts' has type VARCHAR, expected a timestamp"):
        validate_events(engine, event_rules(engine, now=NOW))
    engine.close()
