"""HJ 212-2017 emissions arithmetic (parkmon/common/emissions.py): every rule and formula on hand-computed
numbers, the records a data logger sends for a synthetic outlet, the module importing without server
libraries (the gateway has none), and pollutant compliance agreeing whether it is computed from the
samples or from the hour records derived from them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from analytics.indicators.pollutant_compliance import compute_compliance
from ingest.store import Store
from ingest.store.base import IncomingBatch
from parkmon.common import emissions as em
from parkmon.common import hj212, quality, wire
from parkmon.common.hj212_codes import CN_DAY, CN_HOUR, CN_MINUTE

D0 = 1_795_363_200_000  # 2026-11-23 00:00 China time (a China day and an hour start)
M, H, S5 = 60_000, 3_600_000, 5_000
BAD = quality.bad(quality.Reason.COMM_FAILURE)  # the instrument did not answer: B
MAINT = quality.HJ212_FLAGS["M"]
SO2, NOX, O2, QGAS, TEMP = "a21026", "a21002", "a19001", "a00000", "a01012"
COD, QWATER = "w01018", "w00000"


def _minute(v: float, n: int = 12, start: int = D0, step: int = S5, q: int = 0) -> list[em.Reading]:
    return [(start + k * step, v, q) for k in range(n)]


# --- import on a gateway ---------------------------------------------------------------------------------
def test_imports_without_server_libraries() -> None:
    """A fresh interpreter that cannot import any server library imports the module and computes records;
    every module it loaded beyond the standard library is parkmon's own (none from site-packages, no other
    package of the repository: the gateway needs parkmon.common alone)."""
    code = textwrap.dedent("""
        import sys
        import sysconfig
        BLOCKED = {"sqlalchemy", "fastapi", "starlette", "pydantic", "psycopg", "yaml", "openpyxl", "reportlab",
                   "msgspec", "paho", "pymodbus", "numpy", "pandas", "httpx", "alembic", "uvicorn"}
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"blocked on the gateway: {name}")
                return None
        sys.meta_path.insert(0, Block())
        before = set(sys.modules)
        from parkmon.common import emissions as em
        recs = em.records({"a21026": [(k * 5000, 1.0, 0) for k in range(720)]}, "gas", 3_600_000)
        assert len(recs) == 61, len(recs)
        std = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
        files = {n: getattr(sys.modules[n], "__file__", None) or "" for n in set(sys.modules) - before}
        ours = sorted({n.split(".")[0] for n, f in files.items() if f.startswith(ROOT)})
        foreign = sorted(n for n, f in files.items() if f and not f.startswith((ROOT, *std)))
        print("ours:", ours, "foreign:", foreign)
        assert not foreign, foreign
    """)
    root = str(Path(em.__file__).resolve().parents[2])  # the repository: every package of ours counts
    r = subprocess.run([sys.executable, "-c", f"ROOT = {root + '/'!r}\n" + code], capture_output=True, text=True,
                       timeout=60, cwd=root)
    assert r.returncode == 0, r.stderr
    assert "ours: ['parkmon'] foreign: []" in r.stdout, r.stdout


# --- data flags --------------------------------------------------------------------------------------------
def test_quality_maps_back_to_the_flag_letter() -> None:
    for letter in "NFMSDCTB":
        assert em.flag_of(hj212.flag_quality(letter)) == letter  # round trip through parkmon quality
    assert em.flag_of(quality.bad(quality.Reason.COMM_FAILURE)) == "B"  # no answer: instrument <-> logger link
    assert em.flag_of(quality.uncertain(quality.Reason.LAST_USABLE)) == "B"
    assert em.flag_of(quality.bad(quality.Reason.SENSOR_FAILURE)) == "D"  # no letter of its own: fault
    assert em.flag_of(quality.GOOD, None) == "D"  # good quality but no value is not a normal value
    assert em.flag_of(quality.bad(quality.Reason.NONE) | 0x3F) == "D"  # a reason this version does not know


def test_flue_gas_flag_74_vs_75_percent_normal() -> None:
    assert em.roll_up_flag(["N"] * 75 + ["D"] * 25, "gas", 12) == "N"  # 75 % normal
    assert em.roll_up_flag(["N"] * 74 + ["M"] * 26, "gas", 12) == "D"  # 74 %: D, whatever the others were
    # the same in a minute of 100 samples (0.6 s apart): 75 good + 25 failed is a valid minute, mean of the good
    good = [(D0 + k * 600, 10.0, 0) for k in range(75)]
    failed = [(D0 + k * 600, None, BAD) for k in range(75, 100)]
    assert em.minute_values(good + failed, "gas")[D0].value == 10.0
    assert em.minute_values(good[:74] + failed + [(D0 + 59_999, None, BAD)], "gas")[D0].flag == "D"
    # and both rules hold: 12 normal samples of 17 (71 %) is D though the minute has its 12
    twelve = [(D0 + k * 3_000, 10.0, 0) for k in range(12)] + [(D0 + 40_000 + k * 3_000, None, BAD) for k in range(5)]
    assert em.minute_values(twelve, "gas")[D0].flag == "D"


def test_wastewater_any_abnormal_value_makes_the_aggregate_abnormal() -> None:
    m = em.minute_values([*_minute(100.0, 20, step=2_500), (D0 + 59_000, 100.0, MAINT)], "water")[D0]
    assert (m.flag, m.value, m.avg) == ("M", None, 100.0)  # 20 normal slices are not enough with one M
    # flue gas: 20 of 21 normal (95 %) is N
    assert em.minute_values([*_minute(100.0, 20, step=2_500), (D0 + 59_000, 100.0, MAINT)], "gas")[D0].flag == "N"
    # an hour of 59 normal minutes and one in calibration: C for wastewater, N for flue gas
    mins = {D0 + k * M: em.Aggregate(D0 + k * M, "N", 100.0) for k in range(59)}
    mins[D0 + 59 * M] = em.Aggregate(D0 + 59 * M, "C", 120.0)
    assert em.roll_up(mins, "water", "hour")[D0].flag == "C"
    assert em.roll_up(mins, "gas", "hour")[D0].flag == "N"
    # the most frequent abnormal letter names it; D when it only lacks values
    assert em.roll_up_flag(["N", "M", "M", "C"], "water", 1) == "M"
    assert em.roll_up_flag(["N"] * 11, "water", 12) == "D"


# --- validity ----------------------------------------------------------------------------------------------
def test_minute_needs_12_samples() -> None:
    ok = em.minute_values([(D0 + k * S5, float(k), 0) for k in range(12)], "gas")[D0]
    assert (ok.flag, ok.value, ok.min, ok.max, ok.valid, ok.total) == ("N", 5.5, 0.0, 11.0, 12, 12)  # 0..11
    short = em.minute_values(_minute(1.0, 11), "gas")[D0]
    assert (short.flag, short.value, short.avg) == ("D", None, 1.0)  # 11 samples: not valid, still measured
    assert em.minute_values(_minute(1.0, 12), "water")[D0].value == 1.0  # wastewater: 12 slices of 5 s
    assert em.minute_values(_minute(1.0, 11), "water")[D0].value is None
    # a wastewater 10-minute value needs n ≥ 120 slices (App. D)
    assert em.minute_values(_minute(2.0, 120), "water", period_ms=10 * M)[D0].value == 2.0
    assert em.minute_values(_minute(2.0, 119), "water", period_ms=10 * M)[D0].value is None
    # a minute with only failed samples is still a minute: invalid, flagged B (the link)
    assert em.minute_values(_minute(0.0, 12, q=BAD), "gas")[D0].flag == "D"
    assert em.minute_values([(D0, None, BAD)] * 12, "water")[D0].flag == "B"


def test_hour_needs_45_valid_minutes() -> None:
    def hour(n_valid: int) -> em.Aggregate:
        mins = {D0 + k * M: em.Aggregate(D0 + k * M, "N", 10.0 if k < 30 else 40.0) for k in range(n_valid)}
        mins.update({D0 + k * M: em.Aggregate(D0 + k * M, "D", 1000.0) for k in range(n_valid, 60)})
        return em.roll_up(mins, "gas", "hour")[D0]

    h45 = hour(45)  # 30 minutes at 10 and 15 at 40: (300 + 600) / 45 = 20; the D minutes do not count
    assert (h45.flag, h45.value, h45.min, h45.max, h45.valid, h45.total) == ("N", 20.0, 10.0, 40.0, 45, 60)
    h44 = hour(44)  # 44 valid minutes: not valid; shown with all 60 minutes' means under D
    assert (h44.flag, h44.value) == ("D", None)
    assert h44.avg == pytest.approx((30 * 10 + 14 * 40 + 16 * 1000) / 60)
    # missing minutes count the same: 45 minutes with data, all valid, is a valid hour
    assert em.roll_up({D0 + k * M: em.Aggregate(D0 + k * M, "N", 5.0) for k in range(45)}, "gas", "hour")[D0].is_valid


def test_day_needs_20_valid_hours_of_a_china_day() -> None:
    def day(n_valid: int) -> em.Aggregate:
        hrs = {D0 + k * H: em.Aggregate(D0 + k * H, "N", 30.0 if k < 10 else 40.0) for k in range(n_valid)}
        hrs.update({D0 + k * H: em.Aggregate(D0 + k * H, "D", 99.0) for k in range(n_valid, 24)})
        return em.roll_up(hrs, "gas", "day")[D0]

    assert (day(20).flag, day(20).value) == ("N", 35.0)  # (10 x 30 + 10 x 40) / 20
    assert (day(19).flag, day(19).value) == ("D", None)
    # the China day starts at 16:00 UTC: 23:00 China time is this day, 00:00 the next
    assert em.period_start(D0 + 23 * H + 59 * M, "day") == D0 and em.period_start(D0 + 24 * H, "day") == D0 + 24 * H


# --- formulas ----------------------------------------------------------------------------------------------
def test_reference_o2() -> None:
    assert em.at_reference_o2(30.0, 9.0, 6.0) == pytest.approx(37.5)  # 30 x (21 − 6) / (21 − 9)
    assert em.at_reference_o2(30.0, 6.0, 6.0) == 30.0
    assert em.at_reference_o2(30.0, 21.0, 6.0) is None  # ambient air: nothing to convert


def test_standard_state_flow() -> None:
    # 100 m³/s at 127 °C (400 K), 98 000 Pa + 3 325 Pa static = 101 325 Pa, 10 % vapour:
    # 100 x 273 / 400 x 101325 / 101325 x 0.9 = 61.425 m³/s
    assert em.standard_flow(100.0, 127.0, 98_000.0, 3_325.0, 0.10) == pytest.approx(61.425)
    # defaults when pressure and humidity are not measured: Ba 101 325 Pa, Ps 0, Xsw 0
    assert em.standard_flow(100.0, 0.0) == pytest.approx(100.0)
    assert em.standard_flow(100.0, 127.0) == pytest.approx(68.25)


def test_emission_rate_and_amounts() -> None:
    assert em.emission_rate_kg_h(50.0, 200_000.0) == pytest.approx(10.0)  # 50 mg/m³ x 200 000 m³/h = 10 kg/h
    assert em.gas_amount_kg(30.0, 10.0) == pytest.approx(0.018)  # 30 mg/m³ x 10 m³/s x 60 s = 18 g
    assert em.gas_volume_m3(10.0) == 600.0 and em.gas_volume_m3(10.0, 3600) == 36_000.0
    d = em.water_volume_m3(5.0)  # 5 L/s x 60 s = 300 L
    assert d == pytest.approx(0.3)
    assert em.water_amount_kg(d, 100.0) == pytest.approx(0.03)  # 0.3 m³ x 100 mg/L = 30 g


# --- records -----------------------------------------------------------------------------------------------
def _gas_outlet(hours: int = 2, short_hour: int | None = 1) -> dict[str, list[em.Reading]]:
    """SO2 20 mg/m³ for the first half of each hour, 40 after, O2 9 %, flow 10 m³/s, samples every 5 s;
    minute 40 of hour 0 lacks one SO2 sample (11: not valid); ``short_hour`` has only 40 minutes of data."""
    out: dict[str, list[em.Reading]] = {SO2: [], O2: [], QGAS: []}
    for h in range(hours):
        for k in range((40 if h == short_hour else 60) * 12):
            t = D0 + h * H + k * S5
            minute = k // 12
            if not (h == 0 and minute == 40 and k % 12 == 0):
                out[SO2].append((t, 20.0 if minute < 30 else 40.0, 0))
            out[O2].append((t, 9.0, 0))
            out[QGAS].append((t, 10.0, 0))
    return out


def test_records_of_a_flue_gas_outlet_hour() -> None:
    recs = em.records(_gas_outlet(), "gas", D0 + 2 * H, mn="010000A8900016F000169DC0")
    minute = [r for r in recs if r.cn == CN_MINUTE]
    hour = [r for r in recs if r.cn == CN_HOUR]
    assert len(minute) == 100 and [r.data_time_ms for r in hour] == [D0, D0 + H]
    assert not [r for r in recs if r.cn == CN_DAY]  # the day is not over
    assert recs.index(hour[0]) == 60  # sent after its last minute, before the next hour's minutes
    h0 = hour[0]
    assert (h0.st, h0.mn, h0.flags[SO2], h0.flags[O2], h0.flags[QGAS]) == ("31", "010000A8900016F000169DC0", "N",
                                                                          "N", "N")
    so2 = h0.values[SO2]
    # 59 valid minutes: 30 at 20 and 29 at 40; at 6 % O2 the factor is 15 / 12 = 1.25
    assert so2["Avg"] == pytest.approx((30 * 20 + 29 * 40) / 59)
    assert (so2["Min"], so2["Max"]) == (20.0, 40.0)
    assert (so2["ZsMin"], so2["ZsMax"]) == (25.0, 50.0) and so2["ZsAvg"] == pytest.approx(so2["Avg"] * 1.25)
    assert so2["Cou"] == pytest.approx((30 * 20 + 29 * 40) * 10 * 60 * 1e-6)  # 1.056 kg over the 59 minutes
    assert h0.values[QGAS] == {"Cou": pytest.approx(36_000.0), "Min": 10.0, "Avg": 10.0, "Max": 10.0}
    assert h0.values[O2] == {"Min": 9.0, "Avg": 9.0, "Max": 9.0}  # a parameter: no amount, no Zs
    m40 = minute[40]
    assert m40.data_time_ms == D0 + 40 * M and m40.flags[SO2] == "D" and "Cou" not in m40.values[SO2]
    # hour 1 has 40 minutes: still a record, flagged D, its 40 minutes' values shown
    h1 = hour[1]
    assert h1.flags[SO2] == "D" and h1.values[SO2]["Avg"] == pytest.approx((30 * 20 + 10 * 40) / 40)
    # an hour that has not ended gives no record yet
    assert not [r for r in em.records(_gas_outlet(), "gas", D0 + 2 * H - 1) if r.data_time_ms == D0 + H
                and r.cn == CN_HOUR]
    # rolling the minute records up gives the same hours
    again = em.roll_up_records(minute, "gas", D0 + 2 * H, mn="010000A8900016F000169DC0")
    assert [(r.data_time_ms, r.flags) for r in again] == [(r.data_time_ms, r.flags) for r in hour]
    for a, b in zip(again, hour, strict=True):
        assert a.values == {c: pytest.approx(f) for c, f in b.values.items()}
    # each record is a valid HJ 212 packet and reads back the same
    pkt = hj212.Packet(st=h0.st, cn=h0.cn, pw="123456", mn=h0.mn, cp=hj212.cp_of(h0.data_time_ms, h0.values, h0.flags),
                       qn=hj212.make_qn(D0 + H + 5000), flag=5)
    back = hj212.record(hj212.parse(hj212.build(pkt)))
    assert (back.cn, back.data_time_ms, back.flags) == (CN_HOUR, D0, h0.flags)
    assert back.values[SO2]["ZsAvg"] == pytest.approx(so2["ZsAvg"], abs=1e-6)


def test_a_code_without_one_normal_sample_is_sent_with_its_flag_alone() -> None:
    (rec,) = em.records({SO2: [(D0 + k * S5, None, BAD) for k in range(12)], QGAS: _minute(10.0)}, "gas", D0 + M)
    assert (rec.values[SO2], rec.flags[SO2]) == ({}, "D")
    assert hj212.cp_of(rec.data_time_ms, rec.values, rec.flags).startswith(
        "DataTime=20261123000000;a21026-Flag=D;a00000-Cou=600,a00000-Min=10")


def test_flow_at_working_state_is_converted_minute_by_minute() -> None:
    t = [(D0 + k * S5, 127.0, 0) for k in range(12)]
    out = em.outlet_minutes({QGAS: _minute(100.0), TEMP: t, "a01014": _minute(10.0)}, "gas", flow_actual=True)
    assert out[QGAS][D0].value == pytest.approx(61.425)  # 100 x 273 / 400 x 1 x 0.9, Ba 101 325 Pa and Ps 0
    assert out[QGAS][D0].cou == pytest.approx(61.425 * 60)  # m³ at standard state, dry
    # no temperature that minute: no standard flow
    assert em.outlet_minutes({QGAS: _minute(100.0)}, "gas", flow_actual=True)[QGAS][D0].value is None


def test_records_of_a_wastewater_outlet_and_its_day() -> None:
    samples: dict[str, list[em.Reading]] = {COD: [], QWATER: []}
    for k in range(21 * 720):  # 21 hours at 5 s: COD 100 mg/L, 5 L/s
        samples[COD].append((D0 + k * S5, 100.0, MAINT if k == 100 else 0))  # hour 0, minute 8: maintenance
        samples[QWATER].append((D0 + k * S5, 5.0, 0))
    recs = em.records(samples, "water", D0 + 24 * H)
    hours = [r for r in recs if r.cn == CN_HOUR]
    day = [r for r in recs if r.cn == CN_DAY]
    assert hours[0].st == "32" and hours[0].flags[COD] == "M" and hours[1].flags[COD] == "N"
    # the maintenance minute has no amount: 59 x 0.3 m³ x 100 mg/L = 1.77 kg; the flow 60 x 0.3 = 18 m³
    assert hours[0].values[COD]["Cou"] == pytest.approx(1.77) and hours[1].values[COD]["Cou"] == pytest.approx(1.8)
    assert hours[0].values[QWATER]["Cou"] == pytest.approx(18.0)
    assert "ZsAvg" not in hours[0].values[COD]  # no reference O2 for water
    # 20 valid hours, but one abnormal hour makes the wastewater day abnormal; the flow's day is N
    assert len(day) == 1 and day[0].data_time_ms == D0 and day[0].flags == {COD: "M", QWATER: "N"}
    assert day[0].values[QWATER]["Cou"] == pytest.approx(21 * 18.0)
    assert day[0].values[COD]["Cou"] == pytest.approx(1.77 + 20 * 1.8)


# --- compliance: from samples and from the hour records derived from them ----------------------------------
def _park_samples() -> tuple[list[tuple[str, int, float | None, int]], dict[str, list[em.Reading]],
                             dict[str, list[em.Reading]]]:
    """22 hours of a flue-gas outlet (SO2 25 at reference O2, hour 5 at 37.5 over the 35 limit, hour 2 only
    40 minutes) and a wastewater outlet (COD 300, one failed sample in hour 3), samples every 5 s."""
    gas: dict[str, list[em.Reading]] = {SO2: [], NOX: [], O2: [], QGAS: []}
    water: dict[str, list[em.Reading]] = {COD: [], QWATER: []}
    for h in range(22):
        for k in range((40 if h == 2 else 60) * 12):
            t = D0 + h * H + k * S5
            gas[SO2].append((t, 30.0 if h == 5 else 20.0, 0))
            gas[NOX].append((t, 30.0 + h, 0))
            gas[O2].append((t, 9.0, 0))
            gas[QGAS].append((t, 10.0, 0))
        for k in range(720):
            t = D0 + h * H + k * S5
            water[COD].append((t, None, BAD) if (h, k) == (3, 100) else (t, 300.0, 0))
            water[QWATER].append((t, 5.0, 0))
    names = {SO2: "cems1.so2", NOX: "cems1.nox", O2: "cems1.o2", QGAS: "cems1.flow", COD: "ww1.cod",
             QWATER: "ww1.flow"}
    rows = [(names[c], t, v, q) for series in (gas, water) for c, ss in series.items() for t, v, q in ss]
    return rows, gas, water


class _Counting:
    """The store, counting the rows each compliance run reads."""

    def __init__(self, store: Store) -> None:
        self.store, self.rows = store, 0

    def parks(self) -> Sequence[object]:
        return self.store.parks()

    def points(self, park: str, metrics: Sequence[str] | None = None, enterprise: str | None = None) -> Any:
        return self.store.points(park, metrics, enterprise)

    def readings(self, point_ids: Sequence[int], start_ms: int, end_ms: int) -> Any:
        out = self.store.readings(point_ids, start_ms, end_ms)
        self.rows += sum(len(v) for v in out.values())
        return out


def test_compliance_from_hour_records_equals_compliance_from_samples(store: Store) -> None:
    rows, gas, water = _park_samples()
    recs = [r for r in em.records(gas, "gas", D0 + 24 * H) + em.records(water, "water", D0 + 24 * H)
            if r.cn == CN_HOUR]
    record_rows: list[tuple[str, int, float | None, int]] = []
    record_meta: dict[str, wire.PointMeta] = {}
    for r in recs:  # each field lands on its HJ 212 point with its metric, the code's flag as quality
        dev = "cems1" if r.st == "31" else "ww1"
        for code, fields in r.values.items():
            for fld, v in fields.items():
                metric = hj212.metric_of(code, fld, r.cn)
                assert metric is not None
                point = f"{dev}.{hj212.point_name(code, fld, r.cn)}"
                record_meta[point] = wire.PointMeta(metric, "", "instant", "")
                record_rows.append((point, r.data_time_ms, v, hj212.flag_quality(r.flags.get(code))))
    store.upsert_park("demo", "示范园区", "Demo", "zero_carbon")
    store.upsert_meta("demo", "e01", "gw1", wire.Meta(1, "gw1", 0, {
        "cems1.so2": wire.PointMeta("cems.so2", "mg/m3", "instant", "SO2"),
        "cems1.nox": wire.PointMeta("cems.nox", "mg/m3", "instant", "NOx"),
        "cems1.o2": wire.PointMeta("cems.o2", "%", "instant", "O2"),
        "cems1.flow": wire.PointMeta("cems.flow", "m3/s", "instant", "flow"),
        "ww1.cod": wire.PointMeta("ww.cod", "mg/L", "instant", "COD"),
        "ww1.flow": wire.PointMeta("ww.flow", "L/s", "instant", "flow"), **record_meta}, {}))
    store.write_batches([IncomingBatch("demo", "e01", "gw1", wire.Batch(1, "gw1", 1, D0, rows), D0)])
    counting = _Counting(store)
    # the record points are registered but hold nothing yet: computed from the samples
    by_samples = compute_compliance(counting, "demo", D0, D0 + 24 * H)
    assert {o["data_source"] for o in by_samples["outlets"]} == {"samples"}
    sample_rows, counting.rows = counting.rows, 0
    store.write_batches([IncomingBatch("demo", "e01", "gw1", wire.Batch(1, "gw1", 2, D0, record_rows), D0)])
    by_records = compute_compliance(counting, "demo", D0, D0 + 24 * H)
    assert {o["data_source"] for o in by_records["outlets"]} == {"hj212_hour_records"}
    assert counting.rows < 0.005 * sample_rows  # hour rows only: no sample read
    so2 = next(o for o in by_samples["outlets"] if o["metric"] == "cems.so2")
    # by hand: 21 valid hours (hour 2 has 40 minutes), hour 5 at 30 x 1.25 = 37.5 > 35, the others 25;
    # the day: (20 x 25 + 37.5) / 21 = 25.595 within 35
    assert (so2["valid_hours"], so2["invalid_hours"], so2["max_hourly"]) == (21, 1, 37.5)
    assert [e["value"] for e in so2["exceeding"]] == [37.5]
    assert (so2["valid_days"], so2["day_compliance"]) == (1, 1.0)
    assert so2["amount_kg"] == pytest.approx((20 * 60 * 20 + 60 * 30 + 40 * 20) * 10 * 60 * 1e-6)  # 15.96 kg
    cod = next(o for o in by_samples["outlets"] if o["metric"] == "ww.cod")
    assert (cod["valid_hours"], cod["invalid_hours"], cod["valid_days"], cod["invalid_days"]) == (21, 1, 0, 1)
    assert cod["amount_kg"] == pytest.approx(300 * 5 * 60 * (22 * 60 - 1) * 1e-6)
    # the two sources agree on everything but where they came from and the minutes an amount covers
    for a, b in zip(by_samples["outlets"], by_records["outlets"], strict=True):
        assert b["amount_minutes"] is None and a["amount_minutes"] > 0
        assert b["amount_kg"] == pytest.approx(a["amount_kg"], abs=2e-6)
        skip = {"data_source", "amount_minutes", "amount_kg"}
        assert {k: v for k, v in a.items() if k not in skip} == {k: v for k, v in b.items() if k not in skip}
    assert by_samples["value"] == by_records["value"] and by_samples["valid_hours"] == by_records["valid_hours"]
    assert by_records["amount_kg_by_pollutant"] == pytest.approx(by_samples["amount_kg_by_pollutant"], abs=2e-6)
