"""Population scoring: expected shares by city for every person, identical on DuckDB, Polars and Spark.

The reference is an independent in-Python computation: class probabilities per person from the
fitted membership coefficients with NumPy, times the MarketSimulator's shares of each class,
averaged by city. Spark tests share one local[2] session for the module.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from tests.conftest import run_c2m, skip_or_fail

from c2m.choice import LatentClassLogit, MultinomialLogit, save_model
from c2m.data import generate_market, sample_respondents, simulate_responses
from c2m.domain import FeatureCoder, Project, enumerate_profiles
from c2m.errors import C2MError
from c2m.market import MarketSimulator
from c2m.pipeline._stages import choice_data, simulator_for_model
from c2m.signals import DuckDBEngine, PolarsEngine, SparkEngine, score_population, spark_session
from c2m.survey import make_design

TRAITS = ["daily_km", "home_charging", "owns_car"]
RATE_TOL = 1e-9


@pytest.fixture(scope="module")
def fitted(project: Project) -> tuple[LatentClassLogit, MultinomialLogit]:
    """A latent class model with membership on person traits, and an MNL, fitted to a simulated survey."""
    market = generate_market(project, n_persons=8_000, seed=3)
    design = make_design(project, n_versions=6, seed=3)
    respondents = sample_respondents(market, n=300, seed=3)
    responses = simulate_responses(market, design.frame, respondents, seed=3)
    data = choice_data(project, responses)
    lc = LatentClassLogit(n_classes=3, membership_features=TRAITS, n_starts=2, seed=0).fit(
        data, persons=respondents.rename({"person_id": "id"})
    )
    return lc, MultinomialLogit().fit(data)


@pytest.fixture(scope="module")
def line(project: Project) -> list[dict[str, Any]]:
    profiles = enumerate_profiles(project)
    rng = np.random.default_rng(0)
    return [profiles[i] for i in rng.choice(len(profiles), size=2, replace=False)]


def _reference(
    project: Project, model: LatentClassLogit, line: list[dict[str, Any]], persons: pl.DataFrame, by: list[str]
) -> pl.DataFrame:
    """Shares per cell computed person by person in NumPy (membership logit x class logit shares)."""
    Z = np.column_stack([np.ones(persons.height), persons.select([pl.col(t).cast(pl.Float64) for t in TRAITS])])
    gamma = np.vstack([np.zeros((1, Z.shape[1])), model.membership_coef_])
    eta = Z @ gamma.T
    pi = np.exp(eta - eta.max(axis=1, keepdims=True))
    pi /= pi.sum(axis=1, keepdims=True)
    order = [model.feature_names_.index(n) for n in FeatureCoder.from_project(project).feature_names]
    class_shares = np.stack(
        [MarketSimulator(project, model.coef_[k, order]).shares(line)["share"].to_numpy() for k in range(len(gamma))]
    )
    person_shares = pi @ class_shares  # (persons, products)
    products = MarketSimulator(project, model.coef_[0, order]).shares(line)["product"].to_list()
    frame = persons.select(by).with_columns(
        [pl.Series(p, person_shares[:, j]) for j, p in enumerate(products)]
    )
    means = frame.group_by(by).agg(pl.len().alias("persons"), *[pl.col(p).mean() for p in products]).sort(by)
    return means.unpivot(index=[*by, "persons"], on=products, variable_name="product", value_name="share")


def _same(got: pl.DataFrame, want: pl.DataFrame, keys: list[str]) -> None:
    assert got.columns == want.columns
    assert got.height == want.height
    for col in got.columns:
        a, b = got[col], want[col]
        if a.dtype.is_float():
            np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=RATE_TOL, atol=RATE_TOL, err_msg=col)
        else:
            assert a.to_list() == b.to_list(), col


def test_latent_class_shares_by_city_match_a_person_by_person_computation(
    market_dir: Path, project: Project, persons: pl.DataFrame, fitted: Any, line: list[dict[str, Any]]
) -> None:
    lc, _ = fitted
    assert np.abs(lc.membership_coef_[:, 1:]).max() > 1e-3  # the traits matter to membership
    got = score_population(market_dir, project, lc, line, by="city", engine="duckdb")
    want = _reference(project, lc, line, persons, ["city"])
    joined = got.join(want, on=["city", "product"], how="full", suffix="_ref")
    assert joined.height == got.height == want.height == persons["city"].n_unique() * (len(line) + 6)
    assert (joined["persons"] == joined["persons_ref"]).all()
    np.testing.assert_allclose(joined["share"], joined["share_ref"], rtol=0, atol=1e-12)
    sums = got.group_by("city").agg(pl.col("share").sum())
    np.testing.assert_allclose(sums["share"], 1.0, atol=1e-12)
    # membership on traits makes cities differ (the share of our line is not the same everywhere)
    ours = got.filter(pl.col("product") == "V1")["share"]
    assert ours.max() - ours.min() > 1e-4
    # buyers per year = share x the city's market size
    sizes = {c.name: c.market_size for c in project.cities}
    expected = got["share"] * got["city"].replace_strict(sizes, return_dtype=pl.Float64)
    np.testing.assert_allclose(got["buyers"], expected, rtol=1e-12)
    assert got["product"].to_list()[: len(line) + 6] == ["V1", "V2", *(c.name for c in project.competitors), "none"]


def test_cells_without_city_still_size_buyers_by_city(
    market_dir: Path, project: Project, persons: pl.DataFrame, fitted: Any, line: list[dict[str, Any]]
) -> None:
    lc, _ = fitted
    by_city = score_population(market_dir, project, lc, line, by="city", engine="polars")
    by_age = score_population(market_dir, project, lc, line, by=["age_band"], engine="duckdb")
    everyone = score_population(market_dir, project, lc, line, by=[], engine="duckdb")
    want = _reference(project, lc, line, persons, ["age_band"])
    joined = by_age.join(want, on=["age_band", "product"], suffix="_ref")
    assert joined.height == by_age.height
    np.testing.assert_allclose(joined["share"], joined["share_ref"], rtol=0, atol=1e-12)
    assert everyone.height == len(line) + 6 and everyone["persons"][0] == persons.height
    # buyers add up whatever the cells: the whole population = the sum over cities = the sum over age bands
    total = everyone.select("product", "buyers")
    for table in (by_city, by_age):
        sums = table.group_by("product").agg(pl.col("buyers").sum())
        check = total.join(sums, on="product", suffix="_sum")
        np.testing.assert_allclose(check["buyers"], check["buyers_sum"], rtol=1e-12)
    # the population share is the person-weighted mean of the cities' shares
    mean_v1 = by_city.filter(product="V1").select((pl.col("share") * pl.col("persons")).sum() / pl.col("persons").sum())
    assert everyone.filter(product="V1")["share"][0] == pytest.approx(mean_v1.item(), abs=1e-12)


def test_duckdb_and_polars_give_the_same_table(
    market_dir: Path, project: Project, fitted: Any, line: list[dict[str, Any]]
) -> None:
    lc, _ = fitted
    by = ["income_band", "app_user"]
    duck = score_population(market_dir, project, lc, line, by=by, engine="duckdb")
    polars = score_population(market_dir, project, lc, line, by=by, engine="polars")
    assert duck.height == 3 * 2 * (len(line) + 6)
    _same(polars, duck, by)


def test_mnl_gives_the_same_shares_in_every_city(
    market_dir: Path, project: Project, fitted: Any, line: list[dict[str, Any]]
) -> None:
    _, mnl = fitted
    got = score_population(market_dir, project, mnl, {"variants": [{"name": "A", "profile": line[0]},
                                                                    {"name": "B", "profile": line[1]}]})
    want = simulator_for_model(project, mnl).shares(line, names=["A", "B"])
    wide = got.pivot(on="product", index="city", values="share")
    for product, share in zip(want["product"], want["share"], strict=True):
        np.testing.assert_allclose(wide[product], share, rtol=0, atol=1e-12)
    assert set(got["product"]) >= {"A", "B", "none"}


def test_models_not_tied_to_traits_give_the_population_average_everywhere(
    market_dir: Path, project: Project, fitted: Any, line: list[dict[str, Any]]
) -> None:
    lc, _ = fitted
    spec = {k: v for k, v in lc.to_dict().items() if k not in ("membership_coef", "membership_se", "vcov")}
    plain = LatentClassLogit.from_dict({**spec, "membership_features": []})  # constant class shares
    duck = DuckDBEngine(market_dir)
    got = score_population(market_dir, project, plain, line, by="income_band", engine=duck)
    assert duck.person_columns  # an engine passed in stays open for the caller
    duck.close()
    want = simulator_for_model(project, plain).shares(line)  # class shares x class logit shares
    wide = got.pivot(on="product", index="income_band", values="share")
    assert wide.height == 3
    for product, share in zip(want["product"], want["share"], strict=True):
        np.testing.assert_allclose(wide[product], share, rtol=0, atol=1e-12)


def test_bad_input_is_refused_with_a_clear_message(
    market_dir: Path, project: Project, persons: pl.DataFrame, fitted: Any, line: list[dict[str, Any]]
) -> None:
    lc, mnl = fitted
    spec = lc.to_dict()
    unknown = LatentClassLogit.from_dict({**spec, "membership_features": ["shoe_size", *TRAITS[1:]]})
    with pytest.raises(C2MError, match=r"membership trait 'shoe_size' is not a column of the persons of .*persons"):
        score_population(market_dir, project, unknown, line)
    text = LatentClassLogit.from_dict({**spec, "membership_features": ["age_band", *TRAITS[1:]]})
    with pytest.raises(C2MError, match=r"membership trait 'age_band' .* has type String"):
        score_population(market_dir, project, text, line, engine="polars")
    with pytest.raises(C2MError, match="by column 'shoe_size' not found"):
        score_population(market_dir, project, lc, line, by="shoe_size")
    with pytest.raises(C2MError, match="clash"):
        score_population(market_dir, project, lc, line, by="share")
    with pytest.raises(C2MError, match="unknown engine"):
        score_population(market_dir, project, lc, line, engine="excel")
    other = MultinomialLogit.from_dict({**mnl.to_dict(), "features": [f"x{i}" for i in range(len(mnl.coef_))]})
    with pytest.raises(C2MError, match="do not match the project"):
        score_population(market_dir, project, other, line)
    other_lc = LatentClassLogit.from_dict({**spec, "features": [f"x{i}" for i in range(lc.coef_.shape[1])]})
    with pytest.raises(C2MError, match="do not match the project"):
        score_population(market_dir, project, other_lc, line)
    # persons with a missing trait are counted and refused, not dropped
    holes = persons.with_columns(
        pl.when(pl.col("person_id") % 1000 == 0).then(None).otherwise(pl.col("daily_km")).alias("daily_km")
    )
    events = pl.DataFrame(schema={"person_id": pl.Int64, "ts": pl.Datetime, "city": pl.String,
                                  "event_type": pl.String, "store_id": pl.String, "price": pl.Float64})
    n_holes = int((persons["person_id"] % 1000 == 0).sum())
    with pytest.raises(C2MError, match=f"{n_holes} person\\(s\\) have a missing or non-finite membership trait"):
        score_population(PolarsEngine(holes, events), project, lc, line)
    with pytest.raises(C2MError, match="no 'variants' list"):
        score_population(market_dir, project, lc, {"line": {}})


def test_engines_count_incomplete_persons_alike(market_dir: Path, persons: pl.DataFrame, tmp_path: Path) -> None:
    """Null and NaN traits are counted as incomplete by DuckDB and Polars alike (and left out of the sums)."""
    bad = persons.with_columns(
        pl.when(pl.col("person_id") % 7 == 0).then(None)
        .when(pl.col("person_id") % 11 == 0).then(float("nan"))
        .otherwise(pl.col("daily_km")).alias("daily_km")
    )
    root = tmp_path / "market"
    shutil.copytree(market_dir / "events", root / "events")
    bad.write_parquet(root / "persons.parquet")
    gamma = np.array([[0.0, 0.0], [0.3, -0.01]])
    duck = DuckDBEngine(root)
    try:
        got = duck.membership_sums(["city"], ["daily_km"], gamma)
    finally:
        duck.close()
    want = PolarsEngine.from_dir(root).membership_sums(["city"], ["daily_km"], gamma)
    _same(got, want, ["city"])
    ok = ~((persons["person_id"] % 7 == 0) | (persons["person_id"] % 11 == 0))
    assert int(got["incomplete"].sum()) == int((~ok).sum())
    np.testing.assert_allclose(got["w_0"] + got["w_1"], got["persons"] - got["incomplete"], atol=1e-9)


def test_cli_writes_scores_parquet(
    market_dir: Path, project: Project, fitted: Any, line: list[dict[str, Any]], tmp_path: Path
) -> None:
    lc, _ = fitted
    save_model(lc, tmp_path / "model.json")
    definition = {"variants": [{"name": "Swift", "profile": line[0]}, {"name": "Cargo", "profile": line[1]}]}
    (tmp_path / "line.json").write_text(json.dumps(definition))
    out = tmp_path / "scored"
    done = run_c2m("score", "--model", str(tmp_path / "model.json"), "--line", str(tmp_path / "line.json"),
                   "--market", str(market_dir), "--by", "city", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "scores.parquet" in done.stdout and "buyers/yr" in done.stdout
    scores = pl.read_parquet(out / "scores.parquet")
    want = score_population(market_dir, project, lc, definition, by="city")
    _same(scores, want, ["city"])
    assert scores.columns == ["city", "product", "kind", "persons", "share", "buyers"]
    assert not list(out.glob(".*.tmp"))
    refused = run_c2m("score", "--model", str(tmp_path / "model.json"), "--line", str(tmp_path / "model.json"),
                      "--market", str(market_dir), "--out", str(tmp_path / "no"))
    assert refused.returncode == 2 and "no 'variants' list" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "no").exists()


# ---------------------------------------------------------------------------------------------- Spark


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    if importlib.util.find_spec("pyspark") is None:
        skip_or_fail("pyspark is not installed (pip install -e '.[spark]')")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        skip_or_fail("Java is not installed (Spark needs Java 17+)")
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = spark_session("local[2]", app_name="c2m-score-tests")
    yield session
    session.stop()


@pytest.mark.parametrize("by", [["city"], ["income_band", "age_band"], []])
def test_spark_gives_the_duckdb_table(
    spark: Any, market_dir: Path, project: Project, fitted: Any, line: list[dict[str, Any]], by: list[str]
) -> None:
    lc, _ = fitted
    engine = SparkEngine(market_dir, session=spark)
    got = score_population(engine, project, lc, line, by=by)
    engine.close()  # does not stop a session it did not make
    want = score_population(market_dir, project, lc, line, by=by, engine="duckdb")
    assert got.height == want.height > 0
    _same(got, want, by)


def test_spark_membership_sums_count_incomplete_persons(
    spark: Any, market_dir: Path, persons: pl.DataFrame, tmp_path: Path
) -> None:
    bad = persons.with_columns(
        pl.when(pl.col("person_id") % 7 == 0).then(None)
        .when(pl.col("person_id") % 11 == 0).then(float("nan"))
        .otherwise(pl.col("daily_km")).alias("daily_km")
    )
    root = tmp_path / "market"
    shutil.copytree(market_dir / "events", root / "events")
    bad.write_parquet(root / "persons.parquet")
    gamma = np.array([[0.0, 0.0, 0.0], [0.3, -0.01, 0.5]])
    engine = SparkEngine(root, session=spark)
    got = engine.membership_sums(["city"], ["daily_km", "home_charging"], gamma)
    engine.close()
    duck = DuckDBEngine(root)
    try:
        want = duck.membership_sums(["city"], ["daily_km", "home_charging"], gamma)
    finally:
        duck.close()
    _same(got, want, ["city"])
    assert int(got["incomplete"].sum()) > 0
    with pytest.raises(C2MError, match="membership trait 'age_band'"):
        SparkEngine(root, session=spark).membership_sums(["city"], ["age_band"], np.zeros((2, 2)))


def test_cli_spark_engine_writes_the_duckdb_table(
    spark: Any, market_dir: Path, project: Project, fitted: Any, line: list[dict[str, Any]], tmp_path: Path
) -> None:
    lc, _ = fitted
    save_model(lc, tmp_path / "model.json")
    definition = {"variants": [{"name": "Swift", "profile": line[0]}]}
    (tmp_path / "line.json").write_text(json.dumps(definition))
    done = run_c2m("score", "--model", str(tmp_path / "model.json"), "--line", str(tmp_path / "line.json"),
                   "--market", str(market_dir), "--engine", "spark", "--spark-master", "local[1]",
                   "--by", "age_band", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    want = score_population(market_dir, project, lc, definition, by="age_band")
    _same(pl.read_parquet(tmp_path / "out" / "scores.parquet"), want, ["age_band"])
