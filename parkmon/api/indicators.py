"""Indicator routes: each registered indicator (analytics/indicators/base.py) over a period, through the
registry. The routes of the indicators the API has always had keep their paths and answers; any other
registered indicator answers at ``/parks/{park}/indicators/{its-key}``, and ``/parks/{park}/indicators``
lists them all with their parameters."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import ValidationError

from analytics.indicators.base import INDICATORS, Context, Span, UnknownPark, load, registered, why
from analytics.indicators.comprehensive_energy import ElectricityMethod, SteamMethod
from analytics.indicators.key_energy_users import THRESHOLD_TCE
from analytics.indicators.pue import TARGET as PUE_TARGET
from analytics.meters import FLOW_METRICS
from analytics.targets import ShareSettings, load_share_settings
from ingest.store import Store
from parkmon.api.deps import StoreDep, require_park
from parkmon.api.routers import API_V1
from parkmon.api.tenancy import policy
from parkmon.common.clock import CHINA

router = APIRouter(prefix=API_V1, tags=["indicators"])

Period = Literal["today", "month", "year", "24h"]
# the dates a request may name: generous for any real question, far from datetime's and epoch-ms limits
EARLIEST = datetime(1971, 1, 1, tzinfo=UTC)
LATEST = datetime(2999, 1, 1, tzinfo=UTC)  # below the wire contract's MS_MAX (3000-01-01)


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
    for name, value in (("start", start), ("end", end)):
        # beyond these a datetime (or the epoch ms the store keeps) overflows: a 500 before (issue 20 item 16)
        if not EARLIEST <= value <= LATEST:
            raise HTTPException(422, f"{name} {value.isoformat()} is outside {EARLIEST.date()} … {LATEST.date()}")
    if end <= start:
        raise HTTPException(422, f"end {end.isoformat()} is not after start {start.isoformat()}")
    return start, end


# The most work one share request may ask for (issue 20 item 10: interval_s=1 over 31 days took 9.7 s and
# 645 MB): intervals × meters, the cells the attribution fills. A year at 15 minutes for 57 meters, or a
# month at one minute for 46, fits; a month at one second for one meter does not.
MAX_INTERVALS = 527_040  # a leap year at one minute
MAX_CELLS = 2_000_000


def share_work(store: Store, settings: object | None, park: str, start: datetime, end: datetime,
               interval_s: int | None, enterprise: str | None) -> int:
    """The cells a share request would fill; 422 saying the limit and how to ask for less beyond it."""
    s = settings if isinstance(settings, ShareSettings) else load_share_settings()
    step_s = interval_s or s.interval_minutes * 60
    intervals = math.ceil((end - start).total_seconds() / step_s)
    wanted = [m for ms in FLOW_METRICS.values() for m in ms]
    meters = len(store.points(park, metrics=wanted, enterprise=enterprise))
    cells = intervals * max(1, meters)
    if intervals > MAX_INTERVALS or cells > MAX_CELLS:
        raise HTTPException(422, f"this share asks for {intervals} intervals of {step_s} s × {meters} meters = "
                                 f"{cells} cells; the limit is {MAX_INTERVALS} intervals and {MAX_CELLS} cells "
                                 "a request: ask for a shorter period (start/end) or a longer interval_s "
                                 "(e.g. 900), or one enterprise at a time")
    return cells


def _now() -> datetime:
    return datetime.fromtimestamp(time.time(), tz=CHINA)


@contextmanager
def refusals() -> Iterator[None]:
    """An indicator's refusals as HTTP answers: an unknown park 404, a wrong input or a factor the period
    has none of (grid factors are published from 2021) 422."""
    try:
        yield
    except UnknownPark as exc:
        raise HTTPException(404, f"{exc}; GET /api/v1/parks lists the parks") from None
    except ValidationError as exc:
        raise HTTPException(422, why(exc)) from None
    except KeyError as exc:
        raise HTTPException(422, str(exc.args[0])) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


def answer(store: Store, key: str, park: str, ctx: Context, **params: Any) -> dict[str, Any]:
    """What the registered indicator ``key`` answers for ``params`` (its view; with its companions)."""
    ind = load(key)
    with refusals():
        return ind.answer(store, park, ind.params.model_validate(params), ctx)


@router.get("/parks/{park}/indicators/new-energy-share",
            summary="New-energy consumption share vs target (新能源消纳比例)",
            openapi_extra=policy("park", enterprise="query"))
def new_energy_share(
    request: Request, store: StoreDep, park: str,
    start: Annotated[datetime | None, Query(description="ISO 8601 with offset; default: by period")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601 with offset; default: now")] = None,
    period: Annotated[Period, Query(description="used when start is not given (Asia/Shanghai calendar)")] = "today",
    interval_s: Annotated[int | None, Query(ge=1, le=86400, description="attribution interval")] = None,
    green_purchase_kwh: Annotated[float, Query(ge=0, description="what-if: green power bought beyond the green-power "
                                                             "register's (added to it), kWh")] = 0.0,
    certificates_sold_kwh: Annotated[float, Query(ge=0, description="what-if: certificates sold beyond the "
                                                                "register's (added to it), kWh")] = 0.0,
    enterprise: Annotated[str | None, Query(description="one enterprise's own meters; default: the park")] = None,
) -> dict[str, Any]:
    start, end = window(start, end, period, _now())
    share_work(store, request.app.state.share_settings, park, start, end, interval_s, enterprise)
    # with the clean-energy share of all energy in tce (清洁能源消费占比), kept apart from this share
    return answer(store, "new_energy_share", park, Context(share_settings=request.app.state.share_settings),
                  start=start, end=end, interval_s=interval_s, green_purchase_kwh=green_purchase_kwh,
                  certificates_sold_kwh=certificates_sold_kwh, enterprise=enterprise, clean_share=True)


@router.get("/parks/{park}/indicators/electricity-activity",
            summary="Electricity-based activity index per day, 100 = the recent normal (电力看经济)",
            openapi_extra=policy("park", enterprise="query"))
def electricity_activity(
    request: Request, store: StoreDep, park: str,
    days: Annotated[int, Query(ge=1, le=366, description="days to report, ending with `last`")] = 30,
    last: Annotated[date | None, Query(description="last day (China calendar); default: yesterday")] = None,
    enterprise: Annotated[str | None, Query(description="one enterprise; default: the whole park")] = None,
    baseline_days: Annotated[int, Query(ge=1, le=365)] = 28,
    min_baseline_days: Annotated[int, Query(ge=1, le=365)] = 7,
) -> dict[str, Any]:
    end_day = last or (datetime.now(CHINA).date() - timedelta(days=1))
    if not EARLIEST.date() + timedelta(days=800) <= end_day <= LATEST.date():
        # the baseline reaches back days + baseline_days before it: 0001-01-01 overflowed, a 500
        raise HTTPException(422, f"last {end_day} is outside {EARLIEST.date() + timedelta(days=800)} … {LATEST.date()}")
    return answer(store, "electricity_activity_index", park, Context(share_settings=request.app.state.share_settings),
                  first=end_day - timedelta(days=days - 1), last=end_day, enterprise=enterprise,
                  baseline_days=baseline_days, min_baseline_days=min_baseline_days)


@router.get("/parks/{park}/indicators/comprehensive-energy",
            summary="Comprehensive energy in tce and CO2 per tce (综合能耗 · 单位能耗碳排放)",
            openapi_extra=policy("park", enterprise="query"))
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
    start, end = window(start, end, period, _now())
    return answer(store, "comprehensive_energy", park, Context(), start=start, end=end, enterprise=enterprise,
                  electricity_method=electricity_method, steam_method=steam_method,
                  steam_pressure_mpa=steam_pressure_mpa, green_purchase_kwh=green_purchase_kwh)


@router.get("/parks/{park}/indicators/intensity",
            summary="Water and energy per 10k yuan of value added, a month (万元工业增加值用水量 · 能耗)",
            openapi_extra=policy("park", enterprise="query"))
def intensity(
    store: StoreDep, park: str,
    month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM, China calendar")],
    enterprise: Annotated[str | None, Query(description="one enterprise; default: the whole park")] = None,
) -> dict[str, Any]:
    """Value added comes from the month's economic figures; for the whole park every enterprise with
    water or energy meters must have filed it, or there is no value (a partial sum would flatter it)."""
    return answer(store, "water_intensity", park, Context(), month=month, enterprise=enterprise)


@router.get("/parks/{park}/indicators/key-energy-users",
            summary="Enterprises at or over 5 000 tce a year, annualised (重点用能单位)", openapi_extra=policy("park"))
def key_energy_users(
    store: StoreDep, park: str,
    start: Annotated[datetime | None, Query(description="ISO 8601 with offset; default: this year so far")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601 with offset; default: now")] = None,
    threshold_tce: Annotated[float, Query(gt=0)] = THRESHOLD_TCE,
) -> dict[str, Any]:
    start, end = window(start, end, "year", _now())
    return answer(store, "key_energy_users", park, Context(), start=start, end=end, threshold_tce=threshold_tce)


@router.get("/parks/{park}/indicators/pue", summary="Data-centre PUE per enterprise with IT meters (数据中心PUE)",
            openapi_extra=policy("park"))
def data_centre_pue(
    store: StoreDep, park: str,
    start: Annotated[datetime | None, Query(description="ISO 8601 with offset; default: by period")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601 with offset; default: now")] = None,
    period: Annotated[Period, Query(description="used when start is not given (Asia/Shanghai calendar)")] = "month",
    target: Annotated[float, Query(ge=1.0, le=3.0, description="1.3 by default; 1.25 for hub nodes")] = PUE_TARGET,
) -> dict[str, Any]:
    start, end = window(start, end, period, _now())
    return answer(store, "pue", park, Context(), start=start, end=end, target=target)


@router.get("/parks/{park}/indicators/digitalisation",
            summary="Production devices that report, of those registered (生产设备数字化率)",
            openapi_extra=policy("park"))
def digitalisation(
    store: StoreDep, park: str,
    days: Annotated[int, Query(ge=1, le=366, description="a device reports if it sent a reading in this window")] = 7,
) -> dict[str, Any]:
    return answer(store, "digitalisation_rate", park, Context(), days=days)


@router.get("/parks/{park}/indicators/unit-energy",
            summary="Unit product energy vs 标杆/基准 and the share of output at benchmark (单位产品能耗)",
            openapi_extra=policy("park"))
def unit_energy(
    store: StoreDep, park: str,
    month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM, China calendar")],
) -> dict[str, Any]:
    return answer(store, "unit_product_energy", park, Context(), month=month)


@router.get("/parks/{park}/indicators/pollutant-compliance",
            summary="CEMS and wastewater outlets against permit limits, valid hours (污染物排放达标)",
            openapi_extra=policy("park"))
def pollutant_compliance(
    store: StoreDep, park: str,
    start: Annotated[datetime | None, Query(description="ISO 8601 with offset; default: by period")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601 with offset; default: now")] = None,
    period: Annotated[Period, Query(description="used when start is not given (Asia/Shanghai calendar)")] = "today",
) -> dict[str, Any]:
    start, end = window(start, end, period, _now())
    return answer(store, "pollutant_compliance", park, Context(), start=start, end=end)


@router.get("/parks/{park}/indicators/energy-cost",
            summary="Electricity cost under time-of-use tariffs by band, per enterprise and park (分时电费)",
            openapi_extra=policy("park", enterprise="query"))
def energy_cost(
    store: StoreDep, park: str,
    start: Annotated[datetime | None, Query(description="ISO 8601 with offset, on a quarter hour; default: by period")]
    = None,
    end: Annotated[datetime | None, Query(description="ISO 8601 with offset; default: now")] = None,
    period: Annotated[Period, Query(description="used when start is not given (Asia/Shanghai calendar)")] = "month",
    enterprise: Annotated[str | None, Query(description="one enterprise; default: the whole park")] = None,
) -> dict[str, Any]:
    """The tariff tables come from analytics/tariffs.yaml and the park's own file (PARKMON_TARIFFS)."""
    start, end = window(start, end, period, _now())
    return answer(store, "energy_cost", park, Context(), start=start, end=end, enterprise=enterprise)


