"""Where to put swap stations: capacitated facility location over the project's stores.

Demand points are the stores' catchments (a city's swaps split over its stores, equally or
by kind); candidate sites are the same stores. ``k_i`` stations (integer, at most
``max_stations_per_site``) open at store ``i``, each serving ``station_capacity_per_day``
swaps; ``y_ij`` is the share of point ``j``'s swaps served at ``i``, allowed only when the
haversine distance ``d_ij <= max_distance_km``:

    minimise   sum_i k_i + eps * sum_ij d_ij w_j y_ij / (R W)      (eps = 0.5 < one station)
    subject to sum_i y_ij = 1                   every point with demand is served
               sum_j w_j y_ij <= cap * k_i      capacity
               y_ij <= k_i                      serve only from open sites
               k integer in [0, K], 0 <= y <= 1

The distance term only breaks ties between plans with the fewest stations. The problem splits
exactly into the connected components of the "within max distance" graph, solved one by one
with ``scipy.optimize.milp`` (HiGHS); the MIP gap of each is reported. With
``budget_stations`` the points may go unserved (``u_j``): first the served swaps are maximised
under the budget, then the stations minimised at that coverage (one global MILP each).
``method="greedy"`` opens, one at a time, the station that absorbs the most unserved swaps
and reports its gap against the LP relaxation bound.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl
from numpy.typing import ArrayLike
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array, csr_array
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from c2m._quiet import quiet_stdout
from c2m.domain import Project
from c2m.errors import C2MError

from ._geo import EARTH_RADIUS_KM, distance_matrix_km
from ._queue import erlang_c, hourly_profile
from ._siting_lp import assign, fewest_stations

Method = Literal["milp", "greedy"]
ZoneMethod = Literal["auto", "milp", "lp"]
KIND_WEIGHTS = {"own": 1.0, "partner": 0.5}
SWAP_MINUTES = 2.0  # a ~99 s swap plus ~20 s to drive in and out of the lane
_EPS = 0.5


@dataclass
class _Solution:
    k: np.ndarray  # stations per site
    y: dict[tuple[int, int], float]  # (site, point) -> share of the point's swaps
    gap: np.ndarray  # per site: gap of the problem it was solved in


def lanes_needed(arrivals_per_hour: np.ndarray, target: float = 0.2, minimum: int = 1) -> int:
    """Smallest number of swap lanes so the arrival-weighted ``P(wait for a lane) <= target``.

    Each lane is an M/M/c server with a ``SWAP_MINUTES`` service; hourly Erlang C.
    """
    lam = np.asarray(arrivals_per_hour, dtype=float)
    if lam.sum() <= 0:
        return 0
    load = lam * SWAP_MINUTES / 60.0
    lanes = max(minimum, 1)
    while True:
        p = float(np.sum(lam * erlang_c(lanes, load)) / lam.sum())
        if p <= target:
            return lanes
        lanes += 1


def lane_wait_probability(arrivals_per_hour: np.ndarray, lanes: int) -> float:
    """Arrival-weighted probability that a driver waits for a free lane."""
    lam = np.asarray(arrivals_per_hour, dtype=float)
    if lam.sum() <= 0:
        return 0.0
    return float(np.sum(lam * erlang_c(lanes, lam * SWAP_MINUTES / 60.0)) / lam.sum())


def store_demand(project: Project, demand: pl.DataFrame, split: str = "equal") -> pl.DataFrame:
    """A city's daily swaps split over its stores: one row per store with its ``demand``."""
    for col in ("city", "swaps_per_day"):
        if col not in demand.columns:
            raise C2MError(f"site_stations: demand is missing column {col!r}; found {demand.columns}")
    if split not in ("equal", "kind"):
        raise C2MError(f"site_stations: split must be 'equal' or 'kind', got {split!r}")
    if not project.stores:
        raise C2MError(f"project {project.name!r}: no stores to site swap stations at")
    stores = pl.DataFrame(
        {
            "store_id": [s.id for s in project.stores],
            "city": [s.city for s in project.stores],
            "lat": [s.lat for s in project.stores],
            "lon": [s.lon for s in project.stores],
            "kind": [s.kind for s in project.stores],
        }
    )
    per_city = demand.group_by(pl.col("city").cast(pl.String)).agg(
        pl.col("swaps_per_day").cast(pl.Float64).sum()
    )
    no_store = sorted(set(per_city.filter(pl.col("swaps_per_day") > 0)["city"]) - set(stores["city"]))
    if no_store:
        raise C2MError(f"site_stations: no store in city/cities {no_store}; add stores to the project file")
    weight = pl.col("kind").replace_strict(KIND_WEIGHTS, default=1.0) if split == "kind" else pl.lit(1.0)
    return (
        stores.with_columns(weight.cast(pl.Float64).alias("_w"))
        .join(per_city, on="city", how="left")
        .with_columns(
            (pl.col("swaps_per_day").fill_null(0.0) * pl.col("_w") / pl.col("_w").sum().over("city")).alias(
                "demand"
            )
        )
        .drop("_w", "swaps_per_day")
    )


