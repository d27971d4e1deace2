"""``parkmon indicators``: compute indicators from stored readings and print them as JSON."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime


def _ms(text: str, name: str) -> int:
    t = datetime.fromisoformat(text)
    if t.tzinfo is None:
        raise SystemExit(f"parkmon indicators: --{name} {text} has no UTC offset; add one, e.g. +08:00 or Z")
    return int(t.timestamp() * 1000)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="parkmon indicators", description="Indicators from stored data (指标计算)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    share = sub.add_parser("share", help="new-energy consumption share of a park vs its target (新能源消纳比例)")
    share.add_argument("--db", default="sqlite:///parkmon.db", help="database URL")
    share.add_argument("--park", required=True)
    share.add_argument("--start", required=True, help="ISO 8601 with offset, e.g. 2025-06-01T00:00+08:00")
    share.add_argument("--end", default=None, help="ISO 8601 with offset (default: now)")
    share.add_argument("--interval-s", type=int, default=None, help="attribution interval (default 15 min)")
    share.add_argument("--green-purchase-kwh", type=float, default=0.0)
    share.add_argument("--certificates-sold-kwh", type=float, default=0.0)
    share.add_argument("--targets", default=None, help="YAML overriding the default targets")
    args = ap.parse_args(argv)

    from ingest.store import open_store

    from .park_share import compute_park_share
    from .targets import load_share_settings

    start = _ms(args.start, "start")
    end = _ms(args.end, "end") if args.end else int(time.time() * 1000)
    store = open_store(args.db)
    try:
        result = compute_park_share(store, args.park, start, end, load_share_settings(args.targets),
                                    args.interval_s * 1000 if args.interval_s else None,
                                    args.green_purchase_kwh, args.certificates_sold_kwh)
    except LookupError as exc:
        print(f"parkmon indicators: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    return 0
