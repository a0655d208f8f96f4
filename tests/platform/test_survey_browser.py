"""A person completes the survey on a phone-sized viewport (Playwright driving Debian's chromium), zh and en."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import polars as pl
import pytest
from tests.conftest import c2m_command
from tests.platform._staff import add_staff, staff_token

PROJECT = "swap-city-ev"
N_TASKS = 4

TEXT = {
    "en": {
        "adult": "Are you 18 or older?", "buy": "Do you plan to buy a car within the next 24 months?", "yes": "Yes",
        "start": "Start the survey", "heading": "Choice {k} of {n}", "option": "Option {k}",
        "none": "None of these", "next": "Next", "city": "City you live in", "city_value": "Shanghai",
        "km": "Kilometres you drive on a typical day", "charging": "Can you charge a car at home?",
        "charging_yes": "Yes, I have or can install a charger", "car": "The car you drive now", "finish": "Finish",
        "thanks": "Thank you!", "error": "Please choose one of the options.",
    },
    "zh": {
        "adult": "您是否年满 18 岁？", "buy": "您是否计划在未来 24 个月内购车？", "yes": "是",
        "start": "开始调研", "heading": "第 {k} / {n} 题", "option": "方案 {k}",
        "none": "以上都不选", "next": "下一步", "city": "您所在的城市", "city_value": "上海",
        "km": "您平均每天驾驶的公里数", "charging": "您家中能否安装充电桩？",
        "charging_yes": "能，已有或可以安装充电桩", "car": "您目前驾驶的车", "finish": "完成",
        "thanks": "感谢您的参与！", "error": "请选择其中一个选项。",
    },
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(db_url: str) -> Iterator[str]:
    """`c2m serve` with a short survey (4 tasks, 1 holdout) on a fresh database of each kind."""
    port = _free_port()
    env = {
        **os.environ, "C2M_SURVEY_TASKS": str(N_TASKS), "C2M_SURVEY_VERSIONS": "3", "C2M_SURVEY_HOLDOUTS": "1",
        "C2M_SLOT_DAYS_AHEAD": "1",
    }
    process = subprocess.Popen(
        [*c2m_command(), "serve", "--database-url", db_url, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
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


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_person_completes_the_survey_on_a_phone(server: str, db_url: str, page, lang: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    t = TEXT[lang]
    page.goto(f"{server}/survey/{PROJECT}?lang={lang}")
    assert page.locator("html").get_attribute("lang") == ("zh-CN" if lang == "zh" else "en")
    assert page.viewport_size == {"width": 390, "height": 844}
    page.get_by_role("group", name=t["adult"]).get_by_label(t["yes"], exact=True).check()
    page.get_by_role("group", name=t["buy"]).get_by_label(t["yes"], exact=True).check()
    page.get_by_role("button", name=t["start"]).click()

    # task 1 by keyboard only: focus the first concept, arrow to the second, Enter submits
    page.get_by_role("heading", name=t["heading"].format(k=1, n=N_TASKS)).wait_for()
    assert page.get_by_role("progressbar").get_attribute("value") == "0"
    page.get_by_label(t["option"].format(k=1)).focus()
    page.keyboard.press("ArrowDown")
    assert page.get_by_label(t["option"].format(k=2)).is_checked()
    page.keyboard.press("Enter")
    page.get_by_role("heading", name=t["heading"].format(k=2, n=N_TASKS)).wait_for()

    # a reload shows the same task (resume), a submit without a choice shows a message on the page
    page.reload()
    page.get_by_role("heading", name=t["heading"].format(k=2, n=N_TASKS)).wait_for()
    assert page.get_by_role("progressbar").get_attribute("value") == "1"
    page.locator("form").evaluate("f => f.noValidate = true")  # past the browser's own required check
    page.get_by_role("button", name=t["next"]).click()
    assert page.get_by_role("alert").inner_text().strip() == t["error"]
    page.get_by_label(t["none"]).check()  # task 2: the None option
    page.get_by_role("button", name=t["next"]).click()
    for k in range(3, N_TASKS + 1):  # the rest by touch on the third concept
        page.get_by_role("heading", name=t["heading"].format(k=k, n=N_TASKS)).wait_for()
        page.get_by_label(t["option"].format(k=3)).check()
        page.get_by_role("button", name=t["next"]).click()

    page.get_by_label(t["city"]).select_option(label=t["city_value"])
    page.get_by_label(t["km"]).fill("25")
    page.get_by_role("group", name=t["charging"]).get_by_label(t["charging_yes"]).check()
    page.get_by_label(t["car"]).select_option("electric")
    page.get_by_role("button", name=t["finish"]).click()
    page.get_by_role("heading", name=t["thanks"]).wait_for()
    page.screenshot(path=str(tmp_path / f"survey-{lang}.png"), full_page=True)
    assert (tmp_path / f"survey-{lang}.png").stat().st_size > 1000

    add_staff(db_url)
    staff = {"Authorization": f"Bearer {staff_token(server)}"}  # the downloads are for staff
    responses = pl.read_csv(io.BytesIO(
        httpx.get(f"{server}/api/v1/projects/{PROJECT}/survey/responses.csv", headers=staff).content
    ))
    chosen = responses.filter(pl.col("chosen") == 1).sort("task")
    assert chosen["alt"].to_list() == [2, 4, 3, 3] and chosen["is_none"].to_list() == [False, True, False, False]
    assert chosen["holdout"].to_list() == [False, False, False, True]
    people = pl.read_csv(io.BytesIO(
        httpx.get(f"{server}/api/v1/projects/{PROJECT}/survey/respondents.csv", headers=staff).content
    ))
    person = people.row(0, named=True)
    assert (person["status"], person["lang"], person["city"], person["daily_km"]) == ("done", lang, "Shanghai", 25)
    assert (person["home_charging"], person["current_car"]) == ("yes", "electric")