def site_stations(
    project: Project,
    demand: pl.DataFrame,
    max_distance_km: float = 5.0,
    budget_stations: int | None = None,
    station_capacity_per_day: float = 300,
    method: Method = "milp",
    split: str = "equal",
    max_stations_per_site: int = 4,
    lane_wait_prob: float = 0.2,
    time_limit: float = 60.0,
) -> pl.DataFrame:
    """Open the fewest swap stations at stores so every store's swaps are served nearby.

    ``demand`` has ``city`` and ``swaps_per_day`` (e.g. from ``swap_demand``). Returns one row
    per store: ``store_id``, ``city``, ``lat``, ``lon``, ``kind``, ``station`` (Boolean),
    ``stations`` (stations at the store), ``lanes``, ``demand_swaps_per_day`` (its catchment),
    ``swaps_per_day`` (served at this store), ``peak_swaps_per_hour``, ``served_by`` (store
    serving most of this catchment), ``distance_to_station_km`` (farthest station serving it),
    ``served_share``, ``mip_gap`` and ``method``.
    """
    if max_distance_km < 0 or station_capacity_per_day <= 0 or max_stations_per_site < 1:
        raise C2MError(
            "site_stations: need max_distance_km >= 0, station_capacity_per_day > 0 "
            "and max_stations_per_site >= 1"
        )
    if budget_stations is not None and budget_stations < 0:
        raise C2MError(f"site_stations: budget_stations must be >= 0, got {budget_stations}")
    if method not in ("milp", "greedy"):
        raise C2MError(f"site_stations: method must be 'milp' or 'greedy', got {method!r}")
    points = store_demand(project, demand, split)
    w = points["demand"].to_numpy()
    dist = distance_matrix_km(points["lat"].to_numpy(), points["lon"].to_numpy())
    cap, K = float(station_capacity_per_day), int(max_stations_per_site)
    n = points.height
    k = np.zeros(n, dtype=np.int64)
    y: dict[tuple[int, int], float] = {}
    gap = np.full(n, np.nan)
    if budget_stations is None:
        _, labels = connected_components(csr_array(dist <= max_distance_km), directed=False)
        for comp in np.unique(labels):
            idx = np.nonzero(labels == comp)[0]
            if w[idx].sum() <= 0:
                continue
            if w[idx].sum() > cap * K * idx.size + 1e-9:
                first = points["store_id"][int(idx[0])]
                raise C2MError(
                    f"site_stations: {w[idx].sum():.0f} swaps/day around store {first} "
                    f"exceed {K} stations x {cap:.0f} swaps/day at each of its {idx.size} store(s); raise "
                    "station_capacity_per_day or max_stations_per_site"
                )
            sol = _solve(idx, w, dist, max_distance_km, cap, K, None, method, time_limit)
            _merge(sol, idx, k, y, gap)
    else:
        idx = np.arange(n)
        sol = _solve(idx, w, dist, max_distance_km, cap, K, int(budget_stations), method, time_limit)
        _merge(sol, idx, k, y, gap)
    return _table(points, dist, k, y, gap, method, lane_wait_prob)


