"""Totaliser readings -> energy per interval. Pure: numbers in, numbers out.

A meter's counter is read every few seconds; the energy of an interval is the counter at its end
minus the counter at its start, each edge value interpolated linearly between the readings
around it. Rules (docs/indicators/new-energy-share.md, "From meter readings to energy"):

- usable readings have a value and quality good or uncertain; bad ones are skipped; order and
  duplicate timestamps do not matter (the first value of a timestamp, after sorting, is kept);
- an edge before the first or after the last reading holds that reading only within
  ``max_hold_ms``; further out the interval is missing (None): energy is never invented;
- inside the data, an edge in a gap between readings longer than ``max_gap_ms`` (when given)
  is treated like an edge outside the data on both sides of the gap;
- a counter that goes backwards by more than ``jitter`` (relative) was reset or replaced: that
  step contributes the new reading, counted up from zero, and the reset time is reported. The
  energy between the old meter's last reading and its removal was never read and is not guessed.
  A smaller backward step is read noise: the counter is held, not reset. A single reading below
  its predecessor whose successor comes straight back up is a misread and is skipped (counted as
  a reset it would add the whole counter again as energy).
"""

from __future__ import annotations

import itertools
import operator
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

from parkmon.common import quality

Reading = tuple[int, float | None, int]  # (ts_ms, value, quality)

_FIRST_BAD = quality.make(quality.QualityClass.BAD)  # 128
_SPACING_SAMPLE = 1001  # readings spacing is estimated from at most this many steps


@dataclass
class CounterReport:
    readings_used: int = 0
    readings_skipped: int = 0  # bad quality or no value
    resets: list[int] = field(default_factory=list)  # times (ms) of the first reading after each reset
    glitches: int = 0  # single misreads far below both neighbours, skipped
    missing_intervals: int = 0  # intervals with no counter value at one edge or both
    max_hold_ms: int = 0  # the hold actually applied (given or 2 x the typical reading spacing)


def usable(readings: Sequence[Reading]) -> tuple[list[int], list[float]]:
    """Readings with a value whose quality is good or uncertain, sorted by time, one per timestamp."""
    # quality class sits in the top two bits of the byte: good (00) and uncertain (01) are below 128
    kept = [r for r in readings if r[1] is not None and r[2] < _FIRST_BAD]
    ts = [r[0] for r in kept]
    if all(map(operator.lt, ts, ts[1:])):  # the common case: already in order, no duplicates
        return ts, [r[1] for r in kept if r[1] is not None]
    kept.sort(key=operator.itemgetter(0))
    ts_out: list[int] = []
    vals: list[float] = []
    for t, v, _ in kept:
        if v is None or (ts_out and ts_out[-1] == t):
            continue
        ts_out.append(t)
        vals.append(v)
    return ts_out, vals


def typical_spacing_ms(ts: Sequence[int]) -> int:
    """Median step between readings, from an evenly spread sample of steps (cheap on a year of data)."""
    if len(ts) < 2:
        return 0
    stride = max(1, (len(ts) - 1) // _SPACING_SAMPLE)
    steps = sorted(ts[i + 1] - ts[i] for i in range(0, len(ts) - 1, stride))
    return steps[len(steps) // 2]


def _drop_glitches(ts: list[int], vals: list[float], jitter: float,
                   report: CounterReport) -> tuple[list[int], list[float]]:
    """A single reading far below both neighbours (the counter comes straight back) is a misread,
    not a reset: counted as a reset it would add the whole counter again as energy."""
    drops = [i for i, (a, b) in enumerate(itertools.pairwise(vals), 1) if b < a]
    glitches: set[int] = set()
    for i in drops:
        prev, cur = vals[i - 1], vals[i]
        limit = prev - jitter * max(abs(prev), 1.0)
        if cur < limit and i + 1 < len(vals) and vals[i + 1] >= limit:
            glitches.add(i)
    if not glitches:
        return ts, vals
    report.glitches += len(glitches)
    keep = [i for i in range(len(vals)) if i not in glitches]
    return [ts[i] for i in keep], [vals[i] for i in keep]


def _unwrap(ts: list[int], vals: list[float], jitter: float, report: CounterReport) -> list[float]:
    """The counter made monotonic: after a reset it continues from where the old meter stopped."""
    backs = [i for i, (a, b) in enumerate(itertools.pairwise(vals), 1) if b < a]
    resets = [i for i in backs if vals[i] < vals[i - 1] - jitter * max(abs(vals[i - 1]), 1.0)]
    out = list(vals)
    base = 0.0
    for k, i in enumerate(resets):
        start = resets[k - 1] if k else 0
        base += max(vals[start:i])  # what the old meter had counted
        end = resets[k + 1] if k + 1 < len(resets) else len(vals)
        out[i:end] = [v + base for v in vals[i:end]]  # the new meter counts from zero on top of that
        report.resets.append(ts[i])
    # steps back within the jitter are read noise: the counter holds until it passes its last value
    return list(itertools.accumulate(out, max))


def _at(ts: list[int], acc: list[float], t: int, hold: int, max_gap: int | None) -> float | None:
    i = bisect_right(ts, t)
    if i == 0:
        return acc[0] if ts[0] - t <= hold else None
    if i == len(ts):
        return acc[-1] if t - ts[-1] <= hold else None
    t0, t1 = ts[i - 1], ts[i]
    if t0 == t:
        return acc[i - 1]
    if max_gap is not None and t1 - t0 > max_gap:
        if t - t0 <= hold:
            return acc[i - 1]
        return acc[i] if t1 - t <= hold else None
    return acc[i - 1] + (acc[i] - acc[i - 1]) * (t - t0) / (t1 - t0)


def interval_energy(readings: Sequence[Reading], edges_ms: Sequence[int], max_hold_ms: int | None = None,
                    max_gap_ms: int | None = None,
                    jitter: float = 1e-6) -> tuple[list[float | None], CounterReport]:
    """Energy (in the counter's unit) in each interval between consecutive ``edges_ms``.

    ``max_hold_ms``: how far past the first/last reading an edge may hold it (default: twice the
    typical reading spacing). ``max_gap_ms``: longest gap between readings bridged by interpolation
    (default: any). ``jitter``: relative backward step still read as noise rather than a reset.
    """
    if any(a >= b for a, b in itertools.pairwise(edges_ms)):
        raise ValueError("edges_ms must increase strictly; build them with analytics.counters.edges()")
    report = CounterReport()
    ts, vals = usable(readings)
    report.readings_used = len(ts)
    report.readings_skipped = len(readings) - len(ts)
    n = max(0, len(edges_ms) - 1)
    if not ts:
        report.missing_intervals = n
        return [None] * n, report
    hold = max_hold_ms if max_hold_ms is not None else 2 * typical_spacing_ms(ts)
    report.max_hold_ms = hold
    if not all(map(operator.le, vals, vals[1:])):  # went backwards somewhere: misread or reset
        ts, vals = _drop_glitches(ts, vals, jitter, report)
        report.readings_used = len(ts)
        acc = _unwrap(ts, vals, jitter, report)
    else:
        acc = vals
    at_edges = [_at(ts, acc, e, hold, max_gap_ms) for e in edges_ms]
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
    if step_ms <= 0 or end_ms <= start_ms:
        raise ValueError(f"edges({start_ms}, {end_ms}, {step_ms}): need end after start and a positive step")
    out = list(range(start_ms, end_ms, step_ms))
    out.append(end_ms)
    return out
