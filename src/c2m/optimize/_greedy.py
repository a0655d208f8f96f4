"""Greedy construction + 1-swap local search over candidates, for any preference model.

Each candidate is a configuration at one price. Every add or swap step scores
all candidates at once with array arithmetic over the people (``R``): under the
logit rule from the running numerator/denominator of each person's ratio, under
first choice from each person's current best utility.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


@dataclass
class Problem:
    """Candidates flattened to ``n`` columns, with the people's view of them."""

    util: np.ndarray  # (R, n) utilities (first choice) or exp-utilities (logit)
    other: np.ndarray  # (R,) sum exp of competitors and None (logit) or their best utility
    weights: np.ndarray  # (R,)
    margin: np.ndarray  # (n,)
    config: np.ndarray  # (n,) configuration index of each candidate
    fl_bits: np.ndarray  # (n,) fixed-cost levels used
    cover: np.ndarray  # (n, q)
    fl_cost: np.ndarray  # (L,)
    fixed_per_variant: float
    scale: float
    years: float
    charge_fixed: bool
    budget: float | None
    min_share: float
    logit: bool
    k: int

    def fixed(self, bits: int, n_variants: int) -> float:
        return self.fixed_per_variant * n_variants + float(
            sum(c for i, c in enumerate(self.fl_cost) if bits >> i & 1)
        )


