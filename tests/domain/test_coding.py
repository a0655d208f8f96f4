"""Profiles, prohibitions, costs and the feature coding every model shares."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest

from c2m.data import default_project
from c2m.domain import (
    FeatureCoder,
    check_profile,
    enumerate_profiles,
    fixed_cost,
    is_prohibited,
    rent_plan_of,
    variable_cost,
)
from c2m.errors import C2MError

PROJECT = default_project()
CODER = FeatureCoder.from_project(PROJECT)
BASE = {
    "style": "classic", "colour": "white", "smart_pack": "basic", "battery": "ncm52",
    "energy_mode": "swap", "sunroof": "no", "ownership": "rent_capped", "price": 49900.0,
}


def test_feature_names_dummy_against_first_level() -> None:
    names = CODER.feature_names
    assert names[0] == "style=sporty" and names[-2:] == ["price", "none"]
    n_dummies = sum(len(a.levels) - 1 for a in PROJECT.attributes if a.kind != "numeric")
    assert len(names) == n_dummies + 1 + 1


def test_encode_and_decode_are_consistent() -> None:
    rng = np.random.default_rng(0)
    coef = rng.normal(size=CODER.n_features)
    worths = CODER.decode_coefficients(coef)
    profile = dict(BASE, colour="pink", sunroof="yes")
    utility = float(CODER.encode(profile) @ coef)
    by_hand = sum(
        worths[a.name][str(profile[a.name])] for a in PROJECT.attributes if a.kind != "numeric"
    ) + worths["price"]["price"] * 49900 / 10000
    assert utility == pytest.approx(by_hand)
    assert all(next(iter(w.values())) == 0.0 for name, w in worths.items() if name != "price")


def test_encode_frame_matches_encode_and_codes_none() -> None:
    profiles = [BASE, dict(BASE, style="retro", price=60000.0)]
    frame = pl.DataFrame([*profiles, {k: None for k in BASE}]).with_columns(
        is_none=pl.Series([False, False, True])
    )
    X = CODER.encode_frame(frame)
    assert np.array_equal(X[:2], CODER.encode_many(profiles))
    assert np.array_equal(X[2], CODER.none_row())


def test_encode_frame_names_bad_level_and_row() -> None:
    frame = pl.DataFrame([BASE, dict(BASE, colour="purple")])
    with pytest.raises(C2MError, match=r"column 'colour' row 1: unknown level 'purple'"):
        CODER.encode_frame(frame)
    with pytest.raises(C2MError, match=r"missing attribute column\(s\) \['sunroof'\]"):
        CODER.encode_frame(frame.drop("sunroof"))


def test_enumerate_profiles_is_the_allowed_product_space() -> None:
    profiles = enumerate_profiles(PROJECT)
    sizes = [len(a.levels) for a in PROJECT.attributes]
    all_combos = list(itertools.product(*[a.level_names for a in PROJECT.attributes]))
    assert len(all_combos) == int(np.prod(sizes))
    expected = sum(
        1
        for combo in all_combos
        if not is_prohibited(PROJECT, dict(zip(PROJECT.attribute_names, combo, strict=True)))
    )
    assert len(profiles) == expected < len(all_combos)
    assert not any(is_prohibited(PROJECT, p) for p in profiles)
    assert not any(p["energy_mode"] == "plugin" and p["ownership"] != "buy" for p in profiles)


def test_costs_count_the_pack_only_when_bought() -> None:
    rented = variable_cost(PROJECT, BASE)
    bought = variable_cost(PROJECT, dict(BASE, ownership="buy"))
    pack = PROJECT.battery_pack("20#-NCM-52")
    assert bought - rented == pytest.approx(pack.cost)
    expected = PROJECT.product.base_unit_cost + PROJECT.attribute("energy_mode").level("swap").cost
    assert rented == pytest.approx(expected)
    line = [BASE, dict(BASE, colour="pink"), dict(BASE, colour="pink", sunroof="yes")]
    per_variant = PROJECT.product.fixed_cost_per_variant * 3
    pink = PROJECT.attribute("colour").level("pink").fixed_cost
    roof = PROJECT.attribute("sunroof").level("yes").fixed_cost
    assert fixed_cost(PROJECT, line) == pytest.approx(per_variant + pink + roof)


def test_rent_plan_follows_the_pack() -> None:
    assert rent_plan_of(PROJECT, dict(BASE, ownership="buy")) is None
    assert rent_plan_of(PROJECT, BASE) == ("capped", 399, 3000, 0.2)
    assert rent_plan_of(PROJECT, dict(BASE, battery="ncm70", ownership="rent_unlimited"))[1] == 599


def test_check_profile_errors() -> None:
    assert check_profile(PROJECT, dict(BASE, price="52000"))["price"] == 52000.0
    with pytest.raises(C2MError, match=r"line\[0\].sunroof: unknown level 'maybe'"):
        check_profile(PROJECT, dict(BASE, sunroof="maybe"), where="line[0]")
    with pytest.raises(C2MError, match=r"unknown attribute\(s\) \['wheels'\]"):
        check_profile(PROJECT, dict(BASE, wheels="alloy"))


def test_prohibition_on_a_numeric_level_matches_its_value() -> None:
    raw = PROJECT.model_dump()
    raw["prohibitions"].append({"levels": {"sunroof": "yes", "price": ["p45k", "p55k"]}, "reason": None})
    from c2m.domain import project_from_dict

    project = project_from_dict(raw)
    assert is_prohibited(project, dict(BASE, sunroof="yes", price=45000.0))
    assert is_prohibited(project, dict(BASE, sunroof="yes", price=55000))
    assert not is_prohibited(project, dict(BASE, sunroof="yes", price=65000.0))
    assert not is_prohibited(project, dict(BASE, sunroof="no", price=45000.0))
