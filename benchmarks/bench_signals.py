"""Benchmark: behaviour events aggregated to interest tables, DuckDB vs Spark local[2].

A base market is generated once (default project, seed 1) and its event files are
tiled with shifted person ids (and the persons table with it) until the market holds
``--events`` rows; the markets are cached under ``--cache`` (default /tmp). Each
engine then runs in a fresh subprocess: validate the events, interest by level per
city, interest per city x age band (a join with the persons) and segment profiles
per city. Peak memory is the largest total RSS of the subprocess and its children
(the JVM for Spark), sampled every 50 ms; CPU seconds (user + system, the JVM included)
are taken around each step, and for Spark the tasks, shuffle and spill bytes per step
come from its event log. Usage:

    python benchmarks/bench_signals.py                      # 3 M events, quick
    python benchmarks/bench_signals.py --events 50000000    # the issue's figure
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

BASE_EVENTS_PER_PERSON = 3.0
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def _tree(root: int) -> list[int]:
    """``root`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _tree_rss(root: int) -> int:
    """Total RSS in bytes of ``root`` and all its descendants."""
    total = 0
    for pid in _tree(root):
        try:
            with open(f"/proc/{pid}/statm", encoding="utf-8") as handle:
                total += int(handle.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            pass
    return total


def _tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by ``root`` and its live descendants (the JVM for Spark)."""
    total = 0
    for pid in _tree(root):
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / TICK


def _spark_stage_metrics(log_dir: Path) -> dict[str, dict[str, float]]:
    """Per job description (the step): tasks, shuffle written and spilled bytes, from Spark's event log."""
    step_of_stage: dict[int, str] = {}
    out: dict[str, dict[str, float]] = {}
    for path in sorted(p for p in log_dir.rglob("*") if p.is_file()):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                event = json.loads(line)
                kind = event.get("Event")
                if kind == "SparkListenerJobStart":
                    step = (event.get("Properties") or {}).get("spark.job.description", "other")
                    for stage in event.get("Stage IDs", []):
                        step_of_stage[stage] = step
                elif kind == "SparkListenerTaskEnd":
                    m = event.get("Task Metrics") or {}
                    shuffle = m.get("Shuffle Write Metrics", {})
                    row = out.setdefault(step_of_stage.get(event["Stage ID"], "other"), {})
                    for key, value in (
                        ("tasks", 1),
                        ("shuffle_write_mb", shuffle.get("Shuffle Bytes Written", 0) / 2**20),
                        ("shuffle_records", shuffle.get("Shuffle Records Written", 0)),
                        ("spill_disk_mb", m.get("Disk Bytes Spilled", 0) / 2**20),
                    ):
                        row[key] = row.get(key, 0) + value
    return out


def base_market(cache: Path, base_events: int) -> Path:
    from c2m.data import default_project, generate_market

    out = cache / f"base-{base_events}"
    if not (out / "manifest.json").is_file():
        persons = max(1000, int(base_events / BASE_EVENTS_PER_PERSON))
        t0 = time.perf_counter()
        generate_market(default_project(), n_persons=persons, seed=1).write(out)
        print(f"generated base market {out} in {time.perf_counter() - t0:.1f} s", flush=True)
    return out


def tiled_market(cache: Path, events: int, base_events: int) -> tuple[Path, int]:
    """The base market tiled to about ``events`` rows (person ids shifted per copy); its path and row count."""
    base = base_market(cache, base_events)
    n_base = pl.scan_parquet(base / "events" / "**" / "*.parquet").select(pl.len()).collect().item()
    copies = max(1, round(events / n_base))
    if copies == 1:
        return base, n_base
    out = cache / f"tiled-{base_events}x{copies}"
    if (out / "manifest.json").is_file():
        return out, n_base * copies
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=".tiled-", dir=cache))
    persons = pl.read_parquet(base / "persons.parquet")
    offset = int(persons["person_id"].max()) + 1
    shift = [pl.col("person_id") + k * offset for k in range(copies)]
    pl.concat([persons.with_columns(s) for s in shift]).write_parquet(tmp / "persons.parquet", compression="zstd")
    for month in sorted((base / "events").iterdir()):
        frame = pl.read_parquet(month / "part-0.parquet")
        (tmp / "events" / month.name).mkdir(parents=True)
        for k, s in enumerate(shift):
            frame.with_columns(s).write_parquet(tmp / "events" / month.name / f"part-{k}.parquet", compression="zstd")
    shutil.copy(base / "manifest.json", tmp / "manifest.json")
    os.rename(tmp, out)
    print(f"tiled {copies} copies into {out} in {time.perf_counter() - t0:.1f} s", flush=True)
    return out, n_base * copies


def worker(engine: str, market: Path, out: Path, threads: int, memory_limit: str, master: str) -> None:
    """Run the aggregation on one engine, print timings as JSON, write the tables for comparison."""
    from c2m.data import default_project
    from c2m.signals import Signals

    project = default_project()
    t0, c0 = time.perf_counter(), _tree_cpu(os.getpid())
    options: dict[str, object] = {}
    session = None
    log_dir = out / "spark-events"
    if engine == "spark":
        from c2m.signals import spark_session

        log_dir.mkdir()
        config = {"spark.driver.memory": "2g", "spark.eventLog.enabled": "true",
                  "spark.eventLog.dir": f"file:{log_dir}", "spark.eventLog.compress": "false",
                  "spark.eventLog.rolling.enabled": "false"}
        session = options["session"] = spark_session(master, app_name="c2m-bench", config=config)
    else:
        options.update(threads=threads, memory_limit=memory_limit)
    times = {"startup_s": time.perf_counter() - t0, "startup_cpu_s": _tree_cpu(os.getpid()) - c0}

    def step(name: str, run: Callable[[], Any]) -> Any:
        if session is not None:
            session.sparkContext.setJobDescription(name)
        t, c = time.perf_counter(), _tree_cpu(os.getpid())
        result = run()
        times[f"{name}_s"], times[f"{name}_cpu_s"] = time.perf_counter() - t, _tree_cpu(os.getpid()) - c
        return result

    with Signals(market, engine=engine, project=project, **options) as sig:  # type: ignore[arg-type]
        rows = step("validate", lambda: sig.check_events().rows)
        by_city = step("interest_city", lambda: sig.interest_by_level(project, by=("city",)))
        by_age = step("interest_city_age", lambda: sig.interest_by_level(project, by=("city", "age_band")))
        profiles = step("profiles", lambda: sig.segment_profiles(by=("city",)))
    names = ("validate", "interest_city", "interest_city_age", "profiles")
    times["total_s"] = sum(times[f"{n}_s"] for n in names)
    times["total_cpu_s"] = sum(times[f"{n}_cpu_s"] for n in names)
    if session is not None:
        session.stop()
        times["spark_stages"] = _spark_stage_metrics(log_dir)  # type: ignore[assignment]
    by_city.write_parquet(out / f"{engine}-city.parquet")
    by_age.write_parquet(out / f"{engine}-city-age.parquet")
    profiles.write_parquet(out / f"{engine}-profiles.parquet")
    print(json.dumps({"engine": engine, "rows": rows, **times}), flush=True)


def measure(engine: str, market: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", engine, "--market", str(market), "--out", str(out),
           "--threads", str(args.threads), "--memory-limit", args.memory_limit, "--spark-master", args.spark_master]
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = [0]

    def poll() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            time.sleep(0.05)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    stdout, stderr = proc.communicate()
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"{engine} failed:\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - started
    result["peak_mb"] = peak[0] / 2**20
    return result


def compare(out: Path) -> str:
    """Largest differences between the engines' tables (counts exact, rates 1e-9)."""
    notes = []
    for name in ("city", "city-age", "profiles"):
        a, b = pl.read_parquet(out / f"duckdb-{name}.parquet"), pl.read_parquet(out / f"spark-{name}.parquet")
        assert a.schema == b.schema and a.height == b.height, name
        worst = 0.0
        for col, dtype in a.schema.items():
            if dtype.is_float():
                x, y = a[col].to_numpy(), b[col].to_numpy()
                ok = np.isfinite(x) & np.isfinite(y)
                rel = np.abs(x[ok] - y[ok]) / np.maximum(np.abs(x[ok]), 1e-300)
                worst = max(worst, float(rel.max()) if rel.size else 0.0)
            else:
                assert a[col].equals(b[col]), (name, col)
        notes.append(f"{name}: identical keys and counts, max relative difference {worst:.1e}")
    return "; ".join(notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--base-events", type=int, default=2_000_000, help="events of the generated base market")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "c2m-bench-signals")
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", default="3GB", help="DuckDB memory limit (spills above)")
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--market", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.market, args.out, args.threads, args.memory_limit, args.spark_master)
        return
    args.cache.mkdir(parents=True, exist_ok=True)
    market, rows = tiled_market(args.cache, args.events, min(args.base_events, args.events))
    print(f"market {market}: {rows:,} events, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
    out = Path(tempfile.mkdtemp(prefix="bench-signals-"))
    results = {}
    for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
        results[engine] = measure(engine, market, out, args)
        print(json.dumps(results[engine]), flush=True)
    steps = ("startup", "validate", "interest_city", "interest_city_age", "profiles", "total")
    keys = [k for s in steps for k in (f"{s}_s", f"{s}_cpu_s")] + ["wall_s", "peak_mb"]
    names = list(results)
    print(f"\n{'':22}" + "".join(f"{n:>12}" for n in names))
    for key in keys:
        print(f"{key:22}" + "".join(f"{results[n][key]:12.1f}" for n in names))
    if "spark" in results:
        print("\nspark per step: tasks, shuffle written MB, shuffle records, spilled to disk MB")
        for name, m in sorted(results["spark"].get("spark_stages", {}).items()):
            print(f"  {name:20} {m['tasks']:6.0f} {m['shuffle_write_mb']:9.1f} "
                  f"{m['shuffle_records']:13,.0f} {m['spill_disk_mb']:9.1f}")
    if {"duckdb", "spark"} <= set(results):
        ratio = results["spark"]["total_s"] / results["duckdb"]["total_s"]
        wall = results["spark"]["wall_s"] / results["duckdb"]["wall_s"]
        print(f"\nspark / duckdb time: {ratio:.1f}x on the queries, {wall:.1f}x wall clock with start-up")
        print(compare(out))
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
