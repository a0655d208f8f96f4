"""Staff view of a project's pre-orders: the list, and confirming or delivering an order (admins only).

Pages ``/admin/{project}/orders`` (CSRF on every form) and the JSON API
``GET /api/v1/admin/projects/{project}/preorders``; confirming and delivering over the API is
``POST /api/v1/projects/{project}/preorders/{id}/confirm|deliver`` (in `_preorders_web`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ._admin_web import AdminOnly, Staff
from ._i18n import pick_lang
from ._preorders_web import order_json, staff_actor
from ._service import Platform

_ACTIONS = ("confirm", "deliver")


def add_admin_order_routes(app: FastAPI, platform: Platform, page: Callable[..., HTMLResponse]) -> None:
    """Register the staff pre-order list and its confirm/deliver forms on ``app``."""

    def lang_of(request: Request) -> str:
        return pick_lang(request.query_params.get("lang"), request.headers.get("accept-language"),
                         platform.settings.default_lang)

    @app.get("/api/v1/admin/projects/{project}/preorders", tags=["admin"])
    def admin_preorders(
        project: str, user: Staff, state: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 200
    ) -> list[dict[str, Any]]:
        """The newest pre-orders of a project (events and payments left out; GET one order for them)."""
        return [order_json(o) for o in platform.preorders(project, state, limit)]

    @app.get("/admin/{project}/orders", response_class=HTMLResponse, include_in_schema=False)
    def orders_page(request: Request, project: str, user: Staff, state: str | None = None) -> HTMLResponse:
        response = page(
            request, "admin_orders.html", project=None, user=user, p=platform.project(project), state=state,
            orders=platform.preorders(project, state or None), actions=_ACTIONS,
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.post("/admin/{project}/orders/{order_id}", include_in_schema=False)
    def order_action(
        request: Request, project: str, order_id: str, user: AdminOnly,
        action: Annotated[str, Form(pattern="^(confirm|deliver)$")],
        note: Annotated[str, Form(max_length=500)] = "",
    ) -> Response:
        move = platform.preorder_confirm if action == "confirm" else platform.preorder_deliver
        move(project, order_id, staff_actor(user), note)
        return RedirectResponse(f"/admin/{project}/orders?lang={lang_of(request)}", status_code=303)
