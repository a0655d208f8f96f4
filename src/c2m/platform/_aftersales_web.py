"""After-sales pages (``/service/{project}``) and JSON API (``/api/v1/projects/{project}/service/...``).

Choosing the service, city, store and day are plain GET forms (anyone may look); booking,
the confirmation, cancelling and moving an appointment need the signed-in person.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from ._aftersales import SERVICE_KINDS, AppointmentView, ServiceSlotView, check_kind
from ._i18n import pick_lang, translator
from ._identity import Person
from ._identity_web import ApiPerson, PagePerson, cookie_person
from ._person_i18n import PERSON_MESSAGES
from ._service import Platform


class AppointmentIn(BaseModel):
    slot_id: int = Field(ge=1, description="a service slot of GET .../service/slots")
    kind: str = Field(min_length=1, max_length=20, description="maintenance or battery_service")
    preorder_id: str | None = Field(default=None, max_length=32, description="your delivered car's pre-order")


class ServiceRebookIn(BaseModel):
    slot_id: int = Field(ge=1)


def service_slot_json(s: ServiceSlotView) -> dict[str, Any]:
    return {
        "id": s.id, "store": s.store, "city": s.city, "start": s.start.isoformat(timespec="minutes"),
        "minutes": s.minutes, "capacity": s.capacity, "booked": s.booked, "remaining": s.remaining,
    }


def appointment_json(a: AppointmentView) -> dict[str, Any]:
    return {
        "id": a.id, "project": a.project, "kind": a.kind, "status": a.status, "slot": service_slot_json(a.slot),
        "preorder_id": a.preorder_id, "created_at": a.created_at.isoformat(), "replaced_by": a.replaced_by,
    }


def add_aftersales_routes(app: FastAPI, platform: Platform, page: Callable[..., HTMLResponse]) -> None:
    """Register the after-sales JSON API and pages on ``app``."""
    api = "/api/v1/projects/{project}/service"

    # ------------------------------------------------------------------ JSON API
    @app.get(f"{api}/kinds")
    def service_kinds(project: str) -> list[dict[str, str]]:
        platform.project(project)
        return [
            {"kind": k, "name": PERSON_MESSAGES[f"kind_{k}"]["en"], "name_zh": PERSON_MESSAGES[f"kind_{k}"]["zh"]}
            for k in SERVICE_KINDS
        ]

    @app.get(f"{api}/slots")
    def service_slots(
        project: str, store: Annotated[str, Query(min_length=1)], day: date | None = None
    ) -> list[dict[str, Any]]:
        return [service_slot_json(s) for s in platform.service_slots(project, store, day)]

    @app.post(f"{api}/appointments", status_code=201)
    def service_book(project: str, body: AppointmentIn, person: ApiPerson) -> dict[str, Any]:
        return appointment_json(platform.service_book(project, body.slot_id, body.kind, person, body.preorder_id))

    @app.get(f"{api}/appointments/{{appointment_id}}")
    def service_appointment(project: str, appointment_id: str, person: ApiPerson) -> dict[str, Any]:
        return appointment_json(platform.service_appointment(project, appointment_id, person))

    @app.post(f"{api}/appointments/{{appointment_id}}/cancel")
    def service_cancel(project: str, appointment_id: str, person: ApiPerson) -> dict[str, Any]:
        return appointment_json(platform.service_cancel(project, appointment_id, person))

    @app.post(f"{api}/appointments/{{appointment_id}}/rebook", status_code=201)
    def service_rebook(project: str, appointment_id: str, body: ServiceRebookIn, person: ApiPerson) -> dict[str, Any]:
        return appointment_json(platform.service_rebook(project, appointment_id, body.slot_id, person))

    # ------------------------------------------------------------------ pages
    def lang_of(request: Request) -> str:
        return pick_lang(request.query_params.get("lang"), request.headers.get("accept-language"),
                         platform.settings.default_lang)

    def cars(person: Person | None, project: str) -> list[tuple[str, str]]:
        """(pre-order id, label) of the person's delivered cars in ``project``."""
        if person is None:
            return []
        return [(o.id, f"{o.variant} · {o.colour} · {o.id[:8]}") for o in platform.service_cars(project, person)]

    @app.get("/service/{project}", response_class=HTMLResponse, include_in_schema=False)
    def service_page(
        request: Request,
        project: str,
        kind: str | None = None,
        city: str | None = None,
        store: str | None = None,
        day: date | None = None,
        rebook: Annotated[str | None, Query(max_length=32)] = None,
    ) -> HTMLResponse:
        p = platform.project(project)
        person = cookie_person(request)
        kind = check_kind(kind) if kind else None
        context: dict[str, Any] = {
            "project": p, "kind": kind, "kinds": SERVICE_KINDS, "city": city, "store": None, "day": day,
            "rebook": rebook, "cities": platform.cities(project), "cars": cars(person, project),
        }
        if rebook and person is not None:
            context["kind"] = platform.service_appointment(project, rebook, person).kind
        if city:
            context["stores"] = platform.stores(project, city)
        if city and store:
            context["store"] = platform.store(project, store)
            context["days"] = platform.service_days(project, store)
        if city and store and day:
            context["slots"] = platform.service_slots(project, store, day)
        return page(request, "service.html", **context)

    @app.post("/service/{project}", include_in_schema=False)
    def service_submit(
        request: Request,
        project: str,
        person: PagePerson,
        slot_id: Annotated[int, Form(ge=1)],
        kind: Annotated[str, Form(max_length=20)] = "",
        preorder_id: Annotated[str, Form(max_length=32)] = "",
        rebook: Annotated[str, Form(max_length=32)] = "",
    ) -> Response:
        if rebook:
            a = platform.service_rebook(project, rebook, slot_id, person)
        else:
            a = platform.service_book(project, slot_id, kind, person, preorder_id or None)
        return RedirectResponse(f"/service/{project}/appointments/{a.id}?lang={lang_of(request)}", status_code=303)

    @app.get("/service/{project}/appointments/{appointment_id}", response_class=HTMLResponse,
             include_in_schema=False)
    def service_confirmation(
        request: Request, project: str, appointment_id: str, person: PagePerson
    ) -> HTMLResponse:
        a = platform.service_appointment(project, appointment_id, person)
        t = translator(lang_of(request))
        return page(request, "service_confirm.html", project=platform.project(project), appointment=a,
                    kind_name=t(f"kind_{a.kind}"))

    @app.post("/service/{project}/appointments/{appointment_id}/cancel", include_in_schema=False)
    def service_cancel_form(
        request: Request, project: str, appointment_id: str, person: PagePerson
    ) -> Response:
        platform.service_cancel(project, appointment_id, person)
        return RedirectResponse(
            f"/service/{project}/appointments/{appointment_id}?lang={lang_of(request)}", status_code=303
        )
