"""Store-and-forward on disk: every sample is durable before it is published.

Samples become encoded batches in an SQLite file (WAL, ``synchronous=FULL`` so a power cut
loses no committed batch). A batch's ``seq`` is its AUTOINCREMENT row id, so sequence numbers keep
growing across restarts and a replayed batch carries the same seq as the first try (the platform
de-duplicates on it). A batch leaves the file only when the broker has acknowledged it. The file
is bounded by ``max_bytes``: past it the oldest batches are dropped and the drop is counted.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from edge_agent.drivers.base import Sample
from parkmon.common import wire
from parkmon.common.clock import now_ms

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    created_ms INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class DiskBuffer:
    def __init__(self, path: str | Path, gateway: str, max_bytes: int) -> None:
        self.path = str(path)
        self.gateway = gateway
        self.max_bytes = max_bytes
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # one connection shared by the poll loop and the MQTT thread, serialised by a lock
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM batches").fetchone()
            self._bytes = int(row[0])

    def append(self, samples: list[Sample], max_samples: int) -> list[int]:
        """Write samples as one or more batches in one transaction; returns their seqs."""
        seqs: list[int] = []
        now = now_ms()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for i in range(0, len(samples), max_samples):
                    chunk = samples[i : i + max_samples]
                    cur = self._db.execute(
                        "INSERT INTO batches (created_ms, samples, payload) VALUES (?, ?, x'')",
                        (now, len(chunk)),
                    )
                    seq = int(cur.lastrowid or 0)
                    payload = wire.encode(wire.Batch(wire.VERSION, self.gateway, seq, now, chunk))
                    self._db.execute("UPDATE batches SET payload = ? WHERE seq = ?", (payload, seq))
                    self._bytes += len(payload)
                    seqs.append(seq)
                self._enforce_limit()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return seqs

    def _enforce_limit(self) -> None:
        while self._bytes > self.max_bytes:
            row = self._db.execute("SELECT seq, samples, LENGTH(payload) FROM batches ORDER BY seq LIMIT 1").fetchone()
            if row is None:
                break
            seq, n, size = row
            self._db.execute("DELETE FROM batches WHERE seq = ?", (seq,))
            self._db.execute(
                "INSERT INTO counters VALUES ('dropped_samples', ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (n,),
            )
            self._bytes -= size

    def pending(self, after_seq: int, limit: int) -> list[tuple[int, bytes]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, payload FROM batches WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
            ).fetchall()
        return [(int(s), bytes(p)) for s, p in rows]

    def ack(self, seq: int) -> None:
        with self._lock:
            row = self._db.execute("SELECT LENGTH(payload) FROM batches WHERE seq = ?", (seq,)).fetchone()
            if row is not None:
                self._db.execute("DELETE FROM batches WHERE seq = ?", (seq,))
                self._bytes -= int(row[0])

    def depth(self) -> tuple[int, int, int | None]:
        """(batches, samples, oldest created_ms) waiting for the broker."""
        with self._lock:
            n, s, oldest = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(samples), 0), MIN(created_ms) FROM batches"
            ).fetchone()
        return int(n), int(s), oldest

    def last_seq(self) -> int:
        """The last sequence number ever given out (0 for a new buffer)."""
        with self._lock:
            row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name='batches'").fetchone()
        return int(row[0]) if row else 0

    def dropped(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name='dropped_samples'").fetchone()
        return int(row[0]) if row else 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def close(self) -> None:
        with self._lock:
            self._db.close()