def _merge(
    sol: _Solution, idx: np.ndarray, k: np.ndarray, y: dict[tuple[int, int], float], gap: np.ndarray
) -> None:
    k[idx] = sol.k
    gap[idx] = sol.gap
    for (i, j), v in sol.y.items():
        y[(int(idx[i]), int(idx[j]))] = v


def _solve(
    idx: np.ndarray,
    w_all: np.ndarray,
    dist_all: np.ndarray,
    R: float,
    cap: float,
    K: int,
    budget: int | None,
    method: str,
    time_limit: float,
) -> _Solution:
    w = w_all[idx]
    d = dist_all[np.ix_(idx, idx)]
    if method == "greedy":
        return _greedy(w, d, R, cap, K, budget)
    return _milp(w, d, R, cap, K, budget, time_limit)


def _pairs(w: np.ndarray, d: np.ndarray, R: float) -> tuple[np.ndarray, np.ndarray]:
    ii, jj = np.nonzero(d <= R)
    keep = w[jj] > 0
    return ii[keep], jj[keep]


def _model(
    w: np.ndarray, d: np.ndarray, R: float, cap: float, K: int, budget: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int, list[LinearConstraint], Bounds, np.ndarray]:
    """Variables ``[k (n), y (pairs), u (points, only with a budget)]`` and constraints."""
    n = w.size
    ii, jj = _pairs(w, d, R)
    P = ii.size
    pts = np.nonzero(w > 0)[0]
    n_u = pts.size if budget is not None else 0
    nv = n + P + n_u
    pos = {int(j): r for r, j in enumerate(pts)}
    rows_j = np.array([pos[int(j)] for j in jj], dtype=np.int64)
    # assignment: sum_i y_ij + u_j = 1
    A_rows = [rows_j, np.arange(n_u)]
    A_cols = [n + np.arange(P), n + P + np.arange(n_u)]
    A = coo_array(
        (np.ones(P + n_u), (np.concatenate(A_rows), np.concatenate(A_cols))), shape=(pts.size, nv)
    ).tocsr()
    cons = [LinearConstraint(A, 1.0, 1.0)]
    # capacity: sum_j w_j y_ij - cap k_i <= 0
    C = coo_array(
        (
            np.concatenate([w[jj], np.full(n, -cap)]),
            (np.concatenate([ii, np.arange(n)]), np.concatenate([n + np.arange(P), np.arange(n)])),
        ),
        shape=(n, nv),
    ).tocsr()
    cons.append(LinearConstraint(C, -np.inf, 0.0))
    # linking: y_ij - k_i <= 0
    L = coo_array(
        (
            np.concatenate([np.ones(P), -np.ones(P)]),
            (np.concatenate([np.arange(P), np.arange(P)]), np.concatenate([n + np.arange(P), ii])),
        ),
        shape=(P, nv),
    ).tocsr()
    cons.append(LinearConstraint(L, -np.inf, 0.0))
    if budget is not None:
        cons.append(LinearConstraint(np.concatenate([np.ones(n), np.zeros(P + n_u)])[None, :], 0.0, budget))
    bounds = Bounds(np.zeros(nv), np.concatenate([np.full(n, float(K)), np.ones(P + n_u)]))
    integrality = np.concatenate([np.ones(n), np.zeros(P + n_u)])
    return ii, jj, pts, P, n_u, cons, bounds, integrality


