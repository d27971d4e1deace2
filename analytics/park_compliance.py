"""Feed pollutant compliance from stored readings, outlet (enterprise, device) by outlet and pollutant
by pollutant, judged against the permit limits (analytics/defaults.yaml ``pollutant_limits``,
overridable), with the HJ 212-2017 rules of :mod:`parkmon.common.emissions`. Two sources, and each result
says which it used (``data_source``):

- ``hj212_hour_records``: the outlet's data logger sent hour records (CN 2061) for the period — points
  whose metric is ``<base>.hour.ref_avg`` (flue gas, already at the logger's reference O2) or
  ``<base>.hour.avg`` (wastewater), with ``<base>.hour.amount`` for the amount (``parkmon.common.hj212.metric_of``).
  Those official hours are judged as they are: valid when flagged N (the flag is the reading's quality,
  ``parkmon.common.hj212.flag_quality``); days roll up from them by the same day rule. A year is 8 760 rows
  a pollutant instead of millions of samples.
- ``samples``: otherwise, the outlet's real-time samples → valid minutes → hours → days
  (:func:`parkmon.common.emissions.outlet_minutes` and :func:`~parkmon.common.emissions.roll_up`), flue gas at the
  reference O2 of ``flue_gas_reference_o2``.

On the same data both give the same hours, days and amounts (tests/test_emissions.py), except that the
records cannot say how many minutes carried an amount (``amount_minutes`` is None), and an hour whose
record has no value of the judged field (not one normal sample all hour, or for flue gas no valid O2)
lands on no point, so it is not counted among the invalid hours (nor, for wastewater, does it spoil its
day as the samples path's abnormal hour does).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from analytics.indicators.pollutant_compliance import Judgement, PollutantCompliance, judge
from analytics.park_share import ShareStore, require_park
from analytics.targets import defaults_section
from parkmon.common import emissions as em
from parkmon.common.clock import CHINA
from parkmon.common.hj212_codes import METRIC_CODES

HOUR_RECORDS, SAMPLES = "hj212_hour_records", "samples"
O2_METRIC, FLOW_METRICS = "cems.o2", {"gas": "cems.flow", "water": "ww.flow"}


def limits() -> dict[str, Any]:
    return defaults_section("pollutant_limits")


def _kind(metric: str) -> em.Kind:
    return "gas" if metric.startswith("cems.") else "water"


def official_metric(metric: str) -> str:
    """The metric of a logger's hour record that is judged: ``cems.so2.hour.ref_avg``, ``ww.cod.hour.avg``."""
    return f"{metric}.hour.{'ref_avg' if _kind(metric) == 'gas' else 'avg'}"


def _code(metric: str) -> str:
    return METRIC_CODES.get(metric, metric)


class _Judged:
    """One outlet pollutant's hourly values, daily values and amount, from either source."""

    def __init__(self, hourly: dict[int, float | None], daily: dict[int, float | None], kg: float | None,
                 kg_minutes: int | None, source: str) -> None:
        self.hourly, self.daily, self.kg, self.kg_minutes, self.source = hourly, daily, kg, kg_minutes, source


def _from_records(kind: em.Kind, hours: Sequence[tuple[int, float | None, int]],
                  amounts: Sequence[tuple[int, float | None, int]]) -> _Judged:
    aggs = {t: em.Aggregate(t, em.flag_of(q, v), v) for t, v, q in hours}
    hourly = {t: a.value for t, a in aggs.items()}
    daily = {t: a.value for t, a in em.roll_up(aggs, kind, "day").items()}
    cou = [v for _t, v, _q in amounts if v is not None]  # every hour's amount, whatever its flag
    return _Judged(hourly, daily, sum(cou) if cou else None, None, HOUR_RECORDS)


def _from_minutes(kind: em.Kind, mins: dict[int, em.Aggregate]) -> _Judged:
    hrs = em.roll_up(mins, kind, "hour")
    days = em.roll_up(hrs, kind, "day")
    if kind == "gas":  # judged at the reference O2
        hourly, daily = {t: a.zs_value for t, a in hrs.items()}, {t: a.zs_value for t, a in days.items()}
    else:
        hourly, daily = {t: a.value for t, a in hrs.items()}, {t: a.value for t, a in days.items()}
    cou = [a.cou for a in mins.values() if a.cou is not None]
    return _Judged(hourly, daily, sum(cou) if cou else None, len(cou), SAMPLES)


