"""Signing in as a person through the one-time-code flow, in-process (service or TestClient)."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient

from c2m.platform import Person, Platform


def verified(platform: Platform, contact: str) -> Person:
    """Ask for a code, read it from the dev outbox, verify it: the `Person` of ``contact``."""
    platform.identity_request_code(contact)
    _, person = platform.identity_verify(contact, platform.dev_outbox(contact)[0])
    return person


def last_code(client: TestClient, contact: str) -> str:
    """The newest code the development sender 'sent' to ``contact``."""
    platform: Platform = client.app.state.platform  # type: ignore[attr-defined]
    return platform.dev_outbox(contact)[0]


def sign_in(client: TestClient, contact: str) -> dict[str, str]:
    """Sign in over the JSON API; the ``Authorization`` header for the person's requests."""
    sent = client.post("/api/v1/identity/code", json={"contact": contact})
    assert sent.status_code == 202, sent.text
    verified_ = client.post("/api/v1/identity/verify", json={"contact": contact, "code": last_code(client, contact)})
    assert verified_.status_code == 200, verified_.text
    return {"Authorization": f"Bearer {verified_.json()['token']}"}


def as_cookie(client: TestClient, headers: dict[str, str]) -> None:
    """Use the API session of ``headers`` on the pages too (the same token in the session cookie)."""
    client.cookies.set("c2m_person", headers["Authorization"].removeprefix("Bearer "))


def sign_in_pages(client: TestClient, contact: str, next_path: str = "/") -> httpx.Response:
    """Sign in through the pages (contact, then code); the client keeps the session cookie."""
    asked = client.post("/sign-in?lang=en", data={"contact": contact, "next": next_path})
    assert asked.status_code == 200, asked.text
    done = client.post(
        "/sign-in/verify?lang=en",
        data={"contact": contact, "code": last_code(client, contact), "next": next_path},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    return done
