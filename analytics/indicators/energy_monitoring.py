"""重点用能单位能耗在线监测 — the 15-minute, daily and monthly energy figures an enterprise uploads to the
provincial key-energy-user online monitoring platform, with the platform's data-quality checks.

Sources (docs/indicators/energy-monitoring.md):
- 《重点用能单位能耗在线监测系统技术规范 第6部分：端设备技术规范》: real-time figures every 15 minutes (the
  standard frequency; 30 min or 1 h allowed where 15 min is hard), daily and monthly figures.
- 重点用能单位能耗在线监测系统上传数据质量要求: completeness (data uploaded / data due) ≥ 90 %; daily figures
  within 5 % of the monthly figure; days start at 00:00 and months on the 1st (we sit on the edges exactly).
- GB/T 38692-2020 《用能单位能耗在线监测技术要求》: what is metered (the energy carriers) and how.

Per energy carrier of the enterprise (its meters pooled): a quarter hour's figure is its counters' advance
between the quarter's edges, each edge interpolated between readings no more than 15 minutes apart (a longer
gap leaves its quarters missing: collected, not estimated); a day's figure is the sum of its collected
quarters; the month's is the counters' advance from the month's first instant to its last (a gap inside is
bridged: it is what the meter itself says, as on a bill). So the daily-vs-monthly check fails exactly when
the energy in uncollected quarters exceeds 5 % of the month. The counters are read from the 1-minute rollups
(each minute's first and last reading) where they are current and from the raw readings after.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import Field

from analytics.counters import Reading, edges, interval_energy
from analytics.indicators.base import Context, Indicator, IndicatorResult, Month, month_bounds
from analytics.indicators.comprehensive_energy import CARRIERS
from analytics.meters import HOLD_MS, counted_once
from parkmon.common.clock import CHINA
from parkmon.common.clock import now_ms as clock_now_ms

if TYPE_CHECKING:
    from ingest.store.base import Store

QUARTER_MS = 15 * 60_000
DAY_MS = 86_400_000
MINUTE_MS = 60_000
MAX_METERS = 100  # energy meters of one enterprise read by one request (a month each)
COMPLETENESS_MIN = 0.90  # 实际采集上传数据个数/应采集上传数据个数 ≥ 90 %
DAILY_VS_MONTH_MAX = 0.05  # 日报数据与月报数据之间的偏差应在 5% 以内
SOURCE = ("《重点用能单位能耗在线监测系统技术规范 第6部分：端设备技术规范》(15-minute real-time figures); "
          "重点用能单位能耗在线监测系统上传数据质量要求 (completeness ≥ 90 %, daily vs monthly within 5 %); "
          "GB/T 38692-2020 《用能单位能耗在线监测技术要求》")
CARRIER_NAMES: dict[str, tuple[str, str, str]] = {  # carrier -> (zh, en, unit)
    "grid_import_kwh": ("电网购电", "Grid electricity bought", "kWh"),
    "grid_export_kwh": ("上网电量", "Electricity fed to the grid", "kWh"),
    "renewable_generation_kwh": ("可再生能源发电", "Renewable generation", "kWh"),
    "natural_gas_m3": ("天然气", "Natural gas", "m³"),
    "coal_t": ("煤炭", "Coal", "t"),
    "steam_t": ("蒸汽", "Steam", "t"),
    "heat_gj": ("热力", "Heat", "GJ"),
}


@dataclass(frozen=True)
class CarrierFigures:
    carrier: str
    meters: list[str]
    quarters: list[float | None]  # every quarter hour of the month from 00:00 on the 1st (None: not collected)
    days: list[float | None]  # the sum of each day's collected quarters (None: none collected, or not yet due)
    month: float | None  # the counters' advance over the month (None: they do not cover it)
    due: int  # quarters already over (the month so far)
    collected: int  # of those, with a figure

    @property
    def completeness(self) -> float:
        return self.collected / self.due if self.due else 0.0

    @property
    def daily_vs_month(self) -> float | None:
        """|Σ daily − month| / month; None when the month has no figure (or is 0 while the days are too)."""
        total = sum(d for d in self.days if d is not None)
        if self.month is None:
            return None
        if self.month == 0:
            return 0.0 if total == 0 else None
        return abs(total - self.month) / abs(self.month)


def counter_series(store: Store, point_ids: list[int], start_ms: int, end_ms: int) -> dict[int, list[Reading]]:
    """Each counter's readings around [start, end): the 1-minute rollups' first and last reading of each
    minute where the rollups are current (a month of a meter is 43 200 rows, not its every sample), the
    raw readings after."""
    lo, hi = start_ms - HOLD_MS, end_ms + HOLD_MS
    backlog = store.rollup_backlog_from()
    split = max(lo, min(hi, hi if backlog is None else backlog)) // MINUTE_MS * MINUTE_MS
    out: dict[int, list[Reading]] = {pid: [] for pid in point_ids}
    if split > lo:
        for pid, rows in store.rollups(point_ids, lo, split, "1m").items():
            for r in rows:
                for ts, v in ((r.first_ts_ms, r.first), (r.last_ts_ms, r.last)):
                    if ts is not None and v is not None:
                        out[pid].append((ts, v, 0))  # the rollups keep good readings only
    if split < hi:
        for pid, readings in store.readings(point_ids, split, hi).items():
            out[pid].extend(readings)
    return out


def _add(total: list[float | None], part: list[float | None]) -> list[float | None]:
    """Meters of one carrier summed interval by interval; missing where any meter is."""
    return [None if a is None or b is None else a + b for a, b in zip(total, part, strict=True)]


def carrier_figures(carrier: str, meters: list[str], readings: Iterable[list[Reading]], start_ms: int,
                    end_ms: int, now_ms: int) -> CarrierFigures:
    """Pure: one carrier's figures of a month from its meters' readings (an iterable, consumed meter by
    meter: one meter's month is in memory at a time)."""
    quarter_edges = edges(start_ms, end_ms, QUARTER_MS)
    quarters: list[float | None] = [0.0] * (len(quarter_edges) - 1)
    month: float | None = 0.0
    for r in readings:
        quarters = _add(quarters, interval_energy(r, quarter_edges, HOLD_MS, max_gap_ms=QUARTER_MS)[0])
        (advance,) = interval_energy(r, [start_ms, end_ms], HOLD_MS)[0]
        month = None if month is None or advance is None else month + advance
    due = sum(1 for e in quarter_edges[1:] if e <= now_ms)
    quarters = [q if i < due else None for i, q in enumerate(quarters)]
    per_day = DAY_MS // QUARTER_MS
    days: list[float | None] = []
    for d in range(0, len(quarters), per_day):
        got = [q for q in quarters[d:d + per_day] if q is not None]
        days.append(sum(got) if got else None)
    return CarrierFigures(carrier, meters, quarters, days, month if end_ms <= now_ms else None, due,
                          sum(q is not None for q in quarters))


class MonitoringParams(Month):
    enterprise: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$",
                            description="the key energy user (an enterprise of the park)")


