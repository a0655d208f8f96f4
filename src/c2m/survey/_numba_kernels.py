"""Optional numba kernels for the design builders; the NumPy code in ``_build`` and ``_efficient`` is the reference.

- :func:`greedy_select`: the lexicographic candidate filter of one greedy concept
  (minimal overlap, then version balance, then whole-design balance), in one
  pass over the candidate set instead of gathers of the whole candidate table.
  Scores are sums of integer-valued counts, so the kept candidates are exactly
  the NumPy reference's, and the same seed gives the same design (tested).
- :func:`ce_pass`: one pass of coordinate exchange over the tasks in a given
  order. Each candidate change moves one row of a task's feature matrix by a
  sparse ``delta``; with ``B = A^-1`` and ``H = X B X'`` of the current task,
  the candidate's ``U B U'`` (``U = [Xc; Xo]``) is ``H`` plus rank-one terms in
  ``q = X B delta`` and ``h = delta' B delta``, so a candidate costs O(M K + M^3)
  instead of O(M K^2). Its D-error agrees with the NumPy reference to rounding
  (tested); near-ties may then be broken differently, so the two engines can
  reach different (equally valid) designs.

Imported only through :mod:`._kernels` (which loads numba lazily); the functions
are module-level so numba's on-disk cache (``cache=True``) works for the ones
that call others.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def greedy_select(cand_one, cost, excluded, version_row, total, cand_pair, pair, use_global, score, keep):
    """Candidates (indices, ascending, in ``keep[:n]``) best on the lexicographic score; returns (s1, n)."""
    N, A = cand_one.shape
    P = cand_pair.shape[1]
    best = np.inf
    for i in range(N):
        if excluded[i]:
            score[i] = np.inf
            continue
        s = 0.0
        for a in range(A):
            s += cost[cand_one[i, a]]
        score[i] = s
        if s < best:
            best = s
    n = 0
    for i in range(N):
        if score[i] == best:
            keep[n] = i
            n += 1
    for stage in range(2):
        if n <= 1 or (stage == 1 and not use_global):
            break
        low = np.inf
        for k in range(n):
            i = keep[k]
            s = 0.0
            if stage == 0:
                for a in range(A):
                    s += version_row[cand_one[i, a]]
            else:
                for a in range(A):
                    s += total[cand_one[i, a]]
                s2 = 0.0
                for p in range(P):
                    s2 += pair[cand_pair[i, p]]
                s += s2
            score[k] = s
            if s < low:
                low = s
        m = 0
        for k in range(n):
            if score[k] == low:
                keep[m] = keep[k]
                m += 1
        n = m
    return best, n


@numba.njit(cache=True)
def task_info(Xt, b, out):
    """MNL information ``X' (diag(p) - p p') X`` of one task ``Xt`` (M, K) at ``b`` into ``out`` (K, K)."""
    M, K = Xt.shape
    u = np.empty(M)
    for m in range(M):
        s = 0.0
        for k in range(K):
            s += Xt[m, k] * b[k]
        u[m] = s
    top = u.max()
    denom = 0.0
    for m in range(M):
        u[m] = np.exp(u[m] - top)
        denom += u[m]
    xbar = np.zeros(K)
    out[:, :] = 0.0
    for m in range(M):
        p = u[m] / denom
        for k in range(K):
            xbar[k] += p * Xt[m, k]
            pk = p * Xt[m, k]
            for c in range(K):
                out[k, c] += pk * Xt[m, c]
    for k in range(K):
        for c in range(K):
            out[k, c] -= xbar[k] * xbar[c]


@numba.njit(cache=True)
def small_logdet(S):
    """sign and log|det| of a small square matrix by LU with partial pivoting (S is overwritten)."""
    n = S.shape[0]
    sign = 1.0
    logdet = 0.0
    for c in range(n):
        piv = c
        big = abs(S[c, c])
        for r in range(c + 1, n):
            if abs(S[r, c]) > big:
                big = abs(S[r, c])
                piv = r
        if big == 0.0:
            return 0.0, -np.inf
        if piv != c:
            for k in range(n):
                S[c, k], S[piv, k] = S[piv, k], S[c, k]
            sign = -sign
        d = S[c, c]
        if d < 0.0:
            sign = -sign
        logdet += np.log(abs(d))
        for r in range(c + 1, n):
            f = S[r, c] / d
            if f != 0.0:
                for k in range(c + 1, n):
                    S[r, k] -= f * S[c, k]
    return sign, logdet


@numba.njit(cache=True)
def lemma_logdet(Xo, uo, H, B, j, nz, dz, b, V, work, vec):
    """log det(I + S U B U') of replacing row ``j`` of ``Xo`` by ``Xo[j] + delta`` (one draw).

    ``delta`` is sparse: values ``dz`` at columns ``nz``. ``uo = Xo b``,
    ``H = Xo B Xo'``; ``S = blockdiag(Wc, -Wo) / V`` as in the NumPy reference.
    ``work`` (2, 2M, 2M) and ``vec`` (K + 3M,) are scratch space. Returns (sign, logdet).
    """
    M, K = Xo.shape
    Bd = vec[:K]
    q = vec[K : K + M]
    po = vec[K + M : K + 2 * M]
    pc = vec[K + 2 * M : K + 3 * M]
    Bd[:] = 0.0
    du = 0.0
    for z in range(nz.size):
        c = nz[z]
        du += dz[z] * b[c]
        for k in range(K):
            Bd[k] += B[k, c] * dz[z]
    h = 0.0
    for z in range(nz.size):
        h += dz[z] * Bd[nz[z]]
    for m in range(M):
        s = 0.0
        for k in range(K):
            s += Xo[m, k] * Bd[k]
        q[m] = s
    # probabilities before (po) and after (pc) the change
    top_o = uo.max()
    top_c = -np.inf
    for m in range(M):
        um = uo[m] + du if m == j else uo[m]
        pc[m] = um
        if um > top_c:
            top_c = um
    so = 0.0
    sc = 0.0
    for m in range(M):
        po[m] = np.exp(uo[m] - top_o)
        so += po[m]
        pc[m] = np.exp(pc[m] - top_c)
        sc += pc[m]
    for m in range(M):
        po[m] /= so
        pc[m] /= sc
    # G = U B U' with U = [Xc; Xo]
    M2 = 2 * M
    G = work[0]
    for r in range(M):
        for c in range(M):
            base = H[r, c]
            cc = base
            co = base
            oc = base
            if r == j:
                cc += q[c]
                co += q[c]
            if c == j:
                cc += q[r]
                oc += q[r]
            if r == j and c == j:
                cc += h
            G[r, c] = cc
            G[r, M + c] = co
            G[M + r, c] = oc
            G[M + r, M + c] = base
    # small = I + S G, S = blockdiag(diag(pc) - pc pc', -(diag(po) - po po')) / V
    small = work[1]
    for c in range(M2):
        tc = 0.0
        to = 0.0
        for m in range(M):
            tc += pc[m] * G[m, c]
            to += po[m] * G[M + m, c]
        for m in range(M):
            small[m, c] = pc[m] * (G[m, c] - tc) / V
            small[M + m, c] = -po[m] * (G[M + m, c] - to) / V
        small[c, c] += 1.0
    return small_logdet(small)


@numba.njit(cache=True)
def inv_logdet(matrix, out):
    """Inverse of ``matrix`` into ``out`` by Gauss-Jordan with partial pivoting; returns (sign, log|det|)."""
    n = matrix.shape[0]
    a = matrix.copy()
    out[:, :] = 0.0
    for i in range(n):
        out[i, i] = 1.0
    sign = 1.0
    logdet = 0.0
    for c in range(n):
        piv = c
        big = abs(a[c, c])
        for r in range(c + 1, n):
            if abs(a[r, c]) > big:
                big = abs(a[r, c])
                piv = r
        if big == 0.0:
            return 0.0, -np.inf
        if piv != c:
            for k in range(n):
                a[c, k], a[piv, k] = a[piv, k], a[c, k]
                out[c, k], out[piv, k] = out[piv, k], out[c, k]
            sign = -sign
        d = a[c, c]
        if d < 0.0:
            sign = -sign
        logdet += np.log(abs(d))
        for k in range(n):
            a[c, k] /= d
            out[c, k] /= d
        for r in range(n):
            f = a[r, c]
            if r != c and f != 0.0:
                for k in range(n):
                    a[r, k] -= f * a[c, k]
                    out[r, k] -= f * out[c, k]
    return sign, logdet


@numba.njit(cache=True)
def refresh(total, V, ridge, ld, inverse):
    """``ld[r] = log det(total[r] / V + ridge I)`` (-inf unless positive) and the inverses."""
    R, K, _ = total.shape
    for r in range(R):
        matrix = total[r] / V
        for k in range(K):
            matrix[k, k] += ridge
        sign, logdet = inv_logdet(matrix, inverse[r])
        ld[r] = logdet if sign > 0 else -np.inf


@numba.njit(cache=True)
def criterion(lds, K):
    R = lds.size
    if R == 1:
        return -lds[0]
    s = 0.0
    for r in range(R):
        s += np.exp(-lds[r] / K)
    return s / R


@numba.njit(cache=True)
def prohibited(row, a, lv, rule_len, rule_attr, rule_table):
    for r in range(rule_len.size):
        hit = True
        for k in range(rule_len[r]):
            att = rule_attr[r, k]
            level = lv if att == a else row[att]
            if not rule_table[r, k, level]:
                hit = False
                break
        if hit:
            return True
    return False


@numba.njit(cache=True)
def ce_pass(
    order, tasks, X, info, total, beta, ld, inverse, current, radix, moves, code_of, code_start,
    rule_len, rule_attr, rule_table, ridge,
):
    """One coordinate-exchange pass over the tasks ``order`` (flat v * T + t); returns the criterion."""
    V, T, J, A = tasks.shape
    M, K = X.shape[2], X.shape[3]
    R = beta.shape[0]
    n_moves = moves.shape[0]
    ids = np.empty(J, dtype=np.int64)
    uo = np.empty((R, M))
    H = np.empty((R, M, M))
    XB = np.empty((M, K))
    cand_ld = np.empty(R)
    work = np.empty((2, 2 * M, 2 * M))
    vec = np.empty(K + 3 * M)
    nz = np.empty(K, dtype=np.int64)
    dz = np.empty(K)
    delta = np.empty(K)
    new_info = np.empty((K, K))
    for f in order:
        v = f // T
        t = f % T
        task = tasks[v, t]
        Xo = X[v, t]
        for _step in range(J * A):
            for j in range(J):
                s = 0
                for a in range(A):
                    s += task[j, a] * radix[a]
                ids[j] = s
            for r in range(R):
                for m in range(M):
                    s_u = 0.0
                    for k in range(K):
                        s_u += Xo[m, k] * beta[r, k]
                    uo[r, m] = s_u
                B = inverse[r]
                for m in range(M):
                    for k in range(K):
                        s_b = 0.0
                        for c in range(K):
                            s_b += Xo[m, c] * B[c, k]
                        XB[m, k] = s_b
                for m in range(M):
                    for c in range(M):
                        s_h = 0.0
                        for k in range(K):
                            s_h += XB[m, k] * Xo[c, k]
                        H[r, m, c] = s_h
            best = -1
            best_val = np.inf
            for mv in range(n_moves):
                j = moves[mv, 0]
                a = moves[mv, 1]
                lv = moves[mv, 2]
                cur = task[j, a]
                if lv == cur:
                    continue
                cid = ids[j] + (lv - cur) * radix[a]
                clash = False
                for j2 in range(J):
                    if j2 != j and ids[j2] == cid:
                        clash = True
                if clash or prohibited(task[j], a, lv, rule_len, rule_attr, rule_table):
                    continue
                n_nz = 0
                for k in range(K):
                    d = code_of[code_start[a] + lv, k] - code_of[code_start[a] + cur, k]
                    if d != 0.0:
                        nz[n_nz] = k
                        dz[n_nz] = d
                        n_nz += 1
                for r in range(R):
                    sign, logdet = lemma_logdet(
                        Xo, uo[r], H[r], inverse[r], j, nz[:n_nz], dz[:n_nz], beta[r], V, work, vec
                    )
                    cand_ld[r] = ld[r] + logdet if sign > 0 else -np.inf
                val = criterion(cand_ld, K)
                if best < 0 or val < best_val:
                    best = mv
                    best_val = val
            if best < 0:
                break
            if not best_val < current - 1e-12 * max(1.0, abs(current)):
                break
            j = moves[best, 0]
            a = moves[best, 1]
            lv = moves[best, 2]
            cur = task[j, a]
            for k in range(K):
                delta[k] = code_of[code_start[a] + lv, k] - code_of[code_start[a] + cur, k]
            task[j, a] = lv
            for k in range(K):
                Xo[j, k] += delta[k]
            for r in range(R):
                task_info(Xo, beta[r], new_info)
                total[r] = total[r] - info[r, v, t] + new_info
                info[r, v, t] = new_info
            refresh(total, V, ridge, ld, inverse)
            current = criterion(ld, K)
    return current
