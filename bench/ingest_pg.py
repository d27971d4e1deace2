"""Benchmark: ingest from MQTT into PostgreSQL, against the machine's own limit, measured side by side -
on plain PostgreSQL (monthly partitions) and on TimescaleDB (the production layout), one after the other.

For each layout (``--layouts``, default both; TimescaleDB is skipped, with the reason, where it is not
installed), on a fresh server:
1. PostgreSQL runs as production would (fsync and synchronous commit on); the readings table already
   holds ``--preload`` rows (10 million for the full run) of the same points, in earlier months.
   The simulated park's 1-minute meter data (``--compress-days`` days, bench/_parksize.py) is stored
   in a database of its own on the same server: bytes per reading, and on TimescaleDB again after
   parkmon's maintenance compressed it.
2. limit: the same rows written the same idempotent way straight from memory - binary COPY into a
   temporary table, INSERT ... ON CONFLICT DO NOTHING into readings, commits shaped like ingest's -
   with no MQTT, decoding or registry work in between. Also the store's own write path fed with
   already-decoded batches (``store_path``), which adds the registry, batch records and rollup log.
3. sustained: gateways (``--gateways`` x ``--points``, one batch per gateway per cycle, QoS 1, in
   ``--publishers`` processes) publish through a real mosquitto to ingest at rising offered rates
   (``--ramp``, fractions of the limit measured just before each run); the sustained rate is the
   highest one ingest keeps up with.
   The ingest ramped is the first of ``--ingest``: ``shipped`` is ``parkmon ingest run`` as it ships
   (its own process, rollup maintenance every 30 s, alert engine, board feed: bench/_shipped.py, its
   CPU per thread from bench/_threads.py), ``bare`` the Ingestor in this process with those off (as
   the README's older figure was measured). After each run what was sent is counted back from the
   database: lost and doubled per (gateway, seq) and per reading (ingest's own counters count a
   redelivered message twice, so they cannot say what was lost). The limit is measured again beside
   every probe: each adds millions of rows and the table slows as it grows. A rate that fails is
   tried once more (a checkpoint can sink one window).
   saturated: each of ``--ingest`` offered 1.15 x the limit, so it commits as fast as it can, like
   the limit does; compared with the limit measured just before and just after.
4. at 80 %: the same gateways paced at 80 % of the sustained rate; the delay from a batch being
   sent to its commit (p50/p95/p99; bare only), ingest's memory, CPU seconds per component.

Prints one JSON object per phase (each with its layout), a summary per layout and one across them.

    python bench/ingest_pg.py                       # full run, both layouts (10 M rows stored each)
    python bench/ingest_pg.py --preload 300000 --seconds 4 --warmup 2 --limit-seconds 3 --ramp 0.35 \
        --ingest shipped --compress-days 1        # short (CI: a few minutes for both layouts)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg
from _gateways import end_session, point_names, stored_vs_sent
from _layouts import add_option, ensure_months, indexes, readings_size, set_layout, usable
from _parksize import park_compression
from _proc import cpu_s, rss_mb
from _shipped import ShippedIngest

from ingest.mqtt.broker import start_mosquitto
from ingest.mqtt.config import IngestConfig
from ingest.mqtt.consumer import Ingestor
from ingest.store import open_store, pg_layout
from ingest.store.base import IncomingBatch
from parkmon.common import wire
from parkmon.common.clock import now_ms

DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on", "shared_buffers": "1GB",
           "max_wal_size": "8GB", "checkpoint_timeout": "30min", "max_connections": "50"}
_TEMP = ("CREATE TEMP TABLE IF NOT EXISTS readings_in (point_id int4, ts int8, value float8, quality int2) "
         "ON COMMIT DELETE ROWS")
_MERGE = ("INSERT INTO readings (point_id, ts, value, quality) SELECT point_id, "
          "timestamptz 'epoch' + ts * interval '1 millisecond', value, quality FROM readings_in "
          "ON CONFLICT (point_id, ts) DO NOTHING")


def emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def register(dsn: str, gateways: int, points: int) -> list[int]:
    """The park's registry in bulk (as a park's catalogue would have made it); returns point ids."""
    names = point_names(points)
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO parks (key, name_zh, name_en, park_class, region) "
                     "VALUES ('bench', '压测园区', 'bench park', 'none', '')")
        conn.execute("INSERT INTO enterprises (park_id, key, name) SELECT 1, 'e' || lpad(g::text, 4, '0'), '' "
                     "FROM generate_series(0, %s) g", (gateways - 1,))
        devs = sorted({n.split(".")[0] for n in names})
        with conn.cursor().copy("COPY devices (enterprise_id, key, name) FROM STDIN") as cp:
            for e in range(1, gateways + 1):
                for d in devs:
                    cp.write_row((e, d, ""))
        dev_ids = {(e, k): i for i, e, k in conn.execute("SELECT id, enterprise_id, key FROM devices")}
        with conn.cursor().copy("COPY points (device_id, key, name, metric, unit, kind, label) FROM STDIN") as cp:
            for g in range(gateways):
                for n in names:
                    d, p = n.split(".")
                    cp.write_row((dev_ids[(g + 1, d)], f"bench.e{g:04d}.{n}", p, "elec.active_power", "kW",
                                  "instant", ""))
        return [r[0] for r in conn.execute("SELECT id FROM points ORDER BY id")]


def preload(dsn: str, pids: list[int], rows: int, end_ms: int) -> dict[str, Any]:
    """History: ``rows`` readings of the same points at 1-minute steps ending a day before ``end_ms``."""
    steps = max(1, rows // len(pids))
    first = end_ms - 86_400_000 - steps * 60_000
    t = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        ensure_months(conn, pg_layout.months_between(first, end_ms + 40 * 86_400_000))
        done = 0
        for chunk in range(0, steps, 20):  # a commit per 20 steps: progress, and bounded WAL per commit
            with conn.transaction(), conn.cursor() as cur, \
                    cur.copy("COPY readings (point_id, ts, value, quality) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["int4", "timestamptz", "float8", "int2"])
                for step in range(chunk, min(steps, chunk + 20)):
                    ts = datetime.fromtimestamp((first + step * 60_000) / 1000, tz=UTC)
                    for pid in pids:
                        cp.write_row((pid, ts, 1.0, 0))
                    done += len(pids)
            print(f"  preload {done:,}/{steps * len(pids):,} rows", file=sys.stderr, end="\r", flush=True)
        conn.execute("VACUUM ANALYZE readings")
    print(file=sys.stderr)
    return {"rows": done, "seconds": round(time.perf_counter() - t, 1)}


def settle(dsn: str) -> None:
    """Every phase starts from the same state: the previous phase's dirty pages written out and its
    rows vacuumed, so no phase pays for another's checkpoint or autovacuum."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE readings")
        conn.execute("CHECKPOINT")


