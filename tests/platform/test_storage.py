"""Migrations, seeding and the no-oversell guarantees, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.pool import NullPool
from tests.platform._person import verified

from c2m.domain import Project
from c2m.platform import (
    ConflictError,
    InvalidError,
    NotFoundError,
    Platform,
    PlatformError,
    Settings,
    current_revision,
    head_revision,
    init_db,
    make_engine,
    person_hash,
    seed,
    upgrade,
)
from c2m.platform._db import slot_starts, write_session
from c2m.platform._models import Base, BenefitClaimRow, BenefitRow, BookingRow, ProjectRow, SlotRow, StoreRow

PROJECT = "swap-city-ev"

TODAY = date.today()
TOMORROW = TODAY + timedelta(days=1)
TABLES = {
    "project", "store", "slot", "booking", "benefit", "benefit_claim", "admin_user", "admin_session", "job",
    "login_code", "code_outbox", "person_session", "service_slot", "service_appointment",
}


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            m.__tablename__: conn.execute(select(func.count()).select_from(m)).scalar_one()
            for m in (ProjectRow, StoreRow, SlotRow, BookingRow, BenefitRow, BenefitClaimRow)
        }


@pytest.fixture
def engine(settings: Settings, project: Project) -> Iterator[Engine]:
    engine = init_db(settings.database_url, settings, projects=[project], today=TODAY)
    yield engine
    engine.dispose()


@pytest.fixture
def platform(engine: Engine, settings: Settings) -> Platform:
    return Platform(engine, settings)


def _tomorrow_slots(platform: Platform, store: str = "SHA-001") -> list[int]:
    return [s.id for s in platform.slots(PROJECT, store, TOMORROW)]


def test_migrations_create_the_schema_and_are_idempotent(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(db_url)
    try:
        assert current_revision(engine) is None
        assert not TABLES & set(inspect(engine).get_table_names())
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        assert set(inspect(engine).get_table_names()) >= TABLES
        upgrade(engine)  # a second run is a no-op
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:  # the migration builds exactly what the models describe
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        indexes = {ix["name"]: ix for ix in inspect(engine).get_indexes("booking")}
        assert indexes["uq_booking_active_person"]["unique"]
    finally:
        engine.dispose()


def test_seeding_is_idempotent_and_complete(engine: Engine, settings: Settings, project: Project) -> None:
    counts = _counts(engine)
    per_day = len(slot_starts(TODAY, settings))
    assert per_day == 9  # 09:00, 10:00, ..., 17:00: the last one ends at 18:00
    assert counts["project"] == 1
    assert counts["store"] == len(project.stores) == 332
    assert counts["slot"] == len(project.stores) * settings.slot_days_ahead * per_day
    assert counts["benefit"] == 2
    seed(engine, settings, [project], today=TODAY)
    init_db(settings.database_url, settings, projects=[project], today=TODAY).dispose()
    assert _counts(engine) == counts
    # a day later, one more day of slots is added and nothing else changes
    seed(engine, settings, [project], today=TOMORROW)
    after = _counts(engine)
    assert after["slot"] == counts["slot"] + len(project.stores) * per_day
    assert {k: v for k, v in after.items() if k != "slot"} == {k: v for k, v in counts.items() if k != "slot"}


def _race(n: int, action: Callable[[int], object]) -> tuple[list[object], list[BaseException]]:
    """Run ``action(i)`` in ``n`` threads released together; results and errors."""
    barrier = threading.Barrier(n)
    results: list[object] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            out = action(i)
        except BaseException as exc:
            with lock:
                errors.append(exc)
        else:
            with lock:
                results.append(out)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results, errors


@pytest.fixture
def racing_platform(engine: Engine, settings: Settings) -> Iterator[Platform]:
    """Every call opens its own connection: 40 threads really hold 40 connections."""
    racing = make_engine(settings.database_url, poolclass=NullPool)
    yield Platform(racing, settings)
    racing.dispose()


def test_forty_threads_race_for_five_seats(platform: Platform, racing_platform: Platform, engine: Engine) -> None:
    slot_id = _tomorrow_slots(platform)[0]
    people = [verified(platform, f"1390000{i:04d}") for i in range(40)]
    results, errors = _race(40, lambda i: racing_platform.book(PROJECT, slot_id, people[i]))
    assert len(results) == 5
    assert len(errors) == 35
    assert all(isinstance(e, ConflictError) and e.code == "slot_full" and e.status == 409 for e in errors), errors
    assert platform.slot(slot_id).booked == 5
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(BookingRow).where(BookingRow.slot_id == slot_id)).scalar()
    assert n == 5


def test_forty_threads_race_for_a_benefit_quota_of_five(platform: Platform, racing_platform: Platform) -> None:
    people = [verified(platform, f"u{i}@example.cn") for i in range(40)]
    results, errors = _race(40, lambda i: racing_platform.claim(PROJECT, "charging-coupon", people[i]))
    assert len(results) == 5
    assert all(isinstance(e, ConflictError) and e.code == "quota_exhausted" for e in errors), errors
    benefit = {b.code: b for b in platform.benefits(PROJECT)}["charging-coupon"]
    assert (benefit.granted, benefit.remaining) == (5, 0)


def test_one_person_racing_for_many_slots_gets_one(platform: Platform, racing_platform: Platform) -> None:
    slots = _tomorrow_slots(platform, "BEI-001") + _tomorrow_slots(platform, "BEI-002")
    me = verified(platform, "+86 138-0013-8000")
    results, errors = _race(len(slots), lambda i: racing_platform.book(PROJECT, slots[i], me))
    assert len(results) == 1
    assert all(isinstance(e, ConflictError) and e.code == "already_booked" for e in errors), errors
    assert sum(platform.slot(s).booked for s in slots) == 1  # the losers' increments were rolled back


def test_one_claim_per_person_and_project(platform: Platform) -> None:
    me = verified(platform, "a@example.cn")
    platform.claim(PROJECT, "charging-coupon", me)
    assert person_hash("A@Example.cn ") == me.hash  # the same person, written differently
    with pytest.raises(ConflictError) as info:
        platform.claim(PROJECT, "rent-waiver", me)
    assert info.value.code == "already_claimed"
    granted = {b.code: b.granted for b in platform.benefits(PROJECT)}
    assert granted == {"charging-coupon": 1, "rent-waiver": 0}
    with pytest.raises(NotFoundError):
        platform.claim(PROJECT, "free-car", verified(platform, "b@example.cn"))


def test_cancel_frees_the_seat_and_allows_a_new_booking(platform: Platform) -> None:
    a, b = _tomorrow_slots(platform)[:2]
    me = verified(platform, "13800138000")
    booking = platform.book(PROJECT, a, me)
    assert platform.slot(a).booked == 1
    assert person_hash("138 0013 8000", platform.settings.contact_salt) == me.hash  # written differently
    with pytest.raises(ConflictError):
        platform.book(PROJECT, b, me)
    with pytest.raises(NotFoundError):  # someone else cannot cancel it
        platform.cancel(PROJECT, booking.id, verified(platform, "13900139000"))
    cancelled = platform.cancel(PROJECT, booking.id, me)
    assert cancelled.status == "cancelled"
    assert platform.slot(a).booked == 0
    with pytest.raises(ConflictError) as info:
        platform.cancel(PROJECT, booking.id, me)
    assert info.value.code == "already_cancelled"
    assert platform.slot(a).booked == 0
    again = platform.book(PROJECT, b, me)
    assert again.status == "booked" and platform.slot(b).booked == 1


def test_rebook_moves_the_seat_atomically(platform: Platform) -> None:
    a, b, full = _tomorrow_slots(platform)[:3]
    for i in range(5):
        platform.book(PROJECT, full, verified(platform, f"1370000{i:04d}"))
    booking = platform.book(PROJECT, a, verified(platform, "13800138000"))
    # to a full slot: refused, and nothing moved
    with pytest.raises(ConflictError) as info:
        platform.rebook(PROJECT, booking.id, full)
    assert info.value.code == "slot_full"
    assert (platform.slot(a).booked, platform.slot(full).booked) == (1, 5)
    assert platform.booking(PROJECT, booking.id).status == "booked"
    # to an unknown slot: refused, and nothing moved
    with pytest.raises(NotFoundError):
        platform.rebook(PROJECT, booking.id, 10**9)
    assert platform.slot(a).booked == 1
    # to a free slot: the old seat is freed and the new one taken
    moved = platform.rebook(PROJECT, booking.id, b)
    assert (platform.slot(a).booked, platform.slot(b).booked) == (0, 1)
    assert moved.status == "booked" and moved.slot.id == b
    old = platform.booking(PROJECT, booking.id)
    assert old.status == "cancelled" and old.replaced_by == moved.id
    with pytest.raises(ConflictError):
        platform.rebook(PROJECT, moved.id, b)


def test_past_and_unknown_slots_are_refused(platform: Platform, engine: Engine) -> None:
    store_id = platform.store(PROJECT, "SHA-001").id
    with write_session(engine) as session:
        past = SlotRow(store_id=store_id, start=datetime(2020, 1, 1, 9), minutes=60, capacity=5, booked=0)
        session.add(past)
        session.flush()
        past_id = past.id
    me = verified(platform, "13800138000")
    with pytest.raises(ConflictError) as info:
        platform.book(PROJECT, past_id, me)
    assert info.value.code == "slot_past"
    assert platform.slot(past_id).booked == 0
    with pytest.raises(NotFoundError):
        platform.book(PROJECT, 10**9, me)
    with pytest.raises(NotFoundError):
        platform.book("no-such-project", past_id, me)
    with pytest.raises(InvalidError) as invalid:
        platform.identity_request_code("call me")
    assert invalid.value.field == "contact"


def test_capacity_is_also_a_database_constraint(platform: Platform, engine: Engine) -> None:
    from sqlalchemy import update
    from sqlalchemy.exc import IntegrityError

    slot_id = _tomorrow_slots(platform)[0]
    with pytest.raises(IntegrityError), write_session(engine) as session:
        session.execute(update(SlotRow).where(SlotRow.id == slot_id).values(booked=6))
    assert platform.slot(slot_id).booked == 0


def test_errors_are_platform_errors_with_statuses() -> None:
    statuses = Counter({NotFoundError: 404, ConflictError: 409, InvalidError: 422})
    for cls, status in statuses.items():
        assert issubclass(cls, PlatformError) and cls("x").status == status


def test_twenty_threads_cancelling_one_booking_free_one_seat(platform: Platform, racing_platform: Platform) -> None:
    a, b = _tomorrow_slots(platform)[:2]
    platform.book(PROJECT, a, verified(platform, "13600000000"))  # a second seat in the slot that must stay taken
    booking = platform.book(PROJECT, a, verified(platform, "13800138000"))
    results, errors = _race(20, lambda i: racing_platform.cancel(PROJECT, booking.id))
    assert len(results) == 1
    assert all(isinstance(e, ConflictError) and e.code == "already_cancelled" for e in errors), errors
    assert platform.slot(a).booked == 1
    # and racing rebooks of one booking move it once
    moving = platform.book(PROJECT, a, verified(platform, "13900000000"))
    results, errors = _race(20, lambda i: racing_platform.rebook(PROJECT, moving.id, b))
    assert len(results) == 1 and all(isinstance(e, ConflictError) for e in errors), errors
    assert (platform.slot(a).booked, platform.slot(b).booked) == (1, 1)
