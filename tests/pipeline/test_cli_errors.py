"""Bad input exits 2 with one line naming the problem, never a traceback."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_c2m

from c2m.data import default_project_text


def _one_line_error(result_stderr: str) -> str:
    assert "Traceback" not in result_stderr
    lines = [line for line in result_stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result_stderr
    return lines[0]


def test_bad_project_file(tmp_path: Path) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text(default_project_text().replace("cost = 2500", "cost = -5", 1), encoding="utf-8")
    result = run_c2m("validate", "--project", str(bad))
    assert result.returncode == 2
    line = _one_line_error(result.stderr)
    assert "attributes[2].levels[1].cost: must be >= 0, got -5" in line


def test_missing_input_file(tmp_path: Path) -> None:
    result = run_c2m("estimate", "--responses", str(tmp_path / "nope.parquet"))
    assert result.returncode == 2
    assert "nope.parquet: file not found" in _one_line_error(result.stderr)


def test_init_then_validate_and_refuse_overwrite(tmp_path: Path) -> None:
    assert run_c2m("init", str(tmp_path)).returncode == 0
    written = tmp_path / "c2m-project.toml"
    assert written.read_text(encoding="utf-8") == default_project_text()
    ok = run_c2m("validate", "--project", str(written))
    assert ok.returncode == 0 and "OK" in ok.stdout
    again = run_c2m("init", str(tmp_path))
    assert again.returncode == 2 and "already exists" in _one_line_error(again.stderr)


def test_unknown_option_is_a_usage_error() -> None:
    result = run_c2m("demo", "--frobnicate")
    assert result.returncode == 2
    assert "No such option" in result.stderr


def test_a_file_that_is_not_a_model(tmp_path: Path) -> None:
    not_model = tmp_path / "design.json"
    not_model.write_text('{"method": "random"}', encoding="utf-8")
    result = run_c2m("optimize", "--model", str(not_model), "--out", str(tmp_path / "line.json"))
    assert result.returncode == 2
    assert 'has no "model" key' in _one_line_error(result.stderr)
    assert not (tmp_path / "line.json").exists()
