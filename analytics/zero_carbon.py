"""The national zero-carbon park indicators (国家级零碳园区, 发改环资〔2025〕910号): their thresholds as
configuration (the ``zero_carbon:`` block of defaults.yaml, with sources and confidence; a park overrides
it with its own YAML) and the pure rules that judge them. Pure: numbers in, judgements out.

"1 + 5": the core indicator 单位能耗碳排放 (tCO₂ per tce of comprehensive energy), judged against the
threshold of the park's size band (its annual comprehensive energy), and five guiding indicators:
清洁能源消费占比, 园区企业产出产品单位能耗, 工业固体废物综合利用率, 余热/余冷/余压综合利用率, 工业用水重复利用率.
The indicators are one module each under analytics/indicators/ (zc_*.py); docs/indicators/zero-carbon.md
has the methods, sources and the confidence in each threshold.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from analytics.targets import TargetConfigError, defaults_section

YEAR_MS = 365 * 86_400_000
GUIDING = ("clean_energy_share", "unit_product_energy", "solid_waste_utilisation", "waste_heat_utilisation",
           "water_reuse_rate")
ElectricityCo2 = Literal["net_import", "import"]


class Band(BaseModel):
    """A size band: parks whose annual comprehensive energy is in [min_tce, max_tce) meet the core
    indicator at or below ``max_t_co2_per_tce``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    min_tce: Annotated[float, Field(ge=0)]
    max_tce: Annotated[float | None, Field(gt=0)] = None  # None: no upper bound
    max_t_co2_per_tce: Annotated[float, Field(ge=0, le=10)]
    label_zh: str = ""

    def holds(self, annual_tce: float) -> bool:
        return annual_tce >= self.min_tce and (self.max_tce is None or annual_tce < self.max_tce)


