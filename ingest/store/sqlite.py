"""SQLite: the embedded default. WAL, one transaction per batch of messages, INSERT OR IGNORE."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, create_engine, event

from ingest.store.base import ReadingsMirror, UnknownPointPolicy
from ingest.store.sql import Row, SqlStore


class SqliteStore(SqlStore):
    def __init__(self, url: str, unknown_points: UnknownPointPolicy = "register",
                 mirrors: Sequence[ReadingsMirror] = ()) -> None:
        super().__init__(url, unknown_points, mirrors)
        self.engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(self.engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes
            cur.close()

    def _insert_readings(self, conn: Connection, rows: list[Row]) -> int:
        before = conn.exec_driver_sql("SELECT total_changes()").scalar_one()
        conn.exec_driver_sql(
            "INSERT INTO readings (point_id, ts, value, quality) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (point_id, ts) DO NOTHING",
            rows,
        )
        after = conn.exec_driver_sql("SELECT total_changes()").scalar_one()
        return int(after) - int(before)
