"""Feed water and energy intensity for a month: water and energy from meters, value added from the
month's economic figures (given by the caller: the API reads them from the records), target from
the water settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from analytics.factors import Factors
from analytics.indicators.base import IndicatorResult, Status
from analytics.indicators.intensity import (
    EnergyIntensity,
    WaterIntensity,
    WaterIntensitySettings,
    intensity,
    load_water_settings,
    water_target,
)
from analytics.park_energy import compute_energy, counter_totals
from analytics.park_share import ShareStore
from parkmon.common.clock import CHINA


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[start, end) of ``YYYY-MM`` in China time."""
    try:
        y, m = int(month[:4]), int(month[5:7])
        start = datetime(y, m, 1, tzinfo=CHINA)
    except (ValueError, IndexError):
        raise ValueError(f"month {month!r} is not YYYY-MM (e.g. 2026-10)") from None
    return start, datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=CHINA)


def _status(value: float | None, target: float | None) -> Status:
    if value is None:
        return "insufficient_data"
    if target is None:
        return "no_target"
    return "met" if value <= target + 1e-9 else "below_target"  # lower is better


def compute_intensity(store: ShareStore, park: str, month: str, value_added_10k_yuan: float | None,
                      enterprise: str | None = None, water_settings: WaterIntensitySettings | None = None,
                      factors: Factors | None = None) -> tuple[IndicatorResult, IndicatorResult]:
    start, end = month_bounds(month)
    s_ms, e_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    ws = water_settings or load_water_settings()
    water, rep = counter_totals(store, park, {"water_m3": ("water.volume",)}, s_ms, e_ms, enterprise)
    meters = rep["meters"].get("water_m3", 0)
    water_m3 = water["water_m3"] if meters > len(rep["uncovered"]) else None  # some meter covered the month
    tce, _carbon = compute_energy(store, park, s_ms, e_ms, enterprise, factors)
    scope: dict[str, Any] = {"park": park, "enterprise": enterprise, "month": month,
                             "value_added_10k_yuan": value_added_10k_yuan}
    wv = intensity(water_m3, value_added_10k_yuan)
    tgt = water_target(start.year, ws)
    wi, ei = WaterIntensity(), EnergyIntensity()
    water_result = IndicatorResult(
        key=wi.key, name_zh=wi.name_zh, name_en=wi.name_en, value=None if wv is None else round(wv, 6),
        unit=wi.unit, period_start=start, period_end=end, target=None if tgt is None else round(tgt.value, 6),
        status=_status(wv, None if tgt is None else tgt.value),
        completeness=(meters - len(rep["uncovered"])) / meters if meters else 0.0,
        inputs={**scope, "water_m3": water_m3, "water_meters": meters,
                "meters_not_covering_period": rep["uncovered"], "counter_resets": rep["resets"],
                "target_basis": tgt.basis if tgt else None, "target_source": tgt.source if tgt else None},
        method="water (m³, meters) / industrial value added (万元, economic figures); met when at or below target")
    ev = intensity(tce.value, value_added_10k_yuan)
    energy_result = IndicatorResult(
        key=ei.key, name_zh=ei.name_zh, name_en=ei.name_en, value=None if ev is None else round(ev, 6),
        unit=ei.unit, period_start=start, period_end=end, target=None, status=_status(ev, None),
        completeness=tce.completeness, inputs={**scope, "tce": tce.value, "tce_method": tce.inputs["method"]},
        method="comprehensive energy (tce, GB/T 2589) / industrial value added (万元)")
    return water_result, energy_result
