"""Feed the new-energy share from stored readings: counters -> interval energy -> pooled flows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from analytics.counters import Reading, edges, interval_energy
from analytics.indicators.base import IndicatorResult
from analytics.indicators.new_energy_share import Flows, NewEnergyShare, compute_share
from analytics.rollup_feed import Source, StepStore, plan, pooled_steps
from analytics.targets import ShareSettings, Target, load_share_settings, target_for
from parkmon.common.clock import CHINA

# flow -> metrics whose counters feed it (summed over the park's enterprises and devices)
FLOW_METRICS: dict[str, tuple[str, ...]] = {
    "imp": ("elec.import.energy",),
    "exp": ("elec.export.energy",),
    "re_gen": ("pv.generation.energy", "wind.generation.energy"),
    "charge": ("storage.charge.energy",),
    "discharge": ("storage.discharge.energy",),
    "curtailed": ("re.curtailed.energy",),
}


class _Point(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def metric(self) -> str | None: ...


class ShareStore(Protocol):
    def parks(self) -> Sequence[object]: ...
    def points(self, park: str, metrics: Sequence[str] | None = None,
               enterprise: str | None = None) -> Sequence[_Point]: ...
    def readings(self, point_ids: Sequence[int], start_ms: int,
                 end_ms: int) -> dict[int, list[Reading]]: ...


def require_park(store: ShareStore, park: str) -> object:
    """The registered park, or LookupError (the API answers 404 with it)."""
    info = next((p for p in store.parks() if getattr(p, "key", None) == park), None)
    if info is None:
        raise LookupError(f"park {park!r} is not registered")
    return info


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


def compute_park_share(store: ShareStore, park: str, start_ms: int, end_ms: int,
                       settings: ShareSettings | None = None, interval_ms: int | None = None,
                       green_purchase_kwh: float = 0.0, certificates_sold_kwh: float = 0.0,
                       source: Source = "auto", enterprise: str | None = None) -> IndicatorResult:
    """The share of a park (or of one enterprise's own meters, judged against its park's target)."""
    s = settings or load_share_settings()
    step = interval_ms or s.interval_minutes * 60_000
    hold = s.max_hold_minutes * 60_000
    info = require_park(store, park)
    pf = park_flows(store, park, start_ms, end_ms, step, hold, source, enterprise)
    pts, flows, n_resets, lo, hi = pf.points, pf.flows, pf.resets, pf.lo, pf.hi
    b = compute_share(flows, green_purchase_kwh, certificates_sold_kwh)
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
                          "data_to_ms": hi if hi > lo else None, "source": pf.source})
    result.inputs.update(_against_target(result.value, target, start, end))
    return result


@dataclass(frozen=True)
class ParkFlows:
    points: Sequence[_Point]
    flows: Flows  # one value per interval of [lo, hi)
    resets: int
    lo: int  # the part of the period that has data
    hi: int
    source: str  # which store answered (rollup_feed.Plan.label)


def park_flows(store: ShareStore, park: str, start_ms: int, end_ms: int, step: int, hold: int,
               source: Source = "auto", enterprise: str | None = None) -> ParkFlows:
    """The park's (or one enterprise's) energy flows interval by interval: rollups where they are
    current, raw readings after (decision 0007)."""
    wanted = [m for ms in FLOW_METRICS.values() for m in ms]
    pts = store.points(park, metrics=wanted, enterprise=enterprise)
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


def raw_flows(store: ShareStore, pts: Sequence[_Point], start_ms: int, end_ms: int, step: int,
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


def rollup_flows(store: ShareStore, pts: Sequence[_Point], start_ms: int, end_ms: int, step: int,
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
        out["projected_status"] = "met" if value >= target.value - 1e-9 else "below_target"
    return out
