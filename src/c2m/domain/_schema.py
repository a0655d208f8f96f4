"""The project file schema: pydantic models for a C2M project."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
Name = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.#+\-]+$")]
LevelValue = str | float


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Level(_Strict):
    """One level of an attribute, with its variable cost (yuan per unit)."""

    name: Name
    label: str | None = None
    value: float | None = None
    cost: NonNegative = 0.0
    fixed_cost: NonNegative = 0.0
    battery_pack: str | None = None
    ownership: Literal["buy", "rent"] | None = None
    rent_plan: str | None = None


class Attribute(_Strict):
    """A product attribute and its levels.

    ``categorical`` and ``ordered`` attributes are dummy-coded against their
    first level; ``numeric`` attributes (price, range) enter the utility
    linearly as ``value / scale`` and may take any value between their
    smallest and largest level.
    """

    name: Name
    label: str | None = None
    kind: Literal["categorical", "ordered", "numeric"] = "categorical"
    scale: Positive = 1.0
    role: Literal["price", "battery", "ownership", "other"] = "other"
    levels: list[Level] = Field(min_length=2)

    @model_validator(mode="after")
    def _check_levels(self) -> Attribute:
        names = [level.name for level in self.levels]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"duplicate level names {duplicated}")
        if self.kind == "numeric":
            missing = [i for i, level in enumerate(self.levels) if level.value is None]
            if missing:
                raise ValueError(f"numeric attribute needs a value on every level; levels {missing}")
            values = [float(level.value or 0.0) for level in self.levels]
            if values != sorted(values) or len(set(values)) != len(values):
                raise ValueError("numeric levels must have strictly increasing values")
        return self

    @property
    def level_names(self) -> list[str]:
        return [level.name for level in self.levels]

    def level(self, name: str) -> Level:
        for level in self.levels:
            if level.name == name:
                return level
        raise KeyError(name)

    @property
    def value_range(self) -> tuple[float, float]:
        values = [float(level.value) for level in self.levels if level.value is not None]
        return min(values), max(values)


class Prohibition(_Strict):
    """A combination of levels that no product may have (pairs or n-way).

    ``levels`` maps attribute name to one level name or a list of them; a
    profile is prohibited when it matches every entry.
    """

    levels: dict[str, str | list[str]] = Field(min_length=2)
    reason: str | None = None


class Competitor(_Strict):
    """A product on the market that is not ours, described on our attributes."""

    name: str = Field(min_length=1)
    maker: str | None = None
    profile: dict[str, LevelValue]
    asc: float = 0.0


class NoneOption(_Strict):
    enabled: bool = True
    label: str = "None of these"


class Store(_Strict):
    id: Name
    city: str = Field(min_length=1)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    kind: Literal["own", "partner"] = "own"


class RentPlan(_Strict):
    name: Name
    monthly_fee: NonNegative
    km_cap: Positive | None = None
    overage_per_km: NonNegative = 0.0


class BatteryPack(_Strict):
    id: Name
    size_class: str = Field(min_length=1)
    chemistry: Literal["LFP", "NCM"]
    kwh: Positive
    range_km: Positive
    cost: NonNegative
    rent_plans: list[RentPlan] = Field(default_factory=list)


class City(_Strict):
    name: str = Field(min_length=1)
    province: str = ""
    tier: int = Field(default=2, ge=1, le=5)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    market_size: NonNegative = Field(description="addressable buyers in the segment per year")


class Product(_Strict):
    """Our product: its name and business figures (its attributes are top level)."""

    name: str = Field(min_length=1)
    category: str = ""
    currency: str = "CNY"
    base_unit_cost: NonNegative = 0.0
    fixed_cost_per_variant: NonNegative = 0.0
    max_variants: int = Field(default=4, ge=1)
    months_of_rent: int = Field(default=96, ge=1, description="rent months counted per car")


class Project(_Strict):
    """A whole C2M project as read from a project file."""

    name: str = Field(min_length=1)
    description: str = ""
    seed: int = 20251
    product: Product
    attributes: list[Attribute] = Field(min_length=1)
    prohibitions: list[Prohibition] = Field(default_factory=list)
    competitors: list[Competitor] = Field(default_factory=list)
    none_option: NoneOption = Field(default_factory=NoneOption)
    cities: list[City] = Field(default_factory=list)
    stores: list[Store] = Field(default_factory=list)
    battery_packs: list[BatteryPack] = Field(default_factory=list)

    @field_validator("attributes")
    @classmethod
    def _unique_attributes(cls, attributes: list[Attribute]) -> list[Attribute]:
        names = [a.name for a in attributes]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"duplicate attribute names {duplicated}")
        return attributes

    @property
    def attribute_names(self) -> list[str]:
        return [a.name for a in self.attributes]

    def attribute(self, name: str) -> Attribute:
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute
        raise KeyError(name)

    def attribute_by_role(self, role: str) -> Attribute | None:
        return next((a for a in self.attributes if a.role == role), None)

    def battery_pack(self, pack_id: str) -> BatteryPack:
        for pack in self.battery_packs:
            if pack.id == pack_id:
                return pack
        raise KeyError(pack_id)
