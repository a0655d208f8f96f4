"""Per-unit economics of a profile: price, unit cost, margin, battery rent per car."""

from __future__ import annotations

from dataclasses import dataclass

from c2m.domain import Profile, Project, rent_plan_of, variable_cost


@dataclass(frozen=True)
class UnitEconomics:
    """Money per car sold: ``margin = price - unit_cost (+ rent_per_car if include_rent)``."""

    price: float
    unit_cost: float
    rent_plan: str | None
    rent_per_car: float
    margin: float


def unit_economics(project: Project, profile: Profile, include_rent: bool = False) -> UnitEconomics:
    """Price, unit cost, rent per car (monthly fee x months of rent) and unit margin of a profile.

    The rent goes to the battery firm: it is counted in the margin only when
    ``include_rent`` is true.
    """
    price_attr = project.attribute_by_role("price")
    price = float(profile[price_attr.name]) if price_attr is not None else 0.0
    cost = variable_cost(project, profile)
    plan = rent_plan_of(project, profile)
    rent = plan[1] * project.product.months_of_rent if plan is not None else 0.0
    margin = price - cost + (rent if include_rent else 0.0)
    return UnitEconomics(price, cost, plan[0] if plan else None, rent, margin)
