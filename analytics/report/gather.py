"""Everything a park's monthly (or yearly) report to its regulator says, from the indicator functions
the API and CLI use: one dict, written out as Excel and PDF by the neighbouring modules.

Periods read the rollups as far as they are current (analytics.rollup_feed); pollutant compliance
reads the outlets' raw samples (HJ 212 validity is judged minute by minute).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from analytics.factors import load_factors
from analytics.indicators.comprehensive_energy import clean_energy_share
from analytics.indicators.digitalisation import rate
from analytics.indicators.digitalisation import settings as digitalisation_settings
from analytics.indicators.key_energy_users import THRESHOLD_TCE, rank
from analytics.indicators.pue import TARGET as PUE_TARGET
from analytics.indicators.pue import pue
from analytics.park_compliance import compute_compliance
from analytics.park_energy import energy_results, park_use, totals_by_enterprise, uses_by_enterprise
from analytics.park_intensity import compute_intensity, month_bounds
from analytics.park_share import FLOW_METRICS, compute_park_share, raw_flows, require_park
from analytics.rollup_feed import StepStore, plan, pooled_steps
from ingest.records import economy, registry
from ingest.store import Store
from parkmon.common.clock import CHINA, DAY_MS

Progress = Callable[[str], None]


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """``YYYY-MM`` (a month) or ``YYYY`` (a year), China calendar, as [start, end)."""
    if len(period) == 4 and period.isdigit():
        y = int(period)
        return datetime(y, 1, 1, tzinfo=CHINA), datetime(y + 1, 1, 1, tzinfo=CHINA)
    try:
        return month_bounds(period)
    except ValueError:
        raise ValueError(f"period {period!r} is neither YYYY-MM (a month) nor YYYY (a year)") from None


def park_report(store: Store, park: str, period: str, progress: Progress | None = None) -> dict[str, Any]:
    """The park's report for ``period``; ``progress`` hears each section as it starts."""
    say = progress or (lambda _s: None)
    info = require_park(store, park)
    start, end = period_bounds(period)
    s_ms, e_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    timings: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        say(name)
        t0 = time.perf_counter()
        out = fn()
        timings[name] = round(time.perf_counter() - t0, 4)
        return out

    share = timed("新能源消纳比例 share", lambda: compute_park_share(store, park, s_ms, e_ms))
    uses = timed("综合能耗 energy", lambda: uses_by_enterprise(store, park, s_ms, e_ms))
    f = load_factors()
    tce, carbon = energy_results(*park_use(uses), park, None, s_ms, e_ms, f)
    clean = clean_energy_share(share.inputs.get("numerator"), tce.value, f.tce.electricity_equivalent.value)
    per_ent = {e: energy_results(u, r, park, e, s_ms, e_ms, f) for e, (u, r) in uses.items()}
    days = (e_ms - s_ms) / DAY_MS
    key_users = rank({e: r[0].value for e, r in per_ent.items()}, days, THRESHOLD_TCE)
    intensity = timed("强度 intensity", lambda: _intensity(store, park, period)) if len(period) == 7 else None
    dcs = timed("PUE", lambda: _pue(store, park, s_ms, e_ms))
    digit = timed("数字化率 digitalisation", lambda: _digitalisation(store, park, s_ms))
    compliance = timed("污染物达标 compliance", lambda: compute_compliance(store, park, s_ms, e_ms))
    daily = timed("每日 daily", lambda: daily_energy(store, park, s_ms, e_ms))
    return {
        "park": park, "name_zh": getattr(info, "name_zh", park), "name_en": getattr(info, "name_en", park),
        "park_class": getattr(info, "park_class", "none"), "period": period,
        "period_start": start.isoformat(), "period_end": end.isoformat(),
        "generated_at": datetime.now(CHINA).isoformat(timespec="seconds"),
        "new_energy_share": share.to_json(), "clean_energy_share_tce": clean,
        "comprehensive_energy": tce.to_json(), "carbon_per_tce": carbon.to_json(),
        "enterprises": [{"enterprise": e, "tce": r[0].value, "co2_per_tce": r[1].value,
                         "co2_t": r[1].inputs.get("co2_t") if r[1].value is not None else None,
                         "electricity_kwh": _kwh(r[0].inputs["use"]), "completeness": r[0].completeness}
                        for e, r in per_ent.items()],
        "key_energy_users": [vars(u) for u in key_users], "key_energy_threshold_tce": THRESHOLD_TCE,
        "intensity": intensity, "data_centres": dcs, "digitalisation": digit, "pollutant_compliance": compliance,
        "daily": daily, "timings_s": timings,
    }


def _kwh(use: dict[str, float]) -> float:
    return use["grid_import_kwh"] + use["renewable_generation_kwh"] - use["grid_export_kwh"]


def _intensity(store: Store, park: str, month: str) -> dict[str, Any]:
    with store.engine.connect() as conn:
        figs = economy.figures(conn, park, month, month)
    filed = {f["enterprise"]: f["value_added"] for f in figs if f["value_added"] is not None}
    metered = {p.enterprise for p in store.points(park, metrics=["water.volume", "elec.import.energy"])}
    missing = sorted(metered - set(filed))
    value_added = None if missing or not filed else sum(filed.values())
    water, energy = compute_intensity(store, park, month, value_added)
    return {"water": water.to_json(), "energy": energy.to_json(), "value_added_10k_yuan": value_added,
            "enterprises_without_value_added": missing}


def _pue(store: Store, park: str, s_ms: int, e_ms: int) -> list[dict[str, Any]]:
    carriers = {"imp": ("elec.import.energy",), "exp": ("elec.export.energy",),
                "gen": ("pv.generation.energy", "wind.generation.energy"), "it": ("elec.it.energy",)}
    with_it = {p.enterprise for p in store.points(park, metrics=["elec.it.energy"])}
    if not with_it:
        return []
    out = []
    for ent, (t, rep) in totals_by_enterprise(store, park, carriers, s_ms, e_ms).items():
        if ent not in with_it:
            continue
        ok = not rep["uncovered"]
        ratio = pue(t["imp"] + t["gen"] - t["exp"], t["it"]) if ok else None
        out.append({"enterprise": ent, "value": None if ratio is None else round(ratio, 4), "target": PUE_TARGET,
                    "status": "insufficient_data" if ratio is None else
                    ("met" if ratio <= PUE_TARGET + 1e-9 else "below_target")})
    return out


def _digitalisation(store: Store, park: str, since_ms: int) -> dict[str, Any]:
    with store.engine.connect() as conn:
        devs = registry.production_devices(conn, park, since_ms)
    reporting = sum(bool(d["reporting"]) for d in devs)
    target = float(digitalisation_settings()["target"])
    value = rate(reporting, len(devs))
    return {"value": value, "registered": len(devs), "reporting": reporting, "target": target,
            "status": "insufficient_data" if value is None else ("met" if value >= target - 1e-9 else "below_target")}


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
        flows, _r, lo, _hi = raw_flows(store, pts, s_ms, e_ms, DAY_MS, 5 * 60_000)
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
