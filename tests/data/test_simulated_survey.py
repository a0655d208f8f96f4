"""Survey takers and their simulated answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from c2m.data import Market, generate_market, read_market, sample_respondents, simulate_responses
from c2m.domain import Project, enumerate_profiles, project_from_dict
from c2m.errors import C2MError

VERSIONS, TASKS, ALTS = 7, 10, 3


def random_design(project: Project, versions: int, tasks: int, alts: int, seed: int) -> pl.DataFrame:
    """A random allowed design in the survey-design layout of docs/schemas.md."""
    profiles = enumerate_profiles(project)
    rng = np.random.default_rng(seed)
    rows = []
    for v in range(1, versions + 1):
        for t in range(1, tasks + 1):
            for j in range(1, alts + 1):
                profile = profiles[int(rng.integers(len(profiles)))]
                rows.append({"version": v, "task": t, "alt": j, **profile, "holdout": t == tasks})
    return pl.DataFrame(rows).with_columns(pl.col("price").cast(pl.Float64))


@pytest.fixture(scope="module")
def design(project: Project) -> pl.DataFrame:
    return random_design(project, VERSIONS, TASKS, ALTS, seed=11)


@pytest.fixture(scope="module")
def respondents(market: Market) -> pl.DataFrame:
    return sample_respondents(market, n=1500, seed=0)


def _true_utilities(market: Market, project: Project, responses: pl.DataFrame) -> np.ndarray:
    """Utility of every response row computed by hand from the truth table's named columns."""
    truth = {row["person_id"]: row for row in market.truth.iter_rows(named=True)}
    price = project.attribute("price")
    out = np.empty(responses.height)
    for k, row in enumerate(responses.iter_rows(named=True)):
        beta = truth[row["id"]]
        if row["is_none"]:
            out[k] = beta["none"]
            continue
        u = beta["price"] * row["price"] / price.scale
        for attribute in project.attributes:
            if attribute.kind != "numeric":
                u += beta.get(f"{attribute.name}={row[attribute.name]}", 0.0)
        out[k] = u
    return out


# ----------------------------------------------------------------- respondents


def test_respondents_are_skewed_app_users(
    market: Market, project: Project, respondents: pl.DataFrame
) -> None:
    assert respondents.height == 1500
    assert respondents.columns == market.persons.columns
    assert respondents["person_id"].is_sorted() and respondents["person_id"].n_unique() == 1500
    assert respondents["app_user"].all()
    young = pl.col("age_band").is_in(["18-24", "25-34"])
    pop_young = market.persons.select(young.mean()).item()
    resp_young = respondents.select(young.mean()).item()
    assert resp_young > pop_young + 0.1
    tier1 = pl.col("city").is_in([c.name for c in project.cities if c.tier == 1])
    assert respondents.select(tier1.mean()).item() > market.persons.select(tier1.mean()).item() + 0.08
    old = pl.col("age_band") == "55+"
    assert respondents.select(old.mean()).item() < 0.5 * market.persons.select(old.mean()).item()
    # about 87% of survey takers prefer swapping to plug-in charging (the public figure)
    swap = market.truth.filter(pl.col("person_id").is_in(respondents["person_id"].implode()))
    share = (swap["energy_mode=swap"] > 0).mean()
    assert 0.80 <= share <= 0.94  # type: ignore[operator]


def test_respondents_depend_on_seed_only(market: Market) -> None:
    a = sample_respondents(market, n=200, seed=4)
    b = sample_respondents(market, n=200, seed=4)
    c = sample_respondents(market, n=200, seed=5)
    assert a["person_id"].to_list() == b["person_id"].to_list()
    assert a["person_id"].to_list() != c["person_id"].to_list()


def test_too_many_respondents(market: Market) -> None:
    with pytest.raises(C2MError, match="app users"):
        sample_respondents(market, n=market.persons.height)
    with pytest.raises(C2MError, match="at least 1"):
        sample_respondents(market, n=0)


# ----------------------------------------------------------------- responses


def test_responses_layout(market: Market, design: pl.DataFrame, respondents: pl.DataFrame) -> None:
    out = simulate_responses(market, design, respondents, seed=0)
    attrs = [a.name for a in market.project.attributes]  # type: ignore[union-attr]
    assert out.columns == ["id", "version", "task", "alt", "is_none", "chosen", *attrs, "holdout"]
    assert out.schema["id"] == pl.Int64 and out.schema["chosen"] == pl.Int8
    assert out.schema["is_none"] == pl.Boolean and out.schema["holdout"] == pl.Boolean
    assert out.schema["price"] == pl.Float64 and out.schema["colour"] == pl.String
    assert out.height == 1500 * TASKS * (ALTS + 1)
    per_task = out.group_by("id", "task").agg(pl.col("chosen").sum(), pl.len())
    assert (per_task["chosen"] == 1).all() and (per_task["len"] == ALTS + 1).all()
    none = out.filter(pl.col("is_none"))
    assert none.height == 1500 * TASKS
    assert (none["alt"] == ALTS + 1).all()
    assert all(none[a].null_count() == none.height for a in attrs)
    assert out.filter(~pl.col("is_none"))["alt"].max() == ALTS
    # versions round-robin by order of id
    ids = sorted(respondents["person_id"].to_list())
    versions = dict(out.select("id", "version").unique().iter_rows())
    assert [versions[i] for i in ids] == [k % VERSIONS + 1 for k in range(len(ids))]
    # the design's rows of that version, task by task
    first = out.filter((pl.col("id") == ids[3]) & ~pl.col("is_none")).drop("id", "is_none", "chosen")
    expected = design.filter(pl.col("version") == 4).sort("task", "alt").select(first.columns)
    assert first.equals(expected)
    # holdout carried to the None row
    assert (none["holdout"] == (none["task"] == TASKS)).all()


