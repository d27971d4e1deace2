"""Feed comprehensive energy and carbon from stored readings: each energy carrier's counters over
the period (a meter replaced mid-period counts from zero; a meter that did not cover the period
makes its carrier incomplete, never guessed) → EnergyUse → tce and CO2."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, cast

from analytics.counters import interval_energy
from analytics.factors import Factors, load_factors
from analytics.indicators.base import IndicatorResult
from analytics.indicators.comprehensive_energy import (
    CarbonPerTce,
    ComprehensiveEnergy,
    ElectricityMethod,
    EnergyUse,
    SteamMethod,
    compute,
)
from analytics.park_share import ShareStore, require_park
from analytics.rollup_feed import Source, StepStore, plan, point_totals
from parkmon.common.clock import CHINA

# EnergyUse field -> the counter metrics summed into it (the metrics' units are the field's)
CARRIERS: dict[str, tuple[str, ...]] = {
    "grid_import_kwh": ("elec.import.energy",),
    "grid_export_kwh": ("elec.export.energy",),
    "renewable_generation_kwh": ("pv.generation.energy", "wind.generation.energy"),
    "natural_gas_m3": ("gas.volume",),
    "coal_t": ("coal.mass",),
    "steam_t": ("steam.mass",),
    "heat_gj": ("heat.energy",),
}
_HOLD_MS = 5 * 60_000  # as the share: a counter reading may be held 5 min past the data at an edge
_Pt = Any  # a stored point (ingest.store.base.PointInfo): id, metric, key, enterprise


def point_amounts(store: ShareStore, pts: Sequence[_Pt], start_ms: int, end_ms: int,
                  source: Source = "auto") -> tuple[dict[int, float | None], int, str]:
    """What each counter advanced over [start, end) (None: it did not cover the period), the resets
    seen, and which data answered (``raw`` or a rollup level)."""
    pl = plan(cast(StepStore, store), source, start_ms, end_ms)
    amounts: dict[int, float | None] = {p.id: 0.0 for p in pts}
    resets = 0
    if pl.level is not None and pl.split_ms > start_ms:
        amounts, resets = point_totals(cast(StepStore, store), [p.id for p in pts], start_ms, pl.split_ms, pl.level)
    if pl.split_ms < end_ms:
        data = store.readings([p.id for p in pts], pl.split_ms - _HOLD_MS, end_ms + _HOLD_MS)
        for p in pts:
            (tail,), rep = interval_energy(data.get(p.id, []), [pl.split_ms, end_ms], _HOLD_MS)
            before = amounts[p.id]
            amounts[p.id] = None if before is None or tail is None else before + tail
            resets += len(rep.resets)
    return amounts, resets, pl.label(end_ms)


def group_totals(pts: Sequence[_Pt], amounts: dict[int, float | None], carriers: dict[str, tuple[str, ...]],
                 resets: int, source: str) -> tuple[dict[str, float], dict[str, Any]]:
    """Per carrier, the sum of its meters' amounts, with the coverage report."""
    totals: dict[str, float] = dict.fromkeys(carriers, 0.0)
    report: dict[str, Any] = {"meters": {}, "uncovered": [], "resets": resets, "source": source}
    for p in pts:
        field_ = next(f for f, ms in carriers.items() if p.metric in ms)
        report["meters"][field_] = report["meters"].get(field_, 0) + 1
        amount = amounts[p.id]
        if amount is None:
            report["uncovered"].append(getattr(p, "key", str(p.id)))
        else:
            totals[field_] += amount
    return totals, report


def counter_totals(store: ShareStore, park: str, carriers: dict[str, tuple[str, ...]], start_ms: int, end_ms: int,
                   enterprise: str | None = None, source: Source = "auto") -> tuple[dict[str, float], dict[str, Any]]:
    """Per carrier, the sum over its meters of what they counted in [start, end); and how many meters
    fed each carrier, which did not cover the period (left out, never guessed) and how many resets."""
    pts = store.points(park, metrics=[m for ms in carriers.values() for m in ms], enterprise=enterprise)
    amounts, resets, used = point_amounts(store, pts, start_ms, end_ms, source)
    return group_totals(pts, amounts, carriers, resets, used)


def totals_by_enterprise(store: ShareStore, park: str, carriers: dict[str, tuple[str, ...]], start_ms: int,
                         end_ms: int, source: Source = "auto") -> dict[str, tuple[dict[str, float], dict[str, Any]]]:
    """:func:`counter_totals` of every enterprise of the park, from one read of the counters."""
    pts = store.points(park, metrics=[m for ms in carriers.values() for m in ms])
    amounts, _resets, used = point_amounts(store, pts, start_ms, end_ms, source)
    by_ent: dict[str, list[_Pt]] = {}
    for p in pts:
        by_ent.setdefault(str(getattr(p, "enterprise", "")), []).append(p)
    return {e: group_totals(ps, amounts, carriers, 0, used) for e, ps in sorted(by_ent.items())}


def energy_use(store: ShareStore, park: str, start_ms: int, end_ms: int, enterprise: str | None = None,
               green_purchase_kwh: float = 0.0, source: Source = "auto") -> tuple[EnergyUse, dict[str, Any]]:
    """What the park (or one enterprise) used in [start, end), with the coverage report."""
    totals, report = counter_totals(store, park, CARRIERS, start_ms, end_ms, enterprise, source)
    return EnergyUse(**totals, green_purchase_kwh=green_purchase_kwh), report


