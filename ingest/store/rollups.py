"""Rollups of readings (1 min, 1 h, 1 day) that parkmon keeps right under late and back-filled data.

The write path records, in the same transaction as the readings, which minutes of which enterprise
it touched (``rollup_dirty``). :func:`refresh` consumes those records and recomputes exactly the
touched buckets from the level below (1 min from raw, 1 h from 1 min, 1 day from 1 h), deleting and
re-inserting them in one transaction. A gateway replaying a day of buffer therefore corrects the
minutes, hours and the day it touches and nothing else; a refresh that dies midway leaves the dirty
records in place and the next refresh does the work again. This is TimescaleDB's continuous-aggregate
model (an invalidation log plus refresh); where TimescaleDB is present the refresh hands the same
ranges to ``refresh_continuous_aggregate`` instead.

Days are China Standard Time days (UTC+8, no daylight saving): what a park's daily report means.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter

from sqlalchemy import Connection, text

# the store's time vocabulary, as the rest of the store imports it (one definition: parkmon.common.clock)
from parkmon.common.clock import CHINA_OFFSET_MS
from parkmon.common.clock import DAY_MS as DAY_MS
from parkmon.common.clock import HOUR_MS as HOUR_MS
from parkmon.common.clock import MINUTE_MS as MINUTE_MS

DAY_OFFSET_MS = CHINA_OFFSET_MS  # a rollup day is a China day
GOOD = "quality < 64 AND value IS NOT NULL"  # parkmon.common.quality: class GOOD


@dataclass(frozen=True, slots=True)
class Level:
    table: str
    width_ms: int
    offset_ms: int = 0

    def floor(self, ts_ms: int) -> int:
        return (ts_ms + self.offset_ms) // self.width_ms * self.width_ms - self.offset_ms

    def ceil(self, ts_ms: int) -> int:
        f = self.floor(ts_ms)
        return f if f == ts_ms else f + self.width_ms


LEVELS = {"1m": Level("readings_1m", MINUTE_MS), "1h": Level("readings_1h", HOUR_MS),
          "1d": Level("readings_1d", DAY_MS, DAY_OFFSET_MS)}
CHAIN = [("readings", LEVELS["1m"]), ("readings_1m", LEVELS["1h"]), ("readings_1h", LEVELS["1d"])]


@dataclass(frozen=True, slots=True)
class RollupRow:
    bucket_ms: int
    n_all: int
    n: int
    sum: float | None
    min: float | None
    max: float | None
    first_ts_ms: int | None
    first: float | None
    last_ts_ms: int | None
    last: float | None

    @property
    def mean(self) -> float | None:
        return self.sum / self.n if self.n and self.sum is not None else None


def touched(minutes: set[int], samples: Sequence[tuple[str, int, float | None, int]]) -> None:
    """Add the minutes ``samples`` fall in. A batch's readings are mostly of one moment: within an hour,
    its span is marked whole (a minute with no reading costs the refresh nothing), two builtins over the
    times instead of a division per sample; wider (a replayed buffer, a stray clock), minute by minute."""
    if not samples:
        return
    times = list(map(itemgetter(1), samples))
    lo, hi = min(times) // MINUTE_MS, max(times) // MINUTE_MS
    if hi - lo <= 60:
        minutes.update(range(lo, hi + 1))
    else:
        minutes.update({ts // MINUTE_MS for ts in times})


def minute_runs(minutes: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted minute numbers -> [(from_ms, to_ms)) runs of consecutive minutes."""
    runs: list[tuple[int, int]] = []
    for m in sorted(set(minutes)):
        if runs and runs[-1][1] == m * MINUTE_MS:
            runs[-1] = (runs[-1][0], (m + 1) * MINUTE_MS)
        else:
            runs.append((m * MINUTE_MS, (m + 1) * MINUTE_MS))
    return runs


def merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


