"""污染物排放达标 — pollutant compliance of CEMS and wastewater outlets against permit limits, judged on
valid hours (and, separately, valid China days). Pure: hourly values in, their judgement out.

The HJ 212-2017 rules the values come from (minute ≥ 12 samples, hour ≥ 45 valid minutes, day ≥ 20 valid
hours, the data-flag roll-up, reference O2, amounts) live in :mod:`parkmon.common.emissions`, once; the
functions below keep the value-only form (``{start: value or None}``) this module always offered, and
only translate to it.

- Compliance: the share of valid hours at or under the limit; each exceeding hour is listed.
- Flue gas is judged at the reference O2; wastewater minutes and hours with any abnormal value are not
  valid (App. C); ``analytics/park_compliance.py`` feeds it from samples or from the loggers' hour records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from parkmon.common import emissions as em

MINUTE_MS, HOUR_MS, DAY_MS = em.MINUTE_MS, em.HOUR_MS, em.DAY_MS
DAY_OFFSET_MS = em.DAY_OFFSET_MS  # days are China days (UTC+8)
Sample = em.Sample  # ts ms, value, quality (≥ 64 uncertain/bad is not normal)


def _kind(strict: bool) -> em.Kind:
    return "water" if strict else "gas"


def _aggregates(values: Mapping[int, float | None]) -> dict[int, em.Aggregate]:
    return {t: em.Aggregate(t, "N" if v is not None else "D", v) for t, v in values.items()}


def minutes(samples: Sequence[Sample], min_samples: int = em.MIN_SAMPLES,
            strict: bool = False) -> dict[int, float | None]:
    """Minute start -> mean of its normal samples, or None when not valid (``strict``: the wastewater rule)."""
    return {t: a.value for t, a in em.minute_values(samples, _kind(strict), min_samples).items()}


def to_reference_o2(c: Mapping[int, float | None], o2: Mapping[int, float | None],
                    o2_ref: float) -> dict[int, float | None]:
    out: dict[int, float | None] = {}
    for m, v in c.items():
        ox = o2.get(m)
        out[m] = None if v is None or ox is None else em.at_reference_o2(v, ox, o2_ref)
    return out


def hours(mins: Mapping[int, float | None], min_valid: int = em.MIN_MINUTES,
          strict: bool = False) -> dict[int, float | None]:
    return {t: a.value for t, a in em.roll_up(_aggregates(mins), _kind(strict), "hour", min_valid).items()}


def days(hourly: Mapping[int, float | None], min_valid: int = em.MIN_HOURS,
         strict: bool = False) -> dict[int, float | None]:
    """China day start -> mean of its valid hours, None with fewer than ``min_valid`` of them."""
    return {t: a.value for t, a in em.roll_up(_aggregates(hourly), _kind(strict), "day", min_valid).items()}


def amount_kg(conc: Mapping[int, float | None], flow: Mapping[int, float | None], water: bool) -> tuple[float, int]:
    """Emitted mass over the minutes with both a valid concentration and a valid flow, and how many
    such minutes. Flue gas: mg/m³ × m³/s (standard, dry) × 60 s × 10⁻⁶; wastewater: L/s × 60 s × 10⁻³ m³
    × mg/L × 10⁻³."""
    total, n = 0.0, 0
    for m, c in conc.items():
        q = flow.get(m)
        if c is None or q is None:
            continue
        total += em.water_amount_kg(em.water_volume_m3(q), c) if water else em.gas_amount_kg(c, q)
        n += 1
    return total, n


@dataclass
class Judgement:
    limit: float
    valid_hours: int = 0
    invalid_hours: int = 0
    exceeding: list[tuple[int, float]] = field(default_factory=list)  # (hour start, value)
    max_value: float | None = None

    @property
    def compliance(self) -> float | None:
        return None if not self.valid_hours else 1 - len(self.exceeding) / self.valid_hours


def judge(hourly: dict[int, float | None], limit: float) -> Judgement:
    j = Judgement(limit)
    for h, v in sorted(hourly.items()):
        if v is None:
            j.invalid_hours += 1
            continue
        j.valid_hours += 1
        j.max_value = v if j.max_value is None else max(j.max_value, v)
        if v > limit + 1e-9:
            j.exceeding.append((h, v))
    return j


class PollutantCompliance:
    key = "pollutant_compliance"
    name_zh = "污染物排放达标率"
    name_en = "Pollutant compliance (valid hours within the permit limit)"
    unit = "ratio"
