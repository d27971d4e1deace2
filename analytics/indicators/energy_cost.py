"""分时电费 — electricity cost under time-of-use tariffs (分时电价), per enterprise and for the park, by band
(尖峰 / 高峰 / 平段 / 低谷), for any period. The pure part is :func:`price` (interval energy and tariff tables
in, yuan out); the feed reads the energy. Method, sources and the file format: docs/indicators/energy-cost.md.

Each interval's grid import (the enterprise's ``elec.import.energy`` counters) is priced at the band and
price of the tariff in force that day (analytics/tariffs.yaml, a park's own file first:
:func:`analytics.tariffs.load_tariffs`). Intervals are an hour, or a quarter hour where a band boundary
or a demand charge needs it. An import meter registered as the sum of other import meters (``sum_of``,
meter balance) is left out: its sub-meters carry its energy, counted once. The demand charge (yuan per kW
of the month's largest quarter-hour demand) is charged for whole calendar months inside the period, at
the table in force on the month's first day; a part month is listed, not charged (a bill has whole months).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, cast

from pydantic import Field

from analytics.counters import edges, interval_energy
from analytics.indicators.base import Context, Indicator, IndicatorResult, Span
from analytics.meters import HOLD_MS
from analytics.rollup_feed import StepStore, plan, pooled_steps
from analytics.tariffs import BAND_ZH, BANDS, SLOT_MIN, Band, TariffSettings, TariffTable, load_tariffs
from ingest.store.records import registry
from parkmon.common.clock import CHINA, CHINA_OFFSET_MS, DAY_MS, MINUTE_MS

if TYPE_CHECKING:
    from ingest.store.base import Store

IMPORT = "elec.import.energy"
QUARTER_MS = SLOT_MIN * MINUTE_MS
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
MAX_DAYS = 366  # the longest period priced in one request: a leap year


@dataclass
class Cost:
    """One enterprise's (or the park's) cost over the period, by band."""

    kwh: dict[str, float] = field(default_factory=lambda: dict.fromkeys(BANDS, 0.0))
    yuan: dict[str, float] = field(default_factory=lambda: dict.fromkeys(BANDS, 0.0))
    demand: list[dict[str, Any]] = field(default_factory=list)  # per whole month: kW, yuan/kW, yuan
    intervals: int = 0
    known: int = 0  # intervals with energy and a tariff
    untariffed_kwh: float = 0.0  # energy on days no table covers: not priced, never guessed
    tables: set[str] = field(default_factory=set)

    @property
    def energy_yuan(self) -> float:
        return sum(self.yuan.values())

    @property
    def total_yuan(self) -> float:
        return self.energy_yuan + sum(float(d["yuan"]) for d in self.demand)

    def add(self, other: Cost) -> None:
        for b in BANDS:
            self.kwh[b] += other.kwh[b]
            self.yuan[b] += other.yuan[b]
        self.demand += other.demand
        self.intervals += other.intervals
        self.known += other.known
        self.untariffed_kwh += other.untariffed_kwh
        self.tables |= other.tables

    def to_json(self) -> dict[str, Any]:
        return {"total_yuan": round(self.total_yuan, 2), "energy_yuan": round(self.energy_yuan, 2),
                "demand_yuan": round(sum(d["yuan"] for d in self.demand), 2),
                "kwh": round(sum(self.kwh.values()), 3), "untariffed_kwh": round(self.untariffed_kwh, 3),
                "by_band": [{"band": b, "name_zh": BAND_ZH[b], "kwh": round(self.kwh[b], 3),
                             "yuan": round(self.yuan[b], 2),
                             "average_price": round(self.yuan[b] / self.kwh[b], 4) if self.kwh[b] else None}
                            for b in BANDS],
                "demand": self.demand, "completeness": self.known / self.intervals if self.intervals else 0.0,
                "tariffs": sorted(self.tables)}


def step_ms(tariffs: TariffSettings) -> int:
    """An hour when every band boundary is on the hour and no table charges demand; else a quarter hour."""
    days = [s.slots() for t in tariffs.tables for s in t.seasons]
    fine = any(t.demand_charge is not None for t in tariffs.tables) or any(
        len(set(day[h * 4:h * 4 + 4])) > 1 for day in days for h in range(24))
    return QUARTER_MS if fine else 4 * QUARTER_MS


def price(energy: Sequence[float | None], start_ms: int, step: int, end_ms: int, tariffs: TariffSettings, park: str,
          enterprise: str | None) -> Cost:
    """The cost of ``energy`` (kWh per interval of ``step`` from ``start_ms``; None: unknown)."""
    out = Cost(intervals=len(energy))
    bands: dict[tuple[int, int], list[tuple[Band, float]]] = {}
    days: dict[int, tuple[date, TariffTable | None]] = {}  # China day number -> (its date, its table)
    peak: dict[tuple[int, int], float] = {}  # (year, month) -> the largest interval's kWh
    for i, kwh in enumerate(energy):
        if kwh is None:
            continue
        # China time is UTC+8 all year (no daylight saving): the day and the minute of the day by arithmetic,
        # the table once per day (a year of 200 enterprises at 15 minutes is 7 million intervals)
        local = start_ms + i * step + CHINA_OFFSET_MS
        n_day, minute = divmod(local, DAY_MS)
        if n_day not in days:
            d = date.fromordinal(EPOCH_ORDINAL + n_day)
            days[n_day] = (d, tariffs.table_for(park, enterprise, d))
        d, table = days[n_day]
        if table is None:
            out.untariffed_kwh += kwh
            continue
        day = bands.get((id(table), d.month)) or bands.setdefault((id(table), d.month), table.day_bands(d.month))
        band, yuan_per_kwh = day[minute // MINUTE_MS // SLOT_MIN]
        out.kwh[band] += kwh
        out.yuan[band] += kwh * yuan_per_kwh
        out.known += 1
        out.tables.add(table.id)
        peak[(d.year, d.month)] = max(peak.get((d.year, d.month), 0.0), kwh)
    for (y, m), kwh in sorted(peak.items()):
        first = datetime(y, m, 1, tzinfo=CHINA)
        nxt = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=CHINA)
        whole = start_ms <= first.timestamp() * 1000 and nxt.timestamp() * 1000 <= end_ms
        table = tariffs.table_for(park, enterprise, first.date())
        if table is None or table.demand_charge is None:
            continue
        kw = kwh / (step / 3_600_000)  # the interval's average power
        out.demand.append({"month": f"{y}-{m:02d}", "max_kw": round(kw, 3), "yuan_per_kw": table.demand_charge,
                           "yuan": round(kw * table.demand_charge, 2) if whole else 0.0,
                           "charged": whole, "tariff": table.id})
    return out


# --- the feed ---------------------------------------------------------------------------------------------
def import_series(store: Store, park: str, start_ms: int, end_ms: int, step: int,
                  enterprise: str | None = None) -> tuple[dict[str, list[float | None]], list[str], str]:
    """Per enterprise, grid import (kWh) per interval from ``start_ms``: rollups where current, readings
    after and where the rollups have no step. And the meters left out as sums of others, and which data
    answered (``1m``, ``1h+raw``, ``raw``; ``+raw fill``: readings filled intervals the rollups left empty)."""
    pts = store.points(park, metrics=[IMPORT])
    has_import = {f"{p.enterprise}/{p.device}" for p in pts}
    # a main meter whose sub-meters all count import too: they are billed, it is their sum (a main meter over
    # sub-meters of consumption, elec.load.energy, stays: it is the one that counts the import)
    sums = {b["meter"] for b in registry.balances(store, park) if set(b["members"]) <= has_import}
    ids: dict[str, list[int]] = {}
    left_out = []
    for p in pts:
        if enterprise is not None and p.enterprise != enterprise:
            continue
        if f"{p.enterprise}/{p.device}" in sums:
            left_out.append(f"{p.enterprise}/{p.device}")
        else:
            ids.setdefault(p.enterprise, []).append(p.id)
    n = -(-(end_ms - start_ms) // step)
    out: dict[str, list[float | None]] = {e: [None] * n for e in ids}
    pl = plan(cast(StepStore, store), "auto", start_ms, end_ms, step)
    k_raw, filled = 0, False  # the first interval the rollups do not answer (the one holding the split, if any)
    if pl.level is not None and pl.split_ms > start_ms:
        series, _resets, _first, _last = pooled_steps(cast(StepStore, store), ids, start_ms, pl.split_ms, step,
                                                      pl.level)
        for e, values in series.items():
            out[e][:len(values)] = values
        k_raw = (pl.split_ms - start_ms) // step
    # the raw readings answer the rest on the same interval grid: after the split, and intervals the rollups
    # leave without a step (readings sparser than the level's buckets: a meter export every 15 min)
    for e, pids in ids.items():
        for a, b in _runs([k for k in range(n) if k >= k_raw or out[e][k] is None]):
            lo, hi = start_ms + a * step, min(end_ms, start_ms + b * step)
            filled = filled or a < k_raw
            data = store.readings(pids, lo - HOLD_MS, hi + HOLD_MS)
            total: list[float | None] = [0.0] * (b - a)
            for pid in pids:
                energy, _rep = interval_energy(data.get(pid, []), edges(lo, hi, step), HOLD_MS)
                total = [None if x is None or y is None else x + y for x, y in zip(total, energy, strict=True)]
            out[e][a:b] = total
    return out, sorted(set(left_out)), pl.label(end_ms) + (" +raw fill" if filled else "")


def _runs(ks: Sequence[int]) -> list[tuple[int, int]]:
    """Consecutive indices as half-open runs: [0, 1, 2, 5] -> [(0, 3), (5, 6)]."""
    out: list[tuple[int, int]] = []
    for k in ks:
        if out and out[-1][1] == k:
            out[-1] = (out[-1][0], k + 1)
        else:
            out.append((k, k + 1))
    return out


class CostParams(Span):
    enterprise: Annotated[str | None, Field(description="one enterprise (default: the whole park)")] = None


class EnergyCost(Indicator[CostParams]):
    key = "energy_cost"
    name_zh = "分时电费"
    name_en = "Electricity cost under time-of-use tariffs"
    unit = "元"
    better = "lower"
    params = CostParams

    def feed(self, store: Store, park: str, p: CostParams, ctx: Context) -> IndicatorResult:
        ctx.park(store, park)
        tariffs = ctx.once(("tariffs",), load_tariffs)
        step = step_ms(tariffs)
        if p.start_ms % step:  # bands change on these edges (China time is whole hours from UTC)
            what = "a quarter hour" if step == QUARTER_MS else "an hour"
            raise ValueError(f"start {p.start.isoformat()} is not on {what}, where the tariff bands change; "
                             "start the period there")
        if p.end_ms - p.start_ms > MAX_DAYS * DAY_MS:  # intervals x enterprises: a year is a yearly report's
            raise ValueError(f"the period {p.start.isoformat()} … {p.end.isoformat()} is longer than {MAX_DAYS} days; "
                             "ask for a year at most")
        s_ms = p.start_ms
        series, left_out, source = import_series(store, park, s_ms, p.end_ms, step, p.enterprise)
        park_cost, per_ent = Cost(), []
        for ent, energy in sorted(series.items()):
            c = price(energy, s_ms, step, p.end_ms, tariffs, park, ent)
            park_cost.add(c)
            per_ent.append({"enterprise": ent, **c.to_json()})
        used = [t for t in tariffs.tables if t.id in park_cost.tables]
        whole = park_cost.to_json()
        value = whole["total_yuan"] if park_cost.known else None
        return self.make_result(
            value, p.start, p.end, completeness=whole["completeness"],
            inputs={"park": park, "enterprise": p.enterprise, **whole, "enterprises": per_ent,
                    "interval_minutes": step // MINUTE_MS, "sum_meters_left_out": left_out, "source": source,
                    "tariff_tables": [t.describe() for t in used]},
            method="grid import per interval (elec.import.energy) x the band price of the tariff in force that day, "
                   "summed by band; + demand charge x the month's largest quarter-hour demand for whole months; "
                   "sub-meters counted, meters that are their sum left out")

    def report_section(self, result: IndicatorResult | None, report: dict[str, Any]) -> None:
        report[self.key] = None if result is None else result.to_json()

