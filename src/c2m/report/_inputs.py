"""What the report is made from: a dataclass of optional, typed stage results."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import polars as pl

from c2m.domain import Project
from c2m.errors import C2MError


@dataclass
class ReportInputs:
    """The stage results a report is built from; every field is optional.

    A section of the report appears only when its inputs are given. Frames and
    dicts follow the files of docs/schemas.md; the report does not know how
    they were computed.
    """

    project: Project | None = None
    design_diagnostics: dict[str, Any] | None = None
    respondents: pl.DataFrame | None = None
    population: pl.DataFrame | None = None
    model: dict[str, Any] | None = None
    shares: pl.DataFrame | None = None
    product_definition: dict[str, Any] | None = None
    demand_curve: pl.DataFrame | None = None
    sensitivity: pl.DataFrame | None = None
    forecast: pl.DataFrame | None = None
    preorders: pl.DataFrame | None = None
    build_plan: pl.DataFrame | None = None
    swap_plan: pl.DataFrame | None = None
    stores: pl.DataFrame | None = None
    rent_vs_buy: pl.DataFrame | None = None
    run_info: dict[str, Any] | None = None


#: Columns each frame must have (docs/schemas.md); more columns are allowed.
REQUIRED_COLUMNS: dict[str, list[str]] = {
    "respondents": ["city"],
    "population": ["city"],
    "shares": ["product", "kind", "share"],
    "demand_curve": ["price", "share"],
    "sensitivity": ["attribute", "level", "share"],
    "forecast": ["week", "variant", "city", "demand"],
    "preorders": [],
    "build_plan": ["week", "variant", "build"],
    "swap_plan": ["lat", "lon", "station"],
    "stores": ["lat", "lon"],
    "rent_vs_buy": ["month", "rent_cost", "buy_cost"],
}

_LEVEL_COUNT_COLUMNS = ["attribute", "level", "count", "share", "ideal_share"]
_VARIANT_KEYS = ["name", "profile", "price"]
_SHARE_KINDS = {"ours", "competitor", "none"}


def _fail(where: str, message: str) -> C2MError:
    return C2MError(f"report input {where}: {message}")


def _check_frame(name: str, frame: Any) -> None:
    if not isinstance(frame, pl.DataFrame):
        raise _fail(name, f"expected a polars DataFrame, got {type(frame).__name__}")
    missing = [c for c in REQUIRED_COLUMNS[name] if c not in frame.columns]
    if missing:
        raise _fail(name, f"missing column(s) {missing}; found {frame.columns} (see docs/schemas.md)")


def _check_model(model: Any) -> None:
    if not isinstance(model, dict):
        raise _fail("model", f"expected the model.json dict, got {type(model).__name__}")
    for key in ("features", "coef"):
        if key not in model:
            raise _fail("model", f"missing key {key!r} (see docs/schemas.md, model.json)")
    n = len(model["features"])
    for key in ("coef", "se"):
        values = model.get(key)
        if values is None:
            continue
        if len(values) != n:
            raise _fail(f"model.{key}", f"has {len(values)} values for {n} features")
        for i, value in enumerate(values):
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise _fail(f"model.{key}[{i}]", f"must be a number, got {value!r}")


def _check_product_definition(definition: Any) -> None:
    if not isinstance(definition, dict):
        raise _fail("product_definition", f"expected a dict, got {type(definition).__name__}")
    variants = definition.get("variants")
    if not isinstance(variants, list) or not variants:
        raise _fail("product_definition.variants", "must be a non-empty list")
    for i, variant in enumerate(variants):
        if not isinstance(variant, dict):
            raise _fail(f"product_definition.variants[{i}]", "must be an object")
        missing = [k for k in _VARIANT_KEYS if k not in variant]
        if missing:
            raise _fail(f"product_definition.variants[{i}]", f"missing key(s) {missing}")
        price = variant["price"]
        if not isinstance(price, int | float) or not math.isfinite(price) or price <= 0:
            raise _fail(
                f"product_definition.variants[{i}].price", f"must be a positive number, got {price!r}"
            )
        for key in ("share", "share_low", "share_high"):
            value = variant.get(key)
            if value is not None and not (isinstance(value, int | float) and 0 <= value <= 1):
                raise _fail(f"product_definition.variants[{i}].{key}", f"must be in [0, 1], got {value!r}")
    line = definition.get("line")
    if line is not None and not isinstance(line, dict):
        raise _fail("product_definition.line", "must be an object")


def _check_diagnostics(diagnostics: Any) -> None:
    if not isinstance(diagnostics, dict):
        raise _fail("design_diagnostics", f"expected a dict, got {type(diagnostics).__name__}")
    counts = diagnostics.get("level_counts")
    if counts is not None:
        if not isinstance(counts, pl.DataFrame):
            raise _fail("design_diagnostics.level_counts", "expected a polars DataFrame")
        missing = [c for c in _LEVEL_COUNT_COLUMNS if c not in counts.columns]
        if missing:
            raise _fail("design_diagnostics.level_counts", f"missing column(s) {missing}")


def validate_inputs(inputs: ReportInputs) -> None:
    """Raise :class:`C2MError` naming the first input that does not follow docs/schemas.md."""
    if inputs.project is not None and not isinstance(inputs.project, Project):
        raise _fail("project", f"expected a c2m.domain.Project, got {type(inputs.project).__name__}")
    for name in REQUIRED_COLUMNS:
        frame = getattr(inputs, name)
        if frame is not None:
            _check_frame(name, frame)
    if inputs.shares is not None:
        kinds = set(inputs.shares["kind"].cast(pl.String).drop_nulls().unique().to_list())
        unknown = sorted(kinds - _SHARE_KINDS)
        if unknown:
            raise _fail("shares.kind", f"unknown value(s) {unknown}; expected {sorted(_SHARE_KINDS)}")
    if inputs.model is not None:
        _check_model(inputs.model)
    if inputs.product_definition is not None:
        _check_product_definition(inputs.product_definition)
    if inputs.design_diagnostics is not None:
        try:
            diagnostics = as_dict(inputs.design_diagnostics)
        except TypeError:
            diagnostics = inputs.design_diagnostics
        _check_diagnostics(diagnostics)
    if inputs.run_info is not None and not isinstance(inputs.run_info, dict):
        raise _fail("run_info", f"expected a dict, got {type(inputs.run_info).__name__}")


def as_dict(value: Any) -> dict[str, Any] | None:
    """A diagnostics object (dataclass or dict) as a shallow dict."""
    if value is None or isinstance(value, dict):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return dict(vars(value))
