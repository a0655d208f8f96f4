"""`c2m serve` migrates a fresh database and answers over HTTP."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx
from tests.conftest import c2m_command


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_creates_the_database_and_serves_the_booking_api(tmp_path: Path) -> None:
    port = _free_port()
    database = tmp_path / "c2m.db"
    process = subprocess.Popen(
        [*c2m_command(), "serve", "--database-url", f"sqlite:///{database}", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "server did not start within 60 s"
                time.sleep(0.3)
        assert health.status_code == 200
        projects = httpx.get(f"http://127.0.0.1:{port}/api/v1/projects", timeout=5).json()
        assert projects and database.exists()
    finally:
        process.terminate()
        process.wait(timeout=20)