class EnergyMonitoring(Indicator[MonitoringParams]):
    """Value: the month's 15-minute completeness, the worst carrier's (its target: the platform's 90 %)."""

    key = "energy_monitoring"
    name_zh = "重点用能单位能耗在线监测数据"
    name_en = "Key energy user online monitoring figures (15 min / day / month)"
    unit = "ratio"
    params = MonitoringParams
    in_report = False  # one enterprise's upload, not a park figure: `parkmon energy-monitoring`, the API

    def feed(self, store: Store, park: str, p: MonitoringParams, ctx: Context) -> IndicatorResult:
        ctx.park(store, park)
        start, end = month_bounds(p.month)
        start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
        pts = counted_once(store, park, store.points(park, metrics=[m for ms in CARRIERS.values() for m in ms],
                                                     enterprise=p.enterprise))
        if not pts and not store.points(park, enterprise=p.enterprise):
            raise LookupError(f"enterprise {p.enterprise!r} has no points in park {park!r}: check its key "
                              f"(GET /api/v1/parks/{park}/devices lists the enterprises and their devices)")
        if len(pts) > MAX_METERS:  # a request's work is bounded: a month of each meter is read in turn
            raise ValueError(f"enterprise {p.enterprise!r} has {len(pts)} energy meters, more than the "
                             f"{MAX_METERS} one request reads; ask parkmon's operators to raise MAX_METERS")
        now = clock_now_ms()
        figures = []
        for carrier, metrics in CARRIERS.items():
            mine = [q for q in pts if q.metric in metrics]
            if mine:
                series = (counter_series(store, [q.id], start_ms, end_ms)[q.id] for q in mine)
                figures.append(carrier_figures(carrier, [q.key for q in mine], series, start_ms, end_ms, now))
        worst = min((f.completeness for f in figures), default=None)
        checks = [_checks(f) for f in figures]
        return self.make_result(worst, start, end, target=COMPLETENESS_MIN,
                                completeness=worst or 0.0,
                                inputs={"park": park, "enterprise": p.enterprise, "month": p.month,
                                        "source": SOURCE, "carriers": [_carrier_json(f, start_ms) for f in figures],
                                        "checks": checks, "passed": all(c["passed"] for c in checks) and bool(checks)},
                                method="15-minute counter advance per carrier (edges interpolated across gaps of at "
                                       "most 15 min); day = Σ collected quarters; month = counter advance over "
                                       "the month; completeness = collected / due quarters ≥ 90 %; "
                                       "|Σ days − month| / month ≤ 5 %")


def _checks(f: CarrierFigures) -> dict[str, Any]:
    dev = f.daily_vs_month
    complete_ok = f.due > 0 and f.completeness >= COMPLETENESS_MIN
    consistent_ok = dev is not None and dev <= DAILY_VS_MONTH_MAX
    zh, en, _unit = CARRIER_NAMES[f.carrier]
    return {"carrier": f.carrier, "name_zh": zh, "name_en": en,
            "completeness": f.completeness, "quarters_due": f.due, "quarters_collected": f.collected,
            "completeness_min": COMPLETENESS_MIN, "completeness_ok": complete_ok,
            "daily_vs_month": dev, "daily_vs_month_max": DAILY_VS_MONTH_MAX, "daily_vs_month_ok": consistent_ok,
            "passed": complete_ok and consistent_ok}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, CHINA).isoformat(timespec="minutes")


def _carrier_json(f: CarrierFigures, start_ms: int) -> dict[str, Any]:
    zh, en, unit = CARRIER_NAMES[f.carrier]
    return {"carrier": f.carrier, "name_zh": zh, "name_en": en, "unit": unit, "meters": f.meters,
            "month": f.month, "first_day": _iso(start_ms), "days": f.days,
            "first_quarter": _iso(start_ms), "quarters": f.quarters}
