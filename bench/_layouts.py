"""The two PostgreSQL layouts the benchmarks measure side by side (bench/ingest_pg.py, bench/scale.py).

- ``partitioned``: plain PostgreSQL, ``readings`` range-partitioned by month (what the test servers
  default to);
- ``timescaledb``: the production layout, ``readings`` a hypertable, the rollups continuous aggregates,
  compression by parkmon's maintenance.

A database's layout is chosen when it is first migrated (ingest/store/pg_layout.py): the bench sets
``parkmon.pg_layout`` on the database before, so every process that opens it later (the shipped
``parkmon ingest run`` too) gets the same one. Sizes are counted the way each layout stores them:
partitions for the plain one, ``chunks_detailed_size`` for TimescaleDB (compressed chunks included),
always divided by the rows counted in the table, after VACUUM.
"""

from __future__ import annotations

import argparse
from typing import Any

import psycopg

LAYOUTS = ("partitioned", "timescaledb")


def add_option(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--layouts", nargs="+", choices=LAYOUTS, default=list(LAYOUTS),
                    help="PostgreSQL layouts to measure, one after the other in the same run (default: both; "
                         "timescaledb is skipped, with the reason, where it is not installed)")


def usable(wanted: list[str]) -> tuple[list[str], dict[str, str]]:
    """The layouts this machine can run, and why the others are skipped."""
    from tests.pg_server import timescaledb_missing

    missing = timescaledb_missing() if "timescaledb" in wanted else None
    skipped = {"timescaledb": missing} if missing else {}
    return [x for x in wanted if x not in skipped], skipped


def set_layout(dsn: str, layout: str) -> None:
    """Before the schema is made: the layout this database gets, for every process that migrates it."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        db = conn.execute("SELECT current_database()").fetchone()
        conn.execute(f'ALTER DATABASE "{db[0] if db else ""}" SET parkmon.pg_layout = \'{layout}\'')


def is_hypertable(conn: psycopg.Connection[Any]) -> bool:
    return conn.execute("SELECT 1 FROM pg_extension e, timescaledb_information.hypertables h "
                        "WHERE e.extname = 'timescaledb' AND h.hypertable_name = 'readings'").fetchone() is not None \
        if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone() else False


def ensure_months(conn: psycopg.Connection[Any], months: list[tuple[int, int]]) -> None:
    """Plain layout: the monthly partitions bulk rows go to (a hypertable makes its chunks itself)."""
    from ingest.store import pg_layout

    if is_hypertable(conn):
        return
    for y, m in months:
        ny, nm = (y + 1, 1) if m == 12 else (y, m + 1)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {pg_layout.partition_name(y, m)} PARTITION OF readings "
                     f"FOR VALUES FROM ('{y:04d}-{m:02d}-01 00:00+00') TO ('{ny:04d}-{nm:02d}-01 00:00+00')")


def readings_size(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Bytes of ``readings`` (heap + indexes + TOAST, compressed chunks included) per row counted,
    after VACUUM; ``conn`` in autocommit."""
    conn.execute("VACUUM ANALYZE readings")
    got = conn.execute("SELECT count(*) FROM readings").fetchone()
    rows = int(got[0]) if got else 0
    if is_hypertable(conn):
        total = conn.execute("SELECT coalesce(sum(total_bytes), 0)::int8, coalesce(sum(index_bytes), 0)::int8 "
                             "FROM chunks_detailed_size('readings')").fetchone()
        hyper = conn.execute("SELECT total_bytes FROM hypertable_detailed_size('readings')").fetchone()
        nbytes, idx = (int(total[0]), int(total[1])) if total else (0, 0)
        extra = {"hypertable_detailed_size_bytes": int(hyper[0]) if hyper and hyper[0] is not None else None}
    else:
        total = conn.execute("SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::int8, "
                             "coalesce(sum(pg_indexes_size(relid)), 0)::int8 FROM pg_partition_tree('readings') "
                             "WHERE isleaf").fetchone()
        nbytes, idx = (int(total[0]), int(total[1])) if total else (0, 0)
        extra = {}
    return {"rows": rows, "bytes": nbytes, "index_bytes": idx,
            "bytes_per_reading": round(nbytes / rows, 1) if rows else None, **extra}


def indexes(conn: psycopg.Connection[Any]) -> list[str]:
    """The indexes of ``readings`` (its definition, as PostgreSQL prints it)."""
    return [r[0] for r in conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'readings'")]
