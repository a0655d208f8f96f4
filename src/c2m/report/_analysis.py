"""Numbers the report derives from a fitted model: part-worths, importance, WTP, fit."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from c2m.domain import NONE_FEATURE, FeatureCoder, Project
from c2m.errors import C2MError

Z95 = 1.959963984540054


@dataclass(frozen=True)
class PartWorth:
    """One attribute level's part-worth (utility against the reference level)."""

    attribute: str
    attribute_label: str
    level: str
    level_label: str
    partworth: float
    se: float | None
    reference: bool
    wtp: float | None = None

    @property
    def low(self) -> float | None:
        return None if self.se is None else self.partworth - Z95 * self.se

    @property
    def high(self) -> float | None:
        return None if self.se is None else self.partworth + Z95 * self.se


@dataclass(frozen=True)
class Importance:
    attribute: str
    attribute_label: str
    range: float
    share: float


@dataclass(frozen=True)
class Preferences:
    partworths: list[PartWorth]
    importance: list[Importance]
    price_coef: float | None
    price_scale: float | None
    none_coef: float | None
    none_se: float | None
    coefficients: list[dict[str, Any]]

    def by_attribute(self) -> dict[str, list[PartWorth]]:
        out: dict[str, list[PartWorth]] = {}
        for pw in self.partworths:
            out.setdefault(pw.attribute, []).append(pw)
        return out


def _as_floats(values: Any, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan)
    return np.asarray([np.nan if v is None else float(v) for v in values], dtype=float)


def coefficient_table(model: dict[str, Any]) -> list[dict[str, Any]]:
    """Feature, estimate, standard error, z and two-sided p, as in model.json order."""
    features = list(model["features"])
    coef = _as_floats(model["coef"], len(features))
    se = _as_floats(model.get("se"), len(features))
    rows = []
    for name, b, s in zip(features, coef, se, strict=True):
        z = b / s if math.isfinite(s) and s > 0 else math.nan
        p = math.erfc(abs(z) / math.sqrt(2)) if math.isfinite(z) else math.nan
        rows.append({"feature": name, "coef": b, "se": s, "z": z, "p": p})
    return rows


def preferences(model: dict[str, Any], project: Project | None = None) -> Preferences:
    """Part-worths with standard errors, attribute importance and WTP of a model.json dict.

    With a project the coefficients are decoded with the project's
    :class:`~c2m.domain.FeatureCoder` (reference level at 0, numeric attributes
    expanded over their level values); without one, the ``attr=level`` feature
    names are grouped and the reference level is shown as ``(reference)``.
    """
    features = list(model["features"])
    coef = _as_floats(model["coef"], len(features))
    se = _as_floats(model.get("se"), len(features))
    table = coefficient_table(model)
    if project is not None:
        return _with_project(project, features, coef, se, table)
    return _without_project(features, coef, se, table)


def _se_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _with_project(
    project: Project, features: list[str], coef: np.ndarray, se: np.ndarray, table: list[dict[str, Any]]
) -> Preferences:
    coder = FeatureCoder.from_project(project)
    names = coder.feature_names
    if sorted(features) != sorted(names):
        raise C2MError(
            f"report input model.features: {features} do not match the project's features {names}; "
            "give the project the model was estimated with"
        )
    order = [features.index(n) for n in names]
    c, s = coef[order], se[order]
    worths = coder.decode_coefficients(c)
    errors = coder.decode_coefficients(np.nan_to_num(s, nan=-1.0))
    price_attr = project.attribute_by_role("price")
    price_coef = None
    price_scale = None
    if price_attr is not None and price_attr.kind == "numeric":
        price_coef = float(worths[price_attr.name][price_attr.name])
        price_scale = float(price_attr.scale)
    rows: list[PartWorth] = []
    importance: list[tuple[str, str, float]] = []
    for attribute in project.attributes:
        label = attribute.label or attribute.name
        values: list[float] = []
        if attribute.kind == "numeric":
            beta = worths[attribute.name][attribute.name]
            beta_se = errors[attribute.name][attribute.name]
            base = float(attribute.levels[0].value or 0.0)
            for k, level in enumerate(attribute.levels):
                step = (float(level.value or 0.0) - base) / attribute.scale
                pw = beta * step
                rows.append(
                    PartWorth(
                        attribute.name,
                        label,
                        level.name,
                        level.label or _number_label(level.value, attribute),
                        pw,
                        None if k == 0 or beta_se < 0 else abs(beta_se * step),
                        k == 0,
                    )
                )
                values.append(pw)
        else:
            for k, level in enumerate(attribute.levels):
                pw = worths[attribute.name][level.name]
                err = errors[attribute.name][level.name]
                wtp = None
                if attribute is not price_attr and price_coef is not None and price_coef < 0 and price_scale:
                    wtp = -pw / price_coef * price_scale
                rows.append(
                    PartWorth(
                        attribute.name,
                        label,
                        level.name,
                        level.label or level.name,
                        pw,
                        None if k == 0 or err < 0 else err,
                        k == 0,
                        wtp,
                    )
                )
                values.append(pw)
        importance.append((attribute.name, label, max(values) - min(values)))
    none_coef = none_se = None
    if coder.with_none:
        none_coef = float(c[-1])
        none_se = _se_or_none(float(s[-1]))
    return Preferences(rows, _importance(importance), price_coef, price_scale, none_coef, none_se, table)


