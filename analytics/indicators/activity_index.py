"""电力看经济 — the electricity-based activity index: a day's metered electricity consumption against
the enterprise's (or park's) own recent normal, as an index where 100 is normal.

Electricity is the economic figure a park has every day, long before the monthly statistics: a plant
running short shifts or standing still shows at once. Rules (pure: numbers in, numbers out):

- consumption of a day = import + on-site renewable generation − export (the same NES-1 definition the
  new-energy share uses), China calendar days;
- the baseline of day d is the mean consumption of the ``baseline_days`` days before it that have a
  value; with fewer than ``min_baseline_days`` of them there is no index (too little history to say
  what normal is), never a guess;
- index = 100 × consumption / baseline; a baseline of zero (a site that used nothing) gives no index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from analytics.indicators.base import IndicatorResult

METHOD = ("consumption = import + RE generation − export per China calendar day; baseline = mean of the "
          "previous {n} days with data (at least {m}); index = 100 × consumption / baseline")


@dataclass(frozen=True)
class DayIndex:
    day: str
    consumption_kwh: float | None
    baseline_kwh: float | None
    index: float | None


def compute_index(days: Sequence[tuple[str, float | None]], baseline_days: int = 28,
                  min_baseline_days: int = 7) -> list[DayIndex]:
    if baseline_days < 1 or not 1 <= min_baseline_days <= baseline_days:
        raise ValueError(f"baseline_days {baseline_days} / min_baseline_days {min_baseline_days}: need "
                         "1 <= min_baseline_days <= baseline_days")
    out: list[DayIndex] = []
    for i, (day, kwh) in enumerate(days):
        window = [v for _d, v in days[max(0, i - baseline_days):i] if v is not None]
        base = sum(window) / len(window) if len(window) >= min_baseline_days else None
        idx = None if kwh is None or base is None or base <= 0 else 100.0 * kwh / base
        out.append(DayIndex(day, kwh, base, idx))
    return out


class ElectricityActivityIndex:
    key = "electricity_activity_index"
    name_zh = "电力看经济指数"
    name_en = "Electricity-based activity index"
    unit = "index (100 = normal)"

    def result(self, series: list[DayIndex], start: datetime, end: datetime, baseline_days: int,
               min_baseline_days: int, scope: dict[str, Any]) -> IndicatorResult:
        last = next((d for d in reversed(series) if d.index is not None), None)
        with_data = sum(d.consumption_kwh is not None for d in series)
        return IndicatorResult(
            key=self.key, name_zh=self.name_zh, name_en=self.name_en,
            value=None if last is None else round(last.index or 0.0, 2), unit=self.unit,
            period_start=start, period_end=end, target=None,
            status="insufficient_data" if last is None else "no_target",
            completeness=with_data / len(series) if series else 0.0,
            inputs={**scope, "latest_day": None if last is None else last.day,
                    "days": [{"day": d.day, "consumption_kwh": d.consumption_kwh, "baseline_kwh": d.baseline_kwh,
                              "index": None if d.index is None else round(d.index, 2)} for d in series]},
            method=METHOD.format(n=baseline_days, m=min_baseline_days))
