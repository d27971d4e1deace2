"""万元工业增加值用水量 / 能耗 — water and energy per 10 000 yuan of industrial value added, and the
water target (2020 baseline, −13 % by 2025). Pure: amounts, value added and settings in.

Value added comes from the monthly economic figures (经济运行, entered or imported); water and energy
from meters. Lower is better: a value at or under the target is met.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from analytics.targets import defaults_section


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


class WaterIntensity:
    key = "water_intensity"
    name_zh = "万元工业增加值用水量"
    name_en = "Water per 10k yuan of industrial value added"
    unit = "m³/万元"


class EnergyIntensity:
    key = "energy_intensity"
    name_zh = "万元工业增加值能耗"
    name_en = "Energy per 10k yuan of industrial value added"
    unit = "tce/万元"
