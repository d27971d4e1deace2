"""Targets by park class and year, and the override file that replaces them (hand-computed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.targets import TargetConfigError, load_share_settings, target_for


@pytest.mark.parametrize(("park_class", "year", "expected", "kind"), [
    ("low_carbon", 2022, 0.30, "milestone"),
    ("low_carbon", 2023, 0.30 + 0.20 / 3, "trajectory"),  # straight line 30% -> 50% over 3 years: +6.67 a year
    ("low_carbon", 2024, 0.30 + 0.40 / 3, "trajectory"),  # 43.3 %
    ("low_carbon", 2025, 0.50, "milestone"),
    ("low_carbon", 2026, 0.50, "held"),  # the 2025 value holds after 2025
    ("zero_carbon", 2022, 0.50, "milestone"),
    ("zero_carbon", 2023, 0.60, "trajectory"),  # 50% + 1 x 10%
    ("zero_carbon", 2024, 0.70, "trajectory"),  # 50% + 2 x 10%
    ("zero_carbon", 2025, 0.80, "milestone"),
    ("zero_carbon", 2026, 0.80, "held"),
])
def test_targets_by_class_and_year(park_class: str, year: int, expected: float, kind: str) -> None:
    t = target_for(park_class, year)
    assert t is not None
    assert t.value == pytest.approx(expected)
    assert (t.kind, t.park_class) == (kind, park_class)
    assert "《低碳零碳工业园区建设实施方案》" in t.source
    assert "《内蒙古自治区人民政府关于促进制造业高端化、智能化、绿色化发展的意见》" in t.source


@pytest.mark.parametrize("year", [2022, 2023, 2024, 2025, 2026])
def test_park_without_class_has_no_target(year: int) -> None:
    assert target_for("none", year) is None


def test_no_target_before_the_first_milestone() -> None:
    # the policy sets targets from 2022; 2021 is not held back to 30 %
    assert target_for("low_carbon", 2021) is None


def test_unknown_class_is_an_error_not_silently_no_target() -> None:
    with pytest.raises(ValueError, match="'low-carbon' is unknown; use one of low_carbon, zero_carbon, none"):
        target_for("low-carbon", 2025)


def test_override_replaces_milestones_and_says_where_they_come_from(tmp_path: Path) -> None:
    # a park committed to 90 % in 2025 and 100 % in 2030: 2027 = 0.9 + 0.1 x 2/5 = 0.94
    p = tmp_path / "targets.yaml"
    p.write_text("new_energy_share:\n  zero_carbon:\n    milestones: {2025: 0.9, 2030: 1.0}\n"
                 "  interval_minutes: 5\n", encoding="utf-8")
    s = load_share_settings(p)
    t = target_for("zero_carbon", 2027, s)
    assert t is not None and t.kind == "trajectory"
    assert t.value == pytest.approx(0.94)
    assert str(p) in t.source  # not the policy documents: they do not say 90 %
    assert target_for("zero_carbon", 2024, s) is None  # the defaults' 2022 milestone was replaced
    assert s.interval_minutes == 5
    low = target_for("low_carbon", 2025, s)
    assert low is not None and low.value == 0.5 and "实施方案" in low.source  # untouched class keeps defaults


def test_override_with_its_own_source_keeps_it(tmp_path: Path) -> None:
    p = tmp_path / "targets.yaml"
    p.write_text("new_energy_share:\n  low_carbon:\n    milestones: {2025: 0.55}\n    source: 《某市低碳园区方案》\n",
                 encoding="utf-8")
    t = target_for("low_carbon", 2025, load_share_settings(p))
    assert t is not None and (t.value, t.source) == (0.55, "《某市低碳园区方案》")


@pytest.mark.parametrize(("text", "message"), [
    ("new_energy_share:\n  low_carbon:\n    milestones: {2025: 1.5}\n",
     r"low_carbon\.milestones\.2025.*less than or equal to 1"),
    ("new_energy_share:\n  low_carbon:\n    milestones: {}\n", r"needs at least one year"),
    ("new_energy_share:\n  mid_carbon: {}\n", r"mid_carbon: Extra inputs are not permitted"),
    ("new_energy_share:\n  interval_minutes: 0\n", r"interval_minutes: Input should be greater than or equal to 1"),
    ("new_energy_share: [1, 2]\n", r"must be a mapping"),
    ("- just a list\n", r"expected a mapping"),
    ("new_energy_share: {low_carbon: [\n", r"not valid YAML"),
])
def test_bad_override_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "targets.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(TargetConfigError, match=message) as err:
        load_share_settings(p)
    assert "targets.yaml" in str(err.value)


def test_missing_override_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TargetConfigError, match="cannot read the targets file"):
        load_share_settings(tmp_path / "nope.yaml")
