"""Respondents answer from known preferences; the estimate recovers them (a real statistical test)."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
from scipy import stats

from c2m.data import default_project, generate_market, sample_respondents, simulate_responses
from c2m.domain import FeatureCoder
from c2m.pipeline import estimate
from c2m.survey import make_design


def test_known_preferences_fall_inside_the_95_percent_intervals() -> None:
    project = default_project()
    coder = FeatureCoder.from_project(project)
    names = coder.feature_names
    rng = np.random.default_rng(7)
    beta = rng.normal(0.0, 0.5, size=len(names))
    beta[names.index("price")] = -0.7  # per 10,000 yuan
    beta[names.index("none")] = -3.5

    market = generate_market(project, n_persons=5_000, seed=3)
    n = market.persons.height
    truth = pl.DataFrame(
        {"person_id": market.persons["person_id"], "segment": np.zeros(n, dtype=np.int64)}
        | {name: np.full(n, value) for name, value in zip(names, beta, strict=True)}
    )
    market = dataclasses.replace(market, truth=truth)
    assert np.allclose(market.true_betas()[:5], beta)

    design = make_design(project, method="balanced_overlap", n_versions=30, n_tasks=12, n_alts=3, seed=3)
    respondents = sample_respondents(market, n=1_200, seed=3)
    responses = simulate_responses(market, design.frame, respondents, none_option=True, seed=3)
    model, validation = estimate(project, responses)

    estimated = dict(zip(model.feature_names_, model.coef_, strict=True))
    se = dict(zip(model.feature_names_, model.se_, strict=True))
    z = np.array([(estimated[f] - b) / se[f] for f, b in zip(names, beta, strict=True)])
    inside = np.abs(z) < stats.norm.ppf(0.975)
    assert inside.mean() >= 0.85, dict(zip(names, z.round(2), strict=True))
    # jointly: sum of squared z-scores is chi-square with K degrees of freedom under the truth
    assert stats.chi2.sf(np.sum(z**2), df=len(names)) > 0.001
    assert validation["holdout_hit_rate"] > 1 / 4  # better than chance among 3 products + None
