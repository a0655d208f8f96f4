"""Population scoring: expected shares of a product line in every cell (city) of the whole population.

A fitted choice model stands for a few *types* of customers with their own
coefficients: the classes of a latent class model, or one type for the other
models. A person's expected choice probabilities over our line, the project's
competitors and None are ``w(person) @ S``, with ``w`` the person's type
probabilities and ``S`` (types x products) each type's logit shares, computed
once in Python with the :class:`~c2m.market.MarketSimulator`. Cells' shares are
the mean over their persons, and since ``S`` is a constant,
``mean(w @ S) = (sum(w) / persons) @ S``: the engine (DuckDB, Polars, Spark)
only computes the membership logit on each person's traits and sums ``w`` per
cell (:meth:`Engine.membership_sums`); no person reaches Python.

* Latent class with membership on traits: ``w`` is the membership logit on the
  person's traits (as :meth:`LatentClassLogit.predict_proba` with ``persons``).
* Multinomial logit, latent class without membership traits, mixed logit and
  hierarchical Bayes: the model's coefficients are not tied to person traits, so
  every person gets the population-average shares (those of
  :func:`c2m.pipeline.simulator_for_model`) and every cell the same shares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from c2m.domain import Profile, Project, check_profile
from c2m.errors import C2MError

from ._engine import ENGINES, Engine, make_engine

if TYPE_CHECKING:
    from c2m.data import Market

SCORE_COLUMNS = ("product", "kind", "persons", "share", "buyers")


class PopulationTypes:
    """The types a model stands for: membership logit ``gamma`` on ``features`` and shares ``S``."""

    def __init__(
        self, features: list[str], gamma: np.ndarray, shares: np.ndarray, products: list[str], kinds: list[str]
    ) -> None:
        self.features = features
        self.gamma = gamma  # (K, 1 + M), row 0 is the base class (zeros)
        self.shares = shares  # (K, J), rows sum to 1
        self.products = products
        self.kinds = kinds


def line_profiles(
    project: Project, line: Sequence[Profile] | Mapping[str, Any], names: Sequence[str] | None = None
) -> tuple[list[Profile], list[str] | None]:
    """Profiles and names of a line: a list of profiles, or a product definition (``variants`` with ``profile``)."""
    if isinstance(line, Mapping):
        variants = line.get("variants")
        if not isinstance(variants, list) or not variants:
            raise C2MError("score: the product definition has no 'variants' list")
        profiles: list[Profile] = []
        for i, v in enumerate(variants):
            if not isinstance(v, Mapping) or not isinstance(v.get("profile"), Mapping):
                raise C2MError(f"score: variants[{i}] has no 'profile' mapping")
            profiles.append(check_profile(project, dict(v["profile"]), where=f"variants[{i}].profile"))
        if names is None:
            names = [str(v.get("name", f"variant {i + 1}")) for i, v in enumerate(variants)]
        return profiles, list(names)
    if isinstance(line, str | bytes) or not isinstance(line, Sequence):
        raise C2MError(f"score: line must be a list of profiles or a product definition, got {type(line).__name__}")
    return [check_profile(project, p, where=f"line[{i}]") for i, p in enumerate(line)], (
        None if names is None else list(names)
    )


def population_types(
    project: Project, model: Any, line: Sequence[Profile], names: Sequence[str] | None = None, scale: float = 1.0
) -> PopulationTypes:
    """The types of ``model`` and their logit shares of ``line``, the competitors and None."""
    from c2m.choice import LatentClassLogit
    from c2m.domain import FeatureCoder
    from c2m.market import MarketSimulator
    from c2m.pipeline._stages import simulator_for_model

    if isinstance(model, LatentClassLogit) and getattr(model, "membership_features_", None):
        if not hasattr(model, "coef_"):
            raise C2MError("score: the LatentClassLogit is not fitted yet")
        project_names = FeatureCoder.from_project(project).feature_names
        features = list(model.feature_names_)
        if sorted(features) != sorted(project_names):
            raise C2MError(
                f"model features {features} do not match the project's {project_names}; "
                "estimate the model on the project's survey responses"
            )
        order = [features.index(n) for n in project_names]
        frames = [
            MarketSimulator(project, np.asarray(model.coef_[k], dtype=float)[order], scale=scale).shares(line, names)
            for k in range(model.coef_.shape[0])
        ]
        gamma = np.vstack([np.zeros((1, model.membership_coef_.shape[1])), model.membership_coef_])
        shares = np.stack([f["share"].to_numpy() for f in frames])
        traits = [str(f) for f in model.membership_features_]
        first = frames[0]
    else:
        first = simulator_for_model(project, model, scale=scale, n_draws=0).shares(line, names)
        gamma, shares, traits = np.zeros((1, 1)), first["share"].to_numpy()[None, :], []
    return PopulationTypes(
        traits, gamma, np.asarray(shares, dtype=float), first["product"].to_list(), first["kind"].to_list()
    )


def _engine_for(source: str | Path | Engine | Market, engine: str | Engine, options: dict[str, Any]) -> Engine:
    from c2m.data import Market

    if isinstance(source, Engine):
        return source
    if isinstance(source, Market):
        from ._polars import PolarsEngine

        return PolarsEngine(source.persons, source.events, where=f"market {source.project_name!r}")
    if not isinstance(source, str | Path):
        raise C2MError(f"score: market must be a market directory, an Engine or a Market, got {type(source).__name__}")
    if isinstance(engine, str) and engine not in ENGINES:
        raise C2MError(f"score: unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    return make_engine(source, engine, **options)


def score_population(
    market: str | Path | Engine | Market,
    project: Project,
    model: Any,
    line: Sequence[Profile] | Mapping[str, Any],
    by: Sequence[str] | str = ("city",),
    engine: str | Engine = "duckdb",
    *,
    names: Sequence[str] | None = None,
    scale: float = 1.0,
    **options: Any,
) -> pl.DataFrame:
    """Expected shares of ``line``, the competitors and None in every ``by`` cell of the whole population.

    ``market`` is a market directory (``persons.parquet``; read by ``engine``:
    ``"duckdb"``, ``"polars"`` or ``"spark"``, ``options`` going to the engine),
    an :class:`Engine` or an in-memory :class:`c2m.data.Market`. ``model`` is any
    fitted c2m choice model on the project's features (see the module docs for
    what each model means per person); ``line`` a list of profiles (named
    ``names``, default V1, V2, ...) or a product definition dict. Shares use the
    logit rule at ``scale``.

    Returns one row per cell and product (our variants, the competitors, ``none``):
    ``by...``, ``product``, ``kind``, ``persons`` (persons in the cell),
    ``share`` (their mean choice probability; shares sum to 1 per cell) and,
    when the project has cities, ``buyers``: expected buyers per year,
    ``sum over the cell's cities c of share(cell, c) x market_size(c) x persons(cell, c) / persons(c)``
    (with ``by = city`` simply ``share x market_size``; null where a person's
    city is not among the project's cities).
    """
    if not isinstance(project, Project):
        raise C2MError(f"score: project must be a c2m Project, got {type(project).__name__}")
    cols = [by] if isinstance(by, str) else list(by)
    if len(set(cols)) != len(cols):
        raise C2MError(f"score: by has repeated columns {cols}")
    clash = [c for c in cols if c in SCORE_COLUMNS]
    if clash:
        raise C2MError(f"score: by column(s) {clash} clash with the result columns {list(SCORE_COLUMNS)}")
    profiles, labels = line_profiles(project, line, names)
    types = population_types(project, model, profiles, labels, scale=scale)
    sizes = {c.name: float(c.market_size) for c in project.cities}
    with_buyers = bool(sizes)
    keys = cols + (["city"] if with_buyers and "city" not in cols else [])
    eng = _engine_for(market, engine, options)
    try:
        sums = eng.membership_sums(keys, types.features, types.gamma)
    finally:
        if eng is not market and eng is not engine:  # close only the engine made here
            eng.close()
    bad = int(sums["incomplete"].sum())
    if bad:
        raise C2MError(
            f"score: {bad:,} person(s) have a missing or non-finite membership trait among "
            f"{types.features}; fix or drop them before scoring"
        )
    if int(sums["persons"].sum()) == 0:
        raise C2MError("score: the population has no persons")
    return _shares_table(sums, cols, keys, types, sizes if with_buyers else None)


def _shares_table(
    sums: pl.DataFrame, cols: list[str], keys: list[str], types: PopulationTypes, sizes: dict[str, float] | None
) -> pl.DataFrame:
    K, J = types.shares.shape
    wcols = [f"w_{k}" for k in range(K)]
    if sizes is not None:
        # expected buyers of each (cell, city) part: share x the city's market size x its part of the city's persons
        in_city = sums.group_by("city").agg(pl.col("persons").sum().alias("_city_persons"))
        sums = sums.join(in_city, on="city", how="left", nulls_equal=True).with_columns(
            pl.col("city").replace_strict(sizes, default=None, return_dtype=pl.Float64).alias("_size")
        )
        factor = (sums["_size"] / sums["_city_persons"].cast(pl.Float64)).to_numpy()  # buyers per person
        W = sums.select(wcols).to_numpy()
        buyers = (W @ types.shares) * factor[:, None]
        sums = sums.with_columns(
            [pl.Series(f"_b{j}", buyers[:, j], dtype=pl.Float64, nan_to_null=True) for j in range(J)]
        )
    if keys != cols:  # city was added to size the buyers: back to the cells asked for
        aggs = [pl.col("persons").sum(), *(pl.col(c).sum() for c in wcols)]
        if sizes is not None:
            aggs += [
                pl.when(pl.col(f"_b{j}").is_null().any()).then(None).otherwise(pl.col(f"_b{j}").sum()).alias(f"_b{j}")
                for j in range(J)
            ]
        sums = sums.group_by(cols).agg(aggs).sort(cols, nulls_last=True) if cols else sums.select(aggs)
    W = sums.select(wcols).to_numpy()
    persons = sums["persons"].to_numpy().astype(float)
    shares = (W / persons[:, None]) @ types.shares
    n = sums.height
    out = {
        **{c: sums[c].gather(np.repeat(np.arange(n), J)) for c in cols},
        "product": pl.Series("product", types.products * n, dtype=pl.String),
        "kind": pl.Series("kind", types.kinds * n, dtype=pl.String),
        "persons": pl.Series("persons", np.repeat(sums["persons"].to_numpy(), J), dtype=pl.Int64),
        "share": pl.Series("share", shares.reshape(-1), dtype=pl.Float64),
    }
    if sizes is not None:
        b = sums.select([f"_b{j}" for j in range(J)]).to_numpy().reshape(-1)
        out["buyers"] = pl.Series("buyers", b, dtype=pl.Float64, nan_to_null=True)
    return pl.DataFrame(out)