def compute_compliance(store: ShareStore, park: str, start_ms: int, end_ms: int,
                       lim: dict[str, Any] | None = None) -> dict[str, Any]:
    require_park(store, park)
    lim = lim or limits()
    judged_metrics = [m for m in lim if m.startswith(("cems.", "ww."))]
    official = {m: official_metric(m) for m in judged_metrics}
    amount = {m: f"{m}.hour.amount" for m in judged_metrics}
    pts = store.points(park, metrics=[*judged_metrics, O2_METRIC, *FLOW_METRICS.values(), *official.values(),
                                      *amount.values()])
    outlets: dict[tuple[str, str], dict[str, int]] = {}  # outlet -> metric -> point id
    for p in pts:
        ent, dev = str(getattr(p, "enterprise", "")), str(getattr(p, "device", ""))
        outlets.setdefault((ent, dev), {})[p.metric or ""] = p.id
    # the loggers' hour records first (few rows); samples only where an outlet pollutant has none
    record_ids = [pid for by in outlets.values() for m, pid in by.items() if m in {*official.values(),
                                                                                     *amount.values()}]
    rec = store.readings(record_ids, start_ms, end_ms)
    on_records = {(o, m) for o, by in outlets.items() for m in judged_metrics
                  if official[m] in by and rec.get(by[official[m]])}
    raw_ids: list[int] = []
    for o, by in outlets.items():
        for kind in ("gas", "water"):
            todo = [m for m in judged_metrics if _kind(m) == kind and m in by and (o, m) not in on_records]
            if todo:
                aux = [O2_METRIC, FLOW_METRICS["gas"]] if kind == "gas" else [FLOW_METRICS["water"]]
                raw_ids += [by[m] for m in todo + aux if m in by]
    data = store.readings(raw_ids, start_ms, end_ms)
    o2_ref = float(lim["flue_gas_reference_o2"])
    results, within, valid = [], 0, 0
    totals: dict[str, float] = {}
    for o, by in sorted(outlets.items()):
        ent, dev = o
        mins: dict[em.Kind, dict[str, dict[int, em.Aggregate]]] = {}
        for metric in judged_metrics:
            kind = _kind(metric)
            if (o, metric) in on_records:
                amt = by.get(amount[metric])
                jd = _from_records(kind, rec[by[official[metric]]], rec.get(amt, []) if amt is not None else [])
            elif metric in by:
                if kind not in mins:
                    wanted = [m for m in judged_metrics if _kind(m) == kind and m in by and (o, m) not in on_records]
                    wanted += [O2_METRIC, FLOW_METRICS["gas"]] if kind == "gas" else [FLOW_METRICS["water"]]
                    mins[kind] = em.outlet_minutes({_code(m): data[by[m]] for m in wanted if m in by}, kind,
                                                   o2_ref=o2_ref)
                jd = _from_minutes(kind, mins[kind][_code(metric)])
            else:
                continue
            if jd.kg is not None:
                totals[metric] = totals.get(metric, 0.0) + jd.kg
            j, jday = judge(jd.hourly, float(lim[metric])), judge(jd.daily, float(lim[metric]))
            valid += j.valid_hours
            within += j.valid_hours - len(j.exceeding)
            results.append(_result(ent, dev, metric, kind, o2_ref, j, jday, jd))
    ind = PollutantCompliance()
    return {"key": ind.key, "name_zh": ind.name_zh, "name_en": ind.name_en, "unit": ind.unit,
            "value": within / valid if valid else None, "valid_hours": valid, "source": lim["source"],
            "amount_kg_by_pollutant": {m: round(v, 6) for m, v in sorted(totals.items())},
            "method": "HJ 212-2017 (parkmon/common/emissions.py): the data logger's hour records where an outlet has "
                      "them (valid when flagged N), else from samples: minute ≥ 12 normal samples, hour ≥ 45 valid "
                      "minutes, day (China) ≥ 20 valid hours; flue gas ≥ 75 % normal values and at the reference "
                      "O2; wastewater minutes, hours and days with any abnormal value are not valid; amount = Σ "
                      "minute concentration × flow (measured, standard dry flue gas; wastewater L/s) over minutes "
                      "where both are valid; each outlet's data_source says which",
            "outlets": results}


def _result(ent: str, dev: str, metric: str, kind: em.Kind, o2_ref: float, j: Judgement, jday: Judgement,
            jd: _Judged) -> dict[str, Any]:
    return {
        "valid_days": jday.valid_hours, "invalid_days": jday.invalid_hours, "day_compliance": jday.compliance,
        "exceeding_days": [{"day": datetime.fromtimestamp(d / 1000, tz=CHINA).date().isoformat(),
                            "value": round(v, 3)} for d, v in jday.exceeding],
        "amount_kg": None if jd.kg is None else round(jd.kg, 6), "amount_minutes": jd.kg_minutes,
        "enterprise": ent, "device": dev, "metric": metric, "limit": j.limit,
        "unit": "mg/L" if kind == "water" else f"mg/m³ at {o2_ref:g} % O2", "valid_hours": j.valid_hours,
        "invalid_hours": j.invalid_hours, "compliance": j.compliance,
        "max_hourly": None if j.max_value is None else round(j.max_value, 3),
        "exceeding": [{"hour": datetime.fromtimestamp(h / 1000, tz=UTC).isoformat(), "value": round(v, 3),
                       "over_by": round(v - j.limit, 3)} for h, v in j.exceeding],
        "data_source": jd.source}

