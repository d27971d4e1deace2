"""国家级零碳园区指标 (1 + 5) — the national zero-carbon park scheme's indicators together (发改环资〔2025〕910号):
the core indicator 单位能耗碳排放 against its size band's threshold, and the five guiding indicators, each
computed by its own module (zc_core, zc_clean_energy, unit_energy, zc_solid_waste, zc_waste_heat,
zc_water_reuse) and listed here with its value, threshold, status and basis. The value and status are the
core indicator's (it decides: a park that misses it may not apply for acceptance [V2]).

Shown by the API (``/parks/{park}/indicators/zero-carbon-park``), ``parkmon indicators zero-carbon``, the
monthly / yearly report (a section of its own) and the smart-park scorecard (the year so far).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from analytics.indicators.base import Context, Indicator, IndicatorResult, Month, Span, load
from analytics.indicators.zc_clean_energy import clean_of
from analytics.indicators.zc_core import ZeroCarbonCore, core_of
from analytics.zero_carbon import load_zero_carbon_settings
from parkmon.common.clock import CHINA

if TYPE_CHECKING:
    from ingest.store.base import Store

GUIDING_MODULES = ("solid_waste_utilisation", "waste_heat_utilisation", "water_reuse_rate")


def _item(r: IndicatorResult, kind: str, better: str, basis: str) -> dict[str, Any]:
    return {"key": r.key, "name_zh": r.name_zh, "name_en": r.name_en, "kind": kind, "unit": r.unit,
            "value": r.value, "target": r.target, "better": better, "status": r.status,
            "completeness": r.completeness, "basis": basis}


def _core_basis(r: IndicatorResult) -> str:
    i = r.inputs
    band = i["band"]
    where = band["label_zh"] if band else "低于最低规模档 below the lowest size band: no national threshold"
    return f"{where}; 年综合能耗 annual {i['annual_basis']}; [{i['threshold_confidence']}] {i['threshold_source']}"


def month_of(start: datetime, end: datetime) -> str | None:
    """YYYY-MM when [start, end) is exactly one China calendar month (unit product energy is monthly)."""
    s, e = start.astimezone(CHINA), end.astimezone(CHINA)
    if (s.day, s.hour, s.minute, s.second, e.day, e.hour, e.minute, e.second) != (1, 0, 0, 0, 1, 0, 0, 0):
        return None
    return s.strftime("%Y-%m") if (e.year * 12 + e.month) - (s.year * 12 + s.month) == 1 else None


def zero_carbon_items(store: Store, park: str, start_ms: int, end_ms: int,
                      ctx: Context) -> tuple[IndicatorResult, list[dict[str, Any]]]:
    """The core result and the 1 + 5 items of a park over [start, end) (the park checked here)."""
    info = ctx.park(store, park)
    s = load_zero_carbon_settings()
    core = core_of(store, park, start_ms, end_ms, ctx)
    items = [_item(core, "core", "lower", _core_basis(core))]
    g = s.guiding["clean_energy_share"]
    items.append(_item(clean_of(store, info, start_ms, end_ms, ctx), "guiding", g.better,
                       f"[{g.confidence}] {g.source}"))
    span = Span(start=datetime.fromtimestamp(start_ms / 1000, tz=CHINA),
                end=datetime.fromtimestamp(end_ms / 1000, tz=CHINA))
    month = month_of(span.start, span.end)
    g = s.guiding["unit_product_energy"]
    if month is None:
        unit = load("unit_product_energy").make_result(None, span.start, span.end, target=g.target,
                                                       completeness=0.0)
        items.append(_item(unit, "guiding", g.better, "按月计算 a monthly figure: ask for a calendar month"))
    else:
        unit = load("unit_product_energy").feed(store, park, Month(month=month), ctx)
        items.append(_item(unit, "guiding", g.better, f"标杆产量占比 share of output at 标杆; [{g.confidence}] "
                                                      f"{g.source}"))
    for key in GUIDING_MODULES:
        r = load(key).feed(store, park, span, ctx)
        g = s.guiding[key]  # type: ignore[index]
        why = r.inputs.get("why_no_value")
        items.append(_item(r, "guiding", g.better, why if r.value is None and why else f"[{g.confidence}] {g.source}"))
    return core, items


class ZeroCarbonPark(Indicator[Span]):
    key = "zero_carbon_park"
    name_zh = "国家级零碳园区指标(1+5)"
    name_en = "National zero-carbon park indicators (1 + 5)"
    unit = "tCO2/tce"
    better = "lower"
    params = Span
    cli = "zero-carbon"

    def feed(self, store: Store, park: str, p: Span, ctx: Context) -> IndicatorResult:
        core, items = ctx.once(("zero_carbon_park", park, p.start_ms, p.end_ms),
                               lambda: zero_carbon_items(store, park, p.start_ms, p.end_ms, ctx))
        return self.make_result(core.value, p.start, p.end, target=core.target, completeness=core.completeness,
                                status=core.status,
                                inputs={"park": park, "indicators": items, "core": core.inputs,
                                        "met": sum(i["status"] == "met" for i in items), "of": len(items)},
                                method="the core indicator decides (单位能耗碳排放 ≤ its size band's threshold); "
                                       "the five guiding indicators are listed with their own targets")

    def report_section(self, result: IndicatorResult | None, report: dict[str, Any]) -> None:
        if result is None:
            return
        report[self.key] = result.to_json()
        report["zero_carbon"] = {"indicators": result.inputs["indicators"], "status": result.status}

    def summary_rows(self, report: dict[str, Any]) -> list[list[Any]] | None:
        from analytics.report.rows import STATUS_ZH, num, pct

        r = report.get(self.key)
        if r is None:
            return []
        return [[f"{ZeroCarbonCore.name_zh} {ZeroCarbonCore.name_en} (tCO₂/tce)", num(r["value"], 3),
                 "" if r["target"] is None else f"≤ {num(r['target'], 2)}", STATUS_ZH[r["status"]],
                 pct(r["completeness"])]]
