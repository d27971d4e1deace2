"""The SQL behind the panels, one function per kind of question, shared by the dashboards.

``scope`` narrows a query to one park (``p.key = '$park'``) and, on the enterprise board, to one
enterprise and its chosen devices; every query keeps Grafana's macros so the time picker drives it.
"""

from __future__ import annotations

from analytics.indicators.pollutant_compliance import limits
from dashboards.common import cases, point_joins, quoted
from parkmon.common.metrics import SYSTEM_LABELS

PARK = "p.key = '$park'"
ENTERPRISE = "p.key = '$park' AND e.key = '$enterprise'"
ENTERPRISE_DEVICES = "p.key = '$park' AND e.key = '$enterprise' AND d.key IN ($device)"
ENTERPRISE_ALERTS = "a.park = '$park' AND a.enterprise = '$enterprise'"

SOURCES = {"pv.power": "光伏 PV", "wind.power": "风电 Wind", "storage.power": "储能 Storage (+放电 discharge)",
           "elec.active_power": "电网 Grid"}
POLLUTANTS = {"cems.so2": ("二氧化硫 SO₂", "mg/m³"), "cems.nox": ("氮氧化物 NOx", "mg/m³"),
              "cems.particulate": ("颗粒物 Particulate", "mg/m³"), "ww.cod": ("化学需氧量 COD", "mg/L"),
              "ww.nh3n": ("氨氮 NH₃-N", "mg/L")}
VALID_MINUTES_PER_HOUR = 45  # HJ 212 / HJ 75: an hour needs 45 valid minutes (as analytics judges it)


def power_by_source(scope: str = PARK) -> str:
    """Live power per source (kW): each point's mean over the interval, summed per source."""
    return f"""SELECT "time", metric, sum(v) AS value FROM (
  SELECT $__timeGroup(r.bucket, $__interval) AS "time", pt.id,
         {cases("pt.metric", SOURCES)} AS metric,
         sum(r.sum) / nullif(sum(r.n), 0) AS v
  FROM readings_1m r {point_joins()}
  WHERE {scope} AND pt.metric IN ({quoted(list(SOURCES))}) AND $__timeFilter(r.bucket)
  GROUP BY 1, 2, 3) per_point
GROUP BY 1, 2
ORDER BY 1"""


def share_now() -> str:
    """The new-energy share over the panel's range from the hourly numerators and denominators."""
    return """SELECT sum(h.re_used) / nullif(sum(h.consumption), 0) AS "新能源消纳比例 share",
       max(h.target) AS "目标 target"
FROM indicator_hourly h JOIN parks p ON p.id = h.park_id
WHERE p.key = '$park' AND h.enterprise = '' AND $__timeFilter(h.bucket)"""


def share_trend() -> str:
    return """SELECT $__timeGroupAlias(h.bucket, $__interval),
       sum(h.re_used) / nullif(sum(h.consumption), 0) AS "新能源消纳比例 share",
       max(h.target) AS "园区目标 park target"
FROM indicator_hourly h JOIN parks p ON p.id = h.park_id
WHERE p.key = '$park' AND h.enterprise = '' AND $__timeFilter(h.bucket)
GROUP BY 1
ORDER BY 1"""


def energy_totals() -> str:
    return """SELECT sum(h.consumption) AS "用电量 consumption (kWh)",
       sum(h.re_gen) AS "新能源发电 RE generation (kWh)",
       sum(h.imp) AS "购网电 grid import (kWh)", sum(h.exp) AS "上网 export (kWh)",
       sum(h.curtailed) AS "弃电 curtailed (kWh)", sum(h.tce) AS "综合能耗 energy (tce)"
FROM indicator_hourly h JOIN parks p ON p.id = h.park_id
WHERE p.key = '$park' AND h.enterprise = '' AND $__timeFilter(h.bucket)"""


