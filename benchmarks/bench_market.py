"""Benchmark: market simulator (logit shares) and product-line optimiser on the default project.

Simulator. ``MarketSimulator.shares`` on ``--persons`` person-level part-worth vectors
(default 1,000,000) x ``--products`` products (default 50: 45 variants of ours, random
allowed configurations at random prices of the default grid, plus the project's 5
competitors), plus the None option, logit rule. The part-worths are draws from a normal
fitted to the hidden "true" part-worths of a 5,000-person synthetic market
(``c2m.data.generate_market``, seed ``--seed``). c2m's time is compared with a plain NumPy
implementation written here (utilities, max-shift, exp, normalise, weighted mean) and the
two must agree to 1e-12 in every share. Best of ``--repeat`` interleaved calls of each.

Optimiser. ``optimize_line`` (public API, default options: profit, default price grid
every 2,000 yuan, ``time_limit=60``) chooses 3 variants for a 5,000-person model: the
synthetic market's true person-level part-worths, as individual betas of the simulator
(what a hierarchical-Bayes model gives the simulator in ``c2m demo``'s place of the MNL).
The full space's size is counted here (configurations after prohibitions x prices, and
the lines of 3 distinct configurations). Brute force cannot enumerate that space, so it
runs on a reduced space that both can solve (``REDUCED_EXCLUDE`` below and
``--reduced-prices``): a vectorised NumPy enumeration of every line written here (persons
on the last axis, one block of third variants at a time), checked against
``c2m.optimize.line_objective`` on random lines. The optimiser's answer on the reduced
space must equal the brute-force optimum; the full brute force is extrapolated from the
measured evaluations/s. Usage:

    python benchmarks/bench_market.py [--persons 1000000] [--products 50] [--repeat 3]
        [--opt-persons 5000] [--reduced-prices 65000,75000,85000] [--skip-simulator]
        [--skip-optimiser] [--skip-full]
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np

from c2m.data import default_project, generate_market
from c2m.domain import FeatureCoder, Project, enumerate_profiles, fixed_cost
from c2m.market import MarketSimulator, unit_economics
from c2m.optimize import default_price_grid, line_objective, optimize_line

K = 3
YEARS = 4.0  # optimize_line's default amortisation of fixed costs
SIM_TARGET_S = 1.0
OPT_TARGET_S = 60.0
GAP_TARGET = 0.005
# Reduced space for the brute-force comparison: 2 styles x 2 colours x 2 smart packs x
# 2 batteries x 1 energy mode x 2 sunroofs x 2 ownerships = 64 configurations (fixed-cost
# levels sporty, max and sunroof stay in, so fixed costs still shape the line).
REDUCED_EXCLUDE = {
    "style": ["retro"],
    "colour": ["grey", "blue", "green", "pink", "orange"],
    "smart_pack": ["basic"],
    "battery": ["lfp42", "lfp56"],
    "energy_mode": ["plugin", "swap"],
    "ownership": ["rent_capped"],
}

Row = tuple[str, str, str, str]


def best_time(fn: Callable[[], object], repeat: int) -> tuple[float, float, object]:
    """(first, best) wall time of ``repeat`` calls, and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times[0], min(times), out


