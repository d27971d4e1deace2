"""工业固体废物综合利用率 — industrial solid-waste utilisation, a guiding indicator of the national
zero-carbon park scheme (发改环资〔2025〕910号, target ≥80 % [V2]; analytics/zero_carbon.py).

rate = solid waste utilised (综合利用量) / (generated + stock from earlier years utilised), over general
industrial solid waste and hazardous waste together, from the enterprises' monthly solid-waste records
(ingest.store.records.solid_waste: ``PUT /parks/{park}/solid-waste`` or the CSV/Excel import) of the whole
China months inside the period. No record for those months: no value (insufficient data), saying so.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from analytics.indicators.base import Context, Indicator, IndicatorResult, Span
from analytics.zero_carbon import load_zero_carbon_settings
from ingest.store.records.solid_waste import months
from parkmon.common.clock import CHINA

if TYPE_CHECKING:
    from ingest.store.base import Store

WHY = ("no solid-waste month of the period on record: enter each enterprise's month (PUT /parks/{park}/solid-waste "
       "or POST …/solid-waste/import)")


def whole_months(start: datetime, end: datetime) -> tuple[str, str] | None:
    """The first and last China calendar month (YYYY-MM) wholly inside [start, end); None if none is."""
    a, b = start.astimezone(CHINA), end.astimezone(CHINA)
    y, m = (a.year, a.month) if (a.day, a.hour, a.minute, a.second, a.microsecond) == (1, 0, 0, 0, 0) else \
        (a.year + (a.month == 12), a.month % 12 + 1)
    ey, em = (b.year - (b.month == 1), (b.month - 2) % 12 + 1)  # the month before the one ``end`` falls in
    first, last = f"{y:04d}-{m:02d}", f"{ey:04d}-{em:02d}"
    return (first, last) if first <= last else None


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
        span = whole_months(p.start, p.end)
        rows = months(store, park, *span) if span else []
        generated = sum(r["generated_t"] for r in rows)
        utilised = sum(r["utilised_t"] for r in rows)
        from_stock = sum(r["utilised_from_stock_t"] for r in rows)
        basis = generated + from_stock
        value = utilised / basis if rows and basis > 0 else None
        inputs = {"park": park, "months": list(span) if span else None, "records": len(rows),
                  "generated_t": generated, "utilised_t": utilised, "utilised_from_stock_t": from_stock,
                  "by_category": {c: sum(r["utilised_t"] for r in rows if r["category"] == c) for c in
                                  ("general", "hazardous")},
                  "target_source": guiding.source, "target_confidence": guiding.confidence}
        if value is None:
            inputs["why_no_value"] = WHY
        return self.make_result(value, p.start, p.end, target=guiding.target, completeness=1.0 if rows else 0.0,
                                inputs=inputs,
                                method="solid waste utilised (t) / (generated + earlier years' stock utilised) (t), "
                                       "general industrial and hazardous waste together, whole China months")
