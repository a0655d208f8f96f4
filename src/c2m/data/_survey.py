"""Who takes the survey, and how they answer it (from their hidden true preferences)."""

from __future__ import annotations

import numpy as np
import polars as pl

from c2m.domain import FeatureCoder, Project
from c2m.errors import C2MError

from ._market import Market
from ._population import AGE_BANDS, INCOME_BANDS

# Relative chance that an app user takes the in-app survey.
RESPONSE_AGE = dict(zip(AGE_BANDS, (2.2, 1.7, 1.0, 0.55, 0.3), strict=True))
RESPONSE_TIER = {1: 1.7, 2: 1.0, 3: 0.7, 4: 0.55, 5: 0.5}
RESPONSE_INCOME = dict(zip(INCOME_BANDS, (0.8, 1.0, 1.2), strict=True))


def _project(market: Market, project: Project | None) -> Project:
    project = project or market.project
    if project is None:
        raise C2MError(
            f"market {market.project_name!r} carries no project: pass project= "
            "(read_market restores it from manifest.json)"
        )
    return project


def response_propensity(market: Market, project: Project | None = None) -> np.ndarray:
    """Each person's relative chance of taking the survey (0 for non app users)."""
    project = _project(market, project)
    tiers = {c.name: c.tier for c in project.cities}
    p = market.persons
    w_age = p["age_band"].replace_strict(RESPONSE_AGE, default=1.0, return_dtype=pl.Float64).to_numpy()
    w_inc = p["income_band"].replace_strict(RESPONSE_INCOME, default=1.0, return_dtype=pl.Float64).to_numpy()
    tier = p["city"].replace_strict(tiers, default=2, return_dtype=pl.Int64).to_numpy()
    w_tier = np.array([RESPONSE_TIER.get(t, 1.0) for t in range(6)])[np.clip(tier, 0, 5)]
    return w_age * w_inc * w_tier * p["app_user"].to_numpy().astype(float)


def sample_respondents(market: Market, n: int = 1500, seed: int = 0) -> pl.DataFrame:
    """Draw ``n`` survey takers (persons rows, sorted by ``person_id``).

    Only app users take the in-app survey, and among them the young, tier-1
    city dwellers and higher incomes respond more (weights ``RESPONSE_*``),
    so the sample is skewed against the population as real app surveys are.
    """
    weights = response_propensity(market)
    eligible = int((weights > 0).sum())
    if n < 1:
        raise C2MError(f"respondents: n must be at least 1, got {n}")
    if n > eligible:
        raise C2MError(f"respondents: n={n} but the market has only {eligible} app users")
    rng = np.random.default_rng(seed)
    # weighted sampling without replacement (Efraimidis-Spirakis keys)
    with np.errstate(divide="ignore"):
        keys = np.log(rng.random(weights.shape[0])) / weights
    chosen = np.argpartition(-keys, n - 1)[:n]
    return market.persons[np.sort(chosen)]


def simulate_responses(
    market: Market,
    design_frame: pl.DataFrame,
    respondents: pl.DataFrame,
    none_option: bool = True,
    seed: int = 0,
    scale: float = 1.0,
    project: Project | None = None,
) -> pl.DataFrame:
    """Answers of ``respondents`` to a choice design, by maximising true utility plus Gumbel noise.

    Respondents (sorted by id) get the design's versions round-robin; each
    answers every task of its version: utility ``beta_i . x + eps / scale``
    with ``eps`` standard Gumbel; the None alternative (``alt = J + 1``) has
    utility ``beta_none + eps / scale``. Output: the long format of
    docs/schemas.md ("Survey responses").
    """
    project = _project(market, project)
    coder = FeatureCoder.from_project(project)
    if scale <= 0:
        raise C2MError(f"scale: must be positive, got {scale}")
    if none_option and not coder.with_none:
        raise C2MError("none_option=True but the project has no None option (none_option.enabled = false)")
    attrs = project.attribute_names
    required = ["version", "task", "alt", *attrs]
    missing = [c for c in required if c not in design_frame.columns]
    if missing:
        raise C2MError(f"design: missing column(s) {missing}; found {design_frame.columns}")
    if design_frame.height == 0:
        raise C2MError("design: no rows")
    id_col = "person_id" if "person_id" in respondents.columns else "id"
    if id_col not in respondents.columns:
        raise C2MError(f"respondents: need a person_id (or id) column; found {respondents.columns}")
    if respondents.height == 0:
        raise C2MError("respondents: no rows")

    design = design_frame.select(
        pl.col("version").cast(pl.Int64),
        pl.col("task").cast(pl.Int64),
        pl.col("alt").cast(pl.Int64),
        *[pl.col(a.name).cast(pl.Float64 if a.kind == "numeric" else pl.String) for a in project.attributes],
        (
            pl.col("holdout").cast(pl.Boolean)
            if "holdout" in design_frame.columns
            else pl.lit(False).alias("holdout")
        ),
    ).sort(["version", "task", "alt"])
    versions = design["version"].unique().sort().to_numpy()
    n_alts = int(design["alt"].max())  # type: ignore[arg-type]

    ids = np.unique(respondents[id_col].cast(pl.Int64).to_numpy())
    assigned = pl.DataFrame(
        {"id": ids, "version": versions[np.arange(ids.shape[0]) % versions.shape[0]]},
        schema={"id": pl.Int64, "version": pl.Int64},
    )
    rows = assigned.join(design, on="version", how="inner").with_columns(pl.lit(False).alias("is_none"))
    if none_option:
        none_rows = (
            rows.group_by(["id", "version", "task"], maintain_order=True)
            .agg(pl.col("holdout").first())
            .with_columns(
                pl.lit(n_alts + 1, dtype=pl.Int64).alias("alt"),
                pl.lit(True).alias("is_none"),
                *[
                    pl.lit(None, dtype=pl.Float64 if a.kind == "numeric" else pl.String).alias(a.name)
                    for a in project.attributes
                ],
            )
        )
        rows = pl.concat([rows, none_rows.select(rows.columns)], how="vertical")
    rows = rows.sort(["id", "task", "alt"], maintain_order=True)

    X = coder.encode_frame(rows)
    betas = market.true_betas(rows["id"].to_numpy())
    rng = np.random.default_rng(seed)
    utility = np.einsum("ij,ij->i", X, betas) + rng.gumbel(size=rows.height) / scale

    # first row of the max utility within each (id, task) group
    id_arr = rows["id"].to_numpy()
    task_arr = rows["task"].to_numpy()
    group = np.cumsum(np.r_[True, (id_arr[1:] != id_arr[:-1]) | (task_arr[1:] != task_arr[:-1])])
    order = np.lexsort((-utility, group))
    first = np.r_[True, group[order][1:] != group[order][:-1]]
    chosen = np.zeros(rows.height, dtype=np.int8)
    chosen[order[first]] = 1

    return rows.with_columns(pl.Series("chosen", chosen, dtype=pl.Int8)).select(
        "id", "version", "task", "alt", "is_none", "chosen", *attrs, "holdout"
    )
