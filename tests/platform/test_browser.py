"""The booking flow in a real browser (Playwright driving Debian's chromium) against a real server."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.pool import NullPool
from tests.conftest import c2m_command

from c2m.platform import make_engine, read_outbox
from c2m.platform._models import BookingRow, SlotRow

PROJECT = "swap-city-ev"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`c2m serve` on a fresh database of each kind; yields its base URL.

    The server's log goes to a file: an unread pipe would fill up and block the server.
    """
    port = _free_port()
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [*c2m_command(), "serve", "--database-url", db_url, "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=2).raise_for_status()
                break
            except httpx.TransportError:
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def sign_in_in_the_browser(page, db_url: str, contact: str) -> None:  # type: ignore[no-untyped-def]
    """On the sign-in page: the contact, then the code the dev sender put in the outbox."""
    page.get_by_label("Mobile number or e-mail").fill(contact)
    page.get_by_role("button", name="Send me a code").click()
    engine = make_engine(db_url, poolclass=NullPool)
    try:
        code = read_outbox(engine, contact)[0]
    finally:
        engine.dispose()
    page.get_by_label("6-digit code").fill(code)
    page.get_by_role("button", name="Sign in").click()


def _booking(db_url: str, booking_id: str) -> tuple[str, int, int]:
    """(status, slot id, seats booked in the slot) straight from the database."""
    engine = make_engine(db_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            status, slot_id = conn.execute(
                select(BookingRow.status, BookingRow.slot_id).where(BookingRow.id == booking_id)
            ).one()
            booked = conn.execute(select(SlotRow.booked).where(SlotRow.id == slot_id)).scalar_one()
    finally:
        engine.dispose()
    return status, slot_id, booked


def test_book_and_cancel_a_test_drive_in_the_browser(server: str, db_url: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server}/book/{PROJECT}?lang=en")
    assert page.locator("html").get_attribute("lang") == "en"
    page.get_by_label("City").select_option("Shanghai")
    page.get_by_role("button", name="Next").click()
    store = page.get_by_label("Store")
    first_store = store.locator("option").first.get_attribute("value")
    store.select_option(first_store)
    page.get_by_role("button", name="Next").click()
    day = page.get_by_label("Day", exact=True)
    day.select_option(index=0)
    page.get_by_role("button", name="Next").click()
    chosen = page.url
    # signed out: the slot step asks to sign in, and comes back to the same store and day after
    page.get_by_role("link", name="Sign in to book").click()
    assert page.get_by_role("heading", name="Sign in with a one-time code").is_visible()
    sign_in_in_the_browser(page, db_url, "+86 138 0000 0000")
    page.wait_for_url(chosen)
    slot = page.locator("input[name=slot_id]:not([disabled])").first
    slot_id = int(slot.get_attribute("value"))
    slot.check()
    page.get_by_role("button", name="Book the test drive").click()

    page.wait_for_url("**/bookings/**")
    assert page.get_by_role("heading", name="Your test drive is booked").is_visible()
    booking_id = page.locator("dd code").inner_text().strip()
    assert _booking(db_url, booking_id) == ("booked", slot_id, 1)

    page.get_by_role("button", name="Cancel the booking").click()
    assert page.get_by_role("heading", name="This booking is cancelled").is_visible()
    assert _booking(db_url, booking_id) == ("cancelled", slot_id, 0)
    # the booking is the person's: the API refuses it without their token
    assert httpx.get(f"{server}/api/v1/projects/{PROJECT}/bookings/{booking_id}").status_code == 401


def test_the_page_speaks_chinese(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server}/book/{PROJECT}?lang=zh")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.get_by_role("heading", name="预约试驾").is_visible()
    assert page.get_by_role("button", name="下一步").is_visible()
