"""Pre-orders: lifecycle and audit log, refunds, illegal transitions, idempotency under concurrency, on SQLite and
PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from tests.platform._person import as_cookie, sign_in, verified
from tests.platform._staff import staff_headers

from c2m.domain import Project
from c2m.platform import ConflictError, PaymentError, Platform, Settings, create_app, init_db
from c2m.platform._models import LocalChargeRow, OrderEventRow, PaymentRow, PreorderKeyRow, PreorderRow
from c2m.platform._preorders import build_catalogue

PROJECT = "swap-city-ev"
API = f"/api/v1/projects/{PROJECT}/preorders"
BODY = {"variant": "p65k", "colour": "blue", "battery": "ncm52", "ownership": "rent", "rent_plan": "capped"}


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, slot_days_ahead=1, survey_versions=2, survey_tasks=4, preorder_deposit=2000)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A client signed in (API header and page cookie) as the owner of 13800138000."""
    with TestClient(create_app(settings)) as client:
        me = sign_in(client, "13800138000")
        client.headers.update(me)
        as_cookie(client, me)
        yield client


@pytest.fixture
def staff(client: TestClient) -> dict[str, str]:
    """``Authorization`` of an admin: confirming and delivering an order is staff work."""
    return staff_headers(client)


@pytest.fixture
def engine(settings: Settings, project: Project) -> Iterator[Engine]:
    engine = init_db(settings.database_url, settings, projects=[project])
    yield engine
    engine.dispose()


