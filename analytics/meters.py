"""What the indicator feeds read of a park's meters, shared by them: the energy flows interval by interval
(the new-energy share, the activity index, the report's daily chart, the board feed) and what each carrier's
counters advanced over a period (comprehensive energy, PUE, water). Rollups where they are current, the raw
readings after them (decision 0007, :mod:`analytics.rollup_feed`); counters to energy by
:mod:`analytics.counters`. Nothing here checks that the park is registered: the indicator's feed does, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from analytics.counters import Reading, edges, interval_energy
from analytics.rollup_feed import Source, StepStore, plan, point_totals, pooled_steps
from ingest.store.records import registry

MaybeSeries = Sequence[float | None]
HOLD_MS = 5 * 60_000  # as the share's default: a counter reading may be held 5 min past the data at an edge

# flow -> metrics whose counters feed it (summed over the park's enterprises and devices)
FLOW_METRICS: dict[str, tuple[str, ...]] = {
    "imp": ("elec.import.energy",),
    "exp": ("elec.export.energy",),
    "re_gen": ("pv.generation.energy", "wind.generation.energy"),
    "charge": ("storage.charge.energy",),
    "discharge": ("storage.discharge.energy",),
    "curtailed": ("re.curtailed.energy",),
}


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


class _Point(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def metric(self) -> str | None: ...
    @property
    def enterprise(self) -> str: ...
    @property
    def device(self) -> str: ...


class MeterStore(Protocol):
    """The part of :class:`ingest.store.base.Store` the feeds read (a test may wrap it)."""

    def parks(self) -> Sequence[object]: ...
    def points(self, park: str, metrics: Sequence[str] | None = None,
               enterprise: str | None = None) -> Sequence[_Point]: ...
    def readings(self, point_ids: Sequence[int], start_ms: int,
                 end_ms: int) -> dict[int, list[Reading]]: ...


# --- main meters over sub-meters (总分表) ------------------------------------------------------------------
def counted_once(store: MeterStore, park: str, pts: Sequence[_Pt]) -> list[_Pt]:
    """``pts`` less a main meter's points where the registry says it is the sum of sub-meters measuring the
    same metric (``sum_of``, docs/indicators/meter-balance.md): the sub-meters are counted and the main one is
    their sum, so counting both would double the park's import, gas or water. A main meter over sub-meters of
    another metric (a grid import meter over consumption meters) is the one that counts: it stays."""
    balances = registry.balances(cast(Any, store), park)
    if not balances:
        return list(pts)
    metrics = sorted({p.metric for p in pts if p.metric})
    have = {(f"{q.enterprise}/{q.device}", q.metric) for q in store.points(park, metrics=metrics)}
    drop = {(b["meter"], m) for b in balances for m in metrics
            if (b["meter"], m) in have and b["members"] and all((x, m) in have for x in b["members"])}
    return [p for p in pts if (f"{p.enterprise}/{p.device}", p.metric) not in drop]


# --- flows interval by interval ---------------------------------------------------------------------------
def pooled_flows(series_by_metric: dict[str, list[list[Reading]]], edge_ms: list[int],
                 max_hold_ms: int) -> tuple[Flows, list[int]]:
    """Sum each flow's counters interval by interval; an interval is missing if any meter misses it.
    A flow with no meter at all (a park without storage) is zero, not missing."""
    n = len(edge_ms) - 1
    out: dict[str, list[float | None]] = {}
    resets: list[int] = []
    for flow, metrics in FLOW_METRICS.items():
        total: list[float | None] = [0.0] * n
        for metric in metrics:
            for readings in series_by_metric.get(metric, []):
                energy, rep = interval_energy(readings, edge_ms, max_hold_ms)
                resets += rep.resets
                total = [None if a is None or b is None else a + b for a, b in zip(total, energy, strict=True)]
        out[flow] = total
    return Flows(**out), resets


@dataclass(frozen=True)
class ParkFlows:
    points: Sequence[_Point]
    flows: Flows  # one value per interval of [lo, hi)
    resets: int
    lo: int  # the part of the period that has data
    hi: int
    source: str  # which store answered (rollup_feed.Plan.label)


def flow_points(store: MeterStore, park: str, enterprise: str | None = None) -> list[_Point]:
    """The park's (or one enterprise's) flow meters' points, each counted once."""
    wanted = [m for ms in FLOW_METRICS.values() for m in ms]
    return counted_once(store, park, store.points(park, metrics=wanted, enterprise=enterprise))


def park_flows(store: MeterStore, park: str, start_ms: int, end_ms: int, step: int, hold: int,
               source: Source = "auto", enterprise: str | None = None,
               points: Sequence[_Point] | None = None) -> ParkFlows:
    """The park's (or one enterprise's) energy flows interval by interval: rollups where they are
    current, raw readings after (decision 0007). ``points``: :func:`flow_points`, when the caller reads
    many periods (the board feed's hours) and has them already."""
    pts = list(points) if points is not None else flow_points(store, park, enterprise)
    pl = plan(cast(StepStore, store), source, start_ms, end_ms, step)
    flows, n_resets, lo, hi = Flows([], [], [], [], []), 0, start_ms, start_ms
    if pl.level is not None and pl.split_ms > start_ms:
        flows, n_resets, lo, hi = rollup_flows(store, pts, start_ms, pl.split_ms, step, pl.level)
    if pl.split_ms < end_ms:
        tail, tail_resets, t_lo, t_hi = raw_flows(store, pts, pl.split_ms, end_ms, step, hold)
        if t_hi > t_lo:
            flows = _concat(flows, tail) if hi > lo else tail
            lo, hi = (lo if hi > lo else t_lo), t_hi
        n_resets += tail_resets
    return ParkFlows(pts, flows, n_resets, lo, hi, pl.label(end_ms))


