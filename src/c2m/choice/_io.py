"""Saving and loading fitted choice models as JSON (atomic writes, clear errors)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from c2m.errors import C2MError

if TYPE_CHECKING:
    from c2m.choice._mnl import MultinomialLogit

_LOADERS: dict[str, Callable[[dict[str, Any]], Any]] = {}


def register_model(name: str, from_dict: Callable[[dict[str, Any]], Any]) -> None:
    """Let :func:`load_model` rebuild models whose JSON has ``"model": name``."""
    _LOADERS[name] = from_dict


def save_model(model: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``model.to_dict()`` as JSON to ``path`` atomically (temp file + os.replace)."""
    target = Path(path)
    if not hasattr(model, "to_dict"):
        raise C2MError(f"cannot save {type(model).__name__}: it has no to_dict()")
    parent = target.parent
    if not parent.is_dir():
        raise C2MError(f"cannot save the model to {str(target)!r}: folder {str(parent)!r} does not exist")
    text = json.dumps(model.to_dict(), indent=1, allow_nan=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load_model(path: str | os.PathLike[str]) -> Any:
    """Read a model saved by :func:`save_model`; dispatches on its ``"model"`` key."""
    _register_builtin()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise C2MError(f"model file {str(p)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise C2MError(f"cannot read model file {str(p)!r}: {exc}") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise C2MError(f"model file {str(p)!r} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(d, dict) or "model" not in d:
        raise C2MError(f'model file {str(p)!r} has no "model" key; was it written by save_model?')
    loader = _LOADERS.get(str(d["model"]))
    if loader is None:
        raise C2MError(f"model file {str(p)!r} holds unknown model {d['model']!r}; known: {sorted(_LOADERS)}")
    try:
        return loader(d)
    except C2MError as exc:
        raise C2MError(f"model file {str(p)!r}: {exc}") from None


def _register_builtin() -> None:
    if "MultinomialLogit" not in _LOADERS:
        from c2m.choice._mnl import MultinomialLogit

        register_model("MultinomialLogit", MultinomialLogit.from_dict)


def mnl_from_dict(cls: type[MultinomialLogit], d: dict[str, Any]) -> MultinomialLogit:
    """Rebuild a fitted MultinomialLogit from its dictionary."""
    if d.get("model") != "MultinomialLogit":
        raise C2MError(f"expected a MultinomialLogit dictionary, got model {d.get('model')!r}")
    if d.get("version") != 1:
        raise C2MError(f"unsupported MultinomialLogit format version {d.get('version')!r}; expected 1")
    required = ["features", "coef", "vcov", "se", "loglik", "loglik_null", "n_obs", "n_persons", "converged"]
    missing = [k for k in required if k not in d]
    if missing:
        raise C2MError(f"MultinomialLogit dictionary lacks key(s) {missing}")
    settings = d.get("settings", {})
    m = cls(**{k: settings[k] for k in settings if k in _SETTINGS})
    m.feature_names_ = list(d["features"])
    K = len(m.feature_names_)
    m.coef_ = _array(d["coef"], (K,), "coef")
    se_type = d.get("se_type", "classic")
    vcov = _array(d["vcov"], (K, K), "vcov")
    m.se_type_ = se_type
    if se_type not in ("classic", "robust", "cluster"):
        raise C2MError(f"unknown se_type {se_type!r}; expected classic, robust or cluster")
    nan = np.full((K, K), np.nan)
    m.vcov_ = _array(d["vcov_classic"], (K, K), "vcov_classic") if d.get("vcov_classic") else nan
    m.vcov_robust_ = _array(d["vcov_robust"], (K, K), "vcov_robust") if d.get("vcov_robust") else nan
    m.vcov_cluster_ = _array(d["vcov_cluster"], (K, K), "vcov_cluster") if d.get("vcov_cluster") else None
    if se_type == "classic":
        m.vcov_ = vcov
    elif se_type == "robust":
        m.vcov_robust_ = vcov
    else:
        m.vcov_cluster_ = vcov
    m.base_features_ = list(d.get("base_features", m.feature_names_))
    m.alternatives_ = list(d.get("alternatives", []))
    m.asc_alternatives_ = list(d.get("asc_alternatives", []))
    m.loglik_ = float(d["loglik"])
    m.loglik_null_ = float(d["loglik_null"])
    m.n_obs_ = int(d["n_obs"])
    m.n_persons_ = int(d["n_persons"])
    m.converged_ = bool(d["converged"])
    m.n_iter_ = int(d.get("n_iter", 0))
    m._set_fit_stats()
    return m


_SETTINGS = {"fit_intercept", "alt_specific_constants", "robust", "cluster", "tol", "maxiter", "engine"}


def _array(values: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise C2MError(f"{name!r} must be numbers") from None
    if arr.shape != shape:
        raise C2MError(f"{name!r} has shape {arr.shape}; expected {shape} for the listed features")
    return arr
