"""Benchmark: what end-to-end acks (docs/decisions/0010) cost ingest and the broker, per batch.

1. The ack step alone, as ingest runs it after each commit (``Ingestor._ack_gateways``: the seq ranges, the
   JSON, paho's publish, QoS 1) over commit groups of ``--group`` batches, from ``--gateways`` gateways and
   from ``--group`` gateways (one batch each: one ack message per batch, the worst case), to a real
   mosquitto: CPU µs per batch acknowledged.
2. All of ingest, acks on and off in turns: a real mosquitto, the real ``Ingestor`` (in this process) into
   SQLite in a temporary folder, bench/_gateways.py publishing ``--batches`` batches of ``--points`` points
   from ``--gateways`` gateways: ingest's CPU (this process) and the broker's, per batch, for each.

    python bench/ingest_ack.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _proc import cpu_s

from ingest.mqtt.broker import start_mosquitto
from ingest.mqtt.config import IngestConfig
from ingest.mqtt.consumer import Ingestor
from ingest.store import open_store

HERE = Path(__file__).resolve().parent


def ack_step(ingestor: Ingestor, gateways: int, group: int, groups: int) -> float:
    """CPU µs per batch of the ack step alone (this thread and paho's, i.e. this process)."""
    seq = 0
    t0 = time.process_time()
    for _ in range(groups):
        committed: dict[tuple[str, str, str], list[int]] = {}
        for i in range(group):  # a group holds consecutive batches of a few gateways, as they arrive
            seq += 1 if i % gateways == 0 else 0
            committed.setdefault(("bench", f"e{i % gateways}", f"gw{i % gateways}"), []).append(seq)
        ingestor._ack_gateways(committed)
    time.sleep(1.0)  # paho's thread sends them
    return (time.process_time() - t0) / (groups * group) * 1e6


def whole(work: Path, port: int, broker_pid: int, acks: bool, args: argparse.Namespace, t0: int) -> dict[str, float]:
    store = open_store(f"sqlite:///{work / f'ingest-{t0}.db'}")
    ingestor = Ingestor(IngestConfig(mqtt_port=port, db_url=store.url, client_id=f"bench-ack-{t0}"), store)
    ingestor.send_acks = acks
    ingestor.start()
    assert ingestor.connected.wait(10)
    stats = work / f"gw-{t0}.json"
    seconds = args.batches / args.gateways / 100  # _gateways sends every gateway's batch each cycle
    c0, b0 = time.process_time(), cpu_s(broker_pid)
    load = subprocess.Popen([sys.executable, str(HERE / "_gateways.py"), str(port), "0", str(args.gateways),
                             str(args.points), str(args.gateways * args.points * 100), str(seconds), str(stats),
                             str(t0)])
    load.wait(300)
    sent = int(json.loads(stats.read_text())["messages"])
    deadline = time.monotonic() + 120
    while ingestor.stats.messages < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    cpu, broker = time.process_time() - c0, cpu_s(broker_pid) - b0
    ingestor.stop()
    store.close()
    return {"batches": sent, "ingest_cpu_us_per_batch": round(cpu / sent * 1e6, 1),
            "broker_cpu_us_per_batch": round(broker / sent * 1e6, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateways", type=int, default=20)
    ap.add_argument("--points", type=int, default=25, help="per batch")
    ap.add_argument("--batches", type=int, default=6000, help="per run of part 2")
    ap.add_argument("--group", type=int, default=100, help="batches per commit (ingest's max_batch_messages)")
    ap.add_argument("--rounds", type=int, default=2, help="part 2: runs with acks off and on, in turns")
    args = ap.parse_args()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="parkmon-bench-ack-") as tmp:
        work = Path(tmp)
        broker = start_mosquitto(work / "mq")
        try:
            assert broker.proc is not None
            store = open_store(f"sqlite:///{work / 'step.db'}")
            ing = Ingestor(IngestConfig(mqtt_port=broker.port, db_url=store.url, client_id="bench-ack-step"), store)
            ing.start()
            assert ing.connected.wait(10)
            # as in bench/ingest_pg.py's load (several batches of a gateway per commit), and the worst case: a
            # commit per poll cycle of many gateways, one batch each, so one ack message per batch
            for gws in (args.gateways, args.group):
                step = [ack_step(ing, gws, args.group, 200) for _ in range(3)]
                out[f"ack_step_cpu_us_per_batch_{args.group // gws}_per_gateway_per_commit"] = {
                    "runs": [round(s, 1) for s in step], "median": round(statistics.median(step), 1),
                    "batches_per_commit": args.group, "gateways_per_commit": gws}
            ing.stop()
            store.close()
            runs: dict[str, list[dict[str, float]]] = {"acks_off": [], "acks_on": []}
            t0 = 1_795_000_000_000
            for r in range(args.rounds):
                for acks in (False, True):
                    t0 += 10_000_000
                    key = "acks_on" if acks else "acks_off"
                    runs[key].append(whole(work, broker.port, broker.proc.pid, acks, args, t0))
                    print(f"round {r + 1}, {key}: {runs[key][-1]}", file=sys.stderr)
            out["whole_ingest"] = runs
            for key in ("ingest_cpu_us_per_batch", "broker_cpu_us_per_batch"):
                off = statistics.median(x[key] for x in runs["acks_off"])
                on = statistics.median(x[key] for x in runs["acks_on"])
                out[f"{key}_median"] = {"off": off, "on": on, "difference": round(on - off, 1)}
        finally:
            broker.stop()
    out["load"] = {"gateways": args.gateways, "points_per_batch": args.points, "store": "SQLite (temporary folder)"}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
