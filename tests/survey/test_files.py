"""Design files: write/read round trip and clear errors on bad files."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from c2m.domain import Project
from c2m.errors import C2MError
from c2m.survey import Design, read_design


def test_write_read_round_trip(tmp_path: Path, project: Project, designs: dict[str, Design]) -> None:
    design = designs["balanced_overlap"]
    design.write(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["design.csv", "design.json", "design.parquet"]
    back = read_design(tmp_path, project)
    assert back == design and back.frame.equals(design.frame)
    assert back.metadata() == design.metadata()
    meta = json.loads((tmp_path / "design.json").read_text())
    assert meta["none_option"] is True and meta["holdout_tasks"] == [5, 12]
    (tmp_path / "design.parquet").unlink()
    from_csv = read_design(tmp_path)
    assert from_csv.frame.equals(design.frame)
    assert from_csv.frame.schema == design.frame.schema


def test_bad_files_raise_user_errors(tmp_path: Path, project: Project, designs: dict[str, Design]) -> None:
    design = designs["random"]
    with pytest.raises(C2MError, match=r"design\.json: not found"):
        read_design(tmp_path)
    design.write(tmp_path)
    meta_path = tmp_path / "design.json"
    meta = json.loads(meta_path.read_text())

    meta_path.write_text("{not json")
    with pytest.raises(C2MError, match="not valid JSON"):
        read_design(tmp_path)
    meta_path.write_text(json.dumps({**meta, "n_tasks": "twelve"}))
    with pytest.raises(C2MError, match="'n_tasks'"):
        read_design(tmp_path)
    meta_path.write_text(json.dumps({**meta, "n_versions": 21}))
    with pytest.raises(C2MError, match="rows, expected"):
        read_design(tmp_path)
    meta_path.write_text(json.dumps(meta))

    (tmp_path / "design.parquet").write_bytes(b"garbage")
    with pytest.raises(C2MError, match=r"design\.parquet: cannot be read"):
        read_design(tmp_path)
    design.frame.drop("colour").write_parquet(tmp_path / "design.parquet")
    with pytest.raises(C2MError, match="missing column"):
        read_design(tmp_path)
    design.frame.with_columns(colour=pl.lit("purple")).write_parquet(tmp_path / "design.parquet")
    with pytest.raises(C2MError, match="'purple' is not a level of 'colour'"):
        read_design(tmp_path, project)
    retro_big = design.frame.with_columns(style=pl.lit("retro"), battery=pl.lit("ncm70"))
    retro_big.write_parquet(tmp_path / "design.parquet")
    with pytest.raises(C2MError, match="prohibited"):
        read_design(tmp_path, project)
    design.frame.with_columns(alt=pl.lit(1, dtype=pl.Int64)).write_parquet(tmp_path / "design.parquet")
    with pytest.raises(C2MError, match="repeats"):
        read_design(tmp_path)
