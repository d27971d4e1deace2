"""Many gateways in one process (bench/ingest_pg.py helper): realistic wire batches over real MQTT, QoS 1.

Each gateway owns one enterprise with ``points`` points (devices of 25 registers) and sends one
batch per cycle holding a reading of every point at one timestamp, as an edge agent does at a 1 s
poll. ``rate`` caps the points/s of the whole process (0 = as fast as the broker takes them, for
the sustained-throughput phase). At most ``window`` messages are unacknowledged at once: the
publisher waits for PUBACKs instead of piling messages up in paho's memory. A batch's ``seq`` is its
meter second (``ts // 1000``), so every run (each in its own hour of meter time) has its own seqs, and
:func:`stored_vs_sent` counts what the database holds of what a run sent.

    python bench/_gateways.py PORT FIRST COUNT POINTS RATE SECONDS STATS_JSON [T0_MS]
"""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from parkmon.common import wire
from parkmon.common.clock import now_ms

# the pacing step: send what is due, then sleep until 50 ms more is due. A sleep after every message made
# paho's loop thread and mosquitto wake per message: at 100 000 points/s the process took 0.95-1.13 CPU-s
# per 810 000 points paced per message, 0.39-0.43 in 50-ms steps (and mosquitto 0.15 -> 0.05), CPU taken
# from the pipeline being measured. Real gateways poll wall-clock aligned, so they send in bursts too.
PACE_S = 0.05


def point_names(points: int) -> list[str]:
    return [f"m{j // 25:03d}.p{j % 25:02d}" for j in range(points)]


_BATCHES = """SELECT count(*), count(DISTINCT (b.gateway_id, b.seq)), coalesce(sum(b.samples), 0)
FROM gateway_batches b JOIN gateways g ON g.id = b.gateway_id JOIN enterprises e ON e.id = g.enterprise_id
JOIN parks k ON k.id = e.park_id WHERE k.key = 'bench' AND g.key = ANY(%s) AND b.seq >= %s AND b.seq < %s"""
_READINGS = """SELECT count(*), count(DISTINCT (r.point_id, r.ts)) FROM readings r
WHERE r.point_id = ANY(%s) AND r.ts >= %s AND r.ts < %s"""


def stored_vs_sent(dsn: str, stats: list[Path]) -> dict[str, int]:
    """Lost and doubled, from the database's rows against what the gateways of ``stats`` (their files) sent:
    per batch, the (gateway, seq) records in ``gateway_batches``; per reading, the (point, ts) rows in
    ``readings``. Not from ingest's counters, which count a redelivered message again. (Both keys are
    unique in the schema, so a double cannot be stored: it is counted all the same.)"""
    import psycopg  # the gateways' processes do not need it

    out = dict.fromkeys(("sent_batches", "stored_batches", "lost_batches", "doubled_batches", "sent_readings",
                         "stored_readings", "lost_readings", "doubled_readings"), 0)
    with psycopg.connect(dsn) as conn:
        for f in stats:
            st = json.loads(f.read_text())
            if not st["cycles"]:
                continue
            gws = [f"gw{g:04d}" for g in range(st["first"], st["first"] + st["count"])]
            seq0 = st["t0"] // 1000
            rows, distinct, _samples = conn.execute(_BATCHES, (gws, seq0, seq0 + st["cycles"])).fetchone() or (0, 0, 0)
            sent = st["count"] * st["cycles"]
            out["sent_batches"] += sent
            out["stored_batches"] += distinct
            out["lost_batches"] += sent - distinct
            out["doubled_batches"] += rows - distinct
            keys = [f"bench.e{int(gw[2:]):04d}.{n}" for gw in gws for n in point_names(st["points"])]
            pids = [r[0] for r in conn.execute("SELECT id FROM points WHERE key = ANY(%s)", (keys,))]
            lo = datetime.fromtimestamp(st["t0"] / 1000, tz=UTC)
            hi = datetime.fromtimestamp((st["t0"] + st["cycles"] * 1000) / 1000, tz=UTC)
            rows, distinct = conn.execute(_READINGS, (pids, lo, hi)).fetchone() or (0, 0)
            sent = st["samples"]
            out["sent_readings"] += sent
            out["stored_readings"] += distinct
            out["lost_readings"] += sent - distinct
            out["doubled_readings"] += rows - distinct
    return out


def end_session(port: int, client_id: str) -> None:
    """Drop an ingest's persistent session at the broker once its run is over and everything is stored: left
    in place, the session stays subscribed while it is away, and mosquitto queues every message of the next
    runs for it too - the next run under that id then replays them all as duplicates first (seen: a shipped
    run after the bare one spent its whole window on the bare run's 3.78 M readings)."""
    up = threading.Event()
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    client.on_connect = lambda *_a: up.set()
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    if not up.wait(10):
        raise RuntimeError(f"the broker on port {port} did not accept {client_id!r} to end its session")
    client.disconnect()
    client.loop_stop()


def main() -> None:
    port, first, count, points, rate = (int(a) for a in sys.argv[1:6])
    seconds, stats = float(sys.argv[6]), Path(sys.argv[7])
    t0 = int(sys.argv[8]) if len(sys.argv) > 8 else now_ms()
    window = 200
    acked = threading.Semaphore(window)
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"bench-gw-{first}",
                         clean_session=True)
    client.max_inflight_messages_set(window)
    client.max_queued_messages_set(0)
    client.on_publish = lambda *_a: acked.release()
    client.connect("127.0.0.1", port, keepalive=60)
    client.loop_start()
    names = point_names(points)
    # the JSON of one batch's samples with the time left open: a real gateway spends its own CPU on
    # encoding, on its own box; here it would take cores from the ingest being measured
    samples_tmpl = ",".join(f'["{n}",{{ts}},{{v}}.{j:03d},0]' for j, n in enumerate(names))
    gws = [(f"gw{g:04d}", wire.topic("bench", f"e{g:04d}", f"gw{g:04d}", "data")) for g in range(first, first + count)]
    sent_samples = sent_msgs = 0
    cycle = 0
    start = time.monotonic()
    deadline = start + seconds
    while time.monotonic() < deadline:
        ts = t0 + cycle * 1000  # every cycle is one more second of meter time: distinct (point, ts)
        # once per cycle, not per gateway: formatting 600 fields cost ~0.2 ms a message, and the load
        # generator's CPU is taken from the pipeline it measures
        samples = samples_tmpl.format(ts=ts, v=cycle % 1000)
        for gw, topic in gws:
            payload = (f'{{"v":{wire.VERSION},"gw":"{gw}","seq":{ts // 1000},"sent":{now_ms()},'
                       f'"samples":[{samples}]}}').encode()
            while not acked.acquire(timeout=1.0):
                if time.monotonic() > deadline + 30:
                    break
            client.publish(topic, payload, qos=1)
            sent_samples += points
            sent_msgs += 1
            if rate:  # pace to the requested points/s, in steps of PACE_S
                ahead = sent_samples / rate - (time.monotonic() - start)
                if ahead > PACE_S:
                    time.sleep(ahead)
        cycle += 1
    for _ in range(window):  # every message acknowledged by the broker before we report it sent
        acked.acquire(timeout=30)
    client.disconnect()
    client.loop_stop()
    # every gateway of this process sent cycles batches, seqs t0 // 1000 onwards: what stored_vs_sent counts
    stats.write_text(json.dumps({"samples": sent_samples, "messages": sent_msgs, "cycles": cycle,
                                 "seconds": time.monotonic() - start, "first": first, "count": count,
                                 "points": points, "t0": t0}))


if __name__ == "__main__":
    main()
