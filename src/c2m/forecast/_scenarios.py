"""What-if runs of the build plan: more capacity, a level dropped from the range, a battery shortage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from c2m.errors import C2MError

from ._allocate import allocate, service_level
from ._plan import build_plan


@dataclass(frozen=True)
class Scenario:
    """One what-if: ``capacity_factor`` scales the plant's capacity; ``drop`` removes levels
    (``{"colour": "grey"}``) whose buyers move to the other levels of that column in
    proportion to their demand (same other items, city and week); ``pack_factor`` scales
    the supply of battery pack types (``{"56kWh": 0.5}``)."""

    name: str
    capacity_factor: float = 1.0
    drop: Mapping[str, str] = field(default_factory=dict)
    pack_factor: Mapping[str, float] = field(default_factory=dict)


def standard_scenarios(
    forecast: pl.DataFrame, items: Sequence[str], pack_column: str | None = None, colour: str = "colour"
) -> list[Scenario]:
    """The issue's what-ifs: base, capacity +20%, the least-ordered colour dropped (when the
    plan is by colour), and half the supply of the most-used battery pack (with packs)."""
    scenarios = [Scenario("base"), Scenario("capacity +20%", capacity_factor=1.2)]
    if colour in items:
        least = forecast.group_by(colour).agg(pl.col("demand").sum()).sort("demand")[colour][0]
        scenarios.append(Scenario(f"drop {colour} {least}", drop={colour: str(least)}))
    if pack_column is not None:
        most = forecast.group_by(pack_column).agg(pl.col("demand").sum()).sort("demand", descending=True)
        pack = str(most[pack_column][0])
        scenarios.append(Scenario(f"{pack} packs -50%", pack_factor={pack: 0.5}))
    return scenarios


def drop_level(forecast: pl.DataFrame, column: str, level: str, items: Sequence[str]) -> pl.DataFrame:
    """The forecast without ``level`` of ``column``: its demand goes to the other levels of the
    same cell (other items, city, week) in proportion to their demand, or evenly if they have none."""
    if column not in forecast.columns:
        raise C2MError(f"what-if: cannot drop {column}={level!r}: the forecast has no column {column!r}")
    table = forecast.with_columns(pl.col(column).cast(pl.String))
    if table.filter(pl.col(column) == level).height == 0:
        raise C2MError(f"what-if: {column} has no level {level!r}; it has {sorted(table[column].unique().to_list())}")
    cell = [c for c in ("week", *items, "city") if c in table.columns and c != column]
    lost = table.filter(pl.col(column) == level).group_by(cell).agg(lost=pl.col("demand").sum())
    kept = table.filter(pl.col(column) != level)
    if kept.height == 0:
        raise C2MError(f"what-if: dropping {column}={level!r} leaves nothing to build")
    kept = kept.join(lost, on=cell, how="left").with_columns(pl.col("lost").fill_null(0.0))
    total = pl.col("demand").sum().over(cell)
    count = pl.len().over(cell)
    share = pl.when(total > 0).then(pl.col("demand") / total).otherwise(1.0 / count)
    return kept.with_columns(demand=pl.col("demand") + pl.col("lost") * share).drop("lost")


def what_if(
    forecast: pl.DataFrame,
    scenarios: Sequence[Scenario],
    items: Sequence[str] = ("variant",),
    capacity_per_week: int = 2500,
    pack_column: str | None = None,
    pack_supply: Mapping[str, float] | None = None,
    within_weeks: int = 4,
    **plan_options: Any,
) -> pl.DataFrame:
    """Plan (and, when the forecast has a ``city`` column, deliver) under each scenario.

    Returns one row per scenario: ``built``, ``demand``, ``backlog_end`` (orders not built
    by the last week), ``on_time`` (share delivered within ``within_weeks``, with a city
    column) and ``peak_backlog``.
    """
    if not scenarios:
        raise C2MError("what-if: give at least one scenario")
    rows = []
    for scenario in scenarios:
        table = forecast
        for column, level in scenario.drop.items():
            table = drop_level(table, column, level, items)
        supply = None
        if pack_supply is not None:
            unknown = [p for p in scenario.pack_factor if p not in pack_supply]
            if unknown:
                raise C2MError(f"what-if {scenario.name!r}: pack type(s) {unknown} have no supply to scale")
            supply = {p: float(v) * float(scenario.pack_factor.get(p, 1.0)) for p, v in pack_supply.items()}
        elif scenario.pack_factor:
            raise C2MError(f"what-if {scenario.name!r}: scaling pack supply needs pack_supply")
        if scenario.capacity_factor <= 0:
            raise C2MError(f"what-if {scenario.name!r}: capacity_factor must be > 0")
        plan = build_plan(
            table, capacity_per_week=round(capacity_per_week * scenario.capacity_factor), items=items,
            pack_column=pack_column if supply is not None else None, pack_supply=supply, **plan_options,
        )
        last = plan.filter(pl.col("week") == plan["week"].max())
        on_time = None
        if "city" in table.columns:
            service = service_level(allocate(plan, table, items=items), within_weeks=within_weeks)
            on_time = float(service["on_time"].item()) if service.height else 1.0
        rows.append(
            {
                "scenario": scenario.name,
                "built": int(plan["build"].sum()),
                "demand": float(plan["demand"].sum()),
                "backlog_end": float(last["backlog"].sum()),
                "on_time": on_time,
                "peak_backlog": float(plan.group_by("week").agg(pl.col("backlog").sum())["backlog"].max()),  # type: ignore[arg-type]
            }
        )
    return pl.DataFrame(rows, schema={"scenario": pl.String, "built": pl.Int64, "demand": pl.Float64,
                                      "backlog_end": pl.Float64, "on_time": pl.Float64, "peak_backlog": pl.Float64})
