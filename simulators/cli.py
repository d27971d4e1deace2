"""``parkmon sim``: run the simulated park on its own (for a real broker and real agents)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from parkmon.common.clock import CHINA
from simulators.definition import DefinitionError
from simulators.runner import SimulatedPark


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


def _hj212_parsers(sub: Any) -> None:
    from simulators.hj212_logger import FAULTS, KINDS

    lg = sub.add_parser(
        "hj212", help="HJ 212 data loggers (CEMS / wastewater) uploading to a platform",
        description="Run HJ 212-2017 data loggers (数采仪) of the simulated park: a CEMS logger (ST 31) and / or a "
                    "wastewater station (ST 32) dial --host:--port and upload real-time (2011), minute (2051), hour "
                    "(2061) and day (2031) data with Flag=5, wait for each 9014, re-send and reconnect; they answer "
                    "history (2051/2061/2031) and time (1011) requests. Runs until Ctrl-C / SIGTERM or --duration.")
    lg.add_argument("--host", default="127.0.0.1", help="platform (or gateway) to dial (default 127.0.0.1)")
    lg.add_argument("--port", type=int, required=True, help="its TCP port")
    lg.add_argument("--station", action="append", choices=sorted(KINDS), default=None,
                    help="cems or wastewater; repeat for both (default: both)")
    lg.add_argument("--mn", action="append", default=None,
                    help="MN of each --station in order (default: 24 hex digits derived from the park and device)")
    lg.add_argument("--pw", default="123456", help="access password PW, up to 6 characters (default 123456)")
    lg.add_argument("--speed", type=float, default=1.0,
                    help="simulated seconds per wall second (3600: an hour a second)")
    lg.add_argument("--sim-start", type=_sim_start, default=None, metavar="ISO",
                    help="simulated start time, China time unless it has an offset (default: now)")
    lg.add_argument("--rtd-interval", type=float, default=30.0, metavar="S",
                    help="simulated seconds between real-time (2011) uploads; 0: none (default 30)")
    lg.add_argument("--park", default=None, help="park definition YAML (default: the shipped demo park)")
    lg.add_argument("--enterprise", default="e01",
                    help="enterprise whose CEMS / wastewater outlet is simulated (default e01)")
    lg.add_argument("--seed", type=int, default=2025, help="same seed, same values")
    lg.add_argument("--ack-timeout", type=float, default=10.0, metavar="S",
                    help="seconds to wait for each 9014 before re-sending (default 10, HJ 212 table 1)")
    lg.add_argument("--retries", type=int, default=3, help="re-sends before the link is re-made (default 3)")
    lg.add_argument("--fault", action="append", choices=FAULTS, default=[],
                    help="inject a fault into the next packet it applies to; repeatable")
    lg.add_argument("--fault-every", type=float, default=0.0, metavar="S",
                    help="inject the --fault list again every S wall seconds (default: once)")
    lg.add_argument("--report-s", type=float, default=10.0, metavar="S", help="print counters every S seconds")
    lg.add_argument("--duration", type=float, default=0.0, metavar="S", help="stop after S wall seconds (0: never)")

    pf = sub.add_parser(
        "hj212-platform", help="an HJ 212 receiving platform that prints what arrives",
        description="A test receiving platform (监控中心) for HJ 212-2017: acknowledges uploads with 9014, keeps bad "
                    "frames as dead letters with the codec's reason, refuses unknown MN / wrong PW (9011 QnRtn 4 / 3) "
                    "when --allow is given, and prints one line per record (Chinese and English). Runs until Ctrl-C / "
                    "SIGTERM or --duration.")
    pf.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    pf.add_argument("--port", type=int, required=True, help="TCP port to listen on (0: a free one, printed)")
    pf.add_argument("--allow", action="append", default=None, metavar="MN=PW",
                    help="accept only these loggers; repeatable (default: accept any)")
    pf.add_argument("--late-ack", type=float, default=0.0, metavar="S",
                    help="answer every upload's 9014 S seconds late (fault; default 0)")
    pf.add_argument("--drop-acks", type=int, default=0, metavar="N", help="never answer the first N uploads (fault)")
    pf.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    pf.add_argument("--duration", type=float, default=0.0, metavar="S", help="stop after S wall seconds (0: never)")


def _stop_event(duration: float) -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if duration > 0:
        loop.call_later(duration, stop.set)
    return stop


async def _run_hj212(args: argparse.Namespace) -> int:
    from simulators.hj212_logger import DataLogger

    stations = args.station or ["cems", "wastewater"]
    mns = args.mn or []
    if len(mns) > len(stations):
        raise ValueError(f"{len(mns)} --mn for {len(stations)} station(s); give one --mn per --station, in order")
    loggers = [DataLogger(args.host, args.port, kind=kind, mn=mns[i] if i < len(mns) else None, pw=args.pw,
                          park=args.park, enterprise=args.enterprise,
                          seed=args.seed, speed=args.speed, sim_start_ms=args.sim_start,
                          rtd_interval_s=args.rtd_interval, ack_timeout_s=args.ack_timeout, retries=args.retries,
                          faults=args.fault)
               for i, kind in enumerate(stations)]
    stop = _stop_event(args.duration)
    for lg in loggers:
        await lg.start()
        m = lg.model
        print(f"{lg.kind} logger MN={lg.mn} ST={lg.st} ({m.enterprise}/{m.device} {m.name}) -> "
              f"{args.host}:{args.port}, speed x{args.speed:g}, simulated clock from {_iso(lg.sim_start_ms)}",
              flush=True)
    last_fault = time.monotonic()
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.report_s)
            for lg in loggers:
                print(_status(lg), flush=True)
            if args.fault and args.fault_every > 0 and time.monotonic() - last_fault >= args.fault_every:
                last_fault = time.monotonic()
                for lg in loggers:
                    for name in args.fault:
                        lg.set_fault(name)
    finally:
        for lg in loggers:
            await lg.stop()
    return 0


def _status(lg: Any) -> str:
    c = lg.counters
    faults = ", ".join(f"{k} {v}" for k, v in c.faults.items()) or "none"
    return (f"{lg.kind} {lg.mn} at {_iso(lg.sim_now())}: made {c.generated}, sent {c.sent}, acked {c.acked}, "
            f"re-sent {c.resent}, queued {lg.queued}, {'connected' if lg.connected else 'not connected'} "
            f"(connections {c.connections}, drops {c.drops}, faults: {faults})")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=CHINA).isoformat(timespec="seconds")


async def _run_platform(args: argparse.Namespace) -> int:
    from simulators.hj212_platform import TestPlatform, describe_dead_letter, describe_received, describe_refusal

    allow = None
    if args.allow:
        allow = {}
        for item in args.allow:
            mn, eq, pw = item.partition("=")
            if not eq or not mn:
                raise ValueError(f"--allow {item!r}: expected MN=PW")
            allow[mn] = pw
    plat = TestPlatform(args.host, args.port, allow=allow,
                        on_record=lambda r, dup: print(describe_received(r, dup, as_json=args.json), flush=True),
                        on_dead_letter=lambda d: print(describe_dead_letter(d, as_json=args.json), flush=True),
                        on_refusal=lambda r: print(describe_refusal(r, as_json=args.json), flush=True))
    if args.late_ack > 0:
        plat.set_fault("late_ack", count=10**9, seconds=args.late_ack)
    if args.drop_acks > 0:
        plat.set_fault("drop_acks", count=args.drop_acks)
    stop = _stop_event(args.duration)
    async with plat:
        print(f"HJ 212 platform listening on {args.host}:{plat.port}", flush=True)
        await stop.wait()
        c = plat.counters
        print(f"stopped: {c.records} records ({len(plat.dedup())} distinct, {c.duplicates} duplicates), "
              f"{len(plat.dead_letters)} dead letters, {c.refused} refused, {c.acks_sent} acks", flush=True)
    return 0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="parkmon sim",
                                 description="Simulated park of Modbus TCP devices and HJ 212 data loggers (园区仿真)")
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
    _hj212_parsers(sub)
    args = ap.parse_args(argv)
    runner = {"run": _run, "hj212": _run_hj212, "hj212-platform": _run_platform}[args.cmd]
    try:
        return asyncio.run(runner(args))
    except (DefinitionError, OSError, ValueError, KeyError) as exc:
        print(f"parkmon sim: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2
