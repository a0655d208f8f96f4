"""Benchmark: swap-station siting at 3,000 stores x 20,000 demand zones, and 1,000,000 simulated swaps.

Siting (``c2m.battery.site_zones``). A seeded synthetic instance: ``--cities`` city centres
in eastern China with Zipf-like sizes; demand zones drawn around each centre (normal, sd 4-12 km
growing with the city's size), each with a lognormal demand in swaps/day; candidate stores put
"on top of" the demand, each at a demand-weighted random zone of its city plus 1 km of jitter.
A zone can be served only by stores within ``--distance-km`` (great circle), so the MILP has one
assignment variable per zone-store pair within reach (the sparsity is printed). Two problems:

* fewest stations (capacity ``--capacity`` swaps/day each, at most ``--max-per-site`` per store)
  serving every reachable zone, one MILP per connected component of the zone-store graph;
* with ``--budget-share`` > 0, most swaps served with a budget of that share of the stations
  found above (one global MILP; off by default, as it is slower still at full size).

``--method`` picks ``site_zones``'s solver: ``auto`` (LP bound, LP rounding and max-flow local search,
HiGHS with the incumbent as a cutoff; per-component figures printed) or ``milp`` (the plain MILP).
HiGHS (``scipy.optimize.milp``) stops at a relative gap of ``--gap``; the script prints the
solver's objective, its dual bound and the certified gap, then re-checks the solution from the raw
coordinates and demands without the solver's model: every assignment within reach (haversine
recomputed), every reachable zone served once (or at most once with a budget), no store above its
stations' capacity, stations integer in [0, K], the budget kept, zones reported unreachable really
have no store within reach (brute force over all 60 M zone-store distances), and the objective
recomputed from the solution.

Swaps (``c2m.battery.simulate_swaps``). One station with ``--swaps-per-day`` swaps/day on the
hourly profile, Poisson arrivals over enough days for ``--swaps`` swaps, a fixed 1 h charge, and
the pack stock sized by the analytic model (``station_stock``, P(no charged pack) <= 5%). The
same arrivals go through the SimPy model and the numba fast path (compiled or loaded from cache
before timing; the compile time is printed apart). Printed side by side: mean wait, P(wait > 0),
P(wait > ``--max-wait``), pack utilisation, time-average queue L_q against lambda x W_q (Little's
law), with their differences and the analytic Erlang C P(wait) for reference.

    python benchmarks/bench_battery.py [--stores 3000 --zones 20000] [--swaps 1000000] [--part siting|swaps]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import polars as pl

from c2m.battery import (
    haversine_km,
    hourly_profile,
    simulate_swaps,
    site_zones,
    station_stock,
    swap_arrivals,
    wait_probability,
)

KM_PER_DEG = 111.195


def make_instance(n_stores: int, n_zones: int, n_cities: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Seeded clustered demand zones around city centres and candidate stores on top of them."""
    rng = np.random.default_rng(seed)
    lat0 = rng.uniform(22.0, 40.0, n_cities)
    lon0 = rng.uniform(104.0, 122.0, n_cities)
    size = 1.0 / np.arange(1, n_cities + 1) ** 0.8  # Zipf-like city sizes
    share = size / size.sum()
    sd_km = 4.0 + 8.0 * np.sqrt(share / share.max())
    zones_per_city = rng.multinomial(n_zones, share)
    stores_per_city = rng.multinomial(n_stores, share)
    city = np.repeat(np.arange(n_cities), zones_per_city)
    dlat = rng.normal(0.0, 1.0, n_zones) * sd_km[city] / KM_PER_DEG
    zlat = lat0[city] + dlat
    zlon = lon0[city] + rng.normal(0.0, 1.0, n_zones) * sd_km[city] / (KM_PER_DEG * np.cos(np.radians(zlat)))
    demand = rng.lognormal(np.log(10.0), 0.8, n_zones)
    zones = pl.DataFrame({"zone_id": [f"Z{i:05d}" for i in range(n_zones)], "lat": zlat, "lon": zlon, "demand": demand})
    s_lat, s_lon = [], []
    starts = np.concatenate([[0], np.cumsum(zones_per_city)])
    for c in range(n_cities):
        idx = np.arange(starts[c], starts[c + 1])
        pick = rng.choice(idx, size=stores_per_city[c], p=demand[idx] / demand[idx].sum())
        la = zlat[pick] + rng.normal(0.0, 1.0, pick.size) / KM_PER_DEG
        s_lat.append(la)
        s_lon.append(zlon[pick] + rng.normal(0.0, 1.0, pick.size) / (KM_PER_DEG * np.cos(np.radians(la))))
    stores = pl.DataFrame(
        {"store_id": [f"S{i:04d}" for i in range(n_stores)], "lat": np.concatenate(s_lat), "lon": np.concatenate(s_lon)}
    )
    return stores, zones


