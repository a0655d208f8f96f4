"""Consumer identity: one-time codes (hashed, expiring, tries and sends limited, also under races), person sessions
(bearer token and cookie), sign-in pages; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, String, select, update
from sqlalchemy.pool import NullPool
from tests.platform._person import last_code, sign_in

from c2m.domain import Project
from c2m.platform import Platform, PlatformError, Settings, create_app, init_db, make_engine, person_hash
from c2m.platform._models import Base, LoginCodeRow, PersonSessionRow, utcnow

CONTACT = "+86 138-0013-8000"
PROJECT = "swap-city-ev"


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, slot_days_ahead=1, survey_versions=2, survey_tasks=4)


@pytest.fixture
def engine(settings: Settings, project: Project) -> Iterator[Engine]:
    engine = init_db(settings.database_url, settings, projects=[project])
    yield engine
    engine.dispose()


@pytest.fixture
def platform(engine: Engine, settings: Settings) -> Platform:
    return Platform(engine, settings)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def _refused(call: Callable[[], object]) -> PlatformError:
    with pytest.raises(PlatformError) as info:
        call()
    return info.value


def _every_text_value(engine: Engine) -> list[str]:
    """Every string stored in any table of the platform."""
    values: list[str] = []
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String)]
            if columns:
                values += [str(v) for row in conn.execute(select(*columns)) for v in row if v is not None]
    return values


def _race(n: int, call: Callable[[int], Any]) -> list[Any]:
    """``call(i)`` in ``n`` threads released together; results or exceptions, in order."""
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


def test_a_code_signs_in_and_neither_contact_nor_code_nor_token_is_stored(
    platform: Platform, engine: Engine
) -> None:
    sent = platform.identity_request_code(CONTACT)
    assert timedelta(minutes=9, seconds=59) < sent.expires_at - utcnow() <= timedelta(minutes=10)
    [code] = platform.dev_outbox(CONTACT)
    assert len(code) == 6 and code.isdigit()
    token, person = platform.identity_verify(CONTACT, code)
    assert person.hash == person_hash(CONTACT) == person_hash("+8613800138000")
    assert platform.identity_person(token).hash == person.hash
    stored = _every_text_value(engine)
    assert not [v for v in stored if "13800138000" in v]  # the contact, in any spelling
    assert stored.count(code) == 1  # only the dev outbox keeps it
    with engine.connect() as conn:
        row = conn.execute(select(LoginCodeRow)).one()
        assert code not in row.code_hash and row.consumed_at is not None and row.attempts == 1
        assert token not in conn.execute(select(PersonSessionRow.token_hash)).scalars().all()
    # a used code does not sign in again
    assert _refused(lambda: platform.identity_verify(CONTACT, code)).code == "no_code"


def test_wrong_codes_count_and_the_fifth_is_the_last_try(platform: Platform) -> None:
    platform.identity_request_code(CONTACT)
    right = platform.dev_outbox(CONTACT)[0]
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    messages = []
    for _ in range(5):
        error = _refused(lambda: platform.identity_verify(CONTACT, wrong))
        assert (error.status, error.code, error.field) == (401, "wrong_code", "code")
        messages.append(error.message)
    assert messages[0] == "wrong code; 4 tries left" and messages[3] == "wrong code; 1 try left"
    assert "last try" in messages[4]
    error = _refused(lambda: platform.identity_verify(CONTACT, right))  # even the right code, now
    assert (error.status, error.code, error.field) == (429, "too_many_attempts", "code")
    invalid = _refused(lambda: platform.identity_verify(CONTACT, "12 34"))
    assert (invalid.status, invalid.field) == (422, "code")


def test_codes_expire_after_ten_minutes(platform: Platform, engine: Engine) -> None:
    platform.identity_request_code(CONTACT)
    with engine.begin() as conn:
        conn.execute(update(LoginCodeRow).values(expires_at=utcnow() - timedelta(seconds=1)))
    error = _refused(lambda: platform.identity_verify(CONTACT, platform.dev_outbox(CONTACT)[0]))
    assert (error.status, error.code, error.field) == (401, "code_expired", "code")
    assert "10 minutes" in error.message
    assert _refused(lambda: platform.identity_verify("13900139000", "123456")).code == "no_code"


def test_sends_are_limited_per_contact(platform: Platform, engine: Engine, settings: Settings) -> None:
    platform.identity_request_code(CONTACT)
    error = _refused(lambda: platform.identity_request_code("+8613800138000"))  # the same contact
    assert (error.status, error.code, error.field) == (429, "too_many_codes", "contact")
    assert "ask again in 3" in error.message  # 30 s, less the time since
    platform.identity_request_code("a@example.cn")  # another contact is not held back
    fast = Platform(engine, settings.model_copy(update={"code_resend_seconds": 0}))
    for _ in range(9):
        fast.identity_request_code(CONTACT)
    error = _refused(lambda: fast.identity_request_code(CONTACT))
    assert error.status == 429 and "10 codes were sent to this contact within the hour" in error.message
    assert len(fast.dev_outbox(CONTACT)) == 10
    # only the newest code is good
    first, newest = fast.dev_outbox(CONTACT)[-1], fast.dev_outbox(CONTACT)[0]
    if first != newest:
        assert _refused(lambda: fast.identity_verify(CONTACT, first)).code == "wrong_code"
    # an hour later the window starts again
    with engine.begin() as conn:
        conn.execute(update(LoginCodeRow).values(window_start=utcnow() - timedelta(hours=1, seconds=1)))
    fast.identity_request_code(CONTACT)
    fast.identity_verify(CONTACT, fast.dev_outbox(CONTACT)[0])


def test_racing_sends_and_verifications_cannot_beat_the_limits(platform: Platform, settings: Settings) -> None:
    racing = Platform(make_engine(settings.database_url, poolclass=NullPool), settings)
    try:
        sends = _race(20, lambda i: racing.identity_request_code(CONTACT))
        assert sum(not isinstance(r, Exception) for r in sends) == 1
        assert all(r.code == "too_many_codes" for r in sends if isinstance(r, Exception)), sends
        assert len(platform.dev_outbox(CONTACT)) == 1
        right = platform.dev_outbox(CONTACT)[0]
        wrong = f"{(int(right) + 1) % 10**6:06d}"
        guesses = _race(20, lambda i: racing.identity_verify(CONTACT, wrong))
        codes = sorted(g.code for g in guesses)
        assert codes == ["too_many_attempts"] * 15 + ["wrong_code"] * 5, codes
        # the right code, verified 20 times at once, opens one session
        other = "b@example.cn"
        platform.identity_request_code(other)
        code = platform.dev_outbox(other)[0]
        results = _race(20, lambda i: racing.identity_verify(other, code))
        tokens = [r for r in results if not isinstance(r, Exception)]
        assert len(tokens) == 1, results
        assert len(platform.identity_sessions(tokens[0][1])) == 1
    finally:
        racing.engine.dispose()


def test_sessions_expire_and_sign_out_revokes(platform: Platform, engine: Engine) -> None:
    platform.identity_request_code(CONTACT)
    token, person = platform.identity_verify(CONTACT, platform.dev_outbox(CONTACT)[0])
    assert person.expires_at is not None and person.expires_at - utcnow() > timedelta(days=29)
    assert _refused(lambda: platform.identity_person(None)).code == "sign_in_required"
    assert _refused(lambda: platform.identity_person("forged")).code == "token_invalid"
    with engine.begin() as conn:
        conn.execute(update(PersonSessionRow).values(expires_at=utcnow() - timedelta(seconds=1)))
    error = _refused(lambda: platform.identity_person(token, field="cookie"))
    assert (error.status, error.code, error.field) == (401, "token_expired", "cookie")
    with engine.begin() as conn:
        conn.execute(update(PersonSessionRow).values(expires_at=utcnow() + timedelta(days=1)))
    platform.identity_sign_out(token)
    assert _refused(lambda: platform.identity_person(token)).code == "token_invalid"


def _api_error(response: httpx.Response, status: int, code: str, field: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["status"], error["code"], error["field"]) == (status, code, field)
    return str(error["message"])


def test_identity_api(client: TestClient) -> None:
    assert client.post("/api/v1/identity/code", json={"contact": CONTACT}).status_code == 202
    _api_error(client.post("/api/v1/identity/code", json={"contact": CONTACT}), 429, "too_many_codes", "contact")
    _api_error(client.post("/api/v1/identity/code", json={"contact": "call me"}), 422, "invalid_contact", "contact")
    wrong = f"{(int(last_code(client, CONTACT)) + 1) % 10**6:06d}"
    _api_error(client.post("/api/v1/identity/verify", json={"contact": CONTACT, "code": wrong}), 401, "wrong_code",
               "code")
    verified = client.post("/api/v1/identity/verify", json={"contact": CONTACT, "code": last_code(client, CONTACT)})
    assert verified.status_code == 200 and verified.json()["token_type"] == "bearer"
    me = {"Authorization": f"Bearer {verified.json()['token']}"}
    assert client.get("/api/v1/me", headers=me).json()["person"]["person_hash"] == person_hash(CONTACT)
    response = client.get("/api/v1/me")
    assert "Authorization" in _api_error(response, 401, "sign_in_required", "Authorization")
    assert response.headers["www-authenticate"] == "Bearer"
    assert client.post("/api/v1/identity/sign-out", headers=me).json() == {"signed_out": True}
    _api_error(client.get("/api/v1/me", headers=me), 401, "token_invalid", "Authorization")
    # the survey stays anonymous: no sign-in needed
    started = client.post(
        f"/api/v1/projects/{PROJECT}/survey/start",
        json={"lang": "en", "screening": {"adult": True, "buys_within_24m": True}},
    )
    assert started.status_code == 201 and started.json()["token"]


def test_sign_in_pages_return_where_the_person_was(client: TestClient) -> None:
    target = f"/book/{PROJECT}?lang=en&city=Shanghai"
    redirected = client.get("/me?lang=en", follow_redirects=False)
    assert redirected.status_code == 303
    assert redirected.headers["location"] == "/sign-in?next=%2Fme%3Flang%3Den&lang=en"
    start = client.get("/sign-in", params={"next": target, "lang": "en"})
    assert '<label for="contact">Mobile number or e-mail</label>' in start.text
    assert f'name="next" value="{target}"' in start.text.replace("&amp;", "&")
    bad = client.post("/sign-in?lang=en", data={"contact": "call me", "next": target})
    assert bad.status_code == 422 and 'role="alert"' in bad.text and 'aria-invalid="true"' in bad.text
    asked = client.post("/sign-in?lang=en", data={"contact": "13800138000", "next": target})
    assert asked.status_code == 200 and "We sent a 6-digit code to 138****8000" in asked.text
    assert 'autocomplete="one-time-code"' in asked.text and '<label for="code">6-digit code</label>' in asked.text
    code = last_code(client, "13800138000")
    wrong = client.post("/sign-in/verify?lang=en", data={"contact": "13800138000", "code": "12345", "next": target})
    assert wrong.status_code == 422 and 'role="alert"' in wrong.text
    done = client.post(
        "/sign-in/verify?lang=en", data={"contact": "13800138000", "code": code, "next": target},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == target
    cookie = done.headers["set-cookie"]
    assert cookie.startswith("c2m_person=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Path=/" in cookie and "Secure" not in cookie
    assert client.get("/me?lang=en").status_code == 200
    signed_out = client.post("/sign-out", data={"next": "/me"}, follow_redirects=False)
    assert signed_out.status_code == 303 and 'c2m_person=""' in signed_out.headers["set-cookie"]
    assert client.get("/me", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example"])
def test_sign_in_never_returns_to_another_site(client: TestClient, target: str) -> None:
    client.post("/sign-in", data={"contact": "a@example.cn", "next": target})
    done = client.post(
        "/sign-in/verify", data={"contact": "a@example.cn", "code": last_code(client, "a@example.cn"), "next": target},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/"


def test_secure_cookie_and_chinese_pages(settings: Settings) -> None:
    with TestClient(create_app(settings.model_copy(update={"person_cookie_secure": True}))) as client:
        page = client.get("/sign-in?lang=zh")
        assert '<html lang="zh-CN">' in page.text and "验证码登录" in page.text and "获取验证码" in page.text
        asked = client.post("/sign-in?lang=zh", data={"contact": "a@example.cn"})
        assert "验证码已发送至 a***@example.cn，10 分钟内有效。" in asked.text
        done = client.post(
            "/sign-in/verify?lang=zh", data={"contact": "a@example.cn", "code": last_code(client, "a@example.cn")},
            follow_redirects=False,
        )
        assert "Secure" in done.headers["set-cookie"]
        headers = sign_in(client, "b@example.cn")
        assert client.get("/api/v1/me", headers=headers).status_code == 200


HOSTILE = "<script>alert(1)</script>' OR '1'='1'; DROP TABLE person_session; --"


def test_hostile_text_in_every_sign_in_field_is_refused_and_shown_escaped(client: TestClient) -> None:
    forms = [
        ("/sign-in?lang=en", {"contact": HOSTILE, "next": HOSTILE}),
        ("/sign-in/verify?lang=en", {"contact": HOSTILE, "code": HOSTILE, "next": HOSTILE}),
        ("/sign-in/verify?lang=en", {"contact": "13800138000", "code": HOSTILE, "next": "/"}),
    ]
    for path, data in forms:
        r = client.post(path, data=data, follow_redirects=False)
        assert 400 <= r.status_code < 500, (path, r.status_code)
        assert "<script>alert(1)</script>" not in r.text, path
    api = client.post("/api/v1/identity/code", json={"contact": HOSTILE})
    assert api.status_code == 422 and api.json()["error"]["field"] == "contact"
    page = client.get("/sign-in", params={"next": HOSTILE, "lang": "en"})
    assert page.status_code == 200 and "<script>alert(1)</script>" not in page.text
    assert sign_in(client, "13800138001")["Authorization"].startswith("Bearer ")  # the tables are all still there
