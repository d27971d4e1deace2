"""The key energy user's upload figures (重点用能单位能耗在线监测, issue 23): 15-minute, daily and monthly
energy per carrier, the platform's quality checks (completeness ≥ 90 %, daily within 5 % of the month), the
CSV/JSON export, the API with its tenancy, and the directory uploader — over every store, from the raw
readings and again from the rollups. Expected values are worked out by hand in the comments."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from analytics.indicators.base import Context, load
from analytics.monitoring_cli import main as cli
from ingest.store import Store, open_store
from ingest.store.base import IncomingBatch
from parkmon.api.app import create_app
from parkmon.api.auth import Auth, create_token, principal_of
from parkmon.common import wire

MIN = 60_000
NOV1 = 1_793_462_400_000  # 2026-11-01 00:00 China time (2026-11-23 00:00 is 1_795_363_200_000, 22 days later)
DEC1 = NOV1 + 30 * 86_400_000  # 2026-12-01 00:00 China time: November has 30 days
DAY = 86_400_000
# electricity: 1 kWh a minute, no reading strictly between 08:00 and 12:00 on 10 November (a 4-hour gap)
ELEC_GAP = (NOV1 + 9 * DAY + 8 * 60 * MIN, NOV1 + 9 * DAY + 12 * 60 * MIN)
# gas: 0.5 m³ a minute, no reading strictly between 20 November 00:00 and 24 November 00:00 (four days)
GAS_GAP = (NOV1 + 19 * DAY, NOV1 + 23 * DAY)


def _write(store: Store) -> None:
    store.upsert_park("demo", "演示园区", "Demo park", "low_carbon", "东区")
    for ent in ("e01", "e02"):
        store.upsert_meta("demo", ent, f"gw-{ent}", wire.Meta(1, f"gw-{ent}", 0, {
            "grid.imp": wire.PointMeta("elec.import.energy", "kWh", "counter", ""),
            "gas.vol": wire.PointMeta("gas.volume", "m3", "counter", "")}))
    # readings every minute from an hour before the month to an hour after it
    minutes = range(-60, 30 * 1440 + 61)
    samples: list[tuple[str, int, float | None, int]] = []
    for m in minutes:
        ts = NOV1 + m * MIN
        if not ELEC_GAP[0] < ts < ELEC_GAP[1]:
            samples.append(("grid.imp", ts, 1000.0 + m, 0))
        if not GAS_GAP[0] < ts < GAS_GAP[1]:
            samples.append(("gas.vol", ts, 500.0 + 0.5 * m, 0))
    batches = [IncomingBatch("demo", "e01", "gw-e01", wire.Batch(1, "gw-e01", k + 1, chunk[-1][1], chunk),
                             chunk[-1][1]) for k, chunk in enumerate(samples[i:i + 2000]
                                                                      for i in range(0, len(samples), 2000))]
    store.write_batches(batches)


@pytest.fixture
def park(store_url: str) -> Iterator[Store]:
    store = open_store(store_url)
    store.create_schema()
    _write(store)
    yield store
    store.close()


def _answer(store: Store, enterprise: str = "e01") -> dict[str, object]:
    ind = load("energy_monitoring")
    out: dict[str, object] = ind.feed(store, "demo", ind.params.model_validate(
        {"month": "2026-11", "enterprise": enterprise}), Context()).to_json()
    return out


def _check(ans: dict[str, object]) -> None:
    inputs = ans["inputs"]
    assert isinstance(inputs, dict)
    carriers = {c["carrier"]: c for c in inputs["carriers"]}
    elec, gas = carriers["grid_import_kwh"], carriers["natural_gas_m3"]
    # electricity: a quarter is 15 kWh; 30 days × 96 = 2 880 quarters; the gap 08:00-12:00 leaves 16 uncollected
    # (every edge from 08:15 to 11:45 sits in a 240-min gap, longer than 15 min, and over 5 min from a reading)
    assert len(elec["quarters"]) == 2880 and elec["quarters"][0] == pytest.approx(15.0)
    gap_q = 9 * 96 + 32  # 10 November, 08:00 is quarter 32 of the day
    assert elec["quarters"][gap_q - 1] == pytest.approx(15.0) and elec["quarters"][gap_q + 16] == pytest.approx(15.0)
    assert elec["quarters"][gap_q:gap_q + 16] == [None] * 16
    # days: 96 × 15 = 1 440 kWh; 10 November 80 × 15 = 1 200; month: the counter's 43 200 minutes × 1 kWh
    assert elec["days"][9] == pytest.approx(1200.0)
    assert [d for i, d in enumerate(elec["days"]) if i != 9] == pytest.approx([1440.0] * 29)
    assert elec["month"] == pytest.approx(43200.0)
    # gas: 7.5 m³ a quarter, 720 a day; 20-23 November nothing collected; month 0.5 × 43 200 = 21 600
    assert gas["days"][19:23] == [None] * 4 and gas["days"][18] == pytest.approx(720.0)
    assert gas["month"] == pytest.approx(21600.0)
    checks = {c["carrier"]: c for c in inputs["checks"]}
    e, g = checks["grid_import_kwh"], checks["natural_gas_m3"]
    # electricity: 2 864 / 2 880 = 0.99444 ≥ 0.90; |42 960 − 43 200| / 43 200 = 240 / 43 200 = 0.005556 ≤ 0.05
    assert (e["quarters_due"], e["quarters_collected"]) == (2880, 2864)
    assert e["completeness"] == pytest.approx(2864 / 2880) and e["completeness_ok"]
    assert e["daily_vs_month"] == pytest.approx(240 / 43200) and e["daily_vs_month_ok"] and e["passed"]
    # gas: 2 880 − 4 × 96 = 2 496 collected, 0.86667 < 0.90; Σ days 26 × 720 = 18 720, |18 720 − 21 600| / 21 600
    # = 2 880 / 21 600 = 0.13333 > 0.05
    assert e["quarters_due"] == g["quarters_due"] == 2880 and g["quarters_collected"] == 2496
    assert g["completeness"] == pytest.approx(2496 / 2880) and not g["completeness_ok"]
    assert g["daily_vs_month"] == pytest.approx(2880 / 21600) and not g["daily_vs_month_ok"]
    assert inputs["passed"] is False
    # the indicator's value: the worst carrier's completeness, against the platform's 90 %
    assert ans["value"] == pytest.approx(2496 / 2880) and ans["target"] == 0.9 and ans["status"] == "below_target"


def test_raw_and_rollup_paths_give_the_hand_computed_month(park: Store) -> None:
    _check(_answer(park))  # nothing rolled up yet: the raw readings answer
    assert park.refresh_rollups() > 0
    assert park.rollup_backlog_from() is None
    _check(_answer(park))  # the 1-minute rollups answer


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # the same whatever the store
def test_csv_export_and_the_directory_uploader(park: Store, tmp_path: Path, store_url: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    park.refresh_rollups()
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    assert cli(["upload", "--db", store_url, "--park", "demo", "--enterprise", "e01", "--month", "2026-11",
                "--to", f"directory:{outbox}"]) == 0
    said = capsys.readouterr().err
    assert "电网购电 Grid electricity bought: 15-min completeness 99.4% (2864/2880, ≥ 90 % ok)" in said
    assert "天然气 Natural gas: 15-min completeness 86.7% (2496/2880, ≥ 90 % FAILED)" in said
    (f,) = outbox.iterdir()
    assert f.name == "demo_e01_2026-11_energy.csv"
    raw = f.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:3] == ["企业 enterprise", "能源品种 carrier", "名称 name"]
    # per carrier: 2 880 quarters + 30 days + the month = 2 911 rows; two carriers = 5 822, and the header
    assert len(rows) == 1 + 2 * 2911
    first = rows[1]
    assert first[:2] == ["e01", "grid_import_kwh"] and first[4:] == ["15min", "2026-11-01T00:00+08:00",
                                                                    "2026-11-01T00:15+08:00", "15.0", "ok"]
    gap = next(r for r in rows if r[1] == "grid_import_kwh" and r[5] == "2026-11-10T08:00+08:00" and r[4] == "15min")
    assert gap[7:] == ["", "missing"]
    month = next(r for r in rows if r[1] == "natural_gas_m3" and r[4] == "month")
    assert month[5:] == ["2026-11-01T00:00", "2026-12-01T00:00", "21600.0", "ok"]
    # a folder that does not exist is refused before anything is computed, with what to do
    assert cli(["upload", "--db", store_url, "--park", "demo", "--enterprise", "e01", "--month", "2026-11",
                "--to", f"directory:{tmp_path / 'nope'}"]) == 2
    assert "does not exist or is not a folder: create it" in capsys.readouterr().err
    assert cli(["export", "--db", store_url, "--park", "demo", "--enterprise", "e01", "--month", "2026-13"]) == 2
    assert "2026-13" in capsys.readouterr().err


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # the same whatever the store
def test_the_api_serves_the_enterprise_its_own_and_no_other(park: Store, store_url: str) -> None:
    park.refresh_rollups()
    tokens = {k: create_token(park, p) for k, p in {
        "operator": principal_of("operator", "管委会", park="demo"),
        "e01": principal_of("enterprise", "企业1", park="demo", enterprise="e01"),
        "e02": principal_of("enterprise", "企业2", park="demo", enterprise="e02")}.items()}
    c = TestClient(create_app(park, auth=Auth(park, cache_s=0)))

    def get(who: str, **q: str) -> httpx.Response:
        answer: httpx.Response = c.get("/api/v1/parks/demo/energy-monitoring", params={"month": "2026-11", **q},
                                       headers={"Authorization": f"Bearer {tokens[who]}"})
        return answer

    ok = get("e01", enterprise="e01")
    assert ok.status_code == 200, ok.text
    _check(ok.json())
    assert get("operator", enterprise="e01").status_code == 200
    refused = get("e02", enterprise="e01")
    assert refused.status_code == 403 and "enterprise=e02" in refused.json()["detail"]
    csv_answer = get("e01", enterprise="e01", format="csv")
    assert csv_answer.headers["content-type"].startswith("text/csv")
    assert 'filename="demo_e01_2026-11_energy.csv"' in csv_answer.headers["content-disposition"]
    unknown = get("operator", enterprise="e99")
    assert unknown.status_code == 404 and "e99" in unknown.json()["detail"]
    bad = get("operator", enterprise="../e01")
    assert bad.status_code == 422
    assert json.loads(get("e02", enterprise="e02").text)["inputs"]["carriers"][0]["month"] is None  # no readings
