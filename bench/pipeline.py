"""Benchmark: the demo pipeline under growing load, measured end to end on real components.

simulated park (K copies of the demo park's enterprises, pymodbus) -> one edge agent per enterprise
(disk buffer on) -> mosquitto -> ingest -> PostgreSQL (or SQLite). For each load it prints JSON:
points polled per second, rows committed per second and their ratio (1.0 = the pipeline keeps up),
the delay from a meter's registers changing to the reading being committed (p50/p95/p99), and the
delay from the agent reading it to the commit. Everything runs on this machine's 2 cores at once,
so the figures are what the whole demo sustains, not ingest alone (bench/ingest_pg.py measures ingest alone).
PostgreSQL runs as production does (fsync, synchronous commit and full-page writes on, the settings of
deploy/server/postgresql.conf: bench/ingest_pg.py's DURABLE), and every line says so. "lost" counts the
samples polled against the rows stored (one per point and time: the key absorbs a repeat) and the
batches left in the gateways' disk buffers whose (gateway, seq) the database does not have; each line
also says how many cores other processes took meanwhile (a shared machine).

    python bench/pipeline.py --copies 1 5 10 --poll 1 --seconds 20 --db postgresql
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from bisect import bisect_right
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import yaml
from _proc import cpu_s, machine_cpu, rss_mb
from ingest_pg import DURABLE, postgres_pids
from sqlalchemy import text

from ingest.mqtt.broker import start_mosquitto
from ingest.mqtt.config import IngestConfig
from ingest.mqtt.consumer import Ingestor
from ingest.store import Store, open_store
from ingest.store.base import IncomingBatch
from simulators.park import load_definition


def scaled_park(copies: int) -> dict[str, Any]:
    base = load_definition()
    park = {"park": base["park"], "enterprises": []}
    for c in range(copies):
        for e in base["enterprises"]:
            e2 = copy.deepcopy(e)
            e2["key"] = f"c{c:02d}{e['key']}"
            park["enterprises"].append(e2)
    return park


def pct(values: list[int], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return float(s[min(len(s) - 1, int(q * len(s)))])


def _wait_line(proc: subprocess.Popen[str], text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if text in line:
            return
        if not line and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before saying {text!r}")
    raise RuntimeError(f"no {text!r} within {timeout} s")


def _stats(path: Path) -> dict[str, int]:
    for _ in range(50):
        try:
            data: dict[str, int] = json.loads(path.read_text(encoding="utf-8"))
            return data
        except (OSError, ValueError):
            time.sleep(0.1)
    raise RuntimeError(f"agent stats file {path} not readable")


def buffered_batches(gw_dir: Path) -> dict[tuple[str, str, int], int]:
    """(enterprise, gateway, seq) -> samples of every batch left in a gateway's disk buffer, read once the
    agents have stopped. With end-to-end acks a batch stays there until ingest confirms its commit, so a
    batch can be stored and buffered both: the buffer's depth alone would count it twice."""
    out: dict[tuple[str, str, int], int] = {}
    for cfg_path in gw_dir.glob("gateway-*.yaml"):
        cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
        path = Path(cfg["buffer"]["path"])
        if path.exists():
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
                for seq, n in db.execute("SELECT seq, samples FROM batches"):
                    out[(cfg["gateway"]["enterprise"], cfg["gateway"]["id"], int(seq))] = int(n)
    return out


def accounted(store: Store, polled: int, buffered: dict[tuple[str, str, int], int]) -> dict[str, int]:
    """Every sample polled, counted from the database: stored (a row per point and time), or still in a
    gateway's buffer in a batch whose (gateway, seq) the database does not have; the rest is lost."""
    with store.engine.connect() as conn:
        stored = {(e, g, int(seq)) for e, g, seq in conn.execute(text(
            "SELECT e.key, g.key, b.seq FROM gateway_batches b JOIN gateways g ON g.id = b.gateway_id "
            "JOIN enterprises e ON e.id = g.enterprise_id"))}
    rows = store.count_readings()
    waiting = {k: n for k, n in buffered.items() if k not in stored}
    missing = polled - rows - sum(waiting.values())
    return {"polled": polled, "stored_readings": rows, "stored_batches": len(stored),
            "buffered_batches": len(buffered), "buffered_not_stored": sum(waiting.values()),
            "lost": max(0, missing), "stored_beyond_polled": max(0, -missing)}