def _number_label(value: float | None, attribute: Any) -> str:
    if value is None:
        return ""
    if attribute.role == "price":
        return f"\u00a5{round(value):,}"
    return f"{value:,g}"


def _without_project(
    features: list[str], coef: np.ndarray, se: np.ndarray, table: list[dict[str, Any]]
) -> Preferences:
    rows: list[PartWorth] = []
    groups: dict[str, list[int]] = {}
    numeric: list[int] = []
    none_coef = none_se = None
    for i, name in enumerate(features):
        if name == NONE_FEATURE:
            none_coef, none_se = float(coef[i]), _se_or_none(float(se[i]))
        elif "=" in name:
            groups.setdefault(name.split("=", 1)[0], []).append(i)
        else:
            numeric.append(i)
    importance: list[tuple[str, str, float]] = []
    for attr, idx in groups.items():
        rows.append(PartWorth(attr, attr, "(reference)", "(reference)", 0.0, None, True))
        values = [0.0]
        for i in idx:
            level = features[i].split("=", 1)[1]
            rows.append(PartWorth(attr, attr, level, level, float(coef[i]), _se_or_none(float(se[i])), False))
            values.append(float(coef[i]))
        importance.append((attr, attr, max(values) - min(values)))
    for i in numeric:
        name = features[i]
        rows.append(
            PartWorth(name, name, "per unit", "per unit", float(coef[i]), _se_or_none(float(se[i])), False)
        )
    return Preferences(rows, _importance(importance), None, None, none_coef, none_se, table)


def _importance(ranges: list[tuple[str, str, float]]) -> list[Importance]:
    total = sum(r for _, _, r in ranges)
    out = [Importance(a, label, r, r / total if total > 0 else 0.0) for a, label, r in ranges]
    return sorted(out, key=lambda imp: -imp.range)


def fit_statistics(model: dict[str, Any]) -> list[tuple[str, Any]]:
    """Model fit as (label, value) pairs; McFadden's rho² computed when not given."""
    ll = model.get("loglik")
    ll0 = model.get("loglik_null")
    k = len(model.get("features", []))
    rho2 = model.get("rho2")
    rho2_adj = model.get("rho2_adj")
    if isinstance(ll, int | float) and isinstance(ll0, int | float) and ll0 != 0:
        if rho2 is None:
            rho2 = 1.0 - ll / ll0
        if rho2_adj is None:
            rho2_adj = 1.0 - (ll - k) / ll0
    pairs: list[tuple[str, Any]] = [
        ("Model", model.get("model")),
        ("Parameters", k),
        ("Choice observations", model.get("n_obs")),
        ("Respondents", model.get("n_persons")),
        ("Log-likelihood", ll),
        ("Null log-likelihood", ll0),
        ("McFadden \u03c1\u00b2", rho2),
        ("Adjusted \u03c1\u00b2", rho2_adj),
        ("AIC", model.get("aic")),
        ("BIC", model.get("bic")),
        ("Converged", model.get("converged")),
    ]
    return [(label, value) for label, value in pairs if value is not None]
