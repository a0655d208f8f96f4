"""The flow of DESIGN.md as callable stages, and `c2m demo` chaining them all.

The stages import every package of c2m, so they load on first use: a command
that only reads a project file stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._contracts import ProductDefinition
from ._files import project_and_text, read_json, read_table

if TYPE_CHECKING:
    from ._demo import STAGES, DemoResult, run_demo

__all__ = ["STAGES", "DemoResult", "ProductDefinition", "project_and_text", "read_json", "read_table", "run_demo"]

_LAZY = {"STAGES", "DemoResult", "run_demo"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import _demo

        return getattr(_demo, name)
    raise AttributeError(f"module 'c2m.pipeline' has no attribute {name!r}")