def _count(engine: Engine, model: Any, *where: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def _error(response: httpx.Response, status: int, field: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["status"] == status and body["field"] == field and body["message"]
    return str(body["message"])


def _create(client: TestClient, key: str, headers: dict[str, str] | None = None, **changes: Any) -> httpx.Response:
    return client.post(API, json={**BODY, **changes}, headers={**(headers or {}), "Idempotency-Key": key})


def test_full_lifecycle_writes_one_audit_row_per_transition(client: TestClient, staff: dict[str, str]) -> None:
    r = _create(client, "order-1")
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["state"] == "reserved"
    assert (order["price"], order["deposit"], order["monthly_fee"]) == (65000, 2000, 399)
    oid = order["id"]
    paid = client.post(f"{API}/{oid}/deposit")
    assert paid.status_code == 200 and paid.json()["state"] == "deposit_paid"
    [charge] = paid.json()["payments"]
    assert charge["kind"] == "charge" and charge["amount"] == 2000 and charge["reference"].startswith("local_charge_")
    confirmed = client.post(f"{API}/{oid}/confirm", json={"note": "build week 12"}, headers=staff).json()
    assert confirmed["state"] == "confirmed"
    delivered = client.post(f"{API}/{oid}/deliver", headers=staff).json()
    assert delivered["state"] == "delivered"
    events = client.get(f"{API}/{oid}").json()["events"]
    assert [(e["from"], e["to"]) for e in events] == [
        (None, "reserved"), ("reserved", "deposit_paid"), ("deposit_paid", "confirmed"), ("confirmed", "delivered")
    ]
    assert events[2]["actor"] == "staff:test-admin" and events[2]["note"] == "build week 12"
    assert events[1]["actor"] == "api" and events[3]["actor"] == "staff:test-admin"
    # delivered is final: cancelling it is refused and naming the state
    assert "delivered" in _error(client.post(f"{API}/{oid}/cancel"), 409, "state")
    assert len(client.get(f"{API}/{oid}").json()["events"]) == 4


def test_cancel_refunds_a_paid_deposit_once(client: TestClient, settings: Settings, staff: dict[str, str]) -> None:
    oid = _create(client, "order-refund").json()["id"]
    client.post(f"{API}/{oid}/deposit")
    client.post(f"{API}/{oid}/confirm", headers=staff)
    cancelled = client.post(f"{API}/{oid}/cancel", json={"actor": "customer", "note": "changed my mind"}).json()
    assert cancelled["state"] == "refunded"
    kinds = [(p["kind"], p["amount"]) for p in cancelled["payments"]]
    assert kinds == [("charge", 2000), ("refund", 2000)]
    assert [(e["from"], e["to"]) for e in cancelled["events"]][-2:] == [
        ("confirmed", "cancelled"), ("cancelled", "refunded")
    ]
    # cancelling again is refused; the provider's ledger has one charge and one refund of it
    assert "refunded" in _error(client.post(f"{API}/{oid}/cancel"), 409, "state")
    engine = client.app.state.platform.engine  # type: ignore[attr-defined]
    assert _count(engine, LocalChargeRow, LocalChargeRow.kind == "charge") == 1
    assert _count(engine, LocalChargeRow, LocalChargeRow.kind == "refund") == 1
    # an unpaid order is cancelled without a refund
    unpaid = _create(client, "order-unpaid").json()["id"]
    r = client.post(f"{API}/{unpaid}/cancel").json()
    assert r["state"] == "cancelled" and r["payments"] == []
    assert _count(engine, LocalChargeRow) == 2


def test_illegal_transitions_are_409_naming_the_state(client: TestClient, staff: dict[str, str]) -> None:
    oid = _create(client, "order-illegal").json()["id"]
    assert "'reserved'" in _error(client.post(f"{API}/{oid}/confirm", headers=staff), 409, "state")
    assert "'reserved'" in _error(client.post(f"{API}/{oid}/deliver", headers=staff), 409, "state")
    client.post(f"{API}/{oid}/deposit")
    assert "'deposit_paid'" in _error(client.post(f"{API}/{oid}/deliver", headers=staff), 409, "state")
    client.post(f"{API}/{oid}/confirm", headers=staff)
    assert "'confirmed'" in _error(client.post(f"{API}/{oid}/confirm", headers=staff), 409, "state")
    other = _create(client, "order-illegal-2").json()["id"]
    client.post(f"{API}/{other}/cancel")
    for action in ("deposit", "confirm", "deliver", "cancel"):
        as_staff = staff if action in ("confirm", "deliver") else None
        assert "'cancelled'" in _error(client.post(f"{API}/{other}/{action}", headers=as_staff), 409, "state")
    assert client.get(f"{API}/{other}").json()["state"] == "cancelled"
    assert len(client.get(f"{API}/{other}").json()["events"]) == 2
    r = client.get(f"{API}/nope")
    assert r.status_code == 404 and r.json()["error"]["field"] == "order"


def test_only_admins_confirm_and_deliver(client: TestClient, staff: dict[str, str]) -> None:
    oid = _create(client, "order-staff").json()["id"]
    client.post(f"{API}/{oid}/deposit")
    # the buyer (their own bearer token), nobody, and an analyst may not move the order on
    assert client.post(f"{API}/{oid}/confirm").status_code == 401
    assert client.post(f"{API}/{oid}/confirm", headers={"Authorization": ""}).status_code == 401
    analyst = staff_headers(client, "an-analyst", role="analyst")
    refused = client.post(f"{API}/{oid}/confirm", headers=analyst)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "admin_only"
    assert client.get(f"{API}/{oid}").json()["state"] == "deposit_paid"
    done = client.post(f"{API}/{oid}/confirm", headers=staff, json={"note": "slot 14"})
    assert done.status_code == 200 and done.json()["events"][-1]["actor"] == "staff:test-admin"


def _race(n: int, call: Callable[[], Any]) -> list[Any]:
    barrier = threading.Barrier(n)

    def run() -> Any:
        barrier.wait()
        try:
            return call()
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(n) as pool:
        return [f.result() for f in [pool.submit(run) for _ in range(n)]]


def test_same_key_retried_concurrently_makes_one_order_and_one_charge(engine: Engine, settings: Settings) -> None:
    platform = Platform(engine, settings)
    me = verified(platform, "13800138000")
    created = _race(20, lambda: platform.preorder_create(PROJECT, "retry-key", person=me, **BODY))
    assert not [r for r in created if isinstance(r, Exception)], created
    assert len({o.id for o in created}) == 1
    assert sum(not o.replayed for o in created) == 1
    oid = created[0].id
    assert _count(engine, PreorderRow) == 1 and _count(engine, PreorderKeyRow) == 1
    paid = _race(20, lambda: platform.preorder_pay(PROJECT, oid))
    assert not [r for r in paid if isinstance(r, Exception)], paid
    assert {o.state for o in paid} == {"deposit_paid"}
    assert _count(engine, PaymentRow) == 1
    assert _count(engine, LocalChargeRow) == 1  # the provider charged once
    assert _count(engine, OrderEventRow) == 2  # reserved, deposit_paid
    # concurrent transitions from one state: exactly one wins
    results = _race(10, lambda: platform.preorder_confirm(PROJECT, oid))
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, ConflictError) and r.field == "state" for r in results if isinstance(r, Exception))
    assert _count(engine, OrderEventRow) == 3


