"""What an alert says, in Chinese first and English beside: what, where, how far over, since when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from analytics.alerts.rules import SEVERITY_ZH
from parkmon.common.clock import CHINA

EVENT_ZH = {"firing": "告警", "resolved": "恢复", "escalated": "升级", "acknowledged": "已确认",
            "manual_resolve": "人工关闭"}


def _t(ms: int | None) -> str:
    return "—" if ms is None else datetime.fromtimestamp(ms / 1000, tz=CHINA).strftime("%Y-%m-%d %H:%M:%S")


def _dur(ms: int) -> tuple[str, str]:
    s = max(0, ms // 1000)
    h, m, sec = s // 3600, s % 3600 // 60, s % 60
    zh = (f"{h}小时" if h else "") + (f"{m}分" if m or h else "") + f"{sec}秒"
    en = (f"{h} h " if h else "") + (f"{m} min " if m or h else "") + f"{sec} s"
    return zh, en


def _num(v: float | None) -> str:
    return "—" if v is None else f"{v:.4g}" if abs(v) < 1000 else f"{v:,.0f}"


def render(a: dict[str, Any], event: str, at_ms: int) -> dict[str, str]:
    """Title and text (zh, en) of an alert event; ``a`` is the alert row (ingest.store.alerts.alert_dict)."""
    where = " / ".join(x for x in (a.get("park_name") or a["park"], a.get("enterprise"), a.get("device")) if x)
    what_zh, what_en = a["name_zh"], a["name_en"]
    unit = a.get("unit") or ""
    sev = SEVERITY_ZH[a["severity"]]
    head_zh = f"【{sev}·{EVENT_ZH[event]}】{what_zh}"
    head_en = f"[{a['severity'].upper()} {event}] {what_en}"
    label = a.get("label_zh") or a.get("metric") or ""
    value, limit, peak = a.get("value"), a.get("threshold"), a.get("peak")
    over_zh = over_en = ""
    if value is not None and limit is not None and a["kind"] in ("threshold", "pollutant", "rate"):
        diff = value - limit
        pct = f"，{abs(diff) / abs(limit) * 100:.1f}%" if limit else ""
        side_zh = "超过上限" if a.get("op", ">") != "<" else "低于下限"
        side_en = "above the limit" if a.get("op", ">") != "<" else "below the limit"
        over_zh = f"{label} {_num(value)} {unit}，{side_zh} {_num(limit)} {unit}（差 {_num(abs(diff))} {unit}{pct}）"
        over_en = f"{a.get('metric') or ''} {_num(value)} {unit}, {side_en} {_num(limit)} {unit} (by {_num(abs(diff))})"
    elif a["kind"] == "stale":
        over_zh, over_en = "无数据上报", "no data received"
    elif value is not None:
        over_zh, over_en = f"{label} {_num(value)} {unit}", f"{a.get('metric') or label} {_num(value)} {unit}"
        if limit is not None:
            over_zh += f"（限值 {_num(limit)} {unit}）"
            over_en += f" (limit {_num(limit)} {unit})"
    since = a["since_ms"]
    if event == "resolved":
        zh_d, en_d = _dur(at_ms - since)
        text_zh = (f"{head_zh}｜{where}：已恢复正常（{_num(value)} {unit}），告警持续 {zh_d}"
                   + (f"，峰值 {_num(peak)} {unit}" if peak is not None else "") + f"。恢复时间 {_t(at_ms)}")
        text_en = (f"{head_en} | {where}: back to normal ({_num(value)} {unit}) after {en_d}"
                   + (f", peak {_num(peak)} {unit}" if peak is not None else "") + f". At {_t(at_ms)} (UTC+8)")
    else:
        zh_d, en_d = _dur(at_ms - since)
        text_zh = f"{head_zh}｜{where}：{over_zh}，自 {_t(since)} 起持续 {zh_d}。"
        text_en = f"{head_en} | {where}: {over_en}, since {_t(since)} (UTC+8), {en_d}."
        if event == "escalated":
            text_zh += f" 告警未确认，已升级为{sev}。"
            text_en += f" Not acknowledged: escalated to {a['severity']}."
    rule = f"规则 rule: {a['rule_id']}" + (f"；依据 {a['source']}" if a.get("source") else "")
    return {"title_zh": f"{head_zh}｜{where}", "title_en": f"{head_en} | {where}",
            "text_zh": f"{text_zh} {rule}", "text_en": text_en}
