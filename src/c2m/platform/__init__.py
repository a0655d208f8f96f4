"""The web platform: test-drive booking and early-purchase benefits that can never be oversold.

``create_app(settings)`` builds the FastAPI application (JSON API under ``/api``, booking pages
under ``/book/{project}``); ``serve(...)`` runs it with uvicorn; ``init_db(url)`` migrates a
database (Alembic, shipped in the package) and seeds the projects idempotently. SQLite and
PostgreSQL are both supported; seats and quotas are taken with conditional updates (see
`Platform`).
"""

from ._app import create_app, serve
from ._db import current_revision, init_db, make_engine, seed, upgrade
from ._errors import ConflictError, InvalidError, NotFoundError, PlatformError
from ._service import BenefitView, BookingView, ClaimView, Platform, SlotView, normalize_contact, person_hash
from ._settings import BenefitSpec, Settings

__all__ = [
    "BenefitSpec",
    "BenefitView",
    "BookingView",
    "ClaimView",
    "ConflictError",
    "InvalidError",
    "NotFoundError",
    "Platform",
    "PlatformError",
    "Settings",
    "SlotView",
    "create_app",
    "current_revision",
    "init_db",
    "make_engine",
    "normalize_contact",
    "person_hash",
    "seed",
    "serve",
    "upgrade",
]