class Dialect:
    """How a back end spells times and buckets in SQL."""

    def __init__(self, name: str) -> None:
        self.pg = name == "postgresql"

    def t(self, param: str) -> str:  # a bound epoch-ms parameter as the column's type
        return f"(timestamptz 'epoch' + :{param} * interval '1 millisecond')" if self.pg else f":{param}"

    def bucket(self, col: str, level: Level) -> str:
        if self.pg:
            origin = "2000-01-01 00:00:00+08" if level.offset_ms else "2000-01-01 00:00:00+00"
            return f"date_bin(interval '{level.width_ms} milliseconds', {col}, timestamptz '{origin}')"
        return f"(({col} + {level.offset_ms}) / {level.width_ms} * {level.width_ms} - {level.offset_ms})"


def _recompute_sql(d: Dialect, source: str, level: Level, below: Level | None) -> tuple[str, str]:
    """DELETE and INSERT ... SELECT for one level over one enterprise and [lo, hi)."""
    pts = "SELECT p.id FROM points p JOIN devices dv ON dv.id = p.device_id WHERE dv.enterprise_id = :ent"
    delete = (f"DELETE FROM {level.table} WHERE point_id IN ({pts}) "
              f"AND bucket >= {d.t('lo')} AND bucket < {d.t('hi')}")
    cols = "point_id, bucket, n_all, n, sum, min, max, first_ts, first, last_ts, last"
    if below is None:  # from raw readings
        g = (f"SELECT point_id, {d.bucket('ts', level)} AS b, count(*) AS n_all, "
             f"count(CASE WHEN {GOOD} THEN 1 END) AS n, sum(CASE WHEN {GOOD} THEN value END) AS s, "
             f"min(CASE WHEN {GOOD} THEN value END) AS mn, max(CASE WHEN {GOOD} THEN value END) AS mx, "
             f"min(CASE WHEN {GOOD} THEN ts END) AS fts, max(CASE WHEN {GOOD} THEN ts END) AS lts "
             f"FROM readings WHERE point_id IN ({pts}) AND ts >= {d.t('lo')} AND ts < {d.t('hi')} "
             f"GROUP BY point_id, {d.bucket('ts', level)}")
        first = "LEFT JOIN readings f ON f.point_id = g.point_id AND f.ts = g.fts"
        last = "LEFT JOIN readings l ON l.point_id = g.point_id AND l.ts = g.lts"
        fv, lv = "f.value", "l.value"
    else:  # from the level below: first/last come from the finer bucket holding them (its key)
        g = (f"SELECT point_id, {d.bucket('bucket', level)} AS b, sum(n_all) AS n_all, sum(n) AS n, "
             f"sum(sum) AS s, min(min) AS mn, max(max) AS mx, min(first_ts) AS fts, max(last_ts) AS lts "
             f"FROM {source} WHERE point_id IN ({pts}) AND bucket >= {d.t('lo')} AND bucket < {d.t('hi')} "
             f"GROUP BY point_id, {d.bucket('bucket', level)}")
        first = (f"LEFT JOIN {source} f ON f.point_id = g.point_id AND f.bucket = {d.bucket('g.fts', below)} "
                 "AND f.first_ts = g.fts")
        last = (f"LEFT JOIN {source} l ON l.point_id = g.point_id AND l.bucket = {d.bucket('g.lts', below)} "
                "AND l.last_ts = g.lts")
        fv, lv = "f.first", "l.last"
    insert = (f"INSERT INTO {level.table} ({cols}) SELECT g.point_id, g.b, g.n_all, g.n, g.s, g.mn, g.mx, "
              f"g.fts, {fv}, g.lts, {lv} FROM ({g}) g {first} {last}")
    return delete, insert


def newest_dirty(conn: Connection) -> int | None:
    """The id of the newest dirty record (None: none): a refresh consumes up to it and no further."""
    v = conn.execute(text("SELECT max(id) FROM rollup_dirty")).scalar()
    return None if v is None else int(v)


