"""Erlang formulas and the hourly swap profile."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def hourly_profile() -> FloatArray:
    """Share of a day's swaps in each hour 0..23 (sums to 1).

    A night floor, a working-day plateau and two commuting peaks: morning around 08:00
    (sd 1.2 h) and a larger evening peak around 18:30 (sd 1.6 h), the shape reported for
    urban charging and swapping demand. The busiest hour (18:00-19:00) holds about 9.7 % of the day.
    """
    h = np.arange(24) + 0.5
    day = 1.0 / (1.0 + np.exp(-(h - 6.5) * 1.5)) * 1.0 / (1.0 + np.exp((h - 22.5) * 1.5))
    w = (
        0.08
        + 0.55 * day
        + 0.9 * np.exp(-0.5 * ((h - 8.0) / 1.2) ** 2)
        + 1.1 * np.exp(-0.5 * ((h - 18.5) / 1.6) ** 2)
    )
    return np.asarray(w / w.sum(), dtype=float)


def erlang_b(servers: int, load: ArrayLike) -> FloatArray:
    """Erlang B blocking probability for ``servers`` servers and offered ``load`` (Erlangs)."""
    a = np.asarray(load, dtype=float)
    b = np.ones_like(a)
    for k in range(1, int(servers) + 1):
        b = a * b / (k + a * b)
    return np.asarray(b, dtype=float)


def erlang_c(servers: int, load: ArrayLike) -> FloatArray:
    """Erlang C probability of waiting (M/M/c); 1 when ``load >= servers``."""
    a = np.asarray(load, dtype=float)
    if servers <= 0:
        return np.ones_like(a)
    b = erlang_b(servers, a)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = servers * b / (servers - a * (1.0 - b))
    return np.asarray(np.where(a >= servers, 1.0, np.clip(c, 0.0, 1.0)), dtype=float)