def stores_in_reach(stores: pl.DataFrame, zones: pl.DataFrame, R: float) -> np.ndarray:
    """Brute force, independent of the solver's k-d tree: stores within R km of each zone."""
    slat, slon = stores["lat"].to_numpy(), stores["lon"].to_numpy()
    zlat, zlon = zones["lat"].to_numpy(), zones["lon"].to_numpy()
    out = np.zeros(zones.height, dtype=np.int64)
    for a in range(0, zones.height, 1000):
        d = haversine_km(zlat[a : a + 1000, None], zlon[a : a + 1000, None], slat[None, :], slon[None, :])
        out[a : a + 1000] = (d <= R).sum(axis=1)
    return out


def check_siting(
    res: object, stores: pl.DataFrame, zones: pl.DataFrame, R: float, cap: float, K: int, budget: int | None
) -> dict[str, float]:
    """Feasibility recomputed from the raw data; raises AssertionError on any violation."""
    sites: pl.DataFrame = res.sites  # type: ignore[attr-defined]
    asg: pl.DataFrame = res.assignment  # type: ignore[attr-defined]
    pos_s = stores.select("store_id", pl.col("lat").alias("slat"), pl.col("lon").alias("slon"))
    pos_z = zones.select("zone_id", pl.col("lat").alias("zlat"), pl.col("lon").alias("zlon"), "demand")
    a = asg.join(pos_s, on="store_id").join(pos_z, on="zone_id")
    assert a.height == asg.height
    d = haversine_km(a["zlat"].to_numpy(), a["zlon"].to_numpy(), a["slat"].to_numpy(), a["slon"].to_numpy())
    assert float(d.max(initial=0.0)) <= R + 1e-9, "a zone is served from beyond reach"
    per_zone = a.group_by("zone_id").agg(pl.col("share").sum())
    served = zones.join(per_zone, on="zone_id", how="left").with_columns(pl.col("share").fill_null(0.0))
    reach = stores_in_reach(stores, zones, R)
    reachable = (reach > 0) & (zones["demand"].to_numpy() > 0)
    sh = served["share"].to_numpy()
    assert np.all(sh <= 1 + 1e-6), "a zone is served more than once"
    if budget is None:
        assert np.all(sh[reachable] >= 1 - 1e-6), "a reachable zone is not fully served"
    assert np.all(sh[~reachable] <= 1e-9), "an unreachable zone is served"
    unreachable = float(zones["demand"].to_numpy()[~reachable].sum())
    assert abs(unreachable - res.unreachable_demand) <= 1e-6 * max(unreachable, 1.0)  # type: ignore[attr-defined]
    load = a.group_by("store_id").agg((pl.col("share") * pl.col("demand")).sum().alias("load"))
    s = sites.join(load, on="store_id", how="left").with_columns(pl.col("load").fill_null(0.0))
    k = s["stations"].to_numpy()
    assert np.all((k >= 0) & (k <= K)), "stations outside [0, K]"
    assert np.all(s["load"].to_numpy() <= cap * k * (1 + 1e-6) + 1e-6), "a store serves beyond its capacity"
    if budget is not None:
        assert int(k.sum()) <= budget, "over budget"
    served_swaps = float((a["share"] * a["demand"]).sum())
    W = float(zones["demand"].to_numpy()[reachable].sum())
    objective = float(k.sum()) if budget is None else -served_swaps
    return {
        "stations": float(k.sum()),
        "sites": float((k > 0).sum()),
        "served": served_swaps,
        "reachable": W,
        "unreachable": unreachable,
        "objective": objective,
        "pairs_brute": float(reach.sum()),
        "max_km": float(d.max(initial=0.0)),
        "mean_km": float((d * a["demand"].to_numpy() * a["share"].to_numpy()).sum() / max(served_swaps, 1e-12)),
        "lower_bound_stations": float(np.ceil(W / cap - 1e-9)),
    }