def refresh(conn: Connection, upto: int, max_records: int = 10_000) -> int:
    """Recompute every bucket the dirty records up to id ``upto`` name (:func:`newest_dirty`, read before the
    first call); returns how many were consumed. Runs in the caller's transaction (commit = the rollups and the
    consumption, together). The bound matters under load: writers add records all the time, and a refresh
    that chased them ran without end, recomputing each minute every second or two instead of every 30 s."""
    d = Dialect(conn.dialect.name)
    if d.pg and not conn.execute(text("SELECT pg_try_advisory_xact_lock(7202611231)")).scalar():
        return 0  # another worker is refreshing; two at once would fight over the same buckets
    recs = conn.execute(text("SELECT id, enterprise_id, from_ms, to_ms FROM rollup_dirty WHERE id <= :upto "
                             "ORDER BY id LIMIT :n"), {"upto": upto, "n": max_records}).all()
    if not recs:
        return 0
    per_ent: dict[int, list[tuple[int, int]]] = {}
    for _id, ent, lo, hi in recs:
        per_ent.setdefault(int(ent), []).append((int(lo), int(hi)))
    for ent, ranges in per_ent.items():
        spans = merge(ranges)
        below: Level | None = None
        for source, level in CHAIN:
            spans = merge((level.floor(lo), level.ceil(hi)) for lo, hi in spans)
            delete, insert = _recompute_sql(d, source, level, below)
            for lo, hi in spans:
                params = {"ent": ent, "lo": lo, "hi": hi}
                conn.execute(text(delete), params)
                conn.execute(text(insert), params)
            below = level
    ids = [r[0] for r in recs]
    for i in range(0, len(ids), 1000):
        conn.execute(text("DELETE FROM rollup_dirty WHERE id IN (" + ",".join(map(str, ids[i:i + 1000])) + ")"))
    return len(recs)


def refresh_timescale(conn: Connection, upto: int, max_records: int = 10_000) -> list[tuple[int, int]]:
    """TimescaleDB: hand the ranges of the dirty records up to id ``upto`` (at most ``max_records`` of them)
    to its continuous aggregates; returns the spans refreshed ([]: none left). ``conn`` must be in autocommit
    (refresh_continuous_aggregate refuses to run in a transaction block)."""
    recs = conn.execute(text("SELECT id, from_ms, to_ms FROM rollup_dirty WHERE id <= :upto ORDER BY id LIMIT :n"),
                        {"upto": upto, "n": max_records}).all()
    spans = merge((int(lo), int(hi)) for _i, lo, hi in recs)
    for _source, level in CHAIN:
        for lo, hi in merge((level.floor(lo), level.ceil(hi)) for lo, hi in spans):
            conn.execute(text(f"CALL refresh_continuous_aggregate('{level.table}', "
                              "timestamptz 'epoch' + :lo * interval '1 millisecond', "
                              "timestamptz 'epoch' + :hi * interval '1 millisecond')"), {"lo": lo, "hi": hi})
    ids = [r[0] for r in recs]
    if ids:
        conn.execute(text("DELETE FROM rollup_dirty WHERE id IN (" + ",".join(map(str, ids)) + ")"))
    return spans


@dataclass(frozen=True, slots=True)
class CounterTotal:
    """What one counter advanced over a period from the rollups (see :func:`counter_totals_sql`)."""

    point_id: int
    amount: float
    from_start: bool  # a reading in the bucket before the period: the start is covered
    to_end: bool  # a reading in the period's last bucket: the end is covered
    resets: int


@dataclass(frozen=True, slots=True)
class CounterStep:
    """Pooled counter steps of one group of points in one bin (see :func:`counter_steps_sql`)."""

    group: int
    bin_ms: int
    amount: float  # sum over the group's points of what their counters advanced in the bin
    points: int  # points with a known step in the bin (fewer than the group's size: missing data)
    resets: int


