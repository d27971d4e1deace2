"""The new-energy share against its trajectory: gap, year-end projection, and the clean-energy share of
all energy in tce kept apart from the electricity-only share (numbers by hand)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from analytics.report.gather import park_report
from analytics.targets import load_share_settings
from ingest.store import Store
from ingest.store.base import IncomingBatch
from parkmon.api.app import create_app
from parkmon.common import wire
from parkmon.common.clock import CHINA

H = 3_600_000
JAN1 = int(datetime(2026, 1, 1, tzinfo=CHINA).timestamp() * 1000)


def _seed(store: Store, start_ms: int, hours: int) -> None:
    """A site importing 1 000 kWh/h, generating 400 kWh/h of PV, exporting 100 kWh/h, burning 50 m³/h of gas."""
    store.upsert_park("demo", "示范园区", "Demo", "zero_carbon")
    store.upsert_meta("demo", "e01", "gw1", wire.Meta(1, "gw1", 0, {
        "grid.imp": wire.PointMeta("elec.import.energy", "kWh", "counter", ""),
        "grid.exp": wire.PointMeta("elec.export.energy", "kWh", "counter", ""),
        "pv.gen": wire.PointMeta("pv.generation.energy", "kWh", "counter", ""),
        "gas.vol": wire.PointMeta("gas.volume", "m3", "counter", "")}, {}))
    samples = [s for h in range(hours + 1) for s in (
        ("grid.imp", start_ms + h * H, 1000.0 * h, 0), ("grid.exp", start_ms + h * H, 100.0 * h, 0),
        ("pv.gen", start_ms + h * H, 400.0 * h, 0), ("gas.vol", start_ms + h * H, 50.0 * h, 0))]
    store.write_batches([IncomingBatch("demo", "e01", "gw1", wire.Batch(1, "gw1", 1, start_ms, samples), start_ms)])


def test_gap_projection_and_clean_energy_share(store: Store) -> None:
    _seed(store, JAN1, 48)
    client = TestClient(create_app(store))
    r = client.get("/api/v1/parks/demo/indicators/new-energy-share",
                   params={"start": "2026-01-01T00:00:00+08:00", "end": "2026-01-03T00:00:00+08:00"})
    assert r.status_code == 200, r.text
    body = r.json()
    # per hour: RE used = 400 - 100 exported = 300 kWh; consumption = 1 000 + 400 - 100 = 1 300 kWh
    assert body["value"] == pytest.approx(300 / 1300)
    # a zero-carbon park in 2026: the 2025 milestone 80 % is held
    assert body["target"] == pytest.approx(0.8) and "held" in body["inputs"]["target_basis"]
    assert body["inputs"]["gap"] == pytest.approx(300 / 1300 - 0.8)
    # the period starts on 1 January: the year so far is the projection, and it says how it was made
    assert body["inputs"]["year_end_projection"] == pytest.approx(300 / 1300)
    assert body["inputs"]["projected_status"] == "below_target" and "ratio of sums" in body["inputs"][
        "projection_method"]
    # clean-energy share of all energy: 300 kWh × 0.1229 kgce over (1 300 kWh × 0.1229 + 50 m³ × 1.2143) kgce
    clean = body["inputs"]["clean_energy_share_tce"]
    assert clean["value"] == pytest.approx(300 * 0.1229 / (1300 * 0.1229 + 50 * 1.2143), rel=1e-5)
    later = client.get("/api/v1/parks/demo/indicators/new-energy-share",
                       params={"start": "2026-01-02T00:00:00+08:00", "end": "2026-01-03T00:00:00+08:00"}).json()
    assert later["inputs"]["year_end_projection"] is None  # not from 1 January: no projection


def test_region_overview_for_regulators(store: Store) -> None:
    _seed(store, JAN1, 48)
    store.upsert_park("demo", "示范园区", "Demo", "zero_carbon", region="内蒙古自治区")
    client = TestClient(create_app(store))
    assert client.get("/api/v1/regions").json() == {"内蒙古自治区": ["demo"]}
    r = client.get("/api/v1/regions/内蒙古自治区/overview",
                   params={"start": "2026-01-01T00:00:00+08:00", "end": "2026-01-03T00:00:00+08:00"})
    assert r.status_code == 200, r.text
    (park,) = r.json()["parks"]
    assert park["new_energy_share"]["value"] == pytest.approx(300 / 1300)
    assert park["new_energy_share"]["status"] == "below_target" and r.json()["parks_meeting_share_target"] == 0
    # 48 h × (1 300 kWh × 0.1229 + 50 m³ × 1.2143) kgce
    assert park["comprehensive_energy_tce"] == pytest.approx(48 * (1300 * 0.1229 + 50 * 1.2143) / 1000)
    assert park["pollutant_compliance"] is None and 0 <= park["scorecard"] <= 1  # no outlets: nothing to judge
    # a second park of the region: 500 kWh/h imported, 500 kWh/h of PV all used on site (share 50 %)
    store.upsert_park("p2", "二号园区", "Park 2", "low_carbon", region="内蒙古自治区")
    store.upsert_meta("p2", "e01", "gw1", wire.Meta(1, "gw1", 0, {
        "grid.imp": wire.PointMeta("elec.import.energy", "kWh", "counter", ""),
        "pv.gen": wire.PointMeta("pv.generation.energy", "kWh", "counter", "")}, {}))
    store.write_batches([IncomingBatch("p2", "e01", "gw1", wire.Batch(1, "gw1", 1, JAN1, [
        s for h in range(49) for s in (("grid.imp", JAN1 + h * H, 500.0 * h, 0), ("pv.gen", JAN1 + h * H, 500.0 * h, 0))
    ]), JAN1)])
    body = client.get("/api/v1/regions/内蒙古自治区/overview",
                      params={"start": "2026-01-01T00:00:00+08:00", "end": "2026-01-03T00:00:00+08:00"}).json()
    # the region's share is a ratio of sums, not a mean of shares: (300 + 500) / (1 300 + 1 000) per hour
    assert body["new_energy_share"]["value"] == pytest.approx(800 / 2300)
    assert body["new_energy_share"]["parks_with_data"] == 2
    # one enterprise's own share, against its park's target; an enterprise without meters has none
    own = client.get("/api/v1/parks/p2/indicators/new-energy-share", params={
        "start": "2026-01-01T00:00:00+08:00", "end": "2026-01-03T00:00:00+08:00", "enterprise": "e01"}).json()
    assert own["value"] == pytest.approx(0.5) and own["inputs"]["enterprise"] == "e01" and own["target"] == 0.5
    none = client.get("/api/v1/parks/p2/indicators/new-energy-share", params={
        "start": "2026-01-01T00:00:00+08:00", "end": "2026-01-03T00:00:00+08:00", "enterprise": "e99"}).json()
    assert none["value"] is None and none["status"] == "insufficient_data"
    missing = client.get("/api/v1/regions/火星/overview")
    assert missing.status_code == 404 and "内蒙古自治区" in missing.text


def test_region_overview_and_report_judge_against_the_apps_targets(store: Store, tmp_path: Path) -> None:
    """parkmon api --targets: the overview (and the report, given the same settings) judge the share as the
    share route does, against the park's own targets rather than the defaults."""
    _seed(store, JAN1, 48)
    store.upsert_park("demo", "示范园区", "Demo", "zero_carbon", region="内蒙古自治区")
    own = tmp_path / "targets.yaml"
    own.write_text("new_energy_share:\n  zero_carbon:\n    milestones: {2022: 0.1, 2025: 0.2}\n", encoding="utf-8")
    settings = load_share_settings(own)
    client = TestClient(create_app(store, share_settings=settings))
    period = {"start": "2026-01-01T00:00:00+08:00", "end": "2026-01-03T00:00:00+08:00"}
    share = client.get("/api/v1/parks/demo/indicators/new-energy-share", params=period).json()
    # 300 / 1 300 = 0.2308 against the park's own 0.2 of 2026 (the 2025 milestone held): met (the default 0.8
    # would not be)
    assert share["target"] == pytest.approx(0.2) and share["status"] == "met"
    body = client.get("/api/v1/regions/内蒙古自治区/overview", params=period).json()
    (park,) = body["parks"]
    assert park["new_energy_share"] == {"value": share["value"], "target": share["target"],
                                        "status": share["status"], "gap": share["inputs"]["gap"],
                                        "completeness": share["completeness"]}
    assert park["new_energy_share"]["gap"] == pytest.approx(300 / 1300 - 0.2, abs=1e-6)  # rounded to 6 places
    assert body["parks_meeting_share_target"] == 1
    # the January report given the same settings says the same; without them, the defaults' 0.8
    judged = park_report(store, "demo", "2026-01", share_settings=settings)["new_energy_share"]
    assert (judged["target"], judged["status"]) == (pytest.approx(0.2), "met")
    assert park_report(store, "demo", "2026-01")["new_energy_share"]["target"] == pytest.approx(0.8)
