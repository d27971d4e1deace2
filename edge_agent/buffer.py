"""Store-and-forward on disk: every polled sample is durable before the next poll.

Samples become encoded batches in an SQLite file (WAL, ``synchronous=FULL`` so a power cut
loses no committed batch). A batch's ``seq`` is handed out once by :meth:`DiskBuffer.next_seq` and
stays with that batch's samples for good: written, dropped (a gap the platform's completeness report
counts), or lost with the agent's memory (a gap too, counted at the next start). It never goes to
other samples, and a replayed batch carries the seq of its first try. A batch leaves the file when
:meth:`DiskBuffer.delete` is told it is delivered: the platform confirmed it committed (end-to-end ack,
docs/decisions/0010), or, where that is off or the platform never confirms, the broker's PUBACK (counted).
The file is bounded by ``max_bytes``: past it the oldest batches are dropped and counted.

Loss counters are totals since the file was made, kept in its ``counters`` table so they survive
restarts; each transaction saves those that changed. Decision record: docs/decisions/0002-edge-buffer.md.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Sequence
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

# Why samples were dropped -> (samples counter, batches counter). "dropped_samples" is the name the
# first buffers gave the size-limit drops; kept so their totals carry on.
LOSSES = {
    "buffer_full": ("dropped_samples", "dropped_batches"),  # the file reached buffer.max_mb: oldest on disk
    "memory_full": ("memory_dropped_samples", "memory_dropped_batches"),  # disk refused writes, memory bound hit
    "unwritten_at_stop": ("unwritten_samples", "unwritten_batches"),  # agent stopped or died holding them
}
# What was held in memory after the last transaction: non-zero at open means the last run ended
# with batches it never wrote. SEQ_RESERVED is the highest seq handed out, written or not.
SEQ_RESERVED, HELD_BATCHES, HELD_SAMPLES = "seq_reserved", "memory_batches", "memory_samples"
WRITE_FAILURES = "write_failures"
# Why a batch left the file once delivered: "confirmed" by the platform (end-to-end ack), or "puback" (the
# broker's acknowledgement alone: what a broker crash can still lose) -> (batches counter, samples counter)
DELIVERIES = {"confirmed": ("confirmed_batches", "confirmed_samples"),
              "puback": ("unconfirmed_deleted_batches", "unconfirmed_deleted_samples")}


class DiskBuffer:
    def __init__(self, path: str | Path, gateway: str, max_bytes: int) -> None:
        self.path = str(path)
        self.gateway = gateway
        self.max_bytes = max_bytes
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # one connection shared by the agent's writer and the MQTT thread, serialised by a lock;
        # seqs and counts have their own, so handing out a seq never waits for a disk write
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._mem = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM batches").fetchone()
            self._bytes = int(row[0])
            self._saved = {str(k): int(v) for k, v in self._db.execute("SELECT name, value FROM counters")}
            row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name='batches'").fetchone()
            written = int(row[0]) if row else 0
        self._counts = dict(self._saved)  # totals, ahead of _saved by what no transaction has saved yet
        self._next = max(written, self._counts.get(SEQ_RESERVED, 0)) + 1
        # the last run ended holding batches it never wrote: their seqs stay unused (a gap), count them
        self.found_unwritten = (self._counts.get(HELD_BATCHES, 0), self._counts.get(HELD_SAMPLES, 0))
        if self.found_unwritten[0]:
            self.count_loss("unwritten_at_stop", self.found_unwritten[0], self.found_unwritten[1])
            self._counts[HELD_BATCHES] = self._counts[HELD_SAMPLES] = 0
            with contextlib.suppress(sqlite3.Error):  # the disk still refuses: saved with the first write that works
                self.write([], 0, 0)

    def next_seq(self) -> int:
        """A new batch's seq; it is never handed out again, whatever becomes of the batch."""
        with self._mem:
            seq = self._next
            self._next += 1
            self._counts[SEQ_RESERVED] = seq
            return seq

    def count_loss(self, cause: str, batches: int, samples: int) -> None:
        s, b = LOSSES[cause]
        with self._mem:
            self._counts[s] = self._counts.get(s, 0) + samples
            self._counts[b] = self._counts.get(b, 0) + batches

    def count_write_failure(self) -> None:
        with self._mem:
            self._counts[WRITE_FAILURES] = self._counts.get(WRITE_FAILURES, 0) + 1

    def write(self, batches: Sequence[tuple[int, list[Sample]]], held_batches: int, held_samples: int) -> None:
        """Write ``(seq, samples)`` batches and the counters in one transaction; ``held_*`` is what the
        caller still keeps in memory after it. Raises if the disk refuses (then nothing is written)."""
        now = now_ms()
        with self._lock:
            with self._mem:
                counts = {**self._counts, HELD_BATCHES: held_batches, HELD_SAMPLES: held_samples}
            size = self._bytes
            try:
                self._db.execute("BEGIN IMMEDIATE")
                for seq, samples in batches:
                    payload = wire.encode(wire.Batch(wire.VERSION, self.gateway, seq, now, samples))
                    self._db.execute("INSERT INTO batches (seq, created_ms, samples, payload) VALUES (?, ?, ?, ?)",
                                     (seq, now, len(samples), payload))
                    size += len(payload)
                size, full = self._enforce_limit(size)
                for key, n in zip(LOSSES["buffer_full"], full, strict=True):
                    counts[key] = counts.get(key, 0) + n
                changed = [(k, v) for k, v in counts.items() if self._saved.get(k) != v]
                self._db.executemany("INSERT INTO counters VALUES (?, ?) "
                                     "ON CONFLICT(name) DO UPDATE SET value = excluded.value", changed)
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # SQLite has already rolled back after some I/O errors
                    self._db.execute("ROLLBACK")
                raise
            self._bytes, self._saved = size, counts
            with self._mem:  # counts that moved on during the transaction keep their new value
                for key, n in zip(LOSSES["buffer_full"], full, strict=True):
                    self._counts[key] = self._counts.get(key, 0) + n
                self._counts[HELD_BATCHES], self._counts[HELD_SAMPLES] = held_batches, held_samples

    def _enforce_limit(self, size: int) -> tuple[int, tuple[int, int]]:
        """Drop the oldest batches until the file is within max_bytes: (new size, (samples, batches) dropped)."""
        samples = batches = 0
        while size > self.max_bytes:
            row = self._db.execute("SELECT seq, samples, LENGTH(payload) FROM batches ORDER BY seq LIMIT 1").fetchone()
            if row is None:
                break
            seq, n, nbytes = row
            self._db.execute("DELETE FROM batches WHERE seq = ?", (seq,))
            samples += int(n)
            batches += 1
            size -= int(nbytes)
        return size, (samples, batches)

    def pending(self, after_seq: int, limit: int) -> list[tuple[int, int, bytes]]:
        """(seq, created_ms, payload) of the batches after ``after_seq``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, created_ms, payload FROM batches WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
            ).fetchall()
        return [(int(s), int(c), bytes(p)) for s, c, p in rows]

    def get(self, seqs: Sequence[int]) -> list[tuple[int, int, bytes]]:
        """(seq, created_ms, payload) of those of ``seqs`` still in the file, in seq order (re-sends)."""
        out: list[tuple[int, int, bytes]] = []
        with self._lock:
            for seq in sorted(seqs):
                row = self._db.execute("SELECT created_ms, payload FROM batches WHERE seq = ?", (seq,)).fetchone()
                if row is not None:
                    out.append((seq, int(row[0]), bytes(row[1])))
        return out

    def delete(self, seqs: Iterable[int], how: str = "confirmed") -> None:
        """Forget delivered batches, in one transaction, and count them under ``how`` (DELIVERIES). Raises if
        the disk refuses (they are then sent again, which the platform's idempotency absorbs)."""
        keys = [(s,) for s in seqs]
        if not keys:
            return
        with self._lock:
            with self._mem:
                counts = dict(self._counts)
            try:
                self._db.execute("BEGIN IMMEDIATE")
                freed = batches = samples = 0
                for (seq,) in keys:
                    row = self._db.execute("SELECT LENGTH(payload), samples FROM batches WHERE seq = ?",
                                           (seq,)).fetchone()
                    if row is not None:
                        freed += int(row[0])
                        batches, samples = batches + 1, samples + int(row[1])
                self._db.executemany("DELETE FROM batches WHERE seq = ?", keys)
                nb, ns = DELIVERIES[how]
                counts[nb], counts[ns] = counts.get(nb, 0) + batches, counts.get(ns, 0) + samples
                self._db.executemany("INSERT INTO counters VALUES (?, ?) "
                                     "ON CONFLICT(name) DO UPDATE SET value = excluded.value", [
                                         (k, v) for k, v in counts.items() if self._saved.get(k) != v])
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            self._bytes -= freed
            self._saved = counts
            with self._mem:
                self._counts[nb] = self._counts.get(nb, 0) + batches
                self._counts[ns] = self._counts.get(ns, 0) + samples

    def depth(self) -> tuple[int, int, int | None]:
        """(batches, samples, oldest created_ms) waiting for delivery."""
        with self._lock:
            n, s, oldest = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(samples), 0), MIN(created_ms) FROM batches"
            ).fetchone()
        return int(n), int(s), oldest

    def last_seq(self) -> int:
        """The last sequence number handed out (0 for a new buffer)."""
        with self._mem:
            return self._next - 1

    def counter(self, name: str) -> int:
        """A total since the file was made (names in LOSSES, WRITE_FAILURES)."""
        with self._mem:
            return self._counts.get(name, 0)

    def losses(self) -> dict[str, int]:
        """Samples dropped, ever, by cause (LOSSES)."""
        with self._mem:
            return {cause: self._counts.get(s, 0) for cause, (s, _b) in LOSSES.items()}

    def dropped(self) -> int:
        """Samples dropped, ever, whatever the cause: polled but never to be delivered."""
        return sum(self.losses().values())

    def dropped_batches(self) -> int:
        """Batches dropped, ever: each is a seq the platform will never get (a gap it counts)."""
        with self._mem:
            return sum(self._counts.get(b, 0) for _s, b in LOSSES.values())

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def close(self) -> None:
        with self._lock:
            self._db.close()
