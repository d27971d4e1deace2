"""``parkmon report``: a park's (or a region's) monthly or yearly report as Excel, PDF and JSON."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from parkmon.common.env import default_db

FORMATS = ("xlsx", "pdf", "json")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="parkmon report", description="Monthly / yearly report for the regulator "
                                 "(园区月报/年报), Excel and PDF in Chinese with English alongside")
    ap.add_argument("--db", default=default_db(), help="database URL")
    who = ap.add_mutually_exclusive_group(required=True)
    who.add_argument("--park", help="one park's report")
    who.add_argument("--region", help="every park of a region in one report (区域汇总)")
    ap.add_argument("--period", required=True, help="YYYY-MM (a month) or YYYY (a year), China calendar")
    ap.add_argument("--out", default="reports", help="directory for the files (default: reports/)")
    ap.add_argument("--format", nargs="+", choices=FORMATS, default=list(FORMATS))
    ap.add_argument("--targets", default=None, help="YAML overriding the default share targets (as parkmon api "
                    "--targets)")
    ap.add_argument("--no-refresh", action="store_true",
                    help="do not bring the rollups up to date first (they are, if ingest is running)")
    args = ap.parse_args(argv)

    from analytics.report.excel import write_excel
    from analytics.report.gather import park_report
    from analytics.report.pdf import write_pdf
    from analytics.report.region import region_report, write_region_excel, write_region_pdf
    from analytics.targets import load_share_settings
    from ingest.store import open_store

    def say(step: str) -> None:
        print(f"parkmon report: {step} …", file=sys.stderr, flush=True)

    store = open_store(args.db)
    t0 = time.perf_counter()
    writers: dict[str, Callable[[dict[str, Any], Path], Path]]
    try:
        settings = load_share_settings(args.targets) if args.targets else None  # a bad file: before the work
        if not args.no_refresh:
            say("rollups 汇总表更新")
            store.refresh_rollups()
        if args.park:
            report = park_report(store, args.park, args.period, say, settings)
            stem = f"{args.park}-{args.period}"
            writers = {"xlsx": write_excel, "pdf": write_pdf}
        else:
            report = region_report(store, args.region, args.period, say, settings)
            stem = f"region-{args.region}-{args.period}"
            writers = {"xlsx": write_region_excel, "pdf": write_region_pdf}
    except (LookupError, ValueError) as exc:
        print(f"parkmon report: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    out = Path(args.out)
    for fmt in args.format:
        path = out / f"{stem}.{fmt}"
        if fmt == "json":
            out.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
        else:
            writers[fmt](report, path)
        print(path)
    say(f"done in {time.perf_counter() - t0:.1f} s")
    return 0
