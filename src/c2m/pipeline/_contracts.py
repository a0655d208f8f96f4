"""Pydantic schemas of the JSON files the stages exchange (see docs/schemas.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class VariantDefinition(_Open):
    name: str
    profile: dict[str, str | float]
    price: float = Field(gt=0)
    unit_cost: float = Field(ge=0)
    share: float = Field(ge=0, le=1)
    share_low: float = Field(ge=0, le=1)
    share_high: float = Field(ge=0, le=1)
    annual_volume: float = Field(ge=0)
    annual_volume_low: float = Field(ge=0)
    annual_volume_high: float = Field(ge=0)
    unit_margin: float
    rent_plan: str | None = None


class LineTotals(_Open):
    share: float = Field(ge=0, le=1)
    share_low: float = Field(ge=0, le=1)
    share_high: float = Field(ge=0, le=1)
    annual_volume: float = Field(ge=0)
    revenue: float
    profit: float
    fixed_cost: float = Field(ge=0)


class CompetitorShare(_Open):
    name: str
    share: float = Field(ge=0, le=1)


class ProductDefinition(_Open):
    """``product_definition.json``: the recommended line."""

    project: str
    objective: str
    method: str
    variants: list[VariantDefinition] = Field(min_length=1)
    line: LineTotals
    bound: float | None
    gap: float | None = Field(default=None, ge=0)
    competitors: list[CompetitorShare]
    none_share: float | None = Field(default=None, ge=0, le=1)
