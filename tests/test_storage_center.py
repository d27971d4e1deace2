"""The storage centre over every back end: rollups under late data, migrations, partitions,
retention and completeness per gateway and day. Real SQLite files and a real PostgreSQL server."""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, inspect, text

from ingest.store import Store, migrate, open_store
from ingest.store.base import IncomingBatch, Retention
from ingest.store.rollups import DAY_MS, HOUR_MS, LEVELS, MINUTE_MS
from parkmon.common import quality, wire

DAY0 = 1_795_363_200_000  # 2026-11-23 00:00 UTC+8
BAD = quality.bad(quality.Reason.COMM_FAILURE)


def _batch(seq: int, samples: list[tuple[str, int, float | None, int]], gw: str = "gw1", ent: str = "e01",
           sent: int | None = None) -> IncomingBatch:
    sent = samples[-1][1] if sent is None and samples else (sent or DAY0)
    return IncomingBatch("demo", ent, gw, wire.Batch(1, gw, seq, sent, samples), sent)


def _expected(series: list[tuple[int, float | None, int]], width: str) -> dict[int, tuple]:
    """Rollups recomputed from scratch in Python: what the store must hold after any history of writes."""
    level = LEVELS[width]
    buckets: dict[int, list[tuple[int, float | None, int]]] = defaultdict(list)
    for ts, v, q in series:
        buckets[level.floor(ts)].append((ts, v, q))
    out = {}
    for b, rows in buckets.items():
        good = sorted((ts, v) for ts, v, q in rows if q < 64 and v is not None)
        vals = [v for _t, v in good]
        out[b] = (len(rows), len(good), round(sum(vals), 6) if vals else None, min(vals, default=None),
                  max(vals, default=None), good[0] if good else None, good[-1] if good else None)
    return out


def _actual(store: Store, pid: int, width: str) -> dict[int, tuple]:
    rows = store.rollups([pid], 0, 2**62, width)[pid]
    return {r.bucket_ms: (r.n_all, r.n, None if r.sum is None else round(r.sum, 6), r.min, r.max,
                          None if r.first_ts_ms is None else (r.first_ts_ms, r.first),
                          None if r.last_ts_ms is None else (r.last_ts_ms, r.last)) for r in rows}


def _check_rollups(store: Store) -> None:
    for p in store.points("demo"):
        series = store.readings([p.id], 0, 2**62)[p.id]
        for width in ("1m", "1h", "1d"):
            assert _actual(store, p.id, width) == _expected(series, width), (p.key, width)


def test_rollups_match_raw_and_stay_right_when_a_day_is_replayed_late(store: Store) -> None:
    rng = random.Random(7)
    # live data: two points every 20 s for 26 hours (crosses a UTC+8 day), one bad sample per hour,
    # but the gateway's link was down for hours 5-9 of the first day: nothing arrived then
    live, outage = [], range(DAY0 + 5 * HOUR_MS, DAY0 + 9 * HOUR_MS)
    for i, ts in enumerate(range(DAY0, DAY0 + 26 * HOUR_MS, 20_000)):
        if ts in outage:
            continue
        q = BAD if i % 180 == 7 else 0
        live.append(("m1.p", ts, round(rng.uniform(0, 100), 3), q))
        live.append(("m2.energy", ts, 1000.0 + i * 0.5, 0))
    for seq, i in enumerate(range(0, len(live), 300), start=1):
        store.write_batches([_batch(seq, live[i:i + 300])])
    assert store.refresh_rollups() > 0
    _check_rollups(store)
    before = {w: _actual(store, store.points("demo")[0].id, w) for w in ("1h", "1d")}

    # a day later the gateway replays its buffer: the outage hours, plus samples that were already stored
    replay = [("m1.p", ts, round(rng.uniform(0, 100), 3), 0) for ts in range(outage.start, outage.stop, 20_000)]
    replay += live[:50]  # redelivered: must change nothing
    rng.shuffle(replay)
    res = store.write_batches([_batch(10_000 + j, replay[j:j + 500]) for j in range(0, len(replay), 500)])
    assert res.inserted == len(replay) - 50 and res.duplicates == 50
    store.refresh_rollups()
    _check_rollups(store)
    after = {w: _actual(store, store.points("demo")[0].id, w) for w in ("1h", "1d")}
    changed = {b for b in after["1h"] if after["1h"][b] != before["1h"].get(b)}
    assert changed == {DAY0 + h * HOUR_MS for h in range(5, 9)}  # exactly the hours it touched
    assert after["1d"][DAY0] != before["1d"][DAY0] and after["1d"][DAY0 + DAY_MS] == before["1d"][DAY0 + DAY_MS]
    assert store.refresh_rollups() == 0  # nothing left to do


