"""A real PostgreSQL server for the tests, started on a free loopback port in a temporary folder.

PostgreSQL refuses to run as root, and CI runs as root: the server then runs as the ``postgres``
user (created by Debian's package) or, failing that, a ``parkmon-test`` user made here.
Set ``PARKMON_TEST_PG_DSN`` to use a server you already run instead.

TimescaleDB: the servers preload it when it is installed (``./dev.sh test`` builds it from
../shared/vendor with tests/build_timescaledb.sh; :func:`timescaledb_missing` says why not when it is
absent), but their databases keep the plain-PostgreSQL layout (``parkmon.pg_layout=partitioned``:
benchmarks and most tests measure that) unless a test asks for TimescaleDB (tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

from parkmon.common.netutil import free_port


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise FileNotFoundError("PostgreSQL server binaries not found: apt-get install postgresql")


def _run_as() -> list[str]:
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "parkmon-test"):
        try:
            pwd.getpwnam(user)
            return ["runuser", "-u", user, "--"]
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "parkmon-test"], check=True)
    return ["runuser", "-u", "parkmon-test", "--"]


TIMESCALEDB_VERSION = "2.28.3"  # tests/build_timescaledb.sh builds this one
# a test server never phones home (and these machines have no network)
TIMESCALEDB = {"shared_preload_libraries": "timescaledb", "timescaledb.telemetry_level": "off"}
PLAIN_LAYOUT = {"parkmon.pg_layout": "partitioned"}  # ingest/store/pg_layout.py: the server-wide default


def _sharedir(bindir: Path) -> Path:
    # Debian: /usr/lib/postgresql/15/bin -> /usr/share/postgresql/15 (pg_config --sharedir, without the headers)
    return Path("/usr/share/postgresql") / bindir.parent.name


def timescaledb_missing() -> str | None:
    """None when the server the tests start has TimescaleDB installed; otherwise why not, and how to get it."""
    try:
        bindir = _bindir()
    except FileNotFoundError as exc:
        return str(exc)
    control = _sharedir(bindir) / "extension" / "timescaledb.control"
    if control.exists():
        return None
    why = [f"TimescaleDB is not installed on PostgreSQL {bindir.parent.name} ({control} missing)"]
    failed = os.environ.get("PARKMON_TIMESCALEDB_BUILD_FAILED")  # set by ./dev.sh test: the build's last word
    if failed:
        return f"{why[0]}: {failed}"
    vendor = Path(os.environ.get("PARKMON_VENDOR_DIR") or Path(__file__).resolve().parents[2] / "shared" / "vendor")
    tarball = vendor / f"timescaledb-{TIMESCALEDB_VERSION}.tar.gz"
    if not tarball.exists():
        why.append(f"and cannot be built here: {tarball} not found (set PARKMON_VENDOR_DIR)")
    else:
        lacking = [t for t in ("cc", "cmake", "make") if shutil.which(t) is None]
        if lacking:
            why.append(f"and cannot be built here: no {', '.join(lacking)} (no compiler / build tools)")
        else:
            why.append("and was not built: run tests/build_timescaledb.sh (./dev.sh test does)")
    return " ".join(why)


# Tests trade durability for speed; benchmarks run the server as production would (fsync on).
FAST = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


@dataclass
class Postgres:
    datadir: Path
    port: int
    prefix: list[str]
    bindir: Path
    settings: dict[str, str] | None = None
    timescaledb: bool = False  # the server preloads TimescaleDB

    @property
    def admin_dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str | None = None) -> str:
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _ctl(self, *args: str) -> None:
        subprocess.run([*self.prefix, str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-w", "-s", *args],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> None:
        settings = {"max_connections": "50", **PLAIN_LAYOUT, **(FAST if self.settings is None else self.settings),
                    **(TIMESCALEDB if self.timescaledb else {})}
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.datadir} " + " ".join(
            f"-c {k}={v}" for k, v in settings.items())
        self._ctl("-o", opts, "-l", str(self.datadir / "server.log"), "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        """Stop the server and delete its data folder (benchmarks leave gigabytes behind otherwise)."""
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.datadir, ignore_errors=True)


def start_postgres(settings: dict[str, str] | None = None, timescaledb: bool = True) -> Postgres:
    """``settings``: server options (``-c k=v``); None means the fast, non-durable test set.
    ``timescaledb``: preload TimescaleDB when it is installed (False: a server that has it installed
    but not preloaded, the misconfiguration parkmon must explain)."""
    bindir = _bindir()
    prefix = _run_as()
    datadir = Path(tempfile.mkdtemp(prefix="parkmon-pg-"))
    if prefix:
        shutil.chown(datadir, user=prefix[2])
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", "-A", "trust",
                    "-E", "UTF8", "--no-sync"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pg = Postgres(datadir, free_port(), prefix, bindir, settings, timescaledb and timescaledb_missing() is None)
    pg.start()
    deadline = time.monotonic() + 15
    while True:
        try:
            psycopg.connect(pg.admin_dsn, connect_timeout=1).close()
            return pg
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
