"""Early-purchase benefit page (``/benefits/{project}``): see what is left and apply, one benefit per person.

The JSON API of the same operations is ``GET /api/v1/projects/{project}/benefits`` and
``POST /api/v1/projects/{project}/benefits/{benefit}/claims`` (in `_app`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ._errors import ConflictError
from ._i18n import pick_lang, translator
from ._identity_web import PagePerson, cookie_person
from ._service import Platform

_REFUSALS = {"quota_exhausted": "benefit_exhausted", "already_claimed": "benefit_already"}


def add_benefit_routes(app: FastAPI, platform: Platform, page: Callable[..., HTMLResponse]) -> None:
    """Register the benefit page and its form on ``app``."""

    def lang_of(request: Request) -> str:
        return pick_lang(request.query_params.get("lang"), request.headers.get("accept-language"),
                         platform.settings.default_lang)

    def benefits_page(request: Request, project: str, status: int = 200, error: str | None = None) -> HTMLResponse:
        person = cookie_person(request)
        context: dict[str, Any] = {
            "project": platform.project(project),
            "benefits": platform.benefits(project),
            "mine": platform.claims(project, person) if person else [],
            "error": error,
        }
        return page(request, "benefits.html", status=status, **context)

    @app.get("/benefits/{project}", response_class=HTMLResponse, include_in_schema=False)
    def benefits_view(request: Request, project: str) -> HTMLResponse:
        return benefits_page(request, project)

    @app.post("/benefits/{project}", include_in_schema=False)
    def benefits_apply(
        request: Request, project: str, benefit: Annotated[str, Form(max_length=40)], person: PagePerson
    ) -> Response:
        lang = lang_of(request)
        try:
            platform.claim(project, benefit, person)
        except ConflictError as exc:
            key = _REFUSALS.get(exc.code)
            message = translator(lang)(key) if key else exc.message
            return benefits_page(request, project, status=exc.status, error=message)
        return RedirectResponse(f"/benefits/{project}?lang={lang}", status_code=303)
