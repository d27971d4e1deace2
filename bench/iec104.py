"""IEC 104 figures: the driver's CPU per 1 000 values at 5 000 values/s, beside the Modbus driver's at the same rate.

Measured one after the other in one run, each driver alone in this process (no agent, no buffer, no broker:
bench/edge.py measures the whole agent), its peer in another process so its CPU is not counted:

1. iec104: a c104 (lib60870) station sends spontaneous short floats with time tags (M_ME_TF_1), ``--per-asdu``
   objects an ASDU, at ``--rate`` values/s; the driver hands them over every second as the agent would read them.
2. iec104, one value an ASDU: the same rate as single-object frames (a station that batches nothing).
3. modbus: 200 Modbus TCP devices x 25 float32 (bench/_devices.py, pymodbus servers) polled every second
   with the Modbus driver, coalesced reads: 5 000 values/s.
4. the 104 codec alone: the same ASDUs decoded in a loop, values/s on one core (the decoding ceiling).

Each line says what was achieved beside what was offered; the machine's busy share during each window is
printed too (2 cores shared with other work: a figure taken while they were busy is worth less).

    python bench/iec104.py [--seconds 10] [--rate 5000] [--per-asdu 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _proc import machine_cpu

from edge_agent.config import parse_config
from edge_agent.drivers.base import create_driver
from parkmon.common.netutil import free_port

HERE = Path(__file__).resolve()
GATEWAY = {"park": "bench", "enterprise": "e", "id": "gw"}


def station(port: int, rate: float, per_asdu: int, objects: int) -> None:
    """The peer process: a c104 station sending ``rate`` values/s in ASDUs of ``per_asdu`` objects."""
    import datetime as dt

    import c104

    server = c104.Server(ip="127.0.0.1", port=port)
    st = server.add_station(common_address=1)
    assert st is not None
    added = [st.add_point(io_address=1000 + i, type=c104.Type.M_ME_TF_1) for i in range(objects)]
    points: list[c104.Point] = [p for p in added if p is not None]
    server.start()
    print(json.dumps({"port": port}), flush=True)
    stop = False

    def halt(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, halt)
    tick, sent, i, t0 = 0.02, 0, 0, time.monotonic()
    while not stop:
        due = int((time.monotonic() - t0) * rate) - sent
        while due > 0 and server.has_active_connections:
            group = [points[(i + k) % objects] for k in range(min(per_asdu, due))]
            now = dt.datetime.now(dt.UTC)
            for k, p in enumerate(group):
                p.info = c104.ShortInfo(actual=float(i + k), recorded_at=now)
            if per_asdu == 1:
                group[0].transmit(cause=c104.Cot.SPONTANEOUS)
            else:
                server.transmit_batch(c104.Batch(cause=c104.Cot.SPONTANEOUS, points=group))
            i, sent, due = i + len(group), sent + len(group), due - len(group)
        if not server.has_active_connections:
            t0, sent = time.monotonic(), 0
        time.sleep(tick)
    server.stop()


async def drive(devices: list[dict[str, Any]], warmup: float, seconds: float) -> dict[str, Any]:
    """The drivers read every second, as the agent's poll loops do; CPU and values counted after the warm-up."""
    cfg = parse_config({"gateway": GATEWAY, "devices": devices})
    shared: dict[object, Any] = {}
    drivers = [create_driver(d, shared) for d in cfg.devices]
    for d in drivers:
        await d.open()
    values = 0
    try:
        start = time.monotonic()
        c0 = m0 = 0.0
        t_measure = 0.0
        while True:
            next_at = (time.time() // 1 + 1)
            await asyncio.sleep(max(0.0, next_at - time.time()))
            batches = await asyncio.gather(*(d.read() for d in drivers))
            got = sum(1 for b in batches for s in b if s[2] is not None)
            now = time.monotonic()
            if t_measure == 0.0 and now - start >= warmup:
                t_measure, c0, m0, values = now, time.process_time(), machine_cpu()[0], 0
            elif t_measure:
                values += got
                if now - t_measure >= seconds:
                    break
        cpu = time.process_time() - c0
        busy = (machine_cpu()[0] - m0) / ((now - t_measure) * (os.cpu_count() or 1))
        return {"values_per_s": round(values / (now - t_measure), 1),
                "cpu_s_per_1000_values": round(cpu / max(1, values) * 1000, 4),
                "machine_busy_share": round(busy, 2)}
    finally:
        for d in drivers:
            await d.close()


def iec104(rate: float, per_asdu: int, warmup: float, seconds: float) -> dict[str, Any]:
    objects = 250
    peer = subprocess.Popen([sys.executable, str(HERE), "--station", str(free_port()), str(rate), str(per_asdu),
                             str(objects)], stdout=subprocess.PIPE, text=True)
    try:
        assert peer.stdout is not None
        port = json.loads(peer.stdout.readline())["port"]
        points = [{"name": f"p{i}", "metric": "elec.active_power", "ioa": 1000 + i} for i in range(objects)]
        dev = {"id": "sub", "driver": "iec104", "host": "127.0.0.1", "port": port, "points": points}
        out = asyncio.run(drive([dev], warmup, seconds))
    finally:
        peer.send_signal(signal.SIGTERM)
        peer.wait(30)
    return {"offered_values_per_s": rate, "objects_per_asdu": per_asdu, **out}


def modbus(warmup: float, seconds: float) -> dict[str, Any]:
    servers, units = 10, 20
    peer = subprocess.Popen([sys.executable, str(HERE.parent / "_devices.py"), str(servers), str(units)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert peer.stdout is not None
        ports = json.loads(peer.stdout.readline())["ports"]
        points = [{"name": f"v{i:02d}", "metric": "elec.active_power", "address": 2 * i, "type": "float32"}
                  for i in range(25)]
        devs = [{"id": f"d{s:02d}u{u:02d}", "port": p, "unit": u, "points": points, "timeout_s": 2.0}
                for s, p in enumerate(ports) for u in range(1, units + 1)]
        out = asyncio.run(drive(devs, warmup, seconds))
    finally:
        peer.send_signal(signal.SIGTERM)
        peer.wait(30)
    return {"offered_values_per_s": servers * units * 25, "devices": servers * units, **out}


def codec(per_asdu: int, n: int = 20_000) -> dict[str, Any]:
    """ASDUs of M_ME_TF_1 objects as the station sends them (bytes written out: IOA, float, QDS, CP56Time2a)."""
    import struct

    from edge_agent.drivers.iec104 import asdu

    tag = bytes.fromhex("7B00000A270C1A")  # 2026-12-07 10:00:00.123
    body = b"".join(struct.pack("<I", 1000 + k)[:3] + struct.pack("<f", k * 0.5) + b"\x00" + tag
                    for k in range(per_asdu))
    frame = bytes((36, per_asdu, 3, 0, 1, 0)) + body
    t = time.process_time()
    for _ in range(n):
        asdu.decode(frame)
    el = time.process_time() - t
    return {"objects_per_asdu": per_asdu, "values_per_s_one_core": round(n * per_asdu / el),
            "cpu_s_per_1000_values": round(el / (n * per_asdu) * 1000, 4)}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--station":
        station(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--rate", type=float, default=5000.0)
    ap.add_argument("--per-asdu", type=int, default=16, help="objects per ASDU (16 time-tagged floats fill one)")
    args = ap.parse_args()
    batched = iec104(args.rate, args.per_asdu, args.warmup, args.seconds)
    single = iec104(args.rate, 1, args.warmup, args.seconds)
    mb = modbus(args.warmup, args.seconds)
    print(json.dumps({
        "iec104_driver": batched, "iec104_driver_one_value_per_asdu": single, "modbus_driver": mb,
        "iec104_codec_alone": codec(args.per_asdu),
        "cpu_iec104_over_modbus": round(batched["cpu_s_per_1000_values"] / max(1e-9, mb["cpu_s_per_1000_values"]), 2),
        "cpu_cores": os.cpu_count(),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
