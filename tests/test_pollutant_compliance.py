"""污染物排放达标: HJ 212 validity rules, the reference-O2 conversion and the permit limits, by hand and
from stored CEMS / wastewater readings."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from analytics.indicators.pollutant_compliance import hours, judge, minutes, to_reference_o2
from ingest.api.app import create_app
from ingest.store import Store
from ingest.store.base import IncomingBatch
from parkmon import quality, wire

D0 = 1_795_363_200_000  # 2026-11-23 00:00 UTC+8 (16:00 UTC the day before)
H, S5 = 3_600_000, 5_000
BAD = quality.bad(quality.Reason.COMM_FAILURE)


def _cems() -> list[tuple[str, int, float | None, int]]:
    """Hour 0: SO2 30 mg/m³ at 9 % O2; hour 1: SO2 20 at 9 %; hour 2: only 40 minutes of data."""
    out: list[tuple[str, int, float | None, int]] = []
    for hour, so2, mins in ((0, 30.0, 60), (1, 20.0, 60), (2, 30.0, 40)):
        for k in range(mins * 12):  # a sample every 5 s
            t = D0 + hour * H + k * S5
            out += [("cems1.so2", t, so2, 0), ("cems1.o2", t, 9.0, 0)]
    return out


def test_validity_and_reference_o2_by_hand() -> None:
    samples = [(t, v, q) for _p, t, v, q in _cems() if _p == "cems1.so2"]
    o2 = minutes([(t, v, q) for _p, t, v, q in _cems() if _p == "cems1.o2"])
    mins = minutes(samples)
    assert all(v is not None for v in mins.values())  # 12 samples a minute: each minute valid
    conv = to_reference_o2(mins, o2, 6.0)
    hourly = hours(conv)
    # 30 × (21 − 6) / (21 − 9) = 37.5 > 35: exceeds; 20 × 15 / 12 = 25 within; hour 2 has 40 < 45 minutes
    assert [hourly[D0 + h * H] for h in range(3)] == [pytest.approx(37.5), pytest.approx(25.0), None]
    j = judge(hourly, 35.0)
    assert (j.valid_hours, j.invalid_hours, j.compliance) == (2, 1, 0.5) and j.exceeding[0][0] == D0
    few = minutes([(D0 + k * S5, 1.0, 0) for k in range(11)])
    assert few[D0] is None  # 11 samples: not a valid minute
    strict = minutes([(D0, 1.0, 0), (D0 + S5, None, BAD)] + [(D0 + k * S5, 1.0, 0) for k in range(2, 14)], strict=True)
    assert strict[D0] is None  # wastewater: an abnormal sample spoils its minute


def test_compliance_of_a_park_from_stored_readings(store: Store) -> None:
    store.upsert_park("demo", "示范园区", "Demo", "zero_carbon")
    store.upsert_meta("demo", "e01", "gw1", wire.Meta(1, "gw1", 0, {
        "cems1.so2": wire.PointMeta("cems.so2", "mg/m3", "instant", "SO2"),
        "cems1.o2": wire.PointMeta("cems.o2", "%", "instant", "O2"),
        "ww1.cod": wire.PointMeta("ww.cod", "mg/L", "instant", "COD")}, {}))
    cod = [("ww1.cod", D0 + k * S5, 300.0, 0) for k in range(2 * 720)]
    cod[100] = ("ww1.cod", cod[100][1], None, BAD)  # one bad sample in hour 0
    store.write_batches([IncomingBatch("demo", "e01", "gw1", wire.Batch(1, "gw1", 1, D0, _cems() + cod), D0)])
    client = TestClient(create_app(store))
    r = client.get("/api/v1/parks/demo/indicators/pollutant-compliance",
                   params={"start": "2026-11-23T00:00:00+08:00", "end": "2026-11-23T03:00:00+08:00"})
    assert r.status_code == 200, r.text
    body = r.json()
    so2 = next(o for o in body["outlets"] if o["metric"] == "cems.so2")
    assert so2["limit"] == 35 and so2["valid_hours"] == 2 and so2["compliance"] == 0.5
    assert so2["exceeding"] == [{"hour": "2026-11-22T16:00:00+00:00", "value": 37.5, "over_by": 2.5}]
    cod_r = next(o for o in body["outlets"] if o["metric"] == "ww.cod")
    assert (cod_r["valid_hours"], cod_r["invalid_hours"], cod_r["compliance"]) == (1, 1, 1.0)
    assert body["value"] == pytest.approx(2 / 3)  # 2 of 3 valid hours within their limits
    assert body["name_zh"] == "污染物排放达标率"
