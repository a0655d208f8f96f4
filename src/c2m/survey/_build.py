"""Concept-by-concept design builders: random, complete enumeration, balanced overlap, shortcut.

A design is an integer array ``(V, T, J, A)`` of level indices. The greedy
builders follow Sawtooth Software's CBC design strategies: each concept is the
allowed profile that is best on a lexicographic list of criteria, ties broken
at random (seeded):

- ``complete_enumeration``: minimal overlap within the task, then level balance
  within the version, then balance and orthogonality over the whole design;
- ``balanced_overlap``: the same, but each attribute of a task is allowed one
  repeated level with probability ``OVERLAP_SHARE`` (it must then repeat once),
  so the design keeps some level overlap, which helps estimate interactions
  and captures must-have levels;
- ``shortcut``: minimal overlap, then level balance within the version only.

Scores are sums of counts: choosing the level with the smallest count is the
greedy step that minimises the sum of squared counts. The whole-design score
weights one-way counts by ``L_a`` and two-way counts by ``L_a L_b``, the greedy
step of minimising the chi-square distance of the one- and two-way tables from
uniform. A task whose concepts could not all avoid overlap (prohibitions can
force it) is rebuilt with other tie-breaks up to ``MAX_ATTEMPTS`` times.

With prohibitions, strict minimal overlap can confound attributes: in the
default project a plug-in car cannot rent its battery, so a task showing all
three energy modes and all three ownership options must pair ``plugin`` with
``buy``. ``design_diagnostics`` shows the cost (D-error, standard errors).
"""

from __future__ import annotations

import numpy as np

from c2m.errors import C2MError

from ._kernels import kernel, use_numba
from ._space import ProfileSpace

GREEDY_METHODS = ("complete_enumeration", "balanced_overlap", "shortcut")
OVERLAP_SHARE = 0.5
MAX_ATTEMPTS = 3


def random_tasks(
    space: ProfileSpace, rng: np.random.Generator, shape: tuple[int, ...], n_alts: int
) -> np.ndarray:
    """Tasks of ``n_alts`` distinct allowed profiles drawn uniformly; returns ``(*shape, J, A)``."""
    n_tasks = int(np.prod(shape))
    A = space.n_attributes
    out = np.zeros((n_tasks, n_alts, A), dtype=np.int64)
    for t in range(n_tasks):
        chosen: list[np.ndarray] = []
        ids: set[int] = set()
        for _attempt in range(1000):
            draws = (rng.random((64, A)) * space.n_levels).astype(np.int64)
            draws = draws[~space.prohibited(draws)]
            for row, pid in zip(draws, space.profile_ids(draws), strict=True):
                if int(pid) not in ids:
                    ids.add(int(pid))
                    chosen.append(row)
                if len(chosen) == n_alts:
                    break
            if len(chosen) == n_alts:
                break
        else:
            raise C2MError(
                f"survey design: could not draw {n_alts} different allowed profiles for a task; "
                "the prohibitions leave too few allowed profiles"
            )
        out[t] = np.array(chosen)
    return out.reshape(*shape, n_alts, A)


class _NumbaSelect:
    """The candidate filter of :func:`_greedy_task` as one numba pass (same candidates, same order)."""

    def __init__(self, counts: _Counts, n_cand: int) -> None:
        self.kernel = kernel("greedy_select")
        self.counts = counts
        self.excluded = np.zeros(n_cand, dtype=np.bool_)
        self.score = np.empty(n_cand)
        self.keep = np.empty(n_cand, dtype=np.int64)

    def __call__(self, cost: np.ndarray, v: int, use_global: bool) -> tuple[float, np.ndarray]:
        c = self.counts
        best, n = self.kernel(
            c.cand_one, cost, self.excluded, c.version[v], c.total, c.cand_pair, c.pair, use_global, self.score,
            self.keep,
        )
        return float(best), self.keep[:n]


class _Counts:
    """Running level counts as flat vectors: one-way per version and overall, two-way overall.

    ``one[c]`` is the column of (attribute, level) ``c``; ``pair[c]`` of a
    (attribute pair, level pair). Whole-design counts are stored pre-weighted
    (by ``L_a`` one-way, ``L_a L_b`` two-way) so a candidate's score is one sum.
    """

    def __init__(self, space: ProfileSpace, cand: np.ndarray, n_versions: int) -> None:
        L = space.n_levels
        A = space.n_attributes
        self.one_start = np.concatenate([[0], np.cumsum(L)[:-1]]).astype(np.int64)
        self.cand_one = cand + self.one_start[None, :]  # (N, A)
        self.one_weight = np.repeat(L.astype(float), L)
        pairs = [(a, b) for a in range(A) for b in range(a + 1, A)]
        sizes = [int(L[a] * L[b]) for a, b in pairs]
        pair_start = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.pairs = pairs
        self.pair_start = pair_start
        self.pair_weight = (
            np.concatenate([np.full(n, float(L[a] * L[b])) for n, (a, b) in zip(sizes, pairs, strict=True)])
            if pairs
            else np.zeros(0)
        )
        self.cand_pair = (
            np.stack(
                [pair_start[p] + cand[:, a] * L[b] + cand[:, b] for p, (a, b) in enumerate(pairs)], axis=1
            )
            if pairs
            else np.zeros((cand.shape[0], 0), dtype=np.int64)
        )
        self.pair_a = np.array([a for a, _ in pairs], dtype=np.int64)
        self.pair_b = np.array([b for _, b in pairs], dtype=np.int64)
        self.L = L
        self.version = np.zeros((n_versions, int(L.sum())))
        self.total = np.zeros(int(L.sum()))
        self.pair = np.zeros(int(sum(sizes)))

    def add(self, v: int, profile: np.ndarray, sign: float = 1.0) -> None:
        one = self.one_start + profile
        self.version[v, one] += sign
        self.total[one] += sign * self.one_weight[one]
        if self.pairs:
            a, b = self.pair_a, self.pair_b
            cells = self.pair_start + profile[a] * self.L[b] + profile[b]
            self.pair[cells] += sign * self.pair_weight[cells]


