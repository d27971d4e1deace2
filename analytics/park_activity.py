"""Feed the electricity activity index (电力看经济) from stored readings: counters → energy per
China calendar day → consumption per day → index against the recent normal."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from analytics.counters import Reading
from analytics.indicators.activity_index import DayIndex, ElectricityActivityIndex, compute_index
from analytics.indicators.base import IndicatorResult
from analytics.park_share import FLOW_METRICS, ShareStore, pooled_flows, require_park
from analytics.targets import ShareSettings, load_share_settings
from parkmon.common.clock import CHINA


def day_edges(first: date, last: date) -> list[int]:
    """Epoch ms of China midnights from ``first`` to the day after ``last``."""
    return [int(datetime.combine(first + timedelta(days=i), time(), CHINA).timestamp() * 1000)
            for i in range((last - first).days + 2)]


def daily_consumption(store: ShareStore, park: str, first: date, last: date, enterprise: str | None = None,
                      settings: ShareSettings | None = None) -> list[tuple[str, float | None]]:
    """(day, kWh) per day; None for a day some meter did not cover (energy is never invented)."""
    s = settings or load_share_settings()
    hold = s.max_hold_minutes * 60_000
    edges = day_edges(first, last)
    wanted = [m for f in ("imp", "exp", "re_gen") for m in FLOW_METRICS[f]]
    pts = store.points(park, metrics=wanted, enterprise=enterprise)
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


def compute_activity(store: ShareStore, park: str, first: date, last: date, enterprise: str | None = None,
                     baseline_days: int = 28, min_baseline_days: int = 7,
                     settings: ShareSettings | None = None) -> IndicatorResult:
    """The index for each day from ``first`` to ``last``; the baseline looks back before ``first``."""
    if last < first:
        raise ValueError(f"last day {last} is before first day {first}")
    require_park(store, park)
    history_from = first - timedelta(days=baseline_days)
    days = daily_consumption(store, park, history_from, last, enterprise, settings)
    series: list[DayIndex] = compute_index(days, baseline_days, min_baseline_days)[baseline_days:]
    start = datetime.combine(first, time(), CHINA)
    end = datetime.combine(last + timedelta(days=1), time(), CHINA)
    return ElectricityActivityIndex().result(series, start, end, baseline_days, min_baseline_days,
                                             {"park": park, "enterprise": enterprise})
