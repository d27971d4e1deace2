"""HJ 212 figures: the codec's speed, and records per second a gateway takes from data loggers.

1. codec: frames/s cut from a byte stream, CRC-checked and decoded into records (``parkmon/common/hj212.py``),
   beside the bare CRC over the same bytes (the part no parser can skip);
2. gateway: N simulated loggers (``simulators/hj212_logger.DataLogger``) dial into the edge agent's
   receiver; every record is on the gateway's disk (fsync) before its 9014 — records/s acknowledged.

    python bench/hj212.py [--frames 20000] [--loggers 10] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parkmon.common import hj212

T0 = 1_795_363_200_000


def codec(frames: int) -> None:
    values = {c: {"Rtd": 35.2, "ZsRtd": 41.0} for c in ("a21026", "a21002", "a34013")}
    values |= {"a19001": {"Rtd": 9.2}, "a01012": {"Rtd": 55.3}, "a00000": {"Rtd": 62.5}}
    one = [hj212.build(hj212.Packet("31", "2011", "123456", "010000A8900016F000169DC0",
                                    hj212.cp_of(T0 + k * 1000, values, dict.fromkeys(values, "N")),
                                    hj212.make_qn(T0 + k), 5)) for k in range(100)]
    stream = b"".join(one[k % 100] for k in range(frames))
    t = time.perf_counter()
    n = 0
    for item in hj212.Framer().feed(stream):
        assert isinstance(item, bytes)
        hj212.record(hj212.parse(item))
        n += 1
    full = time.perf_counter() - t
    t = time.perf_counter()
    for k in range(frames):
        f = one[k % 100]
        hj212.crc16(f[6:-6])
    crc = time.perf_counter() - t
    print(f"codec   {n} frames of {len(one[0])} bytes: frame+CRC+decode {n / full:,.0f} frames/s "
          f"({len(stream) / full / 1e6:.2f} MB/s); CRC alone {frames / crc:,.0f} frames/s; "
          f"the CRC is {crc / full:.0%} of the work")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def gateway(loggers: int, seconds: float) -> None:
    from edge_agent.agent import Agent
    from edge_agent.config import parse_config
    from simulators.hj212_logger import DataLogger

    tmp = Path(tempfile.mkdtemp(prefix="bench-hj212-"))
    port = _free_port()
    devices = [{"id": f"cems{i}", "driver": "hj212", "host": "127.0.0.1", "port": port, "mn": f"{i:024X}",
                "pw": "123456", "st": "31"} for i in range(loggers)]
    # no broker: the agent buffers to disk (fsync per record) and the publisher keeps retrying
    cfg = parse_config({"gateway": {"park": "bench", "enterprise": "e", "id": "gw"}, "mqtt": {"port": _free_port()},
                        "buffer": {"path": str(tmp / "buffer.db")}, "poll_interval_s": 1.0, "devices": devices})
    agent = Agent(cfg)
    task = asyncio.create_task(agent.run())
    await asyncio.sleep(0.5)
    # each logger as fast as acks allow: real-time every simulated second, sped up 600×
    lgs = [DataLogger("127.0.0.1", port, kind="cems", mn=f"{i:024X}", seed=i, speed=600.0, sim_start_ms=T0,
                      rtd_interval_s=1, ack_timeout_s=5) for i in range(loggers)]
    for lg in lgs:
        await lg.start()
    await asyncio.sleep(1.0)
    a0, t0 = sum(lg.counters.acked for lg in lgs), time.perf_counter()
    await asyncio.sleep(seconds)
    acked, dt = sum(lg.counters.acked for lg in lgs) - a0, time.perf_counter() - t0
    backlog = sum(lg.queued for lg in lgs)
    for lg in lgs:
        await lg.stop()
    agent.stop()
    await task
    print(f"gateway {loggers} loggers over TCP, each record fsynced before its 9014: {acked / dt:,.0f} records/s "
          f"acknowledged ({acked / dt / loggers:,.1f} per logger; still queued at the loggers: {backlog}); "
          f"a CEMS sending real-time every 30 s needs 0.03 records/s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--loggers", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    codec(args.frames)
    asyncio.run(gateway(args.loggers, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