def _add_scores(
    p: Problem, line: list[int], final: bool, cols: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(objective, violation) of ``line + [c]`` for every candidate ``c`` (or those in ``cols``)."""
    util = p.util if cols is None else p.util[:, cols]
    margin = p.margin if cols is None else p.margin[cols]
    fl_bits = p.fl_bits if cols is None else p.fl_bits[cols]
    n = margin.size
    if p.logit:
        num = (p.util[:, line] * p.margin[line]).sum(axis=1) if line else np.zeros(p.other.size)
        den = p.other + (p.util[:, line].sum(axis=1) if line else 0.0)
        top = util * margin[None, :]
        top += num[:, None]
        top /= util + den[:, None]
        val = p.weights @ top
    else:
        if line:
            ours_best = p.util[:, line].max(axis=1)
            winner = np.asarray(line)[p.util[:, line].argmax(axis=1)]
            cur_m = np.where(ours_best > p.other, p.margin[winner], 0.0)
            best = np.maximum(ours_best, p.other)
        else:
            cur_m = np.zeros(p.other.size)
            best = p.other
        wins = util > best[:, None]
        val = p.weights @ np.where(wins, margin[None, :], cur_m[:, None])
    obj = p.scale * val
    bits = int(np.bitwise_or.reduce(p.fl_bits[line])) if line else 0
    new_bits = fl_bits | bits
    fixed = p.fixed_per_variant * (len(line) + 1) + sum(
        p.fl_cost[i] * ((new_bits >> i) & 1) for i in range(p.fl_cost.size)
    )
    fixed = np.broadcast_to(np.asarray(fixed, dtype=float), (n,))
    if p.charge_fixed:
        obj = obj - fixed / p.years
    viol = np.zeros(n)
    infeasible = np.zeros(n, dtype=bool)
    config = p.config if cols is None else p.config[cols]
    if line:
        infeasible |= np.isin(config, p.config[line])
    if p.budget is not None:
        infeasible |= fixed > p.budget + 1e-9
    q = p.cover.shape[1]
    if q:
        covered = p.cover[line].any(axis=0) if line else np.zeros(q, dtype=bool)
        missing = ~covered
        remaining = p.k - len(line)  # slots left, this one included
        if missing.any() and missing.sum() >= remaining:
            cover = p.cover if cols is None else p.cover[cols]
            still = missing.sum() - cover[:, missing].sum(axis=1)
            viol += np.maximum(still - (remaining - 1), 0).astype(float)
    if final and p.min_share > 0:
        viol += _share_violation(p, line, util)
    obj = np.where(infeasible, -np.inf, obj)
    return obj, viol


def _share_violation(p: Problem, line: list[int], util: np.ndarray) -> np.ndarray:
    """Shortfall below ``min_share`` of the smallest variant share, for every completion."""
    if p.logit:
        den = p.other[:, None] + (p.util[:, line].sum(axis=1)[:, None] if line else 0.0) + util
        shares = [p.weights @ (util / den)]
        shares += [p.weights @ (p.util[:, [j]] / den) for j in line]
    else:
        best_line = p.util[:, line].max(axis=1) if line else np.full(p.other.size, -np.inf)
        best = np.maximum(best_line, p.other)
        wins_c = util > best[:, None]
        shares = [p.weights @ wins_c]
        for j in line:
            others = [i for i in line if i != j]
            rival = np.maximum(p.other, p.util[:, others].max(axis=1)) if others else p.other
            wins_j = (p.util[:, j] > rival)[:, None] & ~(util > p.util[:, [j]])
            shares.append(p.weights @ wins_j)
    smallest = np.min(np.vstack(shares), axis=0)
    return np.maximum(p.min_share - smallest, 0.0)


def _best(obj: np.ndarray, viol: np.ndarray) -> int:
    key_obj = np.where(np.isfinite(obj), obj, -np.inf)
    order = np.lexsort((key_obj, -viol))
    return int(order[-1])


def _better(obj: float, viol: float, obj_now: float, viol_now: float) -> bool:
    return (viol < viol_now - 1e-12) or (
        viol <= viol_now + 1e-12 and obj > obj_now + 1e-9 * max(1.0, abs(obj_now))
    )


def _local_search(
    p: Problem, line: list[int], obj_now: float, viol_now: float, deadline: float
) -> tuple[list[int], float, float]:
    """1-swap local search: replace one variant by the best candidate while it improves."""
    k = len(line)
    improved = True
    while improved and time.perf_counter() < deadline:
        improved = False
        for i in range(k):
            rest = line[:i] + line[i + 1 :]
            obj, viol = _add_scores(p, rest, final=True)
            c = _best(obj, viol)
            if np.isfinite(obj[c]) and _better(float(obj[c]), float(viol[c]), obj_now, viol_now):
                line = [*rest[:i], c, *rest[i:]]
                obj_now, viol_now = float(obj[c]), float(viol[c])
                improved = True
    return line, obj_now, viol_now


def greedy_line(
    p: Problem,
    k: int,
    time_limit: float,
    local_search: bool = True,
    restarts: int = 0,
    rng: np.random.Generator | None = None,
) -> tuple[list[int], float, float]:
    """Greedy add, 1-swap local search, then ``restarts`` random kicks (iterated local search).

    A kick replaces one or two variants of the best line by random candidates and
    searches again; the best line found is kept. Returns (line, objective, violation).
    """
    deadline = time.perf_counter() + time_limit
    line: list[int] = []
    obj_now, viol_now = -np.inf, 0.0
    for step in range(k):
        obj, viol = _add_scores(p, line, final=step == k - 1)
        c = _best(obj, viol)
        if not np.isfinite(obj[c]):
            return line, -np.inf, np.inf
        line.append(c)
        obj_now, viol_now = float(obj[c]), float(viol[c])
    if not local_search:
        return line, obj_now, viol_now
    best = _local_search(p, line, obj_now, viol_now, deadline)
    rng = rng if rng is not None else np.random.default_rng(0)
    n = p.margin.size
    for _ in range(restarts):
        if time.perf_counter() >= deadline or n <= k:
            break
        kicked = list(best[0])
        for i in rng.choice(k, size=min(k, int(rng.integers(1, 3))), replace=False):
            kicked[i] = int(rng.integers(n))
        if len(set(p.config[kicked].tolist())) < k:
            continue
        kick_obj, kick_viol = _evaluate(p, kicked)
        if not np.isfinite(kick_obj):
            continue
        found = _local_search(p, kicked, kick_obj, kick_viol, deadline)
        if _better(found[1], found[2], best[1], best[2]):
            best = found
    return best


def _evaluate(p: Problem, line: list[int]) -> tuple[float, float]:
    """(objective, violation) of one complete line."""
    obj, viol = _add_scores(p, line[:-1], final=True, cols=np.array(line[-1:]))
    return float(obj[0]), float(viol[0])
