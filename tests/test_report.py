"""The monthly report a park sends its regulator: `parkmon report` writes Excel, PDF and JSON whose
figures are the indicators' own, worked out here by hand for a simulated month."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from analytics.report.cli import main as report_main
from ingest.store import Store
from ingest.store.base import IncomingBatch
from parkmon.common import wire
from parkmon.common.clock import CHINA

Q, H, DAY = 15 * 60_000, 3_600_000, 86_400_000
JAN1 = int(datetime(2026, 1, 1, tzinfo=CHINA).timestamp() * 1000)
FEB1 = int(datetime(2026, 2, 1, tzinfo=CHINA).timestamp() * 1000)


def _seed(store: Store) -> None:
    """January 2026 at 15-minute readings: e01 imports 100 kWh per quarter hour and makes 40 kWh of PV
    per quarter hour from 09:00 to 15:00 (China time); e02 imports 50 kWh and burns 10 m³ of gas."""
    store.upsert_park("demo", "示范园区", "Demo park", "low_carbon", "呼和浩特")
    pts = {"e01": {"imp": "elec.import.energy", "pv": "pv.generation.energy"},
           "e02": {"imp": "elec.import.energy", "gas": "gas.volume"}}
    unit = {"elec.import.energy": "kWh", "pv.generation.energy": "kWh", "gas.volume": "m3"}
    for ent, p in pts.items():
        store.upsert_meta("demo", ent, "gw", wire.Meta(1, "gw", 0, {
            k: wire.PointMeta(m, unit[m], "counter", "") for k, m in p.items()}, {}))
    c = {"e01.imp": 0.0, "e01.pv": 0.0, "e02.imp": 0.0, "e02.gas": 0.0}
    out: dict[str, list[tuple[str, int, float | None, int]]] = {"e01": [], "e02": []}
    t = JAN1 - H
    while t <= FEB1 + H:
        c["e01.imp"] += 100
        c["e01.pv"] += 40 if 9 <= (t - JAN1) % DAY // H < 15 else 0
        c["e02.imp"] += 50
        c["e02.gas"] += 10
        for key, v in c.items():
            ent, _, pt = key.partition(".")
            out[ent].append((pt, t, v, 0))
        t += Q
    store.write_batches([IncomingBatch("demo", e, "gw", wire.Batch(1, "gw", 1, JAN1, s), JAN1) for e, s in out.items()])


def test_monthly_report_excel_pdf_json(store: Store, store_url: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    _seed(store)
    assert report_main(["--db", store_url, "--park", "demo", "--period", "2026-01", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "新能源消纳比例" in err and "done in" in err  # progress, section by section
    body = json.loads((tmp_path / "demo-2026-01.json").read_text(encoding="utf-8"))
    # by hand, a day: import 96 x 150 = 14 400 kWh, PV 24 quarter hours x 40 = 960 kWh, all used on site
    share = body["new_energy_share"]
    assert share["value"] == pytest.approx(960 / (14400 + 960))
    assert share["target"] == pytest.approx(0.5) and share["status"] == "below_target"
    assert share["inputs"]["source"] == "1h"  # a closed month: from the rollups
    kwh, gas = 31 * (14400 + 960), 31 * 96 * 10
    assert body["comprehensive_energy"]["value"] == pytest.approx((kwh * 0.1229 + gas * 1.2143) / 1000, rel=1e-6)
    assert [d["electricity_kwh"] for d in body["daily"]] == pytest.approx([14400 + 960] * 31)
    assert [e["enterprise"] for e in body["enterprises"]] == ["e01", "e02"]
    assert body["intensity"]["water"]["status"] == "insufficient_data"  # no value added filed: said, not guessed

    wb = load_workbook(tmp_path / "demo-2026-01.xlsx")
    summary = {row[0]: row for row in wb["概要 Summary"].iter_rows(values_only=True) if row and row[0]}
    line = summary["新能源消纳比例 New-energy share"]
    assert line[1] == f"{960 / 15360 * 100:.1f}%" and line[2] == "50.0%" and line[3].startswith("未达标")
    daily = wb["每日 Daily"]
    assert daily.max_row == 32 and len(daily._charts) == 1  # a header, 31 days, and the chart
    ents = list(wb["企业 Enterprises"].iter_rows(min_row=2, values_only=True))
    # largest first: e02's gas (960 m³ a day x 1.2143 kgce) outweighs e01's extra electricity
    assert [e[0] for e in ents] == ["e02", "e01"] and ents[1][2] == pytest.approx(31 * (9600 + 960))

    text = "".join(page.extract_text() for page in PdfReader(tmp_path / "demo-2026-01.pdf").pages)
    assert "示范园区 2026-01 月度监测报告" in text and "新能源消纳比例" in text and "未达标" in text


def test_region_report_and_errors(store: Store, store_url: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    _seed(store)
    assert report_main(["--db", store_url, "--region", "呼和浩特", "--period", "2026-01", "--out",
                        str(tmp_path), "--format", "xlsx", "pdf"]) == 0
    rows = list(load_workbook(tmp_path / "region-呼和浩特-2026-01.xlsx").active.iter_rows(values_only=True))
    assert rows[2][0] == "示范园区 (demo)" and rows[2][2] == f"{960 / 15360 * 100:.1f}%"
    assert "示范园区" in PdfReader(tmp_path / "region-呼和浩特-2026-01.pdf").pages[0].extract_text()
    capsys.readouterr()
    assert report_main(["--db", store_url, "--park", "nowhere", "--period", "2026-01", "--out", str(tmp_path)]) == 2
    assert "park 'nowhere' is not registered" in capsys.readouterr().err
    assert report_main(["--db", store_url, "--park", "demo", "--period", "2026-13x", "--out", str(tmp_path)]) == 2
    assert "neither YYYY-MM" in capsys.readouterr().err
