"""Demand forecast and build plan: reservation funnel, Bass diffusion, capacity-constrained plan."""

from ._bass import BassFit, BassModel, fit_bass
from ._forecast import forecast_demand
from ._plan import PlanCosts, build_plan, plan_cost, ramp_capacity
from ._preorders import simulate_preorders

__all__ = [
    "BassFit",
    "BassModel",
    "PlanCosts",
    "build_plan",
    "fit_bass",
    "forecast_demand",
    "plan_cost",
    "ramp_capacity",
    "simulate_preorders",
]
