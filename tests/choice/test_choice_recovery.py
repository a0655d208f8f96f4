"""Parameter recovery on simulated data; robust and clustered standard errors; weights; ASCs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
import pytest

from c2m.choice import ChoiceData, MultinomialLogit

TRUE = np.array([-1.0, 0.5, 0.8, -0.3])
FEATURES = [f"x{k}" for k in range(TRUE.size)]


def _data(df: pl.DataFrame, **kw: str) -> ChoiceData:
    return ChoiceData.from_long(df, FEATURES, id_col="id", task_col="task", **kw)


def test_true_values_inside_confidence_intervals(simulate: Callable[..., pl.DataFrame]) -> None:
    df = simulate(TRUE, n_persons=200, n_tasks=10, seed=42)
    data = _data(df)
    assert data.n_tasks == 2000 and data.n_persons == 200
    m = MultinomialLogit().fit(data)
    table = m.summary()
    inside = (table["ci_low"].to_numpy() <= TRUE) & (table["ci_high"].to_numpy() >= TRUE)
    assert inside.sum() >= 3
    np.testing.assert_allclose(m.coef_, TRUE, atol=4 * m.se_.max())


def test_robust_and_clustered_standard_errors(simulate: Callable[..., pl.DataFrame]) -> None:
    # person-level taste noise makes the tasks of one person correlated
    df = simulate(TRUE, n_persons=200, n_tasks=10, seed=7, person_sd=0.6)
    data = _data(df)
    classic = MultinomialLogit().fit(data)
    robust = MultinomialLogit(robust=True).fit(data)
    cluster = MultinomialLogit(cluster="person").fit(data)
    np.testing.assert_allclose(robust.coef_, classic.coef_)
    np.testing.assert_allclose(cluster.coef_, classic.coef_)
    for m, kind in ((classic, "classic"), (robust, "robust"), (cluster, "cluster")):
        assert m.se_type_ == kind
        assert np.all(m.se_ > 0)
    assert not np.allclose(robust.se_, classic.se_, rtol=1e-3)
    assert not np.allclose(cluster.se_, classic.se_, rtol=1e-3)
    assert not np.allclose(cluster.se_, robust.se_, rtol=1e-3)
    np.testing.assert_allclose(np.sqrt(np.diag(classic.vcov_robust_)), robust.se_)
    assert classic.vcov_cluster_ is not None
    np.testing.assert_allclose(np.sqrt(np.diag(classic.vcov_cluster_)), cluster.se_)
    # clustered SE = sandwich over person sums times G/(G-1)
    assert "cluster" in cluster.summary_text()


def test_clustered_sandwich_by_hand(simulate: Callable[..., pl.DataFrame]) -> None:
    from c2m.choice._mnl_math import task_scores

    data = _data(simulate(TRUE, n_persons=30, n_tasks=5, seed=3))
    m = MultinomialLogit(cluster=True).fit(data)
    S = task_scores(m.coef_, data.X, data.avail, data.chosen, data.weights)
    G = data.n_persons
    per_person = np.array([S[data.person == g].sum(axis=0) for g in range(G)])
    expected = m.vcov_ @ (per_person.T @ per_person) @ m.vcov_ * G / (G - 1)
    np.testing.assert_allclose(m.vcov_cluster_, expected, rtol=1e-10)


def test_weights_of_two_give_same_coefficients(simulate: Callable[..., pl.DataFrame]) -> None:
    df = simulate(TRUE, n_persons=50, n_tasks=8, seed=1)
    plain = MultinomialLogit().fit(_data(df))
    doubled = MultinomialLogit().fit(_data(df.with_columns(pl.lit(2.0).alias("w")), weight_col="w"))
    np.testing.assert_allclose(doubled.coef_, plain.coef_, atol=1e-8)
    assert doubled.loglik_ == pytest.approx(2 * plain.loglik_)
    np.testing.assert_allclose(doubled.se_, plain.se_ / np.sqrt(2), rtol=1e-8)


def test_unequal_choice_set_sizes(simulate: Callable[..., pl.DataFrame]) -> None:
    df = simulate(TRUE, n_persons=100, n_tasks=6, n_alts=4, seed=5)
    # drop the 4th alternative from even tasks unless it was chosen there
    keep = ~((pl.col("task") % 2 == 0) & (pl.col("alt") == 4) & (pl.col("chosen") == 0))
    dropped = df.filter(keep)
    data = _data(dropped)
    assert data.n_alternatives == 4
    sizes = data.avail.sum(axis=1)
    assert set(np.unique(sizes)) == {3, 4}
    m = MultinomialLogit().fit(data)
    # same as keeping every row and marking the dropped ones unavailable (with junk features)
    masked = df.with_columns(keep.cast(pl.Int8).alias("avail")).with_columns(
        pl.when(pl.col("avail") == 1).then(pl.col("x0")).otherwise(None).alias("x0")
    )
    m2 = MultinomialLogit().fit(_data(masked, avail_col="avail"))
    np.testing.assert_allclose(m.coef_, m2.coef_, atol=1e-10)
    assert m.loglik_null_ == pytest.approx(-float(np.log(sizes).sum()))
    P = m.predict_proba(data)
    assert np.all(P[~data.avail] == 0) and np.allclose(P.sum(axis=1), 1)


def test_row_layout_for_many_distinct_alternative_labels(simulate: Callable[..., pl.DataFrame]) -> None:
    df = simulate(TRUE, n_persons=40, n_tasks=5, seed=9)
    # every task shows its own three products: labels are unique across tasks
    relabelled = df.with_columns((pl.col("id") * 1000 + pl.col("task") * 10 + pl.col("alt")).alias("alt"))
    a = _data(df)
    b = _data(relabelled)
    assert b.n_alternatives == 3
    np.testing.assert_allclose(MultinomialLogit().fit(a).coef_, MultinomialLogit().fit(b).coef_, atol=1e-10)


def test_alternative_specific_constants_recovered() -> None:
    rng = np.random.default_rng(11)
    n, J = 3000, 3
    asc = np.array([0.0, 0.7, -0.4])
    x = rng.normal(size=(n, J))
    U = asc + 0.9 * x + rng.gumbel(size=(n, J))
    chosen = U.argmax(axis=1)
    labels = np.array(["bus", "car", "train"])
    df = pl.DataFrame(
        {
            "id": np.repeat(np.arange(n), J),
            "task": np.zeros(n * J, dtype=np.int64),
            "alt": np.tile(labels, n),
            "chosen": (np.arange(J) == chosen[:, None]).reshape(-1),
            "x": x.reshape(-1),
        }
    )
    m = MultinomialLogit(alt_specific_constants=True).fit(df, features=["x"])
    assert m.feature_names_ == ["x", "asc_car", "asc_train"]
    np.testing.assert_allclose(m.coef_, [0.9, 0.7, -0.4], atol=4 * m.se_.max())
    # shares for one choice set: full design or base features (rows in alternative order)
    full = np.array([[0.0, 0, 0], [0.0, 1, 0], [0.0, 0, 1]])
    np.testing.assert_allclose(m.predict_shares(full), m.predict_shares(np.zeros((3, 1))))
    assert m.predict_shares(np.zeros((3, 1)))[1] > m.predict_shares(np.zeros((3, 1)))[0]
