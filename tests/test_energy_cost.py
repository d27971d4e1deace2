"""Electricity cost under time-of-use tariffs (分时电价, issue 23): a July with all four bands, a tariff change on
the 16th, a demand charge and an enterprise with its own table, worked by hand and checked on the API (park
and one enterprise), `parkmon indicators energy-cost`, the monthly report (JSON and Excel), the live board,
and again after `parkmon ingest maintain` (the rollup path). The data goes in through the public ways: the
registry over HTTP, `parkmon import readings`, the park's tariff file named by PARKMON_TARIFFS."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from pypdf import PdfReader

from ingest.store import Store, open_store
from parkmon.api.app import create_app
from parkmon.api.board import LiveBoard
from tests.test_report_glyphs import _mapped

API = "/api/v1"
CN = timezone(timedelta(hours=8))
JULY = datetime(2025, 7, 1, tzinfo=CN)
AUGUST = datetime(2025, 8, 1, tzinfo=CN)
SPIKE = datetime(2025, 7, 10, 14, 0, tzinfo=CN)  # 14:00-14:15 on the 10th: +50 kWh (a flat hour of table A)

# The park's own tariff file. Table A until 15 July, table B from 16 July (the change mid-month); both with
# all four bands in July, on whole hours. Enterprise e2 has its own flat table.
#              sharp        | peak                     | valley       | flat (the rest)
#   A (1-15):  19-21  1.20  | 08-11, 17-19        1.00 | 23-07  0.30  | 07, 11-17, 21-23   0.60 ; demand 40 yuan/kW
#   B (16-31): 20-22  1.30  | 08-12, 18-20        1.10 | 00-08  0.28  | 12-18, 22-24       0.65 ; demand 45 yuan/kW
TARIFFS = """
tariffs:
  - id: tp-2025a
    name_zh: 测试园区分时电价A
    name_en: Test park tariff A
    park: tp
    valid_from: 2025-01-01
    valid_to: 2025-07-16
    prices: {sharp: 1.2, peak: 1.0, flat: 0.6, valley: 0.3}
    demand_charge: 40
    seasons:
      - months: [7, 8]
        hours: {sharp: ["19:00-21:00"], peak: ["08:00-11:00", "17:00-19:00"], valley: ["23:00-07:00"]}
    source: a test table
  - id: tp-2025b
    name_zh: 测试园区分时电价B
    park: tp
    valid_from: 2025-07-16
    prices: {sharp: 1.3, peak: 1.1, flat: 0.65, valley: 0.28}
    demand_charge: 45
    seasons:
      - months: [7, 8]
        hours: {sharp: ["20:00-22:00"], peak: ["08:00-12:00", "18:00-20:00"], valley: ["00:00-08:00"]}
    source: a test table
  - id: tp-e2
    name_zh: 二号企业单一电价
    park: tp
    enterprise: e2
    valid_from: 2025-01-01
    prices: {flat: 0.5}
    source: a test table
