"""Design construction: prohibitions, distinct concepts, balance, overlap, holdouts, determinism."""

from __future__ import annotations

import os

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from c2m.domain import FeatureCoder, Project, enumerate_profiles, is_prohibited
from c2m.errors import C2MError
from c2m.survey import METHODS, Design, design_diagnostics, holdout_positions, make_design
from c2m.survey._space import ProfileSpace

from .conftest import SMALL_DESIGN, small_project


def check_valid(project: Project, design: Design) -> None:
    """Every concept allowed, no task with two identical concepts, schema and values as documented."""
    frame = design.frame
    names = project.attribute_names
    assert frame.columns == ["version", "task", "alt", *names, "holdout"]
    for key in ("version", "task", "alt"):
        assert frame.schema[key] == pl.Int64
    assert frame.schema["holdout"] == pl.Boolean
    assert frame.height == design.n_versions * design.n_tasks * design.n_alts
    for attribute in project.attributes:
        column = frame[attribute.name]
        if attribute.kind == "numeric":
            assert column.dtype == pl.Float64
            values = {float(lv.value) for lv in attribute.levels if lv.value is not None}
            assert set(column.to_list()) <= values
        else:
            assert column.dtype == pl.String
            assert set(column.to_list()) <= set(attribute.level_names)
    for profile in frame.select(names).unique().iter_rows(named=True):
        assert not is_prohibited(project, profile), profile
    per_task = frame.group_by("version", "task").agg(pl.struct(names).n_unique().alias("distinct"))
    assert (per_task["distinct"] == design.n_alts).all()
    assert design.none_option == project.none_option.enabled


@pytest.mark.parametrize("method", METHODS)
def test_every_method_respects_prohibitions_on_the_default_project(
    project: Project, designs: dict[str, Design], method: str
) -> None:
    design = designs[method]
    check_valid(project, design)
    assert design.method == method and design.project_name == project.name


def test_profile_space_matches_the_domain(project: Project) -> None:
    space = ProfileSpace.from_project(project)
    allowed = space.allowed_profiles()
    reference = enumerate_profiles(project)
    assert len(allowed) == len(reference) == 17136
    frame = pl.DataFrame(space.columns(allowed))
    assert frame.to_dicts() == reference
    coder = FeatureCoder.from_project(project)
    assert np.array_equal(space.encode(allowed[:500]), coder.encode_frame(frame.head(500)))


_LEVELS = st.integers(min_value=2, max_value=4)


@st.composite
def projects_with_prohibitions(draw: st.DrawFn) -> Project:
    n_cat = draw(st.integers(min_value=2, max_value=3))
    attributes = [
        {"name": f"a{i}", "levels": [{"name": f"l{k}"} for k in range(draw(_LEVELS))]} for i in range(n_cat)
    ]
    if draw(st.booleans()):
        attributes.append(
            {
                "name": "price",
                "kind": "numeric",
                "scale": 100.0,
                "levels": [{"name": f"p{k}", "value": 100.0 * (k + 1)} for k in range(draw(_LEVELS))],
            }
        )
    prohibitions = []
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        pair = draw(st.lists(st.integers(0, n_cat - 1), min_size=2, max_size=2, unique=True))
        levels = {}
        for i in pair:
            names = [lv["name"] for lv in attributes[i]["levels"]]
            levels[f"a{i}"] = draw(
                st.lists(st.sampled_from(names), min_size=1, max_size=len(names) - 1, unique=True)
            )
        prohibitions.append({"levels": levels})
    return small_project(attributes, prohibitions, none=draw(st.booleans()))


