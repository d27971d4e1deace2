"""一平台两中心六系统 scorecard: is each part of the smart park built, live and complete."""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, stat, table
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders.common import ReduceDataOptions
from grafana_foundation_sdk.models import common as cm

from dashboards import queries as q
from dashboards.common import base, link_to, panel, park_variable, point_joins, steps
from dashboards.sql_query import Sql

UID = "parkmon-scorecard"
TITLE_ZH, TITLE_EN = "一平台两中心六系统", "Smart-park scorecard"


def platform_sql() -> str:
    """一平台 the data-sensing platform: gateways online, points that reported in the last 15 minutes."""
    return f"""SELECT (SELECT count(*) FILTER (WHERE g.online) FROM gateways g
         JOIN enterprises e ON e.id = g.enterprise_id JOIN parks p ON p.id = e.park_id
         WHERE p.key = '$park') AS "在线网关 Gateways online",
       (SELECT count(*) FROM gateways g JOIN enterprises e ON e.id = g.enterprise_id
         JOIN parks p ON p.id = e.park_id WHERE p.key = '$park') AS "网关 Gateways",
       (SELECT count(DISTINCT r.point_id) FROM readings_1m r {point_joins()}
         WHERE p.key = '$park' AND r.bucket > $__timeTo()::timestamptz - interval '15 minutes'
           AND r.bucket <= $__timeTo()::timestamptz) AS "在报测点 Points reporting\""""


def centres_sql() -> str:
    """两中心: the data-storage centre (samples stored in the range, newest reading) and the
    operations centre (alerts raised in the range, share acknowledged)."""
    return f"""SELECT (SELECT sum(r.n_all) FROM readings_1h r {point_joins()}
         WHERE p.key = '$park' AND $__timeFilter(r.bucket)) AS "入库样本 Samples stored",
       (SELECT max(r.last_ts) FROM readings_1m r {point_joins()}
         WHERE p.key = '$park' AND $__timeFilter(r.bucket)) AS "最新数据 Newest reading",
       (SELECT count(*) FROM alerts a WHERE a.park = '$park'
         AND a.fired_ms BETWEEN $__unixEpochFrom()::bigint * 1000 AND $__unixEpochTo()::bigint * 1000)
         AS "告警 Alerts raised",
       (SELECT count(*) FILTER (WHERE a.acked_by IS NOT NULL OR a.state = 'resolved')::float8 / nullif(count(*), 0)
          FROM alerts a WHERE a.park = '$park'
         AND a.fired_ms BETWEEN $__unixEpochFrom()::bigint * 1000 AND $__unixEpochTo()::bigint * 1000)
         AS "已处置 Handled\""""


def build() -> db.Dashboard:
    d = (base(UID, TITLE_ZH, TITLE_EN, "一平台（数据感知）、两中心（运营、数据存储）、六系统覆盖率 · platform, "
              "two centres, six systems", time_from="now-1h", refresh="1m")
         .with_variable(park_variable())
         .links([link_to("parkmon-park", "园区总览", "Park overview")]))
    d = d.with_panel(panel(stat.Panel(), "一平台", "Data-sensing platform", "网关与测点在线 · gateways and points live",
                           [Sql(platform_sql()).table()], w=8, h=6))
    d = d.with_panel(panel(stat.Panel(), "两中心", "Operations & storage centres",
                           "数据存储中心入库、运营中心告警处置 · stored samples, alerts handled",
                           [Sql(centres_sql()).table()], w=16, h=6))
    d = d.with_panel(panel(bargauge.Panel(), "六系统覆盖率", "Six systems: coverage",
                           "应接入设备中15分钟内有数据的比例（道闸：24小时内有过车） · expected devices reporting",
                           [Sql(q.system_coverage()).table()], w=12, h=9)
                     .unit("percentunit").min(0).max(1)
                     .thresholds(steps((None, "red"), (0.8, "yellow"), (0.95, "green")))
                     .orientation(cm.VizOrientation.HORIZONTAL)
                     .reduce_options(ReduceDataOptions().values(True).fields("/覆盖率/").calcs(["lastNotNull"])))
    d = d.with_panel(panel(table.Panel(), "六系统明细", "Six systems: devices",
                           "应接入与在线设备数 · expected and reporting",
                           [Sql(q.system_coverage()).table()], w=12, h=9))
    return d
