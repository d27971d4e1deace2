"""Bytes per stored reading of the simulated park's 1-minute meter data, before and after compression.

The data: ``days`` days of the simulated park (simulators/, park_default.yaml: every meter and gauge of
every enterprise, one tick a minute) written through the store's own write path by tests/sim_day.py's
``load_day``, as gateways would send it. On TimescaleDB the chunks are then compressed the way parkmon's
maintenance does it (``compress_raw_before``: segment by point, order by time). Sizes after VACUUM
(bench/_layouts.readings_size), divided by the rows counted in ``readings``.
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from _layouts import readings_size, set_layout

from ingest.store import open_store
from parkmon.common.clock import CHINA


def park_compression(pg: Any, layout: str, days: int) -> dict[str, Any]:
    """``pg``: a tests.pg_server.Postgres; a new database of ``layout`` holding ``days`` simulated days."""
    from tests.sim_day import load_day

    url = pg.create_database()
    dsn = url.replace("postgresql+psycopg", "postgresql")
    set_layout(dsn, layout)
    start = int(datetime(2026, 1, 5, tzinfo=CHINA).timestamp() * 1000)  # a Monday, inside one 7-day chunk's span
    store = open_store(url)
    try:
        store.create_schema()
        t = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="parkmon-bench-sim-") as tmp:
            load_day(store, start, Path(tmp), hours=24 * days)
        loaded_s = time.perf_counter() - t
        with psycopg.connect(dsn, autocommit=True) as conn:
            points = conn.execute("SELECT count(DISTINCT point_id) FROM readings").fetchone()
            before = readings_size(conn)
        out: dict[str, Any] = {"phase": "compression", "layout": layout, "days": days,
                               "points": points[0] if points else 0, "load_s": round(loaded_s, 1),
                               "uncompressed": before, "bytes_per_reading_uncompressed": before["bytes_per_reading"]}
        t = time.perf_counter()
        chunks = store.compress_raw_before(start + (days + 30) * 86_400_000)  # every chunk: all are "old"
        if chunks is None:
            return {**out, "compressed": None, "note": "plain PostgreSQL has no native compression"}
        compress_s = time.perf_counter() - t
        with psycopg.connect(dsn, autocommit=True) as conn:
            after = readings_size(conn)
            stats = conn.execute("SELECT sum(before_compression_total_bytes)::float8, "
                                 "sum(after_compression_total_bytes)::float8 "
                                 "FROM chunk_compression_stats('readings')").fetchone()
        return {**out, "chunks_compressed": chunks, "compress_s": round(compress_s, 2), "compressed": after,
                "bytes_per_reading_compressed": after["bytes_per_reading"],
                "chunk_compression_stats_ratio": round(stats[0] / stats[1], 1) if stats and stats[1] else None,
                "goal": "<= 12 bytes per reading compressed"}
    finally:
        store.close()
