"""污染物排放达标 — pollutant compliance of CEMS and wastewater outlets against permit limits, judged on
valid hours (and, separately, valid China days). The judgement is pure (hourly values in, their judgement
out); the feed below reads the outlets' data from the store.

The HJ 212-2017 rules the values come from (minute ≥ 12 samples, hour ≥ 45 valid minutes, day ≥ 20 valid
hours, the data-flag roll-up, reference O2, amounts) live in :mod:`parkmon.common.emissions`, once; the
functions below keep the value-only form (``{start: value or None}``) this module always offered, and
only translate to it.

- Compliance: the share of valid hours at or under the limit; each exceeding hour is listed.
- Flue gas is judged at the reference O2; wastewater minutes and hours with any abnormal value are not
  valid (App. C).

The feed judges outlet (enterprise, device) by outlet and pollutant by pollutant against the permit limits
(analytics/defaults.yaml ``pollutant_limits``, overridable). Two sources, and each result says which it
used (``data_source``):

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from analytics.indicators.base import Context, Indicator, IndicatorResult, Span, require_park, status_for
from analytics.meters import MeterStore
from analytics.targets import defaults_section
from parkmon.common import emissions as em
from parkmon.common.clock import CHINA, CHINA_OFFSET_MS
from parkmon.common.hj212_codes import METRIC_CODES

if TYPE_CHECKING:
    from ingest.store.base import Store

DAY_OFFSET_MS = CHINA_OFFSET_MS  # days are China days (UTC+8)
Reading = em.Reading  # ts ms, value, quality (≥ 64 uncertain/bad is not normal)


def _kind(strict: bool) -> em.Kind:
    return "water" if strict else "gas"


def _aggregates(values: Mapping[int, float | None]) -> dict[int, em.Aggregate]:
    return {t: em.Aggregate(t, "N" if v is not None else "D", v) for t, v in values.items()}


def minutes(samples: Sequence[Reading], min_samples: int = em.MIN_SAMPLES,
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
        if status_for(v, limit, "lower") == "below_target":  # over the limit, float noise forgiven
            j.exceeding.append((h, v))
    return j


# --- the feed ---------------------------------------------------------------------------------------------
HOUR_RECORDS, SAMPLES = "hj212_hour_records", "samples"
O2_METRIC, FLOW_METRICS = "cems.o2", {"gas": "cems.flow", "water": "ww.flow"}


def limits() -> dict[str, Any]:
    return defaults_section("pollutant_limits")


def _metric_kind(metric: str) -> em.Kind:
    return "gas" if metric.startswith("cems.") else "water"


def official_metric(metric: str) -> str:
    """The metric of a logger's hour record that is judged: ``cems.so2.hour.ref_avg``, ``ww.cod.hour.avg``."""
    return f"{metric}.hour.{'ref_avg' if _metric_kind(metric) == 'gas' else 'avg'}"


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


def compute_compliance(store: MeterStore, park: str, start_ms: int, end_ms: int,
                       lim: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every outlet pollutant of the park judged over [start, end), and the park's share of valid hours
    within their limits (``value``); UnknownPark when the park is not registered."""
    require_park(store, park)
    return outlets_judged(store, park, start_ms, end_ms, lim)


def outlets_judged(store: MeterStore, park: str, start_ms: int, end_ms: int,
                   lim: dict[str, Any] | None = None) -> dict[str, Any]:
    """:func:`compute_compliance` of a park already checked."""
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
            todo = [m for m in judged_metrics if _metric_kind(m) == kind and m in by and (o, m) not in on_records]
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
            kind = _metric_kind(metric)
            if (o, metric) in on_records:
                amt = by.get(amount[metric])
                jd = _from_records(kind, rec[by[official[metric]]], rec.get(amt, []) if amt is not None else [])
            elif metric in by:
                if kind not in mins:
                    wanted = [m for m in judged_metrics
                              if _metric_kind(m) == kind and m in by and (o, m) not in on_records]
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
    ind = PollutantCompliance
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


class PollutantCompliance(Indicator[Span]):
    key = "pollutant_compliance"
    name_zh = "污染物排放达标率"
    name_en = "Pollutant compliance (valid hours within the permit limit)"
    unit = "ratio"
    params = Span
    cli = "compliance"
    in_overview = True

    def feed(self, store: Store, park: str, p: Span, ctx: Context) -> IndicatorResult:
        ctx.park(store, park)
        c = outlets_judged(store, park, p.start_ms, p.end_ms)
        outlets = c["outlets"]
        return self.make_result(
            c["value"], p.start, p.end, method=c["method"],
            completeness=(sum(o["valid_hours"] for o in outlets) / sum(o["valid_hours"] + o["invalid_hours"]
                                                                        for o in outlets)) if c["valid_hours"] else 0.0,
            inputs={"park": park, **{k: c[k] for k in ("valid_hours", "source", "amount_kg_by_pollutant", "outlets")}})

    def view(self, result: IndicatorResult) -> dict[str, Any]:
        i = result.inputs
        return {"key": self.key, "name_zh": self.name_zh, "name_en": self.name_en, "unit": self.unit,
                "value": result.value, "valid_hours": i["valid_hours"], "source": i["source"],
                "amount_kg_by_pollutant": i["amount_kg_by_pollutant"], "method": result.method,
                "outlets": i["outlets"], "period_start": result.period_start.isoformat(),
                "period_end": result.period_end.isoformat()}

    def report_section(self, result: IndicatorResult | None, report: dict[str, Any]) -> None:
        if result is not None:
            report[self.key] = self.view(result)

    def summary_rows(self, report: dict[str, Any]) -> list[list[Any]] | None:
        from analytics.report.rows import pct

        return [["污染物排放达标率 Pollutant compliance (valid hours)", pct(report[self.key]["value"]), "", "", ""]]
