"""The report's tables as rows of plain values, shared by the Excel and PDF writers (zh-CN first)."""

from __future__ import annotations

from typing import Any

from analytics.indicators import base
from analytics.tariffs import BAND_ZH

STATUS_ZH = {"met": "达标 met", "below_target": "未达标 below target", "no_target": "无目标 no target",
             "insufficient_data": "数据不足 insufficient data", None: ""}
CLASS_ZH = {"low_carbon": "低碳园区 low-carbon", "zero_carbon": "零碳园区 zero-carbon", "none": "一般园区 general"}


def pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def num(v: float | None, digits: int = 2) -> str:
    return "—" if v is None else f"{v:,.{digits}f}"


def summary(r: dict[str, Any]) -> list[list[Any]]:
    """指标 / 数值 / 目标 / 状态 / 数据完整率: each indicator of the report its lines, in the registry's order."""
    out: list[list[Any]] = []
    for ind in base.registered():
        if ind.in_report:
            own = ind.summary_rows(r)
            out += result_row(f"{ind.name_zh} {ind.name_en}", r.get(ind.key)) if own is None else own
    return out


def result_row(label: str, section: dict[str, Any] | None) -> list[list[Any]]:
    """The line of an indicator whose section is its result (IndicatorResult JSON); none without one."""
    if section is None:
        return []
    ratio = section["unit"] == "ratio"  # a fraction shows as %, anything else as a number with its unit
    shown = pct if ratio else num
    return [[label if ratio else f"{label} ({section['unit']})", shown(section["value"]),
             "" if section["target"] is None else shown(section["target"]), STATUS_ZH[section["status"]],
             pct(section["completeness"])]]


SUMMARY_HEAD = ["指标 Indicator", "数值 Value", "目标 Target", "状态 Status", "数据完整率 Completeness"]
ENTERPRISE_HEAD = ["企业 Enterprise", "综合能耗 tce", "用电量 kWh", "CO₂ t", "tCO₂/tce", "重点用能单位 Key user"]
POLLUTANT_HEAD = ["企业 Enterprise", "排口 Outlet", "污染物 Pollutant", "限值 Limit", "有效小时 Valid h",
                  "达标率 Compliance", "最大小时值 Max hourly", "超标小时 Hours over", "有效日 Valid days",
                  "超标日 Days over", "排放量 Amount kg"]
DAILY_HEAD = ["日期 Day", "用电量 Electricity kWh", "新能源消纳 RE used kWh"]
COST_HEAD = ["企业 Enterprise", "时段 Band", "电量 kWh", "电费 Cost 元", "均价 元/kWh"]
BALANCE_HEAD = ["总表 Main meter", "介质 Carrier", "总表 Main", "分表合计 Sum of sub-meters", "差值 Imbalance",
                "不平衡率 Imbalance %", "限值 Limit %", "单位 Unit"]


def enterprises(r: dict[str, Any]) -> list[list[Any]]:
    key = {u["enterprise"] for u in r["key_energy_users"] if u["key_user"]}
    return [[e["enterprise"], e["tce"], e["electricity_kwh"], e["co2_t"], e["co2_per_tce"],
             "是 yes" if e["enterprise"] in key else ""]
            for e in sorted(r["enterprises"], key=lambda e: -(e["tce"] or 0))]


def pollutants(r: dict[str, Any]) -> list[list[Any]]:
    return [[o["enterprise"], o["device"], o["metric"], o["limit"], o["valid_hours"], o["compliance"],
             o["max_hourly"], len(o["exceeding"]), o["valid_days"], len(o["exceeding_days"]), o["amount_kg"]]
            for o in r["pollutant_compliance"]["outlets"]]


def daily(r: dict[str, Any]) -> list[list[Any]]:
    return [[d["day"], d["electricity_kwh"], d["re_used_kwh"]] for d in r["daily"]]


def cost(r: dict[str, Any]) -> list[list[Any]]:
    """分时电费: the park's kWh and yuan by band, the demand charge and the total; then each enterprise's total."""
    section = r.get("energy_cost")
    if not section or section["value"] is None:
        return []
    i = section["inputs"]
    out: list[list[Any]] = [["园区 park", f"{BAND_ZH[b['band']]} {b['band']}", b["kwh"], b["yuan"], b["average_price"]]
                            for b in i["by_band"]]
    out.append(["园区 park", "需量电费 demand", None, i["demand_yuan"], None])
    out.append(["园区 park", "合计 total", i["kwh"], i["total_yuan"], None])
    out += [[e["enterprise"], "合计 total", e["kwh"], e["total_yuan"], None] for e in i["enterprises"]]
    return out


def balances(r: dict[str, Any]) -> list[list[Any]]:
    """总分表平衡: each main meter and carrier over the period."""
    section = r.get("meter_balance")
    if not section:
        return []
    return [[b["meter"] + (f" {b['name']}" if b["name"] else ""), f"{b['carrier_zh']} {b['carrier']}", b["main"],
             b["members_sum"], b["imbalance"], b["imbalance_pct"], b["limit_pct"], b["unit"]]
            for b in section["inputs"]["balances"]]


def title(r: dict[str, Any]) -> str:
    kind = "年度" if len(r["period"]) == 4 else "月度"
    return f"{r['name_zh']} {r['period']} {kind}监测报告 · {r['name_en']} monitoring report"
