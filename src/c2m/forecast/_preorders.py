"""Synthetic launch data: daily reservations and pre-orders by city and variant.

The funnel, per (variant, city) cell with annual volume ``V`` (all rates per unit of ``V``):

* launch day: the pent-up interest (survey participants, test-drive bookings, early-purchase
  benefit applicants) reserves at once: ``Poisson(DAY_ONE_PER_UNIT * V)`` reservations on day 1;
* after that, reservations diffuse among the rest of the reservation pool,
  ``POOL_PER_UNIT * V``, as a Bass process in *days* with ``p`` and ``q`` (Poisson noise on
  each day's expected ``pool * (F(d) - F(d-1))``);
* each reservation converts to a binding pre-order with probability ``CONVERSION`` when the
  pre-order window opens (``PREORDER_OPENS_DAY``) or later, after a geometric delay with mean
  ``CONVERSION_DELAY_DAYS`` days (binomial-multinomial draws, so pre-orders never exceed the
  reservations made before them).

Calibration: at ``REFERENCE_ANNUAL_VOLUME`` = 135,000 cars a year (the line volume that
``c2m demo`` finds on the default project, 135,271 at seed 0) this gives ~17,000-18,000 day-one
reservations and > 30,000 pre-orders by the end of week 2, the public figures of the launch in
domain-facts.md. Volumes scale everything linearly.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from c2m.errors import C2MError

from ._bass import bass_fraction

REFERENCE_ANNUAL_VOLUME = 135_000.0
DAY_ONE_PER_UNIT = 17_000.0 / REFERENCE_ANNUAL_VOLUME
POOL_PER_UNIT = 30_000.0 / REFERENCE_ANNUAL_VOLUME
CONVERSION = 0.80
CONVERSION_DELAY_DAYS = 3.0
PREORDER_OPENS_DAY = 2


def simulate_preorders(
    volumes: pl.DataFrame,
    weeks: int = 8,
    seed: int = 0,
    p: float = 0.03,
    q: float = 0.4,
    start: date = date(2026, 1, 5),
) -> pl.DataFrame:
    """Daily synthetic reservations and pre-orders after a launch on ``start``.

    Returns one row per day x city x variant: ``date``, ``day`` (1..7*weeks), ``week``, ``city``,
    ``variant``, ``reservations``, ``preorders`` (new that day, Int64). ``p`` and ``q`` are the
    Bass parameters of the reservation diffusion per day. Same seed, same output.
    """
    cells = _volume_cells(volumes, "simulate_preorders")
    if weeks < 1:
        raise C2MError(f"simulate_preorders: weeks must be >= 1, got {weeks}")
    if not (p > 0 and q >= 0):
        raise C2MError(f"simulate_preorders: need p > 0 and q >= 0, got p={p}, q={q}")
    rng = np.random.default_rng(seed)
    n_days = 7 * weeks
    days = np.arange(1, n_days + 1, dtype=float)
    dF = bass_fraction(days, p, q) - bass_fraction(days - 1.0, p, q)
    # delay distribution: geometric on 0, 1, 2, ... with mean CONVERSION_DELAY_DAYS
    g = 1.0 / (1.0 + CONVERSION_DELAY_DAYS)
    frames = []
    for variant, city, volume in cells.iter_rows():
        expected = POOL_PER_UNIT * volume * dF
        expected[0] += DAY_ONE_PER_UNIT * volume
        reservations = rng.poisson(expected)
        preorders = np.zeros(n_days, dtype=np.int64)
        for d in range(n_days):
            n = int(reservations[d])
            if n == 0:
                continue
            converting = int(rng.binomial(n, CONVERSION))
            first = max(d, PREORDER_OPENS_DAY - 1)
            span = n_days - first
            probs = g * (1.0 - g) ** np.arange(span)
            probs = np.append(probs, max(0.0, 1.0 - probs.sum()))  # converts after the window
            counts = rng.multinomial(converting, probs / probs.sum())
            preorders[first:] += counts[:span]
        frames.append(
            pl.DataFrame(
                {
                    "date": [start + timedelta(days=int(d) - 1) for d in days],
                    "day": days.astype(np.int64),
                    "week": ((days.astype(np.int64) - 1) // 7 + 1),
                    "city": [city] * n_days,
                    "variant": [variant] * n_days,
                    "reservations": reservations.astype(np.int64),
                    "preorders": preorders,
                }
            )
        )
    return pl.concat(frames).sort(["day", "variant", "city"])


def _volume_cells(volumes: pl.DataFrame, where: str) -> pl.DataFrame:
    """The (variant, city, annual_volume) cells of a volumes table, checked."""
    missing = [c for c in ("variant", "city", "annual_volume") if c not in volumes.columns]
    if missing:
        raise C2MError(f"{where}: volumes is missing column(s) {missing}; found {volumes.columns}")
    cells = volumes.select(
        pl.col("variant").cast(pl.String),
        pl.col("city").cast(pl.String),
        pl.col("annual_volume").cast(pl.Float64),
    )
    bad = cells.filter(pl.col("annual_volume").is_null() | (pl.col("annual_volume") < 0))
    if bad.height:
        row = bad.row(0)
        raise C2MError(f"{where}: annual_volume must be >= 0; variant {row[0]!r}, city {row[1]!r}: {row[2]}")
    dup = cells.group_by(["variant", "city"]).len().filter(pl.col("len") > 1)
    if dup.height:
        raise C2MError(f"{where}: duplicate (variant, city) rows in volumes: {dup.rows()[:3]}")
    if cells.height == 0:
        raise C2MError(f"{where}: volumes has no rows")
    return cells