def test_same_key_with_a_different_body_is_409(client: TestClient) -> None:
    first = _create(client, "dup-key")
    again = _create(client, "dup-key")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    message = _error(_create(client, "dup-key", colour="pink"), 409, "Idempotency-Key")
    assert "different" in message
    other = sign_in(client, "13900139000")
    _error(_create(client, "dup-key", headers=other), 409, "Idempotency-Key")  # another person's key
    _error(client.post(API, json=BODY), 400, "Idempotency-Key")
    _error(client.post(API, json=BODY, headers={"Idempotency-Key": "has space"}), 422, "Idempotency-Key")
    engine = client.app.state.platform.engine  # type: ignore[attr-defined]
    assert _count(engine, PreorderRow) == 1


def test_a_declined_charge_leaves_the_order_reserved_without_payment(engine: Engine, settings: Settings) -> None:
    declining = Platform(engine, settings.model_copy(update={"payment_local_decline": True}))
    order = declining.preorder_create(PROJECT, "declined", person=verified(declining, "13800138000"), **BODY)
    with pytest.raises(PaymentError) as caught:
        declining.preorder_pay(PROJECT, order.id)
    assert caught.value.status == 402
    after = declining.preorder(PROJECT, order.id)
    assert after.state == "reserved" and after.payments == () and len(after.events) == 1
    assert _count(engine, PaymentRow) == 0 and _count(engine, LocalChargeRow) == 0
    # the same order pays once the provider accepts
    assert Platform(engine, settings).preorder_pay(PROJECT, order.id).state == "deposit_paid"


def test_declined_charge_over_http_is_402(settings: Settings) -> None:
    with TestClient(create_app(settings.model_copy(update={"payment_local_decline": True}))) as client:
        me = sign_in(client, "13800138000")
        client.headers.update(me)
        as_cookie(client, me)
        oid = _create(client, "declined-http").json()["id"]
        r = client.post(f"{API}/{oid}/deposit")
        assert r.status_code == 402 and r.json()["error"]["code"] == "payment_failed"
        assert client.get(f"{API}/{oid}").json()["state"] == "reserved"
        page = client.post(f"/preorder/{PROJECT}/orders/{oid}/pay?lang=en")
        assert page.status_code == 402 and "Nothing was charged" in page.text


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"variant": "p66k"}, "variant"),
        ({"colour": "purple"}, "colour"),
        ({"battery": "lfp99"}, "battery"),
        ({"ownership": "lease"}, "ownership"),
        ({"ownership": "buy", "rent_plan": "capped"}, "rent_plan"),
        ({"rent_plan": "weekly"}, "rent_plan"),
    ],
)
def test_invalid_choices_are_422_naming_the_field(client: TestClient, changes: dict[str, Any], field: str) -> None:
    _error(_create(client, f"bad-{field}", **changes), 422, field)
    engine = client.app.state.platform.engine  # type: ignore[attr-defined]
    assert _count(engine, PreorderRow) == 0 and _count(engine, PreorderKeyRow) == 0


