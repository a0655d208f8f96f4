"""Design quality: D-error, level balance, co-occurrence, overlap, expected standard errors, sample size."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from c2m.domain import Project
from c2m.errors import C2MError

from ._design import KEY_COLUMNS, Design, check_frame
from ._efficient import task_features
from ._information import as_draws, d_error_from_information, task_information
from ._space import MAX_ENUMERATED, ProfileSpace

DEFAULT_RESPONDENTS = 300
SAWTOOTH_TARGET_SE = 0.05


def _design_tasks(project: Project, design: Design) -> tuple[ProfileSpace, np.ndarray, np.ndarray]:
    """Space, level indices ``(V, T, J, A)`` and the holdout flag per task of a design."""
    check_frame(design.frame, design.n_versions, design.n_tasks, design.n_alts, "design")
    space = ProfileSpace.from_project(project, design.none_option)
    frame = design.frame.sort(KEY_COLUMNS)
    idx = space.indices(frame, "design")
    tasks = idx.reshape(design.n_versions, design.n_tasks, design.n_alts, space.n_attributes)
    holdout = frame["holdout"].to_numpy().reshape(design.n_versions, design.n_tasks, design.n_alts)
    return space, tasks, holdout[0, :, 0].astype(bool)


def respondent_information(
    project: Project, design: Design, coef: np.ndarray | None = None
) -> tuple[list[str], np.ndarray]:
    """Feature names and the MNL information of the average respondent, ``(R, K, K)``.

    The information of one respondent who answers every non-holdout task of one
    version, averaged over versions (respondents are spread evenly over them);
    the None alternative is part of every task when ``design.none_option``.
    """
    space, tasks, holdout = _design_tasks(project, design)
    beta = as_draws(coef, space.n_features, space.coder.feature_names)
    X = task_features(space, tasks[:, ~holdout])
    info = task_information(X, beta).sum(axis=(1, 2)) / design.n_versions
    return space.coder.feature_names, info


def d_error(project: Project, design: Design, coef: np.ndarray | None = None) -> float:
    """MNL D-error ``det(I(beta))^(-1/K)`` of the average respondent (holdout tasks excluded).

    ``coef`` in the feature order of the project's coder (with ``none`` last when
    the design has the None option); zeros when None. A 2-D array of draws gives
    the Bayesian D-error (mean over draws). ``inf`` when the design cannot
    identify every coefficient.
    """
    _, info = respondent_information(project, design, coef)
    return d_error_from_information(info)


def _variances(info: np.ndarray) -> np.ndarray:
    """Mean over draws of the diagonal of the inverse information; inf where singular."""
    out = np.zeros(info.shape[-1])
    for matrix in info:
        try:
            inverse = np.linalg.inv(matrix)
            diag = np.diag(inverse).copy()
            if np.linalg.cond(matrix) > 1e12 or (diag <= 0).any():
                raise np.linalg.LinAlgError
        except np.linalg.LinAlgError:
            diag = np.full(info.shape[-1], np.inf)
        out += diag
    return out / info.shape[0]


def expected_standard_errors(
    project: Project, design: Design, coef: np.ndarray | None = None, n_respondents: int = DEFAULT_RESPONDENTS
) -> pl.DataFrame:
    """Analytic MNL standard errors ``sqrt(diag(I^-1) / n)`` with ``n`` respondents: columns feature, se."""
    if n_respondents < 1:
        raise C2MError(f"survey design: n_respondents must be >= 1, got {n_respondents}")
    names, info = respondent_information(project, design, coef)
    se = np.sqrt(_variances(info) / n_respondents)
    return pl.DataFrame({"feature": names, "se": se}, schema={"feature": pl.String, "se": pl.Float64})


def required_sample_size(
    project: Project, design: Design, coef: np.ndarray | None = None, target_se: float = SAWTOOTH_TARGET_SE
) -> pl.DataFrame:
    """Respondents needed so each coefficient's analytic standard error is at most ``target_se``.

    Columns feature, se_one (the standard error with one respondent), n_required
    (``ceil(se_one^2 / target_se^2)``; null when the design cannot identify it).
    0.05 is Sawtooth Software's rule-of-thumb target for part-worth standard errors.
    """
    if not target_se > 0:
        raise C2MError(f"survey design: target_se must be > 0, got {target_se}")
    names, info = respondent_information(project, design, coef)
    var = _variances(info)
    finite = np.isfinite(var)
    n_req = np.where(finite, np.ceil(np.where(finite, var, 0.0) / target_se**2 - 1e-9), 0).astype(np.int64)
    return pl.DataFrame(
        {
            "feature": names,
            "se_one": np.sqrt(var),
            "n_required": [int(n) if ok else None for n, ok in zip(n_req, finite, strict=True)],
        },
        schema={"feature": pl.String, "se_one": pl.Float64, "n_required": pl.Int64},
    )


@dataclass(frozen=True)
class Diagnostics:
    """Quality figures of a design (computed on its non-holdout tasks)."""

    method: str
    n_respondents: int
    level_counts: pl.DataFrame
    """attribute, level, count, share, ideal_share (1 / number of levels)."""
    balance: float
    """Largest relative deviation ``|share - ideal| / ideal`` over all levels (0 = perfect balance)."""
    cooccurrence: pl.DataFrame
    """Per attribute pair: attribute_a, attribute_b, cramers_v (0 = shown independently), chi2,
    unseen_pairs (allowed level pairs never shown together)."""
    max_cramers_v: float
    overlap: pl.DataFrame
    """attribute, overlap (share of tasks where the attribute repeats a level), forced (True when the
    attribute has fewer levels than alternatives, so overlap cannot be avoided)."""
    d_error: float
    expected_se: pl.DataFrame
    """feature, se: analytic MNL standard errors with ``n_respondents`` respondents."""

    def summary(self) -> str:
        """A short text report."""
        lines = [
            f"design method: {self.method}",
            f"D-error (per respondent): {self.d_error:.4f}",
            f"level balance: max relative deviation {self.balance:.1%}",
            f"orthogonality: max Cramer's V between attributes {self.max_cramers_v:.3f}",
            "level overlap (share of tasks with a repeated level):",
        ]
        for row in self.overlap.iter_rows(named=True):
            forced = " (fewer levels than alternatives)" if row["forced"] else ""
            lines.append(f"  {row['attribute']:<16} {row['overlap']:6.1%}{forced}")
        lines.append(f"expected standard errors with {self.n_respondents} respondents:")
        for row in self.expected_se.iter_rows(named=True):
            lines.append(f"  {row['feature']:<28} {row['se']:.4f}")
        worst = self.expected_se.sort("se", descending=True).row(0, named=True)
        lines.append(f"largest standard error: {worst['feature']} ({worst['se']:.4f})")
        return "\n".join(lines)


def design_diagnostics(
    project: Project, design: Design, coef: np.ndarray | None = None, n_respondents: int | None = None
) -> Diagnostics:
    """Level balance, co-occurrence, overlap, D-error and expected standard errors of a design.

    ``n_respondents`` (default 300) sets the sample size of ``expected_se``.
    """
    n_resp = DEFAULT_RESPONDENTS if n_respondents is None else int(n_respondents)
    space, tasks, holdout = _design_tasks(project, design)
    shown = tasks[:, ~holdout]  # (V, T', J, A)
    flat = shown.reshape(-1, space.n_attributes)
    n_rows = flat.shape[0]

    records: list[dict[str, object]] = []
    balance = 0.0
    for a, name in enumerate(space.names):
        L = int(space.n_levels[a])
        counts = np.bincount(flat[:, a], minlength=L)
        shares = counts / max(n_rows, 1)
        balance = max(balance, float(np.max(np.abs(shares - 1.0 / L)) * L))
        records.extend(
            {
                "attribute": name,
                "level": space.level_names[a][k],
                "count": int(counts[k]),
                "share": float(shares[k]),
                "ideal_share": 1.0 / L,
            }
            for k in range(L)
        )
    level_counts = pl.DataFrame(
        records,
        schema={
            "attribute": pl.String,
            "level": pl.String,
            "count": pl.Int64,
            "share": pl.Float64,
            "ideal_share": pl.Float64,
        },
    )

    feasible = _feasible_pairs(space)
    pairs = []
    for a in range(space.n_attributes):
        for b in range(a + 1, space.n_attributes):
            La, Lb = int(space.n_levels[a]), int(space.n_levels[b])
            table = np.zeros((La, Lb))
            np.add.at(table, (flat[:, a], flat[:, b]), 1.0)
            expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / max(n_rows, 1)
            with np.errstate(divide="ignore", invalid="ignore"):
                chi2 = float(np.nansum(np.where(expected > 0, (table - expected) ** 2 / expected, 0.0)))
            v = float(np.sqrt(chi2 / (n_rows * (min(La, Lb) - 1)))) if n_rows else 0.0
            allowed = feasible[(a, b)] if feasible is not None else np.ones_like(table, dtype=bool)
            pairs.append(
                {
                    "attribute_a": space.names[a],
                    "attribute_b": space.names[b],
                    "cramers_v": v,
                    "chi2": chi2,
                    "unseen_pairs": int(((table == 0) & allowed).sum()),
                }
            )
    cooccurrence = pl.DataFrame(
        pairs,
        schema={
            "attribute_a": pl.String,
            "attribute_b": pl.String,
            "cramers_v": pl.Float64,
            "chi2": pl.Float64,
            "unseen_pairs": pl.Int64,
        },
    )

    n_task_total = shown.shape[0] * shown.shape[1]
    overlap_rows = []
    for a, name in enumerate(space.names):
        levels = np.sort(shown[..., a], axis=-1)
        repeated = (np.diff(levels, axis=-1) == 0).any(axis=-1)
        overlap_rows.append(
            {
                "attribute": name,
                "overlap": float(repeated.sum() / max(n_task_total, 1)),
                "forced": bool(space.n_levels[a] < design.n_alts),
            }
        )
    overlap = pl.DataFrame(
        overlap_rows, schema={"attribute": pl.String, "overlap": pl.Float64, "forced": pl.Boolean}
    )

    names, info = respondent_information(project, design, coef)
    se = np.sqrt(_variances(info) / n_resp)
    return Diagnostics(
        method=design.method,
        n_respondents=n_resp,
        level_counts=level_counts,
        balance=balance,
        cooccurrence=cooccurrence,
        max_cramers_v=float(cooccurrence["cramers_v"].max() or 0.0),  # type: ignore[arg-type]
        overlap=overlap,
        d_error=d_error_from_information(info),
        expected_se=pl.DataFrame(
            {"feature": names, "se": se}, schema={"feature": pl.String, "se": pl.Float64}
        ),
    )


def _feasible_pairs(space: ProfileSpace) -> dict[tuple[int, int], np.ndarray] | None:
    """Which level pairs occur in some allowed profile (None when the space is too big to enumerate)."""
    if space.n_total > MAX_ENUMERATED:
        return None
    allowed = space.allowed_profiles()
    out = {}
    for a in range(space.n_attributes):
        for b in range(a + 1, space.n_attributes):
            table = np.zeros((space.n_levels[a], space.n_levels[b]), dtype=bool)
            table[allowed[:, a], allowed[:, b]] = True
            out[(a, b)] = table
    return out
