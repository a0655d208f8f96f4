"""Zone siting by LP bound + rounding + local search (``method="lp"``) against brute force and the MILP."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from scipy.optimize import linprog

from c2m.battery import haversine_km, site_zones, zone_pairs
from c2m.battery._siting_lp import FlowCheck, fewest_stations
from c2m.errors import C2MError

KM_PER_DEG = 111.195


def _instance(n_stores: int, n_zones: int, seed: int, sd_km: float = 3.0, cities: int = 1) -> tuple[pl.DataFrame, ...]:
    """Seeded zones around ``cities`` centres, stores on demand-weighted zones plus ~0.5 km jitter."""
    rng = np.random.default_rng(seed)
    c = rng.integers(0, cities, n_zones)
    lat0, lon0 = 31.0 + 0.5 * np.arange(cities), 121.0 + 0.3 * np.arange(cities)
    zlat = lat0[c] + rng.normal(0, sd_km, n_zones) / KM_PER_DEG
    zlon = lon0[c] + rng.normal(0, sd_km, n_zones) / (KM_PER_DEG * np.cos(np.radians(zlat)))
    w = rng.lognormal(np.log(10.0), 0.8, n_zones)
    pick = rng.choice(n_zones, n_stores, p=w / w.sum())
    slat = zlat[pick] + rng.normal(0, 0.5, n_stores) / KM_PER_DEG
    slon = zlon[pick] + rng.normal(0, 0.5, n_stores) / KM_PER_DEG
    zones = pl.DataFrame({"zone_id": [f"z{i}" for i in range(n_zones)], "lat": zlat, "lon": zlon, "demand": w})
    stores = pl.DataFrame({"store_id": [f"s{i}" for i in range(n_stores)], "lat": slat, "lon": slon})
    return stores, zones


def _transport_feasible(k: np.ndarray, ii: np.ndarray, jj: np.ndarray, w: np.ndarray, cap: float) -> bool:
    """Independent check: can stations ``k`` serve every zone in reach (an LP over the pairs)?"""
    served = np.zeros(w.size, dtype=bool)
    served[jj] = True
    use = k[ii] > 0
    if not np.all(np.isin(np.flatnonzero(served), jj[use])):
        return False
    a, b = ii[use], jj[use]
    zones = np.flatnonzero(served)
    A_eq = (zones[:, None] == b[None, :]).astype(float)
    A_ub = (np.arange(k.size)[:, None] == a[None, :]) * w[b][None, :]
    r = linprog(np.zeros(a.size), A_ub=A_ub, b_ub=cap * k, A_eq=A_eq, b_eq=np.ones(zones.size), bounds=(0, 1))
    return bool(r.status == 0)


def _check_plan(res: object, stores: pl.DataFrame, zones: pl.DataFrame, R: float, cap: float, K: int) -> None:
    """The result's own plan, checked from the raw coordinates and demands."""
    sites: pl.DataFrame = res.sites  # type: ignore[attr-defined]
    a = res.assignment.join(stores.rename({"lat": "slat", "lon": "slon"}), on="store_id").join(zones, on="zone_id")  # type: ignore[attr-defined]
    assert (haversine_km(a["lat"], a["lon"], a["slat"], a["slon"]) <= R + 1e-9).all()
    _, jj, _ = zone_pairs(zones["lat"], zones["lon"], stores["lat"], stores["lon"], R)
    reach = np.zeros(zones.height, dtype=bool)
    reach[jj] = True
    per_zone = zones.join(a.group_by("zone_id").agg(pl.col("share").sum()), on="zone_id", how="left").fill_null(0.0)
    np.testing.assert_allclose(per_zone["share"].to_numpy()[reach], 1.0, atol=1e-6)
    load = sites.join(
        a.group_by("store_id").agg((pl.col("share") * pl.col("demand")).sum().alias("load")), on="store_id", how="left"
    ).fill_null(0.0)
    k = load["stations"].to_numpy()
    assert np.all((k >= 0) & (k <= K))
    assert np.all(load["load"].to_numpy() <= cap * k + 1e-6)
    assert res.objective == k.sum()  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_lp_method_equals_brute_force_and_milp(seed: int) -> None:
    stores, zones = _instance(6, 30, seed, sd_km=2.0)
    R, cap, K = 3.0, 150.0, 2
    ii, jj, _ = zone_pairs(zones["lat"], zones["lon"], stores["lat"], stores["lon"], R)
    w = zones["demand"].to_numpy()
    best = min(
        sum(k)
        for k in itertools.product(range(K + 1), repeat=stores.height)
        if _transport_feasible(np.asarray(k, float), ii, jj, w, cap)
    )
    lp = site_zones(stores, zones, R, None, cap, K, mip_rel_gap=0.0, method="lp")
    exact = site_zones(stores, zones, R, None, cap, K, mip_rel_gap=1e-9, method="milp")
    assert lp.objective == exact.objective == best
    assert lp.bound <= best and lp.gap == 0.0 and lp.status == "optimal"
    assert (lp.per_component["lp_bound"] <= lp.per_component["bound"]).all()
    _check_plan(lp, stores, zones, R, cap, K)
    k = lp.sites["stations"].to_numpy().astype(float)
    assert _transport_feasible(k, ii, jj, w, cap)


