"""`make_design(..., n_starts=k)`: more coordinate-exchange starts never give a worse design."""

from __future__ import annotations

import numpy as np
import pytest
from tests.small_project import small_project

from c2m.errors import C2MError
from c2m.survey import d_error, make_design


def test_more_starts_never_raise_the_d_error_and_stay_deterministic() -> None:
    project = small_project()
    one = make_design(project, "d_efficient", n_versions=3, n_tasks=6, n_alts=3, n_holdout=0, seed=4)
    three = make_design(project, "d_efficient", n_versions=3, n_tasks=6, n_alts=3, n_holdout=0, seed=4, n_starts=3)
    again = make_design(project, "d_efficient", n_versions=3, n_tasks=6, n_alts=3, n_holdout=0, seed=4, n_starts=3)
    assert d_error(project, three) <= d_error(project, one) + 1e-12
    assert three.frame.equals(again.frame)


def test_a_random_start_can_win() -> None:
    """Over a few seeds some extra start beats the enumeration start (else the option would do nothing)."""
    project = small_project()
    gains = []
    for seed in range(6):
        kw = dict(n_versions=2, n_tasks=4, n_alts=2, n_holdout=0, seed=seed)
        one = d_error(project, make_design(project, "d_efficient", **kw))
        five = d_error(project, make_design(project, "d_efficient", n_starts=5, **kw))
        gains.append(one - five)
    assert max(gains) > 0 and min(gains) >= -1e-12


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_n_starts_must_be_a_positive_whole_number(bad: object) -> None:
    with pytest.raises(C2MError, match="n_starts"):
        make_design(small_project(), "d_efficient", n_starts=bad)  # type: ignore[arg-type]


def test_n_starts_is_for_d_efficient_only() -> None:
    with pytest.raises(C2MError, match="d_efficient only"):
        make_design(small_project(), "balanced_overlap", n_starts=3)
    assert np.isfinite(d_error(small_project(), make_design(small_project(), "random", n_holdout=0)))
