"""What the SQL store answers: the registry, readings, rollups and counter figures, completeness and dead
letters. Shared by SQLite and PostgreSQL; :class:`ingest.store.sql.SqlStore` adds the writes."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Connection, Engine, func, select, text

from ingest.store import rollups
from ingest.store import schema as s
from ingest.store.base import (
    DeadLetter,
    GatewayCompleteness,
    GatewayInfo,
    LatestReading,
    ParkInfo,
    PointInfo,
    Series,
)
from ingest.store.rollups import CounterStep, CounterTotal, Level


class SqlReads:
    parallel_min_points = 64  # below this a rollup query is too short to be worth a second connection
    engine: Engine

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(s.dead_letters).order_by(s.dead_letters.c.id.desc()).limit(limit)).all()
        return [DeadLetter(r.id, r.received_ms, r.topic, bytes(r.payload), r.reason) for r in rows]

    def gateways(self, park: str) -> list[GatewayInfo]:
        gw, gh = s.gateways, s.gateway_health
        q = (select(s.enterprises.c.key.label("ent"), gw.c.key, gw.c.online, gw.c.status_ms, gh.c.at_ms, gh.c.body)
             .select_from(gw.join(s.enterprises, gw.c.enterprise_id == s.enterprises.c.id)
                          .join(s.parks, s.enterprises.c.park_id == s.parks.c.id)
                          .outerjoin(gh, gh.c.gateway_id == gw.c.id))
             .where(s.parks.c.key == park).order_by(s.enterprises.c.key, gw.c.key))
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [GatewayInfo(r.ent, r.key, bool(r.online), r.status_ms, r.at_ms, r.body) for r in rows]

    def parks(self) -> list[ParkInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(s.parks).order_by(s.parks.c.key)).all()
        return [ParkInfo(r.key, r.name_zh, r.name_en, r.park_class, r.region) for r in rows]

    def _points_query(self) -> Any:
        return (select(s.points.c.id, s.points.c.key, s.parks.c.key.label("park"),
                       s.enterprises.c.key.label("enterprise"), s.devices.c.key.label("device"),
                       s.points.c.name, s.points.c.metric, s.points.c.unit, s.points.c.kind, s.points.c.label)
                .join(s.devices, s.points.c.device_id == s.devices.c.id)
                .join(s.enterprises, s.devices.c.enterprise_id == s.enterprises.c.id)
                .join(s.parks, s.enterprises.c.park_id == s.parks.c.id))

    def points(self, park: str, metrics: Sequence[str] | None = None,
               enterprise: str | None = None) -> list[PointInfo]:
        q = self._points_query().where(s.parks.c.key == park)
        if metrics is not None:
            q = q.where(s.points.c.metric.in_(list(metrics)))
        if enterprise is not None:
            q = q.where(s.enterprises.c.key == enterprise)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(s.points.c.key)).all()
        return [PointInfo(r.id, r.key, r.park, r.enterprise, r.device, r.name, r.metric, r.unit, r.kind, r.label)
                for r in rows]

    def latest(self, park: str, enterprise: str, device: str) -> list[LatestReading]:
        pts = [p for p in self.points(park, enterprise=enterprise) if p.device == device]
        out: list[LatestReading] = []
        with self.engine.connect() as conn:
            for p in pts:
                r = conn.execute(select(s.readings.c.ts, s.readings.c.value, s.readings.c.quality)
                                 .where(s.readings.c.point_id == p.id)
                                 .order_by(s.readings.c.ts.desc()).limit(1)).first()
                if r is not None:
                    out.append(LatestReading(p.point, p.metric, p.unit, p.label, r.ts, r.value, r.quality))
        return out

    def readings(self, point_ids: Sequence[int], start_ms: int, end_ms: int) -> Series:
        out: Series = {pid: [] for pid in point_ids}
        if not point_ids:
            return out
        q = (select(s.readings.c.point_id, s.readings.c.ts, s.readings.c.value, s.readings.c.quality)
             .where(s.readings.c.point_id.in_(list(point_ids)), s.readings.c.ts >= start_ms,
                    s.readings.c.ts < end_ms)
             .order_by(s.readings.c.point_id, s.readings.c.ts))
        with self.engine.connect() as conn:
            for pid, ts, value, q_ in conn.execute(q):
                out[pid].append((ts, value, q_))
        return out

    def completeness(self, park: str, start_ms: int, end_ms: int,
                     daily: bool = False) -> list[GatewayCompleteness]:
        # each batch's step from the previous seq of its gateway (a day earlier at most, so a
        # gap straddling the window's start counts); a step < 1 is a restarted sequence
        off, day = rollups.DAY_OFFSET_MS, rollups.DAY_MS
        day_col = f"((x.t + {off}) / {day} * {day} - {off})" if daily else "NULL"
        q = text(f"""
            SELECT e.key AS ent, g.key AS gw, {day_col} AS day, count(*) AS received,
                   sum(CASE WHEN x.step IS NULL OR x.step < 1 THEN 1 ELSE x.step END) AS expected,
                   sum(x.samples) AS samples
            FROM (SELECT gb.gateway_id, gb.samples, coalesce(gb.sent_ms, gb.received_ms) AS t,
                         gb.seq - lag(gb.seq) OVER (PARTITION BY gb.gateway_id ORDER BY gb.seq) AS step
                  FROM gateway_batches gb
                  WHERE gb.gateway_id IN (SELECT g2.id FROM gateways g2 JOIN enterprises e2
                                          ON e2.id = g2.enterprise_id JOIN parks p2 ON p2.id = e2.park_id
                                          WHERE p2.key = :park)
                    AND coalesce(gb.sent_ms, gb.received_ms) >= :lo_margin
                    AND coalesce(gb.sent_ms, gb.received_ms) < :hi) x
            JOIN gateways g ON g.id = x.gateway_id JOIN enterprises e ON e.id = g.enterprise_id
            WHERE x.t >= :lo
            GROUP BY e.key, g.key{", " + day_col if daily else ""}
            ORDER BY e.key, g.key{", 3" if daily else ""}""")
        params = {"park": park, "lo": start_ms, "hi": end_ms, "lo_margin": max(start_ms - day, -(2**62))}
        with self.engine.connect() as conn:
            rows = conn.execute(q, params).all()
        return [GatewayCompleteness(park, r.ent, r.gw, int(r.received), int(r.expected),
                                    None if r.day is None else int(r.day), int(r.samples or 0)) for r in rows]

    def rollups(self, point_ids: Sequence[int], start_ms: int, end_ms: int,
                width: str) -> dict[int, list[rollups.RollupRow]]:
        if width not in rollups.LEVELS:
            raise ValueError(f"rollup width {width!r} is not one of {', '.join(rollups.LEVELS)}")
        t = s.metadata.tables[rollups.LEVELS[width].table]
        out: dict[int, list[rollups.RollupRow]] = {pid: [] for pid in point_ids}
        if not point_ids:
            return out
        q = (select(t).where(t.c.point_id.in_(list(point_ids)), t.c.bucket >= start_ms, t.c.bucket < end_ms)
             .order_by(t.c.point_id, t.c.bucket))
        with self.engine.connect() as conn:
            for r in conn.execute(q):
                out[r.point_id].append(rollups.RollupRow(r.bucket, r.n_all, r.n, r.sum, r.min, r.max, r.first_ts,
                                                 r.first, r.last_ts, r.last))
        return out

    def counter_steps(self, groups: dict[int, int], start_ms: int, end_ms: int, width: str,
                      bin_ms: int | None = None, contiguous: bool = True,
                      jitter: float = 1e-6) -> list[CounterStep]:
        """Counter rollups pooled per group of points (``groups``: point id -> group) and bin
        (``bin_ms``, a multiple of the level's width; default the width) over [start, end), both on
        the level's bucket edges. See :func:`rollups.counter_steps_sql` for the rules."""
        level = self._level_on_edges(width, start_ms, end_ms, bin_ms)
        step = bin_ms or level.width_ms
        if not groups or end_ms <= start_ms:
            return []
        offset = rollups.DAY_OFFSET_MS if step % rollups.DAY_MS == 0 else 0
        d = rollups.Dialect(self.engine.dialect.name)
        params = {"lo_prev": start_ms - level.width_ms, "lo": start_ms, "hi": end_ms, "j": jitter}

        def run(part: dict[int, int]) -> list[Any]:
            sql = rollups.counter_steps_sql(d, level, part, rollups.Level("", step, offset), True)
            with self.engine.connect() as conn:
                self._no_jit(conn)
                return list(conn.execute(text(sql), params))

        # PostgreSQL runs one query on one core: halves of the points on two connections use two
        rows = [r for part in self._in_parallel(run, groups) for r in part]
        merged: dict[tuple[int, int], list[float]] = {}
        for g, b, a, n, r in rows:
            acc = merged.setdefault((int(g), int(b)), [0.0, 0, 0])
            acc[0] += float(a)
            acc[1] += int(n)
            acc[2] += int(r or 0)
        return [rollups.CounterStep(g, b, a, int(n), int(r)) for (g, b), (a, n, r) in sorted(merged.items())]

    def _in_parallel(self, run: Any, groups: dict[int, int]) -> list[Any]:
        ids = sorted(groups)
        if self.engine.dialect.name != "postgresql" or len(ids) < self.parallel_min_points:
            return [run(groups)]
        halves = [{p: groups[p] for p in ids[i::2]} for i in (0, 1)]
        with ThreadPoolExecutor(2) as pool:
            return list(pool.map(run, halves))

    def counter_totals(self, point_ids: Sequence[int], start_ms: int, end_ms: int, width: str,
                       jitter: float = 1e-6) -> list[CounterTotal]:
        """Per counter, what it advanced over [start, end) from the rollups at ``width`` (both on its
        bucket edges); see :func:`rollups.counter_totals_sql`."""
        level = self._level_on_edges(width, start_ms, end_ms, None)
        if not point_ids or end_ms <= start_ms:
            return []
        sql = rollups.counter_totals_sql(rollups.Dialect(self.engine.dialect.name), level, list(point_ids))
        params = {"lo_prev": start_ms - level.width_ms, "lo": start_ms, "hi": end_ms,
                  "last": end_ms - level.width_ms, "j": jitter}
        with self.engine.connect() as conn:
            self._no_jit(conn)
            return [CounterTotal(int(p), float(a), bool(s), bool(e), int(r or 0))
                    for p, a, s, e, r in conn.execute(text(sql), params)]

    @staticmethod
    def _no_jit(conn: Connection) -> None:
        """PostgreSQL's JIT spends ~0.5 s compiling these queries, more than they then save."""
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL jit = off"))

    @staticmethod
    def _level_on_edges(width: str, start_ms: int, end_ms: int, step: int | None) -> Level:
        if width not in rollups.LEVELS:
            raise ValueError(f"rollup width {width!r} is not one of {', '.join(rollups.LEVELS)}")
        level = rollups.LEVELS[width]
        if (step or level.width_ms) % level.width_ms or level.floor(start_ms) != start_ms \
                or level.floor(end_ms) != end_ms:
            raise ValueError(f"bins of {step} ms and [{start_ms}, {end_ms}) must sit on the {width} level's "
                             "bucket edges")
        return level

    def rollup_backlog_from(self) -> int | None:
        """The earliest minute written but not yet rolled up (None: the rollups are current)."""
        with self.engine.connect() as conn:
            v = conn.execute(select(func.min(s.rollup_dirty.c.from_ms))).scalar()
        return None if v is None else int(v)

    def count_readings(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(s.readings)).scalar_one())