def compute_energy(store: ShareStore, park: str, start_ms: int, end_ms: int, enterprise: str | None = None,
                   factors: Factors | None = None, electricity_method: ElectricityMethod = "equivalent",
                   steam_method: SteamMethod = "fixed", steam_pressure_mpa: float = 1.0,
                   green_purchase_kwh: float = 0.0, area: str = "内蒙古",
                   source: Source = "auto") -> tuple[IndicatorResult, IndicatorResult]:
    """(综合能耗 in tce, 单位能耗碳排放 in tCO2/tce) of a park or an enterprise over a period."""
    require_park(store, park)
    use, rep = energy_use(store, park, start_ms, end_ms, enterprise, green_purchase_kwh, source)
    return energy_results(use, rep, park, enterprise, start_ms, end_ms, factors or load_factors(),
                          electricity_method, steam_method, steam_pressure_mpa, area)


def energy_by_enterprise(store: ShareStore, park: str, start_ms: int, end_ms: int, factors: Factors | None = None,
                         source: Source = "auto") -> dict[str, tuple[IndicatorResult, IndicatorResult]]:
    """:func:`compute_energy` of every enterprise of the park (default methods), from one read."""
    f = factors or load_factors()
    return {ent: energy_results(use, rep, park, ent, start_ms, end_ms, f)
            for ent, (use, rep) in uses_by_enterprise(store, park, start_ms, end_ms, source).items()}


def uses_by_enterprise(store: ShareStore, park: str, start_ms: int, end_ms: int,
                       source: Source = "auto") -> dict[str, tuple[EnergyUse, dict[str, Any]]]:
    require_park(store, park)
    return {ent: (EnergyUse(**totals), rep)
            for ent, (totals, rep) in totals_by_enterprise(store, park, CARRIERS, start_ms, end_ms, source).items()}


def park_use(uses: dict[str, tuple[EnergyUse, dict[str, Any]]]) -> tuple[EnergyUse, dict[str, Any]]:
    """The park's energy use as the sum of its enterprises' (the same meters, read once)."""
    total = {f_.name: sum(getattr(u, f_.name) for u, _r in uses.values()) for f_ in fields(EnergyUse)}
    rep: dict[str, Any] = {"meters": {}, "uncovered": [], "resets": 0, "source": "raw"}
    for _u, r in uses.values():
        for k, n in r["meters"].items():
            rep["meters"][k] = rep["meters"].get(k, 0) + n
        rep["uncovered"] += r["uncovered"]
        rep["resets"] += r["resets"]
        rep["source"] = r["source"]
    return EnergyUse(**total), rep


def energy_results(use: EnergyUse, rep: dict[str, Any], park: str, enterprise: str | None, start_ms: int,
                   end_ms: int, f: Factors, electricity_method: ElectricityMethod = "equivalent",
                   steam_method: SteamMethod = "fixed", steam_pressure_mpa: float = 1.0,
                   area: str = "内蒙古") -> tuple[IndicatorResult, IndicatorResult]:
    start = datetime.fromtimestamp(start_ms / 1000, tz=UTC)
    end = datetime.fromtimestamp(end_ms / 1000, tz=UTC)
    r = compute(use, f, year=start.astimezone(CHINA).year, area=area, electricity_method=electricity_method,
                steam_method=steam_method, steam_pressure_mpa=steam_pressure_mpa)
    meters = sum(rep["meters"].values())
    covered = meters - len(rep["uncovered"])
    complete = covered / meters if meters else 0.0
    inputs: dict[str, Any] = {"park": park, "enterprise": enterprise,
                              "use": {f_.name: getattr(use, f_.name) for f_ in fields(use)},
                              "meters_per_carrier": rep["meters"], "meters_not_covering_period": rep["uncovered"],
                              "counter_resets": rep["resets"], "source": rep["source"], "method": r.method}
    ce, cc = ComprehensiveEnergy(), CarbonPerTce()
    tce = IndicatorResult(
        key=ce.key, name_zh=ce.name_zh, name_en=ce.name_en,
        value=round(r.tce, 6) if covered else None, unit=ce.unit, period_start=start, period_end=end, target=None,
        status="no_target" if covered else "insufficient_data", completeness=complete,
        inputs={**inputs, "lines": [vars(x) for x in r.lines]},
        method="GB/T 2589-2020: Σ carrier × coefficient; electricity = import + on-site RE - export")
    per = r.co2_per_tce if covered else None
    carbon = IndicatorResult(
        key=cc.key, name_zh=cc.name_zh, name_en=cc.name_en,
        value=None if per is None else round(per, 6), unit=cc.unit, period_start=start, period_end=end,
        target=None, status="no_target" if per is not None else "insufficient_data", completeness=complete,
        inputs={**inputs, "co2_t": r.co2_t, "tce": r.tce, "lines": [vars(x) for x in r.co2_lines]},
        method="CO2 of grid electricity (area factor of the year; residual factor when green power is "
               "claimed) + fuels + bought heat and steam, over comprehensive energy in tce")
    return tce, carbon
