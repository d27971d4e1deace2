"""Housekeeping that runs beside ingest: rollups, partitions ahead of time, retention, compression.

One worker of a group does it (the rollup refresh takes an advisory lock on PostgreSQL, so running
it in several is harmless, only wasted). A failing database is logged and tried again next round;
it never stops ingest.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from ingest.store import Store, StoreError
from ingest.store.base import Retention
from parkmon.common.clock import now_ms as clock_now_ms
from parkmon.common.outage import Outage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MaintenanceConfig:
    rollup_every_s: float = 30.0
    retention: Retention = field(default_factory=Retention)
    retention_every_s: float = 3600.0
    # TimescaleDB: compress raw readings this old (None: never), in the retention round; late readings
    # still go into compressed chunks and the next round recompresses them
    compress_after_days: float | None = 30.0


class Maintenance:
    def __init__(self, store: Store, config: MaintenanceConfig | None = None) -> None:
        self.store = store
        self.config = config or MaintenanceConfig()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ingest-maintenance", daemon=True)
        self._last_retention = 0.0
        self._outage = Outage(log, "maintenance")  # a database outage: two log lines, not one a round
        self.rounds = 0

    def run_once(self, now_ms: int | None = None, retention: bool = True) -> dict[str, int]:
        now_ms = clock_now_ms() if now_ms is None else now_ms
        done: dict[str, int] = {"partitions_created": len(self.store.prepare(now_ms)),
                                "rollup_ranges": self.store.refresh_rollups()}
        if retention:
            done.update(self.store.apply_retention(self.config.retention, now_ms))
            if self.config.compress_after_days is not None:  # after retention: nothing compressed only to go
                cutoff = now_ms - int(self.config.compress_after_days * 86_400_000)
                compressed = self.store.compress_raw_before(cutoff)
                if compressed is not None:  # None: a back end without compression
                    done["readings_chunks_compressed"] = compressed
        return done

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _loop(self) -> None:
        while not self._stop.wait(self.config.rollup_every_s if self.rounds else 1.0):
            due = time.monotonic() - self._last_retention >= self.config.retention_every_s
            try:
                done = self.run_once(retention=due)
            except StoreError as exc:  # postponed to the next round
                self._outage.failed(exc)
                continue
            except Exception:  # a bug here must not take ingest down
                log.exception("maintenance round failed")
                continue
            self._outage.ok()
            if due:
                self._last_retention = time.monotonic()
            self.rounds += 1
            if any(done.values()):
                log.info("maintenance: %s", ", ".join(f"{k} {v}" for k, v in done.items() if v))
