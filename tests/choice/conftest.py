"""Shared fixtures for the choice tests: the two public datasets and a simulator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from c2m.choice import ChoiceData, MultinomialLogit

DATA = Path(__file__).parent / "data"
ELEC_FEATURES = ["pf", "cl", "loc", "wk", "tod", "seas"]
VEHICLE_FEATURES = ["price", "opcost", "max_range", "ev", "hybrid", "hiperf", "medhiperf"]


@pytest.fixture(scope="session")
def electricity() -> pl.DataFrame:
    return pl.read_csv(DATA / "electricity.csv.gz")


@pytest.fixture(scope="session")
def electricity_data(electricity: pl.DataFrame) -> ChoiceData:
    return ChoiceData.from_long(electricity, ELEC_FEATURES, id_col="id", task_col="chid", chosen_col="choice")


@pytest.fixture(scope="session")
def vehicle() -> pl.DataFrame:
    # case_id and alt_id were the pandas index; polars reads them as ordinary columns.
    return pl.read_parquet(DATA / "vehicle_choice.parquet").with_columns(pl.col("price") / 10_000)


@pytest.fixture(scope="session")
def vehicle_data(vehicle: pl.DataFrame) -> ChoiceData:
    return ChoiceData.from_long(
        vehicle, VEHICLE_FEATURES, id_col="person_id", task_col="case_id", alt_col="alt_id"
    )


@pytest.fixture(scope="session")
def vehicle_model(vehicle_data: ChoiceData) -> MultinomialLogit:
    return MultinomialLogit().fit(vehicle_data)


def simulate_long(
    beta: np.ndarray,
    n_persons: int = 200,
    n_tasks: int = 10,
    n_alts: int = 3,
    seed: int = 0,
    person_sd: float = 0.0,
) -> pl.DataFrame:
    """Long table of MNL choices from known betas (optionally with person-level taste noise)."""
    rng = np.random.default_rng(seed)
    K = beta.size
    n = n_persons * n_tasks
    X = rng.normal(size=(n, n_alts, K))
    person = np.repeat(np.arange(n_persons), n_tasks)
    b = beta[None, :] + person_sd * rng.normal(size=(n_persons, K))[person]
    V = np.einsum("tjk,tk->tj", X, b)
    U = V + rng.gumbel(size=V.shape)
    chosen = U.argmax(axis=1)
    rows = {
        "id": np.repeat(person, n_alts),
        "task": np.repeat(np.tile(np.arange(n_tasks), n_persons), n_alts),
        "alt": np.tile(np.arange(1, n_alts + 1), n),
        "chosen": (np.arange(n_alts)[None, :] == chosen[:, None]).reshape(-1).astype(np.int64),
    }
    for k in range(K):
        rows[f"x{k}"] = X[:, :, k].reshape(-1)
    return pl.DataFrame(rows)


@pytest.fixture(scope="session")
def simulate() -> Callable[..., pl.DataFrame]:
    """The :func:`simulate_long` helper, as a fixture (conftest modules are not importable)."""
    return simulate_long
