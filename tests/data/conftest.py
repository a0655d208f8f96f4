"""A shared synthetic market for the data tests (generated once per session)."""

from __future__ import annotations

import pytest

from c2m.data import Market, default_project, generate_market
from c2m.domain import Project


@pytest.fixture(scope="session")
def project() -> Project:
    return default_project()


@pytest.fixture(scope="session")
def market(project: Project) -> Market:
    return generate_market(project, n_persons=40_000, seed=7, events_per_person=3.0)
