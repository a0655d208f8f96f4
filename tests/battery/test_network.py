"""Swap demand, station siting (MILP vs brute force), the network plan and rent versus buy."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from scipy.optimize import linprog

from c2m.battery import (
    distance_matrix_km,
    fleet_pack,
    haversine_km,
    hourly_profile,
    plan_swap_network,
    rent_vs_buy,
    site_stations,
    store_demand,
    swap_demand,
)
from c2m.data import default_project
from c2m.domain import Project, Store
from c2m.errors import C2MError


@pytest.fixture(scope="module")
def project() -> Project:
    return default_project()


def _fleet(project: Project, total: float = 100_000.0) -> pl.DataFrame:
    size = sum(c.market_size for c in project.cities)
    return pl.DataFrame(
        {
            "city": [c.name for c in project.cities],
            "vehicles": [total * c.market_size / size for c in project.cities],
        }
    )


def test_haversine_known_distances() -> None:
    # Beijing - Shanghai city centres: ~1,068 km great-circle
    assert float(haversine_km(39.9042, 116.4074, 31.2304, 121.4737)) == pytest.approx(1068, abs=3)
    # one degree of latitude ~ 111.2 km
    assert float(haversine_km(0.0, 10.0, 1.0, 10.0)) == pytest.approx(111.195, abs=0.01)
    d = distance_matrix_km([30.0, 31.0, 30.5], [120.0, 121.0, 120.2])
    np.testing.assert_allclose(d, d.T)
    np.testing.assert_allclose(np.diag(d), 0.0)


def test_swap_demand_by_hand(project: Project) -> None:
    fleet = pl.DataFrame({"city": ["Shanghai", "Haikou"], "vehicles": [1000, 200]})
    persons = pl.DataFrame(
        {
            "city": ["Shanghai", "Shanghai", "Haikou"],
            "daily_km": [40.0, 80.0, 30.0],
            "home_charging": [False, True, False],
        }
    )
    out = swap_demand(project, fleet, persons, swap_share=0.87)
    pack = fleet_pack(project)
    assert pack.id == "20#-NCM-52"  # the median-range pack: the launched car's
    usable = 500 * 0.8 * 0.8
    sha = 0.87 * ((40.0 + 80.0 * (1 - 0.7)) / 2) / usable
    row = out.filter(pl.col("city") == "Shanghai").row(0, named=True)
    assert row["swaps_per_vehicle_day"] == pytest.approx(sha)
    assert row["swaps_per_day"] == pytest.approx(1000 * sha)
    assert row["peak_swaps_per_hour"] == pytest.approx(1000 * sha * hourly_profile().max())
    hai = out.filter(pl.col("city") == "Haikou").row(0, named=True)
    assert hai["swaps_per_day"] == pytest.approx(200 * 0.87 * 30.0 / usable)
    # home charging lowers swaps
    home = persons.with_columns(pl.lit(True).alias("home_charging"))
    assert (swap_demand(project, fleet, home)["swaps_per_day"] < out["swaps_per_day"]).all()
    with pytest.raises(C2MError, match="vehicles"):
        swap_demand(project, pl.DataFrame({"city": ["Shanghai"]}))


def test_sited_network_serves_every_store_within_reach(project: Project) -> None:
    demand = swap_demand(project, _fleet(project))
    R, cap = 5.0, 300.0
    sites = site_stations(project, demand, max_distance_km=R, station_capacity_per_day=cap)
    assert sites.height == len(project.stores)
    served = sites.filter(pl.col("demand_swaps_per_day") > 0)
    assert (served["served_share"] > 1 - 1e-6).all()
    assert (served["distance_to_station_km"] <= R + 1e-9).all()
    stations = set(sites.filter(pl.col("station"))["store_id"])
    assert set(served["served_by"]) <= stations
    # the serving station really is within reach
    pos = {r[0]: (r[1], r[2]) for r in sites.select("store_id", "lat", "lon").iter_rows()}
    for sid, by in served.select("store_id", "served_by").iter_rows():
        assert float(haversine_km(*pos[sid], *pos[by])) <= R + 1e-9
    assert (sites["swaps_per_day"] <= cap * sites["stations"] + 1e-6).all()
    assert sites["swaps_per_day"].sum() == pytest.approx(demand["swaps_per_day"].sum(), rel=1e-6)
    assert sites["mip_gap"].drop_nans().max() <= 1e-4
    # fewer stations than a lower bound would be impossible
    assert sites["stations"].sum() >= np.ceil(demand["swaps_per_day"].sum() / cap)
    greedy = site_stations(project, demand, max_distance_km=R, station_capacity_per_day=cap, method="greedy")
    assert greedy["stations"].sum() >= sites["stations"].sum()
    g_served = greedy.filter(pl.col("demand_swaps_per_day") > 0)
    assert (g_served["distance_to_station_km"] <= R + 1e-9).all()
    assert (g_served["served_share"] > 1 - 1e-6).all()


def _tiny_project(project: Project) -> Project:
    # seven stores along a ~14 km line and one off to the side, two cities
    coords = [
        (31.20, 121.40),
        (31.20, 121.43),
        (31.20, 121.47),
        (31.22, 121.50),
        (31.20, 121.53),
        (31.23, 121.42),
        (31.24, 121.55),
    ]
    stores = [
        Store(
            id=f"T-{i}",
            city="Shanghai" if i < 5 else "Suzhou",
            lat=a,
            lon=b,
            kind="own" if i % 2 else "partner",
        )
        for i, (a, b) in enumerate(coords)
    ]
    return project.model_copy(update={"stores": stores})


def _brute_force(
    w: np.ndarray, d: np.ndarray, R: float, cap: float, K: int, budget: int | None
) -> tuple[int, float]:
    """(fewest stations, most swaps served) by enumerating every station vector and an LP assignment."""
    n = w.size
    pts = np.nonzero(w > 0)[0]
    best: tuple[float, int] = (-1.0, 10**9)
    for k in itertools.product(range(K + 1), repeat=n):
        if budget is not None and sum(k) > budget:
            continue
        pairs = [(i, j) for j in pts for i in range(n) if d[i, j] <= R and k[i] > 0]
        if not pairs:
            served = 0.0
        else:
            # maximise served swaps: sum_{i} y_ij <= 1, sum_j w_j y_ij <= cap k_i
            c = -np.array([w[j] for _, j in pairs])
            A, b = [], []
            for j in pts:
                A.append([1.0 if jj == j else 0.0 for _, jj in pairs])
                b.append(1.0)
            for i in range(n):
                A.append([w[jj] if ii == i else 0.0 for ii, jj in pairs])
                b.append(cap * k[i])
            res = linprog(c, A_ub=np.array(A), b_ub=np.array(b), bounds=(0, 1), method="highs")
            served = -float(res.fun)
        key = (round(served, 6), -sum(k))
        if key > (round(best[0], 6), -best[1]):
            best = (served, sum(k))
    return best[1], best[0]


@pytest.mark.parametrize(("R", "cap", "budget"), [(5.0, 300.0, None), (5.0, 150.0, None), (4.0, 150.0, 2)])
def test_milp_matches_brute_force_on_a_tiny_instance(
    project: Project, R: float, cap: float, budget: int | None
) -> None:
    tiny = _tiny_project(project)
    demand = pl.DataFrame({"city": ["Shanghai", "Suzhou"], "swaps_per_day": [500.0, 170.0]})
    sites = site_stations(
        tiny,
        demand,
        max_distance_km=R,
        station_capacity_per_day=cap,
        budget_stations=budget,
        split="kind",
        max_stations_per_site=2,
    )
    points = store_demand(tiny, demand, split="kind")
    w = points["demand"].to_numpy()
    d = distance_matrix_km(points["lat"].to_numpy(), points["lon"].to_numpy())
    n_best, served_best = _brute_force(w, d, R, cap, 2, budget)
    assert int(sites["stations"].sum()) == n_best
    served = float((sites["served_share"] * sites["demand_swaps_per_day"]).sum())
    assert served == pytest.approx(served_best, rel=1e-6)
    got = sites.filter(pl.col("served_share") > 1e-9)
    assert (got["distance_to_station_km"] <= R + 1e-9).all()


def test_plan_swap_network_schema_and_costs(project: Project) -> None:
    fleet = _fleet(project, 60_000.0)
    plan = plan_swap_network(project, fleet)
    assert plan.columns[:11] == [
        "store_id",
        "city",
        "lat",
        "lon",
        "station",
        "lanes",
        "packs",
        "swaps_per_day",
        "peak_swaps_per_hour",
        "p_wait",
        "capital_cost",
    ]
    assert plan.schema["station"] == pl.Boolean and plan.schema["lanes"] == pl.Int64
    assert plan.schema["packs"] == pl.Int64
    st = plan.filter(pl.col("station"))
    pack_cost = fleet_pack(project).cost
    np.testing.assert_allclose(st["capital_cost"], 1.5e6 * st["stations"] + st["packs"] * pack_cost)
    assert (st["packs"] >= 14 * st["stations"]).all() and (st["lanes"] >= 1).all()
    assert ((st["p_wait"] > 0) & (st["p_wait"] <= 0.05)).all()
    tight = plan_swap_network(project, fleet, target_wait_prob=0.01).filter(pl.col("station"))
    assert (tight["p_wait"] <= 0.01).all() and tight["packs"].sum() >= st["packs"].sum()
    off = plan.filter(~pl.col("station"))
    assert (
        (off["packs"] == 0).all()
        and (off["capital_cost"] == 0).all()
        and off["p_wait"].null_count() == off.height
    )
    np.testing.assert_allclose(plan["peak_swaps_per_hour"], plan["swaps_per_day"] * hourly_profile().max())
    assert plan.equals(plan_swap_network(project, fleet))


def test_rent_vs_buy_break_even_by_hand(project: Project) -> None:
    table = rent_vs_buy(project, monthly_km=1500, months=120)
    row = table.filter((pl.col("pack") == "20#-NCM-52") & (pl.col("plan") == "capped"))
    assert row.height == 120
    # 399 yuan a month under the 3,000 km cap; pack 32,000 yuan: 80 x 399 = 31,920 < 32,000 <= 81 x 399
    assert row["break_even_month"][0] == 81
    assert row.filter(pl.col("month") == 81)["rent_cost"].item() == pytest.approx(81 * 399)
    # 4,000 km a month: 399 + 1,000 x 0.2 = 599; 53 x 599 = 31,747 < 32,000 <= 54 x 599
    far = rent_vs_buy(project, monthly_km=4000, months=120)
    far_row = far.filter((pl.col("pack") == "20#-NCM-52") & (pl.col("plan") == "capped"))
    assert far_row["monthly_rent"][0] == pytest.approx(599.0)
    assert far_row["break_even_month"][0] == 54
    short = rent_vs_buy(project, monthly_km=1500, months=24)
    assert short["break_even_month"].null_count() == short.height


def test_siting_is_quiet(project: Project, capfd: pytest.CaptureFixture[str]) -> None:
    tiny = _tiny_project(project)
    demand = pl.DataFrame({"city": ["Shanghai", "Suzhou"], "swaps_per_day": [500.0, 170.0]})
    for cap in (150.0, 200.0, 300.0):
        site_stations(tiny, demand, station_capacity_per_day=cap, split="kind", max_stations_per_site=2)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_swap_demand_defaults_without_population(project: Project) -> None:
    out = swap_demand(project, pl.DataFrame({"city": ["Wuhan"], "vehicles": [500.0]}))
    per_vehicle = 0.87 * 45.0 * (1 - 0.7 * 0.35) / (500 * 0.8 * 0.8)
    assert out["swaps_per_day"].item() == pytest.approx(500 * per_vehicle)


def test_budget_limits_stations_for_both_methods(project: Project) -> None:
    demand = swap_demand(project, _fleet(project, 50_000.0))
    for method in ("milp", "greedy"):
        sites = site_stations(project, demand, budget_stations=20, method=method)  # type: ignore[arg-type]
        assert sites["stations"].sum() <= 20
        served = sites.filter(pl.col("served_share") > 1e-9)
        assert (served["distance_to_station_km"] <= 5.0 + 1e-9).all()
        assert (sites["swaps_per_day"] <= 300.0 * sites["stations"] + 1e-6).all()
    with pytest.raises(C2MError, match="no store"):
        site_stations(project, pl.DataFrame({"city": ["Atlantis"], "swaps_per_day": [10.0]}))
