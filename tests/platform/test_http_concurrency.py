"""No overselling through HTTP: racing requests against `c2m serve --workers 2`, on SQLite and PostgreSQL.

500 signed-in people book one slot of 50 seats at once, then 1,000 claim one benefit of quota
100 at once. Exactly the capacity succeeds (201), every other request is a 409 with the stable
code (no 500, no "database is locked"), and the database agrees with the acknowledgements.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
from sqlalchemy import Engine, func, select
from tests.platform._server import (
    API,
    Person,
    Server,
    book,
    claim,
    client,
    running_server,
    sign_in_all,
    slots,
)

from c2m.platform import make_engine
from c2m.platform._models import BenefitClaimRow, BenefitRow, BookingRow, SlotRow

SEATS, BOOKERS = 50, 500
QUOTA, CLAIMANTS = 100, 1000
BENEFIT = "race-coupon"
SETTINGS = {
    "slot_capacity": SEATS,
    "slot_days_ahead": 2,
    "benefits": [{"code": BENEFIT, "name": "Race coupon", "name_zh": "竞速券", "quota": QUOTA}],
}


def race(
    server: Server, people: list[Person], attempt: Callable[[httpx.Client, Person], httpx.Response]
) -> list[httpx.Response]:
    """Every person's ``attempt`` at once: a thread and a connection each, released together by a barrier."""
    barrier = threading.Barrier(len(people))

    def one(http: httpx.Client, person: Person) -> httpx.Response:
        barrier.wait()
        return attempt(http, person)

    with ExitStack() as stack, ThreadPoolExecutor(max_workers=len(people)) as pool:
        clients = [stack.enter_context(client(server, connections=1)) for _ in people]
        return list(pool.map(one, clients, people))


def outcome(responses: list[httpx.Response]) -> Counter[tuple[int, str]]:
    """(status, error code) counts; successes count as (201, "")."""
    return Counter((r.status_code, r.json()["error"]["code"] if r.status_code >= 400 else "") for r in responses)


def check_seats(server: Server, engine: Engine, people: list[Person]) -> None:
    with client(server) as http:
        slot = slots(http, "SHA-001")[-1]  # tomorrow's last: it cannot start during the test
        assert (slot["capacity"], slot["booked"]) == (SEATS, 0)
        responses = race(server, people, lambda h, p: book(h, p, slot["id"]))
        after = next(s for s in slots(http, "SHA-001") if s["id"] == slot["id"])
    assert outcome(responses) == {(201, ""): SEATS, (409, "slot_full"): BOOKERS - SEATS}
    refused = [r.json()["error"] for r in responses if r.status_code == 409]
    assert all(e["status"] == 409 and "full" in e["message"] for e in refused)
    ids = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(ids) == SEATS
    assert (after["booked"], after["remaining"]) == (SEATS, 0)
    with engine.connect() as conn:
        booked = conn.execute(select(SlotRow.booked).where(SlotRow.id == slot["id"])).scalar_one()
        rows = set(conn.execute(select(BookingRow.id).where(BookingRow.slot_id == slot["id"])).scalars())
    assert booked == SEATS and rows == ids


def check_quota(server: Server, engine: Engine, people: list[Person]) -> None:
    responses = race(server, people, lambda h, p: claim(h, p, BENEFIT))
    with client(server) as http:
        benefit = next(b for b in http.get(f"{API}/benefits").json() if b["code"] == BENEFIT)
    assert outcome(responses) == {(201, ""): QUOTA, (409, "quota_exhausted"): CLAIMANTS - QUOTA}
    ids = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(ids) == QUOTA
    assert (benefit["granted"], benefit["remaining"]) == (QUOTA, 0)
    with engine.connect() as conn:
        row = conn.execute(select(BenefitRow.id, BenefitRow.granted).where(BenefitRow.code == BENEFIT)).one()
        claims = set(conn.execute(select(BenefitClaimRow.id).where(BenefitClaimRow.benefit_id == row.id)).scalars())
        total = conn.execute(select(func.count()).select_from(BenefitClaimRow)).scalar_one()
    assert row.granted == QUOTA and claims == ids and total == QUOTA


def test_racing_people_get_exactly_the_seats_and_the_quota(db_url: str, tmp_path: Path) -> None:
    with running_server(db_url, tmp_path / "serve.log", workers=2, settings=SETTINGS) as server:
        people = sign_in_all(server, [f"139{i:08d}" for i in range(CLAIMANTS)])
        engine = make_engine(db_url)
        try:
            check_seats(server, engine, people[:BOOKERS])
            check_quota(server, engine, people)
        finally:
            engine.dispose()