def _steps_cte(d: Dialect, level: Level, point_ids: list[int], contiguous: bool) -> str:
    """CTEs ending in ``x(point_id, bucket, step, reset)``: per point and bucket in [lo, hi) what its
    counter advanced from the bucket's start edge to its end edge - two window passes over the rollup, both
    in the order of its key (point, bucket), so the database streams them without sorting.

    A bucket's edge value is the reading exactly on the edge when there is one (the first reading of
    the bucket starting there), else the last good reading before it: so readings on the edges (hourly
    readings, an import starting at 00:00) give the raw path's figures exactly, and a counter whose
    first reading sits on the period's start covers the period from that start (the start edge)."""
    big = "greatest" if d.pg else "max"
    width = f"interval '{level.width_ms} milliseconds'" if d.pg else str(level.width_ms)
    one, zero = ("1.0::float8", "0.0::float8") if d.pg else ("1.0", "0.0")  # numeric literals are slow on PG

    def drop(v: str, p: str) -> str:
        return f"{v} < {p} - :j * {big}(abs({p}), {one})"

    def back(p: str, nxt: str) -> str:
        return f"{nxt} >= {p} - :j * {big}(abs({p}), {one})"

    # e = this bucket's end-edge value: the reading exactly on it (the next bucket's first) unless that
    # drops below this bucket's last (a reset or misread there is judged as before, from the last reading
    # and the next one), else the last reading; s = its own first reading when that sits on its start
    on_end = f"lead(first_ts) OVER w = bucket + {width}"
    e = f"CASE WHEN {on_end} AND lead(first) OVER w >= last THEN lead(first) OVER w ELSE last END"
    # in an interval view a start edge counts only with the bucket's end in view too (a reading on it, or
    # more than the one reading): a lone reading on a bucket's start says nothing of the bucket's energy
    s_when = f"first_ts = bucket AND (n > 1 OR {on_end})" if contiguous else "first_ts = bucket"
    # prev = the start edge: the previous bucket's end edge, or - the point's first bucket in the window -
    # its own first reading on its start (the period's start edge); prev2 = the previous bucket's start edge.
    # A drop whose next reading comes straight back is a misread: the bucket keeps the value before it;
    # v = the end edge so cleaned, pv = the start edge (from prev, prev2 and this bucket's first reading)
    v = f"CASE WHEN {drop('e', 'prev')} AND {back('prev', 'next')} THEN prev ELSE e END"
    pv = f"CASE WHEN {drop('prev', 'prev2')} AND {back('prev2', 'first')} THEN prev2 ELSE prev END"
    gap = f"pb IS NOT NULL AND pb <> bucket - {width}" if contiguous else "FALSE"
    # the common case, a counter that rose in this bucket and the one before: no cleaning to do, and
    # the database evaluates nothing more (the cleaned values are only computed for drops)
    steady = "e >= prev AND (prev2 IS NULL OR prev >= prev2)"
    ids = ",".join(map(str, sorted(point_ids)))
    hi_next = f"{d.t('hi')} + {width}"  # the bucket after the period: its first reading may sit on hi
    # a total also takes the step up to a reading exactly on hi when the period's last buckets have none
    # (a counter read only at the period's edges): the bucket at hi, valued at its start edge
    end_e = "e" if contiguous else f"CASE WHEN bucket = {d.t('hi')} THEN s ELSE e END"
    end_top = "top" if contiguous else f"CASE WHEN bucket = {d.t('hi')} THEN s ELSE top END"  # not what follows hi
    in_view = f"bucket < {d.t('hi')}" if contiguous else \
        f"(bucket < {d.t('hi')} OR (bucket = {d.t('hi')} AND s IS NOT NULL))"
    return f"""
r AS (SELECT point_id, bucket, first, max AS top, lead(first) OVER w AS next, {e} AS e,
             CASE WHEN {s_when} THEN first END AS s
      FROM {level.table}
      WHERE point_id IN ({ids}) AND bucket >= {d.t('lo_prev')} AND bucket < {hi_next} AND n > 0
      WINDOW w AS (PARTITION BY point_id ORDER BY bucket)),
c AS (SELECT point_id, bucket, first, next, s, {end_top} AS top, {end_e} AS e, lag(bucket) OVER w AS pb,
             coalesce(lag(e) OVER w, s) AS prev, coalesce(lag(e, 2) OVER w, lag(s) OVER w) AS prev2
      FROM r WINDOW w AS (PARTITION BY point_id ORDER BY bucket)),
k AS (SELECT point_id, bucket, pb, top, e, prev, prev2, {v} AS v, {pv} AS pv FROM c
      WHERE bucket >= {d.t('lo')} AND {in_view}),
x AS (SELECT point_id, bucket,
             CASE WHEN prev IS NULL OR ({gap}) THEN NULL
                  WHEN {steady} THEN e - prev
                  WHEN {drop('v', 'pv')} THEN {big}(top - pv, {zero}) + v
                  ELSE {big}(v - pv, {zero}) END AS step,
             CASE WHEN {steady} OR prev IS NULL THEN 0 WHEN {drop('v', 'pv')} THEN 1 ELSE 0 END AS reset
      FROM k)"""


