"""The indicator seam: every indicator returns an :class:`IndicatorResult` a person can audit."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from parkmon.common.seams import resolve

Status = Literal["met", "below_target", "no_target", "insufficient_data"]


@dataclass(frozen=True)
class IndicatorResult:
    key: str
    name_zh: str
    name_en: str
    value: float | None
    unit: str
    period_start: datetime
    period_end: datetime
    target: float | None
    status: Status
    completeness: float  # share of the period's intervals with every input present, 0..1
    inputs: dict[str, Any] = field(default_factory=dict)  # the numbers used, for audit
    method: str = ""  # the rules applied, in words

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["period_start"] = self.period_start.isoformat()
        d["period_end"] = self.period_end.isoformat()
        return d


class Indicator(Protocol):
    """What every indicator class offers; its compute function and inputs are its own (numbers in,
    an :class:`IndicatorResult` out), since a share needs energy flows and a PUE needs other meters."""

    key: str
    name_zh: str
    name_en: str
    unit: str


# key -> "module:Class"; adding an indicator is one module and one line here
INDICATORS: dict[str, str] = {
    "new_energy_share": "analytics.indicators.new_energy_share:NewEnergyShare",
    "electricity_activity_index": "analytics.indicators.activity_index:ElectricityActivityIndex",
    "comprehensive_energy": "analytics.indicators.comprehensive_energy:ComprehensiveEnergy",
    "carbon_per_tce": "analytics.indicators.comprehensive_energy:CarbonPerTce",
    "water_intensity": "analytics.indicators.intensity:WaterIntensity",
    "energy_intensity": "analytics.indicators.intensity:EnergyIntensity",
    "key_energy_users": "analytics.indicators.key_energy_users:KeyEnergyUsers",
    "smart_park_scorecard": "analytics.indicators.scorecard:Scorecard",
    "pue": "analytics.indicators.pue:Pue",
    "digitalisation_rate": "analytics.indicators.digitalisation:Digitalisation",
    "unit_product_energy": "analytics.indicators.unit_energy:UnitEnergy",
    "pollutant_compliance": "analytics.indicators.pollutant_compliance:PollutantCompliance",
}


def load(key: str) -> Indicator:
    """An instance of the indicator registered under ``key``."""
    if key not in INDICATORS:
        raise KeyError(f"no indicator {key!r}; known: {', '.join(sorted(INDICATORS))} (analytics.indicators.base)")
    ind: Indicator = resolve(INDICATORS[key])()
    return ind


def status_for(value: float | None, target: float | None) -> Status:
    """Met when the value reaches the target; no value means the period had too little data."""
    if value is None:
        return "insufficient_data"
    if target is None:
        return "no_target"
    return "met" if value >= target - 1e-9 else "below_target"  # float noise must not fail a park
