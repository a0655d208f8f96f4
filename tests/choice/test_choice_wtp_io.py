"""WTP (delta vs Krinsky-Robb), elasticities, prediction metrics, save/load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from c2m.choice import ChoiceData, MultinomialLogit, load_model, save_model
from c2m.errors import C2MError


def test_wtp_delta_agrees_with_krinsky_robb(vehicle_model: MultinomialLogit) -> None:
    delta = vehicle_model.wtp("price", method="delta")
    kr = vehicle_model.wtp("price", method="krinsky_robb", n_draws=20_000, seed=1)
    assert delta["feature"].to_list() == ["opcost", "max_range", "ev", "hybrid", "hiperf", "medhiperf"]
    b = dict(zip(vehicle_model.feature_names_, vehicle_model.coef_, strict=True))
    np.testing.assert_allclose(delta["wtp"].to_numpy(), [-b[f] / b["price"] for f in delta["feature"]])
    np.testing.assert_allclose(kr["wtp"].to_numpy(), delta["wtp"].to_numpy())
    np.testing.assert_allclose(kr["std_err"].to_numpy(), delta["std_err"].to_numpy(), rtol=0.10)
    assert np.all(kr["ci_low"].to_numpy() < kr["wtp"].to_numpy())
    # same seed, same draws
    again = vehicle_model.wtp("price", method="krinsky_robb", n_draws=20_000, seed=1)
    np.testing.assert_array_equal(again["std_err"].to_numpy(), kr["std_err"].to_numpy())


def test_wtp_delta_gradient_by_finite_differences(vehicle_model: MultinomialLogit) -> None:
    m = vehicle_model
    p, k = m.feature_names_.index("price"), m.feature_names_.index("ev")
    eps = 1e-7
    grad = np.zeros(len(m.coef_))
    for i in range(len(m.coef_)):
        up, dn = m.coef_.copy(), m.coef_.copy()
        up[i] += eps
        dn[i] -= eps
        grad[i] = (-up[k] / up[p] + dn[k] / dn[p]) / (2 * eps)
    se = float(np.sqrt(grad @ m.vcov_ @ grad))
    row = m.wtp("price").filter(feature="ev").row(0, named=True)
    assert row["std_err"] == pytest.approx(se, rel=1e-5)


def test_wtp_errors(vehicle_model: MultinomialLogit) -> None:
    with pytest.raises(C2MError, match="price feature 'cost' is not in the model"):
        vehicle_model.wtp("cost")
    with pytest.raises(C2MError, match="unknown WTP method"):
        vehicle_model.wtp("price", method="bootstrap")


def test_elasticities_match_finite_differences(vehicle_model: MultinomialLogit) -> None:
    m = vehicle_model
    X = np.array([[3.0, 20.0, 1.5, 1, 0, 1, 1], [4.5, 10.0, 2.0, 0, 1, 0, 1], [2.5, 40.0, 3.0, 0, 0, 1, 0]])
    E = m.elasticities(X, "price")
    assert E.shape == (3, 3)
    assert np.all(np.diag(E) < 0)
    off = E[~np.eye(3, dtype=bool)]
    assert np.all(off > 0)
    s0, p = m.predict_shares(X), m.feature_names_.index("price")
    for j in range(3):
        Xh = X.copy()
        Xh[j, p] *= 1 + 1e-6
        fd = (np.log(m.predict_shares(Xh)) - np.log(s0)) / np.log(1 + 1e-6)
        np.testing.assert_allclose(E[:, j], fd, rtol=1e-4)
    # X in raw yuan with price_scale converts to the model's price/10,000
    raw = X.copy()
    raw[:, p] *= 10_000
    np.testing.assert_allclose(m.elasticities(raw, "price", price_scale=1e-4), E)


def test_prediction_metrics(vehicle_model: MultinomialLogit, vehicle_data: ChoiceData) -> None:
    P = vehicle_model.predict_proba(vehicle_data)
    assert P.shape == (1484, 3)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    loglik = float(np.log(P[np.arange(P.shape[0]), vehicle_data.chosen]).sum())
    assert loglik == pytest.approx(vehicle_model.loglik_)
    assert 0.4 < vehicle_model.hit_rate(vehicle_data) < 0.8
    # MNL with all features reproduces aggregate shares only with ASCs; still close here
    assert 0 <= vehicle_model.share_mae(vehicle_data) < 0.05
    shares = vehicle_model.predict_shares(vehicle_data.X[0])
    np.testing.assert_allclose(shares, P[0])


def test_save_load_round_trip(tmp_path: Path, vehicle_data: ChoiceData) -> None:
    for kw in ({}, {"robust": True}, {"cluster": "person"}):
        m = MultinomialLogit(**kw).fit(vehicle_data)  # type: ignore[arg-type]
        path = save_model(m, tmp_path / "model.json")
        assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind
        d = json.loads(path.read_text())
        assert d["model"] == "MultinomialLogit" and d["version"] == 1
        keys = ["features", "coef", "vcov", "se", "loglik", "loglik_null", "n_obs", "n_persons"]
        keys += ["aic", "bic", "converged"]
        assert set(keys) <= set(d)
        loaded = load_model(path)
        assert isinstance(loaded, MultinomialLogit)
        np.testing.assert_array_equal(loaded.predict_proba(vehicle_data), m.predict_proba(vehicle_data))
        np.testing.assert_array_equal(loaded.se_, m.se_)
        assert loaded.summary().equals(m.summary())
        assert loaded.wtp("price").equals(m.wtp("price"))
        assert loaded.se_type_ == m.se_type_ and loaded.aic_ == m.aic_ and loaded.rho2_ == m.rho2_
        assert MultinomialLogit.from_dict(m.to_dict()).loglik_ == m.loglik_


def test_save_load_with_constants(tmp_path: Path, electricity_data: ChoiceData) -> None:
    m = MultinomialLogit(fit_intercept=True).fit(electricity_data)
    loaded = load_model(save_model(m, tmp_path / "asc.json"))
    assert loaded.feature_names_ == m.feature_names_
    np.testing.assert_array_equal(loaded.predict_proba(electricity_data), m.predict_proba(electricity_data))


def test_load_errors_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(C2MError, match=r"nope\.json.*does not exist"):
        load_model(missing)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(C2MError, match=r"bad\.json.*not valid JSON"):
        load_model(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"model": "NeuralNet", "version": 1}))
    with pytest.raises(C2MError, match=r"other\.json.*unknown model 'NeuralNet'"):
        load_model(other)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"model": "MultinomialLogit", "version": 1, "features": ["a"]}))
    with pytest.raises(C2MError, match=r"broken\.json.*lacks key"):
        load_model(broken)
    with pytest.raises(C2MError, match="does not exist"):
        save_model(MultinomialLogit(), tmp_path / "no" / "dir" / "m.json")
