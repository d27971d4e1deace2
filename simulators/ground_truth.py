"""The ground-truth log: what every simulated meter held at every tick, and a reader for tests.

``value`` is the exact physical quantity; ``register_value`` is what the registers represented
after scaling, rounding and float32 — what a correct Modbus reader must report.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ticks (
    wall_ms INTEGER NOT NULL, sim_ms INTEGER NOT NULL, enterprise TEXT NOT NULL, device TEXT NOT NULL,
    point TEXT NOT NULL, value REAL NOT NULL, register_value REAL
);
CREATE INDEX IF NOT EXISTS ticks_point ON ticks (enterprise, device, point, wall_ms);
"""

Row = tuple[int, int, str, str, str, float, float | None]


class GroundTruthWriter:
    def __init__(self, path: str | Path) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")  # a test log, not a record of account
        self._db.executescript(_SCHEMA)

    def write(self, rows: list[Row]) -> None:
        self._db.executemany("INSERT INTO ticks VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        self._db.commit()

    def close(self) -> None:
        self._db.close()


class GroundTruth:
    def __init__(self, path: str | Path) -> None:
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    def values(self, enterprise: str, device: str, point: str, start_ms: int = 0,
               end_ms: int = 2**62) -> list[tuple[int, float, float | None]]:
        """(wall_ms, exact value, register value) of every tick in [start, end)."""
        rows = self._db.execute(
            "SELECT wall_ms, value, register_value FROM ticks WHERE enterprise=? AND device=? AND point=? "
            "AND wall_ms >= ? AND wall_ms < ? ORDER BY wall_ms", (enterprise, device, point, start_ms, end_ms))
        return [(int(w), float(v), r) for w, v, r in rows]

    def value_at(self, enterprise: str, device: str, point: str, wall_ms: int) -> float | None:
        row = self._db.execute(
            "SELECT value FROM ticks WHERE enterprise=? AND device=? AND point=? AND wall_ms <= ? "
            "ORDER BY wall_ms DESC LIMIT 1", (enterprise, device, point, wall_ms)).fetchone()
        return None if row is None else float(row[0])

    def counter_delta(self, enterprise: str, device: str, point: str, start_ms: int, end_ms: int) -> float | None:
        a = self.value_at(enterprise, device, point, start_ms)
        b = self.value_at(enterprise, device, point, end_ms)
        return None if a is None or b is None else b - a

    def points(self) -> list[tuple[str, str, str]]:
        return [(e, d, p) for e, d, p in self._db.execute(
            "SELECT DISTINCT enterprise, device, point FROM ticks ORDER BY 1, 2, 3")]

    def span(self) -> tuple[int, int]:
        lo, hi = self._db.execute("SELECT MIN(wall_ms), MAX(wall_ms) FROM ticks").fetchone()
        return int(lo), int(hi)

    def close(self) -> None:
        self._db.close()
