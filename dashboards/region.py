"""区域总览 Regional overview: every park of a region for the regulator."""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, table
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders.common import ReduceDataOptions
from grafana_foundation_sdk.models import common as cm

from analytics.indicators.base import TOLERANCE
from analytics.indicators.key_energy_users import THRESHOLD_TCE
from dashboards.common import base, link_to, panel, region_variable, steps
from dashboards.park_overview import SHARE_STEPS
from dashboards.sql_query import Sql

UID = "parkmon-region"
TITLE_ZH, TITLE_EN = "区域总览", "Regional overview"

RANGE_S = "extract(epoch from $__timeTo()::timestamptz - $__timeFrom()::timestamptz)"


def parks_sql() -> str:
    """Each park: share vs its target (met as analytics.indicators.base.status_for says: within its
    tolerance), data completeness (hours with energy data), gateways online, pollutant exceedance alerts
    and alerts firing now."""
    return f"""SELECT p.name_zh || ' ' || p.key AS "园区 Park", p.park_class AS "类别 Class",
       sum(h.re_used) / nullif(sum(h.consumption), 0) AS "新能源消纳比例 Share",
       max(h.target) AS "目标 Target",
       CASE WHEN coalesce(sum(h.consumption), 0) = 0 THEN '数据不足 insufficient data'
            WHEN max(h.target) IS NULL THEN '无目标 no target'
            WHEN sum(h.re_used) / sum(h.consumption) >= max(h.target) - {TOLERANCE:g} THEN '达标 met'
            ELSE '未达标 below target' END AS "状态 Status",
       coalesce(sum(h.covered_s), 0)::float8 / nullif({RANGE_S}, 0) AS "数据完整率 Completeness",
       (SELECT count(*) FILTER (WHERE g.online) || '/' || count(*) FROM gateways g
          JOIN enterprises e ON e.id = g.enterprise_id WHERE e.park_id = p.id) AS "网关在线 Gateways online",
       (SELECT count(*) FROM alerts a WHERE a.park = p.key AND a.kind = 'pollutant'
          AND a.fired_ms BETWEEN $__unixEpochFrom()::bigint * 1000 AND $__unixEpochTo()::bigint * 1000)
         AS "超标告警 Exceedances",
       (SELECT count(*) FROM alerts a WHERE a.park = p.key AND a.state = 'firing') AS "当前告警 Firing"
FROM parks p
LEFT JOIN indicator_hourly h ON h.park_id = p.id AND h.enterprise = '' AND $__timeFilter(h.bucket)
WHERE p.region IN ($region)
GROUP BY p.id, p.key, p.name_zh, p.park_class
ORDER BY 3 DESC NULLS LAST"""


def key_users_sql() -> str:
    """Enterprises by comprehensive energy over the range, annualised; ≥ the key-user line is marked."""
    return f"""SELECT p.key AS "园区 Park", h.enterprise AS "企业 Enterprise", sum(h.tce) AS "综合能耗 Energy (tce)",
       sum(h.tce) * 365 * 86400 / nullif({RANGE_S}, 0) AS "折年 Annualised (tce/a)",
       sum(h.tce) * 365 * 86400 / nullif({RANGE_S}, 0) >= {THRESHOLD_TCE:g} AS "重点用能单位 Key energy user"
FROM indicator_hourly h JOIN parks p ON p.id = h.park_id
WHERE p.region IN ($region) AND h.enterprise <> '' AND $__timeFilter(h.bucket)
GROUP BY 1, 2
ORDER BY 3 DESC NULLS LAST
LIMIT 50"""


def share_bars_sql() -> str:
    return """SELECT p.name_zh AS "园区 Park", sum(h.re_used) / nullif(sum(h.consumption), 0) AS "消纳比例 Share"
FROM parks p JOIN indicator_hourly h ON h.park_id = p.id AND h.enterprise = '' AND $__timeFilter(h.bucket)
WHERE p.region IN ($region)
GROUP BY p.id, p.name_zh
ORDER BY 2 DESC NULLS LAST"""


def build() -> db.Dashboard:
    d = (base(UID, TITLE_ZH, TITLE_EN, "区域内每个园区：消纳比例对目标、重点用能单位、超标、数据完整率 · "
              "every park: share vs target, key energy users, exceedances, completeness", time_from="now/M",
              refresh="5m")
         .with_variable(region_variable())
         .links([link_to("parkmon-park", "园区总览", "Park overview")]))
    d = d.with_panel(panel(bargauge.Panel(), "各园区新能源消纳比例", "Share by park",
                           "绿色 ≥80% 零碳、黄色 ≥50% 低碳 · green: zero-carbon level, yellow: low-carbon level",
                           [Sql(share_bars_sql()).table()], w=24, h=8)
                     .unit("percentunit").min(0).max(1).thresholds(steps(*SHARE_STEPS))
                     .orientation(cm.VizOrientation.HORIZONTAL)
                     .reduce_options(ReduceDataOptions().values(True).calcs(["lastNotNull"])))
    d = d.with_panel(panel(table.Panel(), "园区一览", "Parks", "消纳比例对目标、数据完整率、网关、超标与告警",
                           [Sql(parks_sql()).table()], w=24, h=10))
    d = d.with_panel(panel(table.Panel(), "重点用能单位", "Key energy users",
                           f"综合能耗折年 ≥ {THRESHOLD_TCE:g} tce 为重点用能单位 · annualised ≥ {THRESHOLD_TCE:g} tce",
                           [Sql(key_users_sql()).table()], w=24, h=10))
    return d