def run(copies: int, poll: float, seconds: float, warmup: float, db: str, work: Path) -> dict[str, Any]:
    """Three processes like a deployment: the simulated devices, the gateways, and ingest (this one)."""
    with ExitStack() as cleanup:
        return _run(copies, poll, seconds, warmup, db, work, cleanup)


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def _run(copies: int, poll: float, seconds: float, warmup: float, db: str, work: Path,
         cleanup: ExitStack) -> dict[str, Any]:
    here = work / f"run{copies}"
    (here / "gw").mkdir(parents=True)
    broker = start_mosquitto(here / "mq")
    cleanup.callback(broker.stop)
    pg_dir: Path | None = None
    if db == "postgresql":
        from tests.pg_server import start_postgres

        pg = start_postgres(DURABLE)  # fsync on, as production (the tests' servers run with it off)
        cleanup.callback(pg.destroy)
        url, pg_dir = pg.create_database(), pg.datadir
    else:
        url = f"sqlite:///{here / 'bench.db'}"
    park_file = here / "park.yaml"
    park_file.write_text(yaml.safe_dump(scaled_park(copies), allow_unicode=True), encoding="utf-8")
    tick_log = here / "ticks.txt"
    sim = subprocess.Popen([sys.executable, "-m", "parkmon.cli", "sim", "run", "--park", str(park_file),
                            "--port-base", "0", "--speed", "60", "--tick-log", str(tick_log),
                            "--write-edge-configs", str(here / "gw"), "--mqtt-port", str(broker.port)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    cleanup.callback(_stop, sim)
    _wait_line(sim, "ready")
    for cfg_path in (here / "gw").glob("gateway-*.yaml"):  # the poll interval under test
        cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
        cfg["poll_interval_s"] = poll
        cfg_path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    store = open_store(url)
    store.create_schema()
    # one id for every run: a persistent session per run would leave mosquitto queueing for the old ones
    ingest = Ingestor(IngestConfig(mqtt_port=broker.port, db_url=url, client_id="bench-ingest"), store)
    measuring = threading.Event()
    pairs: list[tuple[int, int]] = []  # (sample ts, commit ms) of every 10th sample while measuring

    def on_commit(batches: list[IncomingBatch], commit_ms: int) -> None:
        if measuring.is_set():
            pairs.extend((ts, commit_ms) for b in batches for _k, ts, _v, _q in b.batch.samples[::10])

    ingest.commit_listeners.append(on_commit)
    ingest.start()
    cleanup.callback(ingest.stop)
    n_gw = len(list((here / "gw").glob("gateway-*.yaml")))
    shards = max(1, -(-n_gw // 100))
    stats_files = [here / f"agents{i}.json" for i in range(shards)]
    agent_procs = [subprocess.Popen([sys.executable, str(Path(__file__).with_name("_agents.py")), str(here / "gw"),
                                     str(f), str(i), str(shards)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                   for i, f in enumerate(stats_files)]
    for proc in agent_procs:
        cleanup.callback(_stop, proc)

    def stats() -> dict[str, int]:
        parts = [_stats(f) for f in stats_files]
        return {k: sum(p[k] for p in parts) for k in parts[0]}

    time.sleep(warmup)
    agent_pids = [p.pid for p in agent_procs]
    assert broker.proc is not None
    # the servers too, to tell this bench's CPU from other processes' on a shared machine
    servers = [broker.proc.pid, *(postgres_pids(pg_dir) if pg_dir else [])]
    cpu0 = {p: cpu_s(p) for p in (os.getpid(), sim.pid, *agent_pids)}
    srv0, busy0 = _cpu_of(servers), machine_cpu()[0]
    s0, r0, t0 = stats(), store.count_readings(), time.monotonic()
    measuring.set()
    time.sleep(seconds)
    measuring.clear()
    s1, r1, t1 = stats(), store.count_readings(), time.monotonic()
    cpu1 = {p: cpu_s(p) for p in cpu0}
    srv1, busy1 = _cpu_of(servers), machine_cpu()[0]
    rss = {"ingest": rss_mb(os.getpid()), "simulator": rss_mb(sim.pid),
           "agents_per_process": max(rss_mb(p) for p in agent_pids)}
    for proc in agent_procs:
        proc.send_signal(signal.SIGTERM)
    for proc in agent_procs:
        proc.wait(180)
    final = stats()
    drained = time.monotonic()
    # what a gateway could not send (or have confirmed) before it stopped stays in its disk buffer for its
    # next start; what it sent reaches the database meanwhile
    buffered = buffered_batches(here / "gw")
    count = accounted(store, final["polled_points"], buffered)
    while count["lost"] and time.monotonic() - drained < 60:
        time.sleep(0.5)
        count = accounted(store, final["polled_points"], buffered)
    drain_s = time.monotonic() - drained
    sim.send_signal(signal.SIGTERM)
    sim.wait(30)
    ingest.stop()
    store.close()
    ticks = [int(x) for x in tick_log.read_text(encoding="ascii").split()]
    read_to_commit = [c - ts for ts, c in pairs]
    change_to_commit = [c - ticks[i - 1] for ts, c in pairs if (i := bisect_right(ticks, ts))]
    dt = t1 - t0
    polled = s1["polled_points"] - s0["polled_points"]
    enterprises = len(yaml.safe_load(park_file.read_text(encoding="utf-8"))["enterprises"])
    return {
        "copies": copies, "enterprises": enterprises, "poll_s": poll, "db": db,
        "postgresql": {k: DURABLE[k] for k in ("fsync", "synchronous_commit", "full_page_writes")}
        if db == "postgresql" else None, "seconds": round(dt, 1),
        "points_polled_per_s": round(polled / dt, 1),
        "rows_committed_per_s": round((r1 - r0) / dt, 1),
        "committed_to_polled": round((r1 - r0) / max(1, polled), 3),
        "late_poll_cycles": s1["late_cycles"] - s0["late_cycles"],
        "agent_backlog_samples_at_end": s1["backlog_samples"],
        "after_stop": {**count, "drain_s": round(drain_s, 1)},
        "delay_ms_meter_change_to_stored": _pcts(change_to_commit),
        "delay_ms_read_to_stored": _pcts(read_to_commit),
        "agent_processes": shards,
        "cpu_s_per_1000_points": {
            "ingest": round((cpu1[os.getpid()] - cpu0[os.getpid()]) / max(1e-9, polled / 1000), 4),
            "simulator": round((cpu1[sim.pid] - cpu0[sim.pid]) / max(1e-9, polled / 1000), 4),
            "agents": round(sum(cpu1[p] - cpu0[p] for p in agent_pids) / max(1e-9, polled / 1000), 4)},
        "cpu_share_of_machine": round(sum(cpu1[p] - cpu0[p] for p in cpu0) / dt / (os.cpu_count() or 1), 3),
        # cores busy with anything else over the window (other people's jobs on a shared machine)
        "servers_cores": round((srv1 - srv0) / dt, 2),  # mosquitto and PostgreSQL
        "other_processes_cores": round(max(0.0, busy1 - busy0 - (srv1 - srv0)
                                           - sum(cpu1[p] - cpu0[p] for p in cpu0)) / dt, 2),
        "rss_mb": rss,
    }


def _cpu_of(pids: list[int]) -> float:
    total = 0.0
    for p in pids:
        with contextlib.suppress(OSError, IndexError):  # a backend that has gone
            total += cpu_s(p)
    return total


def _pcts(values: list[int]) -> dict[str, float | None]:
    return {k: pct(values, q) for k, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))}






def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, nargs="+", default=[1, 5, 10], help="copies of the demo park's enterprises")
    ap.add_argument("--poll", type=float, default=1.0, help="agent poll interval, seconds")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured time per load")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="parkmon-bench-") as tmp:
        for k in args.copies:
            print(json.dumps(run(k, args.poll, args.seconds, args.warmup, args.db, Path(tmp)), ensure_ascii=False),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
