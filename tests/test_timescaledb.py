"""TimescaleDB as production runs it, on a real server that preloads the extension (built from
../shared/vendor by ./dev.sh test): compressed chunks under late data, rollups and retention across
them, backup and restore of a compressed database; and a server that has the extension installed but
does not preload it, which parkmon must refuse with the fix rather than die on PostgreSQL's words."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine

from ingest.store import Store, migrate, open_store, pg_layout
from ingest.store.backup import backup, restore
from ingest.store.base import IncomingBatch, Retention
from ingest.store.maintenance import Maintenance, MaintenanceConfig
from ingest.store.rollups import DAY_MS, MINUTE_MS
from parkmon.common import wire
from tests.pg_server import Postgres, start_postgres, timescaledb_missing

DAY0 = 1_795_363_200_000  # 2026-11-23 00:00 UTC+8: "now" in these tests
OLD_DAY = DAY0 - 60 * DAY_MS  # 2026-09-24 00:00 UTC+8, a day whose 7-day chunk ends 50+ days before now
TEN = 10 * 60 * MINUTE_MS  # 10:00 in the day

pytestmark = pytest.mark.parametrize("store_url", ["timescaledb"], indirect=True)


def _batch(seq: int, samples: list[tuple[str, int, float | None, int]]) -> IncomingBatch:
    return IncomingBatch("demo", "e01", "gw1", wire.Batch(1, "gw1", seq, samples[-1][1], samples), samples[-1][1])


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg", "postgresql")


def _compressed(url: str) -> dict[str, bool]:
    """Chunk -> compressed?, as TimescaleDB itself reports it (the oracle, not parkmon's code)."""
    with psycopg.connect(_dsn(url)) as c:
        rows = c.execute("SELECT chunk_name, is_compressed FROM timescaledb_information.chunks "
                         "WHERE hypertable_name = 'readings' ORDER BY range_start").fetchall()
    return dict(rows)


def _old_day_and_today(st: Store) -> int:
    """Five readings 1..5 at 10:00-10:04 of the old day, one today; returns the point's id."""
    st.write_batches([_batch(1, [("m.p", OLD_DAY + TEN + k * MINUTE_MS, float(k + 1), 0) for k in range(5)])])
    st.write_batches([_batch(2, [("m.p", DAY0 + TEN, 7.0, 0)])])
    st.refresh_rollups()
    (p,) = st.points("demo")
    return p.id


def test_late_data_into_a_compressed_chunk_is_stored_and_corrects_the_day_and_retention_drops_it(
        store: Store, store_url: str) -> None:
    pid = _old_day_and_today(store)
    jobs = "SELECT count(*) FROM timescaledb_information.jobs WHERE hypertable_name = 'readings'"
    with psycopg.connect(_dsn(store_url), autocommit=True) as c:  # the background policy of older databases
        c.execute("SELECT add_compression_policy('readings', interval '30 days')")
        assert c.execute(jobs).fetchone() == (1,)
    maint = Maintenance(store, MaintenanceConfig(compress_after_days=30))
    done = maint.run_once(now_ms=DAY0)
    chunks = _compressed(store_url)
    assert done["readings_chunks_compressed"] == 1 and list(chunks.values()) == [True, False]  # old yes, today no
    with psycopg.connect(_dsn(store_url)) as c:
        assert c.execute(jobs).fetchone() == (0,)  # maintenance decides when, alone

    # late: 10:05 of the old day (new), and 10:02 again with another value (a redelivery: must change nothing)
    store.write_batches([_batch(3, [("m.p", OLD_DAY + TEN + 5 * MINUTE_MS, 100.0, 0),
                                       ("m.p", OLD_DAY + TEN + 2 * MINUTE_MS, 999.0, 0)])])
    old = store.readings([pid], OLD_DAY, OLD_DAY + DAY_MS)[pid]
    assert [v for _t, v, _q in old] == [1.0, 2.0, 3.0, 4.0, 5.0, 100.0]
    store.refresh_rollups()
    (day,) = store.rollups([pid], OLD_DAY, OLD_DAY + DAY_MS, "1d")[pid]
    # 1 + 2 + 3 + 4 + 5 + 100 = 115 over 6 readings; the last is the late 100 at 10:05
    assert (day.bucket_ms, day.n, day.sum, day.max, day.last_ts_ms, day.last) == (
        OLD_DAY, 6, 115.0, 100.0, OLD_DAY + TEN + 5 * MINUTE_MS, 100.0)

    # the next round compresses again the chunk the late rows reopened, and only that one
    assert maint.run_once(now_ms=DAY0)["readings_chunks_compressed"] == 1
    assert maint.run_once(now_ms=DAY0)["readings_chunks_compressed"] == 0

    # retention: raw older than 40 days goes, compressed chunk included; the day's rollup stays
    removed = store.apply_retention(Retention(raw_days=40), now_ms=DAY0)
    assert removed["readings_chunks"] == 1 and list(_compressed(store_url).values()) == [False]
    assert store.readings([pid], OLD_DAY, OLD_DAY + DAY_MS)[pid] == []
    assert store.readings([pid], DAY0, DAY0 + DAY_MS)[pid] == [(DAY0 + TEN, 7.0, 0)]
    (day,) = store.rollups([pid], OLD_DAY, OLD_DAY + DAY_MS, "1d")[pid]
    assert (day.n, day.sum) == (6, 115.0)


def test_a_compressed_database_is_restored_with_the_same_rows(store: Store, store_url: str,
                                                                postgres: Postgres, tmp_path: Path) -> None:
    pid = _old_day_and_today(store)
    Maintenance(store, MaintenanceConfig(compress_after_days=30)).run_once(now_ms=DAY0)
    series = store.readings([pid], 0, 2**62)
    days = store.rollups([pid], 0, 2**62, "1d")
    held = backup(store_url, tmp_path / "parkmon.dump", progress=lambda _line: None)
    target = postgres.create_database()
    assert restore(tmp_path / "parkmon.dump", target, progress=lambda _line: None) == held
    dst = open_store(target)
    dst.create_schema()
    try:
        assert held["readings"] == 6  # five on the old day, one today
        assert dst.readings([pid], 0, 2**62) == series
        assert dst.rollups([pid], 0, 2**62, "1d") == days
        assert list(_compressed(target).values()) == [True, False]  # restored compressed, as it was
        # and it takes late data as the original did: 4 more on the old day, 1 + 2 + 3 + 4 + 5 + 4 = 19
        dst.write_batches([_batch(9, [("m.p", OLD_DAY + TEN + 5 * MINUTE_MS, 4.0, 0)])])
        dst.refresh_rollups()
        (day,) = dst.rollups([pid], OLD_DAY, OLD_DAY + DAY_MS, "1d")[pid]
        assert (day.n, day.sum) == (6, 19.0)
    finally:
        dst.close()


@pytest.fixture
def unpreloaded(store_url: str) -> Iterator[Postgres]:
    """A server of its own with TimescaleDB installed but NOT preloaded (``store_url``: only the skip
    when TimescaleDB is not installed at all)."""
    pg = start_postgres(timescaledb=False)
    try:
        yield pg
    finally:
        pg.destroy()


def _parkmon(*args: str, layout: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, pg_layout.ENV: layout}
    return subprocess.run([sys.executable, "-m", "parkmon.cli", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def _tables(url: str) -> set[str]:
    with psycopg.connect(_dsn(url)) as c:
        return {r[0] for r in c.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_a_server_that_does_not_preload_timescaledb_is_refused_with_the_fix(unpreloaded: Postgres) -> None:
    assert timescaledb_missing() is None  # installed, so PostgreSQL lists it as available
    # as production runs it: an ordinary role owning its database (it may not read shared_preload_libraries)
    with psycopg.connect(unpreloaded.admin_dsn, autocommit=True) as c:
        c.execute("CREATE ROLE parkmon LOGIN")
        c.execute("CREATE DATABASE parkmon OWNER parkmon")
    url = f"postgresql+psycopg://parkmon@127.0.0.1:{unpreloaded.port}/parkmon"
    out = _parkmon("ingest", "run", "--db", url, "--mqtt-port", "1", layout="auto")
    assert out.returncode == 2
    assert "does not preload it" in out.stderr and "shared_preload_libraries = 'timescaledb'" in out.stderr
    assert "restart PostgreSQL" in out.stderr and f"{pg_layout.ENV}=partitioned" in out.stderr
    assert "must be preloaded" not in out.stderr and "Traceback" not in out.stderr
    assert _tables(url) == set()  # refused before anything was made: fixing the server and starting again works

    # told to run on plain partitions: it does
    out = _parkmon("ingest", "migrate", "--db", url, layout="partitioned")
    assert out.returncode == 0, out.stderr
    st = open_store(url)
    st.create_schema()
    try:
        assert st.write_batches([_batch(1, [("m.p", DAY0, 1.5, 0)])]).inserted == 1
        (p,) = st.points("demo")
        assert st.readings([p.id], 0, 2**62)[p.id] == [(DAY0, 1.5, 0)]
    finally:
        st.close()
    with psycopg.connect(_dsn(url)) as c:
        assert c.execute("SELECT count(*) FROM pg_partitioned_table p JOIN pg_class r ON r.oid = p.partrelid "
                         "WHERE r.relname = 'readings'").fetchone() == (1,)
        assert c.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone() is None


def test_a_timescaledb_database_on_a_server_restarted_without_the_preload_is_refused(
        unpreloaded: Postgres) -> None:
    unpreloaded.timescaledb = True
    unpreloaded.restart()
    url = unpreloaded.create_database()
    st = open_store(url)
    st.create_schema()  # PARKMON_PG_LAYOUT=timescaledb here (the store_url fixture)
    st.write_batches([_batch(1, [("m.p", DAY0, 1.5, 0)])])
    st.close()
    unpreloaded.timescaledb = False
    unpreloaded.restart()
    out = _parkmon("ingest", "migrate", "--db", url, layout="partitioned")  # the setting cannot undo the layout
    assert out.returncode == 2
    assert "keeps its readings in TimescaleDB" in out.stderr
    assert "shared_preload_libraries = 'timescaledb'" in out.stderr
    unpreloaded.timescaledb = True
    unpreloaded.restart()  # the fix the message gives: the data is all there
    out = _parkmon("ingest", "migrate", "--db", url, layout="auto")
    assert out.returncode == 0, out.stderr
    with psycopg.connect(_dsn(url)) as c:
        assert c.execute("SELECT value FROM readings").fetchall() == [(1.5,)]


def _source(url: str, view: str) -> str:
    """What a continuous aggregate is computed from, read from TimescaleDB's own view definition."""
    with psycopg.connect(_dsn(url)) as c:
        row = c.execute("SELECT view_definition FROM timescaledb_information.continuous_aggregates "
                        "WHERE view_name = %s", (view,)).fetchone()
    assert row is not None, view
    found = [t for t in ("readings_1h", "readings_1m", "readings") if f"FROM {t}" in row[0]]
    return found[0]


def _rollup_day(st: Store) -> int:
    """One point: 10:00-10:04 of the old day 1..5, a bad-quality 1000 at 10:30, a None at 10:40 and 10 at
    11:00; then 23:30 and 00:30 around today's China midnight (DAY0). Returns the point's id."""
    old: list[tuple[str, int, float | None, int]] = [
        ("m.p", OLD_DAY + TEN + k * MINUTE_MS, float(k + 1), 0) for k in range(5)]
    old += [("m.p", OLD_DAY + TEN + 30 * MINUTE_MS, 1000.0, 192), ("m.p", OLD_DAY + TEN + 40 * MINUTE_MS, None, 0),
            ("m.p", OLD_DAY + TEN + 60 * MINUTE_MS, 10.0, 0)]
    st.write_batches([_batch(1, old)])
    st.write_batches([_batch(2, [("m.p", DAY0 - 30 * MINUTE_MS, 3.0, 0), ("m.p", DAY0 + 30 * MINUTE_MS, 4.0, 0)])])
    st.refresh_rollups()
    (p,) = st.points("demo")
    return p.id


def _expected_hours_and_days(st: Store, pid: int) -> None:
    hours = [(r.bucket_ms, r.n_all, r.n, r.sum, r.min, r.max, r.first, r.last)
             for r in st.rollups([pid], 0, 2**62, "1h")[pid]]
    # 10:00 hour: 5 good (1+2+3+4+5 = 15), the bad 1000 and the None counted in n_all only (7)
    assert hours == [(OLD_DAY + TEN, 7, 5, 15.0, 1.0, 5.0, 1.0, 5.0),
                     (OLD_DAY + TEN + 60 * MINUTE_MS, 1, 1, 10.0, 10.0, 10.0, 10.0, 10.0),
                     (DAY0 - 60 * MINUTE_MS, 1, 1, 3.0, 3.0, 3.0, 3.0, 3.0), (DAY0, 1, 1, 4.0, 4.0, 4.0, 4.0, 4.0)]
    days = [(r.bucket_ms, r.n_all, r.n, r.sum, r.first_ts_ms, r.first, r.last_ts_ms, r.last)
            for r in st.rollups([pid], 0, 2**62, "1d")[pid]]
    # the old day: 8 readings, 6 good, 15 + 10 = 25, first 1 at 10:00, last 10 at 11:00; 23:30 belongs to
    # the day before DAY0 (China days start at 16:00 UTC), 00:30 to DAY0
    assert days == [(OLD_DAY, 8, 6, 25.0, OLD_DAY + TEN, 1.0, OLD_DAY + TEN + 60 * MINUTE_MS, 10.0),
                    (DAY0 - DAY_MS, 1, 1, 3.0, DAY0 - 30 * MINUTE_MS, 3.0, DAY0 - 30 * MINUTE_MS, 3.0),
                    (DAY0, 1, 1, 4.0, DAY0 + 30 * MINUTE_MS, 4.0, DAY0 + 30 * MINUTE_MS, 4.0)]


def test_hours_are_built_from_minutes_and_days_from_hours_and_an_upgrade_rebuilds_them(
        store: Store, store_url: str) -> None:
    assert (_source(store_url, "readings_1m"), _source(store_url, "readings_1h"),
            _source(store_url, "readings_1d")) == ("readings", "readings_1m", "readings_1h")
    pid = _rollup_day(store)
    _expected_hours_and_days(store, pid)
    engine = create_engine(store_url)
    try:
        migrate.downgrade(engine, "0015")  # as a database made before: hours and days from raw readings
        assert _source(store_url, "readings_1h") == _source(store_url, "readings_1d") == "readings"
        store.refresh_rollups()
        _expected_hours_and_days(store, pid)
        migrate.upgrade(engine)  # rebuilt from the level below, empty until maintenance's next refresh
    finally:
        engine.dispose()
    assert (_source(store_url, "readings_1h"), _source(store_url, "readings_1d")) == ("readings_1m", "readings_1h")
    assert store.rollups([pid], 0, 2**62, "1d")[pid] == []
    store.refresh_rollups()  # what `parkmon ingest run`'s maintenance does every 30 s
    _expected_hours_and_days(store, pid)
    # and kept up to date: 6 more at 11:01 of the old day, 10 + 6 = 16 in its 11:00 hour, 25 + 6 = 31 in the day
    store.write_batches([_batch(3, [("m.p", OLD_DAY + TEN + 61 * MINUTE_MS, 6.0, 0)])])
    store.refresh_rollups()
    assert [(r.n, r.sum) for r in store.rollups([pid], OLD_DAY, OLD_DAY + DAY_MS, "1h")[pid]] == [(5, 15.0), (2, 16.0)]
    (day,) = store.rollups([pid], OLD_DAY, OLD_DAY + DAY_MS, "1d")[pid]
    assert (day.n, day.sum, day.last) == (7, 31.0, 6.0)


def test_an_upgrade_keeps_rollups_computed_from_raw_where_retention_dropped_the_raw_readings_below(
        store: Store, store_url: str, caplog: pytest.LogCaptureFixture) -> None:
    pid = _rollup_day(store)
    engine = create_engine(store_url)
    try:
        migrate.downgrade(engine, "0015")
        store.refresh_rollups()
        # raw readings kept 30 days: the old day's chunk is dropped, its minutes, hours and day kept
        store.apply_retention(Retention(raw_days=30), now_ms=DAY0)
        assert [t for t, _v, _q in store.readings([pid], 0, 2**62)[pid]] == [DAY0 - 30 * MINUTE_MS,
                                                                             DAY0 + 30 * MINUTE_MS]
        with caplog.at_level("WARNING", logger="ingest"):
            migrate.upgrade(engine)
    finally:
        engine.dispose()
    # made again from raw readings the minutes would lose the old day, and the hours and days rest on them
    assert {_source(store_url, v) for v in ("readings_1m", "readings_1h", "readings_1d")} == {"readings"}
    assert "readings_1m stays computed from raw readings: readings no longer holds its oldest rows" in caplog.text
    _expected_hours_and_days(store, pid)
    assert len(store.rollups([pid], OLD_DAY, OLD_DAY + DAY_MS, "1m")[pid]) == 8  # 10:00-10:04, 10:30, 10:40, 11:00
