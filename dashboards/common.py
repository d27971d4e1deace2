"""What every parkmon dashboard shares: the data source, variables, bilingual titles, SQL fragments.

Titles are "中文 English" (operators read Chinese first). Panels query the rollups (readings_1m /
readings_1h), ``indicator_hourly`` (analytics/board_feed.py) and the alert and registry tables, with
Grafana's time macros, so a dashboard reads only what the platform already keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as dm

from dashboards.sql_query import DATASOURCE, Sql

TAGS = ["parkmon", "智慧园区"]
REFRESH = "30s"
REFRESH_CHOICES = ["10s", "30s", "1m", "5m", "15m", "1h"]


def title(zh: str, en: str) -> str:
    return f"{zh} {en}"


def link_to(uid: str, zh: str, en: str) -> db.DashboardLink:
    """A link keeping the time range and the variables (park, enterprise …) of the board it leaves."""
    return (db.DashboardLink(title(zh, en)).type(dm.DashboardLinkType.LINK).url(f"/d/{uid}")
            .keep_time(True).include_vars(True))


def base(uid: str, zh: str, en: str, description: str, time_from: str = "now-24h",
         refresh: str = REFRESH) -> db.Dashboard:
    return (db.Dashboard(title(zh, en)).uid(uid).description(description).tags(TAGS)
            .timezone("Asia/Shanghai").week_start("monday").editable().tooltip(dm.DashboardCursorSync.CROSSHAIR)
            .time(time_from, "now").refresh(refresh)
            .timepicker(db.TimePicker().refresh_intervals(REFRESH_CHOICES)))


# --- variables -----------------------------------------------------------------------------------
def park_variable() -> db.QueryVariable:
    return (db.QueryVariable("park").label("园区 Park").datasource(DATASOURCE)
            .query("SELECT key AS __value, name_zh || ' ' || key AS __text FROM parks ORDER BY key")
            .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD).sort(dm.VariableSort.ALPHABETICAL_ASC))


def enterprise_variable(multi: bool) -> db.QueryVariable:
    v = (db.QueryVariable("enterprise").label("企业 Enterprise").datasource(DATASOURCE)
         .query("SELECT e.key AS __value, e.name || ' ' || e.key AS __text FROM enterprises e "
                "JOIN parks p ON p.id = e.park_id WHERE p.key = '$park' ORDER BY e.key")
         .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD).sort(dm.VariableSort.ALPHABETICAL_ASC))
    return v.multi(True).include_all(True) if multi else v


def device_variable() -> db.QueryVariable:
    return (db.QueryVariable("device").label("设备 Device").datasource(DATASOURCE)
            .query("SELECT d.key AS __value, d.name || ' ' || d.key AS __text FROM devices d "
                   "JOIN enterprises e ON e.id = d.enterprise_id JOIN parks p ON p.id = e.park_id "
                   "WHERE p.key = '$park' AND e.key = '$enterprise' ORDER BY d.key")
            .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD).multi(True).include_all(True))


def region_variable() -> db.QueryVariable:
    return (db.QueryVariable("region").label("地区 Region").datasource(DATASOURCE)
            .query("SELECT DISTINCT region FROM parks ORDER BY 1")
            .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD).multi(True).include_all(True))


# --- SQL fragments ---------------------------------------------------------------------------------
def point_joins(alias: str = "r") -> str:
    """Joins from a readings/rollup alias to its point, device, enterprise and park (pt, d, e, p)."""
    return (f"JOIN points pt ON pt.id = {alias}.point_id JOIN devices d ON d.id = pt.device_id "
            "JOIN enterprises e ON e.id = d.enterprise_id JOIN parks p ON p.id = e.park_id")


GOOD = 64  # quality below this is good or uncertain (parkmon/common/quality.py); rollups count only these


def quoted(values: Sequence[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def cases(column: str, labels: dict[str, str], default: str = "") -> str:
    """``CASE column WHEN k THEN label …`` for labels known when the dashboard is built."""
    whens = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in labels.items())
    return f"CASE {column} {whens} ELSE {default or column} END"


# --- panels ----------------------------------------------------------------------------------------
class PanelBuilder(Protocol):
    def title(self, title: str) -> Any: ...
    def description(self, description: str) -> Any: ...
    def datasource(self, datasource: dm.DataSourceRef) -> Any: ...
    def with_target(self, target: cogbuilder.Builder[Any]) -> Any: ...
    def height(self, h: int) -> Any: ...
    def span(self, w: int) -> Any: ...


def panel(p: Any, zh: str, en: str, description: str, queries: Sequence[Sql], w: int = 12, h: int = 8) -> Any:
    p = p.title(title(zh, en)).description(description).datasource(DATASOURCE).height(h).span(w)
    for q in queries:
        p = p.with_target(q)
    return p


def steps(*levels: tuple[float | None, str]) -> db.ThresholdsConfig:
    """Absolute thresholds: ``(None, "red"), (0.5, "yellow"), (0.8, "green")``."""
    return (db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE)
            .steps([dm.Threshold(value=v, color=c) for v, c in levels]))


def number_ids(model: dm.Dashboard) -> dm.Dashboard:
    """Unique panel ids (Grafana keys links, repeats and the panel editor on them)."""
    n = 0
    for p in model.panels or []:
        n += 1
        p.id_val = n
        for inner in getattr(p, "panels", None) or []:
            n += 1
            inner.id_val = n
    return model
