"""Admin pages (``/admin``) and their JSON API (``/api/v1/admin``): login, dashboard, estimate, simulator, exports.

Pages use a session cookie (HttpOnly, SameSite=Strict) and a CSRF token in every form; the API
takes the same session token as ``Authorization: Bearer`` (no CSRF needed), or the cookie with
an ``X-CSRF-Token`` header. Analysts see the dashboard, run estimates and the simulator; exports
and accounts are for admins.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from c2m.errors import C2MError

from . import _dashboard as dash
from ._auth import AdminAuth, AdminUser, ForbiddenError, TooManyAttemptsError, UnauthorizedError
from ._errors import InvalidError, PlatformError
from ._i18n import pick_lang
from ._jobs import JobRunner, JobView
from ._service import Platform
from ._simulate import default_line, level_choices, simulate_shares
from ._survey import attribute_label

COOKIE = "c2m_admin"
LOGIN_CSRF_COOKIE = "c2m_login_csrf"


class LoginRequiredError(UnauthorizedError):
    """An admin page or API call without a live session."""

    code = "login_required"


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)


class SimulateIn(BaseModel):
    products: list[dict[str, str | float]] = Field(
        min_length=1, max_length=10, description="our variants: attribute -> level name (or value if numeric)"
    )


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _safe_next(target: str | None) -> str:
    """Only an admin path of this site is a valid place to return to after login."""
    if target and target.startswith("/admin") and not target.startswith("//") and "\\" not in target:
        return target
    return "/admin"


def _job_json(j: JobView) -> dict[str, Any]:
    result = dict(j.result) if j.result else None
    if result is not None:
        result.pop("model", None)  # the full model (covariance included) is in the exports, not here
    return {
        "id": j.id, "project": j.project, "kind": j.kind, "state": j.state, "error": j.error,
        "created_by": j.created_by, "created_at": j.created_at.isoformat(),
        "finished_at": j.finished_at.isoformat() if j.finished_at else None, "result": result,
    }


def current_user(request: Request) -> AdminUser:
    """The signed-in staff member (bearer token or session cookie), else `LoginRequiredError`."""
    auth: AdminAuth = request.app.state.admin_auth
    user = auth.session(_bearer(request) or request.cookies.get(COOKIE))
    if user is None:
        raise LoginRequiredError("sign in as staff first (POST /api/v1/admin/login or /admin/login)")
    return user


async def staff(request: Request) -> AdminUser:
    """A staff member; with a cookie session, unsafe requests must carry the CSRF token (form or header)."""
    user = current_user(request)
    if _bearer(request) is None and request.method not in ("GET", "HEAD", "OPTIONS"):
        sent = request.headers.get("x-csrf-token")
        if sent is None:
            form = await request.form()
            value = form.get("csrf")
            sent = value if isinstance(value, str) else None
        AdminAuth.check_csrf(user, sent)
    return user


async def admin_only(request: Request) -> AdminUser:
    """A staff member with the admin role (403 for analysts)."""
    user = await staff(request)
    user.require("admin")
    return user


Staff = Annotated[AdminUser, Depends(staff)]
AdminOnly = Annotated[AdminUser, Depends(admin_only)]


def add_admin_routes(app: FastAPI, platform: Platform, page: Callable[..., HTMLResponse]) -> None:
    """Register the admin pages and API on ``app``."""
    settings = platform.settings
    auth = AdminAuth(
        platform.engine,
        session_hours=settings.admin_session_hours,
        max_failures=settings.admin_login_max_failures,
        max_client_failures=settings.admin_login_max_client_failures,
        window_minutes=settings.admin_login_window_minutes,
    )
    runner = JobRunner(platform.engine, platform)
    app.state.admin_auth = auth
    app.state.jobs = runner

    def lang_of(request: Request) -> str:
        return pick_lang(request.query_params.get("lang"), request.headers.get("accept-language"),
                         settings.default_lang)

    def admin_page(request: Request, name: str, user: AdminUser | None, status: int = 200, **context: Any
                   ) -> HTMLResponse:
        response = page(request, name, status=status, project=None, user=user, **context)
        response.headers["Cache-Control"] = "no-store"
        return response

    # ------------------------------------------------------------------ login and logout
    @app.get("/admin/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request, next: str | None = None) -> HTMLResponse:
        token = secrets.token_urlsafe(24)
        response = admin_page(request, "admin_login.html", None, next=_safe_next(next), login_csrf=token)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                            secure=settings.admin_cookie_secure, path="/admin/login")
        return response

    @app.post("/admin/login", include_in_schema=False)
    def login_submit(
        request: Request,
        username: Annotated[str, Form(max_length=100)],
        password: Annotated[str, Form(max_length=1000)],
        csrf: Annotated[str, Form(max_length=100)] = "",
        next: Annotated[str, Form(max_length=500)] = "/admin",
    ) -> Response:
        expected = request.cookies.get(LOGIN_CSRF_COOKIE)
        if not expected or not secrets.compare_digest(expected, csrf):
            raise ForbiddenError("the sign-in form expired; reload the page and try again", code="csrf")
        client = request.client.host if request.client else "unknown"
        try:
            token, _user = auth.login(username, password, client)
        except (UnauthorizedError, TooManyAttemptsError) as exc:
            fresh = secrets.token_urlsafe(24)
            failed = admin_page(request, "admin_login.html", None, status=exc.status, next=_safe_next(next),
                                login_csrf=fresh, error=exc.message, username=username)
            failed.set_cookie(LOGIN_CSRF_COOKIE, fresh, httponly=True, samesite="strict",
                              secure=settings.admin_cookie_secure, path="/admin/login")
            return failed
        response = RedirectResponse(_safe_next(next), status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=settings.admin_cookie_secure,
                            max_age=int(settings.admin_session_hours * 3600), path="/")
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/admin/login")
        return response

    @app.post("/admin/logout", include_in_schema=False)
    def logout_submit(request: Request, user: Staff) -> Response:
        auth.logout(request.cookies.get(COOKIE))
        response = RedirectResponse(f"/admin/login?lang={lang_of(request)}", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    # ------------------------------------------------------------------ pages
    @app.get("/admin", response_class=HTMLResponse, include_in_schema=False)
    def admin_home(request: Request, user: Staff) -> HTMLResponse:
        return admin_page(request, "admin_home.html", user, projects=platform.projects())

    def dashboard_context(project: str) -> dict[str, Any]:
        respondents = platform.survey_respondents(project)
        return {
            "p": platform.project(project),
            "funnel": dash.funnel(platform.engine, project),
            "progress": dash.survey_progress(respondents).to_dicts(),
            "bookings": dash.bookings_by_store_day(platform.engine, project).filter(
                dash.pl.col("booked") > 0
            ).to_dicts(),
            "benefit_rows": dash.benefit_uptake(platform.engine, project),
            "jobs": runner.jobs(project, limit=5),
            "latest": runner.latest_model(project),
        }

    @app.get("/admin/{project}", response_class=HTMLResponse, include_in_schema=False)
    def dashboard_page(request: Request, project: str, user: Staff) -> HTMLResponse:
        return admin_page(request, "admin_dashboard.html", user, **dashboard_context(project))

    @app.post("/admin/{project}/estimate", include_in_schema=False)
    def estimate_submit(request: Request, project: str, user: Staff) -> Response:
        job, _ = runner.submit_estimate(project, user.username)
        return RedirectResponse(f"/admin/{project}/jobs/{job.id}?lang={lang_of(request)}", status_code=303)

    @app.get("/admin/{project}/jobs/{job_id}", response_class=HTMLResponse, include_in_schema=False)
    def job_page(request: Request, project: str, job_id: str, user: Staff) -> HTMLResponse:
        job = runner.job(project, job_id)
        name = "admin_job_status.html" if request.headers.get("hx-request") else "admin_job.html"
        return admin_page(request, name, user, p=platform.project(project), job=job)

    def simulator_context(project: str, lang: str) -> dict[str, Any]:
        domain = platform.domain_project(project)
        return {
            "p": platform.project(project),
            "latest": runner.latest_model(project),
            "attributes": [(a.name, attribute_label(domain, a.name, lang), level_choices(domain, a.name, lang))
                           for a in domain.attributes],
        }

    @app.get("/admin/{project}/simulate", response_class=HTMLResponse, include_in_schema=False)
    def simulator_page(request: Request, project: str, user: Staff) -> HTMLResponse:
        context = simulator_context(project, lang_of(request))
        line = default_line(platform.domain_project(project))
        return admin_page(request, "admin_simulate.html", user, line=line, included=[True] * len(line),
                          shares=None, **context)

    @app.post("/admin/{project}/simulate", response_class=HTMLResponse, include_in_schema=False)
    async def simulator_submit(request: Request, project: str, user: Staff) -> HTMLResponse:
        form = await request.form()
        domain = platform.domain_project(project)
        n = len(default_line(domain))
        line = [{a.name: str(form.get(f"p{k}.{a.name}", "")) for a in domain.attributes} for k in range(n)]
        included = [form.get(f"p{k}.include") == "on" for k in range(n)]
        error, shares = None, None
        latest = runner.latest_model(project)
        chosen = [profile for profile, keep in zip(line, included, strict=True) if keep]
        if latest is None:
            error = "no model yet: run Estimate now first"
        elif not chosen:
            error = "include at least one variant"
        else:
            try:
                names = [f"V{k + 1}" for k in range(n) if included[k]]
                shares = simulate_shares(domain, latest.result or {}, chosen, names)
            except C2MError as exc:
                error = str(exc)
        if request.headers.get("hx-request"):
            return admin_page(request, "admin_shares.html", user, shares=shares, error=error)
        context = simulator_context(project, lang_of(request))
        return admin_page(request, "admin_simulate.html", user, status=422 if error else 200, line=line,
                          included=included, shares=shares, error=error, **context)

    @app.get("/admin/-/exports", response_class=HTMLResponse, include_in_schema=False)
    def exports_page(request: Request, user: AdminOnly) -> HTMLResponse:
        return admin_page(request, "admin_exports.html", user, tables=dash.export_tables(), formats=dash.EXPORT_FORMATS)

    @app.get("/admin/-/exports/{name}", include_in_schema=False)
    def export_download(name: str, user: AdminOnly) -> Response:
        return export_response(name)

    @app.get("/admin/-/users", response_class=HTMLResponse, include_in_schema=False)
    def users_page(request: Request, user: AdminOnly) -> HTMLResponse:
        return admin_page(request, "admin_users.html", user, users=auth.users())

    @app.post("/admin/-/users", response_class=HTMLResponse, include_in_schema=False)
    def users_submit(
        request: Request,
        user: AdminOnly,
        username: Annotated[str, Form(max_length=100)],
        password: Annotated[str, Form(max_length=1000)],
        role: Annotated[str, Form(max_length=16)],
    ) -> HTMLResponse:
        try:
            auth.add_user(username, password, role)
        except PlatformError as exc:
            return admin_page(request, "admin_users.html", user, status=exc.status, users=auth.users(),
                              error=exc.message)
        return admin_page(request, "admin_users.html", user, users=auth.users(), added=username)

    def export_response(name: str) -> Response:
        stem, dot, fmt = name.rpartition(".")
        if not dot or fmt not in dash.EXPORT_FORMATS:
            raise InvalidError(f"export {name!r}: ask for <table>.csv or <table>.parquet", field="name")
        frame = dash.table_frame(platform.engine, stem)
        media = "text/csv; charset=utf-8" if fmt == "csv" else "application/vnd.apache.parquet"
        return Response(dash.export_bytes(frame, fmt), media_type=media,
                        headers={"Content-Disposition": f'attachment; filename="{stem}.{fmt}"'})

    @app.get("/admin/-/exports-all/{fmt}", include_in_schema=False)
    def export_all(fmt: str, user: AdminOnly) -> Response:
        if fmt not in dash.EXPORT_FORMATS:
            raise InvalidError(f"format {fmt!r}: must be one of {', '.join(dash.EXPORT_FORMATS)}", field="fmt")
        return Response(dash.export_zip(platform.engine, fmt), media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="c2m-{fmt}.zip"'})

    # ------------------------------------------------------------------ JSON API
    @app.post("/api/v1/admin/login", tags=["admin"])
    def api_login(request: Request, body: LoginIn) -> dict[str, Any]:
        """A session token for ``Authorization: Bearer``; 401 on wrong credentials, 429 after too many."""
        client = request.client.host if request.client else "unknown"
        token, user = auth.login(body.username, body.password, client)
        return {"token": token, "username": user.username, "role": user.role,
                "expires_in": int(settings.admin_session_hours * 3600)}

    @app.post("/api/v1/admin/logout", tags=["admin"])
    def api_logout(request: Request, user: Staff) -> dict[str, Any]:
        auth.logout(_bearer(request) or request.cookies.get(COOKIE))
        return {"signed_out": user.username}

    @app.get("/api/v1/admin/projects/{project}/dashboard", tags=["admin"])
    def api_dashboard(project: str, user: Staff) -> dict[str, Any]:
        context = dashboard_context(project)
        f = context["funnel"]
        return {
            "project": project,
            "funnel": {"survey_started": f.survey_started, "survey_qualified": f.survey_qualified,
                       **dict(f.stages())},
            "survey_progress": context["progress"],
            "bookings_by_store_day": [{**r, "day": r["day"].isoformat()} for r in context["bookings"]],
            "benefits": [{"code": c, "granted": g, "quota": q} for c, g, q in context["benefit_rows"]],
            "jobs": [_job_json(j) for j in context["jobs"]],
        }

    @app.post("/api/v1/admin/projects/{project}/estimate", status_code=202, tags=["admin"])
    def api_estimate(project: str, user: Staff) -> dict[str, Any]:
        job, _ = runner.submit_estimate(project, user.username)
        return _job_json(job)

    @app.get("/api/v1/admin/projects/{project}/jobs/{job_id}", tags=["admin"])
    def api_job(project: str, job_id: str, user: Staff) -> dict[str, Any]:
        return _job_json(runner.job(project, job_id))

    @app.post("/api/v1/admin/projects/{project}/simulate", tags=["admin"])
    def api_simulate(project: str, body: SimulateIn, user: Staff) -> dict[str, Any]:
        latest = runner.latest_model(project)
        if latest is None:
            raise InvalidError("no model yet: POST .../estimate first and wait for it to finish", code="no_model")
        domain = platform.domain_project(project)
        names = [f"V{k + 1}" for k in range(len(body.products))]
        try:
            shares = simulate_shares(domain, latest.result or {}, body.products, names)
        except C2MError as exc:
            raise InvalidError(str(exc), field="products") from exc
        return {"model_job": latest.id, "shares": shares}

    @app.get("/api/v1/admin/exports", tags=["admin"])
    def api_exports(user: AdminOnly) -> dict[str, Any]:
        return {"tables": dash.export_tables(), "formats": list(dash.EXPORT_FORMATS)}

    @app.get("/api/v1/admin/exports/{name}", tags=["admin"],
             responses={200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}}}})
    def api_export(name: str, user: AdminOnly) -> Response:
        """One table as ``<table>.csv`` or ``<table>.parquet``."""
        return export_response(name)

    @app.exception_handler(LoginRequiredError)
    async def _login_required(request: Request, exc: LoginRequiredError) -> Response:
        if request.url.path.startswith("/api"):
            return JSONResponse({"error": {"status": 401, "code": exc.code, "message": exc.message}},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        from urllib.parse import urlencode

        return RedirectResponse("/admin/login?" + urlencode({"next": target, "lang": lang_of(request)}),
                                status_code=303)
