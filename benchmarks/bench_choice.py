"""Benchmark: MNL on Train's electricity data replicated to ~1M rows, c2m vs xlogit.

Each tool runs in its own subprocess so peak memory (max RSS above the RSS after the
data is loaded) is not polluted by the other. Usage:

    python benchmarks/bench_choice.py [--copies 58] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

DATA = Path(__file__).resolve().parents[1] / "tests" / "choice" / "data" / "electricity.csv.gz"
FEATURES = ["pf", "cl", "loc", "wk", "tod", "seas"]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def load(copies: int) -> pl.DataFrame:
    """Electricity data stacked ``copies`` times with fresh task and person ids."""
    df = pl.read_csv(DATA)
    n_tasks, n_persons = int(df["chid"].max()), int(df["id"].max())
    parts = [
        df.with_columns(pl.col("chid") + c * n_tasks, pl.col("id") + c * n_persons) for c in range(copies)
    ]
    return pl.concat(parts)


def run_c2m(df: pl.DataFrame, engine: str) -> dict[str, float]:
    from c2m.choice import ChoiceData, MultinomialLogit

    t0 = time.perf_counter()
    data = ChoiceData.from_long(df, FEATURES, id_col="id", task_col="chid", chosen_col="choice")
    t1 = time.perf_counter()
    m = MultinomialLogit(engine=engine).fit(data)
    t2 = time.perf_counter()
    MultinomialLogit(engine=engine).fit(data)
    t3 = time.perf_counter()
    return {"setup_s": t1 - t0, "cold_s": t2 - t1, "warm_s": t3 - t2, "loglik": m.loglik_}


def run_xlogit(df: pl.DataFrame) -> dict[str, float]:
    from xlogit import MultinomialLogit

    X = df.select(FEATURES).to_numpy().astype(np.float64)
    y, alts, ids = df["choice"].to_numpy(), df["alt"].to_numpy(), df["chid"].to_numpy()
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        m = MultinomialLogit()
        m.fit(X=X, y=y, varnames=FEATURES, alts=alts, ids=ids, verbose=0)
        times.append(time.perf_counter() - t0)
    return {"setup_s": 0.0, "cold_s": times[0], "warm_s": times[1], "loglik": float(m.loglikelihood)}


def child(tool: str, copies: int) -> None:
    df = load(copies)
    base = _rss_mb()
    out = run_xlogit(df) if tool == "xlogit" else run_c2m(df, tool.removeprefix("c2m-"))
    out.update(rows=df.height, peak_extra_mb=_rss_mb() - base)
    print(json.dumps(out))


TOOLS = ("c2m-numba", "c2m-numpy", "xlogit")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=58)
    ap.add_argument("--repeat", type=int, default=3, help="subprocess runs per tool; best time kept")
    ap.add_argument("--child", choices=TOOLS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.copies)
        return
    runs: dict[str, list[dict[str, float]]] = {t: [] for t in TOOLS}
    for _ in range(args.repeat):  # interleaved, so machine load hits every tool alike
        for tool in TOOLS:
            cmd = [sys.executable, __file__, "--child", tool, "--copies", str(args.copies)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            runs[tool].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    # best time of the repeats (least disturbed by other load); memory is deterministic enough
    res = {t: {k: min(r[k] for r in rs) for k in rs[0]} for t, rs in runs.items()}
    rows = res["xlogit"]["rows"]
    print(f"MNL, electricity x{args.copies}: {rows:,} rows, {rows // 4:,} tasks, 6 features")
    print(f"best of {args.repeat} runs per tool, each in a fresh process")
    print(f"{'':34}" + "".join(f"{t:>12}" for t in TOOLS))

    def line(label: str, fmt: str, get: Callable[[dict[str, float]], float]) -> None:
        print(f"{label:34}" + "".join(f"{get(res[t]):>12{fmt}}" for t in TOOLS))

    line("layout (ChoiceData.from_long) s", ".2f", lambda r: r["setup_s"])
    line("fit, first in process s", ".2f", lambda r: r["cold_s"])
    line("fit, second in process s", ".2f", lambda r: r["warm_s"])
    line("layout + first fit s", ".2f", lambda r: r["setup_s"] + r["cold_s"])
    line("peak memory above data MB", ".0f", lambda r: r["peak_extra_mb"])
    line("log-likelihood", ".2f", lambda r: r["loglik"])
    x = res["xlogit"]
    for tool in TOOLS[:2]:
        c = res[tool]
        first = x["cold_s"] / (c["setup_s"] + c["cold_s"])
        second = x["warm_s"] / c["warm_s"]
        mem = x["peak_extra_mb"] / c["peak_extra_mb"]
        print(f"xlogit / {tool}: layout + first fit {first:.1f}x, second fit {second:.1f}x, mem {mem:.2f}x")


if __name__ == "__main__":
    main()
