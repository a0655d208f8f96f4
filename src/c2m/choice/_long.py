"""Long-format table -> ChoiceData, with validation that names the bad column, row or task."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from c2m.errors import C2MError

if TYPE_CHECKING:
    from c2m.choice._data import ChoiceData

_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n"}
_TASK = "__c2m_task"


def to_polars(df: Any) -> pl.DataFrame:
    """Accept a polars DataFrame/LazyFrame or a pandas DataFrame (index levels become columns)."""
    if isinstance(df, pl.DataFrame):
        return df
    if isinstance(df, pl.LazyFrame):
        return df.collect()
    if type(df).__module__.startswith("pandas"):
        if any(name is not None for name in getattr(df.index, "names", [None])):
            df = df.reset_index()
        return pl.from_pandas(df)
    raise C2MError(f"expected a polars or pandas DataFrame in long format, got {type(df).__name__}")


def _bool_column(df: pl.DataFrame, col: str) -> np.ndarray:
    """Parse a boolean-like column (bool, 0/1 numbers, TRUE/FALSE strings)."""
    s = df.get_column(col)
    if s.null_count():
        row = int(s.is_null().arg_max() or 0)
        raise C2MError(f"column {col!r} has a missing value at row {row}; expected true/false or 1/0")
    if s.dtype == pl.Boolean:
        return s.to_numpy().astype(bool)
    if s.dtype.is_numeric():
        vals = s.cast(pl.Float64).to_numpy()
        bad = (vals != 0) & (vals != 1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise C2MError(f"column {col!r} must be 0/1; row {row} has {s[row]!r}")
        return vals == 1
    if s.dtype in (pl.String, pl.Categorical, pl.Enum):
        low = s.cast(pl.String).str.strip_chars().str.to_lowercase()
        is_true = low.is_in(list(_TRUE)).to_numpy()
        is_false = low.is_in(list(_FALSE)).to_numpy()
        bad = ~(is_true | is_false)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise C2MError(f"column {col!r} must hold TRUE/FALSE, yes/no or 1/0; row {row} has {s[row]!r}")
        return is_true
    raise C2MError(f"column {col!r} has type {s.dtype}; expected boolean, 0/1 or TRUE/FALSE")


def _fill_features(
    df: pl.DataFrame,
    features: Sequence[str],
    avail: np.ndarray,
    X: np.ndarray,
    task: np.ndarray,
    slot: np.ndarray,
) -> None:
    """Write each feature column into X[task, slot, k], one column at a time (low peak memory).

    Missing or non-finite values are errors, except at unavailable rows where they become 0.
    """
    for k, f in enumerate(features):
        dt = df.schema[f]
        if dt in (pl.String, pl.Categorical, pl.Enum):  # name the first value that is not a number
            raw = df.get_column(f).cast(pl.String)
            parsed = raw.str.strip_chars().cast(pl.Float64, strict=False)
            bad_rows = np.flatnonzero((parsed.is_null() & raw.is_not_null()).to_numpy())
            if bad_rows.size:
                row = int(bad_rows[0])
                raise C2MError(
                    f"feature column {f!r} is not numeric: row {row} (0-based row of the input table) has "
                    f"{raw[row]!r}; features must be numbers or booleans"
                )
        if not (dt.is_numeric() or dt == pl.Boolean):
            raise C2MError(f"feature column {f!r} has type {dt}; features must be numeric or boolean")
        col = df.get_column(f).cast(pl.Float64).to_numpy().astype(np.float64, copy=False)
        bad = ~np.isfinite(col)
        if bad.any():
            if (bad & avail).any():
                row = int(np.flatnonzero(bad & avail)[0])
                raise C2MError(
                    f"feature column {f!r} has a missing or non-finite value at row {row} "
                    "(0-based row of the input table); fill or drop it"
                )
            col = np.where(bad, 0.0, col)
        X[task, slot, k] = np.where(avail, col, 0.0)


def _dense_codes(s: pl.Series) -> np.ndarray:
    """0-based dense codes of a column's values, in sorted order of the values."""
    return (s.rank("dense") - 1).cast(pl.Int64).to_numpy()


def _check_columns(df: pl.DataFrame, features: Sequence[str], cols: list[str | None]) -> None:
    if not features:
        raise C2MError("no features given; pass the attribute columns as features=[...]")
    dup = sorted({f for f in features if list(features).count(f) > 1})
    if dup:
        raise C2MError(f"feature(s) listed more than once: {dup}")
    needed = [*features, *(c for c in cols if c is not None)]
    missing = [c for c in dict.fromkeys(needed) if c not in df.columns]
    if missing:
        raise C2MError(f"missing column(s) {missing} in the choice data; available columns: {df.columns}")
    for c in cols[:3]:
        if c is None:
            continue
        s = df.get_column(c)
        missing_id = s.is_null()
        if s.dtype.is_float():
            missing_id = missing_id | s.is_nan().fill_null(True)
        if missing_id.any():
            row = int(missing_id.arg_max() or 0)
            raise C2MError(f"identifier column {c!r} has a missing value at row {row}")


