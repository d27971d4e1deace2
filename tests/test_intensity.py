"""万元工业增加值用水量 / 能耗: the target by hand, and a month from stored meters and filed figures."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from analytics.indicators.intensity import intensity, load_water_settings, water_target
from ingest.store import Store
from ingest.store.base import IncomingBatch
from parkmon.api.app import create_app
from parkmon.common import wire
from parkmon.common.clock import CHINA

S = load_water_settings()


def test_water_target_follows_the_straight_line_to_minus_13_percent() -> None:
    assert water_target(2019, S) is None  # before the baseline year
    t2020, t2023, t2025, t2030 = (water_target(y, S) for y in (2020, 2023, 2025, 2030))
    assert t2020 is not None and t2020.value == pytest.approx(19.0)
    assert t2023 is not None and t2023.value == pytest.approx(19.0 * (1 - 0.13 * 3 / 5))  # 17.518
    assert t2025 is not None and t2025.value == pytest.approx(19.0 * 0.87)  # 16.53
    assert t2030 is not None and t2030.value == pytest.approx(16.53) and "held" in t2030.basis
    assert "19m3/万元" in t2025.source and "下降13%" in t2025.source
    assert intensity(1000.0, 50.0) == 20.0 and intensity(1000.0, 0.0) is None and intensity(None, 5.0) is None


def _ms(y: int, m: int, d: int) -> int:
    return int(datetime(y, m, d, tzinfo=CHINA).timestamp() * 1000)


def _seed(store: Store) -> None:
    store.upsert_park("demo", "示范园区", "Demo", "zero_carbon")
    for ent in ("e01", "e02"):
        store.upsert_meta("demo", ent, "gw", wire.Meta(1, "gw", 0, {
            "water.vol": wire.PointMeta("water.volume", "m3", "counter", "总水表"),
            "grid.imp": wire.PointMeta("elec.import.energy", "kWh", "counter", "关口表")}, {}))
        edges = [_ms(2026, 10, 1), _ms(2026, 10, 16), _ms(2026, 11, 1)]
        # e01: 30 000 m³ and 400 000 kWh in October; e02 the same
        samples = [s for i, t in enumerate(edges) for s in (("water.vol", t, 1000.0 + 15_000 * i, 0),
                                                            ("grid.imp", t, 5000.0 + 200_000 * i, 0))]
        store.write_batches([IncomingBatch("demo", ent, "gw", wire.Batch(1, "gw", 1, edges[-1], samples), edges[-1])])


def test_a_month_from_meters_and_filed_value_added(store: Store) -> None:
    _seed(store)
    client = TestClient(create_app(store))
    assert client.put("/api/v1/parks/demo/economy", json={"enterprise": "e01", "month": "2026-10",
                                                          "output_value": 4000.0, "value_added": 1000.0}
                      ).status_code == 200
    r = client.get("/api/v1/parks/demo/indicators/intensity", params={"month": "2026-10", "enterprise": "e01"})
    assert r.status_code == 200, r.text
    water, energy = r.json()["water_intensity"], r.json()["energy_intensity"]
    # 30 000 m³ / 1 000 万元 = 30 m³/万元, against 2026's target 19 × 0.87 = 16.53: not met
    assert water["value"] == pytest.approx(30.0) and water["target"] == pytest.approx(16.53)
    assert water["status"] == "below_target" and water["name_zh"] == "万元工业增加值用水量"
    # 400 000 kWh × 0.1229 kgce = 49.16 tce / 1 000 万元
    assert energy["value"] == pytest.approx(400_000 * 0.1229 / 1000 / 1000)
    # the whole park: e02 has meters but filed no value added, so no park figure (a partial sum flatters)
    park = client.get("/api/v1/parks/demo/indicators/intensity", params={"month": "2026-10"}).json()
    assert park["water_intensity"]["value"] is None and park["water_intensity"]["status"] == "insufficient_data"
    assert park["water_intensity"]["inputs"]["enterprises_without_value_added"] == ["e02"]
    client.put("/api/v1/parks/demo/economy", json={"enterprise": "e02", "month": "2026-10", "value_added": 500.0})
    park = client.get("/api/v1/parks/demo/indicators/intensity", params={"month": "2026-10"}).json()
    assert park["water_intensity"]["value"] == pytest.approx(60_000 / 1_500)  # 40 m³/万元
    assert client.get("/api/v1/parks/demo/indicators/intensity", params={"month": "2026-13"}).status_code == 422


def test_unit_product_energy_against_benchmark_and_baseline(store: Store) -> None:
    from analytics.indicators.unit_energy import assess, share_at_benchmark

    table = {"电石": {"benchmark": 805, "baseline": 940}, "甲醇": {"benchmark": 1400, "baseline": 1800}}
    # 80 tce for 100 t = 800 kgce/t <= 805: benchmark; 90 tce -> 900: between; 100 tce -> 1 000: below baseline
    levels = [assess("e", tce, [("电石", 100.0)], table)[0].level for tce in (80.0, 90.0, 100.0)]
    assert levels == ["benchmark", "between", "below_baseline"]
    two = assess("e", 80.0, [("电石", 100.0), ("甲醇", 10.0), ("螺丝", 5.0)], table)
    assert [r.unit_energy for r in two] == [None, None] and "sub-meters" in two[0].note  # 螺丝 has no benchmark
    a, b = assess("a", 80.0, [("电石", 300.0)], table)[0], assess("b", 130.0, [("电石", 100.0)], table)[0]
    assert share_at_benchmark([a, b]) == pytest.approx(300 / 400)  # a at 267 kgce/t, b at 1 300

    _seed(store)
    client = TestClient(create_app(store))
    client.put("/api/v1/parks/demo/economy", json={"enterprise": "e01", "month": "2026-10", "value_added": 900.0,
                                                   "products": [{"product": "电石", "quantity": 60, "unit": "t"}]})
    client.put("/api/v1/parks/demo/economy", json={"enterprise": "e02", "month": "2026-10", "products": [
        {"product": "电石", "quantity": 60, "unit": "t"}, {"product": "甲醇", "quantity": 10, "unit": "t"}]})
    body = client.get("/api/v1/parks/demo/indicators/unit-energy", params={"month": "2026-10"}).json()
    e01 = next(p for p in body["products"] if p["enterprise"] == "e01")
    # 400 000 kWh × 0.1229 kgce = 49 160 kgce / 60 t = 819.3 kgce/t: between 805 and 940
    assert e01["unit_energy"] == pytest.approx(400_000 * 0.1229 / 60) and e01["level_zh"] == "基准-标杆之间"
    assert all(p["unit_energy"] is None for p in body["products"] if p["enterprise"] == "e02")
    assert body["share_at_benchmark"] == 0.0 and body["share_status"] == "below_target"
