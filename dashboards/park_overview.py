"""园区总览 Park overview: what the operations centre watches all day."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import gauge, stat, table, timeseries
from grafana_foundation_sdk.builders.common import GraphThresholdsStyleConfig, StackingConfig
from grafana_foundation_sdk.models import common as cm

from dashboards import queries as q
from dashboards.common import base, link_to, panel, park_variable, steps
from dashboards.sql_query import Sql

UID = "parkmon-park"
TITLE_ZH, TITLE_EN = "园区总览", "Park overview"
# the policy's two levels: low-carbon parks 50 %, zero-carbon parks 80 % (analytics/defaults.yaml)
SHARE_STEPS = ((None, "red"), (0.5, "yellow"), (0.8, "green"))


def build() -> db.Dashboard:
    d = (base(UID, TITLE_ZH, TITLE_EN,
              "新能源消纳、功率、水、气、排放与告警 · share, power, water, gas, emissions, alerts", time_from="now/d")
         .with_variable(park_variable())
         .links([link_to("parkmon-enterprise", "企业详情", "Enterprise detail"),
                 link_to("parkmon-scorecard", "一平台两中心六系统", "Scorecard"),
                 link_to("parkmon-gateways", "网关健康", "Gateway health")]))
    d = d.with_row(db.Row("能源 Energy"))
    d = d.with_panel(panel(gauge.Panel(), "新能源消纳比例", "New-energy share",
                           "时间范围内的消纳比例，绿色线 80% 零碳园区、黄色线 50% 低碳园区 · over the range; "
                           "80 % zero-carbon, 50 % low-carbon", [Sql(q.share_now()).table()], w=6, h=8)
                     .unit("percentunit").min(0).max(1).decimals(1).thresholds(steps(*SHARE_STEPS))
                     .show_threshold_markers(True))
    d = d.with_panel(panel(timeseries.Panel(), "新能源消纳比例趋势", "New-energy share by hour",
                           "每小时消纳比例与园区目标 · hourly share and the park's target",
                           [Sql(q.share_trend())], w=10, h=8)
                     .unit("percentunit").min(0).max(1).interval("1h").thresholds(steps(*SHARE_STEPS))
                     .thresholds_style(GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED))
                     .draw_style(cm.GraphDrawStyle.BARS).fill_opacity(60))
    d = d.with_panel(panel(stat.Panel(), "能源合计", "Energy totals", "时间范围内合计 · totals over the range",
                           [Sql(q.energy_totals()).table()], w=8, h=8).decimals(0)
                     .orientation(cm.VizOrientation.HORIZONTAL))
    d = d.with_panel(panel(timeseries.Panel(), "实时功率（按电源）", "Power by source",
                           "光伏、风电、储能（放电为正）与电网关口功率，kW · PV, wind, storage (+discharge), grid",
                           [Sql(q.power_by_source())], w=24, h=9)
                     .unit("kwatt").interval("1m").fill_opacity(10))
    d = d.with_row(db.Row("水 · 气 Water & gas"))
    d = d.with_panel(panel(timeseries.Panel(), "用水量（按企业）", "Water use by enterprise",
                           "每小时用水量 m³ · hourly water use", [Sql(q.counter_use("water.volume"))], w=12)
                     .unit("m3").interval("1h").draw_style(cm.GraphDrawStyle.BARS)
                     .stacking(StackingConfig().mode(cm.StackingMode.NORMAL)))
    d = d.with_panel(panel(timeseries.Panel(), "天然气用量（按企业）", "Gas use by enterprise",
                           "每小时天然气用量 m³ · hourly natural gas", [Sql(q.counter_use("gas.volume"))], w=12)
                     .unit("m3").interval("1h").draw_style(cm.GraphDrawStyle.BARS)
                     .stacking(StackingConfig().mode(cm.StackingMode.NORMAL)))
    d = d.with_row(db.Row("排放 Emissions"))
    for metric, (name, unit) in q.POLLUTANTS.items():
        lim = q.limit_of(metric)
        note = "折算至基准含氧量 · at the reference O₂" if metric.startswith("cems.") else "实测 · measured"
        d = d.with_panel(panel(timeseries.Panel(), f"{name.split()[0]}小时均值", f"{name.split()[-1]} hourly mean",
                               f"{note}；红线为排放限值 {lim:g} {unit} · red line: the limit",
                               [Sql(q.pollutant_hourly(metric))], w=8, h=7)
                         .unit("none").axis_label(unit).interval("1h")
                         .thresholds(steps((None, "green"), (lim, "red")))
                         .thresholds_style(GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.LINE)))
    d = d.with_panel(panel(table.Panel(), "超标统计", "Exceedances",
                           "每个排口、污染物的超标小时数 · hours over the limit",
                           [Sql(q.exceedances()).table()], w=16, h=7))
    d = d.with_row(db.Row("告警 Alerts"))
    d = d.with_panel(panel(table.Panel(), "当前告警", "Active alerts", "未恢复的告警，最新在前 · firing, newest first",
                           [Sql(q.firing_alerts()).table()], w=24, h=8))
    return d