def counter_use(metric: str, scope: str = PARK, by: str = "e.key") -> str:
    """Use per interval of a counter (water m³, gas m³, kWh …) from the hourly rollups: each hour's
    last reading less the hour before's, summed per ``by``. A counter that went down (a meter swap)
    counts nothing for that hour rather than a negative use."""
    return f"""WITH steps AS (
  SELECT r.bucket, {by} AS metric,
         r.last - lag(r.last) OVER (PARTITION BY r.point_id ORDER BY r.bucket) AS step
  FROM readings_1h r {point_joins()}
  WHERE {scope} AND pt.metric = '{metric}'
    AND r.bucket BETWEEN $__timeFrom()::timestamptz - interval '1 hour' AND $__timeTo()::timestamptz)
SELECT $__timeGroupAlias(bucket, $__interval), metric, sum(greatest(step, 0)) AS value
FROM steps
WHERE step IS NOT NULL AND $__timeFilter(bucket)
GROUP BY 1, 2
ORDER BY 1"""


def pollutant_hourly(metric: str, scope: str = PARK) -> str:
    """Hourly mean of an outlet's concentration as compliance judges it: flue gas converted to the
    reference O2 minute by minute, hours with fewer than 45 valid minutes left out."""
    lim = limits()
    if metric.startswith("cems."):
        o2_ref = float(lim["flue_gas_reference_o2"])
        return f"""SELECT $__timeGroupAlias(hour, $__interval), metric, avg(value) AS value FROM (
  SELECT date_trunc('hour', c.bucket) AS hour, e.key || '/' || d.key AS metric,
         avg(c.sum / c.n * (21 - {o2_ref:g}) / (21 - o.sum / o.n)) AS value, count(*) AS minutes
  FROM readings_1m c {point_joins("c")}
  JOIN points opt ON opt.device_id = d.id AND opt.metric = 'cems.o2'
  JOIN readings_1m o ON o.point_id = opt.id AND o.bucket = c.bucket AND o.n > 0 AND o.sum / o.n < 21
  WHERE {scope} AND pt.metric = '{metric}' AND c.n > 0 AND $__timeFilter(c.bucket)
  GROUP BY 1, 2
  HAVING count(*) >= {VALID_MINUTES_PER_HOUR}) hourly
GROUP BY 1, 2
ORDER BY 1"""
    return f"""SELECT $__timeGroupAlias(hour, $__interval), metric, avg(value) AS value FROM (
  SELECT date_trunc('hour', c.bucket) AS hour, e.key || '/' || d.key AS metric, avg(c.sum / c.n) AS value
  FROM readings_1m c {point_joins("c")}
  WHERE {scope} AND pt.metric = '{metric}' AND c.n > 0 AND $__timeFilter(c.bucket)
  GROUP BY 1, 2
  HAVING count(*) >= {VALID_MINUTES_PER_HOUR}) hourly
GROUP BY 1, 2
ORDER BY 1"""


def limit_of(metric: str) -> float:
    return float(limits()[metric])


