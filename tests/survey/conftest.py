"""Shared projects and designs for the survey tests (built once per session)."""

from __future__ import annotations

from typing import Any

import pytest

from c2m.data import default_project
from c2m.domain import Project, project_from_dict
from c2m.survey import Design, make_design

SMALL_DESIGN = {"n_versions": 4, "n_tasks": 8, "n_alts": 3, "n_holdout": 2, "seed": 3}


def small_project(
    attributes: list[dict[str, Any]], prohibitions: list[dict[str, Any]] | None = None, none: bool = True
) -> Project:
    """A project with only what a survey design needs."""
    return project_from_dict(
        {
            "name": "test",
            "product": {"name": "widget"},
            "none_option": {"enabled": none},
            "attributes": attributes,
            "prohibitions": prohibitions or [],
        }
    )


@pytest.fixture(scope="session")
def project() -> Project:
    return default_project()


@pytest.fixture(scope="session")
def designs(project: Project) -> dict[str, Design]:
    """Default-size designs (20 versions x 12 tasks x 3 alts) for the fast methods, a smaller d_efficient."""
    out = {
        method: make_design(project, method=method, seed=0)
        for method in ("random", "complete_enumeration", "balanced_overlap", "shortcut")
    }
    out["d_efficient"] = make_design(project, method="d_efficient", **SMALL_DESIGN)
    return out