class Guiding(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    target: Annotated[float, Field(ge=0, le=1)]
    better: Literal["higher", "lower"] = "higher"
    source: Annotated[str, Field(min_length=1)]
    confidence: Literal["V", "V2", "M", "parkmon choice"]


class ZeroCarbonSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    carbon_per_tce_bands: list[Band]
    bands_source: Annotated[str, Field(min_length=1)]
    bands_confidence: Literal["V", "V2", "M", "parkmon choice"]
    electricity_co2: ElectricityCo2 = "net_import"
    guiding: dict[Literal["clean_energy_share", "unit_product_energy", "solid_waste_utilisation",
                          "waste_heat_utilisation", "water_reuse_rate"], Guiding]

    @model_validator(mode="after")
    def _bands_apart(self) -> ZeroCarbonSettings:
        bands = sorted(self.carbon_per_tce_bands, key=lambda b: b.min_tce)
        for a, b in itertools.pairwise(bands):
            if a.max_tce is None or a.max_tce > b.min_tce:
                raise ValueError(f"size bands overlap: [{a.min_tce}, {a.max_tce}) and [{b.min_tce}, {b.max_tce}); "
                                 "give each band min_tce and max_tce (tce a year) that do not overlap")
        return self


ENV = "PARKMON_ZERO_CARBON"  # a park's (or region's) own file, as PARKMON_TARIFFS is for tariffs


def load_zero_carbon_settings(override: str | Path | None = None) -> ZeroCarbonSettings:
    """The defaults (analytics/defaults.yaml ``zero_carbon:``), with a park's file's ``zero_carbon:`` on top
    (``override``, else the file ``PARKMON_ZERO_CARBON`` names: the API, the commands and the report read it):
    bands are replaced as a whole (and the source then names that file unless it gives its own), guiding
    targets one by one."""
    override = override if override is not None else (os.environ.get(ENV) or None)
    doc: dict[str, Any] = defaults_section("zero_carbon")
    if override is not None:
        path = Path(override)
        try:
            extra = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("zero_carbon") or {}
        except (OSError, yaml.YAMLError) as exc:
            raise TargetConfigError(f"{path}: cannot read the zero_carbon section ({exc})") from None
        if not isinstance(extra, Mapping):
            raise TargetConfigError(f"{path}: zero_carbon must be a mapping (carbon_per_tce_bands:, guiding:, ...)")
        if "carbon_per_tce_bands" in extra and "bands_source" not in extra:
            doc["bands_source"] = f"{path} (park configuration)"
            doc["bands_confidence"] = "parkmon choice"
        doc = {**doc, **{k: v for k, v in extra.items() if k != "guiding"},
               "guiding": {**doc.get("guiding", {}), **(extra.get("guiding") or {})}}
    try:
        return ZeroCarbonSettings.model_validate(doc)
    except ValidationError as exc:
        raise TargetConfigError(f"zero_carbon settings: {exc}") from None


# --- the core indicator -----------------------------------------------------------------------------------
def annual_tce(tce: float, start_ms: int, end_ms: int) -> tuple[float, str]:
    """The park's annual comprehensive energy from a period's: as is for a period of a year (365 or 366
    days), else scaled to 365 days (said in the basis: a month's figure decides the band only roughly)."""
    days = (end_ms - start_ms) / 86_400_000
    if 365 <= days <= 366:
        return tce, f"the period's {tce:,.3f} tce (a year)"
    return tce * YEAR_MS / (end_ms - start_ms), f"{tce:,.3f} tce over {days:g} days × 365 / {days:g} (annualised)"


def band_for(annual: float, s: ZeroCarbonSettings) -> Band | None:
    """The size band of a park using ``annual`` tce a year; None below (or between) the bands."""
    return next((b for b in s.carbon_per_tce_bands if b.holds(annual)), None)


def grid_split(import_kwh: float, export_kwh: float, basis: ElectricityCo2) -> tuple[float, float]:
    """(grid import, grid export) as the carbon line counts them: net of each other (净调入) or as metered.
    Either way import + RE − export, the electricity the park used, is unchanged."""
    if basis == "import":
        return import_kwh, export_kwh
    net = import_kwh - export_kwh
    return max(0.0, net), max(0.0, -net)


# --- the guiding indicators -------------------------------------------------------------------------------
def rate(part: float | None, whole: float | None) -> float | None:
    """part / whole (a utilisation or reuse rate), None without a whole worth dividing by."""
    if part is None or whole is None or whole <= 0:
        return None
    return part / whole


def water_reuse_rate(reused_m3: float | None, intake_m3: float | None) -> float | None:
    """工业用水重复利用率 = reused / (reused + fresh intake) (GB/T 7119-style definition: the water used is
    what is reused plus what is taken in)."""
    if reused_m3 is None or intake_m3 is None:
        return None
    return rate(reused_m3, reused_m3 + intake_m3)


# --- the report's section ---------------------------------------------------------------------------------
REPORT_HEAD = ["指标 Indicator", "类别 Kind", "数值 Value", "阈值 Threshold", "状态 Status", "依据 Basis"]
KIND_ZH = {"core": "核心 core", "guiding": "引导 guiding"}


def report_rows(report: Mapping[str, Any]) -> list[list[Any]]:
    """The zero-carbon section of the report (``report["zero_carbon"]``, see zc_park.ZeroCarbonPark) as
    rows of plain values for the Excel and PDF writers."""
    from analytics.report.rows import STATUS_ZH, num, pct

    section = report.get("zero_carbon")
    if not section:
        return []
    out: list[list[Any]] = []
    for item in section["indicators"]:
        ratio = item["unit"] == "ratio"
        shown = pct if ratio else (lambda v: num(v, 3))
        side = "≤ " if item["better"] == "lower" else "≥ "
        out.append([f"{item['name_zh']} {item['name_en']}", KIND_ZH[item["kind"]], shown(item["value"]),
                    "" if item["target"] is None else side + shown(item["target"]),
                    STATUS_ZH.get(item["status"], item["status"]), item["basis"]])
    return out