"""

# The load: e1 imports 120 kWh/h in hours 00-11 and 240 kWh/h in hours 12-23 (30 / 60 kWh a quarter hour), plus
# the spike; e2 10 kWh/h all day. A day of e1 by band:
#   A: sharp 19,20 = 2 x 240 = 480; peak 8,9,10 = 360 + 17,18 = 480 -> 840; valley 23 = 240 + 0-6 = 7 x 120 = 840
#      -> 1 080; flat 7,11 = 240 + 12-16 = 5 x 240 = 1 200 + 21,22 = 480 -> 1 920  (480+840+1080+1920 = 4 320)
#      yuan: 480 x 1.2 = 576; 840 x 1.0 = 840; 1 920 x 0.6 = 1 152; 1 080 x 0.3 = 324 -> 2 892 a day
#   B: sharp 20,21 = 480; peak 8-11 = 480 + 18,19 = 480 -> 960; valley 0-7 = 8 x 120 = 960;
#      flat 12-17 = 6 x 240 = 1 440 + 22,23 = 480 -> 1 920
#      yuan: 480 x 1.3 = 624; 960 x 1.1 = 1 056; 1 920 x 0.65 = 1 248; 960 x 0.28 = 268.8 -> 3 196.8 a day
# July, e1: 15 days of A, 16 of B, the spike 50 kWh flat at 0.60 = 30 yuan
#   sharp  kWh 480 x 31 = 14 880            yuan 576 x 15 + 624 x 16 = 8 640 + 9 984 = 18 624
#   peak   kWh 840 x 15 + 960 x 16 = 27 960  yuan 840 x 15 + 1 056 x 16 = 12 600 + 16 896 = 29 496
#   flat   kWh 1 920 x 31 + 50 = 59 570      yuan 1 152 x 15 + 1 248 x 16 + 30 = 17 280 + 19 968 + 30 = 37 278
#   valley kWh 1 080 x 15 + 960 x 16 = 31 560 yuan 324 x 15 + 268.8 x 16 = 4 860 + 4 300.8 = 9 160.8
#   energy 18 624 + 29 496 + 37 278 + 9 160.8 = 94 558.8 yuan for 133 970 kWh
#   demand: the largest quarter hour is the spike's, 60 + 50 = 110 kWh in 0.25 h = 440 kW, charged at the table
#   in force on 1 July (A: 40, not B's 45): 440 x 40 = 17 600 -> e1 total 112 158.8
# e2: 10 x 24 x 31 = 7 440 kWh, all flat at its own 0.50 = 3 720 yuan, no demand charge
# park: flat 59 570 + 7 440 = 67 010 kWh, 37 278 + 3 720 = 40 998 yuan; energy 94 558.8 + 3 720 = 98 278.8;
#   total 98 278.8 + 17 600 = 115 878.8 yuan for 133 970 + 7 440 = 141 410 kWh
BANDS = {"sharp": (14_880, 18_624.0), "peak": (27_960, 29_496.0), "flat": (67_010, 40_998.0),
         "valley": (31_560, 9_160.8)}
E1_TOTAL, E2_TOTAL, PARK_TOTAL = 112_158.8, 3_720.0, 115_878.8
MONTH = {"start": JULY.isoformat(), "end": AUGUST.isoformat()}


def _readings_csv(path: Path) -> None:
    """Quarter-hourly counters of e1 and e2 (kWh) from 1 July 00:00 to 1 August 00:00."""
    rows = [["timestamp", "point", "value", "quality", "metric"]]
    e1 = e2 = 0.0
    t = JULY
    first = True
    while t <= AUGUST:
        rows.append([t.isoformat(), "e1.m1.imp", f"{e1:.1f}", "0", "elec.import.energy" if first else ""])
        rows.append([t.isoformat(), "e2.m1.imp", f"{e2:.1f}", "0", "elec.import.energy" if first else ""])
        first = False
        e1 += (30.0 if t.hour < 12 else 60.0) + (50.0 if t == SPIKE else 0.0)
        e2 += 2.5
        t += timedelta(minutes=15)
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parkmon.cli", *args], capture_output=True, text=True, timeout=300,
                          env=os.environ.copy())


def _open_park(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Store, TestClient]:
    """Park tp with enterprises e1, e2 (meter m1 each) registered over HTTP, and its tariff file in force."""
    tariffs = tmp_path / "tariffs.yaml"
    tariffs.write_text(TARIFFS, encoding="utf-8")
    monkeypatch.setenv("PARKMON_TARIFFS", str(tariffs))  # the park's own file, as it would configure it
    store = open_store(url)
    store.create_schema()
    http = TestClient(create_app(store))
    reg = {"park": {"key": "tp", "name_zh": "分时电价测试园", "name_en": "Tariff test park", "region": "north"},
           "enterprises": [{"key": e, "devices": [{"id": "m1", "kind": "meter"}]} for e in ("e1", "e2")]}
    assert http.put(f"{API}/parks/tp", json=reg).status_code == 200
    return store, http


@pytest.fixture
def july(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Store, str, TestClient]]:
    """Park tp on SQLite with July's quarter-hourly counters of e1 and e2 imported."""
    url = f"sqlite:///{tmp_path / 'tp.db'}"
    store, http = _open_park(url, tmp_path, monkeypatch)
    _readings_csv(tmp_path / "july.csv")
    imported = _cli("import", "readings", str(tmp_path / "july.csv"), "--park", "tp", "--db", url)
    assert imported.returncode == 0, imported.stderr
    yield store, url, http
    store.close()


@pytest.fixture
def on_each_store(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, TestClient]]:
    """Park tp on each back end (SQLite, PostgreSQL, TimescaleDB where the server has it), no readings yet."""
    store, http = _open_park(store_url, tmp_path, monkeypatch)
    yield store_url, http
    store.close()


