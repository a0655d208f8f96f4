"""Booking and benefit services: conditional updates that can never oversell.

Every seat and every benefit is taken by one statement,
``UPDATE ... SET booked = booked + 1 WHERE id = :id AND booked < capacity``, whose row count
says whether it was granted. The database serialises concurrent updates of one row (row lock
on PostgreSQL, the write lock on SQLite), and re-checks the condition on the latest value, so
no interleaving can take more seats than there are; a CHECK constraint backs it up. Uniqueness
(one active booking, one benefit claim per person and project) is a unique index: the loser of
a race gets an IntegrityError and its whole transaction, increment included, is rolled back.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ._aftersales import AftersalesService
from ._db import read_session, write_session
from ._errors import ConflictError, NotFoundError
from ._identity import CodeSender, IdentityService, Person, make_code_sender
from ._models import BenefitClaimRow, BenefitRow, BookingRow, ProjectRow, SlotRow, StoreRow, utcnow
from ._payments import LocalPaymentProvider, PaymentProvider
from ._personal_data import PersonalDataService
from ._preorders import Catalogue, PreorderService
from ._settings import Settings
from ._survey import StoredDesign, SurveyService


@dataclass(frozen=True)
class SlotView:
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
class BookingView:
    id: str
    project: str
    status: str
    slot: SlotView
    created_at: datetime
    replaced_by: str | None = None


@dataclass(frozen=True)
class BenefitView:
    code: str
    name: str
    name_zh: str
    quota: int
    granted: int

    @property
    def remaining(self) -> int:
        return self.quota - self.granted


@dataclass(frozen=True)
class ClaimView:
    id: str
    project: str
    benefit: BenefitView
    created_at: datetime


# UPDATE ... RETURNING into the session: the returned values replace what the session held
_RETURNED_ROWS = {"populate_existing": True, "synchronize_session": False}


def _rowcount(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


def _slot_view(slot: SlotRow, store: StoreRow) -> SlotView:
    return SlotView(slot.id, store.code, store.city, slot.start, slot.minutes, slot.capacity, slot.booked)


def _benefit_view(b: BenefitRow) -> BenefitView:
    return BenefitView(b.code, b.name, b.name_zh, b.quota, b.granted)


def make_payment_provider(engine: Engine, settings: Settings) -> PaymentProvider:
    """The payment provider named in the settings (``local``: `LocalPaymentProvider` in this database)."""
    return LocalPaymentProvider(engine, decline=settings.payment_local_decline)


class Platform(SurveyService, PreorderService, IdentityService, AftersalesService, PersonalDataService):
    """The platform's operations on one database; thread-safe (one session per call).

    Bookings and benefits here, the consumer survey in `SurveyService` (``survey_*`` methods),
    pre-orders in `PreorderService` (``preorder_*`` methods) with deposits through ``payments``,
    one-time codes and sessions in `IdentityService` (``identity_*``, codes through ``code_sender``),
    after-sales appointments in `AftersalesService` (``service_*``), export and erasure of a
    person's data in `PersonalDataService` (``personal_data_*``).

    Creating a record takes the verified `Person`; reading or changing one takes an optional
    ``person`` that, when given, must own it (a 404 otherwise); None is staff or internal use.
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings | None = None,
        payments: PaymentProvider | None = None,
        code_sender: CodeSender | None = None,
    ) -> None:
        self.engine = engine
        self.settings = Settings() if settings is None else settings
        self._designs: dict[int, StoredDesign] = {}
        self._project_rows: dict[str, ProjectRow] = {}
        self._store_rows: dict[int, StoreRow] = {}
        self._design_lock = threading.Lock()
        self._domain_projects = None
        self._catalogues: dict[str, Catalogue] = {}
        self.payments = make_payment_provider(engine, self.settings) if payments is None else payments
        self.code_sender = make_code_sender(engine, self.settings) if code_sender is None else code_sender

    # ------------------------------------------------------------------ reading
    def now(self) -> datetime:
        """Store-local wall-clock time (naive, like the slots' start times)."""
        return datetime.now(ZoneInfo(self.settings.timezone)).replace(tzinfo=None)

    def _project(self, session: Session, name: str) -> ProjectRow:
        """The project row of ``name``: read once per process (projects are seeded, never changed while serving).

        The cached row belongs to no session; use its columns (``id``, ``name``, ...), not the instance, in queries.
        """
        cached = self._project_rows.get(name)
        if cached is not None:
            return cached
        row = session.scalar(select(ProjectRow).where(ProjectRow.name == name))
        if row is None:
            known = session.scalars(select(ProjectRow.name).order_by(ProjectRow.name)).all()
            raise NotFoundError(f"unknown project {name!r}; known projects: {', '.join(known) or 'none'}")
        detached = ProjectRow(
            id=row.id, name=row.name, product=row.product, description=row.description, created_at=row.created_at
        )
        self._project_rows[name] = detached
        return detached

    def _store_row(self, session: Session, store_id: int) -> StoreRow | None:
        """The store row of ``store_id``, read once per process (stores are seeded, never changed while serving)."""
        cached = self._store_rows.get(store_id)
        if cached is None:
            row = session.get(StoreRow, store_id)
            if row is None:
                return None
            cached = StoreRow(
                id=row.id, project_id=row.project_id, code=row.code, city=row.city, lat=row.lat, lon=row.lon,
                kind=row.kind,
            )
            self._store_rows[store_id] = cached
        return cached

    def projects(self) -> list[ProjectRow]:
        with read_session(self.engine) as session:
            return list(session.scalars(select(ProjectRow).order_by(ProjectRow.name)))

    def project(self, name: str) -> ProjectRow:
        if name in self._project_rows:
            return self._project_rows[name]
        with read_session(self.engine) as session:
            return self._project(session, name)

    def cities(self, project: str) -> list[tuple[str, int]]:
        """(city, number of stores), by city name."""
        with read_session(self.engine) as session:
            p = self._project(session, project)
            rows = session.execute(
                select(StoreRow.city, func.count())
                .where(StoreRow.project_id == p.id)
                .group_by(StoreRow.city)
                .order_by(StoreRow.city)
            )
            return [(city, int(n)) for city, n in rows]

    def stores(self, project: str, city: str | None = None) -> list[StoreRow]:
        with read_session(self.engine) as session:
            p = self._project(session, project)
            query = select(StoreRow).where(StoreRow.project_id == p.id)
            if city is not None:
                query = query.where(StoreRow.city == city)
            stores = list(session.scalars(query.order_by(StoreRow.code)))
            if city is not None and not stores:
                raise NotFoundError(f"no stores in city {city!r} for project {project!r}")
            return stores

    def _store(self, session: Session, project: ProjectRow, code: str) -> StoreRow:
        store = session.scalar(select(StoreRow).where(StoreRow.project_id == project.id, StoreRow.code == code))
        if store is None:
            raise NotFoundError(f"unknown store {code!r} in project {project.name!r}")
        return store

    def store(self, project: str, code: str) -> StoreRow:
        with read_session(self.engine) as session:
            return self._store(session, self._project(session, project), code)

    def days(self, project: str, store: str) -> list[date]:
        """Days on which ``store`` has future slots with a free seat."""
        return sorted({s.start.date() for s in self.slots(project, store) if s.remaining > 0})

    def slots(self, project: str, store: str, day: date | None = None) -> list[SlotView]:
        """Future slots of ``store`` (on ``day`` if given), by start time."""
        with read_session(self.engine) as session:
            s = self._store(session, self._project(session, project), store)
            query = select(SlotRow).where(SlotRow.store_id == s.id, SlotRow.start > self.now())
            if day is not None:
                midnight = datetime(day.year, day.month, day.day)
                query = query.where(SlotRow.start >= midnight, SlotRow.start < midnight + timedelta(days=1))
            return [_slot_view(slot, s) for slot in session.scalars(query.order_by(SlotRow.start))]

    def slot(self, slot_id: int) -> SlotView:
        with read_session(self.engine) as session:
            row = session.get(SlotRow, slot_id)
            if row is None:
                raise NotFoundError(f"unknown slot {slot_id}")
            store = self._store_row(session, row.store_id)
            assert store is not None
            return _slot_view(row, store)

    def booking(self, project: str, booking_id: str, person: Person | None = None) -> BookingView:
        """A booking; with ``person``, only theirs (404 otherwise)."""
        with read_session(self.engine) as session:
            return self._booking_view(session, self._project(session, project), booking_id, person)

    def _booking_view(
        self, session: Session, project: ProjectRow, booking_id: str, person: Person | None = None
    ) -> BookingView:
        row = session.get(BookingRow, booking_id)
        if row is None or row.project_id != project.id or (person is not None and row.person_hash != person.hash):
            raise NotFoundError(f"unknown booking {booking_id!r} in project {project.name!r}", field="booking")
        slot = session.get(SlotRow, row.slot_id)
        assert slot is not None
        return self._view_of(session, project, row, slot)

    def _view_of(self, session: Session, project: ProjectRow, row: BookingRow, slot: SlotRow) -> BookingView:
        store = self._store_row(session, slot.store_id)
        assert store is not None
        return BookingView(row.id, project.name, row.status, _slot_view(slot, store), row.created_at, row.replaced_by)

    def benefits(self, project: str) -> list[BenefitView]:
        with read_session(self.engine) as session:
            p = self._project(session, project)
            rows = session.scalars(select(BenefitRow).where(BenefitRow.project_id == p.id).order_by(BenefitRow.id))
            return [_benefit_view(b) for b in rows]

    def claims(self, project: str, person: Person) -> list[ClaimView]:
        """The benefits ``person`` holds in ``project`` (at most one)."""
        with read_session(self.engine) as session:
            p = self._project(session, project)
            rows = session.execute(
                select(BenefitClaimRow, BenefitRow)
                .join(BenefitRow, BenefitRow.id == BenefitClaimRow.benefit_id)
                .where(BenefitClaimRow.project_id == p.id, BenefitClaimRow.person_hash == person.hash)
                .order_by(BenefitClaimRow.created_at)
            ).all()
            return [ClaimView(c.id, p.name, _benefit_view(b), c.created_at) for c, b in rows]

    # ------------------------------------------------------------------ writing
    def _take_seat(self, session: Session, project: ProjectRow, slot_id: int) -> SlotRow:
        """Increment the slot's ``booked`` if a seat is free (the slot after it), else raise (nothing changed)."""
        now = self.now()
        taken = session.scalars(
            update(SlotRow)
            .where(SlotRow.id == slot_id, SlotRow.booked < SlotRow.capacity, SlotRow.start > now)
            .values(booked=SlotRow.booked + 1)
            .returning(SlotRow),
            execution_options=_RETURNED_ROWS,
        ).one_or_none()
        slot = taken if taken is not None else session.get(SlotRow, slot_id, populate_existing=True)
        store = None if slot is None else self._store_row(session, slot.store_id)
        if slot is None or store is None or store.project_id != project.id:
            raise NotFoundError(f"unknown slot {slot_id} in project {project.name!r}")
        if taken is not None:
            return taken
        if slot.start <= now:
            raise ConflictError(
                f"slot {slot_id} at {store.code} started at {slot.start:%Y-%m-%d %H:%M}", code="slot_past"
            )
        raise ConflictError(
            f"slot {slot_id} at {store.code} on {slot.start:%Y-%m-%d %H:%M} is full ({slot.capacity} of "
            f"{slot.capacity} seats booked); pick another slot",
            code="slot_full",
        )

    def _free_seat(self, session: Session, slot_id: int) -> SlotRow:
        freed = session.scalars(
            update(SlotRow)
            .where(SlotRow.id == slot_id, SlotRow.booked > 0)
            .values(booked=SlotRow.booked - 1)
            .returning(SlotRow),
            execution_options=_RETURNED_ROWS,
        ).one_or_none()
        if freed is None:  # a booked row always holds a seat: this is corruption, not a user error
            raise RuntimeError(f"slot {slot_id} has no booked seat to free")
        return freed

    def _insert_booking(self, session: Session, project: ProjectRow, slot_id: int, person: str) -> BookingRow:
        name = project.name  # read before a failed flush expires the session's objects
        row = BookingRow(
            id=uuid.uuid4().hex, project_id=project.id, slot_id=slot_id, person_hash=person, status="booked"
        )
        session.add(row)
        try:
            session.flush()
        except IntegrityError as exc:
            raise ConflictError(
                f"you already have an active test-drive booking in project {name!r}; cancel or rebook it instead",
                code="already_booked",
            ) from exc
        return row

    def book(self, project: str, slot_id: int, person: Person) -> BookingView:
        """Book a seat of ``slot_id`` for ``person``: `ConflictError` when full, past or already booked."""
        with write_session(self.engine) as session:
            p = self._project(session, project)
            slot = self._take_seat(session, p, slot_id)
            row = self._insert_booking(session, p, slot_id, person.hash)
            view = self._view_of(session, p, row, slot)
        return view

    def _cancel_row(
        self, session: Session, project: ProjectRow, booking_id: str, person: Person | None = None
    ) -> tuple[BookingRow, SlotRow]:
        """Cancel the booking and free its seat: the booking and its slot after it."""
        mine = [BookingRow.id == booking_id, BookingRow.project_id == project.id]
        if person is not None:
            mine.append(BookingRow.person_hash == person.hash)
        row = session.scalars(
            update(BookingRow)
            .where(*mine, BookingRow.status == "booked")
            .values(status="cancelled", cancelled_at=utcnow())
            .returning(BookingRow),
            execution_options=_RETURNED_ROWS,
        ).one_or_none()
        if row is None:
            if session.scalar(select(BookingRow.id).where(*mine)) is None:
                raise NotFoundError(f"unknown booking {booking_id!r} in project {project.name!r}", field="booking")
            raise ConflictError(f"booking {booking_id!r} is already cancelled", code="already_cancelled")
        return row, self._free_seat(session, row.slot_id)

    def cancel(self, project: str, booking_id: str, person: Person | None = None) -> BookingView:
        """Cancel a booking (``person``'s, if given) and free its seat."""
        with write_session(self.engine) as session:
            p = self._project(session, project)
            row, slot = self._cancel_row(session, p, booking_id, person)
            view = self._view_of(session, p, row, slot)
        return view

    def rebook(self, project: str, booking_id: str, slot_id: int, person: Person | None = None) -> BookingView:
        """Move a booking to ``slot_id`` in one transaction: the old seat is freed only if the new one is taken."""
        with write_session(self.engine) as session:
            p = self._project(session, project)
            old = session.get(BookingRow, booking_id)
            mine = old is not None and (person is None or old.person_hash == person.hash)
            if old is not None and mine and old.slot_id == slot_id and old.status == "booked":
                raise ConflictError(f"booking {booking_id!r} is already in slot {slot_id}", code="same_slot")
            old, _ = self._cancel_row(session, p, booking_id, person)
            slot = self._take_seat(session, p, slot_id)
            new = self._insert_booking(session, p, slot_id, old.person_hash)
            old.replaced_by = new.id
            session.flush()
            view = self._view_of(session, p, new, slot)
        return view

    def claim(self, project: str, benefit: str, person: Person) -> ClaimView:
        """Claim ``benefit`` for ``person``: `ConflictError` when the quota is exhausted or already claimed."""
        with write_session(self.engine) as session:
            p = self._project(session, project)
            granted = _rowcount(
                session.execute(
                    update(BenefitRow)
                    .where(
                        BenefitRow.project_id == p.id, BenefitRow.code == benefit, BenefitRow.granted < BenefitRow.quota
                    )
                    .values(granted=BenefitRow.granted + 1)
                    .execution_options(synchronize_session=False)
                )
            )
            row = session.scalar(
                select(BenefitRow)
                .where(BenefitRow.project_id == p.id, BenefitRow.code == benefit)
                .execution_options(populate_existing=True)
            )
            if row is None:
                raise NotFoundError(f"unknown benefit {benefit!r} in project {project!r}")
            if granted != 1:
                raise ConflictError(
                    f"benefit {benefit!r} is exhausted: all {row.quota} have been claimed", code="quota_exhausted"
                )
            claim = BenefitClaimRow(id=uuid.uuid4().hex, benefit_id=row.id, project_id=p.id, person_hash=person.hash)
            session.add(claim)
            try:
                session.flush()
            except IntegrityError as exc:
                raise ConflictError(
                    f"you have already claimed an early-purchase benefit in project {project!r}",
                    code="already_claimed",
                ) from exc
            view = ClaimView(claim.id, p.name, _benefit_view(row), claim.created_at)
        return view
