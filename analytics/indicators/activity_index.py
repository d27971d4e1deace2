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

The feed reads the meters' counters (:mod:`analytics.meters`) into energy per China calendar day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Self

from pydantic import Field, model_validator

from analytics.counters import Reading
from analytics.indicators.base import Context, Indicator, IndicatorResult, Params
from analytics.meters import FLOW_METRICS, MeterStore, counted_once, pooled_flows
from analytics.targets import ShareSettings, load_share_settings
from parkmon.common.clock import CHINA

if TYPE_CHECKING:
    from ingest.store.base import Store

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


def day_edges(first: date, last: date) -> list[int]:
    """Epoch ms of China midnights from ``first`` to the day after ``last``."""
    return [int(datetime.combine(first + timedelta(days=i), time(), CHINA).timestamp() * 1000)
            for i in range((last - first).days + 2)]


def daily_consumption(store: MeterStore, park: str, first: date, last: date, enterprise: str | None = None,
                      settings: ShareSettings | None = None) -> list[tuple[str, float | None]]:
    """(day, kWh) per day; None for a day some meter did not cover (energy is never invented)."""
    s = settings or load_share_settings()
    hold = s.max_hold_minutes * 60_000
    edges = day_edges(first, last)
    wanted = [m for f in ("imp", "exp", "re_gen") for m in FLOW_METRICS[f]]
    pts = counted_once(store, park, store.points(park, metrics=wanted, enterprise=enterprise))
    data = store.readings([p.id for p in pts], edges[0] - hold, edges[-1] + hold)
    by_metric: dict[str, list[list[Reading]]] = {}
    for p in pts:
        by_metric.setdefault(p.metric or "", []).append(data.get(p.id, []))
    if not pts:
        return [((first + timedelta(days=i)).isoformat(), None) for i in range(len(edges) - 1)]
    flows, _resets = pooled_flows(by_metric, edges, hold)
    out: list[tuple[str, float | None]] = []
    for i in range(len(edges) - 1):
        imp, exp, gen = flows.imp[i], flows.exp[i], flows.re_gen[i]
        kwh = None if imp is None or exp is None or gen is None else imp + gen - exp
        out.append(((first + timedelta(days=i)).isoformat(), kwh))
    return out


class ActivityParams(Params):
    first: Annotated[date, Field(description="first day, YYYY-MM-DD (China calendar)")]
    last: Annotated[date, Field(description="last day, YYYY-MM-DD")]
    enterprise: Annotated[str | None, Field(description="one enterprise (default: the whole park)")] = None
    baseline_days: Annotated[int, Field(ge=1, le=365, description="days before a day whose mean is its normal")] = 28
    min_baseline_days: Annotated[int | None, Field(ge=1, le=365, description="fewest of them with data for an "
                                                   "index (default: 7, or baseline_days if less)")] = None

    @model_validator(mode="after")
    def _fits(self) -> Self:
        if self.last < self.first:
            raise ValueError(f"last day {self.last} is before first day {self.first}")
        if self.min_baseline_days is not None and self.min_baseline_days > self.baseline_days:
            raise ValueError(f"min_baseline_days {self.min_baseline_days} exceeds baseline_days {self.baseline_days}")
        return self


class ElectricityActivityIndex(Indicator[ActivityParams]):
    key = "electricity_activity_index"
    name_zh = "电力看经济指数"
    name_en = "Electricity-based activity index"
    unit = "index (100 = normal)"
    params = ActivityParams
    cli = "activity"
    in_report = False  # a daily series: the report's daily table has the electricity it stands on

    def feed(self, store: Store, park: str, p: ActivityParams, ctx: Context) -> IndicatorResult:
        ctx.park(store, park)
        return compute_activity(store, park, p.first, p.last, p.enterprise, p.baseline_days,
                                p.min_baseline_days or min(7, p.baseline_days), ctx.share_settings)

    def result(self, series: list[DayIndex], start: datetime, end: datetime, baseline_days: int,
               min_baseline_days: int, scope: dict[str, Any]) -> IndicatorResult:
        last = next((d for d in reversed(series) if d.index is not None), None)
        with_data = sum(d.consumption_kwh is not None for d in series)
        return self.make_result(
            None if last is None else round(last.index or 0.0, 2), start, end,
            completeness=with_data / len(series) if series else 0.0,
            inputs={**scope, "latest_day": None if last is None else last.day,
                    "days": [{"day": d.day, "consumption_kwh": d.consumption_kwh, "baseline_kwh": d.baseline_kwh,
                              "index": None if d.index is None else round(d.index, 2)} for d in series]},
            method=METHOD.format(n=baseline_days, m=min_baseline_days))


def compute_activity(store: MeterStore, park: str, first: date, last: date, enterprise: str | None = None,
                     baseline_days: int = 28, min_baseline_days: int = 7,
                     settings: ShareSettings | None = None) -> IndicatorResult:
    """The index for each day from ``first`` to ``last`` of a park already checked; the baseline looks
    back before ``first``."""
    if last < first:
        raise ValueError(f"last day {last} is before first day {first}")
    history_from = first - timedelta(days=baseline_days)
    days = daily_consumption(store, park, history_from, last, enterprise, settings)
    series: list[DayIndex] = compute_index(days, baseline_days, min_baseline_days)[baseline_days:]
    start = datetime.combine(first, time(), CHINA)
    end = datetime.combine(last + timedelta(days=1), time(), CHINA)
    return ElectricityActivityIndex().result(series, start, end, baseline_days, min_baseline_days,
                                             {"park": park, "enterprise": enterprise})
