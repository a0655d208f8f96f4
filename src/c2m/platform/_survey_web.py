"""Survey pages (``/survey/{project}``) and JSON API (``/api/v1/projects/{project}/survey/...``).

The pages are plain HTML forms: one step per page, the respondent's token in an HTTP-only
cookie so a reload (or coming back later) shows the step where they left off. Every answer is
stored when its form is submitted.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections.abc import Callable
from typing import Annotated, Any, Literal

import polars as pl
from fastapi import FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, StrictBool, field_validator

from ._admin_web import Staff
from ._errors import ConflictError, NotFoundError, PlatformError
from ._i18n import pick_lang
from ._service import Platform
from ._survey import (
    CURRENT_CAR,
    HOME_CHARGING,
    OTHER_CITY,
    SurveyState,
    attribute_label,
    city_label,
    level_label,
    none_label,
    validate_profile,
    validate_screening,
)

COOKIE_MAX_AGE = 60 * 60 * 24 * 60  # 60 days to come back and finish


class ScreeningIn(BaseModel):
    adult: StrictBool = Field(description="18 or older")
    buys_within_24m: StrictBool = Field(description="plans to buy a car within 24 months")


class StartIn(BaseModel):
    lang: Literal["zh", "en"] = "zh"
    screening: ScreeningIn


class AnswerIn(BaseModel):
    task: int = Field(ge=1, le=1000)
    choice: int | str = Field(description="the chosen concept (1..n_alts) or 'none'")

    @field_validator("choice", mode="before")
    @classmethod
    def _concept_or_none(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | str) or (isinstance(value, str) and len(value) > 10):
            raise ValueError("expected a concept number (1, 2, ...) or 'none'")
        return value


class ProfileIn(BaseModel):
    city: str = Field(min_length=1, max_length=100)
    daily_km: int = Field(ge=0, le=1500)
    home_charging: Literal["yes", "no", "unsure"]
    current_car: Literal["none", "petrol", "hybrid", "electric"]


def cookie_name(project: str) -> str:
    return "c2m_survey_" + hashlib.sha256(project.encode()).hexdigest()[:16]


def add_survey_routes(app: FastAPI, platform: Platform, page: Callable[..., HTMLResponse]) -> None:
    """Register the survey's JSON API and pages on ``app``."""

    def state_json(state: SurveyState) -> dict[str, Any]:
        out: dict[str, Any] = {
            "token": state.token,
            "respondent_id": state.respondent_id,
            "project": state.project,
            "status": state.status,
            "step": state.step,
            "lang": state.lang,
            "version": state.version,
            "answered": state.answered,
            "n_tasks": state.n_tasks,
            "task": None,
        }
        if state.task is not None:
            project = platform.domain_project(state.project)
            out["task"] = {
                "task": state.task.number,
                "holdout": state.task.holdout,
                "none_option": state.task.none_option,
                "none_label": none_label(project, state.lang) if state.task.none_option else None,
                "concepts": [
                    {
                        "alt": c.alt,
                        "levels": c.levels,
                        "labels": {a: level_label(project, a, v, state.lang) for a, v in c.levels.items()},
                    }
                    for c in state.task.concepts
                ],
            }
        return out

    def csv_response(frame: pl.DataFrame, filename: str) -> Response:
        buffer = io.BytesIO()
        frame.write_csv(buffer)
        return Response(
            buffer.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{filename}"'},
        )

    # ------------------------------------------------------------------ JSON API
    @app.post("/api/v1/projects/{project}/survey/start", status_code=201)
    def survey_start(project: str, body: StartIn) -> dict[str, Any]:
        return state_json(platform.survey_start(project, body.screening.model_dump(), body.lang))

    @app.get("/api/v1/projects/{project}/survey/responses.csv")
    def survey_responses_csv(project: str, user: Staff, include_partial: bool = False) -> Response:
        """Staff only: the answers in the long format of ``c2m estimate --responses``."""
        return csv_response(platform.survey_responses(project, include_partial), f"{project}-responses.csv")

    @app.get("/api/v1/projects/{project}/survey/respondents.csv")
    def survey_respondents_csv(project: str, user: Staff) -> Response:
        """Staff only: one row per respondent with profile answers and quality flags."""
        return csv_response(platform.survey_respondents(project), f"{project}-respondents.csv")

    @app.get("/api/v1/projects/{project}/survey/quality")
    def survey_quality(project: str, user: Staff) -> dict[str, Any]:
        """Staff only: counts and the ids of speeders and straight-liners."""
        people = platform.survey_respondents(project)
        done = people.filter(pl.col("status") == "done")
        return {
            "respondents": people.height,
            "finished": done.height,
            "screened_out": people.filter(pl.col("status") == "screened_out").height,
            "speeders": done.filter(pl.col("speeder"))["id"].to_list(),
            "straight_liners": done.filter(pl.col("straight_liner"))["id"].to_list(),
            "median_seconds": done["total_seconds"].median() if done.height else None,
        }

    @app.get("/api/v1/projects/{project}/survey/{token}/next")
    def survey_next(project: str, token: str) -> dict[str, Any]:
        return state_json(platform.survey_state(project, token))

    @app.post("/api/v1/projects/{project}/survey/{token}/answers", status_code=201)
    def survey_answer(project: str, token: str, body: AnswerIn) -> Response:
        a = platform.survey_answer(project, token, body.task, body.choice)
        payload = {
            "task": a.task,
            "alt": a.alt,
            "is_none": a.is_none,
            "seconds": a.seconds,
            "answered_at": a.answered_at.isoformat(),
            "repeated": a.repeated,
            "next": state_json(a.next if a.next is not None else platform.survey_state(project, token)),
        }
        return JSONResponse(payload, status_code=200 if a.repeated else 201)

    @app.post("/api/v1/projects/{project}/survey/{token}/profile")
    def survey_profile(project: str, token: str, body: ProfileIn) -> dict[str, Any]:
        return state_json(platform.survey_profile(project, token, body.model_dump()))

    # ------------------------------------------------------------------ pages
    def lang_of(request: Request, state: SurveyState | None = None) -> str:
        query = request.query_params.get("lang")
        if query in ("zh", "en"):
            return query
        if state is not None:
            return state.lang
        return pick_lang(None, request.headers.get("accept-language"), platform.settings.default_lang)

    def current(request: Request, project: str) -> SurveyState | None:
        token = request.cookies.get(cookie_name(project))
        if not token:
            return None
        try:
            return platform.survey_state(project, token)
        except NotFoundError:
            return None

    def home(project: str, lang: str) -> RedirectResponse:
        return RedirectResponse(f"/survey/{project}?lang={lang}", status_code=303)

    def render(request: Request, project: str, state: SurveyState | None, status: int = 200, **extra: Any) -> Response:
        lang = lang_of(request, state)
        domain = platform.domain_project(project)
        context: dict[str, Any] = {
            "project": platform.project(project),
            "lang_override": lang,
            "survey_url": f"/survey/{project}",
            "switch_path": f"/survey/{project}",
            "state": state,
            "errors": extra.pop("errors", []),
            "values": extra.pop("values", {}),
            **extra,
        }
        if state is None:
            name = "survey_screen.html"
            context["n_tasks"] = platform.survey_design(project).n_tasks
        elif state.step == "task":
            assert state.task is not None
            name = "survey_task.html"
            names = [a.name for a in domain.attributes]
            context["concepts"] = [
                (c.alt, [(attribute_label(domain, a, lang), level_label(domain, a, c.levels[a], lang)) for a in names])
                for c in state.task.concepts
            ]
            context["none_text"] = none_label(domain, lang) if state.task.none_option else None
        elif state.step == "profile":
            name = "survey_profile.html"
            context["cities"] = [(c.name, city_label(c.name, lang)) for c in domain.cities]
            context["other_city"] = OTHER_CITY
            context["charging"] = HOME_CHARGING
            context["cars"] = CURRENT_CAR
        else:
            name = "survey_end.html"
        return page(request, name, status=status, lang=lang, **context)

    @app.get("/survey/{project}", response_class=HTMLResponse, include_in_schema=False)
    def survey_page(request: Request, project: str) -> Response:
        platform.project(project)  # 404 page for an unknown project
        return render(request, project, current(request, project))

    @app.post("/survey/{project}/start", include_in_schema=False)
    def survey_start_form(
        request: Request,
        project: str,
        adult: Annotated[str | None, Form(max_length=10)] = None,
        buys_within_24m: Annotated[str | None, Form(max_length=10)] = None,
        lang: Annotated[str | None, Query(max_length=5)] = None,
    ) -> Response:
        page_lang = lang_of(request)
        state = current(request, project)
        if state is not None:  # already started: carry on where they are
            return home(project, lang_of(request, state))
        answers = {"adult": adult, "buys_within_24m": buys_within_24m}
        _, bad = validate_screening(answers)
        if bad:
            return render(request, project, None, status=422, errors=bad, values=answers)
        state = platform.survey_start(project, answers, page_lang)
        response = home(project, page_lang)
        response.set_cookie(
            cookie_name(project), state.token, max_age=COOKIE_MAX_AGE, httponly=True, samesite="lax",
            path=f"/survey/{project}",
        )
        return response

    @app.post("/survey/{project}/answer", include_in_schema=False)
    def survey_answer_form(
        request: Request,
        project: str,
        task: Annotated[int | None, Form()] = None,
        choice: Annotated[str | None, Form(max_length=10)] = None,
    ) -> Response:
        state = current(request, project)
        lang = lang_of(request, state)
        if state is None or state.task is None or task != state.task.number:
            return home(project, lang)  # a stale page (back button, second tab): show the current step
        if choice is None:
            return render(request, project, state, status=422, errors=["choice"])
        try:
            platform.survey_answer(project, state.token, task, choice)
        except ConflictError:
            pass  # answered meanwhile in another tab: the stored answer stands
        except PlatformError as exc:
            if exc.field != "choice":
                raise
            return render(request, project, state, status=422, errors=["choice"])
        return home(project, lang)

    @app.post("/survey/{project}/profile", include_in_schema=False)
    def survey_profile_form(
        request: Request,
        project: str,
        city: Annotated[str | None, Form(max_length=100)] = None,
        daily_km: Annotated[str | None, Form(max_length=10)] = None,
        home_charging: Annotated[str | None, Form(max_length=10)] = None,
        current_car: Annotated[str | None, Form(max_length=10)] = None,
    ) -> Response:
        state = current(request, project)
        lang = lang_of(request, state)
        if state is None or state.step != "profile":
            return home(project, lang)
        answers = {"city": city, "daily_km": daily_km, "home_charging": home_charging, "current_car": current_car}
        cities = [c.name for c in platform.domain_project(project).cities]
        _, bad = validate_profile(answers, cities)
        if bad:
            return render(request, project, state, status=422, errors=bad, values=answers)
        with contextlib.suppress(ConflictError):  # finished meanwhile in another tab
            platform.survey_profile(project, state.token, answers)
        return home(project, lang)
