"""The six systems' data paths through the HTTP API, over a real store (SQLite and PostgreSQL):
registry and coverage, gate events, economic figures (API and CSV / Excel import), hazardous waste,
the emergency register and incidents, the directory, notices and service requests. Bad input is
refused with a clear error and nothing else is lost."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook

from ingest.mqtt.broker import Mosquitto
from ingest.mqtt.config import IngestConfig
from ingest.mqtt.consumer import Ingestor
from ingest.store import Store
from ingest.store.base import IncomingBatch
from parkmon.api.app import create_app
from parkmon.common import wire
from parkmon.common.clock import now_ms
from simulators.definition import DEFAULT_PARK
from simulators.physics import CHINA
from tests.mqtt_util import publish_all, publisher, wait_for

NOW = now_ms()
DAY = 86_400_000
API = "/api/v1/parks/demo"


@pytest.fixture
def client(store: Store) -> TestClient:
    c = TestClient(create_app(store))
    import yaml

    doc = yaml.safe_load(DEFAULT_PARK.read_text(encoding="utf-8"))
    # the simulator's park definition is a registry document as it is
    r = c.put(API, json=doc, headers={"X-Parkmon-Actor": "operator-li"})
    assert r.status_code == 200, r.text
    return c


def _report(store: Store, ent: str, dev: str, point: str, metric: str, value: float, ts: int | None = None) -> None:
    # now, not the module's NOW: the coverage calls a device stale after 15 min, and a loaded CI machine can
    # collect this module more than 15 min before it runs this test
    ts = now_ms() if ts is None else ts
    store.upsert_meta("demo", ent, "gw1", wire.Meta(1, "gw1", ts, {
        f"{dev}.{point}": wire.PointMeta(metric, "", "instant", point)}, {}))
    store.write_batches([IncomingBatch("demo", ent, "gw1", wire.Batch(1, "gw1", ts, ts, [
        (f"{dev}.{point}", ts, value, 0)]), ts)])


def test_registry_says_per_system_which_devices_report(store: Store, client: TestClient) -> None:
    devices = client.get(f"{API}/devices").json()
    by_kind = {(d["enterprise"], d["id"]): d["system"] for d in devices}
    assert by_kind[("e01", "grid")] == "energy" and by_kind[("e01", "cems1")] == "environment"
    before = {c["system"]: c for c in client.get(f"{API}/systems").json()}
    assert before["energy"]["expected_devices"] >= 10 and before["energy"]["reporting_devices"] == 0
    _report(store, "e01", "grid", "power", "elec.active_power", 812.0)
    _report(store, "e01", "cems1", "so2", "cems.so2", 21.5)
    _report(store, "e02", "grid", "power", "elec.active_power", 1.0, ts=now_ms() - 3_600_000)  # an hour old: stale
    after = {c["system"]: c for c in client.get(f"{API}/systems").json()}
    assert after["energy"]["reporting_devices"] == 1
    assert "e02/grid" in after["energy"]["missing"] and "e01/grid" not in after["energy"]["missing"]
    assert after["environment"]["reporting_devices"] == 1
    assert after["energy"]["name_zh"] == "能源消耗监测"
    live = client.get(f"{API}/systems/environment").json()
    so2 = [p for p in live["points"] if p["device"] == "cems1"]
    assert so2 and so2[0]["value"] == 21.5
    # a device edited through the API: no longer expected, so no longer missing
    r = client.put(f"{API}/enterprises/e02/devices/grid", json={"kind": "grid_meter", "expected": False})
    assert r.status_code == 200
    assert "e02/grid" not in {c["system"]: c for c in client.get(f"{API}/systems").json()}["energy"]["missing"]
    # systems people feed: every producing enterprise owes last month's figures and a directory entry
    assert after["economy"]["enterprises_expected"] == 4 and after["economy"]["missing"] == ["e01", "e02", "e03", "e04"]
    last_month = (datetime.now(CHINA).replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    assert client.put(f"{API}/economy", json={"enterprise": "e01", "month": last_month, "output_value": 10.0}
                      ).status_code == 200
    assert client.put(f"{API}/enterprises/e02/profile", json={"contact_phone": "0471-1234567"}).status_code == 200
    people = {c["system"]: c for c in client.get(f"{API}/systems").json()}
    assert people["economy"]["missing"] == ["e02", "e03", "e04"] and people["economy"]["enterprises_reporting"] == 1
    assert people["services"]["missing"] == ["e01", "e03", "e04"]
    bad = client.put(f"{API}/enterprises/e02/devices/x1", json={"kind": "mystery"})
    assert bad.status_code == 422 and "set system" in bad.text


def _gate(i: int, plate: str, direction: str, ts: int, **kw: Any) -> dict[str, Any]:
    return {"id": f"east-{i}", "gate": "east", "ts": ts, "plate": plate, "class": kw.get("cls", "truck"),
            "hazardous": kw.get("hazardous", False), "direction": direction, **kw.get("extra", {})}


def test_gate_events_give_vehicles_in_park_and_bad_events_lose_nothing_else(store: Store, client: TestClient) -> None:
    events = [_gate(1, "蒙A12345", "in", NOW - 90 * 60_000), _gate(2, "蒙A12345", "out", NOW - 30 * 60_000),
              _gate(3, "蒙B54321", "in", NOW - 20 * 60_000, cls="tanker", hazardous=True),
              _gate(4, "蒙K0001挂", "in", NOW - 10 * 60_000),
              _gate(5, "ABC", "in", NOW),  # not a plate
              {**_gate(6, "蒙A99999", "sideways", NOW)}]  # not a direction
    r = client.post(f"{API}/gate-events", json={"v": 1, "events": events})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 4 and body["duplicates"] == 0
    assert [x["index"] for x in body["rejected"]] == [4, 5]
    assert "plate" in body["rejected"][0]["reason"] and "direction" in body["rejected"][1]["reason"]
    # resending (a gate system that lost our answer) changes nothing
    again = client.post(f"{API}/gate-events", json={"v": 1, "events": events[:4]}).json()
    assert (again["accepted"], again["duplicates"]) == (0, 4)
    st = client.get(f"{API}/logistics").json()
    assert st["vehicles_in_park"] == 2 and st["hazardous_in_park"] == 1
    assert {v["plate"] for v in st["vehicles"]} == {"蒙B54321", "蒙K0001挂"}
    assert st["completed_visits_24h"] == 1 and st["dwell_median_min_24h"] == 60.0
    assert len([d for d in store.dead_letters() if "gate-events" in d.topic]) == 2
    broken = client.post(f"{API}/gate-events", content=b"{nope")
    assert broken.status_code == 422 and "not JSON" in broken.text
    assert client.post("/api/v1/parks/nowhere/gate-events", json={"v": 1, "events": events[:1]}).status_code == 404


def test_economic_figures_validated_audited_and_imported_all_or_nothing(
        client: TestClient, tmp_path: Path) -> None:
    ok = client.put(f"{API}/economy", json={"enterprise": "e01", "month": "2026-09", "output_value": 5200.0,
                                            "value_added": 1300.0,
                                            "products": [{"product": "多晶硅", "quantity": 420.0, "unit": "t"}]},
                    headers={"X-Parkmon-Actor": "stat-wang"})
    assert ok.status_code == 200, ok.text
    impossible = client.put(f"{API}/economy", json={"enterprise": "e01", "month": "2026-09",
                                                    "output_value": 100.0, "value_added": 900.0})
    assert impossible.status_code == 422 and "exceeds output_value" in impossible.text
    merged = client.put(f"{API}/economy", json={"enterprise": "e01", "month": "2026-09", "value_added": 5300.0})
    assert merged.status_code == 422 and "would exceed" in merged.text  # 5300 > the stored 5200
    future = client.put(f"{API}/economy", json={"enterprise": "e01", "month": "2099-01", "output_value": 1.0})
    assert future.status_code == 422 and "future" in future.text
    unknown = client.put(f"{API}/economy", json={"enterprise": "zz", "month": "2026-09", "output_value": 1.0})
    assert unknown.status_code == 404 and "e01, e02" in unknown.text
    corrected = client.put(f"{API}/economy", json={"enterprise": "e01", "month": "2026-09", "value_added": 1350.0},
                           headers={"X-Parkmon-Actor": "stat-wang"})
    assert corrected.json()["output_value"] == 5200.0 and corrected.json()["value_added"] == 1350.0
    trail = client.get(f"{API}/audit", params={"entity": "economic_figures", "key": "e01/2026-09"}).json()
    assert trail[0]["actor"] == "stat-wang" and trail[0]["before"]["value_added"] == 1300.0
    assert trail[0]["after"]["value_added"] == 1350.0 and len(trail) == 2

    good = "企业,月份,工业总产值,工业增加值,产品,产量,单位\ne02,2026-09,8000,2100,PVC,1500,t\ne03,2026-09,3000,800,,,\n"
    bad = good + "e04,2026-13,10,1,,,\nzz,2026-09,1,1,,,\ne03,2026-08,10,20,,,\n"
    (tmp_path / "bad.csv").write_text(bad, encoding="utf-8-sig")
    r = client.post(f"{API}/economy/import", files={"file": ("bad.csv", (tmp_path / "bad.csv").read_bytes())})
    assert r.status_code == 422
    errs = {e["line"]: e["reason"] for e in r.json()["detail"]["errors"]}
    assert set(errs) == {4, 5, 6} and "YYYY-MM" in errs[4] and "not registered" in errs[5] and "exceeds" in errs[6]
    assert client.get(f"{API}/economy", params={"enterprise": "e02"}).json() == []  # nothing half-loaded

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    for row in [["enterprise", "month", "output_value", "value_added"], ["e02", "2026-09", 8000, 2100],
                ["e03", "2026-09", 3000, 800]]:
        ws.append(row)
    wb.save(tmp_path / "figures.xlsx")
    r = client.post(f"{API}/economy/import", files={"file": ("figures.xlsx", (tmp_path / "figures.xlsx").read_bytes())})
    assert r.status_code == 200 and r.json()["months"] == 2, r.text
    got = {f["enterprise"]: f for f in client.get(f"{API}/economy", params={"start": "2026-09"}).json()}
    assert got["e02"]["value_added"] == 2100 and got["e03"]["output_value"] == 3000
    assert client.get(f"{API}/audit", params={"entity": "economic_figures", "key": "e02/2026-09"}).json()[0][
        "action"] == "import:figures.xlsx"


def test_hazardous_waste_stock_ages_first_in_first_out_and_limits_are_checked(client: TestClient) -> None:
    code = "900-041-49"
    assert client.put(f"{API}/enterprises/e02/profile", json={"hazwaste_storage_limit_t": 10.0}).status_code == 200
    for days_ago, q in ((400, 4.0), (100, 5.0)):
        r = client.post(f"{API}/hazwaste/records", json={"enterprise": "e02", "ts": NOW - days_ago * DAY,
                                                          "waste_code": code, "action": "generated", "quantity_t": q})
        assert r.status_code == 200, r.text
    st = {e["enterprise"]: e for e in client.get(f"{API}/hazwaste/storage").json()}["e02"]
    assert st["stored_t"] == 9.0 and st["codes"][0]["over_time"] and not st["compliant"]
    assert "超过 365 天" in st["problems"][0]
    # shipping 5 t takes the 4 t lot of 400 days ago and 1 t of the next: the oldest tonne is now 100 days old
    m = {"manifest_no": "2026150100001", "enterprise": "e02", "waste_code": code, "quantity_t": 5.0,
         "transporter": "蒙运危货", "receiver": "包头市危废处置中心", "shipped": NOW - DAY}
    assert client.post(f"{API}/hazwaste/manifests", json=m).status_code == 200
    st = {e["enterprise"]: e for e in client.get(f"{API}/hazwaste/storage").json()}["e02"]
    assert st["stored_t"] == 4.0 and round(st["codes"][0]["oldest_age_days"]) == 100 and st["compliant"]
    assert client.post(f"{API}/hazwaste/manifests", json=m).status_code == 409  # the same manifest twice
    too_much = client.post(f"{API}/hazwaste/manifests", json={**m, "manifest_no": "2026150100002", "quantity_t": 50})
    assert too_much.status_code == 422 and "4.000 t" in too_much.text
    stranger = client.post(f"{API}/hazwaste/manifests", json={**m, "manifest_no": "2026150100003", "enterprise": "e99"})
    assert stranger.status_code == 404 and "e99" in stranger.text
    bad_code = client.post(f"{API}/hazwaste/records", json={"enterprise": "e02", "ts": NOW, "waste_code": "HW49",
                                                             "action": "generated", "quantity_t": 1})
    assert bad_code.status_code == 422 and "900-041-49" in bad_code.text
    over = client.post(f"{API}/hazwaste/records", json={"enterprise": "e02", "ts": NOW, "waste_code": code,
                                                         "action": "generated", "quantity_t": 7})
    assert over.status_code == 200
    st = {e["enterprise"]: e for e in client.get(f"{API}/hazwaste/storage").json()}["e02"]
    assert not st["compliant"] and "超过许可" in st["problems"][0]
    assert client.patch(f"{API}/hazwaste/manifests/2026150100001", json={"received": NOW}).status_code == 200
    assert client.get(f"{API}/hazwaste/manifests", params={"open_only": True}).json() == []


def test_emergency_register_and_incidents(client: TestClient) -> None:
    src = {"name": "1#氯乙烯球罐", "kind": "pressure_vessel", "level": "2", "location": "罐区A",
           "devices": ["grid"], "contact_name": "张工", "contact_phone": "13800000000", "plan_ref": "YA-2026-003"}
    assert client.put(f"{API}/enterprises/e02/hazard-sources/t1", json=src).status_code == 200
    wrong = client.put(f"{API}/enterprises/e02/hazard-sources/t2", json={**src, "devices": ["nope"]})
    assert wrong.status_code == 422 and "nope" in wrong.text
    no_plan = client.put(f"{API}/enterprises/e02/hazard-sources/t3", json={**src, "plan_ref": ""})
    assert no_plan.status_code == 422
    reg = client.get(f"{API}/hazard-sources").json()
    assert [(s["enterprise"], s["key"], s["plan_ref"]) for s in reg] == [("e02", "t1", "YA-2026-003")]
    inc = client.post(f"{API}/incidents", json={"enterprise": "e02", "occurred": NOW - 600_000, "kind": "leak",
                                                "severity": "general", "title": "法兰泄漏"}).json()
    assert client.get(f"{API}/incidents", params={"status": "open"}).json()[0]["severity_zh"] == "一般"
    early = client.patch(f"{API}/incidents/{inc['id']}", json={"closed": NOW - 3_600_000})
    assert early.status_code == 422 and "before it occurred" in early.text
    assert client.patch(f"{API}/incidents/{inc['id']}", json={"closed": NOW}).status_code == 200
    assert client.get(f"{API}/incidents", params={"status": "open"}).json() == []
    assert client.get(f"{API}/systems/safety").json()["hazard_sources"] == 1


def test_directory_notices_and_service_requests(client: TestClient) -> None:
    r = client.put(f"{API}/enterprises/e01/profile", json={"industry": "新材料", "credit_code": "91150200MA0N1234X5",
                                                          "contact_name": "王经理", "contact_phone": "0472-5551234"})
    assert r.status_code == 200, r.text
    assert client.put(f"{API}/enterprises/e01/profile", json={"credit_code": "123"}).status_code == 422
    d = {e["enterprise"]: e for e in client.get(f"{API}/directory").json()}
    assert d["e01"]["industry"] == "新材料" and d["e02"]["industry"] is None
    client.post(f"{API}/notices", json={"title": "停电通知", "body": "11月25日 10kV 检修"})
    client.post(f"{API}/notices", json={"title": "环保检查", "body": "危废台账", "audience": ["e02"]})
    assert [n["title"] for n in client.get(f"{API}/notices", params={"enterprise": "e01"}).json()] == ["停电通知"]
    assert len(client.get(f"{API}/notices", params={"enterprise": "e02"}).json()) == 2
    assert client.post(f"{API}/notices", json={"title": "x", "body": "y", "audience": ["e77"]}).status_code == 404
    req = client.post(f"{API}/service-requests", json={"enterprise": "e03", "category": "power",
                                                       "title": "申请增容"}).json()
    for status in ("in_progress", "resolved", "closed"):
        assert client.patch(f"{API}/service-requests/{req['id']}", json={"status": status, "reply": "已受理"}
                            ).status_code == 200
    reopen = client.patch(f"{API}/service-requests/{req['id']}", json={"status": "open"})
    assert reopen.status_code == 422 and "closed for good" in reopen.text
    got = client.get(f"{API}/service-requests", params={"enterprise": "e03"}).json()
    assert got[0]["status_zh"] == "已关闭" and got[0]["reply"] == "已受理"


def test_gate_events_over_mqtt_are_stored_once_and_bad_ones_dead_lettered(
        store: Store, client: TestClient, mosquitto: Mosquitto) -> None:
    """A gate system publishing through the real broker to the real ingest."""
    ing = Ingestor(IngestConfig(mqtt_port=mosquitto.port, db_url=store.url, max_wait_ms=20), store)
    ing.start()
    try:
        assert ing.connected.wait(10)
        topic = wire.topic("demo", "park", "gates", "gate")
        good = json.dumps({"v": 1, "events": [
            _gate(1, "蒙A12345", "in", NOW - 60_000), _gate(2, "蒙C77777", "in", NOW - 50_000, cls="tanker",
                                                          hazardous=True),
            _gate(3, "bad plate", "in", NOW)]}, ensure_ascii=False).encode()
        pub = publisher(mosquitto.port)
        publish_all(pub, [(topic, good), (topic, good),  # sent twice: stored once
                          (topic, b"{broken"), (wire.topic("nowhere", "park", "gates", "gate"), good)])
        wait_for(lambda: ing.stats.messages >= 4, what="4 gate messages")
        pub.loop_stop()
    finally:
        ing.stop()
    st = client.get(f"{API}/logistics").json()
    assert st["vehicles_in_park"] == 2 and st["hazardous_in_park"] == 1
    reasons = [d.reason for d in store.dead_letters() if d.topic.endswith("/gate")]
    assert sum("event 2" in r and "plate" in r for r in reasons) == 2  # once per delivery of the batch
    assert any("not JSON" in r for r in reasons)
    assert any("nowhere" in r and "not registered" in r for r in reasons)
    cov = {c["system"]: c for c in client.get(f"{API}/systems").json()}
    assert cov["logistics"]["expected_devices"] == 0  # no gate registered yet: nothing expected, nothing missing


def test_digitalisation_rate_counts_registered_production_devices_that_report(
        store: Store, client: TestClient) -> None:
    d = client.get(f"{API}/indicators/digitalisation").json()
    assert (d["registered"], d["reporting"], d["value"]) == (1, 0, 0.0)  # the reactor r101, silent so far
    _report(store, "e02", "r101", "pressure", "safety.pressure", 1.1)
    assert client.put(f"{API}/enterprises/e03/devices/line1", json={"kind": "meter", "production": True,
                                                                    "expected": False}).status_code == 200
    d = client.get(f"{API}/indicators/digitalisation").json()
    # 1 of 2 production devices reports: 50 % < the 60 % target of 2025
    assert (d["registered"], d["reporting"], d["value"], d["status"]) == (2, 1, 0.5, "below_target")
    assert d["not_reporting"] == ["e03/line1"] and d["enterprises"]["e02"]["value"] == 1.0
    assert d["name_zh"] == "生产设备数字化率" and "60%" in d["source"]
