"""综合能耗 — comprehensive energy consumption in tonnes of standard coal (tce), GB/T 2589-2020,
and the carbon it carries (单位能耗碳排放, tCO2 per tce, the 2025 national zero-carbon park core
indicator). The computation is pure: quantities and factors in, an auditable breakdown out.

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

The feed reads each carrier's counters over the period (:func:`analytics.meters.counter_totals`: a meter
replaced mid-period counts from zero; a meter that did not cover the period makes its carrier incomplete,
never guessed) into an :class:`EnergyUse`. The report reads every enterprise's counters once and takes the
park's figures as their sum (:func:`report_energy`), shared with the key energy users and its tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from analytics.factors import Factors, load_factors
from analytics.indicators.base import Context, Indicator, IndicatorResult, Span, require_park
from analytics.meters import MeterStore, counter_totals, totals_by_enterprise
from analytics.rollup_feed import Source
from parkmon.common.clock import CHINA

if TYPE_CHECKING:
    from ingest.store.base import Store

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


# EnergyUse field -> the counter metrics summed into it (the metrics' units are the field's)
CARRIERS: dict[str, tuple[str, ...]] = {
    "grid_import_kwh": ("elec.import.energy",),
    "grid_export_kwh": ("elec.export.energy",),
    "renewable_generation_kwh": ("pv.generation.energy", "wind.generation.energy"),
    "natural_gas_m3": ("gas.volume",),
    "coal_t": ("coal.mass",),
    "steam_t": ("steam.mass",),
    "heat_gj": ("heat.energy",),
}
Figures = tuple[IndicatorResult, IndicatorResult]  # (综合能耗 in tce, 单位能耗碳排放 in tCO2/tce)


def clean_energy_share(re_used_kwh: float | None, total_tce: float | None, kgce_per_kwh: float) -> float | None:
    """清洁能源消费占比 of all energy: renewable electricity used, in tce by the electricity coefficient,
    over comprehensive energy in tce (the zero-carbon park guiding indicator, ≥90 %). Kept apart from
    the electricity-only new-energy share, whose denominator is electricity alone."""
    if re_used_kwh is None or total_tce is None or total_tce <= 0:
        return None
    return min(1.0, re_used_kwh * kgce_per_kwh / 1000 / total_tce)


# --- the feed ---------------------------------------------------------------------------------------------
def energy_use(store: MeterStore, park: str, start_ms: int, end_ms: int, enterprise: str | None = None,
               green_purchase_kwh: float = 0.0, source: Source = "auto") -> tuple[EnergyUse, dict[str, Any]]:
    """What the park (or one enterprise) used in [start, end), with the coverage report."""
    totals, report = counter_totals(store, park, CARRIERS, start_ms, end_ms, enterprise, source)
    return EnergyUse(**totals, green_purchase_kwh=green_purchase_kwh), report


def energy_figures(store: MeterStore, park: str, start_ms: int, end_ms: int, enterprise: str | None = None,
                   factors: Factors | None = None, electricity_method: ElectricityMethod = "equivalent",
                   steam_method: SteamMethod = "fixed", steam_pressure_mpa: float = 1.0,
                   green_purchase_kwh: float = 0.0, area: str = "内蒙古", source: Source = "auto") -> Figures:
    """(综合能耗, 单位能耗碳排放) of a park already checked, or of one of its enterprises, over a period."""
    use, rep = energy_use(store, park, start_ms, end_ms, enterprise, green_purchase_kwh, source)
    return energy_results(use, rep, park, enterprise, start_ms, end_ms, factors or load_factors(),
                          electricity_method, steam_method, steam_pressure_mpa, area)


def compute_energy(store: MeterStore, park: str, start_ms: int, end_ms: int, enterprise: str | None = None,
                   factors: Factors | None = None, electricity_method: ElectricityMethod = "equivalent",
                   steam_method: SteamMethod = "fixed", steam_pressure_mpa: float = 1.0,
                   green_purchase_kwh: float = 0.0, area: str = "内蒙古", source: Source = "auto") -> Figures:
    """:func:`energy_figures`, the park checked first (UnknownPark)."""
    require_park(store, park)
    return energy_figures(store, park, start_ms, end_ms, enterprise, factors, electricity_method, steam_method,
                          steam_pressure_mpa, green_purchase_kwh, area, source)


def uses_by_enterprise(store: MeterStore, park: str, start_ms: int, end_ms: int,
                       source: Source = "auto") -> dict[str, tuple[EnergyUse, dict[str, Any]]]:
    """Every enterprise's energy use, from one read of the counters."""
    return {ent: (EnergyUse(**totals), rep)
            for ent, (totals, rep) in totals_by_enterprise(store, park, CARRIERS, start_ms, end_ms, source).items()}


