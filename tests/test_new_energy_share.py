"""Hand-computed cases for the new-energy share; the arithmetic is in each test."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from analytics.indicators.new_energy_share import Flows, NewEnergyShare, compute_share


def flows(imp: list[float | None], exp: list[float | None], re: list[float | None],
          charge: list[float | None] | None = None, discharge: list[float | None] | None = None,
          curtailed: list[float | None] | None = None) -> Flows:
    n = len(imp)
    return Flows(imp, exp, re, charge or [0.0] * n, discharge or [0.0] * n, curtailed or [])


def test_pv_only_no_storage_no_export() -> None:
    # load 300 = import 200 + PV 100 -> share 100 / 300 = 1/3
    b = compute_share(flows([200.0], [0.0], [100.0]))
    assert b.consumption == 300
    assert b.share == pytest.approx(1 / 3)


def test_surplus_export_leaves_from_re_first() -> None:
    # noon: PV 500, load 300, export 200; evening: import 300, PV 0
    # consumption = (0 + 500 - 200) + (300 + 0 - 0) = 600; RE used = 500 - 200 = 300 -> 0.5
    b = compute_share(flows([0.0, 300.0], [200.0, 0.0], [500.0, 0.0]))
    assert b.consumption == 600
    assert b.re_direct == 300
    assert b.share == pytest.approx(0.5)


def test_curtailment_never_counts() -> None:
    # the same park with 400 kWh curtailed: numerator and denominator unchanged
    base = compute_share(flows([0.0, 300.0], [200.0, 0.0], [500.0, 0.0]))
    curtailed = compute_share(flows([0.0, 300.0], [200.0, 0.0], [500.0, 0.0], curtailed=[400.0, 0.0]))
    assert curtailed.share == base.share
    assert curtailed.curtailed == 400


def test_storage_round_trip_from_pv_counts_only_what_comes_back() -> None:
    # noon: PV 600, load 400, battery charges 200 (all RE: supply mix is 600 RE + 0 import)
    # evening: battery discharges 180 (90 % round trip) to a 300 load, import 120
    # consumption = (0 + 600 - 0) + (120 + 0 - 0) = 720  (= load 700 + 20 lost in the battery)
    # RE used = direct 400 + from storage 180 x 1.0 = 580 -> 580 / 720
    b = compute_share(flows([0.0, 120.0], [0.0, 0.0], [600.0, 0.0], charge=[200.0, 0.0], discharge=[0.0, 180.0]))
    assert b.consumption == pytest.approx(720)
    assert b.re_direct == pytest.approx(400)
    assert b.re_from_storage == pytest.approx(180)
    assert b.share == pytest.approx(580 / 720)


def test_storage_charged_from_a_mix_is_pro_rata() -> None:
    # t0: PV 100, import 300, battery charges 200 -> RE fraction of supply 100/400 = 0.25 -> 50 RE in pool
    #     direct RE to load = 100 - 50 = 50; load = 400 - 200 = 200
    # t1: discharge 100 to load (pool RE fraction 50/200 = 0.25 -> 25 RE), import 0, PV 0
    # consumption = (300 + 100) + (0) = 400; RE used = 50 + 25 = 75 -> 0.1875
    b = compute_share(flows([300.0, 0.0], [0.0, 0.0], [100.0, 0.0], charge=[200.0, 0.0], discharge=[0.0, 100.0]))
    assert b.re_direct == pytest.approx(50)
    assert b.re_from_storage == pytest.approx(25)
    assert b.share == pytest.approx(75 / 400)


def test_green_purchase_counted_once_and_capped_at_import() -> None:
    # import 200, PV 100, green contract 150 -> (100 + 150) / 300
    assert compute_share(flows([200.0], [0.0], [100.0]), green_purchase_kwh=150).share == pytest.approx(250 / 300)
    # a contract larger than the import counts only up to the import: (100 + 200) / 300 = 1.0
    b = compute_share(flows([200.0], [0.0], [100.0]), green_purchase_kwh=1000)
    assert b.green_counted == 200
    assert b.share == pytest.approx(1.0)


def test_certificates_sold_leave_the_numerator() -> None:
    # PV 100 used on site, but its green certificates for 40 kWh were sold: (100 - 40) / 300
    b = compute_share(flows([200.0], [0.0], [100.0]), certificates_sold_kwh=40)
    assert b.share == pytest.approx(60 / 300)


def test_missing_interval_is_left_out_of_both_sides_and_lowers_completeness() -> None:
    # t1 has no import reading: only t0 and t2 count: (100 + 50) / (300 + 150)
    b = compute_share(flows([200.0, None, 100.0], [0.0, 0.0, 0.0], [100.0, 80.0, 50.0]))
    assert (b.intervals, b.intervals_used) == (3, 2)
    assert b.share == pytest.approx(150 / 450)
    r = NewEnergyShare().result(b, datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC), 0.8)
    assert r.completeness == pytest.approx(2 / 3)
    assert r.status == "below_target"


def test_zero_consumption_is_insufficient_data_not_a_division_by_zero() -> None:
    b = compute_share(flows([0.0], [0.0], [0.0]))
    assert b.share is None
    r = NewEnergyShare().result(b, datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC), 0.5)
    assert r.status == "insufficient_data"


def test_status_against_target() -> None:
    b = compute_share(flows([100.0], [0.0], [300.0]))  # 300 / 400 = 0.75
    start, end = datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)
    assert NewEnergyShare().result(b, start, end, 0.5).status == "met"
    assert NewEnergyShare().result(b, start, end, 0.8).status == "below_target"
    assert NewEnergyShare().result(b, start, end, None).status == "no_target"


def test_mismatched_series_lengths_are_an_error() -> None:
    with pytest.raises(ValueError, match=r"flows\.exp has 1 intervals, flows\.imp has 2"):
        compute_share(Flows([1.0, 2.0], [0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]))
