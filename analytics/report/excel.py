"""The park report as an Excel workbook (openpyxl): a summary sheet, enterprises, pollutant outlets, the
electricity cost by tariff band, the meter balances, and the daily electricity with a chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.worksheet import Worksheet

from analytics.report import rows
from analytics.zero_carbon import REPORT_HEAD, report_rows

_HEAD_FILL = PatternFill("solid", fgColor="DDEBF7")


def _sheet(ws: Worksheet, head: list[str], body: list[list[Any]], widths: list[int]) -> None:
    ws.append(head)
    for cell in ws[ws.max_row]:
        cell.font, cell.fill = Font(bold=True), _HEAD_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    for line in body:
        ws.append(line)
    for i, w in enumerate(widths):
        ws.column_dimensions[chr(ord("A") + i)].width = w
    ws.freeze_panes = f"A{ws.max_row - len(body) + 1}"


def write_excel(report: dict[str, Any], path: Path) -> Path:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "概要 Summary"
    ws.append([rows.title(report)])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append([f"统计期 Period: {report['period_start']} — {report['period_end']}",
               f"园区类型 Class: {rows.CLASS_ZH.get(report['park_class'], report['park_class'])}",
               f"生成时间 Generated: {report['generated_at']}"])
    ws.append([])
    _sheet(ws, rows.SUMMARY_HEAD, rows.summary(report), [48, 16, 14, 26, 18])
    _sheet(wb.create_sheet("企业 Enterprises"), rows.ENTERPRISE_HEAD, rows.enterprises(report),
           [18, 14, 16, 14, 12, 18])
    _sheet(wb.create_sheet("污染物 Pollutants"), rows.POLLUTANT_HEAD, rows.pollutants(report),
           [14, 14, 14, 10, 12, 14, 16, 12, 12, 10, 14])
    _sheet(wb.create_sheet("分时电费 Cost"), rows.COST_HEAD, rows.cost(report), [18, 18, 16, 16, 14])
    _sheet(wb.create_sheet("总分表平衡 Balance"), rows.BALANCE_HEAD, rows.balances(report),
           [26, 16, 14, 18, 14, 14, 12, 8])
    _sheet(wb.create_sheet("零碳园区 Zero-carbon"), REPORT_HEAD, report_rows(report), [44, 14, 14, 14, 24, 80])
    days = wb.create_sheet("每日 Daily")
    _sheet(days, rows.DAILY_HEAD, rows.daily(report), [14, 20, 22])
    if report["daily"]:
        chart = BarChart()
        chart.title = "每日用电与新能源消纳 Daily electricity and RE used (kWh)"
        chart.y_axis.title = "kWh"
        n = len(report["daily"]) + 1
        chart.add_data(Reference(days, min_col=2, max_col=3, min_row=1, max_row=n), titles_from_data=True)
        chart.set_categories(Reference(days, min_col=1, min_row=2, max_row=n))
        chart.width, chart.height = 24, 10
        days.add_chart(chart, "E2")
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path