EXAMPLES = int(os.environ.get("C2M_HYPOTHESIS_EXAMPLES", "20"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(project=projects_with_prohibitions(), n_alts=st.integers(2, 3), seed=st.integers(0, 2**16))
def test_prohibitions_never_violated_on_random_projects(project: Project, n_alts: int, seed: int) -> None:
    space = ProfileSpace.from_project(project)
    n_allowed = len(enumerate_profiles(project))
    assert len(space.allowed_profiles()) == n_allowed
    for method in METHODS:
        kwargs = {
            "method": method,
            "n_versions": 2,
            "n_tasks": 4,
            "n_alts": n_alts,
            "n_holdout": 1,
            "seed": seed,
        }
        if n_allowed < n_alts:
            with pytest.raises(C2MError):
                make_design(project, **kwargs)
            continue
        design = make_design(project, **kwargs)
        check_valid(project, design)
        diagnostics = design_diagnostics(project, design)
        assert diagnostics.level_counts["count"].sum() == 2 * 3 * n_alts * len(project.attributes)
        assert method in diagnostics.summary()


def test_complete_enumeration_balances_levels_better_than_random(
    project: Project, designs: dict[str, Design]
) -> None:
    random = design_diagnostics(project, designs["random"])
    complete = design_diagnostics(project, designs["complete_enumeration"])
    assert complete.balance < 0.15 < 0.4 < random.balance
    sq_dev = {
        name: float(((d.level_counts["share"] - d.level_counts["ideal_share"]) ** 2).sum())
        for name, d in (("random", random), ("complete", complete))
    }
    assert sq_dev["complete"] < sq_dev["random"] / 10


def test_complete_enumeration_has_minimal_overlap_without_prohibitions(project: Project) -> None:
    free = project.model_copy(update={"prohibitions": []})
    design = make_design(free, method="complete_enumeration", n_versions=6, n_tasks=10, n_alts=3, seed=1)
    for attribute in free.attributes:
        distinct = design.frame.group_by("version", "task").agg(pl.col(attribute.name).n_unique())
        expected = min(len(attribute.levels), design.n_alts)
        assert (distinct[attribute.name] == expected).all(), attribute.name


def test_overlap_is_ordered_complete_below_balanced_below_random(
    project: Project, designs: dict[str, Design]
) -> None:
    overlap = {
        method: design_diagnostics(project, designs[method]).overlap.filter(~pl.col("forced"))["overlap"]
        for method in ("random", "balanced_overlap", "complete_enumeration")
    }
    assert overlap["complete_enumeration"].mean() < 0.05  # type: ignore[operator]
    assert 0.25 < overlap["balanced_overlap"].mean() < overlap["random"].mean()  # type: ignore[operator]


def test_holdouts_are_identical_across_versions(designs: dict[str, Design]) -> None:
    for design in designs.values():
        frame = design.frame
        holdout_tasks = design.holdout_tasks
        assert holdout_tasks == holdout_positions(design.n_tasks, 2)
        held = frame.filter(pl.col("holdout")).drop("version")
        per_version = held.partition_by("alt", "task", maintain_order=True)
        for rows in per_version:
            assert rows.drop("task", "alt").unique().height == 1
        assert held.height == design.n_versions * 2 * design.n_alts
    assert holdout_positions(12, 2) == [5, 12]
    assert holdout_positions(12, 1) == [12]
    assert holdout_positions(2, 1) == [2]
    assert holdout_positions(3, 2) == [1, 3]
    assert holdout_positions(12, 0) == []


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_design(project: Project, method: str) -> None:
    kwargs = {"n_versions": 2, "n_tasks": 5, "n_alts": 3, "n_holdout": 1}
    first = make_design(project, method=method, seed=11, **kwargs)
    again = make_design(project, method=method, seed=11, **kwargs)
    other = make_design(project, method=method, seed=12, **kwargs)
    assert first.frame.equals(again.frame)
    assert not first.frame.equals(other.frame)


def test_bad_arguments_raise_user_errors(project: Project) -> None:
    with pytest.raises(C2MError) as err:
        make_design(project, method="orthogonal")
    message = str(err.value)
    assert "orthogonal" in message and all(m in message for m in METHODS)
    with pytest.raises(C2MError, match="n_holdout"):
        make_design(project, n_tasks=3, n_holdout=3)
    with pytest.raises(C2MError, match="n_alts"):
        make_design(project, n_alts=1)
    with pytest.raises(C2MError, match="seed"):
        make_design(project, seed=None)  # type: ignore[arg-type]
    with pytest.raises(C2MError, match="20 columns"):
        make_design(project, method="d_efficient", prior=np.zeros(3), **SMALL_DESIGN)
