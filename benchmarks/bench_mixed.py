"""Benchmark: panel mixed logit on Train's electricity data, c2m vs xlogit.

Six normal random coefficients, 100 Halton draws per person, panel by person (the mlogit
vignette model). Each tool runs in its own subprocess so peak memory (max RSS above the
RSS once the table is loaded) is not polluted by the other. Usage:

    python benchmarks/bench_mixed.py [--repeat 3] [--draws 100]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

DATA = Path(__file__).resolve().parents[1] / "tests" / "choice" / "data" / "electricity.csv.gz"
FEATURES = ["pf", "cl", "loc", "wk", "tod", "seas"]
TOOLS = ("c2m", "c2m-xdraws", "xlogit")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run_c2m(df: pl.DataFrame, draws: int, xlogit_draws: bool) -> dict[str, Any]:
    """c2m defaults (scrambled Halton, seed 0) or xlogit's draws (plain Halton from index 100)."""
    from c2m.choice import ChoiceData, MixedLogit

    halton = {"seed": None, "skip": 99} if xlogit_draws else {"seed": 0}
    t0 = time.perf_counter()
    data = ChoiceData.from_long(df, FEATURES, id_col="id", task_col="chid", chosen_col="choice")
    t1 = time.perf_counter()
    m = MixedLogit(random=dict.fromkeys(FEATURES, "normal"), n_draws=draws, draws="halton", **halton).fit(data)
    t2 = time.perf_counter()
    return {
        "time_s": t2 - t0,
        "layout_s": t1 - t0,
        "loglik": m.loglik_,
        "iters": m.n_iter_,
        "coef": [*m.params_],
    }


def run_xlogit(df: pl.DataFrame, draws: int) -> dict[str, Any]:
    from xlogit import MixedLogit

    t0 = time.perf_counter()
    X = df.select(FEATURES).to_numpy().astype(np.float64)
    y, alts = df["choice"].to_numpy(), df["alt"].to_numpy()
    ids, panels = df["chid"].to_numpy(), df["id"].to_numpy()
    m = MixedLogit()
    m.fit(
        X=X,
        y=y,
        varnames=FEATURES,
        alts=alts,
        ids=ids,
        panels=panels,
        randvars=dict.fromkeys(FEATURES, "n"),
        n_draws=draws,
        halton=True,
        verbose=0,
    )
    t1 = time.perf_counter()
    return {
        "time_s": t1 - t0,
        "layout_s": 0.0,
        "loglik": float(m.loglikelihood),
        "iters": float("nan"),
        "coef": [float(c) for c in m.coeff_],
    }


def child(tool: str, draws: int) -> None:
    df = pl.read_csv(DATA)
    base = _rss_mb()
    out = run_xlogit(df, draws) if tool == "xlogit" else run_c2m(df, draws, tool == "c2m-xdraws")
    out["peak_extra_mb"] = _rss_mb() - base
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3, help="subprocess runs per tool; best time kept")
    ap.add_argument("--child", choices=TOOLS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.draws)
        return
    runs: dict[str, list[dict[str, Any]]] = {t: [] for t in TOOLS}
    for _ in range(args.repeat):  # interleaved, so machine load hits every tool alike
        for tool in TOOLS:
            cmd = [sys.executable, __file__, "--child", tool, "--draws", str(args.draws)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            runs[tool].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    best = {t: min(rs, key=lambda r: r["time_s"]) for t, rs in runs.items()}
    mem = {t: min(r["peak_extra_mb"] for r in rs) for t, rs in runs.items()}
    print(f"Panel mixed logit, electricity (4,308 tasks, 361 persons), 6 normal, {args.draws} Halton draws")
    print(f"best of {args.repeat} runs per tool, each in a fresh process")
    print(f"{'':28}" + "".join(f"{t:>14}" for t in TOOLS))
    print(f"{'layout s':28}" + "".join(f"{best[t]['layout_s']:>14.2f}" for t in TOOLS))
    print(f"{'fit time (incl. layout) s':28}" + "".join(f"{best[t]['time_s']:>14.2f}" for t in TOOLS))
    print(f"{'peak memory above data MB':28}" + "".join(f"{mem[t]:>14.0f}" for t in TOOLS))
    print(f"{'log-likelihood':28}" + "".join(f"{best[t]['loglik']:>14.3f}" for t in TOOLS))
    print(f"{'iterations':28}" + "".join(f"{best[t]['iters']:>14.0f}" for t in TOOLS))
    names = FEATURES + [f"sd.{f}" for f in FEATURES]
    for i, n in enumerate(names):
        print(f"{n:28}" + "".join(f"{best[t]['coef'][i]:>14.3f}" for t in TOOLS))
    for t in TOOLS[:2]:
        ratio = best["xlogit"]["time_s"] / best[t]["time_s"]
        print(f"xlogit / {t}: time {ratio:.2f}x, memory {mem['xlogit'] / mem[t]:.2f}x")


if __name__ == "__main__":
    main()
