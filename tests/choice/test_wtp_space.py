"""Mixed logit in WTP space: gradients, engines, recovery, equivalence with preference space, I/O."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from c2m.choice import ChoiceData, MixedLogit, MultinomialLogit, load_model, save_model
from c2m.choice import _mixed_math as mm
from c2m.choice._draws import make_draws, standardise
from c2m.errors import C2MError

ELEC = ["pf", "cl", "loc", "wk", "tod", "seas"]


def _panel(rand: list[int], dists: list[str], correlated: bool, seed: int = 2) -> tuple[mm.Spec, mm.Panel]:
    rng = np.random.default_rng(seed)
    N, T, J, K, R = 10, 4, 3, 4, 12
    X = rng.normal(size=(N * T, J, K))
    avail = np.ones((N * T, J), dtype=bool)
    avail[::4, 1] = False
    chosen = rng.choice([0, 2], N * T)
    spec = mm.make_spec(K, rand, dists, correlated, wtp_idx=0)
    E = standardise(make_draws(N, R, len(dists), seed=5), dists)
    starts = np.arange(0, N * T + 1, T)
    panel = mm.Panel(X, avail, chosen, X[np.arange(N * T), chosen], starts, rng.uniform(0.5, 2, N), E)
    return spec, panel


CASES = [
    ([0], ["lognormal"], False),  # random scale, fixed WTPs
    ([], [], False),  # everything fixed (scale exp(b))
    ([1], ["normal"], False),  # fixed scale, random WTP
    ([0, 1, 2], ["lognormal", "normal", "lognormal"], False),
    ([0, 2, 3], ["lognormal", "neg_lognormal", "triangular"], False),
    ([0, 3], ["lognormal", "uniform"], False),
    ([0, 1, 3], ["lognormal", "normal", "neg_lognormal"], True),
    ([1, 2], ["normal", "normal"], True),  # correlated WTPs, fixed scale
]


def _central_fd(f: object, theta: np.ndarray, h: float = 1e-6) -> np.ndarray:
    out = np.empty_like(theta)
    for i in range(theta.size):
        tp, tm = theta.copy(), theta.copy()
        tp[i] += h
        tm[i] -= h
        out[i] = (f(tp) - f(tm)) / (2 * h)  # type: ignore[operator]
    return out


@pytest.mark.parametrize(("rand", "dists", "correlated"), CASES)
def test_gradient_matches_central_differences(rand: list[int], dists: list[str], correlated: bool) -> None:
    spec, panel = _panel(rand, dists, correlated)
    theta = np.random.default_rng(7).normal(scale=0.4, size=spec.n_params)
    ll, scores = mm.loglik_scores(theta, spec, panel)
    assert ll == pytest.approx(mm.loglik(theta, spec, panel), rel=1e-12)
    fd = _central_fd(lambda t: mm.loglik(t, spec, panel), theta)
    np.testing.assert_allclose(scores.sum(axis=0), fd, rtol=1e-6, atol=1e-6)
    if mm.numba_available():
        ll_nb, sc_nb = mm.loglik_scores_numba(theta, spec, panel)
        assert abs(ll_nb - ll) < 1e-8
        np.testing.assert_allclose(sc_nb, scores, rtol=0, atol=1e-8)


def test_wtp_space_changes_the_likelihood() -> None:
    # the same theta means different utilities in the two spaces: WTP space is not a no-op
    spec_w, panel = _panel([1], ["normal"], False)
    spec_p = mm.make_spec(4, [1], ["normal"], False)
    theta = np.array([0.3, 0.5, -0.2, 0.4, 0.7])
    assert abs(mm.loglik(theta, spec_w, panel) - mm.loglik(theta, spec_p, panel)) > 1e-3
    # ... and WTP space at (log lambda, w) equals preference space at beta = lambda * w, beta_p = -lambda
    spec_f, _ = _panel([], [], False)
    spec_pf = mm.make_spec(4, [], [], False)
    lam, w = 1.7, np.array([0.4, -0.3, 1.1])
    beta = np.concatenate([[-lam], lam * w])
    assert mm.loglik(np.concatenate([[np.log(lam)], w]), spec_f, panel) == pytest.approx(
        mm.loglik(beta, spec_pf, panel), rel=1e-12
    )


def _simulate(
    n_persons: int = 800, n_tasks: int = 8, n_alts: int = 3, seed: int = 0, price_unit: float = 1.0
) -> tuple[pl.DataFrame, dict[str, float]]:
    """Panel choices from U = lambda (w1 x1 + w2 x2 - price) + Gumbel, lambda lognormal, w1 normal."""
    truth = {"mu_log_lambda": 0.0, "sd_log_lambda": 0.5, "w1": 1.0, "sd_w1": 0.6, "w2": -0.5}
    rng = np.random.default_rng(seed)
    lam = np.exp(truth["mu_log_lambda"] + truth["sd_log_lambda"] * rng.normal(size=n_persons))
    w1 = truth["w1"] + truth["sd_w1"] * rng.normal(size=n_persons)
    n = n_persons * n_tasks
    price = rng.uniform(0.5, 3.0, size=(n, n_alts))
    x1 = rng.integers(0, 2, size=(n, n_alts)).astype(float)
    x2 = rng.uniform(0.0, 2.0, size=(n, n_alts))
    person = np.repeat(np.arange(n_persons), n_tasks)
    V = lam[person, None] * (w1[person, None] * x1 + truth["w2"] * x2 - price)
    chosen = (V + rng.gumbel(size=V.shape)).argmax(axis=1)
    df = pl.DataFrame(
        {
            "id": np.repeat(person, n_alts),
            "task": np.repeat(np.arange(n), n_alts),
            "alt": np.tile(np.arange(n_alts), n),
            "chosen": (np.arange(n_alts)[None, :] == chosen[:, None]).reshape(-1),
            "price": price.reshape(-1) * price_unit,
            "x1": x1.reshape(-1),
            "x2": x2.reshape(-1),
        }
    )
    return df, truth


@pytest.fixture(scope="module")
def wtp_data() -> tuple[ChoiceData, dict[str, float]]:
    df, truth = _simulate()
    return ChoiceData.from_long(df, ["price", "x1", "x2"]), truth


@pytest.fixture(scope="module")
def wtp_model(wtp_data: tuple[ChoiceData, dict[str, float]]) -> MixedLogit:
    return MixedLogit(random={"x1": "normal"}, wtp_space="price", n_draws=200, seed=1).fit(wtp_data[0])


def test_recovers_known_wtp_space_parameters(
    wtp_model: MixedLogit, wtp_data: tuple[ChoiceData, dict[str, float]]
) -> None:
    m, truth = wtp_model, wtp_data[1]
    assert m.converged_
    assert m.param_names_ == ["price", "x1", "x2", "sd.price", "sd.x1"]
    est = dict(zip(m.param_names_, m.params_, strict=True))
    se = dict(zip(m.param_names_, m.se_, strict=True))
    expected = {
        "price": truth["mu_log_lambda"],
        "x1": truth["w1"],
        "x2": truth["w2"],
        "sd.price": truth["sd_log_lambda"],
        "sd.x1": truth["sd_w1"],
    }
    for name, value in expected.items():
        got = abs(est[name]) if name.startswith("sd.") else est[name]  # the sign of a spread is arbitrary
        assert abs(got - value) <= 2.5 * se[name], (name, got, value, se[name])
    # the WTP-space fit beats the preference-space MNL it started from
    assert m.loglik_ > m.mnl_loglik_ + 50


def test_individual_coefficients_are_wtps(wtp_model: MixedLogit, wtp_data: tuple[ChoiceData, dict[str, float]]) -> None:
    data, truth = wtp_data
    ind = wtp_model.individual_coef(data)
    assert ind.shape == (data.n_persons, 3)
    assert (ind[:, 0] > 0).all()  # the scale lambda is positive
    assert np.mean(ind[:, 1]) == pytest.approx(truth["w1"], abs=0.1)  # conditional means average to the mean
    np.testing.assert_allclose(ind[:, 2], wtp_model.params_[2])  # a fixed WTP is the same for all
    P = wtp_model.predict_proba(data)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    # higher price, lower predicted share: the utility has -lambda * price
    hi = data.X[:, :, 0].argmax(axis=1)
    lo = data.X[:, :, 0].argmin(axis=1)
    rows = np.arange(data.n_tasks)
    assert P[rows, hi].mean() < P[rows, lo].mean()


def test_price_units_only_rescale_the_wtps(wtp_model: MixedLogit) -> None:
    # price in thousands: WTPs x 1000, log lambda - log(1000), same log-likelihood (robust scaling)
    df, _ = _simulate(price_unit=1000.0)
    data = ChoiceData.from_long(df, ["price", "x1", "x2"])
    m = MixedLogit(random={"x1": "normal"}, wtp_space="price", n_draws=200, seed=1).fit(data)
    assert m.converged_
    assert m.loglik_ == pytest.approx(wtp_model.loglik_, abs=1e-3)
    np.testing.assert_allclose(m.params_[[1, 2]], 1000 * wtp_model.params_[[1, 2]], rtol=1e-3)
    assert m.params_[0] == pytest.approx(wtp_model.params_[0] - np.log(1000), abs=1e-3)
    assert abs(m.params_[4]) == pytest.approx(1000 * abs(wtp_model.params_[4]), rel=1e-3)


def test_all_fixed_equals_mnl_on_electricity(electricity_data: ChoiceData) -> None:
    mnl = MultinomialLogit().fit(electricity_data)
    m = MixedLogit(random={"pf": "fixed"}, wtp_space="pf", n_draws=1).fit(electricity_data)
    assert m.converged_
    assert m.loglik_ == pytest.approx(-4958.649, abs=1e-3)  # the published MNL log-likelihood
    assert m.loglik_ == pytest.approx(mnl.loglik_, abs=1e-5)
    bp = mnl.coef_[0]
    assert m.params_[0] == pytest.approx(np.log(-bp), abs=1e-4)
    np.testing.assert_allclose(m.params_[1:], -mnl.coef_[1:] / bp, rtol=1e-4)
    # delta-method standard errors of the WTPs match the WTP-space Hessian ones
    wtp = mnl.wtp("pf")
    np.testing.assert_allclose(m.se_[1:], wtp["std_err"].to_numpy(), rtol=2e-3)


def test_fixed_scale_random_wtp_equals_preference_space(electricity_data: ChoiceData) -> None:
    # with a fixed scale, beta_wk = lambda * w_k is normal: the same model as in preference space
    kw = {"n_draws": 50, "seed": 3}
    pref = MixedLogit(random={"loc": "normal"}, **kw).fit(electricity_data)
    wtp = MixedLogit(random={"loc": "normal", "pf": "fixed"}, wtp_space="pf", **kw).fit(electricity_data)
    assert pref.converged_ and wtp.converged_
    assert wtp.loglik_ == pytest.approx(pref.loglik_, abs=2e-3)
    bp = pref.params_[0]
    assert wtp.params_[0] == pytest.approx(np.log(-bp), abs=1e-3)
    np.testing.assert_allclose(wtp.params_[1:6], -pref.params_[1:6] / bp, rtol=2e-3)
    assert abs(wtp.params_[6]) == pytest.approx(abs(pref.params_[6] / bp), rel=2e-3)


def test_round_trip_and_summary(
    wtp_model: MixedLogit, wtp_data: tuple[ChoiceData, dict[str, float]], tmp_path: Path
) -> None:
    data = wtp_data[0]
    path = tmp_path / "m.json"
    save_model(wtp_model, path)
    back = load_model(path)
    assert isinstance(back, MixedLogit) and back.wtp_space == "price"
    np.testing.assert_allclose(back.predict_proba(data), wtp_model.predict_proba(data), rtol=1e-12)
    np.testing.assert_allclose(back.individual_coef(data), wtp_model.individual_coef(data), rtol=1e-12)
    np.testing.assert_allclose(back.se_, wtp_model.se_)
    assert "WTP space" in back.summary_text()
    assert back.summary()["parameter"].to_list() == wtp_model.param_names_


def test_restarts_when_unconverged(wtp_data: tuple[ChoiceData, dict[str, float]]) -> None:
    m = MixedLogit(random={"x1": "normal"}, wtp_space="price", n_draws=20, maxiter=2).fit(wtp_data[0])
    assert not m.converged_
    assert m.n_iter_ > 2  # the later starts ran too


def test_wtp_space_errors(wtp_data: tuple[ChoiceData, dict[str, float]]) -> None:
    data = wtp_data[0]
    with pytest.raises(C2MError, match="wtp_space='cost' is not a feature"):
        MixedLogit(wtp_space="cost").fit(data)
    with pytest.raises(C2MError, match="'lognormal' or 'fixed'"):
        MixedLogit(random={"price": "normal"}, wtp_space="price").fit(data)
    flipped = ChoiceData.from_arrays(
        np.concatenate([-data.X[:, :, :1], data.X[:, :, 1:]], axis=2), data.chosen, person=data.person,
        feature_names=["price", "x1", "x2"],
    )
    with pytest.raises(C2MError, match=r"negative price coefficient.*'price'"):
        MixedLogit(wtp_space="price", n_draws=5).fit(flipped)
