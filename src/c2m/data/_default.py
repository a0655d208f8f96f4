"""The embedded default project: a small battery-swap city EV."""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path

from c2m.domain import Project, parse_project

DEFAULT_PROJECT_FILE = "default_project.toml"


def default_project_text() -> str:
    """The default project file's TOML text (what `c2m init` writes)."""
    return (files("c2m.data") / DEFAULT_PROJECT_FILE).read_text(encoding="utf-8")


def default_project() -> Project:
    """The default project, validated."""
    return parse_project(default_project_text(), source=f"<embedded {DEFAULT_PROJECT_FILE}>")


def default_project_path() -> Path:
    """A filesystem path to the default project file (inside the installed package)."""
    with as_file(files("c2m.data") / DEFAULT_PROJECT_FILE) as path:
        return Path(path)
