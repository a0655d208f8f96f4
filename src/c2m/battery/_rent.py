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
    frames = [
        plan_cost_table(pack.id, plan.name, plan.monthly_fee, plan.km_cap, plan.overage_per_km, monthly_km,
                        float(pack.cost), months)
        for pack in project.battery_packs
        for plan in pack.rent_plans
    ]
    if not frames:
        raise C2MError(f"project {project.name!r}: no battery pack has a rent plan")
    return pl.concat(frames)


def plan_cost_table(
    pack: str,
    plan: str,
    monthly_fee: float,
    km_cap: float | None,
    overage_per_km: float,
    monthly_km: float,
    buy_price: float,
    months: int,
) -> pl.DataFrame:
    """One rent plan against buying: the monthly rent (fee plus overage above the cap) and both
    cumulative costs month by month, with the first month renting has cost at least the price."""
    bad_cap = km_cap is not None and km_cap <= 0
    if min(monthly_fee, overage_per_km, monthly_km, buy_price) < 0 or months < 1 or bad_cap:
        raise C2MError(
            f"rent plan {plan!r}: fee, overage, km and price must be >= 0, the cap > 0 and months >= 1"
        )
    month = np.arange(1, months + 1)
    over = max(0.0, monthly_km - km_cap) if km_cap is not None else 0.0
    monthly = monthly_fee + over * overage_per_km
    rent = monthly * month
    reached = np.nonzero(rent >= buy_price)[0]
    break_even = int(month[reached[0]]) if reached.size else None
    return pl.DataFrame(
        {
            "pack": pack,
            "plan": plan,
            "month": month.astype(np.int64),
            "monthly_rent": np.full(months, monthly),
            "rent_cost": rent.astype(float),
            "buy_cost": np.full(months, float(buy_price)),
            "break_even_month": pl.Series([break_even] * months, dtype=pl.Int64),
        }
    )
