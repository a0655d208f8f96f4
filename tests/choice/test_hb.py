"""Hierarchical Bayes logit: kernels, sampler pieces, recovery of a known HB model, I/O, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from c2m.choice import ChoiceData, HierarchicalBayesLogit, MultinomialLogit, load_model, save_model
from c2m.choice import _hb_kernels as hk
from c2m.choice._hb import draw_inverse_wishart
from c2m.choice._mnl_math import log_probabilities
from c2m.errors import C2MError

FEATURES = ["a", "b", "c", "d", "e"]
TRUE_MEAN = np.array([1.0, -1.0, 0.5, 0.0, -0.5])
TRUE_SD = np.array([1.0, 0.8, 0.6, 0.5, 0.7])
TRUE_CORR_01 = 0.5
N_PERSONS, N_TRAIN, N_HOLDOUT, N_ALTS = 400, 12, 4, 3


def _true_cov() -> np.ndarray:
    R = np.eye(5)
    R[0, 1] = R[1, 0] = TRUE_CORR_01
    return np.outer(TRUE_SD, TRUE_SD) * R


def _simulate(seed: int) -> tuple[pl.DataFrame, np.ndarray]:
    """Long table of logit choices by persons with beta_n ~ N(TRUE_MEAN, true cov); holdout flag."""
    rng = np.random.default_rng(seed)
    beta = rng.multivariate_normal(TRUE_MEAN, _true_cov(), size=N_PERSONS)
    T = N_TRAIN + N_HOLDOUT
    n = N_PERSONS * T
    X = rng.normal(size=(n, N_ALTS, 5))
    person = np.repeat(np.arange(N_PERSONS), T)
    U = np.einsum("tjk,tk->tj", X, beta[person]) + rng.gumbel(size=(n, N_ALTS))
    chosen = U.argmax(axis=1)
    task = np.tile(np.arange(T), N_PERSONS)
    df = pl.DataFrame(
        {
            "id": np.repeat(person + 1000, N_ALTS),  # ids that are not the person codes
            "task": np.repeat(task, N_ALTS),
            "alt": np.tile(np.arange(N_ALTS), n),
            "chosen": (np.tile(np.arange(N_ALTS), n) == np.repeat(chosen, N_ALTS)),
            "holdout": np.repeat(task >= N_TRAIN, N_ALTS),
            **{f: X[:, :, k].reshape(-1) for k, f in enumerate(FEATURES)},
        }
    )
    return df, beta


@pytest.fixture(scope="module")
def hb_case() -> tuple[HierarchicalBayesLogit, ChoiceData, ChoiceData, np.ndarray]:
    df, beta = _simulate(seed=7)
    train = ChoiceData.from_long(df.filter(~pl.col("holdout")), FEATURES)
    test = ChoiceData.from_long(df.filter(pl.col("holdout")), FEATURES)
    model = HierarchicalBayesLogit(n_iter=4000, burn_in=2000, thin=4, seed=3).fit(train)
    return model, train, test, beta


def _random_panel(seed: int, n_persons: int = 30, K: int = 4, J: int = 4):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 6, size=n_persons)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
    n = int(starts[-1])
    X = rng.normal(size=(n, J, K)) * 2.0
    avail = rng.random((n, J)) > 0.25
    avail[:, 0] = True
    X = np.where(avail[:, :, None], X, 0.0)
    chosen = np.array([rng.choice(np.flatnonzero(a)) for a in avail], dtype=np.intp)
    B = rng.normal(size=(2, n_persons, K)) * 3.0
    return B, X, avail, chosen, starts


# ---------------------------------------------------------------------------- kernels
def test_numpy_reference_equals_per_task_mnl_log_probabilities() -> None:
    B, X, avail, chosen, starts = _random_panel(0)
    got = hk.person_loglik_numpy(B, X, avail, chosen, starts)
    for c in range(2):
        for n in range(starts.size - 1):
            sl = slice(starts[n], starts[n + 1])
            logp, _ = log_probabilities(B[c, n], X[sl], avail[sl])
            want = logp[np.arange(starts[n + 1] - starts[n]), chosen[sl]].sum()
            assert got[c, n] == pytest.approx(want, abs=1e-10)


@pytest.mark.skipif(not hk.numba_available(), reason="numba not installed")
def test_numba_kernel_matches_numpy_reference() -> None:
    for seed in range(3):
        args = _random_panel(seed, n_persons=60)
        want = hk.person_loglik_numpy(*args)
        for parallel in (False, True):
            got = hk.person_loglik_numba(*args, parallel=parallel)
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-8)


@pytest.mark.skipif(not hk.numba_available(), reason="numba not installed")
def test_fused_metropolis_step_matches_numpy_reference() -> None:
    B, X, avail, chosen, starts = _random_panel(4, n_persons=80, K=4)
    rng = np.random.default_rng(1)
    C, N, K = B.shape
    L = np.linalg.cholesky(np.stack([np.eye(K) + 0.3, 2 * np.eye(K)]))
    args = (rng.normal(size=(C, N, K)), np.array([0.5, 0.2]), rng.normal(size=(C, K)), L, np.linalg.inv(L))
    log_u = np.log(rng.random((C, N)))
    ll0 = hk.person_loglik_numpy(B, X, avail, chosen, starts)
    out = []
    for f in (hk.metropolis_step_numpy, hk.metropolis_step_numba):
        beta, ll = B.copy(), ll0.copy()
        acc = f(beta, ll, *args, log_u, X, avail, chosen, starts)
        out.append((beta, ll, acc))
    assert 0 < out[0][2].mean() < 1  # some proposals accepted, some not
    np.testing.assert_array_equal(out[0][2], out[1][2])
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=0, atol=1e-8)
    # the accepted persons' log-likelihoods are those of their new coefficients
    np.testing.assert_allclose(out[1][1], hk.person_loglik_numpy(out[1][0], X, avail, chosen, starts), atol=1e-10)


@pytest.mark.skipif(not hk.numba_available(), reason="numba not installed")
def test_whole_sampler_is_identical_with_both_engines() -> None:
    df, _ = _simulate(seed=1)
    small = ChoiceData.from_long(df.filter(pl.col("id") < 1040), FEATURES)
    fits = [
        HierarchicalBayesLogit(n_iter=120, burn_in=60, thin=2, seed=5, engine=e).fit(small) for e in ("numpy", "numba")
    ]
    np.testing.assert_allclose(fits[0].coef_, fits[1].coef_, rtol=0, atol=1e-8)
    np.testing.assert_allclose(fits[0].individual_coef_, fits[1].individual_coef_, rtol=0, atol=1e-8)
    assert fits[0].loglik_ == pytest.approx(fits[1].loglik_, abs=1e-8)


def test_inverse_wishart_draws_have_the_known_mean_and_variance() -> None:
    S = np.array([[20.0, 5.0, 0.0], [5.0, 10.0, 2.0], [0.0, 2.0, 30.0]])
    df, K, n = 12.0, 3, 100_000
    W = draw_inverse_wishart(df, np.repeat(S[None], n, axis=0), np.random.default_rng(0))
    # E[W] = S / (df - K - 1); Var[W_ii] = 2 S_ii^2 / ((df-K-1)^2 (df-K-3))
    np.testing.assert_allclose(W.mean(axis=0), S / (df - K - 1), atol=0.03)
    var_ii = 2 * np.diag(S) ** 2 / ((df - K - 1) ** 2 * (df - K - 3))
    np.testing.assert_allclose(W[:, np.arange(K), np.arange(K)].var(axis=0), var_ii, rtol=0.06)


# ---------------------------------------------------------------------------- recovery
def test_recovers_the_upper_level_mean(hb_case) -> None:
    model, _, _, beta = hb_case
    # The data inform about the persons drawn, so compare with their mean; allow 3.5
    # posterior sds (the posterior of the utility scale is shared by all coefficients).
    target = beta.mean(axis=0)
    assert np.all(np.abs(model.coef_ - target) < 3.5 * model.coef_sd_), (model.coef_, target, model.coef_sd_)
    assert np.all(np.abs(model.coef_ - TRUE_MEAN) < 0.25)
    assert np.all((model.ci_low_ < model.coef_) & (model.coef_ < model.ci_high_))


def test_recovers_the_upper_level_covariance(hb_case) -> None:
    model, _, _, beta = hb_case
    # 12 tasks per person identify each person weakly: the posterior mean of a variance is
    # right-skewed and pulled up by the IW prior (prior mean of W is 2.5 I for K = 5), so the
    # standard deviations get an absolute tolerance of 0.2 and the covariances of 0.2.
    sample = np.cov(beta.T)
    assert np.all(np.abs(model.sd_ - np.sqrt(np.diag(sample))) < 0.2), (model.sd_, np.sqrt(np.diag(sample)))
    off = ~np.eye(5, dtype=bool)
    assert np.all(np.abs(model.cov_ - sample)[off] < 0.2)
    assert model.cov_[0, 1] > 0.2  # the one true correlation (0.4 covariance) is found


def test_individual_coefficients_track_the_true_ones(hb_case) -> None:
    model, train, _, beta = hb_case
    order = np.argsort(np.array(model.person_ids_))  # ids 1000.. in person-code order
    assert model.person_ids_ == sorted(model.person_ids_)
    est = model.individual_coef_[order]
    for k in range(5):
        assert np.corrcoef(est[:, k], beta[:, k])[0, 1] > 0.6
    assert model.individual_coef_.shape == (train.n_persons, 5)
    assert np.all(model.individual_sd_ > 0)


def test_converged_run_has_rhat_near_one_and_tuned_acceptance(hb_case) -> None:
    model = hb_case[0]
    assert np.all(model.rhat_ < 1.1), model.rhat_
    assert np.nanmax(model.rhat_cov_) < 1.2
    assert np.all((model.ess_ > 10) & (model.ess_ < 2 * model.b_draws_[:, :, 0].size))
    assert np.all(np.abs(model.acceptance_rate_ - 0.3) < 0.06)
    # memory-bounded storage
    assert model.b_draws_.shape == (2, 500, 5) and model.cov_draws_.shape == (2, 500, 5, 5)
    assert model.individual_draws_.shape == (100, N_PERSONS, 5)
    assert 0.0 < model.rho2_ < 1.0 and model.loglik_ < 0


def test_holdout_hit_rate_beats_chance_and_mnl(hb_case) -> None:
    model, train, test, _ = hb_case
    P = model.predict_proba(test)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)
    hb_hit = model.hit_rate(test)
    mnl = MultinomialLogit().fit(train)
    mnl_hit = mnl.hit_rate(test)
    assert hb_hit > 1.0 / N_ALTS + 0.2
    assert hb_hit >= mnl_hit + 0.03, (hb_hit, mnl_hit)
    assert model.loglik(test) > float(np.log(mnl.predict_proba(test)[np.arange(test.n_tasks), test.chosen]).sum())
    # new persons: only the upper level is known, so no better than the persons' own draws
    new_hit = model.hit_rate(test, persons="new")
    assert 1.0 / N_ALTS < new_hit < hb_hit
    assert model.share_mae(test) < 0.05
    shares = model.predict_shares(test.X[0])
    assert shares.shape == (N_ALTS,) and shares.sum() == pytest.approx(1.0)


def test_summary_and_text(hb_case) -> None:
    model = hb_case[0]
    tab = model.summary()
    assert tab.columns == ["feature", "estimate", "std_err", "ci_low", "ci_high", "sd", "rhat", "ess"]
    assert tab.get_column("feature").to_list() == FEATURES
    text = model.summary_text()
    assert "Hierarchical Bayes" in text and "R-hat" in text and all(f in text for f in FEATURES)


def test_save_load_round_trip(hb_case, tmp_path: Path) -> None:
    model, _, test, _ = hb_case
    path = save_model(model, tmp_path / "hb.json")
    back = load_model(path)
    assert isinstance(back, HierarchicalBayesLogit)
    np.testing.assert_array_equal(back.coef_, model.coef_)
    np.testing.assert_array_equal(back.cov_, model.cov_)
    np.testing.assert_array_equal(back.rhat_, model.rhat_)
    np.testing.assert_array_equal(back.predict_proba(test), model.predict_proba(test))
    np.testing.assert_array_equal(back.predict_proba(test, "new"), model.predict_proba(test, "new"))
    assert back.loglik_ == model.loglik_ and back.person_ids_ == model.person_ids_


# ---------------------------------------------------------------------------- behaviour and errors
def test_weights_are_ignored_in_estimation() -> None:
    df, _ = _simulate(seed=2)
    small = df.filter(pl.col("id") < 1030)
    d0 = ChoiceData.from_long(small, FEATURES)
    d1 = ChoiceData.from_long(small.with_columns(w=pl.col("id").cast(pl.Float64)), FEATURES, weight_col="w")
    kw = {"n_iter": 60, "burn_in": 30, "thin": 2, "seed": 0}
    fits = [HierarchicalBayesLogit(**kw).fit(d) for d in (d0, d1)]
    np.testing.assert_array_equal(fits[0].coef_, fits[1].coef_)


def test_persons_matched_by_code_without_ids() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3, 2))
    chosen = rng.integers(0, 3, size=40)
    person = np.repeat(np.arange(10), 4)
    data = ChoiceData.from_arrays(X, chosen, person=person)
    m = HierarchicalBayesLogit(n_iter=40, burn_in=20, thin=1, seed=0).fit(data)
    assert m.person_ids_ is None
    by_code = m.predict_proba(data, persons="fitted")
    assert not np.allclose(by_code, m.predict_proba(data))  # "auto" without ids: new persons
    with pytest.raises(C2MError, match="not a fitted person"):
        m.predict_proba(ChoiceData.from_arrays(X, chosen, person=np.repeat(np.arange(20), 2)), persons="fitted")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_iter": 100, "burn_in": 100}, "n_iter \\(100\\) must be larger than burn_in"),
        ({"n_iter": 100, "burn_in": 50, "thin": 0}, "thin must be >= 1"),
        ({"n_iter": 100, "burn_in": 98}, "at least 4"),
        ({"prior_variance": 0.0}, "prior_variance must be > 0"),
        ({"n_chains": 0}, "n_chains must be >= 1"),
        ({"engine": "gpu"}, "unknown engine"),
        ({"target_acceptance": 1.5}, "target_acceptance"),
    ],
)
def test_bad_settings_raise_clear_errors(kwargs, message) -> None:
    data = ChoiceData.from_arrays(np.random.default_rng(0).normal(size=(8, 2, 2)), np.zeros(8, dtype=int))
    with pytest.raises(C2MError, match=message):
        HierarchicalBayesLogit(**kwargs).fit(data)


def test_misuse_errors(hb_case) -> None:
    model, _, test, _ = hb_case
    with pytest.raises(C2MError, match="not fitted"):
        HierarchicalBayesLogit().predict_proba(test)
    with pytest.raises(C2MError, match="persons must be one of"):
        model.predict_proba(test, persons="everyone")
    df, _ = _simulate(seed=9)
    stranger = ChoiceData.from_long(df.with_columns(pl.col("id") + 10_000).filter(pl.col("holdout")), FEATURES)
    with pytest.raises(C2MError, match="not in the fitted data"):
        model.predict_proba(stranger, persons="fitted")
    with pytest.raises(C2MError, match="no feature"):
        model.predict_proba(ChoiceData.from_arrays(test.X, test.chosen, feature_names=list("vwxyz")))
    with pytest.raises(C2MError, match="expected a HierarchicalBayesLogit"):
        HierarchicalBayesLogit.from_dict({"model": "MixedLogit"})
    bad = model.to_dict()
    bad["b_draws"] = [[[0.0] * 5] * 2]
    with pytest.raises(C2MError, match="b_draws"):
        HierarchicalBayesLogit.from_dict(bad)