def test_a_minute_of_only_bad_samples_is_counted_but_has_no_value(store: Store) -> None:
    store.write_batches([_batch(1, [("m.p", DAY0 + i * 1000, 5.0, BAD) for i in range(10)])])
    store.refresh_rollups()
    (p,) = store.points("demo")
    (r,) = store.rollups([p.id], 0, 2**62, "1m")[p.id]
    assert (r.n_all, r.n, r.sum, r.mean, r.first) == (10, 0, None, None, None)


def test_unknown_width_is_a_clear_error(store: Store) -> None:
    with pytest.raises(ValueError, match="1m, 1h, 1d"):
        store.rollups([1], 0, 1, "5m")


def test_completeness_per_gateway_and_day_counts_sequence_gaps(store: Store) -> None:
    # day 1: seqs 1..10 without 4, 5, 6; day 2: 11..20 without 11 (the gap straddles midnight) and 15
    sent = {s: DAY0 + s * HOUR_MS for s in range(1, 11)} | {s: DAY0 + DAY_MS + s * HOUR_MS for s in range(11, 21)}
    for s_ in sorted(set(sent) - {4, 5, 6, 11, 15}):
        store.write_batches([_batch(s_, [("m.p", sent[s_], 1.0, 0)], sent=sent[s_])])
    store.write_batches([_batch(1, [("m.q", DAY0 + 1, 1.0, 0)], gw="gw2", ent="e02", sent=DAY0 + 1)])
    daily = store.completeness("demo", DAY0, DAY0 + 2 * DAY_MS, daily=True)
    got = {(c.gateway, c.day_ms): (c.received, c.expected) for c in daily}
    assert got == {("gw1", DAY0): (7, 10), ("gw1", DAY0 + DAY_MS): (8, 10), ("gw2", DAY0): (1, 1)}
    (whole,) = [c for c in store.completeness("demo", DAY0, DAY0 + 2 * DAY_MS) if c.gateway == "gw1"]
    assert (whole.received, whole.expected, round(whole.ratio, 2)) == (15, 20, 0.75)
    # the day-2 window alone still sees the gap that started on day 1 (the previous seq is looked up)
    (d2,) = [c for c in store.completeness("demo", DAY0 + DAY_MS, DAY0 + 2 * DAY_MS) if c.gateway == "gw1"]
    assert (d2.received, d2.expected) == (8, 10)


def test_retention_keeps_rollups_after_raw_is_gone(store: Store) -> None:
    # raw data in three months; keep raw 40 days counted from "now" in the third month
    months = [DAY0 - 62 * DAY_MS, DAY0 - 31 * DAY_MS, DAY0]
    for i, t in enumerate(months):
        store.write_batches([_batch(i + 1, [("m.p", t + k * MINUTE_MS, float(k), 0) for k in range(5)])])
    store.refresh_rollups()
    (p,) = store.points("demo")
    removed = store.apply_retention(Retention(raw_days=40, rollup_1m_days=40), now_ms=DAY0 + DAY_MS)
    raw_left = {ts for ts, _v, _q in store.readings([p.id], 0, 2**62)[p.id]}
    assert not any(t < months[1] for t in raw_left)  # the oldest month is gone
    assert {t for t in raw_left if t >= months[2]} == {DAY0 + k * MINUTE_MS for k in range(5)}
    assert sum(removed.values()) > 0
    hours = store.rollups([p.id], 0, 2**62, "1h")[p.id]
    assert {h.bucket_ms for h in hours} == {LEVELS["1h"].floor(t) for t in months}  # rollups outlive raw
    assert all(m.bucket_ms >= DAY0 + DAY_MS - 40 * DAY_MS for m in store.rollups([p.id], 0, 2**62, "1m")[p.id])


