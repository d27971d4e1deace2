"""Benchmark: ingest scaled out - 1, 2 and 4 ingest workers on one MQTT shared subscription -> PostgreSQL.

Each worker is its own process (the real Ingestor: paho thread, bounded queue, 2 writer threads), as
``parkmon ingest run --group`` runs them, all in the group ``$share/bench/parkmon/v1/+/+/+/data`` of one
mosquitto; PostgreSQL runs as production would (fsync and synchronous commit on: bench/ingest_pg.py's
settings, imported).

For every worker count:
1. fill: the workers' persistent sessions are made, then ``--gateways`` x ``--points`` simulated gateways
   (bench/_gateways.py, QoS 1) publish a backlog of ``--seconds`` x ``--expect`` points while no worker
   runs; mosquitto queues each message for one member of the group (and holds it in RAM: its growth
   per queued message is reported).
2. drain: the workers start and empty the queue; points/s committed is measured between 10 % and 90 %
   of the rows (start-up and the last worker's tail left out), with the CPU of each component over
   the same window. Then what was sent is counted back from the database: lost and doubled per
   (gateway, seq) and per reading (bench/_gateways.py stored_vs_sent; the workers' own counters count
   a redelivered message twice). No producer runs meanwhile: the workers and PostgreSQL have the cores to
   themselves, which is as close as 2 cores get to giving each tier its own machine.
3. limit: the same rows written the same idempotent way straight from memory (bench/ingest_pg.py's
   limit_copy) over as many connections as the workers have writers, measured beside the run.
   The WAL PostgreSQL wrote over the drain, per row, is what replication and archiving carry.
Then, once:
- the producer alone (gateways as fast as mosquitto acknowledges, no worker running);
- one bridge's throughput: gateways -> park broker -> bridge (ingest/mqtt/broker.py's
  ``bridge_conf``) -> regional broker -> a counting subscriber;
- the rollups: a back-fill (one run's rows of 20 enterprises refreshed at once, as after a gateway
  replays its buffer) and the steady state (every point with half an hour of minutes and half a day
  of hours already, 30 s of 10-s readings arriving, refreshed: what the ingest service does every 30 s);
- the bytes each reading, rollup row and batch record takes in PostgreSQL (heap + indexes / rows,
  after VACUUM): with the rest, the inputs of docs/capacity.md.

All of it for each PostgreSQL layout in turn (``--layouts``, default both: plain monthly partitions and
TimescaleDB, skipped with the reason where it is not installed; bench/_layouts.py), each on a fresh server.
On TimescaleDB the rollups are a chain of continuous aggregates: the steady state seeds them with raw readings
and their own refresh instead of rollup rows, and the sizes count chunks.

Two cores: PostgreSQL alone takes most of them, so more workers cannot show more than the cores left
over, and other people's processes on the machine take their share too (the "others" column, from
/proc/stat over the same window). The figures to carry to other hardware are the CPU seconds per
million rows of each tier, the bytes per row and the WAL per row.

Prints one JSON object per phase, a summary, and the table side by side.

    python bench/scale.py                                     # full run (about 5 min)
    python bench/scale.py --seconds 2 --expect 100000 --gateways 50 --limit-seconds 2 --bridge-seconds 2 \
        --preload 0                                           # short (dev.sh, under a minute)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import paho.mqtt.client as mqtt
import psycopg
from _gateways import stored_vs_sent
from _layouts import add_option, ensure_months, is_hypertable, readings_size, usable
from _proc import cpu_s, machine_cpu, rss_mb
from ingest_pg import DURABLE, durable_park, emit, limit_copy, postgres_pids, preload, run_gateways, settle
from paho.mqtt.enums import CallbackAPIVersion

from ingest.mqtt.broker import bridge_conf, start_mosquitto
from ingest.mqtt.config import IngestConfig
from ingest.mqtt.consumer import Ingestor
from ingest.store import open_store, pg_layout
from ingest.store.rollups import DAY_MS, HOUR_MS
from parkmon.common import wire
from parkmon.common.clock import now_ms

GROUP = "bench"
DATA = f"{wire.TOPIC_ROOT}/+/+/+/data"
ROLLUPS = ("readings_1m", "readings_1h", "readings_1d")


# ---- one worker (a child process) ------------------------------------------------------------------
def worker_main(port: int, url: str, client_id: str, stats: Path, batch_messages: int) -> None:
    """An ingest worker of the group; writes its counters to ``stats`` four times a second."""
    store = open_store(url)
    ingest = Ingestor(IngestConfig(mqtt_port=port, db_url=url, client_id=client_id, shared_group=GROUP,
                                   max_batch_messages=batch_messages), store)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_a: stop.set())
    ingest.start()
    tmp = stats.with_suffix(".tmp")
    while not stop.wait(0.25):
        s = ingest.stats
        tmp.write_text(json.dumps({"connected": ingest.connected.is_set(), "messages": s.messages,
                                   "samples": s.samples, "inserted": s.inserted, "duplicates": s.duplicates,
                                   "dead_letters": s.dead_letters, "rss_mb": rss_mb(os.getpid())}))
        os.replace(tmp, stats)
    ingest.stop()
    store.close()


# ---- the measuring process -------------------------------------------------------------------------
def prime_sessions(port: int, client_ids: list[str]) -> None:
    """The workers' persistent sessions, subscribed to the group, before anything is published: the
    broker queues each member's share while it is away."""
    for cid in client_ids:
        c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=cid, clean_session=False)
        done = threading.Event()
        c.on_subscribe = lambda *_a, done=done: done.set()
        c.connect("127.0.0.1", port)
        c.loop_start()
        c.subscribe(f"$share/{GROUP}/{DATA}", 1)
        if not done.wait(10):
            raise RuntimeError(f"{cid}: no SUBACK")
        c.disconnect()
        c.loop_stop()