def _check_month(body: dict[str, Any]) -> None:
    i = body["inputs"]
    assert body["value"] == pytest.approx(PARK_TOTAL, abs=0.005)
    assert body["unit"] == "元" and body["completeness"] == 1.0
    assert {b["band"]: (b["kwh"], b["yuan"]) for b in i["by_band"]} == {
        k: (pytest.approx(kwh, abs=1e-3), pytest.approx(yuan, abs=0.005)) for k, (kwh, yuan) in BANDS.items()}
    assert [b["name_zh"] for b in i["by_band"]] == ["尖峰", "高峰", "平段", "低谷"]
    assert i["energy_yuan"] == pytest.approx(98_278.8, abs=0.005) and i["kwh"] == pytest.approx(141_410, abs=1e-3)
    assert i["demand"] == [{"month": "2025-07", "max_kw": pytest.approx(440.0), "yuan_per_kw": 40.0,
                            "yuan": pytest.approx(17_600.0), "charged": True, "tariff": "tp-2025a"}]
    assert {e["enterprise"]: e["total_yuan"] for e in i["enterprises"]} == {
        "e1": pytest.approx(E1_TOTAL, abs=0.005), "e2": pytest.approx(E2_TOTAL, abs=0.005)}
    assert [t["id"] for t in i["tariff_tables"]] == ["tp-2025a", "tp-2025b", "tp-e2"]


