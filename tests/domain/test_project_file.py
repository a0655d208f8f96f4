"""The project file: the default loads, and each kind of mistake is named with its path."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from c2m.data import default_project, default_project_text
from c2m.domain import ProjectError, format_path, load_project, project_from_dict


def _raw() -> dict[str, Any]:
    return tomllib.loads(default_project_text())


def _problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ProjectError) as info:
        project_from_dict(raw, source="p.toml")
    return info.value.problems


def test_default_project_meets_the_brief() -> None:
    project = default_project()
    names = project.attribute_names
    for required in ("style", "colour", "smart_pack", "battery", "energy_mode", "sunroof", "ownership", "price"):
        assert required in names
    assert len(project.attribute("colour").levels) >= 6
    low, high = project.attribute("price").value_range
    assert low == 45000 and high == 110000
    assert {p.id for p in project.battery_packs} == {"20#-LFP-42", "20#-NCM-52", "25#-LFP-56", "25#-NCM-70"}
    assert len(project.competitors) == 5
    assert all(50000 <= float(c.profile["price"]) <= 100000 for c in project.competitors)
    assert len(project.stores) >= 300
    assert len({s.city for s in project.stores}) >= 30
    assert {s.kind for s in project.stores} == {"own", "partner"}
    assert project.none_option.enabled


def test_stores_lie_near_their_city_centre() -> None:
    project = default_project()
    centres = {c.name: (c.lat, c.lon) for c in project.cities}
    for store in project.stores:
        lat, lon = centres[store.city]
        assert abs(store.lat - lat) < 0.3 and abs(store.lon - lon) < 0.4, store.id


def test_negative_cost_names_the_field() -> None:
    raw = _raw()
    raw["attributes"][3]["levels"][2]["cost"] = -5
    assert _problems(raw) == ["attributes[3].levels[2].cost: must be >= 0, got -5"]


def test_unknown_field_and_missing_field() -> None:
    raw = _raw()
    raw["product"]["colour_count"] = 3
    del raw["battery_packs"][1]["kwh"]
    problems = _problems(raw)
    assert "product.colour_count: unknown field (check the spelling)" in problems
    assert "battery_packs[1].kwh: required field is missing" in problems


def test_bad_kind_literal() -> None:
    raw = _raw()
    raw["stores"][7]["kind"] = "franchise"
    (problem,) = _problems(raw)
    assert problem.startswith("stores[7].kind: must be one of")
    assert "'franchise'" in problem


def test_prohibition_with_unknown_level() -> None:
    raw = _raw()
    raw["prohibitions"][0]["levels"]["energy_mode"] = "solar"
    (problem,) = _problems(raw)
    assert problem.startswith("prohibitions[0].levels.energy_mode: unknown level 'solar'")


def test_competitor_with_missing_and_wrong_attributes() -> None:
    raw = _raw()
    del raw["competitors"][2]["profile"]["sunroof"]
    raw["competitors"][4]["profile"]["price"] = "cheap"
    problems = _problems(raw)
    assert "competitors[2].profile.sunroof: required (competitors are described on every attribute)" in problems
    assert "competitors[4].profile.price: must be a number, got 'cheap'" in problems


def test_cross_references_packs_plans_cities_ids() -> None:
    raw = _raw()
    raw["attributes"][3]["levels"][0]["battery_pack"] = "99#-XYZ"
    raw["stores"][1]["id"] = raw["stores"][0]["id"]
    raw["stores"][2]["city"] = "Atlantis"
    problems = _problems(raw)
    assert any(p.startswith("attributes[3].levels[0].battery_pack: unknown pack '99#-XYZ'") for p in problems)
    assert any(p.startswith("stores[1].id: duplicate store id") for p in problems)
    assert any(p.startswith("stores[2].city: unknown city 'Atlantis'") for p in problems)


def test_numeric_levels_must_increase_and_levels_be_unique() -> None:
    raw = _raw()
    price = next(a for a in raw["attributes"] if a["name"] == "price")
    price["levels"][1]["value"] = 10
    raw["attributes"][1]["levels"][1]["name"] = "white"
    problems = _problems(raw)
    assert any("strictly increasing" in p for p in problems)
    assert any(p.startswith("attributes[1]: duplicate level names ['white']") for p in problems)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="file not found"):
        load_project(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n", encoding="utf-8")
    with pytest.raises(ProjectError, match=r"bad.toml: not valid TOML"):
        load_project(bad)


def test_format_path() -> None:
    assert format_path(("attributes", 3, "levels", 2, "cost")) == "attributes[3].levels[2].cost"
    assert format_path(()) == "<root>"
