"""The national zero-carbon park indicators (发改环资〔2025〕910号, "1 + 5", issue 23): 单位能耗碳排放 against
each size band's threshold, above and below it; the clean-energy share of all energy; the metered guiding
indicators; and the 1 + 5 together on the API, the report (its own section, JSON, Excel, PDF) and the
smart-park scorecard. Every expected figure is worked out by hand in the comments.

Real SQLite stores written as a gateway writes them (store.write_batches), the real API (TestClient), the
real report writers. A year of counters is two readings per meter, on 2025-01-01 00:00 and 2026-01-01 00:00
China time: the raw readings answer (ingest has not rolled them up), each counter's energy is exactly the
difference. Factors (analytics/factors.yaml): electricity 当量值 0.1229 kgce/kWh; 内蒙古 grid 2025 → the 2022
factor 0.6849 kgCO₂/kWh; with green power claimed, the national residual factor (2025 → 2023) 0.6096; gas
1.2143 kgce/m³. Thresholds (analytics/defaults.yaml, [V2]): 20万–100万 tce ≤ 0.20, ≥ 100万 tce ≤ 0.30.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from pypdf import PdfReader

from analytics.report.excel import write_excel
from analytics.report.gather import park_report
from analytics.report.pdf import write_pdf
from analytics.targets import TargetConfigError
from analytics.zero_carbon import annual_tce, band_for, load_zero_carbon_settings, report_rows, water_reuse_rate
from ingest.store import Store, open_store
from ingest.store.base import IncomingBatch
from parkmon.api.app import create_app
from parkmon.common import wire
from parkmon.common.clock import CHINA, now_ms
from tests.test_report_glyphs import _mapped

API = "/api/v1"
Y0 = 1_735_660_800_000  # 2025-01-01 00:00 China time (UTC+8)
Y1 = 1_767_196_800_000  # 2026-01-01 00:00 China time
YEAR = {"start": "2025-01-01T00:00:00+08:00", "end": "2026-01-01T00:00:00+08:00"}
METRIC = {"imp": "elec.import.energy", "exp": "elec.export.energy", "pv": "pv.generation.energy",
          "gas": "gas.volume", "water": "water.volume", "reuse": "water.reuse.volume",
          "heat_av": "heat.waste.energy", "heat_rec": "heat.recovered.energy"}
UNIT = {"gas": "m3", "water": "m3", "reuse": "m3", "heat_av": "GJ", "heat_rec": "GJ"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    st = open_store(f"sqlite:///{tmp_path / 'zc.db'}")
    st.create_schema()
    yield st
    st.close()


def _park(store: Store, park: str, year: dict[str, float], start: int = Y0, end: int = Y1) -> None:
    """A park whose one enterprise's counters advance by ``year`` (kWh, m³, GJ) from ``start`` to ``end``."""
    store.upsert_park(park, f"{park}园区", park, "zero_carbon")
    store.upsert_meta(park, "e1", "gw", wire.Meta(1, "gw", 0, {
        k: wire.PointMeta(METRIC[k], UNIT.get(k, "kWh"), "counter", "") for k in year}))
    samples: list[tuple[str, int, float | None, int]] = [(k, start, 0.0, 0) for k in year]
    samples += [(k, end, float(v), 0) for k, v in year.items()]
    store.write_batches([IncomingBatch(park, "e1", "gw", wire.Batch(1, "gw", 1, start, samples), start)])


def _get(http: TestClient, park: str, key: str, **params: Any) -> dict[str, Any]:
    r = http.get(f"{API}/parks/{park}/indicators/{key}", params={**YEAR, **params})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


# (park, a year's counters, expected tCO₂/tce, threshold, status), by hand:
CASES = [
    # band 20万–100万 tce (≤ 0.20): used 1e8 + 3.9e9 = 4e9 kWh × 0.1229 = 491 600 tce;
    # CO₂ 1e8 × 0.6849 = 68 490 t → 68 490 / 491 600 = 0.139321 ≤ 0.20: met
    ("b1met", {"imp": 1e8, "pv": 3.9e9}, 68_490 / 491_600, 0.20, "met"),
    # same tce, import 2e8: 136 980 t / 491 600 = 0.278641 > 0.20: below target
    ("b1over", {"imp": 2e8, "pv": 3.8e9}, 136_980 / 491_600, 0.20, "below_target"),
    # band ≥ 100万 tce (≤ 0.30): used 4e8 + 9.6e9 = 1e10 kWh → 1 229 000 tce; CO₂ 4e8 × 0.6849 = 273 960 t
    # → 0.222913 ≤ 0.30: met (above the small band's 0.20: the band decides)
    ("b2met", {"imp": 4e8, "pv": 9.6e9}, 273_960 / 1_229_000, 0.30, "met"),
    # import 6e8: 410 940 t / 1 229 000 = 0.334369 > 0.30: below target
    ("b2over", {"imp": 6e8, "pv": 9.4e9}, 410_940 / 1_229_000, 0.30, "below_target"),
    # under 20万 tce: 1e8 + 9e8 = 1e9 kWh → 122 900 tce, no band: 68 490 / 122 900 = 0.557282, no national threshold
    ("small", {"imp": 1e8, "pv": 9e8}, 68_490 / 122_900, None, "no_target"),
]