def _objective(
    w: np.ndarray, d: np.ndarray, R: float, ii: np.ndarray, jj: np.ndarray, n_u: int
) -> np.ndarray:
    W = max(w.sum(), 1e-12)
    tie = _EPS * d[ii, jj] * w[jj] / (max(R, 1e-9) * W)
    return np.concatenate([np.ones(w.size), tie, np.zeros(n_u)])


def _milp(
    w: np.ndarray, d: np.ndarray, R: float, cap: float, K: int, budget: int | None, time_limit: float
) -> _Solution:
    n = w.size
    ii, jj, pts, P, n_u, cons, bounds, integ = _model(w, d, R, cap, K, budget)
    c = _objective(w, d, R, ii, jj, n_u)
    opts = {"time_limit": time_limit, "mip_rel_gap": 1e-6}
    if budget is not None:
        # phase 1: serve as many swaps as the budget allows
        c1 = np.concatenate([np.zeros(n + P), w[pts]])
        with quiet_stdout():
            r1 = milp(c1, constraints=cons, integrality=integ, bounds=bounds, options=opts)
        if r1.x is None:
            raise C2MError(f"site_stations: the solver failed ({r1.message})")
        tol = 1e-7 * max(w.sum(), 1.0)
        cons = [*cons, LinearConstraint(c1[None, :], -np.inf, float(r1.fun) + tol)]
    with quiet_stdout():
        res = milp(c, constraints=cons, integrality=integ, bounds=bounds, options=opts)
    if res.x is None:
        raise C2MError(
            f"site_stations: no feasible siting ({res.message}); some store may be farther than "
            "max_distance_km from any store able to serve it"
        )
    k = np.round(res.x[:n]).astype(np.int64)
    yv = res.x[n : n + P]
    y = {(int(i), int(j)): float(v) for i, j, v in zip(ii, jj, yv, strict=True) if v > 1e-9}
    gap = float(getattr(res, "mip_gap", 0.0) or 0.0)
    return _Solution(k, y, np.full(n, gap))


def _greedy(w: np.ndarray, d: np.ndarray, R: float, cap: float, K: int, budget: int | None) -> _Solution:
    """Open one station at a time where it absorbs the most unserved swaps; nearest points first."""
    n = w.size
    rem = w.astype(float).copy()
    k = np.zeros(n, dtype=np.int64)
    y: dict[tuple[int, int], float] = {}
    reach = d <= R
    limit = budget if budget is not None else n * K
    while rem.sum() > 1e-9 and k.sum() < limit:
        reachable = (reach * rem[None, :]).sum(axis=1)
        gain = np.where(k < K, np.minimum(cap, reachable), -1.0)
        i = int(np.argmax(gain))
        if gain[i] <= 1e-12:
            break
        k[i] += 1
        free = cap
        for j in np.argsort(d[i]):
            if not reach[i, j] or rem[j] <= 0:
                continue
            take = min(free, rem[j])
            y[(i, int(j))] = y.get((i, int(j)), 0.0) + take / w[j]
            rem[j] -= take
            free -= take
            if free <= 1e-12:
                break
    if budget is None and rem.sum() > 1e-6:
        raise C2MError("site_stations: greedy could not serve every store within max_distance_km")
    # gap against the LP relaxation of the same model
    ii, jj, _pts, _P, n_u, cons, bounds, _ = _model(w, d, R, cap, K, budget)
    if budget is None:
        with quiet_stdout():
            lp = milp(_objective(w, d, R, ii, jj, n_u), constraints=cons, bounds=bounds)
        obj = float(k.sum()) + float(
            sum(_EPS * d[i, j] * w[j] * v for (i, j), v in y.items()) / (max(R, 1e-9) * max(w.sum(), 1e-12))
        )
        gap = (obj - float(lp.fun)) / obj if lp.x is not None and obj > 0 else np.nan
    else:
        gap = np.nan
    return _Solution(k, y, np.full(n, max(gap, 0.0) if np.isfinite(gap) else np.nan))


