"""The web application over HTTP (FastAPI TestClient), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.platform._person import as_cookie, sign_in, sign_in_pages

from c2m.platform import Settings, create_app

PROJECT = "swap-city-ev"
TOMORROW = date.today() + timedelta(days=1)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()["error"]
    assert body["status"] == status and body["code"] == code
    assert body["message"]
    return str(body["message"])


def _first_slot(client: TestClient, store: str = "SHA-001") -> dict[str, Any]:
    slots = client.get(f"/api/v1/projects/{PROJECT}/slots", params={"store": store, "day": TOMORROW.isoformat()}).json()
    assert len(slots) == 9
    return slots[0]


def test_catalogue_endpoints(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "projects": [PROJECT]}
    assert [p["name"] for p in client.get("/api/v1/projects").json()] == [PROJECT]
    cities = {c["city"]: c["stores"] for c in client.get(f"/api/v1/projects/{PROJECT}/cities").json()}
    assert len(cities) == 34 and sum(cities.values()) == 332 and cities["Shanghai"] == 22
    stores = client.get(f"/api/v1/projects/{PROJECT}/stores", params={"city": "Shanghai"}).json()
    assert len(stores) == 22 and {s["city"] for s in stores} == {"Shanghai"}
    slot = _first_slot(client)
    assert slot["start"] == f"{TOMORROW.isoformat()}T09:00"
    assert (slot["capacity"], slot["booked"], slot["remaining"]) == (5, 0, 5)
    benefits = client.get(f"/api/v1/projects/{PROJECT}/benefits").json()
    assert [b["code"] for b in benefits] == ["charging-coupon", "rent-waiver"]


def test_book_confirm_cancel_end_to_end(client: TestClient) -> None:
    slot = _first_slot(client)
    me = sign_in(client, "13800138000")
    response = client.post(f"/api/v1/projects/{PROJECT}/bookings", json={"slot_id": slot["id"]}, headers=me)
    assert response.status_code == 201, response.text
    booking = response.json()
    assert booking["status"] == "booked" and booking["slot"]["booked"] == 1
    as_cookie(client, me)
    page = client.get(f"/book/{PROJECT}/bookings/{booking['id']}", params={"lang": "en"})
    assert page.status_code == 200
    assert "Your test drive is booked" in page.text and booking["id"] in page.text and "SHA-001" in page.text
    cancelled = client.post(f"/api/v1/projects/{PROJECT}/bookings/{booking['id']}/cancel", headers=me)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert _first_slot(client)["booked"] == 0
    again = client.post(f"/api/v1/projects/{PROJECT}/bookings/{booking['id']}/cancel", headers=me)
    _error(again, 409, "already_cancelled")


def test_only_the_owner_sees_or_changes_a_booking(client: TestClient) -> None:
    slots = client.get(f"/api/v1/projects/{PROJECT}/slots", params={"store": "SHA-004", "day": TOMORROW}).json()
    owner, other = sign_in(client, "13800138000"), sign_in(client, "13900139000")
    booking = client.post(f"/api/v1/projects/{PROJECT}/bookings", json={"slot_id": slots[0]["id"]}, headers=owner)
    path = f"/api/v1/projects/{PROJECT}/bookings/{booking.json()['id']}"
    assert _error(client.get(path), 401, "sign_in_required").startswith("Authorization")
    _error(client.get(path, headers=other), 404, "not_found")
    _error(client.post(f"{path}/cancel", headers=other), 404, "not_found")
    _error(client.post(f"{path}/rebook", json={"slot_id": slots[1]["id"]}, headers=other), 404, "not_found")
    assert client.get(path, headers=owner).json()["status"] == "booked"
    assert client.get(f"/api/v1/projects/{PROJECT}/slots", params={"store": "SHA-004", "day": TOMORROW}).json()[0][
        "booked"
    ] == 1


def test_rebook_over_http(client: TestClient) -> None:
    slots = client.get(f"/api/v1/projects/{PROJECT}/slots", params={"store": "SHA-002", "day": TOMORROW}).json()
    me = sign_in(client, "a@b.cn")
    first = client.post(f"/api/v1/projects/{PROJECT}/bookings", json={"slot_id": slots[0]["id"]}, headers=me)
    moved = client.post(
        f"/api/v1/projects/{PROJECT}/bookings/{first.json()['id']}/rebook", json={"slot_id": slots[1]["id"]},
        headers=me,
    )
    assert moved.status_code == 201, moved.text
    assert moved.json()["slot"]["id"] == slots[1]["id"]
    after = client.get(f"/api/v1/projects/{PROJECT}/slots", params={"store": "SHA-002", "day": TOMORROW}).json()
    assert [s["booked"] for s in after[:2]] == [0, 1]


def test_error_shapes(client: TestClient) -> None:
    slot = _first_slot(client)
    me = sign_in(client, "13800138000")
    people = [sign_in(client, f"1370000{i:04d}") for i in range(5)]
    claimants = [sign_in(client, f"c{i}@x.cn") for i in range(5)]
    _error(client.get("/api/v1/projects/nope/cities"), 404, "not_found")
    _error(client.get(f"/api/v1/projects/{PROJECT}/stores", params={"city": "Atlantis"}), 404, "not_found")
    _error(client.get(f"/api/v1/projects/{PROJECT}/slots", params={"store": "XXX-999"}), 404, "not_found")
    _error(client.get("/api/v1/nothing-here"), 404, "not_found")
    _error(
        client.post(f"/api/v1/projects/{PROJECT}/bookings", json={"slot_id": 10**9}, headers=me), 404, "not_found"
    )
    _error(client.post(f"/api/v1/projects/{PROJECT}/bookings/{'0' * 32}/cancel", headers=me), 404, "not_found")
    _error(client.post(f"/api/v1/projects/{PROJECT}/benefits/free-car/claims", headers=me), 404, "not_found")
    # 401: no token, an unknown one, another scheme
    _error(client.post(f"/api/v1/projects/{PROJECT}/bookings", json={"slot_id": slot["id"]}), 401, "sign_in_required")
    _error(
        client.post(
            f"/api/v1/projects/{PROJECT}/bookings", json={"slot_id": slot["id"]}, headers={"Authorization": "Bearer x"}
        ),
        401,
        "token_invalid",
    )
    _error(
        client.post(f"/api/v1/projects/{PROJECT}/benefits/rent-waiver/claims", headers={"Authorization": "Basic eA=="}),
        401,
        "sign_in_required",
    )
    # 422: missing field, wrong type, bad date, unusable contact
    message = _error(client.post(f"/api/v1/projects/{PROJECT}/bookings", json={}, headers=me), 422, "validation_error")
    assert "slot_id" in message
    _error(
        client.post(f"/api/v1/projects/{PROJECT}/bookings", json={"slot_id": "first"}, headers=me),
        422,
        "validation_error",
    )
    _error(
        client.get(f"/api/v1/projects/{PROJECT}/slots", params={"store": "SHA-001", "day": "soon"}),
        422,
        "validation_error",
    )
    _error(client.post("/api/v1/identity/code", json={"contact": "call me"}), 422, "invalid_contact")
    # 409: full slot, duplicate booking, exhausted quota, duplicate claim
    for who in people:
        ok = client.post(f"/api/v1/projects/{PROJECT}/bookings", json={"slot_id": slot["id"]}, headers=who)
        assert ok.status_code == 201
    full = client.post(f"/api/v1/projects/{PROJECT}/bookings", json={"slot_id": slot["id"]}, headers=me)
    assert "full" in _error(full, 409, "slot_full")
    other = _first_slot(client, "SHA-003")
    duplicate = client.post(f"/api/v1/projects/{PROJECT}/bookings", json={"slot_id": other["id"]}, headers=people[0])
    _error(duplicate, 409, "already_booked")
    for i, who in enumerate(claimants):
        claim = client.post(f"/api/v1/projects/{PROJECT}/benefits/charging-coupon/claims", headers=who)
        assert claim.status_code == 201 and claim.json()["benefit"]["granted"] == i + 1
    exhausted = client.post(f"/api/v1/projects/{PROJECT}/benefits/charging-coupon/claims", headers=me)
    _error(exhausted, 409, "quota_exhausted")
    _error(
        client.post(f"/api/v1/projects/{PROJECT}/benefits/rent-waiver/claims", headers=claimants[0]),
        409,
        "already_claimed",
    )


def test_booking_pages_flow(client: TestClient) -> None:
    start = client.get(f"/book/{PROJECT}", params={"lang": "en"})
    assert start.status_code == 200 and '<html lang="en">' in start.text
    assert '<label for="city">City</label>' in start.text and 'id="city" name="city"' in start.text
    step = client.get(
        f"/book/{PROJECT}", params={"lang": "en", "city": "Shanghai", "store": "SHA-001", "day": TOMORROW}
    )
    assert '<label for="store">' in step.text and '<label for="day">' in step.text
    ids = re.findall(r'id="slot-(\d+)"', step.text)
    assert len(ids) == 9 and "Sign in to book" in step.text and "Book the test drive" not in step.text
    # signed out, the booking form sends the person to sign in and back to this page
    refused = client.post(
        f"/book/{PROJECT}?lang=en", data={"slot_id": ids[0]}, headers={"Referer": str(step.url)}, follow_redirects=False
    )
    assert refused.status_code == 303 and refused.headers["location"].startswith("/sign-in?next=%2Fbook%2F")
    back = sign_in_pages(client, "13800138000", next_path=str(step.url).removeprefix(str(client.base_url)))
    assert back.headers["location"].startswith(f"/book/{PROJECT}?") and "store=SHA-001" in back.headers["location"]
    step = client.get(back.headers["location"])
    assert "Book the test drive" in step.text and "My data" in step.text
    submitted = client.post(f"/book/{PROJECT}?lang=en", data={"slot_id": ids[0]}, follow_redirects=False)
    assert submitted.status_code == 303
    confirmation = client.get(submitted.headers["location"])
    assert confirmation.status_code == 200 and "Your test drive is booked" in confirmation.text
    booking_id = submitted.headers["location"].split("/bookings/")[1].split("?")[0]
    cancel = client.post(f"/book/{PROJECT}/bookings/{booking_id}/cancel?lang=en", follow_redirects=True)
    assert cancel.status_code == 200 and "This booking is cancelled" in cancel.text
    again = client.post(f"/book/{PROJECT}?lang=en", data={"slot_id": "first"})
    assert again.status_code == 422 and 'role="alert"' in again.text


def test_chinese_pages(client: TestClient) -> None:
    page = client.get(
        f"/book/{PROJECT}", params={"lang": "zh", "city": "Shanghai", "store": "SHA-001", "day": TOMORROW}
    )
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text
    for text in (
        "预约试驾",
        "选择城市",
        "选择门店",
        "选择日期",
        "登录后预约",
        "剩余 5 个名额",
        "2,000 元充电券",
    ):
        assert text in page.text, text
    assert "lang=en" in page.text  # the language switch keeps the other parameters
    by_header = client.get(f"/book/{PROJECT}", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert '<html lang="zh-CN">' in by_header.text
    english = client.get(f"/book/{PROJECT}", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in english.text and "Book a test drive" in english.text
