"""Conversion and emission factors as configuration: defaults with their sources (factors.yaml),
overridable per park by a YAML file of the same shape (a partial file replaces only what it names)."""

from __future__ import annotations

from bisect import bisect_left
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULTS = Path(__file__).with_name("factors.yaml")


class Factor(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    value: float = Field(gt=0)
    unit: str
    source: str = Field(min_length=1)


class SteamTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    unit: str
    by_pressure_mpa: dict[float, float]
    source: str = Field(min_length=1)

    def at(self, mpa: float) -> float:
        """Linear between rows; outside the table the nearest row (the table spans usual supply pressures)."""
        ps = sorted(self.by_pressure_mpa)
        i = bisect_left(ps, mpa)
        if i == 0:
            return self.by_pressure_mpa[ps[0]]
        if i == len(ps):
            return self.by_pressure_mpa[ps[-1]]
        lo, hi = ps[i - 1], ps[i]
        a, b = self.by_pressure_mpa[lo], self.by_pressure_mpa[hi]
        return a + (b - a) * (mpa - lo) / (hi - lo)


class TceFactors(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    electricity_equivalent: Factor
    electricity_equal_value: Factor
    natural_gas: Factor
    coal: Factor
    heat: Factor
    steam_fixed: Factor
    steam_enthalpy_net: SteamTable


class GridFactors(BaseModel):
    """kgCO2/kWh by area and year; the source applies to the whole table."""

    model_config = ConfigDict(extra="allow", frozen=True)
    source: str = Field(min_length=1)

    def table(self) -> dict[str, dict[int, float]]:
        return {k: {int(y): float(v) for y, v in t.items()} for k, t in (self.model_extra or {}).items()}

    def lookup(self, area: str, year: int) -> tuple[float, str]:
        """The factor for ``area`` and ``year``; a year not published yet takes the latest earlier
        one (and says so); an area without a table is an error naming those that exist."""
        tables = self.table()
        if area not in tables:
            raise KeyError(f"no grid emission factors for area {area!r}; known: {', '.join(sorted(tables))}")
        years = sorted(y for y in tables[area] if y <= year)
        if not years:
            raise KeyError(f"no grid emission factor for {area} in or before {year} "
                           f"(first published: {min(tables[area])})")
        used = years[-1]
        note = "" if used == year else f" (the {year} factor is not published: {used}'s is used)"
        return tables[area][used], f"{area} {used}: {self.source}{note}"


class Co2Factors(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    electricity: GridFactors
    electricity_residual: GridFactors
    natural_gas: Factor
    coal: Factor
    heat: Factor
    steam_gj_per_t: Factor


class Factors(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    tce: TceFactors
    co2: Co2Factors


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_factors(override: str | Path | None = None) -> Factors:
    """The defaults (parsed once: the result is frozen) with ``override`` merged on top."""
    return _defaults() if override is None else _load(override)


@cache
def _defaults() -> Factors:
    return _load(None)


def _load(override: str | Path | None) -> Factors:
    doc = yaml.safe_load(DEFAULTS.read_text(encoding="utf-8"))
    if override is not None:
        path = Path(override)
        try:
            extra = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ValueError(f"{path}: cannot read factors ({exc.strerror})") from None
        if not isinstance(extra, dict):
            raise ValueError(f"{path}: expected a mapping like factors.yaml (tce: ..., co2: ...)")
        doc = _merge(doc, extra)
    try:
        return Factors.model_validate(doc)
    except ValidationError as exc:
        where = override or DEFAULTS
        raise ValueError(f"{where}: " + "; ".join(
            f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())) from None