def _table(
    points: pl.DataFrame,
    dist: np.ndarray,
    k: np.ndarray,
    y: dict[tuple[int, int], float],
    gap: np.ndarray,
    method: str,
    lane_wait_prob: float,
) -> pl.DataFrame:
    n = points.height
    w = points["demand"].to_numpy()
    ids = points["store_id"].to_list()
    load = np.zeros(n)
    served = np.zeros(n)
    best: list[tuple[float, int]] = [(0.0, -1)] * n
    far = np.full(n, np.nan)
    for (i, j), v in y.items():
        load[i] += w[j] * v
        served[j] += v
        if v > best[j][0]:
            best[j] = (v, i)
        far[j] = dist[i, j] if np.isnan(far[j]) else max(far[j], dist[i, j])
    profile = hourly_profile()
    lanes = np.array(
        [lanes_needed(load[i] * profile, lane_wait_prob, int(k[i])) if k[i] > 0 else 0 for i in range(n)]
    )
    return points.select("store_id", "city", "lat", "lon", "kind").with_columns(
        pl.Series("station", k > 0),
        pl.Series("stations", k, dtype=pl.Int64),
        pl.Series("lanes", lanes, dtype=pl.Int64),
        pl.Series("demand_swaps_per_day", w),
        pl.Series("swaps_per_day", load),
        pl.Series("peak_swaps_per_hour", load * float(profile.max())),
        pl.Series("served_by", [ids[b[1]] if b[1] >= 0 else None for b in best], dtype=pl.String),
        pl.Series("distance_to_station_km", far),
        pl.Series("served_share", np.minimum(served, 1.0)),
        pl.Series("mip_gap", gap),
        pl.lit(method).alias("method"),
    )


@dataclass
class ZoneSiting:
    """Stations at candidate stores serving separate demand zones (see :func:`site_zones`)."""

    sites: pl.DataFrame  # store_id, lat, lon, stations, swaps_per_day
    assignment: pl.DataFrame  # zone_id, store_id, share, swaps_per_day, distance_km
    objective: float  # stations (or minus the swaps served, with a budget), summed over the components
    bound: float  # ... and the solver's dual (lower) bounds
    gap: float  # (objective - bound) / |objective|: the certified relative gap
    pairs: int  # zone-store pairs within max_distance_km (the MILP's assignment variables)
    components: int  # independent sub-problems solved
    unreachable_demand: float  # swaps/day of zones with no candidate store within reach
    status: str  # "optimal" (within mip_rel_gap) or the solver's message where one stopped early
    per_component: pl.DataFrame = field(default_factory=pl.DataFrame)  # one row per sub-problem


