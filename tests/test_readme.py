"""The README's Python examples run as written (from the repository root)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_python_examples_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert len(blocks) >= 3
    # run where a user's clone would be, without writing into the repository
    shutil.copytree(ROOT / "tests" / "choice" / "data", tmp_path / "tests" / "choice" / "data")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "-4958.649" in printed
    assert "gap 0.0" in printed


def test_readme_opens_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    run = "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/c2m demo"
    test = 'python3 -m venv .venv && .venv/bin/pip install -e ".[dev]" && .venv/bin/pytest'
    assert readme.index(run) < readme.index(test) < 1200
    assert test in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
