"""Battery service: swap demand, swap-station siting, station battery stock, rent versus buy, battery life."""

from ._demand import fleet_pack, swap_demand
from ._geo import distance_matrix_km, haversine_km
from ._health import (
    DEFAULT_MODELS,
    TEMPERATURE_BANDS,
    AgeingModel,
    retirement_month,
    simulate_pack_fleet,
    state_of_health,
)
from ._network import plan_swap_network
from ._queue import erlang_b, erlang_c, hourly_profile
from ._rent import plan_cost_table, rent_vs_buy
from ._siting import (
    ZoneSiting,
    lane_wait_probability,
    lanes_needed,
    site_stations,
    site_zones,
    store_demand,
    zone_pairs,
)
from ._stock import offered_load, simulate_station, station_stock, wait_probability
from ._swapsim import SwapStats, simulate_swaps, swap_arrivals

__all__ = [
    "DEFAULT_MODELS",
    "TEMPERATURE_BANDS",
    "AgeingModel",
    "SwapStats",
    "ZoneSiting",
    "distance_matrix_km",
    "erlang_b",
    "erlang_c",
    "fleet_pack",
    "haversine_km",
    "hourly_profile",
    "lane_wait_probability",
    "lanes_needed",
    "offered_load",
    "plan_cost_table",
    "plan_swap_network",
    "rent_vs_buy",
    "retirement_month",
    "simulate_pack_fleet",
    "simulate_station",
    "simulate_swaps",
    "site_stations",
    "site_zones",
    "state_of_health",
    "station_stock",
    "store_demand",
    "swap_arrivals",
    "swap_demand",
    "wait_probability",
    "zone_pairs",
]
