"""重点用能单位 — key energy users: enterprises whose comprehensive energy consumption reaches
5 000 tce a year (《节能技术改造实施方案》: "年综合能源消费量5000吨标准煤以上的……重点用能企业").

Partial data is annualised by a stated method: tce over the covered days × 365 / covered days (a
straight scale-up; an enterprise with a seasonal load is over- or under-stated, so the result says
how many days it stands on). Pure: per-enterprise tce and days in, a ranked list out; the feed takes
every enterprise's comprehensive energy from one read of the counters (shared with the report's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from analytics.indicators.base import Context, Indicator, IndicatorResult, Span
from analytics.indicators.comprehensive_energy import enterprise_energy

if TYPE_CHECKING:
    from ingest.store.base import Store

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


class KeyUsersParams(Span):
    threshold_tce: Annotated[float, Field(gt=0, description="tce a year from which an enterprise is a key user")] \
        = THRESHOLD_TCE


class KeyEnergyUsers(Indicator[KeyUsersParams]):
    key = "key_energy_users"
    name_zh = "重点用能单位"
    name_en = "Key energy users (≥5 000 tce/yr)"
    unit = "enterprises"
    params = KeyUsersParams

    def feed(self, store: Store, park: str, p: KeyUsersParams, ctx: Context) -> IndicatorResult:
        ctx.park(store, park)
        per_ent = enterprise_energy(store, park, p.start_ms, p.end_ms, ctx)
        everyone = sorted({q.enterprise for q in store.points(park)})
        tce = {e: per_ent[e][0].value if e in per_ent else None for e in everyone}
        days = (p.end_ms - p.start_ms) / 86_400_000
        ranked = rank(tce, days, p.threshold_tce)
        return self.make_result(sum(k.key_user for k in ranked), p.start, p.end,
                                completeness=len(ranked) / len(tce) if tce else 0.0,
                                inputs={"park": park, "threshold_tce": p.threshold_tce, "source": SOURCE,
                                        "days": round(days, 3), "enterprises": [vars(k) for k in ranked],
                                        "without_data": sorted(e for e, v in tce.items() if v is None)},
                                method="annualised = tce over the period × 365 / days of the period")

    def view(self, result: IndicatorResult) -> dict[str, Any]:
        i = result.inputs
        return {"key": self.key, "name_zh": self.name_zh, "name_en": self.name_en, "unit": self.unit,
                "value": result.value, "threshold_tce": i["threshold_tce"], "source": i["source"],
                "period_start": result.period_start.isoformat(), "period_end": result.period_end.isoformat(),
                "days": i["days"], "method": result.method, "enterprises": i["enterprises"],
                "without_data": i["without_data"]}

    def report_section(self, result: IndicatorResult | None, report: dict[str, Any]) -> None:
        if result is not None:
            report["key_energy_users"] = result.inputs["enterprises"]
            report["key_energy_threshold_tce"] = result.inputs["threshold_tce"]

    def summary_rows(self, report: dict[str, Any]) -> list[list[Any]] | None:
        return [["重点用能单位 Key energy users (≥5 000 tce/yr)",
                 str(sum(u["key_user"] for u in report["key_energy_users"])), "", "", ""]]