# --- every registered indicator (these two come last: the routes above answer their own paths) ------------
@router.get("/parks/{park}/indicators", summary="Every registered indicator with its parameters (指标目录)",
            openapi_extra=policy("park"))
def indicator_catalogue(store: StoreDep, park: str) -> list[dict[str, Any]]:
    require_park(store, park)
    return [{**ind.describe(), "path": f"{API_V1}/parks/{park}/indicators/{ind.slug}"} for ind in registered()]


@router.get("/parks/{park}/indicators/{key}",
            summary="Any registered indicator by its key (kebab or snake case), as an auditable result (指标)",
            openapi_extra=policy("park"))
def any_indicator(
    request: Request, store: StoreDep, park: str, key: str,
    start: Annotated[datetime | None, Query(description="ISO 8601 with offset; default: by period")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601 with offset; default: now")] = None,
    period: Annotated[Period, Query(description="used when start is not given (Asia/Shanghai calendar)")] = "month",
) -> dict[str, Any]:
    """The indicator's own parameters come as query parameters too (the catalogue lists them)."""
    name = key.replace("-", "_")
    if name not in INDICATORS:
        raise HTTPException(404, f"no indicator {key!r}; GET {API_V1}/parks/{park}/indicators lists them")
    ind = load(name)
    params: dict[str, Any] = {k: v for k, v in request.query_params.items() if k not in ("start", "end", "period")}
    if issubclass(ind.params, Span):
        params["start"], params["end"] = window(start, end, period, _now())
    with refusals():
        p = ind.params.model_validate(params)
        return ind.feed(store, park, p, Context(share_settings=request.app.state.share_settings)).to_json()
