"""Lazy access to the optional numba kernels of :mod:`._numba_kernels`.

numba is a dependency of c2m but treated as optional here as elsewhere:
:func:`available` is False when it cannot be imported, and the builders fall back
to their NumPy reference code. numba is imported on first use only, so importing
:mod:`c2m.survey` stays cheap.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

_MODULE: ModuleType | None = None
_TRIED = False


def available() -> bool:
    """True when numba can be imported (the kernels are compiled on first use, then cached on disk)."""
    global _MODULE, _TRIED
    if not _TRIED:
        _TRIED = True
        try:
            from . import _numba_kernels
        except ImportError:  # pragma: no cover - depends on the environment
            _MODULE = None
        else:
            _MODULE = _numba_kernels
    return _MODULE is not None


def kernel(name: str) -> Any:
    """The numba kernel ``name`` (a function of :mod:`._numba_kernels`); RuntimeError without numba."""
    if not available() or _MODULE is None:
        raise RuntimeError("numba is not installed")
    return getattr(_MODULE, name)


def use_numba(engine: str) -> bool:
    """Whether ``engine`` (``auto``, ``numba`` or ``numpy``) runs the numba kernels."""
    if engine not in ("auto", "numba", "numpy"):
        raise ValueError(f"engine must be 'auto', 'numba' or 'numpy', got {engine!r}")
    if engine == "numba" and not available():
        raise RuntimeError("numba is not installed")
    return engine == "numba" or (engine == "auto" and available())
