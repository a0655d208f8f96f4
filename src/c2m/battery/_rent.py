"""Battery rent versus buy, per pack and rent plan."""

from __future__ import annotations

import numpy as np
import polars as pl

from c2m.domain import Project
from c2m.errors import C2MError


def rent_vs_buy(project: Project, monthly_km: float = 1500, months: int = 120) -> pl.DataFrame:
    """Cumulative cost of renting versus buying each pack, month by month.

    Buying costs the pack's ``cost`` at month 0. Renting costs, each month, the plan's fee plus
    ``overage_per_km`` for every km above ``km_cap``. ``break_even_month`` is the first month in
    which renting has cost at least as much as buying (null if not within ``months``).
    Returns ``pack``, ``plan``, ``month`` (1..months), ``monthly_rent``, ``rent_cost`` (cumulative),
    ``buy_cost`` (cumulative), ``break_even_month``.
    """
    if monthly_km < 0 or months < 1:
        raise C2MError(f"rent_vs_buy: need monthly_km >= 0 and months >= 1, got {monthly_km}, {months}")
    frames = []
    month = np.arange(1, months + 1)
    for pack in project.battery_packs:
        for plan in pack.rent_plans:
            over = max(0.0, monthly_km - plan.km_cap) if plan.km_cap is not None else 0.0
            monthly = plan.monthly_fee + over * plan.overage_per_km
            rent = monthly * month
            reached = np.nonzero(rent >= pack.cost)[0]
            be = int(month[reached[0]]) if reached.size else None
            frames.append(
                pl.DataFrame(
                    {
                        "pack": pack.id,
                        "plan": plan.name,
                        "month": month.astype(np.int64),
                        "monthly_rent": np.full(months, monthly),
                        "rent_cost": rent.astype(float),
                        "buy_cost": np.full(months, float(pack.cost)),
                        "break_even_month": pl.Series([be] * months, dtype=pl.Int64),
                    }
                )
            )
    if not frames:
        raise C2MError(f"project {project.name!r}: no battery pack has a rent plan")
    return pl.concat(frames)