def read_stats(files: list[Path]) -> list[dict[str, Any]]:
    out = []
    for f in files:
        try:
            out.append(json.loads(f.read_text()))
        except (OSError, ValueError):
            out.append({"connected": False, "messages": 0, "samples": 0, "inserted": 0, "duplicates": 0,
                        "dead_letters": 0, "rss_mb": 0})
    return out


def cpu_of(pids: list[int]) -> float:
    total = 0.0
    for p in pids:
        with suppress(FileNotFoundError, ProcessLookupError, IndexError):
            total += cpu_s(p)
    return total


def wal_lsn(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        return str(row[0]) if row else "0/0"


def wal_since(dsn: str, lsn: str) -> int:
    """WAL bytes written since ``lsn``: what replication and archiving have to carry per row."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)::int8", (lsn,)).fetchone()
        return int(row[0]) if row else 0


def contiguous(pids: list[int], connections: int) -> list[int]:
    """Order the point ids so that limit_copy's slices (``pids[k::connections]``) are contiguous blocks,
    as ingest's writers' are (a commit holds whole gateways, whose points have neighbouring ids):
    interleaved slices would make the limit's connections share every index page."""
    out = [0] * len(pids)
    first = 0
    for k in range(connections):
        size = len(out[k::connections])
        out[k::connections] = pids[first:first + size]
        first += size
    return out


def fill(port: int, args: argparse.Namespace, work: Path, t0: int, mosq_pid: int, rate: int,
         seconds: float) -> tuple[dict[str, Any], list[Path]]:
    """The gateways publish while no worker runs, at ``rate`` points/s (0: as fast as the broker takes
    them: the producer side's own limit) for ``seconds``; the figures, and the gateways' stats files."""
    m0, rss0 = cpu_of([mosq_pid]), rss_mb(mosq_pid)
    start = time.perf_counter()
    procs, stats = run_gateways(port, args.gateways, args.points, args.publishers, rate, seconds, work, t0)
    gw_cpu = 0.0
    while any(p.poll() is None for p in procs):
        gw_cpu = max(gw_cpu, cpu_of([p.pid for p in procs]))  # (gone once they exit: keep the last)
        time.sleep(0.2)
    el = time.perf_counter() - start
    parts = [json.loads(f.read_text()) for f in stats]
    sent = sum(p["samples"] for p in parts)
    msgs = sum(p["messages"] for p in parts)
    secs = max(p["seconds"] for p in parts)
    return {"sent_samples": sent, "sent_messages": msgs, "producer_points_per_s": round(sent / secs),
            "producer_messages_per_s": round(msgs / secs),
            "cpu_cores": {"gateways": round(gw_cpu / el, 2), "mosquitto": round((cpu_of([mosq_pid]) - m0) / el, 2)},
            # what holding the queue costs the broker: its memory is the buffer (mosquitto keeps every
            # queued message in RAM; the persistence file is a copy written at each autosave)
            "mosquitto_rss_growth_mb": round(rss_mb(mosq_pid) - rss0, 1),
            "mosquitto_ram_bytes_per_queued_message": round((rss_mb(mosq_pid) - rss0) * 2**20 / max(1, msgs))}, stats


def drain(port: int, url: str, args: argparse.Namespace, ids: list[str], work: Path, sent: int,
          mosq_pid: int, pg_datadir: Path) -> dict[str, Any]:
    """Start the workers on the queued backlog; committed points/s between 10 % and 90 % of the rows."""
    files = [work / f"{cid}.json" for cid in ids]
    dsn = url.replace("postgresql+psycopg", "postgresql")
    wal0 = wal_lsn(dsn)
    procs = [subprocess.Popen([sys.executable, __file__, "worker", str(port), url, cid, str(f),
                               str(args.batch_messages)]) for cid, f in zip(ids, files, strict=True)]
    try:
        timeline: list[tuple[float, int, dict[str, float]]] = []
        deadline = time.monotonic() + 60 + 20 * args.seconds
        inserted = 0  # until every reading sent is a new row: received samples count redeliveries too
        while inserted < sent and time.monotonic() < deadline:
            time.sleep(0.25)
            st = read_stats(files)
            inserted = sum(s["inserted"] for s in st)
            busy, iowait = machine_cpu()
            cpu = {"ingest workers": cpu_of([p.pid for p in procs]), "postgresql": cpu_of(postgres_pids(pg_datadir)),
                   "mosquitto": cpu_of([mosq_pid]), "bench": cpu_of([os.getpid()]), "machine": busy,
                   "iowait": iowait}
            timeline.append((time.perf_counter(), sum(s["inserted"] for s in st), cpu))
        st = read_stats(files)
        wal_bytes = wal_since(dsn, wal0)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
    total = timeline[-1][1] if timeline else 0
    lo = next(x for x in timeline if x[1] >= 0.1 * total)
    hi = next(x for x in timeline if x[1] >= 0.9 * total)
    el = max(1e-9, hi[0] - lo[0])
    rate = (hi[1] - lo[1]) / el
    used = {k: (hi[2][k] - lo[2][k]) / el for k in lo[2]}
    mine = ("ingest workers", "postgresql", "mosquitto")
    cores = {k: round(used[k], 2) for k in mine}
    machine = {"busy": round(used["machine"], 2), "iowait": round(used["iowait"], 2),
               "other processes": round(max(0.0, used["machine"] - sum(used[k] for k in (*mine, "bench"))), 2)}
    rows_m = (hi[1] - lo[1]) / 1e6
    inserted = sum(s["inserted"] for s in st)
    free = (os.cpu_count() or 1) - machine["other processes"]
    return {"points_per_s": round(rate), "window_s": round(el, 1),
            # other people's processes share the machine: points/s per core they left free, to
            # compare runs that had different neighbours
            "points_per_s_per_free_core": round(rate / free) if free > 0.2 else None,
            "wal_bytes_per_row": round(wal_bytes / inserted, 1) if inserted else None,
            "received_samples_with_redeliveries": sum(s["samples"] for s in st),
            "inserted": sum(s["inserted"] for s in st),
            "duplicates": sum(s["duplicates"] for s in st), "dead_letters": sum(s["dead_letters"] for s in st),
            "share_of_messages": [round(s["messages"] / max(1, sum(x["messages"] for x in st)), 3) for s in st],
            "worker_rss_mb": [s["rss_mb"] for s in st],
            "cpu_cores": cores, "cpu_cores_total": round(sum(cores.values()), 2), "machine_cores": machine,
            "cpu_s_per_million_rows": {k: round(used[k] * el / rows_m, 2) for k in mine} if rows_m else {}}


def run_workers(n: int, url: str, dsn: str, pids: list[int], args: argparse.Namespace, work: Path,
                t0: int, pg_datadir: Path) -> dict[str, Any]:
    here = work / f"w{n}"
    here.mkdir()
    broker = start_mosquitto(here / "mq")  # a fresh broker: no session of an earlier run left queueing
    try:
        assert broker.proc is not None
        ids = [f"bench-scale-{k + 1}" for k in range(n)]
        prime_sessions(broker.port, ids)
        # a backlog of about --seconds of draining at --expect points/s, published in a quarter of that
        fill_s = max(1.0, args.seconds / 4)
        f, sent_files = fill(broker.port, args, here, t0, broker.proc.pid, int(args.expect * args.seconds / fill_s),
                             fill_s)
        settle(dsn)
        d = drain(broker.port, url, args, ids, here, f["sent_samples"], broker.proc.pid, pg_datadir)
    finally:
        broker.stop()
    settle(dsn)
    lim = limit_copy(dsn, contiguous(pids, 2 * n), args.points, min(args.batch_messages, args.gateways),
                     args.limit_seconds, t0 + 1_800_000, 2 * n)
    stored = stored_vs_sent(dsn, sent_files)
    return {"phase": "workers", "workers": n, **d, "stored": stored, "lost": stored["lost_readings"],
            "doubled": stored["doubled_readings"],
            "fill": f, "limit_beside": {"rows_per_s": lim["rows_per_s"], "connections": lim["connections"]},
            "ratio_to_limit_beside": round(d["points_per_s"] / lim["rows_per_s"], 2)}


def bridge_run(args: argparse.Namespace, work: Path, t0: int) -> dict[str, Any]:
    """One park's bridge on loopback: gateways -> park broker -> bridge -> regional broker -> a subscriber."""
    region = start_mosquitto(work / "bridge-region")
    park = start_mosquitto(work / "bridge-park", extra_conf=bridge_conf("bench", "127.0.0.1", region.port))
    got = [0, 0]  # messages, bytes
    keys: set[bytes] = set()  # each batch's "gw":…,"seq":… (the payload's first bytes): a repeat is not a batch
    sub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-bridge-sub",
                      clean_session=False)

    def on_message(_c: mqtt.Client, _u: object, m: mqtt.MQTTMessage) -> None:
        got[0] += 1
        got[1] += len(m.payload)
        head = m.payload[:80]
        keys.add(bytes(head[head.index(b'"gw"'):head.index(b',"sent"')]))

    sub.on_message = on_message
    try:
        assert park.proc is not None and region.proc is not None
        sub.connect("127.0.0.1", region.port)
        sub.subscribe(DATA, 1)
        sub.loop_start()
        time.sleep(1.5)  # the bridge connects
        cpu0 = {"park broker": cpu_of([park.proc.pid]), "regional broker": cpu_of([region.proc.pid])}
        start = time.perf_counter()
        procs, stats = run_gateways(park.port, args.gateways, args.points, args.publishers, 0,
                                    args.bridge_seconds, work, t0)
        for p in procs:
            p.wait(120)
        sent = sum(json.loads(f.read_text())["messages"] for f in stats)
        deadline = time.monotonic() + 120
        while len(keys) < sent and time.monotonic() < deadline:
            time.sleep(0.05)
        el = time.perf_counter() - start
        cpu = {"park broker": round((cpu_of([park.proc.pid]) - cpu0["park broker"]) / el, 2),
               "regional broker": round((cpu_of([region.proc.pid]) - cpu0["regional broker"]) / el, 2)}
        return {"phase": "bridge", "messages": got[0], "sent_messages": sent, "lost": sent - len(keys),
                "doubled": got[0] - len(keys),
                "messages_per_s": round(got[0] / el), "points_per_s": round(got[0] * args.points / el),
                "bytes_per_message": round(got[1] / max(1, got[0])), "cpu_cores": cpu,
                "note": "as fast as the gateways publish on loopback: a floor for one bridge, not its ceiling"}
    finally:
        sub.disconnect()
        sub.loop_stop()
        park.stop()
        region.stop()


