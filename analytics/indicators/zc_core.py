"""单位能耗碳排放 (零碳园区核心指标) — CO₂ per tce of the park's comprehensive energy, judged against the
threshold of the park's size band (its annual comprehensive energy), the core indicator of the national
zero-carbon park scheme (发改环资〔2025〕910号; bands and their sources: analytics/zero_carbon.py and the
``zero_carbon:`` block of analytics/defaults.yaml). Lower is better; a park below the lowest band has no
national threshold (no target).

Inputs, all reused: the carriers' counters (analytics.meters, as 综合能耗), the GB/T 2589 coefficients and
the emission factors (analytics.factors, :func:`comprehensive_energy.compute`), and the green-power
register (analytics.green_claims: contracts and certificates count as zero-emission electricity, the rest
at the residual factor). Electricity's CO₂ is on the net grid import (净调入电量, the scheme's accounting
boundary [V2]) unless ``electricity_co2=import``; the tce is the same either way (import + RE − export).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from analytics.factors import load_factors
from analytics.green_claims import claims
from analytics.indicators.base import Context, Indicator, IndicatorResult, Span, status_for
from analytics.indicators.comprehensive_energy import compute, energy_use
from analytics.zero_carbon import ElectricityCo2, annual_tce, band_for, grid_split, load_zero_carbon_settings
from parkmon.common.clock import CHINA

if TYPE_CHECKING:
    from ingest.store.base import Store

METHOD = ("CO₂ (t) / comprehensive energy (tce, GB/T 2589); CO₂ = net grid import less the green-power register's "
          "claims × the grid factor (residual factor when green power is claimed) + fuels + bought heat and steam; "
          "threshold by the park's annual comprehensive energy (size bands of 发改环资〔2025〕910号); met at or below")


class CoreParams(Span):
    electricity_co2: Annotated[ElectricityCo2 | None, Field(
        description="net_import: CO₂ on import − export (净调入, the scheme's boundary); import: on every kWh "
                    "taken from the grid (default: the settings', net_import)")] = None


class ZeroCarbonCore(Indicator[CoreParams]):
    key = "zero_carbon_core"
    name_zh = "单位能耗碳排放(零碳园区核心指标)"
    name_en = "CO₂ per tce against the zero-carbon park threshold"
    unit = "tCO2/tce"
    better = "lower"
    params = CoreParams
    cli = "zero-carbon-core"
    in_report = False  # in the report's zero-carbon section (zc_park)

    def feed(self, store: Store, park: str, p: CoreParams, ctx: Context) -> IndicatorResult:
        ctx.park(store, park)
        return ctx.once(("zero_carbon_core", park, p), lambda: core_of(store, park, p.start_ms, p.end_ms, ctx,
                                                                        p.electricity_co2))


def core_of(store: Store, park: str, start_ms: int, end_ms: int, ctx: Context,
            electricity_co2: ElectricityCo2 | None = None) -> IndicatorResult:
    """The core indicator of a park already checked over [start, end)."""
    s = load_zero_carbon_settings()
    basis = electricity_co2 or s.electricity_co2
    use, rep = energy_use(store, park, start_ms, end_ms)
    imp, exp = grid_split(use.grid_import_kwh, use.grid_export_kwh, basis)
    reg = claims(store, park, start_ms, end_ms)
    green = min(reg.green_kwh, imp)  # only electricity taken from the grid can be green (NES-6, GP)
    start = datetime.fromtimestamp(start_ms / 1000, tz=UTC)
    end = datetime.fromtimestamp(end_ms / 1000, tz=UTC)
    r = compute(replace(use, grid_import_kwh=imp, grid_export_kwh=exp, green_purchase_kwh=green),
                ctx.factors or load_factors(), year=start.astimezone(CHINA).year)
    meters = sum(rep["meters"].values())
    covered = meters - len(rep["uncovered"])
    value = r.co2_per_tce if covered and not rep["uncovered"] else None  # a partial sum would flatter the park
    annual, annual_basis = annual_tce(r.tce, start_ms, end_ms)
    band = band_for(annual, s)
    inputs: dict[str, Any] = {
        "park": park, "co2_t": round(r.co2_t, 6), "tce": round(r.tce, 6), "annual_tce": round(annual, 3),
        "annual_basis": annual_basis, "band": band.model_dump() if band else None,
        "band_note": None if band else "below the scheme's lowest size band: no national threshold",
        "threshold_source": s.bands_source, "threshold_confidence": s.bands_confidence,
        "electricity_co2": basis, "grid_import_kwh": use.grid_import_kwh, "grid_export_kwh": use.grid_export_kwh,
        "grid_kwh_counted": imp, "green_register": reg.inputs(), "green_counted_kwh": green,
        "use": vars(use), "co2_lines": [vars(x) for x in r.co2_lines], "tce_lines": [vars(x) for x in r.lines],
        "method_detail": r.method, "meters_per_carrier": rep["meters"],
        "meters_not_covering_period": rep["uncovered"], "counter_resets": rep["resets"], "source": rep["source"]}
    return ZeroCarbonCore().make_result(None if value is None else round(value, 6), start, end,
                                        target=band.max_t_co2_per_tce if band else None,
                                        completeness=covered / meters if meters else 0.0, inputs=inputs,
                                        method=METHOD,  # judged unrounded: the rounding is for show
                                        status=status_for(value, band.max_t_co2_per_tce if band else None, "lower"))
