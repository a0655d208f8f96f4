"""The profile space of a project as integer level indices, with vectorised prohibitions and coding."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from c2m.domain import FeatureCoder, Project
from c2m.errors import C2MError

MAX_ENUMERATED = 3_000_000
"""Largest full-factorial size the enumerating methods (complete enumeration...) accept."""


@dataclass(frozen=True)
class ProfileSpace:
    """Attributes of a project seen as level indices ``0..L_a-1``.

    A design is held as an integer array ``(..., A)`` of level indices; numeric
    attributes index their levels' values. ``codes[a][l]`` is the contribution of
    level ``l`` of attribute ``a`` to the feature vector (the project's
    :class:`~c2m.domain.FeatureCoder` order), so a profile's features are the sum
    over attributes.
    """

    names: tuple[str, ...]
    numeric: tuple[bool, ...]
    level_names: tuple[tuple[str, ...], ...]
    values: tuple[np.ndarray, ...]
    n_levels: np.ndarray
    codes: tuple[np.ndarray, ...]
    prohibitions: tuple[tuple[tuple[int, np.ndarray], ...], ...]
    coder: FeatureCoder

    @classmethod
    def from_project(cls, project: Project, with_none: bool | None = None) -> ProfileSpace:
        with_none = project.none_option.enabled if with_none is None else with_none
        coder = FeatureCoder(tuple(project.attributes), with_none)
        slices = coder.feature_slices()
        K = coder.n_features
        names, numeric, level_names, values, codes = [], [], [], [], []
        for attribute in project.attributes:
            n = len(attribute.levels)
            cols = slices[attribute.name]
            code = np.zeros((n, K))
            is_numeric = attribute.kind == "numeric"
            vals = np.array([float(lv.value) if lv.value is not None else np.nan for lv in attribute.levels])
            if is_numeric:
                code[:, cols.start] = vals / attribute.scale
            else:
                code[np.arange(1, n), cols.start + np.arange(n - 1)] = 1.0
            names.append(attribute.name)
            numeric.append(is_numeric)
            level_names.append(tuple(attribute.level_names))
            values.append(vals)
            codes.append(code)
        position = {name: i for i, name in enumerate(names)}
        rules = []
        for prohibition in project.prohibitions:
            rule = []
            for attr, chosen in prohibition.levels.items():
                a = position[attr]
                chosen_list = [chosen] if isinstance(chosen, str) else list(chosen)
                rule.append((a, np.array([lv in chosen_list for lv in level_names[a]], dtype=bool)))
            rules.append(tuple(rule))
        return cls(
            names=tuple(names),
            numeric=tuple(numeric),
            level_names=tuple(level_names),
            values=tuple(values),
            n_levels=np.array([len(lv) for lv in level_names], dtype=np.int64),
            codes=tuple(codes),
            prohibitions=tuple(rules),
            coder=coder,
        )

    @property
    def n_attributes(self) -> int:
        return len(self.names)

    @property
    def n_features(self) -> int:
        return self.coder.n_features

    @property
    def with_none(self) -> bool:
        return self.coder.with_none

    @property
    def n_total(self) -> int:
        """Size of the full factorial (prohibited profiles included)."""
        return int(np.prod(self.n_levels.astype(float)))

    def prohibited(self, idx: np.ndarray) -> np.ndarray:
        """Boolean mask over the profiles ``idx`` (``(..., A)`` level indices) that break a prohibition."""
        idx = np.asarray(idx)
        out = np.zeros(idx.shape[:-1], dtype=bool)
        for rule in self.prohibitions:
            hit = np.ones(idx.shape[:-1], dtype=bool)
            for a, table in rule:
                hit &= table[idx[..., a]]
            out |= hit
        return out

    def profile_ids(self, idx: np.ndarray) -> np.ndarray:
        """Mixed-radix integer id of each profile (unique per level combination)."""
        idx = np.asarray(idx, dtype=np.int64)
        ids = np.zeros(idx.shape[:-1], dtype=np.int64)
        for a in range(self.n_attributes):
            ids = ids * int(self.n_levels[a]) + idx[..., a]
        return ids

    def allowed_profiles(self) -> np.ndarray:
        """Every allowed profile as level indices ``(n_allowed, A)``, in ``enumerate_profiles`` order."""
        if self.n_total > MAX_ENUMERATED:
            raise C2MError(
                f"survey design: the project has {self.n_total:,} possible profiles, more than the "
                f"{MAX_ENUMERATED:,} the enumerating methods handle; use method 'random' or 'd_efficient'"
            )
        grids = np.meshgrid(*[np.arange(n) for n in self.n_levels], indexing="ij")
        idx = np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)
        return idx[~self.prohibited(idx)]

    def encode(self, idx: np.ndarray) -> np.ndarray:
        """Feature vectors ``(..., K)`` of the profiles ``idx`` (``(..., A)``)."""
        idx = np.asarray(idx)
        X = np.zeros((*idx.shape[:-1], self.n_features))
        for a, code in enumerate(self.codes):
            X += code[idx[..., a]]
        return X

    def none_row(self) -> np.ndarray:
        return self.coder.none_row()

    def columns(self, idx: np.ndarray) -> list[pl.Series]:
        """Attribute columns of a design frame: String levels, Float64 numeric values."""
        out = []
        for a, name in enumerate(self.names):
            col = idx[:, a]
            if self.numeric[a]:
                out.append(pl.Series(name, self.values[a][col], dtype=pl.Float64))
            else:
                levels = np.array(self.level_names[a], dtype=object)
                out.append(pl.Series(name, levels[col].tolist(), dtype=pl.String))
        return out

    def indices(self, frame: pl.DataFrame, where: str = "design") -> np.ndarray:
        """Level indices ``(n_rows, A)`` of a design frame; C2MError on unknown levels or values."""
        idx = np.zeros((frame.height, self.n_attributes), dtype=np.int64)
        for a, name in enumerate(self.names):
            if name not in frame.columns:
                raise C2MError(f"{where}: missing attribute column {name!r}; expected {list(self.names)}")
            column = frame[name]
            if column.null_count():
                row = int(np.flatnonzero(column.is_null().to_numpy())[0])
                raise C2MError(f"{where}: column {name!r} is empty at row {row}")
            if self.numeric[a]:
                try:
                    vals = column.cast(pl.Float64).to_numpy()
                except pl.exceptions.PolarsError:
                    raise C2MError(f"{where}: column {name!r} must be numeric") from None
                match = np.isclose(vals[:, None], self.values[a][None, :], rtol=1e-9, atol=1e-9)
                allowed = ", ".join(f"{v:g}" for v in self.values[a])
            else:
                text = column.cast(pl.String).to_numpy()
                match = text[:, None] == np.array(self.level_names[a], dtype=object)[None, :]
                allowed = ", ".join(self.level_names[a])
            ok = match.any(axis=1)
            if not ok.all():
                row = int(np.flatnonzero(~ok)[0])
                raise C2MError(
                    f"{where}: column {name!r} row {row}: {column[row]!r} is not a level of "
                    f"{name!r}; expected one of {allowed}"
                )
            idx[:, a] = match.argmax(axis=1)
        return idx
