"""Hierarchies of sales series and forecast reconciliation (the parts add up to the whole).

A :class:`Hierarchy` is built from the bottom-level keys (e.g. ``province, city, variant,
colour``) and the aggregation levels to forecast, each a tuple of key columns (``()`` is the
national total, ``("province",)`` the provinces, ...). Crossed (grouped) hierarchies such as
geography x product are just more levels, e.g. ``("city", "variant")``. Its summing matrix
``S`` (sparse, one row per node, one column per bottom series) maps bottom values to every
node.

Reconciliation projects base forecasts ``y`` of every node onto coherent ones,
``y~ = S (S' W^-1 S)^-1 S' W^-1 y`` (Wickramasuriya, Athanasopoulos & Hyndman 2019, MinT
with a diagonal ``W``): ``"ols"`` (``W = I``), ``"wls_struct"`` (``W = diag(S 1)``, the number of
bottom series under a node), ``"wls_var"`` (``W`` = the base forecasts' variances) and
``"bottom_up"``. The normal equations are solved exactly through the aggregate nodes (Woodbury
identity, a Cholesky factor of their size) when there are fewer of them than bottom series;
otherwise exactly (Cholesky) up to 4,000 bottom series and by preconditioned conjugate
gradients, all right-hand sides at once, above that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import scipy.linalg
import scipy.sparse as sp

from c2m.errors import C2MError

RECONCILIATION_METHODS = ("bottom_up", "ols", "wls_struct", "wls_var")
_DENSE_LIMIT = 4000


@dataclass(frozen=True)
class Hierarchy:
    """Nodes of every aggregation level over the bottom series, with the summing matrix.

    ``bottom``: one row per bottom series (its key columns, sorted), in column order of ``S``;
    the bottom series are also the last ``n_bottom`` nodes, in the same order.
    ``nodes``: one row per node: ``level`` (e.g. ``"province"`` or ``"total"``), ``node``
    (a readable id such as ``"province=Guangdong/city=Shenzhen"``) and every key column,
    null where the level does not split by it. Row ``i`` of ``nodes`` is row ``i`` of ``S``.
    """

    keys: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]
    bottom: pl.DataFrame
    nodes: pl.DataFrame
    S: sp.csr_matrix = field(repr=False)

    @property
    def n_bottom(self) -> int:
        return int(self.S.shape[1])

    @property
    def n_nodes(self) -> int:
        return int(self.S.shape[0])

    def aggregate(self, bottom_values: np.ndarray) -> np.ndarray:
        """Every node's value from bottom values (``(n_bottom, ...)`` -> ``(n_nodes, ...)``)."""
        values = np.asarray(bottom_values, dtype=float)
        if values.shape[0] != self.n_bottom:
            raise C2MError(f"hierarchy: expected {self.n_bottom} bottom rows, got {values.shape[0]}")
        flat = values.reshape(self.n_bottom, -1)
        return np.asarray(self.S @ flat).reshape((self.n_nodes, *values.shape[1:]))

    def is_coherent(self, values: np.ndarray, rtol: float = 1e-9) -> bool:
        """Whether every node equals the sum of the bottom series under it."""
        values = np.asarray(values, dtype=float)
        bottom = values[self.bottom_rows]
        return bool(np.allclose(self.aggregate(bottom), values, rtol=rtol, atol=rtol))

    @property
    def bottom_rows(self) -> np.ndarray:
        """Rows of ``nodes`` that are the bottom series, in bottom order."""
        return np.arange(self.n_nodes - self.n_bottom, self.n_nodes)


def node_label(level: Sequence[str], values: Sequence[object]) -> str:
    return "total" if not level else "/".join(f"{k}={v}" for k, v in zip(level, values, strict=True))


