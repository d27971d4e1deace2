"""Targets as configuration: defaults with their sources (defaults.yaml), overridable per park."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULTS = Path(__file__).with_name("defaults.yaml")

ParkClass = Literal["low_carbon", "zero_carbon", "none"]


class ClassTarget(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name_zh: str
    name_en: str
    milestones: dict[int, Annotated[float, Field(ge=0, le=1)]]
    source: str

    @field_validator("milestones")
    @classmethod
    def _some(cls, v: dict[int, float]) -> dict[int, float]:
        if not v:
            raise ValueError("needs at least one year: share (e.g. {2025: 0.5})")
        return dict(sorted(v.items()))


class ShareSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    low_carbon: ClassTarget
    zero_carbon: ClassTarget
    interval_minutes: Annotated[int, Field(ge=1, le=1440)] = 15
    max_hold_minutes: Annotated[int, Field(ge=0, le=1440)] = 5


@dataclass(frozen=True)
class Target:
    value: float
    kind: Literal["milestone", "trajectory", "held"]
    source: str
    park_class: str


class TargetConfigError(ValueError):
    pass


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_share_settings(override: str | Path | None = None) -> ShareSettings:
    raw: dict[str, Any] = yaml.safe_load(DEFAULTS.read_text(encoding="utf-8"))["new_energy_share"]
    where = str(DEFAULTS)
    if override is not None:
        where = str(override)
        doc = yaml.safe_load(Path(override).read_text(encoding="utf-8")) or {}
        raw = _merge(raw, doc.get("new_energy_share", {}))
    try:
        return ShareSettings.model_validate(raw)
    except ValidationError as exc:
        msgs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise TargetConfigError(f"{where}: new_energy_share settings: {msgs}") from None


def target_for(park_class: str, year: int, settings: ShareSettings | None = None) -> Target | None:
    """The share a park of this class must reach in this year; None for parks with no class."""
    s = settings or load_share_settings()
    if park_class not in ("low_carbon", "zero_carbon"):
        return None
    ct: ClassTarget = getattr(s, park_class)
    years = list(ct.milestones)
    if year in ct.milestones:
        return Target(ct.milestones[year], "milestone", ct.source, park_class)
    if year < years[0]:
        return Target(ct.milestones[years[0]], "held", ct.source, park_class)
    if year > years[-1]:
        return Target(ct.milestones[years[-1]], "held", ct.source, park_class)
    lo = max(y for y in years if y < year)
    hi = min(y for y in years if y > year)
    a, b = ct.milestones[lo], ct.milestones[hi]
    return Target(a + (b - a) * (year - lo) / (hi - lo), "trajectory", ct.source, park_class)