def rollup_steady(dsn: str, url: str, pg_datadir: Path, cadence_s: float = 30.0) -> dict[str, Any]:
    """What one rollup refresh costs in steady state, per point: the ingest service refreshes every
    30 s, and each refresh recomputes, per point written since the last one, the minute(s) touched
    from raw, the hour from its minutes and the day from its hours. Here every point has half an
    hour of minute rows and half a day of hour rows already (the average position in an hour and a
    day), then 30 s of readings at 10 s (3 per point) arrive and the rollups are refreshed; twice."""
    day0 = (now_ms() + 3 * DAY_MS + 8 * HOUR_MS) // DAY_MS * DAY_MS - 8 * HOUR_MS
    t = day0 + 12 * HOUR_MS + 30 * 60_000  # 12:30 in the park's day (UTC+8)

    def at(ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)

    with psycopg.connect(dsn, autocommit=True) as conn:
        pts = conn.execute("SELECT p.id, d.enterprise_id FROM points p JOIN devices d ON d.id = p.device_id").fetchall()
        ensure_months(conn, pg_layout.months_between(t, t + HOUR_MS))
        # TimescaleDB: the rollups are a chain of continuous aggregates (migration 0016), which take no rows
        # but their own refresh: the same rollup rows are made from raw readings seeded to give them -
        # one a minute over the last half hour, one an hour over the half day before - and refreshed
        hyper = is_hypertable(conn)
        if hyper:
            for first, last, step in ((t - 30 * 60_000, t - 60_000, "1 minute"), (day0, t - 31 * 60_000, "1 hour")):
                conn.execute("INSERT INTO readings (point_id, ts, value, quality) SELECT p.id, b, 1.0, 0 "
                             f"FROM points p, generate_series(%s::timestamptz, %s::timestamptz, interval '{step}') b",
                             (at(first), at(last)))
            for table in ("readings_1m", "readings_1h", "readings_1d"):
                conn.execute(f"CALL refresh_continuous_aggregate('{table}', %s::timestamptz, %s::timestamptz)",
                             (at(day0), at(day0 + DAY_MS)))  # a whole day: the day's aggregate refuses less
        for table, first, step in (("readings_1m", t - 30 * 60_000, "1 minute"), ("readings_1h", day0, "1 hour")):
            if hyper:
                break
            last = t - 60_000 if table == "readings_1m" else t - 31 * 60_000  # the buckets before this one
            conn.execute(f"INSERT INTO {table} (point_id, bucket, n_all, n, sum, min, max, first_ts, first, "
                         "last_ts, last) SELECT p.id, b, 6, 6, 6.0, 1.0, 1.0, b, 1.0, b + interval '50 s', 1.0 "
                         f"FROM points p, generate_series(%s::timestamptz, %s::timestamptz, interval '{step}') b",
                         (at(first), at(last)))
        conn.execute("VACUUM ANALYZE readings_1m")
        conn.execute("VACUUM ANALYZE readings_1h")
    store = open_store(url)  # (VACUUM of a continuous aggregate vacuums its materialization)
    rounds = []
    try:
        for k in range(2):
            t_k = t + k * int(cadence_s * 1000)
            with psycopg.connect(dsn) as conn:
                with conn.cursor() as cur, \
                        cur.copy("COPY readings (point_id, ts, value, quality) FROM STDIN (FORMAT BINARY)") as cp:
                    cp.set_types(["int4", "timestamptz", "float8", "int2"])
                    for j in range(3):
                        ts = at(t_k + j * 10_000)
                        for pid, _e in pts:
                            cp.write_row((pid, ts, 1.0, 0))
                minute = t_k // 60_000 * 60_000
                with conn.cursor() as cur:  # what the write path records: the minutes touched per enterprise
                    cur.executemany("INSERT INTO rollup_dirty (enterprise_id, from_ms, to_ms) VALUES (%s, %s, %s)",
                                    [(e, minute, minute + 60_000) for e in sorted({e for _p, e in pts})])
                conn.commit()
            pg0, w0 = cpu_of(postgres_pids(pg_datadir)), time.perf_counter()
            store.refresh_rollups()
            rounds.append((time.perf_counter() - w0, cpu_of(postgres_pids(pg_datadir)) - pg0))
    finally:
        store.close()
    wall = sum(r[0] for r in rounds) / len(rounds)
    cpu = sum(r[1] for r in rounds) / len(rounds)
    per_point = cpu / len(pts)
    return {"points": len(pts), "seconds_per_refresh": round(wall, 2), "postgresql_cpu_s_per_refresh": round(cpu, 2),
            "postgresql_cpu_ms_per_point_per_refresh": round(per_point * 1000, 4),
            "postgresql_cores_per_million_points_at_30s": round(per_point * 1e6 / cadence_s, 2)}


