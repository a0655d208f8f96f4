"""MNL against published results: Train's electricity data and larch's vehicle choice data."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from c2m.choice import ChoiceData, MultinomialLogit

ELEC_FEATURES = ["pf", "cl", "loc", "wk", "tod", "seas"]


def test_electricity_loglik_matches_published(electricity_data: ChoiceData) -> None:
    m = MultinomialLogit().fit(electricity_data)
    assert m.converged_
    assert m.loglik_ == pytest.approx(-4958.649, abs=1e-2)
    assert m.n_obs_ == 4308
    assert m.n_persons_ == 361
    # equal shares over four alternatives
    assert m.loglik_null_ == pytest.approx(4308 * np.log(0.25))
    assert m.rho2_ == pytest.approx(1 - m.loglik_ / m.loglik_null_)
    assert m.aic_ == pytest.approx(-2 * m.loglik_ + 12)
    assert m.bic_ == pytest.approx(-2 * m.loglik_ + 6 * np.log(4308))


def test_electricity_true_false_strings_and_table_fit(electricity: pl.DataFrame) -> None:
    as_text = electricity.with_columns(
        pl.when(pl.col("choice")).then(pl.lit("TRUE")).otherwise(pl.lit("FALSE")).alias("choice")
    )
    m = MultinomialLogit().fit(
        as_text, features=ELEC_FEATURES, id_col="id", task_col="chid", chosen_col="choice"
    )
    assert m.loglik_ == pytest.approx(-4958.649, abs=1e-2)
    assert m.feature_names_ == ELEC_FEATURES


def test_vehicle_choice_matches_larch(vehicle_model: MultinomialLogit) -> None:
    m = vehicle_model
    published = {
        "price": -0.41668,
        "opcost": -0.012880,
        "max_range": 0.47704,
        "ev": -1.39235,
        "hybrid": 0.35547,
        "hiperf": 0.10991,
        "medhiperf": 0.38411,
    }
    assert m.loglik_ == pytest.approx(-1399.193, abs=1e-3)
    coef = dict(zip(m.feature_names_, m.coef_, strict=True))
    for name, value in published.items():
        assert coef[name] == pytest.approx(value, rel=2e-4), name
    assert m.se_[m.feature_names_.index("price")] == pytest.approx(0.03316, rel=1e-3)


def test_summary_table_and_text(vehicle_model: MultinomialLogit) -> None:
    table = vehicle_model.summary()
    assert table.columns == ["feature", "estimate", "std_err", "z", "p_value", "ci_low", "ci_high"]
    row = table.row(0, named=True)
    assert row["feature"] == "price"
    assert row["z"] == pytest.approx(row["estimate"] / row["std_err"])
    assert row["ci_low"] == pytest.approx(row["estimate"] - 1.959964 * row["std_err"], rel=1e-6)
    assert 0 <= row["p_value"] < 1e-20
    text = vehicle_model.summary_text()
    assert "-1399.193" in text and "medhiperf" in text and "classic" in text
