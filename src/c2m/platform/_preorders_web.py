"""Pre-order pages (``/preorder/{project}``) and JSON API (``/api/v1/projects/{project}/preorders``).

The pages are plain HTML forms: choose the car, then pay the deposit, then the confirmation.
The choice form carries a one-off idempotency key, so submitting it twice (double click, back
and resubmit) reserves one car, not two.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Header, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from ._admin_web import AdminOnly
from ._auth import AdminUser
from ._errors import PlatformError
from ._i18n import pick_lang, translator
from ._identity import Person
from ._identity_web import api_person, page_person
from ._payments import PaymentError
from ._preorders import Catalogue, OrderView
from ._service import Platform
from ._survey import level_label

ORDER_FIELDS = ("variant", "colour", "battery", "ownership", "rent_plan")


class PreorderIn(BaseModel):
    variant: str = Field(min_length=1, max_length=100)
    colour: str = Field(min_length=1, max_length=50)
    battery: str = Field(min_length=1, max_length=50)
    ownership: str = Field(min_length=1, max_length=8, description="'buy' or 'rent'")
    rent_plan: str | None = Field(default=None, max_length=50, description="the rent plan when ownership is 'rent'")


class TransitionIn(BaseModel):
    actor: str = Field(default="staff", min_length=1, max_length=50)
    note: str = Field(default="", max_length=500)


class StaffTransitionIn(BaseModel):
    note: str = Field(default="", max_length=500, description="why, for the audit log")


def staff_actor(user: AdminUser) -> str:
    """How a staff member is named in an order's audit log."""
    return f"staff:{user.username}"


def catalogue_json(c: Catalogue) -> dict[str, Any]:
    return {
        "project": c.project,
        "source": c.source,
        "currency": c.currency,
        "deposit": c.deposit,
        "colours": [{"name": n, "label": label} for n, label in c.colours],
        "variants": [
            {
                "name": v.name,
                "label": v.label,
                "price": v.price,
                "batteries": [
                    {
                        "name": b.name,
                        "label": b.label,
                        "plans": [
                            {"ownership": p.ownership, "rent_plan": p.rent_plan, "monthly_fee": p.monthly_fee}
                            for p in b.plans
                        ],
                    }
                    for b in v.batteries
                ],
            }
            for v in c.variants
        ],
    }


def order_json(o: OrderView) -> dict[str, Any]:
    return {
        "id": o.id,
        "project": o.project,
        "state": o.state,
        "variant": o.variant,
        "colour": o.colour,
        "battery": o.battery,
        "ownership": o.ownership,
        "rent_plan": o.rent_plan,
        "price": o.price,
        "deposit": o.deposit,
        "monthly_fee": o.monthly_fee,
        "created_at": o.created_at.isoformat(),
        "updated_at": o.updated_at.isoformat(),
        "events": [
            {"from": e.from_state, "to": e.to_state, "at": e.at.isoformat(), "actor": e.actor, "note": e.note}
            for e in o.events
        ],
        "payments": [
            {"kind": p.kind, "amount": p.amount, "provider": p.provider, "reference": p.reference,
             "created_at": p.created_at.isoformat()}
            for p in o.payments
        ],
    }


