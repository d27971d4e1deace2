"""新能源消纳比例 — the new-energy consumption share of a park, interval by interval.

The definition (docs/indicators/new-energy-share.md has a worked example) follows the
recommendation in the domain reference §4; the policy texts give the targets but no numerator
for a *park*, so this is parkmon's stated method, recorded in every result (rule ids NES-1..7):

- NES-1 consumption (denominator) = Σ (import + on-site RE generation − export): what the park
  used, its storage losses included;
- NES-2 export leaves from on-site RE first, then from storage discharge;
- NES-3 storage charges from the interval's supply mix pro rata (RE kept on site vs grid import);
- NES-4 storage is a pool: discharge to load carries the pool's RE fraction, so round-trip losses
  never count as RE;
- NES-5 curtailed energy (弃风弃光) was never generated: it enters neither side, it is only reported;
- NES-6 purchased green power (绿电交易/绿证) counts once, at most up to grid import; green
  certificates the park sold for its own generation take that much RE out of the numerator. Both come
  from the green-power register for the period (analytics.green_claims, GP-1..5); the per-request
  figures are a what-if added to the register's;
- NES-7 an interval missing any input is left out of both sides and lowers completeness.

The value is a fraction 0..1 (unit "ratio"); boards show it ×100 as %. The feed reads the park's
flows from its meters (:func:`analytics.meters.park_flows`), judges the share against the park's target
of the year (analytics/defaults.yaml) with the gap and the year-end projection, and on request adds the
clean-energy share of all energy in tce (清洁能源消费占比), kept apart from this electricity-only share.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from analytics.factors import Factors, load_factors
from analytics.green_claims import claims
from analytics.indicators.base import Context, Indicator, IndicatorResult, Span, require_park, status_for
from analytics.indicators.comprehensive_energy import clean_energy_share, energy_figures, report_energy
from analytics.meters import Flows as Flows  # the flows read from the meters are this computation's input
from analytics.meters import MeterStore, park_flows
from analytics.rollup_feed import Source
from analytics.targets import ShareSettings, Target, load_share_settings, target_for
from parkmon.common.clock import CHINA

if TYPE_CHECKING:
    from ingest.store.base import Store

METHOD = (
    "NES-1 consumption = Σ(import + RE generation − export); "
    "NES-2 export from on-site RE first, then storage; "
    "NES-3 storage charged pro rata to the interval's supply mix (RE kept on site : import); "
    "NES-4 storage is a pool, discharge to load at the pool's RE fraction (losses never count); "
    "NES-5 curtailment in neither numerator nor denominator; "
    "NES-6 green purchase (the green-power register's, GP-1..5, plus any what-if) counted once, capped at "
    "Σimport; certificates sold deducted from RE used; "
    "NES-7 intervals missing an input left out of both sides. "
    "share = (RE direct + RE from storage + green counted − certificates deducted) / consumption"
)

_REQUIRED = ("imp", "exp", "re_gen", "charge", "discharge")


@dataclass
class ShareBreakdown:
    """Every number behind the share, in kWh, over the intervals used."""

    intervals: int = 0
    intervals_used: int = 0
    intervals_missing: int = 0
    missing_by_input: dict[str, int] = field(default_factory=dict)  # input -> intervals it was missing
    imp: float = 0.0
    exp: float = 0.0
    re_gen: float = 0.0
    curtailed: float = 0.0
    charge: float = 0.0
    discharge: float = 0.0
    re_consumed_direct: float = 0.0
    re_from_storage: float = 0.0
    green_counted: float = 0.0
    certificates_deducted: float = 0.0
    consumption: float = 0.0
    numerator: float = 0.0
    pool_kwh_end: float = 0.0  # energy left in the storage pool after the last interval
    pool_re_kwh_end: float = 0.0
    share: float | None = None


def _check(flows: Flows, green_purchase_kwh: float, certificates_sold_kwh: float,
           initial_pool_kwh: float, initial_pool_re_fraction: float) -> int:
    n = len(flows.imp)
    for name in (*_REQUIRED, "curtailed"):
        got = len(getattr(flows, name))
        if got != n and not (name == "curtailed" and got == 0):
            raise ValueError(f"flows.{name} has {got} intervals, flows.imp has {n}: give one value per interval")
    for name, v in (("green_purchase_kwh", green_purchase_kwh), ("certificates_sold_kwh", certificates_sold_kwh),
                    ("initial_pool_kwh", initial_pool_kwh)):
        if v < 0:
            raise ValueError(f"{name} is {v}; it is an amount of energy and cannot be negative")
    if not 0.0 <= initial_pool_re_fraction <= 1.0:
        raise ValueError(f"initial_pool_re_fraction is {initial_pool_re_fraction}; it must be within 0..1")
    return n


def compute_share(flows: Flows, green_purchase_kwh: float = 0.0, certificates_sold_kwh: float = 0.0,
                  initial_pool_kwh: float = 0.0, initial_pool_re_fraction: float = 0.0) -> ShareBreakdown:
    """The share and every number behind it. Pure.

    ``initial_pool_kwh`` / ``initial_pool_re_fraction``: what the batteries hold at the start of the
    period (default empty: a discharge with no recorded charge counts as non-renewable).
    """
    n = _check(flows, green_purchase_kwh, certificates_sold_kwh, initial_pool_kwh, initial_pool_re_fraction)
    out = ShareBreakdown(intervals=n)
    pool = initial_pool_kwh
    pool_re = initial_pool_kwh * initial_pool_re_fraction
    for t in range(n):
        raw = [getattr(flows, name)[t] for name in _REQUIRED]
        missing = [name for name, v in zip(_REQUIRED, raw, strict=True) if v is None]
        if missing:
            out.intervals_missing += 1
            for name in missing:
                out.missing_by_input[name] = out.missing_by_input.get(name, 0) + 1
            # the battery still moved, but by an unknown amount: the pool keeps its RE fraction
            continue
        # counter deltas are non-negative by construction; clamp float noise only
        imp, exp, re_gen, charge, discharge = (max(0.0, float(v)) for v in raw if v is not None)
        out.intervals_used += 1
        if flows.curtailed and flows.curtailed[t] is not None:
            out.curtailed += max(0.0, float(flows.curtailed[t] or 0.0))
        exp_re = min(exp, re_gen)  # NES-2
        re_local = re_gen - exp_re
        exp_from_storage = min(exp - exp_re, discharge)
        supply = re_local + imp
        charge_re = min(charge * (re_local / supply if supply > 0 else 0.0), re_local)  # NES-3
        pool += charge
        pool_re += charge_re
        r = pool_re / pool if pool > 0 else 0.0  # NES-4
        out.re_from_storage += (discharge - exp_from_storage) * r
        pool = max(0.0, pool - discharge)
        pool_re = min(pool, max(0.0, pool_re - discharge * r))
        out.re_consumed_direct += re_local - charge_re
        out.imp += imp
        out.exp += exp
        out.re_gen += re_gen
        out.charge += charge
        out.discharge += discharge
        out.consumption += imp + re_gen - exp  # NES-1
    out.pool_kwh_end, out.pool_re_kwh_end = pool, pool_re
    out.green_counted = float(min(green_purchase_kwh, out.imp))  # NES-6
    re_used = out.re_consumed_direct + out.re_from_storage
    out.certificates_deducted = float(min(certificates_sold_kwh, re_used))
    out.numerator = re_used + out.green_counted - out.certificates_deducted
    # below a watt-hour the period had no consumption to speak of: no share rather than noise
    out.share = min(1.0, max(0.0, out.numerator / out.consumption)) if out.consumption > 1e-3 else None
    return out


class ShareParams(Span):
    enterprise: Annotated[str | None, Field(description="one enterprise's own meters, judged against its park's "
                                                        "target (default: the whole park)")] = None
    interval_s: Annotated[int | None, Field(ge=1, le=86400, description="attribution interval in seconds "
                                                                        "(default: the settings', an hour)")] = None
    green_purchase_kwh: Annotated[float, Field(ge=0, description="what-if: green power bought (绿电交易/绿证) "
                                                                 "beyond the register's, kWh")] = 0.0
    certificates_sold_kwh: Annotated[float, Field(ge=0, description="what-if: certificates sold beyond the "
                                                                    "register's, kWh")] = 0.0
    source: Annotated[Source, Field(description="auto: the rollups where current, then the readings; raw; rollup")] \
        = "auto"
    clean_share: Annotated[bool, Field(description="also the clean-energy share of all energy in tce "
                                                   "(清洁能源消费占比)")] = False

    def is_park_default(self) -> bool:
        """The park's own share as its board shows it: no enterprise, no what-if, the default interval and
        source (what one request computes once and every indicator reading it shares)."""
        return (self.enterprise is None and self.interval_s is None and self.green_purchase_kwh == 0.0
                and self.certificates_sold_kwh == 0.0 and self.source == "auto")


class NewEnergyShare(Indicator[ShareParams]):
    key = "new_energy_share"
    name_zh = "新能源消纳比例"
    name_en = "New-energy consumption share"
    unit = "ratio"  # 0..1; boards show it ×100 as %
    params = ShareParams
    cli = "share"
    in_overview = True

    def result(self, b: ShareBreakdown, start: datetime, end: datetime, target: float | None,
               target_source: str = "") -> IndicatorResult:
        """The breakdown as an auditable result against ``target`` (a fraction, None if the park has none)."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("period start and end need a timezone (UTC); naive datetimes are ambiguous")
        inputs: dict[str, Any] = {k: round(v, 3) if isinstance(v, float) else v
                                  for k, v in vars(b).items() if k != "share"}
        inputs["missing_by_input"] = dict(b.missing_by_input)
        if target_source:
            inputs["target_source"] = target_source
        return IndicatorResult(
            key=self.key, name_zh=self.name_zh, name_en=self.name_en, value=b.share, unit=self.unit,
            period_start=start, period_end=end, target=target, status=status_for(b.share, target),
            completeness=b.intervals_used / b.intervals if b.intervals else 0.0,
            inputs=inputs, method=METHOD,
        )

    def compute(self, flows: Flows, start: datetime, end: datetime, target: float | None = None,
                target_source: str = "", green_purchase_kwh: float = 0.0, certificates_sold_kwh: float = 0.0,
                initial_pool_kwh: float = 0.0, initial_pool_re_fraction: float = 0.0) -> IndicatorResult:
        """Flows in, result out: :func:`compute_share` then :meth:`result`."""
        b = compute_share(flows, green_purchase_kwh, certificates_sold_kwh, initial_pool_kwh,
                          initial_pool_re_fraction)
        return self.result(b, start, end, target, target_source)

    # --- the seam -------------------------------------------------------------------------------------------
    def feed(self, store: Store, park: str, p: ShareParams, ctx: Context) -> IndicatorResult:
        info = ctx.park(store, park)
        if p.is_park_default():  # computed once per request (zc_clean_energy reads it too)
            result = park_share_once(store, info, p.start_ms, p.end_ms, ctx)
        else:
            result = share_of(store, info, p.start_ms, p.end_ms, ctx.share_settings,
                              p.interval_s * 1000 if p.interval_s else None, p.green_purchase_kwh,
                              p.certificates_sold_kwh, p.source, p.enterprise)
        if p.clean_share:  # the park is checked: the energy is read without a second check
            add_clean_share(result, lambda: energy_figures(store, park, p.start_ms, p.end_ms, p.enterprise,
                                                           ctx.factors)[0], ctx.factors)
        return result

    def for_report(self, store: Store, park: str, start: datetime, end: datetime, period: str,
                   ctx: Context) -> IndicatorResult | None:
        result = self.feed(store, park, ShareParams(start=start, end=end), ctx)
        # over the report's own comprehensive energy (one read of the counters for the whole report)
        add_clean_share(result, lambda: report_energy(store, park, start, end, ctx)[0], ctx.factors)
        return result

    def report_section(self, result: IndicatorResult | None, report: dict[str, Any]) -> None:
        if result is None:
            return
        report[self.key] = result.to_json()
        c = result.inputs.get("clean_energy_share_tce") or {}
        report["clean_energy_share_tce"] = clean_energy_share(c.get("re_used_kwh"), c.get("comprehensive_energy_tce"),
                                                              c.get("kgce_per_kwh", 0.0))

    def summary_rows(self, report: dict[str, Any]) -> list[list[Any]] | None:
        from analytics.report.rows import STATUS_ZH, pct

        share = report[self.key]
        return [["新能源消纳比例 New-energy share", pct(share["value"]), pct(share["target"]),
                 STATUS_ZH[share["status"]], pct(share["completeness"])],
                ["与目标差距 Gap to target", pct(share["inputs"].get("gap")), "", "", ""],
                ["绿电绿证计入 Green power counted (kWh)", share["inputs"].get("green_counted"), "", "", ""],
                ["清洁能源消费占比 Clean-energy share (tce)", pct(report["clean_energy_share_tce"]), "", "", ""]]

    def overview_fields(self, result: IndicatorResult) -> dict[str, Any]:
        return {self.key: {"value": result.value, "target": result.target, "status": result.status,
                           "gap": result.inputs.get("gap"), "completeness": result.completeness}}

    def overview_region(self, results: list[IndicatorResult]) -> dict[str, Any]:
        return {self.key: region_share([{"value": r.value, "inputs": r.inputs} for r in results]),
                "parks_meeting_share_target": sum(r.status == "met" for r in results)}


