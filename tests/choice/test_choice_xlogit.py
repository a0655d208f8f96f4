"""Cross-check against xlogit, the reference tool, on Train's electricity data."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from c2m.choice import ChoiceData, MultinomialLogit

xlogit = pytest.importorskip("xlogit")
FEATURES = ["pf", "cl", "loc", "wk", "tod", "seas"]


def _xlogit_fit(df: pl.DataFrame, fit_intercept: bool = False) -> Any:
    m = xlogit.MultinomialLogit()
    m.fit(
        X=df.select(FEATURES).to_numpy().astype(np.float64),
        y=df["choice"].to_numpy(),
        varnames=FEATURES,
        alts=df["alt"].to_numpy(),
        ids=df["chid"].to_numpy(),
        fit_intercept=fit_intercept,
        verbose=0,
    )
    return m


def test_same_coefficients_and_loglik_as_xlogit(
    electricity: pl.DataFrame, electricity_data: ChoiceData
) -> None:
    ref = _xlogit_fit(electricity)
    ours = MultinomialLogit().fit(electricity_data)
    np.testing.assert_allclose(ours.coef_, ref.coeff_, atol=1e-4)
    assert ours.loglik_ == pytest.approx(ref.loglikelihood, abs=1e-4)
    np.testing.assert_allclose(ours.se_, ref.stderr, rtol=1e-3)


def test_alternative_specific_constants_match_xlogit_intercepts(electricity: pl.DataFrame) -> None:
    ref = _xlogit_fit(electricity, fit_intercept=True)
    ours = MultinomialLogit(fit_intercept=True).fit(
        electricity, features=FEATURES, id_col="id", task_col="chid", chosen_col="choice"
    )
    assert ours.feature_names_ == [*FEATURES, "asc_2", "asc_3", "asc_4"]
    ref_coef = dict(zip(ref.coeff_names, ref.coeff_, strict=True))
    expected = [ref_coef[f] for f in FEATURES] + [ref_coef[f"_intercept.{a}"] for a in (2, 3, 4)]
    np.testing.assert_allclose(ours.coef_, expected, atol=1e-4)
    assert ours.loglik_ == pytest.approx(ref.loglikelihood, abs=1e-4)