def zone_pairs(
    zone_lat: ArrayLike, zone_lon: ArrayLike, site_lat: ArrayLike, site_lon: ArrayLike, max_distance_km: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(site, zone, km) for every site-zone pair within ``max_distance_km`` (great circle), sparse.

    A k-d tree on unit-sphere coordinates finds the pairs with chord ``<= 2 sin(D / 2R)``; the chord
    gives the great-circle distance exactly (``2R asin(chord / 2)``, the haversine distance).
    """

    def xyz(lat: ArrayLike, lon: ArrayLike) -> np.ndarray:
        phi, lmb = np.radians(np.asarray(lat, dtype=float)), np.radians(np.asarray(lon, dtype=float))
        return np.column_stack([np.cos(phi) * np.cos(lmb), np.cos(phi) * np.sin(lmb), np.sin(phi)])

    chord = 2.0 * np.sin(min(max_distance_km / EARTH_RADIUS_KM, np.pi) / 2.0)
    m = cKDTree(xyz(site_lat, site_lon)).sparse_distance_matrix(
        cKDTree(xyz(zone_lat, zone_lon)), chord * (1 + 1e-12), output_type="coo_matrix"
    )
    km = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(m.data / 2.0, 0.0, 1.0))
    ii, jj = m.row.astype(np.int64), m.col.astype(np.int64)
    # sparse_distance_matrix drops zero distances (a zone on top of a store): add them back
    z = cKDTree(xyz(site_lat, site_lon)).query_ball_tree(cKDTree(xyz(zone_lat, zone_lon)), 1e-12)
    zi = np.repeat(np.arange(len(z)), [len(v) for v in z])
    zj = np.asarray([j for v in z for j in v], dtype=np.int64)
    ii, jj, km = np.concatenate([ii, zi]), np.concatenate([jj, zj]), np.concatenate([km, np.zeros(zi.size)])
    keep = km <= max_distance_km
    ii, jj, km = ii[keep], jj[keep], km[keep]
    order = np.lexsort((ii, jj))
    ii, jj, km = ii[order], jj[order], km[order]
    first = np.ones(ii.size, dtype=bool)
    first[1:] = (ii[1:] != ii[:-1]) | (jj[1:] != jj[:-1])  # the zero-distance pass may repeat a pair
    return ii[first], jj[first], km[first]


def site_zones(
    stores: pl.DataFrame,
    zones: pl.DataFrame,
    max_distance_km: float = 5.0,
    budget_stations: int | None = None,
    station_capacity_per_day: float = 300,
    max_stations_per_site: int = 4,
    mip_rel_gap: float = 1e-4,
    time_limit: float = 120.0,
    method: ZoneMethod = "auto",
) -> ZoneSiting:
    """Stations at candidate stores (``store_id``, ``lat``, ``lon``) for demand zones (``zone_id``, ``lat``,
    ``lon``, ``demand`` in swaps/day): the model of :func:`site_stations` with zones as the demand points.

    Zone-store pairs farther than ``max_distance_km`` are never built (sparse, see :func:`zone_pairs`).
    Without a budget, every reachable zone is served with the fewest stations, one MILP per connected
    component of the zone-store graph; with ``budget_stations`` the swaps served are maximised under
    the budget (one global MILP). HiGHS stops at ``mip_rel_gap``; ``objective`` (stations, or minus the
    swaps served), ``bound`` (the summed dual bounds) and the certified ``gap`` are phase 1's. Phase 2
    fixes the stations and solves the transport LP with the least swap-weighted distance at the same
    service, which gives the ``assignment``. Zones with no store in reach are left out and reported.

    ``method="lp"`` (the default ``"auto"`` without a budget) solves each component's fewest-stations
    problem with :func:`c2m.battery._siting_lp.fewest_stations` instead: ``ceil`` of the LP relaxation
    as the bound, LP rounding plus max-flow-checked local search for the plan, and HiGHS with that
    plan as a cutoff while time is left. ``"milp"`` is the plain MILP (always used with a budget).
    The time left is shared over the components by their number of pairs, smallest first.
    ``per_component`` has, per component: ``stores``, ``zones``, ``pairs``, ``objective``,
    ``bound``, ``gap``, ``lp_bound`` (the LP's optimum, lp only) and ``seconds``.
    """
    for name, df, cols in (("stores", stores, ("store_id", "lat", "lon")), ("zones", zones, _ZONE_COLS)):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise C2MError(f"site_zones: {name} is missing column(s) {missing}; found {df.columns}")
        bad = df.select(pl.col("lat", "lon").is_null().any() | pl.col("lat", "lon").is_nan().any()).row(0)
        if any(bad):
            raise C2MError(f"site_zones: {name} has rows without coordinates (lat/lon null or NaN)")
    deadline = time.perf_counter() + time_limit
    w = zones["demand"].cast(pl.Float64).to_numpy()
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise C2MError("site_zones: zone demand must be finite and >= 0")
    if max_distance_km < 0 or station_capacity_per_day <= 0 or max_stations_per_site < 1:
        raise C2MError(
            "site_zones: need max_distance_km >= 0, station_capacity_per_day > 0, max_stations_per_site >= 1"
        )
    if budget_stations is not None and budget_stations < 0:
        raise C2MError(f"site_zones: budget_stations must be >= 0, got {budget_stations}")
    if method not in ("auto", "milp", "lp"):
        raise C2MError(f"site_zones: method must be 'auto', 'milp' or 'lp', got {method!r}")
    if method == "lp" and budget_stations is not None:
        raise C2MError("site_zones: method='lp' solves the fewest-stations problem only; use 'milp' with a budget")
    use_lp = method == "lp" or (method == "auto" and budget_stations is None)
    cap, K, n_s, n_z = float(station_capacity_per_day), int(max_stations_per_site), stores.height, zones.height
    ii, jj, km = zone_pairs(zones["lat"], zones["lon"], stores["lat"], stores["lon"], max_distance_km)
    keep = w[jj] > 0
    ii, jj, km = ii[keep], jj[keep], km[keep]
    reach = np.zeros(n_z, dtype=bool)
    reach[jj] = True
    unreachable = float(w[(w > 0) & ~reach].sum())
    k = np.zeros(n_s, dtype=np.int64)
    share = np.zeros(ii.size)
    objective = bound = 0.0
    status = "optimal"
    if budget_stations is None:
        graph = coo_array((np.ones(ii.size), (ii, n_s + jj)), shape=(n_s + n_z, n_s + n_z))
        _, labels = connected_components(graph, directed=False)
        comp_of_pair = labels[ii]
        order = np.argsort(comp_of_pair, kind="stable")
        cuts = np.flatnonzero(np.diff(comp_of_pair[order])) + 1
        groups = np.split(order, cuts) if order.size else []
        groups.sort(key=len)  # small components first: the largest get the time that is left
    else:
        groups = [np.arange(ii.size)]
    pairs_left = float(ii.size)
    rows = []
    for g in groups:
        sites, si = np.unique(ii[g], return_inverse=True)
        pts, pj = np.unique(jj[g], return_inverse=True)
        wz = w[pts]
        if budget_stations is None and wz.sum() > cap * K * sites.size + 1e-9:
            raise C2MError(
                f"site_zones: {wz.sum():.0f} swaps/day around store {stores['store_id'][int(sites[0])]} exceed "
                f"{K} stations x {cap:.0f} swaps/day at each of the {sites.size} store(s) in reach"
            )
        t0 = time.perf_counter()
        if use_lp:
            # a share of the time left by pairs, a little kept for the assignment LP
            budget_s = max(0.85 * (deadline - t0) * g.size / pairs_left, 0.5)
            plan = fewest_stations(si, pj, wz, sites.size, cap, K, budget_s, mip_rel_gap)
            kc, obj_c, bound_c, lp_c = plan.k, float(plan.k.sum()), plan.bound, plan.lp
            y = assign(si, pj, km[g], wz, sites.size, cap, kc.astype(float), None, 0.0)
            if y is None:
                raise C2MError("site_zones: the assignment LP failed on a plan that passed the max-flow check")
        else:
            left = max(deadline - t0, 5.0)
            res, y = _zone_milp(si, pj, km[g], wz, sites.size, cap, K, budget_stations, mip_rel_gap, left)
            kc = np.round(res.x[: sites.size]).astype(np.int64)
            obj_c, bound_c, lp_c = float(res.fun), float(getattr(res, "mip_dual_bound", res.fun)), np.nan
            if res.status != 0:
                status = str(res.message)
        pairs_left -= g.size
        k[sites] = kc
        share[g] = np.clip(y, 0.0, 1.0)
        objective += obj_c
        bound += bound_c
        gap_c = max((obj_c - bound_c) / abs(obj_c), 0.0) if obj_c else 0.0
        rows.append((sites.size, pts.size, g.size, obj_c, bound_c, gap_c, lp_c, time.perf_counter() - t0))
    gap = (objective - bound) / abs(objective) if objective else 0.0
    if use_lp and gap > mip_rel_gap:
        status = f"time limit reached at a certified gap of {gap:.3%}"
    names = ["stores", "zones", "pairs", "objective", "bound", "gap", "lp_bound", "seconds"]
    per_component = pl.DataFrame(rows, schema=names, orient="row") if rows else pl.DataFrame()
    used = share > 1e-9
    load = np.bincount(ii[used], weights=w[jj[used]] * share[used], minlength=n_s)
    sites_df = stores.select("store_id", "lat", "lon").with_columns(
        pl.Series("stations", k, dtype=pl.Int64), pl.Series("swaps_per_day", load)
    )
    assignment = pl.DataFrame(
        {
            "zone_id": zones["zone_id"].gather(jj[used]),
            "store_id": stores["store_id"].gather(ii[used]),
            "share": share[used],
            "swaps_per_day": w[jj[used]] * share[used],
            "distance_km": km[used],
        }
    )
    return ZoneSiting(
        sites_df, assignment, objective, bound, max(gap, 0.0), int(ii.size), len(groups), unreachable, status,
        per_component,
    )


_ZONE_COLS = ("zone_id", "lat", "lon", "demand")


def _zone_milp(
    si: np.ndarray,
    pj: np.ndarray,
    km: np.ndarray,
    w: np.ndarray,
    n: int,
    cap: float,
    K: int,
    budget: int | None,
    gap: float,
    time_limit: float,
) -> tuple[Any, np.ndarray]:
    """Phase 1 (MILP) on ``[k (n sites), y (pairs)]``, ``si``/``pj`` the pairs' sites and zones: fewest
    stations, or most swaps served under the budget. Phase 2 (LP): ``k`` fixed, the assignment with
    the least swap-weighted distance at that service. Returns phase 1's result and phase 2's ``y``.
    """
    P, m = si.size, w.size
    cols = n + np.arange(P)
    A = csr_array((np.ones(P), (pj, cols)), shape=(m, n + P))
    serve = LinearConstraint(A, 1.0 if budget is None else 0.0, 1.0)  # each zone served (at most) once
    C = csr_array(
        (
            np.concatenate([w[pj], np.full(n, -cap)]),
            (np.concatenate([si, np.arange(n)]), np.concatenate([cols, np.arange(n)])),
        ),
        shape=(n, n + P),
    )
    capacity = LinearConstraint(C, -np.inf, 0.0)
    # a zone is served only if a station is open in reach: sum_i y_ij <= sum_{i near j} k_i (one row
    # per zone, not one per pair; capacity already keeps y_ij = 0 where k_i = 0)
    N = csr_array((np.concatenate([np.ones(P), -np.ones(P)]), (np.tile(pj, 2), np.concatenate([cols, si]))), (m, n + P))
    cons = [serve, capacity, LinearConstraint(N, -np.inf, 0.0)]
    if budget is None:
        c = np.concatenate([np.ones(n), np.zeros(P)])
    else:
        cons.append(LinearConstraint(np.concatenate([np.ones(n), np.zeros(P)])[None, :], 0.0, budget))
        c = np.concatenate([np.zeros(n), -w[pj]])  # maximise the swaps served
    bounds = Bounds(np.zeros(n + P), np.concatenate([np.full(n, float(K)), np.ones(P)]))
    integrality = np.concatenate([np.ones(n), np.zeros(P)])
    opts = {"time_limit": time_limit, "mip_rel_gap": gap}
    with quiet_stdout():
        res = milp(c, constraints=cons, integrality=integrality, bounds=bounds, options=opts)
    if res.x is None:
        raise C2MError(f"site_zones: the solver found no siting ({res.message})")
    y = assign(si, pj, km, w, n, cap, np.round(res.x[:n]), budget, float(w[pj] @ res.x[n:]))
    return res, res.x[n:] if y is None else y
