"""SQLAlchemy models: projects, stores, test-drive slots and bookings, benefits and claims, survey."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ProjectRow(Base):
    """A project served by the platform (one project file)."""

    __tablename__ = "project"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    product: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StoreRow(Base):
    """A store where test drives take place."""

    __tablename__ = "store"
    __table_args__ = (UniqueConstraint("project_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(50))
    city: Mapped[str] = mapped_column(String(100))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(String(20))


class SlotRow(Base):
    """A test-drive slot: ``booked`` of ``capacity`` seats taken (never more, enforced twice)."""

    __tablename__ = "slot"
    __table_args__ = (
        UniqueConstraint("store_id", "start"),
        CheckConstraint("booked >= 0 AND booked <= capacity", name="booked_within_capacity"),
        CheckConstraint("capacity >= 0", name="capacity_nonnegative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"), index=True)
    start: Mapped[datetime] = mapped_column(DateTime(timezone=False), doc="store-local start time")
    minutes: Mapped[int] = mapped_column(Integer)
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class BookingRow(Base):
    """A test-drive booking; at most one ``booked`` row per person and project."""

    __tablename__ = "booking"
    __table_args__ = (
        CheckConstraint("status IN ('booked', 'cancelled')", name="status_known"),
        Index(
            "uq_booking_active_person",
            "project_id",
            "person_hash",
            unique=True,
            sqlite_where=text("status = 'booked'"),
            postgresql_where=text("status = 'booked'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    slot_id: Mapped[int] = mapped_column(ForeignKey("slot.id", ondelete="CASCADE"), index=True)
    person_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="booked")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    replaced_by: Mapped[str | None] = mapped_column(String(32), nullable=True)


class BenefitRow(Base):
    """An early-purchase benefit: ``granted`` of ``quota`` given out (never more)."""

    __tablename__ = "benefit"
    __table_args__ = (
        UniqueConstraint("project_id", "code"),
        CheckConstraint("granted >= 0 AND granted <= quota", name="granted_within_quota"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(200))
    name_zh: Mapped[str] = mapped_column(String(200), default="")
    quota: Mapped[int] = mapped_column(Integer)
    granted: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class BenefitClaimRow(Base):
    """A person's claim of a benefit; one claim per person and project."""

    __tablename__ = "benefit_claim"
    __table_args__ = (UniqueConstraint("project_id", "person_hash"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    benefit_id: Mapped[int] = mapped_column(ForeignKey("benefit.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    person_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SurveyDesignRow(Base):
    """A project's CBC design, generated once at seed time; ``assigned`` counts the versions handed out."""

    __tablename__ = "survey_design"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), unique=True)
    method: Mapped[str] = mapped_column(String(40))
    seed: Mapped[int] = mapped_column(Integer)
    n_versions: Mapped[int] = mapped_column(Integer)
    n_tasks: Mapped[int] = mapped_column(Integer)
    n_alts: Mapped[int] = mapped_column(Integer)
    none_option: Mapped[bool] = mapped_column(Boolean)
    assigned: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SurveyConceptRow(Base):
    """One concept (alternative) of one task of one version; ``levels`` maps attribute -> level (value if numeric)."""

    __tablename__ = "survey_concept"
    __table_args__ = (UniqueConstraint("design_id", "version", "task", "alt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    design_id: Mapped[int] = mapped_column(ForeignKey("survey_design.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    task: Mapped[int] = mapped_column(Integer)
    alt: Mapped[int] = mapped_column(Integer)
    holdout: Mapped[bool] = mapped_column(Boolean)
    levels: Mapped[dict[str, Any]] = mapped_column(JSON)


class SurveyRespondentRow(Base):
    """A survey respondent: screening, assigned version (``seq``-th qualified respondent), profile answers."""

    __tablename__ = "survey_respondent"
    __table_args__ = (
        UniqueConstraint("design_id", "seq"),
        CheckConstraint("status IN ('screened_out', 'active', 'done')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    design_id: Mapped[int] = mapped_column(ForeignKey("survey_design.id", ondelete="CASCADE"))
    token: Mapped[str] = mapped_column(String(64), unique=True)
    seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    lang: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    screening: Mapped[dict[str, Any]] = mapped_column(JSON)
    profile: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SurveyAnswerRow(Base):
    """A respondent's choice in one task: ``alt`` is the chosen concept (``n_alts + 1`` = None); one per task."""

    __tablename__ = "survey_answer"
    __table_args__ = (
        UniqueConstraint("respondent_id", "task"),
        CheckConstraint("alt >= 1", name="alt_positive"),
        CheckConstraint("seconds >= 0", name="seconds_nonnegative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    respondent_id: Mapped[int] = mapped_column(ForeignKey("survey_respondent.id", ondelete="CASCADE"))
    task: Mapped[int] = mapped_column(Integer)
    alt: Mapped[int] = mapped_column(Integer)
    is_none: Mapped[bool] = mapped_column(Boolean)
    answered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    seconds: Mapped[float] = mapped_column(Float)


ORDER_STATES = ("reserved", "deposit_paid", "confirmed", "delivered", "cancelled", "refunded")


class PreorderRow(Base):
    """A refundable pre-order of one configuration; amounts in fen (1/100 yuan); states in `c2m.platform._orders`."""

    __tablename__ = "preorder"
    __table_args__ = (
        CheckConstraint(
            "state IN ('reserved', 'deposit_paid', 'confirmed', 'delivered', 'cancelled', 'refunded')",
            name="state_known",
        ),
        CheckConstraint("ownership IN ('buy', 'rent')", name="ownership_known"),
        CheckConstraint("price_fen > 0 AND deposit_fen > 0 AND deposit_fen <= price_fen", name="amounts_valid"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    person_hash: Mapped[str] = mapped_column(String(64))
    variant: Mapped[str] = mapped_column(String(100))
    colour: Mapped[str] = mapped_column(String(50))
    battery: Mapped[str] = mapped_column(String(50))
    ownership: Mapped[str] = mapped_column(String(8))
    rent_plan: Mapped[str | None] = mapped_column(String(50), nullable=True)
    monthly_fee_fen: Mapped[int | None] = mapped_column(Integer, nullable=True)
    price_fen: Mapped[int] = mapped_column(Integer)
    deposit_fen: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PreorderKeyRow(Base):
    """An ``Idempotency-Key`` of a pre-order creation: the order it created and the request's fingerprint."""

    __tablename__ = "preorder_key"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("preorder.id", ondelete="CASCADE"), unique=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PaymentRow(Base):
    """A deposit charge or its refund at the payment provider; at most one of each kind per order."""

    __tablename__ = "payment"
    __table_args__ = (
        UniqueConstraint("order_id", "kind"),
        CheckConstraint("kind IN ('charge', 'refund')", name="kind_known"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("preorder.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    amount_fen: Mapped[int] = mapped_column(Integer)
    provider: Mapped[str] = mapped_column(String(40))
    reference: Mapped[str] = mapped_column(String(100))
    idempotency_key: Mapped[str] = mapped_column(String(150), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OrderEventRow(Base):
    """The audit log: one row per state transition of a pre-order (``from_state`` is null on creation)."""

    __tablename__ = "order_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("preorder.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(50))
    note: Mapped[str] = mapped_column(String(500), default="")


class LocalChargeRow(Base):
    """The local (development) payment provider's own ledger: charges and refunds, idempotent by ``key``."""

    __tablename__ = "local_payment"
    __table_args__ = (
        CheckConstraint("kind IN ('charge', 'refund')", name="kind_known"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(100), unique=True)
    key: Mapped[str] = mapped_column(String(150), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    amount_fen: Mapped[int] = mapped_column(Integer)
    refund_of: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AdminUserRow(Base):
    """A staff account of the admin pages: ``admin`` (everything) or ``analyst`` (read, estimate, simulate)."""

    __tablename__ = "admin_user"
    __table_args__ = (CheckConstraint("role IN ('admin', 'analyst')", name="role_known"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200), doc="argon2id")
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AdminSessionRow(Base):
    """A logged-in admin session: the cookie's token is stored only as its SHA-256."""

    __tablename__ = "admin_session"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("admin_user.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LoginAttemptRow(Base):
    """A login attempt, for rate limiting by user name and by client address."""

    __tablename__ = "login_attempt"
    __table_args__ = (
        Index("ix_login_attempt_username_at", "username", "at"),
        Index("ix_login_attempt_client_at", "client", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100))
    client: Mapped[str] = mapped_column(String(100))
    ok: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


JOB_STATES = ("queued", "running", "done", "failed")


class JobRow(Base):
    """A background job (``estimate``: a choice model on a project's survey answers) and its JSON result."""

    __tablename__ = "job"
    __table_args__ = (CheckConstraint("state IN ('queued', 'running', 'done', 'failed')", name="state_known"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LoginCodeRow(Base):
    """A person's pending one-time code (one per person): only its hash, expiry, wrong tries and send throttle."""

    __tablename__ = "login_code"
    __table_args__ = (
        CheckConstraint("attempts >= 0", name="attempts_nonnegative"),
        CheckConstraint("window_sends >= 1", name="window_sends_positive"),
    )

    person_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), doc="SHA-256 of person hash, purpose and code")
    purpose: Mapped[str] = mapped_column(String(20))
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0, doc="wrong or right tries of this code")
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), doc="start of the hourly send window")
    window_sends: Mapped[int] = mapped_column(Integer, doc="codes sent since window_start")


class CodeOutboxRow(Base):
    """The development code sender's outbox: the codes it 'sent', by the person's hash (never the contact)."""

    __tablename__ = "code_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_hash: Mapped[str] = mapped_column(String(64), index=True)
    code: Mapped[str] = mapped_column(String(6))
    purpose: Mapped[str] = mapped_column(String(20))
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PersonSessionRow(Base):
    """A verified person's session: the bearer token or cookie is stored only as its SHA-256."""

    __tablename__ = "person_session"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_hash: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ServiceSlotRow(Base):
    """An after-sales slot of a store's service bays: ``booked`` of ``capacity`` bays taken (never more)."""

    __tablename__ = "service_slot"
    __table_args__ = (
        UniqueConstraint("store_id", "start"),
        CheckConstraint("booked >= 0 AND booked <= capacity", name="booked_within_capacity"),
        CheckConstraint("capacity >= 0", name="capacity_nonnegative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"), index=True)
    start: Mapped[datetime] = mapped_column(DateTime(timezone=False), doc="store-local start time")
    minutes: Mapped[int] = mapped_column(Integer)
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class ServiceAppointmentRow(Base):
    """A maintenance or battery-service appointment; at most one ``booked`` row per person, project and kind."""

    __tablename__ = "service_appointment"
    __table_args__ = (
        CheckConstraint("status IN ('booked', 'cancelled')", name="status_known"),
        CheckConstraint("kind IN ('maintenance', 'battery_service')", name="kind_known"),
        Index(
            "uq_service_appointment_active_person",
            "project_id",
            "person_hash",
            "kind",
            unique=True,
            sqlite_where=text("status = 'booked'"),
            postgresql_where=text("status = 'booked'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    service_slot_id: Mapped[int] = mapped_column(ForeignKey("service_slot.id", ondelete="CASCADE"), index=True)
    person_hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    preorder_id: Mapped[str | None] = mapped_column(
        ForeignKey("preorder.id", ondelete="SET NULL"), nullable=True, doc="the serviced car's pre-order"
    )
    status: Mapped[str] = mapped_column(String(16), default="booked")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    replaced_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
