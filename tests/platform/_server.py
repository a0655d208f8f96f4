"""A real `c2m serve` subprocess for the HTTP tests, and the calls a person makes to it.

`running_server` starts ``c2m serve --workers N`` on a free loopback port in its own process
group (settings as ``C2M_*`` environment variables), waits for ``/healthz`` and stops it at the
end; `Server.kill` is ``kill -9`` of the whole group (supervisor and workers). The functions
below the server (`sign_in`, `book`, `claim`, `start_survey`, `answer`, `preorder`) are the only
place the HTTP tests say how a person books, claims, answers or pre-orders.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine
from tests.conftest import c2m_command

from c2m.platform import make_engine
from c2m.platform._identity import read_outbox

PROJECT = "swap-city-ev"
API = f"/api/v1/projects/{PROJECT}"
START_TIMEOUT_S = 120
PREORDER_CHOICE = {"variant": "p65k", "colour": "blue", "battery": "ncm52", "ownership": "rent", "rent_plan": "capped"}


def free_port() -> int:
    """A TCP port free on the loopback interface (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(settings: Mapping[str, Any]) -> dict[str, str]:
    """``settings`` as ``C2M_<NAME>`` variables (lists and dicts as JSON) on top of this environment."""
    env = {k: v for k, v in os.environ.items() if k != "C2M_SERVE_SETTINGS"}
    for name, value in settings.items():
        env[f"C2M_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


@dataclass
class Server:
    """A `c2m serve` process group listening on ``url``; its output goes to ``log``."""

    database_url: str
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    @cached_property
    def engine(self) -> Engine:
        """An engine on the server's database (to read what the dev code sender 'sent')."""
        return make_engine(self.database_url)

    def _close_engine(self) -> None:
        if "engine" in self.__dict__:
            self.__dict__.pop("engine").dispose()

    def output(self, tail: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-tail:]

    def kill(self) -> None:
        """``kill -9`` the supervisor and every worker at once, then reap the supervisor."""
        self._close_engine()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """Ask the process group to shut down; kill it if it has not within 20 s."""
        self._close_engine()
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


def start_server(
    database_url: str, log: Path, *, workers: int = 2, settings: Mapping[str, Any] | None = None
) -> Server:
    """Start ``c2m serve`` on ``database_url`` and return once ``/healthz`` answers 200."""
    port = free_port()
    command = [*c2m_command(), "serve", "--database-url", database_url, "--port", str(port), "--workers", str(workers)]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=server_env(settings or {}), start_new_session=True
        )
    server = Server(database_url, f"http://127.0.0.1:{port}", log, process)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise AssertionError(f"c2m serve did not come up within {START_TIMEOUT_S} s:\n{server.output()}")
        time.sleep(0.2)


@contextmanager
def running_server(
    database_url: str, log: Path, *, workers: int = 2, settings: Mapping[str, Any] | None = None
) -> Iterator[Server]:
    """`start_server`, stopped (killed if need be) when the block ends."""
    server = start_server(database_url, log, workers=workers, settings=settings)
    try:
        yield server
    finally:
        server.stop()


_TLS = ssl.create_default_context()  # never used on http://, but shared it makes a client cheap to create


def client(server: Server, connections: int = 20) -> httpx.Client:
    """An HTTP client for ``server`` (threads can share it, up to ``connections`` requests at once).

    For hundreds of simultaneous requests give each thread its own client: one pool of
    hundreds of connections costs the client more CPU than the server spends answering.
    """
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.Client(base_url=server.url, timeout=60, limits=limits, verify=_TLS)


# ---------------------------------------------------------------------- acting as a person
@dataclass(frozen=True)
class Person:
    """Someone the platform knows by a phone number or e-mail; ``headers`` go with each of their requests."""

    contact: str
    headers: dict[str, str] = field(default_factory=dict)


def sign_in(server: Server, http: httpx.Client, contact: str) -> Person:
    """Sign in as the owner of ``contact``: ask for a one-time code, read it from the dev outbox, verify it."""
    sent = http.post("/api/v1/identity/code", json={"contact": contact})
    assert sent.status_code == 202, sent.text
    code = read_outbox(server.engine, contact)[0]
    verified = http.post("/api/v1/identity/verify", json={"contact": contact, "code": code})
    assert verified.status_code == 200, verified.text
    return Person(contact, {"Authorization": f"Bearer {verified.json()['token']}"})


def sign_in_all(server: Server, contacts: list[str], threads: int = 8) -> list[Person]:
    """`sign_in` for each contact (``threads`` at a time), in order."""
    with client(server, connections=threads) as http, ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(lambda contact: sign_in(server, http, contact), contacts))


def book(http: httpx.Client, who: Person, slot_id: int) -> httpx.Response:
    """Book a test drive in ``slot_id``."""
    return http.post(f"{API}/bookings", json={"slot_id": slot_id}, headers=who.headers)


def booking(http: httpx.Client, who: Person, booking_id: str) -> httpx.Response:
    """Look at one's booking ``booking_id``."""
    return http.get(f"{API}/bookings/{booking_id}", headers=who.headers)


def claim(http: httpx.Client, who: Person, benefit: str) -> httpx.Response:
    """Claim the early-purchase benefit ``benefit``."""
    return http.post(f"{API}/benefits/{benefit}/claims", headers=who.headers)


def preorder(http: httpx.Client, who: Person, key: str, **choice: str | None) -> httpx.Response:
    """Reserve a car (`PREORDER_CHOICE` unless changed) under the idempotency ``key``."""
    body = {**PREORDER_CHOICE, **choice}
    return http.post(f"{API}/preorders", json=body, headers={**who.headers, "Idempotency-Key": key})


def order(http: httpx.Client, who: Person, order_id: str) -> httpx.Response:
    """Look at one's pre-order ``order_id``."""
    return http.get(f"{API}/preorders/{order_id}", headers=who.headers)


def pay_deposit(http: httpx.Client, who: Person, order_id: str) -> httpx.Response:
    """Pay the deposit of pre-order ``order_id``."""
    return http.post(f"{API}/preorders/{order_id}/deposit", headers=who.headers)


def start_survey(http: httpx.Client) -> httpx.Response:
    """Start the (anonymous) survey as a qualified respondent; the body's ``token`` identifies them."""
    return http.post(f"{API}/survey/start", json={"lang": "en", "screening": {"adult": True, "buys_within_24m": True}})


def answer(http: httpx.Client, token: str, task: int, choice: int | str) -> httpx.Response:
    """Answer choice task ``task`` of the respondent with ``token``."""
    return http.post(f"{API}/survey/{token}/answers", json={"task": task, "choice": choice})


def slots(http: httpx.Client, store: str) -> list[dict[str, Any]]:
    """The future test-drive slots of ``store``, by start time."""
    response = http.get(f"{API}/slots", params={"store": store})
    assert response.status_code == 200, response.text
    return list(response.json())