CLEAN_METHOD = "renewable electricity used (this share's numerator) × 当量值 / comprehensive energy (tce)"


def add_clean_share(result: IndicatorResult, tce: Callable[[], IndicatorResult], factors: Factors | None) -> None:
    """清洁能源消费占比 into ``result.inputs``: this share's renewable electricity over all energy in tce."""
    k = (factors or load_factors()).tce.electricity_equivalent
    try:
        total = tce()
    except KeyError as exc:
        # no grid emission factor for the period's year (published from 2021): the share itself needs none,
        # only this side figure goes without
        result.inputs["clean_energy_share_tce"] = {"value": None, "why": str(exc.args[0]), "method": CLEAN_METHOD}
        return
    clean = clean_energy_share(result.inputs.get("numerator"), total.value, k.value)
    result.inputs["clean_energy_share_tce"] = {
        "value": None if clean is None else round(clean, 6), "re_used_kwh": result.inputs.get("numerator"),
        "comprehensive_energy_tce": total.value, "kgce_per_kwh": k.value, "method": CLEAN_METHOD}


def compute_park_share(store: MeterStore, park: str, start_ms: int, end_ms: int,
                       settings: ShareSettings | None = None, interval_ms: int | None = None,
                       green_purchase_kwh: float = 0.0, certificates_sold_kwh: float = 0.0,
                       source: Source = "auto", enterprise: str | None = None) -> IndicatorResult:
    """The share of a park (or of one enterprise's own meters, judged against its park's target);
    :class:`~analytics.indicators.base.UnknownPark` when the park is not registered."""
    return share_of(store, require_park(store, park), start_ms, end_ms, settings, interval_ms, green_purchase_kwh,
                    certificates_sold_kwh, source, enterprise)


