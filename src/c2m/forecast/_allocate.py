"""Delivering the plan: allocate each week's builds to cities, and the service level it gives.

First come, first served: each week, the cars of an item built so far and not yet shipped go
to the oldest open orders of that item, whatever the city; among orders of the same week,
the cities cheapest to ship to come first (whole cars, ties by city order). Because every car
is shipped as soon as an order waits for it, the total weeks customers wait is the least any
allocation of the same plan can give (it does not depend on who is served first), and serving
the oldest orders first also makes the longest wait as short as it can be; transport cost is
then the least among allocations with that property.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from c2m.errors import C2MError


def allocate(
    plan: pl.DataFrame,
    demand: pl.DataFrame,
    items: Sequence[str] = ("variant",),
    transport_cost: Mapping[str, float] | None = None,
) -> pl.DataFrame:
    """Cars shipped to each city each week (``allocation.csv``).

    ``plan``: ``week``, the ``items`` columns and ``build`` (from :func:`build_plan`);
    ``demand``: ``week``, the ``items`` columns, ``city`` and ``demand`` (orders by city, e.g.
    the forecast). ``transport_cost`` per car by city (default 0). Returns ``week``, items,
    ``city``, ``demand`` (whole cars), ``shipped``, ``cumulative_demand``,
    ``cumulative_shipped`` and ``open_orders`` (ordered, not yet delivered).
    """
    items = list(items)
    needs = (("plan", plan, ["week", *items, "build"]), ("demand", demand, ["week", *items, "city", "demand"]))
    for name, table, needed in needs:
        missing = [c for c in needed if c not in table.columns]
        if missing:
            raise C2MError(f"allocate: {name} is missing column(s) {missing}; found {table.columns}")
    keys = [*items, "city"]
    cells = demand.select(keys).unique().sort(keys)
    item_rows = plan.select(items).unique().sort(items)
    unknown = cells.select(items).unique().join(item_rows, on=items, how="anti")
    if unknown.height:
        raise C2MError(f"allocate: demand for items the plan never builds: {unknown.row(0, named=True)}")
    all_weeks = np.concatenate([plan["week"].cast(pl.Int64).to_numpy(), demand["week"].cast(pl.Int64).to_numpy()])
    weeks = np.arange(int(all_weeks.min()), int(all_weeks.max()) + 1)
    W, n_items, C = len(weeks), item_rows.height, cells.height
    item_index = {row: k for k, row in enumerate(item_rows.iter_rows())}
    cell_item = np.array([item_index[row[:-1]] for row in cells.iter_rows()], dtype=np.int64)

    build = np.zeros((n_items, W))
    for *key, w, x in plan.select(*items, "week", "build").iter_rows():
        build[item_index[tuple(key)], int(w) - weeks[0]] += float(x)
    if np.any(build < 0) or np.any(np.abs(build - np.round(build)) > 1e-9):
        raise C2MError("allocate: plan builds must be whole cars >= 0")
    cell_index = {row: k for k, row in enumerate(cells.iter_rows())}
    raw = np.zeros((C, W))
    for *key, w, x in demand.select(*keys, "week", "demand").iter_rows():
        if x is None or not np.isfinite(x) or x < 0:
            raise C2MError(f"allocate: demand must be >= 0; got {x} for {dict(zip(keys, key, strict=True))}")
        raw[cell_index[tuple(key)], int(w) - weeks[0]] += float(x)
    cum = np.round(np.cumsum(raw, axis=1))
    d = np.diff(cum, axis=1, prepend=0.0)

    costs = np.zeros(C) if transport_cost is None else _city_costs(cells["city"].to_list(), transport_cost)
    ship, open_orders = _solve(build, d, cell_item, costs)
    return pl.DataFrame(
        {
            "week": np.tile(weeks, C).astype(np.int64),
            "demand": d.ravel(),
            "shipped": ship.ravel(),
            "cumulative_demand": cum.ravel(),
            "cumulative_shipped": np.cumsum(ship, axis=1).ravel(),
            "open_orders": open_orders.ravel(),
        }
    ).hstack(cells[np.repeat(np.arange(C), W)]).select("week", *keys, "demand", "shipped", "cumulative_demand",
                                                       "cumulative_shipped", "open_orders").sort(["week", *keys])


def _city_costs(cities: list[str], transport_cost: Mapping[str, float]) -> np.ndarray:
    missing = sorted({c for c in cities if c not in transport_cost})
    if missing:
        raise C2MError(f"allocate: transport_cost has no cost for city/cities {missing[:5]}")
    costs = np.array([float(transport_cost[c]) for c in cities])
    if not np.all(np.isfinite(costs)) or np.any(costs < 0):
        raise C2MError("allocate: transport costs must be >= 0")
    return costs


def _solve(build: np.ndarray, d: np.ndarray, cell_item: np.ndarray, costs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FIFO shipments ``(C, W)`` and open orders at the end of each week."""
    n_cells, n_weeks = d.shape
    ship = np.zeros((n_cells, n_weeks))
    for item in range(build.shape[0]):
        cells = np.flatnonzero(cell_item == item)
        cells = cells[np.argsort(costs[cells], kind="stable")]
        waiting = np.zeros((cells.size, n_weeks))  # orders of cell k placed in week o, not yet shipped
        stock = 0.0
        for w in range(n_weeks):
            waiting[:, w] = d[cells, w]
            stock += build[item, w]
            for o in range(w + 1):
                if stock <= 0:
                    break
                queue = waiting[:, o]
                ahead = np.cumsum(queue) - queue  # orders of cheaper cities in the same week
                take = np.clip(stock - ahead, 0.0, queue)
                waiting[:, o] -= take
                ship[cells, w] += take
                stock -= float(take.sum())
    open_orders = np.cumsum(d, axis=1) - np.cumsum(ship, axis=1)
    return ship, open_orders