@pytest.mark.parametrize(("park", "year", "value", "threshold", "status"), CASES, ids=[c[0] for c in CASES])
def test_core_indicator_against_each_size_band(store: Store, park: str, year: dict[str, float], value: float,
                                               threshold: float | None, status: str) -> None:
    _park(store, park, year)
    http = TestClient(create_app(store))
    core = _get(http, park, "zero-carbon-core")
    assert core["name_zh"] == "单位能耗碳排放(零碳园区核心指标)" and core["unit"] == "tCO2/tce"
    assert core["value"] == pytest.approx(value, abs=1e-6)
    assert core["target"] == threshold and core["status"] == status
    assert core["inputs"]["source"] == "raw" and core["inputs"]["meters_not_covering_period"] == []
    assert (core["inputs"]["band"] is None) == (threshold is None)
    # rolled up (China days), the counters read only at the year's two edges give the same figure
    store.refresh_rollups()
    rolled = _get(http, park, "zero-carbon-core")
    assert rolled["inputs"]["source"] == "1d" and rolled["value"] == core["value"] and rolled["status"] == status
    # the 1 + 5 together: the core decides the park's value and status
    park_view = _get(http, park, "zero-carbon-park")
    assert (park_view["value"], park_view["status"]) == (core["value"], status)
    assert [i["key"] for i in park_view["inputs"]["indicators"]] == [
        "zero_carbon_core", "clean_energy_share", "unit_product_energy", "solid_waste_utilisation",
        "waste_heat_utilisation", "water_reuse_rate"]


def test_net_import_and_the_green_power_register(store: Store) -> None:
    # import 3e8, export 1e8, PV 3.8e9 kWh: used 3e8 + 3.8e9 − 1e8 = 4e9 kWh → 491 600 tce.
    # A contract settled 1e8 kWh over 2025 (the register): green at zero, the rest at the residual factor 0.6096.
    # net import (净调入, the default): (3e8 − 1e8) − 1e8 green = 1e8 × 0.6096 = 60 960 t → 0.124003: met
    # on every kWh imported: (3e8 − 1e8 green) × 0.6096 = 121 920 t → 0.248007 > 0.20: below target
    _park(store, "gp", {"imp": 3e8, "exp": 1e8, "pv": 3.8e9})
    http = TestClient(create_app(store))
    r = http.put(f"{API}/parks/gp/green-power/contracts/GP-2025", json={
        "seller": "某风电公司", "project": "北山风电场", "period_start": "2025-01-01", "period_end": "2025-12-31",
        "contracted_kwh": 1e8, "settled_kwh": 1e8})
    assert r.status_code == 200, r.text
    net = _get(http, "gp", "zero-carbon-core")
    assert net["value"] == pytest.approx(60_960 / 491_600, abs=1e-6) and net["status"] == "met"
    assert net["inputs"]["green_counted_kwh"] == pytest.approx(1e8) and net["inputs"]["grid_kwh_counted"] == 2e8
    gross = _get(http, "gp", "zero-carbon-core", electricity_co2="import")
    assert gross["value"] == pytest.approx(121_920 / 491_600, abs=1e-6) and gross["status"] == "below_target"


def test_clean_energy_share_of_all_energy(store: Store) -> None:
    # import 1e8 + PV 9e8 kWh = 1e9 kWh → 122 900 tce, gas 2e7 m³ × 1.2143 = 24 286 tce: 147 186 tce in all.
    # RE used (no export, no storage, no green power) 9e8 kWh × 0.1229 = 110 610 tce
    # → 110 610 / 147 186 = 0.751498 < 0.90: below target (the electricity-only share would be 90 %)
    _park(store, "cg", {"imp": 1e8, "pv": 9e8, "gas": 2e7})
    http = TestClient(create_app(store))
    clean = _get(http, "cg", "clean-energy-share")
    assert clean["name_zh"] == "清洁能源消费占比"
    assert clean["value"] == pytest.approx(110_610 / 147_186, abs=1e-6) and clean["target"] == 0.90
    assert clean["status"] == "below_target"
    assert clean["inputs"]["comprehensive_energy_tce"] == pytest.approx(147_186)


