"""Everything a park's monthly (or yearly) report to its regulator says: every registered indicator that
belongs in a report (``in_report``) over the period, each putting its section into one dict, and the
report's own tables (enterprises, daily electricity); written out as Excel and PDF by the neighbouring
modules.

Periods read the rollups as far as they are current (analytics.rollup_feed); pollutant compliance
reads the outlets' raw samples (HJ 212 validity is judged minute by minute). The counters of every
enterprise are read once for the whole report (:class:`~analytics.indicators.base.Context`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any, TypeVar, cast

from analytics.indicators.base import Context, month_bounds, registered
from analytics.indicators.comprehensive_energy import enterprise_energy
from analytics.meters import FLOW_METRICS, HOLD_MS, raw_flows
from analytics.rollup_feed import StepStore, plan, pooled_steps
from analytics.targets import ShareSettings
from ingest.store import Store
from parkmon.common.clock import CHINA, DAY_MS

Progress = Callable[[str], None]
T = TypeVar("T")


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """``YYYY-MM`` (a month) or ``YYYY`` (a year), China calendar, as [start, end)."""
    if len(period) == 4 and period.isdigit():
        y = int(period)
        return datetime(y, 1, 1, tzinfo=CHINA), datetime(y + 1, 1, 1, tzinfo=CHINA)
    try:
        return month_bounds(period)
    except ValueError:
        raise ValueError(f"period {period!r} is neither YYYY-MM (a month) nor YYYY (a year)") from None


def park_report(store: Store, park: str, period: str, progress: Progress | None = None,
                share_settings: ShareSettings | None = None) -> dict[str, Any]:
    """The park's report for ``period``; ``progress`` hears each section as it starts; ``share_settings``:
    the share's targets (``--targets``, as the API was given them; default: analytics/defaults.yaml)."""
    say = progress or (lambda _s: None)
    ctx = Context(share_settings=share_settings)
    info = ctx.park(store, park)
    start, end = period_bounds(period)
    s_ms, e_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    timings: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], T]) -> T:
        say(name)
        t0 = time.perf_counter()
        out = fn()
        timings[name] = round(time.perf_counter() - t0, 4)
        return out

    report: dict[str, Any] = {
        "park": park, "name_zh": getattr(info, "name_zh", park), "name_en": getattr(info, "name_en", park),
        "park_class": getattr(info, "park_class", "none"), "period": period,
        "period_start": start.isoformat(), "period_end": end.isoformat(),
        "generated_at": datetime.now(CHINA).isoformat(timespec="seconds"),
    }
    for ind in registered():
        if ind.in_report:
            figure = timed(f"{ind.name_zh} {ind.key}", partial(ind.for_report, store, park, start, end, period, ctx))
            ind.report_section(figure, report)
    per_ent = timed("企业 enterprises", lambda: enterprise_energy(store, park, s_ms, e_ms, ctx))
    report["enterprises"] = [{"enterprise": e, "tce": r[0].value, "co2_per_tce": r[1].value,
                              "co2_t": r[1].inputs.get("co2_t") if r[1].value is not None else None,
                              "electricity_kwh": _kwh(r[0].inputs["use"]), "completeness": r[0].completeness}
                             for e, r in per_ent.items()]
    report["daily"] = timed("每日 daily", lambda: daily_energy(store, park, s_ms, e_ms))
    report["timings_s"] = timings
    return report


def _kwh(use: dict[str, float]) -> float:
    return use["grid_import_kwh"] + use["renewable_generation_kwh"] - use["grid_export_kwh"]


def daily_energy(store: Store, park: str, s_ms: int, e_ms: int) -> list[dict[str, Any]]:
    """Per China day: electricity used (import + RE - export) and RE used on site (RE - export, at most
    RE), in kWh; None for a day some meter did not cover. The report's chart."""
    pts = store.points(park, metrics=[m for ms in FLOW_METRICS.values() for m in ms])
    pl = plan(cast(StepStore, store), "auto", s_ms, e_ms, DAY_MS)
    metric_flow = {m: f for f, ms in FLOW_METRICS.items() for m in ms}
    if pl.level is not None and pl.split_ms >= e_ms:
        ids: dict[str, list[int]] = {f: [] for f in FLOW_METRICS}
        for p in pts:
            ids[metric_flow[p.metric or ""]].append(p.id)
        series, _r, _a, _b = pooled_steps(cast(StepStore, store), ids, s_ms, e_ms, DAY_MS, pl.level)
        first = s_ms
    else:  # an open period: days from the readings (a report is normally of a closed one)
        flows, _r, lo, _hi = raw_flows(store, pts, s_ms, e_ms, DAY_MS, HOLD_MS)
        series = {f: list(getattr(flows, f)) for f in ("imp", "exp", "re_gen")}
        first = lo
    out = []
    for i in range(len(series["imp"])):
        imp, exp, gen = series["imp"][i], series["exp"][i], series["re_gen"][i]
        used = re_used = None
        if imp is not None and exp is not None and gen is not None:
            used, re_used = imp + gen - exp, max(0.0, gen - exp)
        day = datetime.fromtimestamp((first + i * DAY_MS) / 1000, tz=CHINA).date().isoformat()
        out.append({"day": day, "electricity_kwh": used, "re_used_kwh": re_used})
    return out
