"""Swap demand of a fleet by city.

Swaps per vehicle per day = ``daily_km * (1 - HOME_CHARGING_COVER * home_charging) / usable_km``
averaged over the city's drivers, for the ``swap_share`` of the fleet that swaps at all (87 % of
the survey preferred swapping to charging, domain-facts.md). ``usable_km`` is the pack's CLTC
range times ``REAL_WORLD_RANGE`` (0.8: real driving versus the CLTC cycle) times
``1 - RESERVE_SOC`` (drivers swap with 20 % charge left). Drivers who can charge at home cover
``HOME_CHARGING_COVER`` (70 %) of their energy there. Without a population the city's drivers
are taken to drive ``DEFAULT_DAILY_KM`` a day with ``DEFAULT_HOME_SHARE`` charging at home.
The day's swaps follow ``hourly_profile()`` (commuting peaks at 08:00 and 18:30).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from c2m.domain import BatteryPack, Project
from c2m.errors import C2MError

from ._queue import hourly_profile

REAL_WORLD_RANGE = 0.8
RESERVE_SOC = 0.2
HOME_CHARGING_COVER = 0.7
DEFAULT_DAILY_KM = 45.0
DEFAULT_HOME_SHARE = 0.35


def fleet_pack(project: Project, pack_id: str | None = None) -> BatteryPack:
    """The pack the swap network stocks: ``pack_id``, else the project's median-range pack."""
    if not project.battery_packs:
        raise C2MError(f"project {project.name!r}: no [[battery_packs]]; the swap network needs one")
    if pack_id is not None:
        try:
            return project.battery_pack(pack_id)
        except KeyError:
            ids = [p.id for p in project.battery_packs]
            raise C2MError(f"unknown battery pack {pack_id!r}; the project has {ids}") from None
    packs = sorted(project.battery_packs, key=lambda p: p.range_km)
    return packs[(len(packs) - 1) // 2]


def swap_demand(
    project: Project,
    fleet: pl.DataFrame,
    persons: pl.DataFrame | None = None,
    swap_share: float = 0.87,
    pack_id: str | None = None,
) -> pl.DataFrame:
    """Daily and peak-hour swaps by city for a fleet (``city``, ``vehicles``).

    Returns ``city``, ``vehicles``, ``swaps_per_vehicle_day``, ``swaps_per_day`` and
    ``peak_swaps_per_hour``. ``persons`` (``city``, ``daily_km``, ``home_charging``) gives the
    drivers' habits by city (all persons for a city not in it).
    """
    for col in ("city", "vehicles"):
        if col not in fleet.columns:
            raise C2MError(f"swap_demand: fleet is missing column {col!r}; found {fleet.columns}")
    if not 0 <= swap_share <= 1:
        raise C2MError(f"swap_demand: swap_share must be in [0, 1], got {swap_share}")
    fleet = fleet.group_by(pl.col("city").cast(pl.String)).agg(pl.col("vehicles").cast(pl.Float64).sum())
    if fleet["vehicles"].null_count() or (fleet["vehicles"] < 0).any():
        raise C2MError("swap_demand: vehicles must be non-negative numbers")
    pack = fleet_pack(project, pack_id)
    usable_km = pack.range_km * REAL_WORLD_RANGE * (1.0 - RESERVE_SOC)
    per_city = _km_needing_swaps(persons)
    default = per_city.get(None, DEFAULT_DAILY_KM * (1.0 - HOME_CHARGING_COVER * DEFAULT_HOME_SHARE))
    km = np.array([per_city.get(c, default) for c in fleet["city"]])
    rate = swap_share * km / usable_km
    swaps = fleet["vehicles"].to_numpy() * rate
    peak = float(hourly_profile().max())
    return pl.DataFrame(
        {
            "city": fleet["city"],
            "vehicles": fleet["vehicles"],
            "swaps_per_vehicle_day": rate,
            "swaps_per_day": swaps,
            "peak_swaps_per_hour": swaps * peak,
        }
    ).sort("city")


def _km_needing_swaps(persons: pl.DataFrame | None) -> dict[str | None, float]:
    """Mean daily km not covered by home charging, by city (key None: all persons)."""
    if persons is None:
        return {}
    missing = [c for c in ("city", "daily_km", "home_charging") if c not in persons.columns]
    if missing:
        raise C2MError(f"swap_demand: persons is missing column(s) {missing}; found {persons.columns}")
    if persons.height == 0:
        return {}
    expr = (
        pl.col("daily_km").cast(pl.Float64)
        * (1.0 - HOME_CHARGING_COVER * pl.col("home_charging").cast(pl.Float64))
    ).mean()
    by_city = persons.group_by(pl.col("city").cast(pl.String)).agg(expr.alias("km"))
    out: dict[str | None, float] = {c: float(k) for c, k in by_city.iter_rows()}
    out[None] = float(persons.select(expr).item())
    return out