def greedy_tasks(
    space: ProfileSpace,
    rng: np.random.Generator,
    method: str,
    n_versions: int,
    n_tasks: int,
    n_alts: int,
    overlap_share: float = OVERLAP_SHARE,
    engine: str = "auto",
) -> np.ndarray:
    """Build ``(V, T, J, A)`` tasks with one of :data:`GREEDY_METHODS`.

    ``engine`` ``auto`` uses the numba candidate filter when numba imports, else
    the NumPy reference; both give the same design for the same seed.
    """
    cand = space.allowed_profiles()
    if cand.shape[0] < n_alts:
        raise C2MError(f"survey design: only {cand.shape[0]} allowed profile(s), fewer than n_alts={n_alts}")
    cand_ids = space.profile_ids(cand)
    counts = _Counts(space, cand, n_versions)
    select = _NumbaSelect(counts, cand.shape[0]) if use_numba(engine) else None
    out = np.zeros((n_versions, n_tasks, n_alts, space.n_attributes), dtype=np.int64)
    for v in range(n_versions):
        for t in range(n_tasks):
            best: tuple[float, np.ndarray] | None = None
            for _attempt in range(MAX_ATTEMPTS):
                task, penalty = _greedy_task(
                    cand, cand_ids, counts, rng, method, v, n_alts, overlap_share, select
                )
                if best is None or penalty < best[0]:
                    best = (penalty, task)
                if penalty == 0:
                    break
                for profile in task:  # roll back and try other tie-breaks
                    counts.add(v, profile, -1.0)
            assert best is not None
            if best[0] != 0:
                for profile in best[1]:
                    counts.add(v, profile)
            out[v, t] = best[1]
    return out


def _greedy_task(
    cand: np.ndarray,
    cand_ids: np.ndarray,
    counts: _Counts,
    rng: np.random.Generator,
    method: str,
    v: int,
    n_alts: int,
    overlap_share: float,
    select: _NumbaSelect | None = None,
) -> tuple[np.ndarray, float]:
    """One task built concept by concept (counts updated); returns it and its total overlap penalty."""
    L = counts.L
    A = L.size
    starts = counts.one_start
    in_task = np.zeros(int(L.sum()))
    if method == "balanced_overlap":
        may_repeat = (rng.random(A) < overlap_share) & (n_alts <= L)
    else:
        may_repeat = np.zeros(A, dtype=bool)
    repeated = np.zeros(A, dtype=bool)
    task = np.zeros((n_alts, A), dtype=np.int64)
    task_ids: list[int] = []
    picks: list[int] = []
    penalty = 0.0
    for j in range(n_alts):
        last = j == n_alts - 1
        cost = np.zeros_like(in_task)
        for a in range(A):
            block = in_task[starts[a] : starts[a] + L[a]]
            if may_repeat[a] and not repeated[a]:
                if last:  # must repeat a level already shown
                    cost[starts[a] : starts[a] + L[a]] = block == 0
            else:
                cost[starts[a] : starts[a] + L[a]] = block - block.min()
        if select is not None:
            low, keep = select(cost, v, method != "shortcut")
            penalty += low
        else:
            score = cost[counts.cand_one].sum(axis=1)
            if task_ids:
                score[np.isin(cand_ids, task_ids)] = np.inf
            keep = np.flatnonzero(score == score.min())
            penalty += float(score[keep[0]])
            keep = _argmin_subset(keep, counts.version[v][counts.cand_one[keep]].sum(axis=1))
            if method != "shortcut" and keep.size > 1:
                global_score = counts.total[counts.cand_one[keep]].sum(axis=1)
                global_score += counts.pair[counts.cand_pair[keep]].sum(axis=1)
                keep = _argmin_subset(keep, global_score)
        pick = int(keep[rng.integers(keep.size)])
        if select is not None:
            select.excluded[pick] = True
            picks.append(pick)
        profile = cand[pick]
        task[j] = profile
        task_ids.append(int(cand_ids[pick]))
        one = starts + profile
        repeated |= in_task[one] > 0
        in_task[one] += 1
        counts.add(v, profile)
    if select is not None:
        select.excluded[picks] = False
    return task, penalty


def _argmin_subset(keep: np.ndarray, score: np.ndarray) -> np.ndarray:
    if keep.size <= 1:
        return keep
    return keep[score == score.min()]
