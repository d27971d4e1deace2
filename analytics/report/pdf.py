"""The park report as a PDF (reportlab): Chinese text in the Adobe CJK font STSong-Light, which PDF
readers carry themselves (no font file to ship), tables and a chart of the daily electricity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from analytics.report import rows
from analytics.report.glyphs import para, plain
from analytics.zero_carbon import REPORT_HEAD, report_rows

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))
H1 = ParagraphStyle("h1", fontName=FONT, fontSize=15, leading=20, spaceAfter=6)
H2 = ParagraphStyle("h2", fontName=FONT, fontSize=12, leading=16, spaceBefore=10, spaceAfter=4)
BODY = ParagraphStyle("body", fontName=FONT, fontSize=8.5, leading=11)
BLUE, GREEN = colors.HexColor("#5470C6"), colors.HexColor("#91CC75")  # ECharts' first two colours


def P(text: str, style: ParagraphStyle) -> Paragraph:
    """A paragraph whose every character the PDF font can draw (see glyphs.py)."""
    return Paragraph(para(text), style)


def _cell(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
    return str(v)


def table(head: list[str], body: list[list[Any]], widths: list[float]) -> Table:
    data = [[P(h, BODY) for h in head]] + [[P(_cell(v), BODY) for v in line] for line in body]
    t = Table(data, colWidths=[w * mm for w in widths], repeatRows=1)
    t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                           ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#DDEBF7")),
                           ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    return t


def daily_chart(report: dict[str, Any], width_mm: float = 170, height_mm: float = 70) -> Drawing:
    d = Drawing(width_mm * mm, height_mm * mm)
    days = report["daily"]
    chart = VerticalBarChart()
    chart.x, chart.y = int(14 * mm), int(12 * mm)
    chart.width, chart.height = int((width_mm - 20) * mm), int((height_mm - 24) * mm)
    chart.data = [[x["electricity_kwh"] or 0 for x in days], [x["re_used_kwh"] or 0 for x in days]]
    chart.bars[0].fillColor, chart.bars[1].fillColor = BLUE, GREEN
    chart.categoryAxis.categoryNames = [x["day"][5:] if i % max(1, len(days) // 12) == 0 else ""
                                        for i, x in enumerate(days)]
    chart.categoryAxis.labels.fontName = chart.valueAxis.labels.fontName = FONT
    chart.categoryAxis.labels.fontSize = chart.valueAxis.labels.fontSize = 6
    chart.valueAxis.valueMin = 0
    d.add(chart)
    legend = Legend()
    legend.x, legend.y = int(16 * mm), int((height_mm - 4) * mm)
    legend.fontName, legend.fontSize, legend.columnMaximum, legend.deltax = FONT, 7, 1, 90
    legend.colorNamePairs = [(BLUE, plain("用电量 electricity (kWh)")), (GREEN, plain("新能源消纳 RE used (kWh)"))]
    d.add(legend)
    d.add(String(width_mm * mm - 2 * mm, 2 * mm, "每日 daily", fontName=FONT, fontSize=7, textAnchor="end"))
    return d


def zero_carbon_part(report: dict[str, Any]) -> list[Any]:
    """The zero-carbon section's table (analytics.zero_carbon.report_rows), or why there is none."""
    zc = report_rows(report)
    if not zc:
        return [P("本期无零碳园区指标 No zero-carbon park indicators in this report.", BODY)]
    return [table(REPORT_HEAD, zc, [44, 16, 18, 18, 26, 52])]


def write_pdf(report: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = SimpleDocTemplate(str(path), pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm,
                            topMargin=16 * mm, bottomMargin=16 * mm, title=rows.title(report), author="parkmon")
    story: list[Any] = [
        P(rows.title(report), H1),
        P(f"统计期 Period: {report['period_start']} — {report['period_end']} · 园区类型 Class: "
                  f"{rows.CLASS_ZH.get(report['park_class'], report['park_class'])} · 生成 Generated: "
                  f"{report['generated_at']}", BODY),
        P("一、主要指标 Key indicators", H2),
        table(rows.SUMMARY_HEAD, rows.summary(report), [62, 24, 22, 34, 28]),
    ]
    if report["daily"]:
        story += [P("二、每日用电与新能源消纳 Daily electricity and renewable energy used", H2),
                  daily_chart(report)]
    ents = rows.enterprises(report)
    story += [P(f"三、企业能耗 Enterprises ({len(ents)})", H2),
              table(rows.ENTERPRISE_HEAD, ents[:60], [34, 26, 30, 24, 20, 28])]
    if len(ents) > 60:
        story.append(P(f"… 另 {len(ents) - 60} 家企业见 Excel 附表 (the rest are in the Excel file)", BODY))
    outlets = rows.pollutants(report)
    story += [P("四、污染物排放 Pollutant outlets", H2),
              table(rows.POLLUTANT_HEAD, outlets, [16, 16, 16, 11, 13, 16, 17, 14, 13, 12, 16]) if outlets
              else P("本期无在线监测排口数据 No outlet data in this period.", BODY)]
    costs, bal = rows.cost(report), rows.balances(report)
    story += [P("五、分时电费 Electricity cost by time-of-use band", H2),
              table(rows.COST_HEAD, costs[:66], [34, 34, 34, 34, 28]) if costs
              else P("本期无电价或用电数据 No tariff or electricity data in this period.", BODY),
              P("六、总分表平衡 Meter balance (main meter vs sum of sub-meters)", H2),
              table(rows.BALANCE_HEAD, bal, [40, 24, 18, 20, 18, 18, 16, 12]) if bal
              else P("登记表未设总分表关系 No meter balance in the registry (sum_of).", BODY),
              P("七、国家级零碳园区指标 National zero-carbon park indicators (发改环资〔2025〕910号, 1+5)", H2),
              *zero_carbon_part(report),
              Spacer(1, 6 * mm),
              P("方法与因子见 docs/indicators/；每项数值的输入见 JSON 报告 (parkmon report --json). "
                        "Methods and factors: docs/indicators/; every figure's inputs are in the JSON report.", BODY)]
    doc.build(story)
    return path
