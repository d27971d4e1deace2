"""Data that starts exactly at the period start gives the same figures on the raw and the rollup paths
(issue 23): a month of counters imported from 2025-06-01 00:00 China time, read through the API right after
the import (the raw readings answer: nothing is rolled up yet) and again after `parkmon ingest maintain`
(the rollups answer). Before the fix the rollups had no value for a counter's start edge when its first
reading sat on the period's start: the first hour fell out of the share (70.0 %, completeness 0.958 instead
of 68.3 %) and the water meter did not "cover" June (no water intensity).

Real stores (SQLite, PostgreSQL, TimescaleDB with its continuous aggregates), the real API (TestClient), the
real `parkmon ingest maintain` command. Every expected figure is worked out by hand below.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from analytics.meters import counter_totals
from ingest.store import Store, open_store
from ingest.store.base import IncomingBatch
from parkmon.api.app import create_app
from parkmon.common import wire

API = "/api/v1"
Q, H, DAY = 900_000, 3_600_000, 86_400_000  # readings every 15 minutes
D0 = 1_748_707_200_000  # 2025-06-01 00:00 China time (UTC+8) = 2025-05-31 16:00 UTC
DAYS = 30  # June

# Every June day is the zero-carbon park day (MWh per hour, China time):
#   hours  | import | PV | wind | export | charge | discharge
#   0-5    |   20   |  0 |  15  |   0    |   0    |   0
#   6-9    |   15   | 20 |  10  |   0    |   0    |   0
#   10-13  |    0   | 50 |  10  |  20    |  25    |   0
#   14-18  |   12   | 28 |  10  |   0    |   0    |   0
#   19-23  |   24   |  0 |  18  |   0    |   0    |  18
# a day: import 120+60+0+60+120 = 360, PV 80+200+140 = 420, wind 90+40+40+50+90 = 310, export 80,
# charge 100, discharge 90; water 15 m³ every hour.
BLOCKS = [(range(0, 6), (20, 0, 15, 0, 0, 0)), (range(6, 10), (15, 20, 10, 0, 0, 0)),
          (range(10, 14), (0, 50, 10, 20, 25, 0)), (range(14, 19), (12, 28, 10, 0, 0, 0)),
          (range(19, 24), (24, 0, 18, 0, 0, 18))]
POINTS = {"grid.imp": "elec.import.energy", "pv.gen": "pv.generation.energy", "wind.gen": "wind.generation.energy",
          "grid.exp": "elec.export.energy", "bess.chg": "storage.charge.energy",
          "bess.dis": "storage.discharge.energy", "water.vol": "water.volume"}
WATER_M3_PER_H = 15.0

# The share of 1 June by the NES rules (docs/indicators/new-energy-share.md), interval 1 h:
#   consumption = import + RE − export = 360 + 730 − 80 = 1 010 MWh
#   export 20/h leaves from RE at noon: RE kept 730 − 80 = 650; the battery charges only at noon (import 0),
#   so its 100 MWh are RE; the evening discharge 90 MWh is RE → RE used = (650 − 100) + 90 = 640 MWh
#   the green contract: 50 MWh settled for 1 June, ≤ import 360 → (640 + 50) / 1 010 = 690 / 1 010 = 68.317 %
SHARE_DAY = 690 / 1010
#   June: 30 days alike, the contract only on the 1st: (30 × 640 + 50) / (30 × 1 010) = 19 250 / 30 300 = 63.531 %
SHARE_JUNE = 19_250 / 30_300
# comprehensive energy (GB/T 2589 当量值 0.1229 kgce/kWh) on electricity used = import + RE − export:
#   a day 1 010 000 kWh × 0.1229 = 124 129 kgce = 124.129 tce; June 30 × 124.129 = 3 723.87 tce
TCE_DAY, TCE_JUNE = 124.129, 3723.87
# water: June 30 × 24 h × 15 m³ = 10 800 m³; value added filed for June 720 万元 → 10 800 / 720 = 15.0 m³/万元
WATER_JUNE, VALUE_ADDED, WATER_INTENSITY = 10_800.0, 720.0, 15.0


def _month_of_readings() -> list[tuple[str, int, float | None, int]]:
    """Counter readings every 15 minutes from 2025-06-01 00:00 (the period's start: no reading before
    it) to 2025-07-01 00:00, each hour's energy spread evenly over its quarters (kWh, m³)."""
    per_hour = {h: flows for hours, flows in BLOCKS for h in hours}
    totals = dict.fromkeys(POINTS, 0.0)
    samples: list[tuple[str, int, float | None, int]] = []
    for k in range(DAYS * 96 + 1):
        t = D0 + k * Q
        samples += [(p, t, v, 0) for p, v in totals.items()]
        mwh = per_hour[k // 4 % 24]
        for p, x in zip(POINTS, (*mwh, WATER_M3_PER_H / 1000), strict=True):
            totals[p] += x * 1000 / 4
    return samples


@pytest.fixture
def park(store_url: str) -> Iterator[tuple[Store, str, TestClient]]:
    store = open_store(store_url)  # SQLite, PostgreSQL (partitions), TimescaleDB (continuous aggregates)
    store.create_schema()
    store.upsert_park("ps", "期初园区", "Period-start park", "zero_carbon", "north")
    # the gateway's catalogue and its readings, as ingest writes them (store.write_batches)
    store.upsert_meta("ps", "e1", "gw1", wire.Meta(1, "gw1", 0, {
        k: wire.PointMeta(m, "m3" if m == "water.volume" else "kWh", "counter", "") for k, m in POINTS.items()}))
    samples = _month_of_readings()
    store.write_batches([IncomingBatch("ps", "e1", "gw1", wire.Batch(1, "gw1", i + 1, D0, samples[i:i + 5000]), D0)
                         for i in range(0, len(samples), 5000)])
    http = TestClient(create_app(store))
    r = http.put(f"{API}/parks/ps/green-power/contracts/GP-0601", json={
        "seller": "某风电公司", "project": "北山风电场", "period_start": "2025-06-01", "period_end": "2025-06-01",
        "contracted_kwh": 50_000, "settled_kwh": 50_000})
    assert r.status_code == 200, r.text
    r = http.put(f"{API}/parks/ps/economy", json={"enterprise": "e1", "month": "2025-06", "value_added": VALUE_ADDED})
    assert r.status_code == 200, r.text
    yield store, store_url, http
    store.close()


def _figures(http: TestClient) -> dict[str, Any]:
    day = {"start": "2025-06-01T00:00:00+08:00", "end": "2025-06-02T00:00:00+08:00"}
    june = {"start": "2025-06-01T00:00:00+08:00", "end": "2025-07-01T00:00:00+08:00"}
    out: dict[str, Any] = {}
    for name, window in (("day", day), ("june", june)):
        r = http.get(f"{API}/parks/ps/indicators/new-energy-share", params=window)
        assert r.status_code == 200, r.text
        out[f"share_{name}"] = r.json()
        r = http.get(f"{API}/parks/ps/indicators/comprehensive-energy", params=window)
        assert r.status_code == 200, r.text
        out[f"energy_{name}"] = r.json()["comprehensive_energy"]
    r = http.get(f"{API}/parks/ps/indicators/intensity", params={"month": "2025-06"})
    assert r.status_code == 200, r.text
    out["water"] = r.json()["water_intensity"]
    return out


def _check(f: dict[str, Any]) -> None:
    for name, share in (("day", SHARE_DAY), ("june", SHARE_JUNE)):
        s = f[f"share_{name}"]
        assert s["value"] == pytest.approx(share, abs=1e-9), name
        assert s["completeness"] == pytest.approx(1.0), name  # not 23/24 = 0.958: the first hour is in
        assert s["inputs"]["intervals_missing"] == 0, name
    assert round(f["share_day"]["value"] * 100, 1) == 68.3
    for name, tce in (("day", TCE_DAY), ("june", TCE_JUNE)):
        e = f[f"energy_{name}"]
        assert e["value"] == pytest.approx(tce, abs=1e-6), name
        assert e["inputs"]["meters_not_covering_period"] == [] and e["completeness"] == pytest.approx(1.0), name
    w = f["water"]
    assert w["inputs"]["meters_not_covering_period"] == []
    assert w["inputs"]["water_m3"] == pytest.approx(WATER_JUNE)
    assert w["value"] == pytest.approx(WATER_INTENSITY)


def test_period_start_data_gives_the_same_figures_raw_and_rolled_up(park: tuple[Store, str, TestClient]) -> None:
    _store, url, http = park
    raw = _figures(http)  # right after the import: nothing rolled up yet, the readings answer
    assert {raw[k]["inputs"]["source"] for k in ("share_day", "share_june", "energy_day", "energy_june")} == {"raw"}
    _check(raw)

    done = subprocess.run([sys.executable, "-m", "parkmon.cli", "ingest", "maintain", "--db", url],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rolled = _figures(http)
    # the rollups answer now: hours for the shares (interval 1 h), China days for the energy
    assert rolled["share_day"]["inputs"]["source"] == rolled["share_june"]["inputs"]["source"] == "1h"
    assert rolled["energy_day"]["inputs"]["source"] == rolled["energy_june"]["inputs"]["source"] == "1d"
    _check(rolled)


def test_a_counter_whose_first_reading_is_on_the_period_start_covers_it(park: tuple[Store, str, TestClient]) -> None:
    """The same through the store's rollup reads directly: the first hour's step is the start edge's."""
    store, _url, _http = park
    store.refresh_rollups()
    (imp,) = store.points("ps", metrics=["elec.import.energy"])
    (tot,) = store.counter_totals([imp.id], D0, D0 + DAY, "1h")
    # 1 June's import 360 MWh = 360 000 kWh, from the reading at 00:00 (the start edge) to the one at 24:00
    assert tot.from_start and tot.to_end and tot.amount == pytest.approx(360_000)
    steps = store.counter_steps({imp.id: 0}, D0, D0 + 2 * H, "1h")
    # hours 00 and 01 import 20 MWh each: 20 000 kWh, both known (the first hour is not dropped)
    assert [(s.bin_ms, s.amount, s.points) for s in steps] == [(D0, 20_000, 1), (D0 + H, 20_000, 1)]
    # minute by minute (1 min rollups) the 15-minute readings leave most minutes empty, and the first minute's
    # energy is not known - its lone reading on 00:00 says nothing of 00:00-00:01 - so no minute of the
    # interval view has a step before 00:15
    minutes = store.counter_steps({imp.id: 0}, D0, D0 + H, "1m")
    assert [m.points for m in minutes if m.bin_ms < D0 + 15 * 60_000] in ([], [0])
    # a period starting an hour before the data: the counter did not cover its start (never guessed)
    (early,) = store.counter_totals([imp.id], D0 - H, D0 + DAY, "1h")
    assert not early.from_start


def test_a_misread_and_a_meter_swap_on_edge_readings_keep_the_counter_rules(store: Store) -> None:
    """Hourly readings from the period's start, each on an hour's edge: the edge reading is the edge's value,
    except a reading that drops below the one before it - a misread or a new meter - which is judged by the
    counter rules as before (analytics/counters.py: a misread skipped, a reset counts the new reading)."""
    store.upsert_park("ps", "期初园区", "Period-start park", "zero_carbon")
    store.upsert_meta("ps", "e1", "gw1", wire.Meta(1, "gw1", 0, {
        "glitch": wire.PointMeta("elec.import.energy", "kWh", "counter", ""),
        "swap": wire.PointMeta("pv.generation.energy", "kWh", "counter", "")}))
    glitch = [0.0, 10.0, 20.0, 0.0, 40.0, 50.0, 60.0]  # 03:00 misread as 0, back to 40 at 04:00
    swap = [0.0, 10.0, 20.0, 5.0, 15.0, 25.0, 35.0]  # meter replaced between 02:00 and 03:00
    samples: list[tuple[str, int, float | None, int]] = [
        (p, D0 + h * H, v, 0) for p, vals in (("glitch", glitch), ("swap", swap)) for h, v in enumerate(vals)]
    store.write_batches([IncomingBatch("ps", "e1", "gw1", wire.Batch(1, "gw1", 1, D0, samples), D0)])
    store.refresh_rollups()
    pts = {p.metric: p.id for p in store.points("ps")}
    g, s = pts["elec.import.energy"], pts["pv.generation.energy"]
    totals = {t.point_id: t for t in store.counter_totals([g, s], D0, D0 + 6 * H, "1h")}
    # the misread skipped: 60 − 0 = 60 kWh; the swap: old meter 20 − 0, the new one's 5 from zero, then 35 − 5:
    # 20 + 5 + 30 = 55 kWh, one reset
    assert totals[g].amount == pytest.approx(60) and totals[g].resets == 0
    assert totals[s].amount == pytest.approx(55) and totals[s].resets == 1
    assert all(t.from_start and t.to_end for t in totals.values())
    steps = store.counter_steps({g: 0, s: 1}, D0, D0 + 6 * H, "1h")
    hourly = {(x.group, (x.bin_ms - D0) // H): x.amount for x in steps}
    # hour by hour, at bucket grain: the hour whose end reading is the misread holds (0) and the next one
    # takes both hours' energy (40 − 20 = 20); the swap's hour 02 holds at the old meter's 20 (0) and hour 03
    # counts the old meter's top in it (none above 20: 0) plus the new meter's reading at 04:00 (15)
    assert [hourly[(0, h)] for h in range(6)] == pytest.approx([10, 10, 0, 20, 10, 10])
    assert [hourly[(1, h)] for h in range(6)] == pytest.approx([10, 10, 0, 15, 10, 10])


def test_a_counter_read_only_at_the_period_edges_covers_it_rolled_up(store: Store) -> None:
    """A water meter read twice, on 2025-06-01 00:00 and 2025-07-01 00:00 (a monthly manual reading): the raw
    path takes the difference; the rollups (a reading on each edge, none in June's last day) the same."""
    store.upsert_park("ps", "期初园区", "Period-start park", "zero_carbon")
    store.upsert_meta("ps", "e1", "gw1", wire.Meta(1, "gw1", 0, {
        "water.vol": wire.PointMeta("water.volume", "m3", "counter", "")}))
    end = D0 + DAYS * DAY
    store.write_batches([IncomingBatch("ps", "e1", "gw1", wire.Batch(1, "gw1", 1, D0, [
        ("water.vol", D0, 1_000.0, 0), ("water.vol", end, 11_800.0, 0)]), D0)])
    store.refresh_rollups()
    carriers: dict[str, tuple[str, ...]] = {"water_m3": ("water.volume",)}
    raw, raw_rep = counter_totals(store, "ps", carriers, D0, end, source="raw")
    rolled, rep = counter_totals(store, "ps", carriers, D0, end)
    # by hand: 11 800 − 1 000 = 10 800 m³ in June, on both paths, the meter covering the month
    assert rep["source"] == "1d" and rep["uncovered"] == [] == raw_rep["uncovered"]
    assert rolled["water_m3"] == pytest.approx(10_800) == raw["water_m3"]
