"""`c2m signals` and `c2m weight` run as a user runs them (subprocess): outputs, figures, errors."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tests.conftest import run_c2m, skip_or_fail
from tests.signals.test_validate import PLANTED, PLANTED_ROWS, assert_same_table, make_bad_market

from c2m.domain import Project
from c2m.signals import Signals


@pytest.fixture(scope="module")
def duck_out(market_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "signals"
    done = run_c2m(
        "signals", "--market", str(market_dir), "--engine", "duckdb", "--by", "city,age_band", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert "event rows are good" in done.stdout and "interest.parquet" in done.stdout
    return out


def test_signals_duckdb_writes_the_tables(duck_out: Path, market_dir: Path, project: Project) -> None:
    interest = pl.read_parquet(duck_out / "interest.parquet")
    segments = pl.read_parquet(duck_out / "segments.parquet")
    with Signals(market_dir) as sig:
        assert_same_table(interest, sig.interest_by_level(project, by=("city", "age_band")))
        assert_same_table(segments, sig.segment_profiles(by=("city",)))
    summary = json.loads((duck_out / "signals.json").read_text())
    assert summary["engine"] == "duckdb" and summary["bad_rows"] == 0 and summary["quarantine"] is None
    rows = pl.scan_parquet(market_dir / "events" / "**" / "*.parquet").select(pl.len()).collect().item()
    assert summary["rows"] == rows
    assert not list(duck_out.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_signals_bad_events_refused_then_quarantined(
    market_dir: Path, events: pl.DataFrame, tmp_path: Path, duck_out: Path
) -> None:
    bad = make_bad_market(market_dir, events, tmp_path / "bad")
    refused = run_c2m("signals", "--market", str(bad), "--out", str(tmp_path / "no"))
    assert refused.returncode == 2
    assert f"{PLANTED_ROWS} of" in refused.stderr and "unknown city" in refused.stderr
    assert "--quarantine" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "no").exists()
    target = tmp_path / "bad_rows.parquet"
    kept = run_c2m("signals", "--market", str(bad), "--by", "city,age_band", "--quarantine", str(target),
                   "--out", str(tmp_path / "ok"))
    assert kept.returncode == 0, kept.stderr
    assert "quarantined to" in kept.stdout
    assert pl.read_parquet(target).height == PLANTED_ROWS
    summary = json.loads((tmp_path / "ok" / "signals.json").read_text())
    assert summary["bad_rows"] == PLANTED_ROWS
    assert summary["bad_rows_by_reason"] == {k: v for k, v in PLANTED.items() if v}
    # once the bad rows are set aside, the tables are the clean market's
    assert_same_table(
        pl.read_parquet(tmp_path / "ok" / "interest.parquet"), pl.read_parquet(duck_out / "interest.parquet")
    )


def test_signals_option_errors(market_dir: Path, tmp_path: Path) -> None:
    cases = [
        (["--engine", "oracle"], "--engine: expected duckdb or spark"),
        (["--spark-master", "local[1]"], "--spark-master: only with --engine spark"),
        (["--by", "planet"], "by column 'planet'"),
        (["--segments", "month"], "by column 'month'"),
    ]
    for extra, message in cases:
        done = run_c2m("signals", "--market", str(market_dir), *extra, "--out", str(tmp_path / "x"))
        assert done.returncode == 2, (extra, done.stdout, done.stderr)
        assert message in done.stderr, done.stderr
    done = run_c2m("signals", "--market", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"))
    assert done.returncode == 2 and "nowhere" in done.stderr


def test_signals_spark_matches_duckdb(duck_out: Path, market_dir: Path, tmp_path: Path) -> None:
    if importlib.util.find_spec("pyspark") is None:
        skip_or_fail("pyspark is not installed (pip install -e '.[spark]')")
    if shutil.which("java") is None:
        skip_or_fail("Java is not installed (Spark needs Java 17+)")
    out = tmp_path / "spark"
    done = run_c2m("signals", "--market", str(market_dir), "--engine", "spark", "--spark-master", "local[2]",
                   "--by", "city,age_band", "--out", str(out))
    assert done.returncode == 0, done.stderr
    for name in ("interest.parquet", "segments.parquet"):
        assert_same_table(pl.read_parquet(out / name), pl.read_parquet(duck_out / name))
    assert json.loads((out / "signals.json").read_text())["engine"] == "spark"


@pytest.fixture(scope="module")
def survey(persons: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A biased sample: app users, young and middle-income people over-represented."""
    rng = np.random.default_rng(3)
    young = persons["age_band"].is_in(["18-24", "25-34"]).to_numpy()
    p = np.where(young, 3.0, 1.0) * np.where(persons["app_user"].to_numpy(), 2.0, 1.0)
    idx = rng.choice(persons.height, size=1500, replace=False, p=p / p.sum())
    path = tmp_path_factory.mktemp("weight") / "respondents.csv"
    persons[np.sort(idx)].write_csv(path)
    return path


