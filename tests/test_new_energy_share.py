"""Hand-computed cases for the new-energy share; the arithmetic is in each test."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime

import pytest

from analytics.indicators import base
from analytics.indicators.new_energy_share import Flows, NewEnergyShare, compute_share

START, END = datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 6, 2, tzinfo=UTC)


def flows(imp: list[float | None], exp: list[float | None], re: list[float | None],
          charge: list[float | None] | None = None, discharge: list[float | None] | None = None,
          curtailed: list[float | None] | None = None) -> Flows:
    n = len(imp)
    return Flows(imp, exp, re, charge or [0.0] * n, discharge or [0.0] * n, curtailed or [])


def test_pv_only_no_storage_no_export() -> None:
    # load 300 = import 200 + PV 100 -> share 100 / 300 = 1/3
    r = NewEnergyShare().compute(flows([200.0], [0.0], [100.0]), START, END, target=0.3)
    assert r.value == pytest.approx(1 / 3)
    assert r.inputs["consumption"] == 300
    assert r.inputs["re_consumed_direct"] == 100
    assert (r.status, r.completeness, r.unit) == ("met", 1.0, "ratio")


def test_surplus_export_leaves_from_re_first() -> None:
    # noon: PV 500, load 300, export 200; evening: import 300, PV 0
    # consumption = (0 + 500 - 200) + (300 + 0 - 0) = 600; RE used = 500 - 200 = 300 -> 0.5
    b = compute_share(flows([0.0, 300.0], [200.0, 0.0], [500.0, 0.0]))
    assert b.consumption == 600
    assert b.re_consumed_direct == 300
    assert b.share == pytest.approx(0.5)


@pytest.mark.parametrize("curtailed", [0.0, 1.0, 400.0, 1e6])
def test_curtailment_never_counts(curtailed: float) -> None:
    # the park above with any amount curtailed at noon: numerator 300 and denominator 600 unchanged
    b = compute_share(flows([0.0, 300.0], [200.0, 0.0], [500.0, 0.0], curtailed=[curtailed, 0.0]))
    assert (b.consumption, b.numerator) == (600, 300)
    assert b.share == pytest.approx(0.5)
    assert b.curtailed == curtailed  # reported, so a regulator sees it


def test_storage_round_trip_from_pv_counts_only_what_comes_back() -> None:
    # noon: PV 600, load 400, battery charges 200 (all RE: supply mix is 600 RE + 0 import)
    # evening: battery discharges 180 (90 % round trip) to a 300 load, import 120
    # consumption = (0 + 600 - 0) + (120 + 0 - 0) = 720  (= load 700 + 20 lost in the battery)
    # RE used = direct 400 + from storage 180 x 1.0 = 580 -> 580 / 720; the 20 lost is not RE used
    b = compute_share(flows([0.0, 120.0], [0.0, 0.0], [600.0, 0.0], charge=[200.0, 0.0], discharge=[0.0, 180.0]))
    assert b.consumption == pytest.approx(720)
    assert b.re_consumed_direct == pytest.approx(400)
    assert b.re_from_storage == pytest.approx(180)
    assert b.share == pytest.approx(580 / 720)
    assert b.pool_kwh_end == pytest.approx(20)  # the losses stay in the pool's books, never discharged


def test_storage_charged_from_a_mix_is_pro_rata() -> None:
    # t0: PV 100, import 300, battery charges 200 -> RE fraction of supply 100/400 = 0.25 -> 50 RE in pool
    #     direct RE to load = 100 - 50 = 50; load = 400 - 200 = 200
    # t1: discharge 100 to load (pool RE fraction 50/200 = 0.25 -> 25 RE), import 0, PV 0
    # t2: discharge the other 100 at the same fraction -> 25 RE
    # consumption = (300 + 100) = 400; RE used = 50 + 25 + 25 = 100 -> 0.25
    b = compute_share(flows([300.0, 0.0, 0.0], [0.0, 0.0, 0.0], [100.0, 0.0, 0.0],
                            charge=[200.0, 0.0, 0.0], discharge=[0.0, 100.0, 100.0]))
    assert b.re_consumed_direct == pytest.approx(50)
    assert b.re_from_storage == pytest.approx(50)
    assert b.share == pytest.approx(100 / 400)


def test_storage_export_is_not_consumed_re() -> None:
    # t0: PV 300, load 100, charge 200 (all RE) -> pool 200, RE 200; direct 100
    # t1: discharge 180: 80 exported (PV 0, so the export comes from storage), 100 to a 100 load
    # consumption = (0 + 300 - 0) + (0 + 0 - 80) = 220 (= load 200 + 20 lost)
    # RE used = 100 + 100 x 1.0 = 200 -> 200 / 220
    b = compute_share(flows([0.0, 0.0], [0.0, 80.0], [300.0, 0.0], charge=[200.0, 0.0], discharge=[0.0, 180.0]))
    assert b.re_from_storage == pytest.approx(100)
    assert b.share == pytest.approx(200 / 220)


def test_battery_full_at_the_start_counts_only_with_a_stated_fraction() -> None:
    # evening only: discharge 100 to a 300 load, import 200; consumption = 200
    # empty pool assumed: the discharge is not RE -> 0; pool given as 500 kWh, 60 % RE -> 60 / 200
    f = flows([200.0], [0.0], [0.0], charge=[0.0], discharge=[100.0])
    assert compute_share(f).share == 0
    assert compute_share(f, initial_pool_kwh=500, initial_pool_re_fraction=0.6).share == pytest.approx(0.3)


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
    assert b.certificates_deducted == 40
    assert b.share == pytest.approx(60 / 300)
    # selling more certificates than the RE used takes out only what was used: (100 - 100) / 300
    assert compute_share(flows([200.0], [0.0], [100.0]), certificates_sold_kwh=500).share == 0


def test_missing_interval_is_left_out_of_both_sides_and_lowers_completeness() -> None:
    # t1 has no import reading: only t0 and t2 count: (100 + 50) / (300 + 150); not (100+80+50)/(300+80+150)
    r = NewEnergyShare().compute(flows([200.0, None, 100.0], [0.0, 0.0, 0.0], [100.0, 80.0, 50.0]),
                                 START, END, target=0.8)
    assert r.value == pytest.approx(150 / 450)
    assert r.completeness == pytest.approx(2 / 3)
    assert (r.inputs["intervals_missing"], r.inputs["missing_by_input"]) == (1, {"imp": 1})
    assert r.status == "below_target"


def test_zero_consumption_is_insufficient_data_not_a_division_by_zero() -> None:
    r = NewEnergyShare().compute(flows([0.0], [0.0], [0.0]), START, END, target=0.5)
    assert r.value is None
    assert r.status == "insufficient_data"
    assert NewEnergyShare().compute(flows([], [], []), START, END, target=0.5).status == "insufficient_data"


def test_status_against_target() -> None:
    f = flows([100.0], [0.0], [300.0])  # 300 / 400 = 0.75
    assert NewEnergyShare().compute(f, START, END, 0.75).status == "met"  # reaching the target is meeting it
    assert NewEnergyShare().compute(f, START, END, 0.8).status == "below_target"
    assert NewEnergyShare().compute(f, START, END, None).status == "no_target"


def test_result_is_auditable_json() -> None:
    r = NewEnergyShare().compute(flows([200.0], [0.0], [100.0]), START, END, 0.5, target_source="《方案》")
    d = r.to_json()
    assert d["period_start"] == "2025-06-01T00:00:00+00:00"
    assert d["inputs"]["target_source"] == "《方案》"
    assert {"imp", "exp", "re_gen", "curtailed", "charge", "discharge", "re_consumed_direct", "re_from_storage",
            "green_counted", "certificates_deducted", "consumption"} <= set(d["inputs"])
    assert "NES-4" in d["method"]


def test_worked_example_of_the_docs() -> None:
    # docs/indicators/new-energy-share.md: a zero-carbon park's day in four blocks
    #   morning: import 300, PV 200 -> RE direct 200; consumption 500
    #   noon: PV 1000 (120 curtailed, not in it), export 150 from PV, charge 250 all RE -> direct 600; cons. 850
    #   afternoon: import 100, PV 400, charge 100 at 400/500 RE = 80 RE -> direct 320; pool 350 with 330 RE; cons. 500
    #   evening: import 200, discharge 315 (90 % of 350) at 330/350 RE = 297 RE; consumption 200
    #   RE used 1120 + 297 = 1417; + green 100 (<= import 600); - certificates 50 -> 1467 / 2050 = 71.6 %
    f = Flows(imp=[300.0, 0.0, 100.0, 200.0], exp=[0.0, 150.0, 0.0, 0.0], re_gen=[200.0, 1000.0, 400.0, 0.0],
              charge=[0.0, 250.0, 100.0, 0.0], discharge=[0.0, 0.0, 0.0, 315.0], curtailed=[0.0, 120.0, 0.0, 0.0])
    b = compute_share(f, green_purchase_kwh=100, certificates_sold_kwh=50)
    assert (b.consumption, b.re_consumed_direct) == (2050, 1120)
    assert b.re_from_storage == pytest.approx(297)
    assert (b.green_counted, b.certificates_deducted, b.curtailed) == (100, 50, 120)
    assert b.share == pytest.approx(1467 / 2050)
    assert NewEnergyShare().result(b, START, END, 0.70).status == "met"  # zero-carbon 2024 target
    assert NewEnergyShare().result(b, START, END, 0.80).status == "below_target"  # zero-carbon 2025 target


def test_bad_inputs_are_errors_that_say_what_to_fix() -> None:
    with pytest.raises(ValueError, match=r"flows\.exp has 1 intervals, flows\.imp has 2"):
        compute_share(Flows([1.0, 2.0], [0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]))
    with pytest.raises(ValueError, match="green_purchase_kwh is -5"):
        compute_share(flows([1.0], [0.0], [0.0]), green_purchase_kwh=-5)
    with pytest.raises(ValueError, match="timezone"):
        NewEnergyShare().compute(flows([1.0], [0.0], [0.0]), datetime(2025, 1, 1), END)  # noqa: DTZ001


@pytest.mark.parametrize("key", sorted(base.INDICATORS))
def test_every_registered_indicator_loads(key: str) -> None:
    ind = base.load(key)
    assert ind.key == key and ind.name_zh and ind.name_en and ind.unit
    module = importlib.import_module(base.INDICATORS[key].partition(":")[0])
    assert module.__doc__  # its method is documented where it lives
    with pytest.raises(KeyError, match=r"known: .*new_energy_share"):
        base.load("no_such_indicator")