def park_share_once(store: MeterStore, info: Any, start_ms: int, end_ms: int, ctx: Context) -> IndicatorResult:
    """The park's share over [start, end) with the default settings, computed once per request (``ctx``): the
    report's share and the zero-carbon clean-energy share read the same flows."""
    return ctx.once(("park_share", str(info.key), start_ms, end_ms),
                    lambda: share_of(store, info, start_ms, end_ms, ctx.share_settings))


def share_of(store: MeterStore, info: Any, start_ms: int, end_ms: int, settings: ShareSettings | None = None,
             interval_ms: int | None = None, green_purchase_kwh: float = 0.0, certificates_sold_kwh: float = 0.0,
             source: Source = "auto", enterprise: str | None = None) -> IndicatorResult:
    """:func:`compute_park_share` of a park already checked (``info``: its ParkInfo)."""
    s = settings or load_share_settings()
    step = interval_ms or s.interval_minutes * 60_000
    hold = s.max_hold_minutes * 60_000
    park = str(info.key)
    pf = park_flows(store, park, start_ms, end_ms, step, hold, source, enterprise)
    pts, flows, n_resets, lo, hi = pf.points, pf.flows, pf.resets, pf.lo, pf.hi
    # the green-power register's part of the period; the per-request figures are a what-if on top of it
    reg = claims(store, park, start_ms, end_ms, enterprise)
    b = compute_share(flows, reg.green_kwh + green_purchase_kwh, reg.sold_kwh + certificates_sold_kwh)
    start = datetime.fromtimestamp(start_ms / 1000, tz=UTC)
    end = datetime.fromtimestamp(end_ms / 1000, tz=UTC)
    park_class = str(getattr(info, "park_class", "none"))
    try:
        target = target_for(park_class, start.astimezone(CHINA).year, s)
    except ValueError:  # a class no target table knows: report the share, say why there is no target
        target = None
    result = NewEnergyShare().result(b, start, end, target.value if target else None,
                                     target.source if target else "")
    covered = max(0, hi - lo) / (end_ms - start_ms) if end_ms > start_ms else 0.0
    result = replace(result, completeness=result.completeness * covered)
    result.inputs.update({"park": park, "enterprise": enterprise, "park_class": park_class, "interval_ms": step,
                          "meters": len(pts), "counter_resets": n_resets, "data_from_ms": lo if hi > lo else None,
                          "data_to_ms": hi if hi > lo else None, "source": pf.source,
                          "green_register": reg.inputs(),
                          "what_if": {"green_purchase_kwh": green_purchase_kwh,
                                      "certificates_sold_kwh": certificates_sold_kwh,
                                      "adds_to": "the green-power register's figures for the period"}})
    result.inputs.update(_against_target(result.value, target, start, end))
    return result


