"""Survey weights flow into estimation and correct the sample's skew toward the population."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from c2m.data import default_project, generate_market, sample_respondents, simulate_responses
from c2m.pipeline import estimate
from c2m.pipeline._stages import SURVEY_WEIGHTING_VARIABLES, weight_respondents
from c2m.survey import make_design


@pytest.mark.parametrize("seed", [0, 1])
def test_survey_weights_match_the_population_and_reach_the_estimator(seed: int) -> None:
    project = default_project()
    market = generate_market(project, n_persons=60_000, seed=seed)
    design = make_design(project, seed=seed)
    respondents = sample_respondents(market, n=1500, seed=seed)
    responses = simulate_responses(market, design.frame, respondents, seed=seed)

    weighted, raking = weight_respondents(project, respondents, market.persons)
    assert raking.converged and raking.design_effect > 1.0
    assert weighted["weight"].mean() == pytest.approx(1.0)
    # the young are over-represented among app respondents, so they are weighted down
    young = weighted.filter(pl.col("age_band") == "18-24")["weight"].mean()
    old = weighted.filter(pl.col("age_band") == "55+")["weight"].mean()
    assert young < 1.0 < old
    assert set(SURVEY_WEIGHTING_VARIABLES) >= {"age_band", "home_charging"}

    margins = raking.margins
    assert (margins["weighted_share"] - margins["population_share"]).abs().max() < 1e-6

    # weights reach the estimator: weight 2 on a respondent = that respondent answering twice
    doubled = weighted.select(id=pl.col("person_id"), weight=(pl.col("person_id") % 2 + 1).cast(pl.Float64))
    twice = doubled.filter(pl.col("weight") == 2.0)["id"]
    copies = responses.filter(pl.col("id").is_in(twice.implode())).with_columns(id=pl.col("id") + 10**9)
    by_weight, _ = estimate(project, responses, weights=doubled)
    by_copy, _ = estimate(project, pl.concat([responses, copies]))
    np.testing.assert_allclose(by_weight.coef_, by_copy.coef_, rtol=1e-6, atol=1e-8)
    plain, _ = estimate(project, responses)
    assert np.abs(by_weight.coef_ - plain.coef_).max() > 1e-3
