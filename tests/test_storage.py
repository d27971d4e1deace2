"""One storage suite over every back end (SQLite and a real PostgreSQL server)."""

from __future__ import annotations

from ingest.store import Store, open_store
from ingest.store.base import IncomingBatch
from parkmon.common import quality, wire

T0 = 1_763_800_000_000  # 2025-11-22T08:26:40Z in epoch ms


def _batch(seq: int, samples: list[tuple[str, int, float | None, int]], gw: str = "gw1") -> IncomingBatch:
    return IncomingBatch("demo", "e01", gw, wire.Batch(1, gw, seq, T0, samples), T0)


def _meta() -> wire.Meta:
    return wire.Meta(1, "gw1", T0, {
        "grid.import": wire.PointMeta("elec.import.energy", "kWh", "counter", "进线正向有功"),
        "grid.power": wire.PointMeta("elec.active_power", "kW", "instant", "有功功率"),
    }, {"grid": "总进线关口表"})


def test_same_batch_twice_is_stored_once(store: Store) -> None:
    b = _batch(1, [("grid.import", T0, 100.0, 0), ("grid.import", T0 + 1000, 100.5, 0)])
    first = store.write_batches([b])
    again = store.write_batches([b])
    assert (first.inserted, first.duplicates) == (2, 0)
    assert (again.inserted, again.duplicates, again.replayed_batches) == (0, 2, 1)
    assert store.count_readings() == 2


def test_meta_registers_points_with_metrics_and_names(store: Store) -> None:
    store.upsert_meta("demo", "e01", "gw1", _meta())
    pts = {p.point: p for p in store.points("demo")}
    assert pts["import"].metric == "elec.import.energy"
    assert pts["import"].label == "进线正向有功"
    assert pts["power"].unit == "kW"
    assert [p.point for p in store.points("demo", metrics=["elec.active_power"])] == ["power"]


def test_data_before_meta_is_kept_and_named_later(store: Store) -> None:
    store.write_batches([_batch(1, [("grid.import", T0, 5.0, 0)])])
    assert store.points("demo")[0].metric is None
    store.upsert_meta("demo", "e01", "gw1", _meta())
    (imp,) = store.points("demo", metrics=["elec.import.energy"])
    assert store.readings([imp.id], T0, T0 + 1) == {imp.id: [(T0, 5.0, 0)]}


def test_quarantine_policy_keeps_unknown_points_aside(store_url: str) -> None:
    st = open_store(store_url, unknown_points="quarantine")
    st.create_schema()
    try:
        st.upsert_meta("demo", "e01", "gw1", _meta())
        res = st.write_batches([_batch(1, [("grid.import", T0, 1.0, 0), ("ghost.x", T0, 2.0, 0)])])
        assert (res.inserted, res.quarantined) == (1, 1)
        assert st.count_readings() == 1
    finally:
        st.close()


def test_latest_and_range_and_bad_quality(store: Store) -> None:
    store.upsert_meta("demo", "e01", "gw1", _meta())
    bad = quality.bad(quality.Reason.COMM_FAILURE)
    store.write_batches([_batch(1, [("grid.power", T0, 10.0, 0), ("grid.power", T0 + 1000, 11.0, 0),
                                    ("grid.power", T0 + 2000, None, bad)])])
    latest = {r.point: r for r in store.latest("demo", "e01", "grid")}
    assert (latest["power"].ts_ms, latest["power"].value, latest["power"].quality) == (T0 + 2000, None, bad)
    (pw,) = store.points("demo", metrics=["elec.active_power"])
    # start inclusive, end exclusive
    assert store.readings([pw.id], T0, T0 + 2000)[pw.id] == [(T0, 10.0, 0), (T0 + 1000, 11.0, 0)]


def test_completeness_counts_sequence_gaps(store: Store) -> None:
    for seq in (1, 2, 3, 5, 6, 10):  # 4, 7, 8, 9 never arrived
        store.write_batches([_batch(seq, [("grid.power", T0 + seq, 1.0, 0)])])
    (c,) = store.completeness("demo", T0 - 1, T0 + 1)
    assert (c.gateway, c.received, c.expected) == ("gw1", 6, 10)
    assert c.ratio == 0.6


def test_dead_letters_keep_raw_bytes_and_reason(store: Store) -> None:
    store.dead_letter("parkmon/v1/demo/e01/gw1/data", b"\xff{not json", "data batch is not valid JSON", T0)
    (d,) = store.dead_letters()
    assert d.payload == b"\xff{not json"
    assert "not valid JSON" in d.reason


def test_many_messages_in_one_transaction(store: Store) -> None:
    items = [_batch(seq, [(f"m{seq % 7}.p{i}", T0 + seq * 1000, float(i), 0) for i in range(50)])
             for seq in range(1, 41)]
    res = store.write_batches(items)
    assert res.inserted == 40 * 50
    assert store.count_readings() == 2000


def test_park_class_is_checked(store: Store) -> None:
    import pytest

    with pytest.raises(ValueError, match="park_class 'low-carbon' is not one of low_carbon, zero_carbon, none"):
        store.upsert_park("demo", "示范园区", "Demo", "low-carbon")


def _dirty(store_url: str) -> list[tuple[int, int]]:
    """The rollups' to-do list: (from_ms, to_ms) of each record, oldest first."""
    from sqlalchemy import create_engine, text

    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT from_ms, to_ms FROM rollup_dirty ORDER BY id")).all()
    finally:
        engine.dispose()
    return [(int(a), int(b)) for a, b in rows]


