"""Refundable pre-orders: the options on offer and their prices, orders, deposits and refunds.

The options come from the product line when the project file has a ``product_definition.json``
beside it (what ``c2m optimize`` and ``c2m demo`` write): one variant per line variant, at its
price, with its battery pack and the buy/rent plans its profile allows (the project's
prohibitions apply). Without one, every price level of the project's price attribute is a
variant, with every battery level and every buy/rent plan the pack offers. Colours are the
levels of the ``colour`` attribute. Amounts are stored in fen (1/100 yuan).

Idempotency: an order is created under a client's ``Idempotency-Key`` (unique in
``preorder_key`` with the request's fingerprint); deposits and refunds use keys derived from the
order id, at the provider and in ``payment`` (unique), so no retry charges or refunds twice.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from c2m.domain import Project, check_profile, is_prohibited, load_project
from c2m.errors import C2MError

from ._db import read_session, write_session
from ._errors import ConflictError, InvalidError, NotFoundError, PlatformError
from ._identity import Person
from ._models import OrderEventRow, PaymentRow, PreorderKeyRow, PreorderRow, ProjectRow
from ._orders import CANCELLABLE, STATES, check_transition, record_event, transition
from ._payments import PaymentProvider
from ._settings import Settings

DEFINITION_FILE = "product_definition.json"
_KEY = re.compile(r"^[\x21-\x7e]{1,100}$")
KEY_FIELD = "Idempotency-Key"


def to_fen(yuan: float) -> int:
    return round(yuan * 100)


@dataclass(frozen=True)
class PlanOption:
    """``buy``, or a battery rent plan with its monthly fee (yuan)."""

    ownership: str
    rent_plan: str | None
    monthly_fee: float | None


@dataclass(frozen=True)
class BatteryOption:
    name: str
    label: str
    plans: tuple[PlanOption, ...]

    def plan(self, ownership: str, rent_plan: str | None) -> PlanOption | None:
        return next((p for p in self.plans if (p.ownership, p.rent_plan) == (ownership, rent_plan)), None)


@dataclass(frozen=True)
class VariantOption:
    name: str
    label: str
    price: float
    batteries: tuple[BatteryOption, ...]

    def battery(self, name: str) -> BatteryOption | None:
        return next((b for b in self.batteries if b.name == name), None)


@dataclass(frozen=True)
class Catalogue:
    """What can be pre-ordered in a project; ``source`` is ``product_definition`` or ``attributes``."""

    project: str
    source: str
    currency: str
    deposit: float
    variants: tuple[VariantOption, ...]
    colours: tuple[tuple[str, str], ...]

    def variant(self, name: str) -> VariantOption | None:
        return next((v for v in self.variants if v.name == name), None)


@dataclass(frozen=True)
class Choice:
    variant: str
    colour: str
    battery: str
    ownership: str
    rent_plan: str | None
    price_fen: int
    deposit_fen: int
    monthly_fee_fen: int | None


@dataclass(frozen=True)
class EventView:
    from_state: str | None
    to_state: str
    at: datetime
    actor: str
    note: str


@dataclass(frozen=True)
class PaymentView:
    kind: str
    amount: float
    provider: str
    reference: str
    created_at: datetime


@dataclass(frozen=True)
class OrderView:
    id: str
    project: str
    state: str
    variant: str
    colour: str
    battery: str
    ownership: str
    rent_plan: str | None
    price: float
    deposit: float
    monthly_fee: float | None
    created_at: datetime
    updated_at: datetime
    events: tuple[EventView, ...]
    payments: tuple[PaymentView, ...]
    replayed: bool = False

    @property
    def deposit_paid(self) -> bool:
        return any(p.kind == "charge" for p in self.payments)

    @property
    def refunded(self) -> bool:
        return any(p.kind == "refund" for p in self.payments)


# ---------------------------------------------------------------------- the catalogue
def _plans(project: Project, battery_level: Any, profile: dict[str, Any] | None) -> tuple[PlanOption, ...]:
    ownership = project.attribute_by_role("ownership")
    if ownership is None:
        return (PlanOption("buy", None, None),)
    pack = None
    if battery_level is not None and battery_level.battery_pack is not None:
        pack = project.battery_pack(battery_level.battery_pack)
    plans: list[PlanOption] = []
    for level in ownership.levels:
        if profile is not None and is_prohibited(project, {**profile, ownership.name: level.name}):
            continue
        if level.ownership == "rent":
            offered = [] if pack is None else [p for p in pack.rent_plans if p.name == level.rent_plan]
            if offered:
                plans.append(PlanOption("rent", offered[0].name, offered[0].monthly_fee))
        elif PlanOption("buy", None, None) not in plans:
            plans.append(PlanOption("buy", None, None))
    return tuple(plans)


def _label(level: Any) -> str:
    return str(level.label or level.name)


def build_catalogue(project: Project, definition: dict[str, Any] | None, deposit: float) -> Catalogue:
    """The pre-order options of ``project``: from the product line ``definition`` if given, else its price levels."""
    colour = next((a for a in project.attributes if a.name in ("colour", "color")), None)
    colours = tuple((lv.name, _label(lv)) for lv in colour.levels) if colour else (("standard", "standard"),)
    battery = project.attribute_by_role("battery")
    variants: list[VariantOption] = []
    if definition is not None:
        for i, raw in enumerate(definition.get("variants") or []):
            where = f"{DEFINITION_FILE}: variants[{i}]"
            try:
                profile = check_profile(project, raw["profile"], where=f"{where}.profile")
                name, price = str(raw["name"]), float(raw["price"])
            except (KeyError, TypeError, ValueError, C2MError) as exc:
                raise InvalidError(f"{where} is not a valid variant: {exc}", field="product_definition") from exc
            levels = [battery.level(str(profile[battery.name]))] if battery else [None]
            options = tuple(
                BatteryOption(lv.name if lv else "standard", _label(lv) if lv else "standard",
                              _plans(project, lv, profile))
                for lv in levels
            )
            variants.append(VariantOption(name, name, price, options))
        source = "product_definition"
    else:
        price_attr = project.attribute_by_role("price")
        if price_attr is None:
            raise InvalidError(f"project {project.name!r} has no price attribute to take prices from", field="variant")
        batteries = battery.levels if battery else [None]
        options = tuple(
            BatteryOption(lv.name if lv else "standard", _label(lv) if lv else "standard", _plans(project, lv, None))
            for lv in batteries
        )
        for level in price_attr.levels:
            value = float(level.value or 0.0)
            variants.append(VariantOption(level.name, f"{value:,.0f} {project.product.currency}", value, options))
        source = "attributes"
    variants = [v for v in variants if v.price > 0]
    if not variants:
        raise InvalidError(f"project {project.name!r} offers nothing to pre-order (no priced variant)", field="variant")
    return Catalogue(project.name, source, project.product.currency, deposit, tuple(variants), colours)


def load_definition(project_file: Path, project: Project) -> dict[str, Any] | None:
    """The product line beside ``project_file`` (``product_definition.json``), if there is one for this project."""
    path = Path(project_file).with_name(DEFINITION_FILE)
    if not path.is_file():
        return None
    try:
        definition = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidError(f"{path}: cannot read the product line ({exc})", field="product_definition") from exc
    if not isinstance(definition, dict) or not isinstance(definition.get("variants"), list):
        raise InvalidError(f"{path}: expected an object with a 'variants' list", field="product_definition")
    if definition.get("project", project.name) != project.name:
        return None  # another project's line
    return definition


def validate_choice(
    catalogue: Catalogue, variant: str, colour: str, battery: str, ownership: str, rent_plan: str | None
) -> Choice:
    """The priced choice, or `InvalidError` naming the first field that is not on offer."""
    v = catalogue.variant(variant)
    if v is None:
        names = ", ".join(x.name for x in catalogue.variants)
        raise InvalidError(f"variant {variant!r} is not offered; choose one of: {names}", field="variant")
    colours = [c for c, _ in catalogue.colours]
    if colour not in colours:
        raise InvalidError(f"colour {colour!r} is not offered; choose one of: {', '.join(colours)}", field="colour")
    b = v.battery(battery)
    if b is None:
        names = ", ".join(x.name for x in v.batteries)
        raise InvalidError(
            f"battery {battery!r} is not offered with variant {variant!r}; choose one of: {names}", field="battery"
        )
    if ownership not in ("buy", "rent"):
        raise InvalidError(f"ownership must be 'buy' or 'rent', got {ownership!r}", field="ownership")
    rent_plan = rent_plan or None
    if ownership == "buy" and rent_plan is not None:
        raise InvalidError("a rent plan is only for a rented battery (ownership 'rent')", field="rent_plan")
    plan = b.plan(ownership, rent_plan)
    if plan is None:
        offered = [p.rent_plan or "buy" for p in b.plans]
        field = "ownership" if ownership == "buy" or not any(p.ownership == "rent" for p in b.plans) else "rent_plan"
        raise InvalidError(
            f"{ownership}{' plan ' + repr(rent_plan) if rent_plan else ''} is not offered for battery {battery!r} of "
            f"variant {variant!r}; offered: {', '.join(offered) or 'none'}",
            field=field,
        )
    price_fen = to_fen(v.price)
    return Choice(
        variant, colour, battery, ownership, plan.rent_plan, price_fen, min(to_fen(catalogue.deposit), price_fen),
        None if plan.monthly_fee is None else to_fen(plan.monthly_fee),
    )


def check_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise PlatformError(
            "the Idempotency-Key header is required: a unique string per pre-order, reused on every retry",
            code="idempotency_key_missing", field=KEY_FIELD,
        )
    if not _KEY.match(key):
        raise InvalidError(
            "the Idempotency-Key must be 1-100 printable ASCII characters without spaces", field=KEY_FIELD
        )
    return key


def _fingerprint(project: str, person: str, choice: Choice) -> str:
    body = {
        "project": project, "person": person, "variant": choice.variant, "colour": choice.colour,
        "battery": choice.battery, "ownership": choice.ownership, "rent_plan": choice.rent_plan,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _yuan(fen: int | None) -> float | None:
    return None if fen is None else fen / 100


class PreorderService:
    """Pre-order operations (mixed into `Platform`): ``preorder_*`` methods."""

    engine: Engine
    settings: Settings
    payments: PaymentProvider
    _catalogues: dict[str, Catalogue]

    def _project(self, session: Session, name: str) -> ProjectRow:  # pragma: no cover - Platform's
        raise NotImplementedError

    def domain_project(self, name: str) -> Project:  # pragma: no cover - SurveyService's
        raise NotImplementedError

    # ------------------------------------------------------------------ reading
    def preorder_options(self, project: str) -> Catalogue:
        """What ``project`` offers for pre-order, with prices (cached per project)."""
        if project in self._catalogues:
            return self._catalogues[project]
        domain = self.domain_project(project)
        definition = None
        for path in self.settings.projects:
            if Path(path).is_file() and load_project(Path(path)).name == project:
                definition = load_definition(Path(path), domain)
                break
        catalogue = build_catalogue(domain, definition, self.settings.preorder_deposit)
        self._catalogues[project] = catalogue
        return catalogue

    def _order_row(
        self, session: Session, project: ProjectRow, order_id: str, person: Person | None = None
    ) -> PreorderRow:
        row = session.get(PreorderRow, order_id, populate_existing=True)
        if row is None or row.project_id != project.id or (person is not None and row.person_hash != person.hash):
            raise NotFoundError(f"unknown pre-order {order_id!r} in project {project.name!r}", field="order")
        return row

    def _order_view(self, session: Session, project: ProjectRow, order_id: str, replayed: bool = False) -> OrderView:
        row = self._order_row(session, project, order_id)
        events = session.scalars(
            select(OrderEventRow).where(OrderEventRow.order_id == order_id).order_by(OrderEventRow.id)
        )
        payments = session.scalars(select(PaymentRow).where(PaymentRow.order_id == order_id).order_by(PaymentRow.id))
        return OrderView(
            row.id, project.name, row.state, row.variant, row.colour, row.battery, row.ownership, row.rent_plan,
            row.price_fen / 100, row.deposit_fen / 100, _yuan(row.monthly_fee_fen), row.created_at, row.updated_at,
            tuple(EventView(e.from_state, e.to_state, e.at, e.actor, e.note) for e in events),
            tuple(PaymentView(p.kind, p.amount_fen / 100, p.provider, p.reference, p.created_at) for p in payments),
            replayed,
        )

    def preorder(
        self, project: str, order_id: str, replayed: bool = False, person: Person | None = None
    ) -> OrderView:
        """A pre-order with its events and payments; with ``person``, only theirs (404 otherwise)."""
        with read_session(self.engine) as session:
            p = self._project(session, project)
            if person is not None:
                self._order_row(session, p, order_id, person)
            return self._order_view(session, p, order_id, replayed)

    def preorders(self, project: str, state: str | None = None, limit: int = 200) -> list[OrderView]:
        """The newest pre-orders of ``project`` (optionally in one ``state``), for staff; events left out."""
        if state is not None and state not in STATES:
            raise InvalidError(f"unknown state {state!r}; expected one of {', '.join(STATES)}", field="state")
        with read_session(self.engine) as session:
            p = self._project(session, project)
            query = select(PreorderRow).where(PreorderRow.project_id == p.id)
            if state is not None:
                query = query.where(PreorderRow.state == state)
            rows = session.scalars(query.order_by(PreorderRow.created_at.desc(), PreorderRow.id).limit(limit))
            return [
                OrderView(
                    r.id, p.name, r.state, r.variant, r.colour, r.battery, r.ownership, r.rent_plan,
                    r.price_fen / 100, r.deposit_fen / 100, _yuan(r.monthly_fee_fen), r.created_at, r.updated_at,
                    (), (),
                )
                for r in rows
            ]

    def _payment(self, order_id: str, kind: str) -> PaymentRow | None:
        with read_session(self.engine) as session:
            return session.scalar(select(PaymentRow).where(PaymentRow.order_id == order_id, PaymentRow.kind == kind))

    # ------------------------------------------------------------------ creating
    def _replay(self, project: str, key: str, fingerprint: str) -> str | None:
        with read_session(self.engine) as session:
            row = session.get(PreorderKeyRow, key)
            if row is None:
                return None
            if row.fingerprint != fingerprint:
                raise ConflictError(
                    f"Idempotency-Key {key!r} was already used for a different pre-order request; "
                    "use a new key for a new pre-order",
                    code="idempotency_key_reused", field=KEY_FIELD,
                )
            return row.order_id

    def preorder_create(
        self,
        project: str,
        key: str | None,
        *,
        variant: str,
        colour: str,
        battery: str,
        ownership: str,
        rent_plan: str | None,
        person: Person,
        actor: str = "customer",
    ) -> OrderView:
        """Reserve a configuration for ``person`` under ``key``; the same key and request again return the same
        order (``replayed=True``), the same key with another request is a `ConflictError` naming ``Idempotency-Key``."""
        key = check_key(key)
        choice = validate_choice(self.preorder_options(project), variant, colour, battery, ownership, rent_plan)
        fingerprint = _fingerprint(project, person.hash, choice)
        existing = self._replay(project, key, fingerprint)
        if existing is not None:
            return self.preorder(project, existing, replayed=True)
        order_id = uuid.uuid4().hex
        try:
            with write_session(self.engine) as session:
                p = self._project(session, project)
                session.add(
                    PreorderRow(
                        id=order_id, project_id=p.id, person_hash=person.hash, variant=choice.variant,
                        colour=choice.colour, battery=choice.battery, ownership=choice.ownership,
                        rent_plan=choice.rent_plan, monthly_fee_fen=choice.monthly_fee_fen, price_fen=choice.price_fen,
                        deposit_fen=choice.deposit_fen, state="reserved",
                    )
                )
                session.flush()
                record_event(session, order_id, None, "reserved", actor, "pre-order placed")
                session.add(PreorderKeyRow(key=key, order_id=order_id, fingerprint=fingerprint))
                session.flush()
        except IntegrityError:  # a concurrent request with this key won: return its order
            existing = self._replay(project, key, fingerprint)
            if existing is None:
                raise
            return self.preorder(project, existing, replayed=True)
        return self.preorder(project, order_id)

    # ------------------------------------------------------------------ transitions
    def preorder_pay(
        self, project: str, order_id: str, actor: str = "customer", person: Person | None = None
    ) -> OrderView:
        """Charge the deposit (idempotent: a paid order is returned as it is, never charged again).

        The provider is called with the key ``preorder:<id>:deposit``, so concurrent calls make one
        charge; a declined charge raises `PaymentError` (402) and leaves the order ``reserved``.
        """
        view = self.preorder(project, order_id, person=person)
        if view.deposit_paid:
            return self.preorder(project, order_id, replayed=True)
        check_transition(order_id, view.state, "deposit_paid")
        amount = to_fen(view.deposit)
        key = f"preorder:{order_id}:deposit"
        reference = self.payments.charge(amount, key)
        with write_session(self.engine) as session:
            p = self._project(session, project)
            won = transition(
                session, order_id, "reserved", "deposit_paid", actor, f"deposit of {view.deposit:.2f} charged"
            )
            if won:
                session.add(
                    PaymentRow(order_id=order_id, kind="charge", amount_fen=amount, provider=self.payments.name,
                               reference=reference, idempotency_key=key)
                )
                session.flush()
            current = self._order_view(session, p, order_id, replayed=not won)
        if won or current.deposit_paid:
            return current
        # cancelled between our check and the charge: give the money back, refuse
        self.payments.refund(reference, amount, f"preorder:{order_id}:deposit-void")
        check_transition(order_id, current.state, "deposit_paid")
        raise ConflictError(f"pre-order {order_id} changed meanwhile; reload it", code="state_changed", field="state")

    def _advance(self, project: str, order_id: str, to_state: str, actor: str, note: str) -> OrderView:
        with write_session(self.engine) as session:
            p = self._project(session, project)
            row = self._order_row(session, p, order_id)
            if not transition(session, order_id, row.state, to_state, actor, note):
                raise ConflictError(
                    f"pre-order {order_id} changed meanwhile (was {row.state!r}); reload it",
                    code="state_changed", field="state",
                )
            view = self._order_view(session, p, order_id)
        return view

    def preorder_confirm(self, project: str, order_id: str, actor: str = "staff", note: str = "") -> OrderView:
        """deposit_paid -> confirmed (the factory has a build slot for it)."""
        return self._advance(project, order_id, "confirmed", actor, note or "confirmed")

    def preorder_deliver(self, project: str, order_id: str, actor: str = "staff", note: str = "") -> OrderView:
        """confirmed -> delivered."""
        return self._advance(project, order_id, "delivered", actor, note or "delivered")

    def preorder_cancel(
        self, project: str, order_id: str, actor: str = "customer", note: str = "", person: Person | None = None
    ) -> OrderView:
        """Cancel, and refund a paid deposit (cancelled -> refunded).

        A cancelled order whose refund failed is refunded by cancelling it again (the refund key
        is derived from the order, so the provider refunds once whatever the retries).
        """
        with write_session(self.engine) as session:
            p = self._project(session, project)
            row = self._order_row(session, p, order_id, person)
            state = row.state
            note = note or "cancelled"
            if state in CANCELLABLE and not transition(session, order_id, state, "cancelled", actor, note):
                raise ConflictError(
                    f"pre-order {order_id} changed meanwhile (was {state!r}); reload it",
                    code="state_changed", field="state",
                )
        charge = self._payment(order_id, "charge")
        if state not in CANCELLABLE and (state != "cancelled" or charge is None):
            check_transition(order_id, state, "cancelled")  # raises: already cancelled, refunded or delivered
        if charge is not None and self._payment(order_id, "refund") is None:
            key = f"preorder:{order_id}:refund"
            reference = self.payments.refund(charge.reference, charge.amount_fen, key)
            with write_session(self.engine) as session:
                note = f"deposit of {charge.amount_fen / 100:.2f} refunded"
                if transition(session, order_id, "cancelled", "refunded", actor, note):
                    session.add(
                        PaymentRow(order_id=order_id, kind="refund", amount_fen=charge.amount_fen,
                                   provider=self.payments.name, reference=reference, idempotency_key=key)
                    )
        return self.preorder(project, order_id)
