"""The storage seam: what ingest, analytics and the API need from a store, and its records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from sqlalchemy import Engine

from ingest.store.rollups import CounterStep, CounterTotal, RollupRow
from parkmon.common import wire

UnknownPointPolicy = Literal["register", "quarantine"]


@dataclass(frozen=True, slots=True)
class IncomingBatch:
    park: str
    enterprise: str
    gateway: str
    batch: wire.Batch
    received_ms: int


@dataclass(slots=True)
class WriteResult:
    inserted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    replayed_batches: int = 0


@dataclass(frozen=True, slots=True)
class ParkInfo:
    key: str
    name_zh: str
    name_en: str
    park_class: str
    region: str


@dataclass(frozen=True, slots=True)
class PointInfo:
    id: int
    key: str
    park: str
    enterprise: str
    device: str
    point: str
    metric: str | None
    unit: str
    kind: str
    label: str


@dataclass(frozen=True, slots=True)
class LatestReading:
    point: str
    metric: str | None
    unit: str
    label: str
    ts_ms: int
    value: float | None
    quality: int


@dataclass(frozen=True, slots=True)
class GatewayInfo:
    enterprise: str
    gateway: str
    online: bool
    status_ms: int | None
    health_ms: int | None
    health_json: str | None  # the agent's latest wire.Health


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    received_ms: int
    topic: str
    payload: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class GatewayCompleteness:
    """How many of a gateway's batches arrived: ``expected`` counts the sequence numbers between the
    batches received (a gap of k missing seqs adds k); a seq that goes backwards (a gateway whose
    buffer was wiped) starts counting afresh. ``day_ms`` is the start of the UTC+8 day, or None for
    a whole window."""

    park: str
    enterprise: str
    gateway: str
    received: int  # distinct batches sent in the window
    expected: int  # what the sequence numbers say should have arrived
    day_ms: int | None = None
    samples: int = 0

    @property
    def ratio(self) -> float:
        return self.received / self.expected if self.expected else 0.0


Series = dict[int, list[tuple[int, float | None, int]]]


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each kind of data is kept, in days; None keeps it forever. Raw readings on
    partitioned PostgreSQL go a whole month at a time (a month is dropped once all of it is older)."""

    raw_days: int | None = None
    rollup_1m_days: int | None = None
    rollup_1h_days: int | None = None
    rollup_1d_days: int | None = None
    batches_days: int | None = None  # gateway_batches: the completeness record


@dataclass(frozen=True, slots=True)
class MirrorRow:
    """One sample as a mirror receives it: named, not by registry id."""

    park: str
    enterprise: str
    device: str
    point: str
    ts_ms: int
    value: float | None
    quality: int


class ReadingsMirror(Protocol):
    """A second home for readings (e.g. a site's InfluxDB). Written inside the store's transaction,
    before commit: if the mirror fails with :class:`StoreError`, nothing commits and nothing is acked,
    so the mirror misses nothing; mirrors must be idempotent on (point, ts) like the store."""

    name: str

    def write(self, rows: Sequence[MirrorRow]) -> None: ...
    def close(self) -> None: ...


class StoreError(RuntimeError):
    """The database failed (down, full, timed out): transient, ingest retries and does not ack."""


class Store(Protocol):
    url: str
    # for the storage layer's own repositories (records, alerts, tokens …); nothing outside ingest/store
    # reaches it (tests/test_house.py)
    engine: Engine

    def create_schema(self) -> None: ...
    def upsert_park(self, key: str, name_zh: str, name_en: str, park_class: str, region: str = "") -> None: ...
    def upsert_meta(self, park: str, enterprise: str, gateway: str, meta: wire.Meta) -> None: ...
    def write_batches(self, items: Sequence[IncomingBatch]) -> WriteResult: ...
    def import_readings(self, park: str, rows: Sequence[tuple[str, int, float | None, int]],
                        metrics: dict[str, str] | None = None) -> WriteResult: ...
    def dead_letter(self, topic: str, payload: bytes, reason: str, received_ms: int) -> None: ...
    def dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...
    def set_gateway_status(self, park: str, enterprise: str, gateway: str, online: bool, at_ms: int) -> None: ...
    def set_gateway_health(self, park: str, enterprise: str, gateway: str, at_ms: int, body: str) -> None: ...
    def gateways(self, park: str) -> list[GatewayInfo]: ...
    def parks(self) -> list[ParkInfo]: ...
    def points(self, park: str, metrics: Sequence[str] | None = None,
               enterprise: str | None = None) -> list[PointInfo]: ...
    def latest(self, park: str, enterprise: str, device: str) -> list[LatestReading]: ...
    def readings(self, point_ids: Sequence[int], start_ms: int, end_ms: int) -> Series: ...
    def completeness(self, park: str, start_ms: int, end_ms: int,
                     daily: bool = False) -> list[GatewayCompleteness]: ...
    def refresh_rollups(self) -> int: ...
    def rollups(self, point_ids: Sequence[int], start_ms: int, end_ms: int,
                width: str) -> dict[int, list[RollupRow]]: ...
    def counter_steps(self, groups: dict[int, int], start_ms: int, end_ms: int, width: str,
                      bin_ms: int | None = None, contiguous: bool = True,
                      jitter: float = 1e-6) -> list[CounterStep]: ...
    def counter_totals(self, point_ids: Sequence[int], start_ms: int, end_ms: int, width: str,
                       jitter: float = 1e-6) -> list[CounterTotal]: ...
    def rollup_backlog_from(self) -> int | None: ...
    def apply_retention(self, retention: Retention, now_ms: int) -> dict[str, int]: ...
    def compress_raw_before(self, cutoff_ms: int) -> int | None: ...
    def prepare(self, now_ms: int) -> list[str]: ...
    def count_readings(self) -> int: ...
    def ping(self) -> None: ...
    def close(self) -> None: ...
