"""工业固体废物综合利用率 — industrial solid-waste utilisation, a guiding indicator of the national
zero-carbon park scheme (发改环资〔2025〕910号, target ≥80 % [V2]; analytics/zero_carbon.py).

rate = solid waste utilised (综合利用量) / (generated + stock from earlier years utilised), over general
industrial solid waste and hazardous waste together. parkmon has no meter of solid waste and no record of
general industrial solid waste (一般工业固体废物): the hazardous-waste register (危险废物,
ingest.store.records.hazwaste) covers only part of it. So the indicator has its inputs and method written
down and gives no value (insufficient data), saying what is missing, until a record type for general
industrial solid waste (generated, utilised, disposed, stored, by enterprise and month) exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analytics.indicators.base import Context, Indicator, IndicatorResult, Span
from analytics.zero_carbon import load_zero_carbon_settings

if TYPE_CHECKING:
    from ingest.store.base import Store

WHY = ("parkmon keeps no record of general industrial solid waste (一般工业固体废物: generated, utilised, "
       "stored); the hazardous-waste register covers only hazardous waste. A record type for it is needed")


class SolidWasteUtilisation(Indicator[Span]):
    key = "solid_waste_utilisation"
    name_zh = "工业固体废物综合利用率"
    name_en = "Industrial solid-waste utilisation"
    unit = "ratio"
    params = Span
    in_report = False  # in the report's zero-carbon section (zc_park)

    def feed(self, store: Store, park: str, p: Span, ctx: Context) -> IndicatorResult:
        ctx.park(store, park)
        guiding = load_zero_carbon_settings().guiding["solid_waste_utilisation"]
        return self.make_result(None, p.start, p.end, target=guiding.target, completeness=0.0,
                                inputs={"park": park, "why_no_value": WHY, "target_source": guiding.source,
                                        "target_confidence": guiding.confidence},
                                method="solid waste utilised (t) / (generated + earlier years' stock utilised) (t), "
                                       "general industrial and hazardous waste together")
