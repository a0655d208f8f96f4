"""Swap-by-swap simulation of a station's pack pool: SimPy model and a numba fast path.

The model is the closed-loop spare pool of ``_stock``: a station holds ``packs`` packs, all
charged at time 0. Driver ``i`` arrives at ``times[i]`` (hours, sorted) and takes a charged
pack, waiting first come, first served for the next one to finish if none is left; the
depleted pack they hand in goes on charge at once for ``durations[i]`` hours. A pack on charge
is a busy server, so the pool is a FIFO ``G/G/packs`` queue on the drivers (the lanes and the
99-second swap itself are left out: see ``lanes_needed``).

``engine="simpy"`` runs it as a discrete-event model (``simpy.Container`` of charged packs, an
arrival process, event callbacks for a driver served and a pack charged, counters of drivers
waiting and packs on charge integrated over time, and the invariant *charged + on charge <=
packs* checked at every change, with equality at the end: no pack is in two places, none is lost).
``engine="numba"`` runs the same queue as the Kiefer-Wolfowitz recursion: a min-heap of the
times the ``packs`` packs are next free; driver ``i`` gets a pack at ``max(t_i, earliest free)``.
On the same arrivals both give the same waits (to rounding; tested), in O(n log packs).

Statistics count drivers arriving in ``[warmup, horizon]``; time averages are over the same
window. Little's law: the time-average number of drivers waiting ``L_q`` equals the arrival rate
times the mean wait (up to drivers still waiting at the horizon).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from c2m.errors import C2MError

from ._stock import _check_arrivals

Engine = Literal["numba", "simpy"]


@dataclass(frozen=True)
class SwapStats:
    """Statistics of one simulated station (times in minutes unless named otherwise)."""

    swaps: int  # drivers arriving in [warmup, horizon]
    window_hours: float  # horizon - warmup
    mean_wait_min: float
    p_wait: float  # share of drivers finding no charged pack (wait > 0)
    p_wait_over: float  # share waiting longer than max_wait_min
    max_wait_min: float
    max_wait_threshold_min: float
    utilisation: float  # time-average share of the packs on charge
    mean_queue: float  # time-average number of drivers waiting (L_q)
    mean_on_charge: float  # time-average number of packs on charge
    engine: str
    waits_min: NDArray[np.float64] = field(repr=False, compare=False)

    @property
    def arrival_rate_per_hour(self) -> float:
        return self.swaps / self.window_hours if self.window_hours > 0 else 0.0

    @property
    def little_lq(self) -> float:
        """``lambda * W_q``: what Little's law says ``mean_queue`` should be."""
        return self.arrival_rate_per_hour * self.mean_wait_min / 60.0


