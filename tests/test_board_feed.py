"""analytics/board_feed.py on each back end: the hours a board reads, the running hour, silence."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from analytics.board_feed import BoardFeed, FeedConfig
from analytics.indicators.new_energy_share import compute_park_share
from ingest.store import Store
from ingest.store import schema as s
from tests.sim_day import load_day

D0 = 1_795_363_200_000  # 2026-11-23 00:00 China time
H = 3_600_000


def _rows(store: Store, enterprise: str = "") -> list[tuple[int, float | None, float | None, float | None]]:
    t = s.indicator_hourly
    with store.engine.connect() as conn:
        return [(r.bucket, r.re_used, r.consumption, r.tce) for r in conn.execute(
            select(t).where(t.c.enterprise == enterprise).order_by(t.c.bucket))]


def test_feed_writes_hours_with_data_and_keeps_the_running_hour_current(store: Store, tmp_path: Path) -> None:
    load_day(store, D0, tmp_path, hours=6)
    feed = BoardFeed(store, FeedConfig(backfill_hours=8))
    # at 04:30 the park has 4 whole hours and a running one; the two hours before 00:00 had no data
    assert feed.run_once(now_ms=D0 + 4 * H + 30 * 60_000) == {"demo": 5}
    rows = _rows(store)
    assert [r[0] for r in rows] == [D0 + k * H for k in range(5)]
    running = compute_park_share(store, "demo", D0, D0 + 4 * H + 30 * 60_000, interval_ms=H, source="raw")
    assert sum(r[1] or 0 for r in rows) / sum(r[2] or 0 for r in rows) == pytest.approx(running.value, abs=1e-9)
    # later the running hour is complete and 05:00 begins; hours before the redo window stay as written
    assert feed.run_once(now_ms=D0 + 5 * H + 10 * 60_000) == {"demo": 4}
    after = _rows(store)
    assert [r[0] for r in after] == [D0 + k * H for k in range(6)]
    assert after[:2] == rows[:2] and after[4][2] > rows[4][2]  # 04:00 now holds a whole hour
    # every enterprise has its comprehensive energy; the park's is their sum
    ents = {e: _rows(store, e) for e in ("e01", "e02", "e03", "e04")}
    for k, park_row in enumerate(after):
        assert park_row[3] == pytest.approx(sum(ents[e][k][3] or 0 for e in ents))
