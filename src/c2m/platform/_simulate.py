"""The admin's share simulator: our variants against the competitors and None, from an estimate job's model."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from c2m.domain import Project, is_prohibited
from c2m.errors import C2MError

from ._survey import level_label

N_VARIANTS = 3


def _level_values(project: Project, attribute: str) -> list[str]:
    attr = next(a for a in project.attributes if a.name == attribute)
    if attr.kind == "numeric":
        return [f"{float(level.value or 0.0):g}" for level in attr.levels]
    return [level.name for level in attr.levels]


def level_choices(project: Project, attribute: str, lang: str) -> list[tuple[str, str]]:
    """(form value, label) of every level of ``attribute``."""
    return [(v, level_label(project, attribute, v, lang)) for v in _level_values(project, attribute)]


def default_line(project: Project, n: int = N_VARIANTS) -> list[dict[str, str]]:
    """``n`` allowed variants to start the simulator from: variant k prefers each attribute's k-th level."""
    names = project.attribute_names
    values = [_level_values(project, a) for a in names]
    line: list[dict[str, str]] = []
    for k in range(n):
        rotated = [vals[k % len(vals):] + vals[: k % len(vals)] for vals in values]
        for combo in itertools.islice(itertools.product(*rotated), 100_000):
            profile = dict(zip(names, combo, strict=True))
            if not is_prohibited(project, profile):
                line.append(profile)
                break
        else:
            line.append(dict(zip(names, (vals[0] for vals in values), strict=True)))
    return line


def simulate_shares(
    project: Project, result: Mapping[str, Any], line: Sequence[Mapping[str, str | float]], names: Sequence[str]
) -> list[dict[str, Any]]:
    """Shares (with 95% intervals) of ``line`` named ``names`` under the job's fitted MNL; `C2MError` if invalid."""
    from c2m.pipeline._stages import simulator

    model = result.get("model")
    if not isinstance(model, dict):
        raise C2MError("the estimate job has no model to simulate with")
    for k, profile in enumerate(line):
        if is_prohibited(project, dict(profile)):
            raise C2MError(f"products[{k}]: this combination of levels is prohibited in the project")
    frame = simulator(project, model).shares(list(line), names=list(names))
    return frame.to_dicts()
