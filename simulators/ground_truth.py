"""The ground-truth log: what every simulated meter held at every tick, and a reader for tests.

``value`` is the exact physical quantity; ``register_value`` is what the registers represented
after scaling, rounding, wrapping and float32 — what a correct Modbus reader must report (NULL
while the point shows its sentinel). ``fault`` is the device's injected fault at that tick.
The ``balance`` table holds each enterprise's power flows per tick (kW), the reference for the
new-energy share. Append-only SQLite in WAL mode, so a reader can follow a running park.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from simulators.park import BALANCE_FIELDS

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS ticks (
    wall_ms INTEGER NOT NULL, sim_ms INTEGER NOT NULL, enterprise TEXT NOT NULL, device TEXT NOT NULL,
    point TEXT NOT NULL, value REAL NOT NULL, register_value REAL, fault TEXT
);
CREATE INDEX IF NOT EXISTS ticks_point ON ticks (enterprise, device, point, wall_ms);
CREATE TABLE IF NOT EXISTS balance (
    wall_ms INTEGER NOT NULL, sim_ms INTEGER NOT NULL, dt_s REAL NOT NULL, enterprise TEXT NOT NULL,
    {", ".join(f'"{f}" REAL NOT NULL' for f in BALANCE_FIELDS)}
);
CREATE INDEX IF NOT EXISTS balance_ent ON balance (enterprise, wall_ms);
CREATE TABLE IF NOT EXISTS run (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# wall_ms, sim_ms, enterprise, device, point, value, register_value, fault
Row = tuple[int, int, str, str, str, float, float | None, str | None]
# wall_ms, sim_ms, dt_s, enterprise, *BALANCE_FIELDS
BalanceRow = tuple[Any, ...]


class GroundTruthWriter:
    def __init__(self, path: str | Path, run_info: dict[str, Any] | None = None) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")  # a test oracle, not a record of account
        self._db.executescript(_SCHEMA)
        if run_info:
            self._db.executemany("INSERT OR REPLACE INTO run VALUES (?, ?)",
                                 [(k, json.dumps(v, ensure_ascii=False)) for k, v in run_info.items()])
        self._db.commit()

    def write(self, rows: list[Row], balances: list[BalanceRow] | None = None) -> None:
        self._db.executemany("INSERT INTO ticks VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        if balances:
            marks = ", ".join("?" * (4 + len(BALANCE_FIELDS)))
            self._db.executemany(f"INSERT INTO balance VALUES ({marks})", balances)
        self._db.commit()

    def close(self) -> None:
        self._db.close()


class GroundTruth:
    """Read the log. Times are wall-clock epoch milliseconds (when the registers changed)."""

    def __init__(self, path: str | Path) -> None:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no ground-truth log at {path}; start the park with ground_truth_path")
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    def values(self, enterprise: str, device: str, point: str, start_ms: int = 0,
               end_ms: int = 2**62) -> list[tuple[int, float, float | None]]:
        """(wall_ms, exact value, register value) of every tick in [start, end)."""
        rows = self._db.execute(
            "SELECT wall_ms, value, register_value FROM ticks WHERE enterprise=? AND device=? AND point=? "
            "AND wall_ms >= ? AND wall_ms < ? ORDER BY wall_ms, sim_ms", (enterprise, device, point, start_ms, end_ms))
        return [(int(w), float(v), r) for w, v, r in rows]

    def rows(self, enterprise: str, device: str, point: str) -> list[Row]:
        """Every column of every tick of one point, in tick order."""
        return [tuple(r) for r in self._db.execute(
            "SELECT * FROM ticks WHERE enterprise=? AND device=? AND point=? ORDER BY sim_ms",
            (enterprise, device, point))]

    def value_at(self, enterprise: str, device: str, point: str, wall_ms: int) -> float | None:
        """The exact value of the last tick at or before ``wall_ms`` (None before the first)."""
        row = self._db.execute(
            "SELECT value FROM ticks WHERE enterprise=? AND device=? AND point=? AND wall_ms <= ? "
            "ORDER BY wall_ms DESC, sim_ms DESC LIMIT 1", (enterprise, device, point, wall_ms)).fetchone()
        return None if row is None else float(row[0])

    def counter_delta(self, enterprise: str, device: str, point: str, start_ms: int, end_ms: int) -> float | None:
        """What a totaliser accrued between two wall times (exact values; a meter reset shows as negative)."""
        a = self.value_at(enterprise, device, point, start_ms)
        b = self.value_at(enterprise, device, point, end_ms)
        return None if a is None or b is None else b - a

    def balances(self, enterprise: str, start_ms: int = 0, end_ms: int = 2**62) -> list[dict[str, float]]:
        """Per tick power flows of one enterprise (kW; soc in %), with wall_ms, sim_ms and dt_s."""
        cur = self._db.execute("SELECT * FROM balance WHERE enterprise=? AND wall_ms >= ? AND wall_ms < ? "
                               "ORDER BY sim_ms", (enterprise, start_ms, end_ms))
        names = [c[0] for c in cur.description]
        return [{k: v for k, v in zip(names, r, strict=True) if k != "enterprise"} for r in cur]

    def run_info(self) -> dict[str, Any]:
        """How the park was run: seed, speed, tick_s, sim_start_ms, definition."""
        return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM run")}

    def points(self) -> list[tuple[str, str, str]]:
        return [(e, d, p) for e, d, p in self._db.execute(
            "SELECT DISTINCT enterprise, device, point FROM ticks ORDER BY 1, 2, 3")]

    def span(self) -> tuple[int, int]:
        lo, hi = self._db.execute("SELECT MIN(wall_ms), MAX(wall_ms) FROM ticks").fetchone()
        if lo is None:
            raise ValueError("the ground-truth log has no ticks yet")
        return int(lo), int(hi)

    def close(self) -> None:
        self._db.close()
