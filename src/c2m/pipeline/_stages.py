"""One function per stage of the flow: typed values in, typed values out, files written.

The CLI's subcommands and ``c2m demo`` call these; each writes the files named
in docs/schemas.md into an output folder so the next stage can run on them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from c2m import _io
from c2m.choice import ChoiceData, MultinomialLogit
from c2m.data import Market, generate_market, sample_respondents, simulate_responses
from c2m.domain import FeatureCoder, Project
from c2m.errors import C2MError
from c2m.market import MarketSimulator
from c2m.optimize import LineSolution, optimize_line
from c2m.signals import RakingResult, rake
from c2m.survey import Design, make_design


def generate(project: Project, out: Path, n_persons: int, seed: int) -> Market:
    """Synthetic market (persons, stores, events, hidden truth) written to ``out``."""
    market = generate_market(project, n_persons=n_persons, seed=seed)
    market.write(out)
    return market


def design(
    project: Project,
    out: Path,
    method: str = "balanced_overlap",
    n_versions: int = 20,
    n_tasks: int = 12,
    n_alts: int = 3,
    seed: int = 0,
) -> Design:
    """A choice-based-conjoint design written to ``out`` (design.parquet/.csv/.json)."""
    result = make_design(
        project, method=method, n_versions=n_versions, n_tasks=n_tasks, n_alts=n_alts, seed=seed
    )
    result.write(out)
    return result


def field_survey(
    project: Project, market: Market, survey_design: Design, out: Path, n_respondents: int, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame, RakingResult]:
    """Simulated respondents answer the survey from their hidden preferences.

    Writes ``responses.parquet`` and ``respondents.parquet`` (with survey weights
    raked to the market's population, see :func:`weight_respondents`).
    """
    respondents = sample_respondents(market, n=n_respondents, seed=seed)
    responses = simulate_responses(
        market, survey_design.frame, respondents, none_option=survey_design.none_option, seed=seed
    )
    respondents, raking = weight_respondents(project, respondents, market.persons)
    _io.write_parquet(out / "respondents.parquet", respondents)
    _io.write_parquet(out / "responses.parquet", responses)
    return respondents, responses, raking


def survey_weights(respondents: pl.DataFrame) -> pl.DataFrame:
    """``id``/``weight`` rows for :func:`estimate` from a respondents table with a ``weight`` column."""
    missing = [c for c in ("person_id", "weight") if c not in respondents.columns]
    if missing:
        raise C2MError(f"respondents: missing column(s) {missing}; expected the file `c2m simulate-responses` writes")
    return respondents.select(id=pl.col("person_id"), weight=pl.col("weight"))


SURVEY_WEIGHTING_VARIABLES = ("city_tier", "age_band", "income_band", "home_charging", "owns_car")


def weight_respondents(
    project: Project,
    respondents: pl.DataFrame,
    population: pl.DataFrame,
    trim: tuple[float, float] | None = (0.1, 10.0),
) -> tuple[pl.DataFrame, RakingResult]:
    """Rake respondents to the population's margins on city tier and traits.

    Returns the respondents with a ``weight`` column (mean 1) and the raking
    result; check ``result.converged`` (trimming can stop the margins from being met).
    """
    tiers = pl.DataFrame(
        {"city": [c.name for c in project.cities], "city_tier": [f"tier {c.tier}" for c in project.cities]}
    )

    def with_tier(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.join(tiers, on="city", how="left") if tiers.height else frame.with_columns(city_tier=pl.lit("all"))

    result = rake(
        with_tier(respondents), population=with_tier(population), variables=list(SURVEY_WEIGHTING_VARIABLES), trim=trim
    )
    return respondents.with_columns(weight=pl.Series(result.weights)), result


def choice_data(project: Project, responses: pl.DataFrame, weights: pl.DataFrame | None = None) -> ChoiceData:
    """Code long-format responses with the project's features for estimation.

    ``weights`` (columns ``id`` and ``weight``, one row per respondent) weights each
    respondent's tasks, e.g. the survey weights of :func:`weight_respondents`.
    """
    coder = FeatureCoder.from_project(project)
    required = ["id", "task", "alt", "chosen"]
    missing = [c for c in required if c not in responses.columns]
    if missing:
        raise C2MError(f"responses: missing column(s) {missing}; see docs/schemas.md")
    X = coder.encode_frame(responses)
    features = pl.DataFrame(X, schema=coder.feature_names)
    frame = pl.concat([responses.select(required), features], how="horizontal").with_columns(
        chid=pl.struct("id", "task").rank("dense").cast(pl.Int64)
    )
    weight_col = None
    if weights is not None:
        frame = frame.join(weights.select("id", "weight"), on="id", how="left", maintain_order="left")
        unweighted = frame.filter(pl.col("weight").is_null())["id"]
        if unweighted.len():
            raise C2MError(f"survey weights: respondent {unweighted[0]} has no weight")
        weight_col = "weight"
    return ChoiceData.from_long(
        frame,
        features=coder.feature_names,
        id_col="id",
        task_col="chid",
        alt_col="alt",
        chosen_col="chosen",
        weight_col=weight_col,
    )


def estimate(
    project: Project, responses: pl.DataFrame, weights: pl.DataFrame | None = None
) -> tuple[MultinomialLogit, dict[str, Any]]:
    """MNL on the estimation tasks (respondents weighted if ``weights`` is given, with robust
    standard errors); hit rate and share error on the holdout tasks."""
    holdout = (
        responses["holdout"].fill_null(False) if "holdout" in responses.columns else pl.Series([False])
    )
    train = responses.filter(~holdout) if "holdout" in responses.columns else responses
    test = responses.filter(holdout) if "holdout" in responses.columns else responses.clear()
    model = MultinomialLogit(robust=True).fit(choice_data(project, train, weights))
    validation: dict[str, Any] = {}
    if test.height:
        test_data = choice_data(project, test)
        validation = {
            "holdout_hit_rate": model.hit_rate(test_data),
            "holdout_share_mae": model.share_mae(test_data),
        }
    return model, validation


def coefficients_for(project: Project, model: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """The model's coefficients (and covariance) in the project's feature order."""
    names = FeatureCoder.from_project(project).feature_names
    features = list(model.get("features", []))
    if sorted(features) != sorted(names):
        raise C2MError(
            f"model features {features} do not match the project's {names}; "
            "estimate the model with the same project file"
        )
    order = [features.index(n) for n in names]
    coef = np.asarray(model["coef"], dtype=float)[order]
    vcov = model.get("vcov")
    cov = None if vcov is None else np.asarray(vcov, dtype=float)[np.ix_(order, order)]
    return coef, cov


def simulator(project: Project, model: dict[str, Any], seed: int = 0) -> MarketSimulator:
    coef, vcov = coefficients_for(project, model)
    return MarketSimulator(project, coef, vcov=vcov, seed=seed)


def simulator_for_model(project: Project, model: Any, seed: int = 0, **options: Any) -> MarketSimulator:
    """The market simulator of any fitted c2m.choice model on the project's coded features.

    A multinomial logit gives one coefficient vector (with its covariance, for intervals);
    latent class, hierarchical Bayes and mixed logit models give the population's
    coefficient vectors and weights (see :func:`population_betas`), so shares follow the
    heterogeneity the model found (no parameter-uncertainty intervals for those yet).
    ``options`` go to :class:`MarketSimulator` (``rule``, ``scale``, ...).
    """
    from ._population import population_betas

    if isinstance(model, MultinomialLogit):
        coef, vcov = coefficients_for(project, model.to_dict())
        return MarketSimulator(project, coef, vcov=vcov, seed=seed, **options)
    names = FeatureCoder.from_project(project).feature_names
    features = list(getattr(model, "feature_names_", []))
    if sorted(features) != sorted(names):
        raise C2MError(
            f"model features {features} do not match the project's {names}; "
            "estimate the model on the project's survey responses"
        )
    population = population_betas(model, seed=seed)
    assert population is not None
    betas, weights = population
    order = [features.index(n) for n in names]
    individual = betas[:, order]
    return MarketSimulator(
        project, weights @ individual, individual=individual, weights=weights, seed=seed, **options
    )


def optimize(
    project: Project, sim: MarketSimulator, n_variants: int, objective: str, seed: int = 0
) -> LineSolution:
    return optimize_line(project, sim, n_variants=n_variants, objective=objective, seed=seed)