def commit_shape(pids: list[int], per_msg: int, msgs: int, cycle: int, t0: int) -> list[tuple[int, int, float, int]]:
    """The rows of one ingest commit: ``msgs`` batches of ``per_msg`` points, walking round the points;
    each lap is one second later, so every (point, ts) is new."""
    out: list[tuple[int, int, float, int]] = []
    n, total = len(pids), per_msg * msgs
    first = cycle * total
    while total:
        lap, at = divmod(first, n)
        take = min(total, n - at)
        ts = t0 + lap * 1000
        out.extend([(pid, ts, 1.5, 0) for pid in pids[at:at + take]])
        first, total = first + take, total - take
    return out


def run_threads(target: Callable[[int], None], n: int) -> None:
    threads = [threading.Thread(target=target, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def limit_copy(dsn: str, pids: list[int], per_msg: int, msgs: int, seconds: float, t0: int,
               connections: int) -> dict[str, Any]:
    """The machine's limit: idempotent COPY of in-memory rows, commits shaped like ingest's, over as
    many connections as ingest has writers (each its own slice of the points)."""
    counts = [0] * connections
    commits = [0] * connections
    cpu = [0.0] * connections  # each thread's own CPU: building rows and psycopg's COPY
    start = time.perf_counter()

    def one(k: int) -> None:
        mine = pids[k::connections]
        c0 = time.thread_time()
        with psycopg.connect(dsn) as conn:
            conn.execute(_TEMP)
            conn.commit()
            cycle = 0
            while time.perf_counter() - start < seconds:
                rows = commit_shape(mine, per_msg, msgs, cycle, t0)
                with conn.cursor() as cur:
                    with cur.copy("COPY readings_in (point_id, ts, value, quality) FROM STDIN (FORMAT BINARY)") as cp:
                        cp.set_types(["int4", "int8", "float8", "int2"])
                        for r in rows:
                            cp.write_row(r)
                    cur.execute(_MERGE)
                    counts[k] += cur.rowcount
                conn.commit()
                cycle += 1
            commits[k] = cycle
        cpu[k] = time.thread_time() - c0

    run_threads(one, connections)
    el = time.perf_counter() - start
    return {"phase": "limit_copy", "rows_per_s": round(sum(counts) / el), "rows": sum(counts),
            "commits": sum(commits), "rows_per_commit": per_msg * msgs, "connections": connections,
            "client_cpu_us_per_row": round(sum(cpu) / max(sum(counts), 1) * 1e6, 2)}


def limit_store(url: str, gateways: int, points: int, msgs: int, seconds: float, t0: int,
                threads: int) -> dict[str, Any]:
    """The store's own write path fed decoded batches (from as many threads as ingest has writers):
    adds registry lookups, batch records and the rollup log to the limit."""
    names = point_names(points)
    store = open_store(url)
    store.create_schema()
    counts = [0] * threads
    cpu = [0.0] * threads  # each thread's own CPU in the store's write path (ids, records, COPY)
    start = time.perf_counter()

    def one(k: int) -> None:
        cycle, write_cpu = 0, 0.0
        while time.perf_counter() - start < seconds:
            items = []
            for j in range(msgs):
                n = (cycle * threads + k) * msgs + j
                g, rnd = n % gateways, n // gateways
                ts = t0 + rnd * 1000
                items.append(IncomingBatch("bench", f"e{g:04d}", f"gw{g:04d}", wire.Batch(
                    1, f"gw{g:04d}", 10**9 + rnd, ts, [(nm, ts, 2.5, 0) for nm in names]), ts))
            c0 = time.thread_time()
            counts[k] += store.write_batches(items).inserted
            write_cpu += time.thread_time() - c0
            cycle += 1
        cpu[k] = write_cpu

    run_threads(one, threads)
    el = time.perf_counter() - start
    store.close()
    return {"phase": "limit_store_path", "rows_per_s": round(sum(counts) / el), "rows": sum(counts),
            "threads": threads, "write_batches_cpu_us_per_row": round(sum(cpu) / max(sum(counts), 1) * 1e6, 2)}


class Sampler:
    """CPU seconds and memory of the components, sampled once a second."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids
        self.rss: list[float] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def cpu(self) -> dict[str, float]:
        out = {}
        for name, ps in self.pids.items():
            total = 0.0
            for p in ps:
                with suppress(FileNotFoundError, ProcessLookupError):
                    total += cpu_s(p)
            out[name] = total
        return out

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.rss.append(rss_mb(os.getpid()))

    def start(self) -> None:
        self._t.start()

    def stop(self) -> None:
        self._stop.set()


def postgres_pids(datadir: Path) -> list[int]:
    """The postmaster and every backend it has now (writers connect lazily: ask again when measuring)."""
    master = int((datadir / "postmaster.pid").read_text().split()[0])
    out = [master]
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == master:
                out.append(int(d.name))
    return out


def run_gateways(port: int, gateways: int, points: int, publishers: int, rate: int, seconds: float,
                 work: Path, t0: int) -> tuple[list[subprocess.Popen[bytes]], list[Path]]:
    procs, stats = [], []
    per = -(-gateways // publishers)
    for i in range(publishers):
        first, count = i * per, min(per, gateways - i * per)
        f = work / f"gw{i}-{t0}.json"
        procs.append(subprocess.Popen([sys.executable, str(Path(__file__).with_name("_gateways.py")), str(port),
                                       str(first), str(count), str(points), str(rate // publishers),
                                       str(seconds), str(f), str(t0)]))
        stats.append(f)
    return procs, stats


def pipeline(url: str, broker: Any, args: argparse.Namespace, rate: int, t0: int, work: Path,
             pg_datadir: Path, kind: str = "bare") -> dict[str, Any]:
    """One run of gateways -> mosquitto -> ingest -> PostgreSQL at ``rate`` points/s. ``kind``: ``bare``,
    the Ingestor in this process with rollups, alerts and board feed off (as the README's figure was
    measured); ``shipped``, the ``parkmon ingest run`` command in its own process with its defaults
    (bench/_shipped.py), measured over at least ``--shipped-min-seconds`` so one rollup refresh (every
    30 s) falls inside the window."""
    store = open_store(url)
    store.create_schema()
    broker_port = broker.port
    delays: list[int] = []
    measuring = threading.Event()
    queued = [0]
    done = threading.Event()
    seconds = args.seconds
    if kind == "shipped":
        store.refresh_rollups()  # the earlier runs' rows: each run's maintenance refreshes only its own
        seconds = max(seconds, args.shipped_min_seconds)
        # one client id for every run, its session ended after each (end_session; see below)
        ship = ShippedIngest(url, broker_port, "bench-shipped", work / "shipped.log")
        ship.connected.wait(30)
        ingest_pid = ship.pid
        inserted: Callable[[], int] = ship.inserted
    else:
        # one client id for every run, its session ended after each: ingest's session is persistent, and
        # one left behind stays subscribed, so mosquitto queued every later message once more for it
        ingest = Ingestor(IngestConfig(mqtt_port=broker_port, db_url=url, client_id="bench-ingest",
                                       max_batch_messages=args.batch_messages, writers=args.writers), store)

        def on_commit(batches: list[IncomingBatch], commit_ms: int) -> None:
            if measuring.is_set():
                delays.extend(commit_ms - b.batch.sent for b in batches)

        ingest.commit_listeners.append(on_commit)
        ingest.start()
        ingest.connected.wait(10)
        ingest_pid = os.getpid()
        inserted = lambda: ingest.stats.inserted  # noqa: E731

        def watch_queue() -> None:  # back-pressure: what waits inside ingest stays within the broker's window
            while not done.wait(0.1):
                queued[0] = max(queued[0], ingest._queue.qsize())

        threading.Thread(target=watch_queue, daemon=True).start()
    # the shipped command's first seconds load its alert rules' state and the registry, and its alert
    # engine's first tick (at 5 s) judges the past hour, which it then does once an hour: not its pace
    warmup = max(args.warmup, 7.0) if kind == "shipped" else args.warmup
    procs, stats_files = run_gateways(broker_port, args.gateways, args.points, args.publishers, rate,
                                      warmup + seconds, work, t0)
    name = "ingest (parkmon ingest run)" if kind == "shipped" else "ingest (this process)"
    sampler = Sampler({name: [ingest_pid], "postgresql": [], "mosquitto": [broker.proc.pid],
                       "gateways": [p.pid for p in procs]})
    time.sleep(warmup)
    sampler.pids["postgresql"] = postgres_pids(pg_datadir)
    cpu0, ins0, t_start = sampler.cpu(), inserted(), time.perf_counter()
    threads0 = ship.thread_cpu() if kind == "shipped" else {}
    measuring.set()
    sampler.start()
    time.sleep(seconds)
    measuring.clear()
    cpu1, ins1, t_end = sampler.cpu(), inserted(), time.perf_counter()
    threads1 = ship.thread_cpu() if kind == "shipped" else {}
    el = t_end - t_start
    if kind == "shipped":  # its log says the count once a second: the rate between two of its lines
        (a_t, a_n), (b_t, b_n) = ship.at(t_start), ship.at(t_end)
        ins0, ins1, el = a_n, b_n, max(1e-3, b_t - a_t)
    sampler.stop()
    for p in procs:
        p.wait(120)
    sent_at = time.perf_counter()
    sent = sum(json.loads(f.read_text())["samples"] for f in stats_files)
    # drain until every reading sent is a new row (received messages would count redeliveries too)
    deadline = time.monotonic() + 300
    while inserted() < sent and time.monotonic() < deadline:
        time.sleep(0.2)
    drain_s = time.perf_counter() - sent_at
    done.set()
    if kind == "shipped":
        ship.stop()
        end_session(broker_port, "bench-shipped")
        rss: list[float] = []
        received = None
    else:
        ingest.stop()
        end_session(broker_port, "bench-ingest")
        rss = sampler.rss
        received = ingest.stats.samples
    store.close()
    stored = stored_vs_sent(url.replace("postgresql+psycopg", "postgresql"), stats_files)
    delays.sort()

    def pct(q: float) -> float | None:
        return round(delays[min(len(delays) - 1, int(q * len(delays)))] / 1000, 3) if delays else None

    cpu = {k: round(cpu1[k] - cpu0[k], 1) for k in cpu0}
    rows = ins1 - ins0
    if kind == "shipped" and rows == 0:  # keep what the command said (its log goes with the directory)
        lines = ship.log.read_text(encoding="utf-8").splitlines()
        print("!!! parkmon ingest run committed no row its log could see in the window; its last lines:\n"
              + "\n".join(lines[-60:]), file=sys.stderr)
    return {"ingest": kind, "rows_per_s": round(rows / el), "sent_samples": sent, "stored": stored,
            "received_samples_with_redeliveries": received, "inserted_total": inserted(),
            "delay_s": {"p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99)},
            "drain_after_gateways_stopped_s": round(drain_s, 1),
            "ingest_queue_max_messages": queued[0] if kind == "bare" else None,
            "ingest_rss_mb": {"min": min(rss, default=0), "max": max(rss, default=0), "last": rss[-1] if rss else 0},
            "cpu_s": cpu, "cpu_share_of_2_cores": round(sum(cpu.values()) / (t_end - t_start) / 2, 2),
            "ingest_cpu_us_per_row": round(cpu[name] / rows * 1e6, 2) if rows else None,
            # the shipped command's threads (its CPU over the window, by thread: where the cores go)
            "ingest_threads_cpu_s": {k: round(v - threads0.get(k, 0.0), 2) for k, v in sorted(threads1.items())
                                     if v - threads0.get(k, 0.0) >= 0.05} or None,
            "postgresql_cpu_us_per_row": round(cpu["postgresql"] / rows * 1e6, 2) if rows else None,
            "seconds": round(el, 1)}


def durable_park(cleanup: ExitStack, gateways: int, points: int, layout: str = "partitioned"
                 ) -> tuple[str, str, list[int], Path, Any]:
    """A PostgreSQL server as production runs it (DURABLE; preloading TimescaleDB when installed), a
    database of ``layout`` with parkmon's schema, a park registered: (SQLAlchemy URL, libpq DSN, point
    ids, data directory, the server). The server goes when ``cleanup`` closes."""
    from tests.pg_server import start_postgres

    pg = start_postgres(DURABLE)
    cleanup.callback(pg.destroy)
    url = pg.create_database()
    dsn = url.replace("postgresql+psycopg", "postgresql")
    set_layout(dsn, layout)
    store = open_store(url)
    store.create_schema()
    store.close()
    return url, dsn, register(dsn, gateways, points), pg.datadir, pg


def run_layout(layout: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Every phase on a fresh server whose database has ``layout``; returns the summary."""

    def out(obj: dict[str, Any]) -> None:
        emit({"layout": layout, **obj})

    kinds: list[str] = args.ingest
    with ExitStack() as cleanup:
        url, dsn, pids, datadir, pg = durable_park(cleanup, args.gateways, args.points, layout)
        now = now_ms()
        with psycopg.connect(dsn) as conn:
            idx = indexes(conn)
        out({"phase": "setup", "points": len(pids), "preload": preload(dsn, pids, args.preload, now),
             "readings_indexes": idx,
             "postgresql": {k: DURABLE[k] for k in ("fsync", "synchronous_commit", "shared_buffers")}})
        comp = park_compression(pg, layout, args.compress_days) if args.compress_days else None
        if comp:
            out(comp)
        # ingest commits are ~batch_messages gateways' batches; the limit commits the same shape
        settle(dsn)
        lim = limit_copy(dsn, pids, args.points, min(args.batch_messages, args.gateways), args.seconds,
                         now - 3_600_000, args.writers)
        out(lim)
        settle(dsn)
        out(limit_store(url, args.gateways, args.points, min(args.batch_messages, args.gateways), args.seconds,
                        now - 7_200_000, args.writers))
        broker = start_mosquitto(work / f"mq-{layout}")
        cleanup.callback(broker.stop)
        # sustained = the highest offered rate the pipeline keeps up with (commits >= 97 % of it, and its
        # p99 delay under 5 s - bare - or the backlog gone within 5 s of the gateways stopping - shipped,
        # whose commits this process cannot see); offering more than that only grows a backlog in the broker
        sustained: dict[str, Any] | None = None
        # every probe adds millions of rows, and a bigger table is a slower one: the limit is measured
        # again beside each probe, so each is compared with the limit of the table as it then was
        limits: list[int] = []
        # a checkpoint or autovacuum landing inside one window can sink a probe that the pipeline
        # otherwise keeps up with: a rate counts as too high only when it fails twice running
        attempts = [(frac, a) for frac in args.ramp for a in (1, 2)]
        failed_at: float | None = None
        counted: list[dict[str, int]] = []  # every run's readings and batches counted back from the database
        for day, (frac, attempt) in enumerate(attempts, start=1):
            if attempt == 2 and failed_at != frac:
                continue  # the first attempt kept up: no second one
            settle(dsn)
            beside = limit_copy(dsn, pids, args.points, min(args.batch_messages, args.gateways),
                                args.limit_seconds, now + (day + 40) * 3_600_000, args.writers)
            limits.append(beside["rows_per_s"])
            # a fraction of the limit just measured, not of the first: the goal is a ratio to the limit beside
            # the run, and the limit falls as probes add rows (it moved 197 000-380 000 rows/s in one run)
            rate = int(beside["rows_per_s"] * frac)
            settle(dsn)
            probe = pipeline(url, broker, args, rate, now + day * 3_600_000, work, datadir, kinds[0])
            counted.append(probe["stored"])
            backlog_ok = (probe["delay_s"]["p99"] or 99) < 5.0 if kinds[0] == "bare" \
                else probe["drain_after_gateways_stopped_s"] < 5.0
            kept_up = probe["rows_per_s"] >= 0.97 * rate and backlog_ok
            out({"phase": "probe", "offered_points_per_s": rate, "attempt": attempt, "kept_up": kept_up,
                 "limit_beside_rows_per_s": beside["rows_per_s"],
                 "ratio_to_limit_beside": round(min(probe["rows_per_s"], rate) / beside["rows_per_s"], 2), **probe})
            if not kept_up:
                if attempt == 2:
                    break
                failed_at = frac
                continue
            sustained = {"offered_points_per_s": rate, "limit_beside_rows_per_s": beside["rows_per_s"], **probe}
        # saturated: offered well past what the pipeline keeps up with, as the limit runs "as fast as it
        # can": like for like, committed rows/s on both sides, the limit measured just before and after;
        # for every kind of ingest (the shipped command, and the bare Ingestor the README quotes)
        sats: dict[str, dict[str, Any]] = {}  # (each run its own hours of meter time: no row repeats another's)
        for i, kind in enumerate(kinds):
            settle(dsn)
            before = limit_copy(dsn, pids, args.points, min(args.batch_messages, args.gateways),
                                args.limit_seconds, now + (100 + 10 * i) * 3_600_000, args.writers)
            limits.append(before["rows_per_s"])
            sat_rate = int(before["rows_per_s"] * 1.15)
            settle(dsn)
            sat = pipeline(url, broker, args, sat_rate, now + (70 + 10 * i) * 3_600_000, work, datadir, kind)
            counted.append(sat["stored"])
            settle(dsn)
            after = limit_copy(dsn, pids, args.points, min(args.batch_messages, args.gateways),
                               args.limit_seconds, now + (105 + 10 * i) * 3_600_000, args.writers)
            limits.append(after["rows_per_s"])
            around = (before["rows_per_s"] + after["rows_per_s"]) / 2
            sats[kind] = {"rows_per_s": sat["rows_per_s"], "limit_around": round(around),
                          "ratio": round(sat["rows_per_s"] / around, 2),
                          "ingest_cpu_us_per_row": sat["ingest_cpu_us_per_row"],
                          "postgresql_cpu_us_per_row": sat["postgresql_cpu_us_per_row"]}
            out({"phase": "saturated", "offered_points_per_s": sat_rate,
                 "limit_before_rows_per_s": before["rows_per_s"],
                 "limit_after_rows_per_s": after["rows_per_s"], "ratio_to_limit_around": sats[kind]["ratio"], **sat})
        if sustained is None:
            # a slow figure, not a crash: reported as such, and the run goes on to the next layout
            summary: dict[str, Any] = {
                "phase": "summary", "ingest": kinds[0], "sustained_points_per_s": None,
                "kept_up_with": f"none of the offered rates {args.ramp} (fractions of the limit beside each)",
                "limit_rows_per_s_at_start_and_beside_each_run": [lim["rows_per_s"], *limits],
                "saturated": sats, **tally(counted)}
            out(summary)
            return summary
        out({"phase": "sustained", **sustained})
        paced_rate = int(min(sustained["rows_per_s"], sustained["offered_points_per_s"]) * 0.8)
        settle(dsn)
        paced = pipeline(url, broker, args, paced_rate, now + 30 * 3_600_000, work, datadir, kinds[0])
        counted.append(paced["stored"])
        out({"phase": "at_80_percent", "offered_points_per_s": paced_rate, **paced})
        with psycopg.connect(dsn, autocommit=True) as conn:
            size = readings_size(conn)
        cpu = sustained["cpu_s"]
        busiest = max(cpu, key=lambda k: cpu[k])
        # the simulated gateways run on this machine's cores; in a park they run on their own boxes
        load_gen = (cpu["gateways"] / sustained["seconds"]) / 2
        bottleneck = (f"CPU: all {sustained['cpu_share_of_2_cores']:.0%} of 2 cores busy, most in {busiest}"
                      if sustained["cpu_share_of_2_cores"] > 0.85 else f"not CPU-bound; busiest {busiest}")
        beside_lim = sustained["limit_beside_rows_per_s"]
        # what it kept up with: the window's own count can be higher, when it includes a warm-up's backlog
        kept = min(sustained["rows_per_s"], sustained["offered_points_per_s"])
        summary = {
            "phase": "summary", "ingest": kinds[0], "sustained_points_per_s": kept,
            "limit_rows_per_s": beside_lim,
            "limit_rows_per_s_at_start_and_beside_each_run": [lim["rows_per_s"], *limits],
            "ratio_to_limit": round(kept / beside_lim, 2),
            "saturated": sats, "ratio_to_limit_at_start": round(kept / lim["rows_per_s"], 2),
            "load_generator_share_of_cpu": round(load_gen, 2),
            "ratio_to_limit_on_cores_left_by_load_generator": round(
                kept / (beside_lim * (1 - load_gen)), 2),
            "delay_at_80pct_s": paced["delay_s"], "drain_at_80pct_s": paced["drain_after_gateways_stopped_s"],
            "rows_stored": size["rows"], "bytes_per_reading_bench_rows": size["bytes_per_reading"],
            "park_bytes_per_reading": None if comp is None else {
                "uncompressed": comp["bytes_per_reading_uncompressed"],
                "compressed": comp.get("bytes_per_reading_compressed")},
            **tally(counted),
            "memory_mb_at_80pct": paced["ingest_rss_mb"],
            "bottleneck": bottleneck, "goal": "shipped ratio >= 0.85; compressed <= 12 bytes per reading",
            "ratios": "ratio_to_limit: highest rate kept up with over the limit measured beside it; saturated: "
                      "rows/s committed when offered 1.15 x the limit, over the limit measured just before and after "
                      "(both as fast as they can)"}
        out(summary)
        return summary


def tally(counted: list[dict[str, int]]) -> dict[str, int]:
    """Readings and batches sent, lost and doubled, counted from the rows stored over every run."""
    return {k: sum(c[k] for c in counted) for k in ("sent_readings", "lost_readings", "doubled_readings",
                                                    "sent_batches", "lost_batches", "doubled_batches")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preload", type=int, default=10_000_000, help="rows stored before measuring")
    ap.add_argument("--gateways", type=int, default=200)
    ap.add_argument("--points", type=int, default=300, help="points per gateway (one batch each per cycle)")
    ap.add_argument("--publishers", type=int, default=2, help="processes hosting the gateways")
    ap.add_argument("--batch-messages", type=int, default=100, help="ingest: messages per transaction")
    ap.add_argument("--writers", type=int, default=2, help="ingest writer threads (= limit connections)")
    ap.add_argument("--seconds", type=float, default=20.0, help="measuring window of each run")
    ap.add_argument("--ramp", type=float, nargs="+", default=[0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9, 1.0],
                    help="offered rates to try, as fractions of the limit measured just before each, until one "
                         "is not kept up with")
    ap.add_argument("--warmup", type=float, default=8.0)
    ap.add_argument("--limit-seconds", type=float, default=8.0,
                    help="window of the limit measured again beside each probe")
    ap.add_argument("--ingest", nargs="+", choices=("shipped", "bare"), default=["shipped", "bare"],
                    help="the ingest measured: shipped (parkmon ingest run, defaults on) and/or bare (the Ingestor "
                         "in-process, rollups/alerts/board feed off); the first is ramped, each is saturated")
    ap.add_argument("--shipped-min-seconds", type=float, default=None,
                    help="shortest window of a shipped run, so that one of its rollup refreshes (every 30 s) "
                         "falls inside; default 32 for a full run, --seconds for a short one (under 15 s)")
    ap.add_argument("--compress-days", type=int, default=3,
                    help="days of the simulated park stored for bytes per reading, before and after "
                         "compression (0: skip)")
    add_option(ap)
    args = ap.parse_args()
    if args.shipped_min_seconds is None:
        args.shipped_min_seconds = 32.0 if args.seconds >= 15 else args.seconds
    layouts, skipped = usable(args.layouts)
    for layout, why in skipped.items():
        print(f"skipping the {layout} half: {why}", file=sys.stderr)
        emit({"phase": "skipped", "layout": layout, "why": why})
    summaries: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="parkmon-bench-ingest-") as tmp:
        for layout in layouts:
            here = Path(tmp) / layout
            here.mkdir()
            summaries[layout] = run_layout(layout, args, here)
    emit({"phase": "layouts", **{k: {f: v.get(f) for f in ("sustained_points_per_s", "limit_rows_per_s",
                                                           "ratio_to_limit", "saturated", "park_bytes_per_reading",
                                                           "lost_readings", "doubled_readings", "kept_up_with")}
                                 for k, v in summaries.items()}, "skipped": skipped})
    # a slow figure does not fail the run; a reading lost or stored twice does, as a crash does
    wrong = {k: (v.get("lost_readings"), v.get("doubled_readings")) for k, v in summaries.items()
             if v.get("lost_readings") or v.get("doubled_readings")}
    for layout, (lost, doubled) in wrong.items():
        print(f"{layout}: {lost} readings lost and {doubled} stored twice, counted from the database", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
