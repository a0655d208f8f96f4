"""Load on `c2m serve`: survey answers and test-drive bookings at a fixed rate, then at saturation.

Starts ``c2m serve --workers 2`` on a fresh PostgreSQL database (or ``--database-url``), signs
people in and starts survey respondents beforehand, then sends an open-loop schedule of requests
(one every 1/rate s, whatever the answers do, so a slow server cannot slow the load down and hide
its own latency): half survey answers, half bookings and their cancellations. Latency is measured
from each request's scheduled time (no coordinated omission). Loopback only, bounded in time.

    python benchmarks/bench_platform.py --rate 200 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import psycopg

from c2m.platform import make_engine, read_outbox

PROJECT = "swap-city-ev"
API = f"/api/v1/projects/{PROJECT}"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(database_url: str, workers: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "C2M_SLOT_CAPACITY": "100000", "C2M_SLOT_DAYS_AHEAD": "3", "C2M_SURVEY_TASKS": "12"}
    exe = Path(sys.executable).with_name("c2m")
    out = log.open("wb")
    process = subprocess.Popen(
        [str(exe), "serve", "--database-url", database_url, "--port", str(port), "--workers", str(workers)],
        stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.3)
    os.killpg(process.pid, signal.SIGKILL)
    raise SystemExit(f"c2m serve did not start:\n{log.read_text()[-2000:]}")


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` so far (Linux /proc; 0 where unreadable)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _server_pids(process: subprocess.Popen[bytes]) -> list[int]:
    out = subprocess.run(["pgrep", "-g", str(process.pid)], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split()]


def _prepare(
    base: str, database_url: str, people: int, respondents: int, batch: int
) -> tuple[list[dict], list[list], list[int]]:
    engine = make_engine(database_url)
    headers = []
    with httpx.Client(base_url=base, timeout=30) as http:
        for i in range(people):
            contact = f"13{batch}{i:08d}"
            http.post("/api/v1/identity/code", json={"contact": contact}).raise_for_status()
            code = read_outbox(engine, contact)[0]
            token = http.post("/api/v1/identity/verify", json={"contact": contact, "code": code}).json()["token"]
            headers.append({"Authorization": f"Bearer {token}"})
        answers = []
        for _ in range(respondents):
            state = http.post(f"{API}/survey/start",
                              json={"screening": {"adult": True, "buys_within_24m": True}}).json()
            answers.append([(state["token"], t) for t in range(1, state["n_tasks"] + 1)])
        stores = [s["id"] for s in http.get(f"{API}/stores", params={"city": "Shanghai"}).json()]
        slots = [s["id"] for st in stores for s in http.get(f"{API}/slots", params={"store": st}).json()]
    engine.dispose()
    return headers, answers, slots


class _Response:
    __slots__ = ("body", "status_code")

    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code, self.body = status_code, body

    def json(self) -> dict:
        return json.loads(self.body)


class _LeanClient:
    """HTTP/1.1 keep-alive requests over raw asyncio streams (the caller bounds how many at once).

    A load generator must cost less CPU than the server it loads: on the same 2 cores httpx's
    AsyncClient spent ~4 ms of CPU per request, more than the server (so the figures measured
    the client). This sends one request and reads one ``Content-Length`` response per turn.
    """

    def __init__(self, base: str) -> None:
        host_port = base.split("://", 1)[1]
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)
        self.idle: asyncio.LifoQueue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.LifoQueue()

    async def post(self, path: str, body: dict | None = None, headers: dict | None = None) -> _Response:
        payload = json.dumps(body).encode() if body is not None else b""
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        request = (head + f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload
        for attempt in (1, 2):  # a kept-alive connection the server timed out is retried once on a new one
            reused, answered = attempt == 1 and not self.idle.empty(), False
            reader, writer = self.idle.get_nowait() if reused else await asyncio.open_connection(
                self.host, self.port)
            try:
                writer.write(request)
                status_line = await reader.readline()
                if not status_line:
                    raise ConnectionError("connection closed by the server")
                answered = True
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                data = await reader.readexactly(length)
                break
            except (OSError, asyncio.IncompleteReadError) as exc:
                writer.close()
                if not reused or answered:  # never resend what was answered
                    raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc
        self.idle.put_nowait((reader, writer))
        return _Response(int(status_line.split(b" ", 2)[1]), data)

    async def close(self) -> None:
        while not self.idle.empty():
            _, writer = self.idle.get_nowait()
            writer.close()


async def _run(base: str, rate: float, seconds: float, headers: list[dict], answers: list[list],
               slots: list[int]) -> tuple[np.ndarray, dict[str, int], float]:
    """Open loop at ``rate`` (or as fast as 64 connections go when rate is 0); latencies in ms."""
    # task by task across respondents, so each respondent's answers arrive in order (a skipped task is a 409)
    queue = collections.deque(sorted((a for per in answers for a in per), key=lambda a: a[1]))
    n = int(rate * seconds) if rate else len(queue) + len(headers) * 2
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    http = _LeanClient(base)
    booked: dict[int, str] = {}
    busy: set[int] = set()  # people with a booking request in flight (a second would be a 409)

    gate = asyncio.Semaphore(64)  # requests in flight; the rest wait here (and their wait counts as latency)

    async def one(i: int, due: float) -> None:
        try:
            async with gate:
                r, kind = await request(i)
        except ConnectionError as exc:
            statuses[str(exc).split(":")[0]] = statuses.get(str(exc).split(":")[0], 0) + 1
            return
        latencies.append((time.perf_counter() - due) * 1000)
        key = f"{kind} {r.status_code}"
        statuses[key] = statuses.get(key, 0) + 1

    async def request(i: int) -> tuple[_Response, str]:
        if i % 2 == 0 and queue:
            token, task = queue.popleft()
            r = await http.post(f"{API}/survey/{token}/answers", {"task": task, "choice": 1})
            kind = "answer"
        else:
            who = (i // 2) % len(headers)
            while who in busy:
                who = (who + 1) % len(headers)
            busy.add(who)
            try:
                if who in booked:
                    r = await http.post(f"{API}/bookings/{booked.pop(who)}/cancel", headers=headers[who])
                    kind = "cancel"
                else:
                    r = await http.post(f"{API}/bookings", {"slot_id": slots[i % len(slots)]}, headers[who])
                    if r.status_code == 201:
                        booked[who] = r.json()["id"]
                    kind = "book"
            finally:
                busy.discard(who)
        return r, kind

    start = time.perf_counter()
    tasks = []
    for i in range(n):
        due = start + (i / rate if rate else 0.0)
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due if rate else time.perf_counter())))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    await http.close()
    return np.array(latencies), statuses, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200, help="requests per second of the fixed-rate run")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", help="default: a fresh database on PostgreSQL at 127.0.0.1:5432")
    args = parser.parse_args()
    name = None
    url = args.database_url
    if url is None:
        name = f"c2m_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    log = Path(tempfile.mkdtemp()) / "serve.log"
    process, base = _serve(url, args.workers, log)
    try:
        n = int(args.rate * args.seconds)
        headers, answers, slots = _prepare(base, url, max(100, n // 8), n // 12 + 20, batch=1)
        pids = _server_pids(process)
        cpu = []  # (server, load generator) CPU seconds of each run
        server0, client0 = _cpu_seconds(pids), time.process_time()
        fixed, fixed_status, fixed_s = asyncio.run(_run(base, args.rate, args.seconds, headers, answers, slots))
        cpu.append((_cpu_seconds(pids) - server0, time.process_time() - client0))
        headers2, answers2, slots2 = _prepare(base, url, max(100, n // 8), n // 12 + 20, batch=2)
        server0, client0 = _cpu_seconds(pids), time.process_time()
        sat, sat_status, sat_s = asyncio.run(_run(base, 0, 0, headers2, answers2, slots2))
        cpu.append((_cpu_seconds(pids) - server0, time.process_time() - client0))
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        if name:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    errors = sum(v for k, v in fixed_status.items() if not k.endswith(("200", "201")))
    where = "PostgreSQL" if name else url.split(":")[0]
    print(f"c2m serve --workers {args.workers} on {where}, {os.cpu_count()} cores, load generator on the same machine")
    print(f"{'run':<28}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'server CPU ms/req':>19}{'client CPU ms/req':>19}")
    runs = ((f"fixed rate {args.rate:g}/s", fixed, fixed_s), ("saturation (64 in flight)", sat, sat_s))
    for (label, lat, secs), (server_cpu, client_cpu) in zip(runs, cpu, strict=True):
        p50, p99 = np.percentile(lat, [50, 99])
        print(f"{label:<28}{lat.size:>9}{lat.size / secs:>9.0f}{p50:>9.1f}{p99:>9.1f}{lat.max():>9.1f}"
              f"{1000 * server_cpu / lat.size:>19.2f}{1000 * client_cpu / lat.size:>19.2f}")
    print("answers at fixed rate:", json.dumps(dict(sorted(fixed_status.items()))), f"(non-2xx: {errors})")
    print("answers at saturation:", json.dumps(dict(sorted(sat_status.items()))))


if __name__ == "__main__":
    main()
