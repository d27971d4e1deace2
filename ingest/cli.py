"""``parkmon ingest``: run the MQTT consumer, or look at the dead letters."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from datetime import UTC, datetime

from .config import IngestConfig
from .store import open_store


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="parkmon ingest", description="MQTT -> database ingest (数据接入)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="consume gateway data from MQTT into the database until stopped")
    run.add_argument("--mqtt-host", default="127.0.0.1")
    run.add_argument("--mqtt-port", type=int, default=1883)
    run.add_argument("--mqtt-username", default=None)
    run.add_argument("--mqtt-password", default=None)
    run.add_argument("--client-id", default="parkmon-ingest-1", help="unique per worker")
    run.add_argument("--group", default="", help="shared-subscription group for several workers "
                     "(default: none, a plain subscription; see docs/decisions/0003)")
    run.add_argument("--db", default="sqlite:///parkmon.db", help="database URL")
    run.add_argument("--unknown-points", choices=["register", "quarantine"], default="register",
                     help="what to do with samples of points no gateway catalogue announced")
    dl = sub.add_parser("dead-letters", help="print rejected payloads with their reasons")
    dl.add_argument("--db", default="sqlite:///parkmon.db")
    dl.add_argument("--limit", type=int, default=20)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    store = open_store(args.db, unknown_points=getattr(args, "unknown_points", "register"))
    if args.cmd == "dead-letters":
        store.create_schema()
        for d in store.dead_letters(args.limit):
            at = datetime.fromtimestamp(d.received_ms / 1000, tz=UTC).isoformat(timespec="seconds")
            print(f"#{d.id} {at} {d.topic}\n  reason: {d.reason}\n  payload: {d.payload[:200]!r}")
        store.close()
        return 0

    cfg = IngestConfig(mqtt_host=args.mqtt_host, mqtt_port=args.mqtt_port, mqtt_username=args.mqtt_username,
                       mqtt_password=args.mqtt_password, client_id=args.client_id,
                       shared_group=args.group or None, db_url=args.db, unknown_points=args.unknown_points)
    from .consumer import Ingestor

    ingestor = Ingestor(cfg, store)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ingestor.start()
    stop.wait()
    ingestor.stop()
    store.close()
    return 0
