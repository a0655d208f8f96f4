"""Read the report's inputs back from a folder of stage files (docs/schemas.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from c2m.domain import Project, load_project
from c2m.errors import C2MError

from ._inputs import ReportInputs

#: ReportInputs field -> candidate files, first found wins (paths relative to the folder).
TABLE_FILES: dict[str, tuple[str, ...]] = {
    "respondents": ("respondents.parquet", "respondents.csv"),
    "population": ("market/persons.parquet", "persons.parquet"),
    "shares": ("shares.csv", "shares.parquet"),
    "demand_curve": ("demand_curve.csv", "demand_curve.parquet"),
    "sensitivity": ("sensitivity.csv", "sensitivity.parquet"),
    "forecast": ("forecast.csv", "forecast.parquet"),
    "preorders": ("preorders.csv", "preorders.parquet"),
    "build_plan": ("build_plan.csv", "build_plan.parquet"),
    "swap_plan": ("swap_plan.csv", "swap_plan.parquet"),
    "stores": ("market/stores.parquet", "stores.parquet", "stores.csv"),
    "rent_vs_buy": ("rent_vs_buy.csv", "rent_vs_buy.parquet"),
}
JSON_FILES: dict[str, tuple[str, ...]] = {
    "model": ("model.json",),
    "product_definition": ("product_definition.json",),
    "run_info": ("run.json", "run_info.json"),
}


def _read_table(path: Path) -> pl.DataFrame:
    try:
        if path.suffix == ".parquet":
            return pl.read_parquet(path)
        return pl.read_csv(path, try_parse_dates=True)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise C2MError(f"{path}: cannot read: {str(exc).splitlines()[0] if str(exc) else exc}") from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise C2MError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None


def _first(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def _number(value: float, price: bool) -> str:
    text = f"{value:,.0f}" if float(value).is_integer() else f"{value:,g}"
    return f"\u00a5{text}" if price else text


def level_counts(
    design: pl.DataFrame, attributes: Sequence[str] | None = None, project: Project | None = None
) -> pl.DataFrame:
    """How often each level appears in a design, its share and the balanced share (1 / levels).

    Levels follow the project's order when a project is given (numeric values
    are written like ``¥45,000`` for the price), else sorted.
    """
    if attributes is None:
        if project is not None:
            attributes = [a for a in project.attribute_names if a in design.columns]
        else:
            attributes = [c for c in design.columns if c not in {"version", "task", "alt", "holdout"}]
    frames = []
    for attribute in attributes:
        column = design[attribute].drop_nulls()
        spec = None
        if project is not None and attribute in project.attribute_names:
            spec = project.attribute(attribute)
        if column.dtype.is_numeric():
            price = spec is not None and spec.role == "price"
            values = sorted(set(column.cast(pl.Float64).to_list()))
            if spec is not None and spec.kind == "numeric":
                values = sorted(set(values) | {float(lv.value) for lv in spec.levels if lv.value is not None})
            order = [_number(v, price) for v in values]
            text = pl.Series([_number(v, price) for v in column.cast(pl.Float64).to_list()], dtype=pl.String)
        else:
            text = column.cast(pl.String)
            order = spec.level_names if spec is not None else sorted(set(text.to_list()))
        found = dict(
            zip(*text.value_counts(sort=False, name="count").to_dict(as_series=False).values(), strict=True)
        )
        total = max(sum(found.values()), 1)
        levels = order + sorted(set(found) - set(order))
        frames.append(
            pl.DataFrame(
                {
                    "attribute": [attribute] * len(levels),
                    "level": levels,
                    "count": [int(found.get(lv, 0)) for lv in levels],
                    "share": [found.get(lv, 0) / total for lv in levels],
                    "ideal_share": [1.0 / len(order) if lv in order else 0.0 for lv in levels],
                },
                schema={
                    "attribute": pl.String,
                    "level": pl.String,
                    "count": pl.Int64,
                    "share": pl.Float64,
                    "ideal_share": pl.Float64,
                },
            )
        )
    if not frames:
        return pl.DataFrame(
            schema={
                "attribute": pl.String,
                "level": pl.String,
                "count": pl.Int64,
                "share": pl.Float64,
                "ideal_share": pl.Float64,
            }
        )
    return pl.concat(frames)


def _design_diagnostics(
    folder: Path, project: Project | None, run_info: dict[str, Any] | None
) -> dict[str, Any] | None:
    design_dir = folder / "design"
    saved = _first(design_dir, ("diagnostics.json",))
    meta_path = _first(design_dir, ("design.json",))
    table_path = _first(design_dir, ("design.parquet", "design.csv"))
    if saved is None and meta_path is None and table_path is None:
        return None
    out: dict[str, Any] = {}
    if meta_path is not None:
        meta = _read_json(meta_path)
        if isinstance(meta, dict):
            for key in ("method", "n_versions", "n_tasks", "n_alts", "none_option", "d_error"):
                if key in meta:
                    out[key] = meta[key]
    if saved is not None:
        stored = _read_json(saved)
        if isinstance(stored, dict):
            out.update({k: v for k, v in stored.items() if k != "level_counts"})
            if isinstance(stored.get("level_counts"), list):
                out["level_counts"] = pl.DataFrame(stored["level_counts"])
    if "d_error" not in out and run_info and isinstance(run_info.get("design_d_error"), int | float):
        out["d_error"] = run_info["design_d_error"]
    if table_path is not None:
        design = _read_table(table_path)
        if "holdout" in design.columns:
            design = design.filter(~pl.col("holdout").cast(pl.Boolean).fill_null(False))
        out.setdefault("n_versions", design["version"].n_unique() if "version" in design.columns else None)
        out.setdefault("n_tasks", design["task"].n_unique() if "task" in design.columns else None)
        out.setdefault("n_alts", design["alt"].n_unique() if "alt" in design.columns else None)
        if "level_counts" not in out:
            out["level_counts"] = level_counts(design, project=project)
    return {k: v for k, v in out.items() if v is not None}


def read_inputs(out_dir: str | Path, project: Project | None = None) -> ReportInputs:
    """Read whichever stage files exist in ``out_dir``; missing files leave their section out.

    The project is ``project`` when given, else ``out_dir/project.toml`` when it exists.
    """
    folder = Path(out_dir)
    if not folder.is_dir():
        raise C2MError(f"{folder}: not a folder of stage files")
    if project is None and (folder / "project.toml").is_file():
        project = load_project(folder / "project.toml")
    values: dict[str, Any] = {"project": project}
    for field, names in JSON_FILES.items():
        path = _first(folder, names)
        values[field] = None if path is None else _read_json(path)
    run_info = values.get("run_info")
    if isinstance(run_info, dict):
        run_info = {k: v for k, v in run_info.items()}
        values["run_info"] = run_info
    for field, names in TABLE_FILES.items():
        path = _first(folder, names)
        values[field] = None if path is None else _read_table(path)
    values["design_diagnostics"] = _design_diagnostics(folder, project, values["run_info"])
    return ReportInputs(**values)
