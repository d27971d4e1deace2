"""Benchmark: Sparkplug B ingest points/s beside parkmon's own wire format, in one run (issue 24).

Two measurements, each for both formats on the same load (messages of ``--metrics`` values, distinct times):

- decode: the CPU work per point before anything is stored. parkmon: ``wire.decode_batch``. Sparkplug: what
  the bridge does per message (``codec.decode``, ``NodeSession.handle`` with its alias lookups and mapping,
  ``wire.encode`` of the batch it publishes); alone in this process, one thread.
- end to end: a real mosquitto, ``parkmon ingest``'s consumer writing SQLite, and for Sparkplug the bridge in
  between (DDATA by alias, as a Tahu node sends them, published at QoS 1). Points/s from the first publish
  to the last row counted in the store. Both paths share the same ingest; the Sparkplug one adds a broker hop
  and the bridge.

    .venv/bin/python bench/sparkplug.py [--messages 2000] [--metrics 100]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.mqtt.broker import start_mosquitto
from ingest.mqtt.config import IngestConfig
from ingest.mqtt.consumer import Ingestor
from ingest.sparkplug import codec, mapping
from ingest.sparkplug.bridge import Bridge, BridgeConfig
from ingest.sparkplug.session import NodeSession, SeqBases
from ingest.store import open_store
from parkmon.common import wire
from tests.mqtt_util import publish_all, publisher

T0 = 1_765_000_000_000


def _node(n_metrics: int) -> mapping.NodeMap:
    return mapping.NodeMap(group="Bench", node="Edge", park="bench", enterprise="e", gateway="sp", points=[
        mapping.PointMap(device="M", sparkplug=f"m{i}", point=f"sp.p{i}", metric="elec.active_power")
        for i in range(n_metrics)])


def _sparkplug(n_msgs: int, n_metrics: int) -> tuple[bytes, bytes, list[bytes]]:
    nbirth = codec.encode(codec.SpPayload(T0, 0, [codec.SpMetric("bdSeq", None, T0, codec.UINT64, 0)]))
    dbirth = codec.encode(codec.SpPayload(T0, 1, [codec.SpMetric(f"m{i}", i, T0, codec.DOUBLE, 0.0)
                                                  for i in range(n_metrics)]))
    data = [codec.encode(codec.SpPayload(T0 + k * 1000, (k + 1) % 256, [
        codec.SpMetric(None, i, T0 + k * 1000, codec.DOUBLE, k + i / 8) for i in range(n_metrics)]))
        for k in range(1, n_msgs + 1)]
    return nbirth, dbirth, data


def _wire(n_msgs: int, n_metrics: int) -> list[bytes]:
    return [wire.encode(wire.Batch(1, "pm", k, T0 + k * 1000, [
        (f"m.p{i}", T0 + k * 1000, k + i / 8, 0) for i in range(n_metrics)])) for k in range(1, n_msgs + 1)]


def decode_rates(n_msgs: int, n_metrics: int) -> tuple[float, float]:
    wires = _wire(n_msgs, n_metrics)
    t = time.process_time()
    for p in wires:
        wire.decode_batch(p)
    wire_rate = n_msgs * n_metrics / (time.process_time() - t)
    nbirth, dbirth, data = _sparkplug(n_msgs, n_metrics)
    s = NodeSession("Bench", "Edge", _node(n_metrics), SeqBases())
    s.handle("NBIRTH", "", codec.decode(nbirth), T0)
    s.handle("DBIRTH", "M", codec.decode(dbirth), T0)
    t = time.process_time()
    for p in data:
        for b in s.handle("DDATA", "M", codec.decode(p), T0).batches:
            wire.encode(b)
    sp_rate = n_msgs * n_metrics / (time.process_time() - t)
    return wire_rate, sp_rate


def end_to_end(n_msgs: int, n_metrics: int, work: Path) -> tuple[float, float]:
    broker = start_mosquitto(work / "mosquitto")
    store = open_store(f"sqlite:///{work / 'bench.db'}")
    store.create_schema()
    ing = Ingestor(IngestConfig(mqtt_port=broker.port, db_url=store.url), store)
    ing.send_acks = False
    bridge = Bridge(BridgeConfig(mapping.Mapping(nodes=[_node(n_metrics)]), mqtt_port=broker.port,
                                 client_id="bench-bridge"), store)
    ing.start()
    bridge.start()
    pub = publisher(broker.port, "bench-pub")
    try:
        assert ing.connected.wait(10) and bridge.connected.wait(10)
        rates = []
        total = n_msgs * n_metrics
        base = 0
        for label in ("wire", "sparkplug"):
            if label == "wire":
                msgs = [(wire.topic("bench", "e", "pm", "data"), p) for p in _wire(n_msgs, n_metrics)]
            else:
                nbirth, dbirth, data = _sparkplug(n_msgs, n_metrics)
                publish_all(pub, [("spBv1.0/Bench/NBIRTH/Edge", nbirth), ("spBv1.0/Bench/DBIRTH/Edge/M", dbirth)])
                base += n_metrics  # the birth's values are rows too
                while store.count_readings() < base:
                    time.sleep(0.05)
                msgs = [("spBv1.0/Bench/DDATA/Edge/M", p) for p in data]
            t = time.monotonic()
            publish_all(pub, msgs)
            while store.count_readings() < base + total:
                time.sleep(0.02)
            rates.append(total / (time.monotonic() - t))
            base += total
        return rates[0], rates[1]
    finally:
        pub.loop_stop()
        bridge.stop()
        ing.stop()
        store.close()
        broker.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--metrics", type=int, default=100, help="values per message")
    args = ap.parse_args()
    w, s = decode_rates(args.messages, args.metrics)
    print(f"decode, one thread: parkmon wire {w:,.0f} points/s; Sparkplug B (decode + session + re-encode) "
          f"{s:,.0f} points/s ({w / s:.1f}x the CPU per point)")
    with tempfile.TemporaryDirectory() as d:
        w, s = end_to_end(args.messages, args.metrics, Path(d))
    print(f"end to end (mosquitto, ingest, SQLite): parkmon wire {w:,.0f} points/s; Sparkplug B through the "
          f"bridge {s:,.0f} points/s ({args.messages} messages x {args.metrics} values each)")


if __name__ == "__main__":
    main()
