"""Market simulation: shares against competitors and None, volumes, economics, elasticities."""

from ._economics import UnitEconomics, unit_economics
from ._simulator import ExtrapolationWarning, MarketSimulator

__all__ = ["ExtrapolationWarning", "MarketSimulator", "UnitEconomics", "unit_economics"]
