"""Reading the stage files a user hands to a command, with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from c2m.data import default_project, default_project_text
from c2m.domain import Project, load_project
from c2m.errors import C2MError


def project_and_text(path: str | Path | None) -> tuple[Project, str]:
    """The project at ``path`` (validated) and its TOML text; the embedded default when None."""
    if path is None:
        return default_project(), default_project_text()
    project = load_project(path)
    return project, Path(path).read_text(encoding="utf-8")


def read_table(path: str | Path, required: list[str] | None = None) -> pl.DataFrame:
    """A CSV or Parquet file (or a folder of Parquet files) as a DataFrame."""
    path = Path(path)
    if not path.exists():
        raise C2MError(f"{path}: file not found")
    try:
        if path.is_dir():
            frame = pl.read_parquet(path / "**" / "*.parquet", hive_partitioning=True)
        elif path.suffix == ".parquet":
            frame = pl.read_parquet(path)
        elif path.suffix == ".csv":
            frame = pl.read_csv(path, try_parse_dates=True)
        else:
            raise C2MError(f"{path}: expected a .csv or .parquet file")
    except pl.exceptions.PolarsError as exc:
        raise C2MError(f"{path}: cannot read: {str(exc).splitlines()[0]}") from None
    missing = [c for c in required or [] if c not in frame.columns]
    if missing:
        raise C2MError(f"{path}: missing column(s) {missing}; found {frame.columns}")
    return frame


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise C2MError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise C2MError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