def test_choices_follow_true_utilities(
    market: Market, project: Project, design: pl.DataFrame, respondents: pl.DataFrame
) -> None:
    few = respondents.head(300)
    sharp = simulate_responses(market, design, few, seed=1, scale=1000.0)
    u = _true_utilities(market, project, sharp)
    frame = sharp.with_columns(pl.Series("u", u))
    best = frame.group_by("id", "task").agg(
        pl.col("chosen").sort_by("u", descending=True).first().alias("best_chosen")
    )
    assert best["best_chosen"].mean() > 0.99  # type: ignore[operator]

    # with scale 1 the choice frequencies are the logit probabilities of the true utilities
    noisy = simulate_responses(market, design, respondents, seed=2, scale=1.0)
    u = _true_utilities(market, project, noisy)
    prob = noisy.with_columns(pl.Series("u", u)).with_columns(
        (pl.col("u").exp() / pl.col("u").exp().sum().over("id", "task")).alias("p")
    )
    for label, mask in (("none", pl.col("is_none")), ("rent", pl.col("ownership").str.starts_with("rent"))):
        sub = prob.filter(mask.fill_null(False))
        observed = float(sub["chosen"].cast(pl.Float64).sum())
        expected = float(sub["p"].sum())
        sd = float(np.sqrt((sub["p"] * (1 - sub["p"])).sum()))
        assert abs(observed - expected) < 4 * sd, label
    assert 0.25 < prob.filter(pl.col("is_none"))["chosen"].cast(pl.Float64).mean() < 0.65  # type: ignore[operator]
    argmax_rate = (
        noisy.with_columns(pl.Series("u", u))
        .group_by("id", "task")
        .agg(pl.col("chosen").sort_by("u", descending=True).first())["chosen"]
        .mean()
    )
    assert 0.4 < argmax_rate < 0.9  # type: ignore[operator]


def test_responses_are_seeded(market: Market, design: pl.DataFrame, respondents: pl.DataFrame) -> None:
    few = respondents.head(100)
    a = simulate_responses(market, design, few, seed=3)
    b = simulate_responses(market, design, few, seed=3)
    c = simulate_responses(market, design, few, seed=4)
    assert a.equals(b)
    assert not a["chosen"].equals(c["chosen"])


def test_without_none_option(market: Market, design: pl.DataFrame, respondents: pl.DataFrame) -> None:
    out = simulate_responses(market, design, respondents.head(50), none_option=False)
    assert not out["is_none"].any()
    assert out["alt"].max() == ALTS and out.height == 50 * TASKS * ALTS
    assert (out.group_by("id", "task").agg(pl.col("chosen").sum())["chosen"] == 1).all()


def test_response_errors(
    market: Market, project: Project, design: pl.DataFrame, respondents: pl.DataFrame
) -> None:
    with pytest.raises(C2MError, match="missing column"):
        simulate_responses(market, design.drop("colour"), respondents)
    with pytest.raises(C2MError, match="unknown level"):
        simulate_responses(market, design.with_columns(pl.lit("purple").alias("colour")), respondents)
    stranger = pl.DataFrame({"person_id": [10**9]})
    with pytest.raises(C2MError, match="unknown person_id"):
        simulate_responses(market, design, stranger)
    with pytest.raises(C2MError, match="scale"):
        simulate_responses(market, design, respondents, scale=0.0)
    raw = project.model_dump(mode="json")
    raw["none_option"] = {"enabled": False, "label": "none"}
    no_none = generate_market(project_from_dict(raw), n_persons=200, seed=0)
    with pytest.raises(C2MError, match="no None option"):
        simulate_responses(no_none, design, no_none.persons.head(5), none_option=True)


def test_survey_on_a_market_read_back(market: Market, design: pl.DataFrame, tmp_path: Path) -> None:
    small = generate_market(market.project, n_persons=2000, seed=9)  # type: ignore[arg-type]
    back = read_market(small.write(tmp_path / "m"))
    r1 = sample_respondents(small, n=100, seed=1)
    r2 = sample_respondents(back, n=100, seed=1)
    assert r1.equals(r2)
    assert simulate_responses(small, design, r1, seed=1).equals(simulate_responses(back, design, r2, seed=1))