def exceedances(scope: str = PARK) -> str:
    """Hours over the limit per outlet and pollutant over the range (the same hours as the charts)."""
    lim = limits()
    rows = ", ".join(f"('{m}', '{POLLUTANTS[m][0]}', {float(lim[m])})" for m in POLLUTANTS)
    o2_ref = float(lim["flue_gas_reference_o2"])
    return f"""WITH lim(metric, name, limit_value) AS (VALUES {rows}),
minutes AS (
  SELECT date_trunc('hour', c.bucket) AS hour, e.key AS ent, d.key AS dev, pt.metric,
         CASE WHEN pt.metric LIKE 'cems.%' THEN c.sum / c.n * (21 - {o2_ref:g}) / (21 - o.sum / o.n)
              ELSE c.sum / c.n END AS value
  FROM readings_1m c {point_joins("c")}
  LEFT JOIN points opt ON opt.device_id = d.id AND opt.metric = 'cems.o2'
  LEFT JOIN readings_1m o ON o.point_id = opt.id AND o.bucket = c.bucket AND o.n > 0
  WHERE {scope} AND pt.metric IN (SELECT metric FROM lim) AND c.n > 0 AND $__timeFilter(c.bucket)
    AND (pt.metric NOT LIKE 'cems.%' OR (o.n > 0 AND o.sum / o.n < 21))),
hours AS (
  SELECT hour, ent, dev, metric, avg(value) AS value FROM minutes
  GROUP BY 1, 2, 3, 4 HAVING count(*) >= {VALID_MINUTES_PER_HOUR})
SELECT h.ent AS "企业 Enterprise", h.dev AS "排口 Outlet", l.name AS "污染物 Pollutant",
       l.limit_value AS "限值 Limit", count(*) FILTER (WHERE h.value > l.limit_value) AS "超标小时 Hours over",
       count(*) AS "有效小时 Valid hours", max(h.value) AS "最高小时均值 Highest hour"
FROM hours h JOIN lim l ON l.metric = h.metric
GROUP BY 1, 2, 3, 4
ORDER BY 5 DESC, 1, 2"""


def firing_alerts(scope_sql: str = "a.park = '$park'") -> str:
    return f"""SELECT to_timestamp(a.fired_ms / 1000.0) AS "开始 Since",
       {cases("a.severity", {"critical": "紧急 critical", "major": "重要 major", "warning": "警告 warning",
                             "info": "提示 info"}, "a.severity")} AS "级别 Severity",
       ev.text_zh AS "告警 Alert", ev.text_en AS "Alert (EN)", a.value AS "值 Value", a.threshold AS "阈值 Limit",
       a.unit AS "单位 Unit", coalesce(a.acked_by, '') AS "确认人 Acknowledged by"
FROM alerts a
LEFT JOIN LATERAL (SELECT text_zh, text_en FROM alert_events
                   WHERE alert_id = a.id AND event = 'firing' ORDER BY at_ms DESC LIMIT 1) ev ON true
WHERE {scope_sql} AND a.state = 'firing'
ORDER BY a.fired_ms DESC
LIMIT 200"""


def latest_readings(scope: str = ENTERPRISE_DEVICES) -> str:
    """Each point's last 1-minute value within the range, with how many of its samples were bad."""
    return f"""SELECT DISTINCT ON (pt.id) d.key AS "设备 Device", pt.name AS "测点 Point", pt.label AS "名称 Label",
       r.last AS "最新值 Value", pt.unit AS "单位 Unit", r.last_ts AS "时间 Time",
       r.n_all - r.n AS "异常样本 Bad samples"
FROM readings_1m r {point_joins()}
WHERE {scope} AND $__timeFilter(r.bucket)
ORDER BY pt.id, r.bucket DESC"""


def enterprise_tce() -> str:
    return """SELECT $__timeGroupAlias(h.bucket, $__interval), sum(h.tce) AS "综合能耗 energy (tce)"
FROM indicator_hourly h JOIN parks p ON p.id = h.park_id
WHERE p.key = '$park' AND h.enterprise = '$enterprise' AND $__timeFilter(h.bucket)
GROUP BY 1
ORDER BY 1"""


def gateways_table(scope: str = PARK) -> str:
    """Each gateway: online, since when, the agent's buffer backlog and drops (its retained health),
    batches received in the range and when the last came."""
    return f"""SELECT e.key AS "企业 Enterprise", g.key AS "网关 Gateway",
       CASE WHEN g.online THEN '在线 online' ELSE '离线 offline' END AS "状态 Status",
       to_timestamp(g.status_ms / 1000.0) AS "状态时间 Since",
       (gh.body::json ->> 'buffer_batches')::int AS "缓存批次 Buffered batches",
       (gh.body::json ->> 'buffer_samples')::int AS "缓存样本 Buffered samples",
       (gh.body::json ->> 'dropped_samples')::int AS "丢弃样本 Dropped samples",
       to_timestamp(gh.at_ms / 1000.0) AS "健康上报 Health at",
       (SELECT count(*) FROM gateway_batches b WHERE b.gateway_id = g.id
          AND b.sent_ms BETWEEN $__unixEpochFrom()::bigint * 1000 AND $__unixEpochTo()::bigint * 1000)
         AS "批次 Batches",
       (SELECT to_timestamp(max(b.received_ms) / 1000.0) FROM gateway_batches b WHERE b.gateway_id = g.id)
         AS "最后接收 Last received"
FROM gateways g JOIN enterprises e ON e.id = g.enterprise_id JOIN parks p ON p.id = e.park_id
LEFT JOIN gateway_health gh ON gh.gateway_id = g.id
WHERE {scope}
ORDER BY 1, 2"""


