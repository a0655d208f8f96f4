"""`c2m serve --workers N`: connections spread over the workers, a dead worker replaced, a busy port refused."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.conftest import run_c2m
from tests.platform._server import Server, running_server

from c2m.platform._workers import reuseport_supported

pytestmark = pytest.mark.skipif(
    not (reuseport_supported() and sys.platform.startswith("linux")), reason="needs SO_REUSEPORT and Linux /proc"
)


def _workers(server: Server) -> list[int]:
    """Pids of the server's worker processes (children running the app, not multiprocessing's helpers)."""
    out = subprocess.run(["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True, check=False)
    workers = []
    for pid in map(int, out.stdout.split()):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
        except FileNotFoundError:  # gone meanwhile
            continue
        if "spawn_main" in command and "resource_tracker" not in command:
            workers.append(pid)
    return workers


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _load(url: str, connections: int, requests: int) -> None:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
        gate = asyncio.Semaphore(connections)

        async def one() -> None:
            async with gate:
                assert (await http.get("/api/v1/projects")).status_code == 200

        await asyncio.gather(*(one() for _ in range(requests)))


def test_a_burst_of_keep_alive_connections_is_spread_over_the_workers(tmp_path: Path) -> None:
    """A shared accept socket lets the first worker awake take the whole burst (measured 84% / 16%)."""
    with running_server(f"sqlite:///{tmp_path / 'c2m.db'}", tmp_path / "serve.log", workers=2) as server:
        pids = _workers(server)
        assert len(pids) == 2, server.output()
        before = {p: _cpu_seconds(p) for p in pids}
        asyncio.run(_load(server.url, connections=64, requests=2000))
        used = {p: _cpu_seconds(p) - before[p] for p in pids}
    shares = [u / sum(used.values()) for u in used.values()]
    assert min(shares) > 0.25, f"CPU seconds per worker: {used}"


def test_a_worker_that_dies_is_replaced_and_the_server_keeps_answering(tmp_path: Path) -> None:
    with running_server(f"sqlite:///{tmp_path / 'c2m.db'}", tmp_path / "serve.log", workers=2) as server:
        first = _workers(server)
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = _workers(server)
            if len(now) == 2 and first[0] not in now:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"no replacement worker within 60 s:\n{server.output()}")
        for _ in range(20):  # whichever socket the kernel picks, a live worker answers
            with httpx.Client(base_url=server.url, timeout=30) as http:
                assert http.get("/healthz").status_code == 200
        assert "exited with code -9; starting another" in server.output()


def test_serving_on_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with running_server(f"sqlite:///{tmp_path / 'c2m.db'}", tmp_path / "serve.log", workers=2) as server:
        port = server.url.rsplit(":", 1)[1]
        second = run_c2m("serve", "--database-url", f"sqlite:///{tmp_path / 'other.db'}", "--port", port,
                         "--workers", "2", timeout=120)
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"127.0.0.1:{port} is already in use" in second.stdout + second.stderr
        assert "Traceback" not in second.stdout + second.stderr
        with httpx.Client(base_url=server.url) as http:  # the first server is untouched
            assert http.get("/healthz").status_code == 200
