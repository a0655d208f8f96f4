"""Survey weighting: raking (iterative proportional fitting) with weight trimming."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from c2m.errors import C2MError


@dataclass(frozen=True)
class RakingResult:
    """Raking weights (mean 1, sample order) and their diagnostics.

    ``design_effect`` is Kish's ``1 + CV^2 = n sum w^2 / (sum w)^2`` and
    ``effective_sample_size`` is ``n / design_effect``; ``margins`` has one row
    per variable and level: ``variable``, ``level``, ``sample_share``,
    ``weighted_share``, ``population_share``.
    """

    weights: np.ndarray
    converged: bool
    iterations: int
    design_effect: float
    effective_sample_size: float
    margins: pl.DataFrame
    max_margin_error: float

    def as_frame(self, sample: pl.DataFrame, name: str = "weight") -> pl.DataFrame:
        """``sample`` with the weights as a new column."""
        return sample.with_columns(pl.Series(name, self.weights))


def _level_keys(series: pl.Series, where: str) -> pl.Series:
    """Levels as strings (booleans as ``True``/``False``, like ``str``); nulls are an error."""
    if series.null_count():
        row = int(np.flatnonzero(series.is_null().to_numpy())[0])
        raise C2MError(f"{where}: column {series.name!r} is empty at row {row}")
    if series.dtype == pl.Boolean:
        return pl.select(pl.when(series).then(pl.lit("True")).otherwise(pl.lit("False"))).to_series()
    return series.cast(pl.String)


def _population_shares(
    population_margins: Mapping[str, Mapping[str, float]] | pl.DataFrame | None,
    population: pl.DataFrame | None,
    variables: Sequence[str] | None,
) -> tuple[list[str], dict[str, dict[str, float]]]:
    if isinstance(population_margins, pl.DataFrame):
        if population is not None:
            raise C2MError("rake: give population_margins or population, not both")
        population, population_margins = population_margins, None
    if (population_margins is None) == (population is None):
        raise C2MError("rake: give exactly one of population_margins (variable -> level -> share) or population")
    if population is not None:
        if variables is None:
            raise C2MError("rake: variables must be named when the population is a table")
        names = list(variables)
        missing = [v for v in names if v not in population.columns]
        if missing:
            raise C2MError(f"rake: population is missing column(s) {missing}; found {population.columns}")
        if population.height == 0:
            raise C2MError("rake: population table is empty")
        margins: dict[str, dict[str, float]] = {}
        for var in names:
            keys = _level_keys(population[var], "rake: population")
            counts = keys.value_counts(name="n").sort(keys.name)
            margins[var] = {str(lv): float(c) / keys.len() for lv, c in counts.iter_rows()}
        return names, margins
    assert population_margins is not None
    if not isinstance(population_margins, Mapping) or not population_margins:
        raise C2MError("rake: population_margins must be a non-empty mapping variable -> level -> share")
    names = list(variables) if variables is not None else [str(v) for v in population_margins]
    margins = {}
    for var in names:
        if var not in population_margins:
            raise C2MError(f"rake: population_margins has no variable {var!r}; found {list(population_margins)}")
        table = population_margins[var]
        if not isinstance(table, Mapping) or not table:
            raise C2MError(f"rake: population_margins[{var!r}] must be a non-empty mapping level -> share")
        shares: dict[str, float] = {}
        for level, value in table.items():
            try:
                share = float(value)
            except (TypeError, ValueError):
                raise C2MError(f"rake: population share of {var}={level!r} must be a number, got {value!r}") from None
            if not math.isfinite(share) or share < 0:
                raise C2MError(f"rake: population share of {var}={level!r} must be finite and >= 0, got {value!r}")
            shares[str(level)] = share
        total = sum(shares.values())
        if total <= 0:
            raise C2MError(f"rake: population shares of {var!r} sum to 0")
        margins[var] = {lv: s / total for lv, s in shares.items()}
    return names, margins


def _trim(w: np.ndarray, low: float, high: float) -> np.ndarray:
    """Clip weights to [low, high] times their mean (repeated: clipping moves the mean)."""
    for _ in range(100):
        mean = w.mean()
        ratio = w / mean
        if ratio.min() >= low * (1 - 1e-12) and ratio.max() <= high * (1 + 1e-12):
            break
        w = np.clip(w, low * mean, high * mean)
    return w


def rake(
    sample: pl.DataFrame,
    population_margins: Mapping[str, Mapping[str, float]] | pl.DataFrame | None = None,
    *,
    population: pl.DataFrame | None = None,
    variables: Sequence[str] | None = None,
    max_iter: int = 100,
    tol: float = 1e-8,
    trim: tuple[float, float] | None = (0.2, 5.0),
    base_weights: np.ndarray | Sequence[float] | None = None,
) -> RakingResult:
    """Weights that make ``sample`` match the population's margins on ``variables``.

    The population is given as margins (variable -> level -> share; shares are
    normalised per variable) or as a table of population members
    (``population=`` or a DataFrame in place of the margins), from which the
    margins of ``variables`` are counted. Raking cycles through the variables,
    scaling the weights of each level to its population share (starting from
    ``base_weights``, default 1), then trims the weights to ``trim`` = (low,
    high) times their mean (``None``: no trimming) and repeats until every
    weighted margin is within ``tol`` of the population's or ``max_iter``
    cycles have run. Weights are returned with mean 1.
    """
    if not isinstance(sample, pl.DataFrame):
        raise C2MError(f"rake: sample must be a polars DataFrame, got {type(sample).__name__}")
    names, margins = _population_shares(population_margins, population, variables)
    missing = [v for v in names if v not in sample.columns]
    if missing:
        raise C2MError(f"rake: sample is missing column(s) {missing}; found {sample.columns}")
    n = sample.height
    if n == 0:
        raise C2MError("rake: sample is empty")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise C2MError(f"rake: max_iter must be a whole number >= 1, got {max_iter!r}")
    if not (isinstance(tol, int | float) and tol > 0):
        raise C2MError(f"rake: tol must be a number > 0, got {tol!r}")
    if trim is not None:
        low, high = (float(t) for t in trim)
        if not (0 <= low < 1 < high):
            raise C2MError(f"rake: trim must be (low, high) with 0 <= low < 1 < high, got {trim!r}")
    if base_weights is None:
        w = np.ones(n)
    else:
        w = np.asarray(base_weights, dtype=float).copy()
        if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise C2MError(f"rake: base_weights must be {n} finite numbers > 0")
        w = w / w.mean()

    codes: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    level_names: list[list[str]] = []
    for var in names:
        keys = _level_keys(sample[var], "rake: sample")
        levels = list(margins[var])
        index = {lv: k for k, lv in enumerate(levels)}
        unknown = sorted(set(keys.unique().to_list()) - set(index))
        if unknown:
            raise C2MError(
                f"rake: sample variable {var!r} has level {unknown[0]!r} absent from the population "
                f"(population levels: {levels})"
            )
        code = keys.replace_strict(index, return_dtype=pl.Int64).to_numpy()
        counts = np.bincount(code, minlength=len(levels))
        target = np.array([margins[var][lv] for lv in levels])
        for k, lv in enumerate(levels):
            if target[k] > 0 and counts[k] == 0:
                raise C2MError(f"rake: population level {var}={lv!r} has no sample members; merge it or drop it")
            if target[k] == 0 and counts[k] > 0:
                raise C2MError(f"rake: sample variable {var!r} has level {lv!r} whose population share is 0")
        codes.append(code)
        targets.append(target)
        level_names.append(levels)

    def margin_error(weights: np.ndarray) -> float:
        total = weights.sum()
        return max(
            float(np.abs(np.bincount(c, weights=weights, minlength=t.shape[0]) / total - t).max())
            for c, t in zip(codes, targets, strict=True)
        )

    converged = False
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - reported
        for code, target in zip(codes, targets, strict=True):
            current = np.bincount(code, weights=w, minlength=target.shape[0]) / w.sum()
            factor = np.divide(target, current, out=np.zeros_like(target), where=current > 0)
            w = w * factor[code]
        if trim is not None:
            w = _trim(w, low, high)
        w = w / w.mean()
        if margin_error(w) < tol:
            converged = True
            break
    error = margin_error(w)
    deff = float(n * np.sum(w**2) / np.sum(w) ** 2)
    rows: dict[str, list[object]] = {
        "variable": [],
        "level": [],
        "sample_share": [],
        "weighted_share": [],
        "population_share": [],
    }
    for var, code, target, levels in zip(names, codes, targets, level_names, strict=True):
        sample_share = np.bincount(code, minlength=len(levels)) / n
        weighted = np.bincount(code, weights=w, minlength=len(levels)) / w.sum()
        rows["variable"].extend([var] * len(levels))
        rows["level"].extend(levels)
        rows["sample_share"].extend(sample_share.tolist())
        rows["weighted_share"].extend(weighted.tolist())
        rows["population_share"].extend(target.tolist())
    margins_frame = pl.DataFrame(
        rows,
        schema={
            "variable": pl.String,
            "level": pl.String,
            "sample_share": pl.Float64,
            "weighted_share": pl.Float64,
            "population_share": pl.Float64,
        },
    )
    return RakingResult(
        weights=w,
        converged=converged,
        iterations=iterations,
        design_effect=deff,
        effective_sample_size=n / deff,
        margins=margins_frame,
        max_margin_error=error,
    )
