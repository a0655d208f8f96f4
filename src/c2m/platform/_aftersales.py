"""After-sales: maintenance and battery-service appointments in the service bays of a store.

Service slots (``service_slot``) are seeded like the test-drive slots, ``service_minutes`` long
with ``service_capacity`` bays each. A bay is taken with one conditional
``UPDATE service_slot SET booked = booked + 1 WHERE id = :id AND booked < capacity`` (and a CHECK
constraint), so no interleaving books more bays than there are; a person has at most one active
appointment per project and kind (a partial unique index). An appointment may name the person's
delivered pre-order: the car to service.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import CursorResult, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ._db import read_session, write_session
from ._errors import ConflictError, InvalidError, NotFoundError
from ._identity import Person
from ._models import PreorderRow, ProjectRow, ServiceAppointmentRow, ServiceSlotRow, StoreRow, utcnow
from ._settings import Settings

SERVICE_KINDS = ("maintenance", "battery_service")
SERVICEABLE_STATES = ("delivered",)


@dataclass(frozen=True)
class ServiceSlotView:
    id: int
    store: str
    city: str
    start: datetime
    minutes: int
    capacity: int
    booked: int

    @property
    def remaining(self) -> int:
        return self.capacity - self.booked


@dataclass(frozen=True)
class AppointmentView:
    id: str
    project: str
    kind: str
    status: str
    slot: ServiceSlotView
    preorder_id: str | None
    created_at: datetime
    replaced_by: str | None = None


def service_starts(day: date, settings: Settings) -> list[datetime]:
    """Start times of one day's service slots: from ``slot_day_start`` while the slot ends by ``slot_day_end``."""
    step = timedelta(minutes=settings.service_minutes)
    t = datetime(day.year, day.month, day.day, settings.slot_day_start)
    end = datetime(day.year, day.month, day.day) + timedelta(hours=settings.slot_day_end)
    starts = []
    while t + step <= end:
        starts.append(t)
        t += step
    return starts


def seed_service_slots(session: Session, stores: Iterable[StoreRow], settings: Settings, today: date) -> None:
    """Insert the missing service slots of ``stores`` for the coming ``slot_days_ahead`` days."""
    stores = list(stores)
    starts = [t for k in range(settings.slot_days_ahead) for t in service_starts(today + timedelta(days=k), settings)]
    if not starts or not stores:
        return
    rows = session.execute(
        select(ServiceSlotRow.store_id, ServiceSlotRow.start).where(
            ServiceSlotRow.store_id.in_([s.id for s in stores]),
            ServiceSlotRow.start >= starts[0],
            ServiceSlotRow.start <= starts[-1],
        )
    )
    existing = {(store_id, start) for store_id, start in rows}
    missing = [
        {"store_id": s.id, "start": t, "minutes": settings.service_minutes, "capacity": settings.service_capacity,
         "booked": 0}
        for s in stores
        for t in starts
        if (s.id, t) not in existing
    ]
    if missing:
        session.execute(insert(ServiceSlotRow), missing)


