"""``parkmon ingest backup|restore``: a consistent copy of the store, and back (备份 / 恢复).

PostgreSQL: the server's own ``pg_dump --format=custom`` and ``pg_restore`` (any layout: monthly
partitions, TimescaleDB hypertables with its pre/post-restore calls). SQLite: Python's online backup
API, consistent while ingest writes. A restore goes into an empty database (``--force`` replaces what
is there). Both print what they hold, so the operator can compare. docs/operations.md has the runbook.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

Progress = Callable[[str], None]
COUNTED = ("parks", "points", "readings", "readings_1h", "gateway_batches", "dead_letters", "quarantine")


class BackupError(RuntimeError):
    pass


def _pg_tool(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if found:
        return found[-1]  # the newest: pg_dump must be at least the server's version
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise BackupError(f"{name} not found: install the PostgreSQL client (apt-get install postgresql-client-15)")


def _pg_args(url: str) -> tuple[list[str], dict[str, str]]:
    u = make_url(url)
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)  # never on the command line, where ps would show it
    args = ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres",
            "-d", u.database or "postgres"]
    return args, env


def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            names = set(inspect(conn).get_table_names())
            return {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in COUNTED if t in names}
    finally:
        engine.dispose()


def _sqlite_path(url: str) -> Path:
    db = make_url(url).database
    if not db or db == ":memory:":
        raise BackupError(f"{url!r} is not a SQLite file")
    return Path(db)


def backup(url: str, out: Path, progress: Progress = print) -> dict[str, int]:
    t0 = time.monotonic()
    held = counts(url)
    progress(f"backing up {make_url(url).render_as_string(hide_password=True)}: "
             + ", ".join(f"{k} {v:,}" for k, v in held.items()))
    out.parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite"):
        src = sqlite3.connect(_sqlite_path(url))
        dst = sqlite3.connect(out)
        try:  # online and consistent: pages copied in steps, restarted if a writer changes them
            src.backup(dst, pages=4096, progress=lambda _s, left, total: progress(
                f"  {total - left:,}/{total:,} pages") if left == 0 or (total - left) % 65536 == 0 else None)
        finally:
            dst.close()
            src.close()
    elif url.startswith("postgresql"):
        args, env = _pg_args(url)
        proc = subprocess.run([_pg_tool("pg_dump"), "--format=custom", "--verbose", "-f", str(out), *args],
                              env=env, capture_output=True, text=True)
        tables = [ln for ln in proc.stderr.splitlines() if "dumping contents of table" in ln]
        progress(f"  {len(tables)} tables dumped")
        if proc.returncode != 0:
            raise BackupError(f"pg_dump failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr else '?'}")
    else:
        raise BackupError(f"cannot back up {url!r}: only sqlite:/// and postgresql URLs")
    progress(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - t0:.1f} s")
    return held


def _is_empty(url: str) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return not inspect(conn).has_table("readings")
    finally:
        engine.dispose()


def restore(archive: Path, url: str, force: bool = False, progress: Progress = print) -> dict[str, int]:
    t0 = time.monotonic()
    if not archive.exists():
        raise BackupError(f"no backup at {archive}")
    if not force and not _is_empty(url):
        raise BackupError(f"{make_url(url).render_as_string(hide_password=True)} already holds parkmon data; "
                          "restore into an empty database, or add --force to replace what is there")
    if url.startswith("sqlite"):
        src = sqlite3.connect(archive)
        dst = sqlite3.connect(_sqlite_path(url))
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
    elif url.startswith("postgresql"):
        args, env = _pg_args(url)
        engine = create_engine(url)
        if force:  # replace: an empty schema, then a plain restore (pg_restore --clean cannot drop
            # the partitions' inherited keys)
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        # TimescaleDB wants these around a restore of its database (tests/test_timescaledb.py); a backup of
        # plain partitions needs neither them nor the extension (which the server may not even preload)
        listing = subprocess.run([_pg_tool("pg_restore"), "--list", str(archive)], capture_output=True, text=True)
        ts = any(line.split(";")[-1].split()[2:5] == ["EXTENSION", "-", "timescaledb"]
                 for line in listing.stdout.splitlines() if not line.startswith(";"))
        if ts:
            with engine.begin() as conn:
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS timescaledb"))
                conn.execute(text("SELECT timescaledb_pre_restore()"))
        cmd = [_pg_tool("pg_restore"), "--no-owner", "--exit-on-error", *args, str(archive)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if ts:
            with engine.begin() as conn:
                conn.execute(text("SELECT timescaledb_post_restore()"))
        engine.dispose()
        if proc.returncode != 0:
            raise BackupError(f"pg_restore failed: {proc.stderr.strip()[-500:]}")
    else:
        raise BackupError(f"cannot restore into {url!r}: only sqlite:/// and postgresql URLs")
    held = counts(url)
    summary = ", ".join(f"{k} {v:,}" for k, v in held.items())
    progress(f"restored {archive} in {time.monotonic() - t0:.1f} s: {summary}")
    return held


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="parkmon ingest",
                                 description="back up and restore parkmon's database (备份与恢复)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("backup", help="write a consistent copy of the database to a file (备份)",
                       description="Write a consistent copy of the database (pg_dump for PostgreSQL, the online "
                                   "backup API for SQLite) while ingest keeps running; prints row counts.")
    b.add_argument("--db", required=True, help="database URL (sqlite:///parkmon.db or postgresql+psycopg://...)")
    b.add_argument("--out", required=True, type=Path,
                   help="backup file to write (.dump for PostgreSQL, .db for SQLite)")
    r = sub.add_parser("restore", help="restore a backup file into an empty database (恢复)",
                       description="Restore a backup into an empty database (create it first), or replace "
                                   "the target's data with --force; prints row counts to compare.")
    r.add_argument("--db", required=True, help="target database URL (must be empty unless --force)")
    r.add_argument("--from", dest="archive", required=True, type=Path, help="backup file written by `backup`")
    r.add_argument("--force", action="store_true", help="replace the target's parkmon data")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "backup":
            backup(args.db, args.out)
        else:
            restore(args.archive, args.db, force=args.force)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
