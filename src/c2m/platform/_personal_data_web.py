"""A person's own data: ``GET``/``DELETE /api/v1/me`` and the "my data" pages (``/me``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ._i18n import pick_lang, translator
from ._identity_web import COOKIE, ApiPerson, PagePerson
from ._service import Platform


def add_personal_data_routes(app: FastAPI, platform: Platform, page: Callable[..., HTMLResponse]) -> None:
    """Register the export and erasure API and pages on ``app``."""

    @app.get("/api/v1/me")
    def me_export(person: ApiPerson) -> dict[str, Any]:
        """Every record kept about you: sessions, test drives, benefit claims, pre-orders (with payments and
        audit events) and service appointments."""
        return platform.personal_data(person)

    @app.delete("/api/v1/me")
    def me_delete(person: ApiPerson) -> dict[str, Any]:
        """Cancel what is live (seats freed, deposits refunded), sign out everywhere, unlink every record."""
        return {"deleted": True, **dataclasses.asdict(platform.personal_data_erase(person))}

    def lang_of(request: Request) -> str:
        return pick_lang(request.query_params.get("lang"), request.headers.get("accept-language"),
                         platform.settings.default_lang)

    def my_page(request: Request, data: dict[str, Any], status: int = 200, error: str | None = None) -> HTMLResponse:
        return page(request, "me.html", status=status, project=None, data=data, error=error, switch_path="/me")

    @app.get("/me", response_class=HTMLResponse, include_in_schema=False)
    def me_page(request: Request, person: PagePerson) -> HTMLResponse:
        return my_page(request, platform.personal_data(person))

    @app.get("/me/export.json", include_in_schema=False)
    def me_download(person: PagePerson) -> Response:
        return JSONResponse(
            platform.personal_data(person), headers={"Content-Disposition": 'attachment; filename="my-data.json"'}
        )

    @app.post("/me/delete", include_in_schema=False)
    def me_delete_form(
        request: Request, person: PagePerson, confirm: Annotated[str | None, Form(max_length=10)] = None
    ) -> Response:
        if confirm != "yes":
            message = translator(lang_of(request))("err_delete_confirm")
            return my_page(request, platform.personal_data(person), status=422, error=message)
        erased = platform.personal_data_erase(person)
        response = page(request, "me_deleted.html", project=None, erased=erased, signed_in=False, switch_path="/")
        response.delete_cookie(COOKIE, path="/")
        return response