def _figures(stdout: str) -> tuple[float, float]:
    flat = " ".join(stdout.split())
    deff = re.search(r"design effect ([0-9.]+)", flat)
    ess = re.search(r"effective sample size ([0-9,.]+)", flat)
    assert deff and ess, stdout
    return float(deff.group(1)), float(ess.group(1).replace(",", ""))


def test_weight_rakes_to_population_margins(
    survey: Path, market_dir: Path, persons: pl.DataFrame, project: Project, tmp_path: Path
) -> None:
    out = tmp_path / "weighted.parquet"
    done = run_c2m("weight", "--survey", str(survey), "--population", str(market_dir / "persons.parquet"),
                   "--margins", "city_tier,age,income", "--trim", "none", "--out", str(out))
    assert done.returncode == 0, done.stderr
    weighted = pl.read_parquet(out)
    sample = pl.read_csv(survey)
    assert weighted.drop("weight").equals(sample)  # the survey's rows and columns, plus the weights
    w = weighted["weight"].to_numpy()
    assert w.mean() == pytest.approx(1.0) and w.min() > 0
    tier = {c.name: f"tier {c.tier}" for c in project.cities}
    for column in ("age_band", "income_band", "city"):
        key = pl.col("city").replace_strict(tier) if column == "city" else pl.col(column)
        pop = persons.group_by(key.alias("k")).agg(pl.len() / persons.height)
        got = weighted.group_by(key.alias("k")).agg(pl.col("weight").sum() / w.sum())
        joined = pop.join(got, on="k", suffix="_w")
        assert joined.height == pop.height
        np.testing.assert_allclose(joined["weight"], joined["len"], atol=1e-6)
    deff, ess = _figures(done.stdout)
    kish = len(w) * np.sum(w**2) / np.sum(w) ** 2
    assert deff == pytest.approx(kish, abs=1e-3) and deff > 1.05  # the sample was biased
    assert ess == pytest.approx(len(w) / kish, abs=0.1)


def test_weight_trim_csv_and_errors(survey: Path, market_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "weighted.csv"
    population = str(market_dir / "persons.parquet")
    done = run_c2m("weight", "--survey", str(survey), "--population", population,
                   "--margins", "age_band,app_user", "--trim", "0.5,2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    w = pl.read_csv(out)["weight"].to_numpy()
    assert w.min() >= 0.5 * w.mean() - 1e-9 and w.max() <= 2.0 * w.mean() + 1e-9
    assert w.max() == pytest.approx(2.0, rel=1e-6)  # app users were 2x over-sampled: trimming binds
    cases = [
        (["--margins", "age_band,shoe_size"], "--margins: column 'shoe_size' not found in"),
        (["--margins", ""], "--margins: name at least one column"),
        (["--margins", "age_band", "--trim", "2,0.5"], "--trim: expected 0 <= LOW < 1 < HIGH"),
        (["--margins", "age_band", "--trim", "abc"], "--trim: expected LOW,HIGH"),
        (["--margins", "age_band", "--out", str(tmp_path / "w.txt")], "expected a .parquet or .csv file"),
    ]
    for extra, message in cases:
        args = ["weight", "--survey", str(survey), "--population", population]
        if "--out" not in extra:
            extra = [*extra, "--out", str(tmp_path / "w.parquet")]
        done = run_c2m(*args, *extra)
        assert done.returncode == 2, (extra, done.stdout, done.stderr)
        assert message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