def test_metered_guiding_indicators(store: Store) -> None:
    # water: intake 1e6 m³, reused 4e6 m³ → 4e6 / (4e6 + 1e6) = 0.80 ≥ 0.80: met (on the threshold)
    # waste heat: 6 000 GJ recovered of 10 000 GJ available → 0.60 ≥ 0.50: met
    _park(store, "res", {"water": 1e6, "reuse": 4e6, "heat_av": 10_000, "heat_rec": 6_000})
    http = TestClient(create_app(store))
    water = _get(http, "res", "water-reuse-rate")
    assert water["value"] == pytest.approx(0.80) and water["status"] == "met"
    heat = _get(http, "res", "waste-heat-utilisation")
    assert heat["value"] == pytest.approx(0.60) and heat["status"] == "met"
    # no solid-waste month on record: no value, and the result says what to enter
    waste = _get(http, "res", "solid-waste-utilisation")
    assert waste["value"] is None and waste["status"] == "insufficient_data"
    assert "/solid-waste" in waste["inputs"]["why_no_value"]
    # the enterprise's months, through the record type's route and its import (all or nothing):
    # 2025-03 fly ash: generated 1 000 t, utilised 850 t of which 50 t from earlier years' stock;
    # 2025-03 slag: generated 500 t, utilised 300 t; 2025-04 waste oil (hazardous): generated 20 t, utilised 10 t
    put = http.put(f"{API}/parks/res/solid-waste", json={"enterprise": "e1", "month": "2025-03", "waste": "粉煤灰",
                                                         "generated_t": 1000, "utilised_t": 850,
                                                         "utilised_from_stock_t": 50, "stored_t": 200})
    assert put.status_code == 200, put.text
    bad = http.post(f"{API}/parks/res/solid-waste/import", files={"file": ("sw.csv", (
        "企业,月份,固废名称,类别,产生量,综合利用量\n"
        "e1,2025-03,炉渣,general,500,300\n"
        "e1,2025-04,废矿物油,hazardous,20,10\n"
        "e9,2025-04,炉渣,general,5,1\n").encode(), "text/csv")})
    assert bad.status_code == 422 and bad.json()["detail"]["nothing_imported"] is True  # e9 is not registered
    assert [e["line"] for e in bad.json()["detail"]["errors"]] == [4]
    good = http.post(f"{API}/parks/res/solid-waste/import", files={"file": ("sw.csv", (
        "企业,月份,固废名称,类别,产生量,综合利用量\n"
        "e1,2025-03,炉渣,general,500,300\n"
        "e1,2025-04,废矿物油,hazardous,20,10\n").encode(), "text/csv")})
    assert good.status_code == 200, good.text
    # (850 + 300 + 10) / (1 000 + 500 + 20 + 50) = 1 160 / 1 570 = 0.738854 < 0.80: below target
    waste = _get(http, "res", "solid-waste-utilisation")
    assert waste["value"] == pytest.approx(1160 / 1570, abs=1e-9) and waste["status"] == "below_target"
    assert waste["inputs"]["months"] == ["2025-01", "2025-12"] and waste["inputs"]["records"] == 3
    # March alone: (850 + 300) / (1 500 + 50) = 1 150 / 1 550 = 0.741935
    march = _get(http, "res", "solid-waste-utilisation", start="2025-03-01T00:00:00+08:00",
                 end="2025-04-01T00:00:00+08:00")
    assert march["value"] == pytest.approx(1150 / 1550, abs=1e-9)
    # a park without reused-water meters: no value, naming the metric to register
    _park(store, "dry", {"water": 1e6})
    dry = _get(http, "dry", "water-reuse-rate")
    assert dry["value"] is None and "water.reuse.volume" in dry["inputs"]["why_no_value"]
    assert water_reuse_rate(3e6, 1e6) == pytest.approx(0.75)  # 3e6 / (3e6 + 1e6)


def test_bands_are_configuration_with_their_source(tmp_path: Path) -> None:
    s = load_zero_carbon_settings()
    assert s.bands_confidence == "V2" and "910" in s.bands_source
    # 2 458 000 tce a year: the default ≥ 100万 band (≤ 0.30); a park's file with the three bands recalled
    # (100万–200万 ≤ 0.3, ≥ 200万 ≤ 0.4, unconfirmed) puts it in the ≥ 200万 band, its source that file
    big = band_for(2_458_000, s)
    assert big is not None and big.max_t_co2_per_tce == 0.30
    override = tmp_path / "park.yaml"
    override.write_text("zero_carbon:\n  carbon_per_tce_bands:\n"
                        "    - {min_tce: 200000, max_tce: 1000000, max_t_co2_per_tce: 0.2}\n"
                        "    - {min_tce: 1000000, max_tce: 2000000, max_t_co2_per_tce: 0.3}\n"
                        "    - {min_tce: 2000000, max_t_co2_per_tce: 0.4}\n", encoding="utf-8")
    three = load_zero_carbon_settings(override)
    b3 = band_for(2_458_000, three)
    assert b3 is not None and b3.max_t_co2_per_tce == 0.4 and str(override) in three.bands_source
    assert band_for(199_999, three) is None  # below 20万 tce: no national threshold
    bad = tmp_path / "bad.yaml"
    bad.write_text("zero_carbon:\n  carbon_per_tce_bands:\n    - {min_tce: 0, max_t_co2_per_tce: 0.2}\n"
                   "    - {min_tce: 100, max_t_co2_per_tce: 0.3}\n", encoding="utf-8")
    with pytest.raises(TargetConfigError, match="overlap"):
        load_zero_carbon_settings(bad)
    # a month's energy decides the band annualised: 10 000 tce in 30 days → 10 000 × 365 / 30 = 121 666.667 a year
    annual, basis = annual_tce(10_000, 0, 30 * 86_400_000)
    assert annual == pytest.approx(121_666.6667, abs=1e-3) and "annualised" in basis


