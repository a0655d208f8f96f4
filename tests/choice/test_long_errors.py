"""ChoiceData.from_long: every user mistake is a C2MError naming the column and the row or task."""

from __future__ import annotations

import polars as pl
import pytest

from c2m.choice import ChoiceData, MultinomialLogit
from c2m.errors import C2MError


def _base() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": [1, 1, 1, 1, 2, 2, 2, 2],
            "task": [1, 1, 2, 2, 1, 1, 2, 2],
            "alt": [1, 2, 1, 2, 1, 2, 1, 2],
            "chosen": [1, 0, 0, 1, 1, 0, 0, 1],
            "x": [1.0, 2.0, 3.0, 1.0, 2.0, 5.0, 1.0, 2.0],
            "y": [0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0],
        }
    )


def test_valid_table_builds() -> None:
    d = ChoiceData.from_long(_base(), ["x", "y"])
    assert (d.n_tasks, d.n_alternatives, d.n_persons) == (4, 2, 2)
    assert d.chosen.tolist() == [0, 1, 0, 1]


@pytest.mark.parametrize("values", [["TRUE", "FALSE"], ["true", "false"], [True, False], ["1", "0"]])
def test_chosen_spellings(values: list[object]) -> None:
    flags = [values[0] if c else values[1] for c in _base()["chosen"]]
    d = ChoiceData.from_long(_base().with_columns(chosen=pl.Series(flags)), ["x"])
    assert d.chosen.tolist() == [0, 1, 0, 1]


def test_no_chosen_alternative() -> None:
    df = _base().with_columns(chosen=pl.Series([0, 0, 0, 1, 1, 0, 0, 1]))
    with pytest.raises(C2MError, match=r"task id=1, task=1 has 0 chosen alternatives.*'chosen'"):
        ChoiceData.from_long(df, ["x"])


def test_two_chosen_alternatives() -> None:
    df = _base().with_columns(chosen=pl.Series([1, 0, 0, 1, 1, 1, 0, 1]))
    with pytest.raises(C2MError, match=r"task id=2, task=1 has 2 chosen alternatives"):
        ChoiceData.from_long(df, ["x"])


def test_chosen_not_boolean() -> None:
    df = _base().with_columns(chosen=pl.Series(["yes", "no", "no", "yes", "maybe", "no", "no", "yes"]))
    with pytest.raises(C2MError, match=r"column 'chosen' .* row 4 has 'maybe'"):
        ChoiceData.from_long(df, ["x"])


def test_non_numeric_value_names_row_and_value() -> None:
    df = _base().with_columns(x=pl.Series(["1", "2", "3", "n/a", "2", "5", "1", "2"]))
    with pytest.raises(C2MError, match=r"feature column 'x' is not numeric: row 3 .* 'n/a'"):
        ChoiceData.from_long(df, ["x"])


def test_missing_feature_value() -> None:
    df = _base().with_columns(x=pl.Series([1.0, None, 3, 1, 2, 5, 1, 2]))
    with pytest.raises(C2MError, match=r"feature column 'x' has a missing or non-finite value at row 1"):
        ChoiceData.from_long(df, ["x"])


@pytest.mark.parametrize("col", ["id", "task", "alt"])
def test_missing_identifier(col: str) -> None:
    values = _base()[col].cast(pl.Float64).to_list()
    values[5] = None
    with pytest.raises(C2MError, match=rf"identifier column '{col}' has a missing value at row 5"):
        ChoiceData.from_long(_base().with_columns(pl.Series(col, values)), ["x"])


def test_nan_identifier_is_missing() -> None:
    ids = [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, float("nan"), float("nan")]
    with pytest.raises(C2MError, match=r"identifier column 'id' has a missing value at row 6"):
        ChoiceData.from_long(_base().with_columns(id=pl.Series(ids)), ["x"])


def test_missing_column_lists_available() -> None:
    with pytest.raises(C2MError, match=r"missing column\(s\) \['price'\].*available columns"):
        ChoiceData.from_long(_base(), ["x", "price"])


def test_constant_column_is_not_identified() -> None:
    df = _base().with_columns(c=pl.lit(1.0))
    data = ChoiceData.from_long(df, ["x", "c"])  # a constant is valid data (e.g. a holdout set) ...
    with pytest.raises(C2MError, match=r"\['c'\] never vary within a task"):  # ... but cannot be estimated
        MultinomialLogit().fit(data)
