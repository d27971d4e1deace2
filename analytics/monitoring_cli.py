"""``parkmon energy-monitoring``: a key energy user's 15-minute, daily and monthly figures for the provincial
online monitoring platform (重点用能单位能耗在线监测), checked, exported, delivered."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from parkmon.common.env import default_db


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=default_db(), help="database URL")
    p.add_argument("--park", required=True)
    p.add_argument("--enterprise", required=True, help="the key energy user (an enterprise of the park)")
    p.add_argument("--month", required=True, help="YYYY-MM, China calendar (the month so far if it is this one)")
    p.add_argument("--format", choices=["csv", "json"], default="csv", help="csv (default; UTF-8, Excel opens it) "
                   "or json (with the quality checks)")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="parkmon energy-monitoring", description=(
        "重点用能单位能耗在线监测: 15-minute, daily and monthly energy per carrier for the provincial platform, "
        "with its data-quality checks (completeness ≥ 90 %, daily within 5 % of the month); "
        "docs/indicators/energy-monitoring.md"))
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("export", help="write the month's figures to a file or stdout (导出)")
    _common(ex)
    ex.add_argument("--out", default="-", help="file to write (default: stdout)")
    up = sub.add_parser("upload", help="deliver the month's file through an uploader (上传)")
    _common(up)
    up.add_argument("--to", required=True, metavar="KIND:TARGET",
                    help="where: directory:/srv/exchange/outbox (the uploaders: analytics/monitoring_export.py)")
    args = ap.parse_args(argv)
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    from analytics.indicators.base import Context, load, why
    from analytics.monitoring_export import file_name, render, uploader
    from ingest.store import open_store

    prefix = f"parkmon energy-monitoring {args.cmd}"
    ind = load("energy_monitoring")
    try:
        from pydantic import ValidationError

        try:
            p = ind.params.model_validate({"month": args.month, "enterprise": args.enterprise})
        except ValidationError as exc:
            raise ValueError(why(exc)) from None
        deliver = uploader(*_split(args.to)) if args.cmd == "upload" else None
        store = open_store(args.db)
        try:
            answer: dict[str, Any] = ind.feed(store, args.park, p, Context()).to_json()
        finally:
            store.close()
        content = render(answer, args.format)
        name = file_name(answer, args.format)
    except (LookupError, ValueError) as exc:
        print(f"{prefix}: {exc}", file=sys.stderr)
        return 2
    _say_checks(answer)
    if deliver is not None:
        print(f"delivered {deliver.deliver(name, content)} ({len(content)} bytes)", file=sys.stderr)
    elif args.out == "-":
        sys.stdout.buffer.write(content)
    else:
        with open(args.out, "wb") as f:
            f.write(content)
        print(f"wrote {args.out} ({len(content)} bytes)", file=sys.stderr)
    return 0


def _split(to: str) -> tuple[str, str]:
    kind, sep, target = to.partition(":")
    if not sep or not target:
        raise ValueError(f"--to {to!r}: give KIND:TARGET, e.g. directory:/srv/exchange/outbox")
    return kind, target


def _say_checks(answer: dict[str, Any]) -> None:
    checks = answer["inputs"]["checks"]
    if not checks:
        print("no energy meters of this enterprise: nothing to upload", file=sys.stderr)
    for c in checks:
        dev = "—" if c["daily_vs_month"] is None else f"{c['daily_vs_month']:.2%}"
        print(f"{c['name_zh']} {c['name_en']}: 15-min completeness {c['completeness']:.1%} "
              f"({c['quarters_collected']}/{c['quarters_due']}, ≥ 90 % {'ok' if c['completeness_ok'] else 'FAILED'}); "
              f"daily vs month {dev} (≤ 5 % {'ok' if c['daily_vs_month_ok'] else 'FAILED'})", file=sys.stderr)
