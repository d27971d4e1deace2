"""Feed pollutant compliance from stored readings: each CEMS / wastewater outlet's samples over the
period → valid minutes and hours (HJ 212 rules) → reference-O2 conversion for flue gas → judged
against the permit limits (analytics/defaults.yaml ``pollutant_limits``, overridable)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .indicators.pollutant_compliance import (
    PollutantCompliance,
    amount_kg,
    days,
    hours,
    judge,
    minutes,
    to_reference_o2,
)
from .park_share import CHINA, ShareStore, require_park
from .targets import defaults_section


def limits() -> dict[str, Any]:
    return defaults_section("pollutant_limits")


def compute_compliance(store: ShareStore, park: str, start_ms: int, end_ms: int,
                       lim: dict[str, Any] | None = None) -> dict[str, Any]:
    require_park(store, park)
    lim = lim or limits()
    judged_metrics = [m for m in lim if m.startswith(("cems.", "ww."))]
    pts = store.points(park, metrics=[*judged_metrics, "cems.o2", "cems.flow", "ww.flow"])
    data = store.readings([p.id for p in pts], start_ms, end_ms)
    outlets: dict[tuple[str, str], dict[str, Any]] = {}
    for p in pts:
        ent, dev = str(getattr(p, "enterprise", "")), str(getattr(p, "device", ""))
        outlets.setdefault((ent, dev), {})[p.metric or ""] = data.get(p.id, [])
    o2_ref = float(lim["flue_gas_reference_o2"])
    results, within, valid = [], 0, 0
    totals: dict[str, float] = {}
    for (ent, dev), series in sorted(outlets.items()):
        o2 = minutes(series.get("cems.o2", []))
        flows = {"cems": minutes(series.get("cems.flow", [])), "ww": minutes(series.get("ww.flow", []), strict=True)}
        for metric in judged_metrics:
            if metric not in series:
                continue
            water = metric.startswith("ww.")
            measured = minutes(series[metric], strict=water)
            mins = measured if water else to_reference_o2(measured, o2, o2_ref)
            hourly = hours(mins, strict=water)
            j = judge(hourly, float(lim[metric]))
            jd = judge(days(hourly), float(lim[metric]))
            kg, kg_minutes = amount_kg(measured, flows["ww" if water else "cems"], water)
            if kg_minutes:
                totals[metric] = totals.get(metric, 0.0) + kg
            valid += j.valid_hours
            within += j.valid_hours - len(j.exceeding)
            results.append({
                "valid_days": jd.valid_hours, "invalid_days": jd.invalid_hours, "day_compliance": jd.compliance,
                "exceeding_days": [{"day": datetime.fromtimestamp(d / 1000, tz=CHINA).date().isoformat(),
                                    "value": round(v, 3)} for d, v in jd.exceeding],
                "amount_kg": round(kg, 6) if kg_minutes else None, "amount_minutes": kg_minutes,
                "enterprise": ent, "device": dev, "metric": metric, "limit": j.limit,
                "unit": "mg/L" if water else f"mg/m³ at {o2_ref:g} % O2", "valid_hours": j.valid_hours,
                "invalid_hours": j.invalid_hours, "compliance": j.compliance,
                "max_hourly": None if j.max_value is None else round(j.max_value, 3),
                "exceeding": [{"hour": datetime.fromtimestamp(h / 1000, tz=UTC).isoformat(), "value": round(v, 3),
                               "over_by": round(v - j.limit, 3)} for h, v in j.exceeding]})
    ind = PollutantCompliance()
    return {"key": ind.key, "name_zh": ind.name_zh, "name_en": ind.name_en, "unit": ind.unit,
            "value": within / valid if valid else None, "valid_hours": valid, "source": lim["source"],
            "amount_kg_by_pollutant": {m: round(v, 6) for m, v in sorted(totals.items())},
            "method": "HJ 212-2017 App. D: minute ≥ 12 good samples, hour ≥ 45 valid minutes, day (China) ≥ 20 "
                      "valid hours; flue gas at the reference O2; wastewater minutes and hours with any abnormal "
                      "sample are not valid; amount = Σ minute concentration × flow (measured, standard dry flue "
                      "gas; wastewater L/s) over minutes where both are valid",
            "outlets": results}
