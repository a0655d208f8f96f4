"""Battery stock of a swap station: how many packs so a driver rarely finds none charged.

Closed-loop model. A station holds ``S`` packs. A driver arriving swaps the depleted pack in the
car for a charged one; the depleted pack starts charging at once and is ready ``charge_hours``
later. A pack on charge is a busy *server*: a driver finds a charged pack iff fewer than ``S``
packs are on charge. With Poisson arrivals at rate ``lambda`` the offered load is
``a = lambda * charge_hours`` Erlangs and

* ``model="delay"`` (default): a driver who finds no charged pack waits for the next one to
  finish: ``P(wait) = ErlangC(S, a)`` (exact for exponential charge times, conservative for
  fixed ones);
* ``model="loss"``: the driver goes to another station: ``P(no pack) = ErlangB(S, a)``, exact
  for any charge-time distribution (insensitivity).

Arrivals vary by hour: the load at time ``t`` is the mean number of packs put on charge over
the last ``charge_hours``, ``a(t) = integral_{t-tau}^{t} lambda(s) ds`` (the modified offered
load of Jennings, Mandelbaum, Massey & Whitt 1996), evaluated on a fine grid of the (cyclic)
day; the probability is averaged over arrivals.
"""

from __future__ import annotations

import heapq
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from c2m.errors import C2MError

from ._queue import erlang_b, erlang_c

Model = Literal["delay", "loss"]
_SUB = 12  # grid points per hour


def _check_arrivals(arrivals_per_hour: ArrayLike, where: str) -> np.ndarray:
    lam = np.asarray(arrivals_per_hour, dtype=float).ravel()
    if lam.size != 24:
        raise C2MError(f"{where}: arrivals_per_hour needs 24 hourly values, got {lam.size}")
    if not np.all(np.isfinite(lam)) or np.any(lam < 0):
        raise C2MError(f"{where}: arrivals_per_hour must be finite and >= 0")
    return lam


def offered_load(arrivals_per_hour: ArrayLike, charge_hours: float) -> np.ndarray:
    """Packs on charge on average at ``_SUB`` points per hour: ``a(t) = int_{t-tau}^t lambda``."""
    lam = _check_arrivals(arrivals_per_hour, "offered_load")
    fine = np.repeat(lam, _SUB) / _SUB  # arrivals per grid step
    steps = charge_hours * _SUB
    whole = int(np.floor(steps))
    frac = steps - whole
    n = fine.size
    # window of ``steps`` grid steps ending at each grid point (cyclic day), evaluated at midpoints
    cyc = np.concatenate([fine] * (2 + whole // n + 1))
    csum = np.concatenate([[0.0], np.cumsum(cyc)])
    offset = (2 + whole // n) * n - n  # shift so every window lies in the array
    idx = np.arange(n) + offset + 1
    load = csum[idx] - csum[idx - whole]
    if frac > 0:
        load = load + frac * cyc[idx - whole - 1]
    return np.asarray(load, dtype=float)


def wait_probability(
    arrivals_per_hour: ArrayLike, packs: int, charge_hours: float = 1.0, model: Model = "delay"
) -> float:
    """Probability that an arriving driver finds no charged pack, averaged over the day's arrivals."""
    lam = _check_arrivals(arrivals_per_hour, "wait_probability")
    if lam.sum() == 0:
        return 0.0
    if charge_hours <= 0:
        raise C2MError(f"wait_probability: charge_hours must be > 0, got {charge_hours}")
    load = offered_load(lam, charge_hours)
    formula = erlang_c if model == "delay" else erlang_b
    p = formula(int(packs), load)
    weights = np.repeat(lam, _SUB)
    return float(np.sum(weights * p) / np.sum(weights))


def station_stock(
    arrivals_per_hour: ArrayLike,
    charge_hours: float = 1.0,
    target_wait_prob: float = 0.05,
    model: Model = "delay",
    max_packs: int = 10_000,
) -> int:
    """Smallest number of packs at a station so ``P(no charged pack on arrival) <= target``."""
    lam = _check_arrivals(arrivals_per_hour, "station_stock")
    if not 0 < target_wait_prob < 1:
        raise C2MError(f"station_stock: target_wait_prob must be in (0, 1), got {target_wait_prob}")
    if charge_hours <= 0:
        raise C2MError(f"station_stock: charge_hours must be > 0, got {charge_hours}")
    if model not in ("delay", "loss"):
        raise C2MError(f"station_stock: model must be 'delay' or 'loss', got {model!r}")
    if lam.sum() == 0:
        return 0
    start = max(1, int(np.floor(offered_load(lam, charge_hours).min())))
    for s in range(start, max_packs + 1):
        if wait_probability(lam, s, charge_hours, model) <= target_wait_prob:
            return s
    raise C2MError(f"station_stock: more than {max_packs} packs needed; is the arrival rate right?")


def simulate_station(
    arrivals_per_hour: ArrayLike,
    packs: int,
    charge_hours: float = 1.0,
    days: int = 200,
    seed: int = 0,
    model: Model = "delay",
    charge_time: Literal["fixed", "exponential"] = "fixed",
    warmup_days: int = 2,
) -> float:
    """Discrete-event simulation of a station: the share of drivers finding no charged pack.

    Poisson arrivals with the hourly rates (piecewise constant, repeated every day); every
    swap puts a depleted pack on charge for ``charge_hours`` (fixed or exponential). In the
    ``delay`` model a driver who finds no charged pack queues (first come, first served) for
    the next pack to finish; in the ``loss`` model they leave.
    """
    lam = _check_arrivals(arrivals_per_hour, "simulate_station")
    rng = np.random.default_rng(seed)
    counts = rng.poisson(np.tile(lam, days))
    hours = np.repeat(np.arange(24 * days, dtype=float), counts)
    times = np.sort(hours + rng.random(hours.size))
    if charge_time == "fixed":
        durations = np.full(times.size, float(charge_hours))
    else:
        durations = rng.exponential(charge_hours, size=times.size)
    charged = int(packs)
    charging: list[float] = []
    queue = 0  # drivers waiting
    next_duration = iter(durations.tolist())
    warm = 24.0 * warmup_days
    counted = waited = 0

    def finish_until(t: float) -> None:
        nonlocal charged, queue
        while charging and charging[0] <= t:
            done = heapq.heappop(charging)
            if queue > 0:  # the waiting driver takes it; their pack goes on charge
                queue -= 1
                heapq.heappush(charging, done + next(next_duration))
            else:
                charged += 1

    for t in times.tolist():
        finish_until(t)
        no_pack = charged == 0
        if t >= warm:
            counted += 1
            waited += no_pack
        if not no_pack:
            charged -= 1
            heapq.heappush(charging, t + next(next_duration))
        elif model == "delay":
            queue += 1
    return waited / counted if counted else 0.0
