"""A synthetic market written to disk once per session for the signals tests."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from c2m.data import default_project, generate_market
from c2m.domain import Project


@pytest.fixture(scope="session")
def project() -> Project:
    return default_project()


@pytest.fixture(scope="session")
def market_dir(project: Project, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("signals") / "market"
    generate_market(project, n_persons=20_000, seed=1).write(out)
    return out


@pytest.fixture(scope="session")
def events(market_dir: Path) -> pl.DataFrame:
    """The events read directly with Polars (hive month column dropped)."""
    frame = pl.read_parquet(market_dir / "events" / "month=*" / "*.parquet", hive_partitioning=True)
    return frame.drop("month", strict=False)


@pytest.fixture(scope="session")
def persons(market_dir: Path) -> pl.DataFrame:
    return pl.read_parquet(market_dir / "persons.parquet")
