"""Station battery stock: Erlang formulas against hand values and a discrete-event simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from c2m.battery import (
    erlang_b,
    erlang_c,
    hourly_profile,
    offered_load,
    simulate_station,
    station_stock,
    wait_probability,
)
from c2m.errors import C2MError


def test_erlang_formulas_known_values() -> None:
    assert float(erlang_b(1, 2.0)) == pytest.approx(2.0 / 3.0)
    # B(2, a) = (a^2/2) / (1 + a + a^2/2)
    assert float(erlang_b(2, 1.5)) == pytest.approx(1.125 / (1 + 1.5 + 1.125))
    assert float(erlang_b(10, 5.0)) == pytest.approx(0.018384, abs=2e-6)
    assert float(erlang_c(1, 0.6)) == pytest.approx(0.6)  # M/M/1: P(wait) = rho
    # the textbook closed forms, summed directly
    a, c = 5.0, 10
    tail = a**c / math.factorial(c) * c / (c - a)
    direct_c = tail / (sum(a**k / math.factorial(k) for k in range(c)) + tail)
    assert float(erlang_c(c, a)) == pytest.approx(direct_c, rel=1e-12)
    assert float(erlang_c(3, 3.0)) == 1.0


def test_hourly_profile_has_two_commuting_peaks() -> None:
    prof = hourly_profile()
    assert prof.shape == (24,) and prof.sum() == pytest.approx(1.0)
    assert 7 <= int(np.argmax(prof[:12])) <= 9 and 17 <= int(np.argmax(prof[12:])) + 12 <= 19
    assert prof[3] < prof[8] / 5


def test_offered_load_is_arrivals_over_the_charge_time() -> None:
    flat = np.full(24, 12.0)
    np.testing.assert_allclose(offered_load(flat, 1.0), 12.0)
    np.testing.assert_allclose(offered_load(flat, 2.5), 30.0)
    prof = 200 * hourly_profile()
    # averaged over the day, packs on charge = daily arrivals x charge time / 24 (Little's law)
    assert offered_load(prof, 1.5).mean() == pytest.approx(200 * 1.5 / 24, rel=1e-9)


@pytest.mark.parametrize("model", ["delay", "loss"])
def test_station_stock_is_the_smallest_pool(model: str) -> None:
    arrivals = 300 * hourly_profile()
    s = station_stock(arrivals, charge_hours=1.0, target_wait_prob=0.05, model=model)  # type: ignore[arg-type]
    assert wait_probability(arrivals, s, 1.0, model) <= 0.05 < wait_probability(arrivals, s - 1, 1.0, model)  # type: ignore[arg-type]
    assert station_stock(np.zeros(24)) == 0


@pytest.mark.parametrize(
    ("model", "charge_time"),
    [("loss", "fixed"), ("loss", "exponential"), ("delay", "exponential")],
)
def test_analytic_matches_simulation_for_steady_arrivals(model: str, charge_time: str) -> None:
    """Erlang B (any charge time) and Erlang C (exponential charge) are exact in steady state."""
    arrivals = np.full(24, 18.0)
    packs = station_stock(arrivals, charge_hours=1.0, target_wait_prob=0.05, model=model)  # type: ignore[arg-type]
    analytic = wait_probability(arrivals, packs, 1.0, model)  # type: ignore[arg-type]
    sim = simulate_station(arrivals, packs, 1.0, days=300, seed=1, model=model, charge_time=charge_time)  # type: ignore[arg-type]
    assert sim == pytest.approx(analytic, abs=0.01)
    # one pack fewer is visibly worse in the simulation too
    worse = simulate_station(arrivals, packs - 2, 1.0, days=300, seed=1, model=model, charge_time=charge_time)  # type: ignore[arg-type]
    assert worse > sim


def test_analytic_matches_simulation_with_daily_peaks() -> None:
    """Hourly arrivals: the modified-offered-load Erlang B against the simulated loss station."""
    arrivals = 400 * hourly_profile()
    for packs in (30, 38, 46):
        analytic = wait_probability(arrivals, packs, 1.0, "loss")
        sim = simulate_station(arrivals, packs, 1.0, days=250, seed=2, model="loss", charge_time="fixed")
        assert sim == pytest.approx(analytic, rel=0.25, abs=0.004)
    # with fixed charge times, the delay formula is conservative
    s = station_stock(arrivals, 1.0, 0.05, "delay")
    assert simulate_station(arrivals, s, 1.0, days=250, seed=3, model="delay") <= 0.05 + 0.005


def test_station_stock_rejects_bad_input() -> None:
    with pytest.raises(C2MError, match="24 hourly"):
        station_stock(np.ones(12))
    with pytest.raises(C2MError, match="target_wait_prob"):
        station_stock(np.ones(24), target_wait_prob=1.5)
