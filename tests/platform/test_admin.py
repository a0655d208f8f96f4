"""Admin: login, sessions, CSRF, roles, rate limits, dashboard, estimate now, simulator, exports; SQLite and PG."""

from __future__ import annotations

import io
import logging
import re
import subprocess
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from tests.conftest import c2m_command

from c2m.domain import FeatureCoder, Project
from c2m.platform import Platform, Settings, create_app, init_db
from c2m.platform._auth import AdminAuth
from c2m.platform._dashboard import export_tables
from c2m.platform._db import write_session
from c2m.platform._identity import Person, person_hash
from c2m.platform._jobs import JobRunner
from c2m.platform._models import JobRow, LoginAttemptRow, ProjectRow

PROJECT = "swap-city-ev"
QUALIFIED = {"adult": True, "buys_within_24m": True}
PROFILE = {"city": "Shanghai", "daily_km": 35, "home_charging": "yes", "current_car": "petrol"}
ADMIN_PASSWORD = "correct horse battery staple"
ANALYST_PASSWORD = "analyst password 2026"


@pytest.fixture
def admin_settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, slot_days_ahead=2, slot_capacity=3, survey_versions=4, survey_tasks=8,
                    survey_alts=3, survey_holdouts=2, admin_login_max_failures=3, admin_login_max_client_failures=6)


@pytest.fixture
def app_and_client(admin_settings: Settings) -> Iterator[tuple[Any, TestClient]]:
    app = create_app(admin_settings)
    app.state.admin_auth.add_user("alice", ADMIN_PASSWORD, "admin")
    app.state.admin_auth.add_user("carol", ANALYST_PASSWORD, "analyst")
    with TestClient(app) as client:
        yield app, client


@pytest.fixture
def client(app_and_client: tuple[Any, TestClient]) -> TestClient:
    return app_and_client[1]


@pytest.fixture
def platform(app_and_client: tuple[Any, TestClient]) -> Platform:
    return app_and_client[0].state.platform  # type: ignore[no-any-return]


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def login(client: TestClient, username: str, password: str, next_path: str = "/admin") -> Any:
    form = client.get("/admin/login?lang=en")
    return client.post("/admin/login?lang=en", follow_redirects=False,
                       data={"username": username, "password": password, "csrf": _csrf(form.text), "next": next_path})