def region_share(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The share of a region from its parks' shares (each ``{"value": …, "inputs": {…}}``, an
    IndicatorResult's JSON): all their renewable energy used over all their consumption (a ratio of sums,
    so a park weighs as much as it consumes), with the parts it was made of."""
    have = [r for r in results if r["value"] is not None]
    num = sum(float(r["inputs"].get("numerator") or 0.0) for r in have)
    den = sum(float(r["inputs"].get("consumption") or 0.0) for r in have)
    return {"value": num / den if den > 1e-3 else None, "numerator_kwh": round(num, 3),
            "consumption_kwh": round(den, 3), "parks_with_data": len(have),
            "parks_without_data": [r["inputs"].get("park") for r in results if r["value"] is None],
            "method": "Σ parks' RE used (NES numerator) / Σ parks' consumption (NES-1), parks with data"}


def _against_target(value: float | None, target: Target | None, start: datetime, end: datetime) -> dict[str, Any]:
    """The trajectory the target sits on, the gap, and - for a period running from 1 January - the
    year-end projection: the year so far carried to year end (a ratio of sums, so the months still to
    come are assumed to look like those behind; a park with a sunny summer ahead will do better)."""
    local_start, local_end = start.astimezone(CHINA), end.astimezone(CHINA)
    ytd = (local_start.month, local_start.day, local_start.hour, local_start.minute) == (1, 1, 0, 0) and (
        local_end.year == local_start.year or (local_end.year == local_start.year + 1 and local_end.month == 1
                                               and local_end.day == 1 and local_end.hour == 0))
    out: dict[str, Any] = {
        "target_basis": target.basis if target else None,
        "gap": None if value is None or target is None else round(value - target.value, 6),
        "year_end_projection": value if ytd else None,
        "projection_method": ("the year so far carried to year end (ratio of sums)" if ytd
                              else "only for a period starting on 1 January (period=year)"),
    }
    if ytd and value is not None and target is not None:
        out["projected_status"] = status_for(value, target.value)
    return out
