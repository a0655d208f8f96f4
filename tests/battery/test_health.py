"""Battery life: state of health, retirement in closed form, the fleet's packs over the years."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from c2m.battery import AgeingModel, retirement_month, simulate_pack_fleet, state_of_health
from c2m.data import default_project
from c2m.errors import C2MError

PACKS = {p.chemistry: p for p in default_project().battery_packs}


@settings(max_examples=40, deadline=None)
@given(
    km=st.floats(0, 8000),
    dod=st.floats(0.05, 1.0),
    temperature=st.sampled_from(["cool", "mild", "hot"]),
    chemistry=st.sampled_from(["LFP", "NCM"]),
)
def test_state_of_health_starts_at_one_and_only_falls(km: float, dod: float, temperature: str, chemistry: str) -> None:
    soh = state_of_health(PACKS[chemistry], 240, km, dod=dod, temperature=temperature)
    assert soh[0] == 1.0
    assert np.all(np.diff(soh) < 0)


@pytest.mark.parametrize("chemistry", ["LFP", "NCM"])
@pytest.mark.parametrize("km", [0.0, 800.0, 3500.0])
@pytest.mark.parametrize("threshold", [0.7, 0.8])
def test_retirement_closed_form_matches_the_month_by_month_curve(chemistry: str, km: float, threshold: float) -> None:
    pack = PACKS[chemistry]
    months = retirement_month(pack, km, threshold=threshold)
    curve = state_of_health(pack, int(months) + 2, km)
    first_below = int(np.argmax(curve < threshold))
    assert first_below - 1 - 1e-6 <= months <= first_below + 1e-6
    # at the closed-form time the SoH is exactly the threshold (same model, continuous time)
    m = AgeingModel(0.025, 4000, 1.3) if chemistry == "LFP" else AgeingModel(0.04, 1500, 1.5)
    fade = m.calendar_rate("mild") * np.sqrt(months / 12) + m.fade_per_full_cycle(0.8) * km * months / pack.range_km
    assert 1 - fade == pytest.approx(threshold, abs=1e-9)


def test_heat_heavy_use_and_ncm_age_faster() -> None:
    lfp, ncm = PACKS["LFP"], PACKS["NCM"]
    assert retirement_month(lfp, 2000, temperature="hot") < retirement_month(lfp, 2000) < retirement_month(
        lfp, 2000, temperature="cool"
    )
    assert retirement_month(lfp, 4000) < retirement_month(lfp, 1000)
    assert retirement_month(ncm, 2000) < retirement_month(lfp, 2000)
    # deeper cycles wear more per km (Woehler exponent > 1)
    assert retirement_month(ncm, 2000, dod=1.0) < retirement_month(ncm, 2000, dod=0.4)


def test_fleet_packs_are_conserved_and_rotation_evens_their_ageing() -> None:
    pack = PACKS["NCM"]
    fleet = [400, 800, 1200, 1200, 1200, 1200, 1200, 1200]
    short_lived = AgeingModel(calendar_fade_25c=0.04, full_cycles_to_80=400, dod_exponent=1.5)  # retires in years
    runs = {
        rotation: simulate_pack_fleet(pack, fleet, km_per_month=3000, usage_spread=0.6, rotation=rotation,
                                      model=short_lived, second_life_years=2, seed=1)
        for rotation in ("even", "none")
    }
    for table in runs.values():
        bought = int(table["packs_bought"].sum())
        in_service = int(table["packs_in_service"][-1])
        assert bought == in_service + int(table["retired"].sum())  # every pack bought is somewhere
        assert int(table["retired"].sum()) == int(table["recycled"].sum()) + int(table["second_life_active"][-1])
        assert (table["packs_in_service"] >= np.ceil(np.array(fleet) * 1.15)).all()
        assert table["retired"].sum() > 0
    spread = {r: float((t["soh_p90"] - t["soh_p10"]).mean()) for r, t in runs.items()}
    assert spread["even"] < 0.6 * spread["none"]


def test_equal_drivers_make_rotation_irrelevant() -> None:
    pack = PACKS["LFP"]
    even = simulate_pack_fleet(pack, [100] * 4, usage_spread=0.0, spare_ratio=0.0, rotation="even")
    none = simulate_pack_fleet(pack, [100] * 4, usage_spread=0.0, spare_ratio=0.0, rotation="none")
    assert even.equals(none)


def test_bad_battery_life_inputs_are_named() -> None:
    pack = PACKS["LFP"]
    with pytest.raises(C2MError, match="must be in \\(0, 1\\)"):
        retirement_month(pack, 1000, threshold=1.5)
    with pytest.raises(C2MError, match="km_per_month"):
        state_of_health(pack, 12, -5)
    with pytest.raises(C2MError, match="temperature band"):
        state_of_health(pack, 12, 100, temperature="arctic")
    with pytest.raises(C2MError, match="rotation"):
        simulate_pack_fleet(pack, [10], rotation="random")
    with pytest.raises(C2MError, match="vehicles_by_year"):
        simulate_pack_fleet(pack, [])
