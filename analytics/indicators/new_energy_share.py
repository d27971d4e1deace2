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
  certificates the park sold for its own generation take that much RE out of the numerator;
- NES-7 an interval missing any input is left out of both sides and lowers completeness.

The value is a fraction 0..1 (unit "ratio"); boards show it ×100 as %.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from analytics.indicators.base import IndicatorResult, status_for

MaybeSeries = Sequence[float | None]

METHOD = (
    "NES-1 consumption = Σ(import + RE generation − export); "
    "NES-2 export from on-site RE first, then storage; "
    "NES-3 storage charged pro rata to the interval's supply mix (RE kept on site : import); "
    "NES-4 storage is a pool, discharge to load at the pool's RE fraction (losses never count); "
    "NES-5 curtailment in neither numerator nor denominator; "
    "NES-6 green purchase counted once, capped at Σimport; certificates sold deducted from RE used; "
    "NES-7 intervals missing an input left out of both sides. "
    "share = (RE direct + RE from storage + green counted − certificates deducted) / consumption"
)

_REQUIRED = ("imp", "exp", "re_gen", "charge", "discharge")


@dataclass
class Flows:
    """Energy per interval in kWh, pooled over the park's enterprises; None where unknown.
    ``curtailed`` is optional (empty = not metered): it is reported, never counted."""

    imp: MaybeSeries
    exp: MaybeSeries
    re_gen: MaybeSeries
    charge: MaybeSeries
    discharge: MaybeSeries
    curtailed: MaybeSeries = field(default_factory=list)


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


class NewEnergyShare:
    key = "new_energy_share"
    name_zh = "新能源消纳比例"
    name_en = "New-energy consumption share"
    unit = "ratio"  # 0..1; boards show it ×100 as %

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
