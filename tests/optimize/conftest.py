"""Fixtures: the small project shared with the other market-side tests."""

from tests.small_project import make_coef, project

__all__ = ["make_coef", "project"]
