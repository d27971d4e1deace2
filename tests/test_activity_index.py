"""电力看经济: the electricity activity index, by hand and from meter counters stored in a real store
(SQLite and PostgreSQL), with a meter reset and a day no meter covered."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from fastapi.testclient import TestClient

from analytics.indicators.activity_index import compute_index
from ingest.store import Store
from ingest.store.base import IncomingBatch
from parkmon.api.app import create_app
from parkmon.common import wire
from parkmon.common.clock import CHINA


def test_index_is_consumption_over_the_mean_of_the_days_before() -> None:
    days = [(f"d{i}", 100.0) for i in range(7)] + [("d7", 50.0), ("d8", None), ("d9", 120.0)]
    out = compute_index(days, baseline_days=7, min_baseline_days=7)
    assert [d.index for d in out[:7]] == [None] * 7  # no history yet
    assert out[7].baseline_kwh == 100.0 and out[7].index == pytest.approx(50.0)  # 100 × 50 / 100
    assert out[8].index is None  # no consumption that day
    # day 9 looks back at d2..d8: six days with data (d8 has none) < 7 needed -> no index
    assert out[9].index is None
    relaxed = compute_index(days, baseline_days=7, min_baseline_days=5)
    assert relaxed[9].baseline_kwh == pytest.approx(550 / 6)  # (5 × 100 + 50) / 6
    assert relaxed[9].index == pytest.approx(100 * 120 / (550 / 6))  # 130.909...
    with pytest.raises(ValueError, match="min_baseline_days"):
        compute_index(days, baseline_days=3, min_baseline_days=5)


FIRST = date(2026, 11, 1)
IMPORT = [1000.0 + 100 * i for i in range(12)]  # kWh imported on day i
GEN, EXPORT = 240.0, 48.0  # kWh generated on site and exported, every day


def _seed(store: Store) -> None:
    store.upsert_park("demo", "示范园区", "Demo", "zero_carbon")
    store.upsert_meta("demo", "e01", "gw1", wire.Meta(1, "gw1", 0, {
        "grid.imp": wire.PointMeta("elec.import.energy", "kWh", "counter", "正向有功"),
        "grid.exp": wire.PointMeta("elec.export.energy", "kWh", "counter", "反向有功"),
        "pv.gen": wire.PointMeta("pv.generation.energy", "kWh", "counter", "光伏发电量")}, {}))
    samples: list[tuple[str, int, float | None, int]] = []
    imp = exp = gen = 0.0
    for day in range(12):
        if day == 8:  # the gateway was down all day: no readings at all
            imp += IMPORT[day]
            exp += EXPORT
            gen += GEN
            continue
        for hour in range(24):
            ts = int(datetime.combine(FIRST + timedelta(days=day), time(hour), CHINA).timestamp() * 1000)
            if day == 10 and hour == 12:
                imp = IMPORT[day] / 48  # the import meter was replaced at 11:30: a new counter, from zero
            samples += [("grid.imp", ts, imp, 0), ("grid.exp", ts, exp, 0), ("pv.gen", ts, gen, 0)]
            imp += IMPORT[day] / 24
            exp += EXPORT / 24
            gen += GEN / 24
    end = int(datetime.combine(FIRST + timedelta(days=12), time(), CHINA).timestamp() * 1000)
    samples += [("grid.imp", end, imp, 0), ("grid.exp", end, exp, 0), ("pv.gen", end, gen, 0)]
    store.write_batches([IncomingBatch("demo", "e01", "gw1", wire.Batch(1, "gw1", 1, end, samples), end)])


def test_index_from_stored_counters_through_the_api(store: Store) -> None:
    _seed(store)
    client = TestClient(create_app(store))
    r = client.get("/api/v1/parks/demo/indicators/electricity-activity",
                   params={"days": 4, "last": "2026-11-12", "baseline_days": 7, "min_baseline_days": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name_zh"] == "电力看经济指数"
    days = {d["day"]: d for d in body["inputs"]["days"]}
    assert list(days) == ["2026-11-09", "2026-11-10", "2026-11-11", "2026-11-12"]

    def used(i: int) -> float:
        return IMPORT[i] + GEN - EXPORT

    # day 8 (11-09) had no readings: the counters are interpolated across the 25 h from 11-08 23:00 to
    # 11-10 00:00, so the 11-09 midnight edge sits 1/25 of the way and the two days share the energy
    def split(x7: float, x8: float) -> tuple[float, float]:
        over = x7 / 24 + x8
        return 23 * x7 / 24 + over / 25, over * 24 / 25

    (i7, i8), (g7, g8), (e7, e8) = split(IMPORT[7], IMPORT[8]), split(GEN, GEN), split(EXPORT, EXPORT)
    c7, c8 = i7 + g7 - e7, i8 + g8 - e8
    assert days["2026-11-09"]["consumption_kwh"] == pytest.approx(c8)
    # day 10 (11-11): the energy between the old meter's 11:00 reading and its removal at 11:30 was never
    # read and is not guessed; the new meter's first reading counts from zero
    assert days["2026-11-11"]["consumption_kwh"] == pytest.approx(used(10) - IMPORT[10] / 48)
    # day 11 (11-12) against days 4..10, all seven with a value
    base = used(4) + used(5) + used(6) + c7 + c8 + used(9) + used(10) - IMPORT[10] / 48
    assert days["2026-11-12"]["baseline_kwh"] == pytest.approx(base / 7)
    assert body["value"] == pytest.approx(round(100 * used(11) / (base / 7), 2))
    assert body["inputs"]["latest_day"] == "2026-11-12"
    # one enterprise, an unknown park
    assert client.get("/api/v1/parks/demo/indicators/electricity-activity",
                      params={"enterprise": "e01", "last": "2026-11-12", "days": 1}).status_code == 200
    assert client.get("/api/v1/parks/nope/indicators/electricity-activity").status_code == 404
