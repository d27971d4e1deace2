"""HTTP API over a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ingest.store import Store, open_store
from ingest.store.base import IncomingBatch
from parkmon.api.app import create_app
from parkmon.common import quality, wire
from parkmon.common.clock import now_ms

T0 = 1_763_800_000_000


def _seed(store: Store) -> None:
    store.upsert_park("demo", "示范零碳产业园", "Demo zero-carbon park", "zero_carbon", "内蒙古")
    store.upsert_meta("demo", "e01", "gw1", wire.Meta(1, "gw1", T0, {
        "grid.import": wire.PointMeta("elec.import.energy", "kWh", "counter", "正向有功总电能"),
        "grid.power": wire.PointMeta("elec.active_power", "kW", "instant", "总有功功率"),
    }, {"grid": "关口表"}))
    bad = quality.bad(quality.Reason.COMM_FAILURE)
    store.write_batches([IncomingBatch("demo", "e01", "gw1", wire.Batch(1, "gw1", 1, T0, [
        ("grid.import", T0, 100.0, 0), ("grid.import", T0 + 1000, 100.25, 0),
        ("grid.power", T0, 900.0, 0), ("grid.power", T0 + 1000, None, bad),
    ]), T0)])


def test_latest_readings_of_a_device(store: Store) -> None:
    _seed(store)
    client = TestClient(create_app(store))
    r = client.get("/api/v1/parks/demo/enterprises/e01/devices/grid/latest")
    assert r.status_code == 200
    pts = {p["point"]: p for p in r.json()["points"]}
    assert pts["import"]["value"] == 100.25
    assert pts["import"]["ts"] == "2025-11-22T08:26:41.000+00:00"
    assert pts["import"]["label"] == "正向有功总电能"
    # a meter that stopped answering shows as bad, not as its last value
    assert pts["power"]["value"] is None
    assert pts["power"]["quality_text"] == "bad:comm_failure"


def test_unknown_device_is_a_clear_404(store: Store) -> None:
    _seed(store)
    client = TestClient(create_app(store))
    r = client.get("/api/v1/parks/demo/enterprises/e01/devices/nope/latest")
    assert r.status_code == 404
    assert "no readings for device demo/e01/nope" in r.json()["detail"]
    assert client.get("/api/v1/parks/elsewhere/points").status_code == 404


def test_parks_and_points(store: Store) -> None:
    _seed(store)
    client = TestClient(create_app(store))
    (park,) = client.get("/api/v1/parks").json()
    assert park == {"key": "demo", "name_zh": "示范零碳产业园", "name_en": "Demo zero-carbon park",
                    "park_class": "zero_carbon", "region": "内蒙古"}
    pts = client.get("/api/v1/parks/demo/points", params={"metric": "elec.import.energy"}).json()
    assert [p["key"] for p in pts] == ["demo.e01.grid.import"]
    assert client.get("/api/v1/health").json() == {"status": "ok"}
    assert client.get("/api/v1/health", params={"readings": "true"}).json() == {"status": "ok", "readings": 4}


def test_share_endpoint_from_stored_counters(store: Store) -> None:
    # e01: import 100 -> 300 (200 kWh), PV 0 -> 100 (100 kWh) over one hour: share 100 / 300
    store.upsert_park("demo", "示范零碳产业园", "Demo", "zero_carbon")
    store.upsert_meta("demo", "e01", "gw1", wire.Meta(1, "gw1", T0, {
        "grid.import": wire.PointMeta("elec.import.energy", "kWh", "counter"),
        "grid.export": wire.PointMeta("elec.export.energy", "kWh", "counter"),
        "pv.generation": wire.PointMeta("pv.generation.energy", "kWh", "counter"),
    }))
    hour = 3_600_000
    samples = [("grid.import", T0, 100.0, 0), ("grid.import", T0 + hour, 300.0, 0),
               ("grid.export", T0, 5.0, 0), ("grid.export", T0 + hour, 5.0, 0),
               ("pv.generation", T0, 0.0, 0), ("pv.generation", T0 + hour, 100.0, 0)]
    store.write_batches([IncomingBatch("demo", "e01", "gw1", wire.Batch(1, "gw1", 1, T0, samples), T0)])
    client = TestClient(create_app(store))
    r = client.get("/api/v1/parks/demo/indicators/new-energy-share",
                   params={"start": "2025-11-22T08:26:40Z", "end": "2025-11-22T09:26:40Z"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["value"] == pytest.approx(1 / 3)
    assert body["target"] == pytest.approx(0.8)  # zero-carbon park, 2025
    assert body["status"] == "below_target"
    assert body["completeness"] == 1.0
    assert body["inputs"]["consumption"] == pytest.approx(300)
    assert body["name_zh"] == "新能源消纳比例"
    # a period reaching past the data: the share of the hour with data, completeness says half
    r = client.get("/api/v1/parks/demo/indicators/new-energy-share",
                   params={"start": "2025-11-22T07:56:40Z", "end": "2025-11-22T09:56:40Z"})
    assert r.json()["value"] == pytest.approx(1 / 3)
    assert r.json()["completeness"] == pytest.approx(0.5)
    # a naive time is refused with a hint
    r = client.get("/api/v1/parks/demo/indicators/new-energy-share", params={"start": "2025-11-22T08:00:00"})
    assert r.status_code == 422 and "no UTC offset" in r.json()["detail"]
    assert client.get("/api/v1/parks/nope/indicators/new-energy-share").status_code == 404


def test_gateways_show_status_and_latest_health(store: Store) -> None:
    _seed(store)
    store.set_gateway_status("demo", "e01", "gw1", True, T0)
    health = wire.Health(1, "gw1", T0, 12.5, {"grid": wire.DeviceHealth(True, 10, 0, 0)}, 3, 120, T0 - 5000,
                         0, 40, 37, 0, 0, 0)
    store.set_gateway_health("demo", "e01", "gw1", T0, wire.encode(health).decode())
    client = TestClient(create_app(store))
    (gw,) = client.get("/api/v1/parks/demo/gateways").json()
    assert gw["online"] is True
    assert gw["health"]["buffer_samples"] == 120
    assert gw["health"]["devices"]["grid"]["polls"] == 10


def test_completeness_per_day_and_rollups_of_a_point(store: Store) -> None:

    from ingest.store.rollups import LEVELS

    now = now_ms()
    store.upsert_park("demo", "示范零碳产业园", "Demo zero-carbon park", "zero_carbon", "内蒙古")
    for seq in (1, 2, 4):  # seq 3 never arrived
        store.write_batches([IncomingBatch("demo", "e01", "gw1", wire.Batch(
            1, "gw1", seq, now, [("m.p", now - 10_000 + seq * 1000, float(seq), 0)]), now)])
    store.refresh_rollups()
    client = TestClient(create_app(store))
    body = client.get("/api/v1/parks/demo/completeness?days=2").json()
    (today,) = [d for d in body["days"] if d["received"]]
    assert (today["received"], today["expected"], today["ratio"]) == (3, 4, 0.75)
    assert body["gateways"][0]["gateway"] == "gw1" and body["label"]["zh"] == "数据完整率"
    assert client.get("/api/v1/parks/nope/completeness").status_code == 404

    pid = store.points("demo")[0].id
    day = LEVELS["1d"].floor(now)
    r = client.get(f"/api/v1/points/{pid}/rollups", params={"width": "1d", "start_ms": day, "end_ms": day + 86_400_000})
    (b,) = r.json()["buckets"]
    assert (b["n"], b["mean"], b["min"], b["max"], b["last"]) == (3, 7 / 3, 1.0, 4.0, 4.0)
    bad_width = client.get(f"/api/v1/points/{pid}/rollups", params={"width": "5m", "start_ms": 0, "end_ms": 1})
    assert bad_width.status_code == 422


def test_a_share_before_the_grid_factors_were_published_is_answered(tmp_path: Path) -> None:
    """The share needs no emission factor; only its side figure (clean-energy share in tce) does, and that
    one says why it is missing for 2019 instead of the whole answer being refused."""
    store = open_store(f"sqlite:///{tmp_path / 'old.db'}")
    store.create_schema()
    store.upsert_park("demo", "示范园区", "Demo", "zero_carbon")
    r = TestClient(create_app(store)).get("/api/v1/parks/demo/indicators/new-energy-share",
                                          params={"start": "2019-01-01T00:00:00+08:00",
                                                  "end": "2019-02-01T00:00:00+08:00"})
    assert r.status_code == 200
    clean = r.json()["inputs"]["clean_energy_share_tce"]
    assert clean["value"] is None and "2021" in clean["why"]
    store.close()
