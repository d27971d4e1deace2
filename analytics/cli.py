"""``parkmon indicators``: compute indicators from stored readings and print them as JSON."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from parkmon.common.env import default_db

if TYPE_CHECKING:
    from ingest.store import Store


def _ms(text: str, name: str) -> int:
    t = datetime.fromisoformat(text)
    if t.tzinfo is None:
        raise SystemExit(f"parkmon indicators: --{name} {text} has no UTC offset; add one, e.g. +08:00 or Z")
    return int(t.timestamp() * 1000)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="parkmon indicators", description="Indicators from stored data (指标计算)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    share = sub.add_parser("share", help="new-energy consumption share of a park vs its target (新能源消纳比例)")
    share.add_argument("--db", default=default_db(), help="database URL")
    share.add_argument("--park", required=True)
    share.add_argument("--start", required=True, help="ISO 8601 with offset, e.g. 2025-06-01T00:00+08:00")
    share.add_argument("--end", default=None, help="ISO 8601 with offset (default: now)")
    share.add_argument("--interval-s", type=int, default=None, help="attribution interval (default 15 min)")
    share.add_argument("--green-purchase-kwh", type=float, default=0.0)
    share.add_argument("--certificates-sold-kwh", type=float, default=0.0)
    share.add_argument("--targets", default=None, help="YAML overriding the default targets")
    energy = sub.add_parser("energy", help="comprehensive energy in tce and CO2 per tce (综合能耗 · 单位能耗碳排放)")
    energy.add_argument("--db", default=default_db(), help="database URL")
    energy.add_argument("--park", required=True)
    energy.add_argument("--enterprise", default=None, help="one enterprise (default: the whole park)")
    energy.add_argument("--start", required=True, help="ISO 8601 with offset, e.g. 2025-06-01T00:00+08:00")
    energy.add_argument("--end", default=None, help="ISO 8601 with offset (default: now)")
    energy.add_argument("--electricity-method", choices=["equivalent", "equal_value"], default="equivalent",
                        help="当量值 (0.1229 kgce/kWh) or 等价值 (the year's coal rate)")
    energy.add_argument("--steam-method", choices=["fixed", "enthalpy"], default="fixed")
    energy.add_argument("--steam-pressure-mpa", type=float, default=1.0)
    energy.add_argument("--green-purchase-kwh", type=float, default=0.0)
    energy.add_argument("--factors", default=None, help="YAML overriding factors (shape of analytics/factors.yaml)")
    act = sub.add_parser("activity", help="electricity activity index per day, 100 = recent normal (电力看经济)")
    act.add_argument("--db", default=default_db(), help="database URL")
    act.add_argument("--park", required=True)
    act.add_argument("--enterprise", default=None)
    act.add_argument("--first", required=True, help="first day, YYYY-MM-DD (China calendar)")
    act.add_argument("--last", required=True, help="last day, YYYY-MM-DD")
    act.add_argument("--baseline-days", type=int, default=28)
    every = sub.add_parser("all", help="every indicator of a park for a month or a year, as the report has them "
                           "(全部指标)")
    every.add_argument("--db", default=default_db(), help="database URL")
    every.add_argument("--park", required=True)
    every.add_argument("--period", required=True, help="YYYY-MM (a month) or YYYY (a year), China calendar")
    comp = sub.add_parser("compliance", help="pollutant compliance of CEMS and wastewater outlets (污染物排放达标)")
    comp.add_argument("--db", default=default_db(), help="database URL")
    comp.add_argument("--park", required=True)
    comp.add_argument("--start", required=True, help="ISO 8601 with offset, e.g. 2025-06-01T00:00+08:00")
    comp.add_argument("--end", default=None, help="ISO 8601 with offset (default: now)")
    feed = sub.add_parser("feed", help="(re)compute the hourly indicators the Grafana boards read "
                          "(indicator_hourly), e.g. after importing history (看板小时指标回填)")
    feed.add_argument("--db", default=default_db(), help="database URL")
    feed.add_argument("--park", action="append", default=None, help="this park only (repeatable; default: all)")
    feed.add_argument("--since", required=True, help="first hour, ISO 8601 with offset, e.g. 2026-01-01T00:00+08:00")
    args = ap.parse_args(argv)
    return {"share": _share, "energy": _energy, "activity": _activity, "all": _all,
            "compliance": _compliance, "feed": _feed}[args.cmd](args)


def _answer(db: str, prefix: str, compute: Callable[[Store], Any]) -> int:
    """Open the store, compute, print the JSON; a refused input is one line on stderr and exit 2."""
    from ingest.store import open_store

    store = open_store(db)
    try:
        out = compute(store)
    except (LookupError, ValueError) as exc:
        print(f"{prefix}: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0


def _period(args: argparse.Namespace) -> tuple[int, int]:
    start = _ms(args.start, "start")
    return start, _ms(args.end, "end") if args.end else int(time.time() * 1000)


def _share(args: argparse.Namespace) -> int:
    from analytics.park_share import compute_park_share
    from analytics.targets import load_share_settings

    start, end = _period(args)
    return _answer(args.db, "parkmon indicators", lambda store: compute_park_share(
        store, args.park, start, end, load_share_settings(args.targets),
        args.interval_s * 1000 if args.interval_s else None, args.green_purchase_kwh,
        args.certificates_sold_kwh).to_json())


def _energy(args: argparse.Namespace) -> int:
    from analytics.factors import load_factors
    from analytics.park_energy import compute_energy

    start, end = _period(args)

    def compute(store: Store) -> dict[str, Any]:
        tce, carbon = compute_energy(store, args.park, start, end, args.enterprise, load_factors(args.factors),
                                     args.electricity_method, args.steam_method, args.steam_pressure_mpa,
                                     args.green_purchase_kwh)
        return {"comprehensive_energy": tce.to_json(), "carbon_per_tce": carbon.to_json()}

    return _answer(args.db, "parkmon indicators energy", compute)


def _activity(args: argparse.Namespace) -> int:
    from datetime import date

    from analytics.park_activity import compute_activity

    try:
        first, last = date.fromisoformat(args.first), date.fromisoformat(args.last)
    except ValueError as exc:
        raise SystemExit(f"parkmon indicators activity: {exc}; give days as YYYY-MM-DD") from None
    return _answer(args.db, "parkmon indicators activity", lambda store: compute_activity(
        store, args.park, first, last, args.enterprise, args.baseline_days, min(7, args.baseline_days)).to_json())


def _all(args: argparse.Namespace) -> int:
    from analytics.report.gather import park_report

    def compute(store: Store) -> dict[str, Any]:
        store.refresh_rollups()
        return park_report(store, args.park, args.period,
                           lambda s: print(f"parkmon indicators all: {s} …", file=sys.stderr, flush=True))

    return _answer(args.db, "parkmon indicators all", compute)


def _compliance(args: argparse.Namespace) -> int:
    from analytics.park_compliance import compute_compliance

    start, end = _period(args)
    return _answer(args.db, "parkmon indicators compliance",
                   lambda store: compute_compliance(store, args.park, start, end))


def _feed(args: argparse.Namespace) -> int:
    from analytics.board_feed import BoardFeed
    from ingest.store import open_store

    since = _ms(args.since, "since")
    store = open_store(args.db)
    try:
        feed = BoardFeed(store)
        now = int(time.time() * 1000)
        parks = [p for p in store.parks() if args.park is None or p.key in args.park]
        if args.park and len(parks) != len(set(args.park)):
            print(f"parkmon indicators feed: unknown park among {', '.join(args.park)}", file=sys.stderr)
            return 2
        for info in parks:
            def progress(done: int, total: int, key: str = info.key) -> None:
                if done == total or done % 24 == 0:
                    print(f"\r{key}: {done}/{total} hours ({done / total:.0%})", end="", file=sys.stderr, flush=True)

            n = feed.feed_park(info, now, since, progress)
            print(f"\n{info.key}: {n} hours with data written", file=sys.stderr)
    finally:
        store.close()
    return 0
