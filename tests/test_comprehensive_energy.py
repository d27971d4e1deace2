"""综合能耗 (tce, GB/T 2589) and the carbon it carries: hand-computed cases, the arithmetic written out."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from analytics.factors import load_factors
from analytics.indicators.comprehensive_energy import EnergyUse, compute
from ingest.store import Store
from ingest.store.base import IncomingBatch
from parkmon.api.app import create_app
from parkmon.common import wire

F = load_factors()
USE = EnergyUse(grid_import_kwh=1_000_000, grid_export_kwh=100_000, renewable_generation_kwh=400_000,
                natural_gas_m3=50_000, steam_t=200, heat_gj=300)


def test_tce_by_the_equivalent_method_and_fixed_steam() -> None:
    r = compute(USE, F, year=2022)
    # electricity used = 1 000 000 + 400 000 - 100 000 = 1 300 000 kWh × 0.1229 kgce/kWh = 159.77 tce
    # gas 50 000 m³ × 1.2143 = 60.715 tce; steam 200 t × 128.6 = 25.72 tce; heat 300 GJ × 34.12 = 10.236 tce
    assert {x.carrier: round(x.result, 6) for x in r.lines} == {
        "electricity": 159.77, "natural_gas": 60.715, "steam": 25.72, "heat": 10.236}
    assert r.tce == pytest.approx(159.77 + 60.715 + 25.72 + 10.236)  # 256.441
    assert r.method["electricity"] == "equivalent (0.1229 kgce/kWh)" and r.method["steam"].startswith("fixed")
    assert all(x.source for x in r.lines)


def test_equal_value_and_steam_by_enthalpy_are_recorded() -> None:
    r = compute(USE, F, year=2022, electricity_method="equal_value", steam_method="enthalpy", steam_pressure_mpa=1.2)
    lines = {x.carrier: x for x in r.lines}
    assert lines["electricity"].result == pytest.approx(1_300_000 * 0.300 / 1000)  # 390 tce
    # 1.2 MPa lies a third of the way from 1.0 (91.9 kgce/t) to 1.6 (92.4): 91.9 + 0.5 / 3 = 92.0667
    assert lines["steam"].factor == pytest.approx(91.9 + 0.5 / 3)
    assert lines["steam"].result == pytest.approx(200 * (91.9 + 0.5 / 3) / 1000)
    assert "1.2 MPa" in lines["steam"].source and r.method["electricity"].startswith("equal_value")


def test_carbon_per_tce_with_the_provincial_grid_factor() -> None:
    r = compute(USE, F, year=2022)
    co2 = {x.carrier: round(x.result, 6) for x in r.co2_lines}
    # grid import only (renewables emit nothing, export is not credited): 1 000 000 kWh × 0.6849 = 684.9 t
    # gas 50 000 × 2.162 kg = 108.1 t; steam 200 t × 2.69 GJ/t × 0.11 = 59.18 t; heat 300 GJ × 0.11 = 33 t
    assert co2 == {"electricity": 684.9, "natural_gas": 108.1, "steam": 59.18, "heat": 33.0}
    assert r.co2_t == pytest.approx(885.18)
    assert r.co2_per_tce == pytest.approx(885.18 / 256.441)


def test_green_power_uses_the_residual_factor_and_an_unpublished_year_says_so() -> None:
    green = EnergyUse(grid_import_kwh=1_000_000, green_purchase_kwh=300_000)
    r = compute(green, F, year=2023)
    (line,) = r.co2_lines
    assert line.quantity == 700_000 and line.factor == 0.6096  # the national residual factor of 2023
    assert line.result == pytest.approx(426.72) and "residual" in line.source
    later = compute(EnergyUse(grid_import_kwh=1000), F, year=2025)
    assert later.co2_lines[0].factor == 0.6849 and "2025 factor is not published: 2022" in later.co2_lines[0].source
    with pytest.raises(ValueError, match="exceeds grid import"):
        compute(EnergyUse(grid_import_kwh=10, green_purchase_kwh=11), F, year=2023)
    with pytest.raises(KeyError, match="known: "):
        compute(EnergyUse(grid_import_kwh=10), F, year=2023, area="火星")


def test_a_park_overrides_one_factor_and_keeps_the_rest(tmp_path: Path) -> None:
    (tmp_path / "park.yaml").write_text(
        "tce:\n  electricity_equal_value: {value: 0.295, unit: kgce/kWh, source: '2024 全国火电供电煤耗 (park)'}\n",
        encoding="utf-8")
    f = load_factors(tmp_path / "park.yaml")
    r = compute(USE, f, year=2022, electricity_method="equal_value")
    assert r.lines[0].result == pytest.approx(1_300_000 * 0.295 / 1000) and "park" in r.lines[0].source
    assert f.tce.natural_gas.value == 1.2143
    (tmp_path / "bad.yaml").write_text("tce:\n  coal: {value: -1, unit: kgce/kg, source: x}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"tce\.coal\.value"):
        load_factors(tmp_path / "bad.yaml")


D0 = 1_795_363_200_000  # 2026-11-23 00:00 UTC+8
H = 3_600_000
METERS = {  # point -> (metric, per hour)
    "grid.imp": ("elec.import.energy", 1000.0), "grid.exp": ("elec.export.energy", 50.0),
    "pv.gen": ("pv.generation.energy", 200.0), "gas.vol": ("gas.volume", 30.0),
    "steam.mass": ("steam.mass", 0.5), "heat.gj": ("heat.energy", 2.0)}


def _seed(store: Store) -> None:
    store.upsert_park("demo", "示范园区", "Demo", "zero_carbon")
    store.upsert_meta("demo", "e01", "gw1", wire.Meta(1, "gw1", 0, {
        k: wire.PointMeta(m, "", "counter", k) for k, (m, _r) in METERS.items()}, {}))
    store.upsert_meta("demo", "e02", "gw2", wire.Meta(1, "gw2", 0, {
        "grid.imp": wire.PointMeta("elec.import.energy", "kWh", "counter", "")}, {}))
    samples: list[tuple[str, int, float | None, int]] = []
    for point, (_m, rate) in METERS.items():
        v = 5000.0
        for h in range(25):
            if point == "gas.vol" and h == 12:
                v = rate / 2  # gas meter replaced at 11:30: the new one counts from zero
            samples.append((point, D0 + h * H, v, 0))
            v += rate
    store.write_batches([IncomingBatch("demo", "e01", "gw1", wire.Batch(1, "gw1", 1, D0, samples), D0),
                         IncomingBatch("demo", "e02", "gw2", wire.Batch(1, "gw2", 1, D0, [
                             ("grid.imp", D0 + h * H, 100.0 * h, 0) for h in range(13)]), D0)])  # half a day


def test_energy_and_carbon_from_stored_counters(store: Store) -> None:
    _seed(store)
    client = TestClient(create_app(store))
    day = {"start": "2026-11-23T00:00:00+08:00", "end": "2026-11-24T00:00:00+08:00"}
    r = client.get("/api/v1/parks/demo/indicators/comprehensive-energy", params={**day, "enterprise": "e01"})
    assert r.status_code == 200, r.text
    tce, carbon = r.json()["comprehensive_energy"], r.json()["carbon_per_tce"]
    use = tce["inputs"]["use"]
    # gas: 24 h × 30 m³ less the 15 m³ between the old meter's 11:00 reading and its removal (never read)
    assert (use["grid_import_kwh"], use["grid_export_kwh"], use["renewable_generation_kwh"], use["natural_gas_m3"],
            use["steam_t"], use["heat_gj"]) == pytest.approx((24_000, 1_200, 4_800, 705, 12, 48))
    # (24 000 + 4 800 - 1 200) × 0.1229 + 705 × 1.2143 + 12 × 128.6 + 48 × 34.12 kgce
    expected_tce = (27_600 * 0.1229 + 705 * 1.2143 + 12 * 128.6 + 48 * 34.12) / 1000  # 7.4290815
    assert tce["value"] == pytest.approx(expected_tce) and tce["unit"] == "tce" and tce["completeness"] == 1.0
    assert tce["name_zh"] == "综合能耗" and tce["inputs"]["counter_resets"] == 1
    # 2026 has no published factor: 内蒙古 2022's 0.6849 is used, and said
    expected_co2 = 24_000 * 0.6849 / 1000 + 705 * 2.162 / 1000 + 12 * 2.69 * 0.11 + 48 * 0.11  # 26.79261 t
    assert carbon["inputs"]["co2_t"] == pytest.approx(expected_co2)
    assert carbon["value"] == pytest.approx(expected_co2 / expected_tce) and carbon["unit"] == "tCO2/tce"
    assert "2026 factor is not published" in carbon["inputs"]["lines"][0]["source"]
    # the whole park: e02's import meter stopped at noon, so its day is left out and said, not guessed
    park = client.get("/api/v1/parks/demo/indicators/comprehensive-energy", params=day).json()["comprehensive_energy"]
    assert park["value"] == pytest.approx(expected_tce)
    assert park["inputs"]["meters_not_covering_period"] == ["demo.e02.grid.imp"]
    assert park["completeness"] == pytest.approx(6 / 7)
    eq = client.get("/api/v1/parks/demo/indicators/comprehensive-energy",
                    params={**day, "enterprise": "e01", "electricity_method": "equal_value"}).json()
    assert eq["comprehensive_energy"]["value"] == pytest.approx(expected_tce + 27_600 * (0.300 - 0.1229) / 1000)
    bad = client.get("/api/v1/parks/demo/indicators/comprehensive-energy", params={**day, "green_purchase_kwh": 1e9})
    assert bad.status_code == 422 and "exceeds grid import" in bad.text


def test_parkmon_indicators_energy_prints_the_same_figures(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from ingest.store import open_store

    url = f"sqlite:///{tmp_path / 'p.db'}"
    st = open_store(url)
    st.create_schema()
    _seed(st)
    st.close()
    out = subprocess.run([sys.executable, "-m", "parkmon.cli", "indicators", "energy", "--db", url, "--park", "demo",
                          "--enterprise", "e01", "--start", "2026-11-23T00:00+08:00",
                          "--end", "2026-11-24T00:00+08:00"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["comprehensive_energy"]["value"] == pytest.approx(
        (27_600 * 0.1229 + 705 * 1.2143 + 12 * 128.6 + 48 * 34.12) / 1000)
    bad = subprocess.run([sys.executable, "-m", "parkmon.cli", "indicators", "energy", "--db", url, "--park", "nope",
                          "--start", "2026-11-23T00:00+08:00"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "not registered" in bad.stderr
