"""Benchmark: choice-based-conjoint survey designs on the default project (issue 5, "Speed").

Times every method of ``c2m.survey.make_design`` at 300 versions x 12 tasks x 3
concepts + None (all 12 tasks designed, no holdouts, unless ``--holdouts``) and
prints, per design: seconds (wall and CPU), D-error at zero coefficients,
D-efficiency relative to the best design found, the Bayesian D-error at a
pilot-like prior, level balance, prohibition violations and repeated concepts,
next to the issue's target and the ratio target / time.

- classic methods (random, complete enumeration, balanced overlap, shortcut):
  one process, after a warm-up design (imports, numba kernels loaded from cache
  or compiled); best of ``--repeat`` runs;
- D-efficient, zero priors: coordinate exchange (``method="d_efficient"``) from
  ``--starts`` starting designs (seeds 0..starts-1, each a complete-enumeration
  design with its own random tie-breaks), spread over ``--workers`` spawned
  processes; the wall time includes starting the processes, the kept design is
  the one with the lowest D-error;
- with ``--random-starts``, the same number of starts from uniformly random
  designs (c2m.survey internals: ``make_design`` itself always starts from
  complete enumeration when the profiles can be enumerated);
- D-efficient, Bayesian: one start, prior = the true part-worths of
  ``--bayes-draws`` persons drawn from a synthetic market of the default project
  (``generate_market``, seed 0), i.e. a simulated pilot.

Usage:

    python benchmarks/bench_design.py [--versions 300] [--tasks 12] [--concepts 3]
        [--starts 10] [--workers 2] [--bayes-draws 16] [--no-bayes] [--repeat 3]
    python benchmarks/bench_design.py --random-starts   # also 10 starts from random designs
    python benchmarks/bench_design.py --profile balanced_overlap   # cProfile of one design
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

import numpy as np
import polars as pl

CLASSIC = ("random", "complete_enumeration", "balanced_overlap", "shortcut")
TARGETS = {"balanced_overlap": 5.0, "d_efficient": 30.0}  # seconds, issue 5


def load(path: str | None) -> Any:
    from c2m.data import default_project
    from c2m.domain import load_project

    return default_project() if path is None else load_project(path)


def pilot_prior(project: Any, n_draws: int, seed: int = 0) -> np.ndarray:
    """``n_draws`` persons' true coefficients (feature order) from a synthetic market: a simulated pilot."""
    from c2m.data import generate_market
    from c2m.domain import FeatureCoder

    market = generate_market(project, n_persons=max(1000, n_draws), seed=seed)
    names = FeatureCoder.from_project(project).feature_names
    truth = market.truth.sample(n_draws, seed=seed)
    return truth.select(names).to_numpy().astype(float)


@dataclass
class Row:
    label: str
    method: str
    design: Any
    wall: float
    cpu: float
    starts: int = 1
    target: float | None = None
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0, time.process_time() - c0


def quality(project: Any, design: Any, prior: np.ndarray | None) -> dict[str, float]:
    """D-errors, balance, prohibition violations and repeated concepts of a design."""
    from c2m.domain import is_prohibited
    from c2m.survey import check_design, d_error, design_diagnostics

    names = project.attribute_names
    frame = design.frame
    check_design(project, design)  # raises on an unknown level or a prohibited concept
    profiles = frame.group_by(names).len()
    violations = sum(
        n for *row, n in profiles.iter_rows() if is_prohibited(project, dict(zip(names, row, strict=True)))
    )
    per_task = frame.group_by("version", "task").agg(pl.struct(names).n_unique().alias("distinct"))
    repeated = int((design.n_alts - per_task["distinct"]).sum())
    shown = frame.filter(~pl.col("holdout"))
    version = shown["version"].to_numpy() - 1
    spread = 0
    for attribute in project.attributes:
        if attribute.kind == "numeric":
            values = np.array([float(lv.value) for lv in attribute.levels])
            code = np.abs(shown[attribute.name].to_numpy()[:, None] - values[None, :]).argmin(axis=1)
        else:
            lookup = {name: k for k, name in enumerate(attribute.level_names)}
            code = np.array([lookup[x] for x in shown[attribute.name].to_list()])
        L = len(attribute.levels)
        counts = np.bincount(version * L + code, minlength=design.n_versions * L).reshape(-1, L)
        spread = max(spread, int((counts.max(axis=1) - counts.min(axis=1)).max()))
    diag = design_diagnostics(project, design)
    out = {
        "d_error": d_error(project, design),
        "violations": float(violations),
        "repeated": float(repeated),
        "spread": float(spread),
        "balance": diag.balance,
        "max_cramers_v": diag.max_cramers_v,
    }
    if prior is not None:
        out["bayes_d_error"] = d_error(project, design, prior)
    return out


