"""Targets as configuration: defaults with their sources (defaults.yaml), overridable per park.

A park class has milestones (year -> share). A year on a milestone gets it; a year between two
milestones gets the straight line between them (parkmon's reading: the policy names 2022 and
"within three years", not the years between); a year after the last milestone keeps the last
one; a year before the first has no target. An override file replaces a class's milestones as a
whole; if it gives no ``source`` of its own, the source says the numbers came from that file.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULTS = Path(__file__).with_name("defaults.yaml")

ParkClass = Literal["low_carbon", "zero_carbon", "none"]
PARK_CLASSES: tuple[str, ...] = ("low_carbon", "zero_carbon", "none")


class ClassTarget(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name_zh: str
    name_en: str
    milestones: dict[Annotated[int, Field(ge=2000, le=2100)], Annotated[float, Field(ge=0, le=1)]]
    source: Annotated[str, Field(min_length=1)]

    @field_validator("milestones")
    @classmethod
    def _some(cls, v: dict[int, float]) -> dict[int, float]:
        if not v:
            raise ValueError("needs at least one year: share as a fraction (e.g. {2025: 0.5})")
        return dict(sorted(v.items()))


class ShareSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    low_carbon: ClassTarget
    zero_carbon: ClassTarget
    interval_minutes: Annotated[int, Field(ge=1, le=1440)] = 60
    max_hold_minutes: Annotated[int, Field(ge=0, le=1440)] = 5


@dataclass(frozen=True)
class Target:
    value: float  # a fraction 0..1, like the share
    kind: Literal["milestone", "trajectory", "held"]  # held: after the last milestone
    source: str  # the documents the numbers come from
    park_class: str
    basis: str = ""  # how the value was derived, e.g. "straight line 2022 0.30 -> 2025 0.50"


class TargetConfigError(ValueError):
    pass


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TargetConfigError(f"{path}: cannot read the targets file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise TargetConfigError(f"{path}: not valid YAML: {exc}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise TargetConfigError(f"{path}: expected a mapping with a 'new_energy_share:' section, got "
                                f"{type(doc).__name__}")
    return doc


@cache
def _defaults() -> dict[str, Any]:
    return _read_yaml(DEFAULTS)


def defaults_section(name: str) -> dict[str, Any]:
    """A section of defaults.yaml (read once; each caller gets its own copy to keep)."""
    section: dict[str, Any] = copy.deepcopy(_defaults()[name])
    return section


def _merge_share(raw: dict[str, Any], over: Any, where: str) -> dict[str, Any]:
    if not isinstance(over, dict):
        raise TargetConfigError(f"{where}: new_energy_share must be a mapping (low_carbon:, zero_carbon:, ...)")
    out = dict(raw)
    for key, value in over.items():
        if key in ("low_carbon", "zero_carbon") and isinstance(value, dict):
            merged = {**raw.get(key, {}), **value}  # milestones are replaced, not merged year by year
            if "milestones" in value and "source" not in value:
                merged["source"] = f"{where} (park configuration)"
            out[key] = merged
        else:
            out[key] = value
    return out


def load_share_settings(override: str | Path | None = None) -> ShareSettings:
    """Defaults from defaults.yaml, with the ``new_energy_share:`` section of ``override`` on top."""
    raw = defaults_section("new_energy_share")
    where = str(DEFAULTS)
    if override is not None:
        where = str(override)
        raw = _merge_share(raw, _read_yaml(Path(override)).get("new_energy_share", {}), where)
    try:
        return ShareSettings.model_validate(raw)
    except ValidationError as exc:
        msgs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise TargetConfigError(f"{where}: new_energy_share settings: {msgs}") from None


def target_for(park_class: str, year: int, settings: ShareSettings | None = None) -> Target | None:
    """The share a park of this class must reach in this year; None for class "none" or a year
    before the first milestone. An unknown class is an error (a typo must not mean "no target")."""
    if park_class not in PARK_CLASSES:
        raise ValueError(f"park class {park_class!r} is unknown; use one of {', '.join(PARK_CLASSES)}")
    if park_class == "none":
        return None
    s = settings or load_share_settings()
    ct: ClassTarget = getattr(s, park_class)
    years = list(ct.milestones)
    if year in ct.milestones:
        return Target(ct.milestones[year], "milestone", ct.source, park_class, f"milestone {year}")
    if year < years[0]:
        return None
    if year > years[-1]:
        last = years[-1]
        return Target(ct.milestones[last], "held", ct.source, park_class, f"held from milestone {last}")
    lo = max(y for y in years if y < year)
    hi = min(y for y in years if y > year)
    a, b = ct.milestones[lo], ct.milestones[hi]
    return Target(a + (b - a) * (year - lo) / (hi - lo), "trajectory", ct.source, park_class,
                  f"straight line {lo} {a:.2f} -> {hi} {b:.2f}")