def service_level(allocation: pl.DataFrame, within_weeks: int = 4, by: Sequence[str] = ()) -> pl.DataFrame:
    """Share of orders delivered within ``within_weeks`` of the week they were placed.

    Orders are delivered first-come first-served within each city and item (the allocation's
    cumulative shipments against its cumulative orders). Orders placed too late for the
    window to close inside the horizon are left out. Returns ``by`` columns, ``orders``
    (counted) and ``on_time`` (share).
    """
    if within_weeks < 0:
        raise C2MError(f"service_level: within_weeks must be >= 0, got {within_weeks}")
    keys = [c for c in allocation.columns if c not in {"week", "demand", "shipped", "cumulative_demand",
                                                       "cumulative_shipped", "open_orders"}]
    rows = []
    for group_key, group in allocation.sort("week").group_by(keys, maintain_order=True):
        cum_d = group["cumulative_demand"].to_numpy()
        cum_s = group["cumulative_shipped"].to_numpy()
        W = len(cum_d)
        last = W - within_weeks
        if last <= 0:
            continue
        before = np.concatenate([[0.0], cum_d[:-1]])[:last]
        delivered_by = cum_s[within_weeks : within_weeks + last]
        on_time = np.clip(np.minimum(delivered_by, cum_d[:last]) - before, 0.0, None)
        rows.append({**dict(zip(keys, group_key, strict=True)), "orders": float(cum_d[last - 1]),
                     "on_time_orders": float(on_time.sum())})
    table = pl.DataFrame(rows, schema={**{k: allocation.schema[k] for k in keys}, "orders": pl.Float64,
                                       "on_time_orders": pl.Float64})
    grouped = table.group_by(list(by)).agg(pl.col("orders", "on_time_orders").sum()) if by else table.select(
        pl.col("orders", "on_time_orders").sum()
    )
    return grouped.with_columns(
        on_time=pl.when(pl.col("orders") > 0).then(pl.col("on_time_orders") / pl.col("orders")).otherwise(1.0)
    ).drop("on_time_orders")