def test_a_july_with_four_bands_a_tariff_change_and_a_demand_charge(july: tuple[Store, str, TestClient],
                                                                    tmp_path: Path) -> None:
    store, url, http = july
    r = http.get(f"{API}/parks/tp/indicators/energy-cost", params=MONTH)
    assert r.status_code == 200, r.text
    _check_month(r.json())

    # one enterprise, one day (10 July, table A): 2 892 + the spike's 30 = 2 922 yuan; the demand of a part month
    # is listed, not charged (a bill charges whole months)
    day = http.get(f"{API}/parks/tp/indicators/energy-cost", params={
        "start": "2025-07-10T00:00:00+08:00", "end": "2025-07-11T00:00:00+08:00", "enterprise": "e1"}).json()
    assert day["value"] == pytest.approx(2_922.0, abs=0.005)
    assert [(d["max_kw"], d["charged"], d["yuan"]) for d in day["inputs"]["demand"]] == [(440.0, False, 0.0)]

    # a start between band edges is refused with the way to ask
    off = http.get(f"{API}/parks/tp/indicators/energy-cost", params={"start": "2025-07-10T00:05:00+08:00",
                                                                      "end": "2025-07-11T00:00:00+08:00"})
    assert off.status_code == 422 and "quarter hour" in off.json()["detail"]
    long = http.get(f"{API}/parks/tp/indicators/energy-cost", params={"start": "2024-01-01T00:00:00+08:00",
                                                                       "end": "2025-07-01T00:00:00+08:00"})
    assert long.status_code == 422 and "longer than 366 days" in long.json()["detail"]

    cli = _cli("indicators", "energy-cost", "--park", "tp", "--start", MONTH["start"], "--end", MONTH["end"],
               "--db", url)
    assert cli.returncode == 0, cli.stderr
    _check_month(json.loads(cli.stdout))

    # the monthly report: the section in JSON, the sheet in Excel (park lines by band, demand, total)
    rep = _cli("report", "--park", "tp", "--period", "2025-07", "--format", "json", "xlsx", "pdf", "--out",
               str(tmp_path), "--db", url)
    assert rep.returncode == 0, rep.stderr
    _check_month(json.loads((tmp_path / "tp-2025-07.json").read_text(encoding="utf-8"))["energy_cost"])
    sheet = load_workbook(tmp_path / "tp-2025-07.xlsx")["分时电费 Cost"]
    lines = {(r[0], r[1]): r[3] for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert lines[("园区 park", "尖峰 sharp")] == pytest.approx(18_624.0, abs=0.005)
    assert lines[("园区 park", "低谷 valley")] == pytest.approx(9_160.8, abs=0.005)
    assert lines[("园区 park", "需量电费 demand")] == pytest.approx(17_600.0)
    assert lines[("园区 park", "合计 total")] == pytest.approx(PARK_TOTAL, abs=0.005)
    assert lines[("e2", "合计 total")] == pytest.approx(E2_TOTAL, abs=0.005)
    text = "".join(page.extract_text() for page in PdfReader(tmp_path / "tp-2025-07.pdf").pages)
    assert not sorted({ch for ch in text if not ch.isspace() and ord(ch) not in _mapped()})  # every glyph prints
    assert "五、分时电费" in text and "尖峰 sharp" in text and "18,624.0" in text and "115,878.8" in text

    # the live board on 31 July, one millisecond before midnight (a stand-in for running the test then): the
    # month so far misses 1 ms of the last quarter hour, 60 kWh x 1/900 000 at 0.65: far below a fen. July is not
    # whole yet, so its demand is not charged: the month so far is the energy, 98 278.8 yuan
    app = http.app
    app.state.board = LiveBoard(store, app.state.share_settings, clock=lambda: (AUGUST.timestamp() * 1000 - 1) / 1000)
    board = http.get(f"{API}/parks/tp/live/snapshot").json()["cost"]
    assert board["value"] == pytest.approx(98_278.8, abs=0.01) and board["demand_yuan"] == 0.0
    assert {b["band"]: b["yuan"] for b in board["by_band"]} == {
        k: pytest.approx(yuan, abs=0.01) for k, (_kwh, yuan) in BANDS.items()}
    assert [t["id"] for t in board["tariffs"]] == ["tp-2025a", "tp-2025b", "tp-e2"]

    # the rollup path: after ingest's maintenance the same month from the rollups
    done = _cli("ingest", "maintain", "--db", url)
    assert done.returncode == 0, done.stderr
    again = http.get(f"{API}/parks/tp/indicators/energy-cost", params=MONTH).json()
    assert again["inputs"]["completeness"] == 1.0
    _check_month(again)


def test_a_tariff_file_that_cannot_be_used_says_why(july: tuple[Store, str, TestClient], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _store, _url, http = july
    bad = tmp_path / "bad.yaml"
    # table A's valley to 09:00 runs into its peak from 08:00: each quarter hour has one band
    bad.write_text(TARIFFS.replace('valley: ["23:00-07:00"]', 'valley: ["23:00-09:00"]'), encoding="utf-8")
    monkeypatch.setenv("PARKMON_TARIFFS", str(bad))
    r = http.get(f"{API}/parks/tp/indicators/energy-cost", params=MONTH)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert str(bad) in detail and "overlaps" in detail and "each hour has one band" in detail, detail
    monkeypatch.setenv("PARKMON_TARIFFS", str(tmp_path / "missing.yaml"))
    r = http.get(f"{API}/parks/tp/indicators/energy-cost", params=MONTH)
    assert r.status_code == 422 and "no such tariff file" in r.json()["detail"], r.text


def test_minute_readings_priced_from_the_rollups_give_the_readings_figures(on_each_store: tuple[str, TestClient],
                                                                           tmp_path: Path) -> None:
    """A meter read every minute (as a gateway polls it) fills the 1-minute rollups, which then answer; one read
    every 15 minutes (above) leaves them without steps and the readings answer instead. Both give the same."""
    url, http = on_each_store
    # e3 on 15 and 16 July (table A, then B after the change at midnight), 2 kWh a minute in hours 00-11 and 4 in
    # 12-23: the same 120 / 240 kWh an hour as e1, so 2 892 (A) + 3 196.8 (B) = 6 088.8 yuan for 2 x 4 320 kWh
    rows = [["timestamp", "point", "value", "quality", "metric"]]
    t, total, end = datetime(2025, 7, 15, tzinfo=CN), 0.0, datetime(2025, 7, 17, tzinfo=CN)
    while t <= end:
        rows.append([t.isoformat(), "e3.m1.imp", f"{total:.1f}", "0", "elec.import.energy" if len(rows) == 1 else ""])
        total += 2.0 if t.hour < 12 else 4.0
        t += timedelta(minutes=1)
    with (tmp_path / "e3.csv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    imported = _cli("import", "readings", str(tmp_path / "e3.csv"), "--park", "tp", "--db", url)
    assert imported.returncode == 0, imported.stderr
    two_days = {"start": "2025-07-15T00:00:00+08:00", "end": "2025-07-17T00:00:00+08:00", "enterprise": "e3"}
    raw = http.get(f"{API}/parks/tp/indicators/energy-cost", params=two_days).json()
    assert raw["inputs"]["source"] == "raw"
    done = _cli("ingest", "maintain", "--db", url)
    assert done.returncode == 0, done.stderr
    rolled = http.get(f"{API}/parks/tp/indicators/energy-cost", params=two_days).json()
    assert rolled["inputs"]["source"] == "1m"  # every quarter hour from the minute rollups, none from readings
    for body in (raw, rolled):
        assert body["value"] == pytest.approx(6_088.8, abs=0.005) and body["inputs"]["kwh"] == pytest.approx(8_640)
        # sharp 480 x 1.2 + 480 x 1.3 = 1 200; valley 1 080 x 0.3 + 960 x 0.28 = 324 + 268.8 = 592.8
        yuan = {b["band"]: b["yuan"] for b in body["inputs"]["by_band"]}
        assert yuan["sharp"] == pytest.approx(1_200.0) and yuan["valley"] == pytest.approx(592.8)
