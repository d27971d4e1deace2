"""Many gateways in one process (bench/ingest_pg.py helper): realistic wire batches over real MQTT, QoS 1.

Each gateway owns one enterprise with ``points`` points (devices of 25 registers) and sends one
batch per cycle holding a reading of every point at one timestamp, as an edge agent does at a 1 s
poll. ``rate`` caps the points/s of the whole process (0 = as fast as the broker takes them, for
the sustained-throughput phase). At most ``window`` messages are unacknowledged at once: the
publisher waits for PUBACKs instead of piling messages up in paho's memory.

    python bench/_gateways.py PORT FIRST COUNT POINTS RATE SECONDS STATS_JSON [T0_MS]
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from parkmon.common import wire
from parkmon.common.clock import now_ms


def point_names(points: int) -> list[str]:
    return [f"m{j // 25:03d}.p{j % 25:02d}" for j in range(points)]


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
        for gw, topic in gws:
            payload = (f'{{"v":{wire.VERSION},"gw":"{gw}","seq":{cycle + 1},"sent":{now_ms()},'
                       f'"samples":[{samples_tmpl.format(ts=ts, v=cycle % 1000)}]}}').encode()
            while not acked.acquire(timeout=1.0):
                if time.monotonic() > deadline + 30:
                    break
            client.publish(topic, payload, qos=1)
            sent_samples += points
            sent_msgs += 1
            if rate:  # pace to the requested points/s
                ahead = sent_samples / rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)
        cycle += 1
    for _ in range(window):  # every message acknowledged by the broker before we report it sent
        acked.acquire(timeout=30)
    client.disconnect()
    client.loop_stop()
    stats.write_text(json.dumps({"samples": sent_samples, "messages": sent_msgs, "cycles": cycle,
                                 "seconds": time.monotonic() - start}))


if __name__ == "__main__":
    main()
