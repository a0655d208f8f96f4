"""The consumer survey: service, JSON API, pages and export, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from tests.conftest import run_c2m

from c2m.domain import FeatureCoder, Project
from c2m.pipeline import _stages
from c2m.platform import ConflictError, InvalidError, NotFoundError, Platform, Settings, create_app, init_db
from c2m.platform._models import SurveyAnswerRow, SurveyRespondentRow
from c2m.platform._survey import quality_flags
from c2m.platform._survey_web import cookie_name

PROJECT = "swap-city-ev"
QUALIFIED = {"adult": True, "buys_within_24m": True}
PROFILE = {"city": "Shanghai", "daily_km": 35, "home_charging": "yes", "current_car": "petrol"}


@pytest.fixture
def survey_settings(db_url: str) -> Settings:
    """One day of slots (the booking side is not under test) and a small survey: 6 versions x 8 tasks, 2 holdouts."""
    return Settings(
        database_url=db_url, slot_days_ahead=1, survey_versions=6, survey_tasks=8, survey_alts=3, survey_holdouts=2
    )


@pytest.fixture
def engine(survey_settings: Settings, project: Project) -> Iterator[Engine]:
    engine = init_db(survey_settings.database_url, survey_settings, projects=[project])
    yield engine
    engine.dispose()


@pytest.fixture
def platform(engine: Engine, survey_settings: Settings) -> Platform:
    return Platform(engine, survey_settings)


def _as_analyst(client: TestClient) -> TestClient:
    """Sign ``client`` in as an analyst: the survey downloads are for staff."""
    auth = client.app.state.admin_auth  # type: ignore[attr-defined]
    if ("survey-analyst", "analyst") not in auth.users():
        auth.add_user("survey-analyst", "analyst password 2026", "analyst")
    r = client.post("/api/v1/admin/login", json={"username": "survey-analyst", "password": "analyst password 2026"})
    client.headers["Authorization"] = f"Bearer {r.json()['token']}"
    return client


@pytest.fixture
def client(survey_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(survey_settings)) as client:
        yield _as_analyst(client)


def _error(response: httpx.Response, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()["error"]
    fields = [body.get("field")] + [p["field"] for p in body.get("problems", [])]
    assert field in fields, body
    assert field.split(".")[-1] in body["message"], body
    return dict(body)


# ---------------------------------------------------------------------- design
def test_the_design_is_seeded_once_and_the_same_on_every_seed(
    platform: Platform, survey_settings: Settings, project: Project
) -> None:
    design = platform.survey_design(PROJECT)
    assert (design.n_versions, design.n_tasks, design.n_alts, design.none_option) == (6, 8, 3, True)
    assert design.holdout_tasks == frozenset({3, 8})
    assert len(design.concepts) == 6 * 8
    frame = design.frame(project)
    # holdout tasks are the same in every version
    hold = frame.filter(pl.col("holdout")).drop("version").unique()
    assert hold.height == 2 * 3
    # a second database seeded from the same file and settings serves the same design
    other = init_db("sqlite://", survey_settings, projects=[project])
    try:
        again = Platform(other, survey_settings).survey_design(PROJECT)
        assert again.frame(project).equals(frame)
    finally:
        other.dispose()


# ---------------------------------------------------------------------- API
def test_a_respondent_completes_the_survey_through_the_api(client: TestClient, project: Project) -> None:
    r = client.post(f"/api/v1/projects/{PROJECT}/survey/start", json={"lang": "en", "screening": QUALIFIED})
    assert r.status_code == 201, r.text
    state = r.json()
    token = state["token"]
    assert state["step"] == "task" and state["answered"] == 0 and state["n_tasks"] == 8
    assert state["version"] == 1
    seen = []
    while state["step"] == "task":
        task = state["task"]
        assert len(task["concepts"]) == 3 and task["none_option"]
        assert task["none_label"] == project.none_option.label
        assert task["concepts"][0]["labels"]["sunroof"] in ("No sunroof", "Panoramic sunroof")
        choice: int | str = "none" if task["task"] == 2 else 1 + task["task"] % 3
        r = client.post(
            f"/api/v1/projects/{PROJECT}/survey/{token}/answers", json={"task": task["task"], "choice": choice}
        )
        assert r.status_code == 201, r.text
        assert r.json()["repeated"] is False and r.json()["seconds"] >= 0
        seen.append((task["task"], task["holdout"]))
        state = r.json()["next"]
    assert seen == [(t, t in (3, 8)) for t in range(1, 9)]
    assert state["step"] == "profile"
    r = client.post(f"/api/v1/projects/{PROJECT}/survey/{token}/profile", json=PROFILE)
    assert r.status_code == 200, r.text
    assert r.json()["step"] == "done" and r.json()["status"] == "done"

    r = client.get(f"/api/v1/projects/{PROJECT}/survey/responses.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    responses = pl.read_csv(io.BytesIO(r.content))
    assert responses.height == 8 * 4
    assert responses.columns == [
        "id", "version", "task", "alt", "is_none", "chosen", *project.attribute_names, "holdout"
    ]
    chosen = responses.filter(pl.col("chosen") == 1).sort("task")
    assert chosen["alt"].to_list() == [1 + t % 3 if t != 2 else 4 for t in range(1, 9)]
    assert chosen.filter(pl.col("task") == 2)["is_none"].to_list() == [True]
    people = pl.read_csv(io.BytesIO(client.get(f"/api/v1/projects/{PROJECT}/survey/respondents.csv").content))
    row = people.row(0, named=True)
    assert (row["city"], row["daily_km"], row["home_charging"], row["current_car"]) == tuple(PROFILE.values())
    assert row["status"] == "done" and row["lang"] == "en" and row["n_answers"] == 8
    quality = client.get(f"/api/v1/projects/{PROJECT}/survey/quality").json()
    assert quality["finished"] == 1 and quality["straight_liners"] == []


def test_resume_and_answering_a_task_twice(client: TestClient) -> None:
    token = client.post(f"/api/v1/projects/{PROJECT}/survey/start", json={"screening": QUALIFIED}).json()["token"]
    for task in (1, 2, 3):
        r = client.post(f"/api/v1/projects/{PROJECT}/survey/{token}/answers", json={"task": task, "choice": 2})
        assert r.status_code == 201, r.text
    # resume: a new client with only the token lands on task 4, in the language chosen at the start
    with TestClient(client.app) as other:
        state = other.get(f"/api/v1/projects/{PROJECT}/survey/{token}/next").json()
    assert state["step"] == "task" and state["task"]["task"] == 4 and state["answered"] == 3
    assert state["lang"] == "zh" and state["task"]["none_label"] == "以上都不选：我不会购买"
    # the same answer again is acknowledged and changes nothing
    r = client.post(f"/api/v1/projects/{PROJECT}/survey/{token}/answers", json={"task": 2, "choice": "2"})
    assert r.status_code == 200 and r.json()["repeated"] is True
    # a different answer to an answered task is refused: the first answer stands
    body = _error(client.post(f"/api/v1/projects/{PROJECT}/survey/{token}/answers", json={"task": 2, "choice": 3}),
                  409, "task")
    assert body["code"] == "already_answered"
    # skipping ahead is refused
    body = _error(client.post(f"/api/v1/projects/{PROJECT}/survey/{token}/answers", json={"task": 6, "choice": 1}),
                  409, "task")
    assert body["code"] == "not_current_task"
    state = client.get(f"/api/v1/projects/{PROJECT}/survey/{token}/next").json()
    assert state["answered"] == 3 and state["task"]["task"] == 4


def test_bad_input_is_a_4xx_naming_the_field(client: TestClient) -> None:
    start = f"/api/v1/projects/{PROJECT}/survey/start"
    _error(client.post(start, json={"screening": {"adult": True}}), 422, "screening.buys_within_24m")
    _error(client.post(start, json={"screening": {"adult": "maybe", "buys_within_24m": True}}), 422, "screening.adult")
    _error(client.post(start, json={"lang": "fr", "screening": QUALIFIED}), 422, "lang")
    token = client.post(start, json={"screening": QUALIFIED}).json()["token"]
    answers = f"/api/v1/projects/{PROJECT}/survey/{token}/answers"
    _error(client.post(answers, json={"task": 1, "choice": 4}), 422, "choice")  # 3 concepts + None
    _error(client.post(answers, json={"task": 1, "choice": 0}), 422, "choice")
    _error(client.post(answers, json={"task": 1, "choice": "best"}), 422, "choice")
    _error(client.post(answers, json={"task": 1}), 422, "choice")
    _error(client.post(answers, json={"task": 99, "choice": 1}), 404, "task")
    _error(client.post(answers, json={"task": "one", "choice": 1}), 422, "task")
    _error(client.post(f"/api/v1/projects/{PROJECT}/survey/nope/answers", json={"task": 1, "choice": 1}), 404, "token")
    _error(client.get(f"/api/v1/projects/{PROJECT}/survey/nope/next"), 404, "token")
    body = _error(client.post(f"/api/v1/projects/{PROJECT}/survey/{token}/profile", json=PROFILE), 409, "profile")
    assert "task 1" in body["message"]
    profile = f"/api/v1/projects/{PROJECT}/survey/{token}/profile"
    _error(client.post(profile, json={**PROFILE, "daily_km": -5}), 422, "daily_km")
    _error(client.post(profile, json={**PROFILE, "home_charging": "maybe"}), 422, "home_charging")
    _error(client.post(profile, json={**PROFILE, "current_car": None}), 422, "current_car")
    r = client.post("/api/v1/projects/nope/survey/start", json={"screening": QUALIFIED})
    assert r.status_code == 404 and "nope" in r.json()["error"]["message"]
    # nothing half-written: the respondent has no answers, the profile is empty
    assert client.get(f"/api/v1/projects/{PROJECT}/survey/{token}/next").json()["answered"] == 0


def test_service_validation(platform: Platform) -> None:
    token = platform.survey_start(PROJECT, QUALIFIED, "en").token
    for answers, field in (
        ({**PROFILE, "city": "Atlantis"}, "profile.city"),
        ({**PROFILE, "daily_km": "12.5"}, "profile.daily_km"),
        ({**PROFILE, "daily_km": True}, "profile.daily_km"),
    ):
        with pytest.raises(InvalidError) as info:
            platform.survey_profile(PROJECT, token, answers)
        assert info.value.field == field
    with pytest.raises(InvalidError):
        platform.survey_start(PROJECT, {"adult": "yes"})
    with pytest.raises(NotFoundError):
        platform.survey_answer(PROJECT, token, 0, 1)
    with pytest.raises(NotFoundError):
        platform.survey_state("nope", token)


def test_screened_out_respondents_get_no_version(platform: Platform) -> None:
    out = platform.survey_start(PROJECT, {"adult": True, "buys_within_24m": False})
    assert out.step == "screened_out" and out.version is None and out.task is None
    with pytest.raises(ConflictError):
        platform.survey_answer(PROJECT, out.token, 1, 1)
    first = platform.survey_start(PROJECT, QUALIFIED)
    assert first.version == 1  # the screened-out respondent did not use up a place in the rotation


# ---------------------------------------------------------------------- concurrency
def test_versions_are_assigned_round_robin_under_concurrency(platform: Platform, engine: Engine) -> None:
    n_threads, per_thread = 12, 4
    barrier = threading.Barrier(n_threads)
    states: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run() -> None:
        try:
            barrier.wait()
            for _ in range(per_thread):
                s = platform.survey_start(PROJECT, QUALIFIED)
                with lock:
                    states.append(s)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    total = n_threads * per_thread
    assert len(states) == total and len({s.token for s in states}) == total
    assert Counter(s.version for s in states) == dict.fromkeys(range(1, 7), total // 6)
    with engine.connect() as conn:
        seqs = conn.scalars(select(SurveyRespondentRow.seq)).all()
    assert sorted(seqs) == list(range(1, total + 1))  # no place in the rotation given twice


def test_concurrent_submits_of_one_task_store_one_answer(platform: Platform, engine: Engine) -> None:
    token = platform.survey_start(PROJECT, QUALIFIED).token
    barrier = threading.Barrier(8)
    results: list[Any] = []

    def run() -> None:
        barrier.wait()
        try:
            results.append(platform.survey_answer(PROJECT, token, 1, 2))
        except BaseException as exc:  # pragma: no cover - fails the length check below
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(not isinstance(r, BaseException) for r in results), results
    assert len(results) == 8 and sum(not r.repeated for r in results) == 1
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(SurveyAnswerRow)) == 1


# ---------------------------------------------------------------------- quality flags
def test_quality_flags_on_constructed_cases() -> None:
    rows = []
    # 1, 2, 3: normal, 60 s in total; 4: 20 s (a third of the median: a speeder); 5: 25 s (not, 0.42);
    # 2 always picks concept 3 (a straight-liner), 6 always None but answered only 2 tasks (too few to tell)
    for rid, seconds, alts in (
        (1, [10, 20, 30], [1, 2, 3]),
        (2, [20, 20, 20], [3, 3, 3]),
        (3, [30, 20, 10], [4, 1, 1]),
        (4, [5, 5, 10], [1, 2, 1]),
        (5, [10, 10, 5], [2, 1, 2]),
        (6, [40, 40], [4, 4]),
    ):
        rows += [
            {"id": rid, "task": t + 1, "alt": a, "seconds": s}
            for t, (s, a) in enumerate(zip(seconds, alts, strict=True))
        ]
    flags = quality_flags(pl.DataFrame(rows), speeder_fraction=0.4).sort("id")
    assert flags["total_seconds"].to_list() == [60, 60, 60, 20, 25, 80]
    assert flags["speeder"].to_list() == [False, False, False, True, False, False]
    assert flags["straight_liner"].to_list() == [False, True, False, False, False, False]
    assert quality_flags(pl.DataFrame(rows), speeder_fraction=0.5)["speeder"].sum() == 2
    schema = {"id": pl.Int64, "task": pl.Int64, "alt": pl.Int64, "seconds": pl.Float64}
    empty = quality_flags(pl.DataFrame(schema=schema))
    assert empty.height == 0
    with pytest.raises(InvalidError, match="seconds"):
        quality_flags(pl.DataFrame({"id": [1], "task": [1], "alt": [1]}))


def test_the_platform_flags_straight_liners(platform: Platform) -> None:
    tokens = []
    for choice in (1, 2):
        token = platform.survey_start(PROJECT, QUALIFIED).token
        for task in range(1, 9):
            platform.survey_answer(PROJECT, token, task, choice if task % 2 or choice == 1 else 3)
        platform.survey_profile(PROJECT, token, PROFILE)
        tokens.append(token)
    people = platform.survey_respondents(PROJECT)
    assert people["straight_liner"].to_list() == [True, False]
    assert people["n_answers"].to_list() == [8, 8]


# ---------------------------------------------------------------------- export -> estimate
def test_exported_responses_go_straight_into_estimate(
    platform: Platform, project: Project, survey_settings: Settings, tmp_path: Path
) -> None:
    """300 simulated respondents answer through the service from known coefficients; estimate recovers them."""
    coder = FeatureCoder.from_project(project)
    rng = np.random.default_rng(7)
    truth = rng.normal(0.0, 0.6, coder.n_features)
    truth[coder.feature_names.index("price")] = -0.35  # per 10,000 yuan
    truth[coder.feature_names.index("none")] = -1.5
    none_row = coder.none_row()
    tokens = [platform.survey_start(PROJECT, QUALIFIED).token for _ in range(300)]

    def respond(k: int) -> None:  # each respondent draws from its own stream: the same answers in any order
        draws = np.random.default_rng([7, k])
        state = platform.survey_state(PROJECT, tokens[k])
        while state.task is not None:
            X = np.vstack([coder.encode_many([c.levels for c in state.task.concepts]), none_row])
            best = int(np.argmax(X @ truth + draws.gumbel(size=X.shape[0])))
            choice: int | str = "none" if best == len(state.task.concepts) else best + 1
            platform.survey_answer(PROJECT, tokens[k], state.task.number, choice)
            state = platform.survey_state(PROJECT, tokens[k])
        platform.survey_profile(PROJECT, tokens[k], PROFILE)

    with ThreadPoolExecutor(4) as pool:  # answers of different respondents interleave, as on a live server
        list(pool.map(respond, range(300)))

    responses = platform.survey_responses(PROJECT)
    assert responses.height == 300 * 8 * 4
    assert responses.group_by("id", "task").agg(pl.col("chosen").sum())["chosen"].to_list() == [1] * 2400
    model, validation = _stages.estimate(project, responses)
    assert model.feature_names_ == coder.feature_names
    inside = np.abs(model.coef_ - truth) <= 1.96 * model.se_
    assert inside.sum() >= 0.8 * coder.n_features, list(
        zip(coder.feature_names, truth, model.coef_, model.se_, strict=True)
    )
    assert validation["holdout_hit_rate"] > 0.4  # 2 holdout tasks per respondent, 4 options
    counts = platform.survey_respondents(PROJECT)["version"].value_counts()
    assert counts["count"].to_list() == [50] * 6

    # the downloaded CSV goes straight into `c2m estimate` and gives the same model
    with TestClient(create_app(survey_settings, migrate=False)) as client:
        assert client.get(f"/api/v1/projects/{PROJECT}/survey/responses.csv").status_code == 401  # staff only
        download = _as_analyst(client).get(f"/api/v1/projects/{PROJECT}/survey/responses.csv")
    assert download.status_code == 200
    (tmp_path / "responses.csv").write_bytes(download.content)
    result = run_c2m("estimate", "--responses", str(tmp_path / "responses.csv"), "--out", str(tmp_path / "model.json"))
    assert result.returncode == 0, result.stderr
    fitted = json.loads((tmp_path / "model.json").read_text())
    assert fitted["features"] == coder.feature_names
    np.testing.assert_allclose(fitted["coef"], model.coef_, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------- pages
def test_the_pages_walk_a_respondent_through_and_resume(client: TestClient, survey_settings: Settings) -> None:
    url = f"/survey/{PROJECT}"
    r = client.get(url, params={"lang": "en"})
    assert r.status_code == 200 and '<html lang="en">' in r.text
    assert "Are you 18 or older?" in r.text and 'for="adult-yes"' in r.text
    r = client.post(f"{url}/start?lang=en", data={"adult": "yes"})
    assert r.status_code == 422 and "Please answer both questions." in r.text and 'role="alert"' in r.text
    assert cookie_name(PROJECT) not in client.cookies
    r = client.post(f"{url}/start?lang=en", data={"adult": "yes", "buys_within_24m": "yes"}, follow_redirects=False)
    assert r.status_code == 303 and cookie_name(PROJECT) in r.headers["set-cookie"]
    assert "httponly" in r.headers["set-cookie"].lower()
    r = client.get(r.headers["location"])
    assert "Choice 1 of 8" in r.text and '<progress max="8" value="0"' in r.text
    assert 'id="choice-none"' in r.text and "None of these" in r.text and "Battery ownership" in r.text
    r = client.post(f"{url}/answer?lang=en", data={"task": "1"})
    assert r.status_code == 422 and "Please choose one of the options." in r.text and "Choice 1 of 8" in r.text
    r = client.post(f"{url}/answer?lang=en", data={"task": "1", "choice": "7"})
    assert r.status_code == 422 and "Please choose one of the options." in r.text
    r = client.post(f"{url}/answer?lang=en", data={"task": "1", "choice": "2"})
    assert r.status_code == 200 and "Choice 2 of 8" in r.text  # followed the redirect
    assert "Choice 2 of 8" in client.get(url, params={"lang": "en"}).text  # reload: the same task
    r = client.post(f"{url}/answer?lang=en", data={"task": "1", "choice": "3"})  # a stale page: ignored
    assert r.status_code == 200 and "Choice 2 of 8" in r.text
    r = client.get(url, params={"lang": "zh"})  # the language switch
    assert '<html lang="zh-CN">' in r.text and "第 2 / 8 题" in r.text and "以上都不选" in r.text
    for task in range(2, 9):
        client.post(f"{url}/answer", data={"task": str(task), "choice": "none"})
    r = client.get(url, params={"lang": "en"})
    assert "City you live in" in r.text and "Shanghai" in r.text
    bad = {"city": "Shanghai", "daily_km": "<b>x</b>", "home_charging": "yes", "current_car": "none"}
    r = client.post(f"{url}/profile?lang=en", data=bad)
    assert r.status_code == 422 and "Please enter a whole number of kilometres" in r.text
    assert "<b>x</b>" not in r.text and "&lt;b&gt;x&lt;/b&gt;" in r.text  # escaped, never markup
    r = client.post(f"{url}/profile?lang=en", data={**bad, "daily_km": "40"})
    assert r.status_code == 200 and "Thank you!" in r.text
    token = client.cookies[cookie_name(PROJECT)]
    state = client.get(f"/api/v1/projects/{PROJECT}/survey/{token}/next").json()
    assert state["step"] == "done" and state["answered"] == 8
    responses = pl.read_csv(io.BytesIO(client.get(f"/api/v1/projects/{PROJECT}/survey/responses.csv").content))
    chosen = responses.filter(pl.col("chosen") == 1).sort("task")
    assert chosen["alt"].to_list() == [2] + [4] * 7


def test_a_screened_out_visitor_sees_the_screened_out_page(client: TestClient) -> None:
    r = client.post(f"/survey/{PROJECT}/start?lang=en", data={"adult": "no", "buys_within_24m": "yes"})
    assert r.status_code == 200 and "for adults planning to buy a car soon" in r.text
    assert "for adults planning to buy a car soon" in client.get(f"/survey/{PROJECT}?lang=en").text
    assert client.get("/survey/nope").status_code == 404
