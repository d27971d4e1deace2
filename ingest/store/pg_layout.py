"""How readings are laid out on PostgreSQL: detect TimescaleDB, don't demand it.

- TimescaleDB present (``pg_available_extensions``): ``readings`` is a hypertable (7-day chunks,
  compressed by parkmon's maintenance after 30 days by default, segmented by point, ordered by
  time) and the rollups are continuous aggregates.
- Plain PostgreSQL: ``readings`` is range-partitioned by month (``readings_y2026m11``); parkmon
  creates the partitions a write needs and drops whole months for retention, and maintains the
  rollup tables itself (ingest/store/rollups.py).

The choice is made once, when a database is first migrated, and is read from the database after.
``PARKMON_PG_LAYOUT`` (environment) or the PostgreSQL setting ``parkmon.pg_layout`` (e.g. ``ALTER
DATABASE parkmon SET parkmon.pg_layout = 'partitioned'``) sets it: ``auto`` (default: TimescaleDB
when installed), ``timescaledb`` (required) or ``partitioned`` (plain partitions even where TimescaleDB
is installed). A server that has TimescaleDB installed but not preloaded is refused under ``auto``
rather than silently given the plain layout, which would stay with the database for good
(docs/decisions/0011-timescaledb-in-ci.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal, get_args

from sqlalchemy import Connection, text

Layout = Literal["timescaledb", "partitioned", "plain"]
Choice = Literal["auto", "timescaledb", "partitioned"]
ENV = "PARKMON_PG_LAYOUT"
SETTING = "parkmon.pg_layout"
PRELOAD_LINE = "shared_preload_libraries = 'timescaledb'"


class LayoutError(RuntimeError):
    """The server cannot give this database the layout it needs: a configuration to fix, not to retry."""

READINGS_COLUMNS = ("point_id int4 NOT NULL, ts timestamptz NOT NULL, value float8, quality int2 NOT NULL, "
                    "PRIMARY KEY (point_id, ts)")  # point first: reads are per point over time (measured)


def timescale_available(conn: Connection) -> bool:
    return conn.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")).first() is not None


def requested(conn: Connection) -> Choice:
    raw = os.environ.get(ENV) or conn.execute(text(f"SELECT current_setting('{SETTING}', true)")).scalar() or "auto"
    if raw not in get_args(Choice):
        where = f"${ENV}" if os.environ.get(ENV) else f"the PostgreSQL setting {SETTING}"
        raise LayoutError(f"{where} is {raw!r}: use one of {', '.join(get_args(Choice))}")
    return raw  # type: ignore[return-value]  # checked against Choice just above


def preloaded(conn: Connection) -> bool:
    # shared_preload_libraries itself is readable only by superusers (and pg_read_all_settings), and
    # parkmon runs as an ordinary role: a setting TimescaleDB's loader defines tells the same to anyone
    return conn.execute(text("SELECT current_setting('timescaledb.bgw_launcher_poll_time', true)")).scalar() \
        is not None


def _not_preloaded(conn: Connection, uses_it: bool) -> LayoutError:
    db = conn.execute(text("SELECT current_database()")).scalar()
    fix = (f"add the line {PRELOAD_LINE} to the server's postgresql.conf (or ALTER SYSTEM SET "
           "shared_preload_libraries = 'timescaledb'), then restart PostgreSQL (a reload is not enough)")
    if uses_it:
        return LayoutError(f"database {db!r} keeps its readings in TimescaleDB, but the server does not preload "
                           f"the extension: {fix}")
    return LayoutError(
        f"this PostgreSQL server has TimescaleDB installed but does not preload it, so database {db!r} cannot "
        f"use it: {fix}. Or, to keep readings in plain monthly partitions instead (for good: no compression "
        f"or continuous aggregates), set {ENV}=partitioned or run ALTER DATABASE \"{db}\" SET {SETTING} = "
        "'partitioned'")


def check_server(conn: Connection) -> None:
    """Refuse, with the fix, a database that uses TimescaleDB on a server that does not preload it
    (PostgreSQL would fail on the first query with 'extension "timescaledb" must be preloaded')."""
    if conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")).first() is not None \
            and not preloaded(conn):
        raise _not_preloaded(conn, uses_it=True)


def use_timescale(conn: Connection) -> bool:
    """Whether a new database gets the TimescaleDB layout (migration 0002 asks, once)."""
    choice = requested(conn)
    if choice == "partitioned":
        return False
    if not timescale_available(conn):
        if choice == "timescaledb":
            raise LayoutError(f"{ENV} / {SETTING} is 'timescaledb' but this PostgreSQL server has no TimescaleDB "
                              "extension installed (pg_available_extensions): install it, or use 'auto'")
        return False
    if not preloaded(conn):
        raise _not_preloaded(conn, uses_it=False)
    return True


def layout(conn: Connection) -> Layout:
    if conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")).first() is not None:
        hyper = conn.execute(text("SELECT 1 FROM timescaledb_information.hypertables "
                                  "WHERE hypertable_name = 'readings'")).first()
        if hyper is not None:
            return "timescaledb"
    part = conn.execute(text("SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
                             "WHERE c.relname = 'readings' AND c.relnamespace = 'public'::regnamespace")).first()
    return "partitioned" if part is not None else "plain"


def month_of(ts_ms: int) -> tuple[int, int]:
    d = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    return d.year, d.month


def months_between(lo_ms: int, hi_ms: int) -> list[tuple[int, int]]:
    (y, m), end = month_of(lo_ms), month_of(hi_ms)
    out = [(y, m)]
    while (y, m) < end:
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        out.append((y, m))
    return out


def partition_name(year: int, month: int) -> str:
    return f"readings_y{year:04d}m{month:02d}"


def _bounds(year: int, month: int) -> tuple[str, str]:
    ny, nm = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"{year:04d}-{month:02d}-01 00:00:00+00", f"{ny:04d}-{nm:02d}-01 00:00:00+00"


def existing_partitions(conn: Connection) -> set[str]:
    rows = conn.execute(text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                             "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'readings'"))
    return {r[0] for r in rows}


# CREATE TABLE IF NOT EXISTS is not safe against a concurrent twin (both pass the check, one fails
# with DuplicateTable): the writers of every worker take this lock first, held to the transaction's end
_PARTITION_LOCK = 0x7061726B  # "park"


def create_partitions(conn: Connection, months: Iterable[tuple[int, int]]) -> list[str]:
    """Create the missing monthly partitions; ``conn`` must be in a transaction (not AUTOCOMMIT)."""
    made = []
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PARTITION_LOCK})
    for y, m in sorted(set(months)):
        lo, hi = _bounds(y, m)
        name = partition_name(y, m)
        conn.execute(text(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF readings "
                          f"FOR VALUES FROM ('{lo}') TO ('{hi}')"))
        made.append(name)
    return made


def create_partitioned_readings(conn: Connection, months: Iterable[tuple[int, int]]) -> None:
    conn.execute(text(f"CREATE TABLE readings ({READINGS_COLUMNS}) PARTITION BY RANGE (ts)"))
    create_partitions(conn, months)


def drop_partitions_before(conn: Connection, cutoff_ms: int) -> list[str]:
    """Drop the months that end at or before ``cutoff_ms``: retention a whole month at a time."""
    cy, cm = month_of(cutoff_ms)
    dropped = []
    for name in sorted(existing_partitions(conn)):
        y, m = int(name[10:14]), int(name[15:17])
        if (y, m) < (cy, cm):
            conn.execute(text(f"DROP TABLE {name}"))
            dropped.append(name)
    return dropped


# The continuous-aggregate refresh reads the rows of a time range for every point, which the primary
# key (point first) cannot find: without an index on ts it reads the whole chunk (measured: 23 000-26 000
# pages for a minute of 60 000 points in a 3 M-row chunk, against 450-490 with one). TimescaleDB's default
# is a B-tree on ts (7 bytes a reading, maintained on every write); a BRIN index finds the same pages
# (rows arrive in time order) at 0.02 bytes a reading (bench: docs/capacity.md, "TimescaleDB").
TS_INDEX = "readings_ts_brin"
DEFAULT_TS_INDEX = "readings_ts_idx"  # what create_hypertable made before (migration 0014 replaces it)


def create_ts_index(conn: Connection) -> None:
    conn.execute(text(f"CREATE INDEX IF NOT EXISTS {TS_INDEX} ON readings USING brin (ts) "
                      "WITH (pages_per_range = 32, autosummarize = on)"))


def create_hypertable(conn: Connection) -> None:
    conn.execute(text("CREATE EXTENSION IF NOT EXISTS timescaledb"))
    conn.execute(text("SELECT create_hypertable('readings', 'ts', chunk_time_interval => interval '7 days', "
                      "create_default_indexes => false, migrate_data => true)"))
    create_ts_index(conn)
    # compressed by parkmon's maintenance at its configured age (MaintenanceConfig.compress_after_days), not
    # by a background policy: one place decides, as for retention
    conn.execute(text("ALTER TABLE readings SET (timescaledb.compress, timescaledb.compress_segmentby = 'point_id', "
                      "timescaledb.compress_orderby = 'ts')"))


def create_continuous_aggregate(conn: Connection, name: str, width: str, day_origin: str,
                                every_width: bool = False) -> None:
    """A rollup as a continuous aggregate of raw readings, with the columns of the rollup tables
    (schema._rollup); ``day_origin`` given to days only (as migration 0002 made them) or to every width."""
    origin = f", origin => timestamptz '{day_origin}'" if every_width or width == "1 day" else ""
    good = "FILTER (WHERE quality < 64 AND value IS NOT NULL)"
    conn.execute(text(
        f"CREATE MATERIALIZED VIEW {name} WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS "
        f"SELECT point_id, time_bucket(interval '{width}', ts{origin}) AS bucket, count(*)::int AS n_all, "
        f"count(value) {good}::int AS n, sum(value) {good} AS sum, min(value) {good} AS min, "
        f"max(value) {good} AS max, min(ts) {good} AS first_ts, first(value, ts) {good} AS first, "
        f"max(ts) {good} AS last_ts, last(value, ts) {good} AS last "
        f"FROM readings GROUP BY point_id, bucket WITH NO DATA"))


# The rollups as a chain of continuous aggregates (hierarchical, TimescaleDB >= 2.9), as the plain layout
# builds them (rollups.CHAIN): the minutes from raw readings, the hours from the minutes, the days from the
# hours. A continuous aggregate is refreshed by time range, so a day built from raw rows re-read the whole
# day so far of every point at each refresh (8 640 rows a point by the evening at 10-s polling); from the
# hours it reads at most 24 (migration 0016).
HIERARCHY = (("readings_1m", "1 minute", "readings"), ("readings_1h", "1 hour", "readings_1m"),
             ("readings_1d", "1 day", "readings_1h"))


def create_rollup_aggregate(conn: Connection, name: str, width: str, source: str, day_origin: str) -> None:
    """A rollup as a continuous aggregate of ``source`` (raw readings, or the rollup below, same columns as
    schema._rollup: counts and sums add up, first and last are those of the earliest and latest good
    reading). Every level has the day's origin: TimescaleDB asks one origin of a level and the one above
    it, and China's midnight is also a minute's and an hour's start."""
    if source == "readings":
        create_continuous_aggregate(conn, name, width, day_origin, every_width=True)
        return
    bucket = f"time_bucket(interval '{width}', bucket, origin => timestamptz '{day_origin}')"
    conn.execute(text(
        f"CREATE MATERIALIZED VIEW {name} WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS "
        f"SELECT point_id, {bucket} AS bucket, sum(n_all)::int AS n_all, sum(n)::int AS n, sum(sum) AS sum, "
        "min(min) AS min, max(max) AS max, min(first_ts) AS first_ts, "
        "first(first, first_ts) FILTER (WHERE first_ts IS NOT NULL) AS first, max(last_ts) AS last_ts, "
        "last(last, last_ts) FILTER (WHERE last_ts IS NOT NULL) AS last "
        f"FROM {source} GROUP BY point_id, {bucket} WITH NO DATA"))


def in_chain(conn: Connection, name: str, source: str) -> bool:
    """Whether the continuous aggregate ``name`` is computed from ``source`` with the chain's origin."""
    row = conn.execute(text(
        "SELECT p.user_view_name, f.bucket_origin FROM _timescaledb_catalog.continuous_agg c "
        "JOIN _timescaledb_catalog.continuous_aggs_bucket_function f ON f.mat_hypertable_id = c.mat_hypertable_id "
        "LEFT JOIN _timescaledb_catalog.continuous_agg p ON p.mat_hypertable_id = c.parent_mat_hypertable_id "
        "WHERE c.user_view_name = :n"), {"n": name}).first()
    return row is not None and (row[0] or "readings") == source and row[1] is not None