def _rowcount(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


def _view(slot: ServiceSlotRow, store: StoreRow) -> ServiceSlotView:
    return ServiceSlotView(slot.id, store.code, store.city, slot.start, slot.minutes, slot.capacity, slot.booked)


def check_kind(kind: str) -> str:
    if kind not in SERVICE_KINDS:
        raise InvalidError(f"kind {kind!r} is not a service; choose one of: {', '.join(SERVICE_KINDS)}", field="kind")
    return kind


class AftersalesService:
    """After-sales appointments (mixed into `Platform`): ``service_*`` methods."""

    engine: Engine
    settings: Settings

    def now(self) -> datetime:  # pragma: no cover - Platform's
        raise NotImplementedError

    def _project(self, session: Session, name: str) -> ProjectRow:  # pragma: no cover - Platform's
        raise NotImplementedError

    def _store(self, session: Session, project: ProjectRow, code: str) -> StoreRow:  # pragma: no cover - Platform's
        raise NotImplementedError

    def _store_row(self, session: Session, store_id: int) -> StoreRow | None:  # pragma: no cover - Platform's
        raise NotImplementedError

    def _store_of(self, session: Session, store_id: int) -> StoreRow:
        store = self._store_row(session, store_id)
        assert store is not None  # a slot's store is a foreign key
        return store

    # ------------------------------------------------------------------ reading
    def service_slots(self, project: str, store: str, day: date | None = None) -> list[ServiceSlotView]:
        """Future service slots of ``store`` (on ``day`` if given), by start time."""
        with read_session(self.engine) as session:
            s = self._store(session, self._project(session, project), store)
            query = select(ServiceSlotRow).where(ServiceSlotRow.store_id == s.id, ServiceSlotRow.start > self.now())
            if day is not None:
                midnight = datetime(day.year, day.month, day.day)
                next_day = midnight + timedelta(days=1)
                query = query.where(ServiceSlotRow.start >= midnight, ServiceSlotRow.start < next_day)
            return [_view(slot, s) for slot in session.scalars(query.order_by(ServiceSlotRow.start))]

    def service_days(self, project: str, store: str) -> list[date]:
        """Days on which ``store`` has a future service slot with a free bay."""
        return sorted({s.start.date() for s in self.service_slots(project, store) if s.remaining > 0})

    def service_slot(self, slot_id: int) -> ServiceSlotView:
        with read_session(self.engine) as session:
            row = session.get(ServiceSlotRow, slot_id)
            if row is None:
                raise NotFoundError(f"unknown service slot {slot_id}", field="slot_id")
            return _view(row, self._store_of(session, row.store_id))

    def service_appointment(self, project: str, appointment_id: str, person: Person | None = None) -> AppointmentView:
        """An appointment; with ``person``, only theirs (404 otherwise)."""
        with read_session(self.engine) as session:
            p = self._project(session, project)
            return self._appointment_view(session, p, self._appointment_row(session, p, appointment_id, person))

    def service_appointments(self, person: Person) -> list[AppointmentView]:
        """Every appointment of ``person``, in every project, oldest first."""
        with read_session(self.engine) as session:
            rows = session.scalars(
                select(ServiceAppointmentRow)
                .where(ServiceAppointmentRow.person_hash == person.hash)
                .order_by(ServiceAppointmentRow.created_at)
            )
            return [self._appointment_view(session, session.get_one(ProjectRow, r.project_id), r) for r in rows]

    def service_cars(self, project: str, person: Person) -> list[PreorderRow]:
        """The person's delivered cars (pre-orders) in ``project``, oldest first: what can be serviced."""
        with read_session(self.engine) as session:
            p = self._project(session, project)
            return list(session.scalars(
                select(PreorderRow)
                .where(PreorderRow.project_id == p.id, PreorderRow.person_hash == person.hash,
                       PreorderRow.state.in_(SERVICEABLE_STATES))
                .order_by(PreorderRow.created_at)
            ))

    def _appointment_row(
        self, session: Session, project: ProjectRow, appointment_id: str, person: Person | None
    ) -> ServiceAppointmentRow:
        row = session.get(ServiceAppointmentRow, appointment_id, populate_existing=True)
        if row is None or row.project_id != project.id or (person is not None and row.person_hash != person.hash):
            raise NotFoundError(
                f"unknown service appointment {appointment_id!r} in project {project.name!r}", field="appointment"
            )
        return row

    def _appointment_view(self, session: Session, project: ProjectRow, row: ServiceAppointmentRow) -> AppointmentView:
        slot = session.get_one(ServiceSlotRow, row.service_slot_id, populate_existing=True)
        return AppointmentView(
            row.id, project.name, row.kind, row.status, _view(slot, self._store_of(session, slot.store_id)),
            row.preorder_id, row.created_at, row.replaced_by,
        )

    # ------------------------------------------------------------------ writing
    def _take_bay(self, session: Session, project: ProjectRow, slot_id: int) -> None:
        """Increment the service slot's ``booked`` if a bay is free, else raise (nothing changed)."""
        now = self.now()
        taken = _rowcount(
            session.execute(
                update(ServiceSlotRow)
                .where(ServiceSlotRow.id == slot_id, ServiceSlotRow.booked < ServiceSlotRow.capacity,
                       ServiceSlotRow.start > now)
                .values(booked=ServiceSlotRow.booked + 1)
                .execution_options(synchronize_session=False)
            )
        )
        slot = session.get(ServiceSlotRow, slot_id, populate_existing=True)
        store = None if slot is None else self._store_row(session, slot.store_id)
        if slot is None or store is None or store.project_id != project.id:
            raise NotFoundError(f"unknown service slot {slot_id} in project {project.name!r}", field="slot_id")
        if taken == 1:
            return
        if slot.start <= now:
            raise ConflictError(
                f"service slot {slot_id} at {store.code} started at {slot.start:%Y-%m-%d %H:%M}", code="slot_past"
            )
        raise ConflictError(
            f"service slot {slot_id} at {store.code} on {slot.start:%Y-%m-%d %H:%M} is full ({slot.capacity} of "
            f"{slot.capacity} bays booked); pick another slot",
            code="slot_full",
        )

    def _free_bay(self, session: Session, slot_id: int) -> None:
        freed = _rowcount(
            session.execute(
                update(ServiceSlotRow)
                .where(ServiceSlotRow.id == slot_id, ServiceSlotRow.booked > 0)
                .values(booked=ServiceSlotRow.booked - 1)
                .execution_options(synchronize_session=False)
            )
        )
        if freed != 1:  # an active appointment always holds a bay: this is corruption, not a user error
            raise RuntimeError(f"service slot {slot_id} has no booked bay to free")

    def _check_car(self, session: Session, project: ProjectRow, person: str, preorder_id: str | None) -> None:
        """The linked pre-order must be the person's, in this project, and delivered."""
        if preorder_id is None:
            return
        order = session.get(PreorderRow, preorder_id)
        if order is None or order.project_id != project.id or order.person_hash != person:
            raise InvalidError(f"you have no pre-order {preorder_id!r} in project {project.name!r}",
                               field="preorder_id")
        if order.state not in SERVICEABLE_STATES:
            raise InvalidError(
                f"pre-order {preorder_id} is {order.state!r}: only a delivered car can be serviced",
                field="preorder_id",
            )

    def _insert_appointment(
        self, session: Session, project: ProjectRow, slot_id: int, kind: str, person: str, preorder_id: str | None
    ) -> ServiceAppointmentRow:
        name = project.name  # read before a failed flush expires the session's objects
        row = ServiceAppointmentRow(
            id=uuid.uuid4().hex, project_id=project.id, service_slot_id=slot_id, person_hash=person, kind=kind,
            preorder_id=preorder_id, status="booked",
        )
        session.add(row)
        try:
            session.flush()
        except IntegrityError as exc:
            raise ConflictError(
                f"you already have an active {kind.replace('_', ' ')} appointment in project {name!r}; "
                "cancel or rebook it instead",
                code="already_booked",
            ) from exc
        return row

    def service_book(
        self, project: str, slot_id: int, kind: str, person: Person, preorder_id: str | None = None
    ) -> AppointmentView:
        """Book a bay of service slot ``slot_id`` for ``person``; 409 when full, past or already booked."""
        check_kind(kind)
        with write_session(self.engine) as session:
            p = self._project(session, project)
            self._check_car(session, p, person.hash, preorder_id or None)
            self._take_bay(session, p, slot_id)
            row = self._insert_appointment(session, p, slot_id, kind, person.hash, preorder_id or None)
            view = self._appointment_view(session, p, row)
        return view

    def _cancel_appointment(
        self, session: Session, project: ProjectRow, appointment_id: str, person: Person | None
    ) -> ServiceAppointmentRow:
        row = self._appointment_row(session, project, appointment_id, person)
        cancelled = _rowcount(
            session.execute(
                update(ServiceAppointmentRow)
                .where(ServiceAppointmentRow.id == appointment_id, ServiceAppointmentRow.status == "booked")
                .values(status="cancelled", cancelled_at=utcnow())
                .execution_options(synchronize_session=False)
            )
        )
        if cancelled != 1:
            raise ConflictError(f"service appointment {appointment_id!r} is already cancelled",
                                code="already_cancelled")
        self._free_bay(session, row.service_slot_id)
        session.refresh(row)
        return row

    def service_cancel(self, project: str, appointment_id: str, person: Person | None = None) -> AppointmentView:
        """Cancel an appointment (``person``'s, if given) and free its bay."""
        with write_session(self.engine) as session:
            p = self._project(session, project)
            row = self._cancel_appointment(session, p, appointment_id, person)
            view = self._appointment_view(session, p, row)
        return view

    def service_rebook(
        self, project: str, appointment_id: str, slot_id: int, person: Person | None = None
    ) -> AppointmentView:
        """Move an appointment to ``slot_id`` in one transaction (same kind and car); the old bay is freed only
        if the new one is taken."""
        with write_session(self.engine) as session:
            p = self._project(session, project)
            old = self._appointment_row(session, p, appointment_id, person)
            if old.service_slot_id == slot_id and old.status == "booked":
                raise ConflictError(f"appointment {appointment_id!r} is already in slot {slot_id}", code="same_slot")
            old = self._cancel_appointment(session, p, appointment_id, person)
            self._take_bay(session, p, slot_id)
            new = self._insert_appointment(session, p, slot_id, old.kind, old.person_hash, old.preorder_id)
            old.replaced_by = new.id
            session.flush()
            view = self._appointment_view(session, p, new)
        return view
