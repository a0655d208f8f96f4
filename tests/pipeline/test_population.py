"""Heterogeneous models drive the market simulator through the population they describe."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from c2m.choice import HierarchicalBayesLogit, LatentClassLogit, MixedLogit, MultinomialLogit
from c2m.data import default_project, generate_market, sample_respondents, simulate_responses
from c2m.domain import FeatureCoder, enumerate_profiles
from c2m.errors import C2MError
from c2m.market import MarketSimulator
from c2m.pipeline._population import population_betas
from c2m.pipeline._stages import choice_data, simulator_for_model
from c2m.survey import make_design


@pytest.fixture(scope="module")
def survey() -> tuple[object, object]:
    project = default_project()
    market = generate_market(project, n_persons=8_000, seed=3)
    design = make_design(project, n_versions=6, seed=3)
    respondents = sample_respondents(market, n=250, seed=3)
    responses = simulate_responses(market, design.frame, respondents, seed=3)
    return project, choice_data(project, responses)


def _line(project: object) -> list[dict[str, object]]:
    profiles = enumerate_profiles(project)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    return [profiles[i] for i in rng.choice(len(profiles), size=2, replace=False)]


def test_latent_class_shares_are_the_class_weighted_logit_shares(survey) -> None:  # type: ignore[no-untyped-def]
    project, data = survey
    model = LatentClassLogit(n_classes=2, n_starts=1, seed=0).fit(data)
    line = _line(project)
    sim = simulator_for_model(project, model)
    shares = sim.shares(line)["share"].to_numpy()
    names = FeatureCoder.from_project(project).feature_names
    order = [model.feature_names_.index(n) for n in names]
    expected = sum(
        weight * MarketSimulator(project, model.coef_[k, order]).shares(line)["share"].to_numpy()
        for k, weight in enumerate(model.class_shares_ / model.class_shares_.sum())
    )
    np.testing.assert_allclose(shares, expected, atol=1e-12)
    assert shares.sum() == pytest.approx(1.0)


def test_mixed_logit_population_has_the_estimated_mean_and_spread(survey) -> None:  # type: ignore[no-untyped-def]
    project, data = survey
    features = list(data.feature_names)
    model = MixedLogit(random={features[0]: "normal", features[1]: "normal"}, n_draws=50, maxiter=200).fit(data)
    population = population_betas(model, n_draws=4000)
    assert population is not None
    betas, weights = population
    assert betas.shape == (4000, len(features)) and weights.sum() == pytest.approx(1.0)
    assert betas[:, 0].mean() == pytest.approx(model.coef_[0], abs=0.02 * max(1.0, abs(model.coef_[0])))
    assert betas[:, 0].std() == pytest.approx(model.sd_[0], rel=0.03)
    assert np.ptp(betas[:, 2]) == 0.0  # fixed coefficients are the same for everyone
    # no random coefficients: the simulator is the MNL with the same coefficients
    fixed = MixedLogit(random={}, n_draws=5).fit(data)
    line = _line(project)
    mnl_like = MarketSimulator(
        project, fixed.coef_[[fixed.feature_names_.index(n) for n in FeatureCoder.from_project(project).feature_names]]
    )
    np.testing.assert_allclose(
        simulator_for_model(project, fixed).shares(line)["share"], mnl_like.shares(line)["share"], atol=1e-12
    )


def test_hierarchical_bayes_uses_the_respondents_part_worths(survey) -> None:  # type: ignore[no-untyped-def]
    project, data = survey
    model = HierarchicalBayesLogit(n_iter=300, burn_in=150, thin=5, n_chains=1, seed=0).fit(data)
    sim = simulator_for_model(project, model, rule="first_choice")
    names = FeatureCoder.from_project(project).feature_names
    order = [model.feature_names_.index(n) for n in names]
    np.testing.assert_allclose(sim.individual, model.individual_coef_[:, order])
    shares = sim.shares(_line(project))
    assert shares["share"].sum() == pytest.approx(1.0)
    assert "first_choice" in sim.rule


def test_a_model_of_other_features_is_refused(survey) -> None:  # type: ignore[no-untyped-def]
    project, _ = survey
    frame = pl.DataFrame({"id": [1, 1, 2, 2], "task": [1, 1, 1, 1], "alt": [1, 2, 1, 2], "chosen": [1, 0, 0, 1],
                          "x": [1.0, 0.0, 0.0, 1.0]})
    from c2m.choice import ChoiceData

    other = LatentClassLogit(n_classes=1, n_starts=1).fit(ChoiceData.from_long(frame, ["x"]))
    with pytest.raises(C2MError, match="do not match the project"):
        simulator_for_model(project, other)
    mnl = MultinomialLogit().fit(ChoiceData.from_long(frame, ["x"]))
    with pytest.raises(C2MError, match="do not match the project"):
        simulator_for_model(project, mnl)