def test_flow_check_agrees_with_the_transport_lp() -> None:
    stores, zones = _instance(8, 40, 4, sd_km=2.0)
    ii, jj, _ = zone_pairs(zones["lat"], zones["lon"], stores["lat"], stores["lon"], 3.0)
    w = zones["demand"].to_numpy()
    sites, si = np.unique(ii, return_inverse=True)
    pts, pj = np.unique(jj, return_inverse=True)
    fc = FlowCheck(si, pj, w[pts], sites.size, 120.0)
    rng = np.random.default_rng(0)
    outcomes = set()
    for _ in range(40):
        k = rng.integers(0, 3, sites.size)
        kk = np.zeros(stores.height)
        kk[sites] = k
        ok = fc.feasible(k)
        assert ok == _transport_feasible(kk, ii, jj, w, 120.0)
        outcomes.add(ok)
    assert outcomes == {True, False}


def test_component_bound_below_heuristic_and_plan_feasible() -> None:
    stores, zones = _instance(40, 400, 6)
    ii, jj, _ = zone_pairs(zones["lat"], zones["lon"], stores["lat"], stores["lon"], 4.0)
    w = zones["demand"].to_numpy()
    sites, si = np.unique(ii, return_inverse=True)
    pts, pj = np.unique(jj, return_inverse=True)
    plan = fewest_stations(si, pj, w[pts], sites.size, 300.0, 4, time_limit=20.0)
    assert plan.lp <= plan.bound <= plan.k.sum()
    assert plan.bound >= np.ceil(w[pts].sum() / 300.0)
    kk = np.zeros(stores.height)
    kk[sites] = plan.k
    assert _transport_feasible(kk, ii, jj, w, 300.0)


def test_medium_instance_certified_gap_within_one_percent() -> None:
    stores, zones = _instance(400, 3000, 11, sd_km=6.0, cities=3)
    R, cap, K = 5.0, 300.0, 4
    res = site_zones(stores, zones, R, None, cap, K, mip_rel_gap=0.01, time_limit=60.0)
    assert res.gap <= 0.01, res.per_component.filter(pl.col("gap") > 0)
    assert res.bound <= res.objective
    pc = res.per_component
    assert pc["objective"].sum() == res.objective and pc["bound"].sum() == res.bound
    assert (pc["bound"] <= pc["objective"]).all()
    _check_plan(res, stores, zones, R, cap, K)


def test_lp_method_rejects_budget_and_unknown_method() -> None:
    stores, zones = _instance(6, 30, 0, sd_km=2.0)
    with pytest.raises(C2MError, match="fewest-stations"):
        site_zones(stores, zones, 3.0, 2, method="lp")
    with pytest.raises(C2MError, match="method"):
        site_zones(stores, zones, method="simplex")  # type: ignore[arg-type]