def _bearer(client: TestClient, username: str, password: str) -> dict[str, str]:
    r = client.post("/api/v1/admin/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _person(platform: Platform, contact: str) -> Person:
    """A verified person (the one-time-code flow is tested in test_identity.py)."""
    return Person(person_hash(contact, platform.settings.contact_salt))


def _respond(platform: Platform, project: Project, n: int, seed: int = 3) -> np.ndarray:
    """``n`` respondents answer every task by a logit of known part-worths; the part-worths."""
    coder = FeatureCoder.from_project(project)
    rng = np.random.default_rng(seed)
    truth = rng.normal(0.0, 0.6, coder.n_features)
    truth[coder.feature_names.index("price")] = -0.35
    truth[coder.feature_names.index("none")] = -1.5
    for k in range(n):
        token = platform.survey_start(PROJECT, QUALIFIED).token
        state = platform.survey_state(PROJECT, token)
        draws = np.random.default_rng([seed, k])
        while state.task is not None:
            X = np.vstack([coder.encode_many([c.levels for c in state.task.concepts]), coder.none_row()])
            best = int(np.argmax(X @ truth + draws.gumbel(size=X.shape[0])))
            choice: int | str = "none" if best == len(state.task.concepts) else best + 1
            platform.survey_answer(PROJECT, token, state.task.number, choice)
            state = platform.survey_state(PROJECT, token)
        platform.survey_profile(PROJECT, token, PROFILE)
    return truth


# ---------------------------------------------------------------------- access control
def _admin_routes(app: Any) -> list[tuple[str, str]]:
    routes = []
    for route in app.routes:
        path = getattr(route, "path", "")
        if not (path.startswith("/admin") or path.startswith("/api/v1/admin")) or path.endswith("/login"):
            continue
        concrete = (path.replace("{project}", PROJECT).replace("{job_id}", "x" * 32)
                    .replace("{name}", "booking.csv").replace("{fmt}", "csv").replace("{order_id}", "y" * 32))
        routes += [(method, concrete) for method in sorted(route.methods - {"HEAD"})]
    return routes


def test_every_admin_route_refuses_anonymous_users(app_and_client: tuple[Any, TestClient]) -> None:
    app, client = app_and_client
    routes = _admin_routes(app)
    assert len(routes) >= 18
    for method, path in routes:
        r = client.request(method, path, follow_redirects=False)
        if path.startswith("/api"):
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.json()["error"]["code"] == "login_required"
        else:
            assert r.status_code == 303, (method, path, r.status_code)
            assert r.headers["location"].startswith("/admin/login?next=")


def test_login_sets_a_strict_httponly_cookie_and_returns_to_the_page(client: TestClient) -> None:
    r = client.get(f"/admin/{PROJECT}", follow_redirects=False)
    target = r.headers["location"]
    assert "next=%2Fadmin%2Fswap-city-ev" in target
    r = login(client, "alice", ADMIN_PASSWORD, next_path=f"/admin/{PROJECT}")
    assert r.status_code == 303 and r.headers["location"] == f"/admin/{PROJECT}"
    cookie = r.headers["set-cookie"].lower()
    assert "c2m_admin=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    page = client.get(f"/admin/{PROJECT}?lang=en")
    assert page.status_code == 200 and "Signed in as alice (admin)" in page.text
    assert page.headers["cache-control"] == "no-store"


def test_login_refuses_an_open_redirect_and_a_missing_form_token(client: TestClient) -> None:
    r = login(client, "alice", ADMIN_PASSWORD, next_path="https://evil.example/")
    assert r.headers["location"] == "/admin"
    r = login(client, "alice", ADMIN_PASSWORD, next_path="//evil.example/admin")
    assert r.headers["location"] == "/admin"
    other = TestClient(client.app)
    r = other.post("/admin/login", data={"username": "alice", "password": ADMIN_PASSWORD, "csrf": "forged"},
                   follow_redirects=False)
    assert r.status_code == 403 and "c2m_admin" not in r.headers.get("set-cookie", "")


def test_wrong_passwords_are_refused_then_rate_limited(client: TestClient, platform: Platform) -> None:
    for _ in range(3):
        r = login(client, "alice", "not the password")
        assert r.status_code == 401 and "wrong user name or password" in r.text
    r = login(client, "alice", ADMIN_PASSWORD)  # right password, but the name is locked for the window
    assert r.status_code == 429 and "too many failed logins" in r.text
    r = client.post("/api/v1/admin/login", json={"username": "alice", "password": ADMIN_PASSWORD})
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_attempts"
    assert login(client, "carol", ANALYST_PASSWORD).status_code == 303  # another account is not locked
    for _ in range(3):  # six failures from one address lock every account from there
        assert login(client, "nobody", "guess").status_code == 401
    assert login(client, "carol", ANALYST_PASSWORD).status_code == 429
    with platform.engine.connect() as conn:
        attempts = conn.execute(select(LoginAttemptRow.username, LoginAttemptRow.ok)).all()
    assert sum(1 for _, ok in attempts if not ok) == 6


def test_sessions_end_on_logout_and_on_expiry(admin_settings: Settings, client: TestClient) -> None:
    headers = _bearer(client, "alice", ADMIN_PASSWORD)
    assert client.get("/api/v1/admin/exports", headers=headers).status_code == 200
    assert client.post("/api/v1/admin/logout", headers=headers).status_code == 200
    assert client.get("/api/v1/admin/exports", headers=headers).status_code == 401
    short = AdminAuth(client.app.state.platform.engine, session_hours=0.5 / 3600)  # type: ignore[attr-defined]
    token, _ = short.login("alice", ADMIN_PASSWORD, "test")
    assert short.session(token) is not None
    time.sleep(0.8)
    assert short.session(token) is None


def test_csrf_token_is_required_on_every_cookie_session_form(client: TestClient) -> None:
    login(client, "alice", ADMIN_PASSWORD)
    page = client.get(f"/admin/{PROJECT}?lang=en")
    token = _csrf(page.text)
    for path in (f"/admin/{PROJECT}/estimate", f"/admin/{PROJECT}/simulate", "/admin/logout", "/admin/-/users"):
        for data in ({}, {"csrf": "wrong"}):
            r = client.post(path, data=data, follow_redirects=False)
            assert r.status_code == 403, (path, data, r.status_code)
    r = client.post(f"/api/v1/admin/projects/{PROJECT}/estimate")  # cookie session without the header
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"
    r = client.post(f"/api/v1/admin/projects/{PROJECT}/estimate", headers={"X-CSRF-Token": token})
    assert r.status_code == 202
    r = client.post(f"/admin/{PROJECT}/estimate", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and "/jobs/" in r.headers["location"]


def test_analysts_cannot_reach_admin_only_pages(client: TestClient) -> None:
    login(client, "carol", ANALYST_PASSWORD)
    assert client.get(f"/admin/{PROJECT}").status_code == 200
    assert client.get(f"/admin/{PROJECT}/simulate").status_code == 200
    for path in ("/admin/-/exports", "/admin/-/users", "/admin/-/exports/booking.csv", "/admin/-/exports-all/csv"):
        assert client.get(path).status_code == 403, path
    headers = _bearer(client, "carol", ANALYST_PASSWORD)
    r = client.get("/api/v1/admin/exports/booking.csv", headers=headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "admin_only"
    page = client.get(f"/admin/{PROJECT}?lang=en").text
    assert "/admin/-/exports" not in page  # the navigation hides what the role cannot open


def test_passwords_are_never_logged_nor_stored(
    client: TestClient, platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    login(client, "alice", "a wrong secret 12345")
    login(client, "alice", ADMIN_PASSWORD)
    headers = _bearer(client, "alice", ADMIN_PASSWORD)
    client.app.state.admin_auth.add_user("dave", "dave's new password", "analyst")  # type: ignore[attr-defined]
    for secret in (ADMIN_PASSWORD, "a wrong secret 12345", "dave's new password"):
        assert secret not in caplog.text
    with platform.engine.connect() as conn:
        hashes = conn.execute(text("SELECT password_hash FROM admin_user")).scalars().all()
        dump = " ".join(str(row) for t in ("admin_user", "admin_session", "login_attempt")
                        for row in conn.execute(text(f"SELECT * FROM {t}")))
    assert all(h.startswith("$argon2id$") for h in hashes) and len(hashes) == 3
    assert ADMIN_PASSWORD not in dump and headers["Authorization"][7:] not in dump  # tokens stored hashed only
    r = client.get("/admin/-/exports/admin_user.csv", headers=headers)
    assert r.status_code == 200 and "password" not in r.text and "argon2" not in r.text


def test_injection_payloads_are_harmless(client: TestClient, platform: Platform) -> None:
    payload = "' OR '1'='1'; DROP TABLE admin_user; --<script>alert(1)</script>"
    r = login(client, payload, payload)
    assert r.status_code == 401
    assert "<script>alert(1)</script>" not in r.text and "&lt;script&gt;" in r.text
    assert login(client, "alice", ADMIN_PASSWORD).status_code == 303  # the table is still there
    with platform.engine.connect() as conn:
        names = conn.execute(select(LoginAttemptRow.username)).scalars().all()
    assert payload[:100] in names  # stored as typed (truncated to the column), not executed


def test_add_user_page_and_cli(client: TestClient, admin_settings: Settings) -> None:
    login(client, "alice", ADMIN_PASSWORD)
    token = _csrf(client.get("/admin/-/users").text)
    r = client.post("/admin/-/users?lang=en", data={"csrf": token, "username": "erin", "password": "short",
                                                     "role": "analyst"})
    assert r.status_code == 422 and "at least 10 characters" in r.text
    r = client.post("/admin/-/users?lang=en", data={"csrf": token, "username": "erin",
                                                     "password": "erin's long password", "role": "analyst"})
    assert r.status_code == 200 and "Account erin added." in r.text
    r = client.post("/admin/-/users?lang=en", data={"csrf": token, "username": "erin",
                                                     "password": "erin's long password", "role": "analyst"})
    assert r.status_code == 409 and "exists already" in r.text
    url = admin_settings.database_url
    done = subprocess.run([*c2m_command(), "admin", "add-user", "frank", "--role", "admin", "--password-stdin",
                           "--database-url", url], input="frank's long password\n", capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "frank's long password" not in done.stdout + done.stderr
    fresh = TestClient(client.app)
    assert login(fresh, "frank", "frank's long password").status_code == 303
    bad = subprocess.run([*c2m_command(), "admin", "add-user", "gina", "--role", "owner", "--password-stdin",
                          "--database-url", url], input="gina's long password\n", capture_output=True, text=True,
                         timeout=120, check=False)
    assert bad.returncode == 2 and "role 'owner'" in bad.stderr and "Traceback" not in bad.stderr


# ---------------------------------------------------------------------- dashboard
def test_the_dashboard_counts_the_funnel_and_the_bookings(client: TestClient, platform: Platform) -> None:
    tokens = [platform.survey_start(PROJECT, QUALIFIED).token for _ in range(3)]
    platform.survey_start(PROJECT, {"adult": False, "buys_within_24m": True})  # screened out
    for token in tokens[:2]:
        state = platform.survey_state(PROJECT, token)
        while state.task is not None:
            platform.survey_answer(PROJECT, token, state.task.number, 1)  # a straight-liner
            state = platform.survey_state(PROJECT, token)
        platform.survey_profile(PROJECT, token, PROFILE)
    store = platform.stores(PROJECT)[0].code
    slot = platform.slots(PROJECT, store)[0]
    people = ["13800000001", "13800000002", "13800000003"]
    for person in people:
        platform.book(PROJECT, slot.id, _person(platform, person))
    platform.claim(PROJECT, "charging-coupon", _person(platform, people[0]))
    platform.claim(PROJECT, "rent-waiver", _person(platform, people[1]))

    headers = _bearer(client, "carol", ANALYST_PASSWORD)
    board = client.get(f"/api/v1/admin/projects/{PROJECT}/dashboard", headers=headers).json()
    assert board["funnel"] == {"survey_started": 4, "survey_qualified": 3, "survey_done": 2, "test_drives": 3,
                               "benefits": 2, "preorders": 0, "confirmed": 0}
    assert board["bookings_by_store_day"] == [{"store": store, "city": slot.city, "day": slot.start.date().isoformat(),
                                               "booked": 3, "seats": board["bookings_by_store_day"][0]["seats"]}]
    progress = board["survey_progress"]
    assert sum(r["started"] for r in progress) == 3 and sum(r["done"] for r in progress) == 2
    assert sum(r["straight_liners"] for r in progress) == 2
    assert {r["city"] for r in progress} == {"Shanghai", "(not yet)"}
    assert {b["code"]: b["granted"] for b in board["benefits"]} == {"charging-coupon": 1, "rent-waiver": 1}

    login(client, "carol", ANALYST_PASSWORD)
    page = client.get(f"/admin/{PROJECT}?lang=en").text
    assert re.search(r'data-stage="test_drives"><th scope="row">Booked a test drive</th><td class="num">3<', page)
    assert f"<td>{store}</td>" in page and "3 / " in page
    zh = client.get(f"/admin/{PROJECT}?lang=zh").text
    assert '<html lang="zh-CN">' in zh and "转化漏斗" in zh


def _paid_order(platform: Platform, contact: str, key: str) -> str:
    choice = {"variant": "p65k", "colour": "blue", "battery": "ncm52", "ownership": "rent", "rent_plan": "capped"}
    who = _person(platform, contact)
    order = platform.preorder_create(PROJECT, key, person=who, **choice)
    return platform.preorder_pay(PROJECT, order.id, actor="api", person=who).id


def test_admins_confirm_and_deliver_orders_analysts_only_look(client: TestClient, platform: Platform) -> None:
    paid, other = _paid_order(platform, "13900000001", "o-1"), _paid_order(platform, "13900000002", "o-2")
    login(client, "carol", ANALYST_PASSWORD)
    seen = client.get(f"/admin/{PROJECT}/orders?lang=en")
    assert seen.status_code == 200 and f'data-order="{paid}" data-state="deposit_paid"' in seen.text
    assert "Confirm for production" not in seen.text  # an analyst: no buttons
    refused = client.post(f"/admin/{PROJECT}/orders/{paid}?lang=en", data={"csrf": _csrf(seen.text),
                                                                           "action": "confirm"})
    assert refused.status_code == 403
    client.cookies.clear()
    login(client, "alice", ADMIN_PASSWORD)
    listing = client.get(f"/admin/{PROJECT}/orders?lang=en").text
    assert listing.count(">Confirm for production<") == 2
    no_token = client.post(f"/admin/{PROJECT}/orders/{paid}", data={"action": "confirm"})
    assert no_token.status_code == 403
    done = client.post(f"/admin/{PROJECT}/orders/{paid}?lang=en",
                       data={"csrf": _csrf(listing), "action": "confirm", "note": "week 12"}, follow_redirects=False)
    assert done.status_code == 303
    order = platform.preorder(PROJECT, paid)
    assert order.state == "confirmed" and (order.events[-1].actor, order.events[-1].note) == ("staff:alice", "week 12")
    listing = client.get(f"/admin/{PROJECT}/orders?lang=en").text
    assert "Mark delivered" in listing and listing.count(">Confirm for production<") == 1
    bad = client.post(f"/admin/{PROJECT}/orders/{paid}?lang=en", data={"csrf": _csrf(listing), "action": "confirm"})
    assert bad.status_code == 409 and "confirmed" in bad.text  # already confirmed: refused, naming the state
    api = client.get(f"/api/v1/admin/projects/{PROJECT}/preorders", params={"state": "deposit_paid"},
                     headers=_bearer(client, "carol", ANALYST_PASSWORD))
    assert [o["id"] for o in api.json()] == [other]
    wrong = client.get(f"/api/v1/admin/projects/{PROJECT}/preorders", params={"state": "lost"},
                       headers=_bearer(client, "carol", ANALYST_PASSWORD))
    assert wrong.status_code == 422 and wrong.json()["error"]["field"] == "state"
    board = client.get(f"/api/v1/admin/projects/{PROJECT}/dashboard", headers=_bearer(client, "alice",
                                                                                        ADMIN_PASSWORD)).json()
    assert (board["funnel"]["preorders"], board["funnel"]["confirmed"]) == (2, 1)


def test_estimate_now_runs_in_the_background_and_the_simulator_uses_it(
    client: TestClient, platform: Platform, project: Project
) -> None:
    truth = _respond(platform, project, 80)
    headers = _bearer(client, "carol", ANALYST_PASSWORD)
    r = client.post(f"/api/v1/admin/projects/{PROJECT}/simulate", headers=headers,
                    json={"products": [{"price": 100000}]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "no_model"
    job = client.post(f"/api/v1/admin/projects/{PROJECT}/estimate", headers=headers).json()
    assert job["state"] in ("queued", "running", "done")
    deadline = time.monotonic() + 120
    while job["state"] not in ("done", "failed"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
        job = client.get(f"/api/v1/admin/projects/{PROJECT}/jobs/{job['id']}", headers=headers).json()
    assert job["state"] == "done", job["error"]
    result = job["result"]
    assert result["n_respondents"] == 80 and result["converged"]
    names = FeatureCoder.from_project(project).feature_names
    coef = {c["feature"]: c for c in result["coefficients"]}
    assert list(coef) == names
    inside = sum(abs(coef[n]["coef"] - t) <= 2.58 * coef[n]["se"] for n, t in zip(names, truth, strict=True))
    assert inside >= 0.8 * len(names)

    # the simulator: the page, the htmx partial and the API agree; a cheaper variant gains share
    login(client, "carol", ANALYST_PASSWORD)
    page = client.get(f"/admin/{PROJECT}/simulate?lang=en").text
    assert 'hx-post="/admin/swap-city-ev/simulate' in page and '<script src="/static/htmx.min.js"' in page
    form: dict[str, str] = {"csrf": _csrf(page)}
    for k, chosen in enumerate(re.findall(r'<select id="p(\d)-(\w+)" name="[^"]+">(.*?)</select>', page, re.S)):
        del k
        variant, attribute, options = chosen
        selected = re.search(r'<option value="([^"]+)" selected', options)
        assert selected, (variant, attribute)
        form[f"p{variant}.{attribute}"] = selected.group(1)
    form["p0.include"] = "on"
    partial = client.post(f"/admin/{PROJECT}/simulate?lang=en", data=form, headers={"HX-Request": "true"})
    assert partial.status_code == 200 and "<html" not in partial.text and 'id="share-table"' in partial.text
    shares = [float(x) for x in re.findall(r'<td class="num">([\d.]+)%</td>', partial.text)]
    assert abs(sum(shares) - 100) < 0.5 and len(shares) == 1 + len(project.competitors) + 1
    profile = {a.name: form[f"p0.{a.name}"] for a in project.attributes}
    api = client.post(f"/api/v1/admin/projects/{PROJECT}/simulate", headers=headers,
                      json={"products": [profile]}).json()["shares"]
    assert api[0]["product"] == "V1" and abs(100 * api[0]["share"] - shares[0]) < 0.051
    price = next(a for a in project.attributes if a.name == "price")
    cheap = {**profile, "price": float(price.levels[0].value or 0)}
    dear = {**profile, "price": float(price.levels[-1].value or 0)}
    both = client.post(f"/api/v1/admin/projects/{PROJECT}/simulate", headers=headers,
                       json={"products": [cheap, dear]}).json()["shares"]
    assert both[0]["share"] > both[1]["share"]
    bad = client.post(f"/api/v1/admin/projects/{PROJECT}/simulate", headers=headers,
                      json={"products": [{**profile, "colour": "plaid"}]})
    assert bad.status_code == 422 and "colour" in bad.json()["error"]["message"]


def test_estimate_with_too_few_answers_fails_with_a_reason(client: TestClient) -> None:
    login(client, "alice", ADMIN_PASSWORD)
    token = _csrf(client.get(f"/admin/{PROJECT}").text)
    r = client.post(f"/admin/{PROJECT}/estimate?lang=en", data={"csrf": token})
    job_url = str(r.url)
    deadline = time.monotonic() + 60
    while 'data-state="failed"' not in r.text:
        assert time.monotonic() < deadline and 'data-state="done"' not in r.text
        assert 'hx-trigger="every 1s"' in r.text  # still polling while unfinished
        time.sleep(0.2)
        r = client.get(job_url, headers={"HX-Request": "true"})
    assert "only 0 finished respondent(s)" in r.text and "hx-trigger" not in r.text


def test_jobs_interrupted_by_a_restart_are_marked_failed(admin_settings: Settings, platform: Platform) -> None:
    with write_session(platform.engine) as session:
        pid = session.scalar(select(ProjectRow.id).where(ProjectRow.name == PROJECT))
        session.add(JobRow(id="a" * 32, project_id=pid, kind="estimate", state="running", params={},
                           created_by="alice"))
    create_app(admin_settings)  # a restart migrates, seeds and cleans up
    job = JobRunner(platform.engine, platform).job(PROJECT, "a" * 32)
    assert job.state == "failed" and job.error is not None and "interrupted" in job.error


# ---------------------------------------------------------------------- exports
def test_exports_hold_every_table_without_secrets(client: TestClient, platform: Platform) -> None:
    store = platform.stores(PROJECT)[0].code
    slot = platform.slots(PROJECT, store)[0]
    platform.book(PROJECT, slot.id, _person(platform, "13900000001"))
    platform.book(PROJECT, slot.id, _person(platform, "someone@example.com"))
    headers = _bearer(client, "alice", ADMIN_PASSWORD)
    tables = client.get("/api/v1/admin/exports", headers=headers).json()["tables"]
    assert tables == export_tables()
    assert {"booking", "slot", "store", "survey_answer", "preorder", "job", "admin_user"} <= set(tables)
    assert not {"admin_session", "login_attempt"} & set(tables)
    r = client.get("/api/v1/admin/exports/booking.csv", headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    bookings = pl.read_csv(io.BytesIO(r.content))
    assert bookings.height == 2 and set(bookings["slot_id"].to_list()) == {slot.id}
    r = client.get("/api/v1/admin/exports/slot.parquet", headers=headers)
    slots = pl.read_parquet(io.BytesIO(r.content))
    assert slots.filter(pl.col("id") == slot.id)["booked"].to_list() == [2]
    assert slots.schema["start"] == pl.Datetime("us")
    login(client, "alice", ADMIN_PASSWORD)
    archive = zipfile.ZipFile(io.BytesIO(client.get("/admin/-/exports-all/parquet").content))
    assert sorted(archive.namelist()) == sorted(f"{t}.parquet" for t in tables)
    for name in archive.namelist():
        frame = pl.read_parquet(io.BytesIO(archive.read(name)))
        assert not [c for c in frame.columns if "password" in c or "token" in c], name
    assert client.get("/api/v1/admin/exports/admin_session.csv", headers=headers).status_code == 404
    bad = client.get("/api/v1/admin/exports/booking.xlsx", headers=headers)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "name"


def test_dashboard_of_an_unknown_project_is_404(client: TestClient) -> None:
    headers = _bearer(client, "alice", ADMIN_PASSWORD)
    r = client.get("/api/v1/admin/projects/nope/dashboard", headers=headers)
    assert r.status_code == 404 and "nope" in r.json()["error"]["message"]


def test_init_db_alone_creates_the_admin_tables(admin_settings: Settings, project: Project) -> None:
    engine: Engine = init_db(admin_settings.database_url, admin_settings, projects=[project])
    try:
        AdminAuth(engine).add_user("henry", "henry's long password", "analyst")
        assert ("henry", "analyst") in AdminAuth(engine).users()
    finally:
        engine.dispose()