def energy_by_enterprise(store: MeterStore, park: str, start_ms: int, end_ms: int, factors: Factors | None = None,
                         source: Source = "auto") -> dict[str, Figures]:
    """:func:`compute_energy` of every enterprise of the park (default methods), from one read."""
    require_park(store, park)
    f = factors or load_factors()
    return {ent: energy_results(use, rep, park, ent, start_ms, end_ms, f)
            for ent, (use, rep) in uses_by_enterprise(store, park, start_ms, end_ms, source).items()}


def park_use(uses: dict[str, tuple[EnergyUse, dict[str, Any]]]) -> tuple[EnergyUse, dict[str, Any]]:
    """The park's energy use as the sum of its enterprises' (the same meters, read once)."""
    total = {f_.name: sum(getattr(u, f_.name) for u, _r in uses.values()) for f_ in fields(EnergyUse)}
    rep: dict[str, Any] = {"meters": {}, "uncovered": [], "resets": 0, "source": "raw"}
    for _u, r in uses.values():
        for k, n in r["meters"].items():
            rep["meters"][k] = rep["meters"].get(k, 0) + n
        rep["uncovered"] += r["uncovered"]
        rep["resets"] += r["resets"]
        rep["source"] = r["source"]
    return EnergyUse(**total), rep


def energy_results(use: EnergyUse, rep: dict[str, Any], park: str, enterprise: str | None, start_ms: int,
                   end_ms: int, f: Factors, electricity_method: ElectricityMethod = "equivalent",
                   steam_method: SteamMethod = "fixed", steam_pressure_mpa: float = 1.0,
                   area: str = "内蒙古") -> Figures:
    start = datetime.fromtimestamp(start_ms / 1000, tz=UTC)
    end = datetime.fromtimestamp(end_ms / 1000, tz=UTC)
    r = compute(use, f, year=start.astimezone(CHINA).year, area=area, electricity_method=electricity_method,
                steam_method=steam_method, steam_pressure_mpa=steam_pressure_mpa)
    meters = sum(rep["meters"].values())
    covered = meters - len(rep["uncovered"])
    complete = covered / meters if meters else 0.0
    inputs: dict[str, Any] = {"park": park, "enterprise": enterprise,
                              "use": {f_.name: getattr(use, f_.name) for f_ in fields(use)},
                              "meters_per_carrier": rep["meters"], "meters_not_covering_period": rep["uncovered"],
                              "counter_resets": rep["resets"], "source": rep["source"], "method": r.method}
    ce, cc = ComprehensiveEnergy(), CarbonPerTce()
    tce = ce.make_result(round(r.tce, 6) if covered else None, start, end, completeness=complete,
                         inputs={**inputs, "lines": [vars(x) for x in r.lines]},
                         method="GB/T 2589-2020: Σ carrier × coefficient; electricity = import + on-site RE - export")
    per = r.co2_per_tce if covered else None
    carbon = cc.make_result(None if per is None else round(per, 6), start, end, completeness=complete,
                            inputs={**inputs, "co2_t": r.co2_t, "tce": r.tce, "lines": [vars(x) for x in r.co2_lines]},
                            method="CO2 of grid electricity (area factor of the year; residual factor when green "
                                   "power is claimed) + fuels + bought heat and steam, over comprehensive energy "
                                   "in tce")
    return tce, carbon


def enterprise_uses(store: MeterStore, park: str, start_ms: int, end_ms: int,
                    ctx: Context) -> dict[str, tuple[EnergyUse, dict[str, Any]]]:
    """:func:`uses_by_enterprise`, read once per request."""
    return ctx.once(("uses_by_enterprise", park, start_ms, end_ms),
                    lambda: uses_by_enterprise(store, park, start_ms, end_ms))


def enterprise_energy(store: MeterStore, park: str, start_ms: int, end_ms: int, ctx: Context) -> dict[str, Figures]:
    """Every enterprise's figures (default methods) from that one read."""
    f = ctx.factors or load_factors()
    return ctx.once(("energy_by_enterprise", park, start_ms, end_ms), lambda: {
        e: energy_results(u, r, park, e, start_ms, end_ms, f)
        for e, (u, r) in enterprise_uses(store, park, start_ms, end_ms, ctx).items()})


