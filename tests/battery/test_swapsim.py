"""Swap-by-swap pack-pool simulation: the numba fast path against the SimPy model; zone siting."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from scipy.optimize import linprog

from c2m.battery import (
    haversine_km,
    hourly_profile,
    simulate_swaps,
    site_zones,
    station_stock,
    swap_arrivals,
    wait_probability,
    zone_pairs,
)
from c2m.errors import C2MError

pytest.importorskip("simpy")


@pytest.mark.parametrize(
    ("per_day", "charge_time", "slack"),
    [(400.0, "fixed", 0), (400.0, "exponential", -3), (900.0, "fixed", -6), (900.0, "exponential", 0)],
)
def test_fast_path_matches_simpy_on_the_same_arrivals(per_day: float, charge_time: str, slack: int) -> None:
    lam = per_day * hourly_profile()
    packs = station_stock(lam, 1.0, 0.05) + slack
    times, durations = swap_arrivals(lam, 30, 1.0, seed=7, charge_time=charge_time)  # type: ignore[arg-type]
    a = simulate_swaps(times, durations, packs, engine="simpy")
    b = simulate_swaps(times, durations, packs, engine="numba")
    assert a.swaps == b.swaps > 0 and a.p_wait > 0
    np.testing.assert_allclose(b.waits_min, a.waits_min, atol=1e-7)
    for name in ("mean_wait_min", "p_wait", "p_wait_over", "max_wait_min", "utilisation", "mean_queue"):
        assert getattr(b, name) == pytest.approx(getattr(a, name), rel=1e-9, abs=1e-9), name
    # Little's law in both: L_q = lambda W_q, and packs on charge = lambda x mean charge time
    for s in (a, b):
        assert s.mean_queue == pytest.approx(s.little_lq, rel=0.02, abs=1e-4)
        assert s.mean_on_charge == pytest.approx(s.arrival_rate_per_hour * durations.mean(), rel=0.02)


def test_fast_path_matches_erlang_c_in_steady_state() -> None:
    """Exponential charge times and flat arrivals: the pool is M/M/S, so P(wait) is Erlang C."""
    lam = np.full(24, 20.0)
    packs = station_stock(lam, 1.0, 0.1)
    times, durations = swap_arrivals(lam, 2000, 1.0, seed=3, charge_time="exponential")
    s = simulate_swaps(times, durations, packs)
    assert s.p_wait == pytest.approx(wait_probability(lam, packs, 1.0), abs=0.01)
    assert s.utilisation == pytest.approx(20.0 / packs, rel=0.01)


def test_pool_queue_by_hand() -> None:
    # one pack, charge 1 h: arrivals at 0.5, 1.0, 1.2 -> waits 0, 0.5 (pack back at 1.5), 1.3 (back at 2.5)
    times, durations = np.array([0.5, 1.0, 1.2]), np.ones(3)
    for engine in ("numba", "simpy"):
        s = simulate_swaps(times, durations, 1, warmup_hours=0.0, horizon_hours=4.0, engine=engine)  # type: ignore[arg-type]
        np.testing.assert_allclose(s.waits_min, [0.0, 30.0, 78.0], atol=1e-9)
        assert s.p_wait == pytest.approx(2 / 3) and s.p_wait_over == pytest.approx(2 / 3)
        assert s.mean_queue == pytest.approx((0.5 + 1.3) / 4.0)
        assert s.utilisation == pytest.approx(3.0 / 4.0)


def test_simulate_swaps_rejects_bad_input() -> None:
    with pytest.raises(C2MError, match="sorted"):
        simulate_swaps([2.0, 1.0, 3.0], [1.0, 1.0, 1.0], 2, warmup_hours=0.0)
    with pytest.raises(C2MError, match="packs"):
        simulate_swaps([1.0, 2.0], [1.0, 1.0], 0, warmup_hours=0.0)
    with pytest.raises(C2MError, match="durations"):
        simulate_swaps([1.0, 2.0], [1.0, -1.0], 1, warmup_hours=0.0)
    with pytest.raises(C2MError, match="engine"):
        simulate_swaps([1.0, 2.0], [1.0, 1.0], 1, warmup_hours=0.0, engine="fortran")  # type: ignore[arg-type]
    with pytest.raises(C2MError, match="24 hourly"):
        swap_arrivals(np.ones(5), 3)


def _grid() -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(5)
    zlat = 31.2 + rng.normal(0, 0.04, 40)
    zlon = 121.4 + rng.normal(0, 0.05, 40)
    zones = pl.DataFrame({"zone_id": [f"z{i}" for i in range(40)], "lat": zlat, "lon": zlon})
    zones = zones.with_columns(pl.Series("demand", rng.uniform(20, 120, 40)))
    pick = rng.choice(40, 6, replace=False)
    stores = pl.DataFrame({"store_id": [f"s{i}" for i in range(6)], "lat": zlat[pick], "lon": zlon[pick] + 0.004})
    return stores, zones


def test_zone_pairs_equal_brute_force() -> None:
    stores, zones = _grid()
    ii, jj, km = zone_pairs(zones["lat"], zones["lon"], stores["lat"], stores["lon"], 4.0)
    s_lat, s_lon = stores["lat"].to_numpy()[:, None], stores["lon"].to_numpy()[:, None]
    d = haversine_km(s_lat, s_lon, zones["lat"].to_numpy(), zones["lon"].to_numpy())
    bi, bj = np.nonzero(d <= 4.0)
    assert set(zip(ii.tolist(), jj.tolist(), strict=True)) == set(zip(bi.tolist(), bj.tolist(), strict=True))
    np.testing.assert_allclose(km, d[ii, jj], atol=1e-9)
    # a zone exactly on a store is a pair at distance 0
    on = zone_pairs([31.0], [121.0], [31.0, 40.0], [121.0, 121.0], 1.0)
    assert on[0].tolist() == [0] and on[2].tolist() == [0.0]


@pytest.mark.parametrize("budget", [None, 3])
def test_site_zones_matches_brute_force(budget: int | None) -> None:
    stores, zones = _grid()
    R, cap, K = 4.0, 900.0, 2
    res = site_zones(stores, zones, R, budget, cap, K, mip_rel_gap=1e-9)
    ii, jj, _ = zone_pairs(zones["lat"], zones["lon"], stores["lat"], stores["lon"], R)
    w = zones["demand"].to_numpy()
    best: tuple[float, int] = (-1.0, 0)
    for k in itertools.product(range(K + 1), repeat=stores.height):
        if budget is not None and sum(k) > budget:
            continue
        use = np.asarray(k)[ii] > 0
        if not use.any():
            continue
        a, b = ii[use], jj[use]
        once = (np.arange(40)[:, None] == b[None, :]).astype(float)  # each zone served at most once
        capacity = (np.arange(6)[:, None] == a[None, :]) * w[b][None, :]
        A = np.vstack([once, capacity])
        r = linprog(-w[b], A_ub=A, b_ub=np.concatenate([np.ones(40), cap * np.asarray(k, float)]), bounds=(0, 1))
        key = (round(-r.fun, 6), -sum(k))
        if key > (round(best[0], 6), -best[1]):
            best = (-float(r.fun), sum(k))
    served = float(res.assignment["swaps_per_day"].sum())
    assert served == pytest.approx(best[0], rel=1e-6)
    if budget is None:
        assert int(res.sites["stations"].sum()) == best[1]
        assert res.bound <= res.objective and res.gap <= 1e-6
    else:
        assert int(res.sites["stations"].sum()) <= budget
    assert (res.assignment["distance_km"] <= R + 1e-9).all()
    if budget is None:
        assert res.unreachable_demand == pytest.approx(w.sum() - best[0], abs=1e-6)
    load = res.assignment.group_by("store_id").agg(pl.col("swaps_per_day").sum())
    chk = res.sites.join(load, on="store_id", suffix="_a", how="left").fill_null(0.0)
    assert (chk["swaps_per_day_a"] <= cap * chk["stations"] + 1e-6).all()


def test_site_zones_rejects_bad_input() -> None:
    stores, zones = _grid()
    with pytest.raises(C2MError, match="coordinates"):
        site_zones(stores.with_columns(pl.lit(None, pl.Float64).alias("lat")), zones)
    with pytest.raises(C2MError, match="demand"):
        site_zones(stores, zones.with_columns(pl.lit(-1.0).alias("demand")))
    with pytest.raises(C2MError, match="missing"):
        site_zones(stores, zones.drop("demand"))
