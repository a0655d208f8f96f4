"""Sign-in with a one-time code: pages (``/sign-in``), JSON API (``/api/v1/identity/...``), who is asking.

The JSON API takes the person's session token as ``Authorization: Bearer``; the pages take it
from an HttpOnly, SameSite=Lax cookie (so a cross-site form post does not carry it). A page that
needs a person and has none redirects to ``/sign-in?next=...``, which asks for the contact, then
the code, then returns where the person was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from ._errors import PlatformError
from ._i18n import pick_lang
from ._identity import Person, SignInRequiredError, mask_contact
from ._service import Platform

COOKIE = "c2m_person"
COOKIE_FIELD = "cookie"
bearer = HTTPBearer(
    auto_error=False, scheme_name="person",
    description="a person's session token from POST /api/v1/identity/verify",
)


class CodeIn(BaseModel):
    contact: str = Field(min_length=3, max_length=200, description="mobile number or e-mail")


class VerifyIn(BaseModel):
    contact: str = Field(min_length=3, max_length=200, description="mobile number or e-mail")
    code: str = Field(min_length=1, max_length=20, description="the 6-digit code that was sent")


def api_person(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Person:
    """The signed-in person of an API request (``Authorization: Bearer``); 401 naming ``Authorization``."""
    platform: Platform = request.app.state.platform
    return platform.identity_person(credentials.credentials if credentials else None)


def page_person(request: Request) -> Person:
    """The signed-in person of a page (cookie); without one the page redirects to the sign-in page."""
    platform: Platform = request.app.state.platform
    return platform.identity_person(request.cookies.get(COOKIE), field=COOKIE_FIELD)


ApiPerson = Annotated[Person, Depends(api_person)]
PagePerson = Annotated[Person, Depends(page_person)]


def cookie_person(request: Request) -> Person | None:
    """The signed-in person of a page, or None."""
    try:
        return page_person(request) if request.cookies.get(COOKIE) else None
    except SignInRequiredError:
        return None


def safe_next(target: str | None) -> str:
    """Only a path of this site is a place to return to after signing in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def here(request: Request) -> str:
    """The page to come back to: this one for a GET, the page the form was on (same site) otherwise."""
    if request.method in ("GET", "HEAD"):
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc == request.url.netloc and referer.path:
        return referer.path + (f"?{referer.query}" if referer.query else "")
    return "/"


def sign_in_url(next_path: str, lang: str) -> str:
    return "/sign-in?" + urlencode({"next": safe_next(next_path), "lang": lang})


def add_identity_routes(app: FastAPI, platform: Platform, page: Callable[..., HTMLResponse]) -> None:
    """Register the sign-in API and pages on ``app``, and the 401 handling of pages (a redirect to sign in)."""
    settings = platform.settings

    def lang_of(request: Request) -> str:
        return pick_lang(request.query_params.get("lang"), request.headers.get("accept-language"),
                         settings.default_lang)

    @app.exception_handler(SignInRequiredError)
    async def _sign_in_required(request: Request, exc: SignInRequiredError) -> Response:
        if request.url.path.startswith("/api"):
            body = {"status": exc.status, "code": exc.code, "message": exc.message, "field": exc.field}
            return JSONResponse({"error": body}, status_code=exc.status, headers={"WWW-Authenticate": "Bearer"})
        response = RedirectResponse(sign_in_url(here(request), lang_of(request)), status_code=303)
        if exc.code != "sign_in_required":
            response.delete_cookie(COOKIE, path="/")
        return response

    # ------------------------------------------------------------------ JSON API
    @app.post("/api/v1/identity/code", status_code=202)
    def identity_code(body: CodeIn) -> dict[str, Any]:
        """Send a one-time code to the contact (429 when asked again within 30 s or 10 times an hour)."""
        sent = platform.identity_request_code(body.contact)
        return {"sent": True, "expires_at": sent.expires_at.isoformat(), "resend_after": sent.resend_after.isoformat()}

    @app.post("/api/v1/identity/verify")
    def identity_verify(body: VerifyIn) -> dict[str, Any]:
        """Exchange the contact and its code for a session token (``Authorization: Bearer <token>``)."""
        token, person = platform.identity_verify(body.contact, body.code)
        assert person.expires_at is not None
        return {"token": token, "token_type": "bearer", "expires_at": person.expires_at.isoformat()}

    @app.post("/api/v1/identity/sign-out")
    def identity_sign_out(
        person: Annotated[Person, Depends(api_person)],
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> dict[str, Any]:
        """End this session (the token stops working)."""
        platform.identity_sign_out(credentials.credentials if credentials else None)
        return {"signed_out": True}

    # ------------------------------------------------------------------ pages
    def form(request: Request, step: str, status: int = 200, **extra: Any) -> HTMLResponse:
        context = {
            "project": None, "step": step, "next": safe_next(request.query_params.get("next")), "error": None,
            "contact": "", "masked": "", "minutes": f"{settings.code_minutes:g}", "switch_path": "/sign-in", **extra,
        }
        return page(request, "sign_in.html", status=status, **context)

    @app.get("/sign-in", response_class=HTMLResponse, include_in_schema=False)
    def sign_in_page(request: Request) -> HTMLResponse:
        return form(request, "contact")

    @app.post("/sign-in", include_in_schema=False)
    def sign_in_submit(
        request: Request,
        contact: Annotated[str, Form(max_length=200)] = "",
        next: Annotated[str, Form(max_length=2000)] = "/",
    ) -> Response:
        try:
            platform.identity_request_code(contact)
        except PlatformError as exc:
            if exc.field != "contact":
                raise
            return form(request, "contact", status=exc.status, error=exc.message, contact=contact,
                        next=safe_next(next))
        return form(request, "code", contact=contact, masked=mask_contact(contact), next=safe_next(next))

    @app.post("/sign-in/verify", include_in_schema=False)
    def sign_in_verify(
        request: Request,
        contact: Annotated[str, Form(max_length=200)] = "",
        code: Annotated[str, Form(max_length=20)] = "",
        next: Annotated[str, Form(max_length=2000)] = "/",
    ) -> Response:
        try:
            token, _ = platform.identity_verify(contact, code)
        except PlatformError as exc:
            if exc.field not in ("code", "contact"):
                raise
            step = "contact" if exc.field == "contact" else "code"
            masked = mask_contact(contact) if step == "code" else ""
            return form(request, step, status=exc.status, error=exc.message, contact=contact, masked=masked,
                        next=safe_next(next))
        response = RedirectResponse(safe_next(next), status_code=303)
        response.set_cookie(
            COOKIE, token, max_age=round(settings.person_session_days * 86400), httponly=True, samesite="lax",
            secure=settings.person_cookie_secure, path="/",
        )
        return response

    @app.post("/sign-out", include_in_schema=False)
    def sign_out(request: Request, next: Annotated[str, Form(max_length=2000)] = "/") -> Response:
        platform.identity_sign_out(request.cookies.get(COOKIE))
        response = RedirectResponse(safe_next(next), status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response
