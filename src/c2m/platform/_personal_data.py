"""A person's data on request: export everything keyed by them, or erase the link to them.

Erasure signs the person out everywhere (sessions, pending code, dev outbox), cancels their
pre-orders that are not delivered (paid deposits are refunded), then in one transaction cancels
their active test drives and service appointments (freeing the seats), and replaces their
``person_hash`` in every row by a random tombstone: counts, seats and accounting stay as they
were, but nothing leads back to the person. It repeats (with a new tombstone) if a request that
was already under way wrote a new row meanwhile.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import CursorResult, Engine, and_, delete, func, select, update
from sqlalchemy.orm import Session

from ._db import read_session, write_session
from ._identity import Person, forget_identity
from ._models import (
    BenefitClaimRow,
    BenefitRow,
    BookingRow,
    LoginCodeRow,
    PaymentRow,
    PersonSessionRow,
    PreorderKeyRow,
    PreorderRow,
    ProjectRow,
    ServiceAppointmentRow,
    ServiceSlotRow,
    SlotRow,
    StoreRow,
    utcnow,
)
from ._orders import CANCELLABLE

if TYPE_CHECKING:
    from ._aftersales import AppointmentView
    from ._preorders import OrderView

PERSON_TABLES = (BookingRow, BenefitClaimRow, PreorderRow, ServiceAppointmentRow)
TOMBSTONE_PREFIX = "erased:"
_MAX_PASSES = 3


@dataclass(frozen=True)
class Erasure:
    """What erasing a person did."""

    bookings_cancelled: int
    appointments_cancelled: int
    preorders_cancelled: int
    records_anonymised: int


def _jsonable(value: Any) -> Any:
    """Datetimes as ISO 8601, tuples as lists, recursively."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _rowcount(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


def tombstone() -> str:
    """A random stand-in for an erased person's hash (64 characters, like a hash; never a real one)."""
    return TOMBSTONE_PREFIX + secrets.token_hex(28)


