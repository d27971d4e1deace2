"""``parkmon sim``: run the simulated park on its own (for a real broker and real agents)."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

import yaml

from .runner import SimulatedPark


async def _run(args: argparse.Namespace) -> int:
    park = SimulatedPark(args.park, seed=args.seed, speed=args.speed, port_base=args.port_base or None,
                         ground_truth_path=args.ground_truth, tick_log=args.tick_log)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with park:
        info = park.park_info()
        print(f"simulated park {info['key']} {info['name_zh']} ({info['park_class']}), speed x{args.speed:g}",
              flush=True)
        for ent, port in park.ports.items():
            print(f"  {ent} {info['enterprises'][ent]}: modbus tcp {park.host}:{port}")
        if args.write_edge_configs:
            await asyncio.to_thread(_write_configs, park, args)
        print("ready", flush=True)
        await stop.wait()
    return 0


def _write_configs(park: SimulatedPark, args: argparse.Namespace) -> None:
    out = Path(args.write_edge_configs)
    out.mkdir(parents=True, exist_ok=True)
    for ent, cfg in park.edge_configs(args.mqtt_host, args.mqtt_port, str(out / "buffers")).items():
        path = out / f"gateway-{ent}.yaml"
        path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
        print(f"  wrote {path}")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="parkmon sim", description="Simulated park of Modbus TCP devices (园区仿真)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="serve the park until Ctrl-C")
    run.add_argument("--park", default=None, help="park definition YAML (default: the shipped demo park)")
    run.add_argument("--seed", type=int, default=2025)
    run.add_argument("--speed", type=float, default=60.0, help="simulated seconds per wall second")
    run.add_argument("--port-base", type=int, default=15020,
                     help="first Modbus TCP port, one per enterprise (0: any free ports)")
    run.add_argument("--ground-truth", default=None, help="SQLite file to log every tick's true values")
    run.add_argument("--tick-log", default=None, metavar="FILE", help="append each tick's wall time (ms) to FILE")
    run.add_argument("--write-edge-configs", default=None, metavar="DIR",
                     help="write one gateway config per enterprise into DIR")
    run.add_argument("--mqtt-host", default="127.0.0.1", help="broker named in the written configs")
    run.add_argument("--mqtt-port", type=int, default=1883)
    args = ap.parse_args(argv)
    return asyncio.run(_run(args))
