"""The booking flow in a real browser (Playwright driving Debian's chromium) against a real server."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from tests.conftest import c2m_command

PROJECT = "swap-city-ev"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(db_url: str) -> Iterator[str]:
    """`c2m serve` on a fresh database of each kind; yields its base URL."""
    port = _free_port()
    process = subprocess.Popen(
        [*c2m_command(), "serve", "--database-url", db_url, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=2).raise_for_status()
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_book_and_cancel_a_test_drive_in_the_browser(server: str, page) -> None:  # type: ignore[no-untyped-def]
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
    slot = page.locator("input[name=slot_id]:not([disabled])").first
    slot_id = int(slot.get_attribute("value"))
    slot.check()
    page.get_by_label("Mobile number or e-mail").fill("+86 138 0000 0000")
    page.get_by_role("button", name="Book the test drive").click()

    page.wait_for_url("**/bookings/**")
    assert page.get_by_role("heading", name="Your test drive is booked").is_visible()
    booking_id = page.locator("dd code").inner_text().strip()
    booking = httpx.get(f"{server}/api/projects/{PROJECT}/bookings/{booking_id}").json()
    assert booking["status"] == "booked" and booking["slot"]["id"] == slot_id

    page.get_by_role("button", name="Cancel the booking").click()
    assert page.get_by_role("heading", name="This booking is cancelled").is_visible()
    booking = httpx.get(f"{server}/api/projects/{PROJECT}/bookings/{booking_id}").json()
    assert booking["status"] == "cancelled"


def test_the_page_speaks_chinese(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server}/book/{PROJECT}?lang=zh")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.get_by_role("heading", name="预约试驾").is_visible()
    assert page.get_by_role("button", name="下一步").is_visible()
