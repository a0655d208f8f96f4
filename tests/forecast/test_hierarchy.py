"""Hierarchies and reconciliation: structure by brute force, coherence, projection algebra."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import c2m.forecast._hierarchy as hierarchy_module
from c2m.errors import C2MError
from c2m.forecast import RECONCILIATION_METHODS, build_hierarchy, reconcile


def _bottom(n_provinces: int = 3, cities: int = 3, variants: tuple[str, ...] = ("A", "B")) -> pl.DataFrame:
    rows = [
        (f"P{p}", f"P{p}-C{c}", v)
        for p in range(n_provinces)
        for c in range(cities - (p % 2))  # uneven trees
        for v in variants
    ]
    return pl.DataFrame(rows, schema=["province", "city", "variant"], orient="row")


GROUPED = [(), ("province",), ("province", "city"), ("variant",), ("province", "variant")]


def test_summing_matrix_matches_brute_force_sums() -> None:
    bottom = _bottom()
    h = build_hierarchy(bottom, GROUPED)
    rng = np.random.default_rng(0)
    values = rng.poisson(10, size=h.n_bottom).astype(float)
    table = h.bottom.with_columns(v=values)
    aggregated = h.aggregate(values)
    for i, node in enumerate(h.nodes.iter_rows(named=True)):
        mask = pl.lit(True)
        for key in h.keys:
            if node[key] is not None:
                mask = mask & (pl.col(key) == node[key])
        assert aggregated[i] == pytest.approx(table.filter(mask)["v"].sum()), node["node"]
    # every level is there once per distinct key combination, bottom last
    assert h.nodes.filter(pl.col("level") == "province/variant").height == 3 * 2
    assert h.nodes.tail(h.n_bottom).select(h.keys).equals(h.bottom)
    assert h.is_coherent(aggregated)


@pytest.mark.parametrize("method", RECONCILIATION_METHODS)
def test_reconciled_forecasts_are_coherent_and_leave_coherent_ones_alone(method: str) -> None:
    h = build_hierarchy(_bottom(), GROUPED)
    rng = np.random.default_rng(1)
    base = rng.normal(20, 5, size=(h.n_nodes, 4))
    variances = rng.uniform(0.5, 3, size=h.n_nodes)
    result = reconcile(h, base, method=method, variances=variances)
    assert result.shape == base.shape
    for week in range(4):
        assert h.is_coherent(result[:, week])
    coherent = h.aggregate(rng.normal(5, 1, size=(h.n_bottom, 2)))
    assert np.allclose(reconcile(h, coherent, method=method, variances=variances), coherent, atol=1e-8)


def test_ols_and_wls_are_the_generalised_least_squares_projection() -> None:
    h = build_hierarchy(_bottom(), GROUPED)
    S = h.S.toarray()
    rng = np.random.default_rng(2)
    y = rng.normal(10, 3, size=h.n_nodes)
    for method, weights in [("ols", np.ones(h.n_nodes)), ("wls_struct", 1 / S.sum(axis=1))]:
        root = np.sqrt(weights)
        b, *_ = np.linalg.lstsq(root[:, None] * S, root * y, rcond=None)
        assert reconcile(h, y, method=method) == pytest.approx(S @ b, abs=1e-9)
    # bottom-up keeps the bottom forecasts
    assert reconcile(h, y, method="bottom_up")[h.bottom_rows] == pytest.approx(y[h.bottom_rows])


def test_iterative_solver_for_large_hierarchies_agrees_with_the_exact_one(monkeypatch: pytest.MonkeyPatch) -> None:
    h = build_hierarchy(_bottom(6, 8, ("A", "B", "C")), GROUPED)
    y = np.random.default_rng(3).normal(10, 4, size=(h.n_nodes, 3))
    variances = np.random.default_rng(4).uniform(0.2, 5, size=h.n_nodes)
    for method in ("ols", "wls_struct", "wls_var"):
        exact = reconcile(h, y, method=method, variances=variances)
        monkeypatch.setattr(hierarchy_module, "_DENSE_LIMIT", 0)
        iterative = reconcile(h, y, method=method, variances=variances)
        monkeypatch.undo()
        assert iterative == pytest.approx(exact, abs=1e-7)


def test_default_levels_are_the_prefixes_of_the_keys() -> None:
    h = build_hierarchy(_bottom().select("province", "city").unique())
    assert h.levels == ((), ("province",), ("province", "city"))
    assert h.nodes["node"][0] == "total"


def test_bad_hierarchies_and_inputs_are_named() -> None:
    with pytest.raises(C2MError, match="unknown key"):
        build_hierarchy(_bottom(), [("region",)])
    with pytest.raises(C2MError, match="repeat"):
        build_hierarchy(pl.concat([_bottom(), _bottom().head(1)]))
    with pytest.raises(C2MError, match="missing values"):
        build_hierarchy(pl.DataFrame({"city": ["a", None]}))
    h = build_hierarchy(_bottom())
    with pytest.raises(C2MError, match="nodes"):
        reconcile(h, np.zeros(3))
    with pytest.raises(C2MError, match="variances"):
        reconcile(h, np.zeros(h.n_nodes), method="wls_var")
    with pytest.raises(C2MError, match="unknown method"):
        reconcile(h, np.zeros(h.n_nodes), method="mint")
    with pytest.raises(C2MError, match="infinite"):
        reconcile(h, np.full(h.n_nodes, np.nan))


def test_solving_through_the_aggregate_nodes_is_the_same_projection() -> None:
    h = build_hierarchy(_bottom(4, 5, ("A", "B", "C")), [(), ("province",), ("variant",)])
    assert h.n_nodes - h.n_bottom < h.n_bottom  # reconciled through the (few) aggregate nodes
    S = h.S.toarray()
    rng = np.random.default_rng(5)
    y = rng.normal(10, 3, size=(h.n_nodes, 3))
    variances = rng.uniform(0.2, 5, size=h.n_nodes)
    for method, weights in [("ols", np.ones(h.n_nodes)), ("wls_struct", 1 / S.sum(axis=1)), ("wls_var", 1 / variances)]:
        root = np.sqrt(weights)
        b, *_ = np.linalg.lstsq(root[:, None] * S, root[:, None] * y, rcond=None)
        assert reconcile(h, y, method=method, variances=variances) == pytest.approx(S @ b, abs=1e-9), method
    project = hierarchy_module.reconciler(h, "wls_var", variances)  # factored once, used again
    assert project(y[:, 0]) == pytest.approx(reconcile(h, y[:, 0], method="wls_var", variances=variances))
    assert project(2 * y) == pytest.approx(2 * reconcile(h, y, method="wls_var", variances=variances))
