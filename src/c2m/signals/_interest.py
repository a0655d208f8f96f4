"""Interest by attribute level: shares of weighted events, shrunk toward the overall share."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

from c2m.domain import Attribute, FeatureCoder, Project
from c2m.errors import C2MError

INTEREST_COLUMNS = (
    "attribute",
    "level",
    "events",
    "weighted_events",
    "raw_share",
    "share",
    "n_persons",
    "prior_strength",
)
_SHARE_FLOOR = 1e-4  # shares below this count as this in log-odds (a level nobody looked at)


def categorical_attributes(project: Project) -> list[Attribute]:
    """The attributes events record a level of (categorical and ordered)."""
    return [a for a in project.attributes if a.kind != "numeric"]


def method_of_moments_strength(counts: np.ndarray, shares: np.ndarray) -> float:
    """Dirichlet prior strength ``A`` from cells' sizes ``counts`` (C,) and shares (C, L).

    Under a Dirichlet(``A p``) on each cell's true shares and multinomial
    sampling, ``E[sum_c N_c |s_c - p|^2] / (1 - |p|^2) = (1 - rho)(C - 1) +
    rho (N - sum N_c^2 / N)`` with ``rho = 1 / (1 + A)`` and ``p`` the
    size-weighted mean share; solving for ``rho`` gives ``A``. Returns ``inf``
    when the cells vary no more than sampling explains (pool completely) and
    ``0`` when there is a single cell.
    """
    keep = counts > 0
    n_c, s = counts[keep], shares[keep]
    cells = n_c.shape[0]
    if cells < 2:
        return 0.0
    total = float(n_c.sum())
    p = (n_c[:, None] * s).sum(axis=0) / total
    spread = 1.0 - float((p**2).sum())
    if spread <= 1e-15:
        return math.inf
    stat = float((n_c * ((s - p) ** 2).sum(axis=1)).sum()) / spread
    denom = total - float((n_c**2).sum()) / total - (cells - 1)
    if denom <= 0:
        return 0.0
    rho = (stat - (cells - 1)) / denom
    if rho <= 0:
        return math.inf
    if rho >= 1:
        return 0.0
    return 1.0 / rho - 1.0


def interest_from_counts(
    counts: pl.DataFrame, project: Project, by: Sequence[str], prior_strength: float | None
) -> pl.DataFrame:
    """The interest table from an engine's ``level_counts`` (see :meth:`Signals.interest_by_level`)."""
    if prior_strength is not None and (not math.isfinite(float(prior_strength)) or prior_strength < 0):
        raise C2MError(f"prior_strength: must be a finite number >= 0 or None, got {prior_strength!r}")
    by = list(by)
    attributes = categorical_attributes(project)
    known = {a.name: set(a.level_names) for a in attributes}
    for row in counts.select("attribute", "level").unique().iter_rows():
        if row[1] not in known.get(row[0], set()):
            raise C2MError(
                f"events: column {row[0]!r} has level {row[1]!r}, which project {project.name!r} does not define; "
                f"expected one of {sorted(known.get(row[0], set()))}"
            )
    cells = counts.select(by).unique().sort(by) if by else pl.DataFrame({"_cell": [0]})
    if by:
        cells = cells.with_row_index("_cell")
        counts = counts.join(cells, on=by, how="left", nulls_equal=True)
    else:
        counts = counts.with_columns(pl.lit(0, dtype=pl.UInt32).alias("_cell"))
    n_cells = cells.height
    parts: list[pl.DataFrame] = []
    for attribute in attributes:
        levels = attribute.level_names
        sub = counts.filter(pl.col("attribute") == attribute.name)
        index = {lv: k for k, lv in enumerate(levels)}
        cell = sub["_cell"].to_numpy().astype(np.int64)
        lev = np.array([index[v] for v in sub["level"].to_list()], dtype=np.int64)
        shape = (n_cells, len(levels))
        events = np.zeros(shape, dtype=np.int64)
        weight = np.zeros(shape)
        weight_sq = np.zeros(shape)
        persons = np.zeros(shape, dtype=np.int64)
        events[cell, lev] = sub["events"].to_numpy()
        weight[cell, lev] = sub["weight"].to_numpy()
        weight_sq[cell, lev] = sub["weight_sq"].to_numpy()
        persons[cell, lev] = sub["n_persons"].to_numpy()
        total = weight.sum(axis=1)
        total_sq = weight_sq.sum(axis=1)
        seen = total > 0
        raw = np.full(shape, np.nan)
        raw[seen] = weight[seen] / total[seen, None]
        overall = weight.sum(axis=0) / total.sum() if total.sum() > 0 else np.full(len(levels), 1.0 / len(levels))
        # effective number of events of each cell (Kish, for unequal event weights)
        n_eff = np.zeros(n_cells)
        n_eff[seen] = total[seen] ** 2 / total_sq[seen]
        strength = (
            float(prior_strength)
            if prior_strength is not None
            else method_of_moments_strength(n_eff, np.nan_to_num(raw))
        )
        if math.isinf(strength):
            share = np.broadcast_to(overall, shape).copy()
        else:
            denom = n_eff + strength
            safe = np.where(denom > 0, denom, 1.0)
            share = (n_eff[:, None] * np.nan_to_num(raw) + strength * overall) / safe[:, None]
            share[denom <= 0] = overall
        frame = pl.DataFrame(
            {
                "_cell": np.repeat(np.arange(n_cells, dtype=np.uint32), len(levels)),
                "attribute": [attribute.name] * (n_cells * len(levels)),
                "level": levels * n_cells,
                "events": events.ravel(),
                "weighted_events": weight.ravel(),
                "raw_share": pl.Series(raw.ravel(), dtype=pl.Float64, nan_to_null=True),
                "share": share.ravel(),
                "n_persons": persons.ravel(),
                "prior_strength": np.full(n_cells * len(levels), strength),
            },
            schema_overrides={"_cell": pl.UInt32},
        )
        parts.append(frame)
    out = pl.concat(parts, how="vertical")
    out = out.join(cells, on="_cell", how="left", maintain_order="left") if by else out
    order = [*(f"{c}" for c in by), *INTEREST_COLUMNS]
    return out.sort("_cell", maintain_order=True).select(order)


