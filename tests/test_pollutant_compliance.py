"""污染物排放达标: HJ 212 validity rules, the reference-O2 conversion and the permit limits, by hand and
from stored CEMS / wastewater readings."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from analytics.indicators.pollutant_compliance import hours, judge, minutes, to_reference_o2
from ingest.store import Store
from ingest.store.base import IncomingBatch
from parkmon.api.app import create_app
from parkmon.common import quality, wire

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
        "cems1.flow": wire.PointMeta("cems.flow", "m3/s", "instant", "flow"),
        "ww1.cod": wire.PointMeta("ww.cod", "mg/L", "instant", "COD"),
        "ww1.flow": wire.PointMeta("ww.flow", "L/s", "instant", "flow")}, {}))
    cod = [("ww1.cod", D0 + k * S5, 300.0, 0) for k in range(2 * 720)]
    cod[100] = ("ww1.cod", cod[100][1], None, BAD)  # one bad sample in hour 0
    flows = [("cems1.flow", t, 10.0, 0) for p, t, _v, _q in _cems() if p == "cems1.so2"]
    flows += [("ww1.flow", D0 + k * S5, 5.0, 0) for k in range(2 * 720)]
    store.write_batches([IncomingBatch("demo", "e01", "gw1", wire.Batch(1, "gw1", 1, D0, _cems() + cod + flows), D0)])
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
    # amounts from the measured (not O2-converted) minutes with a flow: SO2 (30 x 60 + 20 x 60 + 30 x 40)
    # min x 10 m³/s x 60 s = 2.52 kg; COD 300 mg/L x 5 L/s over 119 valid minutes (one spoilt) = 10.71 kg
    assert so2["amount_kg"] == pytest.approx((30 * 60 + 20 * 60 + 30 * 40) * 10 * 60 * 1e-6)
    assert cod_r["amount_kg"] == pytest.approx(300 * 5 * 60 * 119 * 1e-6)
    assert body["amount_kg_by_pollutant"] == {"cems.so2": so2["amount_kg"], "ww.cod": cod_r["amount_kg"]}
    # three hours are not a day (20 valid hours needed): no valid day, said so
    assert (so2["valid_days"], so2["invalid_days"], so2["day_compliance"]) == (0, 1, None)


def test_day_values_and_emission_amounts_by_hand() -> None:
    from analytics.indicators.pollutant_compliance import amount_kg, days

    # a China day of 24 hours: 19 valid hours is not a valid day, 20 is; the value is the mean of them
    short = {D0 + h * H: (40.0 if h < 19 else None) for h in range(24)}
    assert days(short) == {D0: None}
    full = {D0 + h * H: (30.0 if h < 10 else 40.0 if h < 20 else None) for h in range(24)}
    assert days(full) == {D0: pytest.approx(35.0)}  # (10 x 30 + 10 x 40) / 20
    # the next China day starts at 16:00 UTC: an hour at 23:00 China time belongs to this day, 00:00 to the next
    assert set(days({D0 + 23 * H: 1.0, D0 + 24 * H: 1.0}, min_valid=1)) == {D0, D0 + 24 * H}
    assert judge(days(full), 35.0).exceeding == []  # 35.0 is at the limit, not over it
    # flue gas: 30 mg/m³ x 10 m³/s (standard, dry) for 60 minutes = 30 x 10 x 3 600 mg = 1.08 kg;
    # a minute without flow is left out, not guessed
    conc = {D0 + k * 60_000: 30.0 for k in range(61)}
    flow: dict[int, float | None] = {D0 + k * 60_000: 10.0 for k in range(60)}
    flow[D0 + 60 * 60_000] = None
    kg, n = amount_kg(conc, flow, water=False)
    assert (kg, n) == (pytest.approx(1.08), 60)
    # wastewater: COD 100 mg/L at 5 L/s for 10 minutes = 100 x 5 x 600 mg = 0.3 kg (G = Q·T·10⁻³ · C·10⁻³)
    kg, n = amount_kg({D0 + k * 60_000: 100.0 for k in range(10)}, {D0 + k * 60_000: 5.0 for k in range(10)}, True)
    assert (kg, n) == (pytest.approx(0.3), 10)
