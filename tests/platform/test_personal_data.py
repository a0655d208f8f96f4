"""A person's data: the export holds every record keyed by them; erasure cancels what is live (seats freed, deposits
refunded), revokes their sessions and leaves no row carrying their hash, with counts intact; on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from tests.platform._person import as_cookie, sign_in
from tests.platform._staff import staff_headers

from c2m.platform import Platform, Settings, create_app, person_hash
from c2m.platform._models import (
    Base,
    BenefitClaimRow,
    BenefitRow,
    BookingRow,
    LocalChargeRow,
    PreorderKeyRow,
    PreorderRow,
    ServiceAppointmentRow,
    ServiceSlotRow,
    SlotRow,
)

PROJECT = "swap-city-ev"
API = f"/api/v1/projects/{PROJECT}"
TOMORROW = (date.today() + timedelta(days=1)).isoformat()
CHOICE = {"variant": "p65k", "colour": "blue", "battery": "ncm52", "ownership": "buy"}
ME, OTHER = "13800138000", "someone@example.cn"


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, slot_days_ahead=2, survey_versions=2, survey_tasks=4)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def _engine(client: TestClient) -> Engine:
    platform: Platform = client.app.state.platform  # type: ignore[attr-defined]
    return platform.engine


def _ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json())


def _live_person(client: TestClient, headers: dict[str, str], store: str, n: int) -> dict[str, str]:
    """A person with a test drive, a benefit claim, a delivered car with a service appointment, a paid pre-order."""
    slot = client.get(f"{API}/slots", params={"store": store, "day": TOMORROW}).json()[0]
    bay = client.get(f"{API}/service/slots", params={"store": store, "day": TOMORROW}).json()[0]
    booking = _ok(client.post(f"{API}/bookings", json={"slot_id": slot["id"]}, headers=headers), 201)
    claim = _ok(client.post(f"{API}/benefits/rent-waiver/claims", headers=headers), 201)
    car = _ok(client.post(f"{API}/preorders", json=CHOICE, headers={**headers, "Idempotency-Key": f"car-{n}"}), 201)
    _ok(client.post(f"{API}/preorders/{car['id']}/deposit", headers=headers))
    staff = staff_headers(client)
    _ok(client.post(f"{API}/preorders/{car['id']}/confirm", headers=staff))
    _ok(client.post(f"{API}/preorders/{car['id']}/deliver", headers=staff))
    paid = _ok(client.post(f"{API}/preorders", json=CHOICE, headers={**headers, "Idempotency-Key": f"paid-{n}"}), 201)
    _ok(client.post(f"{API}/preorders/{paid['id']}/deposit", headers=headers))
    body = {"slot_id": bay["id"], "kind": "battery_service", "preorder_id": car["id"]}
    appointment = _ok(client.post(f"{API}/service/appointments", json=body, headers=headers), 201)
    return {"booking": booking["id"], "claim": claim["id"], "car": car["id"], "paid": paid["id"],
            "appointment": appointment["id"], "slot": str(slot["id"]), "bay": str(bay["id"])}


def _rows_with(engine: Engine, value: str) -> dict[str, int]:
    """Rows of every table with a ``person_hash`` column that carry ``value``."""
    found = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if "person_hash" in table.columns:
                n = conn.execute(select(func.count()).select_from(table).where(table.c.person_hash == value))
                found[table.name] = int(n.scalar_one())
    return found


def _seats_consistent(engine: Engine) -> None:
    """Every slot's and service slot's ``booked`` equals its active bookings or appointments."""
    with engine.connect() as conn:
        for slot_model, row_model, column in (
            (SlotRow, BookingRow, BookingRow.slot_id),
            (ServiceSlotRow, ServiceAppointmentRow, ServiceAppointmentRow.service_slot_id),
        ):
            active = dict(
                conn.execute(
                    select(column, func.count()).where(row_model.status == "booked").group_by(column)
                ).all()
            )
            booked = dict(conn.execute(select(slot_model.id, slot_model.booked).where(slot_model.booked > 0)).all())
            assert booked == active, slot_model.__tablename__


def test_export_holds_every_record_of_the_person_and_nothing_else(client: TestClient) -> None:
    me, other = sign_in(client, ME), sign_in(client, OTHER)
    mine = _live_person(client, me, "SHA-001", 1)
    _live_person(client, other, "SHA-002", 2)
    data = _ok(client.get("/api/v1/me", headers=me))
    assert data["person"]["person_hash"] == person_hash(ME) and len(data["person"]["sessions"]) == 1
    assert [b["id"] for b in data["bookings"]] == [mine["booking"]]
    assert data["bookings"][0]["store"] == "SHA-001" and data["bookings"][0]["status"] == "booked"
    assert [(c["id"], c["benefit"]) for c in data["benefit_claims"]] == [(mine["claim"], "rent-waiver")]
    orders = {o["id"]: o for o in data["preorders"]}
    assert set(orders) == {mine["car"], mine["paid"]}
    assert [e["to_state"] for e in orders[mine["car"]]["events"]] == [
        "reserved", "deposit_paid", "confirmed", "delivered"
    ]
    assert [p["kind"] for p in orders[mine["paid"]]["payments"]] == ["charge"]
    [appointment] = data["service_appointments"]
    assert (appointment["id"], appointment["kind"], appointment["preorder_id"]) == (
        mine["appointment"], "battery_service", mine["car"]
    )
    # the pages: the same records, and the download
    as_cookie(client, me)
    page = client.get("/me?lang=en")
    assert page.status_code == 200 and "My data" in page.text and "Battery service" in page.text
    assert mine["booking"][:8] in page.text and mine["paid"][:8] in page.text
    assert '<label for="confirm">I understand; delete my data</label>' in page.text
    download = client.get("/me/export.json")
    assert download.headers["content-disposition"] == 'attachment; filename="my-data.json"'
    assert [b["id"] for b in download.json()["bookings"]] == [mine["booking"]]


def test_delete_cancels_frees_refunds_and_unlinks_everything(client: TestClient) -> None:
    me, other = sign_in(client, ME), sign_in(client, OTHER)
    mine = _live_person(client, me, "SHA-001", 1)
    theirs = _live_person(client, other, "SHA-001", 2)  # the same slots: their seats must stay taken
    engine = _engine(client)
    old = person_hash(ME)
    with engine.connect() as conn:
        granted_before = conn.execute(select(BenefitRow.granted).where(BenefitRow.code == "rent-waiver")).scalar()
    erased = _ok(client.delete("/api/v1/me", headers=me))
    assert erased == {"deleted": True, "bookings_cancelled": 1, "appointments_cancelled": 1,
                      "preorders_cancelled": 1, "records_anonymised": 5}
    assert _rows_with(engine, old) == {
        "booking": 0, "benefit_claim": 0, "preorder": 0, "login_code": 0, "code_outbox": 0, "person_session": 0,
        "service_appointment": 0,
    }
    _seats_consistent(engine)
    slots = {s["id"]: s for s in client.get(f"{API}/slots", params={"store": "SHA-001", "day": TOMORROW}).json()}
    assert slots[int(mine["slot"])]["booked"] == 1  # only the other person's seat remains
    with engine.connect() as conn:
        granted = conn.execute(select(BenefitRow.granted).where(BenefitRow.code == "rent-waiver")).scalar()
        claims = conn.execute(select(func.count()).select_from(BenefitClaimRow)).scalar()
        stand_ins = set(conn.execute(select(PreorderRow.person_hash).where(PreorderRow.id.in_(
            [mine["car"], mine["paid"]]))).scalars())
        states = dict(conn.execute(select(PreorderRow.id, PreorderRow.state)).all())
        keys = set(conn.execute(select(PreorderKeyRow.key)).scalars())
        refunds = conn.execute(select(func.count()).select_from(LocalChargeRow).where(LocalChargeRow.kind == "refund"))
        refunds_n = refunds.scalar()
    assert granted == granted_before == 2 and claims == 2  # the quota and accounting survive
    assert len(stand_ins) == 1 and next(iter(stand_ins)).startswith("erased:")
    assert (states[mine["car"]], states[mine["paid"]]) == ("delivered", "refunded")
    assert refunds_n == 1 and keys == {"car-2", "paid-2"}  # the erased orders' idempotency fingerprints are gone
    # the token is revoked; the other person is untouched
    assert client.get("/api/v1/me", headers=me).json()["error"]["code"] == "token_invalid"
    theirs_now = _ok(client.get("/api/v1/me", headers=other))
    assert [b["id"] for b in theirs_now["bookings"]] == [theirs["booking"]]
    assert theirs_now["bookings"][0]["status"] == "booked" and len(theirs_now["preorders"]) == 2
    # signing in again with the same contact finds nothing of the past
    again = _ok(client.get("/api/v1/me", headers=_sign_in_later(client, ME)))
    assert again["bookings"] == again["preorders"] == again["service_appointments"] == again["benefit_claims"] == []


def _sign_in_later(client: TestClient, contact: str) -> dict[str, str]:
    """Sign in again once the resend throttle allows it (the window is moved back instead of waiting)."""
    from sqlalchemy import update

    from c2m.platform._models import LoginCodeRow, utcnow

    with _engine(client).begin() as conn:
        conn.execute(update(LoginCodeRow).values(sent_at=utcnow() - timedelta(minutes=1)))
    return sign_in(client, contact)


def test_delete_page_asks_for_confirmation_then_signs_out(client: TestClient) -> None:
    me = sign_in(client, ME)
    mine = _live_person(client, me, "SHA-003", 1)
    as_cookie(client, me)
    unconfirmed = client.post("/me/delete?lang=en")
    assert unconfirmed.status_code == 422 and "Please tick the box to confirm." in unconfirmed.text
    assert client.get(f"{API}/bookings/{mine['booking']}", headers=me).json()["status"] == "booked"
    done = client.post("/me/delete?lang=en", data={"confirm": "yes"})
    assert done.status_code == 200 and "Your data is deleted" in done.text
    assert "Cancelled: 1 test drives, 1 service appointments, 1 pre-orders." in done.text
    assert 'c2m_person=""' in done.headers["set-cookie"]
    assert sum(_rows_with(_engine(client), person_hash(ME)).values()) == 0
    _seats_consistent(_engine(client))
    client.cookies.clear()
    assert client.get("/me", follow_redirects=False).status_code == 303
    zh = client.get("/sign-in?lang=zh")
    assert "验证码登录" in zh.text
