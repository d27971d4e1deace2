"""``parkmon import readings``: load a park's history from CSV, so its indicators exist at once.

Columns (a header line; Chinese names work too): ``timestamp, point, value[, quality][, metric]``.
- timestamp: ISO 8601 (``2026-01-01T00:15:00+08:00``); without an offset it is read in ``--tz``
  (default Asia/Shanghai, how Chinese meter exports are written); or epoch milliseconds;
- point: ``enterprise.device.point``; value: a number (empty only with a bad quality);
- quality: 0-255, parkmon's quality byte (default 0, good); metric: the point's metric (e.g.
  ``elec.import.energy``), needed once per point for indicators to find it.
Good lines are written in chunks (each its own transaction, idempotent: a re-run changes nothing);
each bad line goes to ``FILE.rejected.csv`` with its line number and reason, so nothing is lost.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ingest.store import open_store
from parkmon.common import metrics
from parkmon.common.env import default_db

HEADERS = {"timestamp": "timestamp", "time": "timestamp", "时间": "timestamp", "采集时间": "timestamp",
           "point": "point", "测点": "point", "value": "value", "数值": "value", "值": "value",
           "quality": "quality", "质量": "quality", "metric": "metric", "指标": "metric"}
_POINT = re.compile(r"^[A-Za-z0-9_-]{1,64}\.[A-Za-z0-9_-]{1,64}\.[A-Za-z0-9_-]{1,64}$")
_TS_MIN, _TS_MAX = 946_684_800_000, 32_503_680_000_000
Row = tuple[str, int, float | None, int]


class LineError(ValueError):
    pass


def parse_line(cells: dict[str, str], tz: ZoneInfo) -> tuple[Row, str | None]:
    """One CSV line -> (row, metric or None); LineError says what is wrong with it."""
    point = cells.get("point", "").strip()
    if not _POINT.match(point):
        raise LineError(f"point {point!r} is not enterprise.device.point (A-Z a-z 0-9 _ -)")
    raw_ts = cells.get("timestamp", "").strip()
    if raw_ts.isdigit():
        ts = int(raw_ts)
    else:
        try:
            t = datetime.fromisoformat(raw_ts)
        except ValueError:
            raise LineError(f"timestamp {raw_ts!r} is neither ISO 8601 (2026-01-01T00:15:00+08:00) "
                            "nor epoch milliseconds") from None
        ts = int((t if t.tzinfo else t.replace(tzinfo=tz)).timestamp() * 1000)
    if not _TS_MIN <= ts < _TS_MAX:
        raise LineError(f"timestamp {raw_ts!r} is outside 2000-3000 (milliseconds, not seconds?)")
    raw_q = cells.get("quality", "").strip()
    try:
        q = int(raw_q) if raw_q else 0
    except ValueError:
        raise LineError(f"quality {raw_q!r} is not a whole number 0-255") from None
    if not 0 <= q <= 255:
        raise LineError(f"quality {q} is not 0-255")
    raw_v = cells.get("value", "").strip()
    if raw_v == "":
        if q < 128:
            raise LineError("value is empty but the quality says good: give a value, or quality >= 128 (bad)")
        value = None
    else:
        try:
            value = float(raw_v)
        except ValueError:
            raise LineError(f"value {raw_v!r} is not a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise LineError(f"value {raw_v!r} is not a finite number")
    metric = cells.get("metric", "").strip() or None
    if metric:
        try:
            metrics.get(metric)
        except KeyError as exc:
            raise LineError(str(exc.args[0])) from None
    return (point, ts, value, q), metric


def read(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise SystemExit(f"parkmon import: {path} is empty")
        cols = [HEADERS.get(h.strip().lower(), HEADERS.get(h.strip(), "")) for h in header]
        if "timestamp" not in cols or "point" not in cols or "value" not in cols:
            raise SystemExit(f"parkmon import: {path}: the header must name timestamp, point and value "
                             f"(and optionally quality, metric); got {', '.join(header)}")
        for n, cells in enumerate(reader, start=2):
            yield n, {c: v for c, v in zip(cols, cells, strict=False) if c}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="parkmon import", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    rd = sub.add_parser("readings", help="historical readings from CSV (历史数据导入)", description=__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    rd.add_argument("file", type=Path)
    rd.add_argument("--park", required=True)
    rd.add_argument("--db", default=default_db(), help="database URL")
    rd.add_argument("--tz", default="Asia/Shanghai", help="time zone of timestamps written without an offset")
    rd.add_argument("--chunk", type=int, default=50_000, help="rows per transaction")
    args = ap.parse_args(argv)
    if not args.file.is_file():
        print(f"parkmon import: no such file {args.file}", file=sys.stderr)
        return 2
    tz = ZoneInfo(args.tz)
    store = open_store(args.db)
    store.create_schema()
    rejected_path = args.file.with_name(args.file.name + ".rejected.csv")
    size, t0 = args.file.stat().st_size, time.monotonic()
    done = dup = bad = 0
    chunk: list[Row] = []
    names: dict[str, str] = {}
    rejects = None

    def flush() -> None:
        nonlocal done, dup
        if chunk:
            r = store.import_readings(args.park, chunk, names)
            done, dup = done + r.inserted, dup + r.duplicates
            chunk.clear()
            names.clear()

    try:
        for n, cells in read(args.file):
            try:
                row, metric = parse_line(cells, tz)
            except LineError as exc:
                if rejects is None:
                    rejects = rejected_path.open("w", encoding="utf-8", newline="")
                    csv.writer(rejects).writerow(["line", "reason", *cells])
                csv.writer(rejects).writerow([n, str(exc), *cells.values()])
                bad += 1
                continue
            chunk.append(row)
            if metric:
                names[row[0]] = metric
            if len(chunk) >= args.chunk:
                flush()
                rate = done / max(1e-9, time.monotonic() - t0)
                print(f"\r  line {n:,}  imported {done:,}  seen before {dup:,}  rejected {bad:,}  "
                      f"({rate:,.0f} rows/s)", end="", file=sys.stderr, flush=True)
        flush()
    finally:
        if rejects is not None:
            rejects.close()
        store.close()
    el = time.monotonic() - t0
    print(f"\r{args.file}: imported {done:,} readings, {dup:,} already stored, {bad:,} rejected "
          f"in {el:.1f} s ({size / 1e6:.1f} MB)" + " " * 10, file=sys.stderr)
    if bad:
        print(f"  rejected lines and why: {rejected_path}", file=sys.stderr)
    return 1 if bad else 0