class PersonalDataService:
    """Export and erasure of a person's data (mixed into `Platform`): ``personal_data_*`` methods."""

    engine: Engine

    if TYPE_CHECKING:

        def preorder(
            self, project: str, order_id: str, replayed: bool = False, person: Person | None = None
        ) -> OrderView: ...

        def preorder_cancel(
            self, project: str, order_id: str, actor: str = "customer", note: str = "", person: Person | None = None
        ) -> OrderView: ...

        def service_appointments(self, person: Person) -> list[AppointmentView]: ...

    # ------------------------------------------------------------------ export
    def personal_data(self, person: Person) -> dict[str, Any]:
        """Every record keyed by ``person``, as JSON-ready data: sessions, test drives, benefit claims,
        pre-orders (with their payments and audit events) and service appointments."""
        with read_session(self.engine) as session:
            sessions = session.execute(
                select(PersonSessionRow.created_at, PersonSessionRow.expires_at)
                .where(PersonSessionRow.person_hash == person.hash)
                .order_by(PersonSessionRow.created_at)
            ).all()
            code = session.get(LoginCodeRow, person.hash)
            bookings = session.execute(
                select(BookingRow, SlotRow, StoreRow, ProjectRow.name)
                .join(SlotRow, SlotRow.id == BookingRow.slot_id)
                .join(StoreRow, StoreRow.id == SlotRow.store_id)
                .join(ProjectRow, ProjectRow.id == BookingRow.project_id)
                .where(BookingRow.person_hash == person.hash)
                .order_by(BookingRow.created_at)
            ).all()
            claims = session.execute(
                select(BenefitClaimRow, BenefitRow, ProjectRow.name)
                .join(BenefitRow, BenefitRow.id == BenefitClaimRow.benefit_id)
                .join(ProjectRow, ProjectRow.id == BenefitClaimRow.project_id)
                .where(BenefitClaimRow.person_hash == person.hash)
                .order_by(BenefitClaimRow.created_at)
            ).all()
            orders = session.execute(
                select(PreorderRow.id, ProjectRow.name)
                .join(ProjectRow, ProjectRow.id == PreorderRow.project_id)
                .where(PreorderRow.person_hash == person.hash)
                .order_by(PreorderRow.created_at)
            ).all()
        preorders = []
        for order_id, project in orders:
            data = dataclasses.asdict(self.preorder(project, order_id))
            data.pop("replayed")
            preorders.append(data)
        return _jsonable({
            "person": {
                "person_hash": person.hash,
                "sessions": [{"created_at": c, "expires_at": e} for c, e in sessions],
                "pending_code": None if code is None or code.consumed_at is not None
                else {"sent_at": code.sent_at, "expires_at": code.expires_at, "attempts": code.attempts},
            },
            "bookings": [
                {"id": b.id, "project": project, "status": b.status, "store": store.code, "city": store.city,
                 "start": slot.start, "minutes": slot.minutes, "created_at": b.created_at,
                 "cancelled_at": b.cancelled_at, "replaced_by": b.replaced_by}
                for b, slot, store, project in bookings
            ],
            "benefit_claims": [
                {"id": c.id, "project": project, "benefit": b.code, "name": b.name, "name_zh": b.name_zh,
                 "created_at": c.created_at}
                for c, b, project in claims
            ],
            "preorders": preorders,
            "service_appointments": [dataclasses.asdict(a) for a in self.service_appointments(person)],
            "exported_at": utcnow(),
        })

    # ------------------------------------------------------------------ erasure
    def personal_data_erase(self, person: Person) -> Erasure:
        """Sign ``person`` out everywhere, cancel what is live, and unlink every record from them."""
        with write_session(self.engine) as session:
            forget_identity(session, person.hash)
        totals = [0, 0, 0, 0]
        for _ in range(_MAX_PASSES):
            orders = self._cancel_live_preorders(person)
            with write_session(self.engine) as session:
                bookings, appointments = self._cancel_active(session, person.hash)
                anonymised = self._replace_person(session, person.hash, tombstone())
                forget_identity(session, person.hash)
            for i, n in enumerate((bookings, appointments, orders, anonymised)):
                totals[i] += n
            if not self.personal_data_rows(person.hash):
                break
        return Erasure(*totals)

    def personal_data_rows(self, person_hash: str) -> int:
        """How many rows of any table still carry ``person_hash``."""
        with read_session(self.engine) as session:
            return sum(
                int(session.scalar(select(func.count()).select_from(m).where(m.person_hash == person_hash)) or 0)
                for m in (*PERSON_TABLES, PersonSessionRow, LoginCodeRow)
            )

    def _cancel_live_preorders(self, person: Person) -> int:
        """Cancel the person's undelivered pre-orders (refunding paid deposits, retrying failed refunds)."""
        refund_pending = and_(
            PreorderRow.state == "cancelled",
            select(PaymentRow.id).where(PaymentRow.order_id == PreorderRow.id, PaymentRow.kind == "charge").exists(),
            ~select(PaymentRow.id).where(PaymentRow.order_id == PreorderRow.id, PaymentRow.kind == "refund").exists(),
        )
        with read_session(self.engine) as session:
            live = session.execute(
                select(PreorderRow.id, ProjectRow.name)
                .join(ProjectRow, ProjectRow.id == PreorderRow.project_id)
                .where(PreorderRow.person_hash == person.hash, PreorderRow.state.in_(CANCELLABLE) | refund_pending)
            ).all()
        for order_id, project in live:
            self.preorder_cancel(project, order_id, actor="customer", note="personal data erased on request")
        return len(live)

    def _cancel_active(self, session: Session, person: str) -> tuple[int, int]:
        """Cancel the person's booked test drives and service appointments, freeing their seats and bays."""
        counts = []
        for row_model, slot_model, slot_column in (
            (BookingRow, SlotRow, BookingRow.slot_id),
            (ServiceAppointmentRow, ServiceSlotRow, ServiceAppointmentRow.service_slot_id),
        ):
            active = session.execute(
                select(row_model.id, slot_column).where(row_model.person_hash == person, row_model.status == "booked")
            ).all()
            n = 0
            for row_id, slot_id in active:
                cancelled = _rowcount(session.execute(
                    update(row_model).where(row_model.id == row_id, row_model.status == "booked")
                    .values(status="cancelled", cancelled_at=utcnow()).execution_options(synchronize_session=False)
                ))
                if cancelled:
                    freed = _rowcount(session.execute(
                        update(slot_model).where(slot_model.id == slot_id, slot_model.booked > 0)
                        .values(booked=slot_model.booked - 1).execution_options(synchronize_session=False)
                    ))
                    if freed != 1:
                        raise RuntimeError(f"{slot_model.__tablename__} {slot_id} has no booked seat to free")
                    n += 1
            counts.append(n)
        return counts[0], counts[1]

    def _replace_person(self, session: Session, person: str, stand_in: str) -> int:
        """Put ``stand_in`` in place of ``person`` everywhere; drop the pre-orders' idempotency fingerprints."""
        orders = select(PreorderRow.id).where(PreorderRow.person_hash == person)
        session.execute(delete(PreorderKeyRow).where(PreorderKeyRow.order_id.in_(orders)))
        return sum(
            _rowcount(session.execute(
                update(m).where(m.person_hash == person).values(person_hash=stand_in)
                .execution_options(synchronize_session=False)
            ))
            for m in PERSON_TABLES
        )
