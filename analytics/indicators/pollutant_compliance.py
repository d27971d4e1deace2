"""污染物排放达标 — pollutant compliance of CEMS and wastewater outlets against permit limits, with the
HJ 212-2017 validity rules (App. D, domain.md §3). Pure: samples in, valid hourly values and their
judgement out.

- A minute value is the mean of its good samples and is valid with at least 12 of them (CEMS: ≤5 s
  spacing); an hour is valid with at least 45 valid minutes; a day (China calendar) with at least 20
  valid hours. Compliance is judged on hours and, separately, on days.
- Flue gas is judged at the reference O2: C_折 = C × (21 − O2_ref) / (21 − O2), with the minute's O2
  (an O2 of 21 % or more cannot be converted: that minute is invalid).
- Wastewater: any abnormal sample makes its minute abnormal (HJ 212 App. C), and an hour with an
  abnormal minute is not valid.
- Compliance: the share of valid hours at or under the limit; each exceeding hour is listed.
- Emission amount (App. D): flue gas G = C × Q_sn × 10⁻⁶ kg (mg/m³ × m³, the measured concentration, not
  the O2-converted one, with the CEMS's standard dry flow); wastewater G = Q[L/s] × T[s] × 10⁻³ m³ ×
  C[mg/L] × 10⁻³ kg; minute by minute over the minutes where both concentration and flow are valid.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

MINUTE_MS, HOUR_MS, DAY_MS = 60_000, 3_600_000, 86_400_000
DAY_OFFSET_MS = 8 * HOUR_MS  # days are China days (UTC+8)
Sample = tuple[int, float | None, int]  # ts ms, value, quality (≥ 64 uncertain/bad is not normal)


def minutes(samples: Sequence[Sample], min_samples: int = 12, strict: bool = False) -> dict[int, float | None]:
    """Minute start -> mean of its good samples, or None when too few (or, ``strict``, any abnormal)."""
    groups: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        groups[s[0] // MINUTE_MS * MINUTE_MS].append(s)
    out: dict[int, float | None] = {}
    for m, group in groups.items():
        good = [v for _t, v, q in group if v is not None and q < 64]
        if strict and len(good) < len(group):
            out[m] = None
        else:
            out[m] = sum(good) / len(good) if len(good) >= min_samples else None
    return out


def to_reference_o2(c: dict[int, float | None], o2: dict[int, float | None], o2_ref: float) -> dict[int, float | None]:
    out: dict[int, float | None] = {}
    for m, v in c.items():
        ox = o2.get(m)
        out[m] = None if v is None or ox is None or ox >= 21.0 else v * (21.0 - o2_ref) / (21.0 - ox)
    return out


def hours(mins: dict[int, float | None], min_valid: int = 45, strict: bool = False) -> dict[int, float | None]:
    groups: dict[int, list[float | None]] = defaultdict(list)
    for m, v in mins.items():
        groups[m // HOUR_MS * HOUR_MS].append(v)
    out: dict[int, float | None] = {}
    for h, vals in groups.items():
        valid = [v for v in vals if v is not None]
        out[h] = None if len(valid) < min_valid or (strict and len(valid) < len(vals)) else sum(valid) / len(valid)
    return out


def days(hourly: dict[int, float | None], min_valid: int = 20) -> dict[int, float | None]:
    """China day start -> mean of its valid hours, None with fewer than ``min_valid`` of them."""
    groups: dict[int, list[float]] = defaultdict(list)
    for h, v in hourly.items():
        day = (h + DAY_OFFSET_MS) // DAY_MS * DAY_MS - DAY_OFFSET_MS
        groups.setdefault(day, [])
        if v is not None:
            groups[day].append(v)
    return {d: (sum(vs) / len(vs) if len(vs) >= min_valid else None) for d, vs in groups.items()}


def amount_kg(conc: dict[int, float | None], flow: dict[int, float | None], water: bool) -> tuple[float, int]:
    """Emitted mass over the minutes with both a valid concentration and a valid flow, and how many
    such minutes. Flue gas: mg/m³ × m³/s (standard, dry) × 60 s × 10⁻⁶; wastewater: mg/L × L/s × 60 s × 10⁻⁶."""
    total, n = 0.0, 0
    for m, c in conc.items():
        q = flow.get(m)
        if c is None or q is None:
            continue
        total += c * q * 60 * 1e-6  # both formulas come to mg/s x s -> mg, x 1e-6 -> kg
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
