"""企业详情 Enterprise detail: one enterprise's power, energy, water, gas, outlets, points and alerts."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import table, timeseries
from grafana_foundation_sdk.models import common as cm

from dashboards import queries as q
from dashboards.common import base, device_variable, enterprise_variable, link_to, panel, park_variable, steps
from dashboards.sql_query import Sql

UID = "parkmon-enterprise"
TITLE_ZH, TITLE_EN = "企业详情", "Enterprise detail"


def build() -> db.Dashboard:
    d = (base(UID, TITLE_ZH, TITLE_EN, "一家企业的功率、能耗、水、气、排口、测点与告警 · one enterprise in detail")
         .with_variable(park_variable()).with_variable(enterprise_variable(multi=False))
         .with_variable(device_variable())
         .links([link_to("parkmon-park", "园区总览", "Park overview")]))
    d = d.with_panel(panel(timeseries.Panel(), "功率（按电源）", "Power by source", "kW",
                           [Sql(q.power_by_source(q.ENTERPRISE))], w=12).unit("kwatt").interval("1m"))
    d = d.with_panel(panel(timeseries.Panel(), "综合能耗", "Comprehensive energy", "每小时 tce（GB/T 2589，当量值）",
                           [Sql(q.enterprise_tce())], w=12).unit("none").axis_label("tce").interval("1h")
                     .draw_style(cm.GraphDrawStyle.BARS))
    for metric, zh, en, unit in (("elec.import.energy", "购网电量", "Grid import", "kWh"),
                                 ("water.volume", "用水量", "Water", "m3"), ("gas.volume", "天然气", "Gas", "m3")):
        d = d.with_panel(panel(timeseries.Panel(), zh, en, f"每小时 {unit} · hourly, per meter",
                               [Sql(q.counter_use(metric, q.ENTERPRISE, by="d.key"))], w=8, h=7)
                         .unit(unit if unit == "m3" else "kwatth").interval("1h").draw_style(cm.GraphDrawStyle.BARS))
    for metric, (name, unit) in q.POLLUTANTS.items():
        lim = q.limit_of(metric)
        d = d.with_panel(panel(timeseries.Panel(), f"{name.split()[0]}小时均值", f"{name.split()[-1]} hourly mean",
                               f"限值 limit {lim:g} {unit}", [Sql(q.pollutant_hourly(metric, q.ENTERPRISE))], w=8, h=7)
                         .axis_label(unit).interval("1h").thresholds(steps((None, "green"), (lim, "red"))))
    d = d.with_panel(panel(table.Panel(), "测点最新值", "Latest readings",
                           "所选设备每个测点的最新分钟值与异常样本数 · last 1-minute value per point, bad samples",
                           [Sql(q.latest_readings()).table()], w=24, h=10))
    d = d.with_panel(panel(table.Panel(), "当前告警", "Active alerts",
                           "本企业未恢复的告警 · this enterprise's firing alerts",
                           [Sql(q.firing_alerts(q.ENTERPRISE_ALERTS)).table()], w=24, h=7))
    return d
