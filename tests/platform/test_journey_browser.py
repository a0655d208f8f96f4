"""The whole consumer journey in a real browser on a phone, then the admin sees it (Playwright, Debian's chromium).

A person takes the survey, signs in with a one-time code, books a test drive, applies for a
benefit and places and pays a pre-order; an admin signs in on a desktop viewport, finds them on
the dashboard's funnel and confirms the order. Screenshots of every step go to ``test-artifacts/``.
"""

from __future__ import annotations

from pathlib import Path

from tests.platform._server import PROJECT, running_server
from tests.platform._staff import add_staff
from tests.platform.test_browser import sign_in_in_the_browser

SETTINGS = {"survey_tasks": 3, "survey_versions": 2, "survey_holdouts": 1, "slot_days_ahead": 2}
ADMIN, PASSWORD = "olivia", "olivia's long password"


def _survey(page, base: str, shots: Path) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/survey/{PROJECT}?lang=en")
    page.get_by_role("group", name="Are you 18 or older?").get_by_label("Yes", exact=True).check()
    page.get_by_role("group", name="Do you plan to buy a car within the next 24 months?").get_by_label(
        "Yes", exact=True).check()
    page.get_by_role("button", name="Start the survey").click()
    for k in range(1, SETTINGS["survey_tasks"] + 1):
        page.get_by_role("heading", name=f"Choice {k} of {SETTINGS['survey_tasks']}").wait_for()
        if k == 1:
            page.screenshot(path=str(shots / "1-survey-task.png"), full_page=True)
        page.get_by_label(f"Option {1 + k % 2}").check()
        page.get_by_role("button", name="Next").click()
    page.get_by_label("City you live in").select_option(label="Shanghai")
    page.get_by_label("Kilometres you drive on a typical day").fill("30")
    page.get_by_role("group", name="Can you charge a car at home?").get_by_label(
        "Yes, I have or can install a charger").check()
    page.get_by_label("The car you drive now").select_option("electric")
    page.get_by_role("button", name="Finish").click()
    page.get_by_role("heading", name="Thank you!").wait_for()
    page.screenshot(path=str(shots / "2-survey-done.png"), full_page=True)


def _book(page, base: str, db_url: str, contact: str, shots: Path) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/book/{PROJECT}?lang=en")
    page.get_by_label("City").select_option("Shanghai")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Store").select_option(index=0)
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Day", exact=True).select_option(index=0)
    page.get_by_role("button", name="Next").click()
    page.get_by_role("link", name="Sign in to book").click()
    sign_in_in_the_browser(page, db_url, contact)
    page.locator("input[name=slot_id]:not([disabled])").first.wait_for()
    page.locator("input[name=slot_id]:not([disabled])").first.check()
    page.get_by_role("button", name="Book the test drive").click()
    page.get_by_role("heading", name="Your test drive is booked").wait_for()
    page.screenshot(path=str(shots / "3-test-drive.png"), full_page=True)


def _benefit_and_preorder(page, shots: Path) -> str:  # type: ignore[no-untyped-def]
    page.get_by_role("link", name="Apply for an early-purchase benefit").click()
    page.get_by_role("button", name="Apply").first.click()
    page.get_by_role("heading", name="Your benefit").wait_for()
    assert page.get_by_role("button", name="Apply").count() == 0  # one per person
    page.screenshot(path=str(shots / "4-benefit.png"), full_page=True)
    page.get_by_role("link", name="Pre-order your car").click()
    page.get_by_label("Version and price").select_option("p65k")
    page.get_by_label("Buy or rent the battery").select_option(index=0)
    page.get_by_role("button", name="Reserve and continue to payment").click()
    page.wait_for_url("**/orders/**")
    order_id = page.locator("dd code").first.inner_text().strip()
    page.get_by_role("button", name="Pay the deposit of 2,000 yuan").click()
    page.get_by_role("heading", name="Your pre-order is confirmed").wait_for()
    page.screenshot(path=str(shots / "5-preorder.png"), full_page=True)
    return str(order_id)


def _funnel(page) -> dict[str, str]:  # type: ignore[no-untyped-def]
    rows = page.locator("#funnel tbody tr")
    return {rows.nth(i).get_attribute("data-stage"): rows.nth(i).locator("td").inner_text().strip()
            for i in range(rows.count())}


def test_a_person_goes_from_survey_to_paid_preorder_and_the_admin_sees_it(  # type: ignore[no-untyped-def]
    db_url: str, page, artifacts: Path, tmp_path: Path
) -> None:
    with running_server(db_url, tmp_path / "serve.log", workers=1, settings=SETTINGS) as server:
        base = server.url
        _survey(page, base, artifacts)
        _book(page, base, db_url, "+86 139 1234 5678", artifacts)
        order_id = _benefit_and_preorder(page, artifacts)

        add_staff(db_url, ADMIN, PASSWORD, "admin")
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(f"{base}/admin/{PROJECT}?lang=en")
        page.get_by_label("User name").fill(ADMIN)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Funnel").wait_for()
        assert _funnel(page) == {"survey_done": "1", "test_drives": "1", "benefits": "1", "preorders": "1",
                                 "confirmed": "0"}
        page.screenshot(path=str(artifacts / "6-admin-dashboard.png"), full_page=True)
        page.get_by_role("link", name="Pre-orders").click()
        page.get_by_role("button", name=f"Confirm for production {order_id[:8]}").click()
        page.locator(f'tr[data-order="{order_id}"][data-state="confirmed"]').wait_for()
        page.goto(f"{base}/admin/{PROJECT}?lang=en")
        assert _funnel(page)["confirmed"] == "1"
        page.screenshot(path=str(artifacts / "7-admin-confirmed.png"), full_page=True)
    assert len(list(artifacts.glob("*.png"))) == 7
