"""Each stage runs alone from the CLI on the files of the stage before it."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from tests.conftest import run_c2m

from c2m.domain import is_prohibited, load_project


def _ok(*args: str, cwd: Path) -> str:
    result = run_c2m(*args, cwd=cwd)
    assert result.returncode == 0, f"c2m {' '.join(args)}:\n{result.stderr[-2000:]}"
    return result.stdout


def test_stage_by_stage_on_files(tmp_path: Path) -> None:
    _ok("init", ".", cwd=tmp_path)
    project_file = tmp_path / "c2m-project.toml"
    # a user's edit: the sunroof only comes with the top smart pack
    text = project_file.read_text(encoding="utf-8")
    text += '\n[[prohibitions]]\nlevels = { sunroof = "yes", smart_pack = ["basic", "plus"] }\n'
    project_file.write_text(text, encoding="utf-8")
    project = ["--project", "c2m-project.toml"]

    _ok("generate", *project, "--persons", "4000", "--seed", "5", "--out", "market", cwd=tmp_path)
    assert pl.read_parquet(tmp_path / "market" / "persons.parquet").height == 4000
    _ok("design", *project, "--versions", "8", "--out", "design", cwd=tmp_path)
    _ok("simulate-responses", "--market", "market", "--design", "design", "--respondents", "300",
        "--out", "survey", cwd=tmp_path)
    respondents = pl.read_parquet(tmp_path / "survey" / "respondents.parquet")
    assert respondents["weight"].mean() == pytest.approx(1.0) and respondents["weight"].std() > 0
    _ok("estimate", *project, "--responses", "survey/responses.parquet", "--weights", "survey/respondents.parquet",
        "--out", "model.json", cwd=tmp_path)
    printed = json.loads(_ok("estimate", *project, "--responses", "survey/responses.parquet", "--weights",
                             "survey/respondents.parquet", "--json", cwd=tmp_path))
    assert printed == json.loads((tmp_path / "model.json").read_text(encoding="utf-8"))

    _ok("optimize", *project, "--model", "model.json", "--variants", "2", "--out", "line.json", cwd=tmp_path)
    line = json.loads((tmp_path / "line.json").read_text(encoding="utf-8"))
    proj = load_project(project_file)
    assert not any(v["profile"]["sunroof"] == "yes" and v["profile"]["smart_pack"] != "max" for v in line["variants"])
    assert not any(is_prohibited(proj, v["profile"]) for v in line["variants"])

    _ok("simulate", *project, "--model", "model.json", "--line", "line.json", "--out", ".", cwd=tmp_path)
    shares = pl.read_csv(tmp_path / "shares.csv")
    assert abs(shares["share"].sum() - 1.0) < 1e-9
    _ok("forecast", "--volumes", "volumes.csv", "--weeks", "26", "--out", "forecast.csv", cwd=tmp_path)
    assert pl.read_csv(tmp_path / "forecast.csv")["week"].max() == 26
    _ok("plan", "--forecast", "forecast.csv", "--capacity", "800", "--out", "build_plan.csv", cwd=tmp_path)
    plan = pl.read_csv(tmp_path / "build_plan.csv")
    assert plan.group_by("week").agg(pl.col("build").sum())["build"].max() <= 800
    _ok("swap-plan", *project, "--forecast", "forecast.csv", "--persons", "market/persons.parquet",
        "--out", "swap_plan.csv", cwd=tmp_path)
    _ok("report", ".", "--project", "c2m-project.toml", cwd=tmp_path)
    assert (tmp_path / "report.html").read_text(encoding="utf-8").count("<svg") >= 5
