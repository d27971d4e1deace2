"""新能源消纳比例 — the new-energy consumption share of a park, interval by interval.

The definition (docs/indicators/new-energy-share.md has a worked example) follows the
recommendation in the domain reference §4; the policy texts give the targets but no numerator
for a *park*, so this is parkmon's stated method, recorded in every result:

- consumption (denominator) = Σ (import + on-site RE generation − export): what the park used,
  its storage losses included;
- export leaves from on-site RE first; what RE stays on site either feeds loads directly or
  charges storage;
- storage charges from the interval's supply mix pro rata (RE kept on site vs grid import) and
  is a pool: discharge carries the pool's RE fraction, so round-trip losses never count as RE;
- curtailed energy (弃风弃光) was never generated: it enters neither side, it is only reported;
- purchased green power (绿电交易/绿证) counts once, at most up to grid import; green certificates
  the park sold for its own generation take that much RE out of the numerator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from .base import IndicatorResult

MaybeSeries = Sequence[float | None]

METHOD = (
    "share = (RE used on site directly + RE discharged from storage to load + green purchase counted once "
    "- certificates sold) / (import + RE generation - export); export from RE first; storage charged pro "
    "rata to the interval's supply mix and discharged at the pool's RE fraction (losses excluded); "
    "curtailment excluded from both sides; intervals missing an input are left out of both sides"
)


@dataclass
class Flows:
    """Energy per interval in kWh, pooled over the park's enterprises."""

    imp: MaybeSeries
    exp: MaybeSeries
    re_gen: MaybeSeries
    charge: MaybeSeries
    discharge: MaybeSeries
    curtailed: MaybeSeries = field(default_factory=list)


@dataclass
class ShareBreakdown:
    intervals: int = 0
    intervals_used: int = 0
    imp: float = 0.0
    exp: float = 0.0
    re_gen: float = 0.0
    curtailed: float = 0.0
    charge: float = 0.0
    discharge: float = 0.0
    re_direct: float = 0.0
    re_from_storage: float = 0.0
    green_counted: float = 0.0
    certificates_deducted: float = 0.0
    consumption: float = 0.0
    numerator: float = 0.0
    share: float | None = None


def compute_share(flows: Flows, green_purchase_kwh: float = 0.0, certificates_sold_kwh: float = 0.0,
                  initial_pool_kwh: float = 0.0, initial_pool_re_fraction: float = 0.0) -> ShareBreakdown:
    """The share and every number behind it. Pure."""
    n = len(flows.imp)
    for name in ("exp", "re_gen", "charge", "discharge"):
        if len(getattr(flows, name)) != n:
            raise ValueError(f"flows.{name} has {len(getattr(flows, name))} intervals, flows.imp has {n}")
    out = ShareBreakdown(intervals=n)
    pool = initial_pool_kwh
    pool_re = initial_pool_kwh * initial_pool_re_fraction
    for t in range(n):
        vals = (flows.imp[t], flows.exp[t], flows.re_gen[t], flows.charge[t], flows.discharge[t])
        if any(v is None for v in vals):
            continue
        imp, exp, re_gen, charge, discharge = (max(0.0, float(v)) for v in vals)  # type: ignore[arg-type]
        out.intervals_used += 1
        if t < len(flows.curtailed) and flows.curtailed[t] is not None:
            out.curtailed += max(0.0, float(flows.curtailed[t]))  # type: ignore[arg-type]
        exp_re = min(exp, re_gen)
        re_local = re_gen - exp_re
        exp_from_storage = min(exp - exp_re, discharge)
        supply = re_local + imp
        charge_re = min(charge * (re_local / supply if supply > 0 else 0.0), re_local)
        pool += charge
        pool_re += charge_re
        r = pool_re / pool if pool > 0 else 0.0
        d_re = (discharge - exp_from_storage) * r
        pool = max(0.0, pool - discharge)
        pool_re = max(0.0, pool_re - discharge * r)
        out.re_direct += re_local - charge_re
        out.re_from_storage += d_re
        out.imp += imp
        out.exp += exp
        out.re_gen += re_gen
        out.charge += charge
        out.discharge += discharge
        out.consumption += imp + re_gen - exp
    out.green_counted = min(max(0.0, green_purchase_kwh), out.imp)
    re_used = out.re_direct + out.re_from_storage
    out.certificates_deducted = min(max(0.0, certificates_sold_kwh), re_used)
    out.numerator = re_used + out.green_counted - out.certificates_deducted
    out.share = out.numerator / out.consumption if out.consumption > 0 else None
    return out


class NewEnergyShare:
    key = "new_energy_share"
    name_zh = "新能源消纳比例"
    name_en = "New-energy consumption share"
    unit = "ratio"  # 0..1; boards show it as %

    def result(self, b: ShareBreakdown, start: datetime, end: datetime, target: float | None,
               target_source: str = "") -> IndicatorResult:
        if b.share is None:
            status = "insufficient_data"
        elif target is None:
            status = "no_target"
        else:
            status = "met" if b.share >= target else "below_target"
        inputs = {k: round(v, 3) if isinstance(v, float) else v for k, v in vars(b).items() if k != "share"}
        if target_source:
            inputs["target_source"] = target_source
        return IndicatorResult(
            key=self.key, name_zh=self.name_zh, name_en=self.name_en, value=b.share, unit=self.unit,
            period_start=start, period_end=end, target=target, status=status,  # type: ignore[arg-type]
            completeness=b.intervals_used / b.intervals if b.intervals else 0.0,
            inputs=inputs, method=METHOD,
        )
