"""Read a project file (TOML), validate it, and explain every problem with its path."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from c2m.errors import C2MError

from ._schema import Project


class ProjectError(C2MError):
    """A project file that cannot be used; ``problems`` lists ``path: message`` lines."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        shown = "; ".join(self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(f"{source}: {shown}{more}")


def load_project(path: str | Path) -> Project:
    """Read and validate a project file; raise :class:`ProjectError` naming each bad field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectError(str(path), ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(str(path), [f"cannot read: {exc}"]) from None
    return parse_project(text, source=str(path))


def parse_project(text: str, source: str = "<project>") -> Project:
    """Validate a project given as TOML text."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProjectError(source, [f"not valid TOML: {exc}"]) from None
    return project_from_dict(raw, source=source)


def project_from_dict(raw: Mapping[str, Any], source: str = "<project>") -> Project:
    """Validate a project given as a mapping (the parsed TOML)."""
    try:
        project = Project.model_validate(raw)
    except ValidationError as exc:
        raise ProjectError(source, [_describe(err) for err in exc.errors()]) from None
    problems = list(_cross_reference_problems(project))
    if problems:
        raise ProjectError(source, problems)
    return project


def format_path(loc: Sequence[int | str]) -> str:
    """``("attributes", 3, "levels", 2, "cost")`` -> ``attributes[3].levels[2].cost``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


_BOUND_WORDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


def _describe(err: Mapping[str, Any]) -> str:
    loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
    where = format_path(loc)
    kind = err["type"]
    ctx = err.get("ctx") or {}
    got = err.get("input")
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        key = next(k for k in _BOUND_WORDS if k in ctx)
        return f"{where}: must be {_BOUND_WORDS[key]} {_number(ctx[key])}, got {got!r}"
    if kind == "missing":
        return f"{where}: required field is missing"
    if kind == "extra_forbidden":
        return f"{where}: unknown field (check the spelling)"
    if kind == "literal_error":
        return f"{where}: must be one of {ctx.get('expected')}, got {got!r}"
    if kind == "too_short":
        return f"{where}: needs at least {ctx.get('min_length')} item(s), got {ctx.get('actual_length')}"
    if kind == "string_pattern_mismatch":
        return f"{where}: {got!r} may only use letters, digits and _ . # + -"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}, got {got!r}" if kind.endswith("_type") or "parsing" in kind else (
        f"{where}: {msg}"
    )


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _cross_reference_problems(project: Project) -> Iterator[str]:
    """References between sections: prohibitions, competitors, stores, packs, plans."""
    levels_of = {a.name: a.level_names for a in project.attributes}
    numeric = {a.name for a in project.attributes if a.kind == "numeric"}
    for i, prohibition in enumerate(project.prohibitions):
        for attr, chosen in prohibition.levels.items():
            where = f"prohibitions[{i}].levels.{attr}"
            if attr not in levels_of:
                yield f"{where}: unknown attribute; expected one of {sorted(levels_of)}"
                continue
            for level_name in [chosen] if isinstance(chosen, str) else chosen:
                if level_name not in levels_of[attr]:
                    yield f"{where}: unknown level {level_name!r}; expected one of {levels_of[attr]}"
    for i, competitor in enumerate(project.competitors):
        where = f"competitors[{i}].profile"
        for attr in levels_of:
            if attr not in competitor.profile:
                yield f"{where}.{attr}: required (competitors are described on every attribute)"
        for attr, value in competitor.profile.items():
            if attr not in levels_of:
                yield f"{where}.{attr}: unknown attribute; expected one of {sorted(levels_of)}"
            elif attr in numeric:
                if isinstance(value, str):
                    yield f"{where}.{attr}: must be a number, got {value!r}"
            elif value not in levels_of[attr]:
                yield f"{where}.{attr}: unknown level {value!r}; expected one of {levels_of[attr]}"
    pack_ids = {p.id: {plan.name for plan in p.rent_plans} for p in project.battery_packs}
    all_plans = set().union(*pack_ids.values()) if pack_ids else set()
    for i, attribute in enumerate(project.attributes):
        for j, level in enumerate(attribute.levels):
            where = f"attributes[{i}].levels[{j}]"
            if level.battery_pack is not None and level.battery_pack not in pack_ids:
                yield (f"{where}.battery_pack: unknown pack {level.battery_pack!r}; "
                       f"expected one of {sorted(pack_ids)}")
            if level.rent_plan is not None and level.rent_plan not in all_plans:
                yield (f"{where}.rent_plan: unknown plan {level.rent_plan!r}; "
                       f"expected one of {sorted(all_plans)}")
            if level.rent_plan is not None and level.ownership != "rent":
                yield f"{where}.ownership: a level with a rent_plan must have ownership = 'rent'"
    city_names = [c.name for c in project.cities]
    for i, city in enumerate(project.cities):
        if city_names.count(city.name) > 1:
            yield f"cities[{i}].name: duplicate city {city.name!r}"
    seen: set[str] = set()
    for i, store in enumerate(project.stores):
        if store.id in seen:
            yield f"stores[{i}].id: duplicate store id {store.id!r}"
        seen.add(store.id)
        if city_names and store.city not in city_names:
            yield f"stores[{i}].city: unknown city {store.city!r}; add it to [[cities]]"
