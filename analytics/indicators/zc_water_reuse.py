"""工业用水重复利用率 — industrial water reuse rate, a guiding indicator of the national zero-carbon park
scheme (发改环资〔2025〕910号, target ≥80 % [V2]; analytics/zero_carbon.py).

rate = reused water / (reused water + fresh water taken in), over the period, from meters: the reused
(circulating, recycled) water by ``water.reuse.volume`` counters, the intake by the ``water.volume``
counters (the same ones the water intensity reads). A park without reused-water meters has no value,
and the result says which meters it needs; a meter that did not cover the period leaves the rate out
(a partial sum would flatter or hurt the park). Counters to volumes by analytics.meters (rollups where
current, readings after; resets counted from zero).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from analytics.indicators.base import Context, Indicator, IndicatorResult, Span, status_for
from analytics.meters import counter_totals
from analytics.zero_carbon import load_zero_carbon_settings, water_reuse_rate

if TYPE_CHECKING:
    from ingest.store.base import Store

Ratio = Callable[[float | None, float | None], float | None]


def metered_ratio(ind: Indicator[Any], store: Store, park: str, start_ms: int, end_ms: int, target_key: str,
                  carriers: dict[str, tuple[str, ...]], ratio: Ratio, method: str) -> IndicatorResult:
    """``ratio(part, other)`` of two metered carriers (``carriers``: the part first) over [start, end),
    against the guiding target ``target_key``; no value unless every meter of both covered the period."""
    guiding = load_zero_carbon_settings().guiding[target_key]  # type: ignore[index]
    totals, rep = counter_totals(store, park, carriers, start_ms, end_ms)
    (part, part_m), (other, other_m) = ((k, ms) for k, ms in carriers.items())
    counts = rep["meters"]
    missing = [f"{k} ({', '.join(ms)})" for k, ms in carriers.items() if not counts.get(k)]
    ok = not missing and not rep["uncovered"]
    value = ratio(totals[part], totals[other]) if ok else None
    meters = sum(counts.values())
    why = (f"no meter of {' and '.join(missing)}: register counters with that metric" if missing else
           f"meters not covering the period: {', '.join(rep['uncovered'])}" if rep["uncovered"] else None)
    start = datetime.fromtimestamp(start_ms / 1000, tz=UTC)
    end = datetime.fromtimestamp(end_ms / 1000, tz=UTC)
    return ind.make_result(
        None if value is None else round(value, 6), start, end, target=guiding.target,
        completeness=(meters - len(rep["uncovered"])) / meters if meters else 0.0,
        inputs={"park": park, f"{part}": totals[part] if ok else None, f"{other}": totals[other] if ok else None,
                "metrics": {part: list(part_m), other: list(other_m)}, "meters_per_carrier": counts,
                "meters_not_covering_period": rep["uncovered"], "counter_resets": rep["resets"],
                "source": rep["source"], "why_no_value": why, "target_source": guiding.source,
                "target_confidence": guiding.confidence},
        method=method, status=status_for(value, guiding.target, guiding.better))


class WaterReuseRate(Indicator[Span]):
    key = "water_reuse_rate"
    name_zh = "工业用水重复利用率"
    name_en = "Industrial water reuse rate"
    unit = "ratio"
    params = Span
    in_report = False  # in the report's zero-carbon section (zc_park)

    def feed(self, store: Store, park: str, p: Span, ctx: Context) -> IndicatorResult:
        ctx.park(store, park)
        return metered_ratio(self, store, park, p.start_ms, p.end_ms, "water_reuse_rate",
                             {"reused_m3": ("water.reuse.volume",), "intake_m3": ("water.volume",)},
                             water_reuse_rate, "reused water (m³) / (reused water + fresh water taken in) (m³), "
                             "from meters")
