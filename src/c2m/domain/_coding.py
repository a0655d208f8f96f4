"""Products as profiles (attribute -> level), and their coding into utility features."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from c2m.errors import C2MError

from ._schema import Attribute, Project

Profile = Mapping[str, str | float]
"""A product: attribute name -> level name (categorical/ordered) or value (numeric)."""

NONE_FEATURE = "none"


@dataclass(frozen=True)
class FeatureCoder:
    """Turns profiles into the feature vectors a choice model's coefficients apply to.

    Categorical and ordered attributes are dummy-coded against their first level
    (features ``attribute=level``); numeric attributes are one linear feature
    named after the attribute, equal to ``value / scale``. When the project has a
    None option a last feature ``none`` is 1 on the None alternative only.
    """

    attributes: tuple[Attribute, ...]
    with_none: bool

    @classmethod
    def from_project(cls, project: Project) -> FeatureCoder:
        return cls(tuple(project.attributes), project.none_option.enabled)

    @property
    def feature_names(self) -> list[str]:
        names: list[str] = []
        for attribute in self.attributes:
            if attribute.kind == "numeric":
                names.append(attribute.name)
            else:
                names.extend(f"{attribute.name}={lv}" for lv in attribute.level_names[1:])
        if self.with_none:
            names.append(NONE_FEATURE)
        return names

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def feature_slices(self) -> dict[str, slice]:
        """The columns of each attribute in the feature vector."""
        out: dict[str, slice] = {}
        start = 0
        for attribute in self.attributes:
            width = 1 if attribute.kind == "numeric" else len(attribute.levels) - 1
            out[attribute.name] = slice(start, start + width)
            start += width
        return out

    def encode(self, profile: Profile) -> np.ndarray:
        """Feature vector of one product profile."""
        return self.encode_many([profile])[0]

    def encode_many(self, profiles: Sequence[Profile]) -> np.ndarray:
        """Feature matrix (n, n_features) of product profiles."""
        X = np.zeros((len(profiles), self.n_features))
        slices = self.feature_slices()
        for attribute in self.attributes:
            cols = slices[attribute.name]
            if attribute.kind == "numeric":
                X[:, cols.start] = [
                    float(p[attribute.name]) / attribute.scale for p in profiles
                ]
                continue
            index = {name: k for k, name in enumerate(attribute.level_names)}
            for row, profile in enumerate(profiles):
                k = index[str(profile[attribute.name])]
                if k > 0:
                    X[row, cols.start + k - 1] = 1.0
        return X

    def encode_frame(self, frame: pl.DataFrame) -> np.ndarray:
        """Feature matrix of a long-format frame with one column per attribute.

        Rows whose ``is_none`` column is true (if the column exists) are the None
        alternative: their attribute columns may be null.
        """
        missing = [a.name for a in self.attributes if a.name not in frame.columns]
        if missing:
            raise C2MError(f"choice data: missing attribute column(s) {missing}")
        is_none = (
            frame["is_none"].fill_null(False).to_numpy().astype(bool)
            if "is_none" in frame.columns
            else np.zeros(frame.height, dtype=bool)
        )
        X = np.zeros((frame.height, self.n_features))
        slices = self.feature_slices()
        for attribute in self.attributes:
            cols = slices[attribute.name]
            column = frame[attribute.name]
            bad_null = column.is_null().to_numpy() & ~is_none
            if bad_null.any():
                row = int(np.flatnonzero(bad_null)[0])
                raise C2MError(f"choice data: column {attribute.name!r} is empty at row {row}")
            if attribute.kind == "numeric":
                try:
                    values = column.cast(pl.Float64).fill_null(0.0).to_numpy()
                except pl.exceptions.PolarsError:
                    raise C2MError(
                        f"choice data: column {attribute.name!r} must be numeric"
                    ) from None
                X[:, cols.start] = np.where(is_none, 0.0, values / attribute.scale)
                continue
            text = column.cast(pl.String)
            known = text.is_in(attribute.level_names).fill_null(False).to_numpy()
            bad = ~known & ~is_none
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise C2MError(
                    f"choice data: column {attribute.name!r} row {row}: unknown level "
                    f"{text[row]!r}; expected one of {attribute.level_names}"
                )
            for k, level in enumerate(attribute.level_names[1:]):
                X[:, cols.start + k] = (text == level).fill_null(False).to_numpy()
        if self.with_none:
            X[:, -1] = is_none
        X[is_none, : self.n_features - (1 if self.with_none else 0)] = 0.0
        return X

    def none_row(self) -> np.ndarray:
        """Feature vector of the None alternative."""
        if not self.with_none:
            raise C2MError("this project has no None option (none_option.enabled = false)")
        row = np.zeros(self.n_features)
        row[-1] = 1.0
        return row

    def decode_coefficients(self, coef: np.ndarray) -> dict[str, dict[str, float]]:
        """Part-worths per attribute level (reference level 0) from a coefficient vector."""
        coef = np.asarray(coef, dtype=float)
        slices = self.feature_slices()
        out: dict[str, dict[str, float]] = {}
        for attribute in self.attributes:
            cols = slices[attribute.name]
            if attribute.kind == "numeric":
                out[attribute.name] = {attribute.name: float(coef[cols.start])}
            else:
                worths = [0.0, *coef[cols].tolist()]
                out[attribute.name] = dict(zip(attribute.level_names, worths, strict=True))
        return out


def check_profile(project: Project, profile: Profile, where: str = "profile") -> dict[str, str | float]:
    """Validate a profile against the project; return it normalised (levels as str, values as float)."""
    out: dict[str, str | float] = {}
    unknown = sorted(set(profile) - set(project.attribute_names))
    if unknown:
        raise C2MError(f"{where}: unknown attribute(s) {unknown}; expected {project.attribute_names}")
    for attribute in project.attributes:
        if attribute.name not in profile:
            raise C2MError(f"{where}.{attribute.name}: missing")
        value = profile[attribute.name]
        if attribute.kind == "numeric":
            try:
                out[attribute.name] = float(value)
            except (TypeError, ValueError):
                raise C2MError(f"{where}.{attribute.name}: must be a number, got {value!r}") from None
        elif str(value) not in attribute.level_names:
            raise C2MError(
                f"{where}.{attribute.name}: unknown level {value!r}; "
                f"expected one of {attribute.level_names}"
            )
        else:
            out[attribute.name] = str(value)
    return out


def is_prohibited(project: Project, profile: Profile) -> bool:
    """True when the profile matches any of the project's prohibited combinations."""
    return any(
        all(
            _matches(project.attribute(attr), profile.get(attr), [levels] if isinstance(levels, str) else levels)
            for attr, levels in prohibition.levels.items()
        )
        for prohibition in project.prohibitions
    )


