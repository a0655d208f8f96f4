"""Fresh databases for the platform tests: a SQLite file and a PostgreSQL database per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from tests.conftest import skip_or_fail

from c2m.data import default_project
from c2m.domain import Project
from c2m.platform import BenefitSpec, Settings

if TYPE_CHECKING:
    import psycopg

PG_ADMIN_URL = os.environ.get("C2M_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
PROJECT = "swap-city-ev"


def _pg_url(database: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{database}".replace("postgresql://", "postgresql+psycopg://", 1)


def _pg_admin() -> psycopg.Connection[Any]:
    import psycopg

    try:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        skip_or_fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({exc})")
        raise  # not reached: skip_or_fail skips or fails


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of each kind, dropped after the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'c2m.db'}"
        return
    name = f"c2m_test_{uuid.uuid4().hex[:12]}"
    with _pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        with _pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def project() -> Project:
    return default_project()


@pytest.fixture
def settings(db_url: str) -> Settings:
    """Two days of slots of capacity 5 at every store of the default project, and a quota-5 benefit."""
    return Settings(
        database_url=db_url,
        slot_days_ahead=3,
        slot_capacity=5,
        benefits=[
            BenefitSpec(code="charging-coupon", name="2,000-yuan charging coupon", name_zh="2,000 元充电券", quota=5),
            BenefitSpec(code="rent-waiver", name="Three months of rent waived", name_zh="免三个月电池租金", quota=100),
        ],
    )
