"""综合能耗 — comprehensive energy consumption in tonnes of standard coal (tce), GB/T 2589-2020,
and the carbon it carries (单位能耗碳排放, tCO2 per tce, the 2025 national zero-carbon park core
indicator). Pure: quantities and factors in, an auditable breakdown out.

Rules (docs/indicators/comprehensive-energy.md):
- electricity counted is what the site used: grid import − export + on-site renewable generation
  consumed (import + generation − export), by the 当量值 (0.1229 kgce/kWh) or the 等价值 (the year's
  coal rate) method — the result records which;
- natural gas, coal, heat by their GB/T 2589 coefficients; steam by the fixed reference value or by
  the enthalpy at its supply pressure (the method is recorded);
- CO2: grid electricity (import only: on-site renewables emit nothing; export is not credited) by the
  area's factor of the year, or, when green power is claimed, the claimed kWh at zero and the rest at
  the residual factor (so green power is not counted twice); fuels and bought heat / steam by their
  factors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from analytics.factors import Factors

ElectricityMethod = Literal["equivalent", "equal_value"]
SteamMethod = Literal["fixed", "enthalpy"]


@dataclass(frozen=True)
class EnergyUse:
    """What a site used over a period (consumption, not counters): kWh, m³, t, GJ."""

    grid_import_kwh: float = 0.0
    grid_export_kwh: float = 0.0
    renewable_generation_kwh: float = 0.0  # on site, curtailment excluded
    natural_gas_m3: float = 0.0
    coal_t: float = 0.0
    steam_t: float = 0.0
    heat_gj: float = 0.0
    green_purchase_kwh: float = 0.0  # green power bought (绿电交易 / 绿证) and claimed


@dataclass
class Line:
    carrier: str
    quantity: float
    unit: str
    factor: float
    factor_unit: str
    result: float  # tce in the energy lines, tCO2 in the carbon lines
    source: str


@dataclass
class EnergyResult:
    tce: float
    lines: list[Line] = field(default_factory=list)
    co2_t: float = 0.0
    co2_lines: list[Line] = field(default_factory=list)
    method: dict[str, str] = field(default_factory=dict)

    @property
    def co2_per_tce(self) -> float | None:
        return self.co2_t / self.tce if self.tce > 0 else None


def compute(use: EnergyUse, f: Factors, *, year: int, area: str = "内蒙古",
            electricity_method: ElectricityMethod = "equivalent", steam_method: SteamMethod = "fixed",
            steam_pressure_mpa: float = 1.0) -> EnergyResult:
    if min(use.grid_import_kwh, use.grid_export_kwh, use.renewable_generation_kwh, use.natural_gas_m3, use.coal_t,
           use.steam_t, use.heat_gj, use.green_purchase_kwh) < 0:
        raise ValueError("energy quantities are amounts used over the period and cannot be negative")
    if use.green_purchase_kwh > use.grid_import_kwh + 1e-9:
        raise ValueError(f"green power claimed ({use.green_purchase_kwh} kWh) exceeds grid import "
                         f"({use.grid_import_kwh} kWh): only electricity taken can be green")
    t = f.tce
    elec = use.grid_import_kwh + use.renewable_generation_kwh - use.grid_export_kwh
    ef = t.electricity_equivalent if electricity_method == "equivalent" else t.electricity_equal_value
    if steam_method == "fixed":
        steam_k, steam_src = t.steam_fixed.value, t.steam_fixed.source
    else:
        steam_k = t.steam_enthalpy_net.at(steam_pressure_mpa)
        steam_src = f"{t.steam_enthalpy_net.source} at {steam_pressure_mpa} MPa"
    lines = [
        Line("electricity", elec, "kWh", ef.value, ef.unit, elec * ef.value / 1000, ef.source),
        Line("natural_gas", use.natural_gas_m3, "m3", t.natural_gas.value, t.natural_gas.unit,
             use.natural_gas_m3 * t.natural_gas.value / 1000, t.natural_gas.source),
        Line("coal", use.coal_t, "t", t.coal.value, t.coal.unit, use.coal_t * t.coal.value, t.coal.source),
        Line("steam", use.steam_t, "t", steam_k, "kgce/t", use.steam_t * steam_k / 1000, steam_src),
        Line("heat", use.heat_gj, "GJ", t.heat.value, t.heat.unit, use.heat_gj * t.heat.value / 1000, t.heat.source),
    ]
    c = f.co2
    grid_kwh = use.grid_import_kwh - use.green_purchase_kwh
    if use.green_purchase_kwh > 0:
        k, src = c.electricity_residual.lookup("national", year)
        src = f"residual factor, {use.green_purchase_kwh:g} kWh green claimed at zero; {src}"
    else:
        k, src = c.electricity.lookup(area, year)
    steam_gj = use.steam_t * c.steam_gj_per_t.value
    co2 = [
        Line("electricity", grid_kwh, "kWh", k, "kgCO2/kWh", grid_kwh * k / 1000, src),
        Line("natural_gas", use.natural_gas_m3, "m3", c.natural_gas.value, c.natural_gas.unit,
             use.natural_gas_m3 * c.natural_gas.value / 1000, c.natural_gas.source),
        Line("coal", use.coal_t, "t", c.coal.value, c.coal.unit, use.coal_t * c.coal.value, c.coal.source),
        Line("steam", steam_gj, "GJ", c.heat.value, c.heat.unit, steam_gj * c.heat.value,
             f"{c.steam_gj_per_t.value} GJ/t ({c.steam_gj_per_t.source}); {c.heat.source}"),
        Line("heat", use.heat_gj, "GJ", c.heat.value, c.heat.unit, use.heat_gj * c.heat.value, c.heat.source),
    ]
    return EnergyResult(
        tce=sum(x.result for x in lines), lines=[x for x in lines if x.quantity], co2_t=sum(x.result for x in co2),
        co2_lines=[x for x in co2 if x.quantity],
        method={"electricity": f"{electricity_method} ({ef.value} {ef.unit})",
                "steam": f"{steam_method} ({steam_k:.1f} kgce/t)", "grid_area": area, "year": str(year)})


class ComprehensiveEnergy:
    key = "comprehensive_energy"
    name_zh = "综合能耗"
    name_en = "Comprehensive energy consumption"
    unit = "tce"


class CarbonPerTce:
    key = "carbon_per_tce"
    name_zh = "单位能耗碳排放"
    name_en = "CO2 per tce of energy"
    unit = "tCO2/tce"


def clean_energy_share(re_used_kwh: float | None, total_tce: float | None, kgce_per_kwh: float) -> float | None:
    """清洁能源消费占比 of all energy: renewable electricity used, in tce by the electricity coefficient,
    over comprehensive energy in tce (the zero-carbon park guiding indicator, ≥90 %). Kept apart from
    the electricity-only new-energy share, whose denominator is electricity alone."""
    if re_used_kwh is None or total_tce is None or total_tce <= 0:
        return None
    return min(1.0, re_used_kwh * kgce_per_kwh / 1000 / total_tce)
