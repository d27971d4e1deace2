"""余热/余冷/余压综合利用率 — waste heat, cold and pressure utilisation, a guiding indicator of the
national zero-carbon park scheme (发改环资〔2025〕910号, target ≥50 % [V2]; analytics/zero_carbon.py).

rate = energy recovered and used / waste heat, cold and pressure available, over the period, both from
heat meters (GJ): ``heat.recovered.energy`` on the recovery side (waste-heat boilers, heat exchangers,
TRT turbines' output in heat terms) and ``heat.waste.energy`` on the resource side. A park that knows its
resource only from an energy audit (能源审计) has no meter for it, and then no value: the result says so.
Read like every counter (analytics.meters); a meter that did not cover the period leaves the rate out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analytics.indicators.base import Context, Indicator, IndicatorResult, Span
from analytics.indicators.zc_water_reuse import metered_ratio
from analytics.zero_carbon import rate

if TYPE_CHECKING:
    from ingest.store.base import Store


class WasteHeatUtilisation(Indicator[Span]):
    key = "waste_heat_utilisation"
    name_zh = "余热/余冷/余压综合利用率"
    name_en = "Waste heat, cold and pressure utilisation"
    unit = "ratio"
    params = Span
    in_report = False  # in the report's zero-carbon section (zc_park)

    def feed(self, store: Store, park: str, p: Span, ctx: Context) -> IndicatorResult:
        ctx.park(store, park)
        return metered_ratio(self, store, park, p.start_ms, p.end_ms, "waste_heat_utilisation",
                             {"recovered_gj": ("heat.recovered.energy",), "available_gj": ("heat.waste.energy",)},
                             rate, "waste heat / cold / pressure recovered and used (GJ) / available (GJ), "
                             "from heat meters")
