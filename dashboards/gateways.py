"""网关健康 Gateway health: are the gateways online, keeping up, losing anything."""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, table, timeseries
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import common as cm

from dashboards import queries as q
from dashboards.common import base, link_to, panel, park_variable, steps
from dashboards.sql_query import Sql

UID = "parkmon-gateways"
TITLE_ZH, TITLE_EN = "网关健康", "Gateway health"


def build() -> db.Dashboard:
    d = (base(UID, TITLE_ZH, TITLE_EN, "在线状态、缓存积压、丢弃、批次 · online, backlog, drops, batches",
              time_from="now-6h")
         .with_variable(park_variable())
         .links([link_to("parkmon-park", "园区总览", "Park overview")]))
    d = d.with_panel(panel(table.Panel(), "网关", "Gateways",
                           "状态来自 MQTT 遗嘱消息，缓存与丢弃来自网关健康上报 · status from the MQTT will, "
                           "backlog and drops from the agent's health", [Sql(q.gateways_table()).table()], w=24, h=9))
    d = d.with_panel(panel(timeseries.Panel(), "接收批次", "Batches received",
                           "每个网关每区间的批次数；缺口 = 网关沉默 · a gap is a gateway gone quiet",
                           [Sql(q.batches_per_gateway())], w=16).interval("1m").draw_style(cm.GraphDrawStyle.BARS))
    d = d.with_panel(panel(bargauge.Panel(), "缓存积压", "Buffer backlog",
                           "网关磁盘缓存中尚未确认的样本 · samples waiting in each gateway's disk buffer",
                           [Sql(q.buffer_backlog()).table()], w=8)
                     .thresholds(steps((None, "green"), (1000, "yellow"), (100000, "red")))
                     .orientation(cm.VizOrientation.HORIZONTAL))
    return d