def backfill_refresh(dsn: str, url: str, pg_datadir: Path, keep_before_ms: int, rows: int, gateways: int,
                     enterprises: int = 20) -> dict[str, Any]:
    """The rollups of one run's rows computed at once, as after a gateway replays a backlog: one run's
    records of ``enterprises`` enterprises (one gateway each) are kept, the rest dropped (their rollups
    are not needed) to keep the bench short; the refresh works enterprise by enterprise."""
    with psycopg.connect(dsn) as conn:
        conn.execute("DELETE FROM rollup_dirty WHERE from_ms >= %s OR enterprise_id NOT IN "
                     "(SELECT DISTINCT enterprise_id FROM rollup_dirty ORDER BY 1 LIMIT %s)",
                     (keep_before_ms, enterprises))
        got = conn.execute("SELECT count(*), count(DISTINCT enterprise_id) FROM rollup_dirty").fetchone()
        conn.commit()
    kept = int(got[1]) if got else 0
    rows = rows * kept // gateways
    store = open_store(url)
    pg0, t = cpu_of(postgres_pids(pg_datadir)), time.perf_counter()
    store.refresh_rollups()
    wall, pg_s = time.perf_counter() - t, cpu_of(postgres_pids(pg_datadir)) - pg0
    store.close()
    return {"enterprises": kept, "rows": rows, "dirty_records": got[0] if got else 0, "seconds": round(wall, 1),
            "postgresql_cpu_s": round(pg_s, 1),
            "postgresql_cpu_s_per_million_rows": round(pg_s / (rows / 1e6), 2) if rows else None}


