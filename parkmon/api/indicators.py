"""Indicator routes: the new-energy share of a park over a period, against its target."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request

from analytics.factors import load_factors
from analytics.indicators.comprehensive_energy import ElectricityMethod, SteamMethod, clean_energy_share
from analytics.indicators.digitalisation import Digitalisation, rate
from analytics.indicators.digitalisation import settings as digitalisation_settings
from analytics.indicators.key_energy_users import SOURCE as KEY_SOURCE
from analytics.indicators.key_energy_users import THRESHOLD_TCE, KeyEnergyUsers, rank
from analytics.indicators.pue import SOURCE as PUE_SOURCE
from analytics.indicators.pue import TARGET as PUE_TARGET
from analytics.indicators.pue import Pue, pue
from analytics.indicators.unit_energy import LEVEL_ZH, UnitEnergy, assess, benchmarks, share_at_benchmark
from analytics.park_activity import compute_activity
from analytics.park_compliance import compute_compliance
from analytics.park_energy import compute_energy, counter_totals, energy_by_enterprise
from analytics.park_intensity import compute_intensity, month_bounds
from analytics.park_share import compute_park_share
from analytics.targets import ShareSettings
from ingest.records import economy, registry
from parkmon.api.deps import StoreDep, require_park
from parkmon.common.clock import CHINA

router = APIRouter(tags=["indicators"])

Period = Literal["today", "month", "year", "24h"]


def period_bounds(period: Period, now: datetime) -> tuple[datetime, datetime]:
    local = now.astimezone(CHINA)
    if period == "24h":
        return now - timedelta(hours=24), now
    if period == "today":
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    elif period == "month":
        start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    else:
        start = local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return start, now


def window(start: datetime | None, end: datetime | None, period: Period, now: datetime) -> tuple[datetime, datetime]:
    """The period asked for: explicit start/end (with a UTC offset), else the named period up to now."""
    for name, value in (("start", start), ("end", end)):
        if value is not None and value.tzinfo is None:
            raise HTTPException(422, f"{name} {value.isoformat()} has no UTC offset; add one, e.g. +08:00 or Z")
    if start is None:
        start, default_end = period_bounds(period, now)
        end = end or default_end
    end = end or now
    if end <= start:
        raise HTTPException(422, f"end {end.isoformat()} is not after start {start.isoformat()}")
    return start, end


@router.get("/parks/{park}/indicators/new-energy-share",
            summary="New-energy consumption share vs target (新能源消纳比例)")
def new_energy_share(
    request: Request, store: StoreDep, park: str,
    start: Annotated[datetime | None, Query(description="ISO 8601 with offset; default: by period")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601 with offset; default: now")] = None,
    period: Annotated[Period, Query(description="used when start is not given (Asia/Shanghai calendar)")] = "today",
    interval_s: Annotated[int | None, Query(ge=1, le=86400, description="attribution interval")] = None,
    green_purchase_kwh: Annotated[float, Query(ge=0)] = 0.0,
    certificates_sold_kwh: Annotated[float, Query(ge=0)] = 0.0,
    enterprise: Annotated[str | None, Query(description="one enterprise's own meters; default: the park")] = None,
) -> dict[str, Any]:
    now = datetime.fromtimestamp(time.time(), tz=CHINA)
    start, end = window(start, end, period, now)
    settings: ShareSettings | None = request.app.state.share_settings
    try:
        result = compute_park_share(store, park, int(start.timestamp() * 1000), int(end.timestamp() * 1000),
                                    settings, interval_s * 1000 if interval_s else None,
                                    green_purchase_kwh, certificates_sold_kwh, enterprise=enterprise)
    except LookupError as exc:
        raise HTTPException(404, f"{exc}; GET /api/v1/parks lists the parks") from None
    out = result.to_json()
    # 清洁能源消费占比: the same renewable electricity over all energy in tce, kept apart from this share
    k = load_factors().tce.electricity_equivalent
    method = "renewable electricity used (this share's numerator) × 当量值 / comprehensive energy (tce)"
    try:
        tce, _carbon = compute_energy(store, park, int(start.timestamp() * 1000), int(end.timestamp() * 1000),
                                      enterprise)
    except KeyError as exc:
        # no grid emission factor for the period's year (published from 2021): the share itself needs none,
        # only this side figure goes without
        out["inputs"]["clean_energy_share_tce"] = {"value": None, "why": str(exc.args[0]), "method": method}
        return out
    clean = clean_energy_share(result.inputs.get("numerator"), tce.value, k.value)
    out["inputs"]["clean_energy_share_tce"] = {
        "value": None if clean is None else round(clean, 6), "re_used_kwh": result.inputs.get("numerator"),
        "comprehensive_energy_tce": tce.value, "kgce_per_kwh": k.value, "method": method}
    return out


@router.get("/parks/{park}/indicators/electricity-activity",
            summary="Electricity-based activity index per day, 100 = the recent normal (电力看经济)")
def electricity_activity(
    request: Request, store: StoreDep, park: str,
    days: Annotated[int, Query(ge=1, le=366, description="days to report, ending with `last`")] = 30,
    last: Annotated[date | None, Query(description="last day (China calendar); default: yesterday")] = None,
    enterprise: Annotated[str | None, Query(description="one enterprise; default: the whole park")] = None,
    baseline_days: Annotated[int, Query(ge=1, le=365)] = 28,
    min_baseline_days: Annotated[int, Query(ge=1, le=365)] = 7,
) -> dict[str, Any]:
    if min_baseline_days > baseline_days:
        raise HTTPException(422, f"min_baseline_days {min_baseline_days} exceeds baseline_days {baseline_days}")
    end_day = last or (datetime.now(CHINA).date() - timedelta(days=1))
    try:
        result = compute_activity(store, park, end_day - timedelta(days=days - 1), end_day, enterprise,
                                  baseline_days, min_baseline_days, request.app.state.share_settings)
    except LookupError as exc:
        raise HTTPException(404, f"{exc}; GET /api/v1/parks lists the parks") from None
    return result.to_json()


@router.get("/parks/{park}/indicators/comprehensive-energy",
            summary="Comprehensive energy in tce and CO2 per tce (综合能耗 · 单位能耗碳排放)")
def comprehensive_energy(
    store: StoreDep, park: str,
    start: Annotated[datetime | None, Query(description="ISO 8601 with offset; default: by period")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601 with offset; default: now")] = None,
    period: Annotated[Period, Query(description="used when start is not given (Asia/Shanghai calendar)")] = "month",
    enterprise: Annotated[str | None, Query(description="one enterprise; default: the whole park")] = None,
    electricity_method: Annotated[ElectricityMethod, Query(description="当量值 equivalent / 等价值 equal_value")]
    = "equivalent",
    steam_method: Annotated[SteamMethod, Query(description="fixed reference value or enthalpy at pressure")] = "fixed",
    steam_pressure_mpa: Annotated[float, Query(gt=0, le=30)] = 1.0,
    green_purchase_kwh: Annotated[float, Query(ge=0)] = 0.0,
) -> dict[str, Any]:
    now = datetime.fromtimestamp(time.time(), tz=CHINA)
    start, end = window(start, end, period, now)
    try:
        tce, carbon = compute_energy(store, park, int(start.timestamp() * 1000), int(end.timestamp() * 1000),
                                     enterprise, None, electricity_method, steam_method, steam_pressure_mpa,
                                     green_purchase_kwh)
    except LookupError as exc:
        raise HTTPException(404, f"{exc}; GET /api/v1/parks lists the parks") from None
    except (ValueError, KeyError) as exc:
        raise HTTPException(422, str(exc)) from None
    return {"comprehensive_energy": tce.to_json(), "carbon_per_tce": carbon.to_json()}


@router.get("/parks/{park}/indicators/intensity",
            summary="Water and energy per 10k yuan of value added, a month (万元工业增加值用水量 · 能耗)")
def intensity(
    store: StoreDep, park: str,
    month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM, China calendar")],
    enterprise: Annotated[str | None, Query(description="one enterprise; default: the whole park")] = None,
) -> dict[str, Any]:
    """Value added comes from the month's economic figures; for the whole park every enterprise with
    water or energy meters must have filed it, or there is no value (a partial sum would flatter it)."""
    require_park(store, park)
    with store.engine.connect() as conn:
        figs = economy.figures(conn, park, month, month, enterprise)
    filed = {f["enterprise"]: f["value_added"] for f in figs if f["value_added"] is not None}
    metered = {p.enterprise for p in store.points(park, metrics=["water.volume", "elec.import.energy"],
                                                  enterprise=enterprise)}
    missing = sorted(metered - set(filed))
    value_added = None if missing or not filed else sum(filed.values())
    try:
        water, energy = compute_intensity(store, park, month, value_added, enterprise)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    except KeyError as exc:  # no grid emission factor for the month's year (published from 2021)
        raise HTTPException(422, str(exc.args[0])) from None
    for r in (water, energy):
        r.inputs["enterprises_without_value_added"] = missing
    return {"water_intensity": water.to_json(), "energy_intensity": energy.to_json()}


@router.get("/parks/{park}/indicators/key-energy-users",
            summary="Enterprises at or over 5 000 tce a year, annualised (重点用能单位)")
def key_energy_users(
    store: StoreDep, park: str,
    start: Annotated[datetime | None, Query(description="ISO 8601 with offset; default: this year so far")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601 with offset; default: now")] = None,
    threshold_tce: Annotated[float, Query(gt=0)] = THRESHOLD_TCE,
) -> dict[str, Any]:
    now = datetime.fromtimestamp(time.time(), tz=CHINA)
    start, end = window(start, end, "year", now)
    require_park(store, park)
    s_ms, e_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    try:
        per_ent = energy_by_enterprise(store, park, s_ms, e_ms)
    except KeyError as exc:  # no grid emission factor for the period's year (published from 2021)
        raise HTTPException(422, str(exc.args[0])) from None
    tce = {e: per_ent[e][0].value if e in per_ent else None for e in sorted({p.enterprise for p in store.points(park)})}
    days = (e_ms - s_ms) / 86_400_000
    ranked = rank(tce, days, threshold_tce)
    ind = KeyEnergyUsers()
    return {"key": ind.key, "name_zh": ind.name_zh, "name_en": ind.name_en, "unit": ind.unit,
            "value": sum(k.key_user for k in ranked), "threshold_tce": threshold_tce, "source": KEY_SOURCE,
            "period_start": start.isoformat(), "period_end": end.isoformat(), "days": round(days, 3),
            "method": "annualised = tce over the period × 365 / days of the period",
            "enterprises": [vars(k) for k in ranked], "without_data": sorted(e for e, v in tce.items() if v is None)}


@router.get("/parks/{park}/indicators/pue", summary="Data-centre PUE per enterprise with IT meters (数据中心PUE)")
def data_centre_pue(
    store: StoreDep, park: str,
    start: Annotated[datetime | None, Query(description="ISO 8601 with offset; default: by period")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601 with offset; default: now")] = None,
    period: Annotated[Period, Query(description="used when start is not given (Asia/Shanghai calendar)")] = "month",
    target: Annotated[float, Query(ge=1.0, le=3.0, description="1.3 by default; 1.25 for hub nodes")] = PUE_TARGET,
) -> dict[str, Any]:
    now = datetime.fromtimestamp(time.time(), tz=CHINA)
    start, end = window(start, end, period, now)
    require_park(store, park)
    s_ms, e_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    carriers = {"imp": ("elec.import.energy",), "exp": ("elec.export.energy",),
                "gen": ("pv.generation.energy", "wind.generation.energy"), "it": ("elec.it.energy",)}
    ind, out = Pue(), []
    for ent in sorted({p.enterprise for p in store.points(park, metrics=["elec.it.energy"])}):
        totals, rep = counter_totals(store, park, carriers, s_ms, e_ms, ent)
        facility = None if rep["uncovered"] else totals["imp"] + totals["gen"] - totals["exp"]
        try:
            ratio = pue(facility, None if rep["uncovered"] else totals["it"])
        except ValueError as exc:
            raise HTTPException(422, f"{ent}: {exc}") from None
        status = "insufficient_data" if ratio is None else ("met" if ratio <= target + 1e-9 else "below_target")
        out.append({"enterprise": ent, "value": None if ratio is None else round(ratio, 4), "target": target,
                    "status": status, "facility_kwh": facility, "it_kwh": totals["it"],
                    "meters_not_covering_period": rep["uncovered"]})
    return {"key": ind.key, "name_zh": ind.name_zh, "name_en": ind.name_en, "source": PUE_SOURCE,
            "period_start": start.isoformat(), "period_end": end.isoformat(),
            "method": "(grid import + on-site RE generation − export) / IT-load meters; met at or below target",
            "data_centres": out}


@router.get("/parks/{park}/indicators/digitalisation",
            summary="Production devices that report, of those registered (生产设备数字化率)")
def digitalisation(
    store: StoreDep, park: str,
    days: Annotated[int, Query(ge=1, le=366, description="a device reports if it sent a reading in this window")] = 7,
) -> dict[str, Any]:
    now_ms = int(time.time() * 1000)
    with store.engine.connect() as conn:
        devs = registry.production_devices(conn, park, now_ms - days * 86_400_000)
    cfg, ind = digitalisation_settings(), Digitalisation()
    target = float(cfg["target"])

    def judged(items: list[dict[str, Any]]) -> dict[str, Any]:
        r = rate(sum(d["reporting"] for d in items), len(items))
        return {"value": r, "registered": len(items), "reporting": sum(d["reporting"] for d in items),
                "status": "insufficient_data" if r is None else ("met" if r >= target - 1e-9 else "below_target"),
                "not_reporting": [f"{d['enterprise']}/{d['device']}" for d in items if not d["reporting"]]}

    ents = sorted({d["enterprise"] for d in devs})
    return {"key": ind.key, "name_zh": ind.name_zh, "name_en": ind.name_en, "unit": ind.unit, "target": target,
            "source": cfg["source"], "window_days": days, **judged(devs),
            "enterprises": {e: judged([d for d in devs if d["enterprise"] == e]) for e in ents},
            "method": "registered production devices (registry: production = true) with a reading in the "
                      "window, over all registered production devices"}


@router.get("/parks/{park}/indicators/unit-energy",
            summary="Unit product energy vs 标杆/基准 and the share of output at benchmark (单位产品能耗)")
def unit_energy(
    store: StoreDep, park: str,
    month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM, China calendar")],
) -> dict[str, Any]:
    require_park(store, park)
    try:
        start, end = month_bounds(month)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    with store.engine.connect() as conn:
        figs = economy.figures(conn, park, month, month)
    cfg = benchmarks()
    table: dict[str, dict[str, float]] = cfg["products"]
    results = []
    for f in figs:
        made = [(p["product"], p["quantity"]) for p in f["products"] if p["unit"] in ("t", "吨")]
        if not any(name in table for name, _q in made):
            continue
        try:
            tce, _c = compute_energy(store, park, int(start.timestamp() * 1000), int(end.timestamp() * 1000),
                                     f["enterprise"])
        except KeyError as exc:  # no grid emission factor for the month's year (published from 2021)
            raise HTTPException(422, str(exc.args[0])) from None
        results += assess(f["enterprise"], tce.value, made, table)
    share = share_at_benchmark(results)
    ind = UnitEnergy()
    target = float(cfg["target_share_at_benchmark"])
    return {"key": ind.key, "name_zh": ind.name_zh, "name_en": ind.name_en, "unit": ind.unit, "month": month,
            "source": cfg["source"], "products": [{**vars(r), "level_zh": LEVEL_ZH[r.level] if r.level else None}
                                                  for r in results],
            "share_at_benchmark": share, "share_target": target, "share_target_source": cfg["target_source"],
            "share_status": "insufficient_data" if share is None else ("met" if share > target else "below_target"),
            "method": "enterprise comprehensive energy of the month (kgce) / tonnes of its one benchmarked product"}


@router.get("/parks/{park}/indicators/pollutant-compliance",
            summary="CEMS and wastewater outlets against permit limits, valid hours (污染物排放达标)")
def pollutant_compliance(
    store: StoreDep, park: str,
    start: Annotated[datetime | None, Query(description="ISO 8601 with offset; default: by period")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601 with offset; default: now")] = None,
    period: Annotated[Period, Query(description="used when start is not given (Asia/Shanghai calendar)")] = "today",
) -> dict[str, Any]:
    start, end = window(start, end, period, datetime.fromtimestamp(time.time(), tz=CHINA))
    try:
        out = compute_compliance(store, park, int(start.timestamp() * 1000), int(end.timestamp() * 1000))
    except LookupError as exc:
        raise HTTPException(404, f"{exc}; GET /api/v1/parks lists the parks") from None
    return {**out, "period_start": start.isoformat(), "period_end": end.isoformat()}
