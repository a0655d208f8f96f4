"""The survey design value and its files (design.parquet, design.csv, design.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from c2m._io import write_csv, write_json, write_parquet
from c2m.domain import Project, is_prohibited
from c2m.errors import C2MError

SCHEMA_VERSION = 1
KEY_COLUMNS = ("version", "task", "alt")
_META_INT = ("n_versions", "n_tasks", "n_alts")


@dataclass(frozen=True, eq=False)
class Design:
    """A choice-based-conjoint design: one row per version x task x alternative.

    ``frame`` has ``version``, ``task``, ``alt`` (Int64, from 1), one column per
    attribute (String levels, Float64 numeric values) and ``holdout`` (Boolean),
    sorted by version, task, alt. The None alternative is not a row: ``none_option``
    says whether respondents also see it.
    """

    frame: pl.DataFrame
    method: str
    seed: int
    n_versions: int
    n_tasks: int
    n_alts: int
    none_option: bool
    project_name: str

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Design):
            return NotImplemented
        return self.metadata() == other.metadata() and self.frame.equals(other.frame)

    __hash__ = object.__hash__

    @property
    def attribute_names(self) -> list[str]:
        return [c for c in self.frame.columns if c not in (*KEY_COLUMNS, "holdout")]

    @property
    def holdout_tasks(self) -> list[int]:
        """Task numbers (1-based) of the holdout tasks, the same in every version."""
        tasks = self.frame.filter(pl.col("holdout"))["task"].unique().sort()
        return [int(t) for t in tasks]

    @property
    def n_holdout(self) -> int:
        return len(self.holdout_tasks)

    def metadata(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "project_name": self.project_name,
            "method": self.method,
            "seed": self.seed,
            "n_versions": self.n_versions,
            "n_tasks": self.n_tasks,
            "n_alts": self.n_alts,
            "n_holdout": self.n_holdout,
            "holdout_tasks": self.holdout_tasks,
            "none_option": self.none_option,
            "attributes": [
                {"name": c, "numeric": self.frame.schema[c] == pl.Float64} for c in self.attribute_names
            ],
        }

    def write(self, directory: str | Path) -> Path:
        """Write ``design.parquet``, ``design.csv`` and ``design.json`` (atomically) into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_parquet(directory / "design.parquet", self.frame)
        write_csv(directory / "design.csv", self.frame)
        write_json(directory / "design.json", self.metadata())
        return directory


def check_frame(frame: pl.DataFrame, n_versions: int, n_tasks: int, n_alts: int, where: str) -> None:
    """Raise C2MError unless ``frame`` holds exactly one row per version x task x alt."""
    for name in (*KEY_COLUMNS, "holdout"):
        if name not in frame.columns:
            raise C2MError(f"{where}: missing column {name!r}")
    expected = n_versions * n_tasks * n_alts
    if frame.height != expected:
        raise C2MError(
            f"{where}: {frame.height} rows, expected {expected} "
            f"({n_versions} versions x {n_tasks} tasks x {n_alts} alternatives)"
        )
    for name, top in zip(KEY_COLUMNS, (n_versions, n_tasks, n_alts), strict=True):
        col = frame[name]
        if col.null_count() or col.min() < 1 or col.max() > top:  # type: ignore[operator]
            raise C2MError(f"{where}: column {name!r} must hold whole numbers 1..{top}")
    if frame.select(KEY_COLUMNS).is_duplicated().any():
        row = int(frame.select(KEY_COLUMNS).is_duplicated().arg_true()[0])
        raise C2MError(f"{where}: row {row} repeats a (version, task, alt) already present")
    if frame["holdout"].null_count():
        raise C2MError(f"{where}: column 'holdout' has empty values")
    per_task = frame.group_by("version", "task").agg(pl.col("holdout").n_unique().alias("n"))
    if (per_task["n"] > 1).any():
        raise C2MError(f"{where}: 'holdout' differs between alternatives of the same task")