def sizes(dsn: str, tables: tuple[str, ...]) -> dict[str, Any]:
    """Bytes per row (heap + indexes, after VACUUM) of each table, over all its partitions or chunks
    (TimescaleDB: ``readings`` compressed chunks included, a continuous aggregate's materialization)."""
    out: dict[str, Any] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in tables:
            if table == "readings":
                r = readings_size(conn)
                out[table] = {"rows": r["rows"], "heap_mb": round((r["bytes"] - r["index_bytes"]) / 2**20, 1),
                              "index_mb": round(r["index_bytes"] / 2**20, 1), "bytes_per_row": r["bytes_per_reading"],
                              "heap_bytes_per_row": round((r["bytes"] - r["index_bytes"]) / r["rows"], 1)
                              if r["rows"] else None}
                continue
            conn.execute(f"VACUUM ANALYZE {table}")
            mat = conn.execute("SELECT format('%%I.%%I', materialization_hypertable_schema, "
                               "materialization_hypertable_name) FROM timescaledb_information.continuous_aggregates "
                               "WHERE view_name = %s", (table,)).fetchone() if is_hypertable(conn) else None
            if mat:
                got = conn.execute("SELECT coalesce(sum(total_bytes), 0)::int8, coalesce(sum(index_bytes), 0)::int8 "
                                   "FROM chunks_detailed_size(%s::regclass)", (mat[0],)).fetchone()
                heap, idx = (int(got[0]) - int(got[1]), int(got[1])) if got else (0, 0)
            else:
                parts = [r[0] for r in conn.execute("SELECT relid::text FROM pg_partition_tree(%s::regclass) "
                                                    "WHERE isleaf", (table,))] or [table]
                heap = idx = 0
                for part in parts:
                    got = conn.execute("SELECT pg_table_size(%s::regclass), pg_indexes_size(%s::regclass)",
                                       (part, part)).fetchone()
                    heap, idx = heap + int(got[0] if got else 0), idx + int(got[1] if got else 0)
            got = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            rows = int(got[0]) if got else 0
            out[table] = {"rows": rows, "heap_mb": round(heap / 2**20, 1), "index_mb": round(idx / 2**20, 1),
                          "bytes_per_row": round((heap + idx) / rows, 1) if rows else None,
                          "heap_bytes_per_row": round(heap / rows, 1) if rows else None}
    return out


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        port, url, cid, stats, bm = sys.argv[2:7]
        worker_main(int(port), url, cid, Path(stats), int(bm))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="worker counts to measure")
    ap.add_argument("--seconds", type=float, default=15.0,
                    help="backlog per worker count: this many seconds of draining at --expect points/s")
    ap.add_argument("--expect", type=int, default=150_000, help="points/s the backlog is sized for")
    ap.add_argument("--gateways", type=int, default=200)
    ap.add_argument("--points", type=int, default=300, help="points per gateway (one batch each per cycle)")
    ap.add_argument("--publishers", type=int, default=2, help="processes hosting the gateways")
    ap.add_argument("--batch-messages", type=int, default=100, help="ingest: messages per transaction")
    ap.add_argument("--preload", type=int, default=2_000_000, help="rows stored before measuring")
    ap.add_argument("--limit-seconds", type=float, default=8.0, help="window of the limit beside each run")
    ap.add_argument("--bridge-seconds", type=float, default=10.0, help="one bridge's throughput (0: skip)")
    add_option(ap)
    args = ap.parse_args()
    layouts, skipped = usable(args.layouts)
    for layout, why in skipped.items():
        print(f"skipping the {layout} half: {why}", file=sys.stderr)
        emit({"phase": "skipped", "layout": layout, "why": why})
    summaries = {}
    with tempfile.TemporaryDirectory(prefix="parkmon-bench-scale-") as tmp:
        for layout in layouts:
            here = Path(tmp) / layout
            here.mkdir()
            summaries[layout] = run_layout(layout, args, here)
    emit({"phase": "layouts", **{k: {f: v[f] for f in ("table", "bytes_per_reading", "bytes_per_rollup_row",
                                                       "rollup_refresh_steady_postgresql_cores_per_million_points_at_30s",
                                                       "rollup_backfill_postgresql_cpu_s_per_million_rows",
                                                       "lost_readings", "doubled_readings")}
                                 for k, v in summaries.items()}, "skipped": skipped})
    return 0