def design_prior(project: Project, interest: pl.DataFrame, scale: float = 1.0) -> np.ndarray:
    """Prior coefficients for a D-efficient design from an interest table.

    In ``FeatureCoder(project).feature_names`` order: ``scale * log(share(level) /
    share(reference level))`` for each categorical feature (shares below 1e-4
    count as 1e-4), 0 for numeric attributes and ``none``. When ``interest`` has
    several cells (``by`` columns) their shares are pooled, weighted by each
    cell's weighted events (events when that column is absent).
    """
    if not isinstance(interest, pl.DataFrame):
        raise C2MError(f"design_prior: interest must be a polars DataFrame, got {type(interest).__name__}")
    missing = [c for c in ("attribute", "level", "share") if c not in interest.columns]
    if missing:
        raise C2MError(f"design_prior: interest is missing column(s) {missing}; found {interest.columns}")
    if not math.isfinite(float(scale)):
        raise C2MError(f"design_prior: scale must be a finite number, got {scale!r}")
    weight_col = next((c for c in ("weighted_events", "events") if c in interest.columns), None)
    by = [c for c in interest.columns if c not in (*INTEREST_COLUMNS, "attribute", "level", "share")]
    frame = interest.with_columns(pl.col("share").cast(pl.Float64))
    if weight_col is not None and by:
        frame = frame.with_columns(pl.col(weight_col).cast(pl.Float64).sum().over([*by, "attribute"]).alias("_w"))
    else:
        frame = frame.with_columns(pl.lit(1.0).alias("_w"))
    pooled = frame.group_by("attribute", "level").agg(
        ((pl.col("share") * pl.col("_w")).sum() / pl.col("_w").sum()).alias("share"),
        pl.col("_w").sum().alias("_w"),
    )
    shares = {(a, lv): s for a, lv, s, _ in pooled.iter_rows()}
    coder = FeatureCoder.from_project(project)
    coef = np.zeros(coder.n_features)
    slices = coder.feature_slices()
    for attribute in categorical_attributes(project):
        levels = attribute.level_names
        absent = [lv for lv in levels if (attribute.name, lv) not in shares]
        if absent:
            raise C2MError(f"design_prior: interest has no share for attribute {attribute.name!r} level(s) {absent}")
        values = np.array([shares[(attribute.name, lv)] for lv in levels], dtype=float)
        if not np.all(np.isfinite(values)):
            raise C2MError(f"design_prior: attribute {attribute.name!r} has a missing or non-finite share")
        values = np.maximum(values, _SHARE_FLOOR)
        coef[slices[attribute.name]] = float(scale) * np.log(values[1:] / values[0])
    return coef
