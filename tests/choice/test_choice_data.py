"""Long-format validation: every user mistake is a C2MError that says where."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from c2m.choice import ChoiceData, MultinomialLogit
from c2m.errors import C2MError


def _long() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": [1, 1, 1, 1, 1, 1, 2, 2, 2],
            "task": [1, 1, 1, 2, 2, 2, 1, 1, 1],
            "alt": [1, 2, 3, 1, 2, 3, 1, 2, 3],
            "chosen": [0, 1, 0, 1, 0, 0, 0, 0, 1],
            "price": [1.0, 2.0, 3.0, 2.0, 1.0, 3.0, 3.0, 2.0, 1.0],
            "q": [0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0],
        }
    )


def _build(df: pl.DataFrame, **kw: object) -> ChoiceData:
    return ChoiceData.from_long(df, ["price", "q"], **kw)  # type: ignore[arg-type]


def test_layout() -> None:
    d = _build(_long())
    assert d.X.shape == (3, 3, 2)
    assert d.chosen.tolist() == [1, 0, 2]
    assert d.person.tolist() == [0, 0, 1]
    assert d.n_persons == 2
    assert d.avail.all()
    np.testing.assert_array_equal(d.X[2, :, 0], [3.0, 2.0, 1.0])
    assert d.task_keys is not None and d.task_keys.row(1) == (1, 2)


def test_row_order_does_not_matter() -> None:
    df = _long()
    shuffled = df.sample(fraction=1.0, shuffle=True, seed=3)
    a, b = _build(df), _build(shuffled)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.chosen, b.chosen)


def test_two_chosen_in_a_task_names_the_task() -> None:
    df = _long().with_columns(
        pl.when((pl.col("id") == 1) & (pl.col("task") == 2) & (pl.col("alt") == 3))
        .then(1)
        .otherwise(pl.col("chosen"))
        .alias("chosen")
    )
    with pytest.raises(C2MError, match=r"id=1, task=2 has 2 chosen alternatives.*1 of 3 tasks"):
        _build(df)


def test_no_chosen_in_a_task() -> None:
    df = _long().with_columns(pl.when(pl.col("id") == 2).then(0).otherwise(pl.col("chosen")).alias("chosen"))
    with pytest.raises(C2MError, match=r"id=2, task=1 has 0 chosen"):
        _build(df)


def test_missing_column_is_named() -> None:
    with pytest.raises(C2MError, match=r"missing column\(s\) \['range'\]"):
        ChoiceData.from_long(_long(), ["price", "range"])
    with pytest.raises(C2MError, match=r"missing column\(s\) \['choice'\]"):
        ChoiceData.from_long(_long(), ["price"], chosen_col="choice")


def test_nan_feature_names_column_and_row() -> None:
    df = _long().with_columns(
        pl.when(pl.int_range(pl.len()) == 4).then(float("nan")).otherwise(pl.col("q")).alias("q")
    )
    with pytest.raises(C2MError, match=r"feature column 'q' has a missing or non-finite value at row 4"):
        _build(df)
    nulls = _long().with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(None).otherwise(pl.col("price")).alias("price")
    )
    with pytest.raises(C2MError, match=r"'price'.*row 7"):
        _build(nulls)


def test_bad_chosen_values() -> None:
    with pytest.raises(C2MError, match=r"'chosen' must be 0/1; row 0 has 2"):
        _build(
            _long().with_columns(
                pl.when(pl.int_range(pl.len()) == 0).then(2).otherwise(pl.col("chosen")).alias("chosen")
            )
        )
    text = _long().with_columns(pl.col("chosen").cast(pl.String).replace({"1": "yes", "0": "maybe"}))
    with pytest.raises(C2MError, match=r"TRUE/FALSE.*row 0 has 'maybe'"):
        _build(text)


def test_duplicate_alternative_in_task() -> None:
    df = _long().with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(2).otherwise(pl.col("alt")).alias("alt")
    )
    with pytest.raises(C2MError, match=r"alternative 2 appears more than once in task id=1, task=1"):
        _build(df)


def test_string_feature_rejected() -> None:
    df = _long().with_columns(pl.col("q").cast(pl.String))
    with pytest.raises(C2MError, match=r"feature column 'q' has type String"):
        _build(df)


def test_weights_must_be_constant_within_task() -> None:
    df = _long().with_columns(pl.int_range(pl.len()).cast(pl.Float64).alias("w"))
    with pytest.raises(C2MError, match=r"constant within a task; it varies in task id=1, task=1"):
        _build(df, weight_col="w")
    neg = _long().with_columns(pl.lit(-1.0).alias("w"))
    with pytest.raises(C2MError, match=r">= 0"):
        _build(neg, weight_col="w")


def test_chosen_but_unavailable() -> None:
    df = _long().with_columns((pl.col("chosen") == 0).alias("avail"))
    with pytest.raises(C2MError, match=r"row 1 is chosen but marked unavailable"):
        _build(df, avail_col="avail")


def test_feature_constant_within_tasks_is_not_identified() -> None:
    rng = np.random.default_rng(0)
    n, J = 200, 3
    df = pl.DataFrame(
        {
            "id": np.repeat(np.arange(n), J),
            "task": np.zeros(n * J, dtype=np.int64),
            "alt": np.tile(np.arange(J), n),
            "chosen": (np.arange(J) == rng.integers(0, J, n)[:, None]).reshape(-1),
            "price": rng.normal(size=n * J),
            "income": np.repeat(rng.normal(size=n), J),  # a person trait
        }
    )
    m = MultinomialLogit().fit(df, features=["price"])
    with pytest.raises(C2MError, match=r"\['income'\] never vary within a task"):
        m.fit(df, features=["price", "income"])
    with pytest.raises(C2MError, match="not fitted"):  # the failed refit left no stale estimates
        m.summary()
    collinear = df.with_columns((2 * pl.col("price")).alias("price2"))
    with pytest.raises(C2MError, match=r"not identified.*price"):
        MultinomialLogit().fit(collinear, features=["price", "price2"])


def test_id_col_none_and_settings_errors() -> None:
    df = _long().with_columns((pl.col("id") * 10 + pl.col("task")).alias("task"))
    d = ChoiceData.from_long(df, ["price", "q"], id_col=None)
    assert d.n_tasks == 3 and d.n_persons == 3
    with pytest.raises(C2MError, match="not fitted"):
        MultinomialLogit().predict_proba(d)
    with pytest.raises(C2MError, match="cluster must be"):
        MultinomialLogit(cluster="city").fit(d)
    with pytest.raises(C2MError, match="unknown engine"):
        MultinomialLogit(engine="gpu").fit(d)
    with pytest.raises(C2MError, match="features="):
        MultinomialLogit().fit(df)
    with pytest.raises(C2MError, match="polars or pandas"):
        ChoiceData.from_long([1, 2, 3], ["price"])


def test_from_arrays() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 3, 2))
    d = ChoiceData.from_arrays(X, rng.integers(0, 3, 50), feature_names=["a", "b"])
    assert d.n_tasks == 50 and d.feature_names == ["a", "b"]
    with pytest.raises(C2MError, match="out of range"):
        ChoiceData.from_arrays(X, np.full(50, 3))
    with pytest.raises(C2MError, match="shape"):
        ChoiceData.from_arrays(X[0], [0])


def test_pandas_input_with_index_columns() -> None:
    pd = pytest.importorskip("pandas")
    from pathlib import Path

    path = Path(__file__).parent / "data" / "vehicle_choice.parquet"
    frame = pd.read_parquet(path)  # case_id and alt_id come back as the index
    assert list(frame.index.names) == ["case_id", "alt_id"]
    a = ChoiceData.from_long(
        frame, ["price", "opcost"], id_col="person_id", task_col="case_id", alt_col="alt_id"
    )
    b = ChoiceData.from_long(
        pl.read_parquet(path), ["price", "opcost"], id_col="person_id", task_col="case_id", alt_col="alt_id"
    )
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.chosen, b.chosen)
