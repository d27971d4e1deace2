"""The SQL store shared by SQLite and PostgreSQL; back ends differ only in how rows go in fast.

Everything a batch of MQTT messages brings is written in one transaction: registry rows it
needs, the (gateway, seq) record and the readings. Ingest acknowledges the messages only after
that commit, so a crash at any instant loses nothing and a redelivery changes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from parkmon import wire

from .. import schema as s
from .base import (
    DeadLetter,
    GatewayCompleteness,
    GatewayInfo,
    IncomingBatch,
    LatestReading,
    MirrorRow,
    ParkInfo,
    PointInfo,
    ReadingsMirror,
    Series,
    StoreError,
    UnknownPointPolicy,
    WriteResult,
)

Row = tuple[int, int, float | None, int]
PARK_CLASSES = ("low_carbon", "zero_carbon", "none")  # 低碳园区 / 零碳园区 / neither


class SqlStore:
    """Back ends set ``engine`` and implement :meth:`_insert_readings`."""

    engine: Engine

    def __init__(self, url: str, unknown_points: UnknownPointPolicy = "register",
                 mirrors: Sequence[ReadingsMirror] = ()) -> None:
        self.url = url
        self.unknown_points = unknown_points
        self.mirrors = list(mirrors)
        # registry ids, cached: the hot path must not query the registry per sample
        self._ids: dict[tuple[str, ...], int] = {}
        self._lock = threading.Lock()

    # ---- back-end specific -------------------------------------------------------------
    def _insert_readings(self, conn: Connection, rows: list[Row]) -> int:
        raise NotImplementedError

    # ---- schema and registry -------------------------------------------------------------
    def create_schema(self) -> None:
        s.metadata.create_all(self.engine)

    def _get_or_create(self, conn: Connection, cache_key: tuple[str, ...], table: Any,
                       match: dict[str, Any], extra: dict[str, Any] | None = None) -> int:
        if cache_key in self._ids:
            return self._ids[cache_key]
        cond = and_(*(table.c[k] == v for k, v in match.items()))
        found = conn.execute(select(table.c.id).where(cond)).scalar()
        if found is None:
            found = conn.execute(table.insert().values(**match, **(extra or {})).returning(table.c.id)).scalar_one()
        self._ids[cache_key] = int(found)
        return int(found)

    def _park_id(self, conn: Connection, park: str) -> int:
        return self._get_or_create(conn, ("park", park), s.parks, {"key": park}, {"name_zh": park, "name_en": park})

    def _enterprise_id(self, conn: Connection, park: str, ent: str) -> int:
        pid = self._park_id(conn, park)
        return self._get_or_create(conn, ("ent", park, ent), s.enterprises, {"park_id": pid, "key": ent},
                                   {"name": ent})

    def _gateway_id(self, conn: Connection, park: str, ent: str, gw: str) -> int:
        eid = self._enterprise_id(conn, park, ent)
        return self._get_or_create(conn, ("gw", park, ent, gw), s.gateways, {"enterprise_id": eid, "key": gw})

    def _device_id(self, conn: Connection, park: str, ent: str, dev: str) -> int:
        eid = self._enterprise_id(conn, park, ent)
        return self._get_or_create(conn, ("dev", park, ent, dev), s.devices, {"enterprise_id": eid, "key": dev})

    def _point_id(self, conn: Connection, park: str, ent: str, sample_key: str) -> int | None:
        full = f"{park}.{ent}.{sample_key}"
        cached = self._ids.get(("pt", full))
        if cached is not None:
            return cached
        found = conn.execute(select(s.points.c.id).where(s.points.c.key == full)).scalar()
        if found is None:
            if self.unknown_points != "register":
                return None
            dev, _, name = sample_key.partition(".")
            did = self._device_id(conn, park, ent, dev)
            found = conn.execute(s.points.insert().values(device_id=did, key=full, name=name)
                                 .returning(s.points.c.id)).scalar_one()
        self._ids[("pt", full)] = int(found)
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
        result = WriteResult()
        with self._tx() as conn:
            rows: list[Row] = []
            mirrored: list[MirrorRow] = []
            quarantined: list[dict[str, Any]] = []
            for item in items:
                gid = self._gateway_id(conn, item.park, item.enterprise, item.gateway)
                b = item.batch
                seen = conn.execute(select(s.gateway_batches.c.seq).where(
                    s.gateway_batches.c.gateway_id == gid, s.gateway_batches.c.seq == b.seq)).scalar()
                if seen is not None:
                    # still written (idempotently): a gateway whose buffer was wiped reuses seqs
                    result.replayed_batches += 1
                else:
                    conn.execute(s.gateway_batches.insert().values(
                        gateway_id=gid, seq=b.seq, received_ms=item.received_ms, samples=len(b.samples)))
                for key, ts, value, q in b.samples:
                    pid = self._point_id(conn, item.park, item.enterprise, key)
                    if pid is None:
                        quarantined.append({"received_ms": item.received_ms, "ts_ms": ts, "value": value,
                                            "quality": q, "point_key": f"{item.park}.{item.enterprise}.{key}",
                                            "reason": "unknown point (policy: quarantine)"})
                    else:
                        rows.append((pid, ts, value, q))
                        if self.mirrors:
                            dev, _, name = key.partition(".")
                            mirrored.append(MirrorRow(item.park, item.enterprise, dev, name, ts, value, q))
            if quarantined:
                conn.execute(s.quarantine.insert(), quarantined)
            inserted = self._insert_readings(conn, rows) if rows else 0
            for mirror in self.mirrors:  # before commit: a failing mirror holds the ack back
                mirror.write(mirrored)
        result.inserted = inserted
        result.duplicates = len(rows) - inserted
        result.quarantined = len(quarantined)
        return result

    def _tx(self) -> Any:
        return _Tx(self)

    # ---- dead letters and status -------------------------------------------------------------
    def dead_letter(self, topic: str, payload: bytes, reason: str, received_ms: int) -> None:
        with self._tx() as conn:
            conn.execute(s.dead_letters.insert().values(
                topic=topic, payload=payload, reason=reason, received_ms=received_ms))

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(s.dead_letters).order_by(s.dead_letters.c.id.desc()).limit(limit)).all()
        return [DeadLetter(r.id, r.received_ms, r.topic, bytes(r.payload), r.reason) for r in rows]

    def set_gateway_status(self, park: str, enterprise: str, gateway: str, online: bool, at_ms: int) -> None:
        with self._tx() as conn:
            gid = self._gateway_id(conn, park, enterprise, gateway)
            conn.execute(s.gateways.update().where(s.gateways.c.id == gid).values(online=online, status_ms=at_ms))

    def set_gateway_health(self, park: str, enterprise: str, gateway: str, at_ms: int, body: str) -> None:
        with self._tx() as conn:
            gid = self._gateway_id(conn, park, enterprise, gateway)
            gh = s.gateway_health
            updated = conn.execute(gh.update().where(gh.c.gateway_id == gid).values(at_ms=at_ms, body=body))
            if updated.rowcount == 0:
                conn.execute(gh.insert().values(gateway_id=gid, at_ms=at_ms, body=body))

    # ---- reads -------------------------------------------------------------------------------
    def gateways(self, park: str) -> list[GatewayInfo]:
        gw, gh = s.gateways, s.gateway_health
        q = (select(s.enterprises.c.key.label("ent"), gw.c.key, gw.c.online, gw.c.status_ms, gh.c.at_ms, gh.c.body)
             .select_from(gw.join(s.enterprises, gw.c.enterprise_id == s.enterprises.c.id)
                          .join(s.parks, s.enterprises.c.park_id == s.parks.c.id)
                          .outerjoin(gh, gh.c.gateway_id == gw.c.id))
             .where(s.parks.c.key == park).order_by(s.enterprises.c.key, gw.c.key))
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [GatewayInfo(r.ent, r.key, bool(r.online), r.status_ms, r.at_ms, r.body) for r in rows]

    def parks(self) -> list[ParkInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(s.parks).order_by(s.parks.c.key)).all()
        return [ParkInfo(r.key, r.name_zh, r.name_en, r.park_class, r.region) for r in rows]

    def _points_query(self) -> Any:
        return (select(s.points.c.id, s.points.c.key, s.parks.c.key.label("park"),
                       s.enterprises.c.key.label("enterprise"), s.devices.c.key.label("device"),
                       s.points.c.name, s.points.c.metric, s.points.c.unit, s.points.c.kind, s.points.c.label)
                .join(s.devices, s.points.c.device_id == s.devices.c.id)
                .join(s.enterprises, s.devices.c.enterprise_id == s.enterprises.c.id)
                .join(s.parks, s.enterprises.c.park_id == s.parks.c.id))

    def points(self, park: str, metrics: Sequence[str] | None = None,
               enterprise: str | None = None) -> list[PointInfo]:
        q = self._points_query().where(s.parks.c.key == park)
        if metrics is not None:
            q = q.where(s.points.c.metric.in_(list(metrics)))
        if enterprise is not None:
            q = q.where(s.enterprises.c.key == enterprise)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(s.points.c.key)).all()
        return [PointInfo(r.id, r.key, r.park, r.enterprise, r.device, r.name, r.metric, r.unit, r.kind, r.label)
                for r in rows]

    def latest(self, park: str, enterprise: str, device: str) -> list[LatestReading]:
        pts = [p for p in self.points(park, enterprise=enterprise) if p.device == device]
        out: list[LatestReading] = []
        with self.engine.connect() as conn:
            for p in pts:
                r = conn.execute(select(s.readings.c.ts, s.readings.c.value, s.readings.c.quality)
                                 .where(s.readings.c.point_id == p.id)
                                 .order_by(s.readings.c.ts.desc()).limit(1)).first()
                if r is not None:
                    out.append(LatestReading(p.point, p.metric, p.unit, p.label, r.ts, r.value, r.quality))
        return out

    def readings(self, point_ids: Sequence[int], start_ms: int, end_ms: int) -> Series:
        out: Series = {pid: [] for pid in point_ids}
        if not point_ids:
            return out
        q = (select(s.readings.c.point_id, s.readings.c.ts, s.readings.c.value, s.readings.c.quality)
             .where(s.readings.c.point_id.in_(list(point_ids)), s.readings.c.ts >= start_ms,
                    s.readings.c.ts < end_ms)
             .order_by(s.readings.c.point_id, s.readings.c.ts))
        with self.engine.connect() as conn:
            for pid, ts, value, q_ in conn.execute(q):
                out[pid].append((ts, value, q_))
        return out

    def completeness(self, park: str, start_ms: int, end_ms: int) -> list[GatewayCompleteness]:
        gb = s.gateway_batches
        q = (select(s.enterprises.c.key.label("ent"), s.gateways.c.key.label("gw"),
                    func.count(gb.c.seq), func.min(gb.c.seq), func.max(gb.c.seq))
             .select_from(gb.join(s.gateways, gb.c.gateway_id == s.gateways.c.id)
                          .join(s.enterprises, s.gateways.c.enterprise_id == s.enterprises.c.id)
                          .join(s.parks, s.enterprises.c.park_id == s.parks.c.id))
             .where(s.parks.c.key == park, gb.c.received_ms >= start_ms, gb.c.received_ms < end_ms)
             .group_by(s.enterprises.c.key, s.gateways.c.key)
             .order_by(s.enterprises.c.key, s.gateways.c.key))
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [GatewayCompleteness(park, r.ent, r.gw, int(r[2]), int(r[4]) - int(r[3]) + 1) for r in rows]

    def count_readings(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(s.readings)).scalar_one())

    def close(self) -> None:
        for mirror in self.mirrors:
            mirror.close()
        self.engine.dispose()


def _transient(exc: BaseException) -> bool:
    """Connection trouble is worth retrying; bad data (DataError, IntegrityError) is not."""
    return isinstance(exc, (OperationalError, InterfaceError)) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated)


class _Tx:
    """``engine.begin()`` that turns connection failures into :class:`StoreError` and forgets ids it
    cached inside a rolled-back transaction."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self._cm: Any = None

    def __enter__(self) -> Connection:
        self.store._lock.acquire()
        self._snapshot = dict(self.store._ids)
        try:
            self._cm = self.store.engine.begin()
            conn: Connection = self._cm.__enter__()
        except DBAPIError as exc:
            self.store._lock.release()
            if _transient(exc):
                raise StoreError(f"database unavailable: {exc.orig or exc}") from exc
            raise
        return conn

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        try:
            self._cm.__exit__(et, ev, tb)
        except DBAPIError as exc:
            self.store._ids = self._snapshot
            if _transient(exc):
                raise StoreError(f"database write failed: {exc.orig or exc}") from exc
            raise
        finally:
            if et is not None:
                self.store._ids = self._snapshot
            self.store._lock.release()
        if isinstance(ev, DBAPIError) and _transient(ev):
            raise StoreError(f"database write failed: {ev.orig or ev}") from ev
