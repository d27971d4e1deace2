"""The storage side of the indicators: ``indicator_hourly``, the hours the Grafana boards read (written by
``analytics.board_feed``), and the facts of the store the smart-park scorecard judges. Functions over any
:class:`~ingest.store.base.Store`, the same SQL on SQLite and PostgreSQL, so analytics runs no SQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import and_, delete, func, insert, select

from ingest.store import record_tables as t
from ingest.store import schema as s
from ingest.store.base import Store

_DAY_MS = 86_400_000


# --- indicator_hourly ---------------------------------------------------------------------------------
def park_id(store: Store, key: str) -> int:
    """The row id of a registered park (the hourly rows are keyed by it)."""
    with store.engine.connect() as conn:
        return cast(int, conn.execute(select(s.parks.c.id).where(s.parks.c.key == key)).scalar_one())


def last_bucket(store: Store, park: int) -> int | None:
    """The newest hour written for the whole park (``park`` is its row id); None: none yet."""
    h = s.indicator_hourly
    with store.engine.connect() as conn:
        v = conn.execute(select(func.max(h.c.bucket)).where(h.c.park_id == park, h.c.enterprise == "")).scalar()
    # max() loses the column's type: epoch ms on SQLite, a timestamp on PostgreSQL
    return None if v is None else s.EpochMs().process_result_value(v, store.engine.dialect)


def pool_before(store: Store, park: int, hour_ms: int, day_start_ms: int) -> tuple[float, float]:
    """The storage pool (kWh, and its RE part) at the end of the last hour written before ``hour_ms``
    since ``day_start_ms``; empty when there is none."""
    h = s.indicator_hourly
    q = (select(h.c.pool_kwh, h.c.pool_re_kwh)
         .where(h.c.park_id == park, h.c.enterprise == "", h.c.bucket < hour_ms, h.c.bucket >= day_start_ms)
         .order_by(h.c.bucket.desc()).limit(1))
    with store.engine.connect() as conn:
        row = conn.execute(q).first()
    return (float(row[0] or 0.0), float(row[1] or 0.0)) if row else (0.0, 0.0)


def replace_hour(store: Store, park: int, hour_ms: int, rows: list[dict[str, Any]]) -> None:
    """The hour's rows (the park's and each enterprise's) replace what was written for it, in one
    transaction: a board never sees the hour half written."""
    h = s.indicator_hourly
    with store.engine.begin() as conn:
        conn.execute(delete(h).where(and_(h.c.park_id == park, h.c.bucket == hour_ms)))
        if rows:
            conn.execute(insert(h), rows)


# --- what the scorecard judges ----------------------------------------------------------------------------
@dataclass(frozen=True)
class StoreFacts:
    """A park's data as the store holds it, over the window before ``now``."""

    dead_letters: int  # payloads on the park's topics refused in the window
    newest_reading_ms: int | None  # in the window
    newest_rollup_ms: int | None  # the newest 1-minute bucket in the window
    has_readings: bool  # any reading at all
    rollup_backlog: int  # dirty ranges not yet summarised (all parks)
    fed: bool  # indicator_hourly has an hour of the park within two hours: the Grafana boards show it live
    alert_rule_overrides: int  # alert rules of the park's own


def scorecard_facts(store: Store, park: str, now: int, window_ms: int = _DAY_MS) -> StoreFacts:
    since = now - window_ms
    pids = [p.id for p in store.points(park)]
    rd, r1, ih = s.readings, s.readings_1m, s.indicator_hourly
    with store.engine.connect() as conn:
        dead = conn.execute(select(func.count()).select_from(s.dead_letters).where(
            s.dead_letters.c.received_ms >= since, s.dead_letters.c.topic.like(f"%/{park}/%"))).scalar_one()
        newest = newest_1m = None
        if pids:
            newest = conn.execute(select(func.max(rd.c.ts)).where(rd.c.point_id.in_(pids), rd.c.ts >= since)).scalar()
            newest_1m = conn.execute(select(func.max(r1.c.bucket)).where(r1.c.point_id.in_(pids),
                                                                         r1.c.bucket >= since)).scalar()
        stored = bool(pids) and conn.execute(select(rd.c.point_id).where(rd.c.point_id.in_(pids)).limit(1)).first()
        backlog = conn.execute(select(func.count()).select_from(s.rollup_dirty)).scalar_one()
        fed = conn.execute(select(ih.c.bucket).join(s.parks, s.parks.c.id == ih.c.park_id)
                           .where(s.parks.c.key == park, ih.c.bucket >= now - 2 * 3_600_000).limit(1)).first()
        overrides = conn.execute(select(func.count()).select_from(t.alert_rules)
                                 .where(t.alert_rules.c.park == park)).scalar_one()
    return StoreFacts(int(dead), newest, newest_1m, bool(stored), int(backlog), fed is not None, int(overrides))
