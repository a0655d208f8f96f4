"""Benchmark: hierarchical Bayes logit (CBC/HB) sampler speed and memory.

Synthetic CBC data from a known HB model: 1,000 persons x 12 tasks x 4 alternatives,
15 parameters; 2 chains of 20,000 iterations (10,000 burn-in, thin 10), as Sawtooth's
defaults. Prints seconds, iterations per second (per chain, the chains run together),
peak memory (max RSS growth above the RSS once the data are built) and the recovery of
the upper-level mean. Usage:

    python benchmarks/bench_hb.py [--iter 20000] [--persons 1000] [--parallel]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def simulate(n_persons: int, n_tasks: int, n_alts: int, n_features: int, seed: int = 0):  # type: ignore[no-untyped-def]
    from c2m.choice import ChoiceData

    rng = np.random.default_rng(seed)
    mean = rng.normal(scale=0.8, size=n_features)
    sd = rng.uniform(0.3, 1.0, size=n_features)
    beta = mean + sd * rng.normal(size=(n_persons, n_features))
    n = n_persons * n_tasks
    X = rng.normal(size=(n, n_alts, n_features)) / np.sqrt(n_features / 4)
    person = np.repeat(np.arange(n_persons), n_tasks)
    U = np.einsum("tjk,tk->tj", X, beta[person]) + rng.gumbel(size=(n, n_alts))
    return ChoiceData.from_arrays(X, U.argmax(axis=1), person=person), mean, beta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iter", type=int, default=20_000)
    ap.add_argument("--persons", type=int, default=1000)
    ap.add_argument("--tasks", type=int, default=12)
    ap.add_argument("--alts", type=int, default=4)
    ap.add_argument("--features", type=int, default=15)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--parallel", action="store_true", help="numba threads over persons")
    args = ap.parse_args()

    from c2m.choice import HierarchicalBayesLogit
    from c2m.choice import _hb_kernels as hk

    data, mean, beta = simulate(args.persons, args.tasks, args.alts, args.features)
    if hk.numba_available():  # compile (or load the cached kernel) outside the timing
        hk.person_loglik_numba(
            np.zeros((1, 1, args.features)),
            data.X,
            data.avail,
            data.chosen,
            np.array([0, 1], dtype=np.intp),
            parallel=args.parallel,
        )
    rss0 = _rss_mb()
    model = HierarchicalBayesLogit(
        n_iter=args.iter,
        burn_in=args.iter // 2,
        thin=10,
        n_chains=args.chains,
        seed=1,
        engine=args.engine,
        parallel=args.parallel,
    )
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    model.fit(data)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    peak = _rss_mb() - rss0
    err = model.coef_ - mean
    corr = np.mean([np.corrcoef(model.individual_coef_[:, k], beta[:, k])[0, 1] for k in range(args.features)])
    print(
        f"HB: {args.persons} persons x {args.tasks} tasks x {args.alts} alts, {args.features} params, "
        f"{args.chains} chains x {args.iter} iterations, engine {model.engine_}, parallel {args.parallel}"
    )
    print(f"wall {wall:.1f} s, cpu {cpu:.1f} s, {args.iter / wall:.0f} iterations/s (all chains together)")
    print(f"peak memory above the data: {peak:.0f} MB")
    print(
        f"acceptance {np.round(model.acceptance_rate_, 3)}, max R-hat(b) {np.max(model.rhat_):.3f}, "
        f"min ESS(b) {np.min(model.ess_):.0f}"
    )
    print(
        f"|b - true mean|: max {np.max(np.abs(err)):.3f}, mean {np.mean(np.abs(err)):.3f}; "
        f"mean corr(individual, true) {corr:.3f}; loglik {model.loglik_:.1f}"
    )
    with open("/proc/loadavg") as fh:
        print("load average:", fh.read().split()[:3])


if __name__ == "__main__":
    main()