# ----------------------------------------------------------------------------- simulator
def reference_shares(betas: np.ndarray, X: np.ndarray, asc: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Plain NumPy logit shares: per-person softmax of ``betas @ X.T + asc``, weighted mean."""
    u = betas @ X.T
    u += asc
    u -= u.max(axis=1, keepdims=True)
    np.exp(u, out=u)
    u /= u.sum(axis=1, keepdims=True)
    return weights @ u


def bench_simulator(project: Project, truth: np.ndarray, args: argparse.Namespace) -> list[Row]:
    rng = np.random.default_rng(args.seed)
    betas = rng.multivariate_normal(truth.mean(axis=0), np.cov(truth, rowvar=False), size=args.persons,
                                    method="cholesky")
    price = project.attribute_by_role("price")
    assert price is not None
    grid = default_price_grid(project)
    configs = enumerate_profiles(project, {price.name: [float(grid[0])]})
    n_ours = args.products - len(project.competitors)
    pick = rng.choice(len(configs), size=n_ours, replace=False)
    line = [{**configs[i], price.name: float(rng.choice(grid))} for i in pick]

    t0 = time.perf_counter()
    sim = MarketSimulator(project, betas.mean(axis=0), individual=betas)
    t_init = time.perf_counter() - t0

    coder = FeatureCoder.from_project(project)
    X = np.vstack([coder.encode_many(line + [c.profile for c in project.competitors]), coder.none_row()])
    asc = np.concatenate([np.zeros(n_ours), [c.asc for c in project.competitors], [0.0]])
    weights = np.full(args.persons, 1.0 / args.persons)

    def c2m_call() -> np.ndarray:
        return sim.shares(line)["share"].to_numpy()

    def ref_call() -> np.ndarray:
        return reference_shares(betas, X, asc, weights)

    c2m_times, ref_times = [], []
    c2m_out = ref_out = np.zeros(0)
    for _ in range(args.repeat):  # interleaved, so machine load hits both alike
        first, _, c2m_out = best_time(c2m_call, 1)  # type: ignore[assignment]
        c2m_times.append(first)
        first, _, ref_out = best_time(ref_call, 1)  # type: ignore[assignment]
        ref_times.append(first)
    diff = float(np.max(np.abs(c2m_out - ref_out)))
    assert diff <= 1e-12, f"simulator and NumPy reference differ by {diff:.2e}"
    assert abs(c2m_out.sum() - 1.0) < 1e-12
    n_alt = X.shape[0]
    label = f"{args.persons:,} persons x {args.products} products + None"
    print(f"simulator: {label} ({n_ours} ours + {len(project.competitors)} competitors), "
          f"{betas.shape[1]} features, logit")
    print(f"  c2m shares() times s: {', '.join(f'{t:.3f}' for t in c2m_times)}; "
          f"NumPy reference: {', '.join(f'{t:.3f}' for t in ref_times)}; constructor {t_init:.3f} s")
    c2m_t, ref_t = min(c2m_times), min(ref_times)
    return [
        (f"simulator: logit shares, {label} (best of {args.repeat})", f"{c2m_t:.3f} s",
         f"target {SIM_TARGET_S:.0f} s", f"{c2m_t / SIM_TARGET_S:.2f}"),
        ("simulator vs plain NumPy reference (same shares)", f"{c2m_t:.3f} s", f"NumPy {ref_t:.3f} s",
         f"{c2m_t / ref_t:.2f}"),
        (f"max |share c2m - share NumPy| over the {n_alt} alternatives", f"{diff:.1e}", "<= 1e-12", "-"),
    ]


# ----------------------------------------------------------------------------- optimiser
class BruteForce:
    """Every line of ``K`` distinct configurations (each at one grid price), profit objective.

    Independent of ``c2m.optimize``: utilities from ``MarketSimulator.utilities``, margins
    from ``unit_economics``, fixed costs by level sets (checked against ``fixed_cost``).
    """

    def __init__(self, project: Project, sim: MarketSimulator, prices: Sequence[float],
                 exclude: dict[str, list[str]]) -> None:
        price = project.attribute_by_role("price")
        assert price is not None
        self.project, self.sim, self.price_name = project, sim, price.name
        profiles = [p for p in enumerate_profiles(project, {price.name: list(prices)})
                    if not any(str(p[a]) in levels for a, levels in exclude.items())]
        keys = sorted({self._config(p) for p in profiles})
        self.configs = [dict(k) for k in keys]
        self.prices = np.asarray(sorted(prices), dtype=float)
        n, G = len(keys), self.prices.size
        assert len(profiles) == n * G, "every configuration must allow every price (no price prohibitions)"
        self.profiles = [{**c, price.name: float(g)} for c in self.configs for g in self.prices]
        U = np.atleast_2d(sim.utilities(self.profiles))  # (R, n G), configuration-major
        other = sim.other_utilities()  # (R, J)
        top = np.maximum(U.max(axis=1), other.max(axis=1))
        E = np.exp(U - top[:, None])
        self.D = np.exp(other - top[:, None]).sum(axis=1)  # (R,)
        self.E = np.ascontiguousarray(E.T.reshape(n, G, -1))  # (n, G, R): persons last
        self.margin = np.array([unit_economics(project, p).margin for p in self.profiles]).reshape(n, G)
        self.ME = self.E * self.margin[:, :, None]
        self.w = sim.weights
        self.size = sim.market_size
        # fixed cost of a line = per variant + each used fixed-cost level once: bit masks
        levels = [(a.name, lv.name, lv.fixed_cost) for a in project.attributes if a.kind != "numeric"
                  for lv in a.levels if lv.fixed_cost > 0]
        self.bits = np.array([sum(1 << b for b, (a, lv, _) in enumerate(levels) if c[a] == lv)
                              for c in self.configs], dtype=np.int64)
        self.mask_cost = np.array([sum(f for b, (_, _, f) in enumerate(levels) if m >> b & 1)
                                   for m in range(1 << len(levels))])
        self.per_variant = project.product.fixed_cost_per_variant

    def _config(self, p: dict[str, str | float]) -> tuple[tuple[str, str | float], ...]:
        return tuple((a, v) for a, v in p.items() if a != self.price_name)

    @property
    def n_lines(self) -> int:
        return math.comb(len(self.configs), K) * self.prices.size**K

    def fixed(self, configs: Sequence[int]) -> float:
        mask = int(np.bitwise_or.reduce(self.bits[list(configs)]))
        return self.per_variant * len(configs) + float(self.mask_cost[mask])

    def value(self, line: Sequence[tuple[int, int]]) -> float:
        """Profit of one line of (configuration, price index) pairs."""
        num = sum(self.ME[n, g] for n, g in line)
        den = self.D + sum(self.E[n, g] for n, g in line)
        return self.size * float(self.w @ (num / den)) - self.fixed([n for n, _ in line]) / YEARS

    def line_profiles(self, line: Sequence[tuple[int, int]]) -> list[dict[str, str | float]]:
        return [{**self.configs[n], self.price_name: float(self.prices[g])} for n, g in line]

    def solve(self, block: int = 8) -> tuple[float, list[tuple[int, int]]]:
        """Enumerate all lines (K = 3): pairs i < j in Python, the third variant in blocks of configurations."""
        assert K == 3
        n, G, R = self.E.shape
        num = np.empty((G, G, block, G, R))
        den = np.empty_like(num)
        best, best_line = -np.inf, [(0, 0)] * K
        for i in range(n - 2):
            for j in range(i + 1, n - 1):
                num2 = self.ME[i][:, None, :] + self.ME[j][None, :, :]  # (G, G, R)
                den2 = self.D + self.E[i][:, None, :] + self.E[j][None, :, :]
                bits2 = self.bits[i] | self.bits[j]
                for lo in range(j + 1, n, block):
                    hi = min(lo + block, n)
                    b = hi - lo
                    nb, db = num[:, :, :b], den[:, :, :b]
                    np.add(num2[:, :, None, None, :], self.ME[None, None, lo:hi], out=nb)
                    np.add(den2[:, :, None, None, :], self.E[None, None, lo:hi], out=db)
                    nb /= db
                    val = self.size * (nb @ self.w)  # (G, G, b, G)
                    fixed = self.per_variant * K + self.mask_cost[bits2 | self.bits[lo:hi]]  # (b,)
                    val -= (fixed / YEARS)[None, None, :, None]
                    at = int(np.argmax(val))
                    if val.flat[at] > best:
                        gi, gj, dl, gl = np.unravel_index(at, val.shape)
                        best, best_line = float(val.flat[at]), [(i, int(gi)), (j, int(gj)), (lo + int(dl), int(gl))]
        return best, best_line


def count_lines(project: Project, grid: np.ndarray) -> tuple[int, int, int]:
    """(raw configurations, configurations after prohibitions, lines of K distinct configurations)."""
    price = project.attribute_by_role("price")
    assert price is not None
    raw = math.prod(len(a.levels) for a in project.attributes if a.name != price.name)
    per_config: dict[tuple[tuple[str, str | float], ...], int] = {}
    for p in enumerate_profiles(project, {price.name: [float(g) for g in grid]}):
        key = tuple((a, v) for a, v in p.items() if a != price.name)
        per_config[key] = per_config.get(key, 0) + 1
    # lines = elementary symmetric polynomial of degree K in the allowed-price counts
    e = [1] + [0] * K
    for c in per_config.values():
        for d in range(K, 0, -1):
            e[d] += e[d - 1] * c
    return raw, len(per_config), e[K]


def fmt_s(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.2f} s"
    years = seconds / (365.25 * 86400)
    return f"{seconds:.2e} s ({years:.2e} years)" if years >= 1 else f"{seconds / 3600:.1f} h"


def bench_optimiser(project: Project, market_betas: np.ndarray, args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    sim = MarketSimulator(project, market_betas.mean(axis=0), individual=market_betas)
    R = market_betas.shape[0]
    grid = default_price_grid(project)
    raw, n_cfg, n_lines_full = count_lines(project, grid)
    print(f"optimiser: {R:,}-person model (true part-worths of the synthetic market), {K} variants, profit")
    print(f"  full space: {raw:,} configurations, {n_cfg:,} after prohibitions, x {grid.size} prices "
          f"({grid[0]:,.0f}-{grid[-1]:,.0f}) = {n_cfg * grid.size:,} candidates; "
          f"{n_lines_full:.4e} lines of {K} distinct configurations")

    # reduced space: brute force and the optimiser
    prices = [float(x) for x in args.reduced_prices.split(",")]
    t0 = time.perf_counter()
    bf = BruteForce(project, sim, prices, REDUCED_EXCLUDE)
    t_setup = time.perf_counter() - t0
    # the brute-force evaluator against the public API, on random lines
    rng = np.random.default_rng(args.seed)
    n_cfg_red, G = len(bf.configs), bf.prices.size
    sample = []
    for _ in range(args.check_lines):
        cfgs = rng.choice(n_cfg_red, size=K, replace=False)
        sample.append([(int(c), int(rng.integers(G))) for c in cfgs])
    t0 = time.perf_counter()
    api_values = [line_objective(sim, bf.line_profiles(ln), "profit") for ln in sample]
    api_rate = len(sample) / (time.perf_counter() - t0)
    worst = max(abs(bf.value(ln) - v) / abs(v) for ln, v in zip(sample, api_values, strict=True))
    worst_fixed = max(abs(bf.fixed([n for n, _ in ln]) - fixed_cost(project, bf.line_profiles(ln)))
                      for ln in sample)
    assert worst < 1e-9 and worst_fixed == 0, (worst, worst_fixed)
    t0 = time.perf_counter()
    bf_best, bf_line = bf.solve()
    t_bf = time.perf_counter() - t0
    bf_rate = bf.n_lines / t_bf
    api_best = line_objective(sim, bf.line_profiles(bf_line), "profit")
    assert abs(api_best - bf_best) <= 1e-9 * abs(bf_best)

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # prices of the reduced grid are inside the measured range
        red = optimize_line(project, sim, K, "profit", price_grid=prices, must_exclude=REDUCED_EXCLUDE)
    t_red = time.perf_counter() - t0
    same = abs(red.objective_value - bf_best) <= 1e-9 * abs(bf_best)
    key = bf._config
    same_line = sorted(map(key, red.variants)) == sorted(map(key, bf.line_profiles(bf_line))) and sorted(
        float(v[bf.price_name]) for v in red.variants) == sorted(float(bf.prices[g]) for _, g in bf_line)
    true_gap = (red.bound - bf_best) / abs(red.bound)
    print(f"  reduced space: {n_cfg_red} configurations x {G} prices {prices} = {n_cfg_red * G} candidates, "
          f"{bf.n_lines:,} lines; brute-force setup {t_setup:.2f} s")
    print(f"  brute force: {t_bf:.2f} s, {bf_rate:,.0f} lines/s, optimum {bf_best:,.0f}; line_objective "
          f"agrees to {worst:.1e} on {len(sample)} random lines ({api_rate:,.0f} calls/s)")
    print(f"  optimiser (reduced): {t_red:.2f} s, method {red.method}, value {red.objective_value:,.0f}, "
          f"bound {red.bound:,.0f}, certified gap {red.gap:.2%} (bound vs true optimum: {true_gap:.2%}); "
          f"equals brute force: {same} (same line: {same_line})")
    for v in bf.line_profiles(bf_line):
        print(f"    brute-force optimum: {v}")
    rows += [
        (f"reduced space ({n_cfg_red} configs x {G} prices, {bf.n_lines:,} lines): time", fmt_s(t_red),
         f"brute force {fmt_s(t_bf)}", f"{t_bf / t_red:,.0f}x faster"),
        ("reduced space: profit of the chosen line (yuan/year)", f"{red.objective_value:,.0f}",
         f"brute-force optimum {bf_best:,.0f}", f"{red.objective_value / bf_best:.9f}"),
        ("reduced space: certified gap (true gap of the bound)", f"{red.gap:.2%} ({true_gap:.2%})",
         f"target <= {GAP_TARGET:.1%}", f"{red.gap / GAP_TARGET:.1f}"),
        ("evaluations/s: vectorised brute force vs line_objective()", f"{api_rate:,.0f}/s (API)",
         f"{bf_rate:,.0f}/s (brute)", f"{bf_rate / api_rate:,.0f}"),
    ]

    if args.skip_full:
        return rows
    t0 = time.perf_counter()
    sol = optimize_line(project, sim, K, "profit")
    t_full = time.perf_counter() - t0
    assert sol.n_configs == n_cfg and sol.n_candidates == n_cfg * grid.size
    t_bf_full = n_lines_full / bf_rate
    print(f"  optimiser (full space): {t_full:.2f} s, method {sol.method}, value {sol.objective_value:,.0f}, "
          f"bound {sol.bound:,.0f}, certified gap {sol.gap:.2%}")
    for v in sol.variants:
        print(f"    chosen: {v}")
    rows += [
        (f"full space ({n_cfg:,} configs x {grid.size} prices, {n_lines_full:.2e} lines): time",
         fmt_s(t_full), f"target {OPT_TARGET_S:.0f} s", f"{t_full / OPT_TARGET_S:.2f}"),
        ("full space: certified gap", f"{sol.gap:.2%}", f"target <= {GAP_TARGET:.1%}",
         f"{sol.gap / GAP_TARGET:.1f}"),
        ("full space: time vs brute force (extrapolated)", fmt_s(t_full), f"brute force {fmt_s(t_bf_full)}",
         f"{t_bf_full / t_full:.1e}x faster"),
    ]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--persons", type=int, default=1_000_000, help="simulator: persons (part-worth draws)")
    ap.add_argument("--products", type=int, default=50, help="simulator: products incl. the 5 competitors")
    ap.add_argument("--repeat", type=int, default=3, help="simulator: interleaved calls each, best kept")
    ap.add_argument("--opt-persons", type=int, default=5000, help="optimiser: persons of the model")
    ap.add_argument("--reduced-prices", default="65000,75000,85000", help="brute-force space's price grid")
    ap.add_argument("--check-lines", type=int, default=50, help="random lines checked against line_objective")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-simulator", action="store_true")
    ap.add_argument("--skip-optimiser", action="store_true")
    ap.add_argument("--skip-full", action="store_true", help="skip the full-space optimiser run (~60 s)")
    args = ap.parse_args()
    project = default_project()
    market = generate_market(project, n_persons=args.opt_persons, seed=args.seed)
    truth = market.true_betas()  # (persons, features) in FeatureCoder order
    rows: list[Row] = []
    if not args.skip_simulator:
        rows += bench_simulator(project, truth, args)
    if not args.skip_optimiser:
        rows += bench_optimiser(project, truth, args)
    header: Row = ("figure", "c2m", "target or baseline", "ratio")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    print()
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    print("ratio: c2m / target or baseline (times, gaps, values) or baseline / c2m ('x faster', evaluations/s)")


if __name__ == "__main__":
    main()
