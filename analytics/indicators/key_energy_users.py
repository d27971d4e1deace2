"""重点用能单位 — key energy users: enterprises whose comprehensive energy consumption reaches
5 000 tce a year (《节能技术改造实施方案》: "年综合能源消费量5000吨标准煤以上的……重点用能企业").

Partial data is annualised by a stated method: tce over the covered days × 365 / covered days (a
straight scale-up; an enterprise with a seasonal load is over- or under-stated, so the result says
how many days it stands on). Pure: per-enterprise tce and days in, a ranked list out.
"""

from __future__ import annotations

from dataclasses import dataclass

THRESHOLD_TCE = 5000.0
SOURCE = "《节能技术改造实施方案》: 年综合能源消费量5000吨标准煤以上的重点用能企业"


@dataclass(frozen=True)
class KeyUser:
    enterprise: str
    tce: float
    days: float
    annualised_tce: float
    key_user: bool
    margin_tce: float  # annualised − threshold: how far over (+) or under (−)


def rank(tce_by_enterprise: dict[str, float | None], days: float,
         threshold_tce: float = THRESHOLD_TCE) -> list[KeyUser]:
    """Enterprises by annualised consumption, largest first; those without data are left out."""
    if days <= 0:
        raise ValueError(f"the period must have a positive length in days, got {days}")
    out = []
    for ent, tce in tce_by_enterprise.items():
        if tce is None:
            continue
        annual = tce * 365.0 / days
        out.append(KeyUser(ent, tce, days, annual, annual >= threshold_tce, annual - threshold_tce))
    return sorted(out, key=lambda k: -k.annualised_tce)


class KeyEnergyUsers:
    key = "key_energy_users"
    name_zh = "重点用能单位"
    name_en = "Key energy users (≥5 000 tce/yr)"
    unit = "enterprises"
