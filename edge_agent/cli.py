"""``parkmon edge``: run, check and poll a gateway config. Needs only ``parkmon[edge]``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from typing import Any

from edge_agent.config import AgentConfig, ConfigError, load_config
from parkmon.common import quality
from parkmon.common.secrecy import check_production, mqtt_checks, protect_logs


def _check(cfg: AgentConfig) -> int:
    gw = cfg.gateway
    print(f"gateway {gw.park}/{gw.enterprise}/{gw.id} -> mqtt {cfg.mqtt.host}:{cfg.mqtt.port}")
    total = 0
    for d in cfg.devices:
        print("\n".join(d.describe(d.poll_interval_s or cfg.poll_interval_s)))  # the driver's own words
        total += len(d.points)
    for u in cfg.hj212_upstream:
        print(f"HJ 212 upstream {u.name}: {u.host}:{u.port} as MN {u.mn} (ST {u.st}) reports {u.device}: "
              f"{', '.join(u.periods)}; ack wait {u.timeout_s:g} s x {u.retries}, history kept {u.keep_days:g} days")
    print(f"{total} points OK")
    return 0


async def _poll_once(cfg: AgentConfig) -> int:
    from edge_agent.drivers.base import create_driver

    shared: dict[object, object] = {}
    drivers = [create_driver(d, shared) for d in cfg.devices]
    for drv in drivers:
        await drv.open()
    try:
        results = await asyncio.gather(*(drv.read() for drv in drivers))
    finally:
        for drv in drivers:
            await drv.close()
    bad = 0
    for samples in results:
        for point, ts, value, q in samples:
            bad += not quality.is_good(q)
            print(json.dumps({"point": point, "ts": ts, "value": value, "quality": q,
                              "quality_text": quality.describe(q)}, ensure_ascii=False))
    return 1 if bad else 0


async def _run(cfg: AgentConfig) -> int:
    from edge_agent.agent import Agent

    agent = Agent(cfg)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, agent.stop)
    await agent.run()
    return 0


def _scan(args: argparse.Namespace) -> int:
    if args.iec104:
        from edge_agent.drivers.iec104.scan import main as scan_iec104

        return scan_iec104(args.host, args.port or 2404, args.ca, args.timeout)
    from edge_agent.scan import make_client, parse_units, scan

    args.port = args.port or 502
    if not args.host and not args.serial:
        print("parkmon edge scan: give --host HOST (Modbus TCP / DTU) or --serial DEVICE (RTU)", file=sys.stderr)
        return 2
    try:
        units = parse_units(args.units)
    except ValueError as exc:
        print(f"parkmon edge scan: {exc}", file=sys.stderr)
        return 2
    def client() -> Any:
        return make_client(args.host, args.port, args.serial, args.baudrate, args.parity, args.rtu_over_tcp,
                           0.3 if args.timeout is None else args.timeout)

    where = args.serial or f"{args.host}:{args.port}"
    total = len(units)

    def progress(unit: int) -> None:
        print(f"\rscanning {where}: unit {unit} ({units.index(unit) + 1}/{total})", end="", file=sys.stderr,
              flush=True)

    try:
        found = asyncio.run(scan(client, units, args.address, args.table, progress if sys.stderr.isatty() else None))
    except ConnectionError as exc:
        print(f"parkmon edge scan: {where}: {exc}", file=sys.stderr)
        return 1
    if sys.stderr.isatty():
        print(file=sys.stderr)
    for f in found:
        print(json.dumps({"unit": f.unit, "answer": f.answer}))
    print(f"{len(found)} unit(s) answered on {where}", file=sys.stderr)
    return 0 if found else 1


def _profiles() -> int:
    """``check --profiles``: the shipped register maps, each with the document it was read from."""
    import yaml

    from edge_agent.config import PROFILE_DIR

    devices = 0
    for path in sorted(PROFILE_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        src = doc.get("source") or {}  # the simulator's own maps (sim_*) name no maker or manual
        devices += bool(src)
        where = "; ".join(str(src[k]) for k in ("document", "section") if src.get(k)) or "parkmon simulator map"
        print(f"{path.stem:<22} {doc.get('maker', 'parkmon'):<26} {doc.get('model', doc.get('description', '')):<36} "
              f"{doc.get('kind', 'simulator'):<10} {where}")
    print(f"{devices} device profiles; each file's header, checked: and assumed: say what was read in which manual")
    return 0


def _drivers_help() -> str:
    """The registered drivers, as the registry is when the command runs (edge_agent/drivers/base.py)."""
    from edge_agent.drivers.base import describe_drivers

    return "device drivers (a device's driver:, default modbus_tcp) · 设备驱动:\n" + "\n".join(
        f"  {line}" for line in describe_drivers())


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="parkmon edge", description="parkmon gateway agent (边缘采集网关)",
                                 epilog=_drivers_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name, text in (("run", "poll devices and publish to the broker until stopped"),
                       ("check", "validate the config and print the resolved point list"),
                       ("poll", "poll every device once and print samples as JSON lines (no broker)")):
        p = sub.add_parser(name, help=text, description=text, epilog=_drivers_help(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("-c", "--config", required=name != "check", help="gateway YAML config")
        p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
        if name == "check":
            p.add_argument("--profiles", action="store_true", help="list the shipped device profiles (name, "
                           "maker, model, kind, source) instead of checking a config")
        if name == "poll":
            p.add_argument("--once", action="store_true", required=True, help="poll one cycle and exit")
    sc = sub.add_parser("scan", help="probe a Modbus link for the unit ids that answer, or list what an IEC 104 "
                        "station reports", description="probe a Modbus link (TCP, RTU over TCP, or a serial line) for "
                        "unit ids; with --iec104, interrogate an IEC 60870-5-104 station and list its objects")
    sc.add_argument("--host", help="Modbus TCP host or DTU address; the IEC 104 station")
    sc.add_argument("--port", type=int, default=None, help="default 502 (Modbus), 2404 (IEC 104)")
    sc.add_argument("--iec104", action="store_true", help="an IEC 60870-5-104 station: general and counter "
                    "interrogation, one JSON line per information object")
    sc.add_argument("--ca", type=int, default=0xFFFF, help="IEC 104 common address (default 65535: every station)")
    sc.add_argument("--rtu-over-tcp", action="store_true", help="RTU frames over TCP (serial servers, DTUs)")
    sc.add_argument("--serial", help="serial device, e.g. /dev/ttyUSB0 (Modbus RTU)")
    sc.add_argument("--baudrate", type=int, default=9600)
    sc.add_argument("--parity", choices=["N", "E", "O"], default="N")
    sc.add_argument("--units", default="1-247", help="ids to try, e.g. 1-10,20 (default 1-247)")
    sc.add_argument("--address", type=int, default=0, help="register to read from each unit")
    sc.add_argument("--table", choices=["holding", "input"], default="holding")
    sc.add_argument("--timeout", type=float, default=None,
                    help="seconds to wait for each unit (default 0.3); IEC 104: for the answers (default 30)")
    args = ap.parse_args(argv)
    if args.cmd == "scan":
        return _scan(args)
    if args.cmd == "check" and args.profiles:
        return _profiles()
    if args.config is None:
        print("parkmon edge check: give the gateway config with -c FILE, or --profiles", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    protect_logs([cfg.mqtt.password])
    if args.cmd == "check":
        return _check(cfg)
    if args.cmd == "poll":
        return asyncio.run(_poll_once(cfg))
    _refuse_defaults(cfg)
    return asyncio.run(_run(cfg))


def _refuse_defaults(cfg: AgentConfig) -> None:
    """PARKMON_ENV=production: a login with a real password, and TLS to a broker off this machine
    (parkmon/common/secrecy.py, docs/security.md)."""
    m = cfg.mqtt
    secrets, problems = mqtt_checks(m.host, m.username, m.password, tls=m.tls is not None,
                                    where="MQTT (the config's mqtt:)")
    check_production("parkmon edge run", secrets, problems)
