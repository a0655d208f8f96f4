"""The synthetic market: deterministic files, documented schema, calibrated population and preferences."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from c2m.data import SEGMENTS, Market, generate_market, read_market
from c2m.domain import FeatureCoder, Project, project_from_dict
from c2m.errors import C2MError

PERSONS_COLUMNS = {
    "person_id": pl.Int64,
    "city": pl.String,
    "age_band": pl.String,
    "income_band": pl.String,
    "owns_car": pl.Boolean,
    "daily_km": pl.Float64,
    "home_charging": pl.Boolean,
    "app_user": pl.Boolean,
}
AGE_BANDS = ["18-24", "25-34", "35-44", "45-54", "55+"]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------- determinism


def test_same_seed_gives_byte_identical_files(project: Project, tmp_path: Path) -> None:
    a = generate_market(project, n_persons=3000, seed=3, events_per_person=2.0).write(tmp_path / "a")
    b = generate_market(project, n_persons=3000, seed=3, events_per_person=2.0).write(tmp_path / "b")
    files_a, files_b = _files(a), _files(b)
    assert set(files_a) == set(files_b)
    assert "persons.parquet" in files_a and "events/month=2025-06/part-0.parquet" in files_a
    for name in files_a:
        assert files_a[name] == files_b[name], name


def test_different_seed_differs(project: Project, tmp_path: Path) -> None:
    a = generate_market(project, n_persons=3000, seed=1).write(tmp_path / "a")
    b = generate_market(project, n_persons=3000, seed=2).write(tmp_path / "b")
    for name in ("persons.parquet", "truth.parquet", "events/month=2025-03/part-0.parquet"):
        assert (a / name).read_bytes() != (b / name).read_bytes(), name


def test_event_volume_does_not_change_persons_or_truth(project: Project) -> None:
    a = generate_market(project, n_persons=2000, seed=5, events_per_person=1.0)
    b = generate_market(project, n_persons=2000, seed=5, events_per_person=4.0)
    assert_frame_equal(a.persons, b.persons)
    assert_frame_equal(a.truth, b.truth)
    assert b.events.height > 3 * a.events.height


# ----------------------------------------------------------------- schema and sizes


def test_tables_follow_the_documented_schema(market: Market, project: Project) -> None:
    assert market.persons.schema == pl.Schema(PERSONS_COLUMNS)
    assert market.persons["person_id"].to_list() == list(range(1, 40_001))
    assert market.stores.schema == pl.Schema(
        {"store_id": pl.String, "city": pl.String, "lat": pl.Float64, "lon": pl.Float64, "kind": pl.String}
    )
    categorical = [a.name for a in project.attributes if a.kind != "numeric"]
    assert market.events.columns == [
        "person_id",
        "ts",
        "city",
        "event_type",
        "store_id",
        *categorical,
        "price",
    ]
    assert market.events.schema["ts"] == pl.Datetime("us")
    assert set(market.events["event_type"].unique()) == {"view", "search", "cart", "order", "service_visit"}
    coder = FeatureCoder.from_project(project)
    assert market.feature_names == coder.feature_names
    assert market.truth.columns == ["person_id", "segment", *coder.feature_names]
    assert all(market.truth.schema[f] == pl.Float64 for f in coder.feature_names)
    assert market.truth.schema["segment"] == pl.Int64
    assert set(market.truth["segment"].unique()) == set(range(len(SEGMENTS)))
    assert set(market.persons["age_band"].unique()) == set(AGE_BANDS)
    assert set(market.persons["income_band"].unique()) == {"low", "middle", "high"}


def test_event_count_and_time_span(market: Market) -> None:
    expected = 40_000 * 3.0
    assert abs(market.events.height - expected) < 0.03 * expected
    ts = market.events["ts"]
    assert ts.min().year == 2025 and ts.max().year == 2025  # type: ignore[union-attr]
    assert ts.is_sorted()
    by_month = market.events.group_by(ts.dt.month().alias("m")).len().sort("m")
    assert by_month["m"].to_list() == list(range(1, 13))
    # Spring Festival (February) is quieter than the Double-11 month
    counts = dict(zip(by_month["m"].to_list(), by_month["len"].to_list(), strict=True))
    assert counts[2] < counts[11]


def test_events_are_consistent_with_persons_and_stores(market: Market) -> None:
    ev = market.events.join(market.persons.select("person_id", pl.col("city").alias("home")), on="person_id")
    assert (ev["city"] == ev["home"]).all()
    visits = ev.filter(pl.col("event_type") == "service_visit")
    assert visits.height > 0 and visits["store_id"].null_count() == 0
    store_city = visits.join(
        market.stores.select("store_id", pl.col("city").alias("store_city")), on="store_id"
    )
    assert store_city.height == visits.height
    assert (store_city["store_city"] == store_city["city"]).all()
    others = ev.filter(pl.col("event_type") != "service_visit")
    assert others["store_id"].null_count() == others.height
    assert visits["colour"].null_count() == visits.height and visits["price"].null_count() == visits.height
    views = ev.filter(pl.col("event_type") == "view")
    assert views["colour"].null_count() == 0 and views["price"].null_count() == 0
    # a search names exactly one attribute level
    searches = ev.filter(pl.col("event_type") == "search")
    filled = searches.select(
        pl.sum_horizontal(
            pl.col(c).is_not_null()
            for c in ["style", "colour", "smart_pack", "battery", "energy_mode", "sunroof", "ownership"]
        )
    ).to_series()
    assert (filled == 1).all()
    # car owners visit service stores far more than others
    rate = (
        ev.group_by(pl.col("person_id"))
        .agg((pl.col("event_type") == "service_visit").mean().alias("visit"))
        .join(market.persons.select("person_id", "owns_car"), on="person_id")
    )
    by_owner = dict(rate.group_by("owns_car").agg(pl.col("visit").mean()).iter_rows())
    assert by_owner[True] > 3 * by_owner[False]


def test_people_view_what_they_like(market: Market) -> None:
    pink = market.truth.select("person_id", pl.col("colour=pink").alias("beta"))
    views = market.events.filter(pl.col("event_type").is_in(["view", "cart", "order"])).join(
        pink, on="person_id"
    )
    likes = views.filter(pl.col("beta") > 1.0)["colour"].eq("pink").mean()
    dislikes = views.filter(pl.col("beta") < -1.0)["colour"].eq("pink").mean()
    assert likes is not None and dislikes is not None
    assert likes > 3 * dislikes  # type: ignore[operator]
    # price-sensitive people look at cheaper cars
    price = market.truth.select("person_id", pl.col("price").alias("beta"))
    seen = market.events.filter(pl.col("event_type") == "view").join(price, on="person_id")
    q_lo, q_hi = price["beta"].quantile(0.2), price["beta"].quantile(0.8)
    sensitive = seen.filter(pl.col("beta") < q_lo)["price"].mean()
    relaxed = seen.filter(pl.col("beta") > q_hi)["price"].mean()
    assert sensitive < relaxed  # type: ignore[operator]


def test_write_layout_and_manifest(market: Market, tmp_path: Path) -> None:
    out = market.write(tmp_path / "market")
    assert sorted(p.name for p in out.iterdir()) == [
        "events",
        "manifest.json",
        "persons.parquet",
        "stores.parquet",
        "truth.parquet",
    ]
    months = sorted(p.name for p in (out / "events").iterdir())
    assert months == [f"month=2025-{m:02d}" for m in range(1, 13)]
    for month in months:
        assert [p.name for p in (out / "events" / month).iterdir()] == ["part-0.parquet"]
        part = pl.read_parquet(out / "events" / month / "part-0.parquet")
        assert "month" not in part.columns
        assert (part["ts"].dt.strftime("%Y-%m") == month.removeprefix("month=")).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 7 and manifest["project_name"] == "swap-city-ev"
    assert manifest["schema_version"] == 1
    assert manifest["feature_names"] == market.feature_names
    assert manifest["sizes"] == {
        "persons": 40_000,
        "stores": market.stores.height,
        "events": market.events.height,
        "truth": 40_000,
    }
    hive = pl.read_parquet(out / "events" / "**" / "*.parquet", hive_partitioning=True)
    assert hive.height == market.events.height and "month" in hive.columns
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dir left


# ----------------------------------------------------------------- calibration


def test_population_calibration(market: Market, project: Project) -> None:
    persons = market.persons
    home = persons["home_charging"].mean()
    assert 0.40 <= home <= 0.55  # type: ignore[operator]
    tier1 = {c.name for c in project.cities if c.tier == 1}
    home_tier1 = persons.filter(pl.col("city").is_in(tier1))["home_charging"].mean()
    assert home_tier1 < home - 0.1  # type: ignore[operator]
    assert 30.0 <= persons["daily_km"].median() <= 40.0  # type: ignore[operator]
    km = persons.group_by("owns_car").agg(pl.col("daily_km").median())
    km_by_owner = dict(km.iter_rows())
    assert km_by_owner[True] > km_by_owner[False]
    assert 0.75 <= persons["app_user"].mean() <= 0.92  # type: ignore[operator]
    assert 0.35 <= persons["owns_car"].mean() <= 0.6  # type: ignore[operator]
    # income rises with city tier
    high = (
        persons.with_columns(pl.col("city").is_in(tier1).alias("t1"))
        .group_by("t1")
        .agg((pl.col("income_band") == "high").mean())
    )
    by_tier = dict(high.iter_rows())
    assert by_tier[True] > by_tier[False] + 0.05


def test_persons_per_city_proportional_to_market_size(market: Market, project: Project) -> None:
    n = market.persons.height
    counts = dict(market.persons.group_by("city").len().iter_rows())
    total = sum(c.market_size for c in project.cities)
    for city in project.cities:
        p = city.market_size / total
        sd = math.sqrt(n * p * (1 - p))
        assert abs(counts.get(city.name, 0) - n * p) < 5 * sd, city.name


def test_stores_are_in_project_cities_and_spread(market: Market, project: Project) -> None:
    cities = {c.name: c for c in project.cities}
    assert set(market.stores["city"]) <= set(cities)
    per_city = dict(market.stores.group_by("city").len().iter_rows())
    assert set(per_city) == set(cities)  # every city has a store
    sizes = np.array([cities[c].market_size for c in per_city])
    counts = np.array(list(per_city.values()))
    assert np.corrcoef(sizes, counts)[0, 1] > 0.8
    for row in market.stores.iter_rows(named=True):
        city = cities[row["city"]]
        dy = (row["lat"] - city.lat) * 111.0
        dx = (row["lon"] - city.lon) * 111.0 * math.cos(math.radians(city.lat))
        assert math.hypot(dx, dy) < 30.0, row["store_id"]
    spread = market.stores.group_by("city").agg(pl.col("lat").std(), pl.col("lon").std())
    assert (spread["lat"] > 0.005).all() and (spread["lon"] > 0.005).all()


def _logit_shares(betas: np.ndarray, X: np.ndarray, asc: np.ndarray) -> np.ndarray:
    U = np.column_stack([betas @ X.T + asc, betas[:, -1]])
    U -= U.max(axis=1, keepdims=True)
    P = np.exp(U)
    P /= P.sum(axis=1, keepdims=True)
    return P.mean(axis=0)


def test_true_preferences_give_plausible_shares(market: Market, project: Project) -> None:
    coder = FeatureCoder.from_project(project)
    betas = market.true_betas()
    assert (betas[:, coder.feature_names.index("price")] < 0).all()
    best = {
        "style": "classic",
        "colour": "white",
        "smart_pack": "plus",
        "battery": "ncm52",
        "energy_mode": "swap",
        "sunroof": "no",
        "ownership": "rent_capped",
        "price": 49_900.0,
    }
    rivals = [dict(c.profile) for c in project.competitors]
    asc = np.array([0.0, *[c.asc for c in project.competitors]])
    shares = _logit_shares(betas, coder.encode_many([best, *rivals]), asc)
    assert 0.10 <= shares[0] <= 0.35
    assert 0.30 <= shares[-1] <= 0.60
    assert (shares[1:-1] > 0.02).all()
    # buying the same car's battery at 89,900 sells less than renting it at 49,900
    bought = _logit_shares(
        betas, coder.encode_many([{**best, "ownership": "buy", "price": 89_900.0}, *rivals]), asc
    )
    assert bought[0] < shares[0]


def test_preferences_depend_on_traits_as_documented(market: Market) -> None:
    t = market.truth.join(market.persons, on="person_id")
    no_home = t.filter(~pl.col("home_charging"))
    home = t.filter(pl.col("home_charging"))
    assert no_home["energy_mode=swap"].mean() > home["energy_mode=swap"].mean() + 0.5  # type: ignore[operator]
    assert no_home["ownership=rent_capped"].mean() > home["ownership=rent_capped"].mean() + 0.3  # type: ignore[operator]
    young = t.filter(pl.col("age_band") == "18-24")
    old = t.filter(pl.col("age_band").is_in(["45-54", "55+"]))
    for feature in ("colour=pink", "style=sporty", "smart_pack=max"):
        assert young[feature].mean() > old[feature].mean() + 0.3, feature  # type: ignore[operator]
    far = t.filter(pl.col("daily_km") > 70)
    near = t.filter(pl.col("daily_km") < 25)
    assert far["battery=ncm70"].mean() > near["battery=ncm70"].mean() + 0.3  # type: ignore[operator]
    cap_gap = (pl.col("ownership=rent_capped") - pl.col("ownership=rent_unlimited")).mean()
    assert far.select(cap_gap).item() < near.select(cap_gap).item() - 0.3
    low = t.filter(pl.col("income_band") == "low")["price"].mean()
    high = t.filter(pl.col("income_band") == "high")["price"].mean()
    assert low < high  # type: ignore[operator]
    swap_fans = (t["energy_mode=swap"] > 0).mean()
    assert 0.75 <= swap_fans <= 0.95  # type: ignore[operator]


def test_true_betas_by_person_id(market: Market) -> None:
    ids = [40_000, 1, 17]
    rows = market.true_betas(ids)
    expected = market.truth.filter(pl.col("person_id").is_in(ids)).sort("person_id")
    by_id = {r[0]: np.array(r[2:]) for r in expected.iter_rows()}
    for k, pid in enumerate(ids):
        np.testing.assert_array_equal(rows[k], by_id[pid])
    with pytest.raises(C2MError, match="unknown person_id"):
        market.true_betas([0, 5])


def test_project_without_stores_or_none(project: Project) -> None:
    raw = project.model_dump(mode="json")
    raw["stores"] = []
    raw["none_option"] = {"enabled": False, "label": "none"}
    bare = project_from_dict(raw)
    m = generate_market(bare, n_persons=2000, seed=0)
    assert "none" not in m.feature_names
    assert set(m.stores["city"]) == {c.name for c in bare.cities}
    assert m.stores["store_id"].n_unique() == m.stores.height
    assert m.events.filter(pl.col("event_type") == "service_visit")["store_id"].null_count() == 0


def test_invalid_arguments(project: Project) -> None:
    with pytest.raises(C2MError, match="n_persons"):
        generate_market(project, n_persons=0)
    with pytest.raises(C2MError, match="events_per_person"):
        generate_market(project, n_persons=10, events_per_person=-1)


# ----------------------------------------------------------------- reading back


def test_read_market_round_trip(market: Market, project: Project, tmp_path: Path) -> None:
    back = read_market(market.write(tmp_path / "m"))
    assert back.project_name == market.project_name and back.seed == market.seed
    assert back.feature_names == market.feature_names
    assert back.project == project
    for name in ("persons", "stores", "events", "truth"):
        assert_frame_equal(getattr(back, name), getattr(market, name))
    np.testing.assert_array_equal(back.true_betas([3, 2]), market.true_betas([3, 2]))


def test_write_replaces_a_market_but_not_other_folders(project: Project, tmp_path: Path) -> None:
    out = tmp_path / "m"
    generate_market(project, n_persons=500, seed=1).write(out)
    generate_market(project, n_persons=700, seed=2).write(out)
    assert read_market(out).persons.height == 700
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(C2MError, match="not a market directory"):
        generate_market(project, n_persons=100, seed=1).write(other)
    assert (other / "notes.txt").read_text() == "keep me"


def test_read_market_errors(project: Project, tmp_path: Path) -> None:
    with pytest.raises(C2MError, match="not found"):
        read_market(tmp_path / "nowhere")
    out = generate_market(project, n_persons=300, seed=1).write(tmp_path / "m")
    (out / "persons.parquet").rename(tmp_path / "persons.parquet")
    with pytest.raises(C2MError, match=r"persons\.parquet: file not found"):
        read_market(out)
    # wrong schema: a column dropped, then a column of the wrong type
    persons = pl.read_parquet(tmp_path / "persons.parquet")
    persons.drop("home_charging").write_parquet(out / "persons.parquet")
    with pytest.raises(C2MError, match="home_charging"):
        read_market(out)
    persons.with_columns(pl.col("daily_km").cast(pl.String)).write_parquet(out / "persons.parquet")
    with pytest.raises(C2MError, match=r"daily_km.*expected Float64"):
        read_market(out)
    persons.write_parquet(out / "persons.parquet")
    read_market(out)
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(C2MError, match=r"manifest\.json: not valid JSON"):
        read_market(out)
    (out / "manifest.json").unlink()
    with pytest.raises(C2MError, match=r"manifest\.json: file not found"):
        read_market(out)


def test_any_project_gets_a_market() -> None:
    """A project that is not a car: unnamed levels, an ordered and a second numeric attribute."""
    raw = {
        "name": "ice-cream",
        "product": {"name": "Tub"},
        "attributes": [
            {"name": "flavour", "levels": [{"name": "vanilla"}, {"name": "chocolate"}, {"name": "mango"}]},
            {"name": "size", "kind": "ordered", "levels": [{"name": "small"}, {"name": "large"}]},
            {
                "name": "weight",
                "kind": "numeric",
                "scale": 100,
                "levels": [{"name": "w1", "value": 100}, {"name": "w3", "value": 300}],
            },
            {
                "name": "price",
                "kind": "numeric",
                "role": "price",
                "scale": 10,
                "levels": [{"name": "p1", "value": 10}, {"name": "p2", "value": 30}],
            },
        ],
        "cities": [
            {"name": "A", "tier": 1, "lat": 31.0, "lon": 121.0, "market_size": 3000},
            {"name": "B", "tier": 3, "lat": 30.0, "lon": 104.0, "market_size": 1000},
        ],
    }
    market = generate_market(project_from_dict(raw), n_persons=4000, seed=2)
    assert market.feature_names == [
        "flavour=chocolate",
        "flavour=mango",
        "size=large",
        "weight",
        "price",
        "none",
    ]
    betas = market.true_betas()
    assert (betas[:, 4] < 0).all()
    assert betas[:, 2].mean() > 0  # bigger is better on average for an ordered attribute
    assert market.events.columns == [
        "person_id",
        "ts",
        "city",
        "event_type",
        "store_id",
        "flavour",
        "size",
        "price",
    ]
    assert set(market.events["flavour"].drop_nulls()) == {"vanilla", "chocolate", "mango"}
    share_a = (market.persons["city"] == "A").mean()
    assert 0.72 < share_a < 0.78  # type: ignore[operator]
    raw["cities"] = []
    with pytest.raises(C2MError, match="cities"):
        generate_market(project_from_dict(raw), n_persons=10)