def _concat(a: Flows, b: Flows) -> Flows:
    def cat(f: str) -> list[float | None]:
        return list(getattr(a, f)) + list(getattr(b, f))

    return Flows(cat("imp"), cat("exp"), cat("re_gen"), cat("charge"), cat("discharge"), cat("curtailed"))


def raw_flows(store: MeterStore, pts: Sequence[_Point], start_ms: int, end_ms: int, step: int,
              hold: int) -> tuple[Flows, int, int, int]:
    """Flows from the raw readings over the part of [start, end) that has data (lo, hi)."""
    data = store.readings([p.id for p in pts], start_ms - hold, end_ms + hold)
    by_metric: dict[str, list[list[Reading]]] = {}
    for p in pts:
        by_metric.setdefault(p.metric or "", []).append(data.get(p.id, []))
    # the share covers the part of the period that has data; completeness says how much that is
    stamps = [r[0] for series in data.values() for r in (series[:1] + series[-1:])]
    lo = max(start_ms, min(stamps)) if stamps else start_ms
    hi = min(end_ms, max(stamps)) if stamps else start_ms
    if hi <= lo:
        return Flows([], [], [], [], []), 0, lo, hi
    flows, resets = pooled_flows(by_metric, edges(lo, hi, step), hold)
    return flows, len(resets), lo, hi


def rollup_flows(store: MeterStore, pts: Sequence[_Point], start_ms: int, end_ms: int, step: int,
                 level: str) -> tuple[Flows, int, int, int]:
    """Flows pooled in SQL from the rollups (analytics.rollup_feed), trimmed like the raw path to the
    intervals between the first and the last with data."""
    metric_flow = {m: f for f, ms in FLOW_METRICS.items() for m in ms}
    ids: dict[str, list[int]] = {f: [] for f in FLOW_METRICS}
    for p in pts:
        ids[metric_flow[p.metric or ""]].append(p.id)
    series, resets, first, last = pooled_steps(cast(StepStore, store), ids, start_ms, end_ms, step, level)
    if first is None or last is None:
        return Flows([], [], [], [], []), resets, start_ms, start_ms
    cut = {f: v[first:last + 1] for f, v in series.items()}
    return Flows(**cut), resets, start_ms + first * step, min(end_ms, start_ms + (last + 1) * step)


# --- what counters advanced over a period -----------------------------------------------------------------
_Pt = Any  # a stored point (ingest.store.base.PointInfo): id, metric, key, enterprise


def point_amounts(store: MeterStore, pts: Sequence[_Pt], start_ms: int, end_ms: int,
                  source: Source = "auto") -> tuple[dict[int, float | None], int, str]:
    """What each counter advanced over [start, end) (None: it did not cover the period), the resets
    seen, and which data answered (``raw`` or a rollup level)."""
    pl = plan(cast(StepStore, store), source, start_ms, end_ms)
    amounts: dict[int, float | None] = {p.id: 0.0 for p in pts}
    resets = 0
    if pl.level is not None and pl.split_ms > start_ms:
        amounts, resets = point_totals(cast(StepStore, store), [p.id for p in pts], start_ms, pl.split_ms, pl.level)
    if pl.split_ms < end_ms:
        data = store.readings([p.id for p in pts], pl.split_ms - HOLD_MS, end_ms + HOLD_MS)
        for p in pts:
            (tail,), rep = interval_energy(data.get(p.id, []), [pl.split_ms, end_ms], HOLD_MS)
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


def counter_totals(store: MeterStore, park: str, carriers: dict[str, tuple[str, ...]], start_ms: int, end_ms: int,
                   enterprise: str | None = None, source: Source = "auto") -> tuple[dict[str, float], dict[str, Any]]:
    """Per carrier, the sum over its meters of what they counted in [start, end); and how many meters
    fed each carrier, which did not cover the period (left out, never guessed) and how many resets."""
    pts = counted_once(store, park, store.points(park, metrics=[m for ms in carriers.values() for m in ms],
                                                 enterprise=enterprise))
    amounts, resets, used = point_amounts(store, pts, start_ms, end_ms, source)
    return group_totals(pts, amounts, carriers, resets, used)


def totals_by_enterprise(store: MeterStore, park: str, carriers: dict[str, tuple[str, ...]], start_ms: int,
                         end_ms: int, source: Source = "auto") -> dict[str, tuple[dict[str, float], dict[str, Any]]]:
    """:func:`counter_totals` of every enterprise of the park, from one read of the counters."""
    pts = counted_once(store, park, store.points(park, metrics=[m for ms in carriers.values() for m in ms]))
    amounts, _resets, used = point_amounts(store, pts, start_ms, end_ms, source)
    by_ent: dict[str, list[_Pt]] = {}
    for p in pts:
        by_ent.setdefault(str(getattr(p, "enterprise", "")), []).append(p)
    return {e: group_totals(ps, amounts, carriers, 0, used) for e, ps in sorted(by_ent.items())}
