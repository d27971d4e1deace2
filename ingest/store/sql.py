"""The SQL store shared by SQLite and PostgreSQL; back ends differ only in how rows go in fast.

Everything a batch of MQTT messages brings is written in one transaction: registry rows it
needs, the (gateway, seq) record and the readings. Ingest acknowledges the messages only after
that commit, so a crash at any instant loses nothing and a redelivery changes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError

from ingest.store import migrate, rollups
from ingest.store import schema as s
from ingest.store.base import (
    IncomingBatch,
    MirrorRow,
    ReadingsMirror,
    Retention,
    StoreError,
    UnknownPointPolicy,
    WriteResult,
)
from ingest.store.sql_reads import SqlReads
from ingest.store.sql_tx import Transaction
from parkmon.common import wire
from parkmon.common.metrics import get as get_metric

Row = tuple[int, int, float | None, int]
PARK_CLASSES = ("low_carbon", "zero_carbon", "none")  # 低碳园区 / 零碳园区 / neither


class SqlStore(SqlReads):
    """Back ends set ``engine`` and implement :meth:`_insert_readings`."""

    engine: Engine

    def __init__(self, url: str, unknown_points: UnknownPointPolicy = "register",
                 mirrors: Sequence[ReadingsMirror] = ()) -> None:
        self.url = url
        self.unknown_points = unknown_points
        self.mirrors = list(mirrors)
        # registry ids, cached: the hot path must not query the registry per sample
        self._ids: dict[tuple[str, ...], int] = {}
        self._pmaps: dict[tuple[str, str], dict[str, int]] = {}  # (park, enterprise) -> "dev.pt" -> id
        self._reload_ids = False
        self._lock = threading.Lock()

    # ---- back-end specific -------------------------------------------------------------
    def _insert_readings(self, conn: Connection, rows: list[Row]) -> int:
        raise NotImplementedError

    # ---- schema and registry -------------------------------------------------------------
    def create_schema(self) -> None:
        """Create or upgrade the schema to the newest Alembic revision (safe to call on every start)."""
        migrate.upgrade(self.engine)
        self._load_point_ids()

    def _load_point_ids(self, conn: Connection | None = None) -> None:
        """All point ids in one query instead of one per point at first sight (a large park has tens
        of thousands); ``conn``: inside the caller's transaction (which holds the lock)."""
        q = (select(s.points.c.key, s.points.c.id, s.parks.c.key.label("park"), s.enterprises.c.key.label("ent"))
             .join(s.devices, s.points.c.device_id == s.devices.c.id)
             .join(s.enterprises, s.devices.c.enterprise_id == s.enterprises.c.id)
             .join(s.parks, s.enterprises.c.park_id == s.parks.c.id))
        if conn is None:
            with self.engine.connect() as c, self._lock:
                self._fill_point_ids(c.execute(q).all())
        else:
            self._fill_point_ids(conn.execute(q).all())

    def _fill_point_ids(self, rows: Sequence[Any]) -> None:
        for key, pid, park, ent in rows:
            self._ids[("pt", key)] = int(pid)
            prefix = len(park) + len(ent) + 2
            self._pmaps.setdefault((park, ent), {})[key[prefix:]] = int(pid)
        self._reload_ids = False

    def _record_batches(self, conn: Connection, records: list[dict[str, Any]]) -> int:
        """Insert the (gateway, seq) records in one statement; returns how many were new."""
        ins = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(s.gateway_batches)
        stmt = ins.on_conflict_do_nothing(index_elements=["gateway_id", "seq"]).returning(s.gateway_batches.c.seq)
        return len(conn.execute(stmt, records).all())

    def _get_or_create(self, conn: Connection | None, cache_key: tuple[str, ...], table: Any,
                       match: dict[str, Any], extra: dict[str, Any] | None = None) -> int:
        if cache_key in self._ids:
            return self._ids[cache_key]
        if conn is None:
            raise _NeedRegistry
        cond = and_(*(table.c[k] == v for k, v in match.items()))
        found = conn.execute(select(table.c.id).where(cond)).scalar()
        if found is None:
            found = self._insert_or_find(conn, table, {**match, **(extra or {})}, list(match), cond)
        self._ids[cache_key] = int(found)
        return int(found)

    def _insert_or_find(self, conn: Connection, table: Any, values: dict[str, Any], keys: list[str],
                        cond: Any) -> int:
        """Insert a registry row; if another worker inserted it first, take theirs (no unique-key error)."""
        ins = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)
        got = conn.execute(ins.values(**values).on_conflict_do_nothing(index_elements=keys)
                           .returning(table.c.id)).scalar()
        if got is None:
            got = conn.execute(select(table.c.id).where(cond)).scalar_one()
        return int(got)

    def _park_id(self, conn: Connection | None, park: str) -> int:
        return self._get_or_create(conn, ("park", park), s.parks, {"key": park}, {"name_zh": park, "name_en": park})

    def _enterprise_id(self, conn: Connection | None, park: str, ent: str) -> int:
        pid = self._park_id(conn, park)
        return self._get_or_create(conn, ("ent", park, ent), s.enterprises, {"park_id": pid, "key": ent},
                                   {"name": ent})

    def _gateway_id(self, conn: Connection | None, park: str, ent: str, gw: str) -> int:
        eid = self._enterprise_id(conn, park, ent)
        return self._get_or_create(conn, ("gw", park, ent, gw), s.gateways, {"enterprise_id": eid, "key": gw})

    def _device_id(self, conn: Connection | None, park: str, ent: str, dev: str) -> int:
        eid = self._enterprise_id(conn, park, ent)
        return self._get_or_create(conn, ("dev", park, ent, dev), s.devices, {"enterprise_id": eid, "key": dev})

    def _point_id(self, conn: Connection | None, park: str, ent: str, sample_key: str) -> int | None:
        full = f"{park}.{ent}.{sample_key}"
        cached = self._ids.get(("pt", full))
        if cached is not None:
            self._pmaps.setdefault((park, ent), {})[sample_key] = cached
            return cached
        if conn is None:
            raise _NeedRegistry
        found = conn.execute(select(s.points.c.id).where(s.points.c.key == full)).scalar()
        if found is None:
            if self.unknown_points != "register":
                return None
            dev, _, name = sample_key.partition(".")
            did = self._device_id(conn, park, ent, dev)
            found = self._insert_or_find(conn, s.points, {"device_id": did, "key": full, "name": name}, ["key"],
                                         s.points.c.key == full)
        self._ids[("pt", full)] = int(found)
        self._pmaps.setdefault((park, ent), {})[sample_key] = int(found)
        return int(found)

    def upsert_park(self, key: str, name_zh: str, name_en: str, park_class: str, region: str = "") -> None:
        if park_class not in PARK_CLASSES:
            raise ValueError(f"park {key!r}: park_class {park_class!r} is not one of {', '.join(PARK_CLASSES)}")
        with self._tx() as conn:
            pid = self._park_id(conn, key)
            conn.execute(s.parks.update().where(s.parks.c.id == pid).values(
                name_zh=name_zh, name_en=name_en, park_class=park_class, region=region))

    def upsert_meta(self, park: str, enterprise: str, gateway: str, meta: wire.Meta) -> None:
        with self._tx() as conn:
            self._gateway_id(conn, park, enterprise, gateway)
            for dev, name in meta.devices.items():
                did = self._device_id(conn, park, enterprise, dev)
                conn.execute(s.devices.update().where(s.devices.c.id == did).values(name=name))
            for key, pm in meta.points.items():
                pid = self._point_id_registering(conn, park, enterprise, key)
                conn.execute(s.points.update().where(s.points.c.id == pid).values(
                    metric=pm.metric, unit=pm.unit, kind=pm.kind, label=pm.name))

    def _point_id_registering(self, conn: Connection, park: str, ent: str, key: str) -> int:
        policy, self.unknown_points = self.unknown_points, "register"
        try:
            pid = self._point_id(conn, park, ent, key)
        finally:
            self.unknown_points = policy
        assert pid is not None
        return pid

    # ---- the hot path -------------------------------------------------------------------------
    def write_batches(self, items: Sequence[IncomingBatch]) -> WriteResult:
        """Write batches in one transaction; safe to call from several threads at once (each its own
        connection): ids are resolved under the store's lock - registering anything new in a short
        transaction of its own, committed first - and the data transaction runs without it."""
        with self._lock:
            try:
                prep = self._prepare(None, items)  # everything cached: no database round trip
            except _NeedRegistry:
                prep = None
        if prep is None:
            with self._tx() as reg:
                prep = self._prepare(reg, items)
        result = WriteResult()
        with Transaction(self, registry=False) as conn:
            # still written (idempotently) when seen before: a gateway whose buffer was wiped reuses seqs
            result.replayed_batches = len(prep.batches) - self._record_batches(conn, prep.batches)
            if prep.quarantined:
                conn.execute(s.quarantine.insert(), prep.quarantined)
            inserted = self._insert_readings(conn, prep.rows) if prep.rows else 0
            if inserted:
                self._mark_dirty(conn, prep.dirty)
            for mirror in self.mirrors:  # before commit: a failing mirror holds the ack back
                mirror.write(prep.mirrored)
        result.inserted = inserted
        result.duplicates = len(prep.rows) - inserted
        result.quarantined = len(prep.quarantined)
        return result

    def import_readings(self, park: str, rows: Sequence[tuple[str, int, float | None, int]],
                        metrics: dict[str, str] | None = None) -> WriteResult:
        """Historical readings from a file (no gateway, so no batch records): ``rows`` are
        (``enterprise.device.point``, ts ms, value, quality); points are registered as needed and
        ``metrics`` (point -> metric) names them. Idempotent like every write; rollups follow."""
        by_ent: dict[str, list[tuple[str, int, float | None, int]]] = {}
        for key, ts, v, q in rows:
            ent, _, rest = key.partition(".")
            by_ent.setdefault(ent, []).append((rest, ts, v, q))
        out: list[Row] = []
        dirty: dict[int, set[int]] = {}
        with self._tx() as reg:  # the registry transaction holds the store's lock
            for ent, samples in by_ent.items():
                eid = self._enterprise_id(reg, park, ent)
                for rest in {k for k, *_ in samples}:
                    pid = self._point_id_registering(reg, park, ent, rest)
                    metric = (metrics or {}).get(f"{ent}.{rest}")
                    if metric:
                        m = get_metric(metric)
                        reg.execute(s.points.update().where(s.points.c.id == pid).values(
                            metric=m.name, unit=m.unit, kind=m.kind.value))
                pmap = self._pmaps[(park, ent)]
                out.extend((pmap[k], ts, v, q) for k, ts, v, q in samples)
                dirty.setdefault(eid, set()).update(ts // rollups.MINUTE_MS for _k, ts, _v, _q in samples)
        result = WriteResult()
        with Transaction(self, registry=False) as conn:
            result.inserted = self._insert_readings(conn, out) if out else 0
            if result.inserted:
                self._mark_dirty(conn, dirty)
        result.duplicates = len(out) - result.inserted
        return result

    def _mark_dirty(self, conn: Connection, dirty: dict[int, set[int]]) -> None:
        """Log the minutes written, per enterprise, in the writing transaction: the rollups' to-do list."""
        conn.execute(s.rollup_dirty.insert(), [
            {"enterprise_id": eid, "from_ms": lo, "to_ms": hi}
            for eid, minutes in dirty.items() for lo, hi in rollups.minute_runs(minutes)])

    def _prepare(self, conn: Connection | None, items: Sequence[IncomingBatch]) -> _Prepared:
        """Rows by point id, batch records, touched minutes. ``conn`` None: from the caches alone
        (raises _NeedRegistry at the first miss); else a registry transaction that fills them."""
        if self._reload_ids:
            if conn is None:
                raise _NeedRegistry
            self._load_point_ids(conn)
        prep = _Prepared()
        for item in items:
            gid = self._gateway_id(conn, item.park, item.enterprise, item.gateway)
            eid = self._enterprise_id(conn, item.park, item.enterprise)
            b = item.batch
            prep.batches.append({"gateway_id": gid, "seq": b.seq, "received_ms": item.received_ms,
                                 "samples": len(b.samples), "sent_ms": b.sent})
            rollups.touched(prep.dirty.setdefault(eid, set()), b.samples)
            pmap = self._pmaps.setdefault((item.park, item.enterprise), {})
            try:  # the common case, every point known: one comprehension, no call per sample
                prep.rows.extend([(pmap[k], ts, v, q) for k, ts, v, q in b.samples])
            except KeyError:
                for key, ts, value, q in b.samples:
                    pid = self._point_id(conn, item.park, item.enterprise, key)
                    if pid is None:
                        prep.quarantined.append({
                            "received_ms": item.received_ms, "ts_ms": ts, "value": value, "quality": q,
                            "point_key": f"{item.park}.{item.enterprise}.{key}",
                            "reason": "unknown point: no gateway catalogue (meta) announced it (policy: quarantine)"})
                    else:
                        prep.rows.append((pid, ts, value, q))
            if self.mirrors:
                for key, ts, value, q in b.samples:
                    if key in pmap:
                        dev, _, name = key.partition(".")
                        prep.mirrored.append(MirrorRow(item.park, item.enterprise, dev, name, ts, value, q))
        return prep

    def _tx(self) -> Any:
        return Transaction(self)

    def _forget_ids(self) -> None:
        # ids cached inside a rolled-back transaction may not exist: drop them all, reload in one query
        self._ids.clear()
        self._pmaps.clear()
        self._reload_ids = True

    # ---- dead letters and status -------------------------------------------------------------
    def dead_letter(self, topic: str, payload: bytes, reason: str, received_ms: int,
                    keep_bytes: int = 64 * 1024) -> None:
        """Keep a refused payload's first ``keep_bytes`` only (five garbage payloads of 20 MB once made 126 MB of
        database), and then its whole size and SHA-256 in the reason (no migration; whoever reads reasons sees it)."""
        if len(payload) > keep_bytes:
            import hashlib  # here, not at the top: this method is all this change touches in the module
            digest = hashlib.sha256(payload).hexdigest()
            reason = f"{reason} [payload cut: {len(payload)} bytes, sha256 {digest}; the first {keep_bytes} kept]"
            payload = payload[:keep_bytes]
        with self._tx() as conn:
            conn.execute(s.dead_letters.insert().values(
                topic=topic, payload=payload, reason=reason, received_ms=received_ms))

    def set_gateway_status(self, park: str, enterprise: str, gateway: str, online: bool, at_ms: int) -> None:
        with self._tx() as conn:
            gid = self._gateway_id(conn, park, enterprise, gateway)
            gw = s.gateways  # never let an older status (another writer's, or redelivered) win
            conn.execute(gw.update().where(gw.c.id == gid, or_(gw.c.status_ms.is_(None), gw.c.status_ms <= at_ms))
                         .values(online=online, status_ms=at_ms))

    def set_gateway_health(self, park: str, enterprise: str, gateway: str, at_ms: int, body: str) -> None:
        with self._tx() as conn:
            gid = self._gateway_id(conn, park, enterprise, gateway)
            gh = s.gateway_health
            updated = conn.execute(gh.update().where(gh.c.gateway_id == gid, gh.c.at_ms <= at_ms)
                                   .values(at_ms=at_ms, body=body))
            if updated.rowcount == 0 and conn.execute(select(gh.c.at_ms).where(gh.c.gateway_id == gid)).first() is None:
                conn.execute(gh.insert().values(gateway_id=gid, at_ms=at_ms, body=body))

    # ---- reads -------------------------------------------------------------------------------

    # ---- rollups, partitions, retention --------------------------------------------------------
    def prepare(self, now_ms: int) -> list[str]:
        """Get ready for the coming writes (PostgreSQL: this month's and next month's partitions)."""
        return []

    def refresh_rollups(self) -> int:
        """Bring the 1 min / 1 h / 1 day rollups up to date with everything written; returns how
        many dirty records it consumed (0: nothing to do)."""
        total = 0
        # not under the store's lock (registry=False): the refresh caches no ids, and holding the lock
        # stopped every writer of the process for the whole refresh, each 30 s (bench/ingest_pg.py)
        with Transaction(self, registry=False) as conn:
            upto = rollups.newest_dirty(conn)  # what is written from now on waits for the next round
        while upto is not None:
            with Transaction(self, registry=False) as conn:
                n = rollups.refresh(conn, upto)
            total += n
            if n == 0:
                break
        return total

    def _drop_raw_before(self, conn: Connection, cutoff_ms: int) -> tuple[str, int]:
        return "readings", int(conn.execute(s.readings.delete().where(s.readings.c.ts < cutoff_ms)).rowcount)

    def compress_raw_before(self, cutoff_ms: int) -> int | None:
        return None  # chunks compressed: None where the back end cannot (only TimescaleDB can, postgres.py)

    def apply_retention(self, retention: Retention, now_ms: int) -> dict[str, int]:
        """Delete what the policy no longer keeps; returns rows (or partitions) removed per table."""
        removed: dict[str, int] = {}
        day = rollups.DAY_MS
        with self._tx() as conn:
            if retention.raw_days is not None:
                what, n = self._drop_raw_before(conn, now_ms - retention.raw_days * day)
                removed[what] = n
            for width, days in (("1m", retention.rollup_1m_days), ("1h", retention.rollup_1h_days),
                                ("1d", retention.rollup_1d_days)):
                if days is not None:
                    t = s.metadata.tables[rollups.LEVELS[width].table]
                    removed[t.name] = int(conn.execute(t.delete().where(t.c.bucket < now_ms - days * day)).rowcount)
            if retention.batches_days is not None:
                gb = s.gateway_batches
                removed["gateway_batches"] = int(conn.execute(gb.delete().where(
                    func.coalesce(gb.c.sent_ms, gb.c.received_ms) < now_ms - retention.batches_days * day)).rowcount)
        return removed

    def ping(self) -> None:
        """Raise StoreError unless the database answers (cheap: used between retries)."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except DBAPIError as exc:
            raise StoreError(f"database unavailable: {exc.orig or exc}") from exc

    def close(self) -> None:
        for mirror in self.mirrors:
            mirror.close()
        self.engine.dispose()


class _NeedRegistry(Exception):
    """A cache miss while resolving ids without a database connection."""


@dataclass
class _Prepared:
    rows: list[Row] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)
    dirty: dict[int, set[int]] = field(default_factory=dict)  # enterprise -> minutes touched (rollups)
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    mirrored: list[MirrorRow] = field(default_factory=list)
