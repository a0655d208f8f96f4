"""The whole swap network: demand, siting, lanes, battery stock, wait probability, capital."""

from __future__ import annotations

import numpy as np
import polars as pl

from c2m.domain import Project
from c2m.errors import C2MError

from ._demand import fleet_pack, swap_demand
from ._queue import hourly_profile
from ._siting import Method, lane_wait_probability, site_stations
from ._stock import station_stock, wait_probability

STATION_COST = 1_500_000.0  # yuan per station without packs (domain-facts.md)
MIN_PACKS_PER_STATION = 14  # a station holds 14-30 packs (domain-facts.md)


def plan_swap_network(
    project: Project,
    fleet: pl.DataFrame,
    persons: pl.DataFrame | None = None,
    max_distance_km: float = 5.0,
    budget_stations: int | None = None,
    station_capacity_per_day: float = 300,
    method: Method = "milp",
    charge_hours: float = 1.0,
    target_wait_prob: float = 0.05,
    swap_share: float = 0.87,
    pack_id: str | None = None,
    min_packs: int = MIN_PACKS_PER_STATION,
    station_cost: float = STATION_COST,
) -> pl.DataFrame:
    """Swap-station plan for a fleet (``city``, ``vehicles``): the ``swap_plan.csv`` schema.

    One row per store: ``store_id``, ``city``, ``lat``, ``lon``, ``station``, ``lanes``,
    ``packs``, ``swaps_per_day``, ``peak_swaps_per_hour``, ``p_wait``, ``capital_cost``, then
    ``kind``, ``stations``, ``demand_swaps_per_day``, ``served_by``, ``distance_to_station_km``,
    ``served_share``, ``mip_gap``. ``packs`` is the smallest stock (at least ``min_packs`` per
    station) with ``P(no charged pack) <= target_wait_prob / 2`` and ``lanes`` the fewest
    lanes with ``P(wait for a lane) <= target_wait_prob / 2``, so that ``p_wait``, the
    probability a driver waits for a pack or a lane, ``1 - (1 - P_pack)(1 - P_lane)``
    averaged over the day's arrivals, is at most ``target_wait_prob`` (null without a
    station); ``capital_cost`` is ``station_cost`` per
    station plus the packs at the stocked pack's cost.
    """
    if min_packs < 0 or station_cost < 0:
        raise C2MError("plan_swap_network: min_packs and station_cost must be >= 0")
    demand = swap_demand(project, fleet, persons, swap_share=swap_share, pack_id=pack_id)
    pack = fleet_pack(project, pack_id)
    sites = site_stations(
        project,
        demand,
        max_distance_km=max_distance_km,
        budget_stations=budget_stations,
        station_capacity_per_day=station_capacity_per_day,
        method=method,
        lane_wait_prob=target_wait_prob / 2.0,
    )
    profile = hourly_profile()
    packs: list[int] = []
    p_wait: list[float | None] = []
    capital: list[float] = []
    for k, load, lanes in sites.select("stations", "swaps_per_day", "lanes").iter_rows():
        if k == 0:
            packs.append(0)
            p_wait.append(None)
            capital.append(0.0)
            continue
        arrivals = load * profile
        s = max(min_packs * k, station_stock(arrivals, charge_hours, target_wait_prob / 2.0))
        p_pack = wait_probability(arrivals, s, charge_hours)
        p_lane = lane_wait_probability(arrivals, lanes)
        packs.append(s)
        p_wait.append(float(1.0 - (1.0 - p_pack) * (1.0 - p_lane)))
        capital.append(float(station_cost * k + s * pack.cost))
    out = sites.with_columns(
        pl.Series("packs", np.asarray(packs, dtype=np.int64)),
        pl.Series("p_wait", p_wait, dtype=pl.Float64),
        pl.Series("capital_cost", capital, dtype=pl.Float64),
    )
    first = [
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
    rest = [c for c in out.columns if c not in first and c != "method"]
    return out.select(*first, *rest)
