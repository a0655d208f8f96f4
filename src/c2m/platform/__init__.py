"""The web platform: the consumer survey, test-drive booking and benefits that can never be oversold.

``create_app(settings)`` builds the FastAPI application (JSON API under ``/api``, booking pages
under ``/book/{project}``, survey pages under ``/survey/{project}``, see `SurveyService`);
``serve(...)`` runs it with uvicorn; ``init_db(url)`` migrates a database (Alembic, shipped in
the package) and seeds the projects idempotently, survey designs included. SQLite and
PostgreSQL are both supported; seats, quotas and survey versions are taken with conditional
updates (see `Platform`). Refundable pre-orders (``/preorder/{project}``, API under
``/api/projects/{project}/preorders``) take deposits through a `PaymentProvider`, idempotently.
"""

from ._app import create_app, serve
from ._db import current_revision, init_db, make_engine, seed, upgrade
from ._errors import ConflictError, InvalidError, NotFoundError, PlatformError
from ._orders import TRANSITIONS
from ._payments import LocalPaymentProvider, PaymentError, PaymentProvider
from ._preorders import Catalogue, OrderView
from ._service import BenefitView, BookingView, ClaimView, Platform, SlotView, normalize_contact, person_hash
from ._settings import BenefitSpec, Settings
from ._survey import AnswerView, StoredDesign, SurveyService, SurveyState, SurveyTask, quality_flags

__all__ = [
    "TRANSITIONS",
    "AnswerView",
    "BenefitSpec",
    "BenefitView",
    "BookingView",
    "Catalogue",
    "ClaimView",
    "ConflictError",
    "InvalidError",
    "LocalPaymentProvider",
    "NotFoundError",
    "OrderView",
    "PaymentError",
    "PaymentProvider",
    "Platform",
    "PlatformError",
    "Settings",
    "SlotView",
    "StoredDesign",
    "SurveyService",
    "SurveyState",
    "SurveyTask",
    "create_app",
    "current_revision",
    "init_db",
    "make_engine",
    "normalize_contact",
    "person_hash",
    "quality_flags",
    "seed",
    "serve",
    "upgrade",
]