def counter_steps_sql(d: Dialect, level: Level, groups: dict[int, int], bin_level: Level,
                      contiguous: bool) -> str:
    """SQL pooling counter rollups into bins: per point and bucket the step of its counter from the
    bucket's start edge to its end edge, each edge valued by the reading exactly on it (the first of the
    bucket starting there) or else the last good reading before it (a bucket's energy, telescoping: the sum
    over any run of buckets is the value at its end edge minus the value at its start edge, exactly what the
    raw readings give when readings sit on the edges, within one reading interval otherwise). A counter's
    first bucket in view has a start edge only when its first reading sits on the bucket's start (data
    starting exactly at the period start). Summed per group of points and bin of ``bin_level`` (a multiple
    of ``level``);
    ``points`` counts the (point, bucket) steps known in the bin.

    The counter rules of analytics.counters, at bucket grain: a drop beyond the jitter is a reset and
    the step is what the old meter counted in the bucket (its highest reading there) plus the new reading
    (counted from zero); a drop whose next reading (the next bucket's first) comes straight back is a
    misread and is held; a smaller drop is read noise (step 0). ``contiguous``: a step only counts
    when the previous bucket had a reading, or - the point's first bucket in view - its first reading
    sits on its start (an interval view: a step spanning a gap belongs to no one bin); otherwise a step
    across empty buckets counts in full (a total over the period).
    Params: lo_prev (the bucket before lo), lo (first bucket), hi (end), j (jitter)."""
    pairs = ",".join(f"({pid},{grp})" for pid, grp in sorted(groups.items()))
    out_bin = "CAST(extract(epoch FROM b) * 1000 AS bigint)" if d.pg else "b"
    return f"""
WITH {_steps_cte(d, level, list(groups), contiguous)},
y AS (SELECT point_id, {"bucket" if bin_level.width_ms == level.width_ms else d.bucket("bucket", bin_level)} AS b,
             step, reset FROM x)
SELECT g.column2 AS grp, {out_bin} AS bin_ms, coalesce(sum(y.step), 0) AS amount, count(y.step) AS points,
       sum(y.reset) AS resets
FROM y JOIN (VALUES {pairs}) g ON g.column1 = y.point_id
GROUP BY g.column2, y.b ORDER BY 1, 2"""


def counter_totals_sql(d: Dialect, level: Level, point_ids: list[int]) -> str:
    """Per point over [lo, hi): the sum of its steps (gaps bridged), whether it has a step in the first
    bucket (a reading just before lo, or exactly on lo) and a reading in the last bucket (or exactly on
    hi), and its resets."""
    return f"""
WITH {_steps_cte(d, level, point_ids, contiguous=False)}
SELECT point_id, coalesce(sum(step), 0) AS amount,
       max(CASE WHEN bucket = {d.t('lo')} AND step IS NOT NULL THEN 1 ELSE 0 END) AS from_start,
       max(CASE WHEN bucket = {d.t('last')} OR bucket = {d.t('hi')} THEN 1 ELSE 0 END) AS to_end,
       sum(reset) AS resets
FROM x GROUP BY point_id"""
