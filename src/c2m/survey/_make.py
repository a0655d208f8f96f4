"""make_design: build a choice-based-conjoint design for a project."""

from __future__ import annotations

import numpy as np
import polars as pl

from c2m.domain import Project
from c2m.errors import C2MError

from ._build import GREEDY_METHODS, greedy_tasks, random_tasks
from ._design import KEY_COLUMNS, Design
from ._efficient import coordinate_exchange, task_features
from ._information import as_draws, d_error_from_information, task_information
from ._space import MAX_ENUMERATED, ProfileSpace

METHODS = ("random", "complete_enumeration", "balanced_overlap", "shortcut", "d_efficient")


def holdout_positions(n_tasks: int, n_holdout: int) -> list[int]:
    """1-based task numbers of the holdout tasks: spread through the survey, the last one last.

    With 12 tasks and 2 holdouts: tasks 5 and 12.
    """
    if n_holdout == 0:
        return []
    positions = [int(np.ceil(h * n_tasks / n_holdout)) - 1 for h in range(1, n_holdout)] + [n_tasks]
    if len(set(positions)) != n_holdout or min(positions) < 1:
        positions = list(range(n_tasks - n_holdout + 1, n_tasks + 1))
    return sorted(positions)


def make_design(
    project: Project,
    method: str = "balanced_overlap",
    n_versions: int = 20,
    n_tasks: int = 12,
    n_alts: int = 3,
    n_holdout: int = 2,
    seed: int = 0,
    prior: np.ndarray | None = None,
    n_starts: int = 1,
) -> Design:
    """Build a choice-based-conjoint design for ``project``.

    ``method`` is one of ``random``, ``complete_enumeration``, ``balanced_overlap``,
    ``shortcut`` or ``d_efficient``. Every concept is an allowed profile and no
    task shows two identical concepts. ``n_holdout`` of the ``n_tasks`` tasks are
    fixed holdout tasks, identical in every version (built by complete
    enumeration from their own seed stream) and flagged ``holdout``.
    ``d_efficient`` starts from a complete-enumeration design and runs coordinate
    exchange on the MNL D-error at ``prior`` (coefficients in the project's
    feature order, zeros when None; a 2-D array of draws gives the Bayesian
    D-error). ``n_starts`` > 1 runs coordinate exchange again from that many - 1
    random designs (their own seed streams) and keeps the lowest D-error.
    Same arguments and seed, same design.
    """
    if method not in METHODS:
        raise C2MError(f"survey design: unknown method {method!r}; expected one of {', '.join(METHODS)}")
    for name, value, low in (("n_versions", n_versions, 1), ("n_tasks", n_tasks, 1), ("n_alts", n_alts, 2)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise C2MError(f"survey design: {name} must be a whole number >= {low}, got {value!r}")
    if (
        isinstance(n_holdout, bool)
        or not isinstance(n_holdout, int | np.integer)
        or not (0 <= n_holdout < n_tasks)
    ):
        raise C2MError(
            f"survey design: n_holdout must be a whole number from 0 to n_tasks - 1 = {n_tasks - 1}, "
            f"got {n_holdout!r}"
        )
    if isinstance(n_starts, bool) or not isinstance(n_starts, int | np.integer) or n_starts < 1:
        raise C2MError(f"survey design: n_starts must be a whole number >= 1, got {n_starts!r}")
    if n_starts > 1 and method != "d_efficient":
        raise C2MError(f"survey design: n_starts applies to method d_efficient only, not {method!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise C2MError(f"survey design: seed must be a whole number >= 0, got {seed!r}")
    space = ProfileSpace.from_project(project)
    beta = as_draws(prior, space.n_features, space.coder.feature_names) if method == "d_efficient" else None
    rng = np.random.default_rng(seed)
    n_design = n_tasks - n_holdout
    enumerable = space.n_total <= MAX_ENUMERATED
    if method == "random":
        tasks = random_tasks(space, rng, (n_versions, n_design), n_alts)
    elif method in GREEDY_METHODS:
        tasks = greedy_tasks(space, rng, method, n_versions, n_design, n_alts)
    else:
        assert beta is not None
        if enumerable:
            start = greedy_tasks(space, rng, "complete_enumeration", n_versions, n_design, n_alts)
        else:
            start = random_tasks(space, rng, (n_versions, n_design), n_alts)
        tasks = coordinate_exchange(space, start, beta, rng)
        best = _d_error(space, tasks, beta)
        for k in range(1, n_starts):
            start_rng = np.random.default_rng([seed, 2, k])
            start = random_tasks(space, start_rng, (n_versions, n_design), n_alts)
            candidate = coordinate_exchange(space, start, beta, start_rng)
            error = _d_error(space, candidate, beta)
            if error < best:
                tasks, best = candidate, error

    positions = holdout_positions(n_tasks, n_holdout)
    full = np.zeros((n_versions, n_tasks, n_alts, space.n_attributes), dtype=np.int64)
    is_holdout = np.zeros(n_tasks, dtype=bool)
    is_holdout[[p - 1 for p in positions]] = True
    if n_holdout:
        holdout_rng = np.random.default_rng([seed, 1])
        if enumerable:
            fixed = greedy_tasks(space, holdout_rng, "complete_enumeration", 1, n_holdout, n_alts)[0]
        else:
            fixed = random_tasks(space, holdout_rng, (n_holdout,), n_alts)
        full[:, is_holdout] = fixed[None]
    full[:, ~is_holdout] = tasks

    if space.prohibited(full).any():  # pragma: no cover - the builders never produce one
        raise RuntimeError("survey design: a builder produced a prohibited concept")
    frame = design_frame(space, full, is_holdout)
    return Design(
        frame=frame,
        method=method,
        seed=int(seed),
        n_versions=int(n_versions),
        n_tasks=int(n_tasks),
        n_alts=int(n_alts),
        none_option=space.with_none,
        project_name=project.name,
    )


def _d_error(space: ProfileSpace, tasks: np.ndarray, beta: np.ndarray) -> float:
    """The (Bayesian) D-error of tasks ``(V, T, J, A)`` for the average respondent, at draws ``beta``."""
    info = task_information(task_features(space, tasks), beta).sum(axis=(1, 2)) / tasks.shape[0]
    return d_error_from_information(info)


def design_frame(space: ProfileSpace, tasks: np.ndarray, is_holdout: np.ndarray) -> pl.DataFrame:
    """The long design frame of tasks ``(V, T, J, A)``."""
    V, T, J, A = tasks.shape
    v, t, j = np.meshgrid(np.arange(1, V + 1), np.arange(1, T + 1), np.arange(1, J + 1), indexing="ij")
    keys = [
        pl.Series(name, arr.ravel(), dtype=pl.Int64) for name, arr in zip(KEY_COLUMNS, (v, t, j), strict=True)
    ]
    holdout = pl.Series("holdout", np.broadcast_to(is_holdout[None, :, None], (V, T, J)).ravel())
    return pl.DataFrame([*keys, *space.columns(tasks.reshape(-1, A)), holdout])
