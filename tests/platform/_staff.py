"""Staff accounts for tests that talk to a running `c2m serve`: the survey downloads and admin pages need one."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient

from c2m.platform import make_engine
from c2m.platform._auth import AdminAuth

STAFF_USER = "test-admin"
STAFF_PASSWORD = "test admin password 2026"


def add_staff(db_url: str, username: str = STAFF_USER, password: str = STAFF_PASSWORD, role: str = "admin") -> None:
    """Create a staff account in the (already migrated) database at ``db_url``."""
    engine = make_engine(db_url)
    try:
        AdminAuth(engine).add_user(username, password, role)
    finally:
        engine.dispose()


def staff_token(base: str, username: str = STAFF_USER, password: str = STAFF_PASSWORD) -> str:
    """A bearer token of the server at ``base`` for a staff account."""
    r = httpx.post(f"{base}/api/v1/admin/login", json={"username": username, "password": password}, timeout=10)
    r.raise_for_status()
    return str(r.json()["token"])


def staff_headers(client: TestClient, username: str = STAFF_USER, role: str = "admin") -> dict[str, str]:
    """``Authorization`` for a staff account of the in-process app behind ``client`` (created if missing)."""
    auth: AdminAuth = client.app.state.admin_auth  # type: ignore[attr-defined]
    if (username, role) not in auth.users():
        auth.add_user(username, STAFF_PASSWORD, role)
    r = client.post("/api/v1/admin/login", json={"username": username, "password": STAFF_PASSWORD},
                    headers={"Authorization": ""})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['token']}"}