def swap_arrivals(
    arrivals_per_hour: ArrayLike,
    days: int,
    charge_hours: float = 1.0,
    seed: int = 0,
    charge_time: Literal["fixed", "exponential"] = "fixed",
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Poisson arrival times (hours, sorted) at the hourly rates repeated ``days`` times, and charge times."""
    lam = _check_arrivals(arrivals_per_hour, "swap_arrivals")
    if days < 1 or charge_hours <= 0:
        raise C2MError(f"swap_arrivals: need days >= 1 and charge_hours > 0, got {days}, {charge_hours}")
    if charge_time not in ("fixed", "exponential"):
        raise C2MError(f"swap_arrivals: charge_time must be 'fixed' or 'exponential', got {charge_time!r}")
    rng = np.random.default_rng(seed)
    counts = rng.poisson(np.tile(lam, days))
    hours = np.repeat(np.arange(24 * days, dtype=float), counts)
    times = np.sort(hours + rng.random(hours.size))
    if charge_time == "fixed":
        durations = np.full(times.size, float(charge_hours))
    else:
        durations = rng.exponential(charge_hours, size=times.size)
    return times, durations


def simulate_swaps(
    times: ArrayLike,
    durations: ArrayLike,
    packs: int,
    warmup_hours: float = 48.0,
    horizon_hours: float | None = None,
    max_wait_min: float = 5.0,
    engine: Engine = "numba",
) -> SwapStats:
    """Simulate the pack pool swap by swap (see the module docstring); ``horizon`` defaults to the last arrival."""
    t = np.ascontiguousarray(times, dtype=np.float64)
    c = np.ascontiguousarray(durations, dtype=np.float64)
    if t.ndim != 1 or t.shape != c.shape:
        raise C2MError(f"simulate_swaps: times and durations must be 1-d of one length, got {t.shape}, {c.shape}")
    if packs < 1:
        raise C2MError(f"simulate_swaps: packs must be >= 1, got {packs}")
    if t.size and (not np.all(np.isfinite(t)) or t[0] < 0 or np.any(np.diff(t) < 0)):
        raise C2MError("simulate_swaps: times must be finite, >= 0 and sorted")
    if not np.all(np.isfinite(c)) or np.any(c < 0):
        raise C2MError("simulate_swaps: durations must be finite and >= 0")
    horizon = float(t[-1]) if horizon_hours is None and t.size else float(horizon_hours or 0.0)
    warm = float(warmup_hours)
    if not 0 <= warm < horizon:
        raise C2MError(f"simulate_swaps: need 0 <= warmup_hours < horizon, got {warm}, {horizon}")
    if engine == "numba":
        waits, q_area, c_area = _numba_kernel()(t, c, int(packs), warm, horizon)
    elif engine == "simpy":
        waits, q_area, c_area = _simpy_run(t, c, int(packs), warm, horizon)
    else:
        raise C2MError(f"simulate_swaps: engine must be 'numba' or 'simpy', got {engine!r}")
    keep = (t >= warm) & (t <= horizon)
    w = waits[keep] * 60.0
    span = horizon - warm
    n = int(w.size)
    return SwapStats(
        swaps=n,
        window_hours=span,
        mean_wait_min=float(w.mean()) if n else 0.0,
        p_wait=float(np.mean(w > 0)) if n else 0.0,
        p_wait_over=float(np.mean(w > max_wait_min)) if n else 0.0,
        max_wait_min=float(w.max()) if n else 0.0,
        max_wait_threshold_min=float(max_wait_min),
        utilisation=float(c_area / (span * packs)),
        mean_queue=float(q_area / span),
        mean_on_charge=float(c_area / span),
        engine=engine,
        waits_min=w,
    )


def _simpy_run(
    times: NDArray[np.float64], durations: NDArray[np.float64], packs: int, warm: float, horizon: float
) -> tuple[NDArray[np.float64], float, float]:
    try:
        import simpy
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise C2MError("simulate_swaps: engine='simpy' needs the simpy package (pip install simpy)") from exc
    env = simpy.Environment()
    pool = simpy.Container(env, capacity=packs, init=packs)
    waits = np.zeros(times.size)
    waiting = on_charge = 0  # drivers waiting, packs on charge
    last = q_area = c_area = 0.0  # time of the last change, areas under the two counts

    def change(d_wait: int, d_charge: int) -> None:
        nonlocal waiting, on_charge, last, q_area, c_area
        now = env.now
        dt = min(now, horizon) - max(last, warm)
        if dt > 0:
            q_area += waiting * dt
            c_area += on_charge * dt
        last = now
        waiting += d_wait
        on_charge += d_charge
        # a pack is charged in the pool, on charge, or (for no simulated time) in a driver's hands
        if pool.level + on_charge > packs or on_charge < 0 or waiting < 0:
            raise AssertionError(f"pack pool invariant broken at t={now}: {pool.level} charged, {on_charge} on charge")

    def back(_: Any) -> None:  # a pack has charged: back to the pool, where it wakes the first waiting driver
        change(0, -1)
        pool.put(1)  # never blocks: the pool has room for every pack

    def served(i: int, t: float, c: float) -> Callable[[Any], None]:
        def cb(_: Any) -> None:
            change(-1, +1)  # the driver leaves the queue; their depleted pack goes on charge
            waits[i] = env.now - t
            env.timeout(c).callbacks.append(back)

        return cb

    def source() -> Any:
        for i, (t, c) in enumerate(zip(times.tolist(), durations.tolist(), strict=True)):
            if t > env.now:
                yield env.timeout(t - env.now)
            get = pool.get(1)
            if get.triggered:  # a charged pack is there: the depleted one goes on charge
                change(0, +1)
                env.timeout(c).callbacks.append(back)
            else:  # wait, first come first served, for the next pack to finish
                change(+1, 0)
                get.callbacks.append(served(i, t, c))

    env.process(source())
    env.run()
    change(0, 0)
    if pool.level != packs or waiting or on_charge:
        raise AssertionError(f"pack pool invariant broken at the end: {pool.level} of {packs} packs charged")
    return waits, q_area, c_area


@functools.cache
def _numba_kernel() -> Callable[..., tuple[NDArray[np.float64], float, float]]:
    import numba

    @numba.njit(cache=True)
    def pool_queue(times, durations, packs, warm, horizon):
        n = times.size
        free = np.zeros(packs)  # min-heap: when each pack is next charged
        waits = np.zeros(n)
        q_area = 0.0
        c_area = 0.0
        for i in range(n):
            t = times[i]
            s = free[0]
            if s < t:
                s = t
            waits[i] = s - t
            e = s + durations[i]
            # drivers waiting over [t, s], packs on charge over [s, e], clipped to the window
            lo = max(t, warm)
            hi = min(s, horizon)
            if hi > lo:
                q_area += hi - lo
            lo = max(s, warm)
            hi = min(e, horizon)
            if hi > lo:
                c_area += hi - lo
            # replace the heap's root (the pack just taken) by e and sift down
            j = 0
            while True:
                k = 2 * j + 1
                if k >= packs:
                    break
                if k + 1 < packs and free[k + 1] < free[k]:
                    k += 1
                if free[k] >= e:
                    break
                free[j] = free[k]
                j = k
            free[j] = e
        return waits, q_area, c_area

    return pool_queue