def test_options_come_from_the_product_line_when_there_is_one(project: Project) -> None:
    plugin = {
        "style": "classic", "colour": "white", "smart_pack": "plus", "battery": "lfp42", "energy_mode": "plugin",
        "sunroof": "no", "ownership": "buy", "price": 59800,
    }
    swap = {**plugin, "battery": "ncm52", "energy_mode": "swap", "ownership": "rent_capped", "price": 64800}
    definition = {"project": project.name, "variants": [
        {"name": "City", "profile": plugin, "price": 59800}, {"name": "City Swap", "profile": swap, "price": 64800},
    ]}
    catalogue = build_catalogue(project, definition, deposit=2000)
    assert catalogue.source == "product_definition"
    city, city_swap = catalogue.variants
    assert (city.name, city.price, [b.name for b in city.batteries]) == ("City", 59800, ["lfp42"])
    assert [p.ownership for p in city.batteries[0].plans] == ["buy"]  # a plug-in car cannot rent its battery
    assert [(p.rent_plan, p.monthly_fee) for p in city_swap.batteries[0].plans] == [
        (None, None), ("capped", 399), ("unlimited", 499)
    ]
    fallback = build_catalogue(project, None, deposit=2000)
    assert fallback.source == "attributes" and [v.price for v in fallback.variants][:2] == [45000, 55000]


def test_page_flow_choose_pay_confirm_and_double_submit(client: TestClient) -> None:
    form = client.get(f"/preorder/{PROJECT}?lang=en")
    assert form.status_code == 200 and "Pre-order your car" in form.text
    key = form.text.split('name="key" value="')[1].split('"')[0]
    data = {"variant": "p75k", "colour": "green", "battery": "lfp42", "plan": "buy", "key": key}
    first = client.post(f"/preorder/{PROJECT}?lang=en", data=data, follow_redirects=False)
    second = client.post(f"/preorder/{PROJECT}?lang=en", data=data, follow_redirects=False)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]  # a double submit reserves one car
    order_page = client.get(first.headers["location"])
    assert "Pay the deposit" in order_page.text
    oid = first.headers["location"].split("/orders/")[1].split("?")[0]
    paid = client.post(f"/preorder/{PROJECT}/orders/{oid}/pay?lang=en")
    assert paid.status_code == 200 and "Your pre-order is confirmed" in paid.text
    zh = client.get(f"/preorder/{PROJECT}/orders/{oid}?lang=zh")
    assert "预订成功" in zh.text and "薄荷绿" in zh.text
    bad = client.post(
        f"/preorder/{PROJECT}?lang=en", data={**data, "key": "k2", "variant": "<script>alert(1)</script>"}
    )
    assert bad.status_code == 422 and 'role="alert"' in bad.text
    assert 'id="variant" name="variant" required aria-invalid="true"' in bad.text
    assert "<script>alert" not in bad.text and "&lt;script&gt;" in bad.text
    engine = client.app.state.platform.engine  # type: ignore[attr-defined]
    assert _count(engine, PreorderRow) == 1


def test_pre_orders_belong_to_the_signed_in_person(client: TestClient) -> None:
    oid = _create(client, "mine").json()["id"]
    stranger = sign_in(client, "13700137000")
    anonymous = {"Authorization": ""}
    assert _error(client.post(API, json=BODY, headers={**anonymous, "Idempotency-Key": "k"}), 401, "Authorization")
    for call in (
        lambda h: client.get(f"{API}/{oid}", headers=h),
        lambda h: client.post(f"{API}/{oid}/deposit", headers=h),
        lambda h: client.post(f"{API}/{oid}/cancel", headers=h),
    ):
        assert call(anonymous).status_code == 401
        _error(call(stranger), 404, "order")
    assert client.get(f"{API}/{oid}").json()["state"] == "reserved"
    engine = client.app.state.platform.engine  # type: ignore[attr-defined]
    assert _count(engine, LocalChargeRow) == 0
    # the pages: signed out, the form sends the person to sign in first
    signed_out = TestClient(client.app)
    form = signed_out.get(f"/preorder/{PROJECT}?lang=en", follow_redirects=False)
    assert form.status_code == 303
    assert form.headers["location"] == "/sign-in?next=%2Fpreorder%2Fswap-city-ev%3Flang%3Den&lang=en"
    assert signed_out.get(f"/preorder/{PROJECT}/orders/{oid}", follow_redirects=False).status_code == 303