def _matches(attribute: Attribute, value: str | float | None, level_names: list[str]) -> bool:
    """Whether a profile's value is one of the named levels (numeric: equal to the level's value)."""
    if value is None:
        return False
    if attribute.kind == "numeric" and not isinstance(value, str):
        return any(float(value) == attribute.level(name).value for name in level_names)
    return str(value) in level_names


def variable_cost(project: Project, profile: Profile) -> float:
    """Unit cost of a profile: level costs, plus the pack's cost when the battery is bought."""
    cost = project.product.base_unit_cost
    ownership = "buy"
    pack_id: str | None = None
    for attribute in project.attributes:
        if attribute.kind == "numeric":
            continue
        level = attribute.level(str(profile[attribute.name]))
        cost += level.cost
        if level.ownership is not None:
            ownership = level.ownership
        if level.battery_pack is not None:
            pack_id = level.battery_pack
    if pack_id is not None and ownership == "buy":
        cost += project.battery_pack(pack_id).cost
    return cost


def fixed_cost(project: Project, profiles: Iterable[Profile]) -> float:
    """Fixed cost of a line: per variant, plus each distinct level's own fixed cost once."""
    profiles = list(profiles)
    total = project.product.fixed_cost_per_variant * len(profiles)
    used: set[tuple[str, str]] = set()
    for profile in profiles:
        for attribute in project.attributes:
            if attribute.kind != "numeric":
                used.add((attribute.name, str(profile[attribute.name])))
    for attr_name, level_name in used:
        total += project.attribute(attr_name).level(level_name).fixed_cost
    return total


def rent_plan_of(project: Project, profile: Profile) -> tuple[str, float, float | None, float] | None:
    """``(plan, monthly_fee, km_cap, overage_per_km)`` when the profile rents its battery."""
    plan_name: str | None = None
    pack_id: str | None = None
    for attribute in project.attributes:
        if attribute.kind == "numeric":
            continue
        level = attribute.level(str(profile[attribute.name]))
        if level.rent_plan is not None:
            plan_name = level.rent_plan
        if level.battery_pack is not None:
            pack_id = level.battery_pack
    if plan_name is None:
        return None
    packs = [project.battery_pack(pack_id)] if pack_id else project.battery_packs
    for pack in packs:
        for plan in pack.rent_plans:
            if plan.name == plan_name:
                return plan.name, plan.monthly_fee, plan.km_cap, plan.overage_per_km
    raise C2MError(f"rent plan {plan_name!r} is not offered for pack {pack_id!r}")


def enumerate_profiles(
    project: Project, numeric_values: Mapping[str, Sequence[float]] | None = None
) -> list[dict[str, str | float]]:
    """Every allowed profile; numeric attributes take their levels' values unless given."""
    numeric_values = dict(numeric_values or {})
    axes: list[list[str | float]] = []
    for attribute in project.attributes:
        if attribute.kind == "numeric":
            grid = numeric_values.get(attribute.name)
            if grid is None:
                grid = [float(level.value) for level in attribute.levels if level.value is not None]
            axes.append(list(grid))
        else:
            axes.append(list(attribute.level_names))
    names = project.attribute_names
    profiles = (dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes))
    return [p for p in profiles if not is_prohibited(project, p)]
