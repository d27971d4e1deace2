"""Benchmark: TimescaleDB's rollup refresh with the hour and day aggregates computed from raw readings (as
migration 0015 left them) against the chain of migration 0016 (hour from minutes, day from hours).

For each (``--rounds`` times, alternating), on a fresh server as production runs it (bench/ingest_pg.py's
settings): ``--gateways`` x ``--points`` points with half a day of readings every ``--every`` seconds
(12:00 of yesterday in the park's day, UTC+8), the three aggregates refreshed; then
- in order: 30 s of new readings (3 per point) and the refresh parkmon's maintenance runs every 30 s
  (Store.refresh_rollups), three times;
- late: one reading per point at 10:00 of the same day (a gateway replaying its buffer after an outage),
  then the same refresh.
Prints, per layout of the chain, the refresh's wall time and PostgreSQL's CPU (its processes, from /proc;
parallel workers that exit within it are not counted, the wall time is), and the day's rollup of one
point checked against a count of its raw readings.

    python bench/rollup_chain.py                                # 1 500 points, 10-s readings (about 3 min)
    python bench/rollup_chain.py --gateways 1 --points 100 --rounds 1   # short (dev.sh)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg
from _layouts import usable
from _proc import cpu_s
from ingest_pg import durable_park, postgres_pids
from sqlalchemy import create_engine

from ingest.store import migrate, open_store
from ingest.store.rollups import DAY_MS, HOUR_MS, MINUTE_MS
from parkmon.common.clock import now_ms

CHAINS = {"from raw (0015)": "0015", "chain (0016)": "head"}


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _pg_cpu(pids: list[int]) -> dict[int, float]:
    out = {}
    for p in pids:
        with contextlib.suppress(OSError):  # exited (a parallel worker, autovacuum): counted by neither side
            out[p] = cpu_s(p)
    return out


def one(revision: str, args: argparse.Namespace) -> dict[str, Any]:
    with ExitStack() as cleanup:
        url, dsn, _pids, datadir, _pg = durable_park(cleanup, args.gateways, args.points, "timescaledb")
        if revision != "head":
            engine = create_engine(url)
            migrate.downgrade(engine, revision)
            engine.dispose()
        day0 = (now_ms() - DAY_MS + 8 * HOUR_MS) // DAY_MS * DAY_MS - 8 * HOUR_MS  # yesterday, 00:00 UTC+8
        noon = day0 + 12 * HOUR_MS
        with psycopg.connect(dsn, autocommit=True) as c:
            pts = c.execute("SELECT p.id, d.enterprise_id FROM points p JOIN devices d ON d.id = p.device_id"
                            ).fetchall()
            c.execute("INSERT INTO readings (point_id, ts, value, quality) SELECT p.id, b, 1.0, 0 FROM points p, "
                      f"generate_series(%s::timestamptz, %s::timestamptz, interval '{args.every} s') b",
                      (_at(day0), _at(noon - args.every * 1000)))
            for table in ("readings_1m", "readings_1h", "readings_1d"):
                c.execute(f"CALL refresh_continuous_aggregate('{table}', %s::timestamptz, %s::timestamptz)",
                          (_at(day0), _at(day0 + DAY_MS)))
            c.execute("VACUUM ANALYZE readings")
        store = open_store(url)
        out: dict[str, Any] = {"points": len(pts), "raw_rows_in_the_day": len(pts) * 12 * 3600 // args.every}

        def write_and_refresh(times: list[int]) -> tuple[float, float]:
            with psycopg.connect(dsn) as conn:
                with conn.cursor() as cur, \
                        cur.copy("COPY readings (point_id, ts, value, quality) FROM STDIN (FORMAT BINARY)") as cp:
                    cp.set_types(["int4", "timestamptz", "float8", "int2"])
                    for ts in times:
                        for pid, _e in pts:
                            cp.write_row((pid, _at(ts), 1.0, 0))
                with conn.cursor() as cur:  # what the write path records: the minutes touched per enterprise
                    cur.executemany("INSERT INTO rollup_dirty (enterprise_id, from_ms, to_ms) VALUES (%s, %s, %s)",
                                    [(e, ts // MINUTE_MS * MINUTE_MS, ts // MINUTE_MS * MINUTE_MS + MINUTE_MS)
                                     for e in sorted({e for _p, e in pts}) for ts in times])
                conn.commit()
            pids = postgres_pids(datadir)
            c0, w0 = _pg_cpu(pids), time.perf_counter()
            store.refresh_rollups()
            wall, c1 = time.perf_counter() - w0, _pg_cpu(pids)
            return round(wall, 3), round(sum(c1[p] - c0[p] for p in c1 if p in c0), 3)

        try:
            out["in_order"] = [write_and_refresh([noon + k * 30_000 + j * 10_000 for j in range(3)]) for k in range(3)]
            out["late"] = write_and_refresh([day0 + 10 * HOUR_MS + 1_000])
        finally:
            store.close()
        with psycopg.connect(dsn) as c:  # the oracle: the raw readings of the day, counted
            raw = c.execute("SELECT count(*) FROM readings WHERE point_id = %s AND ts >= %s AND ts < %s",
                            (pts[0][0], _at(day0), _at(day0 + DAY_MS))).fetchone()
            day = c.execute("SELECT n_all FROM readings_1d WHERE point_id = %s AND bucket = %s",
                            (pts[0][0], _at(day0))).fetchone()
        out["day_rollup_n_all_vs_raw_count"] = [day[0] if day else None, raw[0] if raw else None]
        return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateways", type=int, default=5)
    ap.add_argument("--points", type=int, default=300, help="points per gateway")
    ap.add_argument("--every", type=int, default=10, help="seconds between a point's readings in the day")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each, alternating")
    args = ap.parse_args()
    layouts, skipped = usable(["timescaledb"])
    if not layouts:
        print(json.dumps({"skipped": skipped}))
        return 0
    for r in range(args.rounds):
        for name, revision in CHAINS.items():
            got = one(revision, args)
            print(json.dumps({"round": r + 1, "aggregates": name, **got,
                              "as": "[wall s, PostgreSQL CPU s] per refresh"}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
