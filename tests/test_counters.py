"""Counter readings to interval energy, hand-computed; the arithmetic is in each test."""

from __future__ import annotations

import time

import pytest

from analytics.counters import edges, interval_energy
from parkmon.common import quality

BAD = quality.bad(quality.Reason.COMM_FAILURE)
RESET_FLAG = quality.uncertain(quality.Reason.COUNTER_RESET)


def test_edges_are_interpolated_between_readings() -> None:
    # readings 100 @ 0 s, 110 @ 10 s, 130 @ 20 s; edges at 5 s and 15 s
    # counter(5) = 105, counter(15) = 120 -> 15 kWh
    rd = [(0, 100.0, 0), (10_000, 110.0, 0), (20_000, 130.0, 0)]
    out, rep = interval_energy(rd, [5_000, 15_000])
    assert out == [pytest.approx(15.0)]
    assert rep.readings_used == 3


def test_meter_reset_counts_from_zero_and_is_reported() -> None:
    # 1000 -> 1010 (10 kWh), then the meter is replaced and reads 4 (4 kWh counted from 0), then 9 (5 more)
    # made monotonic: 1000, 1010, 1014, 1019; counter(15 s) = 1010 + 4 x 0.5 = 1012
    # intervals: 1012 - 1000 = 12, 1019 - 1012 = 7; total 19, not 19 - 1006 = -987
    rd = [(0, 1000.0, 0), (10_000, 1010.0, 0), (20_000, 4.0, RESET_FLAG), (30_000, 9.0, 0)]
    out, rep = interval_energy(rd, [0, 15_000, 30_000])
    assert out == [pytest.approx(12.0), pytest.approx(7.0)]
    assert rep.resets == [20_000]


def test_backward_read_noise_is_not_a_reset() -> None:
    # 1000 -> 999.9995 is 0.5 Wh back, under 1e-6 x 1000 = 1 Wh: held at 1000, then 1001 -> 1 kWh
    # (read as a reset it would have added 999.9995 kWh of phantom energy)
    rd = [(0, 1000.0, 0), (10_000, 999.9995, 0), (20_000, 1001.0, 0)]
    out, rep = interval_energy(rd, [0, 20_000])
    assert out == [pytest.approx(1.0)]
    assert rep.resets == []


def test_a_single_misread_zero_is_skipped_not_a_reset() -> None:
    # 500, 0 (a misread), 501, 502: the 0 is dropped -> 2 kWh; as a reset it would have been 0 + 501 + 1 = 502 more
    rd = [(0, 500.0, 0), (10_000, 0.0, 0), (20_000, 501.0, 0), (30_000, 502.0, 0)]
    out, rep = interval_energy(rd, [0, 30_000])
    assert out == [pytest.approx(2.0)]
    assert (rep.resets, rep.glitches, rep.readings_used) == ([], 1, 3)


def test_edge_beyond_the_data_is_missing_not_zero() -> None:
    # data ends at 10 s; the next edges at 100 s and 200 s are beyond the 60 s hold
    rd = [(0, 1.0, 0), (10_000, 2.0, 0)]
    out, rep = interval_energy(rd, edges(0, 200_000, 100_000), max_hold_ms=60_000)
    assert out == [None, None]
    assert rep.missing_intervals == 2


def test_default_hold_is_twice_the_reading_spacing() -> None:
    # readings every 10 s, 0..100 s, +1 kWh each: hold = 20 s
    # edge 115 s holds the 100 s value (10): interval [90 s, 115 s] = 10 - 9 = 1; edge 125 s is too far
    rd = [(i * 10_000, float(i), 0) for i in range(11)]
    out, rep = interval_energy(rd, [90_000, 115_000, 125_000])
    assert rep.max_hold_ms == 20_000
    assert out == [pytest.approx(1.0), None]


def test_gap_inside_the_data_longer_than_max_gap_is_missing() -> None:
    # readings 0 @ 0, 10 @ 60 s, then nothing for an hour: 70 @ 3660 s, 71 @ 3720 s
    # bridged (default): counter(1800 s) = 10 + 60 x 1740/3600 = 39 -> [10, 29, 32], sum 71
    rd = [(0, 0.0, 0), (60_000, 10.0, 0), (3_660_000, 70.0, 0), (3_720_000, 71.0, 0)]
    e = [0, 60_000, 1_800_000, 3_720_000]
    out, _ = interval_energy(rd, e, max_hold_ms=120_000)
    assert out == [pytest.approx(10.0), pytest.approx(29.0), pytest.approx(32.0)]
    # refused beyond a 10 min gap: 1800 s is 29 min from either side -> both intervals touching it missing
    out, rep = interval_energy(rd, e, max_hold_ms=120_000, max_gap_ms=600_000)
    assert out == [pytest.approx(10.0), None, None]
    assert rep.missing_intervals == 2


def test_bad_quality_missing_values_and_unsorted_readings_are_handled() -> None:
    # the bad reading (999) and the one without a value are skipped; order does not matter;
    # the uncertain reading (25 @ 5 s) is usable: 20 -> 30 over the interval
    rd = [(10_000, 30.0, 0), (5_000, 999.0, BAD), (7_000, None, 0), (0, 20.0, 0),
          (5_000, 25.0, quality.uncertain(quality.Reason.MANUAL))]
    out, rep = interval_energy(rd, [0, 5_000, 10_000])
    assert out == [pytest.approx(5.0), pytest.approx(5.0)]
    assert (rep.readings_used, rep.readings_skipped) == (3, 2)


def test_no_usable_reading_means_every_interval_missing() -> None:
    out, rep = interval_energy([(0, 5.0, BAD)], [0, 1_000, 2_000])
    assert out == [None, None]
    assert rep.missing_intervals == 2


def test_edges_must_increase() -> None:
    assert edges(0, 250, 100) == [0, 100, 200, 250]
    with pytest.raises(ValueError, match="increase strictly"):
        interval_energy([(0, 1.0, 0)], [10, 10])
    with pytest.raises(ValueError, match="positive step"):
        edges(0, 100, 0)


def test_a_year_of_minute_readings_converts_in_well_under_a_second() -> None:
    # 525 600 readings, +0.5 kWh a minute -> 15-min intervals of 7.5 kWh, 35 040 of them
    rd = [(i * 60_000, i * 0.5, 0) for i in range(525_600)]
    e = edges(0, 525_599 * 60_000, 15 * 60_000)
    t0 = time.perf_counter()
    out, rep = interval_energy(rd, e)
    elapsed = time.perf_counter() - t0
    assert len(out) == 35_040 and rep.missing_intervals == 0
    assert out[0] == pytest.approx(7.5) and out[-2] == pytest.approx(7.5)
    assert elapsed < 1.0, f"{elapsed:.2f} s"
    # the same year with a meter replaced half-way (counter restarts at 0): still fast, energy unchanged
    half = len(rd) // 2
    rd[half:] = [(t, v - rd[half][1], q) for t, v, q in rd[half:]]
    t0 = time.perf_counter()
    out2, rep = interval_energy(rd, e)
    elapsed = time.perf_counter() - t0
    assert rep.resets == [half * 60_000]
    assert sum(x or 0.0 for x in out2) == pytest.approx(sum(x or 0.0 for x in out) - 0.5)  # the unread step
    assert elapsed < 1.0, f"{elapsed:.2f} s"