def run_siting(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    stores, zones = make_instance(args.stores, args.zones, args.cities, args.seed)
    t_gen = time.perf_counter() - t0
    R, cap, K = args.distance_km, args.capacity, args.max_per_site
    print(
        f"Siting: {stores.height:,} candidate stores x {zones.height:,} demand zones in {args.cities} cities "
        f"(seed {args.seed}, built in {t_gen:.1f} s); reach {R:g} km, {cap:g} swaps/day per station, "
        f"<= {K} per store, HiGHS mip_rel_gap {args.gap:g}, time limit {args.time_limit:g} s"
    )
    rows = []
    budget: int | None = None
    problems = ["fewest stations, serve all"] + (["most swaps served, budget"] if args.budget_share > 0 else [])
    for label in problems:
        t0 = time.perf_counter()
        res = site_zones(
            stores,
            zones,
            max_distance_km=R,
            budget_stations=budget,
            station_capacity_per_day=cap,
            max_stations_per_site=K,
            mip_rel_gap=args.gap,
            time_limit=args.time_limit,
            method=args.method,
        )
        wall = time.perf_counter() - t0
        chk = check_siting(res, stores, zones, R, cap, K, budget)
        assert abs(chk["objective"] - res.objective) <= 1e-6 * max(abs(res.objective), 1.0), (chk, res.objective)
        rows.append((label if budget is None else f"{label} {budget}", wall, res, chk))
        if budget is None:
            budget = round(args.budget_share * chk["stations"])
            print(
                f"pairs within reach: {res.pairs:,} = {res.pairs / (stores.height * zones.height):.3%} of all "
                f"(brute force: {int(chk['pairs_brute']):,}), {res.pairs / zones.height:.1f} stores per zone; "
                f"{res.components} components; unreachable demand {chk['unreachable']:.0f} of "
                f"{float(zones['demand'].sum()):.0f} swaps/day"
            )
    print(
        f"\n{'problem':42}{'time s':>9}{'target s':>9}{'stations':>9}{'served/day':>12}"
        f"{'objective':>14}{'dual bound':>14}{'gap':>9}{'target':>8}  status"
    )
    for label, wall, res, chk in rows:
        print(
            f"{label:42}{wall:>9.1f}{120:>9}{int(chk['stations']):>9,}{chk['served']:>12,.0f}"
            f"{res.objective:>14.3f}{res.bound:>14.3f}{res.gap:>9.3%}{'1%':>8}  {res.status}"
        )
    pc = rows[0][2].per_component
    if pc.height:
        show = pc.filter((pl.col("gap") > 0) | (pl.col("pairs") >= pc["pairs"].max()))
        print(f"\nfewest stations, per component ({pc.height} in all; those with a gap, and the largest):")
        print(show.with_columns(pl.col("gap").round(4), pl.col("lp_bound", "seconds").round(2)))
        print(
            f"components at their bound: {int((pc['gap'] <= 0).sum())} of {pc.height}; "
            f"sum of ceil(LP) bounds {pc['bound'].sum():.0f}, of LP optima {pc['lp_bound'].sum():.2f}"
        )
    c0 = rows[0][3]
    print(
        f"\nfeasibility recomputed from the raw data: OK (max distance served {c0['max_km']:.3f} km <= {R:g}; "
        f"objective recomputed = solver's); fewest stations {int(c0['stations'])} "
        f"at {int(c0['sites'])} stores >= capacity bound ceil(demand / cap) = {int(c0['lower_bound_stations'])}; "
        f"mean distance to the serving store {c0['mean_km']:.2f} km"
    )
    if len(rows) > 1:
        (_, _, r1, c1) = rows[1]
        print(
            f"budget {budget}: serves {c1['served'] / c1['reachable']:.2%} of the reachable swaps, "
            f"at most {-r1.bound / c1['reachable']:.2%} possible (dual bound)"
        )
    ok = all(wall < 120 and res.gap <= 0.01 for _, wall, res, _ in rows)
    print(f"target (gap <= 1% in < 120 s): {'met' if ok else 'NOT met'}")


def run_swaps(args: argparse.Namespace) -> None:
    lam = args.swaps_per_day * hourly_profile()
    days = int(np.ceil(args.swaps / args.swaps_per_day))
    packs = station_stock(lam, 1.0, 0.05)
    analytic = wait_probability(lam, packs, 1.0)
    times, durations = swap_arrivals(lam, days, 1.0, seed=args.seed)
    n = min(args.swaps, times.size)
    times, durations = times[:n], durations[:n]
    t0 = time.perf_counter()
    simulate_swaps(times[:1000], durations[:1000], packs, warmup_hours=0.0)  # compile or load from cache
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    simp = simulate_swaps(times, durations, packs, max_wait_min=args.max_wait, engine="simpy")
    t_simpy = time.perf_counter() - t0
    fast_times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        fast = simulate_swaps(times, durations, packs, max_wait_min=args.max_wait, engine="numba")
        fast_times.append(time.perf_counter() - t0)
    t_fast = min(fast_times)
    print(
        f"\nSwaps: one station, {args.swaps_per_day:g} swaps/day on the hourly profile, {n:,} swaps over "
        f"{times[-1] / 24:.0f} days (seed {args.seed}), 1 h fixed charge, {packs} packs (analytic P(wait) "
        f"{analytic:.4f} <= 0.05); statistics over swaps after a 48 h warm-up"
    )
    print(f"{'':34}{'SimPy':>14}{'numba':>14}{'difference':>14}")
    print(f"{'time s':34}{t_simpy:>14.2f}{t_fast:>14.4f}{'':>14}   (target SimPy < 15 s)")

    def line(label: str, a: float, b: float, fmt: str = ".6f") -> None:
        print(f"{label:34}{a:>14{fmt}}{b:>14{fmt}}{b - a:>14.2e}")

    line("swaps counted", simp.swaps, fast.swaps, ",.0f")
    line("mean wait min", simp.mean_wait_min, fast.mean_wait_min)
    line("P(wait > 0)", simp.p_wait, fast.p_wait)
    line(f"P(wait > {args.max_wait:g} min)", simp.p_wait_over, fast.p_wait_over)
    line("max wait min", simp.max_wait_min, fast.max_wait_min)
    line("pack utilisation", simp.utilisation, fast.utilisation)
    line("L_q (time-average queue)", simp.mean_queue, fast.mean_queue)
    line("lambda x W_q (Little)", simp.little_lq, fast.little_lq)
    little = [s.mean_queue / s.little_lq - 1 for s in (simp, fast)]
    line("Little: L_q / (lambda W_q) - 1", little[0], little[1], ".2e")
    charge = [s.mean_on_charge / s.arrival_rate_per_hour - 1 for s in (simp, fast)]
    line("on charge: L / (lambda x 1 h) - 1", charge[0], charge[1], ".2e")
    same = np.abs(simp.waits_min - fast.waits_min).max()
    print(f"max |wait SimPy - wait numba| over all {n:,} swaps: {same:.2e} min")
    speedup = t_simpy / t_fast
    print(
        f"numba compile/cache load {t_compile:.2f} s (once per process); speed-up SimPy / numba {speedup:,.0f}x "
        f"(target >= 10x; {speedup * t_fast / (t_fast + t_compile):,.1f}x counting the first call's compile)"
    )
    ok = t_simpy < 15 and speedup >= 10 and same < 1e-6
    print(f"target (SimPy < 15 s, fast path >= 10x, same statistics): {'met' if ok else 'NOT met'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=("all", "siting", "swaps"), default="all")
    ap.add_argument("--stores", type=int, default=3000)
    ap.add_argument("--zones", type=int, default=20000)
    ap.add_argument("--cities", type=int, default=30)
    ap.add_argument("--distance-km", type=float, default=5.0)
    ap.add_argument("--capacity", type=float, default=300.0)
    ap.add_argument("--max-per-site", type=int, default=4)
    ap.add_argument("--gap", type=float, default=0.01)
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--method", choices=("auto", "lp", "milp"), default="auto", help="site_zones method")
    ap.add_argument(
        "--budget-share", type=float, default=0.0, help="> 0: also the budget problem, budget = share x fewest stations"
    )
    ap.add_argument("--swaps", type=int, default=1_000_000)
    ap.add_argument("--swaps-per-day", type=float, default=1000.0)
    ap.add_argument("--max-wait", type=float, default=5.0, help="minutes, for P(wait > X)")
    ap.add_argument("--repeat", type=int, default=3, help="numba runs, best kept")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} cores")
    if args.part in ("all", "siting"):
        run_siting(args)
    if args.part in ("all", "swaps"):
        run_swaps(args)


if __name__ == "__main__":
    main()