def build_hierarchy(bottom: pl.DataFrame, levels: Sequence[Sequence[str]] | None = None) -> Hierarchy:
    """The hierarchy over ``bottom``'s key columns (all its columns, in order).

    ``levels`` default: the total, then each prefix of the keys (a strict tree such as
    country > province > city). The total comes first and the bottom level (all keys) last,
    whether or not ``levels`` names them.
    """
    keys = tuple(bottom.columns)
    if not keys:
        raise C2MError("hierarchy: the bottom table has no key columns")
    if bottom.height == 0:
        raise C2MError("hierarchy: there are no bottom series")
    duplicated = bottom.filter(bottom.is_duplicated())
    if duplicated.height:
        raise C2MError(f"hierarchy: bottom series repeat, e.g. {duplicated.row(0, named=True)}")
    nulls = [k for k in keys if bottom[k].null_count()]
    if nulls:
        raise C2MError(f"hierarchy: key column(s) {nulls} have missing values")
    wanted = [tuple(keys[:i]) for i in range(len(keys))] if levels is None else [tuple(lv) for lv in levels]
    for level in wanted:
        unknown = [k for k in level if k not in keys]
        if unknown:
            raise C2MError(f"hierarchy: level {list(level)} names unknown key(s) {unknown}; keys are {list(keys)}")
    ordered: list[tuple[str, ...]] = []
    for level in [(), *wanted, keys]:
        canonical = tuple(k for k in keys if k in level)
        if canonical not in ordered:
            ordered.append(canonical)

    bottom = bottom.sort(list(keys)).with_row_index("_col")
    node_frames: list[pl.DataFrame] = []
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    for level in ordered:
        if level:
            groups = bottom.group_by(list(level)).agg(pl.col("_col")).sort(list(level))
        else:
            groups = pl.DataFrame({"_col": [bottom["_col"].to_list()]})
        n_before = sum(f.height for f in node_frames)
        for i, member in enumerate(groups["_col"].to_list()):
            rows.append(np.full(len(member), n_before + i, dtype=np.int64))
            cols.append(np.asarray(member, dtype=np.int64))
        frame = groups.drop("_col")
        labels = [node_label(level, row) for row in frame.iter_rows()] if level else ["total"]
        node_frames.append(
            frame.with_columns(level=pl.lit("total" if not level else "/".join(level)), node=pl.Series(labels))
        )
    nodes = pl.concat(node_frames, how="diagonal_relaxed").select("level", "node", *keys)
    n_nodes = nodes.height
    S = sp.csr_matrix(
        (np.ones(sum(len(r) for r in rows)), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_nodes, bottom.height),
    )
    return Hierarchy(keys=keys, levels=tuple(ordered), bottom=bottom.drop("_col"), nodes=nodes, S=S)


def reconcile(
    hierarchy: Hierarchy,
    base: np.ndarray,
    method: str = "wls_struct",
    variances: np.ndarray | None = None,
) -> np.ndarray:
    """Coherent forecasts from base forecasts of every node (``(n_nodes, ...)`` in, same out).

    ``variances`` (``(n_nodes,)``, positive) is needed by ``"wls_var"``.
    """
    return reconciler(hierarchy, method, variances)(base)