def test_a_parks_own_bands_reach_the_api(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PARKMON_ZERO_CARBON names a park's file: the API judges by its bands and says whose they are."""
    _park(store, "b2over", {"imp": 6e8, "pv": 9.4e9})
    http = TestClient(create_app(store))
    assert _get(http, "b2over", "zero-carbon-core")["status"] == "below_target"  # 0.334369 > 0.30 (default)
    own = tmp_path / "park.yaml"
    own.write_text("zero_carbon:\n  carbon_per_tce_bands:\n    - {min_tce: 1000000, max_t_co2_per_tce: 0.4}\n",
                   encoding="utf-8")
    monkeypatch.setenv("PARKMON_ZERO_CARBON", str(own))
    core = _get(http, "b2over", "zero-carbon-core")
    # the same 410 940 / 1 229 000 = 0.334369, now against the park's 0.4: met
    assert core["value"] == pytest.approx(410_940 / 1_229_000, abs=1e-6)
    assert (core["target"], core["status"]) == (0.4, "met")
    assert str(own) in json.dumps(core["inputs"], ensure_ascii=False)


def test_the_report_has_its_own_section(store: Store, tmp_path: Path) -> None:
    _park(store, "b1met", {"imp": 1e8, "pv": 3.9e9})
    report = park_report(store, "b1met", "2025")
    assert report["zero_carbon_park"]["value"] == pytest.approx(68_490 / 491_600, abs=1e-6)  # as the API, by hand above
    rows = report_rows(report)
    assert [r[0].split(" ")[0] for r in rows] == ["单位能耗碳排放(零碳园区核心指标)", "清洁能源消费占比",
                                                   "单位产品综合能耗(标杆/基准)", "工业固体废物综合利用率",
                                                   "余热/余冷/余压综合利用率", "工业用水重复利用率"]
    assert rows[0][2:5] == ["0.139", "≤ 0.200", "达标 met"]
    assert rows[1][2] == "97.5%"  # 3.9e9 kWh RE × 0.1229 / 491 600 tce = 479 310 / 491 600 = 0.975
    wb = load_workbook(write_excel(report, tmp_path / "r.xlsx"))
    sheet = wb["零碳园区 Zero-carbon"]
    assert sheet["A2"].value.startswith("单位能耗碳排放") and sheet["C2"].value == "0.139"
    text = "".join(page.extract_text() for page in PdfReader(write_pdf(report, tmp_path / "r.pdf")).pages)
    assert "国家级零碳园区指标" in text and "0.139" in text
    missing = sorted({ch for ch in text if not ch.isspace() and ord(ch) not in _mapped()})
    assert not missing, f"no glyph in the PDF font for {missing}"  # every character printed (issue 23)


def test_the_scorecard_shows_the_year_so_far(store: Store) -> None:
    now = now_ms()
    y_start = int(datetime.fromtimestamp(now / 1000, tz=CHINA).replace(
        month=1, day=1, hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)
    if now - y_start < 3_600_000:
        pytest.skip("the China year began under an hour ago: no year so far to show")
    # the year so far: import 1e8, PV 3.9e9 kWh, read at 1 January 00:00 and a minute ago →
    # 68 490 t / 491 600 tce = 0.139321 (2026's grid factor: 2022's 0.6849), ≤ 0.20 and ≤ 0.30 alike: met
    _park(store, "live", {"imp": 1e8, "pv": 3.9e9}, start=y_start, end=now - 60_000)
    card = TestClient(create_app(store)).get(f"{API}/parks/live/scorecard").json()
    zc = card["zero_carbon"]
    assert zc["indicators"][0]["key"] == "zero_carbon_core"
    assert zc["indicators"][0]["value"] == pytest.approx(68_490 / 491_600, abs=1e-6) and zc["status"] == "met"
    assert zc["of"] == 6