def report_energy(store: MeterStore, park: str, start: datetime, end: datetime, ctx: Context) -> Figures:
    """The park's figures as the sum of its enterprises' uses, from that one read (the report's)."""
    s_ms, e_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    f = ctx.factors or load_factors()
    return ctx.once(("park_energy", park, s_ms, e_ms), lambda: energy_results(
        *park_use(enterprise_uses(store, park, s_ms, e_ms, ctx)), park, None, s_ms, e_ms, f))


# --- the indicators ---------------------------------------------------------------------------------------
class EnergyParams(Span):
    enterprise: Annotated[str | None, Field(description="one enterprise (default: the whole park)")] = None
    electricity_method: Annotated[ElectricityMethod, Field(
        description="当量值 equivalent (0.1229 kgce/kWh) or 等价值 equal_value (the year's coal rate)")] = "equivalent"
    steam_method: Annotated[SteamMethod, Field(description="fixed reference value or enthalpy at pressure")] = "fixed"
    steam_pressure_mpa: Annotated[float, Field(gt=0, le=30)] = 1.0
    green_purchase_kwh: Annotated[float, Field(ge=0, description="green power bought and claimed (绿电交易/绿证)")] \
        = 0.0
    source: Annotated[Source, Field(description="auto: the rollups where current, then the readings; raw; rollup")] \
        = "auto"


def _figures(store: Store, park: str, p: EnergyParams, ctx: Context) -> Figures:
    """Both indicators from one read: the second one asked in a request finds it done."""
    ctx.park(store, park)
    return ctx.once(("energy", park, p), lambda: energy_figures(
        store, park, p.start_ms, p.end_ms, p.enterprise, ctx.factors, p.electricity_method, p.steam_method,
        p.steam_pressure_mpa, p.green_purchase_kwh, source=p.source))


class ComprehensiveEnergy(Indicator[EnergyParams]):
    key = "comprehensive_energy"
    name_zh = "综合能耗"
    name_en = "Comprehensive energy consumption"
    unit = "tce"
    params = EnergyParams
    companions = ("carbon_per_tce",)
    cli = "energy"
    in_overview = True

    def feed(self, store: Store, park: str, p: EnergyParams, ctx: Context) -> IndicatorResult:
        return _figures(store, park, p, ctx)[0]

    def for_report(self, store: Store, park: str, start: datetime, end: datetime, period: str,
                   ctx: Context) -> IndicatorResult | None:
        ctx.park(store, park)
        return report_energy(store, park, start, end, ctx)[0]

    def summary_rows(self, report: dict[str, Any]) -> list[list[Any]] | None:
        from analytics.report.rows import STATUS_ZH, num, pct

        tce = report[self.key]
        return [["综合能耗 Comprehensive energy (tce)", num(tce["value"]), "", STATUS_ZH[tce["status"]],
                 pct(tce["completeness"])]]

    def overview_fields(self, result: IndicatorResult) -> dict[str, Any]:
        return {"comprehensive_energy_tce": result.value}

    def overview_region(self, results: list[IndicatorResult]) -> dict[str, Any]:
        tces = [r.value for r in results if r.value is not None]
        return {"comprehensive_energy_tce": sum(tces) if tces else None}


class CarbonPerTce(Indicator[EnergyParams]):
    key = "carbon_per_tce"
    name_zh = "单位能耗碳排放"
    name_en = "CO2 per tce of energy"
    unit = "tCO2/tce"
    params = EnergyParams
    cli = None  # `parkmon indicators energy` prints it with the comprehensive energy
    in_overview = True

    def feed(self, store: Store, park: str, p: EnergyParams, ctx: Context) -> IndicatorResult:
        return _figures(store, park, p, ctx)[1]

    def for_report(self, store: Store, park: str, start: datetime, end: datetime, period: str,
                   ctx: Context) -> IndicatorResult | None:
        ctx.park(store, park)
        return report_energy(store, park, start, end, ctx)[1]

    def summary_rows(self, report: dict[str, Any]) -> list[list[Any]] | None:
        from analytics.report.rows import STATUS_ZH, num, pct

        carbon = report[self.key]
        return [["单位能耗碳排放 CO₂ per tce (tCO₂/tce)", num(carbon["value"], 3), "", STATUS_ZH[carbon["status"]],
                 pct(carbon["completeness"])]]