def build_from_long(
    cls: type[ChoiceData],
    df: Any,
    features: Sequence[str],
    *,
    id_col: str | None,
    task_col: str,
    alt_col: str,
    chosen_col: str,
    weight_col: str | None,
    avail_col: str | None,
) -> ChoiceData:
    """Validate a long table and lay it out as (tasks, alternatives, features) arrays."""
    df = to_polars(df)
    features = list(features)
    _check_columns(df, features, [id_col, task_col, alt_col, chosen_col, weight_col, avail_col])
    if df.height == 0:
        raise C2MError("the choice data table is empty")
    keys = [task_col] if id_col is None else [id_col, task_col]
    task = _dense_codes(df.get_column(task_col))
    if id_col is not None:  # a task is a (person, task) pair
        task = _dense_codes(pl.Series(_dense_codes(df.get_column(id_col)) * (int(task.max()) + 1) + task))
    n_tasks = int(task.max()) + 1
    alt_code = _dense_codes(df.get_column(alt_col))
    alt_labels = df.get_column(alt_col).unique().sort().to_list()
    sizes = np.bincount(task, minlength=n_tasks)
    j_task = int(sizes.max())
    by_alt = len(alt_labels) <= max(16, 2 * j_task)
    if by_alt:
        J = len(alt_labels)
        slot = alt_code
    else:
        J = j_task
        order = np.argsort(task, kind="stable")
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        slot = np.empty_like(task)
        slot[order] = np.arange(task.size) - starts[task[order]]  # row order within the task

    first_row = np.unique(task, return_index=True)[1]  # earliest row of each task
    task_keys = df.select(keys)[first_row]

    def where(t: int) -> str:
        return "task " + ", ".join(f"{k}={v!r}" for k, v in task_keys.row(t, named=True).items())

    if by_alt and j_task > 1:
        counts = np.bincount(task * J + slot, minlength=n_tasks * J)
        if (counts > 1).any():
            c = int(np.flatnonzero(counts > 1)[0])
            raise C2MError(
                f"alternative {alt_labels[c % J]!r} appears more than once in {where(c // J)}; "
                f"each ({', '.join(keys)}, {alt_col}) must be one row"
            )
    avail_rows = np.ones(df.height, dtype=bool) if avail_col is None else _bool_column(df, avail_col)
    chosen_rows = _bool_column(df, chosen_col)
    n_chosen = np.bincount(task, weights=chosen_rows, minlength=n_tasks).astype(np.int64)
    bad = np.flatnonzero(n_chosen != 1)
    if bad.size:
        t = int(bad[0])
        raise C2MError(
            f"{where(t)} has {n_chosen[t]} chosen alternatives; each task needs exactly one row "
            f"with {chosen_col!r} true ({bad.size} of {n_tasks} tasks affected)"
        )
    chosen_unavail = chosen_rows & ~avail_rows
    if chosen_unavail.any():
        row = int(np.flatnonzero(chosen_unavail)[0])
        raise C2MError(f"row {row} is chosen but marked unavailable in {avail_col!r}")

    X = np.zeros((n_tasks, J, len(features)))
    _fill_features(df, features, avail_rows, X, task, slot)
    avail = np.zeros((n_tasks, J), dtype=bool)
    avail[task, slot] = avail_rows
    alt_index = np.full((n_tasks, J), -1, dtype=np.intp)
    alt_index[task, slot] = alt_code
    chosen = np.zeros(n_tasks, dtype=np.intp)
    chosen[task[chosen_rows]] = slot[chosen_rows]

    weights = np.ones(n_tasks)
    if weight_col is not None:
        weights = _task_weights(df.with_columns(pl.Series(_TASK, task)), weight_col, n_tasks, where)
    if id_col is None:
        person = np.arange(n_tasks, dtype=np.intp)
    else:
        person = _dense_codes(task_keys.get_column(id_col)).astype(np.intp)
    return cls(
        X=X,
        avail=avail,
        chosen=chosen,
        person=person,
        weights=weights,
        feature_names=features,
        alt_index=alt_index,
        alt_labels=alt_labels,
        task_keys=task_keys,
    )


def _task_weights(df: pl.DataFrame, col: str, n_tasks: int, where: Any) -> np.ndarray:
    s = df.get_column(col)
    if not s.dtype.is_numeric():
        raise C2MError(f"weight column {col!r} has type {s.dtype}; expected numbers")
    agg = (
        df.group_by(_TASK)
        .agg(
            pl.col(col).cast(pl.Float64).min().alias("lo"),
            pl.col(col).cast(pl.Float64).max().alias("hi"),
            pl.col(col).null_count().alias("nulls"),
        )
        .sort(_TASK)
    )
    lo, hi, nulls = (agg.get_column(c).to_numpy() for c in ("lo", "hi", "nulls"))
    bad = np.flatnonzero((nulls > 0) | ~np.isfinite(lo) | (lo < 0))
    if bad.size:
        raise C2MError(f"weight column {col!r} must be finite and >= 0; see {where(int(bad[0]))}")
    varying = np.flatnonzero(lo != hi)
    if varying.size:
        raise C2MError(
            f"weight column {col!r} must be constant within a task; it varies in {where(int(varying[0]))}"
        )
    return np.asarray(lo, dtype=np.float64)
