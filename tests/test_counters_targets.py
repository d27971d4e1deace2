"""Counter readings to interval energy, and targets by park class and year (hand-computed)."""

from __future__ import annotations

import pytest

from analytics.counters import edges, interval_energy
from analytics.targets import TargetConfigError, load_share_settings, target_for
from parkmon import quality

BAD = quality.bad(quality.Reason.COMM_FAILURE)


def test_edges_are_interpolated_between_readings() -> None:
    # readings 100 @ 0 s, 110 @ 10 s, 130 @ 20 s; edges at 5 s and 15 s
    # counter(5) = 105, counter(15) = 120 -> 15 kWh
    rd = [(0, 100.0, 0), (10_000, 110.0, 0), (20_000, 130.0, 0)]
    out, rep = interval_energy(rd, [5_000, 15_000])
    assert out == [pytest.approx(15.0)]
    assert rep.readings_used == 3


def test_meter_reset_counts_from_zero() -> None:
    # 1000 -> 1010 (10 kWh), then the meter is replaced and reads 4 -> 4 kWh more, then 9 -> 5 more
    rd = [(0, 1000.0, 0), (10_000, 1010.0, 0), (20_000, 4.0, 0), (30_000, 9.0, 0)]
    out, rep = interval_energy(rd, [0, 30_000])
    assert out == [pytest.approx(19.0)]
    assert rep.resets == [20_000]


def test_gap_too_long_to_bridge_is_missing_not_zero() -> None:
    # data ends at 10 s; the next interval ends at 200 s, beyond the 60 s hold
    rd = [(0, 1.0, 0), (10_000, 2.0, 0)]
    out, rep = interval_energy(rd, edges(0, 200_000, 100_000), max_hold_ms=60_000)
    assert out[0] is None and out[1] is None
    assert rep.missing_intervals == 2


def test_bad_quality_and_unsorted_readings() -> None:
    # the bad reading (value 999) is ignored; order does not matter: 20 -> 30 over the interval
    rd = [(10_000, 30.0, 0), (5_000, 999.0, BAD), (0, 20.0, 0)]
    out, _ = interval_energy(rd, [0, 10_000])
    assert out == [pytest.approx(10.0)]


@pytest.mark.parametrize(("park_class", "year", "expected", "kind"), [
    ("low_carbon", 2022, 0.30, "milestone"),
    ("low_carbon", 2023, 0.30 + 0.20 / 3, "trajectory"),  # straight line 30% -> 50% over 3 years
    ("low_carbon", 2025, 0.50, "milestone"),
    ("low_carbon", 2026, 0.50, "held"),
    ("zero_carbon", 2022, 0.50, "milestone"),
    ("zero_carbon", 2024, 0.70, "trajectory"),  # 50% + 2 x 10%
    ("zero_carbon", 2025, 0.80, "milestone"),
])
def test_targets_by_class_and_year(park_class: str, year: int, expected: float, kind: str) -> None:
    t = target_for(park_class, year)
    assert t is not None
    assert (t.value, t.kind) == (pytest.approx(expected), kind)
    assert "低碳零碳工业园区建设实施方案" in t.source


def test_park_without_class_has_no_target() -> None:
    assert target_for("none", 2025) is None


def test_override_file_is_validated(tmp_path: object) -> None:
    from pathlib import Path

    p = Path(str(tmp_path)) / "targets.yaml"
    p.write_text("new_energy_share:\n  zero_carbon:\n    milestones: {2025: 0.9, 2030: 1.0}\n", encoding="utf-8")
    s = load_share_settings(p)
    assert target_for("zero_carbon", 2025, s).value == pytest.approx(0.9)  # type: ignore[union-attr]
    p.write_text("new_energy_share:\n  low_carbon:\n    milestones: {2025: 1.5}\n", encoding="utf-8")
    with pytest.raises(TargetConfigError, match=r"targets.yaml.*low_carbon.milestones.2025"):
        load_share_settings(p)
