"""Killing the server mid-load loses nothing it acknowledged, on SQLite and PostgreSQL.

Threads book test drives, answer the survey and place and pay pre-orders against
`c2m serve --workers 2` and record every 2xx answer; the whole process group is killed with
SIGKILL while requests are in flight; a new server on the same database must show every
acknowledged booking, answer and order, with consistent counts, and keep accepting writes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine, func, select
from tests.platform._server import (
    Person,
    Server,
    answer,
    book,
    booking,
    client,
    order,
    pay_deposit,
    preorder,
    running_server,
    sign_in,
    slots,
    start_server,
    start_survey,
)

from c2m.platform import make_engine
from c2m.platform._models import (
    BookingRow,
    LocalChargeRow,
    OrderEventRow,
    PaymentRow,
    PreorderRow,
    SlotRow,
    SurveyAnswerRow,
    SurveyRespondentRow,
)

SETTINGS = {"slot_capacity": 3, "slot_days_ahead": 2, "survey_versions": 4, "survey_tasks": 6, "survey_holdouts": 1}
ACKS_BEFORE_KILL = 150  # acknowledged writes before the kill: the load is well under way
THREADS_PER_KIND = 2


@dataclass
class Acks:
    """What the server acknowledged (2xx), recorded by the load threads."""

    bookings: dict[str, int] = field(default_factory=dict)  # booking id -> slot id
    people: dict[str, Person] = field(default_factory=dict)  # booking or order id -> its owner
    answers: dict[tuple[str, int], int] = field(default_factory=dict)  # (token, task) -> alt
    orders: set[str] = field(default_factory=set)
    paid: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        with self.lock:
            return len(self.bookings) + len(self.answers) + len(self.orders) + len(self.paid)


def _booker(server: Server, http: httpx.Client, acks: Acks, slot_ids: list[int], worker: int) -> None:
    for i in range(10**6):
        who = sign_in(server, http, f"137{worker:02d}{i:06d}")
        r = book(http, who, slot_ids[i % len(slot_ids)])
        if r.status_code == 201:
            with acks.lock:
                acks.bookings[r.json()["id"]] = r.json()["slot"]["id"]
                acks.people[r.json()["id"]] = who


def _respondent(http: httpx.Client, acks: Acks) -> None:
    while True:
        started = start_survey(http)
        assert started.status_code == 201, started.text
        token = started.json()["token"]
        for task in range(1, started.json()["n_tasks"] + 1):
            choice = 1 + task % 3
            if answer(http, token, task, choice).status_code == 201:
                with acks.lock:
                    acks.answers[(token, task)] = choice


def _buyer(server: Server, http: httpx.Client, acks: Acks, worker: int) -> None:
    for i in range(10**6):
        who = sign_in(server, http, f"buyer{worker}-{i}@crash.example.cn")
        created = preorder(http, who, f"crash-{worker}-{i}")
        if created.status_code != 201:
            continue
        order_id = created.json()["id"]
        with acks.lock:
            acks.orders.add(order_id)
            acks.people[order_id] = who
        if i % 2 == 0 and pay_deposit(http, who, order_id).status_code == 200:
            with acks.lock:
                acks.paid.add(order_id)


def _until_dead(work: Callable[[], None], errors: list[BaseException]) -> Callable[[], None]:
    """``work`` until the server goes away (a transport error); any other failure is kept for the test."""

    def run() -> None:
        try:
            work()
        except httpx.TransportError:
            pass  # the kill: expected
        except BaseException as exc:  # an assertion in a load thread must fail the test
            errors.append(exc)

    return run


def _load_then_kill(server: Server) -> Acks:
    """Run the load; SIGKILL the server group once enough is acknowledged, with requests in flight."""
    acks, errors = Acks(), []
    with client(server) as http:
        slot_ids = [s["id"] for store in ("SHA-001", "SHA-002") for s in slots(http, store)[-10:]]
        jobs: list[Callable[[], None]] = []
        for w in range(THREADS_PER_KIND):
            jobs += [
                lambda w=w: _booker(server, http, acks, slot_ids, w),
                lambda: _respondent(http, acks),
                lambda w=w: _buyer(server, http, acks, w),
            ]
        threads = [threading.Thread(target=_until_dead(job, errors)) for job in jobs]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while acks.count() < ACKS_BEFORE_KILL and time.monotonic() < deadline and not errors:
            time.sleep(0.02)
        in_flight = sum(t.is_alive() for t in threads)
        server.kill()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors
    assert acks.count() >= ACKS_BEFORE_KILL, f"only {acks.count()} writes acknowledged in 60 s:\n{server.output()}"
    assert in_flight == len(threads), "a load thread had stopped before the kill"
    assert acks.bookings and acks.answers and acks.orders and acks.paid, acks
    return acks


def _check_database(engine: Engine, acks: Acks) -> None:
    with engine.connect() as conn:
        bookings = dict(
            conn.execute(select(BookingRow.id, BookingRow.slot_id).where(BookingRow.status == "booked")).all()
        )
        active = dict(
            conn.execute(
                select(BookingRow.slot_id, func.count())
                .where(BookingRow.status == "booked")
                .group_by(BookingRow.slot_id)
            ).all()
        )
        seats = {
            sid: (booked, cap)
            for sid, booked, cap in conn.execute(select(SlotRow.id, SlotRow.booked, SlotRow.capacity))
        }
        answers = {
            (token, task): alt
            for token, task, alt in conn.execute(
                select(SurveyRespondentRow.token, SurveyAnswerRow.task, SurveyAnswerRow.alt).join(
                    SurveyAnswerRow, SurveyAnswerRow.respondent_id == SurveyRespondentRow.id
                )
            )
        }
        states = dict(conn.execute(select(PreorderRow.id, PreorderRow.state)).all())
        charges = list(
            conn.execute(select(PaymentRow.order_id, PaymentRow.reference).where(PaymentRow.kind == "charge"))
        )
        ledger = set(conn.execute(select(LocalChargeRow.reference).where(LocalChargeRow.kind == "charge")).scalars())
        events = dict(
            conn.execute(select(OrderEventRow.order_id, func.count()).group_by(OrderEventRow.order_id)).all()
        )
    # every acknowledged write is there, as acknowledged
    assert {b: bookings.get(b) for b in acks.bookings} == acks.bookings
    assert {k: answers.get(k) for k in acks.answers} == acks.answers
    assert acks.orders <= set(states)
    assert {o: states[o] for o in acks.paid} == dict.fromkeys(acks.paid, "deposit_paid")
    # and the counts agree with each other: seats taken = active bookings, never over capacity
    assert all(booked <= cap for booked, cap in seats.values())
    assert {sid: booked for sid, (booked, _) in seats.items() if booked} == active
    # a paid order has exactly one charge, which the provider's ledger holds; every order has its audit trail
    assert sorted(o for o, _ in charges) == sorted(o for o, s in states.items() if s == "deposit_paid")
    assert {ref for _, ref in charges} <= ledger
    assert all(events.get(o) == (2 if s == "deposit_paid" else 1) for o, s in states.items())


def _check_served(server: Server, acks: Acks) -> None:
    with client(server) as http:
        for booking_id, slot_id in list(acks.bookings.items())[:20]:
            r = booking(http, acks.people[booking_id], booking_id)
            assert r.status_code == 200 and (r.json()["status"], r.json()["slot"]["id"]) == ("booked", slot_id)
        for order_id in list(acks.paid)[:20]:
            r = order(http, acks.people[order_id], order_id)
            assert r.status_code == 200 and r.json()["state"] == "deposit_paid"
        # the restarted server takes new writes (no stale lock, no half-done transaction in the way)
        free = next(s for s in slots(http, "SHA-003") if s["remaining"] > 0)
        after = book(http, sign_in(server, http, "13600000001"), free["id"])
        assert after.status_code == 201, after.text


def test_killing_the_server_mid_load_loses_no_acknowledged_write(db_url: str, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    acks = _load_then_kill(start_server(db_url, log, workers=2, settings=SETTINGS))
    with running_server(db_url, log, workers=2, settings=SETTINGS) as server:
        engine = make_engine(db_url)
        try:
            _check_database(engine, acks)
        finally:
            engine.dispose()
        _check_served(server, acks)
