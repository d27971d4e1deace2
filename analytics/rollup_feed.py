"""Counter energy from the rollups instead of the raw readings: what makes a year's indicators cheap.

A counter's energy over a run of buckets telescopes: it is the last reading of the run minus the last
reading before it. The rollups keep every bucket's last good reading, so the store pools those steps
per flow and interval in SQL (``Store.counter_steps``) and only a few thousand numbers reach Python for a
year. Against the raw path (analytics.counters) an interval's edge sits at the reading on it, or else the
last one before it, rather than interpolated onto it (at most one reading interval apart, and the difference
cancels over consecutive intervals); resets, misreads and read noise follow the same rules at bucket grain.

The rollups answer a period from its start (on a level's bucket edge: whole hours or China days) up to
the last bucket edge they are current for; the raw readings answer the rest (the hour still being
written, or data that arrived late and waits for the next refresh). Short periods (a live "today so
far") read only the raw readings, which are exact and cheap there. ``source`` forces either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from ingest.store.rollups import LEVELS, CounterStep, CounterTotal

Source = Literal["auto", "raw", "rollup"]
MIN_SPAN_MS = 86_400_000  # shorter periods (a live "today") read only the raw readings
_COARSEST_FIRST = ("1d", "1h", "1m")


class StepStore(Protocol):
    def rollup_backlog_from(self) -> int | None: ...
    def counter_totals(self, point_ids: Sequence[int], start_ms: int, end_ms: int, width: str,
                       jitter: float = 1e-6) -> list[CounterTotal]: ...
    def counter_steps(self, groups: dict[int, int], start_ms: int, end_ms: int, width: str,
                      bin_ms: int | None = None, contiguous: bool = True,
                      jitter: float = 1e-6) -> list[CounterStep]: ...


def level_for(start_ms: int, end_ms: int, step_ms: int | None = None) -> str | None:
    """The coarsest rollup level whose buckets [start, end) and the interval ``step_ms`` sit on."""
    for width in _COARSEST_FIRST:
        lv = LEVELS[width]
        if lv.floor(start_ms) == start_ms and lv.floor(end_ms) == end_ms and (
                step_ms is None or step_ms % lv.width_ms == 0):
            return width
    return None


@dataclass(frozen=True)
class Plan:
    """The rollups at ``level`` answer [start, split); the raw readings answer [split, end)."""

    level: str | None
    split_ms: int

    def label(self, end_ms: int) -> str:
        if self.level is None:
            return "raw"
        return self.level if self.split_ms >= end_ms else f"{self.level}+raw"


def plan(store: StepStore, source: Source, start_ms: int, end_ms: int, step_ms: int | None = None) -> Plan:
    """Which data answers which part of [start, end). ``auto``: the rollups up to the last bucket edge
    before anything still waiting to be rolled up (ingest refreshes them every 30 s) or the end, the raw
    readings after it - so "this year so far" costs a year of rollups and the last hour of readings.
    Periods shorter than ``MIN_SPAN_MS`` or not starting on a bucket edge read the raw readings."""
    if source == "raw":
        return Plan(None, start_ms)
    if source == "rollup":
        level = level_for(start_ms, end_ms, step_ms)
        if level is None:
            raise ValueError("the rollups answer periods (and intervals) on whole minutes, hours or China days; "
                             "align start and end, or use source=raw")
        return Plan(level, end_ms)
    backlog = store.rollup_backlog_from()
    limit = end_ms if backlog is None else max(start_ms, min(end_ms, backlog))
    fits = [w for w in _COARSEST_FIRST if LEVELS[w].floor(start_ms) == start_ms
            and (step_ms is None or step_ms % LEVELS[w].width_ms == 0)
            and LEVELS[w].floor(limit) - start_ms >= MIN_SPAN_MS]
    exact = [w for w in fits if LEVELS[w].floor(limit) == limit]
    # the coarsest level reaching the limit exactly; else hours (a raw tail under an hour); else what fits
    width = exact[0] if exact else ("1h" if "1h" in fits else (fits[0] if fits else None))
    return Plan(width, LEVELS[width].floor(limit)) if width else Plan(None, start_ms)


def pooled_steps(store: StepStore, flows: Mapping[str, Sequence[int]], start_ms: int, end_ms: int, step_ms: int,
                 level: str) -> tuple[dict[str, list[float | None]], int, int | None, int | None]:
    """Per flow, the pooled energy of each interval from start (None where any of its meters has no
    step); the resets seen; and the first and last interval start with any data (None: no data)."""
    names = list(flows)
    groups = {pid: i for i, name in enumerate(names) for pid in flows[name]}
    n = -(-(end_ms - start_ms) // step_ms)
    out: dict[str, list[float | None]] = {
        name: ([None] * n if flows[name] else [0.0] * n) for name in names}  # no meter: zero, not missing
    resets = 0
    seen: list[int] = []
    for s in store.counter_steps(groups, start_ms, end_ms, level, step_ms):
        k = (s.bin_ms - start_ms) // step_ms
        name = names[s.group]
        resets += s.resets
        if s.points:
            seen.append(k)
        # every point must have a step in every bucket of the bin (the last bin may be short)
        buckets = -(-min(step_ms, end_ms - s.bin_ms) // LEVELS[level].width_ms)
        if s.points == len(flows[name]) * buckets:
            out[name][k] = s.amount
    return out, resets, (min(seen) if seen else None), (max(seen) if seen else None)


def point_totals(store: StepStore, point_ids: Sequence[int], start_ms: int, end_ms: int,
                 level: str) -> tuple[dict[int, float | None], int]:
    """What each counter advanced over [start, end); None for one without a reading just before or exactly on
    the start, or in the last bucket or exactly on the end (it did not cover the period: never guessed). Gaps
    inside are bridged."""
    out: dict[int, float | None] = dict.fromkeys(point_ids)
    resets = 0
    for t in store.counter_totals(point_ids, start_ms, end_ms, level):
        resets += t.resets
        out[t.point_id] = t.amount if t.from_start and t.to_end else None
    return out, resets