def _worker_init() -> None:
    from c2m.survey import make_design

    make_design(load(None), method="d_efficient", n_versions=1, n_tasks=2, n_alts=2, n_holdout=0, seed=0)


def _one_start(project_path: str | None, seed: int, kwargs: dict[str, Any]) -> tuple[int, Any, float, float]:
    from c2m.survey import d_error, make_design

    project = load(project_path)
    design, wall, cpu = _timed(make_design, project, method="d_efficient", seed=seed, **kwargs)
    return seed, (design, d_error(project, design)), wall, cpu


def _one_random_start(project_path: str | None, seed: int, kwargs: dict[str, Any]) -> tuple[int, Any, float, float]:
    """Coordinate exchange from a uniformly random start (c2m.survey internals: make_design starts from
    complete enumeration), wrapped in a Design like make_design's."""
    from c2m.survey import Design, d_error
    from c2m.survey._build import random_tasks
    from c2m.survey._efficient import coordinate_exchange
    from c2m.survey._information import as_draws
    from c2m.survey._make import design_frame
    from c2m.survey._space import ProfileSpace

    project = load(project_path)
    V, T, J = kwargs["n_versions"], kwargs["n_tasks"], kwargs["n_alts"]
    if kwargs["n_holdout"]:
        raise SystemExit("--random-starts needs --holdouts 0")

    def build() -> Any:
        space = ProfileSpace.from_project(project)
        rng = np.random.default_rng(seed)
        start = random_tasks(space, rng, (V, T), J)
        tasks = coordinate_exchange(space, start, as_draws(None, space.n_features), rng)
        frame = design_frame(space, tasks, np.zeros(T, dtype=bool))
        return Design(frame, "d_efficient", seed, V, T, J, space.with_none, project.name)

    design, wall, cpu = _timed(build)
    return seed, (design, d_error(project, design)), wall, cpu


