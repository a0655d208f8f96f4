"""The FastAPI application: JSON API and server-rendered booking and survey pages."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ._admin_orders_web import add_admin_order_routes
from ._admin_web import add_admin_routes
from ._aftersales_web import add_aftersales_routes
from ._api_errors import ERROR_RESPONSES
from ._benefits_web import add_benefit_routes
from ._db import init_db, make_engine
from ._errors import PlatformError
from ._i18n import HTML_LANG, pick_lang, translator
from ._identity import Person
from ._identity_web import add_identity_routes, api_person, cookie_person, page_person
from ._jobs import fail_interrupted
from ._personal_data_web import add_personal_data_routes
from ._preorders_web import add_preorder_routes
from ._service import BenefitView, BookingView, Platform, SlotView
from ._settings import Settings
from ._survey_web import add_survey_routes
from ._workers import reuseport_supported, run_workers

_HERE = Path(__file__).parent


class BookingIn(BaseModel):
    slot_id: int = Field(ge=1)


class RebookIn(BaseModel):
    slot_id: int = Field(ge=1)


def _slot_json(s: SlotView) -> dict[str, Any]:
    return {
        "id": s.id,
        "store": s.store,
        "city": s.city,
        "start": s.start.isoformat(timespec="minutes"),
        "minutes": s.minutes,
        "capacity": s.capacity,
        "booked": s.booked,
        "remaining": s.remaining,
    }


def _booking_json(b: BookingView) -> dict[str, Any]:
    return {
        "id": b.id,
        "project": b.project,
        "status": b.status,
        "slot": _slot_json(b.slot),
        "created_at": b.created_at.isoformat(),
        "replaced_by": b.replaced_by,
    }


def _benefit_json(b: BenefitView) -> dict[str, Any]:
    return {
        "code": b.code,
        "name": b.name,
        "name_zh": b.name_zh,
        "quota": b.quota,
        "granted": b.granted,
        "remaining": b.remaining,
    }


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "code": code, "message": message, **extra}}, status_code=status)


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> FastAPI:
    """The web application on ``settings.database_url``; migrates and seeds it first unless ``migrate=False``."""
    settings = Settings() if settings is None else settings
    engine = init_db(settings.database_url, settings) if migrate else make_engine(settings.database_url)
    if migrate:
        fail_interrupted(engine)
    platform = Platform(engine, settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        _app.state.jobs.shutdown()
        engine.dispose()

    app = FastAPI(title="c2m platform", version="0.1.0", lifespan=lifespan, responses=ERROR_RESPONSES)
    app.state.platform = platform
    app.state.settings = settings
    templates = Jinja2Templates(directory=str(_HERE / "templates"))
    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")

    def wants_html(request: Request) -> bool:
        return not request.url.path.startswith("/api") and request.url.path != "/healthz"

    @app.exception_handler(PlatformError)
    async def _platform_error(request: Request, exc: PlatformError) -> Response:
        if wants_html(request):
            return _page_error(request, exc.status, exc.message)
        extra = {"field": exc.field} if exc.field else {}
        return _error(exc.status, exc.code, exc.message, **extra)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        message = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        if wants_html(request):
            return _page_error(request, 422, message)
        return _error(422, "validation_error", f"invalid request: {message}", problems=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = str(exc.detail) if exc.status_code != 404 else f"no such path: {request.url.path}"
        return _error(exc.status_code, code, message)

    # ------------------------------------------------------------------ JSON API
    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "projects": [p.name for p in platform.projects()]}

    @app.get("/api/v1/projects")
    def projects() -> list[dict[str, Any]]:
        return [{"name": p.name, "product": p.product, "description": p.description} for p in platform.projects()]

    @app.get("/api/v1/projects/{project}/cities")
    def cities(project: str) -> list[dict[str, Any]]:
        return [{"city": c, "stores": n} for c, n in platform.cities(project)]

    @app.get("/api/v1/projects/{project}/stores")
    def stores(project: str, city: str | None = None) -> list[dict[str, Any]]:
        return [
            {"id": s.code, "city": s.city, "lat": s.lat, "lon": s.lon, "kind": s.kind}
            for s in platform.stores(project, city)
        ]

    @app.get("/api/v1/projects/{project}/slots")
    def slots(
        project: str, store: Annotated[str, Query(min_length=1)], day: date | None = None
    ) -> list[dict[str, Any]]:
        return [_slot_json(s) for s in platform.slots(project, store, day)]

    @app.post("/api/v1/projects/{project}/bookings", status_code=201)
    def book(project: str, body: BookingIn, person: Annotated[Person, Depends(api_person)]) -> dict[str, Any]:
        return _booking_json(platform.book(project, body.slot_id, person))

    @app.get("/api/v1/projects/{project}/bookings/{booking_id}")
    def booking(project: str, booking_id: str, person: Annotated[Person, Depends(api_person)]) -> dict[str, Any]:
        return _booking_json(platform.booking(project, booking_id, person))

    @app.post("/api/v1/projects/{project}/bookings/{booking_id}/cancel")
    def cancel(project: str, booking_id: str, person: Annotated[Person, Depends(api_person)]) -> dict[str, Any]:
        return _booking_json(platform.cancel(project, booking_id, person))

    @app.post("/api/v1/projects/{project}/bookings/{booking_id}/rebook", status_code=201)
    def rebook(
        project: str, booking_id: str, body: RebookIn, person: Annotated[Person, Depends(api_person)]
    ) -> dict[str, Any]:
        return _booking_json(platform.rebook(project, booking_id, body.slot_id, person))

    @app.get("/api/v1/projects/{project}/benefits")
    def benefits(project: str) -> list[dict[str, Any]]:
        return [_benefit_json(b) for b in platform.benefits(project)]

    @app.post("/api/v1/projects/{project}/benefits/{benefit}/claims", status_code=201)
    def claim(project: str, benefit: str, person: Annotated[Person, Depends(api_person)]) -> dict[str, Any]:
        c = platform.claim(project, benefit, person)
        return {
            "id": c.id,
            "project": c.project,
            "benefit": _benefit_json(c.benefit),
            "created_at": c.created_at.isoformat(),
        }

    # ------------------------------------------------------------------ pages
    def page(request: Request, name: str, status: int = 200, lang: str | None = None, **context: Any) -> HTMLResponse:
        lang = lang or pick_lang(
            request.query_params.get("lang"), request.headers.get("accept-language"), settings.default_lang
        )
        other = "en" if lang == "zh" else "zh"
        query = dict(request.query_params)
        query["lang"] = other
        switch_url = context.pop("switch_path", request.url.path) + "?" + urlencode(query)
        return templates.TemplateResponse(
            request,
            name,
            {"lang": lang, "html_lang": HTML_LANG[lang], "t": translator(lang), "switch_url": switch_url,
             "signed_in": cookie_person(request) is not None, **context},
            status_code=status,
        )

    def _page_error(request: Request, status: int, message: str) -> HTMLResponse:
        return page(request, "error.html", status=status, message=message)

    @app.get("/", include_in_schema=False)
    def home(request: Request) -> Response:
        first = platform.projects()
        if not first:
            return _page_error(request, 404, "no projects")
        lang = request.query_params.get("lang")
        suffix = f"?lang={lang}" if lang in ("zh", "en") else ""
        return RedirectResponse(f"/book/{first[0].name}{suffix}", status_code=303)

    @app.get("/book/{project}", response_class=HTMLResponse, include_in_schema=False)
    def book_page(
        request: Request, project: str, city: str | None = None, store: str | None = None, day: date | None = None
    ) -> HTMLResponse:
        p = platform.project(project)
        context: dict[str, Any] = {"project": p, "city": city, "store": None, "day": day}
        context["cities"] = platform.cities(project)
        if city:
            context["stores"] = platform.stores(project, city)
        if city and store:
            s = platform.store(project, store)
            context["store"] = s
            context["days"] = platform.days(project, store)
        if city and store and day:
            context["slots"] = platform.slots(project, store, day)
        context["benefits"] = platform.benefits(project)
        return page(request, "book.html", **context)

    @app.post("/book/{project}", include_in_schema=False)
    def book_submit(
        request: Request, project: str, slot_id: Annotated[int, Form()], person: Annotated[Person, Depends(page_person)]
    ) -> Response:
        lang = pick_lang(
            request.query_params.get("lang"), request.headers.get("accept-language"), settings.default_lang
        )
        b = platform.book(project, slot_id, person)
        return RedirectResponse(f"/book/{project}/bookings/{b.id}?lang={lang}", status_code=303)

    @app.get("/book/{project}/bookings/{booking_id}", response_class=HTMLResponse, include_in_schema=False)
    def confirmation(
        request: Request, project: str, booking_id: str, person: Annotated[Person, Depends(page_person)]
    ) -> HTMLResponse:
        booking = platform.booking(project, booking_id, person)
        return page(request, "confirm.html", project=platform.project(project), booking=booking)

    @app.post("/book/{project}/bookings/{booking_id}/cancel", include_in_schema=False)
    def cancel_submit(
        request: Request, project: str, booking_id: str, person: Annotated[Person, Depends(page_person)]
    ) -> Response:
        lang = pick_lang(
            request.query_params.get("lang"), request.headers.get("accept-language"), settings.default_lang
        )
        platform.cancel(project, booking_id, person)
        return RedirectResponse(f"/book/{project}/bookings/{booking_id}?lang={lang}", status_code=303)

    add_admin_routes(app, platform, page)
    add_admin_order_routes(app, platform, page)
    add_identity_routes(app, platform, page)
    add_aftersales_routes(app, platform, page)
    add_benefit_routes(app, platform, page)
    add_personal_data_routes(app, platform, page)
    add_survey_routes(app, platform, page)
    add_preorder_routes(app, platform, page)
    return app


_ENV_SETTINGS = "C2M_SERVE_SETTINGS"


def create_app_from_env() -> FastAPI:
    """App factory for uvicorn workers: settings from ``C2M_SERVE_SETTINGS`` (JSON) or the environment."""
    raw = os.environ.get(_ENV_SETTINGS)
    settings = Settings.model_validate(json.loads(raw)) if raw else Settings()
    return create_app(settings, migrate=False)


def serve(project_files: list[Path], database_url: str | None, host: str, port: int, workers: int) -> None:
    """Migrate and seed the database, then serve the platform with uvicorn (blocks)."""
    import uvicorn

    overrides: dict[str, Any] = {}
    if project_files:
        overrides["projects"] = [Path(p) for p in project_files]
    if database_url:
        overrides["database_url"] = database_url
    settings = Settings(**overrides)
    engine = init_db(settings.database_url, settings)
    fail_interrupted(engine)  # before any worker starts: jobs left running by a previous server are dead
    engine.dispose()
    if workers <= 1:
        uvicorn.run(create_app(settings, migrate=False), host=host, port=port, log_level="info")
        return
    factory = "c2m.platform._app:create_app_from_env"
    if reuseport_supported():  # each worker on its own socket: the kernel spreads the connections
        run_workers(factory, {_ENV_SETTINGS: settings.model_dump_json()}, host, port, workers, {"log_level": "info"})
        return
    os.environ[_ENV_SETTINGS] = settings.model_dump_json()
    uvicorn.run(factory, factory=True, host=host, port=port, workers=workers, log_level="info")
