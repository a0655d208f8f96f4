"""Demand forecast and build plan: Bass diffusion before launch, reconciled weekly sales after it, the plan."""

from ._allocate import allocate, service_level
from ._backtest import backtest_sales
from ._bass import BassFit, BassModel, fit_bass
from ._forecast import forecast_demand
from ._hierarchy import RECONCILIATION_METHODS, Hierarchy, build_hierarchy, reconcile
from ._plan import PlanCosts, build_plan, plan_cost, ramp_capacity
from ._preorders import simulate_preorders
from ._sales import forecast_sales, weekly_panel
from ._scenarios import Scenario, drop_level, standard_scenarios, what_if

__all__ = [
    "RECONCILIATION_METHODS",
    "BassFit",
    "BassModel",
    "Hierarchy",
    "PlanCosts",
    "Scenario",
    "allocate",
    "backtest_sales",
    "build_hierarchy",
    "build_plan",
    "drop_level",
    "fit_bass",
    "forecast_demand",
    "forecast_sales",
    "plan_cost",
    "ramp_capacity",
    "reconcile",
    "service_level",
    "simulate_preorders",
    "standard_scenarios",
    "weekly_panel",
    "what_if",
]
