"""Embedded default project and the deterministic synthetic market."""

from ._default import default_project, default_project_path, default_project_text

__all__ = ["default_project", "default_project_path", "default_project_text"]
