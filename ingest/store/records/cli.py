"""``parkmon records``: describe a park once (registry) and load the figures no meter gives."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ingest.store import open_store
from ingest.store.records.base import RecordError
from parkmon.common.env import default_db

DB_HELP = "database URL, e.g. sqlite:///parkmon.db or postgresql+psycopg://user:pw@host/parkmon"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="parkmon records",
                                 description="the registry and the six systems' records (园区登记与业务数据)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    reg = sub.add_parser("registry", help="load a park's registry: park, enterprises, gateways, devices",
                         description="Create or update a park's registry from YAML (the shape of "
                                     "simulators/park_default.yaml) or CSV (enterprise, device, kind[, system, "
                                     "expected, production, ...]). Nothing is ever deleted.")
    reg.add_argument("file", type=Path)
    eco = sub.add_parser("economy", help="import monthly economic figures from CSV or Excel (经济数据导入)",
                         description="Columns: enterprise, month (YYYY-MM) and any of output_value, value_added "
                                     "(万元), product, quantity, unit; Chinese headers (企业, 月份, 工业总产值, "
                                     "工业增加值, 产品, 产量, 单位) work too. All or nothing: a bad line refuses "
                                     "the file "
                                     "and every bad line is listed.")
    eco.add_argument("file", type=Path)
    eco.add_argument("--park", required=True)
    for p in (reg, eco):
        p.add_argument("--db", default=default_db(), help=DB_HELP)
        p.add_argument("--actor", default="cli", help="who loads it, for the audit log")
    args = ap.parse_args(argv)
    store = open_store(args.db)
    store.create_schema()
    try:
        if args.cmd == "registry":
            from ingest.store.records import registry

            doc = registry.read_file(args.file)
            counts = registry.load(store, doc, args.actor,
                                   progress=lambda e: print(f"  enterprise {e}", file=sys.stderr))
            print(json.dumps({"park": doc.park.key, **counts}, ensure_ascii=False))
            return 0
        from ingest.store.records import economy

        rows = economy.read_table(args.file)
        res = economy.import_rows(store, args.park, rows, args.actor, args.file.name,
                                  progress=lambda n: print(f"\r  {n} enterprise-months written", end="",
                                                           file=sys.stderr))
        if res.errors:
            print(f"{args.file}: nothing imported, {len(res.errors)} bad line(s) of {res.lines}:", file=sys.stderr)
            for line, why in res.errors:
                print(f"  line {line}: {why}", file=sys.stderr)
            return 1
        print(file=sys.stderr)
        print(json.dumps({"file": str(args.file), "lines": res.lines, "months": res.months}))
        return 0
    except RecordError as exc:
        print(f"parkmon records {args.cmd}: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
