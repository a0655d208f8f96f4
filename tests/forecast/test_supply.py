"""Build plans by configuration with battery-pack supply and changeovers; delivery allocation and service level."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest

from c2m.errors import C2MError
from c2m.forecast import (
    PlanCosts,
    Scenario,
    allocate,
    build_plan,
    drop_level,
    plan_cost,
    ramp_capacity,
    service_level,
    standard_scenarios,
    what_if,
)


def _config_forecast(demand: dict[tuple[str, str, str], list[float]]) -> pl.DataFrame:
    rows = [
        (week + 1, variant, colour, battery, value)
        for (variant, colour, battery), values in demand.items()
        for week, value in enumerate(values)
    ]
    return pl.DataFrame(rows, schema=["week", "variant", "colour", "battery", "demand"], orient="row")


ITEMS = ("variant", "colour", "battery")
DEMAND = {
    ("Standard", "white", "42kWh"): [40, 40, 40, 40, 40, 40],
    ("Standard", "blue", "42kWh"): [10, 10, 10, 10, 10, 10],
    ("Long", "white", "56kWh"): [30, 30, 30, 30, 30, 30],
    ("Long", "grey", "56kWh"): [5, 0, 5, 0, 5, 0],
}


def test_plan_by_configuration_never_uses_more_packs_than_delivered() -> None:
    forecast = _config_forecast(DEMAND)
    supply = {"42kWh": 35.0, "56kWh": [0, 60, 0, 60, 0, 60]}
    plan = build_plan(forecast, capacity_per_week=200, ramp_weeks=0, safety_stock_weeks=0.0,
                      items=ITEMS, pack_column="battery", pack_supply=supply)
    assert set(plan.columns) >= {*ITEMS, "build", "backlog", "inventory"}
    weekly = plan.group_by("week", "battery").agg(pl.col("build").sum()).sort("battery", "week")
    for pack, delivered in (("42kWh", np.full(6, 35.0)), ("56kWh", np.array([0, 60, 0, 60, 0, 60.0]))):
        used = weekly.filter(pl.col("battery") == pack)["build"].to_numpy()
        assert np.all(np.cumsum(used) <= np.cumsum(delivered) + 1e-9), pack  # checked without the solver
    # the 42 kWh cars are short of packs (50 a week wanted, 35 delivered): all packs are used
    assert weekly.filter(pl.col("battery") == "42kWh")["build"].sum() == 6 * 35
    assert plan.filter(pl.col("week") == 6, pl.col("battery") == "42kWh")["backlog"].sum() == pytest.approx(90)
    # the capacity is never exceeded
    assert plan.group_by("week").agg(pl.col("build").sum())["build"].max() <= 200


def test_changeover_cost_batches_small_items_and_is_optimal_by_brute_force() -> None:
    d = np.array([[1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 1.0, 1.0]])
    forecast = pl.DataFrame(
        [(w + 1, f"V{v}", d[v, w]) for v in range(2) for w in range(4)], schema=["week", "variant", "demand"],
        orient="row",
    )
    kwargs = {"capacity_per_week": 4, "ramp_weeks": 0, "safety_stock_weeks": 0.0}
    plain = build_plan(forecast, **kwargs)
    batched = build_plan(forecast, changeover_cost=8.0, **kwargs)
    set_ups = lambda plan: int((plan["build"] > 0).sum())  # noqa: E731
    assert set_ups(batched) < set_ups(plain)
    x = np.zeros((2, 4))
    for row in batched.iter_rows(named=True):
        x[int(row["variant"][1:]), row["week"] - 1] = row["build"]
    got = plan_cost(x, d, 0.0, PlanCosts(), changeover_cost=8.0)
    cap = ramp_capacity(4, 0, 4)
    best = np.inf
    for combo in itertools.product(*[[(a, b) for a in range(c + 1) for b in range(c + 1 - a)] for c in cap]):
        best = min(best, plan_cost(np.array(combo, dtype=float).T, d, 0.0, PlanCosts(), changeover_cost=8.0))
    assert got == pytest.approx(best, rel=1e-6)


@pytest.mark.parametrize(("capacity", "ss", "changeover"), [(3, 1.0, 8.0), (4, 1.0, 3.0), (3, 0.0, 20.0)])
def test_changeover_plan_with_backlog_and_safety_stock_is_optimal_by_brute_force(
    capacity: int, ss: float, changeover: float
) -> None:
    # short capacity (backlog) and a safety stock: the lot-sizing cuts' stock and backlog terms matter
    d = np.array([[1.0, 2.0, 0.0, 2.0], [2.0, 1.0, 2.0, 1.0]])
    forecast = pl.DataFrame(
        [(w + 1, f"V{v}", d[v, w]) for v in range(2) for w in range(4)], schema=["week", "variant", "demand"],
        orient="row",
    )
    plan = build_plan(forecast, capacity_per_week=capacity, ramp_weeks=0, safety_stock_weeks=ss,
                      changeover_cost=changeover)
    x = np.zeros((2, 4))
    for row in plan.iter_rows(named=True):
        x[int(row["variant"][1:]), row["week"] - 1] = row["build"]
    got = plan_cost(x, d, ss, PlanCosts(), changeover_cost=changeover)
    per_week = [(a, b) for a in range(capacity + 1) for b in range(capacity + 1 - a)]
    best = min(
        plan_cost(np.array(combo, dtype=float).T, d, ss, PlanCosts(), changeover_cost=changeover)
        for combo in itertools.product(per_week, repeat=4)
    )
    assert got == pytest.approx(best, rel=1e-6)


def test_bad_pack_supply_is_named() -> None:
    forecast = _config_forecast(DEMAND)
    with pytest.raises(C2MError, match="no supply for pack type"):
        build_plan(forecast, items=ITEMS, pack_column="battery", pack_supply={"42kWh": 10})
    with pytest.raises(C2MError, match="one per week"):
        build_plan(forecast, items=ITEMS, pack_column="battery", pack_supply={"42kWh": [1, 2], "56kWh": 5})
    with pytest.raises(C2MError, match="go together"):
        build_plan(forecast, items=ITEMS, pack_supply={"42kWh": 10})
    with pytest.raises(C2MError, match="missing column"):
        build_plan(forecast, items=("variant", "trim"))


def _city_demand() -> pl.DataFrame:
    rng = np.random.default_rng(3)
    rows = [
        (w + 1, variant, city, float(rng.integers(0, 9)))
        for variant in ("A", "B")
        for city in ("Shanghai", "Beijing", "Haikou")
        for w in range(10)
    ]
    return pl.DataFrame(rows, schema=["week", "variant", "city", "demand"], orient="row")


def test_allocation_ships_only_what_was_built_and_ordered_oldest_orders_first() -> None:
    demand = _city_demand()
    totals = demand.group_by("week", "variant").agg(pl.col("demand").sum())
    plan = build_plan(totals, capacity_per_week=14, ramp_weeks=3, safety_stock_weeks=0.0)
    costs = {"Shanghai": 100.0, "Beijing": 300.0, "Haikou": 900.0}
    alloc = allocate(plan, demand, transport_cost=costs)
    # independent checks: never more shipped than built (cumulatively, per variant), nor than ordered
    built = plan.sort("week").with_columns(cum=pl.col("build").cum_sum().over("variant"))
    shipped = alloc.group_by("week", "variant").agg(pl.col("shipped").sum()).sort("week").with_columns(
        cum=pl.col("shipped").cum_sum().over("variant")
    )
    joined = shipped.join(built, on=["week", "variant"])
    assert (joined["cum"] <= joined["cum_right"] + 1e-9).all()
    assert (alloc["cumulative_shipped"] <= alloc["cumulative_demand"] + 1e-9).all()
    assert (alloc["shipped"] == alloc["shipped"].round()).all()
    # no car waits at the plant while an order for it is open
    stock = joined.with_columns(stock=pl.col("cum_right") - pl.col("cum"))
    open_orders = alloc.group_by("week", "variant").agg(pl.col("open_orders").sum())
    both = stock.join(open_orders, on=["week", "variant"])
    assert ((both["stock"] < 1e-9) | (both["open_orders"] < 1e-9)).all()
    # first come, first served: an order is never delivered while an older one of the same variant waits
    for variant in ("A", "B"):
        rows = alloc.filter(pl.col("variant") == variant)
        for week in range(1, 11):
            this = rows.filter(pl.col("week") == week)
            if this["shipped"].sum() == 0:
                continue
            # orders placed before `week - k` still open at `week` must be older than anything served
            oldest_open = _oldest_open_order_week(rows, week)
            newest_served = _newest_served_order_week(rows, week)
            assert oldest_open is None or newest_served is None or newest_served <= oldest_open


def _cohorts(rows: pl.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {
        city: (g.sort("week")["cumulative_demand"].to_numpy(), g.sort("week")["cumulative_shipped"].to_numpy())
        for (city,), g in rows.group_by("city")
    }


def _oldest_open_order_week(rows: pl.DataFrame, week: int) -> int | None:
    found = []
    for cum_d, cum_s in _cohorts(rows).values():
        open_at = cum_s[week - 1]
        waiting = np.flatnonzero(cum_d > open_at + 1e-9)
        if waiting.size and waiting[0] < week:
            found.append(int(waiting[0]) + 1)
    return min(found) if found else None


def _newest_served_order_week(rows: pl.DataFrame, week: int) -> int | None:
    found = []
    for cum_d, cum_s in _cohorts(rows).values():
        before = cum_s[week - 2] if week >= 2 else 0.0
        if cum_s[week - 1] > before + 1e-9:
            found.append(int(np.flatnonzero(cum_d >= cum_s[week - 1] - 1e-9)[0]) + 1)
    return max(found) if found else None


def test_service_level_counts_orders_delivered_in_time() -> None:
    plan = pl.DataFrame({"week": [1, 2, 3, 4], "variant": ["A"] * 4, "build": [0, 10, 0, 10]})
    demand = pl.DataFrame({"week": [1, 2, 3, 4], "variant": ["A"] * 4, "city": ["X"] * 4, "demand": [10.0, 0, 10, 0]})
    alloc = allocate(plan, demand)
    assert alloc["shipped"].to_list() == [0, 10, 0, 10]
    # week-1 orders arrive in week 2 (1 week late), week-3 orders in week 4
    assert service_level(alloc, within_weeks=0)["on_time"].item() == 0.0
    assert service_level(alloc, within_weeks=1)["on_time"].item() == 1.0
    by_city = service_level(alloc, within_weeks=1, by=["city"])
    assert by_city["city"].to_list() == ["X"] and by_city["orders"].item() == 20


def test_allocation_errors_are_named() -> None:
    plan = pl.DataFrame({"week": [1], "variant": ["A"], "build": [3]})
    with pytest.raises(C2MError, match="never builds"):
        allocate(plan, pl.DataFrame({"week": [1], "variant": ["Z"], "city": ["X"], "demand": [1.0]}))
    with pytest.raises(C2MError, match="no cost for city"):
        allocate(plan, pl.DataFrame({"week": [1], "variant": ["A"], "city": ["X"], "demand": [1.0]}),
                 transport_cost={"Y": 1.0})
    with pytest.raises(C2MError, match="missing column"):
        allocate(plan.drop("build"), pl.DataFrame({"week": [1], "variant": ["A"], "city": ["X"], "demand": [1.0]}))


def test_plan_command_with_packs_and_allocation(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import run_c2m

    demand = _city_demand().with_columns(battery=pl.when(pl.col("variant") == "A").then(pl.lit("42kWh"))
                                         .otherwise(pl.lit("56kWh")))
    demand.write_csv(tmp_path / "forecast.csv")
    result = run_c2m("plan", "--forecast", "forecast.csv", "--items", "variant,battery", "--capacity", "20",
                     "--ramp-weeks", "0", "--pack-supply", "42kWh=8,56kWh=100", "--allocate", "--what-if",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    plan = pl.read_csv(tmp_path / "build_plan.csv")
    assert plan.filter(pl.col("battery") == "42kWh")["build"].max() <= 8 * 10
    assert np.all(np.cumsum(plan.filter(pl.col("battery") == "42kWh").sort("week")["build"].to_numpy())
                  <= 8 * np.arange(1, 11))
    allocation = pl.read_csv(tmp_path / "allocation.csv")
    assert allocation["shipped"].sum() <= plan["build"].sum()
    assert "delivered within 4 week(s)" in result.stdout
    scenarios = pl.read_csv(tmp_path / "what_if.csv")
    assert scenarios["scenario"].to_list() == ["base", "capacity +20%", "56kWh packs -50%"]
    assert scenarios["built"][0] == plan["build"].sum()
    bad = run_c2m("plan", "--forecast", "forecast.csv", "--pack-supply", "42kWh=lots", cwd=tmp_path)
    assert bad.returncode == 2 and "--pack-supply" in bad.stderr


def _colour_forecast() -> pl.DataFrame:
    rng = np.random.default_rng(5)
    rows = [
        (w + 1, variant, colour, battery, city, float(rng.integers(0, 6)) * weight)
        for variant, battery in (("Standard", "42kWh"), ("Long", "56kWh"))
        for colour, weight in (("white", 3.0), ("blue", 1.0), ("grey", 0.3))
        for city in ("Shanghai", "Haikou")
        for w in range(8)
    ]
    return pl.DataFrame(rows, schema=["week", *ITEMS, "city", "demand"], orient="row")


def test_dropping_a_colour_moves_its_buyers_and_keeps_the_total() -> None:
    forecast = _colour_forecast()
    dropped = drop_level(forecast, "colour", "grey", ITEMS)
    assert "grey" not in dropped["colour"].to_list()
    cell = ["week", "variant", "battery", "city"]
    before = forecast.group_by(cell).agg(pl.col("demand").sum()).sort(cell)
    after = dropped.group_by(cell).agg(pl.col("demand").sum()).sort(cell)
    np.testing.assert_allclose(after["demand"], before["demand"])
    # the others gain in proportion to their own demand: white/blue ratios are unchanged
    def wide(table: pl.DataFrame) -> pl.DataFrame:
        return table.filter(pl.col("colour") != "grey").pivot("colour", index=cell, values="demand").sort(cell)
    old, new = wide(forecast), wide(dropped)
    sold = (old["white"] + old["blue"] > 0).to_numpy()
    cross = (new["white"] * old["blue"]).to_numpy(), (new["blue"] * old["white"]).to_numpy()
    np.testing.assert_allclose(cross[0][sold], cross[1][sold])
    assert (new["white"] == new["blue"]).to_numpy()[~sold].all()  # nothing sold there: an even split
    with pytest.raises(C2MError, match="no level 'pink'"):
        drop_level(forecast, "colour", "pink", ITEMS)


def test_what_if_scenarios_agree_with_planning_them_directly() -> None:
    forecast = _colour_forecast()
    supply = {"42kWh": 30.0, "56kWh": 30.0}
    options = {"ramp_weeks": 0, "safety_stock_weeks": 0.0}
    scenarios = standard_scenarios(forecast, ITEMS, pack_column="battery")
    assert [s.name for s in scenarios][:2] == ["base", "capacity +20%"] and len(scenarios) == 4
    result = what_if(forecast, scenarios, items=ITEMS, capacity_per_week=40, pack_column="battery",
                     pack_supply=supply, **options)
    assert result["scenario"].to_list() == [s.name for s in scenarios]
    base = result.row(0, named=True)
    more = result.row(1, named=True)
    assert more["built"] >= base["built"] and more["on_time"] >= base["on_time"]
    assert more["backlog_end"] <= base["backlog_end"] + 1e-9
    # the shortage scenario is the plan with half the packs, planned directly
    shortage = scenarios[3]
    pack = next(iter(shortage.pack_factor))
    direct = build_plan(forecast, capacity_per_week=40, items=ITEMS, pack_column="battery",
                        pack_supply={**supply, pack: supply[pack] / 2}, **options)
    assert result.row(3, named=True)["built"] == direct["build"].sum() <= base["built"]
    # dropping a colour keeps the demand
    assert result.row(2, named=True)["demand"] == pytest.approx(base["demand"])
    with pytest.raises(C2MError, match="needs pack_supply"):
        what_if(forecast, [Scenario("x", pack_factor={"42kWh": 0.5})], items=ITEMS)
