"""``parkmon sim``: run the simulated park on its own (for a real broker and real agents)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from datetime import datetime
from pathlib import Path

import yaml

from .definition import DefinitionError
from .physics import CHINA
from .runner import SimulatedPark


def _sim_start(text: str) -> int:
    """ISO date-time; without an offset it is China time (UTC+8), where the simulated park is."""
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date-time like 2025-06-21T06:00+08:00") from None
    return int((t if t.tzinfo else t.replace(tzinfo=CHINA)).timestamp() * 1000)


async def _run(args: argparse.Namespace) -> int:
    park = SimulatedPark(args.park, seed=args.seed, speed=args.speed, port_base=args.port_base or None,
                         ground_truth_path=args.ground_truth, tick_s=args.tick_s, sim_start_ms=args.sim_start,
                         tick_log=args.tick_log)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with park:
        info = park.park_info()
        start = datetime.fromtimestamp(park.sim_start_ms / 1000, tz=CHINA).isoformat(timespec="minutes")
        print(f"simulated park {info['key']} {info['name_zh']} ({info['park_class']}), seed {args.seed}, "
              f"speed x{args.speed:g}, simulated clock from {start}", flush=True)
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
    run = sub.add_parser("run", help="serve the park until Ctrl-C / SIGTERM",
                         description="Serve every enterprise of the park as a Modbus TCP server on loopback.")
    run.add_argument("--park", default=None, help="park definition YAML (default: the shipped demo park)")
    run.add_argument("--seed", type=int, default=2025, help="same seed, same weather, loads and faults")
    run.add_argument("--speed", type=float, default=60.0,
                     help="simulated seconds per wall second (144: a day in 10 min)")
    run.add_argument("--tick-s", type=float, default=0.5, help="wall seconds between register updates")
    run.add_argument("--sim-start", type=_sim_start, default=None, metavar="ISO",
                     help="simulated start time (default 2025-06-21T06:00+08:00)")
    run.add_argument("--port-base", type=int, default=15020,
                     help="first Modbus TCP port, one per enterprise (0: any free ports)")
    run.add_argument("--ground-truth", default=None, metavar="FILE", help="SQLite file to log every tick's true values")
    run.add_argument("--tick-log", default=None, metavar="FILE", help="append each tick's wall time (ms) to FILE")
    run.add_argument("--write-edge-configs", default=None, metavar="DIR",
                     help="write one gateway config per enterprise into DIR")
    run.add_argument("--mqtt-host", default="127.0.0.1", help="broker named in the written configs")
    run.add_argument("--mqtt-port", type=int, default=1883)
    args = ap.parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except (DefinitionError, OSError, ValueError) as exc:
        print(f"parkmon sim: {exc}", file=sys.stderr)
        return 2
