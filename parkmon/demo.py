"""``parkmon demo``: a whole simulated park on one machine, from one command.

Starts, in this order: a local mosquitto (a child process on a free port), the simulated park
(Modbus TCP servers on loopback), the store (SQLite by default), ingest, the HTTP API, and one
edge agent per enterprise as its own ``parkmon edge run`` process, the way gateways run in the
field. Then it prints the live board's address (and opens it in a browser when the machine has a
display) and the live new-energy share every few seconds. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from parkmon.common.clock import CHINA
from parkmon.common.netutil import free_port


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="parkmon demo",
        description="Run a simulated park end to end: simulator -> edge agents -> MQTT -> ingest -> "
                    "store -> new-energy share on the terminal, the HTTP API and the live board "
                    "(http://127.0.0.1:PORT/board/demo, 实时看板). (一键演示)",
    )
    ap.add_argument("--workdir", default="parkmon-demo", help="where the database, buffers and logs go")
    ap.add_argument("--db", default=None, help="database URL (default: SQLite in the workdir), "
                                               "e.g. postgresql+psycopg://user:pw@host/db")
    ap.add_argument("--speed", type=float, default=240.0,
                    help="simulated seconds per wall second (240: a simulated day in 6 minutes)")
    ap.add_argument("--seed", type=int, default=2025, help="simulator seed (same seed, same park)")
    ap.add_argument("--api-port", type=int, default=8080, help="HTTP API port (0: pick a free one)")
    ap.add_argument("--mqtt-host", default=None, help="use this broker instead of starting mosquitto")
    ap.add_argument("--mqtt-port", type=int, default=1883)
    ap.add_argument("--poll", type=float, default=2.0, help="edge agent poll interval, seconds")
    ap.add_argument("--every", type=float, default=5.0, help="print the share every N seconds")
    ap.add_argument("--duration", type=float, default=0.0, help="stop after N seconds (0: run until Ctrl-C)")
    ap.add_argument("--json", action="store_true", help="print status lines as JSON (for scripts)")
    ap.add_argument("--no-browser", action="store_true",
                    help="do not open the live board in a browser (default: open it when a display is "
                         "available and the output is not --json)")
    return ap


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from analytics.alerts.from_registry import pressure_rules
    from analytics.alerts.rules import load_rules
    from analytics.alerts.service import AlertService
    from ingest.mqtt.broker import start_mosquitto
    from ingest.mqtt.config import IngestConfig
    from ingest.mqtt.consumer import Ingestor
    from ingest.store import open_store
    from ingest.store.maintenance import Maintenance, MaintenanceConfig
    from parkmon.api.app import create_app
    from simulators.runner import start_in_thread

    if args.api_port and not _port_free(args.api_port):
        print(f"parkmon demo: port {args.api_port} is in use; pass --api-port 0 for any free port "
              f"(or --api-port N)", file=sys.stderr)
        return 2
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    with ExitStack() as stack:
        # 1. broker
        if args.mqtt_host:
            mqtt_host, mqtt_port = args.mqtt_host, args.mqtt_port
        else:
            broker = start_mosquitto(work / "mosquitto")
            stack.callback(broker.stop)
            mqtt_host, mqtt_port = broker.host, broker.port
        _say(args, f"MQTT broker     mqtt://{mqtt_host}:{mqtt_port}")

        # 2. simulated park
        sim = start_in_thread(seed=args.seed, speed=args.speed, ground_truth_path=str(work / "ground_truth.db"))
        stack.callback(sim.stop)
        info = sim.park_info()
        _say(args, f"simulated park  {info['key']} {info['name_zh']} ({info['park_class']}), "
                   f"{len(sim.ports)} enterprises on Modbus TCP ports {sorted(sim.ports.values())}")

        # 3. store, registry, ingest
        db_url = args.db or f"sqlite:///{work / 'parkmon.db'}"
        store = open_store(db_url)
        stack.callback(store.close)
        store.create_schema()
        store.upsert_park(info["key"], info["name_zh"], info["name_en"], info["park_class"], info.get("region", ""))
        ingestor = Ingestor(IngestConfig(mqtt_host=mqtt_host, mqtt_port=mqtt_port, db_url=db_url), store)
        ingestor.start()
        stack.callback(ingestor.stop)
        maintenance = Maintenance(store, MaintenanceConfig(rollup_every_s=10.0))  # 1m/1h/1d rollups
        maintenance.start()
        stack.callback(maintenance.stop)
        from analytics.board_feed import BoardFeed, FeedConfig

        feed = BoardFeed(store, FeedConfig(every_s=30.0))  # hourly indicators for Grafana's boards
        feed.start()
        stack.callback(feed.stop)
        _say(args, f"store           {db_url}")
        # alerts: the default rules, and each vessel and pipeline above its own design pressure
        alerts = AlertService(store, load_rules() + pressure_rules(sim.park.engine.model.spec.model_dump()))
        alerts.attach(ingestor)
        alerts.start()
        stack.callback(alerts.stop)
        _say(args, f"alerts          {len(alerts.engine.rules)} rules (analytics/alerts/rules.yaml + design pressures)")

        # 4. API
        api_port = args.api_port or free_port()
        note = _clocks(info, sim.park.sim_ms, args.speed)
        stack.callback(_start_api(create_app(store, alert_engine=alerts.engine, board_note=note), api_port))
        base = f"http://127.0.0.1:{api_port}/api/v1"
        board = f"http://127.0.0.1:{api_port}/board/{info['key']}"
        _say(args, f"HTTP API        http://127.0.0.1:{api_port}/docs")
        _say(args, f"live board      {board}")
        _say(args, note)

        # 5. the park office: registry with gates, gate traffic over MQTT, records through the API
        from simulators.park_office import ParkOffice

        office = ParkOffice(sim.park.engine.model.spec, args.seed, base, mqtt_host, mqtt_port)
        office.start(lambda: sim.park.sim_ms)
        stack.callback(office.stop)
        _say(args, "six systems     gates, economy, hazardous waste, safety register, services (park office sim)")

        # 6. one edge agent per enterprise, each its own process like a real gateway
        configs = sim.edge_configs(mqtt_host, mqtt_port, str(work / "buffers"))
        procs = []
        for ent, cfg in sorted(configs.items()):
            cfg = {**cfg, "poll_interval_s": args.poll}
            path = work / f"gateway-{ent}.yaml"
            path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
            log = open(work / f"gateway-{ent}.log", "ab")  # noqa: SIM115 - closed by the exit stack
            stack.callback(log.close)
            procs.append(subprocess.Popen([sys.executable, "-m", "parkmon.cli", "edge", "run", "-c", str(path)],
                                          stdout=log, stderr=subprocess.STDOUT))
        stack.callback(_stop_procs, procs)
        _say(args, f"edge agents     {len(procs)} gateways (logs in {work})")
        _announce_board(args, board)
        _say(args, "Ctrl-C to stop.  新能源消纳比例 = new-energy consumption share")

        started = time.monotonic()
        seen = [0]
        while not stop.wait(args.every):
            _report(args, base, info["key"], started, sim.park.sim_ms)
            _alert_lines(args, base, seen)
            dead = [p for p in procs if p.poll() is not None]
            if dead:
                _say(args, f"an edge agent exited with code {dead[0].returncode}; see its log in {work}")
            if args.duration and time.monotonic() - started >= args.duration:
                break
        _say(args, "stopping ...")
    return 0


def _clocks(info: dict[str, Any], sim_ms: int, speed: float) -> str:
    """Which clock is which: the simulated weather and load run on their own fast clock, while the gateways
    stamp readings with this machine's (a real gateway's) clock, so the board and reports use today's date.
    Stamping simulated time instead would put readings hours into the future after a minute at ×600."""
    sim = datetime.fromtimestamp(sim_ms / 1000, tz=CHINA).strftime("%Y-%m-%d %H:%M")
    return (f"时钟：{info['name_zh']}的天气与负荷按模拟时间运行（×{speed:g}，自 {sim} 起），读数按本机时钟记录，"
            f"看板与报告按今天的日期查询。 Clocks: the simulated park's weather and load run on simulated time "
            f"(×{speed:g} from {sim}); readings carry this machine's clock, so the board and reports use today's date.")


def _report(args: argparse.Namespace, base: str, park: str, started: float, sim_ms: int) -> None:
    try:
        share = _get(f"{base}/parks/{park}/indicators/new-energy-share")
        health = _get(f"{base}/health?readings=true")
    except OSError as exc:
        _say(args, f"API not answering yet: {exc}")
        return
    sim_time = datetime.fromtimestamp(sim_ms / 1000, tz=CHINA).strftime("%Y-%m-%d %H:%M")
    data_time = datetime.now(CHINA).strftime("%Y-%m-%d %H:%M:%S")  # the clock the readings carry
    if args.json:
        print(json.dumps({"elapsed_s": round(time.monotonic() - started, 1), "sim_time": sim_time,
                          "data_time": data_time,
                          "readings": health["readings"], "share": share}, ensure_ascii=False), flush=True)
        return
    value = share.get("value")
    target = share.get("target")
    pct = "  --  " if value is None else f"{value * 100:5.1f}%"
    tgt = "--" if target is None else f"{target * 100:.0f}%"
    status = {"met": "达标 met", "below_target": "未达标 below target",
              "insufficient_data": "数据不足 insufficient data"}.get(share.get("status", ""), share.get("status"))
    inputs = share.get("inputs", {})
    print(f"[模拟 sim {sim_time} · 数据 data {data_time}] 新能源消纳比例 share {pct}  目标 target {tgt}  {status} | "
          f"RE {inputs.get('re_gen', 0):,.0f} kWh, 用电 used {inputs.get('consumption', 0):,.0f} kWh, "
          f"弃电 curtailed {inputs.get('curtailed', 0):,.0f} kWh | readings {health['readings']:,}", flush=True)


def _alert_lines(args: argparse.Namespace, base: str, seen: list[int]) -> None:
    """Every alert event since the last look: what, where, how far over, since when (zh, then en)."""
    try:
        events = _get(f"{base}/alert-events?after_id={seen[0]}")
    except OSError:
        return
    for e in events:
        seen[0] = max(seen[0], int(e["id"]))
        if args.json:
            print(json.dumps({"alert": e}, ensure_ascii=False), flush=True)
        else:
            print(f"  {e['text_zh']}", flush=True)


def _announce_board(args: argparse.Namespace, url: str) -> None:
    """The live board's address where nobody can miss it, and the board itself in a browser when the
    machine has a display (never an error when it has none)."""
    if args.json:
        print(json.dumps({"event": "live board", "board": url}), flush=True)
    else:
        print(f"\n  ==> 实时看板 live board: {url}\n", flush=True)
    if args.no_browser or args.json or not _display_available():
        return
    import webbrowser

    try:
        opened = webbrowser.open(url)
    except (webbrowser.Error, OSError):  # a browser that cannot start must not stop the demo
        opened = False
    if not opened:
        _say(args, "(no browser could be started: open the address above)")


def _display_available() -> bool:
    """A desktop to open a browser on: macOS, Windows, or an X11 / Wayland session."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _say(args: argparse.Namespace, text: str) -> None:
    if args.json:
        print(json.dumps({"event": text}, ensure_ascii=False), flush=True)
    else:
        print(text, flush=True)


def _start_api(app: Any, port: int) -> Any:
    import uvicorn

    # an open live board keeps a stream open: close the streams first, and cancel what is left after 2 s
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)

    def stop() -> None:
        app.state.board.close()
        server.should_exit = True
        thread.join(5)

    return stop


def _stop_procs(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
