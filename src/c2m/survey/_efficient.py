"""D-efficient designs: coordinate exchange on the MNL (Bayesian) D-error."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._information import log_det, task_information
from ._kernels import kernel, use_numba
from ._space import ProfileSpace

MAX_PASSES = 8
TOLERANCE = 1e-6
RIDGE = 1e-9


def task_features(space: ProfileSpace, tasks: np.ndarray) -> np.ndarray:
    """Features ``(..., M, K)`` of tasks ``(..., J, A)``, the None row appended when the design has it."""
    X = space.encode(tasks)
    if space.with_none:
        none = np.broadcast_to(space.none_row(), (*X.shape[:-2], 1, X.shape[-1]))
        X = np.concatenate([X, none], axis=-2)
    return X


def coordinate_exchange(
    space: ProfileSpace,
    tasks: np.ndarray,
    beta: np.ndarray,
    rng: np.random.Generator,
    max_passes: int = MAX_PASSES,
    engine: str = "auto",
) -> np.ndarray:
    """Improve ``tasks`` ``(V, T, J, A)`` one attribute level at a time to minimise the D-error.

    The criterion is the mean over the draws ``beta`` ``(R, K)`` of
    ``det(I_r / V)^(-1/K)``, where ``I_r`` sums the task information of all
    versions (the average respondent's information). Tasks are visited in
    random order; in each, every single change (one attribute of one concept
    to another level) is evaluated at once and the best is applied while it
    improves. Every change keeps the concept allowed and the task's concepts
    distinct. Passes repeat until one gains less than ``TOLERANCE``
    relatively, or ``max_passes``. ``engine`` ``auto`` runs the passes in the
    numba kernel (rank-one candidate updates, see ``_numba_kernels``) when numba
    imports, else in NumPy; both take the same moves up to the breaking of
    near-ties by rounding.
    """
    tasks = tasks.copy()
    V, T, J, A = tasks.shape
    K = space.n_features
    R = beta.shape[0]
    X = task_features(space, tasks)  # (V, T, M, K)
    info = task_information(X, beta)  # (R, V, T, K, K)
    total = info.sum(axis=(1, 2))  # (R, K, K)
    ridge = RIDGE * np.eye(K)
    radix = np.ones(A, dtype=np.int64)
    for a in range(A - 2, -1, -1):
        radix[a] = radix[a + 1] * space.n_levels[a + 1]
    # every single change (concept j, attribute a, new level l), as flat index arrays
    moves = np.array(
        [(j, a, lv) for j in range(J) for a in range(A) for lv in range(space.n_levels[a])], dtype=np.int64
    )
    mj, ma, ml = moves.T
    code_of = np.concatenate(space.codes)  # (sum L, K)
    code_start = np.concatenate([[0], np.cumsum(space.n_levels)[:-1]])

    def criterion(log_dets: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return np.mean(np.exp(-log_dets / K), axis=0) if R > 1 else -log_dets[0]

    def refresh() -> tuple[np.ndarray, np.ndarray]:
        matrix = total / V + ridge
        return log_det(matrix), np.linalg.inv(matrix)

    ld, inverse = refresh()  # (R,), (R, K, K)
    current = float(criterion(ld[:, None])[0])
    if use_numba(engine):
        ce_pass = kernel("ce_pass")
        rules = _rule_arrays(space)
        beta_c = np.ascontiguousarray(beta, dtype=np.float64)
        info = np.ascontiguousarray(info)
        ld, inverse = np.ascontiguousarray(ld), np.ascontiguousarray(inverse)
        for _pass in range(max_passes):
            start = current
            order = rng.permutation(V * T).astype(np.int64)
            current = float(
                ce_pass(
                    order, tasks, X, info, total, beta_c, ld, inverse, current, radix, moves, code_of, code_start,
                    *rules, RIDGE,
                )
            )
            if abs(start - current) <= TOLERANCE * max(1.0, abs(start)):
                break
        return tasks
    for _pass in range(max_passes):
        start = current
        for flat in rng.permutation(V * T):
            v, t = divmod(int(flat), T)
            for _step in range(J * A):
                task = tasks[v, t]
                cur = task[mj, ma]
                keep = ml != cur
                j, a, lv, cur = mj[keep], ma[keep], ml[keep], cur[keep]
                cand = task[j].copy()
                cand[np.arange(j.size), a] = lv
                ids = space.profile_ids(task)
                cand_ids = ids[j] + (lv - cur) * radix[a]
                clash = (cand_ids[:, None] == ids[None, :]) & (j[:, None] != np.arange(J)[None, :])
                ok = ~clash.any(axis=1) & ~space.prohibited(cand)
                if not ok.any():
                    break
                j, a, lv, cur, cand = j[ok], a[ok], lv[ok], cur[ok], cand[ok]
                n = j.size
                Xc = np.repeat(X[v, t][None], n, axis=0)
                Xc[np.arange(n), j] += code_of[code_start[a] + lv] - code_of[code_start[a] + cur]
                values = _candidate_values(Xc, X[v, t], beta, inverse, ld, V, criterion)
                best = int(np.argmin(values))
                if not values[best] < current - 1e-12 * max(1.0, abs(current)):
                    break
                tasks[v, t, j[best]] = cand[best]
                X[v, t] = Xc[best]
                new_info = task_information(Xc[best], beta)  # (R, K, K)
                total = total - info[:, v, t] + new_info
                info[:, v, t] = new_info
                ld, inverse = refresh()
                current = float(criterion(ld[:, None])[0])
        if abs(start - current) <= TOLERANCE * max(1.0, abs(start)):
            break
    return tasks


def _rule_arrays(space: ProfileSpace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prohibitions as arrays for the kernel: terms per rule, their attributes, their level masks."""
    rules = space.prohibitions
    width = max((len(rule) for rule in rules), default=1)
    rule_len = np.array([len(rule) for rule in rules], dtype=np.int64)
    rule_attr = np.zeros((len(rules), width), dtype=np.int64)
    rule_table = np.zeros((len(rules), width, int(space.n_levels.max())), dtype=np.bool_)
    for i, rule in enumerate(rules):
        for k, (a, table) in enumerate(rule):
            rule_attr[i, k] = a
            rule_table[i, k, : table.size] = table
    return rule_len, rule_attr, rule_table


def _candidate_values(
    Xc: np.ndarray,
    Xo: np.ndarray,
    beta: np.ndarray,
    inverse: np.ndarray,
    ld: np.ndarray,
    V: int,
    criterion: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """Criterion of replacing task features ``Xo`` ``(M, K)`` by each ``Xc`` ``(n, M, K)``.

    With ``A = total / V`` and a task's information ``X' W X`` (``W = diag(p) - p p'``),
    the new matrix is ``A + U' S U`` with ``U = [Xc; Xo]`` and
    ``S = blockdiag(Wc, -Wo) / V``; by the matrix determinant lemma
    ``log det = log det A + log det(I + S U A^-1 U')``, a ``2M x 2M`` determinant.
    """
    n, M, _K = Xc.shape
    R = beta.shape[0]
    U = np.concatenate([Xc, np.broadcast_to(Xo, Xc.shape)], axis=1)  # (n, 2M, K)
    G = (U[None] @ inverse[:, None]) @ np.swapaxes(U, -1, -2)[None]  # (R, n, 2M, 2M)
    Pc = _probabilities(Xc, beta)  # (R, n, M)
    Po = _probabilities(Xo[None], beta)  # (R, 1, M)
    S = np.zeros((R, n, 2 * M, 2 * M))
    idx = np.arange(M)
    S[:, :, idx, idx] = Pc
    S[:, :, :M, :M] -= Pc[..., :, None] * Pc[..., None, :]
    S[:, :, M + idx, M + idx] = -Po
    S[:, :, M:, M:] += Po[..., :, None] * Po[..., None, :]
    S /= V
    small = np.eye(2 * M) + S @ G
    sign, logdet = np.linalg.slogdet(small)
    new_ld = np.where(sign > 0, ld[:, None] + logdet, -np.inf)  # (R, n)
    return criterion(new_ld)


def _probabilities(X: np.ndarray, beta: np.ndarray) -> np.ndarray:
    U = np.einsum("nmk,rk->rnm", X, beta)
    U -= U.max(axis=-1, keepdims=True)
    P = np.exp(U)
    return P / P.sum(axis=-1, keepdims=True)
