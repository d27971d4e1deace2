"""``parkmon ingest``: run the MQTT consumer, and look after the store it writes."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ingest.mqtt.config import IngestConfig
from ingest.store import Store, open_store
from ingest.store.base import Retention
from ingest.store.pg_layout import LayoutError
from parkmon.common.clock import CHINA as CST
from parkmon.common.clock import now_ms
from parkmon.common.env import default_db
from parkmon.common.secrecy import Secret, check_production, mask_url, mqtt_checks, protect_logs, url_checks

if TYPE_CHECKING:
    from analytics.alerts.service import AlertService
    from ingest.mqtt.consumer import Ingestor

DB_HELP = ("database URL, e.g. sqlite:///parkmon.db or postgresql+psycopg://user@host/parkmon (password: PGPASSWORD); "
           "default: $PARKMON_DB_URL, else sqlite:///parkmon.db")


def _retention_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("retention (保留期限; days, default: keep forever)")
    g.add_argument("--keep-raw-days", type=int, default=None, help="raw readings (原始数据)")
    g.add_argument("--keep-1m-days", type=int, default=None, help="1-minute rollups (分钟汇总)")
    g.add_argument("--keep-1h-days", type=int, default=None, help="hourly rollups (小时汇总)")
    g.add_argument("--keep-1d-days", type=int, default=None, help="daily rollups (日汇总)")
    g.add_argument("--keep-batches-days", type=int, default=None, help="batch records behind completeness")
    g.add_argument("--compress-after-days", type=float, default=30.0, metavar="DAYS",
                   help="TimescaleDB: compress raw readings this old (压缩; default 30; late data still lands)")


def _retention(args: argparse.Namespace) -> Retention:
    return Retention(args.keep_raw_days, args.keep_1m_days, args.keep_1h_days, args.keep_1d_days,
                     args.keep_batches_days)


def main(argv: list[str]) -> int:
    if argv[:1] in (["backup"], ["restore"]):
        from ingest.store.backup import main as backup_main

        code: int = backup_main(argv)
        return code
    if argv[:1] == ["mqtt-auth"]:
        from ingest.mqtt.auth import main as mqtt_auth_main

        return mqtt_auth_main(argv[1:])
    if argv[:1] == ["sparkplug"]:
        from ingest.sparkplug.bridge import main as sparkplug_main

        return sparkplug_main(argv[1:])
    ap = argparse.ArgumentParser(prog="parkmon ingest", description="MQTT -> database ingest (数据接入与存储)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="consume gateway data from MQTT into the database until stopped")
    run.add_argument("--mqtt-host", default="127.0.0.1")
    run.add_argument("--mqtt-port", type=int, default=1883)
    run.add_argument("--mqtt-username", default=os.environ.get("PARKMON_MQTT_USERNAME") or None,
                     help="default: $PARKMON_MQTT_USERNAME")
    run.add_argument("--mqtt-password", default=os.environ.get("PARKMON_MQTT_PASSWORD") or None,
                     help="default: $PARKMON_MQTT_PASSWORD (better than this flag, which ps shows)")
    run.add_argument("--mqtt-tls-ca", default=None, metavar="FILE",
                     help="connect over TLS, trusting this CA (needed in production for a broker off this machine)")
    run.add_argument("--mqtt-tls-cert", default=None, metavar="FILE", help="client certificate, if the broker asks")
    run.add_argument("--mqtt-tls-key", default=None, metavar="FILE", help="its key")
    run.add_argument("--client-id", default="parkmon-ingest-1", help="unique per worker")
    run.add_argument("--group", default=os.environ.get("PARKMON_INGEST_GROUP", ""),
                     help="shared-subscription group for several workers (default: $PARKMON_INGEST_GROUP, which "
                     "parkmon ingest mqtt-auth writes to ingest.env; none: a plain subscription). A secret: a "
                     "gateway that can name it can join it (docs/security.md, docs/decisions/0003)")
    run.add_argument("--db", default=default_db(), help=DB_HELP)
    run.add_argument("--unknown-points", choices=["register", "quarantine"], default="register",
                     help="what to do with samples of points no gateway catalogue announced")
    run.add_argument("--mirror", action="append", default=[], metavar="URL",
                     help="also write readings to this target, e.g. influxdb://TOKEN@host:8086/BUCKET?org=ORG "
                          "(repeatable; see docs/decisions/0005)")
    run.add_argument("--no-maintenance", action="store_true",
                     help="leave rollups and retention to another worker of the group")
    run.add_argument("--rollup-every", type=float, default=30.0, metavar="S", help="seconds between rollup refreshes")
    run.add_argument("--no-board-feed", action="store_true",
                     help="do not compute the hourly indicators the Grafana boards read (runs with maintenance)")
    run.add_argument("--no-alerts", action="store_true",
                     help="do not run the alert engine and its delivery here (run it in one worker of a group)")
    run.add_argument("--alert-rules", default=None, metavar="FILE",
                     help="alert rules YAML (default: analytics/alerts/rules.yaml; parks add theirs through the API)")
    run.add_argument("--registry", default=None, metavar="FILE",
                     help="park definition / registry YAML: pressure vessels and pipelines alarm above their "
                          "design pressure")
    run.add_argument("--stats-every", type=float, default=0, metavar="S",
                     help="log message/sample counts this often (default: only when stopping)")
    _retention_args(run)
    mig = sub.add_parser("migrate", help="bring the database schema up to date (Alembic), or show its revision")
    mig.add_argument("--db", default=default_db(), help=DB_HELP)
    mig.add_argument("--show", action="store_true", help="only print the current and newest revision")
    mt = sub.add_parser("maintain", help="refresh rollups, create partitions and apply retention now (汇总与清理)")
    mt.add_argument("--db", default=default_db(), help=DB_HELP)
    _retention_args(mt)
    cp = sub.add_parser("completeness", help="batches received vs expected per gateway and day (数据完整率)")
    cp.add_argument("--db", default=default_db(), help=DB_HELP)
    cp.add_argument("--park", required=True)
    cp.add_argument("--days", type=int, default=7, help="how many days back from today (UTC+8)")
    dl = sub.add_parser("dead-letters", help="print rejected payloads with their reasons")
    dl.add_argument("--db", default=default_db(), help=DB_HELP)
    dl.add_argument("--limit", type=int, default=20)
    sub.add_parser("backup", help="back up the database to a file (备份); see `parkmon ingest backup --help`")
    sub.add_parser("restore", help="restore a backup into a database (恢复); see `parkmon ingest restore --help`")
    sub.add_parser("mqtt-auth", help="per-gateway MQTT logins, ACL and TLS listener for mosquitto; "
                   "see `parkmon ingest mqtt-auth --help` and docs/security.md")
    sub.add_parser("sparkplug", help="bridge Sparkplug B edge nodes onto parkmon's topics; "
                   "see `parkmon ingest sparkplug --help` and docs/sparkplug.md")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    protect_logs([getattr(args, "mqtt_password", None)], [args.db, *getattr(args, "mirror", [])])
    if args.cmd == "run":
        _refuse_defaults(args)

    mirrors = []
    if args.cmd == "run" and args.mirror:
        from ingest.store.mirrors import open_mirror

        mirrors = [open_mirror(u) for u in args.mirror]
    try:
        if args.cmd == "migrate":
            return _migrate(args.db, args.show)
        store = open_store(args.db, unknown_points=getattr(args, "unknown_points", "register"), mirrors=mirrors)
        store.create_schema()
    except LayoutError as exc:  # a server set up wrong (TimescaleDB not preloaded): the fix, not a traceback
        print(f"parkmon ingest {args.cmd}: {exc}", file=sys.stderr)
        return 2
    try:
        if args.cmd == "dead-letters":
            for d in store.dead_letters(args.limit):
                at = datetime.fromtimestamp(d.received_ms / 1000, tz=UTC).isoformat(timespec="seconds")
                print(f"#{d.id} {at} {d.topic}\n  reason: {d.reason}\n  payload: {d.payload[:200]!r}")
            return 0
        if args.cmd == "maintain":
            from ingest.store.maintenance import Maintenance, MaintenanceConfig

            t0 = time.monotonic()
            done = Maintenance(store, MaintenanceConfig(retention=_retention(args),
                                                        compress_after_days=args.compress_after_days)).run_once()
            for k, v in done.items():
                print(f"{k}: {v}")
            print(f"done in {time.monotonic() - t0:.1f} s")
            return 0
        if args.cmd == "completeness":
            return _completeness(store, args.park, args.days)
        return _run(args, store)
    finally:
        store.close()


def _migrate(db: str, show: bool) -> int:
    from ingest.store.revision import migrate_url

    rev = migrate_url(db, upgrade=not show)
    print(f"schema revision: {rev.before or 'none'} -> {rev.after} (newest: {rev.newest})")
    return 0


def _completeness(store: Store, park: str, days: int) -> int:
    from ingest.store.rollups import DAY_MS, LEVELS

    today = LEVELS["1d"].floor(now_ms())
    rows = store.completeness(park, today - (days - 1) * DAY_MS, today + DAY_MS, daily=True)
    if not rows:
        print(f"no batches from park {park!r} in the last {days} days: check the park id and that ingest runs",
              file=sys.stderr)
        return 1
    print(f"{'日期 day':<12} {'企业 enterprise':<16} {'网关 gateway':<14} {'收到 recv':>10} {'应到 exp':>10} "
          f"{'完整率 ratio':>12}")
    totals: dict[int, list[int]] = {}
    for c in rows:
        assert c.day_ms is not None
        day = datetime.fromtimestamp(c.day_ms / 1000, tz=CST).date().isoformat()
        print(f"{day:<12} {c.enterprise:<16} {c.gateway:<14} {c.received:>10} {c.expected:>10} {c.ratio:>12.2%}")
        t = totals.setdefault(c.day_ms, [0, 0])
        t[0] += c.received
        t[1] += c.expected
    for day_ms, (rec, exp) in sorted(totals.items()):
        day = datetime.fromtimestamp(day_ms / 1000, tz=CST).date().isoformat()
        print(f"{day:<12} {'园区合计 park':<16} {'':<14} {rec:>10} {exp:>10} {rec / exp if exp else 0:>12.2%}")
    return 0


def _run(args: argparse.Namespace, store: Store) -> int:
    from ingest.mqtt.consumer import Ingestor
    from ingest.store.maintenance import Maintenance, MaintenanceConfig

    cfg = IngestConfig(mqtt_host=args.mqtt_host, mqtt_port=args.mqtt_port, mqtt_username=args.mqtt_username,
                       mqtt_password=args.mqtt_password, client_id=args.client_id,
                       shared_group=args.group or None, db_url=args.db, unknown_points=args.unknown_points,
                       mqtt_tls_ca=args.mqtt_tls_ca, mqtt_tls_cert=args.mqtt_tls_cert, mqtt_tls_key=args.mqtt_tls_key)
    logging.getLogger("ingest").info(
        "ingest %s: database %s, broker %s:%s%s as %s", args.client_id, mask_url(args.db), args.mqtt_host,
        args.mqtt_port, " (TLS)" if args.mqtt_tls_ca else "", args.mqtt_username or "anonymous")
    ingestor = Ingestor(cfg, store)
    maintenance = None if args.no_maintenance else Maintenance(
        store, MaintenanceConfig(rollup_every_s=args.rollup_every, retention=_retention(args),
                                 compress_after_days=args.compress_after_days))
    alerts = None if args.no_alerts else _alerts(args, store)
    if alerts is not None:
        alerts.attach(ingestor)
        alerts.start()
    feed = None
    if maintenance and not args.no_board_feed:
        from analytics.board_feed import BoardFeed

        feed = BoardFeed(store)  # indicator_hourly for Grafana, beside the rollups it reads
        feed.start()
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ingestor.start()
    if maintenance:
        maintenance.start()
    while not stop.wait(60.0 if args.stats_every <= 0 else args.stats_every):
        if args.stats_every > 0:
            _log_stats(args.client_id, ingestor, "running")
    if maintenance:
        maintenance.stop()
    if feed is not None:
        feed.stop()
    ingestor.stop()
    if alerts is not None:
        alerts.stop()
    _log_stats(args.client_id, ingestor, "stopped")
    return 0


def _refuse_defaults(args: argparse.Namespace) -> None:
    """PARKMON_ENV=production: no default, empty or weak secret, no anonymous or clear-text MQTT
    (parkmon/common/secrecy.py, docs/security.md)."""
    mqtt, problems = mqtt_checks(args.mqtt_host, args.mqtt_username, args.mqtt_password,
                                 tls=bool(args.mqtt_tls_ca), where="MQTT (--mqtt-username, --mqtt-password)")
    urls = [s for u in args.mirror for s in url_checks("--mirror", u)]
    # a guessable group lets a gateway join it and take every other batch (issue 20 item 2)
    group = [Secret("the shared-subscription group (--group, $PARKMON_INGEST_GROUP)", args.group, None,
                    required=False)]
    check_production("parkmon ingest run", [*mqtt, *url_checks("--db", args.db), *urls, *group], problems)


def _alerts(args: argparse.Namespace, store: Store) -> AlertService:
    import yaml

    from analytics.alerts.from_registry import pressure_rules
    from analytics.alerts.rules import load_rules
    from analytics.alerts.service import AlertService

    try:
        rules = load_rules(args.alert_rules)
        if args.registry:
            with open(args.registry, encoding="utf-8") as f:
                rules += pressure_rules(yaml.safe_load(f))
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f"parkmon ingest run: alert rules: {exc}") from None
    return AlertService(store, rules)


def _log_stats(client_id: str, ingestor: Ingestor, state: str) -> None:
    st = ingestor.stats
    logging.getLogger("ingest").info(
        "ingest %s %s: %d messages, %d samples, %d new rows, %d duplicates, %d dead letters, %d db errors",
        client_id, state, st.messages, st.samples, st.inserted, st.duplicates, st.dead_letters, st.db_errors)
