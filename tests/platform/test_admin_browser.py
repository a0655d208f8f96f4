"""An analyst in a real browser (Playwright, Debian's chromium): sign in, dashboard, estimate now, htmx simulator."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
from tests.platform._staff import add_staff
from tests.platform.test_browser import server  # noqa: F401 - the `c2m serve` fixture

PROJECT = "swap-city-ev"
RESPONDENTS = 30


def _answer_survey(base: str, n: int) -> None:
    """``n`` people take the whole survey through the JSON API, choosing at random."""
    rng = random.Random(11)
    with httpx.Client(base_url=base, timeout=10) as http:
        for _ in range(n):
            state = http.post(f"/api/v1/projects/{PROJECT}/survey/start",
                              json={"screening": {"adult": True, "buys_within_24m": True}}).json()
            token = state["token"]
            while state["step"] == "task":
                task = state["task"]
                pick = rng.randint(1, len(task["concepts"]) + 1)
                choice: int | str = "none" if pick > len(task["concepts"]) else pick
                http.post(f"/api/v1/projects/{PROJECT}/survey/{token}/answers",
                          json={"task": task["task"], "choice": choice}).raise_for_status()
                state = http.get(f"/api/v1/projects/{PROJECT}/survey/{token}/next").json()
            http.post(f"/api/v1/projects/{PROJECT}/survey/{token}/profile",
                      json={"city": "Shanghai", "daily_km": 30, "home_charging": "no",
                            "current_car": "none"}).raise_for_status()


def test_an_analyst_estimates_and_simulates_in_the_browser(  # type: ignore[no-untyped-def]
    server: str, db_url: str, page, tmp_path: Path  # noqa: F811
) -> None:
    add_staff(db_url, "anna", "anna's long password", "analyst")
    _answer_survey(server, RESPONDENTS)

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{server}/admin/{PROJECT}?lang=en")
    page.get_by_role("heading", name="Staff sign-in").wait_for()  # anonymous: sent to the sign-in page
    page.get_by_label("User name").fill("anna")
    page.get_by_label("Password").fill("not anna's password")
    page.get_by_role("button", name="Sign in").click()
    assert "wrong user name or password" in page.get_by_role("alert").inner_text()
    page.get_by_label("Password").fill("anna's long password")
    page.get_by_label("Password").press("Enter")

    page.get_by_role("heading", name="Funnel").wait_for()  # back on the dashboard asked for
    assert page.url.startswith(f"{server}/admin/{PROJECT}")
    done = page.locator('#funnel tr[data-stage="survey_done"] td').inner_text()
    assert done.strip() == str(RESPONDENTS)
    assert "Exports" not in page.get_by_role("navigation").inner_text()  # an analyst: no exports

    page.get_by_role("button", name="Estimate now").click()
    page.locator('#job-status[data-state="done"]').wait_for(timeout=120_000)  # htmx polls until done
    assert page.locator("#coefficients tbody tr").count() > 5
    page.screenshot(path=str(tmp_path / "admin-job.png"), full_page=True)

    page.get_by_role("link", name="Share simulator").click()
    page.get_by_role("button", name="Show shares").click()
    page.locator("#share-table").wait_for()
    first = page.locator('#share-table tr[data-kind="ours"]').first.inner_text()
    price = page.locator('select[name="p0.price"]')
    options = price.locator("option").all()
    current = price.input_value()
    other = next(o.get_attribute("value") for o in options if o.get_attribute("value") != current)
    assert other is not None
    with page.expect_response(lambda r: r.url.endswith("/simulate?lang=en") and r.request.method == "POST"):
        price.select_option(other)  # a change re-simulates through htmx, no page load
    page.wait_for_function(
        "old => document.querySelector('#share-table tr[data-kind=\"ours\"]').innerText !== old", arg=first
    )
    assert page.url.endswith("/simulate?lang=en")
    page.screenshot(path=str(tmp_path / "admin-simulator.png"), full_page=True)
    assert (tmp_path / "admin-simulator.png").stat().st_size > 1000
