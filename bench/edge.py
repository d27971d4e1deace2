"""Benchmark: parkmon's edge agent against a bare polling loop, side by side on the same load.

Load (issue 3): 200 Modbus TCP devices x 25 float32 values, 1 s poll, a real mosquitto. The
devices are 10 pymodbus servers of 20 units each, in their own process. Measured one after the
other in one run: values/s reaching the broker, achieved cycle, Modbus requests per device per
cycle, CPU seconds per 1 000 values, peak RSS of the polling process, and the delay from a poll
(the samples' own time) to the broker handing the message on, with its drift over the run.

- parkmon: `parkmon edge run` with its disk buffer on (each poll's samples fsynced to SQLite as the
  poll ends, before they are published), batches of up to 5 000 samples, each kept on disk until the
  platform confirms it (end-to-end acks, docs/decisions/0010): the bench's subscriber stands in for
  ingest and acks every batch as it arrives (``--end-to-end-ack off``: deleted on the broker's PUBACK).
- bare: one request per device per cycle, struct decoding, one QoS 1 message per cycle, no buffer:
  the near-wire floor. Measured in this run, like everything this prints.

    python bench/edge.py --seconds 30 [--end-to-end-ack off]
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import paho.mqtt.client as mqtt
import yaml
from _proc import cpu_s, peak_rss_mb, rss_mb
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.buffer import DiskBuffer
from ingest.mqtt.broker import start_mosquitto
from parkmon.common import wire
from parkmon.common.netutil import free_port

HERE = Path(__file__).resolve().parent


class Counter:
    """Counts what the broker delivers; with ``ack``, confirms each batch to its gateway as ingest does after
    its commit (one ack message per batch: ingest sends one per gateway per commit, often fewer)."""

    def __init__(self, port: int, ack: bool = True) -> None:
        self.ack = ack
        self.values = 0
        self.lock = threading.Lock()
        self.health: dict[str, Any] | None = None
        self.delays: list[tuple[float, float]] = []  # (received, ms from the oldest sample's poll to here)
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-counter")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([("parkmon/v1/+/+/+/data", 1), ("parkmon/v1/+/+/+/health", 0), ("bench/bare", 1)])
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.endswith("/health"):
            self.health = json.loads(msg.payload)
            return
        now = time.time()
        if msg.topic.startswith("parkmon/"):
            batch = wire.decode_batch(bytes(msg.payload))
            samples = batch.samples
            n, polled_ms = len(samples), min(s[1] for s in samples)
            if self.ack:
                park, ent, gw, _leaf = wire.parse_topic(msg.topic)
                self.client.publish(wire.topic(park, ent, gw, "ack"),
                                    wire.encode(wire.Ack(wire.VERSION, gw, [(batch.seq, batch.seq)])), qos=1)
        else:
            doc = json.loads(msg.payload)
            n, polled_ms = len(doc["values"]), doc["ts"]
        with self.lock:
            self.values += n
            self.delays.append((now, now * 1000 - polled_ms))

    def take(self) -> int:
        with self.lock:
            return self.values

    def delays_between(self, t0: float, t1: float) -> list[tuple[float, float]]:
        with self.lock:
            return [(t, d) for t, d in self.delays if t0 <= t < t1]


def delay_figures(delays: list[tuple[float, float]]) -> dict[str, float]:
    """Poll -> broker delay of each message (its oldest sample): percentiles, and the drift as the
    least-squares slope of delay against time (ms per second of run)."""
    if len(delays) < 2:
        return {}
    ds = sorted(d for _, d in delays)
    ts = [t for t, _ in delays]
    mt, md = sum(ts) / len(ts), sum(ds) / len(ds)
    var = sum((t - mt) ** 2 for t in ts)
    slope = sum((t - mt) * (d - md) for t, d in delays) / var if var else 0.0
    return {"p50_ms": round(ds[len(ds) // 2], 1), "p99_ms": round(ds[min(len(ds) - 1, int(len(ds) * 0.99))], 1),
            "max_ms": round(ds[-1], 1), "drift_ms_per_s": round(slope, 2), "messages": len(ds)}


def _polls(health: dict[str, Any] | None) -> tuple[int, int, int, int]:
    devs = (health or {}).get("devices", {})
    return (len(devs), sum(d["polls"] for d in devs.values()), sum(d.get("requests", 0) for d in devs.values()),
            sum(d["late_cycles"] for d in devs.values()))


def measure(proc: subprocess.Popen[bytes], counter: Counter, warmup: float, seconds: float) -> dict[str, Any]:
    time.sleep(warmup)
    c0, v0, t0, h0, w0 = cpu_s(proc.pid), counter.take(), time.monotonic(), counter.health, time.time()
    time.sleep(seconds)
    c1, v1, t1, h1, w1 = cpu_s(proc.pid), counter.take(), time.monotonic(), counter.health, time.time()
    rss = peak_rss_mb(proc.pid)
    values = v1 - v0
    out: dict[str, Any] = {"values_per_s": round(values / (t1 - t0), 1),
                           "cpu_s_per_1000_values": round((c1 - c0) / max(1, values) * 1000, 4),
                           "peak_rss_mb": rss,
                           "poll_to_broker_delay": delay_figures(counter.delays_between(w0, w1))}
    if h0 and h1 and h1 is not h0:  # the agent's own health reports, a couple of seconds apart
        n, p0, r0, l0 = _polls(h0)
        _, p1, r1, l1 = _polls(h1)
        span_s = (h1["sent"] - h0["sent"]) / 1000
        out.update({"achieved_cycle_s": round(span_s / max(1e-9, (p1 - p0) / n), 3),
                    "late_cycles": l1 - l0,
                    "requests_per_device_per_cycle": round((r1 - r0) / max(1, p1 - p0), 2),
                    "buffer_backlog_samples": h1.get("buffer_samples"),
                    "ack_state": h1.get("ack_state"), "unacked_batches": h1.get("unacked_batches"),
                    "resent_batches": h1.get("resent", 0) - h0.get("resent", 0)})
    return out




def outage(info: dict[str, Any], units: int, work: Path, seconds: float, buffer_mb: float) -> dict[str, Any]:
    """The broker unreachable for the whole run: every sample goes to the disk buffer, which fills to
    its limit and then drops its oldest. Memory must stay flat through both regimes."""
    dead_port = free_port()  # nothing listens: the gateway's uplink is down
    cfg = agent_config(info["ports"], units, dead_port, work / "outage.db")
    cfg["buffer"]["max_mb"] = buffer_mb
    path = work / "outage.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    agent = subprocess.Popen([sys.executable, "-m", "parkmon.cli", "edge", "run", "-c", str(path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rss: list[float] = []
    t0 = time.monotonic()
    c0 = None
    while time.monotonic() - t0 < seconds:
        time.sleep(seconds / 12)
        rss.append(rss_mb(agent.pid))
        if c0 is None:
            c0 = cpu_s(agent.pid)
    cpu = cpu_s(agent.pid) - (c0 or 0.0)
    agent.send_signal(signal.SIGTERM)
    agent.wait(30)
    buf = DiskBuffer(work / "outage.db", "gw1", int(buffer_mb * 1024 * 1024))
    _batches, samples, _ = buf.depth()
    dropped = buf.dropped()
    buf.close()
    half = len(rss) // 2
    return {"seconds": seconds, "buffer_limit_mb": buffer_mb, "rss_mb_samples": rss,
            "rss_growth_mb_second_half": round(max(rss[half:]) - min(rss[half:]), 1),
            "buffered_samples_at_end": samples, "dropped_oldest_samples": dropped,
            "cpu_s_per_1000_values_buffered": round(cpu / max(1, (samples + dropped) / 1000), 4)}


def agent_config(ports: list[int], units: int, mqtt_port: int, buffer: Path, acks: str = "auto") -> dict[str, Any]:
    points = [{"name": f"v{i:02d}", "metric": "elec.active_power", "address": 2 * i, "type": "float32"}
              for i in range(25)]
    return {
        "gateway": {"park": "bench", "enterprise": "e1", "id": "gw1"},
        "mqtt": {"port": mqtt_port, "max_inflight": 100, "end_to_end_ack": acks},
        "buffer": {"path": str(buffer)},
        "publish": {"max_samples": 5000, "health_interval_s": 2.0},
        "poll_interval_s": 1.0,
        "devices": [{"id": f"d{s:02d}u{u:02d}", "port": p, "unit": u, "points": points}
                    for s, p in enumerate(ports) for u in range(1, units + 1)],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", type=int, default=10)
    ap.add_argument("--units", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--outage-seconds", type=float, default=60.0,
                    help="then run the agent with its broker unreachable this long (0: skip)")
    ap.add_argument("--end-to-end-ack", choices=("auto", "off"), default="auto",
                    help="auto: batches deleted when the platform (here: the bench's subscriber) confirms them; "
                         "off: on the broker's PUBACK, as before issue 21")
    ap.add_argument("--outage-buffer-mb", type=float, default=4.0,
                    help="disk buffer limit for the outage run: small, so it fills and drops oldest")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="parkmon-bench-edge-") as tmp:
        work = Path(tmp)
        broker = start_mosquitto(work / "mq")
        devices = subprocess.Popen([sys.executable, str(HERE / "_devices.py"), str(args.servers), str(args.units)],
                                   stdout=subprocess.PIPE, text=True)
        try:
            assert devices.stdout is not None
            info = json.loads(devices.stdout.readline())
            counter = Counter(broker.port, ack=args.end_to_end_ack != "off")
            cfg_path = work / "gw.yaml"
            cfg_path.write_text(yaml.safe_dump(agent_config(info["ports"], args.units, broker.port,
                                                            work / "buffer.db", args.end_to_end_ack)),
                                encoding="utf-8")
            agent = subprocess.Popen([sys.executable, "-m", "parkmon.cli", "edge", "run", "-c", str(cfg_path)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            parkmon = measure(agent, counter, args.warmup, args.seconds)
            deleted = ("when the platform confirms them (end-to-end ack)" if args.end_to_end_ack != "off"
                       else "on the broker's PUBACK")
            parkmon["durability"] = ("each poll's samples in SQLite (WAL, synchronous=FULL) as the poll ends; "
                                     f"deleted {deleted}")
            agent.send_signal(signal.SIGTERM)
            stop_t0 = time.monotonic()
            try:
                agent.wait(60)
                parkmon["stop_s_after_sigterm"] = round(time.monotonic() - stop_t0, 1)
            except subprocess.TimeoutExpired:  # a figure worth seeing, not a reason to lose the others
                agent.kill()
                parkmon["stop_s_after_sigterm"] = "did not stop within 60 s"
            bare_proc = subprocess.Popen([sys.executable, str(HERE / "_bare.py"), str(broker.port),
                                          json.dumps(info["ports"]), str(args.units), "bench/bare"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            bare = measure(bare_proc, counter, args.warmup, args.seconds)
            bare.update({"requests_per_device_per_cycle": 1.0, "durability": "none",
                         "what": "bench/_bare.py, measured in this run on this machine"})
            bare_proc.send_signal(signal.SIGTERM)
            bare_proc.wait(30)
            long_outage = (outage(info, args.units, work, args.outage_seconds, args.outage_buffer_mb)
                           if args.outage_seconds else None)
        finally:
            devices.send_signal(signal.SIGTERM)
            devices.wait(30)
            broker.stop()
    expected = args.servers * args.units * 25
    print(json.dumps({
        "load": {"devices": args.servers * args.units, "values_per_device": 25, "poll_s": 1.0,
                 "expected_values_per_s": expected},
        "parkmon_agent": parkmon, "bare_loop": bare, "parkmon_agent_broker_unreachable": long_outage,
        "ratios": {"cpu_parkmon_over_bare": round(parkmon["cpu_s_per_1000_values"]
                                                 / max(1e-9, bare["cpu_s_per_1000_values"]), 2),
                   "rss_parkmon_over_bare": round(parkmon["peak_rss_mb"] / max(1e-9, bare["peak_rss_mb"]), 2),
                   "parkmon_values_over_expected": round(parkmon["values_per_s"] / expected, 3)},
        # a target, not a measurement; other gateways (ThingsBoard, Node-RED) are not measured here
        "goal_issue_21": "parkmon_agent <= 0.012 CPU-s/1000 values with per-poll durability, <= 60 MB peak RSS",
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
