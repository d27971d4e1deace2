"""``parkmon dashboards``: build the Grafana dashboards, write the provisioning files, push to Grafana."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from dashboards.catalogue import DASHBOARDS, all_json


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="parkmon dashboards",
                                 description="Grafana dashboards as code (看板即代码): list, build, provision, push.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="the dashboards parkmon ships, with their uid and panels")
    b = sub.add_parser("build", help="write each dashboard's JSON (Grafana's dashboard model) into a directory")
    b.add_argument("--out", type=Path, required=True, help="directory for <uid>.json files")
    p = sub.add_parser("provision", help="write Grafana provisioning files: data source, dashboard provider, "
                                         "dashboards (default: deploy/grafana)")
    p.add_argument("--out", type=Path, default=Path("deploy/grafana"))
    u = sub.add_parser("push", help="create or update the folder, dashboards (by uid) and optionally the "
                                    "PostgreSQL data source in a running Grafana, through its HTTP API")
    u.add_argument("--url", default=os.environ.get("GRAFANA_URL", "http://localhost:3000"),
                   help="Grafana's base URL (env GRAFANA_URL; default http://localhost:3000)")
    u.add_argument("--token", default=os.environ.get("GRAFANA_TOKEN"),
                   help="service-account token with the Editor role (env GRAFANA_TOKEN)")
    u.add_argument("--user", default=os.environ.get("GRAFANA_USER"), help="basic auth instead of a token")
    u.add_argument("--password", default=os.environ.get("GRAFANA_PASSWORD"))
    u.add_argument("--db-host", help="create/update the data source: host:port as Grafana reaches PostgreSQL")
    u.add_argument("--db-name", default="parkmon")
    u.add_argument("--db-user", default="grafana_reader", help="a read-only role is enough (and advised)")
    u.add_argument("--db-password", default=os.environ.get("PARKMON_GRAFANA_DB_PASSWORD"),
                   help="(env PARKMON_GRAFANA_DB_PASSWORD)")
    u.add_argument("--db-sslmode", default="disable")
    u.add_argument("--timescaledb", action="store_true", help="the database has TimescaleDB")
    return ap


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.cmd == "list":
        for m in DASHBOARDS:
            board = all_json()[m.UID]
            print(f"{m.UID:<20} {m.TITLE_ZH} {m.TITLE_EN}  ({len(board['panels'])} panels)")
        return 0
    if args.cmd == "build":
        args.out.mkdir(parents=True, exist_ok=True)
        for uid, board in all_json().items():
            (args.out / f"{uid}.json").write_text(json.dumps(board, ensure_ascii=False, indent=2) + "\n",
                                                  encoding="utf-8")
            print(args.out / f"{uid}.json")
        return 0
    if args.cmd == "provision":
        from dashboards.provision import write

        for path in write(args.out):
            print(path)
        return 0
    return _push(args)


def _push(args: argparse.Namespace) -> int:
    from dashboards.push import Database, PushError, push

    credential: str | tuple[str, str] | None = args.token
    if credential is None and args.user:
        credential = (args.user, args.password or "")
    if credential is None:
        print("parkmon dashboards push: no credentials; pass --token (or set GRAFANA_TOKEN) with a service-account "
              "token of the Editor role, or --user/--password", file=sys.stderr)
        return 2
    db = None
    if args.db_host:
        if not args.db_password:
            print("parkmon dashboards push: --db-host needs --db-password (or PARKMON_GRAFANA_DB_PASSWORD)",
                  file=sys.stderr)
            return 2
        db = Database(args.db_host, args.db_name, args.db_user, args.db_password, args.db_sslmode, args.timescaledb)
    try:
        done = push(args.url, credential, db)
    except PushError as exc:
        print(f"parkmon dashboards push: {exc}", file=sys.stderr)
        return 1
    counts = {k: sum(v == k for v in done.values()) for k in ("created", "updated", "unchanged")}
    print(f"done: {counts['created']} created, {counts['updated']} updated, {counts['unchanged']} unchanged "
          f"at {args.url}")
    return 0
