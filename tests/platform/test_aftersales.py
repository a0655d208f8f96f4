"""After-sales appointments: seeding, book/cancel/rebook, the car link, never overbooked under a race, API and
pages; on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool
from tests.platform._person import as_cookie, sign_in, verified

from c2m.domain import Project
from c2m.platform import (
    ConflictError,
    InvalidError,
    NotFoundError,
    Person,
    Platform,
    Settings,
    create_app,
    init_db,
    make_engine,
    seed,
)
from c2m.platform._aftersales import service_starts
from c2m.platform._db import write_session
from c2m.platform._models import ServiceAppointmentRow, ServiceSlotRow

PROJECT = "swap-city-ev"
API = f"/api/v1/projects/{PROJECT}/service"
TODAY = date.today()
TOMORROW = TODAY + timedelta(days=1)
CHOICE = {"variant": "p65k", "colour": "blue", "battery": "ncm52", "ownership": "buy", "rent_plan": None}


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(
        database_url=db_url, slot_days_ahead=2, service_capacity=3, survey_versions=2, survey_tasks=4
    )


@pytest.fixture
def engine(settings: Settings, project: Project) -> Iterator[Engine]:
    engine = init_db(settings.database_url, settings, projects=[project], today=TODAY)
    yield engine
    engine.dispose()


@pytest.fixture
def platform(engine: Engine, settings: Settings) -> Platform:
    return Platform(engine, settings)


def _slots(platform: Platform, store: str = "SHA-001") -> list[int]:
    return [s.id for s in platform.service_slots(PROJECT, store, TOMORROW)]


def _delivered_car(platform: Platform, person: Person, key: str) -> str:
    order = platform.preorder_create(PROJECT, key, person=person, **CHOICE)
    platform.preorder_pay(PROJECT, order.id, person=person)
    platform.preorder_confirm(PROJECT, order.id)
    return platform.preorder_deliver(PROJECT, order.id).id


def _race(n: int, call: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(n)
    out: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = call(i)
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return out


def test_service_slots_are_seeded_idempotently(engine: Engine, settings: Settings, project: Project) -> None:
    per_day = len(service_starts(TODAY, settings))
    assert per_day == 4  # 09:00, 11:00, 13:00, 15:00: two hours each, the last ends at 17:00
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(ServiceSlotRow)).scalar_one()
        capacities = set(conn.execute(select(ServiceSlotRow.capacity).distinct()).scalars())
    assert count == len(project.stores) * settings.slot_days_ahead * per_day and capacities == {3}
    seed(engine, settings, [project], today=TODAY)
    seed(engine, settings, [project], today=TOMORROW)  # one more day of slots, nothing else
    with engine.connect() as conn:
        after = conn.execute(select(func.count()).select_from(ServiceSlotRow)).scalar_one()
    assert after == count + len(project.stores) * per_day


def test_book_cancel_and_rebook_keep_the_bays_right(platform: Platform) -> None:
    a, b, full = _slots(platform)[:3]
    me = verified(platform, "13800138000")
    maintenance = platform.service_book(PROJECT, a, "maintenance", me)
    battery = platform.service_book(PROJECT, a, "battery_service", me)  # another kind, the same person: fine
    assert (maintenance.status, maintenance.kind, platform.service_slot(a).booked) == ("booked", "maintenance", 2)
    with pytest.raises(ConflictError) as info:
        platform.service_book(PROJECT, b, "maintenance", me)
    assert info.value.code == "already_booked" and platform.service_slot(b).booked == 0
    with pytest.raises(InvalidError) as bad:
        platform.service_book(PROJECT, b, "car_wash", me)
    assert bad.value.field == "kind" and "maintenance, battery_service" in bad.value.message
    for i in range(3):
        platform.service_book(PROJECT, full, "maintenance", verified(platform, f"1370000{i:04d}"))
    with pytest.raises(ConflictError) as info:
        platform.service_rebook(PROJECT, maintenance.id, full, me)
    assert info.value.code == "slot_full"
    assert (platform.service_slot(a).booked, platform.service_slot(full).booked) == (2, 3)
    assert platform.service_appointment(PROJECT, maintenance.id).status == "booked"
    stranger = verified(platform, "13900139000")
    with pytest.raises(NotFoundError):
        platform.service_cancel(PROJECT, battery.id, stranger)
    moved = platform.service_rebook(PROJECT, maintenance.id, b, me)
    assert (moved.kind, moved.slot.id) == ("maintenance", b)
    assert (platform.service_slot(a).booked, platform.service_slot(b).booked) == (1, 1)
    assert platform.service_appointment(PROJECT, maintenance.id).replaced_by == moved.id
    assert platform.service_cancel(PROJECT, battery.id, me).status == "cancelled"
    assert platform.service_slot(a).booked == 0
    with pytest.raises(ConflictError) as info:
        platform.service_cancel(PROJECT, battery.id, me)
    assert info.value.code == "already_cancelled" and platform.service_slot(a).booked == 0


def test_an_appointment_may_name_the_persons_delivered_car(platform: Platform) -> None:
    slot = _slots(platform)[0]
    me, other = verified(platform, "13800138000"), verified(platform, "13900139000")
    car = _delivered_car(platform, me, "car-1")
    reserved = platform.preorder_create(PROJECT, "car-2", person=me, **CHOICE).id
    theirs = _delivered_car(platform, other, "car-3")
    for preorder_id, words in ((reserved, "'reserved'"), (theirs, "no pre-order"), ("nope", "no pre-order")):
        with pytest.raises(InvalidError) as info:
            platform.service_book(PROJECT, slot, "battery_service", me, preorder_id)
        assert info.value.field == "preorder_id" and words in info.value.message
    assert platform.service_slot(slot).booked == 0
    assert [o.id for o in platform.service_cars(PROJECT, me)] == [car]
    booked = platform.service_book(PROJECT, slot, "battery_service", me, car)
    assert booked.preorder_id == car
    assert platform.personal_data(me)["service_appointments"][0]["preorder_id"] == car


def test_thirty_people_racing_for_three_bays_get_three(platform: Platform, settings: Settings, engine: Engine) -> None:
    slot = _slots(platform, "BEI-001")[0]
    people = [verified(platform, f"1360000{i:04d}") for i in range(30)]
    racing = Platform(make_engine(settings.database_url, poolclass=NullPool), settings)
    try:
        results = _race(30, lambda i: racing.service_book(PROJECT, slot, "maintenance", people[i]))
    finally:
        racing.engine.dispose()
    won = [r for r in results if not isinstance(r, Exception)]
    lost = [r for r in results if isinstance(r, Exception)]
    assert len(won) == 3
    assert all(isinstance(e, ConflictError) and e.code == "slot_full" for e in lost), lost
    assert platform.service_slot(slot).booked == 3
    with engine.connect() as conn:
        rows = set(conn.execute(
            select(ServiceAppointmentRow.id).where(ServiceAppointmentRow.service_slot_id == slot)
        ).scalars())
    assert rows == {a.id for a in won}
    # and one person racing for many slots gets one appointment of a kind
    me = verified(platform, "13800138000")
    slots = _slots(platform, "BEI-002")
    racing = Platform(make_engine(settings.database_url, poolclass=NullPool), settings)
    try:
        results = _race(len(slots), lambda i: racing.service_book(PROJECT, slots[i], "maintenance", me))
    finally:
        racing.engine.dispose()
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert sum(platform.service_slot(s).booked for s in slots) == 1


def test_capacity_is_also_a_database_constraint(platform: Platform, engine: Engine) -> None:
    slot = _slots(platform)[0]
    with pytest.raises(IntegrityError), write_session(engine) as session:
        session.execute(update(ServiceSlotRow).where(ServiceSlotRow.id == slot).values(booked=4))
    assert platform.service_slot(slot).booked == 0


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def _error(response: httpx.Response, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    if field is not None:
        assert error["field"] == field


def test_service_api(client: TestClient) -> None:
    kinds = client.get(f"{API}/kinds").json()
    assert [(k["kind"], k["name"], k["name_zh"]) for k in kinds] == [
        ("maintenance", "Maintenance", "常规保养"), ("battery_service", "Battery service", "电池检测与保养"),
    ]
    slots = client.get(f"{API}/slots", params={"store": "SHA-001", "day": TOMORROW.isoformat()}).json()
    assert [s["start"][11:] for s in slots] == ["09:00", "11:00", "13:00", "15:00"]
    assert (slots[0]["minutes"], slots[0]["capacity"], slots[0]["remaining"]) == (120, 3, 3)
    body = {"slot_id": slots[0]["id"], "kind": "maintenance"}
    _error(client.post(f"{API}/appointments", json=body), 401, "sign_in_required", "Authorization")
    me, other = sign_in(client, "13800138000"), sign_in(client, "13900139000")
    _error(client.post(f"{API}/appointments", json={**body, "kind": "wash"}, headers=me), 422, "invalid", "kind")
    _error(client.post(f"{API}/appointments", json={"kind": "maintenance"}, headers=me), 422, "validation_error")
    _error(client.post(f"{API}/appointments", json={**body, "slot_id": 10**9}, headers=me), 404, "not_found",
           "slot_id")
    created = client.post(f"{API}/appointments", json=body, headers=me)
    assert created.status_code == 201, created.text
    appointment = created.json()
    assert appointment["slot"]["booked"] == 1 and appointment["preorder_id"] is None
    path = f"{API}/appointments/{appointment['id']}"
    _error(client.get(path, headers=other), 404, "not_found", "appointment")
    assert client.get(path, headers=me).json()["status"] == "booked"
    moved = client.post(f"{path}/rebook", json={"slot_id": slots[1]["id"]}, headers=me)
    assert moved.status_code == 201 and moved.json()["slot"]["id"] == slots[1]["id"]
    cancelled = client.post(f"{API}/appointments/{moved.json()['id']}/cancel", headers=me)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    after = client.get(f"{API}/slots", params={"store": "SHA-001", "day": TOMORROW.isoformat()}).json()
    assert [s["booked"] for s in after[:2]] == [0, 0]


def test_service_pages(client: TestClient) -> None:
    query = {"lang": "en", "kind": "battery_service", "city": "Shanghai", "store": "SHA-001", "day": TOMORROW}
    step = client.get(f"/service/{PROJECT}", params=query)
    assert step.status_code == 200 and "Book a service appointment" in step.text
    for label in ('<label for="kind">Service</label>', '<label for="city">City</label>',
                  '<label for="store">Store</label>', '<label for="day">Day</label>'):
        assert label in step.text
    ids = re.findall(r'id="slot-(\d+)"', step.text)
    assert len(ids) == 4 and "3 bays left" in step.text and "Sign in to book" in step.text
    refused = client.post(f"/service/{PROJECT}?lang=en", data={"slot_id": ids[0], "kind": "battery_service"},
                          follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"].startswith("/sign-in?")
    as_cookie(client, sign_in(client, "13800138000"))
    step = client.get(f"/service/{PROJECT}", params=query)
    assert "Book the appointment" in step.text and '<label for="preorder_id">Your car (optional)</label>' in step.text
    done = client.post(f"/service/{PROJECT}?lang=en", data={"slot_id": ids[0], "kind": "battery_service"},
                       follow_redirects=False)
    assert done.status_code == 303
    confirmation = client.get(done.headers["location"])
    assert "Your service appointment is booked" in confirmation.text and "Battery service" in confirmation.text
    appointment_id = done.headers["location"].split("/appointments/")[1].split("?")[0]
    rebook = client.get(f"/service/{PROJECT}", params={**query, "rebook": appointment_id})
    assert "Move the appointment here" in rebook.text
    moved = client.post(f"/service/{PROJECT}?lang=en", data={"slot_id": ids[1], "rebook": appointment_id})
    assert moved.status_code == 200 and "Your service appointment is booked" in moved.text
    new_id = str(moved.url).split("/appointments/")[1].split("?")[0]
    assert new_id != appointment_id
    cancelled = client.post(f"/service/{PROJECT}/appointments/{new_id}/cancel?lang=en")
    assert cancelled.status_code == 200 and "This service appointment is cancelled" in cancelled.text
    zh = client.get(f"/service/{PROJECT}", params={**query, "lang": "zh"})
    assert '<html lang="zh-CN">' in zh.text and "预约售后服务" in zh.text and "电池检测与保养" in zh.text
    bad = client.get(f"/service/{PROJECT}", params={**query, "kind": "wash"})
    assert bad.status_code == 422 and 'role="alert"' in bad.text