def test_a_database_made_by_parkmon_0_1_is_upgraded_with_its_data(store_url: str) -> None:
    engine = create_engine(store_url)
    migrate.upgrade(engine, "0001")
    with engine.begin() as conn:  # as create_all made it: no alembic_version, one reading
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("INSERT INTO parks (id, key, name_zh, name_en, park_class, region) "
                          "VALUES (1, 'demo', 'd', 'd', 'none', '')"))
        conn.execute(text("INSERT INTO enterprises (id, park_id, key, name) VALUES (1, 1, 'e01', '')"))
        conn.execute(text("INSERT INTO devices (id, enterprise_id, key, name) VALUES (1, 1, 'm', '')"))
        conn.execute(text("INSERT INTO points (id, device_id, key, name, unit, kind, label) "
                          "VALUES (1, 1, 'demo.e01.m.p', 'p', '', '', '')"))
    st = open_store(store_url)
    with engine.begin() as conn:
        ts = "timestamptz 'epoch' + 1795363200000 * interval '1 millisecond'" if "postgresql" in store_url \
            else "1795363200000"
        conn.execute(text(f"INSERT INTO readings (point_id, ts, value, quality) VALUES (1, {ts}, 42.0, 0)"))
    try:
        st.create_schema()
        assert migrate.current(engine) == migrate.head()
        assert st.readings([1], 0, 2**62) == {1: [(1_795_363_200_000, 42.0, 0)]}
        st.refresh_rollups()
        (r,) = st.rollups([1], 0, 2**62, "1d")[1]
        assert (r.n, r.last) == (1, 42.0)
        st.create_schema()  # idempotent: a second start changes nothing
        assert migrate.current(engine) == migrate.head()
        insp = inspect(engine)  # on TimescaleDB the rollups are continuous aggregates: views, not tables
        assert {"readings_1m", "readings_1h", "readings_1d", "rollup_dirty"} <= {*insp.get_table_names(),
                                                                                 *insp.get_view_names()}
    finally:
        st.close()
        engine.dispose()


def test_postgresql_readings_are_partitioned_by_month_and_retention_drops_months(pg_url: str) -> None:
    st = open_store(pg_url)
    st.create_schema()
    dsn = pg_url.replace("postgresql+psycopg", "postgresql")
    try:
        with psycopg.connect(dsn) as c:
            if c.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
                pytest.skip("TimescaleDB: chunks, not monthly partitions")
        for i, t in enumerate([DAY0 - 62 * DAY_MS, DAY0]):
            st.write_batches([_batch(i + 1, [("m.p", t, 1.0, 0)])])
        st.prepare(DAY0)
        with psycopg.connect(dsn) as c:
            parts = {r[0] for r in c.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'readings'")}
            rows = dict(c.execute("SELECT tableoid::regclass::text, count(*) FROM readings GROUP BY 1").fetchall())
        assert {"readings_y2026m09", "readings_y2026m11", "readings_y2026m12"} <= parts
        assert rows == {"readings_y2026m09": 1, "readings_y2026m11": 1}
        removed = st.apply_retention(Retention(raw_days=30), now_ms=DAY0)
        assert removed["readings_partitions"] >= 1
        assert st.count_readings() == 1
        # late data for the dropped month simply makes it again (nothing is lost by a stale cache)
        st.write_batches([_batch(3, [("m.p", DAY0 - 62 * DAY_MS + 5, 2.0, 0)])])
        assert st.count_readings() == 2
    finally:
        st.close()


def test_workers_meeting_a_new_month_at_once_all_write(pg_url: str) -> None:
    """Four workers (own stores, own connections) write the first rows of the same new months at the
    same instant: the partitions are made once and no batch fails (CREATE TABLE IF NOT EXISTS alone
    races: both pass the check, one gets DuplicateTable)."""
    stores = [open_store(pg_url) for _ in range(4)]
    for st in stores:
        st.create_schema()
    errors: list[BaseException] = []
    try:
        for round_ in range(3):  # three fresh months, far in the future so no partition exists yet
            t = DAY0 + (400 + 40 * round_) * DAY_MS
            barrier = threading.Barrier(len(stores))

            def write(i: int, st: Store, t: int = t, barrier: threading.Barrier = barrier,
                      round_: int = round_) -> None:
                barrier.wait()
                try:
                    st.write_batches([_batch(1, [(f"race.p{i}", t, 1.0, 0)], gw=f"gw{round_}-{i}")])
                except BaseException as exc:  # reported below
                    errors.append(exc)

            threads = [threading.Thread(target=write, args=(i, st)) for i, st in enumerate(stores)]
            for th in threads:
                th.start()
            for th in threads:
                th.join(30)
            assert errors == []
        assert stores[0].count_readings() == 3 * len(stores)
    finally:
        for st in stores:
            st.close()


def test_sqlite_store_file_survives_reopen_with_rollups(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    st = open_store(url)
    st.create_schema()
    st.write_batches([_batch(1, [("m.p", DAY0 + i * 1000, float(i), 0) for i in range(120)])])
    st.close()
    st = open_store(url)
    st.create_schema()
    assert st.refresh_rollups() == 1
    (p,) = st.points("demo")
    assert [r.n for r in st.rollups([p.id], 0, 2**62, "1m")[p.id]] == [60, 60]
    st.close()
