"""A region's report for its regulator: every park's report gathered, one line per park, as Excel and
PDF with a chart of each park's new-energy share against its target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from reportlab.graphics.charts.barcharts import HorizontalBarChart
from reportlab.graphics.shapes import Drawing
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import SimpleDocTemplate

from analytics.indicators.new_energy_share import region_share
from analytics.report import rows
from analytics.report.gather import Progress, park_report
from analytics.report.glyphs import plain
from analytics.report.pdf import BLUE, BODY, FONT, GREEN, H1, H2, P, table
from analytics.targets import ShareSettings
from ingest.store import Store

HEAD = ["园区 Park", "类型 Class", "新能源消纳比例 Share", "目标 Target", "状态 Status", "综合能耗 tce",
        "tCO₂/tce", "重点用能单位 Key users", "污染物达标率 Compliance"]


def region_report(store: Store, region: str, period: str, progress: Progress | None = None,
                  share_settings: ShareSettings | None = None) -> dict[str, Any]:
    """Every park's report (``share_settings``: the share's targets, as :func:`park_report` takes them)."""
    parks = [p for p in store.parks() if p.region == region]
    if not parks:
        known = sorted({p.region for p in store.parks() if p.region})
        raise LookupError(f"no park is registered in region {region!r}; regions: {', '.join(known) or 'none'}")
    say = progress or (lambda _s: None)
    reports = []
    for i, p in enumerate(parks, 1):
        say(f"park {i}/{len(parks)} {p.key}")
        reports.append(park_report(store, p.key, period, share_settings=share_settings))
    return {"region": region, "period": period, "parks": reports,
            "new_energy_share": region_share([r["new_energy_share"] for r in reports])}


def lines(region: dict[str, Any]) -> list[list[Any]]:
    out = []
    for r in region["parks"]:
        s = r["new_energy_share"]
        out.append([f"{r['name_zh']} ({r['park']})", rows.CLASS_ZH.get(r["park_class"], r["park_class"]),
                    rows.pct(s["value"]), rows.pct(s["target"]), rows.STATUS_ZH[s["status"]],
                    r["comprehensive_energy"]["value"], r["carbon_per_tce"]["value"],
                    sum(u["key_user"] for u in r["key_energy_users"]), rows.pct(r["pollutant_compliance"]["value"])])
    return out


def write_region_excel(region: dict[str, Any], path: Path) -> Path:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "区域 Region"
    ws.append([f"{region['region']} {region['period']} 园区监测汇总 · parks of the region"])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append(HEAD)
    for line in lines(region):
        ws.append(line)
    ws.append([])
    ws.append(["区域新能源消纳比例 Region's new-energy share", rows.pct(region["new_energy_share"]["value"])])
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def share_chart(region: dict[str, Any]) -> Drawing:
    parks = region["parks"]
    h = max(40.0, 12.0 * len(parks) + 20)
    d = Drawing(170 * mm, h * mm)
    c = HorizontalBarChart()
    c.x, c.y, c.width, c.height = int(40 * mm), int(8 * mm), int(120 * mm), int((h - 14) * mm)
    c.data = [[(r["new_energy_share"]["value"] or 0) * 100 for r in parks],
              [(r["new_energy_share"]["target"] or 0) * 100 for r in parks]]
    c.bars[0].fillColor, c.bars[1].fillColor = BLUE, GREEN
    c.categoryAxis.categoryNames = [plain(r["name_zh"]) for r in parks]
    c.categoryAxis.labels.fontName = c.valueAxis.labels.fontName = FONT
    c.valueAxis.valueMin, c.valueAxis.valueMax = 0, 100
    d.add(c)
    return d


def write_region_pdf(region: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = SimpleDocTemplate(str(path), pagesize=A4, leftMargin=14 * mm, rightMargin=14 * mm)
    doc.build([
        P(f"{region['region']} {region['period']} 园区监测汇总 · Parks of the region", H1),
        table(HEAD, lines(region), [34, 20, 20, 16, 22, 20, 14, 18, 18]),
        P("新能源消纳比例(蓝)与目标(绿) New-energy share (blue) against target (green), %", H2),
        share_chart(region),
        P(f"区域新能源消纳比例 Region's share: {rows.pct(region['new_energy_share']['value'])} "
                  f"({len(region['parks'])} parks, Σ RE used / Σ consumption)", BODY),
    ])
    return path