def add_preorder_routes(app: FastAPI, platform: Platform, page: Callable[..., HTMLResponse]) -> None:
    """Register the pre-order JSON API and pages on ``app``."""

    # ------------------------------------------------------------------ JSON API
    @app.get("/api/v1/projects/{project}/preorders/options")
    def preorder_options(project: str) -> dict[str, Any]:
        platform.project(project)
        return catalogue_json(platform.preorder_options(project))

    @app.post("/api/v1/projects/{project}/preorders", status_code=201)
    def preorder_create(
        project: str,
        body: PreorderIn,
        person: Annotated[Person, Depends(api_person)],
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
    ) -> Response:
        o = platform.preorder_create(project, idempotency_key, person=person, **body.model_dump())
        return JSONResponse(order_json(o), status_code=200 if o.replayed else 201)

    @app.get("/api/v1/projects/{project}/preorders/{order_id}")
    def preorder_get(project: str, order_id: str, person: Annotated[Person, Depends(api_person)]) -> dict[str, Any]:
        return order_json(platform.preorder(project, order_id, person=person))

    @app.post("/api/v1/projects/{project}/preorders/{order_id}/deposit")
    def preorder_pay(project: str, order_id: str, person: Annotated[Person, Depends(api_person)]) -> dict[str, Any]:
        return order_json(platform.preorder_pay(project, order_id, actor="api", person=person))

    @app.post("/api/v1/projects/{project}/preorders/{order_id}/confirm")
    def preorder_confirm(
        project: str, order_id: str, user: AdminOnly, body: StaffTransitionIn | None = None
    ) -> dict[str, Any]:
        """Confirm a paid pre-order for production (staff with the admin role; the audit names them)."""
        note = body.note if body else ""
        return order_json(platform.preorder_confirm(project, order_id, staff_actor(user), note))

    @app.post("/api/v1/projects/{project}/preorders/{order_id}/deliver")
    def preorder_deliver(
        project: str, order_id: str, user: AdminOnly, body: StaffTransitionIn | None = None
    ) -> dict[str, Any]:
        """Mark a confirmed pre-order delivered (staff with the admin role; the audit names them)."""
        note = body.note if body else ""
        return order_json(platform.preorder_deliver(project, order_id, staff_actor(user), note))

    @app.post("/api/v1/projects/{project}/preorders/{order_id}/cancel")
    def preorder_cancel(
        project: str, order_id: str, person: Annotated[Person, Depends(api_person)], body: TransitionIn | None = None
    ) -> dict[str, Any]:
        body = body or TransitionIn(actor="api")
        return order_json(platform.preorder_cancel(project, order_id, body.actor, body.note, person=person))

    # ------------------------------------------------------------------ pages
    def lang_of(request: Request) -> str:
        return pick_lang(
            request.query_params.get("lang"), request.headers.get("accept-language"), platform.settings.default_lang
        )

    def money(lang: str, amount: float) -> str:
        text = f"{amount:,.2f}".removesuffix(".00")
        return translator(lang)("money", amount=text)

    def options_context(project: str, lang: str) -> dict[str, Any]:
        domain = platform.domain_project(project)
        names = {a.name for a in domain.attributes}
        catalogue = platform.preorder_options(project)
        t = translator(lang)
        colour_attr = "colour" if "colour" in names else "color" if "color" in names else None
        battery_attr = next((a.name for a in domain.attributes if a.role == "battery"), None)
        ownership_attr = next((a for a in domain.attributes if a.role == "ownership"), None)
        plan_levels = {lv.rent_plan: lv.name for lv in ownership_attr.levels} if ownership_attr else {}

        def battery_label(name: str) -> str:
            return level_label(domain, battery_attr, name, lang) if battery_attr else name

        def plan_label(rent_plan: str | None, fee: float | None) -> str:
            if rent_plan is None:
                return t("plan_buy")
            level = plan_levels.get(rent_plan)
            text = level_label(domain, ownership_attr.name, level, lang) if ownership_attr and level else rent_plan
            return t("plan_rent", plan=text, fee=money(lang, fee or 0))

        batteries: dict[str, str] = {}
        plans: dict[str, str] = {}
        for v in catalogue.variants:
            for b in v.batteries:
                batteries.setdefault(b.name, battery_label(b.name))
                for p in b.plans:
                    value = "buy" if p.ownership == "buy" else f"rent:{p.rent_plan}"
                    plans.setdefault(value, plan_label(p.rent_plan, p.monthly_fee))
        return {
            "catalogue": catalogue,
            "variants": [(v.name, f"{v.name} · {money(lang, v.price)}") for v in catalogue.variants],
            "colours": [
                (c, level_label(domain, colour_attr, c, lang) if colour_attr else label)
                for c, label in catalogue.colours
            ],
            "batteries": list(batteries.items()),
            "plans": list(plans.items()),
            "deposit_text": money(lang, catalogue.deposit),
        }

    def form_page(request: Request, project: str, status: int = 200, **extra: Any) -> HTMLResponse:
        lang = lang_of(request)
        context = {
            "project": platform.project(project),
            "key": uuid.uuid4().hex,
            "values": {},
            "error": None,
            "error_field": None,
            "switch_path": f"/preorder/{project}",
            **options_context(project, lang),
            **extra,
        }
        return page(request, "preorder_form.html", status=status, lang=lang, **context)

    def order_page(
        request: Request, project: str, order_id: str, person: Person, status: int = 200, **extra: Any
    ) -> HTMLResponse:
        lang = lang_of(request)
        order = platform.preorder(project, order_id, person=person)
        context = {
            "project": platform.project(project),
            "order": order,
            "error": None,
            "money": lambda amount: money(lang, amount),
            "labels": options_context(project, lang),
            **extra,
        }
        return page(request, "preorder_order.html", status=status, lang=lang, **context)

    def to_order(project: str, order_id: str, lang: str) -> RedirectResponse:
        return RedirectResponse(f"/preorder/{project}/orders/{order_id}?lang={lang}", status_code=303)

    @app.get("/preorder/{project}", response_class=HTMLResponse, include_in_schema=False)
    def preorder_form(
        request: Request, project: str, person: Annotated[Person, Depends(page_person)]
    ) -> HTMLResponse:
        return form_page(request, project)

    @app.post("/preorder/{project}", include_in_schema=False)
    def preorder_submit(
        request: Request,
        project: str,
        person: Annotated[Person, Depends(page_person)],
        variant: Annotated[str, Form(max_length=100)] = "",
        colour: Annotated[str, Form(max_length=50)] = "",
        battery: Annotated[str, Form(max_length=50)] = "",
        plan: Annotated[str, Form(max_length=60)] = "",
        key: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        platform.project(project)
        values = {"variant": variant, "colour": colour, "battery": battery, "plan": plan}
        ownership, _, rent_plan = plan.partition(":")
        try:
            order = platform.preorder_create(
                project, key or None, variant=variant, colour=colour, battery=battery, ownership=ownership,
                rent_plan=rent_plan or None, person=person,
            )
        except PlatformError as exc:
            if exc.status >= 500 or exc.field is None:
                raise
            field = "plan" if exc.field in ("ownership", "rent_plan") else exc.field
            keep = key if exc.field not in ("Idempotency-Key",) else uuid.uuid4().hex
            return form_page(
                request, project, status=exc.status, values=values, error=exc.message, error_field=field, key=keep
            )
        return to_order(project, order.id, lang_of(request))

    @app.get("/preorder/{project}/orders/{order_id}", response_class=HTMLResponse, include_in_schema=False)
    def preorder_order(
        request: Request, project: str, order_id: str, person: Annotated[Person, Depends(page_person)]
    ) -> HTMLResponse:
        return order_page(request, project, order_id, person)

    @app.post("/preorder/{project}/orders/{order_id}/pay", include_in_schema=False)
    def preorder_pay_form(
        request: Request, project: str, order_id: str, person: Annotated[Person, Depends(page_person)]
    ) -> Response:
        try:
            platform.preorder_pay(project, order_id, actor="customer", person=person)
        except PaymentError as exc:
            message = translator(lang_of(request))("payment_failed", message=exc.message)
            return order_page(request, project, order_id, person, status=exc.status, error=message)
        return to_order(project, order_id, lang_of(request))

    @app.post("/preorder/{project}/orders/{order_id}/cancel", include_in_schema=False)
    def preorder_cancel_form(
        request: Request, project: str, order_id: str, person: Annotated[Person, Depends(page_person)]
    ) -> Response:
        platform.preorder_cancel(project, order_id, actor="customer", person=person)
        return to_order(project, order_id, lang_of(request))