def run_layout(layout: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Every phase on a fresh server whose database has ``layout``; returns the summary."""

    def out(obj: dict[str, Any]) -> None:
        emit({"layout": layout, **obj})

    with ExitStack() as cleanup:
        url, dsn, pids, datadir, _pg = durable_park(cleanup, args.gateways, args.points, layout)
        now = now_ms()
        out({"phase": "setup", "points": len(pids), "cores": os.cpu_count(),
              "preload": preload(dsn, pids, args.preload, now) if args.preload else {"rows": 0},
              "postgresql": {k: DURABLE[k] for k in ("fsync", "synchronous_commit", "shared_buffers")}})
        # the producer side alone, as fast as the broker acknowledges (into a waiting session)
        pbroker = start_mosquitto(work / "producer-mq")
        try:
            assert pbroker.proc is not None
            prime_sessions(pbroker.port, ["bench-producer-sink"])
            producer, _files = fill(pbroker.port, args, work, now, pbroker.proc.pid, 0, 2.0)
        finally:
            pbroker.stop()
        out({"phase": "producer", **producer})
        runs = []
        for i, n in enumerate(args.workers):
            settle(dsn)
            r = run_workers(n, url, dsn, pids, args, work, now + (i + 1) * 3_600_000, datadir)
            out(r)
            runs.append(r)
        bridge = bridge_run(args, work, now + 50 * 3_600_000) if args.bridge_seconds else None
        if bridge:
            out(bridge)
        st = sizes(dsn, ("readings", "gateway_batches"))
        backfill = backfill_refresh(dsn, url, datadir, now + 2 * 3_600_000, runs[0]["inserted"], args.gateways)
        steady = rollup_steady(dsn, url, datadir)
        st.update(sizes(dsn, ROLLUPS))  # after both refreshes: with the churn a refresh leaves
        out({"phase": "storage", **st})
        out({"phase": "rollup_refresh", "backfill": backfill, "steady_every_30s": steady})
        one = runs[0]["points_per_s"]
        one_free = runs[0]["points_per_s_per_free_core"] or 1
        table = [{"workers": r["workers"], "points_per_s": r["points_per_s"],
                  "vs_first": round(r["points_per_s"] / one, 2),
                  "per_free_core": r["points_per_s_per_free_core"],
                  "per_free_core_vs_first": round((r["points_per_s_per_free_core"] or 0) / one_free, 2),
                  "limit_beside": r["limit_beside"]["rows_per_s"], "ratio_to_limit": r["ratio_to_limit_beside"],
                  "cores": r["cpu_cores"], "shares": r["share_of_messages"], "lost": r["lost"],
                  "doubled": r["doubled"], "redeliveries_absorbed": r["duplicates"], "machine": r["machine_cores"],
                  "wal_bytes_per_row": r["wal_bytes_per_row"]}
                 for r in runs]
        busiest = runs[-1]["cpu_cores"]
        summary: dict[str, Any] = {
            "phase": "summary", "table": table, "producer_points_per_s": producer["producer_points_per_s"],
              "cpu_s_per_million_rows": {r["workers"]: r["cpu_s_per_million_rows"] for r in runs},
              "bytes_per_reading": st["readings"]["bytes_per_row"],
              "bytes_per_rollup_row": {k: st[k]["bytes_per_row"] for k in ROLLUPS},
              "bytes_per_batch_record": st["gateway_batches"]["bytes_per_row"],
              "rollup_refresh_steady_postgresql_cores_per_million_points_at_30s":
                  steady["postgresql_cores_per_million_points_at_30s"],
              "rollup_backfill_postgresql_cpu_s_per_million_rows": backfill["postgresql_cpu_s_per_million_rows"],
              "bridge_messages_per_s": bridge["messages_per_s"] if bridge else None,
              "bottleneck": f"CPU: {runs[-1]['cpu_cores_total']:.2f} of {os.cpu_count()} cores busy with "
                            f"{runs[-1]['workers']} workers, PostgreSQL {busiest['postgresql']}",
              # from the rows stored against what was sent, per reading and per (gateway, seq)
              **{k: sum(r["stored"][k] for r in runs) for k in ("lost_readings", "doubled_readings",
                                                                "lost_batches", "doubled_batches")}}
        out(summary)
        print(f"\n{layout}:")
        print(f"{'workers':>7} {'points/s':>9} {'x first':>7} {'/free core':>10} {'x first':>7} {'limit':>8} "
              f"{'ratio':>5} {'ingest':>6} {'pg':>5} {'mosq':>5} {'others':>6} {'iowait':>6} {'WAL B/row':>9}  shares")
        for r in table:
            c = r["cores"]
            print(f"{r['workers']:>7} {r['points_per_s']:>9,} {r['vs_first']:>7} {r['per_free_core'] or 0:>10,} "
                  f"{r['per_free_core_vs_first']:>7} {r['limit_beside']:>8,} "
                  f"{r['ratio_to_limit']:>5} {c['ingest workers']:>6} {c['postgresql']:>5} {c['mosquitto']:>5} "
                  f"{r['machine']['other processes']:>6} {r['machine']['iowait']:>6} {r['wal_bytes_per_row']:>9}  "
                  f"{' '.join(f'{s:.2f}' for s in r['shares'])}")
        print(f"(cores busy over the drain window, of {os.cpu_count()}; others: processes not in the bench; "
              f"/free core: points/s over the cores the others left; limit: "
              f"idempotent COPY from memory, 2 connections per worker, beside the run; producer alone: "
              f"{producer['producer_points_per_s']:,} points/s)")
        return summary


if __name__ == "__main__":
    sys.exit(main())