def test_a_batch_across_minutes_marks_its_span_and_a_stray_time_alone(store_url: str, store: Store) -> None:
    """What the rollups are told to redo: a batch within an hour marks the minutes from its first to its last
    reading; one with a reading three days away marks that minute alone, not the days between (which the
    refresh would walk). The minute rollups come out the same either way."""
    # T0 is 40 s into minute m = 29_396_666 (m x 60 000 = 1_763_799_960_000)
    # 40 s + 150 s = 190 s: minute m + 3
    near: list[wire.Sample] = [("grid.import", T0, 1.0, 0), ("grid.import", T0 + 150_000, 2.0, 0)]
    store.write_batches([_batch(1, near)])
    far: list[wire.Sample] = [("grid.power", T0, 5.0, 0), ("grid.power", T0 + 3 * 86_400_000, 7.0, 0)]  # m + 3 x 1440
    store.write_batches([_batch(2, far)])
    assert _dirty(store_url) == [
        (1_763_799_960_000, 1_763_800_200_000),  # minutes m .. m + 3: (m + 4) x 60 000
        (1_763_799_960_000, 1_763_800_020_000),  # minute m alone
        (1_764_059_160_000, 1_764_059_220_000),  # minute m + 4 320: (29_396_666 + 4 320) x 60 000
    ]
    store.refresh_rollups()
    pts = {p.point: p.id for p in store.points("demo")}
    got = store.rollups([pts["import"], pts["power"]], T0 - 3_600_000, T0 + 4 * 86_400_000, "1m")
    assert [(r.bucket_ms, r.sum) for r in got[pts["import"]]] == [(1_763_799_960_000, 1.0), (1_763_800_140_000, 2.0)]
    assert [(r.bucket_ms, r.sum) for r in got[pts["power"]]] == [(1_763_799_960_000, 5.0), (1_764_059_160_000, 7.0)]


def test_one_refresh_consumes_more_dirty_records_than_a_page(store_url: str, store: Store) -> None:
    """After a long stop of maintenance the to-do list holds more than one page (10 000 records): one refresh
    still does all of it (TimescaleDB's did one page a round, and fell behind writers adding more)."""
    from sqlalchemy import create_engine, text

    store.write_batches([_batch(1, [("grid.import", T0, 1.0, 0)])])
    engine = create_engine(store_url)
    try:
        with engine.begin() as conn:
            eid = conn.execute(text("SELECT enterprise_id FROM rollup_dirty")).scalar_one()
            # minute m of T0 again, 10 000 times: 10 001 records in all
            conn.execute(text("INSERT INTO rollup_dirty (enterprise_id, from_ms, to_ms) VALUES (:e, :a, :b)"),
                         [{"e": eid, "a": 1_763_799_960_000, "b": 1_763_800_020_000}] * 10_000)
    finally:
        engine.dispose()
    assert len(_dirty(store_url)) == 10_001
    store.refresh_rollups()
    assert _dirty(store_url) == []
    pid = {p.point: p.id for p in store.points("demo")}["import"]
    got = store.rollups([pid], T0 - 3_600_000, T0 + 3_600_000, "1m")[pid]
    assert [(r.bucket_ms, r.sum) for r in got] == [(1_763_799_960_000, 1.0)]


def test_what_is_written_during_a_refresh_waits_for_the_next(store_url: str, store: Store) -> None:
    """A refresh does the minutes written before it started, not those written while it runs: chasing them,
    it never ended under load and recomputed each minute every second or two instead of every 30 s. A batch is
    written from inside the refresh (when it deletes the records it consumed), on a connection of its own."""
    import pytest
    from sqlalchemy import event

    if store_url.startswith("sqlite"):
        pytest.skip("SQLite has one writer at a time: nothing can be written while a refresh holds its transaction")
    store.write_batches([_batch(1, [("grid.import", T0, 1.0, 0)])])
    # 40 s + 300 s = 340 s into minute m: minute m + 5, from 1_763_799_960_000 + 300_000 = 1_763_800_260_000
    late: list[wire.Sample] = [("grid.import", T0 + 300_000, 2.0, 0)]
    written: list[int] = []

    def write_during(_c: object, _cur: object, statement: str, *_a: object) -> None:
        if statement.startswith("DELETE FROM rollup_dirty") and not written:
            written.append(store.write_batches([_batch(2, late)]).inserted)

    sa_engine = store.engine
    event.listen(sa_engine, "before_cursor_execute", write_during)
    try:
        store.refresh_rollups()
    finally:
        event.remove(sa_engine, "before_cursor_execute", write_during)
    assert written == [1]
    assert _dirty(store_url) == [(1_763_800_260_000, 1_763_800_320_000)]  # minute m + 5, left for the next round
    pid = {p.point: p.id for p in store.points("demo")}["import"]
    got = store.rollups([pid], T0 - 3_600_000, T0 + 3_600_000, "1m")[pid]
    assert [(r.bucket_ms, r.sum) for r in got] == [(1_763_799_960_000, 1.0)]
    store.refresh_rollups()
    assert _dirty(store_url) == []
    got = store.rollups([pid], T0 - 3_600_000, T0 + 3_600_000, "1m")[pid]
    assert [(r.bucket_ms, r.sum) for r in got] == [(1_763_799_960_000, 1.0), (1_763_800_260_000, 2.0)]