def read_design(directory: str | Path, project: Project | None = None) -> Design:
    """Read a design written by :meth:`Design.write`.

    Reads ``design.json`` and ``design.parquet`` (``design.csv`` when there is no
    Parquet file). When ``project`` is given, levels and prohibitions are checked
    against it. Raises C2MError naming the file and what is wrong.
    """
    directory = Path(directory)
    meta_path = directory / "design.json"
    if not meta_path.is_file():
        raise C2MError(f"{meta_path}: not found (a design directory holds design.json and design.parquet)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise C2MError(f"{meta_path}: not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise C2MError(f"{meta_path}: expected a JSON object")
    for key in _META_INT:
        value = meta.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise C2MError(f"{meta_path}: {key!r} must be a positive whole number, got {value!r}")
    for key, kind in (("method", str), ("project_name", str), ("none_option", bool), ("seed", int)):
        if not isinstance(meta.get(key), kind):
            raise C2MError(f"{meta_path}: {key!r} must be a {kind.__name__}, got {meta.get(key)!r}")
    attributes = meta.get("attributes")
    if not isinstance(attributes, list) or not all(
        isinstance(a, dict) and isinstance(a.get("name"), str) for a in attributes
    ):
        raise C2MError(f"{meta_path}: 'attributes' must be a list of {{'name', 'numeric'}} objects")

    data_path = directory / "design.parquet"
    try:
        if data_path.is_file():
            frame = pl.read_parquet(data_path)
        else:
            data_path = directory / "design.csv"
            if not data_path.is_file():
                raise C2MError(f"{directory}: neither design.parquet nor design.csv found")
            frame = pl.read_csv(data_path, infer_schema_length=0)
    except C2MError:
        raise
    except Exception as err:
        raise C2MError(f"{data_path}: cannot be read ({type(err).__name__}: {err})") from None
    casts: dict[str, type[pl.DataType]] = {name: pl.Int64 for name in KEY_COLUMNS}
    for attr in attributes:
        casts[attr["name"]] = pl.Float64 if attr.get("numeric") else pl.String
    missing = [name for name in [*casts, "holdout"] if name not in frame.columns]
    if missing:
        raise C2MError(f"{data_path}: missing column(s) {missing}")
    try:
        holdout = frame["holdout"]
        if holdout.dtype == pl.String:
            lowered = holdout.str.to_lowercase()
            if not lowered.is_in(["true", "false"]).all():
                raise C2MError(f"{data_path}: column 'holdout' must be true or false")
            holdout = lowered == "true"
        frame = frame.with_columns(
            *[pl.col(name).cast(dtype) for name, dtype in casts.items()],
            holdout.cast(pl.Boolean).alias("holdout"),
        ).select([*KEY_COLUMNS, *[a["name"] for a in attributes], "holdout"])
    except pl.exceptions.PolarsError as err:
        raise C2MError(f"{data_path}: a column has the wrong type ({err})") from None
    check_frame(frame, meta["n_versions"], meta["n_tasks"], meta["n_alts"], str(data_path))
    design = Design(
        frame=frame.sort(KEY_COLUMNS),
        method=meta["method"],
        seed=meta["seed"],
        n_versions=meta["n_versions"],
        n_tasks=meta["n_tasks"],
        n_alts=meta["n_alts"],
        none_option=meta["none_option"],
        project_name=meta["project_name"],
    )
    if project is not None:
        check_design(project, design, str(data_path))
    return design


def check_design(project: Project, design: Design, where: str = "design") -> None:
    """Raise C2MError when the design's levels are not the project's or a concept is prohibited."""
    from ._space import ProfileSpace

    space = ProfileSpace.from_project(project, design.none_option)
    extra = sorted(set(design.attribute_names) - set(space.names))
    if extra:
        raise C2MError(f"{where}: attribute column(s) {extra} are not in project {project.name!r}")
    idx = space.indices(design.frame, where)
    bad = space.prohibited(idx)
    if bad.any():
        row = int(bad.argmax())
        raise C2MError(f"{where}: row {row} shows a prohibited profile")
    for profile in design.frame.select(space.names).unique().iter_rows(named=True):
        if is_prohibited(project, profile):
            raise C2MError(f"{where}: shows the prohibited profile {profile}")
