"""万元工业增加值用水量 / 能耗 — water and energy per 10 000 yuan of industrial value added, and the
water target (2020 baseline, −13 % by 2025). Pure: amounts, value added and settings in.

Value added comes from the monthly economic figures (经济运行, entered or imported); water and energy
from meters. Lower is better: a value at or under the target is met. For the whole park every enterprise
with water or energy meters must have filed its value added, or there is no value (a partial sum would
flatter it); the result lists those that have not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from analytics.factors import Factors
from analytics.indicators.base import Context, Indicator, IndicatorResult, Month, month_bounds, status_for
from analytics.indicators.comprehensive_energy import energy_figures
from analytics.meters import MeterStore, counter_totals
from analytics.targets import defaults_section
from ingest.store.records import economy

if TYPE_CHECKING:
    from ingest.store.base import Store


class WaterIntensitySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    baseline_year: int = Field(ge=2000, le=2100)
    baseline: float = Field(gt=0)  # m³ per 万元
    baseline_source: str = Field(min_length=1)
    reductions: dict[int, float]  # year -> fraction below the baseline
    reductions_source: str = Field(min_length=1)


def load_water_settings(override: str | Path | None = None) -> WaterIntensitySettings:
    doc = defaults_section("water_intensity")
    if override is not None:
        extra = (yaml.safe_load(Path(override).read_text(encoding="utf-8")) or {}).get("water_intensity", {})
        if "baseline" in extra and "baseline_source" not in extra:
            extra = {**extra, "baseline_source": f"{override} (park configuration)"}
        doc = {**doc, **extra}
    return WaterIntensitySettings.model_validate(doc)


@dataclass(frozen=True)
class IntensityTarget:
    value: float
    basis: str
    source: str


def intensity(amount: float | None, value_added_10k_yuan: float | None) -> float | None:
    """Amount per 万元; None without value added (or none worth dividing by)."""
    if amount is None or value_added_10k_yuan is None or value_added_10k_yuan <= 0:
        return None
    return amount / value_added_10k_yuan


def water_target(year: int, s: WaterIntensitySettings) -> IntensityTarget | None:
    """The baseline less the reduction of the year: straight line from the baseline year (0 %) to each
    milestone, held after the last; no target before the baseline year."""
    if year < s.baseline_year:
        return None
    points = {s.baseline_year: 0.0, **s.reductions}
    years = sorted(points)
    if year >= years[-1]:
        r, basis = points[years[-1]], f"held from {years[-1]} (−{points[years[-1]]:.0%})"
    else:
        lo = max(y for y in years if y <= year)
        hi = min(y for y in years if y > year)
        r = points[lo] + (points[hi] - points[lo]) * (year - lo) / (hi - lo)
        basis = f"straight line {lo} −{points[lo]:.0%} → {hi} −{points[hi]:.0%}"
    return IntensityTarget(s.baseline * (1 - r), f"{s.baseline} m³/万元 ({s.baseline_year}) × (1 − {r:.4f}); {basis}",
                           f"{s.baseline_source}; {s.reductions_source}")


# --- the feed ---------------------------------------------------------------------------------------------
def value_added(store: Store, park: str, month: str, enterprise: str | None = None) -> tuple[float | None, list[str]]:
    """The month's value added (万元) of the park or one enterprise, from the economic figures; None unless
    every metered enterprise filed it. And the metered enterprises that did not."""
    figs = economy.figures(store, park, month, month, enterprise)
    filed = {f["enterprise"]: f["value_added"] for f in figs if f["value_added"] is not None}
    metered = {p.enterprise for p in store.points(park, metrics=["water.volume", "elec.import.energy"],
                                                  enterprise=enterprise)}
    missing = sorted(metered - set(filed))
    return (None if missing or not filed else sum(filed.values())), missing


def compute_intensity(store: MeterStore, park: str, month: str, value_added_10k_yuan: float | None,
                      enterprise: str | None = None, water_settings: WaterIntensitySettings | None = None,
                      factors: Factors | None = None) -> tuple[IndicatorResult, IndicatorResult]:
    """Water and energy intensity of a park already checked (or one enterprise) for ``month``."""
    start, end = month_bounds(month)
    s_ms, e_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    ws = water_settings or load_water_settings()
    water, rep = counter_totals(store, park, {"water_m3": ("water.volume",)}, s_ms, e_ms, enterprise)
    meters = rep["meters"].get("water_m3", 0)
    water_m3 = water["water_m3"] if meters > len(rep["uncovered"]) else None  # some meter covered the month
    tce, _carbon = energy_figures(store, park, s_ms, e_ms, enterprise, factors)
    scope: dict[str, Any] = {"park": park, "enterprise": enterprise, "month": month,
                             "value_added_10k_yuan": value_added_10k_yuan}
    wv = intensity(water_m3, value_added_10k_yuan)
    tgt = water_target(start.year, ws)
    water_result = WaterIntensity().make_result(
        None if wv is None else round(wv, 6), start, end, target=None if tgt is None else round(tgt.value, 6),
        completeness=(meters - len(rep["uncovered"])) / meters if meters else 0.0,
        inputs={**scope, "water_m3": water_m3, "water_meters": meters,
                "meters_not_covering_period": rep["uncovered"], "counter_resets": rep["resets"],
                "target_basis": tgt.basis if tgt else None, "target_source": tgt.source if tgt else None},
        method="water (m³, meters) / industrial value added (万元, economic figures); met when at or below target",
        # judged unrounded: the rounding is for show
        status=status_for(wv, None if tgt is None else tgt.value, WaterIntensity.better))
    ev = intensity(tce.value, value_added_10k_yuan)
    energy_result = EnergyIntensity().make_result(
        None if ev is None else round(ev, 6), start, end, completeness=tce.completeness,
        inputs={**scope, "tce": tce.value, "tce_method": tce.inputs["method"]},
        method="comprehensive energy (tce, GB/T 2589) / industrial value added (万元)")
    return water_result, energy_result


class IntensityParams(Month):
    enterprise: Annotated[str | None, Field(description="one enterprise (default: the whole park)")] = None


def _figures(store: Store, park: str, p: IntensityParams, ctx: Context) -> tuple[IndicatorResult, IndicatorResult]:
    """Both indicators from one read: the second one asked in a request finds it done."""
    ctx.park(store, park)

    def compute() -> tuple[IndicatorResult, IndicatorResult]:
        va, missing = value_added(store, park, p.month, p.enterprise)
        water, energy = compute_intensity(store, park, p.month, va, p.enterprise, factors=ctx.factors)
        for r in (water, energy):
            r.inputs["enterprises_without_value_added"] = missing
        return water, energy

    return ctx.once(("intensity", park, p), compute)


class WaterIntensity(Indicator[IntensityParams]):
    key = "water_intensity"
    name_zh = "万元工业增加值用水量"
    name_en = "Water per 10k yuan of industrial value added"
    unit = "m³/万元"
    better = "lower"
    params = IntensityParams
    companions = ("energy_intensity",)
    cli = "intensity"

    def feed(self, store: Store, park: str, p: IntensityParams, ctx: Context) -> IndicatorResult:
        return _figures(store, park, p, ctx)[0]

    def report_section(self, result: IndicatorResult | None, report: dict[str, Any]) -> None:
        report["intensity"] = None if result is None else {
            "water": result.to_json(), "energy": None, "value_added_10k_yuan": result.inputs["value_added_10k_yuan"],
            "enterprises_without_value_added": result.inputs["enterprises_without_value_added"]}

    def summary_rows(self, report: dict[str, Any]) -> list[list[Any]] | None:
        from analytics.report.rows import STATUS_ZH, num, pct

        if not report["intensity"]:
            return []
        w = report["intensity"]["water"]
        return [["万元工业增加值用水量 Water intensity (m³/万元)", num(w["value"], 3), num(w["target"], 3),
                 STATUS_ZH[w["status"]], pct(w["completeness"])]]


class EnergyIntensity(Indicator[IntensityParams]):
    key = "energy_intensity"
    name_zh = "万元工业增加值能耗"
    name_en = "Energy per 10k yuan of industrial value added"
    unit = "tce/万元"
    better = "lower"
    params = IntensityParams
    cli = None  # `parkmon indicators intensity` prints it with the water intensity

    def feed(self, store: Store, park: str, p: IntensityParams, ctx: Context) -> IndicatorResult:
        return _figures(store, park, p, ctx)[1]

    def report_section(self, result: IndicatorResult | None, report: dict[str, Any]) -> None:
        if result is not None and report.get("intensity"):
            report["intensity"]["energy"] = result.to_json()

    def summary_rows(self, report: dict[str, Any]) -> list[list[Any]] | None:
        from analytics.report.rows import STATUS_ZH, num, pct

        if not report["intensity"]:
            return []
        e = report["intensity"]["energy"]
        return [["万元工业增加值能耗 Energy intensity (tce/万元)", num(e["value"], 4), "", STATUS_ZH[e["status"]],
                 pct(e["completeness"])]]
