"""The green-power register (issue 23): contracts (绿电交易) and certificates (绿证) written over HTTP, imported
from CSV, listed, and counted in the new-energy share by default everywhere it appears — the API, the live
board, the monthly report, the Grafana feed (indicator_hourly) and the region overview — with the counting
rules of docs/indicators/green-power.md worked by hand. Real SQLite stores, the real API (TestClient), the
real `parkmon import readings` and `parkmon report` commands."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from analytics.board_feed import BoardFeed
from ingest.store import Store, open_store
from ingest.store import schema as s
from parkmon.api.app import create_app
from parkmon.api.board import LiveBoard
from tests.test_tenancy import T0, _client, _tokens, write_two_parks

H = 3_600_000
D0 = 1_750_435_200_000  # 2025-06-21 00:00 China time (UTC+8)
DAY = "2025-06-21"
API = "/api/v1"

# The zero-carbon park's day (MWh per hour, China time), five blocks:
#   hours  | import | PV | wind | export | charge | discharge
#   0-5    |   20   |  0 |  15  |   0    |   0    |   0
#   6-9    |   15   | 20 |  10  |   0    |   0    |   0
#   10-13  |    0   | 50 |  10  |  20    |  25    |   0
#   14-18  |   12   | 28 |  10  |   0    |   0    |   0
#   19-23  |   24   |  0 |  18  |   0    |   0    |  18
# totals: import 120+60+0+60+120 = 360, PV 80+200+140 = 420, wind 90+40+40+50+90 = 310, export 80,
# charge 100, discharge 90 — the day.
BLOCKS = [(range(0, 6), (20, 0, 15, 0, 0, 0)), (range(6, 10), (15, 20, 10, 0, 0, 0)),
          (range(10, 14), (0, 50, 10, 20, 25, 0)), (range(14, 19), (12, 28, 10, 0, 0, 0)),
          (range(19, 24), (24, 0, 18, 0, 0, 18))]
POINTS = [("e1.grid.imp", "elec.import.energy"), ("e1.pv.gen", "pv.generation.energy"),
          ("e1.wind.gen", "wind.generation.energy"), ("e1.grid.exp", "elec.export.energy"),
          ("e1.bess.chg", "storage.charge.energy"), ("e1.bess.dis", "storage.discharge.energy")]
# The share by the NES rules, by hand (interval 1 h):
#   consumption (NES-1) = import + RE − export = 360 + 730 − 80 = 1010 MWh
#   NES-2: export 20/h leaves from RE at noon → RE kept on site 730 − 80 = 650
#   NES-3: the battery charges only at noon, when import is 0: f = RE kept / (RE kept + import) = 1,
#          so all 100 MWh charged is RE; the pool holds 100 (RE 100)
#   NES-4: the evening discharge of 90 goes to load at r = 100/100 = 1 → 90 MWh RE; 10 stay in the pool (losses)
#   RE used = (650 − 100) + 90 = 640 MWh → 640 / 1010 = 63.37 % without green power (the 63.4 % the issue saw)
#   NES-6: 50 MWh bought green ≤ import 360 → counted in full: (640 + 50) / 1010 = 690 / 1010 = 68.317 %
SHARE_DAY = 690 / 1010


def _readings_csv(path: Path) -> None:
    """Hourly counter readings (kWh) from an hour before the day to an hour after it, flat outside the day."""
    totals = [0.0] * len(POINTS)
    rows = [["timestamp", "point", "value", "quality", "metric"]]
    per_hour = {h: flows for hours, flows in BLOCKS for h in hours}
    for k in range(-1, 26):  # readings at D0 − 1 h … D0 + 25 h
        ts = D0 + k * H
        for i, (point, metric) in enumerate(POINTS):
            rows.append([str(ts), point, f"{totals[i]:.1f}", "0", metric if k == -1 else ""])
        if 0 <= k < 24:
            for i, mwh in enumerate(per_hour[k]):
                totals[i] += mwh * 1000.0
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parkmon.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def two_parks(store_url: str) -> Iterator[Store]:
    """As test_tenancy's: p1 (region 东区) with enterprises a and b, p2 (西区) with c, each a day of hourly
    counters from 2026-11-23 00:00 (import 100 kWh/h, PV 40 kWh/h), written as a gateway would. The rollups
    are left to ingest (not refreshed): the share reads the readings, whose hand-worked figures these are."""
    store = open_store(store_url)  # SQLite, PostgreSQL, TimescaleDB where the server has it
    store.create_schema()
    write_two_parks(store)
    yield store
    store.close()


@pytest.fixture
def zc_park(tmp_path: Path) -> Iterator[tuple[Store, str]]:
    url = f"sqlite:///{tmp_path / 'zc.db'}"
    store = open_store(url)
    store.create_schema()
    yield store, url
    store.close()


def test_the_zero_carbon_day_reads_683_everywhere_without_a_parameter(zc_park: tuple[Store, str],
                                                                      tmp_path: Path) -> None:
    store, url = zc_park
    app = create_app(store)
    http = TestClient(app)
    # the registry, the readings import and the register: the public ways in
    reg = {"park": {"key": "zc", "name_zh": "零碳示范园", "name_en": "Zero-carbon park", "park_class": "zero_carbon",
                    "region": "north"},
           "enterprises": [{"key": "e1", "gateways": ["gw1"],
                            "devices": [{"id": d, "kind": "meter"} for d in ("grid", "pv", "wind", "bess")]}]}
    assert http.put(f"{API}/parks/zc", json=reg).status_code == 200
    _readings_csv(tmp_path / "day.csv")
    imported = _cli("import", "readings", str(tmp_path / "day.csv"), "--park", "zc", "--db", url)
    assert imported.returncode == 0, imported.stderr
    r = http.put(f"{API}/parks/zc/green-power/contracts/GP-2025-0621", json={
        "seller": "某风电公司", "project": "北山风电场", "period_start": DAY, "period_end": DAY,
        "contracted_kwh": 50_000, "settled_kwh": 50_000})
    assert r.status_code == 200, r.text
    window = {"start": f"{DAY}T00:00:00+08:00", "end": "2025-06-22T00:00:00+08:00"}

    api = http.get(f"{API}/parks/zc/indicators/new-energy-share", params=window).json()
    assert api["value"] == pytest.approx(SHARE_DAY, abs=1e-6)
    assert round(api["value"] * 100, 1) == 68.3
    assert api["inputs"]["green_counted"] == pytest.approx(50_000)
    assert api["inputs"]["green_register"]["contracts_kwh"] == pytest.approx(50_000)

    # the live board on that day, one millisecond before midnight (the wall clock is the day's: a stand-in for
    # running this test on 2025-06-21): the window misses 1 ms of 86 400 000, far below 0.1 %
    app.state.board = LiveBoard(store, app.state.share_settings, clock=lambda: (D0 + 24 * H - 1) / 1000)
    board = http.get(f"{API}/parks/zc/live/snapshot").json()
    assert board["share"]["value"] == pytest.approx(SHARE_DAY, abs=1e-6)

    # the Grafana feed: Σ re_used / Σ consumption over the day's hours, as a board's SQL sums them
    BoardFeed(store).run_once(now_ms=D0 + 26 * H, parks=["zc"], since_ms=D0 - H)
    ih = s.indicator_hourly
    with store.engine.connect() as conn:
        rows = conn.execute(select(ih.c.re_used, ih.c.consumption).where(
            ih.c.enterprise == "", ih.c.bucket >= D0, ih.c.bucket < D0 + 24 * H)).all()
    assert len(rows) == 24
    assert sum(r.re_used for r in rows) / sum(r.consumption for r in rows) == pytest.approx(SHARE_DAY, abs=1e-6)

    overview = http.get(f"{API}/regions/north/overview", params=window).json()
    assert overview["parks"][0]["new_energy_share"]["value"] == pytest.approx(SHARE_DAY, abs=1e-6)
    assert overview["new_energy_share"]["value"] == pytest.approx(SHARE_DAY, abs=1e-6)

    cli = _cli("indicators", "share", "--park", "zc", "--start", window["start"], "--end", window["end"], "--db", url)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["value"] == pytest.approx(SHARE_DAY, abs=1e-6)

    # the monthly report (JSON): June holds only this day's energy and the contract's 50 MWh
    rep = _cli("report", "--park", "zc", "--period", "2025-06", "--format", "json", "--out", str(tmp_path), "--db", url)
    assert rep.returncode == 0, rep.stderr
    report = json.loads((tmp_path / "zc-2025-06.json").read_text(encoding="utf-8"))
    assert report["new_energy_share"]["value"] == pytest.approx(SHARE_DAY, abs=1e-6)


def _share(c: TestClient, token: str, park: str, **params: Any) -> dict[str, Any]:
    r = c.get(f"{API}/parks/{park}/indicators/new-energy-share", headers={"Authorization": f"Bearer {token}"},
              params={"start": "2026-11-23T00:00:00+08:00", "end": "2026-11-24T00:00:00+08:00", **params})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _send(c: TestClient, token: str | None, method: str, url: str, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return c.request(method, API + url, headers=headers, **kw)


CONTRACT = {"seller": "某光伏电站", "project": "南坡光伏", "period_start": "2026-11-23", "period_end": "2026-11-23",
            "contracted_kwh": 2500}


def test_a_certificate_bundled_with_its_contract_counts_once(two_parks: Store) -> None:
    # p1 on 2026-11-23: import 2 × 24 × 100 = 4 800 kWh, PV 2 × 24 × 40 = 1 920 kWh, no export or storage:
    # consumption 6 720, RE used 1 920.
    # Contract C1 settled 2 000 kWh with certificates GEC0001-GEC0002 bundled (证电合一: 2 × 1 000 kWh, the same
    # energy); GEC0003 bought alone, then cancelled (核销) — one certificate, one MWh.
    # green = max(2 000, 2 × 1 000) + 1 000 = 3 000 (not 2 000 + 2 000 + 1 000 + 1 000 = 6 000)
    # share = (1 920 + 3 000) / 6 720 = 73.214 %
    tok = _tokens(two_parks)
    with _client(two_parks) as c:
        op = tok["operator"]
        assert _send(c, op, "PUT", "/parks/p1/green-power/contracts/C1",
                     json=CONTRACT | {"settled_kwh": 2000}).status_code == 200
        cert = {"project": "南坡光伏", "production_start": "2026-11-23", "production_end": "2026-11-23"}
        r = _send(c, op, "POST", "/parks/p1/green-power/certificates",
                  json=cert | {"first_id": "GEC0001", "last_id": "GEC0002", "action": "bought", "contract": "C1"})
        assert r.status_code == 200 and r.json()["count"] == 2, r.text
        for action in ("bought", "cancelled"):
            r = _send(c, op, "POST", "/parks/p1/green-power/certificates",
                      json=cert | {"first_id": "GEC0003", "action": action})
            assert r.status_code == 200, r.text
        again = _send(c, op, "POST", "/parks/p1/green-power/certificates",
                      json=cert | {"first_id": "GEC0002", "last_id": "GEC0003", "action": "bought"})
        assert again.status_code == 409 and "bought once" in again.json()["detail"]
        share = _share(c, op, "p1")
        assert share["value"] == pytest.approx((1920 + 3000) / 6720, abs=1e-9)
        assert share["inputs"]["green_counted"] == pytest.approx(3000)
        # the per-request figure is a what-if on top of the register: + 1 000 → (1 920 + 4 000) / 6 720
        assert _share(c, op, "p1", green_purchase_kwh=1000)["value"] == pytest.approx(5920 / 6720, abs=1e-9)
        listed = _send(c, op, "GET", "/parks/p1/green-power").json()
        assert [k["contract"] for k in listed["contracts"]] == ["C1"]
        assert [(b["first_id"], b["action"], b["contract"]) for b in listed["certificates"]] == [
            ("GEC0001", "bought", "C1"), ("GEC0003", "bought", None), ("GEC0003", "cancelled", None)]


def test_certificates_sold_deduct_spread_over_their_production(two_parks: Store) -> None:
    # Enterprise a sells one certificate of its own PV produced 2026-11-23..24: 1 000 kWh over two days, so
    # 500 kWh fall on the 23rd (GP-5). a alone: import 2 400, PV 960 → consumption 3 360, RE used 960;
    # share = (960 − 500) / 3 360 = 13.690 %. The park: (1 920 − 500) / 6 720 = 21.131 %.
    tok = _tokens(two_parks)
    with _client(two_parks) as c:
        r = _send(c, tok["a"], "POST", "/parks/p1/green-power/certificates", params={"enterprise": "a"},
                  json={"first_id": "GEC9", "project": "a 屋顶光伏", "production_start": "2026-11-23",
                        "production_end": "2026-11-24", "action": "sold"})
        assert r.status_code == 200 and r.json()["enterprise"] == "a", r.text
        assert _share(c, tok["a"], "p1", enterprise="a")["value"] == pytest.approx(460 / 3360, abs=1e-9)
        assert _share(c, tok["operator"], "p1")["value"] == pytest.approx(1420 / 6720, abs=1e-9)
        # the same id cannot also be bought here: a certificate is traded once
        r = _send(c, tok["operator"], "POST", "/parks/p1/green-power/certificates",
                  json={"first_id": "GEC9", "project": "x", "production_start": "2026-11", "production_end": "2026-11",
                        "action": "bought"})
        assert r.status_code == 409 and "traded once" in r.json()["detail"]


def test_a_purchase_beyond_the_grid_import_is_capped(two_parks: Store) -> None:
    # p2 (enterprise c) on 2026-11-23: import 2 400, PV 960 → consumption 3 360, RE used 960.
    # Contract settled 500 kWh + 3 certificates bought (3 000 kWh) = 3 500 kWh green > import 2 400:
    # counted 2 400 (NES-6) → share = (960 + 2 400) / 3 360 = 100 %, not (960 + 3 500) / 3 360 = 132.7 %
    admin = _tokens(two_parks)["admin"]
    with _client(two_parks) as c:
        assert _send(c, admin, "PUT", "/parks/p2/green-power/contracts/K2",
                     json=CONTRACT | {"settled_kwh": 500}).status_code == 200
        assert _send(c, admin, "POST", "/parks/p2/green-power/certificates",
                     json={"first_id": "GEC-100", "last_id": "GEC-102", "count": 3, "project": "x",
                           "production_start": "2026-11-23", "production_end": "2026-11-23",
                           "action": "bought"}).status_code == 200
        share = _share(c, admin, "p2")
        assert share["value"] == pytest.approx(1.0, abs=1e-9)
        assert share["inputs"]["green_counted"] == pytest.approx(2400)
        assert share["inputs"]["green_register"]["green_kwh"] == pytest.approx(3500)


def test_tenancy_an_enterprise_writes_only_its_own(two_parks: Store) -> None:
    tok = _tokens(two_parks)
    with _client(two_parks) as c:
        assert _send(c, tok["operator"], "PUT", "/parks/p1/green-power/contracts/PARK1",
                     json=CONTRACT).status_code == 200
        own = {"params": {"enterprise": "a"}}
        # another enterprise's name in the body, the park's contract, the park's figures: refused
        r = _send(c, tok["a"], "PUT", "/parks/p1/green-power/contracts/B1", json=CONTRACT | {"enterprise": "b"}, **own)
        assert r.status_code == 403 and "only for itself" in r.json()["detail"]
        assert _send(c, tok["a"], "PUT", "/parks/p1/green-power/contracts/PARK1", json=CONTRACT,
                     **own).status_code == 403
        assert _send(c, tok["a"], "DELETE", "/parks/p1/green-power/contracts/PARK1", **own).status_code == 403
        assert _send(c, tok["a"], "PUT", "/parks/p1/green-power/contracts/A1", json=CONTRACT).status_code == 403
        assert _send(c, tok["a"], "GET", "/parks/p1/green-power").status_code == 403
        # its own, in its name whatever the body leaves out
        r = _send(c, tok["a"], "PUT", "/parks/p1/green-power/contracts/A1", json=CONTRACT, **own)
        assert r.status_code == 200 and r.json()["enterprise"] == "a", r.text
        assert [k["contract"] for k in _send(c, tok["a"], "GET", "/parks/p1/green-power", **own).json()["contracts"]] \
            == ["A1"]
        # anonymous, a regulator, another park's operator: refused
        assert _send(c, None, "PUT", "/parks/p1/green-power/contracts/X", json=CONTRACT).status_code == 401
        assert _send(c, tok["regulator"], "PUT", "/parks/p1/green-power/contracts/X", json=CONTRACT).status_code == 403
        assert _send(c, tok["operator"], "PUT", "/parks/p2/green-power/contracts/X", json=CONTRACT).status_code == 403
        trail = _send(c, tok["operator"], "GET", "/parks/p1/audit", params={"entity": "green_contracts"}).json()
        assert {(t["key"], t["actor"]) for t in trail} == {("PARK1", "一号园区管委会"), ("A1", "企业a")}


def test_import_from_csv_is_all_or_nothing_with_every_bad_line(two_parks: Store, tmp_path: Path) -> None:
    rows = [["类型", "合同编号", "企业", "售电方", "项目", "开始", "结束", "合同电量", "结算电量", "起始编号",
             "终止编号", "生产开始", "生产结束", "操作"],
            ["合同", "C7", "", "某风电公司", "北山风电场", "2026-11", "2026-11", "30000", "30000", "", "", "", "", ""],
            ["绿证", "C7", "", "", "北山风电场", "", "", "", "", "GEC0010", "GEC0019", "2026-11", "2026-11", "购买"],
            ["绿证", "", "zz", "", "x", "", "", "", "", "GEC0020", "", "2026-11", "2026-11", "购买"],
            ["绿证", "", "", "", "x", "", "", "", "", "GEC0021", "", "2026-11", "2026-11", "租借"]]
    path = tmp_path / "green.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    op = _tokens(two_parks)["operator"]
    with _client(two_parks) as c:
        def send() -> Any:
            return _send(c, op, "POST", "/parks/p1/green-power/import",
                         files={"file": ("green.csv", path.read_bytes(), "text/csv")})
        bad = send()
        assert bad.status_code == 422
        errors = bad.json()["detail"]["errors"]
        assert [e["line"] for e in errors] == [4, 5]
        assert "'zz' is not registered" in errors[0]["reason"] and "action" in errors[1]["reason"]
        assert _send(c, op, "GET", "/parks/p1/green-power").json()["contracts"] == []  # nothing stayed
        with path.open("w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerows(rows[:3])
        assert send().status_code == 200
        # November's 30 000 kWh contract (the 10 bundled certificates are the same energy) spread over 30
        # days: 1 000 kWh on the 23rd → (1 920 + 1 000) / 6 720 = 43.452 %
        assert _share(c, op, "p1")["value"] == pytest.approx(2920 / 6720, abs=1e-9)


def test_a_later_register_write_reaches_the_hours_already_fed(two_parks: Store) -> None:
    # The feed has written p1's day (RE used 1 920 of 6 720 kWh: 28.571 %) and runs two days later, past its
    # redo window; then a contract settled 2 000 kWh for that day is recorded. The next round computes the
    # day again: (1 920 + 2 000) / 6 720 = 58.333 %.
    feed = BoardFeed(two_parks)
    ih = s.indicator_hourly

    def day_share() -> float:
        with two_parks.engine.connect() as conn:
            rows = conn.execute(select(ih.c.re_used, ih.c.consumption).select_from(
                ih.join(s.parks, s.parks.c.id == ih.c.park_id)).where(
                s.parks.c.key == "p1", ih.c.enterprise == "", ih.c.bucket >= T0, ih.c.bucket < T0 + 24 * H)).all()
        return float(sum(r.re_used or 0 for r in rows) / sum(r.consumption or 0 for r in rows))

    feed.run_once(now_ms=T0 + 72 * H, parks=["p1"], since_ms=T0)
    assert day_share() == pytest.approx(1920 / 6720, abs=1e-9)
    with _client(two_parks) as c:
        r = _send(c, _tokens(two_parks)["operator"], "PUT", "/parks/p1/green-power/contracts/LATE",
                  json=CONTRACT | {"settled_kwh": 2000})
        assert r.status_code == 200, r.text
    feed.run_once(now_ms=T0 + 72 * H + 60_000, parks=["p1"])
    assert day_share() == pytest.approx(3920 / 6720, abs=1e-9)
