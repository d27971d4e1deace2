"""Totaliser readings -> energy per interval. Pure: numbers in, numbers out.

A meter's counter is read every few seconds; energy over an interval is the counter at its end
minus the counter at its start, each edge value interpolated linearly between the readings
around it. An edge outside the readings is held from the nearest reading only within
``max_hold_ms``; beyond that the interval is missing (None) — energy is never invented.
A counter that goes backwards was reset or replaced: that step contributes the new reading
(counted up from zero) and the reset is reported.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

from parkmon import quality

Reading = tuple[int, float | None, int]  # (ts_ms, value, quality)


@dataclass
class CounterReport:
    readings_used: int = 0
    resets: list[int] = field(default_factory=list)  # times (ms) of detected resets
    missing_intervals: int = 0


def usable(readings: Sequence[Reading]) -> tuple[list[int], list[float]]:
    """Keep readings with a value whose quality is not bad, sorted by time, one per timestamp."""
    pts = sorted((ts, v) for ts, v, q in readings
                 if v is not None and quality.quality_class(q) != quality.QualityClass.BAD)
    ts_out: list[int] = []
    vals: list[float] = []
    for ts, v in pts:
        if ts_out and ts_out[-1] == ts:
            continue
        ts_out.append(ts)
        vals.append(v)
    return ts_out, vals


def _unwrap(ts: list[int], vals: list[float], report: CounterReport) -> list[float]:
    """Make the counter monotonic: after a reset, continue from the value before it."""
    out: list[float] = []
    base = 0.0
    for i, v in enumerate(vals):
        if i and v < vals[i - 1]:
            base = out[-1]  # the new meter counts from zero on top of what the old one had
            report.resets.append(ts[i])
        out.append(base + v)
    return out


def _at(ts: list[int], acc: list[float], t: int, max_hold_ms: int) -> float | None:
    i = bisect_right(ts, t)
    if i == 0:
        return acc[0] if ts and ts[0] - t <= max_hold_ms else None
    if i == len(ts):
        return acc[-1] if t - ts[-1] <= max_hold_ms else None
    t0, t1 = ts[i - 1], ts[i]
    if t0 == t:
        return acc[i - 1]
    return acc[i - 1] + (acc[i] - acc[i - 1]) * (t - t0) / (t1 - t0)


def interval_energy(readings: Sequence[Reading], edges_ms: Sequence[int],
                    max_hold_ms: int = 60_000) -> tuple[list[float | None], CounterReport]:
    """Energy (in the counter's unit) in each interval between consecutive ``edges_ms``."""
    report = CounterReport()
    ts, vals = usable(readings)
    report.readings_used = len(ts)
    n = max(0, len(edges_ms) - 1)
    if not ts:
        report.missing_intervals = n
        return [None] * n, report
    acc = _unwrap(ts, vals, report)
    at_edges = [_at(ts, acc, e, max_hold_ms) for e in edges_ms]
    out: list[float | None] = []
    for a, b in itertools.pairwise(at_edges):
        if a is None or b is None:
            out.append(None)
            report.missing_intervals += 1
        else:
            out.append(b - a)
    return out, report


def edges(start_ms: int, end_ms: int, step_ms: int) -> list[int]:
    """Interval edges from start to end; the last interval may be shorter."""
    out = list(range(start_ms, end_ms, step_ms))
    out.append(end_ms)
    return out
