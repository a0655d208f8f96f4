"""The flow of DESIGN.md as callable stages, and `c2m demo` chaining them all.

The stages import every package of c2m, so they load on first use: a command
that only reads a project file stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._contracts import ProductDefinition
from ._files import project_and_text, read_json, read_table

if TYPE_CHECKING:
    from ._demo import STAGES, DemoResult, run_demo
    from ._population import population_betas
    from ._stages import choice_data, coefficients_for, estimate, simulator, simulator_for_model

__all__ = [
    "STAGES",
    "DemoResult",
    "ProductDefinition",
    "choice_data",
    "coefficients_for",
    "estimate",
    "population_betas",
    "project_and_text",
    "read_json",
    "read_table",
    "run_demo",
    "simulator",
    "simulator_for_model",
]

_LAZY = {
    "STAGES": "_demo",
    "DemoResult": "_demo",
    "run_demo": "_demo",
    "choice_data": "_stages",
    "coefficients_for": "_stages",
    "estimate": "_stages",
    "simulator": "_stages",
    "simulator_for_model": "_stages",
    "population_betas": "_population",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'c2m.pipeline' has no attribute {name!r}")
