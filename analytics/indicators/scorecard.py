"""一平台两中心六系统 scorecard: for the data-sensing platform, the operations centre, the storage centre
and each of the six systems, whether it is present, live and complete, with the reasons it falls
short. Pure: facts in (gathered by the caller from the store and the records), a scorecard out.

- present: the element exists for this park (devices expected, gateways registered, a feature built);
- live: it has delivered recently (a reading, an event, a filing, a refresh within its window);
- complete: everything expected delivered (no missing device / enterprise, completeness ≥ threshold).
The score is the share of the 9 elements that are complete. The feed gathers the facts: gateways and
completeness from the store, what the store holds (``ingest.store.indicator_hourly.scorecard_facts``), the
six systems' coverage from their register, and from the caller whether it serves the live board and how
many alert rules it runs (:class:`~analytics.indicators.base.Context`). Beside the score, not in it: the
national zero-carbon park indicators (1 + 5, analytics/indicators/zc_park.py) of the China year so far.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from analytics.indicators.base import Context, Indicator, IndicatorResult, Params
from analytics.indicators.zc_park import zero_carbon_items
from ingest.store.indicator_hourly import scorecard_facts
from ingest.store.records import registry
from parkmon.common.clock import CHINA, DAY_MS, now_ms

if TYPE_CHECKING:
    from ingest.store.base import Store

ELEMENTS: dict[str, tuple[str, str]] = {
    "platform": ("数据感知平台", "Data-sensing platform"),
    "operations_centre": ("智慧运营中心", "Operations centre"),
    "storage_centre": ("数据存储中心", "Data-storage centre"),
}


@dataclass(frozen=True)
class PlatformFacts:
    gateways: int
    gateways_online: int
    completeness_24h: float | None  # batches received / expected over the last 24 h
    dead_letters_24h: int


@dataclass(frozen=True)
class OperationsFacts:
    api: bool  # the HTTP API answers (it is answering this request)
    live_board: bool
    alert_rules: int


@dataclass(frozen=True)
class StorageFacts:
    readings: int
    newest_reading_age_s: float | None
    rollup_backlog: int  # dirty ranges not yet summarised
    rollup_age_s: float | None  # how old the newest 1-minute rollup is behind the newest reading


@dataclass
class Element:
    key: str
    name_zh: str
    name_en: str
    present: bool
    live: bool
    complete: bool
    reasons: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


def platform(f: PlatformFacts, min_completeness: float = 0.99) -> Element:
    zh, en = ELEMENTS["platform"]
    reasons = []
    if f.gateways == 0:
        reasons.append("没有网关接入 no gateway has connected")
    elif f.gateways_online < f.gateways:
        reasons.append(f"{f.gateways - f.gateways_online} 个网关离线 of {f.gateways} gateways offline")
    if f.completeness_24h is not None and f.completeness_24h < min_completeness:
        reasons.append(f"24 小时数据完整率 {f.completeness_24h:.1%} < {min_completeness:.0%} batches missing")
    if f.dead_letters_24h:
        reasons.append(f"24 小时内 {f.dead_letters_24h} 条报文被拒 payloads rejected (dead letters)")
    live = f.gateways_online > 0
    return Element("platform", zh, en, f.gateways > 0, live, live and not reasons, reasons, vars(f))


def operations(f: OperationsFacts) -> Element:
    zh, en = ELEMENTS["operations_centre"]
    reasons = []
    if not f.live_board:
        reasons.append("无实时看板 no live board")
    if f.alert_rules == 0:
        reasons.append("未配置告警规则 no alert rules configured")
    return Element("operations_centre", zh, en, f.api, f.api, f.api and not reasons, reasons, vars(f))


def storage(f: StorageFacts, max_age_s: float = 900.0, max_rollup_lag_s: float = 600.0) -> Element:
    zh, en = ELEMENTS["storage_centre"]
    reasons = []
    live = f.newest_reading_age_s is not None and f.newest_reading_age_s <= max_age_s
    if not live:
        reasons.append("15 分钟内无新数据入库 nothing stored in the last 15 min")
    if f.rollup_age_s is None or f.rollup_age_s > max_rollup_lag_s:
        reasons.append("汇总数据滞后 rollups are behind the raw readings")
    return Element("storage_centre", zh, en, f.readings > 0, live, live and not reasons, reasons, vars(f))


def system(coverage: dict[str, Any]) -> Element:
    """One of the six systems from its coverage (ingest.store.records.registry.coverage)."""
    reasons = []
    present = coverage["expected_devices"] > 0 or coverage["enterprises_expected"] > 0
    live = coverage["reporting_devices"] > 0 or coverage["enterprises_reporting"] > 0
    if not present:
        reasons.append("未登记应接入的设备或企业 nothing registered as expected to report")
    elif coverage["missing"]:
        shown = ", ".join(coverage["missing"][:5]) + (" …" if len(coverage["missing"]) > 5 else "")
        reasons.append(f"{len(coverage['missing'])} 项未上报 not reporting: {shown}")
    return Element(coverage["system"], coverage["name_zh"], coverage["name_en"], present, live,
                   present and live and not coverage["missing"], reasons,
                   {k: coverage[k] for k in ("expected_devices", "reporting_devices", "enterprises_expected",
                                             "enterprises_reporting")})


def zero_carbon_so_far(store: Store, park: str, now: int, ctx: Context) -> dict[str, Any]:
    """The national zero-carbon park indicators (1 + 5, zc_park) of the China year so far, beside the score
    (not part of it: they judge the park's energy and resources, not its platform), or why there are none."""
    start = datetime.fromtimestamp(now / 1000, tz=CHINA).replace(month=1, day=1, hour=0, minute=0, second=0,
                                                                microsecond=0)
    s_ms = int(start.timestamp() * 1000)
    period = {"start": start.isoformat(), "end": datetime.fromtimestamp(now / 1000, tz=CHINA).isoformat()}
    if now <= s_ms:
        return {**period, "indicators": [], "why": "the year has just begun"}
    try:
        core, items = zero_carbon_items(store, park, s_ms, now, ctx)
    except (KeyError, ValueError) as exc:  # e.g. no emission factor for the year: say so, keep the scorecard
        return {**period, "indicators": [], "why": str(exc.args[0] if exc.args else exc)}
    return {**period, "status": core.status, "met": sum(i["status"] == "met" for i in items), "of": len(items),
            "indicators": items}


def score(elements: list[Element]) -> float:
    return sum(e.complete for e in elements) / len(elements) if elements else 0.0


class Scorecard(Indicator[Params]):
    key = "smart_park_scorecard"
    name_zh = "一平台两中心六系统建设评分"
    name_en = "Smart-park scorecard (1 platform, 2 centres, 6 systems)"
    unit = "share of elements complete"
    params = Params
    cli = "scorecard"
    in_report = False  # the state now, not a figure of the report's period
    in_overview = True

    def feed(self, store: Store, park: str, p: Params, ctx: Context) -> IndicatorResult:
        ctx.park(store, park)
        now = now_ms()
        gws = store.gateways(park)
        comp = store.completeness(park, now - DAY_MS, now)
        expected = sum(c.expected for c in comp)
        f = scorecard_facts(store, park, now)
        systems = registry.coverage(store, park, now)
        rules = ctx.alert_rules_in_force
        if rules is None:
            from analytics.alerts.rules import load_rules  # the defaults every park gets unless it overrides them

            rules = len(load_rules())
        newest = f.newest_reading_ms
        elements = [
            platform(PlatformFacts(len(gws), sum(g.online for g in gws),
                                   sum(c.received for c in comp) / expected if expected else None, f.dead_letters)),
            operations(OperationsFacts(api=True, live_board=ctx.live_board or f.fed,
                                       alert_rules=rules + f.alert_rule_overrides)),
            storage(StorageFacts(int(f.has_readings), None if newest is None else (now - newest) / 1000,
                                 f.rollup_backlog, None if newest is None or f.newest_rollup_ms is None
                                 else max(0.0, (newest - f.newest_rollup_ms - 60_000) / 1000))),
            *[system(c) for c in systems],
        ]
        return self.make_result(round(score(elements), 4), datetime.fromtimestamp((now - DAY_MS) / 1000, tz=UTC),
                                datetime.fromtimestamp(now / 1000, tz=UTC),
                                inputs={"park": park, "at_ms": now, "elements": [vars(e) for e in elements],
                                        "zero_carbon": zero_carbon_so_far(store, park, now, ctx)},
                                method="elements complete (present, live, everything expected delivered) / elements")

    def view(self, result: IndicatorResult) -> dict[str, Any]:
        return {"key": self.key, "name_zh": self.name_zh, "name_en": self.name_en, "unit": self.unit,
                "park": result.inputs["park"], "at_ms": result.inputs["at_ms"], "value": result.value,
                "elements": result.inputs["elements"], "zero_carbon": result.inputs.get("zero_carbon")}

    def overview_fields(self, result: IndicatorResult) -> dict[str, Any]:
        return {"scorecard": result.value}