def reconciler(
    hierarchy: Hierarchy, method: str = "wls_struct", variances: np.ndarray | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """:func:`reconcile` as a function of the base forecasts, factoring the normal equations once
    (for many forecasts of the same nodes, e.g. sample paths)."""
    if method not in RECONCILIATION_METHODS:
        raise C2MError(f"reconcile: unknown method {method!r}; expected one of {', '.join(RECONCILIATION_METHODS)}")
    solve = _bottom_solver(hierarchy, method, variances)

    def project(base: np.ndarray) -> np.ndarray:
        y = np.asarray(base, dtype=float)
        if y.shape[0] != hierarchy.n_nodes:
            raise C2MError(
                f"reconcile: base forecasts have {y.shape[0]} rows; the hierarchy has {hierarchy.n_nodes} nodes"
            )
        if not np.all(np.isfinite(y)):
            raise C2MError("reconcile: base forecasts have missing or infinite values")
        return hierarchy.aggregate(solve(y.reshape(hierarchy.n_nodes, -1))).reshape(y.shape)

    return project


def _bottom_solver(
    hierarchy: Hierarchy, method: str, variances: np.ndarray | None
) -> Callable[[np.ndarray], np.ndarray]:
    """The reconciled bottom series ``(S' W^-1 S)^-1 S' W^-1 y`` as a function of ``y`` ``(n_nodes, k)``."""
    if method == "bottom_up":
        return lambda flat: flat[hierarchy.bottom_rows]
    weights = _precision(hierarchy, method, variances)
    S = hierarchy.S
    n_agg = hierarchy.n_nodes - hierarchy.n_bottom
    if n_agg <= min(hierarchy.n_bottom, _DENSE_LIMIT):
        return _solver_through_aggregates(S, weights, n_agg)
    normal = (S.T @ sp.diags(weights) @ S).tocsr()
    if hierarchy.n_bottom <= _DENSE_LIMIT:
        factor = scipy.linalg.cho_factor(normal.toarray())
        return lambda flat: np.asarray(scipy.linalg.cho_solve(factor, S.T @ (weights[:, None] * flat)))
    return lambda flat: _batched_cg(normal, np.asarray(S.T @ (weights[:, None] * flat)))


def _solver_through_aggregates(
    S: sp.csr_matrix, weights: np.ndarray, n_agg: int
) -> Callable[[np.ndarray], np.ndarray]:
    """``y -> (S' P S)^-1 S' P y`` with ``P = diag(weights)``, factoring an ``n_agg x n_agg`` matrix only.

    The bottom nodes are the last rows of ``S``, so ``S = [C; I]`` and ``S' P S = P_b + C' P_a C``;
    by the Woodbury identity its inverse is ``P_b^-1 - P_b^-1 C' K^-1 C P_b^-1`` with
    ``K = P_a^-1 + C P_b^-1 C'``, the size of the aggregate nodes (e.g. 383 for 12,000 bottom series).
    """
    C = S[:n_agg]
    p_agg, p_bottom = weights[:n_agg, None], weights[n_agg:, None]
    K = (C @ sp.diags(1.0 / p_bottom[:, 0]) @ C.T).toarray() + np.diag(1.0 / p_agg[:, 0])
    factor = scipy.linalg.cho_factor(K)

    def solve(flat: np.ndarray) -> np.ndarray:
        u = (C.T @ (p_agg * flat[:n_agg]) + p_bottom * flat[n_agg:]) / p_bottom
        return np.asarray(u - (C.T @ scipy.linalg.cho_solve(factor, C @ u)) / p_bottom)

    return solve


def _precision(hierarchy: Hierarchy, method: str, variances: np.ndarray | None) -> np.ndarray:
    """Diagonal of ``W^-1``."""
    if method == "ols":
        return np.ones(hierarchy.n_nodes)
    if method == "wls_struct":
        return 1.0 / np.asarray(hierarchy.S.sum(axis=1)).reshape(-1)
    if variances is None:
        raise C2MError("reconcile: method 'wls_var' needs the base forecasts' variances")
    v = np.asarray(variances, dtype=float).reshape(-1)
    if v.shape != (hierarchy.n_nodes,) or not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise C2MError(f"reconcile: variances must be {hierarchy.n_nodes} positive numbers")
    return 1.0 / v


def _batched_cg(A: sp.csr_matrix, B: np.ndarray, rtol: float = 1e-12, max_iter: int = 2000) -> np.ndarray:
    """Solve ``A X = B`` for a symmetric positive definite sparse ``A``, every column at once (Jacobi CG)."""
    inv_diag = 1.0 / A.diagonal()
    X = np.zeros_like(B)
    R = B.copy()
    Z = inv_diag[:, None] * R
    P = Z.copy()
    rz = np.einsum("ij,ij->j", R, Z)
    norm_b = np.maximum(np.linalg.norm(B, axis=0), 1e-300)
    for _ in range(max_iter):
        if np.all(np.linalg.norm(R, axis=0) <= rtol * norm_b):
            return X
        AP = A @ P
        alpha = rz / np.maximum(np.einsum("ij,ij->j", P, AP), 1e-300)
        X += alpha * P
        R -= alpha * AP
        Z = inv_diag[:, None] * R
        rz_new = np.einsum("ij,ij->j", R, Z)
        P = Z + (rz_new / np.maximum(rz, 1e-300)) * P
        rz = rz_new
    raise C2MError(f"reconcile: the solver did not converge in {max_iter} iterations")