def multistart(
    project_path: str | None, starts: int, workers: int, kwargs: dict[str, Any], random_start: bool = False
) -> dict[str, Any]:
    """``starts`` d_efficient designs (seeds 0..starts-1) over ``workers`` processes; the best is kept."""
    t0 = time.perf_counter()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # the children's BLAS: one thread per worker process
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_worker_init) as pool:
        job = _one_random_start if random_start else _one_start
        futures = [pool.submit(job, project_path, seed, kwargs) for seed in range(starts)]
        results = [f.result() for f in futures]
    wall = time.perf_counter() - t0
    d_errors = [r[1][1] for r in results]
    best = int(np.argmin(d_errors))
    return {
        "design": results[best][1][0],
        "wall": wall,
        "cpu": sum(r[3] for r in results),
        "per_start": [r[2] for r in results],
        "d_errors": d_errors,
        "best_seed": results[best][0],
    }


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import numba

    return (
        f"{os.cpu_count()} cores, {cpu}; Python {platform.python_version()}, numpy {np.__version__}, "
        f"numba {numba.__version__}, polars {pl.__version__}"
    )


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "—" if x is None else format(x, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", default=None, help="project TOML (default: the embedded default project)")
    parser.add_argument("--versions", type=int, default=300)
    parser.add_argument("--tasks", type=int, default=12)
    parser.add_argument("--concepts", type=int, default=3)
    parser.add_argument("--holdouts", type=int, default=0)
    parser.add_argument("--starts", type=int, default=10, help="d_efficient starting designs (seeds 0..N-1)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the d_efficient starts")
    parser.add_argument("--bayes-draws", type=int, default=16, help="prior draws of the Bayesian design")
    parser.add_argument("--no-bayes", action="store_true", help="skip the Bayesian D-efficient design")
    parser.add_argument(
        "--random-starts",
        action="store_true",
        help="also run coordinate exchange from uniformly random starts (c2m.survey internals)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per classic method (best kept)")
    parser.add_argument("--methods", default=",".join(CLASSIC), help="classic methods to time, comma-separated")
    parser.add_argument("--profile", default=None, help="cProfile one make_design call of this method and exit")
    args = parser.parse_args()

    from c2m.domain import FeatureCoder, enumerate_profiles
    from c2m.survey import make_design

    project = load(args.project)
    size = {
        "n_versions": args.versions,
        "n_tasks": args.tasks,
        "n_alts": args.concepts,
        "n_holdout": args.holdouts,
    }
    load_start = os.getloadavg()
    levels = [len(a.levels) for a in project.attributes]
    full = int(np.prod(levels))
    allowed = len(enumerate_profiles(project))
    K = FeatureCoder.from_project(project).n_features
    print(f"machine: {machine()}")
    print(
        f"project {project.name!r}: {len(levels)} attributes with {levels} levels, "
        f"{len(project.prohibitions)} prohibitions, None option {project.none_option.enabled}"
    )
    print(f"full factorial {full:,} profiles, {allowed:,} allowed (the candidate set), {K} parameters")
    print(
        f"design: {args.versions} versions x {args.tasks} tasks ({args.holdouts} holdouts) x "
        f"{args.concepts} concepts{' + None' if project.none_option.enabled else ''}"
    )

    if args.profile:
        method = args.profile
        make_design(project, method=method, **{**size, "n_versions": 2})  # warm-up
        profiler = cProfile.Profile()
        profiler.enable()
        t0 = time.perf_counter()
        make_design(project, method=method, **size)
        profiler.disable()
        print(f"{method}: {time.perf_counter() - t0:.2f} s under cProfile")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
        return

    prior = None if args.no_bayes else pilot_prior(project, args.bayes_draws)
    _, warm, _ = _timed(make_design, project, method="d_efficient", n_versions=1, n_tasks=2, n_alts=2, n_holdout=0)
    print(f"warm-up (imports, numba kernels from cache or compiled): {warm:.2f} s")
    print(f"load average at start: {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}")

    rows: list[Row] = []
    for method in [m for m in args.methods.split(",") if m]:
        best: tuple[Any, float, float] | None = None
        for _ in range(args.repeat):
            run = _timed(make_design, project, method=method, seed=0, **size)
            if best is None or run[1] < best[1]:
                best = run
        assert best is not None
        rows.append(Row(method, method, best[0], best[1], best[2], target=TARGETS.get(method)))
        print(f"  {method}: {best[1]:.2f} s (best of {args.repeat})", flush=True)

    single = _timed(make_design, project, method="d_efficient", seed=0, **size)
    rows.append(Row("d_efficient, 1 start", "d_efficient", single[0], single[1], single[2], note="1 process"))
    print(f"  d_efficient, 1 start: {single[1]:.2f} s", flush=True)

    if args.starts > 1:  # the public option: 1 enumeration start + (starts - 1) random starts, one process
        many = _timed(make_design, project, method="d_efficient", seed=0, n_starts=args.starts, **size)
        label = f"d_efficient, n_starts={args.starts}"
        rows.append(Row(label, "d_efficient", many[0], many[1], many[2], starts=args.starts,
                        target=TARGETS["d_efficient"], note="1 process"))
        print(f"  {label}: {many[1]:.2f} s", flush=True)

    for random_start in (False, True) if args.random_starts else (False,):
        if args.starts <= 0:
            break
        multi = multistart(args.project, args.starts, args.workers, size, random_start)
        label = f"d_efficient, {args.starts} {'random ' if random_start else ''}starts"
        rows.append(
            Row(
                label,
                "d_efficient",
                multi["design"],
                multi["wall"],
                multi["cpu"],
                starts=args.starts,
                target=TARGETS["d_efficient"],
                note=f"{args.workers} processes",
            )
        )
        per = multi["per_start"]
        errs = multi["d_errors"]
        print(
            f"  {label} on {args.workers} processes: {multi['wall']:.2f} s wall, "
            f"{multi['cpu']:.2f} s CPU in the starts; per start {min(per):.2f}-{max(per):.2f} s; "
            f"D-error per start {min(errs):.5f}-{max(errs):.5f} (best: seed {multi['best_seed']})",
            flush=True,
        )

    if prior is not None:
        bayes = _timed(make_design, project, method="d_efficient", seed=0, prior=prior, **size)
        rows.append(
            Row(
                f"d_efficient, Bayesian ({len(prior)} draws)",
                "d_efficient",
                bayes[0],
                bayes[1],
                bayes[2],
                note="1 process",
            )
        )
        print(f"  d_efficient, Bayesian {len(prior)} draws, 1 start: {bayes[1]:.2f} s", flush=True)
    load_end = os.getloadavg()

    q = {row.label: quality(project, row.design, prior) for row in rows}
    best_d = min(v["d_error"] for v in q.values())
    best_b = min((v["bayes_d_error"] for v in q.values()), default=None) if prior is not None else None
    print()
    header = (
        "| method | seconds (wall) | CPU s | D-error | D-eff. vs best |"
        + (" Bayesian D-error | Bayes D-eff. |" if prior is not None else "")
        + " level count max-min per version | max rel. imbalance | prohibition violations"
        " | repeated concepts | target | target / time |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for row in rows:
        v = q[row.label]
        ratio = None if row.target is None else row.target / row.wall
        bayes_cols = ""
        if prior is not None and best_b is not None:
            bayes_cols = f" {v['bayes_d_error']:.4f} | {best_b / v['bayes_d_error']:.1%} |"
        print(
            f"| {row.label} | {row.wall:.2f} | {row.cpu:.2f} | {v['d_error']:.4f} | {best_d / v['d_error']:.1%} |"
            f"{bayes_cols} {int(v['spread'])} | {v['balance']:.1%} | {int(v['violations'])} | "
            f"{int(v['repeated'])} | {'< ' + fmt(row.target, '.0f') + ' s' if row.target else '—'} | "
            f"{fmt(ratio) + 'x' if ratio is not None else '—'} |"
        )
    print()
    d_rand = q["random"]["d_error"] if "random" in q else None
    for row in rows:
        if row.method != "d_efficient" or d_rand is None or "Bayesian" in row.label:
            continue
        d = q[row.label]["d_error"]
        print(
            f"{row.label}: D-error {d:.4f} vs random {d_rand:.4f}: {1 - d / d_rand:.1%} lower "
            f"(random / it = {d_rand / d:.3f})"
        )
    if prior is not None and "random" in q:
        label = next(r.label for r in rows if "Bayesian" in r.label)
        b, br = q[label]["bayes_d_error"], q["random"]["bayes_d_error"]
        print(f"{label}: Bayesian D-error {b:.4f} vs random {br:.4f}: {1 - b / br:.1%} lower")
    for row in rows:
        if row.target is not None:
            status = "met" if row.wall < row.target else "NOT met"
            print(f"target {row.label} < {row.target:.0f} s: {status} ({row.wall:.2f} s wall, {row.cpu:.2f} s CPU)")
    print(f"load average at end: {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}")


if __name__ == "__main__":
    main()
