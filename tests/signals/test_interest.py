"""Interest by level: raw shares against Polars, shrinkage, hidden preferences, design priors, errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from c2m.domain import FeatureCoder, Project
from c2m.errors import C2MError
from c2m.signals import Signals, design_prior, interest_by_level, method_of_moments_strength

WEIGHTS = {"view": 1.0, "search": 1.0, "cart": 3.0, "order": 10.0}


def _direct(events: pl.DataFrame, persons: pl.DataFrame, project: Project, by: list[str]) -> pl.DataFrame:
    """Weighted events per cell x attribute x level, computed plainly with Polars."""
    attrs = [a.name for a in project.attributes if a.kind != "numeric"]
    ev = events.filter(pl.col("event_type").is_in(list(WEIGHTS))).with_columns(
        pl.col("event_type").replace_strict(WEIGHTS, return_dtype=pl.Float64).alias("w")
    )
    need = [c for c in by if c not in ev.columns]
    if need:
        ev = ev.join(persons.select("person_id", *need), on="person_id")
    parts = []
    for a in attrs:
        sub = ev.filter(pl.col(a).is_not_null())
        parts.append(
            sub.group_by([*by, a])
            .agg(pl.col("w").sum().alias("w"), pl.col("w").pow(2).sum().alias("w2"), pl.len().alias("n"))
            .rename({a: "level"})
            .with_columns(pl.lit(a).alias("attribute"))
            .select([*by, "attribute", "level", "w", "w2", "n"])
        )
    direct = pl.concat(parts)
    return direct.with_columns((pl.col("w") / pl.col("w").sum().over([*by, "attribute"])).alias("raw"))


@pytest.fixture(scope="module")
def sig(market_dir: Path) -> Signals:
    return Signals(market_dir, engine="duckdb")


@pytest.mark.parametrize("by", [["city"], ["age_band"], ["city", "income_band"], []])
def test_raw_shares_equal_direct_polars(
    sig: Signals, events: pl.DataFrame, persons: pl.DataFrame, project: Project, by: list[str]
) -> None:
    got = sig.interest_by_level(project, by=tuple(by), event_weights=WEIGHTS)
    want = _direct(events, persons, project, by)
    joined = want.join(got, on=[*by, "attribute", "level"], how="left")
    assert joined["raw_share"].null_count() == 0
    np.testing.assert_allclose(joined["raw_share"], joined["raw"], rtol=1e-12)
    np.testing.assert_allclose(joined["weighted_events"], joined["w"], rtol=1e-12)
    assert (joined["events"] == joined["n"]).all()
    # levels nobody looked at in a cell are present with zero events
    assert got.filter(pl.col("events") > 0).height == want.height
    cells = want.select(by).unique().height if by else 1
    n_levels = sum(len(a.levels) for a in project.attributes if a.kind != "numeric")
    assert got.height == cells * n_levels


def test_shares_sum_to_one_per_cell_and_attribute(sig: Signals, project: Project) -> None:
    got = sig.interest_by_level(project, by=("city", "age_band"))
    sums = got.group_by("city", "age_band", "attribute").agg(pl.col("share").sum(), pl.col("raw_share").sum())
    np.testing.assert_allclose(sums["share"], 1.0, atol=1e-12)
    np.testing.assert_allclose(sums["raw_share"], 1.0, atol=1e-12)


def test_shrinkage_between_raw_and_overall_and_stronger_for_small_cells(
    sig: Signals, events: pl.DataFrame, persons: pl.DataFrame, project: Project
) -> None:
    got = sig.interest_by_level(project, by=("city",), event_weights=WEIGHTS)
    overall = _direct(events, persons, project, []).select("attribute", "level", pl.col("raw").alias("overall"))
    got = got.join(overall, on=["attribute", "level"])
    raw, share, p = (got[c].to_numpy() for c in ("raw_share", "share", "overall"))
    lo, hi = np.minimum(raw, p), np.maximum(raw, p)
    assert np.all(share >= lo - 1e-12) and np.all(share <= hi + 1e-12)
    strength = got.group_by("attribute").agg(pl.col("prior_strength").first())
    finite = strength.filter(pl.col("prior_strength").is_finite() & (pl.col("prior_strength") > 0))
    assert finite.height >= 3  # cities differ in some attributes (energy mode, ownership: home charging)
    # complete pooling (infinite strength) puts every city on the overall share
    pooled = got.filter(pl.col("prior_strength").is_infinite())
    np.testing.assert_allclose(pooled["share"], pooled["overall"], rtol=1e-12)
    # fraction of the way to the overall share: larger for cities with fewer (effective) events
    n_eff = (
        _direct(events, persons, project, ["city"])
        .group_by("city", "attribute")
        .agg((pl.col("w").sum() ** 2 / pl.col("w2").sum()).alias("n_eff"))
    )
    for attribute in finite["attribute"]:
        sub = (
            got.filter((pl.col("attribute") == attribute) & ((pl.col("raw_share") - pl.col("overall")).abs() > 1e-4))
            .with_columns(
                ((pl.col("raw_share") - pl.col("share")) / (pl.col("raw_share") - pl.col("overall"))).alias("moved")
            )
            .group_by("city")
            .agg(pl.col("moved").mean())
            .join(n_eff.filter(pl.col("attribute") == attribute), on="city")
            .sort("n_eff")
        )
        assert sub.height >= 5
        assert sub["moved"].is_sorted(descending=True)
        assert sub["moved"][0] > sub["moved"][-1]


def test_fixed_prior_strength_follows_the_formula(
    sig: Signals, events: pl.DataFrame, persons: pl.DataFrame, project: Project
) -> None:
    a = 250.0
    got = sig.interest_by_level(project, by=("age_band",), event_weights=WEIGHTS, prior_strength=a)
    direct = _direct(events, persons, project, ["age_band"])
    cells = direct.group_by("age_band", "attribute").agg((pl.col("w").sum() ** 2 / pl.col("w2").sum()).alias("n_eff"))
    overall = _direct(events, persons, project, []).select("attribute", "level", pl.col("raw").alias("p"))
    want = direct.join(cells, on=["age_band", "attribute"]).join(overall, on=["attribute", "level"])
    want = want.with_columns(((pl.col("n_eff") * pl.col("raw") + a * pl.col("p")) / (pl.col("n_eff") + a)).alias("s"))
    joined = want.join(got, on=["age_band", "attribute", "level"])
    np.testing.assert_allclose(joined["share"], joined["s"], rtol=1e-10)
    zero = sig.interest_by_level(project, by=("age_band",), event_weights=WEIGHTS, prior_strength=0.0)
    np.testing.assert_allclose(zero["share"], zero["raw_share"], rtol=1e-12)


def test_method_of_moments_recovers_a_known_dirichlet_strength() -> None:
    rng = np.random.default_rng(0)
    p = np.array([0.5, 0.3, 0.15, 0.05])
    for true_a in (20.0, 200.0):
        estimates = []
        for _ in range(20):
            theta = rng.dirichlet(true_a * p, size=300)
            n = rng.integers(200, 2000, size=300)
            counts = np.array([rng.multinomial(k, t) for k, t in zip(n, theta, strict=True)])
            estimates.append(method_of_moments_strength(n.astype(float), counts / n[:, None]))
        assert np.median(estimates) == pytest.approx(true_a, rel=0.15)
    # no heterogeneity beyond sampling: (nearly) complete pooling
    n = np.full(300, 500)
    counts = np.array([rng.multinomial(500, p) for _ in range(300)])
    assert method_of_moments_strength(n.astype(float), counts / 500) > 2000
    assert method_of_moments_strength(np.array([100.0]), p[None, :]) == 0.0


def test_hidden_preferences_show_in_colour_interest(sig: Signals, project: Project) -> None:
    """The generator makes pink and orange trendy for 18-24s and less liked by older people."""
    got = sig.interest_by_level(project, by=("age_band",)).filter(pl.col("attribute") == "colour")
    young = got.filter(pl.col("age_band") == "18-24")
    old = got.filter(pl.col("age_band") == "55+")
    top_young = young.sort("share", descending=True)["level"][0]
    top_old = old.sort("share", descending=True)["level"][0]
    assert top_young == "pink"
    assert top_young != top_old
    for level in ("pink", "orange"):
        y = young.filter(pl.col("level") == level)["raw_share"][0]
        o = old.filter(pl.col("level") == level)["raw_share"][0]
        assert y > 1.4 * o


def test_engines_agree(sig: Signals, market_dir: Path, project: Project) -> None:
    from c2m.data import read_market

    a = sig.interest_by_level(project, by=("city", "age_band"))
    b = Signals(market_dir, engine="polars").interest_by_level(project, by=("city", "age_band"))
    c = interest_by_level(read_market(market_dir), project, by=("city", "age_band"))
    with Signals(market_dir, engine="duckdb", threads=1, memory_limit="256MB") as small:
        d = small.interest_by_level(project, by=("city", "age_band"))
    e = interest_by_level(market_dir, project, by=("city", "age_band"))
    assert d.equals(a) and e.equals(a)
    for other in (b, c):
        assert other.columns == a.columns
        assert other.select("city", "age_band", "attribute", "level").equals(
            a.select("city", "age_band", "attribute", "level")
        )
        np.testing.assert_allclose(other["share"], a["share"], rtol=1e-10)
        assert other["n_persons"].equals(a["n_persons"])


def test_design_prior_length_sign_and_truth(sig: Signals, market_dir: Path, project: Project) -> None:
    interest = sig.interest_by_level(project, by=("city",))
    prior = design_prior(project, interest)
    coder = FeatureCoder.from_project(project)
    assert prior.shape == (coder.n_features,)
    pooled = sig.interest_by_level(project, by=())
    shares = {(a, lv): s for a, lv, s in pooled.select("attribute", "level", "share").iter_rows()}
    slices = coder.feature_slices()
    for attribute in project.attributes:
        cols = slices[attribute.name]
        if attribute.kind == "numeric":
            assert np.all(prior[cols] == 0.0)
            continue
        ref = shares[(attribute.name, attribute.level_names[0])]
        for k, level in enumerate(attribute.level_names[1:]):
            s = shares[(attribute.name, level)]
            assert prior[cols.start + k] == pytest.approx(math.log(s / ref), abs=0.02)
            if s > 1.1 * ref:
                assert prior[cols.start + k] > 0
    if coder.with_none:
        assert prior[-1] == 0.0
    # renting the battery (-2.0 in the hidden preferences) is viewed less than buying it
    assert prior[coder.feature_names.index("ownership=rent_unlimited")] < -1.0
    # the prior points the same way as the hidden mean part-worths
    truth = pl.read_parquet(market_dir / "truth.parquet")
    cat = [i for i, f in enumerate(coder.feature_names) if "=" in f]
    mean_beta = truth.select(coder.feature_names).mean().to_numpy()[0]
    assert np.corrcoef(prior[cat], mean_beta[cat])[0, 1] > 0.8
    assert np.allclose(design_prior(project, interest, scale=0.5), 0.5 * prior)


def test_design_prior_on_a_hand_made_table(project: Project) -> None:
    rows = []
    for attribute in project.attributes:
        if attribute.kind == "numeric":
            continue
        k = len(attribute.levels)
        shares = np.full(k, 1.0 / k)
        if attribute.name == "colour":
            shares = np.array([0.1, 0.3, 0.1, 0.1, 0.1, 0.2, 0.1])
        rows += [(attribute.name, lv, float(s)) for lv, s in zip(attribute.level_names, shares, strict=True)]
    table = pl.DataFrame(rows, schema=["attribute", "level", "share"], orient="row")
    prior = design_prior(project, table, scale=2.0)
    names = FeatureCoder.from_project(project).feature_names
    assert prior[names.index("colour=black")] == pytest.approx(2.0 * math.log(3.0))
    assert prior[names.index("colour=pink")] == pytest.approx(2.0 * math.log(2.0))
    assert prior[names.index("colour=grey")] == pytest.approx(0.0)
    with pytest.raises(C2MError, match="colour"):
        design_prior(project, table.filter(pl.col("level") != "pink"))
    with pytest.raises(C2MError, match="share"):
        design_prior(project, table.drop("share"))


def test_design_prior_feeds_a_d_efficient_design(sig: Signals, project: Project) -> None:
    from c2m.survey import d_error, make_design

    prior = design_prior(project, sig.interest_by_level(project, by=()))
    kwargs = {"method": "d_efficient", "n_versions": 2, "n_tasks": 8, "n_alts": 3, "n_holdout": 0, "seed": 0}
    tuned = make_design(project, prior=prior, **kwargs)  # type: ignore[arg-type]
    flat = make_design(project, prior=None, **kwargs)  # type: ignore[arg-type]
    assert tuned.frame.height == 2 * 8 * 3
    # a design built for the behaviour prior is more efficient at that prior
    assert d_error(project, tuned, prior) < d_error(project, flat, prior)


def test_segment_profiles_match_direct(sig: Signals, events: pl.DataFrame, persons: pl.DataFrame) -> None:
    prof = sig.segment_profiles(by=("city",))
    assert prof["persons"].sum() == persons.height
    direct = persons.group_by("city").agg(
        pl.len().alias("n"), pl.col("home_charging").mean().alias("hc"), pl.col("daily_km").mean().alias("km")
    )
    counts = events.group_by("city", "event_type").len().pivot(on="event_type", index="city", values="len")
    j = prof.join(direct, on="city").join(counts, on="city")
    assert (j["persons"] == j["n"]).all()
    np.testing.assert_allclose(j["share_home_charging"], j["hc"], rtol=1e-12)
    np.testing.assert_allclose(j["mean_daily_km"], j["km"], rtol=1e-12)
    product = j["view"] + j["search"] + j["cart"] + j["order"]
    np.testing.assert_allclose(j["events_per_person"], product / j["n"], rtol=1e-12)
    np.testing.assert_allclose(j["service_visits_per_person"], j["service_visit"] / j["n"], rtol=1e-12)
    np.testing.assert_allclose(j["cart_rate"], j["cart"] / j["view"], rtol=1e-12)
    age = [c for c in prof.columns if c.startswith("share_age_")]
    assert age == [f"share_age_{b}" for b in ("18-24", "25-34", "35-44", "45-54", "55+")]
    np.testing.assert_allclose(prof.select(pl.sum_horizontal(age)).to_series(), 1.0, atol=1e-12)
    income = [c for c in prof.columns if c.startswith("share_income_")]
    assert income == ["share_income_low", "share_income_middle", "share_income_high"]
    whole = sig.segment_profiles(by=())
    assert whole.height == 1 and whole["persons"][0] == persons.height
    assert whole["share_age_18-24"][0] == pytest.approx((persons["age_band"] == "18-24").mean())


def test_bad_inputs_raise_c2m_errors(tmp_path: Path, market_dir: Path, sig: Signals, project: Project) -> None:
    with pytest.raises(C2MError, match="market directory not found"):
        Signals(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(C2MError, match=r"persons\.parquet"):
        Signals(tmp_path / "empty")
    broken = tmp_path / "broken"
    (broken / "events" / "month=2025-01").mkdir(parents=True)
    pl.read_parquet(market_dir / "persons.parquet").write_parquet(broken / "persons.parquet")
    with pytest.raises(C2MError, match="no event files"):
        Signals(broken)
    pl.DataFrame({"person_id": [1], "city": ["x"]}).write_parquet(
        broken / "events" / "month=2025-01" / "part-0.parquet"
    )
    with pytest.raises(C2MError, match=r"missing column\(s\).*event_type"):
        Signals(broken)
    (broken / "events" / "month=2025-01" / "part-0.parquet").write_text("not parquet")
    with pytest.raises(C2MError):
        Signals(broken)
    with pytest.raises(C2MError, match="unknown engine"):
        Signals(market_dir, engine="oracle")
    with pytest.raises(C2MError, match="by column 'planet'"):
        sig.interest_by_level(project, by=("planet",))
    with pytest.raises(C2MError, match="event type 'click'"):
        sig.interest_by_level(project, event_weights={"click": 1.0})
    with pytest.raises(C2MError, match="prior_strength"):
        sig.interest_by_level(project, prior_strength=-1.0)
    with pytest.raises(C2MError, match="by column 'month'"):
        sig.segment_profiles(by=("month",))
