"""The web platform: the consumer survey, test-drive booking and benefits that can never be oversold.

``create_app(settings)`` builds the FastAPI application (JSON API under ``/api/v1``, booking pages
under ``/book/{project}``, survey pages under ``/survey/{project}``, see `SurveyService`);
``serve(...)`` runs it with uvicorn; ``init_db(url)`` migrates a database (Alembic, shipped in
the package) and seeds the projects idempotently, survey designs included. SQLite and
PostgreSQL are both supported; seats, quotas and survey versions are taken with conditional
updates (see `Platform`). Refundable pre-orders (``/preorder/{project}``, API under
``/api/v1/projects/{project}/preorders``) take deposits through a `PaymentProvider`, idempotently.
People sign in with a one-time code sent through a `CodeSender` (``/sign-in``, ``/api/v1/identity``);
bookings, claims, pre-orders and after-sales appointments (``/service/{project}``) are theirs, and
``/me`` (``/api/v1/me``) exports or erases everything keyed by them.
"""

from ._aftersales import SERVICE_KINDS, AppointmentView, ServiceSlotView
from ._app import create_app, serve
from ._db import current_revision, head_revision, init_db, make_engine, seed, upgrade
from ._errors import ConflictError, InvalidError, NotFoundError, PlatformError
from ._identity import (
    CodeSender,
    LogCodeSender,
    Person,
    SignInRequiredError,
    normalize_contact,
    person_hash,
    read_outbox,
)
from ._orders import TRANSITIONS
from ._payments import LocalPaymentProvider, PaymentError, PaymentProvider
from ._personal_data import Erasure
from ._preorders import Catalogue, OrderView
from ._service import BenefitView, BookingView, ClaimView, Platform, SlotView
from ._settings import BenefitSpec, Settings
from ._survey import AnswerView, StoredDesign, SurveyService, SurveyState, SurveyTask, quality_flags

__all__ = [
    "SERVICE_KINDS",
    "TRANSITIONS",
    "AnswerView",
    "AppointmentView",
    "BenefitSpec",
    "BenefitView",
    "BookingView",
    "Catalogue",
    "ClaimView",
    "CodeSender",
    "ConflictError",
    "Erasure",
    "InvalidError",
    "LocalPaymentProvider",
    "LogCodeSender",
    "NotFoundError",
    "OrderView",
    "PaymentError",
    "PaymentProvider",
    "Person",
    "Platform",
    "PlatformError",
    "ServiceSlotView",
    "Settings",
    "SignInRequiredError",
    "SlotView",
    "StoredDesign",
    "SurveyService",
    "SurveyState",
    "SurveyTask",
    "create_app",
    "current_revision",
    "head_revision",
    "init_db",
    "make_engine",
    "normalize_contact",
    "person_hash",
    "quality_flags",
    "read_outbox",
    "seed",
    "serve",
    "upgrade",
]
