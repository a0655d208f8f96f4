"""Battery life: state of health by chemistry and use, retirement, and the fleet's packs over the years.

State of health (usable capacity over new) loses a calendar part and a cycle part:

    SoH(t) = 1 - a(chem, T) sqrt(t_years) - b(chem, DoD) EFC(t)

* calendar fade grows with the square root of time (SEI growth), faster when hot:
  ``a = a25 exp(Ea / R (1/298.15 - 1/T))`` (Arrhenius) for the pack's temperature band;
* cycle fade is linear in equivalent full cycles ``EFC = km / range_km`` (a full pack
  drives ``range_km``), with a Woehler depth-of-discharge law: a pack lasts
  ``N100 DoD^-k`` cycles of depth DoD to 80 % SoH, so the fade per equivalent full cycle
  is ``0.2 DoD^(k - 1) / N100``.

Default parameters are typical published figures for automotive cells (LFP: about 4,000
full cycles and 2.5 %/sqrt(year) calendar fade at 25 C; NCM: about 1,500 cycles and
4 %/sqrt(year)); pass an :class:`AgeingModel` to use your own cell data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from c2m.domain import BatteryPack
from c2m.errors import C2MError

GAS_CONSTANT = 8.314
TEMPERATURE_BANDS = {"cool": 15.0, "mild": 25.0, "hot": 35.0}


@dataclass(frozen=True)
class AgeingModel:
    """Fade parameters of one chemistry (see the module docstring)."""

    calendar_fade_25c: float  # SoH lost per sqrt(year) at 25 C
    full_cycles_to_80: float  # cycles at 100 % depth of discharge until SoH 0.8
    dod_exponent: float  # Woehler exponent k
    activation_energy: float = 30_000.0  # J/mol, calendar fade

    def calendar_rate(self, temperature: str) -> float:
        if temperature not in TEMPERATURE_BANDS:
            raise C2MError(f"battery life: unknown temperature band {temperature!r}; use {list(TEMPERATURE_BANDS)}")
        kelvin = TEMPERATURE_BANDS[temperature] + 273.15
        return float(self.calendar_fade_25c * np.exp(self.activation_energy / GAS_CONSTANT * (1 / 298.15 - 1 / kelvin)))

    def fade_per_full_cycle(self, dod: float) -> float:
        if not 0 < dod <= 1:
            raise C2MError(f"battery life: depth of discharge must be in (0, 1], got {dod}")
        return float(0.2 * dod ** (self.dod_exponent - 1) / self.full_cycles_to_80)


DEFAULT_MODELS = {
    "LFP": AgeingModel(calendar_fade_25c=0.025, full_cycles_to_80=4000, dod_exponent=1.3),
    "NCM": AgeingModel(calendar_fade_25c=0.04, full_cycles_to_80=1500, dod_exponent=1.5),
}


def _model(pack: BatteryPack, model: AgeingModel | None) -> AgeingModel:
    return model if model is not None else DEFAULT_MODELS[pack.chemistry]


def _check_use(km_per_month: float, threshold: float | None = None) -> None:
    if not np.isfinite(km_per_month) or km_per_month < 0:
        raise C2MError(f"battery life: km_per_month must be >= 0, got {km_per_month}")
    if threshold is not None and not 0 < threshold < 1:
        raise C2MError(f"battery life: the retirement state of health must be in (0, 1), got {threshold}")


def state_of_health(
    pack: BatteryPack,
    months: int,
    km_per_month: float,
    dod: float = 0.8,
    temperature: str = "mild",
    model: AgeingModel | None = None,
) -> np.ndarray:
    """SoH at the end of months 0..``months`` of constant use (``months + 1`` values, first 1.0)."""
    _check_use(km_per_month)
    if months < 0:
        raise C2MError(f"battery life: months must be >= 0, got {months}")
    m = _model(pack, model)
    t = np.arange(months + 1, dtype=float)
    calendar = m.calendar_rate(temperature) * np.sqrt(t / 12)
    cycles = m.fade_per_full_cycle(dod) * km_per_month * t / pack.range_km
    return np.asarray(1.0 - calendar - cycles)


def retirement_month(
    pack: BatteryPack,
    km_per_month: float,
    threshold: float = 0.8,
    dod: float = 0.8,
    temperature: str = "mild",
    model: AgeingModel | None = None,
) -> float:
    """Months of constant use until SoH reaches ``threshold`` (closed form: a quadratic in sqrt(t))."""
    _check_use(km_per_month, threshold)
    m = _model(pack, model)
    a = m.calendar_rate(temperature) / np.sqrt(12.0)  # per sqrt(month)
    c = m.fade_per_full_cycle(dod) * km_per_month / pack.range_km  # per month
    loss = 1.0 - threshold
    if c == 0:
        return float((loss / a) ** 2)
    root = (-a + np.sqrt(a * a + 4 * c * loss)) / (2 * c)
    return float(root**2)


def simulate_pack_fleet(
    pack: BatteryPack,
    vehicles_by_year: list[int],
    km_per_month: float = 1500.0,
    usage_spread: float = 0.5,
    spare_ratio: float = 0.15,
    rotation: str = "even",
    retire_at: float = 0.8,
    second_life_years: float = 6.0,
    dod: float = 0.8,
    temperature: str = "mild",
    model: AgeingModel | None = None,
    seed: int = 0,
) -> pl.DataFrame:
    """The battery firm's packs month by month: bought, in service, retired to second life, recycled.

    Each year's fleet (vehicles in service, ``vehicles_by_year``) needs one pack per car plus
    ``spare_ratio`` at the stations. Drivers' km per month are lognormal with mean
    ``km_per_month`` and log-sd ``usage_spread``. ``rotation="even"``: every month the swap
    network gives the healthiest packs to the heaviest drivers, so packs age evenly;
    ``"none"``: a pack stays with its car. Spares age by calendar only. A pack whose SoH falls
    below ``retire_at`` leaves traction for second life (storage) and is recycled
    ``second_life_years`` later; the firm buys new packs to keep the pool full.

    Returns one row per year: ``year``, ``vehicles``, ``packs_in_service``, ``packs_bought``,
    ``retired`` (to second life), ``recycled``, ``second_life_active``, ``mean_soh``,
    ``soh_p10``, ``soh_p90`` (of packs in service at the year's end).
    """
    _check_use(km_per_month, retire_at)
    if rotation not in ("even", "none"):
        raise C2MError(f"battery life: rotation must be 'even' or 'none', got {rotation!r}")
    if not vehicles_by_year or any(v < 0 for v in vehicles_by_year):
        raise C2MError("battery life: vehicles_by_year must be a non-empty list of counts >= 0")
    if spare_ratio < 0 or usage_spread < 0 or second_life_years < 0:
        raise C2MError("battery life: spare_ratio, usage_spread and second_life_years must be >= 0")
    m = _model(pack, model)
    rng = np.random.default_rng(seed)
    a = m.calendar_rate(temperature)
    cycle_fade_per_km = m.fade_per_full_cycle(dod) / pack.range_km
    calendar_fade = np.zeros(0)  # per pack in service
    cycle_fade = np.zeros(0)
    age_months = np.zeros(0)
    drivers = np.zeros(0)  # km per month of each car
    second_life_ends: list[float] = []  # month each second-life pack is recycled
    rows = []
    month = 0
    mu = np.log(km_per_month) - usage_spread**2 / 2 if km_per_month > 0 else -np.inf
    for year, vehicles in enumerate(vehicles_by_year, start=1):
        bought = retired = recycled = 0
        for _ in range(12):
            month += 1
            if drivers.size < vehicles:  # new cars join the fleet
                extra = vehicles - drivers.size
                new = np.exp(mu + usage_spread * rng.standard_normal(extra)) if km_per_month > 0 else np.zeros(extra)
                drivers = np.concatenate([drivers, new])
            else:
                drivers = drivers[:vehicles]
            pool = int(np.ceil(vehicles * (1 + spare_ratio)))
            extra = max(pool - calendar_fade.size, 0)  # buy packs to fill the pool
            bought += extra
            calendar_fade, cycle_fade, age_months = (np.concatenate([x, np.zeros(extra)])
                                                     for x in (calendar_fade, cycle_fade, age_months))
            usage = np.zeros(calendar_fade.size)
            in_cars = min(drivers.size, calendar_fade.size)
            if rotation == "even":
                healthiest = np.argsort(calendar_fade + cycle_fade, kind="stable")[:in_cars]
                usage[healthiest] = np.sort(drivers)[::-1][:in_cars]
            else:
                usage[:in_cars] = drivers[:in_cars]
            age_months += 1
            calendar_fade = a * np.sqrt(age_months / 12)
            cycle_fade = cycle_fade + cycle_fade_per_km * usage
            soh = 1.0 - calendar_fade - cycle_fade
            out = soh < retire_at
            if out.any():
                retired += int(out.sum())
                second_life_ends.extend([month + 12 * second_life_years] * int(out.sum()))
                keep = ~out
                calendar_fade, cycle_fade, age_months = calendar_fade[keep], cycle_fade[keep], age_months[keep]
                if rotation == "none":  # the cars whose packs retired take spares or new packs
                    drivers = np.concatenate([drivers[keep[: drivers.size]], drivers[~keep[: drivers.size]]])
                extra = max(pool - calendar_fade.size, 0)  # replace the retired packs at once
                bought += extra
                calendar_fade, cycle_fade, age_months = (np.concatenate([x, np.zeros(extra)])
                                                         for x in (calendar_fade, cycle_fade, age_months))
            done = [end for end in second_life_ends if end <= month]
            recycled += len(done)
            second_life_ends = [end for end in second_life_ends if end > month]
        soh = 1.0 - calendar_fade - cycle_fade
        rows.append(
            {
                "year": year,
                "vehicles": int(vehicles),
                "packs_in_service": int(soh.size),
                "packs_bought": bought,
                "retired": retired,
                "recycled": recycled,
                "second_life_active": len(second_life_ends),
                "mean_soh": float(soh.mean()) if soh.size else None,
                "soh_p10": float(np.quantile(soh, 0.1)) if soh.size else None,
                "soh_p90": float(np.quantile(soh, 0.9)) if soh.size else None,
            }
        )
    return pl.DataFrame(rows)
