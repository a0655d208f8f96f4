"""ChoiceData: choice tasks as dense arrays (tasks x alternatives x features)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from c2m.choice._mnl_math import BoolArray, FloatArray, IntArray
from c2m.errors import C2MError


@dataclass(frozen=True, eq=False)
class ChoiceData:
    """Choice tasks ready for estimation.

    Attributes:
        X: attributes, shape (n_tasks, J, K), float64; zeros at padded (unavailable) slots.
        avail: availability mask (n_tasks, J).
        chosen: index of the chosen alternative per task (n_tasks,).
        person: person index per task (n_tasks,), 0..n_persons-1.
        weights: weight per task (n_tasks,).
        feature_names: the K feature names.
        alt_index: code of the alternative in each slot (n_tasks, J), -1 at padding;
            codes index ``alt_labels``.
        alt_labels: the distinct values of the alternative column, sorted.
        task_keys: one row per task with the person and task identifiers (for messages).
    """

    X: FloatArray
    avail: BoolArray
    chosen: IntArray
    person: IntArray
    weights: FloatArray
    feature_names: list[str]
    alt_index: IntArray
    alt_labels: list[Any] = field(default_factory=list)
    task_keys: pl.DataFrame | None = None

    def __post_init__(self) -> None:
        _check_arrays(self)

    @property
    def n_tasks(self) -> int:
        """Number of choice tasks."""
        return int(self.X.shape[0])

    @property
    def n_alternatives(self) -> int:
        """Number of alternative slots J (the largest choice set)."""
        return int(self.X.shape[1])

    @property
    def n_persons(self) -> int:
        """Number of distinct persons."""
        return int(self.person.max()) + 1 if self.person.size else 0

    @classmethod
    def from_arrays(
        cls,
        X: Any,
        chosen: Any,
        *,
        avail: Any = None,
        person: Any = None,
        weights: Any = None,
        feature_names: Sequence[str] | None = None,
    ) -> ChoiceData:
        """Build from arrays: X (n, J, K), chosen (n,), optional avail, person, weights."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 3:
            raise C2MError(f"X must have shape (n_tasks, n_alternatives, n_features), got {X.shape}")
        n, J, K = X.shape
        avail_arr = np.ones((n, J), dtype=bool) if avail is None else np.asarray(avail, dtype=bool)
        X = np.where(avail_arr[:, :, None], X, 0.0)
        names = list(feature_names) if feature_names is not None else [f"x{k}" for k in range(K)]
        return cls(
            X=X,
            avail=avail_arr,
            chosen=np.asarray(chosen, dtype=np.intp),
            person=np.arange(n, dtype=np.intp) if person is None else _codes(np.asarray(person)),
            weights=np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64),
            feature_names=names,
            alt_index=np.where(avail_arr, np.arange(J, dtype=np.intp)[None, :], -1),
            alt_labels=list(range(J)),
        )

    @classmethod
    def from_long(
        cls,
        df: Any,
        features: Sequence[str],
        *,
        id_col: str | None = "id",
        task_col: str = "task",
        alt_col: str = "alt",
        chosen_col: str = "chosen",
        weight_col: str | None = None,
        avail_col: str | None = None,
    ) -> ChoiceData:
        """Build from a long table: one row per person x task x alternative (polars or pandas).

        A task is identified by (``id_col``, ``task_col``); ``id_col=None`` treats every
        task as its own person. ``chosen_col`` holds booleans, 0/1 or "TRUE"/"FALSE".
        Tasks may have different numbers of alternatives; they are padded with an
        availability mask. Alternatives are laid out by their ``alt_col`` value when
        there are at most max(16, 2 x the largest choice set) distinct values (labelled
        or positional designs), else by row order within the task. Person traits enter only
        through feature columns the user builds (e.g. ``income * price``): MNL identifies
        only what varies within tasks.
        """
        from c2m.choice._long import build_from_long

        return build_from_long(
            cls,
            df,
            features,
            id_col=id_col,
            task_col=task_col,
            alt_col=alt_col,
            chosen_col=chosen_col,
            weight_col=weight_col,
            avail_col=avail_col,
        )

    def select(self, names: Sequence[str]) -> FloatArray:
        """X restricted (and reordered) to the given feature names."""
        missing = [n for n in names if n not in self.feature_names]
        if missing:
            raise C2MError(f"choice data has no feature(s) {missing}; it has {self.feature_names}")
        if list(names) == self.feature_names:
            return self.X
        idx = [self.feature_names.index(n) for n in names]
        return np.ascontiguousarray(self.X[:, :, idx])

    def describe_task(self, t: int) -> str:
        """Human-readable identifier of task number ``t`` (0-based)."""
        if self.task_keys is None:
            return f"task #{t}"
        row = self.task_keys.row(t, named=True)
        return "task " + ", ".join(f"{k}={v!r}" for k, v in row.items())


def _codes(values: np.ndarray) -> IntArray:
    """Dense 0-based codes of arbitrary labels."""
    return np.unique(values, return_inverse=True)[1].astype(np.intp).reshape(-1)


def _check_arrays(d: ChoiceData) -> None:
    X = d.X
    if X.ndim != 3 or X.dtype != np.float64:
        raise C2MError(f"X must be a float64 array (n_tasks, J, K), got {X.dtype} {X.shape}")
    n, J, K = X.shape
    shapes = {
        "avail": (d.avail, (n, J)),
        "chosen": (d.chosen, (n,)),
        "person": (d.person, (n,)),
        "weights": (d.weights, (n,)),
        "alt_index": (d.alt_index, (n, J)),
    }
    for name, (arr, shape) in shapes.items():
        if arr.shape != shape:
            raise C2MError(f"{name} must have shape {shape}, got {arr.shape}")
    if len(d.feature_names) != K:
        raise C2MError(f"{K} features in X but {len(d.feature_names)} feature names")
    if n == 0:
        raise C2MError("choice data has no tasks")
    if not np.isfinite(X).all():
        t, j, k = np.argwhere(~np.isfinite(X))[0]
        raise C2MError(f"feature {d.feature_names[k]!r} is not finite in {d.describe_task(int(t))}, slot {j}")
    bad = (d.chosen < 0) | (d.chosen >= J)
    if bad.any():
        t = int(np.flatnonzero(bad)[0])
        raise C2MError(f"chosen index {int(d.chosen[t])} out of range 0..{J - 1} in {d.describe_task(t)}")
    unavailable = ~d.avail[np.arange(n), d.chosen]
    if unavailable.any():
        t = int(np.flatnonzero(unavailable)[0])
        raise C2MError(f"the chosen alternative is marked unavailable in {d.describe_task(t)}")
    if not np.isfinite(d.weights).all() or (d.weights < 0).any():
        t = int(np.flatnonzero(~(np.isfinite(d.weights) & (d.weights >= 0)))[0])
        raise C2MError(f"weights must be finite and >= 0; got {d.weights[t]} in {d.describe_task(t)}")