def batches_per_gateway(scope: str = PARK) -> str:
    """Batches received per gateway and interval: a gap is a gateway that went quiet."""
    return f"""SELECT $__unixEpochGroupAlias(b.sent_ms / 1000, $__interval), e.key || '/' || g.key AS metric,
       count(*) AS value
FROM gateway_batches b JOIN gateways g ON g.id = b.gateway_id JOIN enterprises e ON e.id = g.enterprise_id
JOIN parks p ON p.id = e.park_id
WHERE {scope} AND b.sent_ms BETWEEN $__unixEpochFrom()::bigint * 1000 AND $__unixEpochTo()::bigint * 1000
GROUP BY 1, 2
ORDER BY 1"""


def buffer_backlog(scope: str = PARK) -> str:
    return f"""SELECT e.key || '/' || g.key AS "网关 Gateway",
       (gh.body::json ->> 'buffer_samples')::int AS "缓存样本 Buffered"
FROM gateways g JOIN enterprises e ON e.id = g.enterprise_id JOIN parks p ON p.id = e.park_id
JOIN gateway_health gh ON gh.gateway_id = g.id
WHERE {scope}
ORDER BY 2 DESC"""


def system_coverage() -> str:
    """Per system (六系统): expected devices and those that reported within 15 minutes of the range's
    end (gates: a gate event within 24 h), as the platform's scorecard counts them."""
    labels = ", ".join(f"('{k.value}', '{zh}', '{en}', {i})" for i, (k, (zh, en)) in enumerate(SYSTEM_LABELS.items()))
    return f"""WITH systems(system, name_zh, name_en, ord) AS (VALUES {labels}),
expected AS (
  SELECT d.id, d.key, d.kind, d.system, e.park_id FROM devices d
  JOIN enterprises e ON e.id = d.enterprise_id JOIN parks p ON p.id = e.park_id
  WHERE p.key = '$park' AND d.expected),
live AS (
  SELECT x.id FROM expected x
  WHERE (x.kind <> 'gate' AND EXISTS (
           SELECT 1 FROM points pt JOIN readings r ON r.point_id = pt.id
           WHERE pt.device_id = x.id AND r.ts > $__timeTo()::timestamptz - interval '15 minutes'
             AND r.ts <= $__timeTo()::timestamptz))
     OR (x.kind = 'gate' AND EXISTS (
           SELECT 1 FROM gate_events g WHERE g.park_id = x.park_id AND g.gate = x.key
             AND g.ts_ms > $__unixEpochTo()::bigint * 1000 - 86400000 AND g.ts_ms <= $__unixEpochTo()::bigint * 1000)))
SELECT s.name_zh || ' ' || s.name_en AS "系统 System",
       count(x.id) AS "应接入设备 Expected devices",
       count(x.id) FILTER (WHERE x.id IN (SELECT id FROM live)) AS "在线设备 Reporting devices",
       count(x.id) FILTER (WHERE x.id IN (SELECT id FROM live))::float8 / nullif(count(x.id), 0) AS "覆盖率 Coverage"
FROM systems s LEFT JOIN expected x ON x.system = s.system
GROUP BY s.ord, s.name_zh, s.name_en
ORDER BY s.ord"""
